"""Per-agent identity of load reports (issue 9, item 2; made cheap for issue 8
P9): an agent's Ed25519 key is published in its servers/<id> record; a master
applies a report for server X only when it carries a MAC under the pair key of
X's key and the master's X25519 report key (masters/<id> report_kx_key), or
else a signature by X's key, and refuses (counts, logs once a minute per
server) unsigned, mis-MACed, mis-signed and replayed ones, even when they come
over a valid agent TLS certificate. Real agents' reports are checked by MAC."""
import base64
import json
import os
import signal
import subprocess
import time
import unittest

import pb
from harness import BIN, ClusterTest, wait_for

MASTER_KX_KEY = 401  # MasterInfo.report_kx_key


class ReportIdentity(ClusterTest):
    tls = True

    def setUp(self):
        super().setUp()
        # a failed setUp gets no tearDown: close the cluster here, or its
        # daemons (a stopped agent among them) would outlive the test
        try:
            self.start_cluster()
        except BaseException:
            self.tearDown()
            raise

    def start_cluster(self):
        c = self.c
        # a1 is stopped once its reports are in (report_stale and its lease long:
        # it stays UP and registered), so a forged report, if applied, would stay
        # visible for the whole test
        self.a1 = None
        c.start_master(report_stale="120s")
        a1 = c.start_agent("agent-a1", "zone-a", lease_ttl="60s")
        c.start_agent("agent-a2", "zone-a")
        wait_for(lambda: self.server("agent-a1").get("ready") is not None, 15,
                 what="a1's first report applied")
        os.kill(a1.pid, signal.SIGSTOP)
        self.a1 = a1
        time.sleep(0.5)  # a report a1 had in flight lands now, not later

    def tearDown(self):
        if self.a1 is not None:
            self.resume(self.a1.pid)  # so that it stops at SIGTERM, at once
        super().tearDown()

    @staticmethod
    def resume(pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:  # the cluster closed it already
            pass

    def server(self, sid):
        r = self.c.lbctl("servers", "-o", "json", check=True)
        return next(s for s in json.loads(r.stdout) if s["id"] == sid)

    def refused(self, reason):
        st = self.c.stats(self.c.master_rpc)
        return st["counters"].get(f'master_reports_refused_total{{reason="{reason}"}}', 0)

    def authenticated(self, by):
        st = self.c.stats(self.c.master_rpc)
        return st["counters"].get(f'master_reports_authenticated_total{{by="{by}"}}', 0)

    def master_kx_key(self):
        """master-1's X25519 report key, from its masters/ record in etcd."""
        key = (self.c.prefix + "masters/master-1").encode()
        ans = self.c.etcd.call("kv/range", {"key": base64.b64encode(key).decode()})
        rec = pb.decode(base64.b64decode(ans["kvs"][0]["value"]))
        kx = rec[MASTER_KX_KEY][0]
        self.assertEqual(len(kx), 32)
        return kx.hex()

    def send(self, server, key_of, seq, sessions, count=1, unsigned=False, mac_for=None,
             sig=True):
        """Publishes a report for server signed with agent key_of's identity key
        (and/or MACed with its pair key for the master whose X25519 key is
        mac_for), over agent-a2's (valid) TLS credentials."""
        args = [os.path.join(BIN, "lb-sendreport"), self.c.master_report, "--server", server,
                "--seq", str(seq), "--sessions", str(sessions), "--count", str(count)]
        if unsigned:
            args.append("--unsigned")
        else:
            args += ["--key", os.path.join(self.c.dir, key_of + "-state", "identity.key")]
        if mac_for:
            args += ["--mac-for", mac_for]
        if not sig:
            args.append("--no-sig")
        subprocess.run(args, check=True, timeout=30, env=self.c.caller_env("agent"))

    def test_reports_are_applied_only_from_the_server_they_name(self):
        c = self.c
        self.assertEqual(self.server("agent-a1")["sessions"], 0)
        seq = int(time.time() * 1000) * 1000  # above a1's own seqs: they start at its start
        # agent-a2's valid certificate and its own valid key, a report for a1
        self.send("agent-a1", "agent-a2", seq, 77)
        wait_for(lambda: self.refused("bad_signature") >= 1, 10, what="forged report refused")
        self.send("agent-a1", None, seq, 78, unsigned=True)
        wait_for(lambda: self.refused("unsigned") >= 1, 10, what="unsigned report refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 0)
        self.assertEqual(self.server("agent-a1")["status"], "UP")

        # MACed (no signature) with a2's pair key for this master: refused
        kx = self.master_kx_key()
        self.send("agent-a1", "agent-a2", seq, 79, mac_for=kx, sig=False)
        wait_for(lambda: self.refused("bad_mac") >= 1, 10, what="forged MAC refused")
        # a1's MAC for another master (a key that is not this master's) and no
        # signature: nothing this master can check
        other = "09" * 32
        self.send("agent-a1", "agent-a1", seq, 80, mac_for=other, sig=False)
        wait_for(lambda: self.refused("unsigned") >= 2, 10, what="MAC for another master refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 0)

        # signed with a1's key: applied; then a newer one; then the first again
        self.send("agent-a1", "agent-a1", seq, 7)
        wait_for(lambda: self.server("agent-a1")["sessions"] == 7, 10, what="signed report applied")
        self.send("agent-a1", "agent-a1", seq + 1, 8)
        wait_for(lambda: self.server("agent-a1")["sessions"] == 8, 10, what="newer report applied")
        self.send("agent-a1", "agent-a1", seq, 7)
        wait_for(lambda: self.refused("replayed") >= 1, 10, what="replay refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 8)

        # MACed with a1's pair key, no signature: applied; the same bytes again
        # (sent twice): refused as a replay
        self.send("agent-a1", "agent-a1", seq + 2, 9, count=2, mac_for=kx, sig=False)
        wait_for(lambda: self.server("agent-a1")["sessions"] == 9, 10, what="MACed report applied")
        wait_for(lambda: self.refused("replayed") >= 2, 10, what="MACed replay refused")
        self.assertEqual(self.server("agent-a1")["sessions"], 9)

        # a2's own signed reports go on being applied; the refusals for a1 were
        # logged once (once a minute per server), escaped, naming the reason
        before = c.stats(c.master_rpc)["counters"]['master_load_reports_total{from="agent"}']
        wait_for(lambda: c.stats(c.master_rpc)["counters"]['master_load_reports_total{from="agent"}']
                 > before + 2, 10, what="a2 still reporting")
        self.assertEqual(self.server("agent-a2")["status"], "UP")
        self.assertEqual(self.refused("bad_signature"), 1)
        self.assertEqual(self.refused("bad_mac"), 1)
        # real agents know the master's key from etcd: their reports are checked
        # by MAC, not by the signature (cheap for the master)
        mac0, sig0 = self.authenticated("mac"), self.authenticated("signature")
        wait_for(lambda: self.authenticated("mac") > mac0 + 2, 10, what="a2's reports MACed")
        self.assertEqual(self.authenticated("signature"), sig0)
        log = [l for l in c.daemons["master-1"].output().splitlines()
               if "load report refused" in l]
        self.assertEqual(len(log), 1, log)
        self.assertIn("server=agent-a1", log[0])
        self.assertIn("reason=bad_signature", log[0])


if __name__ == "__main__":
    unittest.main()
