#!/usr/bin/env python3
"""P7 and P8: how fast failures are seen and leadership moves. Each figure is
the median of RUNS fresh clusters (etcd, masters, slave, agents on loopback);
bounded, stops by itself. Prints each run, the median, the goal, and a ratio
against a baseline measured in the same run.

  P7 killed agent out of selection   goal <= 1.0 s   baseline: its etcd lease expiring
                                                      (what the master waited for before)
  P7 stopped agent out of selection  goal <= 3.5 s   (report_stale 3 s)
  P8 leader SIGKILL -> first success goal <= 2.5 s   baseline: the same with lease_ttl 5s
                                                      (the old default)
  P8 leader SIGTERM -> first success goal <= 0.5 s

    tests/bench/failover.py [BUILD_DIR] [RUNS]   (default: build-bench, 5)
"""
import base64
import json
import os
import signal
import statistics
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build-bench"))
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
os.environ["LBCP_BIN"] = os.path.join(build, "bin")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
from harness import Cluster, free_port, to_yaml, wait_for  # noqa: E402


def verdict(c, server):
    r = c.lbctl("--master", c.master_rpc, "explain", "--app", "echo", "--client", "p",
                "--location", "zone-a", "-o", "json")
    if r.returncode != 0:
        return None
    return {s["id"]: s for s in json.loads(r.stdout)["servers"]}.get(server, {}).get("verdict")


def agent_cluster(victim_lease):
    c = Cluster()
    c.start_master(log_level="warn", report_stale="3s")
    sa = c.start_slave("slave-a", "zone-a", log_level="warn")
    victim = c.start_agent("agent-a1", "zone-a", log_level="warn", lease_ttl=victim_lease)
    c.start_agent("agent-a2", "zone-a", log_level="warn")
    c.wait_master_sees(2)
    seen = set()
    for i in range(12):  # sessions on both: the master holds a connection to each agent
        seen.add(c.request(sa, "echo", f"w{i}", location="zone-a")[1]["server"])
    assert seen == {"agent-a1", "agent-a2"}, seen
    return c, victim


def p7_killed():
    c, victim = agent_cluster("2s")
    try:
        t0 = time.monotonic()
        victim.stop(signal.SIGKILL)
        wait_for(lambda: verdict(c, "agent-a1") in ("down", "ejected"), 10, 0.01, "out")
        out = time.monotonic() - t0
        wait_for(lambda: "/lb/servers/agent-a1" not in c.etcd.keys("/lb/servers/"), 15, 0.05,
                 "lease expiry")
        return out, time.monotonic() - t0
    finally:
        c.close()


def p7_stopped():
    c, victim = agent_cluster("20s")
    try:
        t0 = time.monotonic()
        victim.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: verdict(c, "agent-a1") in ("down", "ejected"), 10, 0.02, "out")
        return time.monotonic() - t0
    finally:
        victim.proc.send_signal(signal.SIGCONT)
        c.close()


def leader(c):
    kvs = c.etcd.call("kv/range", {"key": base64.b64encode(b"/lb/leader").decode()}).get("kvs")
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else ""


def p8(sig, lease_ttl="2s"):
    c = Cluster()
    try:
        rpc = [c.url() for _ in range(2)]
        rep = [c.url() for _ in range(2)]
        ms = []
        for i in range(2):
            ms.append(c.start(f"master-{i + 1}", "lb-master", to_yaml({
                "id": f"master-{i + 1}", "listen": rpc[i], "report_listen": rep[i],
                "etcd": c.etcd.url, "log_level": "warn", "lease_ttl": lease_ttl})))
            if i == 0:
                wait_for(lambda: leader(c) == "master-1", 10, 0.05, "leader")
        wait_for(lambda: "/lb/masters/master-2" in c.etcd.keys("/lb/"), 10, 0.05, "standby")
        c.master_rpc, c.master_report = rpc[0], rep[0]
        sa = c.start_slave("slave-a", "zone-a", masters=rpc, report=rep, log_level="warn",
                           leader_hold="0s")  # time the failover, not a held request
        c.start_agent("agent-a1", "zone-a", report=rep, log_level="warn")
        c.wait_master_sees(1)
        c.request(sa, "echo", "before", location="zone-a")
        t0 = time.monotonic()
        ms[0].proc.send_signal(sig)
        n = 0
        while time.monotonic() - t0 < 15:
            n += 1
            rc, out, _ = c.request(sa, "echo", f"after-{n}", location="zone-a", expect_ok=False)
            if rc == 0 and out and out.get("action") == "SERVE":
                return time.monotonic() - t0
        raise RuntimeError("no request succeeded within 15 s")
    finally:
        c.close()


def report(name, vals, goal, base=None, base_name=""):
    med = statistics.median(vals)
    line = f"{name:<36} runs {' '.join(f'{v:.2f}' for v in vals)}  median {med:.2f} s  " \
           f"goal <= {goal} s  {'met' if med <= goal else 'NOT met'}"
    if base:
        bmed = statistics.median(base)
        line += f"  | baseline {base_name} median {bmed:.2f} s, ratio {med / bmed:.2f}"
    print(line, flush=True)


killed = [p7_killed() for _ in range(RUNS)]
report("P7 killed agent out of selection", [k[0] for k in killed], 1.0,
       [k[1] for k in killed], "etcd lease (2s) expiry")
report("P7 stopped agent out of selection", [p7_stopped() for _ in range(RUNS)], 3.5)
report("P8 leader SIGKILL -> first success", [p8(signal.SIGKILL) for _ in range(RUNS)], 2.5,
       [p8(signal.SIGKILL, "5s") for _ in range(RUNS)], "lease_ttl 5s (the old default)")
report("P8 leader SIGTERM -> first success", [p8(signal.SIGTERM) for _ in range(RUNS)], 0.5)
