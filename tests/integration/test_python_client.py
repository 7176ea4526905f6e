"""The Python client (clients/python, issue 12 item 2) against real daemons:
request, sticky across the kill of its process, release, failover between
slaves (first slave dead), a redirect followed to a confirmed serve, keep-alive
renewal, the spare on an alternate when no slave answers, and the package
installed by pip without reaching PyPI."""
import json
import os
import shutil
import signal
import subprocess
import sys
import socket
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import ClusterTest, free_port, pid_alive, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import lbcp  # noqa: E402


def echo(sock, line=b"hi"):
    """lb-echo's answer to line ("pid=P session=S echo=LINE"), checked."""
    sock.settimeout(5)
    sock.sendall(line + b"\n")
    out = b""
    while not out.endswith(b"\n"):
        c = sock.recv(256)
        if not c:
            raise OSError("closed")
        out += c
    return out


class PythonClientTest(ClusterTest):
    def setUp(self):
        super().setUp()
        c = self.c
        # a short session life where the test is about renewals
        c.start_master(**({"session_ttl": "3s"} if "keepalive" in self._testMethodName else {}))
        self.pa, self.pb = free_port(), free_port()
        self.sa = c.start_slave("slave-a", "zone-a", api_listen=f"127.0.0.1:{self.pa}")
        self.sb = c.start_slave("slave-b", "zone-b", api_listen=f"127.0.0.1:{self.pb}")
        c.start_agent("agent-a", "zone-a")
        c.start_agent("agent-b", "zone-b")
        c.wait_master_sees(2)
        self.a = f"http://127.0.0.1:{self.pa}"
        self.b = f"http://127.0.0.1:{self.pb}"

    def sessions(self):
        return [k for k in self.c.etcd.keys(self.c.prefix) if "/sessions/" in k]

    def test_request_release_and_close(self):
        with lbcp.Client([self.a], client_id="py-1", location="zone-a") as cl:
            a = cl.request("echo")
            self.assertEqual((a.server, a.slave), ("agent-a", "slave-a"))
            self.assertTrue(a.session and a.pid > 0 and a.port > 0, a)
            self.assertEqual(cl.held(), [a])
            wait_for(lambda: self.c.prefix + "sessions/" + a.session in self.sessions(), 10,
                     what="session stored")
            cl.release(a)
            self.assertEqual(cl.held(), [])
            wait_for(lambda: not self.sessions(), 10, what="session gone from etcd")
            wait_for(lambda: not pid_alive(a.pid), 10, what="per-session process stopped")
            b = cl.request("echo")
            wait_for(lambda: self.sessions(), 10, what="second session stored")
        # close released what the client still held
        wait_for(lambda: not self.sessions(), 10, what="close releases held sessions")
        # the stop goes to the agent beside the etcd delete, not before it
        wait_for(lambda: not pid_alive(b.pid), 10, what="the released process stopped")
        with self.assertRaises(lbcp.LbError) as e:
            lbcp.Client([self.a], keepalive=False).request("no-such-app")
        self.assertEqual((e.exception.status, e.exception.code), (404, "no_app"))

    def test_sticky_survives_kill_of_its_process(self):
        with lbcp.Client([self.a], client_id="py-2", location="zone-a") as cl:
            s = cl.sticky("echo")
            echo(s.sock)
            first = s.assignment
            self.assertEqual(s.reconnect(), "same")  # the process is still there
            echo(s.sock)
            asked = self.unreachable_asked()
            os.kill(first.pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(first.pid), 5, what="process killed")
            how = s.reconnect()
            self.assertEqual(how, "rerequest")
            self.assertEqual(s.assignment.server, first.server, "affinity kept the server")
            self.assertNotEqual(s.assignment.pid, first.pid)
            self.assertTrue(pid_alive(s.assignment.pid), s.assignment)
            self.assertIn(b"pid=%d " % s.assignment.pid, echo(s.sock, b"again"))
            # the re-request named the dead pid (HTTP body unreachable_pid): the
            # master went to the agent instead of trusting its view
            self.assertEqual(self.unreachable_asked(), asked + 1)
            s.close()
            wait_for(lambda: not self.sessions(), 10, what="sticky close released")
            self.assertEqual(cl.held(), [])

    def unreachable_asked(self):
        st = self.c.stats(self.c.master_rpc) or {"counters": {}}
        return st["counters"].get("master_sticky_unreachable_total", 0)

    def post(self, body):
        req = urllib.request.Request(self.a + "/v1/request", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def test_http_unreachable_pid_is_passed_and_checked(self):
        st, first = self.post({"app": "echo", "client_id": "py-u", "location": "zone-a"})
        self.assertEqual(st, 200, first)
        launches = lambda: sum(v for k, v in (self.c.stats(self.c.daemons["agent-a"].endpoint)
                                              or {"counters": {}})["counters"].items()
                               if k.startswith("agent_launches_total"))
        before, asked = launches(), self.unreachable_asked()
        # alive: the agent probes it and hands it back (one more agent launch call)
        st, again = self.post({"app": "echo", "client_id": "py-u", "location": "zone-a",
                               "unreachable_pid": first["pid"]})
        self.assertEqual((st, again["pid"]), (200, first["pid"]), again)
        self.assertEqual(self.unreachable_asked(), asked + 1)
        self.assertEqual(launches(), before + 1)
        for bad, why in (("12", "must be a non-negative number"), (-1, "must be a non-negative"),
                         (1.5, "must be an integer"), (2 ** 31, "must be a non-negative")):
            st, out = self.post({"app": "echo", "client_id": "py-u", "unreachable_pid": bad})
            self.assertEqual((st, out["error"]["code"]), (400, "bad_request"), out)
            self.assertIn("unreachable_pid", out["error"]["reason"])
            self.assertIn(why, out["error"]["reason"])

    def test_failover_first_slave_dead_and_redirect_followed(self):
        dead = f"http://127.0.0.1:{free_port()}"
        with lbcp.Client([dead, self.a], client_id="py-3", location="zone-a",
                         connect_timeout=0.5) as cl:
            t0 = time.monotonic()
            a = cl.request("echo")
            self.assertLess(time.monotonic() - t0, 10)
            self.assertEqual(a.slave, "slave-a")
            self.assertEqual(a.hops, [self.a])
            # a zone-b client asking slave-a is sent to slave-b (307) and confirmed there
            r = cl.request("echo", client_id="py-3b", location="zone-b")
            self.assertEqual((r.slave, r.server), ("slave-b", "agent-b"))
            self.assertTrue(r.confirmed)
            self.assertEqual(r.hops, [self.a, self.b])
        # a slave killed under a running client: the next request fails over
        with lbcp.Client([self.a, self.b], client_id="py-3c", location="zone-b",
                         connect_timeout=0.5) as cl:
            self.sa.stop(signal.SIGKILL)
            r = cl.request("echo")
            self.assertEqual(r.slave, "slave-b")
        with self.assertRaises(lbcp.LbError) as e:
            lbcp.Client([dead], keepalive=False, retries=1, backoff=0.01).request("echo")
        self.assertEqual(e.exception.code, "unreachable")

    def test_hostile_slaves_are_skipped(self):
        """A slave that accepts and never answers (request_timeout), one that
        answers a non-API page, and one that closes at once: the client moves on
        to the real slave each time, within its timeouts."""
        silent, garbage, closer = (socket.socket() for _ in range(3))
        for s in (silent, garbage, closer):
            s.bind(("127.0.0.1", 0))
            s.listen(8)
        stop = threading.Event()
        held = []

        def serve(sock, answer):
            sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                held.append(conn)
                if answer is not None:
                    conn.recv(65536)
                    conn.sendall(answer)
                    conn.close()
        threads = [threading.Thread(target=serve, args=a, daemon=True) for a in (
            (silent, None),
            (garbage, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            (closer, b""))]
        for t in threads:
            t.start()
        try:
            urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in (silent, garbage, closer)]
            with lbcp.Client(urls + [self.a], client_id="py-6", location="zone-a",
                             request_timeout=1.0, connect_timeout=0.5) as cl:
                t0 = time.monotonic()
                a = cl.request("echo")
                took = time.monotonic() - t0
                self.assertEqual(a.slave, "slave-a")
                self.assertEqual(a.hops, [self.a])
                self.assertLess(took, 6, "the silent slave held the client past its timeout")
            with self.assertRaises(lbcp.LbError) as e:
                lbcp.Client([urls[1]], keepalive=False, retries=0).request("echo")
            self.assertEqual(e.exception.code, "bad_answer")
        finally:
            stop.set()
            for t in threads:
                t.join(2)
            for s in [silent, garbage, closer] + held:
                s.close()

    def test_keepalive_renews_held_session(self):
        c = self.c
        with lbcp.Client([self.a], client_id="py-4", location="zone-a") as cl:
            a = cl.request("echo")
            e0 = a.expires_ms
            time.sleep(4.5)  # past the ttl: only renewals keep it
            self.assertIn(c.prefix + "sessions/" + a.session, self.sessions())
            self.assertGreater(a.expires_ms, e0)
            self.assertTrue(pid_alive(a.pid))
        wait_for(lambda: not self.sessions(), 10, what="released on close")

    def test_spare_on_alternate_when_no_slave_answers(self):
        with lbcp.Client([self.a], client_id="py-5", location="zone-a", retries=0,
                         connect_timeout=0.5) as cl:
            s = cl.sticky("echo")
            alts = [x["server"] for x in s.assignment.alternates]
            self.assertIn("agent-b", alts)
            spare = cl.request("echo", client_id="py-5b", location="zone-b")  # a held process on agent-b
            self.assertEqual(spare.server, "agent-b")
            self.sa.stop(signal.SIGKILL)
            self.sb.stop(signal.SIGKILL)
            os.kill(s.assignment.pid, signal.SIGKILL)
            wait_for(lambda: not pid_alive(s.assignment.pid), 5, what="process killed")
            self.assertEqual(s.reconnect(), "alternate")
            self.assertEqual((s.assignment.server, s.assignment.port), ("agent-b", spare.port))
            echo(s.sock)
            s.sock.close()
            s.sock = None


class PipInstallTest(unittest.TestCase):
    def test_pip_install_offline(self):
        """pip builds and installs the package with no build dependency
        (an in-tree stdlib backend: CI and this machine may not reach PyPI)."""
        d = tempfile.mkdtemp(prefix="lbcp-pip-")
        try:
            src = os.path.join(d, "src")
            shutil.copytree(os.path.join(ROOT, "clients", "python"), src)
            r = subprocess.run([sys.executable, "-m", "pip", "install",
                                "--no-index", "--no-deps", "--target", os.path.join(d, "t"), src],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            r = subprocess.run([sys.executable, "-c", "import lbcp, sys; print(lbcp.__file__)"],
                               capture_output=True, text=True, cwd=d,
                               env=dict(os.environ, PYTHONPATH=os.path.join(d, "t")))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(os.path.join(d, "t")), r.stdout)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
