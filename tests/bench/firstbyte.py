#!/usr/bin/env python3
"""P4: first byte of a first-time client for an app that takes 200 ms to
listen, served from a warm pool, against the same app started on connect (the
baseline lb-bench-firstbyte implements itself). Starts a throwaway cluster
(etcd, master, slave, one agent) from a build dir; bounded; stops by itself.

    tests/bench/firstbyte.py [BUILD_DIR]   (default: build-bench, a Release build)
"""
import os
import subprocess
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster, wait_for  # noqa: E402

echo = os.path.join(build, "bin", "lb-echo")
c = Cluster(tls=False)  # plain TCP: the bench dials the slave without a certificate
try:
    c.start_master(log_level="warn")
    sa = c.start_slave("slave-a", "zone-a", log_level="warn")
    c.start_agent("agent-a1", "zone-a", log_level="warn", apps={
        "warm": {"argv": [echo, "--port", "{port}", "--session", "warm", "--listen-delay", "200"],
                 "pool": {"min_ready": 2, "max_ready": 2}}})
    c.wait_master_sees(1)
    time.sleep(1.0)  # the pool fills (2 x 200 ms)
    r = subprocess.run([os.path.join(build, "bin", "lb-bench-firstbyte"), "--slave", sa.endpoint,
                        "--location", "zone-a", "--app", "warm", "--echo", echo, "--delay", "200",
                        "--n", "15", "--gap", "600"], timeout=300, env=c.env)
    rc = r.returncode
finally:
    leftovers = c.close()
sys.exit(rc or bool(leftovers))
