"""Bad configs: each daemon exits non-zero naming file:line and the key."""
import os
import socket
import subprocess
import tempfile
import unittest

from harness import BIN

SYNTAX = "id: x\nlisten: [tcp://127.0.0.1:1\nzone: a\n"
WRONG_TYPE = {
    "lb-master": ("id: m\ncontexts: lots\n", 2, "contexts"),
    "lb-slave": ("id: s\nzone: a\nlimit: many\n", 3, "limit"),
    "lb-agent": ("id: a\nzone: a\ncapacity: lots\n", 3, "capacity"),
}


class ConfigErrors(unittest.TestCase):
    def run_daemon(self, binary, text):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            r = subprocess.run([os.path.join(BIN, binary), "--config", path],
                               capture_output=True, text=True, timeout=20)
        finally:
            os.unlink(path)
        return r, path

    def test_syntax_error_names_file_and_line(self):
        for binary in ("lb-master", "lb-slave", "lb-agent"):
            with self.subTest(binary=binary):
                r, path = self.run_daemon(binary, SYNTAX)
                self.assertNotEqual(r.returncode, 0)
                self.assertRegex(r.stderr, rf"{path}:[23]:")

    def test_wrong_type_names_file_line_and_key(self):
        for binary, (text, line, key) in WRONG_TYPE.items():
            with self.subTest(binary=binary):
                r, path = self.run_daemon(binary, text)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"{path}:{line}:", r.stderr)
                self.assertIn(key, r.stderr)

    def test_unknown_key_is_refused(self):
        for binary in ("lb-master", "lb-slave", "lb-agent"):
            with self.subTest(binary=binary):
                r, path = self.run_daemon(binary, "id: x\nfrobnicate: 1\n")
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"{path}:2:", r.stderr)
                self.assertIn("frobnicate", r.stderr)

    def test_report_nng_idle_range(self):
        """report_nng_idle: 0 (never close) or 100ms..1h; else file:line:key."""
        for value in ("50ms", "2h", "-1s"):
            with self.subTest(value=value):
                r, path = self.run_daemon("lb-agent", f"id: a\nzone: a\nreport_nng_idle: {value}\n")
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"{path}:3:", r.stderr)
                self.assertIn("report_nng_idle", r.stderr)

    def test_report_udp_keys(self):
        """report_udp_listen / report_udp_advertise must be udp://HOST:PORT or "";
        a configured report_udp_listen that cannot be bound stops the master."""
        for text, line, key in (("id: m\nreport_udp_listen: tcp://127.0.0.1:7102\n", 2,
                                 "report_udp_listen"),
                                ("id: m\nreport_udp_listen: udp://127.0.0.1:0\n", 2,
                                 "report_udp_listen"),
                                ("id: m\nreport_udp_advertise: master-1:7102\n", 2,
                                 "report_udp_advertise")):
            with self.subTest(text=text):
                r, path = self.run_daemon("lb-master", text)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"{path}:{line}: {key}", r.stderr)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            port = busy.getsockname()[1]
            r, _ = self.run_daemon("lb-master", (
                "id: m\nlisten: tcp://127.0.0.1:1\nreport_listen: tcp://127.0.0.1:2\n"
                f"report_udp_listen: udp://127.0.0.1:{port}\netcd: http://127.0.0.1:1\n"
                "tls: {insecure: true}\n"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("report_udp_listen", r.stderr)
        self.assertIn("in use", r.stderr)


if __name__ == "__main__":
    unittest.main()
