"""/ui needs an operator credential (issue 12 item 3): with
ui_token_public_keys the master's dashboard and its JSON endpoints answer 401
without an operator token (Ed25519, lbctl token issue with the operator key),
with another issuer's token, or with a forged one; the token as a Bearer header,
or the cookie the login (/ui/?token=T, 303) sets, gets 200. /metrics and
/healthz stay open. Over HTTPS (the master's certificate)."""
import os
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

from harness import BIN, ClusterTest, free_port, wait_for

LBCTL = os.path.join(BIN, "lbctl")


def lbctl(*args):
    r = subprocess.run([LBCTL, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


class UiAuthTest(ClusterTest):
    http_tls = True

    def setUp(self):
        super().setUp()
        if not self.c.tls:
            self.skipTest("LBCP_TEST_PLAIN=1")
        self.keys = tempfile.mkdtemp(prefix="lbcp-uikeys-")
        op, other = os.path.join(self.keys, "operator"), os.path.join(self.keys, "other")
        lbctl("token", "keygen", "--out", op, "--kid", "ops-1")
        lbctl("token", "keygen", "--out", other, "--kid", "ops-1")
        self.token = lbctl("token", "issue", "--client", "alice-ops", "--apps", "ui", "--ttl",
                           "1h", "--key", op)
        self.other = lbctl("token", "issue", "--client", "alice-ops", "--apps", "ui", "--ttl",
                           "1h", "--key", other)
        self.hp = free_port()
        self.m = self.c.start_master(http_listen=f"127.0.0.1:{self.hp}",
                                     ui_token_public_keys=[op + ".pub"])
        self.base = f"https://127.0.0.1:{self.hp}"
        self.opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPSHandler(context=self.c.https_context()))

    def tearDown(self):
        super().tearDown()
        if hasattr(self, "keys"):
            for f in os.listdir(self.keys):
                os.unlink(os.path.join(self.keys, f))
            os.rmdir(self.keys)

    def get(self, path, headers=None):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def test_ui_needs_an_operator_token(self):
        forged = self.token[:-4] + ("AAAA" if not self.token.endswith("AAAA") else "BBBB")
        for path in ("/ui/", "/ui/app.js", "/ui/api/state", "/ui/api/events?since=0"):
            st, h, body = self.get(path)
            self.assertEqual(st, 401, path)
            self.assertIn("Bearer", h.get("WWW-Authenticate", ""))
            self.assertIn(b"no operator token", body)
            for bad in (self.other, forged, "lbt1.junk"):
                st, _, body = self.get(path, {"Authorization": "Bearer " + bad})
                self.assertEqual(st, 401, (path, bad, body))
            st, _, body = self.get(path, {"Authorization": "Bearer " + self.token})
            self.assertEqual(st, 200, (path, body))
        # scrapers and probes need no token
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/metrics")[0], 200)
        self.assertIn("dashboard refused", self.m.output())
        self.assertTrue(self.m.alive())

    def test_browser_login_sets_a_cookie(self):
        st, h, _ = self.get("/ui/?token=" + self.other)
        self.assertEqual(st, 401)
        self.assertIsNone(h.get("Set-Cookie"))
        st, h, _ = self.get("/ui/?token=" + self.token)
        self.assertEqual((st, h.get("Location")), (303, "/ui/"))
        cookie = h.get("Set-Cookie")
        for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"):
            self.assertIn(attr, cookie)
        kv = cookie.split(";")[0]
        self.assertEqual(self.get("/ui/api/state", {"Cookie": kv})[0], 200)
        self.assertEqual(self.get("/ui/", {"Cookie": "x=1; " + kv})[0], 200)
        self.assertEqual(self.get("/ui/", {"Cookie": "lbcp_ui=" + self.other})[0], 401)

    def test_sighup_rotates_ui_token_keys(self):
        """The other issuer's key file replaces the operator's (the same key id,
        another key): after SIGHUP the old token, accepted a moment ago (so in the
        verified-token cache), gets 401 and the other issuer's token 200."""
        bearer = lambda t: {"Authorization": "Bearer " + t}
        self.assertEqual(self.get("/ui/api/state", bearer(self.token))[0], 200)
        self.assertEqual(self.get("/ui/api/state", bearer(self.other))[0], 401)
        path = os.path.join(self.c.dir, "master-1.yaml")
        with open(path) as f:
            text = f.read()
        op, other = os.path.join(self.keys, "operator"), os.path.join(self.keys, "other")
        with open(path, "w") as f:
            f.write(text.replace(op + ".pub", other + ".pub"))
        os.kill(self.m.pid, signal.SIGHUP)
        wait_for(lambda: 'changed="ui_token_public_keys' in self.m.output(), 10, 0.1,
                 what="master reloaded its ui keys")
        self.assertEqual(self.get("/ui/api/state", bearer(self.token))[0], 401)
        self.assertEqual(self.get("/ui/api/state", bearer(self.other))[0], 200)


class UiClosedTest(ClusterTest):
    """HTTPS without ui_token_public_keys: /ui is closed (403), not open."""
    http_tls = True

    def test_no_keys_over_https_is_403(self):
        if not self.c.tls:
            self.skipTest("LBCP_TEST_PLAIN=1")
        hp = free_port()
        m = self.c.start_master(http_listen=f"127.0.0.1:{hp}")
        ctx = self.c.https_context()
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(f"https://127.0.0.1:{hp}/ui/api/state", timeout=10, context=ctx)
        self.assertEqual(cm.exception.code, 403)
        self.assertIn(b"ui_token_public_keys", cm.exception.read())
        with urllib.request.urlopen(f"https://127.0.0.1:{hp}/healthz", timeout=10,
                                    context=ctx) as r:
            self.assertEqual(r.status, 200)
        self.assertIn("dashboard closed", m.output())

