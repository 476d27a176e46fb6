#!/usr/bin/env bash
# Regenerates crates/skiff/skiff.order: the functions an idle `skiff server`
# and a `skiff agent` running pods keep executing, hottest first. The
# release link places them first and together (crates/skiff/build.rs), so
# what those processes fault back in after dropping their start-up code
# pages (crates/skiff/src/code_pages.rs) is a few contiguous MiB instead of
# windows spread over the whole text.
#
# Needs root, `perf`, python3 and a release build. It samples:
#   1. a control-plane server (node parts off) in a private network
#      namespace: start-up, then idle past its page release and three
#      30-second bookmark rounds;
#   2. `skiff bench podstart` (a server, a separate agent and 80 pods),
#      which forks the processes it measures, so perf follows them.
# Each runs twice: once for CPU samples with call chains (every frame on
# the stack is a function that ran), once for every user page fault (the
# first instruction or data fetched in each window that was not mapped:
# what the previous order left out). Running it again on a build linked
# with its output finds what that build still faults in. Run it after changes that move a
# lot of code around; a stale list only costs memory (names the build no
# longer has are skipped by the linker).
#
# Usage: scripts/order-file/generate.sh [path/to/release/skiff]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/release/skiff}
bin=$(readlink -f "$bin")
work=$(mktemp -d /tmp/skiff-order.XXXXXX)
ns=skiff-order-$$
cleanup_ns() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work/server"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    mkdir "$work/server"
}
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

record() { # name, seconds, command...
    local name=$1 secs=$2
    shift 2
    # Two runs, as perf samples every event at the frequency given: CPU
    # samples at 20 kHz, then every user page fault.
    timeout -s INT "$secs" perf record -q -F 20000 -e cpu-clock --call-graph dwarf,8192 \
        -o "$work/$name-cpu.data" -- "$@" >"$work/$name-cpu.log" 2>&1 || true
    cleanup_ns
    timeout -s INT "$secs" perf record -q -e exceptions:page_fault_user --call-graph dwarf,8192 \
        -o "$work/$name-faults.data" -- "$@" >"$work/$name-faults.log" 2>&1 || true
    cleanup_ns
    for kind in cpu faults; do
        perf script -i "$work/$name-$kind.data" --no-inline --no-demangle -F comm,pid,ip,sym,dso \
            2>/dev/null >"$work/$name-$kind.txt"
    done
}

echo "order-file: profiling an idle server (2 x 100 s)" >&2
cleanup_ns
record server 100 ip netns exec "$ns" "$bin" server --data-dir "$work/server" \
    --disable agent,proxy,dns,ingress,servicelb,network-policy --https-port 16443

echo "order-file: profiling bench podstart (2 runs: a server, an agent, 80 pods)" >&2
record podstart 600 "$bin" bench podstart --pods 30 --burst 50 --idle-secs 10

order=$root/crates/skiff/skiff.order
keep=()
if [ -s "$order" ]; then
    cp "$order" "$work/previous.order"
    keep=(--keep "$work/previous.order")
fi
python3 "$here/symbols.py" "${keep[@]}" "$bin" "$work"/server-*.txt "$work"/podstart-*.txt >"$order"
echo "order-file: wrote $order ($(wc -l <"$order") functions)" >&2
