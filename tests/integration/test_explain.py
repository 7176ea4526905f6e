"""lbctl explain: the master's dry run names a verdict for every server and launches nothing."""
import base64
import json
import time
import unittest

from harness import ClusterTest, wait_for


def pb_string(field, s):
    b = s.encode()
    return bytes([field << 3 | 2, len(b)]) + b


def override_drain(server_id):
    # lb.Override{server_id = 1, drain = 2}
    return pb_string(1, server_id) + bytes([2 << 3 | 0, 1])


class Explain(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        c.start_slave("slave-b", "zone-b")
        c.start_agent("agent-a1", "zone-a", labels={"gpu": "true"})
        c.start_agent("agent-a2", "zone-a")
        c.start_agent("agent-b1", "zone-b")
        c.start_agent("backup-1", "zone-a", group="backup", priority=1)
        c.wait_master_sees(4)

    def explain(self, *args):
        r = self.c.lbctl("--master", self.c.master_rpc, "explain", "-o", "json", *args)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr

    def test_verdict_for_every_server_and_nothing_launched(self):
        rc, out, err = self.explain("--app", "echo", "--client", "x1", "--location", "zone-a",
                                    "--from-slave", "slave-a")
        self.assertEqual(rc, 0, err)
        verdicts = {s["id"]: s for s in out["servers"]}
        self.assertEqual(set(verdicts), {"agent-a1", "agent-a2", "agent-b1", "backup-1"})
        self.assertIn(out["server"], ("agent-a1", "agent-a2"))
        self.assertEqual(verdicts[out["server"]]["verdict"], "chosen")
        self.assertEqual(verdicts["backup-1"]["verdict"], "lower-group")
        self.assertEqual(verdicts["agent-b1"]["verdict"], "farther")
        self.assertEqual(out["slave"], "slave-a")
        self.assertEqual(out["action"], "SERVE")
        self.assertGreaterEqual(len(out["alternates"]), 1)
        st = self.c.stats(self.c.master_rpc)["counters"]
        self.assertEqual(st.get('master_launches_total{result="ok"}', 0), 0)
        self.assertEqual(self.c.etcd.keys("/lb/sessions/"), [])

    def test_drained_server_and_requirements(self):
        key = base64.b64encode(b"/lb/overrides/agent-a1").decode()
        val = base64.b64encode(override_drain("agent-a1")).decode()
        self.c.etcd.call("kv/put", {"key": key, "value": val})
        def drained():
            _, out, _ = self.explain("--app", "echo", "--client", "x2", "--location", "zone-a")
            return {s["id"]: s["verdict"] for s in out["servers"]}.get("agent-a1") == "drained"
        wait_for(drained, 5, 0.1, "the drain to reach the master")
        rc, out, _ = self.explain("--app", "echo", "--client", "x2", "--location", "zone-a")
        self.assertEqual(out["server"], "agent-a2")
        # the only gpu server is drained and no other server (backup-1 included) has the
        # label: rejected, with the rule that ruled out each server
        rc, out, _ = self.explain("--app", "echo", "--client", "x3", "--require", "label=gpu")
        self.assertEqual(rc, 1)
        self.assertEqual(out["action"], "REJECT")
        verdicts = {s["id"]: s["verdict"] for s in out["servers"]}
        self.assertEqual(verdicts["agent-a2"], "requirements")
        self.assertEqual(verdicts["agent-a1"], "drained")

    def test_requirements_pick_the_labelled_server(self):
        rc, out, _ = self.explain("--app", "echo", "--client", "x4", "--location", "zone-b",
                                  "--require", "label=gpu=true")
        self.assertEqual(rc, 0)
        self.assertEqual(out["server"], "agent-a1")
        # asked with no slave: the answer names the slave in agent-a1's zone
        self.assertEqual(out["action"], "REDIRECT")
        self.assertEqual(out["slave"], "slave-a")

    def test_unknown_app(self):
        rc, out, _ = self.explain("--app", "nope", "--client", "x5")
        self.assertEqual(rc, 1)
        self.assertIn("nope", out["reason"])


if __name__ == "__main__":
    unittest.main()
