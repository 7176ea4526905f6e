/*
 * liblbclient — the C client of lbcp.
 *
 * An application asks lbcp's front doors (slaves) for an app and gets an
 * assignment: the process that runs it for this client (host, port, pid,
 * session), pre-launched before the answer arrives. The library follows
 * redirects between slaves (bounded hops, loop detection), fails over across
 * the configured slaves with backoff, keeps the sessions it holds alive, and
 * offers sticky connections that reconnect the way the seed describes: the
 * same server first, then a fresh request (affinity returns the same server
 * while it is good), then the alternates as hot spares.
 *
 * List mode is the other way round: lb_client_list returns every server of an
 * app with status, users and priority group, and lb_pick chooses one.
 *
 *     lb_client_config cfg = {.slaves = (const char *[]){"tcp://10.0.0.1:7201"},
 *                             .n_slaves = 1, .client_id = "alice"};
 *     lb_err err;
 *     lb_client *c = lb_client_open(&cfg, &err);
 *     lb_sticky *s = lb_sticky_open(c, "echo", &err);
 *     write(lb_sticky_fd(s), "hi\n", 3);   // on EOF/error: lb_sticky_reconnect(s)
 *     lb_sticky_close(&s);                 // releases the session
 *     lb_client_close(&c);
 *
 * Errors: every fallible call returns (or fills) an lb_err; lb_client_errmsg()
 * says what went wrong in the calling thread's last failed call.
 *
 * Thread-safety: one lb_client may be shared by any number of threads; its
 * calls are safe concurrently (an internal lock guards its tables; requests
 * run in parallel on their own nng contexts). An lb_sticky belongs to one
 * thread at a time. lb_pick and the list/assignment structs are plain data.
 */
#ifndef LB_CLIENT_H
#define LB_CLIENT_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_client lb_client;
typedef struct lb_sticky lb_sticky;

/* TLS to the slaves (tls+tcp:// endpoints): PEM file names, read at
 * lb_client_open. The slave's certificate must chain to ca and be named
 * "slave.lbcp" (or server_name); cert/key are this client's, from a CA the
 * slaves trust. With ca, cert and key unset only tcp:// slaves can be used;
 * with them set, tcp:// is refused unless insecure. */
typedef struct lb_tls_config {
    const char *ca;
    const char *cert;
    const char *key;
    const char *server_name; /* default "slave.lbcp" */
    bool insecure;           /* also allow plain tcp:// slaves */
} lb_tls_config;

/* What lb_client_open needs. Only slaves is required; strings are copied. */
typedef struct lb_client_config {
    /* slave endpoints, primary first ("tcp://host:port"); a host NAME that
     * resolves to several addresses is expanded (at open) into one endpoint
     * per address, tried in the resolver's order with failover */
    const char *const *slaves;
    size_t n_slaves;
    const char *client_id;     /* identity for affinity (default: a random id) */
    const char *location;      /* the client's zone (default: none) */
    double min_cpu;            /* requirements: free cores wanted (0: any) */
    uint64_t min_mem;          /* free memory wanted in bytes (0: any) */
    const char *const *labels; /* "key" or "key=value" the server must carry */
    size_t n_labels;
    const char *token;      /* signed client token (lbctl token issue) sent to the slaves */
    int connect_timeout_ms; /* reaching one slave (default 1000) */
    int request_timeout_ms; /* one slave's answer, covers the launch (default 15000) */
    int retries;            /* extra rounds over the slave list (default 2) */
    int backoff_ms;         /* pause before a new round, doubled each round (default 100) */
    int max_hops;           /* slaves visited per request (default 3) */
    bool no_keepalive;      /* do not renew held sessions */
    const char *arch;       /* requirements: the server's advertised arch (NULL: any) */
    const char *os;         /* ... and os (NULL: any); labels may name "arch=V" too */
    lb_tls_config tls;      /* TLS to the slaves (see lb_tls_config) */
} lb_client_config;

#define LB_MAX_ALTERNATES 4
#define LB_MAX_HOPS 8

/* A hot spare (master spares: {app: K}): a process on another server held
 * for this client until expires_ms; lb_connect_failover uses it. */
#define LB_MAX_SPARES 4
typedef struct lb_spare {
    char server[128];
    char host[256];
    uint16_t port;
    int32_t pid;
    char session[64]; /* the reservation, claimed by lb_connect_failover */
    int64_t expires_ms;
} lb_spare;

typedef struct lb_alternate {
    char server[128];
    char host[256];
    char zone[64];
} lb_alternate;

/* One answer: where the app runs for this client. Plain data, caller-owned. */
typedef struct lb_assignment {
    char app[64];
    char server[128]; /* server (agent) id */
    char host[256];   /* the process: host and port (direct link) */
    uint16_t port;
    int32_t pid;
    char session[64];
    char slave[128]; /* the slave that served */
    char slave_endpoint[256];
    int hops;                   /* slaves asked, 1 when the first one served */
    char hop[LB_MAX_HOPS][256]; /* their endpoints */
    bool confirmed;             /* a redirect's preselection was confirmed */
    bool affinity;              /* the client's sticky server was kept */
    bool relay;                 /* connect to relay_endpoint, send relay_token "\n" first */
    char relay_endpoint[256];   /* HOST:PORT */
    char relay_token[64];
    int64_t expires_ms; /* session expiry, unix ms (renewed while held) */
    size_t n_alternates;
    lb_alternate alternates[LB_MAX_ALTERNATES];
    char client_id[128];         /* identity the session belongs to */
    bool preferred;              /* the request's server_id was honoured */
    char preferred_refused[160]; /* why it was not ("" when it was, or none asked) */
    char slave_reason[160];      /* why the serving slave was chosen (master's words) */
    size_t n_spares;             /* hot spares of a new session (none by default) */
    lb_spare spares[LB_MAX_SPARES];
} lb_assignment;

/* Per-call overrides of the client's identity (lb_client_request_ex). */
typedef struct lb_request {
    const char *app;       /* required */
    const char *client_id; /* NULL: the client's */
    const char *location;  /* NULL: the client's */
    const char *server_id; /* the client's own pick (e.g. lb_pick from lb_client_list),
                              used when eligible for this client; NULL: none */
} lb_request;

/* Opens a client. Dials the slaves lazily (never blocks on the network) and
 * starts the keepalive thread. Returns NULL and sets *err on a bad config.
 * The caller owns the client and frees it with lb_client_close. */
lb_client *lb_client_open(const lb_client_config *cfg, lb_err *err);

/* Releases every session the client still holds, stops the keepalive thread,
 * frees the client and sets *c to NULL. No other thread may use the client
 * during or after the call. NULL-safe. */
void lb_client_close(lb_client **c);

/* Asks for app: follows redirects (at most max_hops, never the same slave
 * twice), fails over to the next slave on timeout, refusal or "no master",
 * with backoff between rounds. REJECT answers return LB_EREJECTED (the reason
 * is in lb_client_errmsg). On success *out is filled and the session is held
 * (kept alive) until lb_client_release or lb_client_close. Thread-safe. */
lb_err lb_client_request(lb_client *c, const char *app, lb_assignment *out);

/* lb_client_request with a per-call client id and location (a proxy asking
 * for many users through one client). Thread-safe. */
lb_err lb_client_request_ex(lb_client *c, const lb_request *req, lb_assignment *out);

/* lb_client_request asking for a given server (list mode: the client's pick,
 * WO03/105439 claims 1, 12, 15). The master uses server_id when it is
 * eligible for this client; otherwise it chooses as usual and out->preferred
 * is false with out->preferred_refused saying why (down, drained, full, fails
 * the requirements, unknown ...). server_id is copied. Thread-safe. */
lb_err lb_request_on(lb_client *c, const char *app, const char *server_id, lb_assignment *out);

/* Releases a's session at the load balancer (the server's slot is freed and,
 * for per-session apps, the process stopped) and stops renewing it.
 * Thread-safe. */
lb_err lb_client_release(lb_client *c, const lb_assignment *a);

/* Connects to the assignment: the process (direct) or the slave's relay with
 * its token sent first. Returns a connected blocking TCP socket the caller
 * owns, or -1 with *err set. A relay token is good for one connection.
 * Thread-safe (touches no client state). */
int lb_assignment_connect(const lb_assignment *a, int timeout_ms, lb_err *err);

/* lb_assignment_connect, and when the process does not answer, a connect to
 * each unexpired hot spare of *a in turn without asking a slave (seed
 * US 6,591,290); the first one reached is claimed (a request with
 * claim_spare through the slaves), *a becomes that session and the dead
 * one is released. Returns the socket (the caller closes it) or -1 with
 * *err. Spares are direct links only. Thread-safe for distinct *a. */
int lb_connect_failover(lb_client *c, lb_assignment *a, int timeout_ms, lb_err *err);

/* ---- sticky connections ---------------------------------------------------- */

/* How the last lb_sticky_open/reconnect got its connection. */
typedef enum lb_sticky_how {
    LB_STICKY_NEW = 0,   /* a fresh request */
    LB_STICKY_SAME,      /* reconnected to the same process */
    LB_STICKY_REREQUEST, /* asked again: same server by affinity, or another */
    LB_STICKY_ALTERNATE, /* slaves unreachable: a live process on an alternate */
} lb_sticky_how;

/* Requests app and connects to it. The sticky owns the socket and the session;
 * the caller owns the sticky (lb_sticky_close). NULL with *err on failure.
 * The client must outlive the sticky. */
lb_sticky *lb_sticky_open(lb_client *c, const char *app, lb_err *err);

/* The connected socket (owned by the sticky; valid until the next reconnect
 * or close), or -1 after a failed reconnect. */
int lb_sticky_fd(lb_sticky *s);

/* After the connection failed: (1) reconnect to the same process; (2) ask
 * again (affinity brings the client back to its server when it is good, with
 * a relaunched process if it died; else elsewhere); (3) when no slave answers,
 * connect to a process this client already holds on one of the assignment's
 * alternate servers (the library knows an alternate's process only from its
 * own earlier assignments; it cannot launch one without a slave). The old
 * socket is closed. Not thread-safe for one sticky. */
lb_err lb_sticky_reconnect(lb_sticky *s);

/* The current assignment (owned by the sticky) and how it was reached. */
const lb_assignment *lb_sticky_assignment(const lb_sticky *s);
lb_sticky_how lb_sticky_last_how(const lb_sticky *s);

/* Closes the socket, releases the session, frees *s and sets it to NULL. */
void lb_sticky_close(lb_sticky **s);

/* ---- list mode ------------------------------------------------------------- */

typedef enum lb_status {
    LB_STATUS_UP = 0,
    LB_STATUS_DOWN,
    LB_STATUS_DRAINING,
    LB_STATUS_DISABLED,
} lb_status;

typedef struct lb_server {
    char id[128];
    char host[256];
    char endpoint[400]; /* "id@host" as printed in the seed's layout */
    lb_status status;
    uint32_t users; /* connected users (sessions) */
    uint32_t capacity;
    char group[64];     /* priority group */
    int32_t group_rank; /* lower is better */
    char zone[64];
} lb_server;

typedef struct lb_server_list {
    char app[64];
    size_t n;
    lb_server *servers; /* owned by the list: lb_server_list_free */
} lb_server_list;

/* Every server offering app, with status, users and group. On success the
 * caller owns *out (lb_server_list_free). Fails over like lb_client_request.
 * Thread-safe. */
lb_err lb_client_list(lb_client *c, const char *app, lb_server_list *out);
void lb_server_list_free(lb_server_list *l);

/* The seed's rule: in the best-ranked group that has an UP server, a random
 * UP server with p = (1 - users/total) / (live - 1) (total: users of the UP
 * servers of that group; uniform when total is 0; the only one when live is
 * 1). Returns the index in l->servers, or -1 when no server is UP.
 * *rng_state is the caller's PRNG state (any non-zero seed); reentrant. */
int lb_pick(const lb_server_list *l, uint64_t *rng_state);

/* "UP", "DOWN", "DRAINING", "DISABLED". */
const char *lb_status_name(lb_status s);

/* The message of the calling thread's last failed lb_ call (never NULL). */
const char *lb_client_errmsg(void);

/* Static, never NULL (declared in lb/err.h as well). */
const char *lb_strerror(lb_err e);

#ifdef __cplusplus
}
#endif
#endif
