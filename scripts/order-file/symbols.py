"""Reads `perf script` output (comm,pid,ip,sym,dso with call chains) and
prints the binary's functions that ran: one mangled name per line, the
format of lld's --symbol-ordering-file.

A function counts once per sample it is on the stack of (so callers of
sampled code are kept, not only leaves), and once per user page fault that
fetched its instructions. Each process is a server (its samples include
the API server's watch cache), an agent (the kubelet's code, no watch cache) or the
benchmark driver (neither; left out, its code does not run in a user's
cluster). The list groups what both roles run, then what only the agent
runs, then what only the server runs, each hottest first: each role's
working set is then one contiguous stretch of the text.

Functions of the previous list (`--keep FILE`) that this profile did not
see follow, so that rerunning the profile only ever adds what it found.
"""
import collections
import os
import subprocess
import sys


def text_symbols(binary):
    """Names of the binary's code symbols (`nm`), mangled."""
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            names.add(parts[2])
    return names


def samples(path, binary):
    """Yields (pid, frames in the binary, leaf first) for each sample."""
    name = os.path.basename(binary)
    pid, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if frames:
                    yield pid, frames
                pid, frames = None, []
            elif line[0] in " \t":
                parts = line.split()
                # ip sym (dso)
                if len(parts) >= 3 and parts[-1].strip("()").endswith(name):
                    frames.append(parts[1].split("+0x")[0])
            else:
                # comm pid: the header of a sample
                fields = line.split()
                pid = fields[1] if len(fields) > 1 else None
    if frames:
        yield pid, frames


def role_of(markers):
    if "server" in markers:
        return "server"
    if "agent" in markers:
        return "agent"
    return None


def main():
    args = sys.argv[1:]
    keep = []
    if args[:1] == ["--keep"]:
        with open(args[1]) as f:
            keep = f.read().split()
        args = args[2:]
    binary, inputs = args[0], args[1:]
    known = text_symbols(binary)
    heat = {"server": collections.Counter(), "agent": collections.Counter()}
    for path in inputs:
        # Pass 1: which processes of this profile are servers and agents.
        markers = collections.defaultdict(set)
        for pid, frames in samples(path, binary):
            for f in frames:
                if "skiff_apiserver5cache" in f:
                    markers[pid].add("server")
                elif "skiff_kubelet" in f:
                    markers[pid].add("agent")
        # Pass 2: count.
        for pid, frames in samples(path, binary):
            role = role_of(markers[pid])
            if role is None or any("5skiff5bench" in f for f in frames):
                continue
            for sym in set(frames):
                if sym in known:
                    heat[role][sym] += 1
    server, agent = heat["server"], heat["agent"]
    both = server + agent
    groups = [
        [s for s, _ in both.most_common() if s in server and s in agent],
        [s for s, _ in agent.most_common() if s not in server],
        [s for s, _ in server.most_common() if s not in agent],
    ]
    listed = set()
    for group in groups:
        for sym in group:
            print(sym)
            listed.add(sym)
    for sym in keep:
        if sym in known and sym not in listed:
            print(sym)
            listed.add(sym)
    sizes = [len(g) for g in groups]
    print(f"order-file: {sizes[0]} functions both roles ran, {sizes[1]} only the agent, "
          f"{sizes[2]} only the server", file=sys.stderr)


if __name__ == "__main__":
    main()
