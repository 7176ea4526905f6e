"""Resilience: daemons up before etcd, an etcd restart, a leader master killed."""
import base64
import signal
import time
import unittest

from harness import ClusterTest, free_port, pid_alive, to_yaml, wait_for


class Resilience(ClusterTest):
    def test_daemons_started_before_etcd_serve_once_it_is_up(self):
        c = self.c
        c.etcd.stop()
        c.master_rpc = c.url()
        c.master_report = c.url()
        c.start("master-1", "lb-master", to_yaml({
            "id": "master-1", "listen": c.master_rpc, "report_listen": c.master_report,
            "etcd": c.etcd.url, "lease_ttl": "2s"}))
        time.sleep(1.5)
        self.assertTrue(c.daemons["master-1"].alive(), "the master must wait for etcd, not exit")
        c.etcd.start()
        sa = c.start_slave("slave-a", "zone-a")
        c.start_agent("agent-a1", "zone-a")
        c.wait_master_sees(1)
        _, out, _ = c.request(sa, "echo", "early-1", location="zone-a")
        self.assertEqual(out["action"], "SERVE")
        self.assertTrue(pid_alive(out["pid"]))

    def test_etcd_restart_keeps_the_request_path(self):
        c = self.c
        c.start_master()
        sa = c.start_slave("slave-a", "zone-a")
        c.start_agent("agent-a1", "zone-a")
        c.wait_master_sees(1)
        _, before, _ = c.request(sa, "echo", "restart-1", location="zone-a")
        c.etcd.stop()
        time.sleep(1)
        c.etcd.start()
        # registrations come back (same lease if it survived, or a new one)
        wait_for(lambda: "/lb/servers/agent-a1" in c.etcd.keys("/lb/servers/"), 15,
                 what="agent registration after the restart")
        # the master stepped down while it could not refresh its leader lease
        # (fencing); it leads again once etcd confirms the key is still its own
        after = wait_for(lambda: c.request(sa, "echo", "restart-1", location="zone-a",
                                           expect_ok=False)[1], 5, 0.1, "leading again")
        self.assertEqual(after["pid"], before["pid"], "the sticky session survives")
        _, other, _ = c.request(sa, "echo", "restart-2", location="zone-a")
        self.assertTrue(pid_alive(other["pid"]))

    def test_standby_master_takes_over_and_keeps_sessions(self):
        c = self.c
        rpc1, rep1 = c.url(), c.url()
        rpc2, rep2 = c.url(), c.url()
        base = {"etcd": c.etcd.url, "lease_ttl": "2s", "report_stale": "3s"}
        m1 = c.start("master-1", "lb-master",
                     to_yaml(dict(base, id="master-1", listen=rpc1, report_listen=rep1)))
        wait_for(lambda: "/lb/leader" in c.etcd.keys("/lb/"), 10, what="leader")
        c.start("master-2", "lb-master",
                to_yaml(dict(base, id="master-2", listen=rpc2, report_listen=rep2)))
        c.master_rpc, c.master_report = rpc1, rep1
        sa = c.start_slave("slave-a", "zone-a", masters=[rpc1, rpc2], report=[rep1, rep2])
        c.start_agent("agent-a1", "zone-a", report=[rep1, rep2])
        c.start_agent("agent-a2", "zone-a", report=[rep1, rep2])
        c.wait_master_sees(2)
        _, first, _ = c.request(sa, "echo", "fo-1", location="zone-a")
        # the standby refuses selections, naming the leader
        r = c.lbctl("--master", rpc2, "explain", "--app", "echo", "--client", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("standby", r.stderr)
        self.assertIn("master-1", r.stderr)
        # an older version wrote affinity/ records beside the sessions: a new
        # leader removes them (the affinity comes from the sessions)
        legacy = b"/lb/affinity/legacy-client/echo"
        c.etcd.call("kv/put", {"key": base64.b64encode(legacy).decode(),
                               "value": base64.b64encode(b"\x0a\x03sid").decode()})
        self.assertEqual(c.etcd.keys("/lb/affinity/"), [legacy.decode()])
        m1.stop(signal.SIGKILL)
        def served():
            rc, out, _ = c.request(sa, "echo", "fo-1", location="zone-a", expect_ok=False)
            return out if rc == 0 else None
        again = wait_for(served, 20, 0.3, "service by the standby")
        self.assertEqual((again["server"], again["pid"]), (first["server"], first["pid"]),
                         "the session outlives the leader")
        _, new, _ = c.request(sa, "echo", "fo-2", location="zone-a")
        self.assertTrue(pid_alive(new["pid"]))
        leader = c.etcd.call("kv/range", {"key": base64.b64encode(b"/lb/leader").decode()})
        self.assertEqual(base64.b64decode(leader["kvs"][0]["value"]), b"master-2")
        wait_for(lambda: c.etcd.keys("/lb/affinity/") == [], 5, what="legacy affinity removed")

    def test_no_master_gives_a_clear_error(self):
        c = self.c
        c.start_master()
        sa = c.start_slave("slave-a", "zone-a")
        c.daemons["master-1"].stop()
        rc, out, err = c.request(sa, "echo", "orphan", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertIn("no master answered", err)
        self.assertTrue(c.daemons["slave-a"].alive())


if __name__ == "__main__":
    unittest.main()
