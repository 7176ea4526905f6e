"""liblbclient gaps (issue 4), against real etcd and real daemons.

Relay teardown on release and on process death, one-time relay tokens,
keepalive against a short session_ttl (held sessions live on, abandoned ones
are reaped and their processes stopped), and `lbctl list` (JSON and the seed's
plain layout) against a running cluster.
"""
import json
import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/integration"))
from client_test import Repl, ReplTest, echo_pid, start_relay_cluster  # noqa: E402
from harness import ClusterTest, pid_alive, wait_for  # noqa: E402

EOF_BOUND_MS = 3000  # a torn-down link must reach the client within this


def refused(port, token):
    """Presents token to the relay; True when it closes without sending data."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(token.encode() + b"\n")
        try:
            return s.recv(10) == b""
        except ConnectionResetError:
            return True


class RelayTeardown(ReplTest):
    def setUp(self):
        super().setUp()
        start_relay_cluster(self)

    def counter(self, name):
        return self.c.stats(self.sa.endpoint)["counters"].get(name, 0)

    def open_relayed(self, r):
        first = r("open bytes")
        self.assertTrue(first["ok"], first)
        self.assertTrue(first["relay"], first)
        self.assertEqual(first["relay_endpoint"], f"127.0.0.1:{self.relay_port}")
        self.assertEqual(r("echo ping"), {"cmd": "echo", "ok": True, "line": "ping"})
        return first

    def test_release_closes_the_relayed_connection_and_stops_the_process(self):
        r = self.repl("relay-release")
        first = self.open_relayed(r)
        self.assertTrue(pid_alive(first["pid"]))
        self.assertTrue(r("release")["ok"])
        out = r(f"wait-eof {EOF_BOUND_MS + 2000}")
        self.assertTrue(out["closed"], f"the slave must close the relayed link: {out}")
        self.assertLessEqual(out["ms"], EOF_BOUND_MS, out)
        self.assertEqual(out["bytes"], 0, out)
        wait_for(lambda: not pid_alive(first["pid"]), 10, what="released process stopped")
        wait_for(lambda: f"/lb/sessions/{first['session']}" not in
                 self.c.etcd.keys("/lb/sessions/"), 5, what="session gone from etcd")

    def test_process_killed_closes_the_relayed_connection(self):
        r = self.repl("relay-kill")
        first = self.open_relayed(r)
        os.kill(first["pid"], signal.SIGKILL)
        out = r(f"wait-eof {EOF_BOUND_MS + 2000}")
        self.assertTrue(out["closed"], f"the client must see the link end: {out}")
        self.assertLessEqual(out["ms"], EOF_BOUND_MS, out)
        # and the sticky comes back on a new process through the relay
        after = r("reconnect")
        self.assertTrue(after["ok"], after)
        self.assertTrue(after["relay"], after)
        self.assertNotEqual(after["pid"], first["pid"])
        self.assertEqual(r("echo again")["line"], "again")

    def test_token_is_single_use_and_unknown_tokens_are_refused(self):
        r = self.repl("relay-token")
        first = self.open_relayed(r)
        self.assertTrue(first["relay_token"])
        self.assertEqual(self.counter("slave_relay_refused_total"), 0)
        self.assertTrue(refused(self.relay_port, first["relay_token"]),
                        "a used token must be refused")
        self.assertEqual(self.counter("slave_relay_refused_total"), 1)
        self.assertTrue(refused(self.relay_port, "0123456789abcdef0123456789abcdef"),
                        "an unknown token must be refused")
        self.assertEqual(self.counter("slave_relay_refused_total"), 2)
        # the first link is untouched by the refusals
        self.assertEqual(r("echo still")["line"], "still")
        # a fresh token works exactly once
        other = r("request bytes relay-token-2")
        self.assertTrue(other["ok"], other)
        with socket.create_connection(("127.0.0.1", self.relay_port), timeout=5) as s:
            s.sendall(other["relay_token"].encode() + b"\nfresh\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(100)
                self.assertTrue(chunk, "a fresh token must be spliced")
                buf += chunk
            self.assertEqual(buf, b"fresh\n")
        self.assertTrue(refused(self.relay_port, other["relay_token"]))
        self.assertEqual(self.counter("slave_relay_refused_total"), 3)


class Keepalive(ReplTest):
    TTL = 3

    def setUp(self):
        super().setUp()
        self.c.start_master(session_ttl=f"{self.TTL}s")
        self.sa = self.c.start_slave("slave-a", "zone-a")
        self.c.start_agent("agent-a1", "zone-a")
        self.c.wait_master_sees(1)

    def sessions(self):
        return self.c.etcd.keys("/lb/sessions/")

    def test_held_session_outlives_several_ttls(self):
        r = self.repl("holder")
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        key = f"/lb/sessions/{first['session']}"
        wait_for(lambda: key in self.sessions(), 5, what="session in etcd")
        t_end = time.monotonic() + 4 * self.TTL
        while time.monotonic() < t_end:
            self.assertIn(key, self.sessions(), "a held session must not expire")
            time.sleep(0.5)
        self.assertTrue(pid_alive(first["pid"]))
        self.assertEqual(echo_pid(r("echo alive")), first["pid"])
        again = r("request echo holder")  # asks the master: the same session comes back
        self.assertTrue(again["ok"], again)
        self.assertEqual((again["session"], again["pid"]), (first["session"], first["pid"]))

    def test_abandoned_holder_session_is_reaped(self):
        r = self.repl("abandoner")
        first = r("open echo")
        self.assertTrue(first["ok"], first)
        key = f"/lb/sessions/{first['session']}"
        wait_for(lambda: key in self.sessions(), 5, what="session in etcd")
        r.p.kill()  # closed without release: nobody renews
        r.p.wait()
        wait_for(lambda: key not in self.sessions(), self.TTL + 4, 0.2,
                 "expired session reaped from etcd")
        wait_for(lambda: not pid_alive(first["pid"]), 10, what="expired session's process stopped")

    def test_lbctl_request_session_is_reaped(self):
        _, out, _ = self.c.request(self.sa, "echo", "lbctl-client", location="zone-a")
        sid = out.get("session") or out.get("session_id")
        self.assertTrue(sid, out)
        key = f"/lb/sessions/{sid}"
        wait_for(lambda: key in self.sessions(), 5, what="session in etcd")
        t0 = time.monotonic()
        wait_for(lambda: key not in self.sessions(), self.TTL + 4, 0.2,
                 "unheld session reaped from etcd")
        self.assertGreater(time.monotonic() - t0, 1.0, "reaped too early for a 3s ttl")
        st = self.c.stats(self.c.master_rpc)["counters"]
        self.assertGreaterEqual(st.get("master_sessions_expired_total", 0), 1)


class ListCommand(ClusterTest):
    def setUp(self):
        super().setUp()
        self.c.start_master(session_ttl="30s")
        self.sa = self.c.start_slave("slave-a", "zone-a")
        for name, zone in (("agent-a1", "zone-a"), ("agent-a2", "zone-a"),
                           ("agent-b1", "zone-b")):
            self.c.start_agent(name, zone, group="primary" if name != "agent-a2" else "backup")
        self.c.wait_master_sees(3)

    def test_list_json_and_plain_layout(self):
        holder = Repl([self.sa.endpoint], "lister", "zone-b", self.c.env)
        try:
            got = holder("open echo")
            self.assertTrue(got["ok"], got)

            def listed():
                r = self.c.lbctl("--slave", self.sa.endpoint, "list", "--app", "echo",
                                 "-o", "json")
                self.assertEqual(r.returncode, 0, r.stderr)
                rows = json.loads(r.stdout)
                by = {x["server"]: x for x in rows}
                return by if by.get(got["server"], {}).get("users") == 1 else None
            by = wait_for(listed, 10, 0.3, "the holder's server counting its user")
            self.assertEqual(sorted(by), ["agent-a1", "agent-a2", "agent-b1"])
            for sid, x in by.items():
                self.assertEqual(x["status"], "UP", x)
                self.assertIsInstance(x["users"], int)
                self.assertEqual(x["group"], "backup" if sid == "agent-a2" else "primary", x)
                self.assertEqual(x["host"], "127.0.0.1", x)
            self.assertEqual(sum(x["users"] for x in by.values()), 1)

            r = self.c.lbctl("--slave", self.sa.endpoint, "list", "--app", "echo")
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertEqual(len(lines), 3, r.stdout)
            seen = {}
            for line in lines:
                m = re.fullmatch(r"(\S+)@(\S+) (UP|DOWN|DRAINING|DISABLED) (\d+) (\S+)", line)
                self.assertTrue(m, f"not 'endpoint STATUS users GROUP': {line!r}")
                seen[m.group(1)] = (m.group(2), m.group(3), int(m.group(4)), m.group(5))
            self.assertEqual(seen, {k: (x["host"], x["status"], x["users"], x["group"])
                                    for k, x in by.items()})
        finally:
            holder.close()


if __name__ == "__main__":
    unittest.main()
