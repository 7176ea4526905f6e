/*
 * Envelopes over nng: every message on every lbcp socket is one protobuf
 * Lb__Envelope (proto/lb.proto) with a version, a request id and one body.
 *
 * Size limits: sockets are opened with a transport limit (WIRE_TRANSPORT_MAX,
 * frames above it make nng drop the connection) and decode enforces an
 * application limit (callers pass their configured max, default WIRE_DEFAULT_MAX)
 * so an oversized message gets an error reply rather than a silent drop.
 *
 * Thread-safety: all functions are safe from any thread; a socket may be shared
 * (each wire_call opens its own context).
 */
#ifndef LB_WIRE_H
#define LB_WIRE_H

#include "lb.pb-c.h"
#include "lb/err.h"

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_DEFAULT_MAX (256u * 1024u)
#define WIRE_TRANSPORT_MAX (4u * 1024u * 1024u)

/* Maps an nng error code to the project's error type. */
lb_err wire_from_nng(int rv);

/* Packs env into a new message. On success the caller owns *out. */
lb_err wire_encode(const Lb__Envelope *env, nng_msg **out);

/* Unpacks msg (not consumed) into *out, which the caller frees with wire_free.
 * LB_ETOOBIG when the body is over max_bytes, LB_EPROTO when it does not decode
 * or has an unsupported version or no body; em says which. */
lb_err wire_decode(const nng_msg *msg, size_t max_bytes, Lb__Envelope **out, lb_errmsg *em);

/* The same from len bytes at buf (a datagram): not consumed. */
lb_err wire_decode_buf(const void *buf, size_t len, size_t max_bytes, Lb__Envelope **out,
                       lb_errmsg *em);

/* Frees an envelope from wire_decode or wire_call and sets *env to NULL. */
void wire_free(Lb__Envelope **env);

/* Builds an ErrorReply envelope message for request_id. Caller owns *out. */
lb_err wire_error_reply(uint64_t request_id, lb_err code, const char *text, nng_msg **out);

/* Builds a StatsReply envelope holding every obs counter. Caller owns *out. */
lb_err wire_stats_reply(uint64_t request_id, const char *daemon, const char *id, nng_msg **out);

/* Opens a REQ socket dialed (non-blocking, reconnecting) to url, a server of
 * any role, with the default TLS (wire_tls.h). */
lb_err wire_req_dial(const char *url, nng_socket *out, lb_errmsg *em);
/* Same to a server of role peer_role (a wire_role), with tls (NULL: default). */
struct wire_tls;
lb_err wire_req_dial_to(const char *url, int peer_role, const struct wire_tls *tls, nng_socket *out,
                        lb_errmsg *em);
/* Like wire_req_dial, with cb called (on nng's thread) for every connection
 * added (NNG_PIPE_EV_ADD_POST) or removed (NNG_PIPE_EV_REM_POST); registered
 * before the dial, so no event is missed. arg must outlive the socket. */
lb_err wire_req_dial_notify(const char *url, int peer_role, const struct wire_tls *tls,
                            nng_pipe_cb cb, void *arg, nng_socket *out, lb_errmsg *em);
/* Opens a REP socket listening on url (TLS: the default wire_tls, its peer CA). */
lb_err wire_rep_listen(const char *url, nng_socket *out, lb_errmsg *em);

/* One request/reply on a REQ socket through a fresh context: sends req, waits at
 * most timeout_ms for the answer, decodes it into *rep (caller frees). An
 * ErrorReply answer is returned as a decoded envelope, not as an error. */
lb_err wire_call(nng_socket sock, const Lb__Envelope *req, int timeout_ms, size_t max_bytes,
                 Lb__Envelope **rep, lb_errmsg *em);

/* The most addresses one endpoint expands into. */
#define WIRE_MAX_EXPAND 16

/* Expands "tcp://NAME:PORT" into one "tcp://ADDR:PORT" per address NAME
 * resolves to (resolver order, duplicates dropped, at most WIRE_MAX_EXPAND),
 * for callers that try them in turn (a DNS name fronting several slaves).
 * Literal addresses, other schemes (ipc://, and tls+tcp://, whose name is the
 * certificate's) and names that do not resolve come back as the one endpoint
 * given. Blocks on the resolver. On success the caller owns *out (free with
 * wire_endpoints_free). */
lb_err wire_endpoint_expand(const char *ep, char ***out, size_t *n);
void wire_endpoints_free(char ***list, size_t n);

/* Process-unique request ids. */
uint64_t wire_next_id(void);

#endif
