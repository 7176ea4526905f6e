"""Fake cluster members written straight into etcd (no daemon behind them), for
scale tests: protobuf records encoded by hand (the wire format is small) so the
tests need nothing beyond the standard library."""
import base64

from pb import field as _str, uint as _u  # one hand-written protobuf encoder for the tests


def server_info(sid, zone="zone-a", region="region-1", group="primary", capacity=100,
                apps=("echo",), host="127.0.0.1", agent_endpoint="tcp://127.0.0.1:1"):
    """ServerInfo (proto/lb.proto) as bytes."""
    b = _str(1, sid) + _str(2, host) + _str(3, agent_endpoint) + _str(4, zone)
    b += _str(5, region) + _str(6, group) + _u(8, capacity)
    for a in apps:
        b += _str(9, a)
    return b


def _b64(b):
    return base64.b64encode(b.encode() if isinstance(b, str) else b).decode()


def grant(etcd, ttl):
    return etcd.call("lease/grant", {"TTL": str(ttl)})["ID"]


def revoke(etcd, lease):
    etcd.call("lease/revoke", {"ID": lease})


def register_servers(etcd, prefix, ids, lease, batch=100, **kw):
    """Puts servers/<id> for every id, attached to lease, in txns of batch puts."""
    ids = list(ids)
    for i in range(0, len(ids), batch):
        ops = [{"requestPut": {"key": _b64(prefix + "servers/" + sid),
                               "value": _b64(server_info(sid, **kw)), "lease": lease}}
               for sid in ids[i:i + batch]]
        etcd.call("kv/txn", {"success": ops})


def envelope(request_id, field, body, version=1):
    """Envelope{version, request_id, <field>: body} as bytes (body already encoded)."""
    return _u(1, version) + _u(2, request_id) + _str(field, body)


def client_request(client_id, app, location=b"zone-a"):
    return envelope(7, 10, _str(1, client_id) + _str(2, location) + _str(3, app))


def launch_request(app, session_id, client_id):
    return envelope(8, 13, _str(1, app) + _str(2, session_id) + _str(3, client_id))


def release_request(session_id, client_id):
    return envelope(9, 21, _str(1, session_id) + _str(2, client_id))
