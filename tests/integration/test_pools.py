"""Warm pools end to end: a first-time client is served by a process that was
running before it asked, and among equally loaded servers the master prefers
one with a ready pool process."""
import json
import os
import time
import unittest

from harness import BIN, ClusterTest, pid_alive, wait_for


def warm_app(pool):
    app = {"argv": [os.path.join(BIN, "lb-echo"), "--port", "{port}", "--session", "warm"],
           "ready_timeout": "5s"}
    if pool:
        app["pool"] = {"min_ready": 1, "max_ready": 2}
    return {"warm": app}


class Pools(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        # ties in least-loaded go to the lower id: the pooled server sorts last
        c.start_agent("agent-a", "zone-a", apps=warm_app(False))
        c.start_agent("agent-z", "zone-a", apps=warm_app(True))
        c.wait_master_sees(2)

    def pool_pids(self):
        out = []
        for pid in self.c.tagged_pids(apps_only=True):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"warm" in f.read():
                        out.append(pid)
            except OSError:
                pass
        return out

    def test_first_time_clients_get_a_ready_pool_process(self):
        c = self.c
        for i in range(3):
            wait_for(lambda: len(self.pool_pids()) >= 1, 10, 0.05, "a ready pool process")
            time.sleep(0.5)  # a report with the ready count reaches the master
            before = set(self.pool_pids())
            _, out, _ = c.request(self.sa, "warm", f"first-{i}", location="zone-a")
            self.assertEqual(out["server"], "agent-z", out)
            self.assertIn(out["pid"], before, "served by a process started for the request")
            c.lbctl("--master", c.master_ops, "release", out["session"], check=True)
            wait_for(lambda: not pid_alive(out["pid"]), 5, 0.05, "the released process to stop")
            time.sleep(0.5)  # loads equal again in the master's view
        st = c.stats(c.master_rpc)
        self.assertGreaterEqual(st["counters"].get("master_ready_preferred_total", 0), 1)

    def ready(self, server):
        r = self.c.lbctl("servers", "-o", "json", check=True)
        for s in json.loads(r.stdout):
            if s["id"] == server:
                return s.get("ready", {}).get("warm")
        return None

    def test_pool_set_resizes_and_operator_drain_empties_it(self):
        c = self.c
        wait_for(lambda: self.ready("agent-z") == 1, 10, 0.1, "the configured pool of 1")
        c.lbctl("pool", "set", "warm", "3", check=True)
        wait_for(lambda: self.ready("agent-z") == 3, 10, 0.1, "the pool resized to 3")
        wide = c.lbctl("servers", "-o", "wide", check=True).stdout
        self.assertIn("READY", wide)
        self.assertIn("warm:3", wide)
        # cluster-wide: agent-a, which does not pool it by config, pools it too
        wait_for(lambda: self.ready("agent-a") == 3, 10, 0.1, "agent-a's pool of 3")
        c.lbctl("pool", "clear", "warm", check=True)
        # back to the configs: a pool keeps between min_ready and max_ready (1-2)
        wait_for(lambda: self.ready("agent-z") == 2, 10, 0.1, "back to max_ready")
        wait_for(lambda: self.ready("agent-a") == 0, 10, 0.1, "agent-a back to no pool")
        wait_for(lambda: len(self.pool_pids()) == 2, 5, 0.05, "the extra processes to stop")
        c.lbctl("drain", "agent-z", check=True)
        wait_for(lambda: self.ready("agent-z") == 0, 10, 0.1, "a drained server's empty pool")
        wait_for(lambda: not self.pool_pids(), 5, 0.05, "its pool processes to stop")
        r = c.lbctl("pool", "set", "warm", "-1")
        self.assertEqual(r.returncode, 2)
        self.assertIn("N must be an integer 0-10000", r.stderr)


if __name__ == "__main__":
    unittest.main()
