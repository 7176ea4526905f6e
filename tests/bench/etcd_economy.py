#!/usr/bin/env python3
"""Benchmarks P6 and P9 (issue 8): what lbcp costs etcd, counted by etcd itself.

  python3 tests/bench/etcd_economy.py p6 [--servers 1000] [--window 20]
  python3 tests/bench/etcd_economy.py p9 [--servers 10000] [--sessions 100000] [--window 60] [--baseline]
                                         [--nng] [--perf]

Both start a throwaway etcd and real daemons on loopback (tests/integration/
harness.py) with lb-loadgen's fake servers, from LBCP_BIN (default
build-bench/bin, a Release build). They print figures, then one RESULT line.

P6: etcd puts per new session, per sticky repeat, and background puts per
    server per second at steady load (fake servers whose cpu and memory jitter
    around a steady mean), with etcd_economy on and, in the same run, off (the
    old behaviour: the baseline). Puts are counted twice: by a watch on the
    prefix that sorts every PUT by key kind and groups them by revision (one
    revision = one txn), and by etcd's own etcd_mvcc_put_total.
P9: one master, N fake servers reporting every second (MACed as agents do,
    over 16 connections), K sessions: the master's CPU (share of one core, and
    per report received) and RSS, etcd's CPU, and etcd's db growth over the
    window projected to 24 h against the default 2 GiB quota; run once with a
    TLS connection from the leader to every server's agent and once with none
    (the view's memory apart from the transport's per-connection memory).
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
os.environ.setdefault("LBCP_BIN", os.path.join(HERE, "../../build-bench/bin"))
sys.path.insert(0, os.path.join(HERE, "../integration"))
from harness import BIN, Cluster, free_port, wait_for  # noqa: E402

QUOTA = 2 << 30
CLK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK  # utime + stime


def threads_cpu(pid):
    """{thread id: (thread name, CPU seconds)} of a process, from
    /proc/PID/task/*/stat (nng names its threads nng:task, nng:poll:epoll...;
    lbcp's keep the binary's name). Threads gone meanwhile are left out."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        parts = st.rsplit(")", 1)[1].split()
        out[tid] = (st[st.index("(") + 1:st.rindex(")")], (int(parts[11]) + int(parts[12])) / CLK)
    return out


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def etcd_status(c):
    st = c.etcd.call("maintenance/status", {})
    return int(st["header"]["revision"]), int(st.get("dbSize", 0)), int(st.get("dbSizeInUse", 0))


def etcd_puts(c):
    with urllib.request.urlopen(c.etcd.url + "/metrics", timeout=5) as r:
        m = re.search(r"^etcd_mvcc_put_total (\S+)$", r.read().decode(), re.M)
    return int(float(m.group(1))) if m else 0


class Watch:
    """Counts PUT events under the prefix by kind (sessions, affinity, load,
    other) and the revisions (txns) they came in."""

    def __init__(self, c):
        self.c = c
        self.lock = threading.Lock()
        self.puts = {}
        self.revs = set()
        self.key_rev = {}  # key -> revision of its last put
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        time.sleep(0.5)

    def run(self):
        p = self.c.prefix.encode()
        body = json.dumps({"create_request": {
            "key": base64.b64encode(p).decode(),
            "range_end": base64.b64encode(p[:-1] + bytes([p[-1] + 1])).decode()}}).encode()
        req = urllib.request.Request(self.c.etcd.url + "/v3/watch", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=3600) as r:
            for line in r:
                if self.stop:
                    return
                res = json.loads(line).get("result", {})
                for ev in res.get("events", []):
                    if ev.get("type") == "DELETE":
                        continue
                    key = base64.b64decode(ev["kv"]["key"]).decode()
                    kind = key[len(self.c.prefix):].split("/", 1)[0]
                    with self.lock:
                        self.puts[kind] = self.puts.get(kind, 0) + 1
                        self.revs.add((kind, ev["kv"]["mod_revision"]))
                        self.key_rev[key] = ev["kv"]["mod_revision"]

    def snap(self):
        with self.lock:
            return dict(self.puts), set(self.revs)


def delta(a, b, kinds):
    return sum(b[0].get(k, 0) - a[0].get(k, 0) for k in kinds)


def txns(a, b, kinds):
    return len({r for (k, r) in b[1] - a[1] if k in kinds})


def loadgen(c, servers, duration, *extra):
    lg = subprocess.Popen([os.path.join(BIN, "lb-loadgen"), "--etcd", c.etcd.url,
                           "--servers", str(servers), "--duration", f"{duration}s", "--quiet",
                           *extra], stdout=subprocess.PIPE, text=True,
                          env=c.caller_env("agent"))  # its fake servers are agents (TLS)
    line = lg.stdout.readline()
    if "ready" not in line:
        raise SystemExit(f"lb-loadgen did not start: {line}")
    wait_for(lambda: len(c.etcd.keys(c.prefix + "servers/")) >= servers, 60, 0.5,
             "servers registered")
    return lg


def stats(c):
    """The master's counters; retried: with 10,000 agent connections an RPC
    now and then times out on a busy machine, and a missing answer read as 0
    made a window's report count negative."""
    for _ in range(10):
        st = c.stats(c.master_rpc)
        if st:
            return st["counters"]
        time.sleep(0.5)
    raise SystemExit("the master's stats did not answer 10 times in a row")


def reports(c):
    return stats(c).get('master_load_reports_total{from="agent"}', 0)


def p6_mode(economy, servers, window, n_new, n_sticky):
    with Cluster() as c:
        c.start_master(etcd_economy=economy, session_ttl="10m")
        sa = c.start_slave("slave-a", "zone-a")
        lg = loadgen(c, servers, window * 3 + 120, "--agents")
        r0 = reports(c)
        wait_for(lambda: reports(c) - r0 >= servers * 2, 60, 0.5, "reports flowing")
        w = Watch(c)
        etcd_pid = c.etcd.proc.pid
        # steady load: nothing but reports happen
        a, p0, e0, t0 = w.snap(), etcd_puts(c), cpu_s(etcd_pid), time.monotonic()
        time.sleep(window)
        b, p1, e1, t1 = w.snap(), etcd_puts(c), cpu_s(etcd_pid), time.monotonic()
        el = t1 - t0
        bg = {"puts_per_server_s": (p1 - p0) / servers / el,
              "load_puts_per_server_s": delta(a, b, ["load"]) / servers / el,
              "etcd_cpu": (e1 - e0) / el}
        # new sessions, then sticky repeats (lbctl, one request at a time)
        a = w.snap()
        sids = []
        for i in range(n_new):
            _, out, _ = c.request(sa, "echo", f"p6-client-{i}", "zone-a")
            sids.append(out["session"])
        time.sleep(0.5)
        b = w.snap()
        kinds = ["sessions", "affinity"]
        # one txn: a new session's record and (baseline only: economy writes
        # none) its affinity record share a revision (several sessions may
        # share a txn: group commit, what queues while one is in flight)
        with w.lock:
            def split_one(i, sid):
                rev = w.key_rev.get(f"{c.prefix}sessions/{sid}")
                aff = w.key_rev.get(f"{c.prefix}affinity/p6-client-{i}/echo", rev)
                return rev is None or aff != rev
            split = sum(1 for i, sid in enumerate(sids) if split_one(i, sid))
        new = {"puts": delta(a, b, kinds) / n_new, "txns": txns(a, b, kinds) / n_new,
               "split": split}
        a = w.snap()
        for i in range(n_sticky):
            c.request(sa, "echo", f"p6-client-{i % n_new}", "zone-a")
        time.sleep(0.5)
        b = w.snap()
        sticky = {"puts": delta(a, b, kinds) / n_sticky, "txns": txns(a, b, kinds) / n_sticky}
        w.stop = True
        lg.terminate()
        lg.wait(60)
        return bg, new, sticky


def p6(args):
    print(f"P6: etcd writes, {args.servers} fake servers reporting every 1 s, "
          f"steady window {args.window} s, {args.new} new sessions, {args.sticky} sticky repeats")
    res = {}
    for name, economy in (("economy", True), ("baseline", False)):
        res[name] = p6_mode(economy, args.servers, args.window, args.new, args.sticky)
        print(f"  {name} done", flush=True)
    eb, en, es = res["economy"]
    bb, bn, bs = res["baseline"]
    print()
    print(f"{'':34} {'economy':>10} {'baseline':>10} {'goal':>10}")
    print(f"{'puts per new session':34} {en['puts']:10.2f} {bn['puts']:10.2f} {'<= 2':>10}")
    print(f"{'new sessions split over txns':34} {en['split']:10d} {bn['split']:10d} {'0':>10}")
    print(f"{'txns per new session (batched)':34} {en['txns']:10.2f} {bn['txns']:10.2f} {'<= 1':>10}")
    print(f"{'puts per sticky repeat':34} {es['puts']:10.2f} {bs['puts']:10.2f} {'0':>10}")
    print(f"{'background puts/server/s (etcd)':34} {eb['puts_per_server_s']:10.4f} "
          f"{bb['puts_per_server_s']:10.4f} {'<= 0.05':>10}")
    print(f"{'  of which load/ puts/server/s':34} {eb['load_puts_per_server_s']:10.4f} "
          f"{bb['load_puts_per_server_s']:10.4f}")
    print(f"{'etcd CPU at steady load (cores)':34} {eb['etcd_cpu']:10.3f} {bb['etcd_cpu']:10.3f}")
    ratio = bb["puts_per_server_s"] / max(eb["puts_per_server_s"], 1e-9)
    print(f"RESULT servers={args.servers} new_puts={en['puts']:.2f} new_split={en['split']} "
          f"sticky_puts={es['puts']:.2f} bg_puts_per_server_s={eb['puts_per_server_s']:.4f} "
          f"baseline_bg_puts_per_server_s={bb['puts_per_server_s']:.4f} "
          f"baseline_sticky_puts={bs['puts']:.2f} baseline_new_puts={bn['puts']:.2f} "
          f"etcd_cpu={eb['etcd_cpu']:.3f} baseline_etcd_cpu={bb['etcd_cpu']:.3f} "
          f"bg_ratio={'inf' if eb['puts_per_server_s'] == 0 else f'{ratio:.0f}'}")


def auth_counts(c):
    st = stats(c)
    return {by: st.get(f'master_reports_authenticated_total{{by="{by}"}}', 0)
            for by in ("mac", "signature", "none")}


PERF_EVENTS = "task-clock,context-switches,raw_syscalls:sys_enter"


def perf_stat_start(pid, window):
    """perf stat on the master for the window (root; CSV on stderr), or None."""
    try:
        return subprocess.Popen(["perf", "stat", "-x", ",", "-e", PERF_EVENTS, "-p", str(pid),
                                 "--", "sleep", str(window)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    except OSError:
        return None


def perf_stat_read(proc):
    """{event: count} from perf stat -x , (missing events absent)."""
    if proc is None:
        return {}
    _, err = proc.communicate(timeout=120)
    out = {}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].replace(".", "", 1).isdigit():
            out[f[2]] = float(f[0])
    return out


def p9_mode(economy, servers, sessions, window, report_stale, conns=True, nng=False,
            perf=False):
    """conns: the servers name one shared agent endpoint (lb-loadgen
    --shared-agent), so the leader holds a TLS connection per server as it does
    for real agents; without, they name none (--no-endpoint): the same view and
    reports with no agent connection, which separates the view's memory from
    the transport's per-connection memory."""
    with Cluster() as c:
        port = free_port()
        m = c.start_master(etcd_economy=economy, http_listen=f"127.0.0.1:{port}",
                           report_stale=report_stale)
        lg = loadgen(c, servers, window + 600, "--shared-agent" if conns else "--no-endpoint",
                     "--sessions", str(sessions), *(["--report-nng"] if nng else []))
        mp, ep = m.pid, c.etcd.proc.pid
        t_start = time.monotonic()

        def view_ready():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                t = r.read().decode()
            mm = re.search(r"^master_sessions (\S+)$", t, re.M)
            return mm is not None and float(mm.group(1)) >= sessions
        wait_for(view_ready, 120, 1, "the master's view holds every session")
        if conns:  # the leader's session sync dials every server's agent (TLS)
            wait_for(lambda: len(os.listdir(f"/proc/{mp}/fd")) >= servers, 300, 1,
                     "a connection per server")

        def steady():  # the connection storm is over: reports come in at their rate
            r0, t0 = reports(c), time.monotonic()
            time.sleep(5)
            return (reports(c) - r0) / (time.monotonic() - t0) >= 0.95 * servers
        wait_for(steady, 300, 0, "reports steady at 95 % of the servers' rate")
        if conns:
            # A TCP connection per server is not a TLS session per server: the
            # 10,000 handshakes (mbedTLS bignum code, both ends on these 2
            # cores; the one fake agent process answers them all) go on for a
            # minute or more after the fds are there, and would be counted as
            # the master's steady cost. They run on nng's task threads, which
            # have nothing else to do here (reports come as datagrams, idle
            # connections carry nothing): wait until those threads use under
            # 1 % of a core over two 5 s slices in a row, at most 600 s.
            def nng_task_share_5s():
                def task_cpu():
                    return sum(cpu for name, cpu in threads_cpu(mp).values() if name == "nng:task")
                c0, t0 = task_cpu(), time.monotonic()
                time.sleep(5)
                return (task_cpu() - c0) / (time.monotonic() - t0)
            quiet = 0
            for _ in range(120):
                quiet = quiet + 1 if nng_task_share_5s() < 0.01 else 0
                if quiet == 2:
                    break
        settle_s = time.monotonic() - t_start
        time.sleep(5)  # past the first sync/compaction chores
        rev0, db0, _ = etcd_status(c)
        a0 = auth_counts(c)
        m0, e0, rp0, t0 = cpu_s(mp), cpu_s(ep), reports(c), time.monotonic()
        ps = perf_stat_start(mp, window) if perf else None
        time.sleep(window)
        m1, e1, rp1, t1 = cpu_s(mp), cpu_s(ep), reports(c), time.monotonic()
        pst = perf_stat_read(ps)
        a1 = auth_counts(c)
        rev1, db1, inuse1 = etcd_status(c)
        el = t1 - t0
        out = {"master_cpu": (m1 - m0) / el, "etcd_cpu": (e1 - e0) / el,
               "master_rss": rss_mib(mp), "master_hwm": rss_mib(mp, "VmHWM"),
               "master_fds": len(os.listdir(f"/proc/{mp}/fd")),
               "reports_per_s": (rp1 - rp0) / el, "revs_per_s": (rev1 - rev0) / el,
               "us_per_report": (m1 - m0) / max(1, rp1 - rp0) * 1e6,
               "mac_share": (a1["mac"] - a0["mac"]) / max(1, rp1 - rp0),
               "sig_per_s": (a1["signature"] - a0["signature"]) / el,
               "settle_s": settle_s,
               "db0": db0, "db1": db1, "db_growth_h": (db1 - db0) / el * 3600,
               "inuse1": inuse1,
               "cs_per_report": pst.get("context-switches", float("nan")) / max(1, rp1 - rp0),
               "sys_per_report": pst.get("raw_syscalls:sys_enter", float("nan"))
               / max(1, rp1 - rp0)}
        lg.terminate()
        try:
            rest, _ = lg.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # it printed its RESULT before cleaning up
            lg.kill()
            rest, _ = lg.communicate()
        sent = re.search(r"reports_per_s=(\d+)", rest)
        out["sent_per_s"] = int(sent.group(1)) if sent else 0
        return out


def p9(args):
    print(f"P9: one master, {args.servers} fake servers reporting every 1 s (MACed; as UDP "
          f"datagrams, nng-* columns over 16 nng TLS connections), {args.sessions} sessions, "
          f"window {args.window} s, "
          f"report_stale {args.report_stale}, load average {os.getloadavg()[0]:.1f}", flush=True)
    modes = [("economy", True, True, False), ("no-conns", True, False, False)]
    if args.nng:  # the same with the reports on nng PUB/SUB (TLS): the old transport
        modes.append(("nng-no-conns", True, False, True))
    if args.baseline:
        modes.append(("baseline", False, True, False))
    res = {name: p9_mode(eco, args.servers, args.sessions, args.window, args.report_stale, cn, ng,
                         args.perf)
           for name, eco, cn, ng in modes}
    print()
    cols = [n for n, _, _, _ in modes]
    print(f"{'':42}" + "".join(f"{n:>13}" for n in cols))

    def row(label, key, fmt):
        print(f"{label:42}" + "".join(f"{fmt.format(res[n][key]):>13}" for n in cols))
    row("reports sent / s (lb-loadgen, whole run)", "sent_per_s", "{}")
    row("reports received / s (master)", "reports_per_s", "{:.0f}")
    row("  of them checked by MAC", "mac_share", "{:.3f}")
    row("  checked by signature / s", "sig_per_s", "{:.1f}")
    row("master CPU (share of one core)", "master_cpu", "{:.3f}")
    row("master CPU per report received (us)", "us_per_report", "{:.1f}")
    if args.perf:
        row("master context switches per report", "cs_per_report", "{:.3f}")
        row("master syscalls per report", "sys_per_report", "{:.3f}")
    row("master RSS (MiB)", "master_rss", "{:.1f}")
    row("master peak RSS (MiB)", "master_hwm", "{:.1f}")
    row("master open fds", "master_fds", "{}")
    row("start to steady (s)", "settle_s", "{:.0f}")
    row("etcd CPU (share of one core)", "etcd_cpu", "{:.3f}")
    row("etcd revisions / s", "revs_per_s", "{:.2f}")
    row("etcd db at end (bytes)", "db1", "{}")
    row("etcd db growth (bytes / h)", "db_growth_h", "{:.0f}")
    for n in cols:
        r = res[n]
        g24 = r["db_growth_h"] * 24
        left = QUOTA - r["db1"]
        hours = left / r["db_growth_h"] if r["db_growth_h"] > 0 else float("inf")
        print(f"  {n}: db {r['db1'] / 2**20:.1f} MiB, +{g24 / 2**20:.1f} MiB projected over 24 h; "
              f"2 GiB quota reached in {'never (no growth)' if hours == float('inf') else f'{hours:.1f} h'}")
    e, v = res["economy"], res["no-conns"]
    conn_kib = (e["master_rss"] - v["master_rss"]) * 1024 / args.servers
    print(f"  memory: view (no agent connection) {v['master_rss']:.1f} MiB; agent connections "
          f"+{e['master_rss'] - v['master_rss']:.1f} MiB for {args.servers}, "
          f"{conn_kib:.1f} KiB each (TLS)")
    if args.nng:
        o = res["nng-no-conns"]
        print(f"  reports over UDP vs nng (no-conns): master CPU {v['master_cpu']:.3f} vs "
              f"{o['master_cpu']:.3f} of a core ({v['master_cpu'] / max(o['master_cpu'], 1e-9):.2f}x), "
              f"{v['us_per_report']:.1f} vs {o['us_per_report']:.1f} us per report, RSS "
              f"{v['master_rss']:.1f} vs {o['master_rss']:.1f} MiB")
    print(f"RESULT servers={args.servers} sessions={args.sessions} window_s={args.window} "
          f"master_cpu={e['master_cpu']:.3f} master_us_per_report={e['us_per_report']:.1f} "
          f"reports_received_per_s={e['reports_per_s']:.0f} master_rss_mib={e['master_rss']:.1f} "
          f"view_rss_mib={v['master_rss']:.1f} conn_kib={conn_kib:.1f} "
          f"etcd_cpu={e['etcd_cpu']:.3f} etcd_db_growth_mib_24h={e['db_growth_h'] * 24 / 2**20:.1f} "
          f"etcd_revs_per_s={e['revs_per_s']:.2f} no_conns_master_cpu={v['master_cpu']:.3f} "
          f"no_conns_us_per_report={v['us_per_report']:.1f}"
          + (f" nng_no_conns_master_cpu={res['nng-no-conns']['master_cpu']:.3f} "
             f"nng_no_conns_us_per_report={res['nng-no-conns']['us_per_report']:.1f}"
             if args.nng else "")
          + (f" baseline_etcd_cpu={res['baseline']['etcd_cpu']:.3f} "
             f"baseline_db_growth_mib_24h={res['baseline']['db_growth_h'] * 24 / 2**20:.1f}"
             if args.baseline else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a6 = sub.add_parser("p6")
    a6.add_argument("--servers", type=int, default=1000)
    a6.add_argument("--window", type=float, default=20)
    a6.add_argument("--new", type=int, default=30)
    a6.add_argument("--sticky", type=int, default=60)
    a9 = sub.add_parser("p9")
    a9.add_argument("--servers", type=int, default=10000)
    a9.add_argument("--sessions", type=int, default=100000)
    a9.add_argument("--window", type=float, default=60)
    a9.add_argument("--baseline", action="store_true")
    a9.add_argument("--perf", action="store_true",
                    help="perf stat the master in the window: context switches, syscalls per report")
    a9.add_argument("--nng", action="store_true",
                    help="add a no-conns run with the reports on nng (lb-loadgen --report-nng)")
    a9.add_argument("--report-stale", default="5s")
    args = ap.parse_args()
    (p6 if args.cmd == "p6" else p9)(args)


if __name__ == "__main__":
    main()
