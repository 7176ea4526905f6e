"""Just enough protobuf encoding to hand-craft lbcp envelopes in tests
(proto/lb.proto), so hostile-peer tests can send exactly the bytes they mean."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    """A length-delimited field (string, bytes, message)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def uint(num, value):
    return varint(num << 3) + varint(value)


def envelope(body_num, body, request_id=1):
    """Envelope{version 1, request_id, body field body_num}."""
    return uint(1, 1) + uint(2, request_id) + field(body_num, body)


# Envelope body numbers
CLIENT_REQUEST, SELECTION_REQUEST, LAUNCH_REQUEST, STATS_REQUEST = 10, 11, 13, 19
RELEASE_REQUEST, RENEW_REQUEST, SERVER_LOAD = 21, 22, 16


def client_request(client, app, location="", token=""):
    b = field(1, client) + field(3, app)
    if location:
        b += field(2, location)
    if token:
        b += field(5, token)
    return b


def stats():
    return envelope(STATS_REQUEST, b"")


def launch(app, session, client):
    return envelope(LAUNCH_REQUEST, field(1, app) + field(2, session) + field(3, client))


def selection(client, app, location, slave_id="slave-a"):
    return envelope(SELECTION_REQUEST,
                    field(1, client_request(client, app, location)) + field(2, slave_id))


def decode(buf):
    """Top-level fields of a protobuf message: {number: [value, ...]}, values
    as int (varint) or bytes (length-delimited); enough to read a record."""
    out, i = {}, 0

    def vint():
        nonlocal i
        n = shift = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
    while i < len(buf):
        key = vint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = vint()
        elif wt == 2:
            n = vint()
            v, i = bytes(buf[i:i + n]), i + n
        elif wt == 1:
            v, i = bytes(buf[i:i + 8]), i + 8
        elif wt == 5:
            v, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def release(session, client=""):
    """ReleaseRequest; an empty client means "any client" (operator only)."""
    return envelope(RELEASE_REQUEST, field(1, session) + (field(2, client) if client else b""))


def renew(sessions, client=""):
    return envelope(RENEW_REQUEST,
                    (field(1, client) if client else b"") + b"".join(field(2, s) for s in sessions))
