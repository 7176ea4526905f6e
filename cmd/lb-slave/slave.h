/*
 * lb-slave: the clients' front door. Threads: nng callbacks run the per-request
 * state machines (rpc.c); one thread publishes load reports and refreshes the
 * masters from etcd (upstream.c); the etcd lease keeper runs its own.
 */
#ifndef LB_SLAVE_H
#define LB_SLAVE_H

#include "config/cfg_tls.h"
#include "etcd/etcd.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SLAVE_MAX_MASTERS 8

typedef struct slave_config {
    char *id;
    char *zone;
    char *region;
    char *listen;    /* client endpoint */
    char *advertise; /* endpoint given to clients in redirects (default: listen) */
    char **masters;  /* master RPC endpoints; empty: discovered from etcd */
    size_t n_masters;
    char **report; /* master report endpoints; empty: discovered from etcd */
    size_t n_report;
    char *etcd;
    etcd_security etcd_sec; /* etcd_tls, etcd_user, etcd_password_file */
    char *prefix;
    int64_t lease_ttl_ms;
    int64_t report_interval_ms;
    int64_t request_timeout_ms; /* one master call */
    int64_t leader_hold_ms;     /* how long a request waits for some master to answer */
    int64_t etcd_timeout_ms;
    int64_t limit; /* requests per report interval before it counts as overloaded */
    int64_t contexts;
    uint64_t max_message;
    char *log_level;
    char *relay_listen;    /* HOST:PORT of the TCP relay; empty: no relay */
    char *relay_advertise; /* HOST:PORT given to clients (default: the bound relay_listen) */
    char *http_listen;     /* HOST:PORT of /metrics and /healthz; empty: off */
    char **apps;           /* apps this slave fronts (SlaveInfo.apps); empty: all */
    size_t n_apps;
    char *api_listen;    /* HOST:PORT of the HTTP/JSON API; empty: off */
    char *api_advertise; /* its base URL given to clients (default http://api_listen) */
    uint64_t api_max_body;
    int64_t api_max_conns;
    int64_t api_per_ip;
    cfg_tls tls;              /* certificates and CAs of every nng link */
    bool require_tokens;      /* clients must present a token signed by one of: */
    char **token_public_keys; /* issuer public key files (lbctl token keygen's FILE.pub) */
    size_t n_token_public_keys;
    char *state_dir;    /* holds the default identity key */
    char *identity_key; /* SlaveLoad signing seed; empty: <state_dir>/identity.key */
} slave_config;

/* The front door's in-process address: the HTTP API sends its calls here. */
#define SLAVE_FRONT_DOOR_INPROC "inproc://lb-slave-front-door"

typedef struct upstream {
    char endpoint[256];
    nng_socket sock;
    atomic_int pipes; /* live connections (nng pipe events): 0 = do not wait on it */
} upstream;

typedef struct slave {
    slave_config cfg;
    etcd_client *etcd;
    etcd_keeper *keeper;
    nng_socket rep;
    nng_socket pub;
    struct slave_ctx **ctxs;
    size_t n_ctxs;

    pthread_mutex_t up_lock; /* guards ups, n_ups, preferred */
    upstream ups[SLAVE_MAX_MASTERS];
    size_t n_ups;
    size_t preferred;         /* the leader (etcd watch), else the master that answered last */
    etcd_watch *leader_watch; /* follows <prefix>leader (leader.c) */

    atomic_uint_fast32_t inflight;
    atomic_uint_fast32_t window; /* requests in the current report window */
    atomic_uint_fast32_t load;   /* requests in the last full window */
    pthread_t upstream_thread;
    atomic_bool stopping;
    struct relay *relay;          /* NULL without relay_listen */
    atomic_llong master_ok_ms;    /* monotonic ms of the last master answer (health) */
    struct slave_ops *ops;        /* ops.c: HTTP endpoint and master probe */
    struct slave_shed *shed;      /* shed.c: zone peers' loads, clients served here */
    struct api_server *api;       /* NULL without api_listen */
    struct auth_verifier *tokens; /* NULL unless require_tokens (rpc_auth.c) */
    unsigned char id_sk[64];      /* identity key (auth/report_sig.h): signs SlaveLoads */
    unsigned char id_pk[32];      /* its public half, in SlaveInfo.report_key */
} slave;

int slave_config_load(const char *path, slave_config *cfg);
/* Same without printing, for SIGHUP: the error is left in em. */
lb_err slave_config_read(const char *path, slave_config *cfg, lb_errmsg *em);
void slave_config_free(slave_config *cfg);

/* reload.c: SIGHUP on the main thread; 0 when the file was applied. */
int slave_reload(slave *s, const char *path, const char *flag_level);

/* upstream.c */
int slave_upstream_start(slave *s);
/* Index of master RPC endpoint ep in ups, dialing it when new; -1 when the
 * table is full or the dial fails. up_lock held. */
int slave_add_master_locked(slave *s, const char *ep);
/* leader.c: watches the leader key and makes the leader's endpoint preferred,
 * so a failover moves requests at once instead of after a timeout. */
int slave_leader_start(slave *s);
void slave_leader_stop(slave *s);
void slave_upstream_stop(slave *s);
/* Opens a context on master i (in preference order from `preferred`); false
 * when i >= number of masters. *which receives the master's slot. */
bool slave_master_ctx(slave *s, size_t i, nng_ctx *out, size_t *which, char *ep, size_t ep_cap);
void slave_master_ok(slave *s, size_t which);
size_t slave_n_masters(slave *s);

/* ops.c: /metrics and /healthz (http_listen); probes a master when idle */
int slave_ops_start(slave *s);
void slave_ops_stop(slave *s);

/* rpc.c */
int slave_rpc_start(slave *s);
void slave_rpc_stop(slave *s);

#endif
