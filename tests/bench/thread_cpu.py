#!/usr/bin/env python3
"""CPU of a running process by thread name, from /proc/PID/task/*/stat.

    tests/bench/thread_cpu.py PID [--slice 30] [--rounds 2]

Prints, for each slice, the process's share of one core in all and per thread
name (nng names its threads nng:task, nng:poll:epoll, ...; lbcp's own threads
keep the binary's name). Used on the P9 bench's master (etcd_economy.py p9,
`economy` column) to tell the TLS handshakes, which run on nng:task, from the
master's own work.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcd_economy import threads_cpu  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--slice", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    for r in range(a.rounds):
        before, t0 = threads_cpu(a.pid), time.monotonic()
        time.sleep(a.slice)
        after, el = threads_cpu(a.pid), time.monotonic() - t0
        names = {}
        for t, (name, cpu) in after.items():
            if t in before:
                names[name] = names.get(name, 0.0) + (cpu - before[t][1]) / el
        top = sorted(names.items(), key=lambda kv: -kv[1])
        print(f"slice {r}: {sum(names.values()):.3f} of a core; "
              + ", ".join(f"{n} {v:.3f}" for n, v in top if v >= 0.0005), flush=True)


if __name__ == "__main__":
    main()
