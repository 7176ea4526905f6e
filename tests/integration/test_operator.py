"""The operator role at the master (README "Security model"): `listen` takes
slave requests, `operator_listen` (trusting the operator CA alone) operator
requests, told apart per message by the listener its connection came in on.

A slave certificate at `listen` cannot release or renew another client's
session (an empty client_id, "any client", is operator only): refused with its
reason, logged and counted, the session and its process untouched; the same
release over `operator_listen` with the operator certificate ends it. A slave
certificate at `operator_listen` is refused at TLS (counted) and the master
keeps serving; lbctl finds the operator endpoint in etcd (masters/<id>) and,
given the wrong certificate, says TLS refused. Hostile bytes on
`operator_listen` get specific errors and the daemon keeps running."""
import base64
import os
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import pb
from harness import BIN, Cluster, wait_for


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


@unittest.skipIf(os.environ.get("LBCP_TEST_PLAIN") == "1", "roles need TLS (one CA per role)")
class OperatorRole(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = c = Cluster()
        try:
            c.start_master("master-1")
            cls.sa = c.start_slave("slave-a", "zone-a")
            c.start_agent("agent-a1", "zone-a")
            c.wait_master_sees(1)
        except BaseException:
            for d in c.daemons.values():
                print(f"----- {d.name} log -----\n{d.output()[-3000:]}")
            c.close()
            raise

    @classmethod
    def tearDownClass(cls):
        leftovers = cls.c.close()
        if leftovers:
            raise AssertionError("app processes outlived their agents: " + "; ".join(leftovers))

    def tearDown(self):
        if any(e for _, e in self._outcome.result.errors + self._outcome.result.failures):
            for d in self.c.daemons.values():
                print(f"----- {d.name} log -----\n{d.output()[-3000:]}")

    def counter(self, name):
        st = self.c.stats(self.c.master_rpc)
        self.assertIsNotNone(st, "master stats over listen")
        return st["counters"].get(name, 0)

    def session(self, client):
        rc, out, err = self.c.request(self.sa, "echo", client, location="zone-a")
        self.assertEqual(out["action"], "SERVE", err)
        self.assertTrue(pid_alive(out["pid"]))
        return out["session"], out["pid"]

    def session_key(self, sid):
        return f"{self.c.prefix}sessions/{sid}"

    def wait_gone(self, sid, pid):
        wait_for(lambda: self.session_key(sid) not in self.c.etcd.keys(self.c.prefix), 10, 0.1,
                 f"session {sid} deleted from etcd")
        wait_for(lambda: not pid_alive(pid), 10, 0.1, f"process {pid} stopped")

    def test_a_release_of_any_session_is_operator_only(self):
        c = self.c
        sid, pid = self.session("alice")
        before = self.counter('master_rpc_forbidden_total{rpc="release"}')
        # a slave certificate straight at the master's listen, naming no client
        rc, out = c.rawreq(c.master_rpc, pb.release(sid), role="slave")
        self.assertIn("message=forbidden: operator only", out)
        # an operator certificate on listen has a slave's rights there too
        rc, out = c.rawreq(c.master_rpc, pb.release(sid), role="operator")
        self.assertIn("message=forbidden: operator only", out)
        # renewing any client's session is the same
        rc, out = c.rawreq(c.master_rpc, pb.renew([sid]), role="slave")
        self.assertIn("message=forbidden: operator only", out)
        # a client through a slave (no require_tokens here, so the slave passes
        # the message's empty client_id on): the master's listen refuses it
        rc, out = c.rawreq(self.sa.endpoint, pb.release(sid), role="client")
        self.assertIn("forbidden: operator only", out)
        # another client's name: the session's owner is checked (sessions.c)
        rc, out = c.rawreq(c.master_rpc, pb.release(sid, "mallory"), role="slave")
        self.assertIn("session_reply ok=0", out)
        self.assertIn("belongs to another client", out)
        self.assertEqual(self.counter('master_rpc_forbidden_total{rpc="release"}'), before + 3)
        self.assertGreaterEqual(self.counter('master_rpc_forbidden_total{rpc="renew"}'), 1)
        log = c.daemons["master-1"].output()
        self.assertIn('msg="forbidden" rpc=release role=slave session=' + sid, log)
        time.sleep(0.3)  # a release would have queued its etcd delete and the agent's stop
        self.assertIn(self.session_key(sid), c.etcd.keys(c.prefix))
        self.assertTrue(pid_alive(pid))
        # the owner itself, through listen, may (a slave forwarding its client's release)
        sid2, pid2 = self.session("bob")
        rc, out = c.rawreq(c.master_rpc, pb.release(sid2, "bob"), role="slave")
        self.assertIn("session_reply ok=1", out)
        self.wait_gone(sid2, pid2)
        # the operator on operator_listen ends alice's session and stops its process
        rc, out = c.rawreq(c.master_ops, pb.release(sid), role="operator")
        self.assertIn("session_reply ok=1", out)
        self.wait_gone(sid, pid)

    def test_b_lbctl_release_uses_the_operator_endpoint(self):
        c = self.c
        sid, pid = self.session("carol")
        # lbctl finds the leader's operator endpoint in masters/<id> (no --master)
        r = c.lbctl("release", sid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_gone(sid, pid)
        # with a slave's certificate lbctl is refused at TLS, and says so
        sid, pid = self.session("dave")
        refused = self.counter("wire_tls_refused_total")
        r = c.lbctl("--call-timeout", "3000", "release", sid, role="slave")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"TLS refused by {c.master_ops}: check certificate and CA", r.stderr)
        self.assertIn(self.session_key(sid), c.etcd.keys(c.prefix))
        self.assertTrue(pid_alive(pid))
        # without a certificate of its own at all
        r = c.lbctl("--call-timeout", "3000", "release", sid, role=None)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.session_key(sid), c.etcd.keys(c.prefix))
        wait_for(lambda: self.counter("wire_tls_refused_total") > refused, 10, 0.2,
                 "the refusal counted at the master")
        r = c.lbctl("release", sid, check=True)
        self.wait_gone(sid, pid)

    def test_c_slave_certificate_refused_at_operator_listen(self):
        c = self.c
        refused = self.counter("wire_tls_refused_total")
        rc, out = c.rawreq(c.master_ops, pb.stats(), timeout_ms=3000, role="slave")
        self.assertEqual(rc, 1)
        self.assertIn(f"no answer: TLS refused by {c.master_ops}", out)
        for role in ("agent", "client", "foreign", "expired"):
            rc, out = c.rawreq(c.master_ops, pb.stats(), timeout_ms=3000, role=role)
            self.assertIn("no answer", out, role)
        wait_for(lambda: self.counter("wire_tls_refused_total") >= refused + 5, 10, 0.2,
                 "five refusals counted")
        # the master keeps serving: operators there, slaves on listen
        rc, out = c.rawreq(c.master_ops, pb.stats(), role="operator")
        self.assertEqual(out, f"body={20}")
        sid, pid = self.session("erin")
        c.lbctl("release", sid, check=True)
        self.wait_gone(sid, pid)

    def test_d_selection_is_not_an_operator_rpc(self):
        c = self.c
        sessions = c.etcd.keys(c.prefix + "sessions/")
        rc, out = c.rawreq(c.master_ops, pb.selection("frank", "echo", "zone-a"), role="operator")
        self.assertIn("message=forbidden: slaves only", out)
        self.assertGreaterEqual(self.counter('master_rpc_forbidden_total{rpc="selection"}'), 1)
        time.sleep(0.3)  # a session it had made would be in etcd by now
        self.assertEqual(c.etcd.keys(c.prefix + "sessions/"), sessions)
        # an explain (a dry run) is read-only and open to operators
        r = c.lbctl("explain", "--app", "echo", "--client", "frank", "--location", "zone-a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("agent-a1", r.stdout)

    def test_e_hostile_bytes_on_operator_listen(self):
        c = self.c
        before = self.counter('master_rpc_errors_total{kind="decode"}')
        rc, out = c.rawreq(c.master_ops, b"\xff\xfe garbage \x00\x01", role="operator")
        self.assertRegex(out, r"^error code=\d+ message=\S.+")
        self.assertNotIn("forbidden", out)
        # over max_message (256 KiB) but under the transport limit: a specific error
        big = pb.envelope(pb.RELEASE_REQUEST, pb.field(1, "x" * (300 * 1024)))
        rc, out = c.rawreq(c.master_ops, big, role="operator")
        self.assertRegex(out, r"^error code=\d+ message=message of \d+ bytes is over the limit of "
                         r"262144")
        # an envelope of the wrong kind
        rc, out = c.rawreq(c.master_ops, pb.envelope(pb.SERVER_LOAD, b""), role="operator")
        self.assertIn("unexpected message", out)
        self.assertGreaterEqual(self.counter('master_rpc_errors_total{kind="decode"}'), before + 2)
        # slow peers: connections that never finish (or never start) a TLS
        # handshake hold nothing the operator needs
        host, port = c.master_ops.rsplit("//", 1)[1].rsplit(":", 1)
        slow = [socket.create_connection((host, int(port)), timeout=5) for _ in range(8)]
        for i, s in enumerate(slow):
            if i % 2:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")  # half a ClientHello, then silence
        try:
            self.assertTrue(c.daemons["master-1"].alive())
            rc, out = c.rawreq(c.master_ops, pb.stats(), role="operator")
            self.assertEqual(out, f"body={20}")
        finally:
            for s in slow:
                s.close()

    def test_f_release_reaches_the_new_leader_after_a_kill(self):
        """Runs last (it kills master-1): a standby publishes its own operator
        endpoint, and after the leader's SIGKILL lbctl finds the new leader's
        there and releases a session the old leader made."""
        c = self.c
        sid, pid = self.session("grace")
        old_ops = c.master_ops
        c.start_master("master-2")
        new_ops = c.master_ops
        self.assertNotEqual(old_ops, new_ops)
        c.daemons["master-1"].stop(signal.SIGKILL)

        def leader():
            ans = c.etcd.call("kv/range", {"key": base64.b64encode(
                (c.prefix + "leader").encode()).decode()})
            kvs = ans.get("kvs", [])
            return base64.b64decode(kvs[0]["value"]).decode() if kvs else ""
        wait_for(lambda: leader() == "master-2", 15, 0.1, "master-2 leading")
        time.sleep(1)  # the new leader's view has loaded the sessions
        self.assertIn(self.session_key(sid), c.etcd.keys(c.prefix))
        r = c.lbctl("release", sid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_gone(sid, pid)
        self.assertIn("session released", c.daemons["master-2"].output())


class OperatorConfig(unittest.TestCase):
    def test_operator_listen_needs_the_operator_ca(self):
        """operator_listen over TLS without tls.operator_peer_ca is a config
        error naming file:line:key: falling back to peer_ca would trust slaves."""
        text = ("id: m\nlisten: tls+tcp://127.0.0.1:1\n"
                "operator_listen: tls+tcp://127.0.0.1:2\n"
                "tls: {ca: /nonexistent/ca.pem, cert: /nonexistent/c.pem, key: /nonexistent/k}\n")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        try:
            r = subprocess.run([os.path.join(BIN, "lb-master"), "--config", f.name],
                               capture_output=True, text=True, timeout=20)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{f.name}:3: operator_listen: needs tls.operator_peer_ca", r.stderr)


if __name__ == "__main__":
    unittest.main()
