#!/usr/bin/env python3
"""Who uses the machine inside P2's new-session windows (issue 10): runs
`path.py BUILD tcp p2` with LBCP_BENCH_MARKS=1 under a whole-machine
`perf record -a -k mono` (999 Hz, no call graphs), then counts the samples
that fall inside the windows lb-bench-path marks, per process and per
thread name, for each concurrency level. lb-agent is split into the agent
daemons and their children before exec (a process whose samples are mostly
lb-agent's but which is not one of the two long-lived agents). Idle CPUs
show as `swapper`. Needs perf (Debian's linux-perf) and root, or
kernel.perf_event_paranoid <= -1. Bounded by path.py; loopback only.

    tests/bench/window_profile.py [BUILD_DIR] [OUT_PREFIX]
        (default: build-bench, /tmp/lbcp-winprof; OUT_PREFIX.log holds
         path.py's output, OUT_PREFIX.data perf's)
"""
import collections
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/lbcp-winprof"


def run():
    env = dict(os.environ, LBCP_BENCH_MARKS="1")
    with open(out + ".log", "w") as log:
        subprocess.run(["perf", "record", "-a", "-k", "mono", "-F", "999", "-o", out + ".data",
                        "--", sys.executable, os.path.join(root, "tests", "bench", "path.py"),
                        build, "tcp", "p2"], env=env, stdout=log, stderr=subprocess.STDOUT,
                       check=True)
    script = subprocess.run(["perf", "script", "-i", out + ".data", "-F", "comm,pid,time"],
                            capture_output=True, text=True, check=True).stdout
    return script


def windows():
    wins = collections.defaultdict(list)
    with open(out + ".log") as f:
        for line in f:
            m = re.match(r"MARK new c=(\d+) (\S+) (\S+)", line)
            if m:
                wins[int(m.group(1))].append((float(m.group(2)), float(m.group(3))))
    return wins


def main():
    script = run()
    samples, by_pid = [], collections.defaultdict(collections.Counter)
    for line in script.splitlines():
        p = line.split()
        try:
            t, pid = float(p[-1].rstrip(":")), int(p[-2])
        except (ValueError, IndexError):
            continue
        comm = " ".join(p[:-2])
        if not comm.startswith("nng:"):
            by_pid[pid][re.sub(r"[-:/]\d.*", "", comm)] += 1
        samples.append((t, pid, comm))
    name = {pid: c.most_common(1)[0][0] for pid, c in by_pid.items()}
    per_pid = collections.Counter(pid for _, pid, _ in samples)
    # the two agent daemons: the lb-agent processes with the most samples
    agents = set(sorted((pid for pid in per_pid if name.get(pid) == "lb-agent"),
                        key=per_pid.get, reverse=True)[:2])
    for conc, ws in sorted(windows().items()):
        procs, threads, total = collections.Counter(), collections.Counter(), 0
        for t, pid, comm in samples:
            if not any(a <= t <= b for a, b in ws):
                continue
            n = name.get(pid, comm)
            if n == "lb-agent":
                n = "lb-agent (daemon)" if pid in agents else "lb-agent (child before exec)"
            procs[n] += 1
            threads[f"{n}/{comm}"] += 1
            total += 1
        secs = sum(b - a for a, b in ws)
        print(f"concurrency {conc}: {len(ws)} windows, {secs:.3f} s, {total} samples "
              f"(2 CPUs x 999 Hz would be {int(secs * 999 * 2)})")
        for k, v in procs.most_common(8):
            print(f"  {k:30s} {100 * v / max(total, 1):5.1f} %")
        print("  threads: " + ", ".join(f"{k} {100 * v / max(total, 1):.1f} %"
                                        for k, v in threads.most_common(8)))
    with open(out + ".log") as f:
        for line in f:
            if line.startswith("RESULT") or line.startswith("CPU seconds"):
                print(line.rstrip())


if __name__ == "__main__":
    main()
