"""Logs: logfmt on stderr; each rejected request, failed launch and etcd outage is
logged once with its cause; --log-level filters."""
import re
import time
import unittest

from harness import ClusterTest, wait_for

PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^ "]*)(?: |$)')
LEVELS = {"debug", "info", "warn", "error"}


def logfmt(line):
    """key -> value of one logfmt line, or None when the line is not logfmt."""
    pos, out = 0, {}
    while pos < len(line):
        m = PAIR.match(line, pos)
        if m is None:
            return None
        v = m.group(2)
        out[m.group(1)] = v[1:-1] if v.startswith('"') else v
        pos = m.end()
    return out


def lines_of(daemon):
    return [l for l in daemon.output().splitlines() if l.strip()]


class Logs(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        c.start_agent("agent-bad", "zone-a",
                      apps={"echo": {"argv": ["/bin/false"], "ready_timeout": "2s"}})
        c.wait_master_sees(1)

    def test_every_line_is_logfmt_with_the_standard_keys(self):
        self.c.request(self.sa, "nosuch", "log-1", expect_ok=False)
        for d in self.c.daemons.values():
            for line in lines_of(d):
                kv = logfmt(line)
                self.assertIsNotNone(kv, f"{d.name}: not logfmt: {line}")
                for key in ("ts", "level", "comp", "msg"):
                    self.assertIn(key, kv, f"{d.name}: {line}")
                self.assertIn(kv["level"], LEVELS, line)
                self.assertRegex(kv["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_rejected_request_is_logged_once_with_its_reason(self):
        self.c.request(self.sa, "nosuch", "log-rej", expect_ok=False)
        time.sleep(0.2)
        hits = [logfmt(l) for l in lines_of(self.c.daemons["master-1"]) if "client=log-rej" in l]
        self.assertEqual(len(hits), 1, hits)
        self.assertEqual(hits[0]["msg"], "rejected")
        self.assertIn("unknown app 'nosuch'", hits[0]["reason"])

    def test_failed_launch_is_logged_once_with_its_cause(self):
        master = self.c.daemons["master-1"]
        before = [l for l in lines_of(master) if 'msg="launch failed"' in l]
        rc, out, _ = self.c.request(self.sa, "echo", "log-launch", expect_ok=False)
        self.assertEqual(out["action"], "REJECT")
        time.sleep(0.2)
        after = [logfmt(l) for l in lines_of(master) if 'msg="launch failed"' in l]
        self.assertEqual(len(after) - len(before), 1)  # one candidate, one attempt, one line
        self.assertEqual(after[-1]["level"], "warn")
        self.assertEqual(after[-1]["server"], "agent-bad")
        self.assertIn("exited", after[-1]["err"])
        agent = [logfmt(l) for l in lines_of(self.c.daemons["agent-bad"])
                 if 'msg="launch failed"' in l]
        self.assertEqual(len(agent), 1)
        self.assertIn("exited", agent[0]["error"])

    def test_etcd_outage_is_logged_on_change_not_per_retry(self):
        c = self.c
        c.etcd.stop()
        time.sleep(4)  # several retry rounds of the watch and the keepers
        c.etcd.start()
        wait_for(lambda: "/lb/servers/agent-bad" in c.etcd.keys("/lb/servers/"), 15,
                 what="re-registration")
        time.sleep(1)
        for name in ("master-1", "slave-a", "agent-bad"):
            bad = [logfmt(l) for l in lines_of(c.daemons[name])
                   if logfmt(l)["level"] in ("warn", "error") and "etcd" in l]
            self.assertGreaterEqual(len(bad), 1, f"{name} did not log the outage")
            self.assertLessEqual(len(bad), 5, f"{name} logged the outage per retry: {bad}")
            self.assertTrue(any("127.0.0.1" in str(kv) for kv in bad), "the cause names etcd")

    def test_log_level_flag_filters(self):
        c = self.c
        quiet = c.start("slave-q", "lb-slave", f"id: slave-q\nzone: zone-a\nlisten: {c.url(0)}\n"
                        f"etcd: {c.etcd.url}\nmasters: [{c.master_rpc}]\n", ("--log-level", "warn"))
        wait_for(lambda: "/lb/slaves/slave-q" in c.etcd.keys("/lb/slaves/"), 10,
                 what="the quiet slave")
        levels = {logfmt(l)["level"] for l in lines_of(quiet)}
        self.assertFalse(levels & {"debug", "info"}, levels)


if __name__ == "__main__":
    unittest.main()
