"""/metrics at cluster scale: one master_server_sessions series per server, a
valid exposition (promtool), nothing dropped, and the series of servers that
left are gone (issue 8 item 4)."""
import os
import re
import subprocess
import unittest
import urllib.request

import fakes
from harness import ClusterTest, free_port, wait_for

N_STAY = int(os.environ.get("LBCP_METRICS_SERVERS", "2200")) - 1000
N_LEAVE = 1000


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


def server_series(text):
    return set(re.findall(r'^master_server_sessions\{server="([^"]*)"\} ', text, re.M))


class MetricsScaleTest(ClusterTest):
    def test_metrics_at_2200_servers_then_1000_leave(self):
        port = free_port()
        master = self.c.start_master(http_listen=f"127.0.0.1:{port}")
        stay = [f"fake-{i:05d}" for i in range(N_STAY)]
        leave = [f"gone-{i:05d}" for i in range(N_LEAVE)]
        l1, l2 = fakes.grant(self.c.etcd, 60), fakes.grant(self.c.etcd, 60)
        fakes.register_servers(self.c.etcd, self.c.prefix, stay, l1)
        fakes.register_servers(self.c.etcd, self.c.prefix, leave, l2)
        want = set(stay) | set(leave)
        wait_for(lambda: server_series(scrape(port)) == want, 30, 0.5,
                 "one series per fake server")
        text = scrape(port)
        self.assertEqual(len(re.findall(r"^master_server_sessions\{", text, re.M)), len(want),
                         "exactly one series per server")
        self.assertRegex(text, r"(?m)^obs_dropped_series_total 0$")
        chk = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=60)
        self.assertEqual(chk.returncode, 0, chk.stdout + chk.stderr)

        fakes.revoke(self.c.etcd, l2)
        wait_for(lambda: server_series(scrape(port)) == set(stay), 30, 0.5,
                 "series of servers that left removed")
        self.assertRegex(scrape(port), r"(?m)^obs_dropped_series_total 0$")
        self.assertTrue(master.alive())


if __name__ == "__main__":
    unittest.main()
