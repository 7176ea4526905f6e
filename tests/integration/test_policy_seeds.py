"""The seeds' remaining selection mechanisms (issue 13, items 3-8), with real daemons:
resource matching (arch/os), the client's own pick, reachability through given
slaves, slave choice by client and app, slave-side shedding, redirect loops and
a DNS name as the entry point to several slaves."""
import fcntl
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, ClusterTest, free_port, wait_for


def counters(c, addr):
    st = c.stats(addr)
    return st["counters"] if st else {}


def selections(c):
    return sum(v for k, v in counters(c, c.master_rpc).items()
               if k.startswith("master_selections_total"))


class PolicyCluster(ClusterTest):
    """Four slaves (three fronting echo in zone-a or zone-b, one fronting only
    web) and three agents in zone-a: an x86_64 one, one advertising aarch64 and
    one reachable only through slave-b."""

    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.sa = c.start_slave("slave-a", "zone-a")
        self.sa2 = c.start_slave("slave-a2", "zone-a")
        self.sb = c.start_slave("slave-b", "zone-b")
        self.sc = c.start_slave("slave-c", "zone-a", apps=["web"])
        c.start_agent("agent-x86", "zone-a", arch="x86_64", os="Linux", labels={"disk": "ssd"})
        c.start_agent("agent-arm", "zone-a", arch="aarch64", os="Linux")
        c.start_agent("agent-vb", "zone-a", reachable_via=["slave-b"])
        c.wait_master_sees(3)

    def req(self, slave, client, *extra, expect_ok=True):
        rc, out, err = self.c.request(slave, "echo", client, "zone-a", expect_ok=expect_ok,
                                      extra=extra)
        return rc, out, err

    def explain(self, *args):
        r = self.c.lbctl("--master", self.c.master_rpc, "explain", "-o", "json", "--app", "echo",
                         "--location", "zone-a", *args)
        return r.returncode, json.loads(r.stdout) if r.stdout.strip() else None, r.stderr

    def test_arch_requirement_picks_the_matching_server(self):
        for i in range(4):
            _, out, _ = self.req(self.sa, f"arm-{i}", "--arch", "aarch64")
            self.assertEqual(out["server"], "agent-arm", out)
        # the same requirement through --require (an advertised attribute as a label)
        _, out, _ = self.req(self.sa, "arm-r", "--require", "arch=aarch64,os=Linux")
        self.assertEqual(out["server"], "agent-arm", out)
        # nothing advertises riscv64: a reject that says so, and explain names the unmet attribute
        rc, out, _ = self.req(self.sa, "rv-1", "--arch", "riscv64", expect_ok=False)
        self.assertEqual(rc, 1)
        self.assertEqual(out["action"], "REJECT")
        self.assertIn("fail the requirements", out["reason"])
        rc, out, _ = self.explain("--client", "rv-1", "--arch", "aarch64", "--from-slave", "slave-a")
        self.assertEqual(rc, 0)
        v = {s["id"]: s for s in out["servers"]}
        self.assertEqual(out["server"], "agent-arm")
        self.assertEqual(v["agent-x86"]["verdict"], "requirements")
        self.assertIn("needs arch aarch64, has x86_64", v["agent-x86"]["detail"])
        # bad flag values are usage errors
        self.assertEqual(self.c.lbctl("--slave", self.sa.endpoint, "request", "--app", "echo",
                                      "--client", "x", "--arch", "").returncode, 2)

    def test_preferred_server_honoured_and_refused_with_reason(self):
        _, out, _ = self.req(self.sa, "pick-1", "--server", "agent-x86")
        self.assertEqual(out["server"], "agent-x86")
        self.assertTrue(out["preferred"])
        self.assertEqual(out["preferred_refused"], "")
        # liblbclient's list mode end to end: list, lb_pick, lb_request_on
        probe = os.path.join(BIN, "lbclient-probe")
        r = subprocess.run([probe, "--slaves", self.sa.endpoint, "--client", "pick-2",
                            "--location", "zone-a", "request-on", "echo", "agent-arm"],
                           capture_output=True, text=True, timeout=60,
                           env=self.c.caller_env("client"))
        a = json.loads(r.stdout)
        self.assertTrue(a["ok"], a)
        self.assertEqual(a["server"], "agent-arm")
        self.assertTrue(a["preferred"])
        r = subprocess.run([probe, "--slaves", self.sa.endpoint, "--client", "pick-3",
                            "--location", "zone-a", "pick", "echo"],
                           capture_output=True, text=True, timeout=60,
                           env=self.c.caller_env("client"))
        a = json.loads(r.stdout)
        self.assertTrue(a["ok"] and a["preferred"], a)
        # drained: refused, the client is served elsewhere and told why
        self.c.lbctl("drain", "agent-x86", check=True)
        wait_for(lambda: {s["id"]: s for s in self.explain("--client", "q")[1]["servers"]}
                 ["agent-x86"]["verdict"] == "drained", 10, what="drain seen by the master")
        _, out, _ = self.req(self.sa, "pick-4", "--server", "agent-x86")
        self.assertNotEqual(out["server"], "agent-x86")
        self.assertFalse(out["preferred"])
        self.assertIn("preferred server agent-x86 drained", out["preferred_refused"])
        r = subprocess.run([probe, "--slaves", self.sa.endpoint, "--client", "pick-5",
                            "--location", "zone-a", "request-on", "echo", "no-such-server"],
                           capture_output=True, text=True, timeout=60,
                           env=self.c.caller_env("client"))
        a = json.loads(r.stdout)
        self.assertTrue(a["ok"], a)
        self.assertFalse(a["preferred"])
        self.assertIn("no-such-server is not registered", a["preferred_refused"])
        # explain shows the refusal too
        rc, out, _ = self.explain("--client", "pick-6", "--server", "agent-x86")
        self.assertFalse(out["preferred"])
        self.assertIn("drained", out["preferred_refused"])
        # hostile: an oversized or malformed pick / attribute is a bad request, and the
        # master goes on serving
        for extra, what in ((("--server", "s" * 300), "preferred_server must be"),
                            (("--server", "a b"), "preferred_server must be"),
                            (("--arch", "x86_64\n"), "arch and os must be"),
                            (("--os", "o" * 65), "arch and os must be")):
            rc, out, _ = self.req(self.sa, "hostile", *extra, expect_ok=False)
            self.assertEqual((rc, out["action"]), (1, "REJECT"), out)
            self.assertIn(what, out["reason"])
        _, out, _ = self.req(self.sa, "after-hostile", "--server", "agent-arm")
        self.assertTrue(out["preferred"])
        st = counters(self.c, self.c.master_rpc)
        self.assertGreaterEqual(st.get('master_preferred_total{result="honoured"}', 0), 4)
        self.assertGreaterEqual(st.get('master_preferred_total{result="refused"}', 0), 4)

    def test_reachable_only_via_slave_b_never_paired_with_another(self):
        seen_vb = 0
        for i in range(9):
            _, out, _ = self.req(self.sa, f"via-{i}")
            if out["server"] == "agent-vb":
                seen_vb += 1
                self.assertEqual(out["slave"], "slave-b", out)
                self.assertTrue(out["redirected"])
            else:
                self.assertIn(out["slave"], ("slave-a", "slave-a2"), out)
        # the client's pick of agent-vb from slave-a: served through slave-b
        _, out, _ = self.req(self.sa, "via-pick", "--server", "agent-vb")
        self.assertEqual((out["server"], out["slave"]), ("agent-vb", "slave-b"))
        self.assertGreaterEqual(seen_vb + 1, 2)
        rc, out, _ = self.explain("--client", "via-x", "--server", "agent-vb",
                                  "--from-slave", "slave-a")
        self.assertEqual((out["server"], out["slave"], out["action"]),
                         ("agent-vb", "slave-b", "REDIRECT"))
        self.assertIn("reachable via", out["slave_reason"])
        # slave-b dies: agent-vb is unreachable, never paired with another slave
        self.sb.stop(9)
        wait_for(lambda: {s["id"]: s for s in self.explain("--client", "q")[1]["servers"]}
                 ["agent-vb"]["verdict"] == "unreachable", 15, what="slave-b gone at the master")
        rc, out, _ = self.explain("--client", "q")
        v = {s["id"]: s for s in out["servers"]}
        self.assertIn("reachable only via slave-b", v["agent-vb"]["detail"])
        _, out, _ = self.req(self.sa, "via-pick-2", "--server", "agent-vb")
        self.assertNotEqual(out["server"], "agent-vb")
        self.assertIn("unreachable", out["preferred_refused"])
        # its sticky client moves, and says why
        _, out, _ = self.req(self.sa, "via-pick")
        self.assertNotEqual(out["server"], "agent-vb")
        self.assertTrue(out["moved"])
        self.assertIn("unreachable", out["reason"])

    def test_slave_choice_by_client_and_app(self):
        # served at slave-a2; asking slave-a later brings the client back to slave-a2
        _, out, _ = self.req(self.sa2, "dora", "--require", "label=disk=ssd")
        self.assertEqual((out["slave"], out["server"]), ("slave-a2", "agent-x86"))
        _, again, _ = self.req(self.sa, "dora", "--require", "label=disk=ssd")
        self.assertEqual(again["slave"], "slave-a2", again)
        self.assertEqual(again["pid"], out["pid"])
        self.assertTrue(again["redirected"])
        self.assertIn("client's session slave", again["slave_reason"])
        rc, ex, _ = self.explain("--client", "dora", "--require", "label=disk=ssd", "--from-slave", "slave-a")
        self.assertEqual(ex["slave"], "slave-a2")
        self.assertIn("client's session slave", ex["slave_reason"])
        # a new client of zone-a at slave-a is served there (requesting slave, zone, room)
        _, out, _ = self.req(self.sa, "eve", "--require", "label=disk=ssd")
        self.assertEqual(out["slave"], "slave-a")
        self.assertIn("requesting slave", out["slave_reason"])
        # slave-c fronts only web: an echo client asking it goes to a slave that fronts echo
        for i in range(3):
            _, out, _ = self.req(self.sc, f"web-only-{i}")
            self.assertIn(out["slave"], ("slave-a", "slave-a2", "slave-b"), out)
            self.assertTrue(out["redirected"])
        # the operator's views show what the policy pairs by
        slaves = {x["id"]: x for x in json.loads(self.c.lbctl("slaves", "-o", "json",
                                                               check=True).stdout)}
        self.assertEqual((slaves["slave-c"]["apps"], slaves["slave-a"]["apps"]), (["web"], []))
        wide = self.c.lbctl("slaves", "-o", "wide", check=True).stdout
        self.assertRegex(wide, r"slave-c .* web\n")
        servers = {x["id"]: x for x in json.loads(self.c.lbctl("servers", "-o", "json",
                                                                check=True).stdout)}
        self.assertEqual(servers["agent-vb"]["reachable_via"], ["slave-b"])
        self.assertEqual(servers["agent-arm"]["arch"], "aarch64")


class Shedding(ClusterTest):
    """slave-a1 (limit 3, a 10 s load window, so it stays full for the test)
    and slave-a2 in zone-a, slave-b in zone-b, one agent in zone-a."""

    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.a1 = c.start_slave("slave-a1", "zone-a", limit=3, report_interval="10s")
        self.a2 = c.start_slave("slave-a2", "zone-a",
                                listen=c.url(host="127.0.0.3"))
        self.b = c.start_slave("slave-b", "zone-b")
        c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)

    def test_full_slave_sheds_new_client_to_zone_peer_without_master(self):
        c = self.c
        first = {}
        for i in range(3):
            _, out, _ = c.request(self.a1, "echo", f"c{i}", "zone-a")
            self.assertEqual(out["slave"], "slave-a1", out)
            first[f"c{i}"] = out["pid"]
        before = selections(c)
        r = c.lbctl("--slave", self.a1.endpoint, "request", "--app", "echo", "--client", "c3",
                    "--location", "zone-a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("REDIRECT to slave slave-a2", r.stdout)
        self.assertIn("shed by a full slave", r.stdout)
        self.assertIn("SERVE by slave slave-a2", r.stdout)
        # one selection: slave-a2's; slave-a1 answered the new client on its own
        self.assertEqual(selections(c) - before, 1)
        # a sticky client of slave-a1 is still served there, full or not
        before = selections(c)
        _, out, _ = c.request(self.a1, "echo", "c0", "zone-a")
        self.assertEqual((out["slave"], out["pid"]), ("slave-a1", first["c0"]))
        self.assertFalse(out["redirected"])
        self.assertEqual(selections(c) - before, 1)
        st = counters(c, self.a1.endpoint)
        self.assertEqual(st.get("slave_shed_total"), 1)
        self.assertGreaterEqual(st.get("slave_shed_kept_total", 0), 1)

    def test_forced_redirect_back_to_a_visited_slave_is_refused(self):
        c = self.c
        for i in range(3):
            c.request(self.a1, "echo", f"f{i}", "zone-a")
        # slave-a1 is full and its only peer, slave-a2, was "visited" already: no shed
        # back there, the master is asked, and the client gets an answer (not a loop)
        rc, out, err = c.request(self.a1, "echo", "f-new", "zone-a",
                                 extra=("--visited", "slave-a2"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["action"], "SERVE")
        self.assertEqual(out["hops"], [self.a1.endpoint])
        # the master wants a zone-a slave for a zone-a server, but a zone-b client that
        # has seen both zone-a slaves is served where it is
        rc, out, err = c.request(self.b, "echo", "g-new", "zone-b",
                                 extra=("--visited", "slave-a1,slave-a2"))
        self.assertEqual(rc, 0, err)
        self.assertEqual((out["action"], out["slave"]), ("SERVE", "slave-b"))
        self.assertEqual(len(out["hops"]), 1)
        self.assertIn("already visited", out["slave_reason"])


class NewConfigKeys(unittest.TestCase):
    """apps (slave), arch / os / reachable_via (agent): a wrong type names file:line:key."""

    def run_daemon(self, binary, text):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            r = subprocess.run([os.path.join(BIN, binary), "--config", path],
                               capture_output=True, text=True, timeout=20)
        finally:
            os.unlink(path)
        return r, path

    def test_wrong_types(self):
        cases = (("lb-slave", "id: s\napps: {echo: 1}\n", 2, "apps"),
                 ("lb-agent", "id: a\nzone: a\nreachable_via: {slave-b: 1}\n", 3,
                  "reachable_via"),
                 ("lb-agent", "id: a\narch: [x86_64]\n", 2, "arch"),
                 ("lb-agent", "id: a\nos: {a: b}\n", 2, "os"))
        for binary, text, line, key in cases:
            with self.subTest(binary=binary, key=key):
                r, path = self.run_daemon(binary, text)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(f"{path}:{line}:", r.stderr)
                self.assertIn(key, r.stderr)


HOSTS = "/etc/hosts"
HOSTS_LOCK = "/tmp/lbcp-hosts.lock"
STALE = re.compile(r"^127\.0\.0\.[23] lbcp-dns-(\d+)\.test$")


def edit_hosts(change):
    """Rewrites /etc/hosts under a lock: concurrent runs of this test (other
    checkouts on the same machine) must not resurrect each other's lines."""
    with open(HOSTS_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(HOSTS) as f:
            text = f.read()
        with open(HOSTS, "w") as f:
            f.write(change(text))


def drop_stale(text):
    """Lines a killed run of this test left behind (their pid is gone)."""
    keep = []
    for line in text.splitlines(True):
        m = STALE.match(line.strip())
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            continue
        keep.append(line)
    return "".join(keep)


class DnsEntryPoint(ClusterTest):
    """A name that resolves to two loopback addresses (an /etc/hosts entry the
    test adds and removes): 127.0.0.2 has no slave, 127.0.0.3 has one."""

    # names are expanded for tcp:// only (in tls+tcp:// the name is what the
    # certificate is checked against), so this class runs plain
    tls = False

    def setUp(self):
        if not os.access(HOSTS, os.W_OK):
            self.skipTest("/etc/hosts not writable")
        self.name = f"lbcp-dns-{os.getpid()}.test"
        self.lines = f"127.0.0.2 {self.name}\n127.0.0.3 {self.name}\n"
        edit_hosts(lambda t: drop_stale(t) + ("" if t.endswith("\n") else "\n") + self.lines)
        # a cleanup (not tearDown) so the entry goes even when setUp fails below
        self.addCleanup(self.remove_hosts_entry)
        super().setUp()
        # the slave listens on the address the resolver gives second, so the
        # first one tried is dead whatever order the resolver sorts them in
        order = []
        for ai in socket.getaddrinfo(self.name, 1, socket.AF_INET, socket.SOCK_STREAM):
            if ai[4][0] not in order:
                order.append(ai[4][0])
        self.assertEqual(sorted(order), ["127.0.0.2", "127.0.0.3"])
        self.dead, self.live = order
        c = self.c
        c.start_master()
        self.port = free_port()
        self.s = c.start_slave("slave-dns", "zone-a", listen=f"tcp://{self.live}:{self.port}",
                               advertise=f"tcp://{self.name}:{self.port}")
        self.sb = c.start_slave("slave-b", "zone-b")
        c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)

    def remove_hosts_entry(self):
        edit_hosts(lambda t: t.replace(self.lines, ""))

    def test_two_address_name_fails_over(self):
        ep = f"tcp://{self.name}:{self.port}"
        r = self.c.lbctl("--slave", ep, "request", "--app", "echo", "--client", "d1",
                         "--call-timeout", "2000")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"trying tcp://{self.dead}:{self.port} (1 of 2)", r.stdout)
        self.assertIn(f"trying tcp://{self.live}:{self.port} (2 of 2)", r.stdout)
        self.assertIn("SERVE by slave slave-dns", r.stdout)
        probe = os.path.join(BIN, "lbclient-probe")
        r = subprocess.run([probe, "--slaves", ep, "--client", "d2", "--connect-timeout", "500",
                            "request", "echo"], capture_output=True, text=True, timeout=60,
                           env=self.c.caller_env("client"))
        a = json.loads(r.stdout)
        self.assertTrue(a["ok"], a)
        self.assertEqual(a["slave"], "slave-dns")
        self.assertEqual(a["hop"], [f"tcp://{self.live}:{self.port}"])
        # a redirect that names the DNS entry point is expanded the same way
        r = self.c.lbctl("--slave", self.sb.endpoint, "request", "--app", "echo", "--client", "d3",
                         "--location", "zone-a", "--call-timeout", "2000")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"REDIRECT to slave slave-dns (tcp://{self.name}:{self.port})", r.stdout)
        self.assertIn(f"trying tcp://{self.live}:{self.port} (2 of 2)", r.stdout)
        self.assertIn("SERVE by slave slave-dns", r.stdout)
        r = subprocess.run([probe, "--slaves", self.sb.endpoint, "--client", "d4",
                            "--location", "zone-a", "--connect-timeout", "500", "request", "echo"],
                           capture_output=True, text=True, timeout=60)
        a = json.loads(r.stdout)
        self.assertTrue(a["ok"], a)
        self.assertEqual(a["hop"], [self.sb.endpoint, f"tcp://{self.live}:{self.port}"])


if __name__ == "__main__":
    unittest.main()
