#!/usr/bin/env python3
"""P3 and P2 (issue 10): starts a throwaway cluster (etcd, master, slave, two
agents with a per-session app `echo` and a pooled app `pecho`, 64 ready per
agent, and the master's stock of pecho, 512 per agent: LBCP_BENCH_STOCK=N) from
a build dir and runs lb-bench-path against it. Bounded; stops by itself.

P3: 500 sticky repeats between two series of 500 echoes; then 600 new sessions
of pecho back to back (stock hits), interleaved in chunks of 100 with 600 echoes.
P2 per concurrency level (1, 16, 64): 2 s of sticky against 2 s of echo; new
sessions in 5 rounds of 512 calls (half the stock, so either agent's share
covers the policy's split), each after the stock is full again and right after
an echo run of the same 512 calls at the same concurrency; the ratio over the
totals. LBCP_BENCH_MARKS=1 has lb-bench-path print each new-session run's
CLOCK_MONOTONIC window (for perf record -k mono). LBCP_BENCH_ARGS adds or overrides lb-bench-path options;
LBCP_BENCH_MASTER (JSON) adds master config keys.

    tests/bench/path.py [BUILD_DIR] [tcp|tls|both] [p3|p2]   (default: build-bench, a
    Release build, both transports one after the other, P3 and P2)

After the run it prints where pool hits' time went: the master's
master_pool_path and the agents' agent_path counters (sums of microseconds per
stage, see cmd/lb-master/rpc.c and cmd/lb-agent/rpc.c), as means per hit, and
the stock's counters.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
modes = {"tcp": [False], "tls": [True], "both": [False, True]}[
    sys.argv[2] if len(sys.argv) > 2 else "both"]
only = ["--only", sys.argv[3]] if len(sys.argv) > 3 else []


def cpu_seconds(pid):
    """utime + stime of a process so far (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def cpu_all(c):
    """CPU seconds so far of etcd and every daemon, and etcd's txn count."""
    out = {"etcd": cpu_seconds(c.etcd.proc.pid)}
    out.update({name: cpu_seconds(d.proc.pid) for name, d in c.daemons.items()})
    with urllib.request.urlopen(c.etcd.url + "/metrics", timeout=5) as r:
        m = re.search(r"^etcd_mvcc_txn_total (\S+)$", r.read().decode(), re.M)
    out["etcd txns"] = int(float(m.group(1))) if m else 0
    return out


def stages(c, name, addr, prefix, count):
    """Mean microseconds per stage of the launched answers (prefix counters)."""
    st = (c.stats(addr) or {"counters": {}})["counters"]
    n = st.get(count, 0)
    per = {k.split('"')[1]: round(v / n) for k, v in sorted(st.items())
           if k.startswith(prefix) and n}
    print(f"{name} {count}={n} mean us per stage {per}", flush=True)
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster, free_port  # noqa: E402

echo = os.path.join(build, "bin", "lb-echo")
apps = {"echo": {"argv": [echo, "--port", "{port}", "--session", "{session}"],
                 "ready_timeout": "5s"},
        "pecho": {"argv": [echo, "--port", "{port}", "--session", "pooled"], "ready_timeout": "5s",
                  "pool": {"min_ready": 64, "max_ready": 64}}}


stock = int(os.environ.get("LBCP_BENCH_STOCK", "512"))


def run(tls):
    c = Cluster(tls=tls)
    rc = 1
    try:
        extra = json.loads(os.environ.get("LBCP_BENCH_MASTER", "{}"))  # {"write_interval": "50ms"}
        c.start_master(log_level="warn", **({"stock": {"pecho": stock}} if stock else {}), **extra)
        sa = c.start_slave("slave-a", "zone-a", log_level="warn")
        # 1,500 ports each (pool, stock and sessions), below the ephemeral range (32768+)
        lo = 20000 + (free_port() % 11000)
        for i, name in enumerate(("agent-a1", "agent-a2")):
            c.start_agent(name, "zone-a", capacity=2000, log_level="warn", apps=apps,
                          ports={"min": lo + 1500 * i, "max": lo + 1500 * i + 1499})
        c.wait_master_sees(2)
        time.sleep(3.0)  # the pools fill; lb-bench-path waits for the stock itself
        cpu0 = cpu_all(c)
        r = subprocess.run([*os.environ.get("LBCP_BENCH_WRAP", "").split(),
                            os.path.join(build, "bin", "lb-bench-path"), "--slave", sa.endpoint,
                            "--master", c.master_rpc, "--slave-id", "slave-a",
                            "--location", "zone-a", "--stock-full", str(2 * stock),
                            *os.environ.get("LBCP_BENCH_ARGS", "").split(), *only],
                           timeout=900, env=c.env)
        rc = r.returncode
        cpu1 = cpu_all(c)  # where the run's CPU went (the stock refills included)
        print("CPU seconds during the run", {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1}, flush=True)
        stages(c, "master", c.master_rpc, "master_pool_path_microseconds_total",
               "master_pool_path_launches_total")
        for name in ("agent-a1", "agent-a2"):
            stages(c, name, c.daemons[name].endpoint, "agent_path_microseconds_total", "agent_path_hits_total")
        st = (c.stats(c.master_rpc) or {"counters": {}})["counters"]
        print("master stock", {k: v for k, v in sorted(st.items()) if "stock" in k}, flush=True)
        print("master reports (the agents' load reports taken over the whole run)",
              {k: v for k, v in sorted(st.items()) if k.startswith("master_reports_")}, flush=True)
        for name in ("agent-a1", "agent-a2"):  # hits and misses: what "new from pool" measured
            st = c.stats(c.daemons[name].endpoint) or {"counters": {}}
            print(name, {k: v for k, v in sorted(st["counters"].items())
                         if "pecho" in k and ("pool" in k or "launches" in k)}, flush=True)
    finally:
        leftovers = c.close()
    return rc or bool(leftovers)


sys.exit(max(run(tls) for tls in modes))
