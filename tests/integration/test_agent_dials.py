"""The leader paces its new connections to agents: a leader with many idle
agents opens at most 500 a session-sync round (the client side of each TLS
handshake is its own CPU; 10,000 at once fed a storm of timed-out and redialed
handshakes), and connects to every one of them over later rounds."""
import os
import subprocess
import unittest

from harness import BIN, ClusterTest, wait_for

SERVERS = 1100  # > 2 rounds of 500


class AgentDials(ClusterTest):
    tls = False  # the pacing, not 1,100 handshakes of an ASan build, is under test

    def counters(self):
        st = self.c.stats(self.c.master_rpc) or {"counters": {}}
        return st["counters"]

    def fds(self, pid):
        return len(os.listdir(f"/proc/{pid}/fd"))

    def test_new_agent_connections_are_paced_and_all_made(self):
        c = self.c
        m = c.start_master()
        lg = subprocess.Popen([os.path.join(BIN, "lb-loadgen"), "--etcd", c.etcd.url,
                               "--prefix", c.prefix, "--servers", str(SERVERS), "--shared-agent",
                               "--duration", "60s", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=c.caller_env("agent"))
        try:
            self.assertIn("ready", lg.stdout.readline())
            self.paced_and_all_made(m)
        finally:  # before tearDown, which fails on any process of ours still running
            lg.terminate()
            lg.communicate(timeout=60)

    def paced_and_all_made(self, m):
        c = self.c
        wait_for(lambda: len(c.etcd.keys(c.prefix + "servers/")) >= SERVERS, 60, 0.5,
                 "fake servers registered")
        key = 'master_agent_syncs_total{result="deferred"}'
        wait_for(lambda: self.counters().get(key, 0) > 0, 20, 0.2,
                 "a sync round that deferred new connections")
        self.assertLess(self.fds(m.pid), SERVERS, "every agent dialed in one round")
        # within a few rounds (5 s each) every server has its connection and a
        # whole round defers nothing
        wait_for(lambda: self.fds(m.pid) >= SERVERS, 40, 0.5, "a connection per fake server")
        before = self.counters().get(key, 0)
        rounds = lambda: sum(v for k, v in self.counters().items()  # noqa: E731
                             if k.startswith("master_agent_syncs_total"))
        r0 = rounds()
        wait_for(lambda: rounds() >= r0 + SERVERS, 15, 0.5, "a whole sync round more")
        self.assertEqual(self.counters().get(key, 0), before, "a round still deferred")


if __name__ == "__main__":
    unittest.main()
