"""lbctl token keygen / issue (issue 9 item 3): an Ed25519 issuer key pair with
the secret kept 0600, and signed client tokens that pkg/auth parses."""
import base64
import os
import stat
import subprocess
import tempfile
import unittest

from harness import BIN

LBCTL = os.path.join(BIN, "lbctl")


def lbctl(*args):
    return subprocess.run([LBCTL, *args], capture_output=True, text=True, timeout=30)


class TokenCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lbcp-token-")
        self.key = os.path.join(self.dir, "issuer")

    def tearDown(self):
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)

    def test_keygen_then_issue(self):
        r = lbctl("token", "keygen", "--out", self.key, "--kid", "2026-12")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.key).st_mode), 0o600)
        with open(self.key + ".pub") as f:
            kind, kid, pub = f.read().split()
        self.assertEqual((kind, kid), ("lbcp-ed25519-public", "2026-12"))
        self.assertEqual(len(base64.urlsafe_b64decode(pub + "=" * (-len(pub) % 4))), 32)
        r = lbctl("token", "issue", "--client", "alice", "--apps", "echo,chat", "--ttl", "1h",
                  "--key", self.key)
        self.assertEqual(r.returncode, 0, r.stderr)
        tok = r.stdout.strip()
        prefix, payload, sig = tok.split(".")
        self.assertEqual(prefix, "lbt1")
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        for field in (b"2026-12", b"alice", b"echo", b"chat"):
            self.assertIn(field, raw)
        self.assertEqual(len(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))), 64)

    def test_issue_with_a_public_key_or_no_key_is_refused(self):
        lbctl("token", "keygen", "--out", self.key)
        r = lbctl("token", "issue", "--client", "a", "--apps", "echo", "--key", self.key + ".pub")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not an lbcp-ed25519-secret key", r.stderr)
        r = lbctl("token", "issue", "--client", "a", "--key", self.key)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: lbctl token issue", r.stderr)
        r = lbctl("token", "issue", "--client", "a", "--apps", "echo", "--ttl", "soon",
                  "--key", self.key)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
