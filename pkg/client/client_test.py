"""liblbclient against real etcd and real daemons, through lbclient-probe.

Redirects, slave failover, sticky reconnection (same process, re-request after
a kill, another server after a whole server dies, alternates when no slave
answers), the relay (10 MiB both ways), 16 threads sharing one client, list
mode, and release freeing the session.
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/integration"))
from harness import BIN, ClusterTest, free_port, pid_alive, wait_for  # noqa: E402

PROBE = os.path.join(BIN, "lbclient-probe")


class Repl:
    """An lbclient-probe repl: one command in, one JSON line out."""

    def __init__(self, slaves, client, location=None, env=None):
        args = [PROBE, "--slaves", ",".join(slaves), "--client", client,
                "--connect-timeout", "500"]
        if location:
            args += ["--location", location]
        self.p = subprocess.Popen(args + ["repl"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)

    def __call__(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise AssertionError(f"probe died on {line!r}")
        return json.loads(out)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
            self.p.wait(30)
        else:
            self.p.stdin.close()
        self.p.stdout.close()


def echo_pid(reply):
    assert reply["ok"], reply
    return int(reply["line"].split()[0].split("=")[1])


class ReplTest(ClusterTest):
    """A cluster test driving lbclient-probe REPLs, all closed after the test."""

    def setUp(self):
        super().setUp()
        self.repls = []

    def tearDown(self):
        for r in self.repls:
            r.close()
        super().tearDown()

    def repl_slaves(self):
        return [self.sa.endpoint]

    def repl(self, client, slaves=None, location="zone-a"):
        r = Repl(slaves or self.repl_slaves(), client, location, self.c.env)
        self.repls.append(r)
        return r


def start_relay_cluster(test):
    """A master, slave-a with a relay on a free port (test.relay_port) and
    agent-a1 offering app "bytes" (an echo) with link: relay."""
    test.c.start_master()
    test.relay_port = free_port()
    test.sa = test.c.start_slave("slave-a", "zone-a", relay_listen=f"127.0.0.1:{test.relay_port}")
    apps = {"bytes": {"argv": [PROBE, "serve-echo", "--port", "{port}"],
                      "ready_timeout": "5s", "link": "relay"}}
    test.c.start_agent("agent-a1", "zone-a", apps=apps)
    test.c.wait_master_sees(1)


class ClientLibrary(ReplTest):
    def setUp(self):
        super().setUp()
        self.c.start_master(session_ttl="30s")
        self.sa = self.c.start_slave("slave-a", "zone-a")
        self.sb = self.c.start_slave("slave-b", "zone-b")
        self.agents = {"agent-a1": self.c.start_agent("agent-a1", "zone-a"),
                       "agent-a2": self.c.start_agent("agent-a2", "zone-a"),
                       "agent-b1": self.c.start_agent("agent-b1", "zone-b")}
        self.c.wait_master_sees(3)

    def repl_slaves(self):
        return [self.sa.endpoint, self.sb.endpoint]

    def probe(self, *args, slaves=None, client="probe-1", location=None, timeout=120):
        cmd = [PROBE, "--slaves", ",".join(slaves or [self.sa.endpoint]), "--client", client,
               "--connect-timeout", "500"]
        if location:
            cmd += ["--location", location]
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                           env=self.c.env)
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        self.assertTrue(lines, f"no output: rc={r.returncode} {r.stderr}")
        return lines[-1]

    def test_redirect_is_followed_and_confirmed(self):
        out = self.probe("request", "echo", location="zone-b")
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["hops"], 2)
        self.assertEqual(out["hop"], [self.sa.endpoint, self.sb.endpoint])
        self.assertEqual(out["slave"], "slave-b")
        self.assertEqual(out["server"], "agent-b1")
        self.assertTrue(out["confirmed"])
        # the probe closed its client: the held session was released, its process stopped
        wait_for(lambda: not pid_alive(out["pid"]), 10, what="released process stopped")

    def test_first_slave_dead_second_slave_serves(self):
        dead = self.c.url()
        t0 = time.monotonic()
        out = self.probe("request", "echo", slaves=[dead, self.sa.endpoint], location="zone-a")
        self.assertTrue(out["ok"], out)
        self.assertEqual(out["slave"], "slave-a")
        self.assertEqual(out["hop"], [self.sa.endpoint])
        self.assertLess(time.monotonic() - t0, 10, "failover must not wait for the long timeout")

    def test_all_slaves_dead_fails_with_unavailable(self):
        dead = [self.c.url(), self.c.url()]
        out = self.probe("request", "echo", slaves=dead)
        self.assertFalse(out["ok"])
        self.assertIn("no slave served", out["msg"])

    def test_sticky_same_process_then_new_process_after_kill(self):
        r = self.repl("sticky-1")
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        pid = echo_pid(r("echo hi"))
        self.assertEqual(pid, first["pid"])
        again = r("reconnect")
        self.assertEqual((again["how"], again["pid"]), ("same", pid))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 5, what="process death")
        self.assertFalse(r("echo after-kill")["ok"], "the connection must break")
        after = r("reconnect")
        self.assertTrue(after["ok"], after)
        self.assertEqual(after["how"], "rerequest")
        self.assertEqual(after["server"], first["server"], "affinity keeps the server")
        self.assertEqual(after["session"], first["session"])
        self.assertNotEqual(after["pid"], pid)
        self.assertEqual(echo_pid(r("echo back")), after["pid"])

    def test_whole_server_killed_moves_to_another_server(self):
        r = self.repl("sticky-2")
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        self.agents[first["server"]].stop(signal.SIGKILL)
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(first["pid"]), 5, what="process death")
        after = r("reconnect")
        self.assertTrue(after["ok"], after)
        self.assertEqual(after["how"], "rerequest")
        self.assertNotEqual(after["server"], first["server"])
        self.assertEqual(echo_pid(r("echo moved")), after["pid"])

    def test_slaves_unreachable_uses_a_process_on_an_alternate(self):
        r = self.repl("sticky-3", slaves=[self.sa.endpoint])
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        spare = r("request echo other-client")
        self.assertTrue(spare["ok"], spare)
        self.assertNotEqual(spare["server"], first["server"], "least-loaded spreads")
        self.assertIn(spare["server"], first["alternates"])
        for d in (self.sa, self.sb):
            d.stop(signal.SIGKILL)
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(first["pid"]), 5, what="process death")
        after = r("reconnect")
        self.assertTrue(after["ok"], after)
        self.assertEqual(after["how"], "alternate")
        self.assertEqual(after["server"], spare["server"])
        self.assertEqual(echo_pid(r("echo spare")), spare["pid"])

    def test_sixteen_threads_share_one_client(self):
        out = self.probe("threads", "echo", "16", "4", location="zone-a")
        self.assertEqual((out["ok"], out["fail"], out["distinct_sessions"]), (64, 0, 64), out)

    def test_list_mode_reports_every_server_with_users(self):
        holder = self.repl("holder", location="zone-b")
        self.assertTrue(holder("request echo lister")["ok"])
        def users_b1():
            out = self.probe("list", "echo")
            by = {s["id"]: s for s in out["servers"]}
            return by if by.get("agent-b1", {}).get("users") == 1 else None
        by = wait_for(users_b1, 10, 0.3, "agent-b1 counting its user")
        self.assertEqual(sorted(by), ["agent-a1", "agent-a2", "agent-b1"])
        self.assertTrue(all(s["status"] == "UP" and s["group"] == "primary" for s in by.values()))
        r = self.c.lbctl("--slave", self.sa.endpoint, "list", "--app", "echo")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [l.split() for l in r.stdout.splitlines()]
        self.assertIn(["agent-b1@127.0.0.1", "UP", "1", "primary"], rows)
        self.assertEqual(len(rows), 3)

    def test_release_frees_the_session_and_stops_the_process(self):
        r = self.repl("releaser")
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        key = f"/lb/sessions/{first['session']}"
        wait_for(lambda: key in self.c.etcd.keys("/lb/sessions/"), 5, what="session in etcd")
        self.assertTrue(r("close")["ok"])
        wait_for(lambda: key not in self.c.etcd.keys("/lb/sessions/"), 5,
                 what="session gone from etcd")
        wait_for(lambda: not pid_alive(first["pid"]), 10, what="process stopped")


class Relay(ClusterTest):
    def setUp(self):
        super().setUp()
        start_relay_cluster(self)

    def test_relay_carries_ten_mebibytes_both_ways_byte_exact(self):
        n = 10 * 1024 * 1024
        cmd = [PROBE, "--slaves", self.sa.endpoint, "--client", "relay-1", "--location",
               "zone-a", "relay", "bytes", str(n)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=self.c.env)
        out = json.loads(r.stdout.splitlines()[-1])
        self.assertTrue(out["relay"], out)
        self.assertEqual(out["relay_endpoint"], f"127.0.0.1:{self.relay_port}")
        self.assertEqual((out["sent"], out["received"], out["mismatched"]), (n, n, 0), out)
        self.assertTrue(out["ok"], out)
        st = self.c.stats(self.sa.endpoint)["counters"]
        self.assertGreaterEqual(st.get('slave_relay_bytes_total{dir="up"}', 0), n)
        self.assertGreaterEqual(st.get('slave_relay_bytes_total{dir="down"}', 0), n)

    def test_unknown_token_is_refused(self):
        import socket
        with socket.create_connection(("127.0.0.1", self.relay_port), timeout=5) as s:
            s.sendall(b"not-a-token\n")
            self.assertEqual(s.recv(10), b"", "the relay must close on an unknown token")
        st = self.c.stats(self.sa.endpoint)["counters"]
        self.assertEqual(st.get("slave_relay_refused_total", 0), 1)


if __name__ == "__main__":
    unittest.main()
