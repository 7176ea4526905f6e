"""TLS on every nng link (issue 9, items 1 and 2): peers are verified both ways,
a refused peer is counted and the daemon goes on serving; each role has its
own CA and a listener trusts only the roles allowed to call it."""
import os
import subprocess
import unittest

import pb
from harness import BIN, ClusterTest, free_port, pki, to_yaml

ZONE = {"lb-master": "", "lb-slave": "zone: a\n", "lb-agent": "zone: a\n"}

BAD_CALLERS = {"no certificate": None, "foreign CA": "foreign", "expired": "expired"}


class TlsPeers(ClusterTest):
    tls = True

    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        self.agent = c.start_agent("agent-a1", "zone-a")
        c.wait_master_sees(1)

    def refused(self, st):
        return st["counters"].get("wire_tls_refused_total", 0)

    def test_bad_certificates_are_refused_by_every_daemon_which_goes_on_serving(self):
        c = self.c
        for name, addr in (("master", c.master_rpc), ("slave", self.sa.endpoint),
                           ("agent", self.agent.endpoint)):
            before = self.refused(c.stats(addr))
            for what, role in BAD_CALLERS.items():
                with self.subTest(daemon=name, caller=what):
                    rc, out = c.rawreq(addr, pb.stats(), timeout_ms=4000, role=role)
                    self.assertEqual(rc, 1, out)
                    self.assertIn("no answer", out)
                    if role is not None:  # our own certificate was turned down
                        self.assertIn("TLS refused by", out)
            after = self.refused(c.stats(addr))  # a good operator is still served
            self.assertGreaterEqual(after - before, len(BAD_CALLERS), f"{name} counts refusals")
        _, out, _ = c.request(self.sa, "echo", "after-refusals", location="zone-a")
        self.assertEqual(out["action"], "SERVE")
        for d in c.daemons.values():
            self.assertTrue(d.alive(), d.name)

    def test_lbctl_says_tls_refused_with_a_foreign_certificate(self):
        c = self.c
        r = c.lbctl("--addr", self.sa.endpoint, "stats", "--call-timeout", "3000", role="foreign")
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"TLS refused by {self.sa.endpoint}: check certificate and CA", r.stderr)
        r = c.lbctl("--slave", self.sa.endpoint, "request", "--app", "echo", "--client", "x",
                    "--call-timeout", "3000", role="expired")
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS refused by", r.stderr)

    def test_liblbclient_says_tls_refused(self):
        c = self.c
        env = c.caller_env("foreign")
        r = subprocess.run([os.path.join(BIN, "lbclient-probe"), "--slaves", self.sa.endpoint,
                            "--client", "p1", "request", "echo"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"TLS refused by {self.sa.endpoint}: check certificate and CA",
                      r.stdout + r.stderr)

    def test_a_slave_certificate_cannot_launch_at_an_agent(self):
        c = self.c
        before = len(c.tagged_pids())
        rc, out = c.rawreq(self.agent.endpoint, pb.launch("echo", "s-forged", "mallory"),
                           timeout_ms=2000, role="slave")
        self.assertEqual(rc, 1, out)
        self.assertIn("TLS refused by", out)
        # with the master's certificate the same bytes do launch: the CA is what decides
        rc, out = c.rawreq(self.agent.endpoint, pb.launch("echo", "s-master", "alice"),
                           role="master")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out, "body=14")  # a LaunchReply
        self.assertEqual(len(c.tagged_pids()), before + 1)

    def test_an_agent_certificate_cannot_request_a_selection(self):
        c = self.c
        rc, out = c.rawreq(c.master_rpc, pb.selection("mallory", "echo", "zone-a"),
                           timeout_ms=2000, role="agent")
        self.assertEqual(rc, 1, out)
        self.assertIn("TLS refused by", out)
        self.assertEqual(c.etcd.keys("/lb/sessions/"), [])
        # a client certificate cannot talk to the master either, nor to an agent
        for addr in (c.master_rpc, self.agent.endpoint):
            rc, out = c.rawreq(addr, pb.stats(), timeout_ms=1500, role="client")
            self.assertIn("TLS refused by", out)

    def test_plain_tcp_to_a_tls_daemon_gets_nothing(self):
        c = self.c
        plain = self.sa.endpoint.replace("tls+tcp://", "tcp://")
        r = c.lbctl("--insecure", "--addr", plain, "stats", "--call-timeout", "1500")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(self.sa.alive())
        self.assertIsNotNone(c.stats(self.sa.endpoint))


class TlsConfig(unittest.TestCase):
    """Plain TCP only where the config says so, with a warning."""

    def run_daemon(self, binary, text, timeout=5):
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            p = subprocess.Popen([os.path.join(BIN, binary), "--config", path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.terminate()
                out, err = p.communicate(timeout=10)
        finally:
            os.unlink(path)
        return p.returncode, out + err, path

    def test_plain_endpoint_without_insecure_is_a_config_error(self):
        for binary in ("lb-master", "lb-slave", "lb-agent"):
            with self.subTest(binary=binary):
                rc, out, path = self.run_daemon(
                    binary, f"id: x\nlisten: tcp://127.0.0.1:{free_port()}\n"
                            + to_yaml({"tls": pki().daemon_tls(binary)}) + "\n")
                self.assertEqual(rc, 2, out)
                self.assertIn(f"{path}:2: listen: plain tcp://127.0.0.1:", out)
                self.assertIn("refused: use tls+tcp://", out)

    def test_no_tls_block_is_a_config_error(self):
        for binary in ("lb-master", "lb-slave", "lb-agent"):
            with self.subTest(binary=binary):
                rc, out, path = self.run_daemon(binary, "id: x\n" + ZONE[binary])
                self.assertEqual(rc, 2, out)
                self.assertIn("tls.ca: required", out)

    def test_missing_certificate_file_names_it(self):
        rc, out, _ = self.run_daemon("lb-slave", "id: x\ntls: {ca: /nonexistent/ca.pem, "
                                                  "cert: /nonexistent/c.pem, key: /x.key}\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("/nonexistent/c.pem", out)

    def test_insecure_logs_a_warning_at_start(self):
        rc, out, _ = self.run_daemon(
            "lb-slave", f"id: x\nlisten: tcp://127.0.0.1:{free_port()}\n"
                        "etcd: http://127.0.0.1:1\ntls: {insecure: true}\n", timeout=2)
        self.assertIn('level=warn comp=tls msg="plain TCP allowed"', out)


if __name__ == "__main__":
    unittest.main()
