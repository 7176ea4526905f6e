"""The master's dashboard (/ui, issue 12 item 3) in headless Chromium (Debian's
chromium, driven by puppeteer-core over the DevTools protocol) against a live
cluster: every server shows in the servers table, an operator's drain (lbctl)
turns its row DRAINING and adds a "drain" event without the page reloading
(exactly one navigation), the explain form shows a verdict per server, the
page fits a narrow window, and screenshots are saved under the test's output
folder. Also the JSON endpoints directly, and hostile paths."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import BIN, ClusterTest, free_port, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEB_TEST = os.path.join(ROOT, "tests", "web")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUT = os.environ.get("LBCP_TEST_OUTPUT") or os.path.join(os.path.dirname(BIN), "test-output")


def ensure_puppeteer():
    """puppeteer-core from the npm registry, into tests/web/node_modules (once).
    Missing chromium or node is a failure, not a skip: tests/deps.sh installs them."""
    if not os.path.exists(CHROMIUM):
        raise AssertionError(f"{CHROMIUM} missing: install Debian's chromium (tests/deps.sh)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise AssertionError("node/npm missing: install nodejs npm (tests/deps.sh)")
    if not os.path.isdir(os.path.join(WEB_TEST, "node_modules", "puppeteer-core")):
        r = subprocess.run(["npm", "ci" if os.path.exists(os.path.join(WEB_TEST, "package-lock.json"))
                            else "install", "--no-audit", "--no-fund"],
                           cwd=WEB_TEST, capture_output=True, text=True, timeout=240,
                           env=dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1"))
        if r.returncode != 0:
            raise AssertionError("npm could not install puppeteer-core: " + r.stderr[-2000:])


def browser_pids(profile):
    """Processes whose command line names the test's chromium profile."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if profile.encode() in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class DashboardTest(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        self.hp = free_port()
        c.start_master(http_listen=f"127.0.0.1:{self.hp}")
        self.sa = c.start_slave("slave-a", "zone-a")
        c.start_slave("slave-b", "zone-b")
        c.start_agent("agent-a1", "zone-a", capacity=4)
        c.start_agent("agent-a2", "zone-a", group="backup", priority=1)
        c.start_agent("agent-b1", "zone-b")
        c.wait_master_sees(3)
        self.base = f"http://127.0.0.1:{self.hp}"

    def test_json_endpoints_and_hostile_paths(self):
        self.c.request(self.sa, "echo", "dash-json", location="zone-a")
        st, _, body = get(self.base + "/ui/api/state")
        self.assertEqual(st, 200)
        s = json.loads(body)
        self.assertEqual((s["master"], s["leader"]), ("master-1", "master-1"))
        self.assertEqual([m["role"] for m in s["masters"]], ["leader"])
        self.assertEqual(sorted(x["id"] for x in s["slaves"]), ["slave-a", "slave-b"])
        by = {x["id"]: x for x in s["servers"]}
        self.assertEqual(set(by), {"agent-a1", "agent-a2", "agent-b1"})
        self.assertEqual(by["agent-a1"]["sessions"], 1)
        self.assertEqual(by["agent-a1"]["capacity"], 4)
        self.assertEqual(by["agent-a2"]["group"], "backup")
        self.assertTrue(all(x["status"] == "UP" for x in s["servers"]))
        def events():
            return json.loads(get(self.base + "/ui/api/events?since=0")[2])
        wait_for(lambda: any(e["event"] == "session-start" for e in events()["events"]), 10,
                 what="session-start event (sessions reach etcd in batches)")
        ev = events()
        names = [(e["event"], e["subject"]) for e in ev["events"]]
        self.assertIn(("server-up", "agent-b1"), names)
        self.assertTrue(any(e == "session-start" for e, _ in names), names)
        st, _, body = get(self.base + f"/ui/api/events?since={ev['last']}")
        self.assertEqual(json.loads(body)["events"], [])
        # a session the leader deletes (a release) ends once, named: the leader
        # keeps its detail when it drops it from its view, and the DELETE etcd
        # sends back (no prev_kv) is named from that
        _, ans, _ = self.c.request(self.sa, "echo", "dash-end", location="zone-a")
        sid = ans["session"]
        wait_for(lambda: f"/lb/sessions/{sid}" in self.c.etcd.keys("/lb/sessions/"), 10,
                 what="the session in etcd")
        self.assertEqual(self.c.lbctl("release", sid).returncode, 0)
        wait_for(lambda: f"/lb/sessions/{sid}" not in self.c.etcd.keys("/lb/sessions/"), 10,
                 what="the session gone from etcd")
        # a later change through the same watch: the DELETE came back before it
        _, mark, _ = self.c.request(self.sa, "echo", "dash-mark", location="zone-a")
        wait_for(lambda: any(e["event"] == "session-start" and e["subject"] == mark["session"]
                             for e in events()["events"]), 10, what="the marker's start")
        ends = [e for e in events()["events"]
                if e["event"] == "session-end" and e["subject"] == sid]
        self.assertEqual([e["detail"] for e in ends],
                         [f"server={ans['server']} client=dash-end app=echo"])
        st, _, body = get(self.base + "/ui/api/explain?app=echo")
        self.assertEqual((st, json.loads(body)["error"]["code"]), (400, "bad_request"))
        st, _, body = get(self.base + "/ui/api/explain?app=nope&client_id=x")
        self.assertEqual(json.loads(body)["action"], "REJECT")
        for p in ("/ui/../../etc/passwd", "/ui/%2e%2e/%2e%2e/etc/passwd", "/uix", "/ui/nope.js"):
            st, _, body = get(self.base + p)
            self.assertEqual(st, 404, p)
        st, hdrs, body = get(self.base + "/ui/")
        self.assertEqual(st, 200)
        self.assertIn("default-src 'self'", hdrs["Content-Security-Policy"])
        self.assertIn(b"<table id=\"servers\">", body)
        st, _, _ = get(self.base + "/healthz")
        self.assertEqual(st, 200)

    def test_live_page_in_chromium(self):
        ensure_puppeteer()
        out = os.path.join(OUT, "test_dashboard")
        os.makedirs(out, exist_ok=True)
        self.c.request(self.sa, "echo", "dash-1", location="zone-a")
        servers = ["agent-a1", "agent-a2", "agent-b1"]
        t0 = time.monotonic()
        profile = tempfile.mkdtemp(prefix="lbcp-chromium-")
        p = subprocess.Popen(["node", os.path.join(WEB_TEST, "dashboard.js"), self.base + "/ui/",
                              out, *servers], cwd=WEB_TEST, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, LBCP_CHROMIUM_PROFILE=profile))

        def step(cmd=None):
            if cmd:
                p.stdin.write(cmd + "\n")
                p.stdin.flush()
            line = p.stdout.readline()
            if not line:
                raise AssertionError("browser driver ended: " + p.stderr.read()[-3000:])
            j = json.loads(line)
            self.assertNotEqual(j["step"], "error", j)
            return j
        try:
            j = step()
            self.assertEqual((j["step"], sorted(j["rows"])), ("loaded", servers))
            self.c.lbctl("drain", "agent-a1", check=True)
            j = step("status agent-a1 DRAINING")
            self.assertTrue(any(e.startswith("drain agent-a1") for e in j["events"]), j)
            j = step("explain echo dash-2 zone-a")
            v = {x["server"]: x["verdict"] for x in j["verdicts"]}
            self.assertEqual(set(v), set(servers))
            self.assertEqual(v["agent-a1"], "drained")
            chosen = [s for s, x in v.items() if x == "chosen"]
            self.assertEqual(len(chosen), 1, v)
            self.assertTrue(j["summary"].startswith("chosen: " + chosen[0]), j["summary"])
            j = step("finish")
            p.stdin.close()
            self.assertEqual(j["navigations"], 1, "the page reloaded")
            self.assertEqual((j["marker"], j["navEntries"]), ("still-here", 1))
            self.assertEqual(j["errors"], [])
            self.assertLessEqual(j["narrow"]["scroll"], j["narrow"]["width"] + 1, j["narrow"])
            self.assertEqual(p.wait(30), 0, p.stderr.read()[-2000:])
            time.sleep(0.2)
            self.assertEqual(browser_pids(profile), [], "the driver left its browser running")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            for pid in browser_pids(profile):  # a driver killed above leaves its browser
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            for f in (p.stdin, p.stdout, p.stderr):
                f.close()
            shutil.rmtree(profile, ignore_errors=True)
        for f in ("dashboard.png", "dashboard-narrow.png"):
            self.assertGreater(os.path.getsize(os.path.join(out, f)), 10000, f)
        print(f"dashboard test: {time.monotonic() - t0:.1f} s in chromium; screenshots in {out}")


if __name__ == "__main__":
    unittest.main()
