"""Load reports over authenticated UDP datagrams (issue 8, P9): a master listens
for report datagrams on report_udp_listen (default: report_listen's host and
port) and advertises it in masters/<id>; agents that know every master's pair
key and datagram endpoint send each report as one datagram per master and not
on nng. Over UDP a report is admitted only by a valid MAC for this master:
forged, wrong-master, signature-only, unknown-server, stale, replayed,
malformed, truncated and oversized datagrams are refused, counted by reason and
change nothing, and a flood of garbage does not stop real reports. A report
too big for one datagram goes on nng, whole.
report_udp_listen: "" keeps every report on nng TLS. An agent dials its nng
report connections only while a report needs them and closes them after
report_nng_idle of datagram-only reports: a master keeps no idle TLS
connection per agent."""
import base64
import json
import os
import signal
import socket
import subprocess
import time
import unittest

import pb
from harness import BIN, ClusterTest, wait_for

MASTER_KX_KEY = 401    # MasterInfo.report_kx_key
MASTER_UDP_EP = 440    # MasterInfo.report_udp_endpoint


class ReportUdp(ClusterTest):

    def counters(self):
        st = self.c.stats(self.c.master_rpc)
        return st["counters"] if st else {}

    def count(self, name):
        return self.counters().get(name, 0)

    def via(self, transport):
        return self.count(f'master_agent_reports_total{{transport="{transport}"}}')

    def refused(self, reason):
        return self.count(f'master_reports_refused_total{{reason="{reason}"}}')

    def master_record(self):
        key = (self.c.prefix + "masters/master-1").encode()
        ans = self.c.etcd.call("kv/range", {"key": base64.b64encode(key).decode()})
        return pb.decode(base64.b64decode(ans["kvs"][0]["value"]))

    def server(self, sid):
        r = self.c.lbctl("servers", "-o", "json", check=True)
        return next(s for s in json.loads(r.stdout) if s["id"] == sid)

    def udp_url(self):
        return "udp://" + self.c.master_report.split("://", 1)[1]

    @staticmethod
    def conns(report_url):
        """Established TCP connections agents hold to the report port of
        report_url (ss -p names the process: a slave's do not count)."""
        port = report_url.rsplit(":", 1)[1]
        out = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
                             check=True, capture_output=True, text=True).stdout
        return len([l for l in out.splitlines() if '"lb-agent"' in l])

    def test_a_report_over_one_datagram_goes_on_nng(self):
        # 40 apps with long names: every report carries an AppLoad per app,
        # over WIRE_UDP_MAX (1,400 bytes, never fragmented on purpose), so the
        # agent publishes it on nng instead, and the master gets every one
        c = self.c
        c.start_master()
        echo = [os.path.join(BIN, "lb-echo"), "--port", "{port}", "--session", "{session}"]
        apps = {f"app-{i:02d}-{'n' * 40}": {"argv": echo, "ready_timeout": "5s"}
                for i in range(40)}
        big = c.start_agent("agent-big", "zone-a", apps=apps)
        c.start_agent("agent-small", "zone-a")
        wait_for(lambda: self.via("udp") >= 10, 15, what="the small agent's reports over UDP")
        wait_for(lambda: c.stats(big.endpoint)["counters"].get(
            "agent_reports_oversized_datagram_total", 0) >= 3, 15, what="oversized reports")
        ac0 = c.stats(big.endpoint)["counters"]
        n0 = self.via("nng")
        time.sleep(1.0)  # 5 reports/s from the big agent
        ac1 = c.stats(big.endpoint)["counters"]
        over = (ac1.get("agent_reports_oversized_datagram_total", 0)
                - ac0.get("agent_reports_oversized_datagram_total", 0))
        self.assertGreaterEqual(over, 3)
        # each went on nng and arrived; none was cut into a datagram
        self.assertGreaterEqual(self.via("nng") - n0, over - 1)
        self.assertEqual(ac1.get("agent_report_datagrams_total", 0),
                         ac0.get("agent_report_datagrams_total", 0))
        self.assertEqual(self.refused("oversized"), 0)
        # the master has the big agent's load (its per-app ready counts come
        # from the reports), every app in it
        wait_for(lambda: len(self.server("agent-big").get("ready", {})) == 40, 5,
                 what="the big agent's 40 apps in its load")

    def test_agents_report_over_udp_not_nng(self):
        c = self.c
        c.start_master()
        slave = c.start_slave("slave-a", "zone-a")
        a1 = c.start_agent("agent-a1", "zone-a")
        c.start_agent("agent-a2", "zone-a")
        # the record advertises the datagram endpoint: report_listen's host and port
        self.assertEqual(self.master_record()[MASTER_UDP_EP][0].decode(), self.udp_url())
        wait_for(lambda: self.via("udp") >= 10, 15, what="reports over UDP")
        # from here on every agent report comes as a datagram, none on nng
        n0, u0 = self.via("nng"), self.via("udp")
        time.sleep(1.0)  # 2 agents x 5 reports/s
        self.assertGreaterEqual(self.via("udp") - u0, 5)
        self.assertEqual(self.via("nng"), n0)
        ac = c.stats(a1.endpoint)["counters"]  # the agent's side: sent, none failed
        self.assertGreater(ac.get("agent_report_datagrams_total", 0), 0)
        self.assertEqual(ac.get("agent_report_datagram_errors_total", 0), 0)
        # selection works as before and the launch's immediate report (UDP) counts it
        c.wait_master_sees(2)
        _, out, _ = c.request(slave, "echo", "client-udp-1", location="zone-a")
        wait_for(lambda: self.server(out["server"])["sessions"] == 1, 10,
                 what="the launch reported")
        for s in ("agent-a1", "agent-a2"):
            self.assertEqual(self.server(s)["status"], "UP")
        self.assertEqual(self.refused("no_mac") + self.refused("bad_mac"), 0)

    def test_udp_agents_keep_no_nng_connection(self):
        """Agents started with their master known on UDP never dial nng: the
        master holds no connection from them, launches' reports included."""
        c = self.c
        c.start_master()
        wait_for(lambda: c.prefix + "masters/master-1" in c.etcd.keys(c.prefix), 10,
                 what="the master's record")
        agents = [c.start_agent(f"agent-a{i}", "zone-a") for i in (1, 2)]
        slave = c.start_slave("slave-a", "zone-a")
        c.wait_master_sees(2)
        _, out, _ = c.request(slave, "echo", "client-lazy-1", location="zone-a")
        wait_for(lambda: self.server(out["server"])["sessions"] == 1, 10,
                 what="the launch reported")
        u0 = self.via("udp")
        time.sleep(1.0)
        self.assertGreaterEqual(self.via("udp") - u0, 5)
        self.assertEqual(self.via("nng"), 0)
        self.assertEqual(self.conns(c.master_report), 0)
        for a in agents:
            self.assertEqual(c.stats(a.endpoint)["counters"].get(
                "agent_report_nng_dials_total", 0), 0)

    def test_first_nng_report_after_dial_not_lost(self):
        """nng PUB drops what is sent before its connection is up: the report
        that makes the agent dial waits for it. With report_interval 1h the
        agent reports only at start and on events (here SIGHUP), so each must
        arrive, the first on a connection dialed for it."""
        c = self.c
        c.start_master(report_udp_listen="", report_stale="120s")
        wait_for(lambda: c.prefix + "masters/master-1" in c.etcd.keys(c.prefix), 10,
                 what="the master's record")
        a = c.start_agent("agent-a1", "zone-a", report_interval="1h")
        wait_for(lambda: self.via("nng") >= 1, 10, what="the first report, sent at dial")
        self.assertEqual(self.via("nng"), 1)
        os.kill(a.pid, signal.SIGHUP)
        wait_for(lambda: self.via("nng") >= 2, 10, what="the reload's report")
        self.assertEqual(c.stats(a.endpoint)["counters"].get(
            "agent_report_nng_dials_total", 0), 1)

    def test_agent_moves_from_nng_to_udp(self):
        """The agent starts before any master: with master-2 not yet known on
        UDP every report goes over nng (and its connection to master-1 stays,
        idle time or not); once master-2 is up too, reports move to UDP and the
        nng connections close."""
        c = self.c
        m1_report, m2_report = c.url(), c.url()  # the agent dials at its first report
        c.master_report = m1_report
        a = c.start_agent("agent-a1", "zone-a", report=[m1_report, m2_report],
                          report_nng_idle="1s")
        c.start_master("master-1", report_listen=m1_report)
        wait_for(lambda: self.via("nng") >= 5, 15, what="reports over nng to master-1")
        self.assertEqual(self.conns(m1_report), 1)
        time.sleep(1.5)  # past report_nng_idle: still needed, still dialed
        self.assertEqual(self.conns(m1_report), 1)
        self.assertEqual(self.via("udp"), 0)
        m1_rpc = c.master_rpc
        c.start_master("master-2", report_listen=m2_report)
        c.master_rpc, c.master_report = m1_rpc, m1_report
        wait_for(lambda: self.via("udp") >= 5, 15, what="reports over UDP to master-1")
        wait_for(lambda: self.conns(m1_report) + self.conns(m2_report) == 0, 10, 0.1,
                 what="the agent's nng connections closed")
        n0, u0 = self.via("nng"), self.via("udp")
        time.sleep(1.0)
        self.assertEqual(self.via("nng"), n0)
        self.assertGreaterEqual(self.via("udp") - u0, 3)
        ac = c.stats(a.endpoint)["counters"]
        self.assertEqual(ac.get("agent_report_nng_closes_total", 0), 1)
        self.assertEqual(self.server("agent-a1")["status"], "UP")

    def test_udp_off_reports_over_nng(self):
        c = self.c
        c.start_master(report_udp_listen="")
        c.start_agent("agent-a1", "zone-a", report_nng_idle="1s")
        self.assertNotIn(MASTER_UDP_EP, self.master_record())
        wait_for(lambda: self.via("nng") >= 10, 15, what="reports over nng")
        self.assertEqual(self.via("udp"), 0)
        # needed by every report, the connection stays past report_nng_idle
        self.assertEqual(self.conns(c.master_report), 1)
        self.assertEqual(self.server("agent-a1")["status"], "UP")
        # nothing listens on the datagram port: a datagram sent there is not taken
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\x08\x01", ("127.0.0.1", int(self.udp_url().rsplit(":", 1)[1])))
        time.sleep(0.3)
        self.assertEqual(self.refused("malformed"), 0)

    def send(self, server, key_of, seq, sessions, mac_for=None, sig=False, at_ms=None,
             dump=None):
        args = [os.path.join(BIN, "lb-sendreport"), self.udp_url(), "--server", server,
                "--seq", str(seq), "--sessions", str(sessions),
                "--key", os.path.join(self.c.dir, key_of + "-state", "identity.key")]
        if mac_for:
            args += ["--mac-for", mac_for]
        if not sig:
            args.append("--no-sig")
        if at_ms is not None:
            args += ["--at-ms", str(at_ms)]
        if dump:
            args += ["--dump", dump]
        subprocess.run(args, check=True, timeout=30)

    def test_hostile_datagrams_refused_and_counted(self):
        c = self.c
        # a1 is stopped once its reports are in (report_stale and its lease long:
        # it stays UP), so a forged report, if applied, would stay visible
        m = c.start_master(report_stale="120s")
        a1 = c.start_agent("agent-a1", "zone-a", lease_ttl="60s")
        self.addCleanup(lambda: a1.alive() and os.kill(a1.pid, signal.SIGCONT))
        c.start_agent("agent-a2", "zone-a")
        wait_for(lambda: self.server("agent-a1").get("ready") is not None, 15,
                 what="a1's first report applied")
        os.kill(a1.pid, signal.SIGSTOP)
        time.sleep(0.5)  # a report a1 had in flight lands now
        kx = self.master_record()[MASTER_KX_KEY][0].hex()
        seq = int(time.time() * 1000) * 1000 + 10**9  # above a1's own seqs
        self.assertEqual(self.server("agent-a1")["sessions"], 0)

        cases = [  # (reason, sender args)
            ("bad_mac", dict(key_of="agent-a2", mac_for=kx)),    # a2's pair key, a1's name
            ("no_mac", dict(key_of="agent-a1", mac_for="09" * 32)),  # for another master
            ("no_mac", dict(key_of="agent-a1", sig=True)),  # a valid signature: not on UDP
            ("stale", dict(key_of="agent-a1", mac_for=kx, at_ms=int(time.time() * 1000)
                           - 3600 * 1000)),
        ]
        for i, (reason, kw) in enumerate(cases):
            before = self.refused(reason)
            self.send("agent-a1", seq=seq, sessions=70 + i, **kw)
            wait_for(lambda: self.refused(reason) > before, 10, what=f"{reason} refused")
        before = self.refused("unknown_server")
        self.send("no-such-server", "agent-a1", seq, 5, mac_for=kx)
        wait_for(lambda: self.refused("unknown_server") > before, 10, what="unknown refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 0)

        # a valid one (a1's pair key, MAC for us) is applied; its bytes replayed are not
        cap = os.path.join(c.dir, "valid.dgram")
        self.send("agent-a1", "agent-a1", seq, 9, mac_for=kx, dump=cap)
        wait_for(lambda: self.server("agent-a1")["sessions"] == 9, 10, what="valid datagram")
        with open(cap, "rb") as f:
            good = f.read()
        port = int(self.udp_url().rsplit(":", 1)[1])
        addr = ("127.0.0.1", port)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(u.close)
        r0 = self.refused("replayed")
        u.sendto(good, addr)
        wait_for(lambda: self.refused("replayed") > r0, 10, what="replay refused")
        for reason, dgram in (("malformed", os.urandom(200)),
                              ("malformed", good[:len(good) // 2]),  # truncated
                              ("oversized", os.urandom(3000))):
            before = self.refused(reason)
            u.sendto(dgram, addr)
            wait_for(lambda: self.refused(reason) > before, 10, what=f"{reason} refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 9)
        self.assertEqual(self.server("agent-a1")["status"], "UP")

        # a flood of garbage: every datagram is refused or dropped by the
        # kernel (counted), the master lives on and real reports still apply
        cnt = self.counters()
        mal0 = cnt.get('master_reports_refused_total{reason="malformed"}', 0)
        drop0 = cnt.get("master_udp_reports_dropped_total", 0)
        junk = os.urandom(300)
        for _ in range(50000):
            u.sendto(junk, addr)

        def all_accounted():
            k = self.counters()
            return (k.get('master_reports_refused_total{reason="malformed"}', 0) - mal0 +
                    k.get("master_udp_reports_dropped_total", 0) - drop0) >= 50000
        wait_for(all_accounted, 20, 0.5, what="every flood datagram refused or counted dropped")
        self.send("agent-a1", "agent-a1", seq + 1, 10, mac_for=kx)
        wait_for(lambda: self.server("agent-a1")["sessions"] == 10, 10,
                 what="a valid report applied after the flood")
        self.assertTrue(m.alive())
        self.assertEqual(self.server("agent-a2")["status"], "UP")
        # refusals are logged at most once a minute: per server, and once for
        # the datagrams no server can be held to (a flood cannot fill the log)
        log = m.output().splitlines()
        self.assertLessEqual(len([l for l in log if "load report datagram refused" in l]), 1)
        self.assertLessEqual(len([l for l in log if "load report refused" in l
                                  and "server=agent-a1" in l]), 1)


if __name__ == "__main__":
    unittest.main()
