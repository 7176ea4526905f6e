"""Operator HTTP endpoints: /metrics passes promtool on every daemon, /healthz
flips to 503 when etcd stops and back to 200 when it returns."""
import shutil
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import ClusterTest, free_port, wait_for

HEALTH_BOUND_S = 8.0  # etcd stop -> every /healthz 503 (lease refresh period + etcd timeout)


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


class OpsHealth(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        self.ports = {n: free_port() for n in ("master", "slave", "agent")}
        c.start_master(http_listen=f"127.0.0.1:{self.ports['master']}")
        self.sa = c.start_slave("slave-a", "zone-a", http_listen=f"127.0.0.1:{self.ports['slave']}")
        c.start_agent("agent-a1", "zone-a", http_listen=f"127.0.0.1:{self.ports['agent']}")
        c.wait_master_sees(1)

    def all_health(self, code):
        return all(http_get(p, "/healthz")[0] == code for p in self.ports.values())

    @unittest.skipUnless(shutil.which("promtool"), "promtool (Debian package prometheus) missing")
    def test_metrics_pass_promtool(self):
        self.c.request(self.sa, "echo", "m1", "zone-a")
        self.c.request(self.sa, "echo", "m1", "zone-a")
        self.c.request(self.sa, "nope", "m2", "zone-a", expect_ok=False)
        for name, port in self.ports.items():
            code, text = http_get(port, "/metrics")
            self.assertEqual(code, 200, name)
            r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                               capture_output=True)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stdout}{r.stderr}\n{text[:3000]}")
            self.assertIn("# TYPE etcd_requests_total counter", text, name)
            self.assertIn("etcd_request_seconds_bucket{call=", text, name)
        _, text = http_get(self.ports["master"], "/metrics")
        for needle in ('master_selections_total{action="serve"} 2',
                       'master_selection_reasons_total{reason="sticky"} 1',
                       'master_selection_reasons_total{reason="no_app"} 1',
                       "# TYPE master_selection_seconds histogram",
                       'master_selection_seconds_count{action="serve"} 2',
                       # the sticky repeat is answered from the master's view: one launch only
                       'master_launch_seconds_count{result="ok"} 1',
                       'master_sticky_answers_total{via="view"} 1',
                       'master_server_sessions{server="agent-a1"}',
                       "master_load_reports_total{", "master_is_leader 1"):
            self.assertIn(needle, text)
        _, text = http_get(self.ports["agent"], "/metrics")
        self.assertIn("agent_reports_total", text)
        self.assertEqual(http_get(self.ports["master"], "/nope")[0], 404)

    def test_healthz_follows_etcd(self):
        wait_for(lambda: self.all_health(200), 10, 0.1, "every daemon healthy")
        code, body = http_get(self.ports["master"], "/healthz")
        self.assertEqual(body.strip(), "ok")
        self.c.etcd.stop()
        t0 = time.monotonic()
        wait_for(lambda: self.all_health(503), HEALTH_BOUND_S, 0.1, "every daemon not ready")
        print(f"healthz 503 on every daemon {time.monotonic() - t0:.2f}s after etcd stopped")
        code, body = http_get(self.ports["slave"], "/healthz")
        self.assertIn("etcd", body)
        self.c.etcd.start()
        wait_for(lambda: self.all_health(200), 20, 0.1, "every daemon healthy again")

    def test_slave_without_master_not_ready(self):
        wait_for(lambda: http_get(self.ports["slave"], "/healthz")[0] == 200, 10, 0.1, "slave ok")
        self.c.daemons["master-1"].stop()
        wait_for(lambda: http_get(self.ports["slave"], "/healthz")[0] == 503, 8, 0.1,
                 "slave not ready without a master")
        self.assertIn("master", http_get(self.ports["slave"], "/healthz")[1])


if __name__ == "__main__":
    unittest.main()
