"""Hostile values in logs (issue 8 item 6): client ids, app names and session ids
full of quotes, backslashes, newlines, control bytes and bytes that are not UTF-8
go through every path that logs them (slave -> master reject, master session
upkeep, agent launch RPC, the slave's HTTP API), and every line of every daemon stays one logfmt line
whose values decode back to exactly the bytes sent."""
import re
import subprocess
import os
import unittest
import urllib.error
import urllib.request

import fakes
from harness import BIN, ClusterTest, free_port

HOSTILE = [b'x\n ts=x level=error msg="forged"', b'a b"c', b'back\\slash=1',
           b'ctl\x01\x1b[31m\x7f', b'bad\xff\xfe utf8 \xc0\xaf', b'cr\rtab\t', b'plain-id']

KEY = rb'[A-Za-z_][A-Za-z0-9_.]*'
BARE = rb'[!#-<>-\[\]-~]+'           # printable ASCII but space, ", = and backslash
QUOTED = rb'"(?:[^"\\\x00-\x1f\x7f]|\\["\\nrt]|\\u00[0-9a-f]{2}|\\x[0-9a-f]{2})*"'
PAIR = re.compile(rb'(' + KEY + rb')=(' + BARE + rb'|' + QUOTED + rb')(?: |$)')
ESC = re.compile(rb'\\(["\\nrt]|u00[0-9a-f]{2}|x[0-9a-f]{2})')


def unescape(v):
    if not v.startswith(b'"'):
        return v
    simple = {b'"': b'"', b'\\': b'\\', b'n': b'\n', b'r': b'\r', b't': b'\t'}
    return ESC.sub(lambda m: simple.get(m.group(1)) or bytes([int(m.group(1)[-2:], 16)]),
                   v[1:-1])


def strict_logfmt(line):
    """key -> raw bytes value, or None when the line is not strict logfmt."""
    pos, out = 0, {}
    while pos < len(line):
        m = PAIR.match(line, pos)
        if m is None or m.group(1) in out:
            return None
        out[m.group(1).decode()] = unescape(m.group(2))
        pos = m.end()
    return out


class LogEscape(ClusterTest):
    def rawreq(self, addr, data):
        r = subprocess.run([os.path.join(BIN, "lb-rawreq"), addr, "--timeout", "5000"],
                           input=data, capture_output=True, timeout=30,
                           env=self.c.caller_env())
        return r.stdout

    @staticmethod
    def is_utf8(b):
        try:
            b.decode()
            return True
        except UnicodeDecodeError:
            return False

    def parsed(self, name):
        with open(self.c.daemons[name].log_path, "rb") as f:
            raw = f.read()
        self.assertTrue(raw.endswith(b"\n"), name)
        lines = raw[:-1].split(b"\n")
        out = []
        for line in lines:
            kv = strict_logfmt(line)
            self.assertIsNotNone(kv, f"{name}: not one strict logfmt line: {line!r}")
            for k in ("ts", "level", "comp", "msg"):
                self.assertIn(k, kv, f"{name}: {line!r}")
            self.assertNotEqual(kv["msg"], b"forged", f"{name}: forged line {line!r}")
            out.append(kv)
        return out

    def test_hostile_values_stay_on_one_escaped_line(self):
        c = self.c
        c.start_master()
        api_port = free_port()
        slave = c.start_slave("slave-a", "zone-a", api_listen=f"127.0.0.1:{api_port}")
        agent = c.start_agent("agent-a", "zone-a")
        c.wait_master_sees(1)
        for i, h in enumerate(HOSTILE):
            # slave -> master: an unknown hostile app from a hostile client is rejected
            out = self.rawreq(slave.endpoint, fakes.client_request(h, b"app-" + h))
            self.assertIn(b"body=12", out)  # an instruction (the reject)
            # slave -> master: release of a hostile session by a hostile client
            self.rawreq(slave.endpoint, fakes.release_request(b"sess-" + h, h))
            # agent launch RPC called directly with a hostile app, session and client
            self.rawreq(agent.endpoint, fakes.launch_request(b"app-" + h, b"s-" + h, h))
            # the slave's HTTP API: a JSON body (built as bytes, so not-UTF-8 stays so)
            body = (b'{"app":"app-' + h.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                    .replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\t", b"\\t")
                    .replace(b"\x01", b"\\u0001").replace(b"\x1b", b"\\u001b")
                    + b'","client_id":"' + h.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                    .replace(b"\n", b"\\n").replace(b"\r", b"\\r").replace(b"\t", b"\\t")
                    .replace(b"\x01", b"\\u0001").replace(b"\x1b", b"\\u001b") + b'"}')
            req = urllib.request.Request(f"http://127.0.0.1:{api_port}/v1/request", data=body,
                                         method="POST")
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except urllib.error.HTTPError as e:
                e.read()
        self.assertTrue(all(d.alive() for d in c.daemons.values()))

        master = self.parsed("master-1")
        rejected = [kv for kv in master if kv["msg"] == b"rejected"]
        self.assertEqual({kv["client"] for kv in rejected}, set(HOSTILE))
        utf8 = [h for h in HOSTILE if self.is_utf8(h)]
        # once through nng, once more through the API for those JSON can carry
        self.assertEqual(len(rejected), len(HOSTILE) + len(utf8))
        self.assertEqual({kv["app"] for kv in rejected}, {b"app-" + h for h in HOSTILE})
        for kv in rejected:
            self.assertRegex(kv["reason"], rb"^(bad request: |unknown app .app-plain-id.)")

        agent_lines = self.parsed("agent-a")
        bad = [kv for kv in agent_lines if kv["msg"] == b"launch refused" or
               kv["msg"] == b"launch failed"]
        texts = b"\n".join(kv.get("app", b"") + kv.get("error", b"") for kv in bad)
        for h in HOSTILE:
            self.assertIn(b"app-" + h, texts, f"agent did not log {h!r}")
        slave_lines = self.parsed("slave-a")
        refused = b"\n".join(kv.get("request", b"") for kv in slave_lines
                             if kv["msg"] == b"bad request" and kv.get("comp") == b"api")
        for h in HOSTILE:
            if not self.is_utf8(h):
                self.assertIn(b'"client_id":"' + h, refused, f"api did not log {h!r}")


if __name__ == "__main__":
    unittest.main()
