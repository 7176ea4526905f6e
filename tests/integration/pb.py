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
