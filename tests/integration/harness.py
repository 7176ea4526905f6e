"""Integration-test harness: a throwaway etcd and real lbcp daemons on loopback.

Every test gets its own etcd on free ports and its own daemons, configured
through YAML files in a temporary directory. Processes the daemons start
(lb-echo) carry a per-cluster tag in their environment (agents pass it on
through inherit_env), so teardown finds any app process that outlived its
agent: ClusterTest fails such a test (no process may outlive its supervision).
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request
import base64
import atexit

BIN = os.environ.get("LBCP_BIN", os.path.join(os.path.dirname(__file__), "../../build-asan/bin"))


_given_ports = set()


def free_port():
    """A port for a daemon to listen on, free for TCP and UDP (masters take
    report_listen's port for datagrams too), never handed out twice by this
    process, and below the kernel's ephemeral range (32768-60999), where
    outgoing connections (10,000 of them in a bench run beside the tests) take
    their local ports and could take it between this check and the bind."""
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(10000, 20000)
        if port in _given_ports:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _given_ports.add(port)
        return port
    raise RuntimeError("no free port in 10000-19999")


def port_accepts(url):
    """Whether a TCP connect to the host:port of an nng URL succeeds."""
    host, _, port = url.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), 1).close()
        return True
    except OSError:
        return False


def wait_for(pred, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def echo_line(host, port, line="hi", timeout=5.0):
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode().strip()


ROLES = ("master", "slave", "agent", "operator", "client")
# Who may connect to whose listeners (README "Security model"): each role has
# its own CA, and a listener trusts only the CAs of the roles allowed to call it.
PEER_CAS = {"master": ("slave", "operator"), "report": ("agent", "slave"),
            "agent": ("master", "operator"), "slave": ("client", "operator"),
            "operator": ("operator",)}


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {r.stderr}")


class Pki:
    """A throwaway PKI: one CA per role, a certificate per role named
    "<role>.lbcp", peer CA bundles per listener, and for hostile tests a
    foreign CA's certificate and an expired one (made once per process)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lbcp-pki-")
        d = self.dir
        for r in ROLES + ("foreign",):
            self._ca(r)
        for r in ROLES:
            self._cert(r, r)
        self._cert("foreign", "foreign", name="operator")
        self._expired("expired", "operator")
        with open(self.path("trust.pem"), "w") as out:
            for r in ROLES:
                out.write(self.read(f"ca-{r}.crt"))
        for listener, roles in PEER_CAS.items():
            with open(self.path(f"peers-{listener}.pem"), "w") as out:
                for r in roles:
                    out.write(self.read(f"ca-{r}.crt"))
        os.chmod(d, 0o755)

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def _ca(self, role):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", f"ca-{role}.key", "-out", f"ca-{role}.crt", "-days", "30",
                 "-subj", f"/CN=lbcp test {role} CA", cwd=self.dir)

    def _csr(self, out, name):
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", f"{out}.key", "-out", f"{out}.csr", "-subj", f"/CN={name}.lbcp",
                 cwd=self.dir)
        with open(self.path(f"{out}.ext"), "w") as f:
            f.write(f"subjectAltName=DNS:{name}.lbcp\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")

    def _cert(self, out, ca, name=None):
        self._csr(out, name or out)
        _openssl("x509", "-req", "-in", f"{out}.csr", "-CA", f"ca-{ca}.crt", "-CAkey",
                 f"ca-{ca}.key", "-CAcreateserial", "-out", f"{out}.crt", "-days", "30",
                 "-extfile", f"{out}.ext", cwd=self.dir)

    def _expired(self, out, ca):
        """A certificate of ca's that expired in 2020 (openssl ca takes dates)."""
        self._csr(out, ca)
        os.makedirs(self.path("ca-db"), exist_ok=True)
        open(self.path("ca-db/index.txt"), "w").close()
        with open(self.path("ca-db/ca.cnf"), "w") as f:
            f.write(f"[ca]\ndefault_ca=d\n[d]\ndatabase={self.dir}/ca-db/index.txt\n"
                    f"new_certs_dir={self.dir}/ca-db\nserial={self.dir}/ca-db/serial\n"
                    "default_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\n"
                    "commonName=supplied\n")
        with open(self.path("ca-db/serial"), "w") as f:
            f.write("01\n")
        _openssl("ca", "-batch", "-config", "ca-db/ca.cnf", "-in", f"{out}.csr", "-cert",
                 f"ca-{ca}.crt", "-keyfile", f"ca-{ca}.key", "-out", f"{out}.crt",
                 "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
                 "-extfile", f"{out}.ext", cwd=self.dir)

    def daemon_tls(self, binary):
        """The tls: block of a daemon's config."""
        role = {"lb-master": "master", "lb-slave": "slave", "lb-agent": "agent"}[binary]
        t = {"ca": self.path("trust.pem"), "cert": self.path(f"{role}.crt"),
             "key": self.path(f"{role}.key"), "peer_ca": self.path(f"peers-{role}.pem")}
        if role == "master":
            t["report_peer_ca"] = self.path("peers-report.pem")
            t["operator_peer_ca"] = self.path("peers-operator.pem")
        return t

    def env(self, role="operator"):
        """lbctl / lbclient-probe / lb-rawreq environment for a caller of role
        (a role name, or "foreign" / "expired")."""
        return {"LBCP_TLS_CA": self.path("trust.pem"), "LBCP_TLS_CERT": self.path(f"{role}.crt"),
                "LBCP_TLS_KEY": self.path(f"{role}.key")}

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


_pki = None


def pki():
    """The process's test PKI, made on first use (openssl takes ~1 s)."""
    global _pki
    if _pki is None:
        _pki = Pki()
        atexit.register(_pki.close)
    return _pki


def tls_env_clean(env):
    return {k: v for k, v in env.items() if not k.startswith("LBCP_TLS_")}


class Etcd:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "etcd")
        self.port = free_port()
        self.peer = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log = open(os.path.join(workdir, "etcd.log"), "ab")

    def start(self):
        cmd = ["etcd", "--name", "t1", "--data-dir", self.dir,
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", f"http://127.0.0.1:{self.peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer}",
               "--initial-cluster", f"t1=http://127.0.0.1:{self.peer}",
               "--initial-cluster-state", "new", "--initial-cluster-token", "test",
               "--unsafe-no-fsync"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        wait_for(self.healthy, 20, 0.1, "etcd health")

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                return b"true" in r.read()
        except Exception:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        self.log.close()

    def call(self, path, body):
        req = urllib.request.Request(self.url + "/v3/" + path, data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def keys(self, prefix):
        """Keys (decoded) under prefix."""
        p = prefix.encode()
        end = p[:-1] + bytes([p[-1] + 1])
        ans = self.call("kv/range", {"key": base64.b64encode(p).decode(),
                                     "range_end": base64.b64encode(end).decode(),
                                     "keys_only": True})
        return sorted(base64.b64decode(kv["key"]).decode() for kv in ans.get("kvs", []))


class Daemon:
    def __init__(self, name, argv, log_path, env):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop()
        self.log.close()

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Cluster:
    """A throwaway lbcp cluster. Use as a context manager or call close()."""

    def __init__(self, prefix="/lb/", etcd_class=None, tls=None, http_tls=False):
        # TLS on every link unless the test asks for plain (LBCP_TEST_PLAIN=1 runs all plain)
        if tls is None:
            tls = os.environ.get("LBCP_TEST_PLAIN") != "1"
        self.tls = tls
        # http_listen/api_listen: HTTPS with the daemon's certificate when http_tls; the
        # tests written before HTTPS set tls.http_insecure (plain HTTP, as deploy/compose)
        self.http_tls = tls and http_tls
        self.scheme = "tls+tcp" if tls else "tcp"
        self.pki = pki() if tls else None
        self.dir = tempfile.mkdtemp(prefix="lbcp-test-")
        self.prefix = prefix
        self.tag = os.path.basename(self.dir)
        self.etcd = (etcd_class or Etcd)(self.dir)
        self.etcd.start()
        self.daemons = {}
        self.env = dict(tls_env_clean(os.environ), LBCP_TEST_TAG=self.tag)
        # lbctl reads ~/.config/lbcp/lbctl.yaml when no LBCP_CONFIG names a file:
        # the demo writes one (its etcd, slave, operator TLS), and a test run
        # beside a running demo then dialed the demo's endpoints. Tests name an
        # empty config of their own.
        no_config = os.path.join(self.dir, "lbctl-none.yaml")
        with open(no_config, "w") as f:
            f.write("{}\n")
        self.env["LBCP_CONFIG"] = no_config
        if tls:
            self.env.update(self.pki.env("operator"))
        self.master_rpc = None
        self.master_report = None
        self.master_ops = None  # the master's operator_listen (operator-only RPCs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write_config(self, name, text):
        path = os.path.join(self.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def url(self, port=None, host="127.0.0.1"):
        """An nng endpoint of this cluster's transport (tls+tcp:// or tcp://)."""
        return f"{self.scheme}://{host}:{port if port is not None else free_port()}"

    def tls_block(self, binary):
        if not self.tls:
            return {"insecure": True}
        t = self.pki.daemon_tls(binary)
        if not self.http_tls:
            t["http_insecure"] = True
        return t

    def https_context(self, ca="trust.pem"):
        """An ssl context trusting the test PKI's role CAs (certificates name
        "<role>.lbcp", so the host name is not checked against 127.0.0.1)."""
        import ssl
        ctx = ssl.create_default_context(cafile=self.pki.path(ca))
        ctx.check_hostname = False
        return ctx

    def start(self, name, binary, config_text, extra_args=()):
        if binary in ("lb-master", "lb-slave", "lb-agent") and "\ntls:" not in "\n" + config_text:
            config_text = config_text.rstrip("\n") + "\n" + to_yaml({"tls": self.tls_block(binary)})
        if binary == "lb-slave" and "\nstate_dir:" not in "\n" + config_text:
            # the slave's identity key (SlaveLoad signing) lives here, not in /var/lib
            config_text = config_text.rstrip("\n") + "\n" + to_yaml(
                {"state_dir": os.path.join(self.dir, name + "-state")})
        path = self.write_config(name, config_text)
        d = Daemon(name, [os.path.join(BIN, binary), "--config", path, *extra_args],
                   os.path.join(self.dir, name + ".log"), self.env)
        self.daemons[name] = d
        return d

    def start_master(self, name="master-1", **kw):
        self.master_rpc = kw.pop("listen", self.url())
        self.master_report = kw.pop("report_listen", self.url())
        self.master_ops = kw.pop("operator_listen", self.url())
        cfg = {"id": name, "listen": self.master_rpc, "report_listen": self.master_report,
               "operator_listen": self.master_ops,
               "etcd": self.etcd.url, "prefix": self.prefix, "lease_ttl": "2s",
               "report_stale": "3s"}
        cfg.update(kw)
        d = self.start(name, "lb-master", to_yaml(cfg))
        wait_for(lambda: self.prefix + "leader" in self.etcd.keys(self.prefix), 15,
                 what="master leadership")
        # leadership comes before the RPC and HTTP listeners: wait for them too
        # (a master quieter than info never logs "started": benchmarks run it
        # at warn; its RPC port accepting is what they need)
        quiet = kw.get("log_level") in ("warn", "error")
        wait_for(lambda: 'msg="started"' in d.output() or not d.alive() or
                 (quiet and port_accepts(self.master_rpc)), 15, what=f"{name} started")
        return d

    def start_slave(self, name, zone, **kw):
        listen = kw.pop("listen", self.url())
        cfg = {"id": name, "zone": zone, "region": kw.pop("region", "region-1"), "listen": listen,
               "masters": [self.master_rpc], "report": [self.master_report],
               "etcd": self.etcd.url, "prefix": self.prefix, "lease_ttl": "2s",
               "report_interval": "200ms"}
        cfg.update(kw)
        d = self.start(name, "lb-slave", to_yaml(cfg))
        d.endpoint = listen
        wait_for(lambda: f"{self.prefix}slaves/{name}" in self.etcd.keys(self.prefix), 15,
                 what=f"slave {name} registration")
        return d

    def start_agent(self, name, zone, apps=None, **kw):
        # app ports below the kernel's ephemeral range (32768-60999): an outgoing
        # connection of any test may hold an ephemeral port, and an app told to
        # listen there exits with "Address already in use" (a CI flake)
        lo = 20000 + (free_port() % 12000)
        apps = apps or {"echo": {"argv": [os.path.join(BIN, "lb-echo"), "--port", "{port}",
                                          "--session", "{session}"],
                                 "ready_timeout": "5s"}}
        listen = kw.pop("listen", self.url())
        cfg = {"id": name, "zone": zone, "region": kw.pop("region", "region-1"),
               "group": kw.pop("group", "primary"), "capacity": kw.pop("capacity", 100),
               "host": "127.0.0.1", "listen": listen, "report": [self.master_report],
               "etcd": self.etcd.url, "prefix": self.prefix, "lease_ttl": "2s",
               "report_interval": "200ms", "ports": {"min": lo, "max": lo + 200},
               "state_dir": os.path.join(self.dir, name + "-state"), "shutdown_grace": "0s",
               "inherit_env": ["PATH", "LBCP_TEST_TAG"], "apps": apps}
        cfg.update(kw)
        d = self.start(name, "lb-agent", to_yaml(cfg))
        d.endpoint = listen
        wait_for(lambda: f"{self.prefix}servers/{name}" in self.etcd.keys(self.prefix), 15,
                 what=f"agent {name} registration")
        return d

    def wait_master_sees(self, n_servers, timeout=15):
        """Waits until a request path works: the master knows n servers with reports."""
        def ok():
            st = self.stats(self.master_rpc)
            return st and st["counters"].get('master_load_reports_total{from="agent"}', 0) >= n_servers
        wait_for(ok, timeout, 0.1, "load reports at the master")
        time.sleep(0.3)

    def caller_env(self, role="operator"):
        """Environment of a client tool calling as role (operator, client, slave,
        agent, master, foreign, expired, or None: no certificate at all)."""
        env = tls_env_clean(self.env)
        if self.tls and role is None:  # trusts the daemons, has no certificate of its own
            env["LBCP_TLS_CA"] = self.pki.path("trust.pem")
        if self.tls and role is not None:
            env.update(self.pki.env(role))
            if role in ("foreign", "expired"):
                env["LBCP_TLS_CA"] = self.pki.path("trust.pem")
        return env

    def lbctl(self, *args, check=False, timeout=60, role="operator"):
        r = subprocess.run([os.path.join(BIN, "lbctl"), "--etcd", self.etcd.url,
                            "--prefix", self.prefix, *args],
                           capture_output=True, text=True, timeout=timeout,
                           env=self.caller_env(role))
        if check and r.returncode != 0:
            raise AssertionError(f"lbctl {args} failed ({r.returncode}): {r.stderr}")
        return r

    def request(self, slave, app, client, location=None, expect_ok=True, extra=()):
        args = ["--slave", slave.endpoint if hasattr(slave, "endpoint") else slave,
                "request", "--app", app, "--client", client, "-o", "json", *extra]
        if location:
            args += ["--location", location]
        r = self.lbctl(*args)
        out = json.loads(r.stdout) if r.stdout.strip() else None
        if expect_ok and r.returncode != 0:
            raise AssertionError(f"request failed ({r.returncode}): {r.stdout} {r.stderr}")
        return r.returncode, out, r.stderr

    def stats(self, addr):
        r = self.lbctl("--addr", addr, "stats", "-o", "json", "--call-timeout", "3000")
        return json.loads(r.stdout) if r.returncode == 0 else None

    def rawreq(self, addr, data, timeout_ms=5000, role="operator"):
        r = subprocess.run([os.path.join(BIN, "lb-rawreq"), addr, "--timeout", str(timeout_ms)],
                           input=data, capture_output=True, timeout=30,
                           env=self.caller_env(role))
        return r.returncode, r.stdout.decode().strip()

    def tagged_pids(self, apps_only=False):
        """Processes (e.g. lb-echo) started by this cluster's agents (apps_only:
        not the daemons themselves, nor an agent's guard)."""
        pids = []
        needle = f"LBCP_TEST_TAG={self.tag}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle not in f.read().split(b"\0"):
                        continue
                if apps_only and os.path.basename(os.readlink(f"/proc/{entry}/exe")).startswith(
                        ("lb-agent", "lb-master", "lb-slave", "lbctl", "etcd")):
                    continue
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                        continue
                pids.append(int(entry))
            except OSError:
                pass
        return pids

    def close(self):
        """Stops everything; returns the app processes that outlived their agents
        (killed here, but a test that leaves one behind has failed)."""
        for d in list(self.daemons.values()):
            d.close()
        deadline = time.monotonic() + 3  # guards finish within a moment
        leftovers = self.tagged_pids(apps_only=True)
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.05)
            leftovers = self.tagged_pids(apps_only=True)
        described = []
        for pid in leftovers:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                described.append(f"{pid}: {cmd}")
            except OSError:
                pass
        for pid in self.tagged_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.etcd.close()
        if os.environ.get("LBCP_KEEP_TEST_DIR"):
            print("test dir kept:", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return described


def to_yaml(v, indent=0):
    """Enough YAML for our configs: maps, lists and scalars (strings quoted)."""
    pad = "  " * indent
    if isinstance(v, dict):
        lines = []
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(x, indent + 1))
            else:
                lines.append(f"{pad}{k}: {scalar(x)}")
        return "\n".join(lines)
    if isinstance(v, list):
        return "\n".join(f"{pad}- {scalar(x)}" for x in v)
    return pad + scalar(v)


def scalar(x):
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, dict) and not x:
        return "{}"
    if isinstance(x, list) and not x:
        return "[]"
    return json.dumps(str(x))


class ClusterTest(unittest.TestCase):
    """Base class: self.c is a fresh cluster, closed after the test; daemon logs are
    printed when a test fails."""

    tls = None  # None: TLS unless LBCP_TEST_PLAIN=1; False: this class runs plain tcp://
    http_tls = False  # True: http_listen/api_listen speak HTTPS (tls.http_insecure unset)

    def setUp(self):
        self.c = Cluster(tls=self.tls, http_tls=self.http_tls)
        self._closed = False
        # unittest skips tearDown when setUp fails, but runs cleanups: a class
        # whose setUp fails after starting daemons must not leave them running
        self.addCleanup(self._close_after_failed_setup)

    def _close_after_failed_setup(self):
        if self._closed:
            return
        for d in self.c.daemons.values():
            print(f"----- {d.name} log -----\n{d.output()[-4000:]}")
        self.c.close()

    def tearDown(self):
        self._closed = True
        failed = any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if e) if hasattr(self._outcome, "result") else False
        if failed:
            for d in self.c.daemons.values():
                print(f"----- {d.name} log -----\n{d.output()[-4000:]}")
        leftovers = self.c.close()
        if leftovers:
            self.fail("app processes outlived their agents: " + "; ".join(leftovers))
