#!/usr/bin/env python3
"""P9 per-connection memory (issue 8): what real agents' idle nng report
connections cost one master when their reports go over UDP.

  python3 tests/bench/report_conns.py [--agents 20] [--settle 4] [--samples 5]

lb-loadgen's fake servers send datagrams and hold no report connection, so
etcd_economy.py p9 cannot show this; here N real lb-agent processes report to
one real master (TLS, the master's default report datagram endpoint). Each
column is a fresh cluster (etcd, master, N agents, report_interval 1s):
  kept — the agents start before the master (so they dial nng for their first
         reports) with report_nng_idle: 0 (never closed): every agent holds a
         report connection, as every agent did before report_pub.c (the
         baseline of this run);
  lazy — the master starts first and the agents with the default
         report_nng_idle (30 s): they find the master on UDP and never dial.
Once every agent reports over UDP and settle seconds passed, it samples
the master's RSS, open fds and the established connections on its report port
(median of --samples, 1 s apart). Run it under flock /tmp/lbcp-bench.lock.
Binaries from LBCP_BIN (default build-dev/bin).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("LBCP_BIN", os.path.join(HERE, "../../build-dev/bin"))
sys.path.insert(0, os.path.join(HERE, "../integration"))
from harness import Cluster, wait_for  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def conns(report_url):
    port = report_url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         check=True, capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def run(mode, args):
    with Cluster() as c:
        kept = mode == "kept"
        if kept:
            c.master_report = c.url()
        else:
            m = c.start_master(log_level="warn")
        for i in range(args.agents):
            c.start_agent(f"agent-{i}", "zone-a", report_interval="1s", log_level="warn",
                          report_nng_idle="0" if kept else "30s")
        if kept:
            m = c.start_master(log_level="warn", report_listen=c.master_report)
            wait_for(lambda: conns(c.master_report) >= args.agents, 30, 0.2,
                     what="every agent's report connection")

        def udp_reports():
            st = c.stats(c.master_rpc)
            return st["counters"].get('master_agent_reports_total{transport="udp"}', 0) if st else 0
        wait_for(lambda: udp_reports() >= 3 * args.agents, 60, 0.5, what="reports over UDP")
        time.sleep(args.settle)
        s = {"rss": [], "fds": [], "conns": []}
        for _ in range(args.samples):
            s["rss"].append(rss_kib(m.pid) / 1024)
            s["fds"].append(len(os.listdir(f"/proc/{m.pid}/fd")))
            s["conns"].append(conns(c.master_report))
            time.sleep(1)
        r = {k: statistics.median(v) for k, v in s.items()}
        nng0 = c.stats(c.master_rpc)["counters"].get(
            'master_agent_reports_total{transport="nng"}', 0)
        time.sleep(2)
        r["nng_per_s"] = (c.stats(c.master_rpc)["counters"].get(
            'master_agent_reports_total{transport="nng"}', 0) - nng0) / 2
        return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--settle", type=float, default=4)
    ap.add_argument("--samples", type=int, default=5)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    res = {"kept": run("kept", args), "lazy": run("lazy", args)}
    print(f"{args.agents} real agents, reports over UDP, master medians of {args.samples}:")
    print(f"{'':42}{'kept':>10}{'lazy':>10}")
    rows = [("report-port connections (established)", "conns", "{:.0f}"),
            ("master open fds", "fds", "{:.0f}"),
            ("master RSS (MiB)", "rss", "{:.1f}"),
            ("agent reports over nng / s", "nng_per_s", "{:.1f}")]
    for label, k, f in rows:
        print(f"{label:42}{f.format(res['kept'][k]):>10}{f.format(res['lazy'][k]):>10}")
    k, z = res["kept"], res["lazy"]
    per_conn = (k["rss"] - z["rss"]) * 1024 / max(1, k["conns"] - z["conns"])
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(f"RESULT agents={args.agents} kept_conns={k['conns']:.0f} lazy_conns={z['conns']:.0f} "
          f"kept_fds={k['fds']:.0f} lazy_fds={z['fds']:.0f} kept_rss_mib={k['rss']:.1f} "
          f"lazy_rss_mib={z['rss']:.1f} rss_kib_per_conn={per_conn:.1f}")


if __name__ == "__main__":
    main()
