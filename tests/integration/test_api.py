"""The slave's HTTP/JSON API (issue 12 item 1) with real daemons: every route,
the redirect followed by curl -L ending confirmed, errors with stable codes and
the nng path's reason text, limits, and hostile input."""
import json
import socket
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import ClusterTest, echo_line, free_port, wait_for


def call(url, method="GET", body=None, headers=None, timeout=20):
    """(status, headers, parsed JSON or raw bytes) without following redirects."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as r:
            status, hdrs, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw


def raw_http(port, data, timeout=10, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
            if b"\r\n\r\n" in out and b"Content-Length" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(rest) >= n:
                    break
    finally:
        s.close()
    return out


class ApiTest(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        c.start_master()
        self.pa, self.pb = free_port(), free_port()
        self.sa = c.start_slave("slave-a", "zone-a", api_listen=f"127.0.0.1:{self.pa}",
                                api_max_body="4KiB")
        self.sb = c.start_slave("slave-b", "zone-b", api_listen=f"127.0.0.1:{self.pb}")
        c.start_agent("agent-a", "zone-a")
        c.start_agent("agent-b", "zone-b")
        c.wait_master_sees(2)
        self.a = f"http://127.0.0.1:{self.pa}"
        self.b = f"http://127.0.0.1:{self.pb}"

    def test_serve_sticky_renew_list_release(self):
        body = {"app": "echo", "client_id": "api-1", "location": "zone-a"}
        st, _, j = call(self.a + "/v1/request", "POST", body)
        self.assertEqual(st, 200, j)
        self.assertEqual((j["action"], j["slave"], j["server"]), ("SERVE", "slave-a", "agent-a"))
        for k in ("pid", "host", "port", "session", "expires_ms", "alternates", "confirmed",
                  "moved", "reason", "link"):
            self.assertIn(k, j)
        self.assertEqual(echo_line(j["host"], j["port"], "hello"),
                         f"pid={j['pid']} session={j['session']} echo=hello")
        st, _, again = call(self.a + "/v1/request", "POST", body)
        self.assertEqual((st, again["session"], again["pid"]), (200, j["session"], j["pid"]))
        self.assertTrue(again["affinity"])

        sess = j["session"]
        st, _, r = call(f"{self.a}/v1/sessions/{sess}?client_id=api-1", "PUT")
        self.assertEqual(st, 200, r)
        self.assertTrue(r["ok"])
        self.assertGreaterEqual(r["expires_ms"], j["expires_ms"])

        st, _, lst = call(self.a + "/v1/apps/echo/servers")
        self.assertEqual(st, 200, lst)
        rows = {s["server"]: s for s in lst["servers"]}
        self.assertEqual(set(rows), {"agent-a", "agent-b"})
        self.assertEqual(rows["agent-a"]["status"], "UP")
        self.assertEqual(rows["agent-a"]["group"], "primary")
        for k in ("endpoint", "users", "capacity", "zone"):
            self.assertIn(k, rows["agent-a"])

        st, _, r = call(f"{self.a}/v1/sessions/{sess}?client_id=someone-else", "DELETE")
        self.assertEqual((st, r["error"]["code"]), (403, "forbidden"), r)
        self.assertIn("belongs to another client", r["error"]["reason"])
        st, _, r = call(f"{self.a}/v1/sessions/{sess}?client_id=api-1", "DELETE")
        self.assertEqual((st, r.get("ok")), (200, True), r)
        wait_for(lambda: f"{self.c.prefix}sessions/{sess}" not in self.c.etcd.keys(self.c.prefix),
                 10, 0.1, "session record gone")
        st, _, r = call(f"{self.a}/v1/sessions/{sess}?client_id=api-1", "DELETE")
        self.assertEqual((st, r["error"]["code"]), (404, "not_found"), r)
        st, _, r = call(f"{self.a}/v1/sessions/{sess}?client_id=api-1", "PUT")
        self.assertEqual((st, r["error"]["code"]), (404, "not_found"), r)

    def test_redirect_307_and_curl_follows_to_a_confirmed_serve(self):
        body = {"app": "echo", "client_id": "api-x", "location": "zone-b"}
        st, hdrs, j = call(self.a + "/v1/request", "POST", body)
        self.assertEqual(st, 307, j)
        self.assertEqual(j["action"], "REDIRECT")
        self.assertEqual(j["slave"], "slave-b")
        loc = hdrs["Location"]
        self.assertEqual(loc, j["location"])
        self.assertTrue(loc.startswith(self.b + "/v1/request?"), loc)
        self.assertIn("pre_session=" + j["session"], loc)
        r = subprocess.run(["curl", "-sS", "-L", "-X", "POST", "-H",
                            "Content-Type: application/json", "-d",
                            json.dumps({"app": "echo", "client_id": "api-y",
                                        "location": "zone-b"}),
                            "-w", "\n%{http_code} %{num_redirects}", self.a + "/v1/request"],
                           capture_output=True, text=True, timeout=30)
        text, _, tail = r.stdout.rpartition("\n")
        self.assertEqual(tail, "200 1", r.stdout + r.stderr)
        out = json.loads(text)
        self.assertEqual((out["action"], out["slave"], out["server"]),
                         ("SERVE", "slave-b", "agent-b"))
        self.assertTrue(out["confirmed"], out)
        self.assertEqual(out["visited"], ["slave-a", "slave-b"])
        self.assertEqual(echo_line(out["host"], out["port"], "via-redirect"),
                         f"pid={out['pid']} session={out['session']} echo=via-redirect")

    def test_errors_carry_codes_and_the_nng_reason(self):
        st, _, j = call(self.a + "/v1/request", "POST",
                        {"app": "nosuch", "client_id": "e1", "location": "zone-a"})
        _, nng, _ = self.c.request(self.sa, "nosuch", "e1", location="zone-a", expect_ok=False)
        self.assertEqual((st, j["error"]["code"], j["action"]), (404, "no_app", "REJECT"), j)
        self.assertIn("unknown app 'nosuch'", j["error"]["reason"])
        if nng and nng.get("reason"):
            self.assertEqual(j["error"]["reason"], nng["reason"])
        cases = [
            (b"{not json", "body is not valid JSON"),
            (b"[1,2]", "body must be a JSON object"),
            (json.dumps({"app": "echo", "client_id": "x", "colour": "red"}).encode(),
             "unknown field 'colour'"),
            (json.dumps({"app": "echo", "client_id": 7}).encode(),
             "field 'client_id' must be a string"),
            (json.dumps({"app": "echo"}).encode(), "fields 'app' and 'client_id' are required"),
            (json.dumps({"app": "echo", "client_id": "x", "requirements": {"gpu": 1}}).encode(),
             "unknown field 'requirements.gpu'"),
            (b'{"app":"echo","client_id":"\xff\xfe"}', "body is not valid UTF-8"),
            (json.dumps({"app": "echo", "client_id": "x", "preselection": {"pid": -4}}).encode(),
             "field 'pid' must be a non-negative number in range"),
        ]
        for raw, reason in cases:
            st, _, j = call(self.a + "/v1/request", "POST", raw)
            self.assertEqual(st, 400, (raw, j))
            self.assertEqual(j["error"], {"code": "bad_request", "reason": reason}, raw)
        st, _, j = call(self.a + "/v1/request", "POST",
                        {"app": "bad app\n", "client_id": "x y", "location": "zone-a"})
        self.assertEqual((st, j["error"]["code"]), (400, "bad_request"), j)
        self.assertTrue(j["error"]["reason"].startswith("bad request: "), j)
        st, _, j = call(self.a + "/v1/nothing")
        self.assertEqual((st, j["error"]["code"]), (404, "not_found"))
        st, _, j = call(self.a + "/v1/request")
        self.assertEqual((st, j["error"]["code"]), (405, "method_not_allowed"))
        st, _, j = call(self.a + "/v1/sessions/abc", "POST", b"")
        self.assertEqual((st, j["error"]["code"]), (405, "method_not_allowed"))
        st, _, j = call(self.a + "/v1/sessions/abc", "DELETE")
        self.assertEqual((st, j["error"]["code"]), (400, "bad_request"))
        # over the 4 KiB body limit of slave-a, with and without Content-Length
        st, _, j = call(self.a + "/v1/request", "POST", b"{" + b" " * 5000 + b"}")
        self.assertEqual((st, j["error"]["code"]), (413, "too_large"), j)
        chunked = (b"POST /v1/request HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n" + b"800\r\n" + b" " * 2048 + b"\r\n") * 1
        chunked += (b"800\r\n" + b" " * 2048 + b"\r\n") * 2 + b"0\r\n\r\n"
        out = raw_http(self.pa, chunked)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:200])
        self.assertIn(b'"too_large"', out)
        # headers over 16 KiB
        out = raw_http(self.pa, b"GET /v1/apps/echo/servers HTTP/1.1\r\nHost: x\r\nX-Big: " +
                       b"A" * 40000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:200])
        # counted and logged, daemon alive
        self.assertTrue(self.sa.alive())
        self.assertIn('msg="bad request"', self.sa.output())

    def test_hostile_slow_body_and_flood_do_not_stall_others(self):
        # a client that sends its headers and then a byte of body per second
        slow = socket.socket()
        slow.connect(("127.0.0.1", self.pa))
        slow.sendall(b"POST /v1/request HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        # 100 idle connections from another address
        flood = []
        for _ in range(100):
            s = socket.socket()
            s.bind(("127.0.0.3", 0))
            try:
                s.connect(("127.0.0.1", self.pa))
                s.sendall(b"POST /v1/request HTTP/1.1\r\n")
            except OSError:
                pass
            flood.append(s)
        stop = threading.Event()

        def drip():
            while not stop.wait(1.0):
                try:
                    slow.send(b" ")
                except OSError:
                    return
        t = threading.Thread(target=drip, daemon=True)
        t.start()
        try:
            worst = 0.0
            for i in range(5):
                t0 = time.monotonic()
                st, _, j = call(self.a + "/v1/request", "POST",
                                {"app": "echo", "client_id": "steady", "location": "zone-a"})
                worst = max(worst, time.monotonic() - t0)
                self.assertEqual(st, 200, j)
            self.assertLess(worst, 2.0)
        finally:
            stop.set()
            t.join(3)
            slow.close()
            for s in flood:
                s.close()
        self.assertTrue(self.sa.alive())

    def test_no_master_is_503_with_the_reason(self):
        self.c.daemons["master-1"].stop()
        st, _, j = call(self.a + "/v1/request", "POST",
                        {"app": "echo", "client_id": "nm", "location": "zone-a"}, timeout=60)
        self.assertEqual((st, j["error"]["code"]), (503, "no_master"), j)
        self.assertIn("no master answered", j["error"]["reason"])
        self.assertTrue(self.sa.alive())


class ApiShed(ClusterTest):
    """A full slave (limit 3, a 10 s load window) sheds a new HTTP client to its
    zone peer's API without asking the master: a 307 that curl -L follows."""

    def test_full_slave_sheds_to_the_peer_api(self):
        c = self.c
        c.start_master()
        p1, p2 = free_port(), free_port()
        c.start_slave("slave-a1", "zone-a", limit=3, report_interval="10s",
                      api_listen=f"127.0.0.1:{p1}")
        c.start_slave("slave-a2", "zone-a", api_listen=f"127.0.0.1:{p2}")
        c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)
        a1, a2 = f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"
        for i in range(3):
            st, _, j = call(a1 + "/v1/request", "POST",
                            {"app": "echo", "client_id": f"f{i}", "location": "zone-a"})
            self.assertEqual((st, j["slave"]), (200, "slave-a1"), j)
        st, hdrs, j = call(a1 + "/v1/request", "POST",
                           {"app": "echo", "client_id": "f3", "location": "zone-a"})
        self.assertEqual((st, j["action"], j["slave"]), (307, "REDIRECT", "slave-a2"), j)
        self.assertIn("over its limit", j["reason"])
        self.assertTrue(hdrs["Location"].startswith(a2 + "/v1/request?"), hdrs["Location"])
        r = subprocess.run(["curl", "-sS", "-L", "-X", "POST", "-d",
                            json.dumps({"app": "echo", "client_id": "f4", "location": "zone-a"}),
                            a1 + "/v1/request"], capture_output=True, text=True, timeout=30)
        out = json.loads(r.stdout)
        self.assertEqual((out["action"], out["slave"]), ("SERVE", "slave-a2"), out)
        self.assertEqual(out["visited"], ["slave-a1", "slave-a2"])


if __name__ == "__main__":
    unittest.main()
