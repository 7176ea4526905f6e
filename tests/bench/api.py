#!/usr/bin/env python3
"""Starts a throwaway cluster (etcd, master, one slave with api_listen, 2 agents on
loopback) from a build dir and runs lb-bench-api: sticky request latency through
the HTTP/JSON API and through the nng front door, same run. Bounded.

    tests/bench/api.py [BUILD_DIR]   (default: build-bench, a Release build)
"""
import os
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster, free_port  # noqa: E402

c = Cluster()
try:
    port = free_port()
    c.start_master(log_level="warn")
    sa = c.start_slave("slave-a", "zone-a", log_level="warn", api_listen=f"127.0.0.1:{port}")
    c.start_agent("agent-a1", "zone-a", capacity=1000, log_level="warn")
    c.start_agent("agent-a2", "zone-a", capacity=1000, log_level="warn")
    c.wait_master_sees(2)
    r = subprocess.run([os.path.join(build, "bin", "lb-bench-api"), "--slave", sa.endpoint,
                        "--api", f"http://127.0.0.1:{port}", "--location", "zone-a",
                        "--clients", "8", "--requests", "2000"], timeout=600)
    sys.exit(r.returncode)
finally:
    c.close()
