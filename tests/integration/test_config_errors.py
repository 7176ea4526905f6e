"""Bad configs: each daemon exits non-zero naming file:line and the key."""
import os
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


if __name__ == "__main__":
    unittest.main()
