"""Sticky repeats answered from the master's view (issue 10 item 2): no agent
call while the process is alive as the agent's exit reports tell; a process
killed a moment ago is not handed back; a client that could not reach its
process makes the master ask the agent again."""
import os
import signal
import time
import unittest

from harness import ClusterTest, echo_line, pid_alive, wait_for


def launches(stats):
    """Every launch the agent answered (ok, reused, pool hits, failures)."""
    return sum(v for k, v in stats["counters"].items() if k.startswith("agent_launches_total"))


class StickyView(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.slave = c.start_slave("slave-a", "zone-a")
        self.agent = c.start_agent("agent-a1", "zone-a")
        c.wait_master_sees(1)

    def req(self, client, extra=()):
        _, out, _ = self.c.request(self.slave, "echo", client, location="zone-a", extra=extra)
        self.assertEqual(out["action"], "SERVE", out)
        return out

    def counter(self, addr, name):
        return self.c.stats(addr)["counters"].get(name, 0)

    def test_sticky_repeat_makes_no_agent_call(self):
        first = self.req("view-1")
        time.sleep(0.5)  # a periodic report after the launch (not needed, but the usual case)
        before = launches(self.c.stats(self.agent.endpoint))
        for _ in range(5):
            again = self.req("view-1")
            self.assertEqual((again["pid"], again["session"]), (first["pid"], first["session"]))
        self.assertEqual(launches(self.c.stats(self.agent.endpoint)), before,
                         "a sticky repeat reached the agent")
        self.assertGreaterEqual(
            self.counter(self.c.master_rpc, 'master_sticky_answers_total{via="view"}'), 5)
        self.assertIn(f"pid={first['pid']}", echo_line(first["host"], first["port"]))

    def test_repeat_100ms_after_sigkill_gets_a_new_live_pid(self):
        for i in range(3):
            first = self.req(f"kill-{i}")
            self.req(f"kill-{i}")  # the view now knows it alive
            os.kill(first["pid"], signal.SIGKILL)
            time.sleep(0.1)
            after = self.req(f"kill-{i}")
            self.assertNotEqual(after["pid"], first["pid"], "a killed process was handed back")
            self.assertTrue(pid_alive(after["pid"]))
            self.assertIn(f"pid={after['pid']}", echo_line(after["host"], after["port"]))
            # the new process is then served from the view again
            again = self.req(f"kill-{i}")
            self.assertEqual(again["pid"], after["pid"])

    def test_unreachable_pid_makes_the_master_ask_the_agent(self):
        first = self.req("unreach-1")
        before = launches(self.c.stats(self.agent.endpoint))
        asked = self.counter(self.c.master_rpc, 'master_sticky_unreachable_total')
        # the process is alive and accepts: the agent probes it and hands it back
        again = self.req("unreach-1", extra=("--unreachable-pid", str(first["pid"])))
        self.assertEqual(again["pid"], first["pid"])
        self.assertEqual(launches(self.c.stats(self.agent.endpoint)), before + 1)
        self.assertEqual(self.counter(self.c.master_rpc, 'master_sticky_unreachable_total'),
                         asked + 1)
        # a pid that is not the session's changes nothing: answered from the view
        self.req("unreach-1", extra=("--unreachable-pid", "1"))
        self.assertEqual(launches(self.c.stats(self.agent.endpoint)), before + 1)

    def test_lost_agent_connection_forgets_what_was_known(self):
        self.req("lost-1")
        self.req("lost-1")  # known alive now
        self.agent.stop(signal.SIGKILL)
        wait_for(lambda: self.counter(self.c.master_rpc, "master_live_forgotten_total") >= 1, 10,
                 what="the master forgetting the dead agent's processes")


if __name__ == "__main__":
    unittest.main()
