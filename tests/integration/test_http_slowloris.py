"""The operator HTTP endpoint under a slowloris attack (issue 12): 500 connections
from 127.0.0.2 that send headers a few bytes at a time never finish a request;
/healthz asked from 127.0.0.1 still answers within 1 s, every time, and the
daemon keeps serving clients. The per-address connection cap is the defence."""
import socket
import statistics
import threading
import time
import unittest
import urllib.request

from harness import ClusterTest, free_port, wait_for

ATTACKERS = 500


def get(url, timeout=5):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        return r.status, body, time.monotonic() - t0


class Slowloris(ClusterTest):
    def test_healthz_answers_under_500_slow_connections(self):
        c = self.c
        port = free_port()
        c.start_master()
        slave = c.start_slave("slave-a", "zone-a", http_listen=f"127.0.0.1:{port}")
        c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(url + "/healthz")[0] == 200, 15, 0.2, "slave healthy")

        socks, stop = [], threading.Event()
        opened = 0
        for _ in range(ATTACKERS):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                opened += 1
            except OSError:
                pass  # refused or reset by the cap: still an attempt
            socks.append(s)
        self.assertEqual(len(socks), ATTACKERS)

        def trickle():  # keep every connection alive, a header line at a time
            while not stop.wait(1.0):
                for s in socks:
                    try:
                        s.send(b"X-a: b\r\n")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            times = []
            for _ in range(8):
                status, body, dt = get(url + "/healthz", timeout=5)
                self.assertEqual((status, body), (200, b"ok\n"))
                times.append(dt)
                time.sleep(0.25)
            print(f"healthz under {ATTACKERS} slow connections: median "
                  f"{statistics.median(times)*1000:.1f} ms, max {max(times)*1000:.1f} ms "
                  f"({opened} attack connections opened)")
            self.assertLess(max(times), 1.0, times)
            status, text, _ = get(url + "/metrics")
            self.assertEqual(status, 200)
            self.assertIn(b"slave_requests_total", text)
            # the daemon's real work goes on
            _, out, _ = c.request(slave, "echo", "slowloris-client", location="zone-a")
            self.assertEqual(out["action"], "SERVE")
        finally:
            stop.set()
            t.join(5)
            for s in socks:
                s.close()
        self.assertTrue(slave.alive())
        self.assertEqual(get(url + "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
