"""The request path end to end: serve, redirect with confirmation, stickiness, rejects."""
import os
import signal
import time
import unittest

from harness import ClusterTest, echo_line, pid_alive, wait_for


class RequestPath(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        self.sb = c.start_slave("slave-b", "zone-b")
        c.start_agent("agent-a1", "zone-a")
        c.start_agent("agent-b1", "zone-b")
        c.wait_master_sees(2)

    def test_serve_returns_a_live_process_that_answers(self):
        rc, out, err = self.c.request(self.sa, "echo", "client-1", location="zone-a")
        self.assertEqual(out["action"], "SERVE", out)
        self.assertEqual(out["hops"], [self.sa.endpoint])
        self.assertEqual(out["slave"], "slave-a")
        self.assertEqual(out["server"], "agent-a1")
        self.assertTrue(pid_alive(out["pid"]), out)
        line = echo_line(out["host"], out["port"], "hello")
        self.assertEqual(line, f"pid={out['pid']} session={out['session']} echo=hello")

    def test_redirect_across_zones_is_confirmed_by_the_second_slave(self):
        rc, out, err = self.c.request(self.sa, "echo", "client-b", location="zone-b")
        self.assertEqual(out["action"], "SERVE", out)
        self.assertEqual(out["hops"], [self.sa.endpoint, self.sb.endpoint])
        self.assertTrue(out["redirected"])
        self.assertEqual(out["slave"], "slave-b")
        self.assertEqual(out["server"], "agent-b1")
        self.assertTrue(out["confirmed"], "the second slave's master call must confirm")
        self.assertTrue(pid_alive(out["pid"]))
        self.assertIn(f"pid={out['pid']}", echo_line(out["host"], out["port"]))
        st = self.c.stats(self.c.master_rpc)["counters"]
        self.assertGreaterEqual(st.get("master_confirms_total", 0), 1)
        self.assertGreaterEqual(st.get('master_selections_total{action="redirect"}', 0), 1)
        # the redirect launched exactly one process; the confirmation reused it,
        # answered from the master's view (no second call to the agent)
        self.assertEqual(st.get('master_launches_total{result="ok"}', 0), 1)
        self.assertEqual(st.get('master_sticky_answers_total{via="view"}', 0), 1)

    def test_sticky_same_process_then_new_process_after_kill(self):
        _, first, _ = self.c.request(self.sa, "echo", "sticky-1", location="zone-a")
        _, again, _ = self.c.request(self.sa, "echo", "sticky-1", location="zone-a")
        self.assertEqual((again["server"], again["pid"], again["session"]),
                         (first["server"], first["pid"], first["session"]))
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: not pid_alive(first["pid"]), 5, what="process death")
        _, after, _ = self.c.request(self.sa, "echo", "sticky-1", location="zone-a")
        self.assertNotEqual(after["pid"], first["pid"])
        self.assertTrue(pid_alive(after["pid"]))
        self.assertEqual(after["server"], first["server"], "affinity keeps the server")
        self.assertIn(f"pid={after['pid']}", echo_line(after["host"], after["port"]))

    def test_killed_process_is_not_handed_back_even_when_asked_at_once(self):
        for i in range(5):
            _, first, _ = self.c.request(self.sa, "echo", f"quick-{i}", location="zone-a")
            os.kill(first["pid"], signal.SIGKILL)  # and ask again without waiting
            _, after, _ = self.c.request(self.sa, "echo", f"quick-{i}", location="zone-a")
            self.assertNotEqual(after["pid"], first["pid"])
            self.assertIn(f"pid={after['pid']}", echo_line(after["host"], after["port"]))

    def test_different_clients_get_different_processes(self):
        _, a, _ = self.c.request(self.sa, "echo", "c-1", location="zone-a")
        _, b, _ = self.c.request(self.sa, "echo", "c-2", location="zone-a")
        self.assertNotEqual(a["pid"], b["pid"])
        self.assertNotEqual(a["session"], b["session"])

    def test_a_new_session_is_one_etcd_record(self):
        # the session carries client and app; the client's affinity is derived
        # from it (no affinity/ record: one put and one watch event a session)
        etcd = self.c.etcd
        before = set(etcd.keys("/lb/sessions/")) | set(etcd.keys("/lb/affinity/"))
        _, out, _ = self.c.request(self.sa, "echo", "rec-1", location="zone-a")
        key = f"/lb/sessions/{out['session']}"
        wait_for(lambda: key in etcd.keys("/lb/sessions/"), 5, what="session in etcd")
        time.sleep(0.3)  # anything written with it has landed too
        after = set(etcd.keys("/lb/sessions/")) | set(etcd.keys("/lb/affinity/"))
        self.assertEqual(after - before, {key})
        _, again, _ = self.c.request(self.sa, "echo", "rec-1", location="zone-a")
        self.assertEqual((again["session"], again["pid"]), (out["session"], out["pid"]))
        self.assertTrue(again["affinity"], again)

    def test_unknown_app_is_rejected_with_a_reason_naming_it(self):
        rc, out, err = self.c.request(self.sa, "nosuchapp", "client-x", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertEqual(out["action"], "REJECT")
        self.assertIn("nosuchapp", out["reason"])

    def test_no_server_left_is_rejected_with_a_reason(self):
        for name in ("agent-a1", "agent-b1"):
            self.c.daemons[name].stop()
        wait_for(lambda: self.c.etcd.keys("/lb/servers/") == [], 10, what="servers gone")
        time.sleep(0.3)
        rc, out, err = self.c.request(self.sa, "echo", "client-y", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertEqual(out["action"], "REJECT")
        self.assertTrue(out["reason"], out)

    def test_bad_client_id_is_rejected(self):
        rc, out, err = self.c.request(self.sa, "echo", "bad/id", expect_ok=False)
        self.assertEqual(out["action"], "REJECT")
        self.assertIn("client_id", out["reason"])

    def test_servers_table_lists_every_agent(self):
        r = self.c.lbctl("servers", check=True)
        self.assertIn("agent-a1", r.stdout)
        self.assertIn("agent-b1", r.stdout)
        r = self.c.lbctl("servers", "-o", "json", check=True)
        import json
        rows = {s["id"]: s for s in json.loads(r.stdout)}
        self.assertEqual(set(rows), {"agent-a1", "agent-b1"})
        self.assertEqual(rows["agent-a1"]["zone"], "zone-a")
        self.assertEqual(rows["agent-a1"]["status"], "UP")
        self.assertEqual(rows["agent-a1"]["apps"], ["echo"])
        wide = self.c.lbctl("servers", "-o", "wide", check=True).stdout.splitlines()
        self.assertEqual(wide[0].split()[:9], ["ID", "ZONE", "REGION", "GROUP", "STATUS",
                                               "SESSIONS", "CAPACITY", "CPU", "MEM_FREE"])
        a1 = next(line.split() for line in wide if line.startswith("agent-a1"))
        self.assertEqual(a1[2], "region-1")
        self.assertTrue(a1[-1].startswith(f"{self.c.scheme}://127.0.0.1:"), a1)


if __name__ == "__main__":
    unittest.main()
