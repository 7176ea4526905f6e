#!/usr/bin/env python3
"""Starts a throwaway cluster (etcd, master, slave, 2 agents on loopback) from a
build dir and runs lb-bench-request against it: once over TLS (every link
tls+tcp://, the default) and once over plain tcp://, in the same run, so the
two can be compared. Bounded; stops by itself.

    tests/bench/request.py [BUILD_DIR] [--tls-only|--plain-only]
    (BUILD_DIR default: build-bench, a Release build)
"""
import os
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = [a for a in sys.argv[1:] if not a.startswith("--")]
build = os.path.abspath(args[0] if args else os.path.join(root, "build-bench"))
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster  # noqa: E402

modes = [True, False]
if "--tls-only" in sys.argv:
    modes = [True]
if "--plain-only" in sys.argv:
    modes = [False]
rc = 0
for tls in modes:
    c = Cluster(tls=tls)
    try:
        c.start_master(log_level="warn")
        sa = c.start_slave("slave-a", "zone-a", log_level="warn")
        c.start_agent("agent-a1", "zone-a", capacity=1000, log_level="warn")
        c.start_agent("agent-a2", "zone-a", capacity=1000, log_level="warn")
        c.wait_master_sees(2)
        print(f"== {'TLS (tls+tcp://)' if tls else 'plain tcp://'}", flush=True)
        r = subprocess.run([os.path.join(build, "bin", "lb-bench-request"), "--slave",
                            sa.endpoint, "--location", "zone-a", "--clients", "32", "--requests",
                            "4000", "--threads", "4"], timeout=600, env=c.caller_env("client"))
        rc = rc or r.returncode
    finally:
        c.close()
sys.exit(rc)
