"""Hostile values in logs (issue 8 item 6): client ids, app names and session ids
full of quotes, backslashes, newlines, control bytes and bytes that are not UTF-8
go through every path that logs them (slave -> master reject, master session
upkeep, agent launch RPC), and every line of every daemon stays one logfmt line
whose values decode back to exactly the bytes sent."""
import re
import subprocess
import os
import unittest

import fakes
from harness import BIN, ClusterTest

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
                           input=data, capture_output=True, timeout=30)
        return r.stdout

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
        slave = c.start_slave("slave-a", "zone-a")
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
        self.assertTrue(all(d.alive() for d in c.daemons.values()))

        master = self.parsed("master-1")
        rejected = [kv for kv in master if kv["msg"] == b"rejected"]
        self.assertEqual({kv["client"] for kv in rejected}, set(HOSTILE))
        self.assertEqual({kv["app"] for kv in rejected}, {b"app-" + h for h in HOSTILE})
        for kv in rejected:
            self.assertRegex(kv["reason"], rb"^(bad request: |unknown app .app-plain-id.)")

        agent_lines = self.parsed("agent-a")
        bad = [kv for kv in agent_lines if kv["msg"] == b"launch refused" or
               kv["msg"] == b"launch failed"]
        texts = b"\n".join(kv.get("app", b"") + kv.get("error", b"") for kv in bad)
        for h in HOSTILE:
            self.assertIn(b"app-" + h, texts, f"agent did not log {h!r}")
        self.parsed("slave-a")


if __name__ == "__main__":
    unittest.main()
