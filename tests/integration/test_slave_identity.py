"""Per-slave identity of SlaveLoad reports (issue 9, item 2): a slave signs each
SlaveLoad with its own Ed25519 key (state_dir/identity.key), published in its
slaves/<id> record; a master applies a report for slave X only when X's key
signed it, and refuses (counts, logs once a minute per slave) unsigned,
mis-signed (slave-b's valid key for slave-a), garbage-signed and replayed ones,
even over a valid slave TLS certificate. The view of slave-a (its load in
lbctl explain, and so where clients are sent) stays what slave-a reported."""
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

import tempfile

import pb
from harness import BIN, ClusterTest, free_port, wait_for


class SlaveIdentity(ClusterTest):
    tls = True

    def setUp(self):
        super().setUp()
        try:
            self.start_cluster()
        except BaseException:
            self.tearDown()
            raise

    def start_cluster(self):
        c = self.c
        self.sa = None
        c.start_master()
        c.start_agent("agent-a1", "zone-a")
        # slave-a's lease is long: stopped later, it stays registered, so a
        # forged report, if applied, would stay visible in the master's view
        # (its report window is long enough that lbctl's polling, slow on a busy
        # machine, sees the load of one window before the next replaces it)
        sa = c.start_slave("slave-a", "zone-a", limit=100, lease_ttl="60s",
                           report_interval="3s")
        self.sb = c.start_slave("slave-b", "zone-a", limit=100)
        self.sa_proc = sa
        c.wait_master_sees(1)

    def tearDown(self):
        if self.sa is not None:
            try:
                os.kill(self.sa.pid, signal.SIGCONT)  # so that it stops at SIGTERM
            except ProcessLookupError:
                pass
        super().tearDown()

    def slave_view(self):
        """(slave chosen, its reason) when slave-a asks for a zone-a client: slave-a
        itself while the master thinks it has room, slave-b when it thinks it full."""
        r = self.c.lbctl("--master", self.c.master_rpc, "explain", "-o", "json", "--app", "echo",
                         "--client", "probe", "--location", "zone-a", "--from-slave", "slave-a")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        return out["slave"], out["slave_reason"]

    def refused(self, reason):
        st = self.c.stats(self.c.master_rpc)
        return st["counters"].get(f'master_slave_reports_refused_total{{reason="{reason}"}}', 0)

    def send(self, slave, key_of, seq, load, mode=None):
        """Publishes a SlaveLoad for slave signed with slave key_of's identity key,
        over a valid slave TLS certificate (mode: "unsigned", "garbage")."""
        args = [os.path.join(BIN, "lb-sendreport"), self.c.master_report, "--slave", slave,
                "--seq", str(seq), "--load", str(load)]
        if mode == "unsigned":
            args.append("--unsigned")
        elif mode == "garbage":
            args.append("--garbage-sig")
        else:
            args += ["--key", os.path.join(self.c.dir, key_of + "-state", "identity.key")]
        subprocess.run(args, check=True, timeout=30, env=self.c.caller_env("slave"))

    def test_slave_loads_are_applied_only_from_the_slave_they_name(self):
        c = self.c
        key = os.path.join(c.dir, "slave-a-state", "identity.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        # the genuine slave's signed reports are applied: a request through it
        # shows as load 1 for one report window, then 0 again
        c.request(self.sa_proc, "echo", "c1", location="zone-a")
        wait_for(lambda: "load 1/100" in self.slave_view()[1], 15, 0.1,
                 what="slave-a's own load report applied")
        wait_for(lambda: "load 0/100" in self.slave_view()[1], 15, 0.1, what="next window")
        os.kill(self.sa_proc.pid, signal.SIGSTOP)
        self.sa = self.sa_proc
        time.sleep(0.5)  # a report slave-a had in flight lands now, not later
        self.assertEqual(self.slave_view(), ("slave-a", "requesting slave, zone zone-a, load 0/100"))

        seq = int(time.time() * 1000) * 1000  # above slave-a's own: they start at its start
        # slave-b's valid key, for slave-a: "slave-a is full"
        self.send("slave-a", "slave-b", seq, 500)
        wait_for(lambda: self.refused("bad_signature") >= 1, 10, what="forged report refused")
        self.send("slave-a", None, seq, 500, mode="unsigned")
        wait_for(lambda: self.refused("unsigned") >= 1, 10, what="unsigned report refused")
        self.send("slave-a", None, seq, 500, mode="garbage")
        wait_for(lambda: self.refused("bad_signature") >= 2, 10, what="garbage signature refused")
        self.assertEqual(self.slave_view(), ("slave-a", "requesting slave, zone zone-a, load 0/100"))

        # signed with slave-a's key: applied; a newer one too; the first again is a replay
        self.send("slave-a", "slave-a", seq, 7)
        wait_for(lambda: "load 7/100" in self.slave_view()[1], 10, what="signed report applied")
        self.send("slave-a", "slave-a", seq + 1, 500)
        wait_for(lambda: self.slave_view()[0] == "slave-b", 10, what="newer report applied (full)")
        self.send("slave-a", "slave-a", seq, 7)
        wait_for(lambda: self.refused("replayed") >= 1, 10, what="replay refused")
        self.assertEqual(self.slave_view()[0], "slave-b")

        # hostile record: slaves/slave-x with an oversized key; its reports are
        # refused (bad_key), counted, and the master carries on
        info = (pb.field(1, "slave-x") + pb.field(2, c.url()) + pb.field(4, "zone-a") +
                pb.uint(6, 100) + pb.field(360, b"\x01" * 4096))
        c.etcd.call("kv/put", {"key": base64.b64encode((c.prefix + "slaves/slave-x").encode())
                               .decode(), "value": base64.b64encode(info).decode()})
        time.sleep(0.5)  # the master's watch applies the record
        self.send("slave-x", "slave-b", seq, 3)
        wait_for(lambda: self.refused("bad_key") >= 1, 10, what="oversized key refused")

        # slave-b's own reports go on being applied; each refusal was counted
        # once, and logged once per slave (a minute's rate limit), naming the reason
        before = c.stats(c.master_rpc)["counters"]['master_load_reports_total{from="slave"}']
        wait_for(lambda: c.stats(c.master_rpc)["counters"]['master_load_reports_total{from="slave"}']
                 > before + 2, 10, what="slave-b still reporting")
        self.assertEqual(self.refused("bad_signature"), 2)
        self.assertEqual(self.refused("unsigned"), 1)
        self.assertEqual(self.refused("replayed"), 1)
        self.assertEqual(self.refused("bad_key"), 1)
        log = [l for l in c.daemons["master-1"].output().splitlines()
               if "slave load report refused" in l]
        self.assertEqual(len(log), 2, log)  # slave-a once, slave-x once
        self.assertIn("slave=slave-a", log[0])
        self.assertIn("reason=bad_signature", log[0])
        self.assertIn("slave=slave-x", log[1])
        self.assertIn("reason=bad_key", log[1])
        self.assertTrue(c.daemons["master-1"].alive())


class SlaveIdentityKeyFile(unittest.TestCase):
    """The slave does not start without its identity: a relative identity_key is
    a config error (file:line: key), a configured key that does not exist (a
    typo must not mint a new identity) and a state_dir others may write to (a
    key planted there would be known to them) stop it at start, naming why."""

    def run_slave(self, extra):
        d = tempfile.mkdtemp(prefix="lbcp-slaveid-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        path = os.path.join(d, "slave.yaml")
        with open(path, "w") as f:
            f.write(f"id: s\nzone: a\nlisten: tcp://127.0.0.1:{free_port()}\n"
                    f"tls: {{insecure: true}}\netcd: http://127.0.0.1:1\n" + extra)
        r = subprocess.run([os.path.join(BIN, "lb-slave"), "--config", path],
                           capture_output=True, text=True, timeout=20)
        return r, path, d

    def test_bad_identity_stops_the_slave(self):
        r, path, _ = self.run_slave("identity_key: key.bin\n")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(f"{path}:6: identity_key: 'key.bin' must be an absolute path", r.stderr)
        r, _, d = self.run_slave("identity_key: /nonexistent/slave.key\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("identity key /nonexistent/slave.key", r.stderr + r.stdout)
        shared = os.path.join(d, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        r, _, _ = self.run_slave(f"state_dir: {shared}\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("writable only by it", r.stderr + r.stdout)
        self.assertFalse(os.path.exists(os.path.join(shared, "identity.key")))


if __name__ == "__main__":
    unittest.main()
