#!/usr/bin/env python3
"""What a new leader's switch of its sessions/ watch to etcd's NOPUT filter costs
at scale (writer.c, README "State in etcd"): preloads K session records into a
throwaway etcd with lb-loadgen (--sessions K, fake servers with no endpoint),
starts master-1 (it leads), then master-2, SIGTERMs master-1 and reads from
master-2's log the time from its "own session puts filtered" line to the
reload of sessions/ ("view loaded keys=K") after it: the time it waits before
answering as leader. Bounded (loadgen 120 s at most); loopback only.

    tests/bench/switch_scale.py [BUILD_DIR] [K]   (default: build-bench, 100000)
"""
import datetime
import os
import signal
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
K = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster, to_yaml, wait_for  # noqa: E402


def ts(line):
    """The time of a log line (ts=2026-12-03T10:09:49.497Z)."""
    t = line.split("ts=", 1)[1].split()[0].rstrip("Z")
    return datetime.datetime.fromisoformat(t).timestamp()


def main():
    c = Cluster()
    lg = None
    try:
        lg = subprocess.Popen([os.path.join(build, "bin", "lb-loadgen"), "--etcd", c.etcd.url,
                               "--servers", "100", "--no-endpoint", "--no-auth",
                               "--sessions", str(K), "--duration", "120s"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(c.etcd.keys("/lb/sessions/")) >= K, 100, 0.5, "the preload")
        ms = []
        for i in (1, 2):
            ms.append(c.start(f"master-{i}", "lb-master", to_yaml({
                "id": f"master-{i}", "listen": c.url(), "report_listen": c.url(),
                "etcd": c.etcd.url, "log_level": "info", "lease_ttl": "2s"})))
            wait_for(lambda: "msg=\"started\"" in ms[-1].output(), 60, 0.05, f"master-{i}")
        wait_for(lambda: "own session puts filtered" in ms[0].output(), 60, 0.05, "master-1 leads")
        t0 = time.time()
        ms[0].proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "own session puts filtered" in ms[1].output(), 30, 0.05, "master-2")
        out = ms[1].output().splitlines()
        i = next(n for n, line in enumerate(out) if "own session puts filtered" in line)
        wait_for(lambda: any(f"view loaded\" keys={K} " in line
                             for line in ms[1].output().splitlines()[i:]), 60, 0.05, "reload")
        out = ms[1].output().splitlines()
        led = next(line for line in out if "became leader" in line)
        done = next(line for line in out[i:] if f"view loaded\" keys={K} " in line)
        print(f"sessions {K}: elected {ts(led) - t0:.3f} s after SIGTERM, switch reload "
              f"{ts(done) - ts(out[i]):.3f} s, answering as leader {ts(done) - t0:.3f} s "
              "after SIGTERM")
        print(f"RESULT switch_reload_s={ts(done) - ts(out[i]):.3f} sessions={K}")
    finally:
        if lg is not None:
            lg.terminate()
            lg.wait(30)
        c.close()


main()
