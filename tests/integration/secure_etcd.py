"""A throwaway etcd with TLS, client-certificate auth and etcd auth enabled.

Certificates are made with openssl in the test directory: a CA, etcd's server
certificate (127.0.0.1) and one client certificate with an empty CN (etcd 3.4's
gateway refuses client certificates that carry a CN when auth is on). Users
and roles come from deploy/etcd-auth-setup.sh, the script operators run, so
the tests check the shipped permissions. The harness itself reads and writes
as root.
"""
import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

from harness import Etcd, free_port, wait_for

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d):
    """CA, etcd server cert (IP 127.0.0.1), a client cert with an empty CN,
    and a client cert from another CA. Returns a dict of paths."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")  # etcd's gateway dials etcd with it
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=lbcp {ca}", cwd=d)

    def sign(name, subj, ext, ca="ca"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=d)
    sign("server", "/CN=etcd", "server.ext")
    sign("client", "/O=lbcp", "client.ext")          # no CN: identity comes from the token
    sign("foreign", "/O=lbcp", "client.ext", "other-ca")
    p = lambda n: os.path.join(d, n)
    return {"ca": p("ca.pem"), "cert": p("client.pem"), "key": p("client.key"),
            "server_cert": p("server.pem"), "server_key": p("server.key"),
            "other_ca": p("other-ca.pem"), "foreign_cert": p("foreign.pem"),
            "foreign_key": p("foreign.key")}


class SecureEtcd(Etcd):
    """Etcd over https with --client-cert-auth and auth enabled. token_ttl is
    etcd's --auth-token-ttl (seconds). users: the ids given to the setup script."""

    token_ttl = 300
    masters, slaves, agents, operators = ["master-1"], ["slave-a"], ["agent-a1"], ["ops"]

    def __init__(self, workdir):
        super().__init__(workdir)
        self.url = f"https://127.0.0.1:{self.port}"
        self.certs = make_certs(os.path.join(workdir, "pki"))
        self.secrets = os.path.join(workdir, "secrets")
        self.ctx = ssl.create_default_context(cafile=self.certs["ca"])
        self.ctx.load_cert_chain(self.certs["cert"], self.certs["key"])
        self.root_token = None

    def start(self):
        c = self.certs
        cmd = ["etcd", "--name", "t1", "--data-dir", self.dir,
               "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
               "--listen-peer-urls", f"http://127.0.0.1:{self.peer}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer}",
               "--initial-cluster", f"t1=http://127.0.0.1:{self.peer}",
               "--initial-cluster-state", "new", "--initial-cluster-token", "test",
               "--unsafe-no-fsync", "--client-cert-auth", "--trusted-ca-file", c["ca"],
               "--cert-file", c["server_cert"], "--key-file", c["server_key"],
               "--auth-token-ttl", str(self.token_ttl)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        wait_for(self.healthy, 20, 0.1, "etcd health")
        if not os.path.exists(os.path.join(self.secrets, "root.password")):
            self.setup_auth()
        self.root_token = None

    def setup_auth(self):
        c = self.certs
        r = subprocess.run(
            [os.path.join(ROOT, "deploy/etcd-auth-setup.sh"), "--endpoints", self.url,
             "--out", self.secrets, "--cacert", c["ca"], "--cert", c["cert"], "--key", c["key"],
             "--masters", ",".join(self.masters), "--slaves", ",".join(self.slaves),
             "--agents", ",".join(self.agents), "--operators", ",".join(self.operators)],
            capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"etcd-auth-setup.sh failed: {r.stdout}{r.stderr}")

    def password_file(self, user):
        return os.path.join(self.secrets, user + ".password")

    def password(self, user):
        with open(self.password_file(user)) as f:
            return f.readline().strip()

    def daemon_config(self, user, password_file=None):
        """The etcd keys of a daemon's YAML for user (None: TLS only)."""
        cfg = {"etcd_tls": {"ca": self.certs["ca"], "cert": self.certs["cert"],
                            "key": self.certs["key"]}}
        if user:
            cfg["etcd_user"] = user
            cfg["etcd_password_file"] = password_file or self.password_file(user)
        return cfg

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=1, context=self.ctx) as r:
                return b"true" in r.read()
        except Exception:
            return False

    def raw(self, path, body, token=None):
        """(HTTP status, answer) of one gateway call, with token (or none)."""
        req = urllib.request.Request(self.url + "/v3/" + path, data=json.dumps(body).encode(),
                                     method="POST")
        if token:
            req.add_header("Authorization", token)
        try:
            with urllib.request.urlopen(req, timeout=5, context=self.ctx) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def token(self, user, password=None):
        st, ans = self.raw("auth/authenticate",
                           {"name": user, "password": password or self.password(user)})
        if st != 200:
            raise AssertionError(f"authenticate {user}: {st} {ans}")
        return ans["token"]

    def call(self, path, body):
        for _ in range(2):
            if self.root_token is None:
                self.root_token = self.token("root")
            st, ans = self.raw(path, body, self.root_token)
            if st == 401:  # expired (short --auth-token-ttl) or etcd restarted
                self.root_token = None
                continue
            if st != 200:
                raise AssertionError(f"etcd {path}: {st} {ans}")
            return ans
        raise AssertionError(f"etcd {path}: token refused twice")

    def put(self, key, value, token):
        return self.raw("kv/put", {"key": base64.b64encode(key.encode()).decode(),
                                   "value": base64.b64encode(value).decode()}, token)


class TcpProxy:
    """Forwards 127.0.0.1:port to target_port byte for byte (TLS passes
    through); cut() drops every open connection, new ones are still accepted."""

    def __init__(self, target_port):
        import socket
        import threading
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(2)
            except OSError:
                pass

    def cut(self):
        import socket
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.closed = True
        self.lsock.close()
        self.cut()
