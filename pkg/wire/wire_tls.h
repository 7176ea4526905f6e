/*
 * TLS on every nng link (nng's tls+tcp:// transport, mbedTLS in Debian's 1.5.2).
 *
 * A wire_tls holds one process's certificate, the CAs it trusts and its policy
 * for plain tcp://. Both directions are verified:
 *  - dialing, the server's certificate must chain to `ca` and carry the name
 *    "<role>.lbcp" of the role dialed (master.lbcp, slave.lbcp, agent.lbcp), or
 *    `server_name` when set: this is how a slave knows it reached a master and
 *    not an agent (Consul's verify_server_hostname);
 *  - listening, the peer must present a certificate that chains to the
 *    listener's peer CA (`peer_ca`, per listener, default `ca`). nng 1.5.2 cannot
 *    read a peer certificate's names, so a role is told apart by the CA that
 *    issued it: each role has its own CA and each listener trusts only the CAs
 *    of the roles allowed to call it (README "Security model").
 * A handshake that fails is refused by nng; the listener's "auth" statistic
 * counts it (wire_tls_refusals) and the daemon goes on serving the others.
 *
 * Policy: with a wire_tls that is not insecure, dialing or listening on plain
 * tcp:// (or ws://) fails with LB_EAUTH; ipc:// and inproc:// are local and
 * allowed. Without any wire_tls (NULL and no default) plain is allowed and
 * tls+tcp:// fails, saying which settings are missing.
 *
 * Ownership: wire_tls_new allocates, wire_tls_free frees; nng keeps its own
 * reference on the configurations it was given, so freeing after sockets close
 * is not required. Thread-safety: a wire_tls is immutable after wire_tls_new and
 * may be used from any thread; wire_tls_set_default is for main before threads.
 */
#ifndef LB_WIRE_TLS_H
#define LB_WIRE_TLS_H

#include "lb/err.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum wire_role {
    WIRE_ROLE_MASTER = 0,
    WIRE_ROLE_SLAVE,
    WIRE_ROLE_AGENT,
    WIRE_ROLE_ANY, /* a server of any lbcp role (lbctl stats) */
    WIRE_ROLE_N
} wire_role;

typedef struct wire_tls_opts {
    const char *ca;          /* PEM bundle: CAs that sign the servers we dial */
    const char *cert;        /* PEM: this process's certificate (chain) */
    const char *key;         /* PEM: its private key (unencrypted) */
    const char *server_name; /* NULL: "<role>.lbcp" per dialed role */
    const char *peer_ca;     /* PEM bundle for listeners (NULL: ca) */
    bool insecure;           /* plain tcp:// allowed (TLS still used for tls+tcp://) */
} wire_tls_opts;

typedef struct wire_tls wire_tls;

/* Loads the files named in o. With insecure and no ca/cert/key, makes a
 * plain-only policy. Errors name the file and what is wrong with it. */
lb_err wire_tls_new(const wire_tls_opts *o, wire_tls **out, lb_errmsg *em);
void wire_tls_free(wire_tls **t);

/* The process-wide wire_tls used by wire_req_dial/wire_rep_listen/wire_dial with
 * tls NULL. Daemons set it once from main. */
void wire_tls_set_default(wire_tls *t);
wire_tls *wire_tls_default(void);
bool wire_tls_insecure(const wire_tls *t);
/* True when t has a certificate (tls+tcp:// can be used). */
bool wire_tls_enabled(const wire_tls *t);

/* Reads LBCP_TLS_CA, LBCP_TLS_CERT, LBCP_TLS_KEY, LBCP_TLS_SERVER_NAME and
 * LBCP_TLS_INSECURE=1 over the values already in o (tools and lbctl). */
void wire_tls_opts_from_env(wire_tls_opts *o);

/* For tools: wire_tls_opts_from_env, then (when anything is set) wire_tls_new
 * and wire_tls_set_default. *out (NULL when nothing is set) is the caller's. */
lb_err wire_tls_env_default(wire_tls **out, lb_errmsg *em);

/* Adds a non-blocking, reconnecting dialer for url to s; the server must be of
 * role `peer`. tls NULL: the default. */
lb_err wire_dial(nng_socket s, const char *url, wire_role peer, const wire_tls *tls, lb_errmsg *em);
/* What wire_dial would refuse (url, TLS policy), without dialing: the dialer
 * is made on s and closed again. For a daemon that dials only later. */
lb_err wire_dial_check(nng_socket s, const char *url, wire_role peer, const wire_tls *tls,
                       lb_errmsg *em);
/* Adds a started listener for url to s; peer_ca (NULL: the wire_tls's) names
 * the CAs whose certificates may connect. *out may be NULL. */
lb_err wire_listen(nng_socket s, const char *url, const char *peer_ca, const wire_tls *tls,
                   nng_listener *out, lb_errmsg *em);

/* Handshakes refused so far by listeners of this process ("auth" statistic). */
uint64_t wire_tls_refusals(void);
/* Brings the counter wire_tls_refused_total up to wire_tls_refusals() (called
 * before counters are shown: stats replies, /metrics). */
void wire_tls_sync_counter(void);
/* True when a dialer of s failed a TLS handshake (its "auth" statistic, or a
 * connection the server closed during the handshake); url (may be NULL) gets
 * that dialer's URL. */
bool wire_tls_refused(nng_socket s, char *url, size_t cap);

/* "tls+tcp://" etc: true for transports that carry no encryption over a network. */
bool wire_url_plain(const char *url);
bool wire_url_tls(const char *url);

/* For a daemon's main: builds the wire_tls of o and makes it the default.
 * Prints "<daemon>: config error: ..." and returns -1 on failure; logs a
 * warning when o->insecure (plain TCP allowed). */
int wire_tls_start(const char *daemon, const wire_tls_opts *o);

#endif
