"""Failures: a killed agent leaves the cluster; malformed input never kills a daemon."""
import os
import signal
import time
import unittest

from harness import ClusterTest, pid_alive, wait_for


class AgentDeath(ClusterTest):
    def test_sigkilled_agent_leaves_etcd_and_gets_no_assignment(self):
        c = self.c
        c.start_master()
        sa = c.start_slave("slave-a", "zone-a")
        victim = c.start_agent("agent-a1", "zone-a")
        c.start_agent("agent-a2", "zone-a")
        c.wait_master_sees(2)
        victim.stop(signal.SIGKILL)
        wait_for(lambda: "/lb/servers/agent-a1" not in c.etcd.keys("/lb/servers/"), 10,
                 what="lease expiry of the killed agent")
        time.sleep(0.3)
        for i in range(8):
            _, out, _ = c.request(sa, "echo", f"after-kill-{i}", location="zone-a")
            self.assertEqual(out["server"], "agent-a2", out)
            self.assertTrue(pid_alive(out["pid"]))


class LaunchFailure(ClusterTest):
    def test_failed_launch_moves_to_the_next_server(self):
        c = self.c
        c.start_master()
        sa = c.start_slave("slave-a", "zone-a")
        # the best-ranked server's app exits at once: every launch there fails
        c.start_agent("agent-bad", "zone-a", group="primary", priority=0,
                      apps={"echo": {"argv": ["/bin/false", "{port}"], "ready_timeout": "2s"}})
        c.start_agent("agent-good", "zone-a", group="backup", priority=1)
        c.wait_master_sees(2)
        _, out, _ = c.request(sa, "echo", "lf-1", location="zone-a")
        self.assertEqual(out["server"], "agent-good", out)
        self.assertTrue(pid_alive(out["pid"]))
        st = c.stats(c.master_rpc)["counters"]
        self.assertGreaterEqual(st.get('master_launches_total{result="failed"}', 0), 1)
        self.assertIn("launch failed", c.daemons["master-1"].output())
        # the failed attempt left nothing pending on agent-bad
        r = c.lbctl("--master", c.master_rpc, "explain", "--app", "echo", "--client", "lf-2",
                    "--location", "zone-a", "-o", "json")
        import json
        bad = {s["id"]: s for s in json.loads(r.stdout)["servers"]}["agent-bad"]
        self.assertIn("0/100 sessions", bad["detail"])

    def test_every_launch_failing_is_a_reject_naming_the_servers(self):
        c = self.c
        c.start_master()
        sa = c.start_slave("slave-a", "zone-a")
        c.start_agent("agent-bad", "zone-a",
                      apps={"echo": {"argv": ["/bin/false"], "ready_timeout": "2s"}})
        c.wait_master_sees(1)
        rc, out, _ = c.request(sa, "echo", "lf-3", location="zone-a", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertEqual(out["action"], "REJECT")
        self.assertIn("launch failed", out["reason"])
        self.assertIn("agent-bad", out["reason"])
        self.assertTrue(c.daemons["master-1"].alive())


class MalformedInput(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        self.agent = c.start_agent("agent-a1", "zone-a")
        c.wait_master_sees(1)

    def check_daemon(self, addr, counter_prefix):
        c = self.c
        before = c.stats(addr)["counters"]
        cases = {
            "garbage": os.urandom(64) + b"\xff\xff\xff",
            "truncated": b"\x08\x01\x10\x05\x52\x20\x0a\x05hello",  # length says 32, 7 follow
            "oversized": b"\x00" * (1024 * 1024),
        }
        for name, data in cases.items():
            rc, out = c.rawreq(addr, data)
            self.assertEqual(rc, 0, f"{name}: no answer from {addr}: {out}")
            self.assertTrue(out.startswith("error code="), f"{name}: {out}")
            if name == "oversized":
                self.assertIn("over the limit", out)
            else:
                self.assertIn("not a valid Envelope", out)
        after = c.stats(addr)["counters"]
        errors = lambda st: sum(v for k, v in st.items() if k.startswith("wire_errors_total"))
        self.assertGreaterEqual(errors(after) - errors(before), 3)
        return after

    def test_master_survives_malformed_messages(self):
        self.check_daemon(self.c.master_rpc, "master")
        _, out, _ = self.c.request(self.sa, "echo", "good-after-master", location="zone-a")
        self.assertEqual(out["action"], "SERVE")
        self.assertIn("bad request", self.c.daemons["master-1"].output())

    def test_slave_survives_malformed_messages(self):
        self.check_daemon(self.sa.endpoint, "slave")
        _, out, _ = self.c.request(self.sa, "echo", "good-after-slave", location="zone-a")
        self.assertEqual(out["action"], "SERVE")
        self.assertIn("bad request", self.c.daemons["slave-a"].output())

    def test_agent_survives_malformed_messages(self):
        self.check_daemon(self.agent.endpoint, "agent")
        _, out, _ = self.c.request(self.sa, "echo", "good-after-agent", location="zone-a")
        self.assertEqual(out["action"], "SERVE")
        self.assertTrue(pid_alive(out["pid"]))

    def test_wrong_message_type_gets_a_specific_error(self):
        # a valid envelope (version 1) whose body is a ServerLoad: not a request
        data = bytes([0x08, 0x01, 0x82, 0x01, 0x02, 0x10, 0x01])
        rc, out = self.c.rawreq(self.c.master_rpc, data)
        self.assertIn("unexpected message", out)
        rc, out = self.c.rawreq(self.sa.endpoint, data)
        self.assertIn("unexpected message", out)


if __name__ == "__main__":
    unittest.main()
