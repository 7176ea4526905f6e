"""HTTPS on the daemons' HTTP servers (issue 12 item 3): with a tls: block
(and no tls.http_insecure) the slave's API (api_listen) and the ops servers
(http_listen: /metrics, /healthz) speak HTTPS with the daemon's certificate;
plain HTTP and clients that do not trust the role CA are refused, and the
daemons keep serving. tls.http_insecure: true is plain HTTP with a warning."""
import http.client
import json
import ssl
import subprocess
import unittest
import urllib.error
import urllib.request

from harness import ClusterTest, free_port, wait_for


def fetch(url, ctx=None, body=None, method=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class HttpsTest(ClusterTest):
    http_tls = True

    def setUp(self):
        super().setUp()
        if not self.c.tls:
            self.skipTest("LBCP_TEST_PLAIN=1: no certificates to serve HTTPS with")
        c = self.c
        self.mh, self.sh, self.sa = free_port(), free_port(), free_port()
        self.m = c.start_master(http_listen=f"127.0.0.1:{self.mh}")
        self.s = c.start_slave("slave-a", "zone-a", http_listen=f"127.0.0.1:{self.sh}",
                               api_listen=f"127.0.0.1:{self.sa}")
        c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)
        self.ctx = c.https_context()

    def test_api_and_ops_over_https_with_the_ca(self):
        st, body = fetch(f"https://127.0.0.1:{self.mh}/healthz", self.ctx)
        self.assertEqual((st, body), (200, b"ok\n"))
        st, body = fetch(f"https://127.0.0.1:{self.sh}/metrics", self.ctx)
        self.assertEqual(st, 200)
        self.assertIn(b"httpd_requests_total", body)
        st, body = fetch(f"https://127.0.0.1:{self.sa}/v1/request", self.ctx,
                         {"app": "echo", "client_id": "https-1", "location": "zone-a"})
        self.assertEqual(st, 200, body)
        j = json.loads(body)
        self.assertEqual((j["action"], j["server"]), ("SERVE", "agent-a"))
        st, body = fetch(f"https://127.0.0.1:{self.sa}/v1/sessions/{j['session']}"
                         "?client_id=https-1", self.ctx, method="DELETE")
        self.assertEqual(st, 200, body)
        # the README's probe: curl checks the CA and the certificate's name
        r = subprocess.run(["curl", "-fsS", "--cacert", self.c.pki.path("trust.pem"), "--resolve",
                            f"master.lbcp:{self.mh}:127.0.0.1",
                            f"https://master.lbcp:{self.mh}/healthz"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual((r.returncode, r.stdout), (0, "ok\n"), r.stderr)
        r = subprocess.run(["curl", "-fsS", "--cacert", self.c.pki.path("trust.pem"), "--resolve",
                            f"slave.lbcp:{self.mh}:127.0.0.1",
                            f"https://slave.lbcp:{self.mh}/healthz"],
                           capture_output=True, text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0, "the master's certificate does not name slave.lbcp")
        # redirects name the API by its https:// URL
        self.assertIn(f"url=https://127.0.0.1:{self.sa}", self.s.output())

    def test_python_client_over_https(self):
        """The Python client reaches an HTTPS-only slave API with the CA in its
        ssl_context, and is refused without it (the system trust lacks the CA)."""
        import os
        import sys
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../clients/python"))
        import lbcp
        url = f"https://127.0.0.1:{self.sa}"
        with lbcp.Client([url], client_id="py-https", location="zone-a",
                         ssl_context=self.ctx) as cl:
            a = cl.request("echo")
            self.assertEqual(a.server, "agent-a")
            self.assertGreater(a.pid, 0)
        with lbcp.Client([url], client_id="py-https-2", retries=0, keepalive=False) as cl:
            with self.assertRaises(lbcp.LbError):
                cl.request("echo")

    def test_plain_http_and_untrusted_clients_are_refused(self):
        for port in (self.mh, self.sh, self.sa):
            with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
                # a plain request to a TLS server gets no HTTP answer
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                    r.read()
            foreign = self.c.https_context("ca-foreign.crt")
            with self.assertRaises(urllib.error.URLError) as cm:
                fetch(f"https://127.0.0.1:{port}/healthz", foreign)
            self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        # and both daemons keep serving
        self.assertEqual(fetch(f"https://127.0.0.1:{self.mh}/healthz", self.ctx)[0], 200)
        self.assertEqual(fetch(f"https://127.0.0.1:{self.sh}/metrics", self.ctx)[0], 200)
        self.assertTrue(self.m.alive() and self.s.alive())


class HttpInsecureTest(ClusterTest):
    """tls.http_insecure: true (what the older tests and deploy/compose run):
    plain HTTP, with a warning at start."""

    def test_plain_http_with_a_warning(self):
        if not self.c.tls:
            self.skipTest("LBCP_TEST_PLAIN=1")
        hp = free_port()
        m = self.c.start_master(http_listen=f"127.0.0.1:{hp}")
        wait_for(lambda: fetch(f"http://127.0.0.1:{hp}/healthz")[0] == 200, 10,
                 what="plain /healthz")
        self.assertIn("speaks plain HTTP", m.output())


if __name__ == "__main__":
    unittest.main()
