"""Authenticated clients (issue 9 item 3): a slave with require_tokens checks
each client's signed token before anything reaches a master. Each failure gets
its own reason, is counted and launches nothing; a valid token is served;
release and renew act as the token's client, so another client cannot end or
keep alive a session; the HTTP API answers 401/403 for the same failures; the
Python client with a token is served. One cluster per test (TLS by default)."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BIN, ClusterTest, free_port, pid_alive, wait_for
from test_api import call

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import lbcp  # noqa: E402


def lbctl_out(*args):
    r = subprocess.run([os.path.join(BIN, "lbctl"), *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class TokensTest(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        self.keys = tempfile.mkdtemp(prefix="lbcp-tokkeys-", dir=c.dir)
        self.key = os.path.join(self.keys, "issuer")
        self.other = os.path.join(self.keys, "other")
        lbctl_out("token", "keygen", "--out", self.key, "--kid", "k1")
        lbctl_out("token", "keygen", "--out", self.other, "--kid", "k2")  # not given to the slave
        c.start_master()
        self.port = free_port()
        self.slave = c.start_slave("slave-a", "zone-a", api_listen=f"127.0.0.1:{self.port}",
                                   require_tokens=True, token_public_keys=[self.key + ".pub"])
        self.agent = c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)
        self.api = f"http://127.0.0.1:{self.port}"

    def token(self, client, apps="echo", ttl="1h", key=None):
        return lbctl_out("token", "issue", "--client", client, "--apps", apps, "--ttl", ttl,
                         "--key", key or self.key)

    def sessions(self):
        return [k for k in self.c.etcd.keys(self.c.prefix) if "/sessions/" in k]

    def counters(self, addr):
        return self.c.stats(addr)["counters"]

    def failures(self):
        """(label, client, token, reason) for each way a token can fail."""
        good = self.token("alice")
        head, payload, sig = good.split(".")
        forged = ".".join([head, payload, ("A" if sig[0] != "A" else "B") + sig[1:]])
        expired = self.token("alice", ttl="1ms")
        time.sleep(0.05)
        return [
            ("no_token", "alice", "", "unauthenticated: no token"),
            ("malformed", "alice", "lbt1.%%%.x", "unauthenticated: malformed token"),
            ("bad_signature", "alice", forged, "unauthenticated: bad signature"),
            ("expired", "alice", expired, "unauthenticated: token expired"),
            ("unknown_key", "alice", self.token("alice", key=self.other),
             "unauthenticated: unknown key id k2"),
            ("app", "alice", self.token("alice", apps="chat"), "forbidden: app echo not in token"),
            ("client_id", "mallory", good, "forbidden: client_id mallory does not match token"),
        ]

    def test_each_failure_has_its_reason_and_launches_nothing(self):
        for label, client, tok, reason in self.failures():
            rc, out, err = self.c.request(self.slave, "echo", client, expect_ok=False,
                                          extra=("--token", tok))
            self.assertEqual(rc, 1, (label, out, err))
            self.assertEqual(out["action"], "REJECT", label)
            self.assertTrue(out["reason"].startswith(reason), (label, out["reason"]))
        # nothing reached the master, nothing launched, nothing stored
        master = self.counters(self.c.master_rpc)
        self.assertEqual(sum(v for k, v in master.items()
                             if k.startswith("master_selections_total")), 0, master)
        self.assertEqual(master.get('master_launches_total{result="ok"}', 0), 0)
        self.assertEqual(self.sessions(), [])
        self.assertEqual(self.c.tagged_pids(apps_only=True), [])
        slave = self.counters(self.slave.endpoint)
        for label, *_ in self.failures():
            self.assertEqual(slave.get(f'slave_token_rejects_total{{reason="{label}"}}'), 1, label)
        log = self.slave.output()
        self.assertIn('msg="token refused"', log)
        self.assertIn('reason="forbidden: client_id mallory does not match token (alice)"', log)
        # the slave keeps serving: a valid token now gets its process
        rc, out, err = self.c.request(self.slave, "echo", "alice",
                                      extra=("--token", self.token("alice")))
        self.assertEqual((rc, out["action"], out["server"]), (0, "SERVE", "agent-a"), err)
        self.assertTrue(pid_alive(out["pid"]))

    def reload_keys(self, *pubs):
        """Rewrites the slave's token_public_keys, SIGHUPs it, waits for the outcome."""
        path = os.path.join(self.c.dir, "slave-a.yaml")
        with open(path) as f:
            lines = f.read().splitlines()
        i = lines.index("token_public_keys:")
        while i + 1 < len(lines) and lines[i + 1].startswith("  - "):
            del lines[i + 1]
        lines[i + 1:i + 1] = [f'  - "{p}"' for p in pubs]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        before = self.counters(self.slave.endpoint)
        os.kill(self.slave.pid, signal.SIGHUP)
        done = lambda: {k: v for k, v in self.counters(self.slave.endpoint).items()
                        if k.startswith("config_reloads_total")} != \
            {k: v for k, v in before.items() if k.startswith("config_reloads_total")}
        wait_for(done, 10, 0.1, what="config reloaded")

    def test_sighup_rotates_issuer_keys(self):
        c = self.c
        t1, t2 = self.token("alice"), self.token("alice", key=self.other)
        rc, out, _ = c.request(self.slave, "echo", "alice", expect_ok=False, extra=("--token", t2))
        self.assertEqual((out["action"], out["reason"]), ("REJECT", "unauthenticated: unknown key id k2"))
        rc, out, err = c.request(self.slave, "echo", "alice", extra=("--token", t1))
        self.assertEqual(out["action"], "SERVE", err)  # t1 is in the verified-token cache now
        # k2 added: accepted after the reload, k1 still
        self.reload_keys(self.key + ".pub", self.other + ".pub")
        for tok in (t2, t1):
            rc, out, err = c.request(self.slave, "echo", "alice", extra=("--token", tok))
            self.assertEqual(out["action"], "SERVE", err)
        # k1 removed: its token, cached a moment ago, is refused with its reason
        self.reload_keys(self.other + ".pub")
        rc, out, _ = c.request(self.slave, "echo", "alice", expect_ok=False, extra=("--token", t1))
        self.assertEqual((rc, out["action"]), (1, "REJECT"), out)
        self.assertEqual(out["reason"], "unauthenticated: unknown key id k1")
        rc, out, err = c.request(self.slave, "echo", "alice", extra=("--token", t2))
        self.assertEqual(out["action"], "SERVE", err)
        # a key file that does not load: the reload is rejected whole, k2 stays
        self.reload_keys(self.other + ".pub", os.path.join(self.keys, "missing.pub"))
        st = self.counters(self.slave.endpoint)
        self.assertEqual(st.get('config_reloads_total{result="rejected"}'), 1, st)
        self.assertEqual(st.get('config_reloads_total{result="ok"}'), 2, st)
        rc, out, err = c.request(self.slave, "echo", "alice", extra=("--token", t2))
        self.assertEqual(out["action"], "SERVE", err)
        rc, out, _ = c.request(self.slave, "echo", "alice", expect_ok=False, extra=("--token", t1))
        self.assertEqual(out["reason"], "unauthenticated: unknown key id k1")
        log = self.slave.output()
        self.assertIn('changed="token_public_keys"', log)
        self.assertIn("missing.pub is not an lbcp-ed25519-public key", log)
        self.assertTrue(self.slave.alive())

    def test_another_client_cannot_release_or_renew(self):
        alice, bob = self.token("alice"), self.token("bob")
        st, _, j = call(self.api + "/v1/request", "POST",
                        {"app": "echo", "client_id": "alice", "token": alice})
        self.assertEqual((st, j["action"]), (200, "SERVE"), j)
        sess, pid = j["session"], j["pid"]
        url = f"{self.api}/v1/sessions/{sess}"
        wait_for(lambda: self.c.prefix + "sessions/" + sess in self.sessions(), 10,
                 what="session stored")
        # bob's own token names bob: the master sees bob, not the session's owner
        for method in ("DELETE", "PUT"):
            st, _, r = call(url + "?client_id=bob", method,
                            headers={"Authorization": "Bearer " + bob})
            self.assertIn(st, (403, 404), (method, r))
            self.assertFalse(r.get("ok"), r)
            # claiming to be alice with bob's token is refused at the slave
            st, _, r = call(url + "?client_id=alice", method,
                            headers={"Authorization": "Bearer " + bob})
            self.assertEqual((st, r["error"]["code"]), (403, "forbidden"), r)
            self.assertIn("client_id alice does not match token (bob)", r["error"]["reason"])
            st, _, r = call(url + "?client_id=alice", method)  # no token
            self.assertEqual((st, r["error"]["code"]), (401, "unauthenticated"), r)
        self.assertIn(self.c.prefix + "sessions/" + sess, self.sessions())
        self.assertTrue(pid_alive(pid))
        # alice's own token renews and releases it
        hdr = {"Authorization": "Bearer " + alice}
        st, _, r = call(url + "?client_id=alice", "PUT", headers=hdr)
        self.assertEqual((st, r.get("ok")), (200, True), r)
        st, _, r = call(url + "?client_id=alice", "DELETE", headers=hdr)
        self.assertEqual((st, r.get("ok")), (200, True), r)
        wait_for(lambda: not self.sessions(), 10, what="session released")
        wait_for(lambda: not pid_alive(pid), 10, what="its process stopped")

    def test_http_api_answers_401_and_403(self):
        for label, client, tok, reason in self.failures():
            body = {"app": "echo", "client_id": client}
            if tok:
                body["token"] = tok
            st, _, j = call(self.api + "/v1/request", "POST", body)
            want = (403, "forbidden") if reason.startswith("forbidden") else \
                (401, "unauthenticated")
            self.assertEqual((st, j["error"]["code"]), want, (label, j))
            self.assertTrue(j["error"]["reason"].startswith(reason), (label, j))
        self.assertEqual(self.sessions(), [])
        self.assertEqual(self.c.tagged_pids(apps_only=True), [])

    def test_python_client_with_a_token_is_served(self):
        with lbcp.Client([self.api], client_id="py-tok", token=self.token("py-tok")) as cl:
            a = cl.request("echo")
            self.assertEqual((a.server, a.slave), ("agent-a", "slave-a"))
            wait_for(lambda: self.c.prefix + "sessions/" + a.session in self.sessions(), 10,
                     what="session stored")
            cl.renew(a)
            cl.release(a)
            wait_for(lambda: not self.sessions(), 10, what="released with the token")
        with self.assertRaises(lbcp.LbError) as e:
            lbcp.Client([self.api], client_id="py-none", keepalive=False).request("echo")
        self.assertIn("unauthenticated: no token", str(e.exception))


if __name__ == "__main__":
    unittest.main()
