"""Draining: no new sessions on a drained server, its sticky clients still served,
`drain --wait` returns once its last session is released; disable moves them."""
import base64
import json
import subprocess
import os
import time
import unittest

from harness import BIN, ClusterTest, pid_alive, wait_for


class Drain(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        c.start_agent("agent-a1", "zone-a")
        c.start_agent("agent-a2", "zone-a")
        c.wait_master_sees(2)

    def explain_verdict(self, server):
        r = self.c.lbctl("--master", self.c.master_rpc, "explain", "--app", "echo",
                         "--client", "probe", "--location", "zone-a", "-o", "json")
        return {s["id"]: s["verdict"] for s in json.loads(r.stdout)["servers"]}.get(server)

    def test_drained_server_keeps_its_sticky_client_and_takes_no_new_one(self):
        c = self.c
        _, sticky, _ = c.request(self.sa, "echo", "sticky-1", location="zone-a")
        x = sticky["server"]
        other = "agent-a2" if x == "agent-a1" else "agent-a1"
        c.lbctl("drain", x, check=True)
        wait_for(lambda: self.explain_verdict(x) == "drained", 5, 0.05, "the drain at the master")
        for i in range(6):
            _, out, _ = c.request(self.sa, "echo", f"new-{i}", location="zone-a")
            self.assertEqual(out["server"], other, f"a new client went to the drained {x}")
        _, again, _ = c.request(self.sa, "echo", "sticky-1", location="zone-a")
        self.assertEqual((again["server"], again["pid"]), (x, sticky["pid"]))
        self.assertFalse(again["moved"])
        status = {s["id"]: s["status"] for s in
                  json.loads(c.lbctl("servers", "-o", "json", check=True).stdout)}
        self.assertEqual(status[x], "DRAINING")
        c.lbctl("undrain", x, check=True)
        wait_for(lambda: self.explain_verdict(x) != "drained", 5, 0.05, "the undrain")

    def test_drain_wait_returns_when_the_last_session_is_released(self):
        c = self.c
        _, s1, _ = c.request(self.sa, "echo", "w-1", location="zone-a")
        x = s1["server"]
        # every session on x, so the wait has exactly these to wait for
        sessions = [s1["session"]]
        for i in range(2, 6):
            _, out, _ = c.request(self.sa, "echo", f"w-{i}", location="zone-a")
            if out["server"] == x:
                sessions.append(out["session"])
        wait_for(lambda: all(f"/lb/sessions/{s}" in c.etcd.keys("/lb/sessions/")
                             for s in sessions), 5, what="sessions in etcd")
        waiter = subprocess.Popen(
            [os.path.join(BIN, "lbctl"), "--etcd", c.etcd.url, "drain", x, "--wait",
             "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        self.assertIsNone(waiter.poll(), "drain --wait returned with sessions left")
        for s in sessions:
            c.lbctl("--master", c.master_ops, "release", s, check=True)
        t0 = time.monotonic()
        out, err = waiter.communicate(timeout=15)
        self.assertEqual(waiter.returncode, 0, err)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("waiting", out)
        wait_for(lambda: not pid_alive(s1["pid"]), 5, what="the released process to stop")

    def renew(self, client, session):
        def field(num, payload):  # a length-delimited protobuf field
            tag = num << 3 | 2
            head = bytes([tag]) if tag < 128 else bytes([tag & 0x7f | 0x80, tag >> 7])
            return head + bytes([len(payload)]) + payload
        body = field(1, client.encode()) + field(2, session.encode())
        envelope = bytes([0x08, 0x01]) + field(22, body)  # version 1, renew_request
        rc, out = self.c.rawreq(self.sa.endpoint, envelope)
        self.assertEqual(rc, 0, out)
        return out

    def test_disabled_server_sessions_are_not_renewed(self):
        c = self.c
        _, s1, _ = c.request(self.sa, "echo", "ren-1", location="zone-a")
        self.assertIn("session_reply ok=1 unknown=0", self.renew("ren-1", s1["session"]))
        c.lbctl("disable", s1["server"], check=True)
        wait_for(lambda: self.explain_verdict(s1["server"]) == "disabled", 5, 0.05, "the disable")
        self.assertIn("session_reply ok=0 unknown=1", self.renew("ren-1", s1["session"]))
        st = c.stats(c.master_rpc)["counters"]
        self.assertGreaterEqual(st.get('master_renewals_refused_total{reason="disabled"}', 0), 1)
        c.lbctl("enable", s1["server"], check=True)
        wait_for(lambda: self.explain_verdict(s1["server"]) != "disabled", 5, 0.05, "the enable")
        self.assertIn("session_reply ok=1 unknown=0", self.renew("ren-1", s1["session"]))

    def test_disabled_server_moves_its_sticky_client(self):
        c = self.c
        _, sticky, _ = c.request(self.sa, "echo", "dis-1", location="zone-a")
        x = sticky["server"]
        c.lbctl("disable", x, check=True)
        wait_for(lambda: self.explain_verdict(x) == "disabled", 5, 0.05, "the disable")
        _, again, _ = c.request(self.sa, "echo", "dis-1", location="zone-a")
        self.assertNotEqual(again["server"], x)
        self.assertTrue(again["moved"])
        self.assertIn("disabled", again["reason"])
        # the move frees what the old session held: its process goes (goal 1 s)
        wait_for(lambda: not pid_alive(sticky["pid"]), 2, 0.02, "the old process to stop")
        self.assertTrue(pid_alive(again["pid"]))

    def test_agent_stops_a_process_whose_session_the_master_ended(self):
        """A session that ends without a stop reaching the agent (here it is
        deleted from etcd behind everyone's back) has its process stopped by the
        agent once the leader's periodic session list no longer names it."""
        c = self.c
        _, s, _ = c.request(self.sa, "echo", "ghost-1", location="zone-a")
        _, keep, _ = c.request(self.sa, "echo", "kept-1", location="zone-a")
        key = f"{c.prefix}sessions/{s['session']}".encode()
        c.etcd.call("kv/deleterange", {"key": base64.b64encode(key).decode()})
        wait_for(lambda: not pid_alive(s["pid"]), 15, 0.1, "the orphaned session's process to stop")
        self.assertTrue(pid_alive(keep["pid"]))

    def syncs(self):
        m = self.c.stats(self.c.master_rpc)["counters"]
        agents = sum(self.c.stats(self.c.daemons[a].endpoint)["counters"].get("agent_syncs_total", 0)
                     for a in ("agent-a1", "agent-a2"))
        return (m.get('master_agent_syncs_total{result="sent"}', 0),
                m.get('master_agent_syncs_total{result="in_step"}', 0), agents)

    def test_session_sync_is_sent_only_to_agents_out_of_step(self):
        """The leader's periodic session list goes only to an agent whose last
        report's session digest differs from the leader's list for it: with
        every session in step nothing is sent; a session ended behind the
        agent's back puts it out of step, it gets the list and stops the
        process, and is back in step."""
        c = self.c
        outs = [c.request(self.sa, "echo", f"steady-{i}", location="zone-a")[1] for i in range(4)]
        # in step: a sync round (every 5 s) finds both agents' digests equal to its lists
        wait_for(lambda: self.syncs()[1] >= 2, 15, 0.2, "a sync round with both agents in step")
        sent0, step0, agents0 = self.syncs()
        time.sleep(5.5)  # at least one more round
        sent1, step1, agents1 = self.syncs()
        self.assertGreaterEqual(step1 - step0, 2, "the next round found them in step")
        self.assertEqual((sent1, agents1), (sent0, agents0), "a list sent to an agent in step")
        # out of step: the session's key deleted behind everyone's back
        gone = outs[0]
        key = f"{c.prefix}sessions/{gone['session']}".encode()
        c.etcd.call("kv/deleterange", {"key": base64.b64encode(key).decode()})
        wait_for(lambda: not pid_alive(gone["pid"]), 20, 0.1, "the ended session's process to stop")
        self.assertGreater(self.syncs()[0], sent1, "the out-of-step agent was sent the list")
        for o in outs[1:]:
            self.assertTrue(pid_alive(o["pid"]), "a live session's process was stopped")


if __name__ == "__main__":
    unittest.main()
