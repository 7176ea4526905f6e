#!/usr/bin/env python3
"""Where the master's RSS goes at P9 scale (issue 8), in about a minute.

  python3 tests/bench/view_rss.py [servers 10000] [sessions 100000] [window_s 30]

The `no-conns` setup of `etcd_economy.py p9` (one master, lb-loadgen's fake
servers reporting every second as UDP datagrams, no agent endpoint, the
sessions preloaded; Release build in build-bench), then /proc/PID/smaps of the
master summed by mapping (malloc arenas and mmapped blocks are the anonymous
ones; `[heap]` is the main arena) once the view is loaded and again after a
window of steady reports, with the master's CPU over that window and its
busiest threads (the report thread is the busiest `lb-master` one). Run it
with MALLOC_ARENA_MAX=N in the environment to compare arena counts (lb-master
keeps 2 unless that is set). Under `flock /tmp/lbcp-bench.lock` on a shared
machine.
"""
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import etcd_economy as ee  # noqa: E402  (sets LBCP_BIN to build-bench/bin)
from harness import Cluster, free_port, wait_for  # noqa: E402


def smaps(pid):
    regs, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                cur = {"name": parts[5] if len(parts) > 5 else "[anon]",
                       "kib": (hi - lo) // 1024, "rss": 0}
                regs.append(cur)
            elif line.startswith("Rss:"):
                cur["rss"] = int(line.split()[1])
    return regs


def show(pid, tag):
    regs = smaps(pid)
    print(f"== {tag}: RSS {ee.rss_mib(pid):.1f} MiB (peak {ee.rss_mib(pid, 'VmHWM'):.1f})")
    by = {}
    for r in regs:
        n = r["name"]
        if n == "[anon]":  # arenas are 64 MiB reservations; big malloc blocks are mmaps
            n = "[anon: arenas, mmapped blocks]" if r["kib"] >= 1024 else "[anon: small, stacks]"
        elif n.endswith(".so") or ".so." in n:
            n = "[shared libraries]"
        t = by.setdefault(n, [0, 0])
        t[0] += r["rss"]
        t[1] += 1
    for n, (rss, cnt) in sorted(by.items(), key=lambda x: -x[1][0])[:8]:
        print(f"  {rss / 1024:7.1f} MiB  {cnt:4d} maps  {n}")
    big = sorted((r for r in regs if r["name"] == "[anon]"), key=lambda r: -r["rss"])[:6]
    print("  largest anonymous: " + ", ".join(
        f"{r['rss'] / 1024:.1f}/{r['kib'] / 1024:.1f}" for r in big) + " MiB (resident/size)")
    sys.stdout.flush()


def main():
    servers = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    window = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    print(f"view_rss: {servers} servers, {sessions} sessions, window {window} s, "
          f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(lb-master: 2)')}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with Cluster() as c:
        port = free_port()
        m = c.start_master(etcd_economy=True, http_listen=f"127.0.0.1:{port}",
                           report_stale="5s", log_level="warn")
        lg = ee.loadgen(c, servers, window + 600, "--no-endpoint", "--sessions", str(sessions))
        mp = m.pid

        def view_ready():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                mm = re.search(r"^master_sessions (\S+)$", r.read().decode(), re.M)
            return mm is not None and float(mm.group(1)) >= sessions
        wait_for(view_ready, 120, 1, "the master's view holds every session")
        show(mp, "view loaded")

        def steady():
            r0, t0 = ee.reports(c), time.monotonic()
            time.sleep(5)
            return (ee.reports(c) - r0) / (time.monotonic() - t0) >= 0.95 * servers
        wait_for(steady, 300, 0, "reports steady at 95 % of the servers' rate")
        th0, r0, c0, t0 = ee.threads_cpu(mp), ee.reports(c), ee.cpu_s(mp), time.monotonic()
        time.sleep(window)
        el = time.monotonic() - t0
        th1, r1, c1 = ee.threads_cpu(mp), ee.reports(c), ee.cpu_s(mp)
        show(mp, f"after {window:.0f} s of steady reports")
        top = sorted(((th1[t][1] - th0[t][1]) / el, t, th1[t][0]) for t in th1 if t in th0)
        print(f"master CPU {(c1 - c0) / el:.3f} of a core at {(r1 - r0) / el:.0f} reports/s; "
              "busiest threads: " + ", ".join(f"{n}/{t} {v:.3f}" for v, t, n in top[::-1][:3]))
        print(f"RESULT view_rss_mib={ee.rss_mib(mp):.1f} master_cpu={(c1 - c0) / el:.3f} "
              f"report_thread_cpu={top[-1][0]:.3f}")
        lg.terminate()
        try:
            lg.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            lg.kill()
            lg.communicate()


if __name__ == "__main__":
    main()
