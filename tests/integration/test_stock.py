"""The leader's stock (stock: {app: N}, issue 10's unmet P3/P2 goals): pool
processes the leader launches ahead under a "stock-<random>" reservation and
hands to a new session on the spot, with no agent call; refilled in the
background; dropped and stopped when dead, drained, or made by a previous
leader; never claimable by clients."""
import base64
import os
import signal
import subprocess
import time
import unittest

from harness import BIN, ClusterTest, pid_alive, to_yaml, wait_for


def stocked_app():
    return {"pstock": {"argv": [os.path.join(BIN, "lb-echo"), "--port", "{port}",
                                "--session", "stocktest"],
                       "ready_timeout": "5s", "pool": {"min_ready": 1, "max_ready": 1}}}


def launches(stats):
    """Every launch the agent answered (ok, reused, pool hits, failures)."""
    return sum(v for k, v in stats["counters"].items() if k.startswith("agent_launches_total"))


class Stock(ClusterTest):
    def start(self):
        c = self.c
        c.start_master(stock={"pstock": 1})
        self.sa = c.start_slave("slave-a", "zone-a")
        self.agent = c.start_agent("agent-a", "zone-a", apps=stocked_app())
        c.wait_master_sees(1)
        self.wait_stocked(c.master_rpc, 1)

    def counter(self, addr, name):
        st = self.c.stats(addr) or {"counters": {}}
        return st["counters"].get(name, 0)

    def stock_ok(self, addr):
        return self.counter(addr, 'master_stock_launches_total{result="ok"}')

    def stock_sent(self, addr):
        """Stock launches the agent answered (ok or refused)."""
        return self.stock_ok(addr) + self.counter(addr, 'master_stock_launches_total{result="failed"}')

    def wait_stocked(self, addr, n, what="the stock filled"):
        # the stock launch took the pool's process; the pool refilled behind it
        wait_for(lambda: self.stock_ok(addr) >= n and len(self.app_pids()) >= 2, 20, 0.05, what)
        time.sleep(0.3)

    def app_pids(self):
        out = []
        for pid in self.c.tagged_pids(apps_only=True):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"stocktest" in f.read():
                        out.append(pid)
            except OSError:
                pass
        return out

    def session_keys(self):
        return [k for k in self.c.etcd.keys(self.c.prefix) if "/sessions/" in k]

    def test_first_time_request_served_from_stock_without_an_agent_launch(self):
        self.start()
        c = self.c
        before = set(self.app_pids())
        ok0 = self.stock_ok(c.master_rpc)
        sent0 = self.stock_sent(c.master_rpc)
        n0 = launches(c.stats(self.agent.endpoint))
        _, out, _ = c.request(self.sa, "pstock", "client-1", location="zone-a")
        self.assertIn(out["pid"], before, "served by a process that existed before the request")
        self.assertTrue(out["session"].startswith("stock-"), out)
        self.assertEqual(self.counter(c.master_rpc, "master_stock_hits_total"), 1)
        # every agent launch since is a stock launch (the refill), none for the client
        wait_for(lambda: self.stock_ok(c.master_rpc) >= ok0 + 1, 10, 0.05, "the refill")
        time.sleep(0.3)
        sent = self.stock_sent(c.master_rpc) - sent0
        self.assertGreaterEqual(sent, 1)
        self.assertEqual(launches(c.stats(self.agent.endpoint)) - n0, sent)
        wait_for(lambda: any(out["session"] in k for k in self.session_keys()), 5, 0.05,
                 "the session in etcd")
        # a second first-time client gets the refilled stock: another process
        self.wait_stocked(c.master_rpc, ok0 + 1, "the stock refilled")
        before2 = set(self.app_pids())
        _, out2, _ = c.request(self.sa, "pstock", "client-2", location="zone-a")
        self.assertNotEqual(out2["pid"], out["pid"])
        self.assertIn(out2["pid"], before2)
        self.assertEqual(self.counter(c.master_rpc, "master_stock_hits_total"), 2)
        # hostile: a stock id is no spare; another client (or its own) cannot claim it
        for who in ("intruder", "client-1"):
            rc, bad, _ = c.request(self.sa, "pstock", who, location="zone-a", expect_ok=False,
                                   extra=("--claim-spare", out["session"]))
            self.assertNotEqual(rc, 0)
            self.assertIn("no such reservation", bad["reason"])
        # release stops the process, as for any session
        c.lbctl("--master", c.master_ops, "release", out["session"], check=True)
        wait_for(lambda: not pid_alive(out["pid"]), 5, 0.05, "the released process to stop")
        self.assertTrue(pid_alive(out2["pid"]))

    def test_killed_stock_is_never_handed_out(self):
        self.start()
        c = self.c
        killed = self.app_pids()  # the stock's process and the pool's
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)  # the agent's exit report (sent at once) reaches the master
        _, out, _ = c.request(self.sa, "pstock", "client-k", location="zone-a")
        self.assertNotIn(out["pid"], killed)
        self.assertTrue(pid_alive(out["pid"]), "a live process")
        # (a hit is fine when the stock was refilled from the agent's new pool)
        wait_for(lambda: self.counter(c.master_rpc, 'master_stock_dropped_total{why="dead"}') >= 1,
                 5, 0.05, "the dead stock dropped")

    def test_drained_server_stock_is_stopped(self):
        self.start()
        c = self.c
        c.lbctl("drain", "agent-a", check=True)
        wait_for(lambda: self.counter(
            c.master_rpc, 'master_stock_dropped_total{why="out_of_selection"}') >= 1,
            10, 0.05, "the drained server's stock dropped")
        # its pool shrinks too: no process of the app is left
        wait_for(lambda: self.app_pids() == [], 10, 0.05, "no stock or pool process left")
        ok = self.stock_ok(c.master_rpc)
        time.sleep(1.5)
        self.assertEqual(self.stock_ok(c.master_rpc), ok, "no stock launch at a drained server")

    def leader(self):
        ans = self.c.etcd.call("kv/range", {"key": base64.b64encode(
            (self.c.prefix + "leader").encode()).decode()})
        kvs = ans.get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else ""

    def test_leader_kill_leaves_no_orphan_stock(self):
        c = self.c
        rpc1, rep1, rpc2, rep2 = c.url(), c.url(), c.url(), c.url()
        base = {"lease_ttl": "2s", "report_stale": "3s", "etcd": c.etcd.url, "prefix": c.prefix,
                "stock": {"pstock": 1}}
        m1 = c.start("master-1", "lb-master", to_yaml(
            dict(base, id="master-1", listen=rpc1, report_listen=rep1)))
        wait_for(lambda: self.leader() == "master-1", 10, what="master-1 leads")
        c.start("master-2", "lb-master", to_yaml(
            dict(base, id="master-2", listen=rpc2, report_listen=rep2)))
        c.master_rpc, c.master_report = rpc1, rep1
        self.sa = c.start_slave("slave-a", "zone-a", masters=[rpc1, rpc2], report=[rep1, rep2])
        self.agent = c.start_agent("agent-a", "zone-a", apps=stocked_app(), report=[rep1, rep2])
        c.wait_master_sees(1)
        self.wait_stocked(rpc1, 1)
        _, out, _ = c.request(self.sa, "pstock", "client-f", location="zone-a")
        self.assertTrue(out["session"].startswith("stock-"), out)
        self.wait_stocked(rpc1, 2, "master-1's stock refilled")
        wait_for(lambda: any(out["session"] in k for k in self.session_keys()), 5, 0.05,
                 "the session in etcd")
        # now: the session's process, master-1's stock, the pool's
        self.assertEqual(len(self.app_pids()), 3)
        # master-1's stock is one of the two others (which one, the test cannot tell)
        others = set(self.app_pids()) - {out["pid"]}
        m1.stop(signal.SIGKILL)
        wait_for(lambda: self.leader() == "master-2", 10, 0.1, "master-2 leads")
        c.master_rpc, c.master_report = rpc2, rep2
        # master-2 stocks its own (from the pool, which refills); its sync has
        # the agent stop master-1's stock: if that one lived on there would be 4
        wait_for(lambda: self.stock_ok(rpc2) >= 1, 15, 0.1, "master-2's own stock")
        # (the agent holds master-1's stock, so its session digest differs
        # from master-2's list and it is sent the list: sync rounds every 5 s,
        # the agent's grace 3 s)
        # master-2's stock may be the old pool process, but master-1's stock must be
        # gone: at most one of the two others alive (a count of 3 alone can be the moment
        # master-2 took the pool's process and the pool has not refilled yet)
        wait_for(lambda: len(self.app_pids()) == 3 and sum(map(pid_alive, others)) <= 1, 20, 0.1,
                 "the session's process, master-2's stock and the pool only")
        self.assertGreater(self.counter(self.agent.endpoint, "agent_syncs_total"), 0)
        self.assertTrue(pid_alive(out["pid"]), "the session keeps its process")
        _, again, _ = c.request(self.sa, "pstock", "client-f", location="zone-a")
        self.assertEqual(again["pid"], out["pid"], "sticky on the new leader")

    def test_bad_stock_config_names_file_line_key(self):
        path = self.c.write_config("bad-master", "tls: {insecure: true}\nstock:\n  pstock: 513\n")
        r = subprocess.run([os.path.join(BIN, "lb-master"), "--check-config", path],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr + r.stdout,
                         r"bad-master.yaml:3: stock\.pstock: expected a stock count 0-512")


if __name__ == "__main__":
    unittest.main()
