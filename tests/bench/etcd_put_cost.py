#!/usr/bin/env python3
"""etcd's own CPU per session-sized put through the v3 JSON gateway (the way
the master writes), to tell what a new session costs etcd apart from what it
costs lbcp (issue 10's P2 at concurrency 16, README "The latest round").

For each case a throwaway etcd (as the tests run it: one member, loopback,
--unsafe-no-fsync) takes N puts in txns of K ops over one kept-alive HTTP
connection, with W watchers streaming the prefix (curl, as the master's
watch does); the figure is etcd's CPU seconds (utime + stime from /proc)
over the puts, per put, and the ratio against the first case (no watcher,
K=16) measured in the same run. Later cases ask the watchers for prev_kv
(each event's previous value, as the master once did) and measure deletes of
keys put first (unmeasured) instead of puts. Bounded: a few seconds per case, every etcd
stopped at the end. Loopback only.

    tests/bench/etcd_put_cost.py [N]     (default 4000 puts per case)
"""
import base64
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Etcd  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000


def b64(v):
    return base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def case(watchers, per_txn, value_len, prev_kv=False, delete=False, key_len=32):
    """etcd CPU microseconds per put (delete: per delete of keys put first,
    unmeasured). prev_kv: the watchers ask for each event's previous value."""
    etcd = Etcd(tempfile.mkdtemp(prefix="lbcp-putcost-"))
    etcd.start()
    streams = []
    try:
        for _ in range(watchers):
            body = {"create_request": {"key": b64("/lb/"), "range_end": b64("/lb0"),
                                       "prev_kv": prev_kv}}
            streams.append(subprocess.Popen(
                ["curl", "-sN", "-X", "POST", etcd.url + "/v3/watch", "-d", json.dumps(body)],
                stdout=subprocess.DEVNULL))
        time.sleep(1.0)  # the watches are created
        conn = http.client.HTTPConnection("127.0.0.1", etcd.port, timeout=10)
        value = b64(os.urandom(value_len))

        def key(i):
            return b64(f"/lb/sessions/{i:08x}".ljust(13 + key_len, "a"))

        def run(make):
            k = 0
            while k < N:
                ops = [make(k + i) for i in range(per_txn)]
                k += per_txn
                conn.request("POST", "/v3/kv/txn", body=json.dumps({"success": ops}),
                             headers={"Content-Type": "application/json"})
                conn.getresponse().read()
            time.sleep(1.0)  # the watch events are sent
            return k

        def put(i):
            return {"request_put": {"key": key(i), "value": value}}

        def rm(i):
            return {"request_delete_range": {"key": key(i)}}

        if delete:
            run(put)
        c0 = cpu_s(etcd.proc.pid)
        k = run(rm if delete else put)
        return (cpu_s(etcd.proc.pid) - c0) * 1e6 / k
    finally:
        for s in streams:
            s.kill()
            s.wait()
        etcd.close()


def main():
    cases = [  # (watchers, ops per txn, value bytes, prev_kv, delete); the first is the baseline
        (0, 16, 130, False, False), (1, 16, 130, False, False), (2, 16, 130, False, False),
        (1, 1, 130, False, False), (1, 4, 130, False, False), (1, 64, 130, False, False),
        (1, 16, 40, False, False), (1, 16, 400, False, False),
        (1, 16, 130, True, False), (0, 16, 130, False, True), (1, 16, 130, False, True),
        (1, 16, 130, True, True),
    ]
    print(f"etcd CPU per put through the JSON gateway, {N} puts per case")
    base = None
    for w, k, v, prev, rm in cases:
        us = case(w, k, v, prev, rm)
        base = base or us
        what = "delete" if rm else "put"
        print(f"  watchers {w}{' prev_kv' if prev else '        '}  ops/txn {k:3d}  value {v:4d} B: "
              f"{us:6.0f} us/{what:6s}  "
              f"ratio {us / base:.2f}", flush=True)


if __name__ == "__main__":
    main()
