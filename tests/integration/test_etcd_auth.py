"""etcd with TLS, client-certificate auth and etcd auth (users and roles from
deploy/etcd-auth-setup.sh): daemons with their own credentials serve; without
credentials, with a wrong password or a foreign certificate etcd refuses them
and they say why and keep running; an agent's credential cannot register
another server; expired and invalidated tokens are renewed, on the lease
keeper's path and on the master's long-lived watch."""
import os
import subprocess
import time
import unittest

from harness import BIN, Cluster, free_port, wait_for
from secure_etcd import ROOT, SecureEtcd, TcpProxy


class ShortTokenEtcd(SecureEtcd):
    token_ttl = 2  # seconds without use before etcd forgets a token


def wait_log(daemon, needle, timeout=15):
    wait_for(lambda: needle in daemon.output(), timeout, 0.1, f"'{needle}' in {daemon.name}'s log")


class EtcdAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = c = Cluster(etcd_class=ShortTokenEtcd)
        try:
            e = c.etcd
            c.start_master("master-1", **e.daemon_config("lbcp-master-master-1"))
            c.slave = c.start_slave("slave-a", "zone-a", **e.daemon_config("lbcp-slave-slave-a"))
            c.agent = c.start_agent("agent-a1", "zone-a", **e.daemon_config("lbcp-agent-agent-a1"))
            c.wait_master_sees(1)
        except BaseException:
            for d in c.daemons.values():
                print(f"----- {d.name} log -----\n{d.output()[-3000:]}")
            c.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def tearDown(self):
        if any(e for _, e in self._outcome.result.errors + self._outcome.result.failures):
            for d in self.c.daemons.values():
                print(f"----- {d.name} log -----\n{d.output()[-3000:]}")

    def lbctl_as(self, user, *args, password=None):
        e = self.c.etcd
        env = {"LBCP_ETCD_CA": e.certs["ca"], "LBCP_ETCD_CERT": e.certs["cert"],
               "LBCP_ETCD_KEY": e.certs["key"]}
        if user:
            env["LBCP_ETCD_USER"] = user
            env["LBCP_ETCD_PASSWORD"] = password or e.password(user)
        saved = dict(self.c.env)
        self.c.env.update(env)
        try:
            return self.c.lbctl(*args)
        finally:
            self.c.env = saved

    def start_agent_raw(self, name, **etcd_keys):
        port = 30000 + free_port() % 20000
        cfg = {"id": name, "zone": "zone-a", "host": "127.0.0.1",
               "listen": self.c.url(), "report": [self.c.master_report],
               "etcd": self.c.etcd.url, "prefix": self.c.prefix, "lease_ttl": "2s",
               "ports": {"min": port, "max": port + 10}, "apps": {}}
        cfg.update(etcd_keys)
        from harness import to_yaml
        return self.c.start(name, "lb-agent", to_yaml(cfg))

    def test_a_credentials_serve_end_to_end(self):
        # each role covers everything its daemon reads and writes (watches included)
        for d in (self.c.daemons["master-1"], self.c.slave, self.c.agent):
            self.assertNotIn("permission denied", d.output(), d.name)
            self.assertNotIn("etcd requires authentication", d.output(), d.name)
        rc, out, err = self.c.request(self.c.slave, "echo", "alice", "zone-a")
        self.assertEqual(out["action"], "SERVE", err)
        self.assertEqual(out["server"], "agent-a1")
        # an operator reads and writes overrides; an agent's credential may not
        r = self.lbctl_as("lbcp-operator-ops", "servers", "-o", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("agent-a1", r.stdout)
        r = self.lbctl_as("lbcp-operator-ops", "drain", "agent-a1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.lbctl_as("lbcp-operator-ops", "undrain", "agent-a1").returncode, 0)
        r = self.lbctl_as("lbcp-agent-agent-a1", "drain", "agent-a1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("permission denied", r.stderr)
        self.assertIn("as etcd user 'lbcp-agent-agent-a1'", r.stderr)
        # without any credential lbctl is told what to set
        r = self.lbctl_as(None, "servers")
        self.assertEqual(r.returncode, 1)
        self.assertIn("etcd requires authentication", r.stderr)

    def test_b_agent_credential_cannot_register_evil(self):
        e = self.c.etcd
        tok = e.token("lbcp-agent-agent-a1")
        st, ans = e.put(self.c.prefix + "servers/evil", b"x", tok)
        self.assertEqual((st, ans.get("code")), (403, 7), ans)
        # the same through a daemon: an agent "evil" holding agent-a1's credential
        evil = self.start_agent_raw("evil", **e.daemon_config("lbcp-agent-agent-a1"))
        wait_log(evil, "permission denied")
        self.assertIn("as etcd user 'lbcp-agent-agent-a1'", evil.output())
        time.sleep(1)
        self.assertTrue(evil.alive())
        self.assertNotIn(self.c.prefix + "servers/evil", e.keys(self.c.prefix))
        evil.close()

    def test_b2_lbctl_mutations_need_operator_credentials(self):
        """Every lbctl write to etcd (drain, disable, set-group, group set, pool
        set) with an agent's or a slave's etcd user fails with the cause and the
        fix, exits non-zero and writes nothing; the operator's user succeeds."""
        p = self.c.prefix
        cmds = (("drain", "agent-a1"), ("disable", "agent-a1"),
                ("set-group", "agent-a1", "backup"), ("group", "set", "backup", "5"),
                ("pool", "set", "echo", "2"))
        written = (p + "overrides/agent-a1", p + "groups/backup", p + "pools/echo")
        for user in ("lbcp-agent-agent-a1", "lbcp-slave-slave-a"):
            for args in cmds:
                r = self.lbctl_as(user, *args)
                self.assertEqual(r.returncode, 1, (user, args, r.stdout, r.stderr))
                self.assertRegex(r.stderr, r"lbctl: etcd refused the (write to|read of) "
                                 + p + r"\S+: .*permission denied")
                self.assertIn(f"as etcd user '{user}'", r.stderr)
                self.assertIn("use operator credentials: --etcd-user/LBCP_ETCD_USER", r.stderr)
                keys = self.c.etcd.keys(p)
                for k in written:
                    self.assertNotIn(k, keys, (user, args))
        r = self.lbctl_as("lbcp-operator-ops", "pool", "set", "echo", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(p + "pools/echo", self.c.etcd.keys(p))
        self.assertEqual(self.lbctl_as("lbcp-operator-ops", "pool", "clear", "echo").returncode, 0)

    def test_c_without_credentials_refused_and_said(self):
        e = self.c.etcd
        anon = self.start_agent_raw("agent-anon", **e.daemon_config(None))
        wait_log(anon, "etcd requires authentication; set etcd_user and etcd_password_file")
        m2 = self.c.start("master-2", "lb-master", "\n".join([
            "id: master-2", f"listen: {self.c.url()}",
            f"report_listen: {self.c.url()}", f"etcd: {e.url}",
            f"etcd_tls: {{ca: {e.certs['ca']}, cert: {e.certs['cert']}, key: {e.certs['key']}}}"]))
        wait_log(m2, "etcd requires authentication")
        time.sleep(1)
        self.assertTrue(anon.alive() and m2.alive())
        keys = e.keys(self.c.prefix)
        self.assertNotIn(self.c.prefix + "servers/agent-anon", keys)
        self.assertNotIn(self.c.prefix + "masters/master-2", keys)
        anon.close()
        m2.close()

    def test_d_wrong_password_clear_error(self):
        e = self.c.etcd
        bad = os.path.join(self.c.dir, "wrong.password")
        with open(bad, "w") as f:
            f.write("not-the-password\n")
        os.chmod(bad, 0o600)
        a = self.start_agent_raw("agent-a1-bad", **e.daemon_config("lbcp-agent-agent-a1", bad))
        wait_log(a, "etcd authentication as user 'lbcp-agent-agent-a1' failed")
        self.assertIn("invalid user ID or password", a.output())
        time.sleep(0.5)
        self.assertTrue(a.alive())
        a.close()
        r = self.lbctl_as("lbcp-operator-ops", "servers", password="wrong")
        self.assertEqual(r.returncode, 1)
        self.assertIn("etcd authentication as user 'lbcp-operator-ops' failed", r.stderr)
        self.assertIn("invalid user ID or password", r.stderr)

    def test_e_foreign_certificates_refused(self):
        e = self.c.etcd
        keys = e.daemon_config("lbcp-agent-agent-a1")
        keys["etcd_tls"]["ca"] = e.certs["other_ca"]  # etcd's certificate does not verify
        a = self.start_agent_raw("agent-wrong-ca", **keys)
        wait_log(a, "TLS refused")
        self.assertIn("check etcd_tls", a.output())
        self.assertTrue(a.alive())
        a.close()
        saved = dict(self.c.env)
        self.c.env.update(LBCP_ETCD_CA=e.certs["ca"], LBCP_ETCD_CERT=e.certs["foreign_cert"],
                          LBCP_ETCD_KEY=e.certs["foreign_key"], LBCP_ETCD_USER="lbcp-operator-ops",
                          LBCP_ETCD_PASSWORD=e.password("lbcp-operator-ops"))
        try:
            r = self.c.lbctl("servers")
        finally:
            self.c.env = saved
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS refused", r.stderr)

    def test_f_expired_token_renewed_by_lease_keeper(self):
        """The agent's token sits unused (keepalives do not check it) past
        --auth-token-ttl; revoking its lease makes the keeper register again
        with that expired token: etcd says 401, the client renews, the key is back."""
        e = self.c.etcd
        key = self.c.prefix + "servers/agent-a1"
        time.sleep(e.token_ttl + 0.5)
        kv = e.call("kv/range", {"key": __import__("base64").b64encode(key.encode()).decode()})
        lease = kv["kvs"][0]["lease"]
        e.call("lease/revoke", {"ID": lease})
        self.assertNotIn(key, e.keys(self.c.prefix))
        wait_for(lambda: key in e.keys(self.c.prefix), 15, 0.1, "agent-a1 registered again")
        st = self.c.stats(self.c.agent.endpoint)
        self.assertGreaterEqual(st["counters"].get("etcd_auth_token_renewals_total", 0), 1, st)

    def test_g_watch_renews_expired_token(self):
        """`lbctl watch` uses etcd only through its long-lived watch, whose
        token etcd checks when a stream is created. The stream outlives the
        token (--auth-token-ttl 2 s); a TCP proxy then cuts the connection, the
        watch reconnects with the expired token, is refused ("invalid auth
        token"), renews it and streams again: a drain made after the cut shows."""
        e = self.c.etcd
        proxy = TcpProxy(e.port)
        out_path = os.path.join(self.c.dir, "watch.out")
        env = dict(self.c.env, LBCP_ETCD_CA=e.certs["ca"], LBCP_ETCD_CERT=e.certs["cert"],
                   LBCP_ETCD_KEY=e.certs["key"], LBCP_ETCD_USER="lbcp-operator-ops",
                   LBCP_ETCD_PASSWORD=e.password("lbcp-operator-ops"))
        with open(out_path, "wb") as out:
            watch = subprocess.Popen([os.path.join(BIN, "lbctl"), "--etcd",
                                      f"https://127.0.0.1:{proxy.port}", "watch", "--duration",
                                      "30"], stdout=out, stderr=out, env=env)
        read = lambda: open(out_path).read()
        try:
            wait_for(lambda: "EVENT" in read(), 10, 0.1, "lbctl watch running")
            time.sleep(e.token_ttl + 1.5)  # the watch's token expires, unused
            proxy.cut()
            wait_for(lambda: "watch refused the auth token; renewing" in read(), 10, 0.1,
                     "the watch renewing its token")
            r = self.lbctl_as("lbcp-operator-ops", "drain", "agent-a1")
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_for(lambda: "drain " in read(), 10, 0.1, "the drain in lbctl watch")
            self.assertIn("invalid auth token", read())
        finally:
            self.lbctl_as("lbcp-operator-ops", "undrain", "agent-a1")
            watch.terminate()
            watch.wait(10)
            proxy.close()

    def test_h_setup_script_adds_an_agent_later(self):
        """Run again on an etcd with auth on (root's password file), the script
        adds a new agent's user and keeps the existing users' passwords."""
        e = self.c.etcd
        before = e.password("lbcp-agent-agent-a1")
        c = e.certs
        r = subprocess.run(
            [os.path.join(ROOT, "deploy/etcd-auth-setup.sh"), "--endpoints", e.url,
             "--out", e.secrets, "--cacert", c["ca"], "--cert", c["cert"], "--key", c["key"],
             "--agents", "agent-a1,agent-a2", "--root-password-file", e.password_file("root")],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(e.password("lbcp-agent-agent-a1"), before)
        tok = e.token("lbcp-agent-agent-a2")
        st, ans = e.put(self.c.prefix + "servers/agent-a1", b"x", tok)
        self.assertEqual((st, ans.get("code")), (403, 7), ans)
        st, ans = e.raw("kv/range", {"key": "AA==", "range_end": "AA=="}, tok)
        self.assertEqual(st, 403, ans)  # an agent reads its pool sizes, not the cluster
        a2 = self.c.start_agent("agent-a2", "zone-a", **e.daemon_config("lbcp-agent-agent-a2"))
        self.assertTrue(a2.alive())  # start_agent waited for servers/agent-a2 in etcd
        a2.close()


if __name__ == "__main__":
    unittest.main()
