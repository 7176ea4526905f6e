/* liblbclient internals shared by its files. Fields marked "lock" are guarded
 * by lb_client.lock. */
#ifndef LB_CLIENT_INT_H
#define LB_CLIENT_INT_H

#include "lb/client.h"
#include "lb.pb-c.h"

#include <nng/nng.h>
#include <pthread.h>

#define LBC_MAX_SOCKS 32  /* slave endpoints dialed (configured + redirect targets) */
#define LBC_MAX_HELD 4096 /* sessions kept alive */
#define LBC_MAX_KNOWN 256 /* processes remembered per server (hot spares) */

typedef struct lbc_sock {
    char endpoint[256];
    nng_socket sock;
} lbc_sock;

/* A session the client holds: renewed at a third of its remaining life. */
typedef struct lbc_held {
    char session[64];
    char client_id[128];
    int64_t expires_ms; /* wall */
    int64_t renew_at;   /* wall */
} lbc_held;

/* A live process the client was assigned (direct links): a hot spare. */
typedef struct lbc_known {
    char app[64];
    char server[128];
    char host[256];
    uint16_t port;
    char session[64];
} lbc_known;

struct lb_client {
    char **slaves;
    size_t n_slaves;
    char *client_id, *location, *token;
    char *arch, *os;      /* required advertised attributes, "" = any */
    struct wire_tls *tls; /* NULL: plain tcp:// only */
    char **labels;
    size_t n_labels;
    double min_cpu;
    uint64_t min_mem;
    int connect_timeout_ms, request_timeout_ms, retries, backoff_ms, max_hops;

    pthread_mutex_t lock;
    lbc_sock socks[LBC_MAX_SOCKS]; /* lock */
    size_t n_socks;
    lbc_held *held; /* lock */
    size_t n_held;
    lbc_known known[LBC_MAX_KNOWN]; /* lock; ring */
    size_t n_known, known_next;

    bool keepalive;
    bool stopping; /* lock */
    pthread_cond_t wake;
    pthread_t ka_thread;
};

/* client.c */
lb_err lbc_fail(lb_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lbc_copy(char *dst, size_t cap, const char *src);
/* The REQ socket for endpoint (dialed once, kept). */
lb_err lbc_socket(lb_client *c, const char *endpoint, nng_socket *out);
void lbc_hold(lb_client *c, const lb_assignment *a);
void lbc_unhold(lb_client *c, const char *session);
void lbc_remember(lb_client *c, const lb_assignment *a);
void lbc_forget(lb_client *c, const char *host, uint16_t port);
/* lb_client_request_ex, telling the master the pid of the session's process
 * the client could not connect to (0: none), or claiming the hot spare
 * reserved as claim_spare (NULL: none). */
lb_err lbc_request(lb_client *c, const lb_request *req, int32_t unreachable_pid,
                   const char *claim_spare, lb_assignment *out);
/* A remembered process of app on server, other than host:port. */
bool lbc_known_on(lb_client *c, const char *app, const char *server, lbc_known *out);

/* request.c: one call to endpoint (connect and answer timeouts apart); the
 * caller frees *rep with lb__envelope__free_unpacked(*rep, NULL). */
lb_err lbc_call(lb_client *c, const char *endpoint, Lb__Envelope *req, Lb__Envelope **rep);
/* Sends a request envelope to the first slave that answers (failover with
 * backoff); for release, renew and list. */
lb_err lbc_call_any(lb_client *c, Lb__Envelope *req, Lb__Envelope **rep);
/* True for errors after which another slave may do better. */
bool lbc_retryable(lb_err e);

/* keepalive.c */
int lbc_keepalive_start(lb_client *c);
void lbc_keepalive_stop(lb_client *c);
lb_err lbc_release_session(lb_client *c, const char *session, const char *client_id);

/* connect.c */
int lbc_tcp_connect(const char *host, uint16_t port, int timeout_ms, lb_err *err);

#endif
