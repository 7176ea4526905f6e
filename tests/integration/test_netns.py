"""lbcp across hosts: every daemon on its own test host (a network namespace this
test creates, joined to the others by veth pairs on a bridge), so nothing shares
a loopback. The only addresses used are the test hosts' own (10.213.x.0/24
inside namespaces created here) and the namespaces' loopbacks."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import BIN, Daemon, echo_line, pki, to_yaml, wait_for

HOSTS = ["etcd", "master", "slave", "agent1", "agent2", "client"]


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def have_netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    r = sh("ip", "netns", "add", "lbcp-nsprobe", check=False)
    sh("ip", "netns", "del", "lbcp-nsprobe", check=False)
    return r.returncode == 0


@unittest.skipUnless(have_netns(), "needs root and ip netns")
class MultiHost(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lbcp-netns-")
        self.tag = "%x" % (os.getpid() & 0xfff)
        self.subnet = 1 + os.getpid() % 250  # 10.213.<subnet>.0/24, per test run
        self.ns = {h: f"lbcp{self.tag}-{h}" for h in HOSTS}
        self.ip = {h: f"10.213.{self.subnet}.{i + 10}" for i, h in enumerate(HOSTS)}
        self.br = f"lbcp{self.tag}-br"
        self.daemons = []
        self.created = []
        sh("ip", "netns", "add", self.br)
        self.created.append(self.br)
        sh("ip", "netns", "exec", self.br, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", self.br, "ip", "link", "set", "br0", "up")
        for i, h in enumerate(HOSTS):
            ns = self.ns[h]
            sh("ip", "netns", "add", ns)
            self.created.append(ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", f"l{self.tag}h{i}", "netns", ns, "type", "veth", "peer",
               "name", f"l{self.tag}b{i}", "netns", self.br)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", f"l{self.tag}h{i}", "name", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", self.ip[h] + "/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", self.br, "ip", "link", "set", f"l{self.tag}b{i}",
               "master", "br0")
            sh("ip", "netns", "exec", self.br, "ip", "link", "set", f"l{self.tag}b{i}", "up")
        self.etcd_url = f"http://{self.ip['etcd']}:2379"

    def tearDown(self):
        for d in reversed(self.daemons):
            d.close()
        for ns in self.created:
            r = sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        for ns in self.created:
            sh("ip", "netns", "del", ns, check=False)
        if self.failed():
            for d in self.daemons:
                print(f"----- {d.name} -----\n{d.output()[-3000:]}")
        shutil.rmtree(self.dir, ignore_errors=True)

    def failed(self):
        res = getattr(self._outcome, "result", None)
        return bool(res and (res.errors or res.failures))

    def run_in(self, host, name, argv):
        d = Daemon(name, ["ip", "netns", "exec", self.ns[host], *argv],
                   os.path.join(self.dir, name + ".log"), dict(os.environ))
        self.daemons.append(d)
        return d

    def config(self, name, cfg, binary):
        cfg = dict(cfg, tls=pki().daemon_tls(binary))  # every link over TLS, as deployed
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg))
        return path

    def in_ns(self, host, *argv, timeout=30):
        return subprocess.run(["ip", "netns", "exec", self.ns[host], *argv], capture_output=True,
                              text=True, timeout=timeout, env=dict(os.environ, **pki().env()))

    def test_request_path_across_hosts(self):
        ip = self.ip
        self.run_in("etcd", "etcd", [
            "etcd", "--name", "n1", "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://{ip['etcd']}:2380",
            "--initial-advertise-peer-urls", f"http://{ip['etcd']}:2380",
            "--initial-cluster", f"n1=http://{ip['etcd']}:2380", "--unsafe-no-fsync"])
        def healthy():
            r = self.in_ns("client", "curl", "-sf", self.etcd_url + "/health", timeout=5)
            return r.returncode == 0 and "true" in r.stdout
        wait_for(healthy, 20, 0.2, "etcd on its host")
        rpc, rep = f"tls+tcp://{ip['master']}:7101", f"tls+tcp://{ip['master']}:7102"
        self.run_in("master", "master", [os.path.join(BIN, "lb-master"), "--config", self.config(
            "master", {"id": "m1", "listen": rpc, "report_listen": rep, "etcd": self.etcd_url,
                       "lease_ttl": "2s", "report_stale": "3s"}, "lb-master")])
        slave_ep = f"tls+tcp://{ip['slave']}:7201"
        self.run_in("slave", "slave", [os.path.join(BIN, "lb-slave"), "--config", self.config(
            "slave", {"id": "s1", "zone": "z1", "listen": slave_ep, "etcd": self.etcd_url,
                      "lease_ttl": "2s", "report_interval": "200ms"}, "lb-slave")])  # masters from etcd
        agents = {}
        for h in ("agent1", "agent2"):
            agents[h] = self.run_in(h, h, [os.path.join(BIN, "lb-agent"), "--config", self.config(h, {
                "id": h, "zone": "z1", "host": ip[h], "listen": f"tls+tcp://{ip[h]}:7301",
                "report": [rep], "etcd": self.etcd_url, "lease_ttl": "2s",
                "report_interval": "200ms", "ports": {"min": 21000, "max": 21100},
                "state_dir": os.path.join(self.dir, h + "-state"), "shutdown_grace": "0s",
                "apps": {"echo": {"argv": [os.path.join(BIN, "lb-echo"), "--host", ip[h],
                                           "--port", "{port}", "--session", "{session}"]}}},
                "lb-agent")])

        def lbctl(*args):
            return self.in_ns("client", os.path.join(BIN, "lbctl"), "--etcd", self.etcd_url,
                              *args)
        def servers():
            r = lbctl("servers", "-o", "json")
            return r.returncode == 0 and r.stdout.count('"id"') == 2
        wait_for(servers, 20, 0.2, "both agents registered")
        import json
        seen = {}
        def request(client):
            r = lbctl("--slave", slave_ep, "request", "--app", "echo", "--client", client,
                      "--location", "z1", "-o", "json")
            return json.loads(r.stdout) if r.returncode == 0 else None
        first = wait_for(lambda: request("c0"), 20, 0.3, "a first assignment")
        seen[first["server"]] = first
        for i in range(1, 6):
            out = request(f"c{i}")
            self.assertIsNotNone(out)
            seen[out["server"]] = out
        self.assertEqual(set(seen), {"agent1", "agent2"}, "least-loaded uses both hosts")
        for server, out in seen.items():
            self.assertEqual(out["host"], ip[server], "the process runs on its agent's host")
            r = self.in_ns("client", "python3", "-c",
                           "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 5);"
                           "s.sendall(b'hi\\n'); print(s.recv(200).decode().strip())",
                           out["host"], str(out["port"]))
            self.assertEqual(r.stdout.strip(), f"pid={out['pid']} session={out['session']} echo=hi")

        # agent2's host drops off the network: its lease expires, nothing goes there
        sh("ip", "netns", "exec", self.ns["agent2"], "ip", "link", "set", "eth0", "down")
        wait_for(lambda: '"agent2"' not in lbctl("servers", "-o", "json").stdout, 15, 0.3,
                 "agent2 to leave etcd")
        for i in range(6, 10):
            out = request(f"c{i}")
            self.assertIsNotNone(out)
            self.assertEqual(out["server"], "agent1")


if __name__ == "__main__":
    unittest.main()
