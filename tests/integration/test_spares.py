"""Hot spares (issue 10 item 3, seed US 6,591,290), master side: a new
session's answer carries spares: K pool processes on alternate servers,
reserved in the leader's memory only (no etcd write), stopped after
spare_ttl when unclaimed, with their pools refilled; spares: 0 (the
default) adds nothing."""
import base64
import json
import os
import subprocess
import time
import unittest

import signal

from harness import BIN, ClusterTest, echo_line, pid_alive, to_yaml, wait_for


def pooled_app():
    return {"spare": {"argv": [os.path.join(BIN, "lb-echo"), "--port", "{port}",
                               "--session", "sparetest"],
                      "ready_timeout": "5s", "pool": {"min_ready": 1, "max_ready": 1}}}


class Spares(ClusterTest):
    def start(self, **master_kw):
        c = self.c
        c.start_master(**master_kw)
        self.sa = c.start_slave("slave-a", "zone-a")
        for name in ("agent-a", "agent-b", "agent-c"):
            c.start_agent(name, "zone-a", apps=pooled_app())
        c.wait_master_sees(3)
        wait_for(lambda: len(self.app_pids()) >= 3, 15, 0.05, "three ready pool processes")
        time.sleep(0.5)  # reports with the ready counts reach the master

    def app_pids(self):
        out = []
        for pid in self.c.tagged_pids(apps_only=True):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"sparetest" in f.read():
                        out.append(pid)
            except OSError:
                pass
        return out

    def session_keys(self):
        return [k for k in self.c.etcd.keys(self.c.prefix) if "/sessions/" in k]

    def test_spare_offered_then_stopped_after_ttl(self):
        self.start(spares={"spare": 1}, spare_ttl="2s")
        c = self.c
        before = set(self.app_pids())
        _, out, _ = c.request(self.sa, "spare", "client-1", location="zone-a")
        self.assertEqual(len(out["spares"]), 1, out)
        sp = out["spares"][0]
        self.assertNotEqual(sp["server"], out["server"], "a spare is on an alternate server")
        self.assertNotEqual(sp["pid"], out["pid"])
        self.assertIn(sp["pid"], before, "the spare came from its server's pool")
        self.assertTrue(pid_alive(sp["pid"]))
        self.assertTrue(sp["session"].startswith("spare-"))
        # leader memory only: the one etcd session is the chosen process's
        time.sleep(0.3)  # the writer's batch window
        keys = self.session_keys()
        self.assertEqual(len([k for k in keys if out["session"] in k]), 1, keys)
        self.assertEqual([k for k in keys if sp["session"] in k], [], keys)
        st = c.stats(c.master_rpc)["counters"]
        self.assertEqual(st.get("master_spares_reserved_total", 0), 1, st)
        # unclaimed: stopped after spare_ttl (2 s, upkeep every 1 s), pool refilled
        wait_for(lambda: not pid_alive(sp["pid"]), 8, 0.05, "the unclaimed spare to stop")
        self.assertTrue(pid_alive(out["pid"]), "the chosen process keeps its session")
        wait_for(lambda: len(self.app_pids()) == 4, 10, 0.05,
                 "pools refilled: 3 ready + the client's process, nothing else")
        st = c.stats(c.master_rpc)["counters"]
        self.assertEqual(st.get("master_spares_expired_total", 0), 1, st)
        # every app process left is the session's or a pool's (ready count 1 each)
        c.lbctl("--master", c.master_ops, "release", out["session"], check=True)
        wait_for(lambda: not pid_alive(out["pid"]), 5, 0.05, "the released process to stop")
        wait_for(lambda: len(self.app_pids()) == 3, 10, 0.05, "only the three pools left")

    def selections(self):
        st = self.c.stats(self.c.master_rpc)["counters"]
        return sum(v for k, v in st.items() if k.startswith("master_selections_total"))

    def test_chosen_killed_client_reaches_spare_then_claims_it(self):
        self.start(spares={"spare": 1}, spare_ttl="5s")
        c = self.c
        _, out, _ = c.request(self.sa, "spare", "client-k", location="zone-a")
        sp = out["spares"][0]
        os.kill(out["pid"], signal.SIGKILL)  # between the answer and the connect
        n0 = self.selections()
        with self.assertRaises(OSError):
            echo_line(out["host"], out["port"], timeout=2)
        # fail over as the client does: straight to the spare, no new selection
        self.assertIn("hi", echo_line(sp["host"], sp["port"]))
        self.assertEqual(self.selections(), n0, "no selection before the claim")
        # another client cannot take it
        rc, bad, _ = c.request(self.sa, "spare", "intruder", location="zone-a", expect_ok=False,
                               extra=("--claim-spare", sp["session"]))
        self.assertNotEqual(rc, 0)
        self.assertIn("reserved for another client", bad["reason"])
        _, got, _ = c.request(self.sa, "spare", "client-k", location="zone-a",
                              extra=("--claim-spare", sp["session"]))
        self.assertEqual((got["pid"], got["server"], got["session"]),
                         (sp["pid"], sp["server"], sp["session"]), got)
        self.assertEqual(self.selections(), n0 + 2, "the refused claim and the claim")
        # a claimed spare is a session: not stopped at spare_ttl, and sticky
        time.sleep(7)
        self.assertTrue(pid_alive(sp["pid"]))
        _, again, _ = c.request(self.sa, "spare", "client-k", location="zone-a")
        self.assertEqual(again["pid"], sp["pid"], again)
        wait_for(lambda: any(sp["session"] in k for k in self.session_keys()), 5, 0.1,
                 "the claimed spare's session in etcd")
        # claimed once only
        rc, _, _ = c.request(self.sa, "spare", "client-k", location="zone-a", expect_ok=False,
                             extra=("--claim-spare", sp["session"]))
        self.assertNotEqual(rc, 0)
        c.lbctl("--master", c.master_ops, "release", sp["session"], check=True)
        wait_for(lambda: not pid_alive(sp["pid"]), 5, 0.05, "the released spare to stop")

    def sync_rounds(self, master_rpc):
        st = (self.c.stats(master_rpc) or {"counters": {}})["counters"]
        return sum(v for k, v in st.items() if k.startswith("master_agent_syncs_total"))

    def leader(self):
        ans = self.c.etcd.call("kv/range", {"key": base64.b64encode(
            (self.c.prefix + "leader").encode()).decode()})
        kvs = ans.get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else ""

    def test_leader_keeps_its_spares_and_a_new_leader_stops_unknown_ones(self):
        c = self.c
        rpc1, rep1, rpc2, rep2 = c.url(), c.url(), c.url(), c.url()
        base = {"lease_ttl": "2s", "report_stale": "3s", "etcd": c.etcd.url, "prefix": c.prefix,
                "spares": {"spare": 1}, "spare_ttl": "30s"}
        m1 = c.start("master-1", "lb-master", to_yaml(
            dict(base, id="master-1", listen=rpc1, report_listen=rep1)))
        wait_for(lambda: self.leader() == "master-1", 10, what="master-1 leads")
        c.start("master-2", "lb-master", to_yaml(
            dict(base, id="master-2", listen=rpc2, report_listen=rep2)))
        c.master_rpc, c.master_report = rpc1, rep1
        self.sa = c.start_slave("slave-a", "zone-a", masters=[rpc1, rpc2], report=[rep1, rep2])
        for name in ("agent-a", "agent-b", "agent-c"):
            c.start_agent(name, "zone-a", apps=pooled_app(), report=[rep1, rep2])
        c.wait_master_sees(3)
        wait_for(lambda: len(self.app_pids()) >= 3, 15, 0.05, "three ready pool processes")
        time.sleep(0.5)  # reports with the ready counts reach the master
        _, out, _ = c.request(self.sa, "spare", "client-f", location="zone-a")
        sp = out["spares"][0]
        handed = time.monotonic()
        # the leader's session sync lists its reservations: a sync after the
        # agent's 3 s grace leaves the reserved spare running (it stopped it
        # before: a spare is no session)
        time.sleep(max(0.0, handed + 3.5 - time.monotonic()))
        # a sync round past the grace: the list is sent to an agent out of
        # step, and an agent in step is one whose report's session digest
        # (spare included) equals the leader's list, so either way the round
        # counted the reservation or the agent would have stopped the spare
        n = self.sync_rounds(rpc1)
        wait_for(lambda: self.sync_rounds(rpc1) > n, 8, 0.1, "a sync round past the grace")
        self.assertTrue(pid_alive(sp["pid"]), "a reserved spare survives the leader's sync")
        # failover: master-2 never made that reservation; its first sync stops
        # the spare's process long before spare_ttl (30 s), and a claim of it
        # is refused with the reason
        m1.stop(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: self.leader() == "master-2", 10, 0.1, "master-2 leads")
        c.master_rpc, c.master_report = rpc2, rep2
        wait_for(lambda: not pid_alive(sp["pid"]), 15, 0.1, "the old leader's spare to stop")
        self.assertLess(time.monotonic() - killed, 15)
        rc, bad, _ = c.request(self.sa, "spare", "client-f", location="zone-a", expect_ok=False,
                               extra=("--claim-spare", sp["session"]))
        self.assertNotEqual(rc, 0)
        self.assertIn("made by a previous leader", bad["reason"])
        # the client's session (in etcd) keeps its process; nothing else is left
        # over: the three pools and that process
        self.assertTrue(pid_alive(out["pid"]))
        wait_for(lambda: len(self.app_pids()) == 4, 10, 0.05, "3 pools + the session's process")

    def test_liblbclient_fails_over_to_the_spare_and_claims_it(self):
        self.start(spares={"spare": 1}, spare_ttl="5s")
        c = self.c
        p = subprocess.Popen([os.path.join(BIN, "lbclient-probe"), "--slaves", self.sa.endpoint,
                              "--client", "lib-1", "--location", "zone-a", "failover", "spare"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=c.caller_env("client"))
        try:
            first = json.loads(p.stdout.readline())
            spares = json.loads(p.stdout.readline())["pids"]
            self.assertTrue(first["ok"], first)
            self.assertEqual(len(spares), 1, spares)
            os.kill(first["pid"], signal.SIGKILL)  # between the answer and the connect
            wait_for(lambda: not pid_alive(first["pid"]), 5, 0.02, "the chosen process gone")
            n0 = self.selections()
            p.stdin.write("go\n")
            p.stdin.flush()
            got = json.loads(p.stdout.readline())
            self.assertTrue(got["ok"], got)
            self.assertEqual(got["pid"], spares[0], "the client reached the spare's pid")
            self.assertTrue(json.loads(p.stdout.readline())["ok"], "echo through the spare")
            # only the claim was a selection: the failover itself asked nobody
            self.assertEqual(self.selections(), n0 + 1)
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
            p.stdout.close()
        # the probe closed its client (releasing its sessions): nothing left but pools
        wait_for(lambda: not pid_alive(spares[0]), 10, 0.05, "the claimed spare released")
        wait_for(lambda: len(self.app_pids()) == 3, 10, 0.05, "only the three pools left")
        wait_for(lambda: self.session_keys() == [], 10, 0.1, "no session left in etcd")

    def test_spares_zero_by_default_changes_nothing(self):
        self.start()
        c = self.c
        before = set(self.app_pids())
        _, out, _ = c.request(self.sa, "spare", "client-0", location="zone-a")
        self.assertEqual(out["spares"], [], out)
        self.assertIn(out["pid"], before)
        time.sleep(1.5)
        others = before - {out["pid"]}
        self.assertTrue(all(pid_alive(p) for p in others), "no pool process handed out")
        st = c.stats(c.master_rpc)["counters"]
        self.assertEqual(st.get("master_spares_reserved_total", 0), 0, st)

    def test_bad_spares_config_names_file_line_key(self):
        c = self.c
        path = c.write_config("bad-master", "tls: {insecure: true}\nspares:\n  spare: 9\n")
        r = subprocess.run([os.path.join(BIN, "lb-master"), "--check-config", path],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr + r.stdout, r"bad-master.yaml:3: spares\.spare: expected a spare count 0-4")


if __name__ == "__main__":
    unittest.main()
