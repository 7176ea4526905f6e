"""lbctl as an operator meets it: --help everywhere, usage errors that name
what is missing, --flag=value, a config file instead of flags, the leader and a
slave found in etcd, and fast failure against dead or silent endpoints."""
import json
import os
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, ClusterTest, free_port

LBCTL = os.path.join(BIN, "lbctl")
COMMANDS = ["servers", "request", "list", "explain", "stats", "status", "slaves", "groups",
            "sessions", "drain", "undrain", "disable", "enable", "set-group", "group", "release",
            "watch", "top"]


def lbctl(*args, env=None, timeout=30):
    e = dict(os.environ)
    for k in ("LBCP_ETCD", "LBCP_SLAVE", "LBCP_MASTER", "LBCP_CONFIG"):
        e.pop(k, None)
    e["HOME"] = tempfile.gettempdir() + "/lbcp-no-home"  # no ~/.config/lbcp here
    e.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([LBCTL, *args], capture_output=True, text=True, timeout=timeout, env=e)
    r.elapsed = time.monotonic() - t0
    return r


class Usage(unittest.TestCase):
    def test_help_exits_0_everywhere(self):
        for args in (["--help"], ["help"], ["-h"]):
            r = lbctl(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("usage: lbctl", r.stdout)
        for c in COMMANDS:
            with self.subTest(command=c):
                r = lbctl(c, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(f"usage: lbctl", r.stdout)
                self.assertIn(c.split("-")[0], r.stdout)
                self.assertEqual(lbctl("help", c).returncode, 0)

    def test_request_help_documents_input_limits(self):
        r = lbctl("request", "--help")
        self.assertIn("1-64 characters of [A-Za-z0-9._:@-]", r.stdout)
        self.assertIn("1-128 characters of [A-Za-z0-9._:@-]", r.stdout)
        self.assertIn("JSON Lines", lbctl("watch", "--help").stdout)

    def test_usage_errors_name_what_is_missing(self):
        cases = [
            (["request"], "lbctl request: --app is required"),
            (["request", "--app", "echo"], "lbctl request: --client is required"),
            (["request", "--app=echo", "--client"], "lbctl request: --client needs a value"),
            (["request", "--app", "echo", "--colour", "red"], "unknown flag '--colour'"),
            (["explain", "--client", "c"], "lbctl explain: --app is required"),
            (["explain", "--app", "echo"], "lbctl explain: --client is required"),
            (["list"], "lbctl list: --app is required"),
            (["stats"], "give --addr ADDR"),
            (["drain"], "lbctl drain: which server?"),
            (["set-group", "agent-1"], "which group?"),
            (["drain", "agent-1", "--wiat"], "lbctl drain: unknown flag '--wiat'"),
            (["drain", "agent-1", "--timeout"], "lbctl drain: --timeout needs a value"),
            (["enable", "agent-1", "now"], "lbctl enable: unexpected argument 'now'"),
            (["group", "set", "gold"], "give NAME and RANK"),
            (["group", "set", "gold", "first"], "RANK must be an integer (got 'first')"),
            (["release"], "lbctl release: which session?"),
            (["servers", "extra"], "lbctl servers: unexpected argument 'extra'"),
            (["sessions", "--server"], "lbctl sessions: --server needs a value"),
            (["watch", "--count", "many"], "--count takes a positive number (got 'many')"),
            (["--etcd"], "lbctl: --etcd needs a value"),
            (["--call-timeout=soon", "servers"], "--call-timeout takes milliseconds"),
            (["frobnicate"], "unknown command 'frobnicate'"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = lbctl(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)

    def test_bash_completion(self):
        comp = os.path.join(os.path.dirname(__file__), "../../deploy/bash-completion/lbctl")
        script = f"""source {comp}
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _lbctl; echo "${{COMPREPLY[*]}}"; }}
t lbctl dr; t lbctl -o w; t lbctl --etcd x req; t lbctl request --cl; t lbctl help ex
"""
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.stdout.splitlines(), ["drain", "wide", "request", "--client",
                                                 "explain"], r.stderr)

    def test_config_security_keys_reach_the_etcd_client(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write("etcd: https://127.0.0.1:1\netcd_tls: {ca: /x/ca.pem, cert: /x/c.pem, key: /x/k.pem}\n"
                    "etcd_user: operator\n")
        try:
            r = lbctl("servers", env={"LBCP_CONFIG": f.name})
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn("etcd user 'operator' has no password", r.stderr)

    def test_version(self):
        r = lbctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^lbctl \d+\.\d+\.\d+")


class FastFailure(unittest.TestCase):
    def test_nothing_listening_fails_at_once(self):
        dead = f"tcp://127.0.0.1:{free_port()}"
        for args in (["--slave", dead, "request", "--app", "echo", "--client", "c"],
                     [f"--slave={dead}", "list", "--app=echo"],
                     ["--master", dead, "explain", "--app", "echo", "--client", "c"],
                     ["--master", dead, "release", "abc"],
                     ["--addr", dead, "stats"]):
            with self.subTest(args=args):
                r = lbctl(*args)
                self.assertEqual(r.returncode, 1)
                self.assertIn(f"cannot connect to {dead}: Connection refused (nothing listening "
                              "there)", r.stderr)
                self.assertLess(r.elapsed, 2.0)

    def test_silent_endpoint_fails_within_the_connect_timeout(self):
        # A listener whose backlog is full: the kernel drops further SYNs, so a
        # connect gets no answer at all (a black-holed host, on loopback).
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        port = srv.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                fillers.append(s)
            time.sleep(0.2)
            r = lbctl("--slave", f"tcp://127.0.0.1:{port}", "request", "--app", "echo",
                      "--client", "c")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("no answer within 2000 ms", r.stderr)
            self.assertLess(r.elapsed, 4.0)  # goal 2 s, generous on a busy machine
            r = lbctl("--connect-timeout=500", "--slave", f"tcp://127.0.0.1:{port}", "list",
                      "--app", "echo")
            self.assertIn("no answer within 500 ms", r.stderr)
            self.assertLess(r.elapsed, 2.5)
        finally:
            for s in fillers:
                s.close()
            srv.close()


class WithCluster(ClusterTest):
    def tls(self):
        """lbctl's TLS settings as an operator (the cluster runs TLS)."""
        return {k: v for k, v in self.c.caller_env().items() if k.startswith("LBCP_TLS_")}

    def setUp(self):
        super().setUp()
        self.c.start_master()
        self.s = self.c.start_slave("slave-a", "zone-a")
        self.c.start_agent("agent-1", "zone-a")
        self.c.wait_master_sees(1)

    def test_config_file_replaces_flags(self):
        cfg = os.path.join(self.c.dir, "lbctl.yaml")
        with open(cfg, "w") as f:
            f.write(f"etcd: [{self.c.etcd.url}]\nprefix: {self.c.prefix}\n"
                    f"slave: {self.s.endpoint}\ncall_timeout: 5s\n")
        env = {"LBCP_CONFIG": cfg, **self.tls()}
        r = lbctl("servers", "-o", "json", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([s["id"] for s in json.loads(r.stdout)], ["agent-1"])
        r = lbctl("request", "--app", "echo", "--client", "cfg-1", "-o", "json", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["server"], "agent-1")
        # the default location: ~/.config/lbcp/lbctl.yaml
        home = os.path.join(self.c.dir, "home")
        os.makedirs(os.path.join(home, ".config/lbcp"))
        os.rename(cfg, os.path.join(home, ".config/lbcp/lbctl.yaml"))
        r = lbctl("slaves", "-o", "json", env={**self.tls(), "HOME": home})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([s["id"] for s in json.loads(r.stdout)], ["slave-a"])
        # a flag wins over the file
        r = lbctl("--etcd", f"http://127.0.0.1:{free_port()}", "slaves",
                  env={**self.tls(), "HOME": home})
        self.assertEqual(r.returncode, 1)

    def test_config_file_tls_block_reaches_the_daemons(self):
        """The file's tls: block is the nng links' TLS (as in the daemons'
        configs): with it and no LBCP_TLS_* a request over TLS is served;
        without it lbctl cannot reach the TLS-only slave and says so."""
        t = self.tls()
        if "LBCP_TLS_CERT" not in t:
            self.skipTest("cluster runs plain (LBCP_TEST_PLAIN)")
        cfg = os.path.join(self.c.dir, "lbctl-tls.yaml")
        base = (f"etcd: [{self.c.etcd.url}]\nprefix: {self.c.prefix}\n"
                f"slave: {self.s.endpoint}\n")
        with open(cfg, "w") as f:
            f.write(base + f"tls: {{ca: {t['LBCP_TLS_CA']}, cert: {t['LBCP_TLS_CERT']}, "
                    f"key: {t['LBCP_TLS_KEY']}}}\n")
        r = lbctl("request", "--app", "echo", "--client", "cfg-tls", "-o", "json",
                  env={"LBCP_CONFIG": cfg})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["server"], "agent-1")
        with open(cfg, "w") as f:
            f.write(base)
        r = lbctl("request", "--app", "echo", "--client", "cfg-tls-2", env={"LBCP_CONFIG": cfg})
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("tls", r.stderr.lower())
        with open(cfg, "w") as f:
            f.write(base + "tls: {ca: /x/ca.pem, bogus: 1}\n")
        r = lbctl("request", "--app", "echo", "--client", "cfg-tls-3", env={"LBCP_CONFIG": cfg})
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{cfg}:4: tls.bogus: unknown key", r.stderr)

    def test_bad_config_file_names_file_line_and_key(self):
        cfg = os.path.join(self.c.dir, "bad.yaml")
        with open(cfg, "w") as f:
            f.write(f"etcd: {self.c.etcd.url}\nslave: tcp://x:1\ncall_timout: 5s\n")
        r = lbctl("servers", env={"LBCP_CONFIG": cfg})
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{cfg}:3: call_timout: unknown key", r.stderr)
        r = lbctl("servers", env={"LBCP_CONFIG": "/nonexistent/lbctl.yaml"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/lbctl.yaml: cannot open", r.stderr)

    def test_leader_and_slave_found_in_etcd(self):
        base = ["--etcd", self.c.etcd.url, "--prefix", self.c.prefix]
        tls = self.tls()
        r = lbctl(*base, "explain", "--app", "echo", "--client", "x", "-o", "json", env=tls)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["server"], "agent-1")
        r = lbctl(*base, "request", "--app=echo", "--client=y", "--location=zone-a", "-o=json",
                  env=tls)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["hops"], [self.s.endpoint])
        r = lbctl(*base, "list", "--app", "echo", env=tls)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("agent-1@127.0.0.1 "), r.stdout)

    def test_flag_equals_value_is_the_same_as_two_words(self):
        a = lbctl(f"--etcd={self.c.etcd.url}", f"--prefix={self.c.prefix}", "--output=json",
                  "servers")
        b = lbctl("--etcd", self.c.etcd.url, "--prefix", self.c.prefix, "-o", "json", "servers")
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertEqual(json.loads(a.stdout)[0]["id"], json.loads(b.stdout)[0]["id"])


if __name__ == "__main__":
    unittest.main()
