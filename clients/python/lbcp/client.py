"""Client, Sticky and Assignment: see the package docstring for the behaviour."""
import http.client
import json
import socket
import threading
import time
import urllib.parse
import uuid

__all__ = ["Assignment", "Client", "LbError", "Sticky"]

# errors after which the next slave is tried: it could not be reached or did not
# answer in time, has no master, or answered something that is not the API
RETRYABLE = ("unreachable", "no_master", "bad_answer")


class LbError(Exception):
    """A refused or failed call.

    ``status`` is the HTTP status (0 when no slave answered), ``code`` the API's
    stable code (``no_master``, ``no_app``, ``rejected``, ``unreachable`` ...)
    and ``reason`` the slave's text, the same as the nng path's.
    """

    def __init__(self, status, code, reason):
        super().__init__(f"{code}: {reason}" if code else reason)
        self.status, self.code, self.reason = status, code, reason


class Assignment:
    """One answer: where the app runs for this client.

    Every field of the API's assignment is an attribute (``server``, ``host``,
    ``port``, ``pid``, ``session``, ``slave``, ``slave_api``, ``link``,
    ``relay_endpoint``, ``relay_token``, ``expires_ms``, ``alternates``,
    ``confirmed``, ``affinity``, ``visited`` ...), plus ``app``, ``client_id``
    and ``hops`` (the API base URLs asked, in order). Missing fields read as None.
    """

    def __init__(self, app, client_id, fields, hops):
        self.__dict__.update(fields)
        self.app, self.client_id, self.hops = app, client_id, list(hops)

    def __getattr__(self, name):  # only for fields the answer did not carry
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    @property
    def relay(self):
        """True when the process is reached through the serving slave's relay."""
        return self.link == "relay"

    def __repr__(self):
        return (f"Assignment(app={self.app!r}, server={self.server!r}, host={self.host!r}, "
                f"port={self.port!r}, pid={self.pid!r}, session={self.session!r})")


def _split(base):
    u = urllib.parse.urlsplit(base)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"slave URL {base!r}: want http://HOST:PORT")
    return u


class Client:
    """A client of lbcp. Close it (or use it as a context manager) to release
    the sessions it still holds and stop its keep-alive thread.

    :param slaves: the slaves' API base URLs, primary first
        (``["http://10.0.0.1:8201", ...]``).
    :param client_id: identity for affinity (default: a random id).
    :param location: the client's zone (default: none).
    :param token: auth token passed to the slaves.
    :param requirements: ``{"min_cpu", "min_mem_bytes", "labels": [...]}``.
    :param connect_timeout: seconds to reach one slave (1).
    :param request_timeout: seconds for one slave's answer, launch included (15).
    :param retries: extra rounds over the slave list (2).
    :param backoff: seconds before a new round, doubled each round (0.1).
    :param max_hops: slaves visited per request (3).
    :param keepalive: renew held sessions in the background (True).
    :param ssl_context: for ``https://`` slaves (their default), an
        :class:`ssl.SSLContext` trusting the slaves' CA, e.g.
        ``ctx = ssl.create_default_context(cafile="trust.pem");
        ctx.check_hostname = False`` (lbcp certificates name ``slave.lbcp``,
        not the host). None: the system's default trust.
    """

    def __init__(self, slaves, client_id=None, location=None, token=None, requirements=None,
                 connect_timeout=1.0, request_timeout=15.0, retries=2, backoff=0.1, max_hops=3,
                 keepalive=True, ssl_context=None):
        if not slaves:
            raise ValueError("at least one slave URL is needed")
        self.slaves = [s.rstrip("/") for s in slaves]
        for s in self.slaves:
            _split(s)
        self.client_id = client_id or "py-" + uuid.uuid4().hex[:12]
        self.location, self.token, self.requirements = location, token, requirements
        self.connect_timeout, self.request_timeout = connect_timeout, request_timeout
        self.retries, self.backoff, self.max_hops = retries, backoff, max_hops
        # https:// slaves: an ssl.SSLContext trusting lbcp's slave CA (its
        # certificates name "slave.lbcp", not the host: check_hostname=False or
        # resolve that name); None: the system's default trust
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._held = {}  # session -> [Assignment, renew_at (monotonic)]
        self._closed = False
        self._thread = None
        if keepalive:
            self._thread = threading.Thread(target=self._keepalive, name="lbcp-keepalive",
                                            daemon=True)
            self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- HTTP -------------------------------------------------------------
    def _http(self, url, method, body=None, timeout=None):
        """(status, headers, parsed JSON or None). OSError when unreachable."""
        u = _split(url)
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=self.connect_timeout,
                                               context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=self.connect_timeout)
        try:
            conn.connect()
            conn.sock.settimeout(timeout or self.request_timeout)
            path = u.path or "/"
            if u.query:
                path += "?" + u.query
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            if self.token:  # release/renew carry it here (a request also has it in the body)
                hdrs["Authorization"] = "Bearer " + self.token
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            try:
                j = json.loads(raw) if raw else None
            except ValueError:
                j = None
            return r.status, r.headers, j
        finally:
            conn.close()

    @staticmethod
    def _error(status, j):
        e = (j or {}).get("error") if isinstance(j, dict) else None
        if e:
            return LbError(status, e.get("code", ""), e.get("reason", ""))
        return LbError(status, "http_%d" % status, "unexpected answer")

    # ---- requests ---------------------------------------------------------
    def request(self, app, client_id=None, location=None, unreachable_pid=None):
        """Asks for ``app`` and returns an :class:`Assignment`; the session is
        held (renewed) until :meth:`release` or :meth:`close`.

        ``client_id``/``location`` override the client's for this call.
        ``unreachable_pid``: the pid of this client's process that could not be
        connected to; the master then asks its agent (which probes the process
        and replaces a dead one) instead of answering from its own view, which
        may not know of the death yet. Raises :class:`LbError`.
        """
        body = {"app": app, "client_id": client_id or self.client_id}
        if unreachable_pid:
            body["unreachable_pid"] = int(unreachable_pid)
        if location or self.location:
            body["location"] = location or self.location
        if self.token:
            body["token"] = self.token
        if self.requirements:
            body["requirements"] = self.requirements
        last = LbError(0, "unreachable", "no slave configured")
        delay = self.backoff
        for rnd in range(self.retries + 1):
            if rnd:
                time.sleep(delay)
                delay *= 2
            for base in self.slaves:
                try:
                    a = self._ask(base, body)
                except LbError as e:
                    if e.code not in RETRYABLE:
                        raise
                    last = e
                    continue
                self._hold(a)
                return a
        raise last

    def _ask(self, base, body):
        """One request from one slave, following 307s (bounded, no loops)."""
        url, hops = base + "/v1/request", []
        while True:
            hops.append(url.split("/v1/")[0])
            try:
                st, hdrs, j = self._http(url, "POST", body)
            except (OSError, http.client.HTTPException) as e:
                if len(hops) == 1:
                    raise LbError(0, "unreachable", f"{base}: {e}") from None
                raise LbError(0, "unreachable", f"redirect to {hops[-1]}: {e}") from None
            if st == 307 and hdrs.get("Location"):
                nxt = urllib.parse.urljoin(url, hdrs["Location"])
                if len(hops) >= self.max_hops or nxt.split("/v1/")[0] in hops:
                    raise LbError(st, "redirect_loop",
                                  f"redirected past {len(hops)} slaves: {' '.join(hops)}")
                url = nxt
                continue
            if st == 200 and isinstance(j, dict) and j.get("action") == "SERVE":
                return Assignment(body["app"], body["client_id"], j, hops)
            if not isinstance(j, dict) or (st == 200 and "action" not in j) or (
                    st >= 400 and not isinstance(j.get("error"), dict)):
                raise LbError(st, "bad_answer", f"{hops[-1]}: not an lbcp API answer (HTTP {st})")
            if st == 200 and j.get("action") == "REDIRECT":
                raise LbError(st, "redirect_nng", "redirected to slave %s, which has no HTTP API "
                              "(nng %s)" % (j.get("slave"), j.get("slave_endpoint")))
            raise self._error(st, j)

    # ---- held sessions ------------------------------------------------------
    def _hold(self, a):
        if not a.session:
            return
        with self._lock:
            self._held[a.session] = [a, self._renew_at(a)]
            self._wake.notify()

    @staticmethod
    def _renew_at(a):
        left = max(0.0, (a.expires_ms or 0) / 1000.0 - time.time())
        return time.monotonic() + max(0.2, left / 3)

    def held(self):
        """The assignments this client holds (a copy of the list)."""
        with self._lock:
            return [h[0] for h in self._held.values()]

    def _session_call(self, a, method):
        q = urllib.parse.urlencode({"client_id": a.client_id})
        sid = urllib.parse.quote(a.session, safe="")
        bases = ([a.slave_api.rstrip("/")] if a.slave_api else []) + \
            [s for s in self.slaves if s != (a.slave_api or "").rstrip("/")]
        last = LbError(0, "unreachable", "no slave answered")
        for base in bases:
            try:
                st, _, j = self._http(f"{base}/v1/sessions/{sid}?{q}", method, timeout=5)
            except (OSError, http.client.HTTPException) as e:
                last = LbError(0, "unreachable", f"{base}: {e}")
                continue
            if st == 200:
                return j
            last = self._error(st, j)
            if last.code != "no_master":
                break
        raise last

    def renew(self, a):
        """Renews ``a``'s session now (the keep-alive thread does it on its own)."""
        j = self._session_call(a, "PUT")
        if j and j.get("expires_ms"):
            a.expires_ms = j["expires_ms"]
        with self._lock:
            if a.session in self._held:
                self._held[a.session][1] = self._renew_at(a)

    def release(self, a):
        """Releases ``a``'s session (its slot is freed; a per-session app's
        process is stopped) and stops renewing it. Raises :class:`LbError`."""
        with self._lock:
            self._held.pop(a.session, None)
        self._session_call(a, "DELETE")

    def _keepalive(self):
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                due = [h[0] for h in self._held.values() if h[1] <= now]
                if not due:
                    nxt = min((h[1] for h in self._held.values()), default=now + 1.0)
                    self._wake.wait(max(0.05, min(1.0, nxt - now)))
                    continue
                self._lock.release()
                try:
                    for a in due:
                        try:
                            self.renew(a)
                        except LbError as e:
                            with self._lock:
                                if e.code == "not_found":  # gone: nothing left to keep
                                    self._held.pop(a.session, None)
                                elif a.session in self._held:  # try again soon
                                    self._held[a.session][1] = time.monotonic() + 1.0
                finally:
                    self._lock.acquire()

    def close(self):
        """Releases every held session and stops the keep-alive thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            held = [h[0] for h in self._held.values()]
            self._wake.notify()
        if self._thread:
            self._thread.join(10)
        for a in held:
            try:
                self.release(a)
            except LbError:
                pass

    # ---- connections --------------------------------------------------------
    def connect(self, a, timeout=3.0):
        """A connected socket to ``a``'s process (direct), or to the serving
        slave's relay with the one-time token sent first."""
        if a.relay:
            host, _, port = a.relay_endpoint.rpartition(":")
            s = socket.create_connection((host.strip("[]"), int(port)), timeout)
            s.sendall(a.relay_token.encode() + b"\n")
        else:
            s = socket.create_connection((a.host, int(a.port)), timeout)
        s.settimeout(None)
        return s

    def sticky(self, app):
        """Requests ``app`` and connects: a :class:`Sticky`."""
        return Sticky(self, app)

    def _known_on(self, app, server):
        with self._lock:
            for a, _ in self._held.values():
                if a.app == app and a.server == server and not a.relay and a.port:
                    return a
        return None


class Sticky:
    """A connection to an app that reconnects the way the seed describes.

    ``sock`` is the connected socket, ``assignment`` the current assignment and
    ``how`` how the last (re)connection was made: ``"new"``, ``"same"`` (the
    same process), ``"rerequest"`` (asked again) or ``"alternate"`` (a process
    this client holds on an alternate server). Close it to release the session.
    """

    def __init__(self, client, app):
        self.client, self.how, self.sock = client, "new", None
        self.assignment = client.request(app)
        try:
            self.sock = client.connect(self.assignment)
        except OSError:
            client.release(self.assignment)
            raise

    def reconnect(self):
        """Same process, else a new request, else a held spare on an alternate
        server. Returns ``how``; raises :class:`LbError` or OSError."""
        c, a = self.client, self.assignment
        if self.sock:
            self.sock.close()
            self.sock = None
        if not a.relay and a.port:  # 1: the same process (a relay token is single-use)
            try:
                self.sock = c.connect(a)
                self.how = "same"
                return self.how
            except OSError:
                pass
        try:  # 2: ask again under the same identity
            na = self._ask_again(a)
        except LbError as e:
            if e.code not in RETRYABLE:
                raise
            for alt in a.alternates or []:  # 3: no slave answered: a spare we hold
                k = c._known_on(a.app, alt.get("server"))
                if k is None:
                    continue
                try:
                    self.sock = c.connect(k)
                except OSError:
                    continue
                self.assignment = Assignment(a.app, a.client_id, dict(a.__dict__), a.hops)
                self.assignment.server, self.assignment.host = k.server, k.host
                self.assignment.port, self.assignment.pid = k.port, 0
                self.how = "alternate"
                return self.how
            raise
        if na.session != a.session:
            try:
                c.release(a)  # moved: the old session is done
            except LbError:
                pass
        self.assignment = na
        self.sock = c.connect(na)
        self.how = "rerequest"
        return self.how

    def _ask_again(self, a):
        """A new request naming the process that just refused us
        (``unreachable_pid``: the master asks the agent, which probes it and
        replaces it, rather than trusting its view, which learns of a death
        only from the agent's next report); while the answer is still that
        process, ask again after a pause, a few times."""
        c = self.client
        delay = max(0.2, c.backoff)
        dead = a.pid if not a.relay and a.pid else None
        for attempt in range(4):
            na = c.request(a.app, client_id=a.client_id, unreachable_pid=dead)
            if na.relay or (na.host, na.port, na.pid) != (a.host, a.port, a.pid) or attempt == 3:
                return na
            try:
                c.connect(na).close()
                return na  # it answers after all
            except OSError:
                time.sleep(delay)
                delay *= 2
        return na

    def close(self):
        """Closes the connection and releases the session."""
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.assignment is not None:
            try:
                self.client.release(self.assignment)
            except LbError:
                pass
            self.assignment = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
