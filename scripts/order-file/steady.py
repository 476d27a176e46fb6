"""Reads `perf script -F trace,ip,sym,dso` output of user page faults in a
process that evicted its binary from the page cache when it released its
start-up pages (`SKIFF_PROFILE_CODE_PAGES`, see generate.sh; the events
are read from that release, marked by `syscalls:sys_enter_madvise`), and
prints the binary's functions whose code faulted, first fault first: the
code an idle process runs, exactly, as every executed page faults on its
own. The summary on stderr says how much code that is.

Usage: steady.py BINARY PERF_SCRIPT_TEXT
"""
import bisect
import re
import subprocess
import sys


def functions(binary):
    """(address, size, mangled name) of the binary's code symbols, sorted."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    syms.sort()
    return syms


HEADER = re.compile(r"address=0x([0-9a-f]+) ip=0x([0-9a-f]+) error_code=0x([0-9a-f]+)")
# The release: `SKIFF_PROFILE_CODE_PAGES` makes it call madvise(MADV_RANDOM).
RELEASE = re.compile(r"behavior: 0x0*1\b")
FRAME = re.compile(r"\s*([0-9a-f]+) (.*) \((.*)\)")


def main():
    binary, path = sys.argv[1], sys.argv[2]
    syms = functions(binary)
    starts = [s[0] for s in syms]
    faults = []  # (address, ip, user frame offset or None)
    with open(path, errors="replace") as f:
        text = f.read()
    released = False
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if RELEASE.search(lines[0]):
            released = True
            continue
        m = HEADER.search(lines[0])
        if not released:
            continue
        if not m:
            continue
        addr, ip, code = (int(m.group(i), 16) for i in (1, 2, 3))
        offset = None
        for line in lines[1:]:
            fm = FRAME.match(line)
            if fm and fm.group(3) == binary:
                offset = int(fm.group(1), 16)
                break
        faults.append((addr, ip, code, offset))
    # The load address: a fault whose leaf frame is in the binary.
    base = next((ip - off for _, ip, _, off in faults if off is not None and ip >= off), None)
    if base is None:
        print("steady: no fault in the binary", file=sys.stderr)
        return
    seen, pages = [], set()
    names = set()
    for addr, _, code, _ in faults:
        if not code & 0x10:  # not an instruction fetch
            continue
        rel = addr - base
        i = bisect.bisect_right(starts, rel) - 1
        if i < 0 or rel >= syms[i][0] + max(syms[i][1], 1):
            continue
        pages.add(rel // 4096)
        name = syms[i][2]
        if name not in names:
            names.add(name)
            seen.append(name)
    for name in seen:
        print(name)
    size = sum(s[1] for s in syms if s[2] in names)
    print(f"steady: {len(seen)} functions ({size / 1048576:.2f} MiB) over {len(pages)} "
          f"pages ran after start-up", file=sys.stderr)


if __name__ == "__main__":
    main()
