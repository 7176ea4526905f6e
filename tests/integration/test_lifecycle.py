"""Operator conventions of every binary: --version, --check-config FILE, and
SIGHUP reload (a changed log level and policy applied, a bad file rejected with
its file:line error while the running config is kept, the daemon alive)."""
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BIN, ClusterTest, wait_for

DAEMONS = ("lb-master", "lb-slave", "lb-agent")
BINARIES = DAEMONS + ("lb-echo", "lbctl", "lbclient-example")
VERSION = re.compile(r"^(\S+) .*\b\d+\.\d+\.\d+\b")

# tcp:// needs TLS explicitly off (README "Security model")
PLAIN = "tls: {insecure: true}\n"
GOOD = {
    "lb-master": "id: m\nlisten: tcp://127.0.0.1:1\nstrategy: p2c\nlog_level: warn\n" + PLAIN,
    "lb-slave": "id: s\nzone: a\nlisten: tcp://127.0.0.1:1\nlog_level: debug\n" + PLAIN,
    "lb-agent": ("id: a\nzone: a\nlisten: tcp://127.0.0.1:1\napps:\n  echo:\n    argv: [\"%s\", "
                 "\"--port\", \"{port}\", \"--session\", \"{session}\"]\n"
                 % os.path.join(BIN, "lb-echo")) + PLAIN,
}
# (text, line of the error, key named)
BAD = {
    "lb-master": ("id: m\nstrategy: fastest\n" + PLAIN, 2, "strategy"),
    "lb-slave": ("id: s\nzone: a\nlog_level: loud\n" + PLAIN, 3, "log_level"),
    "lb-agent": ("id: a\nzone: a\ncapacity: -3\n" + PLAIN, 3, "capacity"),
}


def run(*argv, timeout=20):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)


def tmp_config(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        return f.name


def threads_not_blocking(pid, sigs=(signal.SIGHUP, signal.SIGINT, signal.SIGTERM)):
    """Threads of pid other than main that would take one of sigs: the kernel
    hands a process signal to any thread not blocking it, and such a thread
    dies of SIGHUP while main is busy (main itself unblocks them in sigwait)."""
    bad = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        if int(tid) == pid:
            continue
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        blocked = int(st["SigBlk"].strip(), 16)
        missing = [s.name for s in sigs if not blocked & (1 << (s - 1))]
        if missing:
            bad.append((st["Name"].strip(), missing))
    return bad


class VersionAndCheck(unittest.TestCase):
    def test_version_on_every_binary(self):
        for b in BINARIES:
            with self.subTest(binary=b):
                r = run(os.path.join(BIN, b), "--version")
                self.assertEqual(r.returncode, 0, r.stderr)
                m = VERSION.match(r.stdout)
                self.assertIsNotNone(m, r.stdout)
                self.assertEqual(m.group(1), b)

    def test_check_config_accepts_a_good_file_without_starting(self):
        for b in DAEMONS:
            with self.subTest(binary=b):
                path = tmp_config(GOOD[b])
                try:
                    t0 = time.monotonic()
                    r = run(os.path.join(BIN, b), "--check-config", path)
                    took = time.monotonic() - t0
                finally:
                    os.unlink(path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"{path}: configuration OK", r.stdout)
                # it did not start: no log line, no bind, back at once
                self.assertNotIn("started", r.stderr)
                self.assertLess(took, 5)

    def test_check_config_rejects_a_bad_file_as_start_does(self):
        for b, (text, line, key) in BAD.items():
            with self.subTest(binary=b):
                path = tmp_config(text)
                try:
                    chk = run(os.path.join(BIN, b), "--check-config", path)
                    start = run(os.path.join(BIN, b), "--config", path)
                finally:
                    os.unlink(path)
                self.assertEqual(chk.returncode, 2)
                self.assertRegex(chk.stderr, rf"{re.escape(path)}:{line}: {key}")
                self.assertEqual(chk.stderr, start.stderr)
                self.assertEqual(chk.returncode, start.returncode)
                self.assertEqual(chk.stdout, "")

    def test_check_config_missing_file(self):
        for b in DAEMONS:
            with self.subTest(binary=b):
                r = run(os.path.join(BIN, b), "--check-config", "/nonexistent/lbcp.yaml")
                self.assertEqual(r.returncode, 2)
                self.assertIn("/nonexistent/lbcp.yaml", r.stderr)

    def test_usage_errors_name_the_flag(self):
        for b in DAEMONS:
            with self.subTest(binary=b):
                r = run(os.path.join(BIN, b), "--check-config")
                self.assertEqual(r.returncode, 2)
                self.assertIn("'--check-config' needs a value", r.stderr)
                r = run(os.path.join(BIN, b), "--frobnicate")
                self.assertEqual(r.returncode, 2)
                self.assertIn("unknown option '--frobnicate'", r.stderr)
                r = run(os.path.join(BIN, b), "--help")
                self.assertEqual(r.returncode, 0)
                self.assertIn("--check-config FILE", r.stdout)


class Reload(ClusterTest):
    def setUp(self):
        super().setUp()
        self.m = self.c.start_master()
        self.s = self.c.start_slave("slave-a", "zone-a")
        self.a = self.c.start_agent("agent-1", "zone-a")
        self.c.wait_master_sees(1)

    def hup(self, d, pattern, count_before):
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: len(re.findall(pattern, d.output())) > count_before, 10,
                 what=f"{d.name}: {pattern}")
        self.assertTrue(d.alive(), f"{d.name} died on SIGHUP")

    def test_every_thread_leaves_the_signals_to_main(self):
        """The CI run that found it: 20 SIGHUPs while the master reloaded killed
        it, because nng's threads started before the signals were blocked."""
        for d in (self.m, self.s, self.a):
            with self.subTest(daemon=d.name):
                threads = os.listdir(f"/proc/{d.pid}/task")
                self.assertGreater(len(threads), 1)
                self.assertEqual(threads_not_blocking(d.pid), [])

    def test_master_reload_applies_policy_and_log_level(self):
        path = os.path.join(self.c.dir, "master-1.yaml")
        with open(path) as f:
            base = f.read().rstrip("\n") + "\n"
        self.c.request(self.s, "echo", "c1")
        self.assertNotIn("level=debug", self.m.output())

        with open(path, "w") as f:
            f.write(base + 'log_level: "debug"\nstrategy: "round-robin"\nzone_spill: 0.5\n')
        self.hup(self.m, r'msg="config reloaded"', 0)
        self.assertRegex(self.m.output(),
                         r'msg="config reloaded" .*changed="strategy,zone_spill,log_level"')
        self.c.request(self.s, "echo", "c2")
        wait_for(lambda: re.search(r'level=debug comp=master msg="selected" app=echo client=c2',
                                   self.m.output()), 5, what="debug line after reload")

        # a bad file: rejected with file:line: key, the running config kept
        bad_line = base.count("\n") + 1
        with open(path, "w") as f:
            f.write(base + 'strategy: "fastest"\n')
        self.hup(self.m, r'msg="config reload rejected', 0)
        self.assertRegex(self.m.output(),
                         rf'config reload rejected; keeping the running config" file="{re.escape(path)}" '
                         rf'err="{re.escape(path)}:{bad_line}: strategy: unknown strategy \'fastest\'"')
        self.c.request(self.s, "echo", "c3")
        wait_for(lambda: 'msg="selected" app=echo client=c3' in self.m.output(), 5,
                 what="debug still on after a rejected reload")
        st = self.c.stats(self.c.master_rpc)
        self.assertEqual(st["counters"].get('config_reloads_total{result="ok"}'), 1)
        self.assertEqual(st["counters"].get('config_reloads_total{result="rejected"}'), 1)

        # a burst of SIGHUPs never kills it
        for _ in range(20):
            os.kill(self.m.pid, signal.SIGHUP)
        time.sleep(1)
        self.assertTrue(self.m.alive())
        self.c.request(self.s, "echo", "c4")

    def test_slave_reload_applies_log_level_and_rejects_a_bad_file(self):
        path = os.path.join(self.c.dir, "slave-a.yaml")
        with open(path) as f:
            base = f.read().rstrip("\n") + "\n"
        self.c.request(self.s, "echo", "c1")
        self.assertNotIn("level=debug", self.s.output())
        with open(path, "w") as f:
            f.write(base + 'log_level: "debug"\n')
        self.hup(self.s, r'msg="config reloaded"', 0)
        self.assertIn('changed="log_level"', self.s.output())
        self.c.request(self.s, "echo", "c2")
        wait_for(lambda: 'level=debug comp=slave msg="answered"' in self.s.output(), 5,
                 what="slave debug line after reload")

        with open(path, "w") as f:
            f.write(base + "log_level: [debug\n")  # a YAML syntax error
        self.hup(self.s, r'msg="config reload rejected', 0)
        self.assertRegex(self.s.output(), rf'err="{re.escape(path)}:\d+:\d+: ')
        n_debug = self.s.output().count("level=debug")
        self.c.request(self.s, "echo", "c3")
        wait_for(lambda: self.s.output().count("level=debug") > n_debug, 5,
                 what="slave still at debug after a rejected reload")
        self.assertTrue(self.s.alive())


if __name__ == "__main__":
    unittest.main()
