/*
 * lb-master: one state struct shared by its files (Redis-style). Threads:
 * nng's callback threads run the RPC state machines (rpc.c, launch.c); one
 * thread receives load reports (reports.c); one writes to etcd in batches and
 * runs the periodic chores (writer.c); the etcd watch and lease keeper run
 * their own threads (pkg/etcd). The view (reg) has its own lock.
 */
#ifndef LB_MASTER_H
#define LB_MASTER_H

#include "common/hmap.h"
#include "config/cfg_tls.h"
#include "etcd/etcd.h"
#include "registry/reg.h"
#include "select/sel.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MASTER_MAX_SPARES 4
#define MASTER_MAX_STOCK 512  /* stock: {app: N} per server (stock.h) */
#define MASTER_STOCK_CAP 8192 /* stock entries held in total */

/* spares: {app: K} (hot spares, spares.h); stock: {app: N} (stock.h). */
typedef struct master_spare_cfg {
    char *app;
    int count;
} master_spare_cfg;

typedef struct master_config {
    char *path;                 /* config file, for messages */
    char *id;                   /* master id (default: hostname) */
    char *listen;               /* RPC endpoint for slaves and lbctl */
    char *report_listen;        /* SUB endpoint for load reports */
    char *advertise;            /* RPC endpoint registered in etcd (default: listen) */
    char *report_advertise;     /* report endpoint registered in etcd (default: report_listen) */
    char *report_udp_listen;    /* "udp://H:P" of agents' datagram reports; "": off */
    char *report_udp_advertise; /* the same registered in etcd (MasterInfo.report_udp_endpoint) */
    bool report_udp_explicit;   /* report_udp_listen was set: failing to bind it is fatal */
    char *operator_listen;      /* operator RPC endpoint (trusts tls.operator_peer_ca); "": off */
    char *operator_advertise; /* operator endpoint registered in etcd (default: operator_listen) */
    char *etcd;               /* comma-separated URLs */
    etcd_security etcd_sec;   /* etcd_tls, etcd_user, etcd_password_file */
    char *prefix;             /* key prefix, ends in '/' */
    int64_t lease_ttl_ms;     /* of masters/<id> and leader */
    int64_t session_ttl_ms;   /* a session expires this long after its last use */
    int64_t launch_timeout_ms;
    int64_t etcd_timeout_ms;
    int64_t report_stale_ms;   /* a server silent for this long counts as down */
    reg_eject_cfg eject;       /* outlier ejection after launch failures */
    int64_t write_interval_ms; /* extra batching window of etcd writes (0: group commit only) */
    int64_t contexts;          /* RPC requests in flight */
    uint64_t max_message;
    sel_policy policy;
    sel_app_strategy *per_app;
    char **per_app_names;
    size_t n_per_app;
    char *log_level;
    char *http_listen;           /* HOST:PORT of /metrics and /healthz; empty: off */
    char **ui_token_public_keys; /* operator token keys: /ui needs a token signed by one */
    size_t n_ui_token_public_keys;
    int64_t compact_retention_ms; /* etcd history kept by the leader's compaction; 0: off */
    uint64_t etcd_quota;          /* etcd's backend quota, for the 80 % warning */
    bool etcd_economy;        /* false: the old per-second load and per-request session writes */
    cfg_tls tls;              /* certificates and CAs of every nng link */
    master_spare_cfg *spares; /* spares: per app (default none) */
    size_t n_spares;
    int64_t spare_ttl_ms;    /* an unclaimed spare goes back after this */
    master_spare_cfg *stock; /* stock: per app (default none) */
    size_t n_stock;
} master_config;

struct stock_item;

/* One pending etcd write (sessions, affinity, load), owned by the queue. */
typedef struct write_op {
    struct write_op *next;
    char *key;
    void *value; /* NULL for a delete */
    size_t len;
    bool with_prev; /* goes in the same txn as the op before it */
} write_op;

typedef struct master {
    master_config cfg;
    etcd_client *etcd;
    /* The view's feed: three watches that split the prefix around sessions/,
     * so that the leader can have etcd keep its own session puts to itself
     * (writer.c); watch_s is the sessions/ one. */
    etcd_watch *watch_lo, *watch_s, *watch_hi;
    atomic_int watch_up; /* writer.c's on_status: a bit per watch that is connected */
    etcd_keeper *keeper;
    reg *view;

    nng_socket rpc;        /* listen and operator_listen: one REP socket, two listeners */
    int operator_listener; /* nng id of operator_listen's listener; -1: off (rpc_auth.c) */
    nng_socket sub;
    int udp_fd;           /* report_udp_listen's socket; -1: off (reports_udp.c) */
    pthread_t udp_thread; /* receives it */
    bool udp_running;     /* udp_thread was started */
    atomic_bool udp_stop; /* asks udp_thread to return */
    struct rpc_ctx **ctxs;
    size_t n_ctxs;

    pthread_mutex_t agents_lock; /* guards agents */
    hmap *agents;                /* server id -> struct agent_conn * */

    pthread_mutex_t sel_lock; /* guards sel_state (rng, round-robin cursor) */
    sel_state sel;

    pthread_mutex_t wq_lock; /* guards the write queue */
    pthread_cond_t wq_cond;
    write_op *wq_head, *wq_tail;
    size_t wq_len;

    pthread_t writer;
    pthread_t reporter;
    atomic_bool stopping;
    atomic_bool etcd_ok;
    atomic_bool is_leader;     /* won the leader key and not stepped down (leader.c) */
    atomic_llong leader_lease; /* the lease the leader key was won with; 0: none */
    atomic_llong lead_term;    /* counts the times is_leader was set: the NOPUT switch's tag */
    int64_t noput_asked;       /* writer thread only: the tag last given to watch_s */
    int64_t noput_wait_since;  /* writer thread only: since when a switch waits for the queue */
    pthread_t leader_thread;
    bool writes_failing;           /* writer thread only: etcd refuses the batched writes */
    bool writes_fenced;            /* writer thread only: the leader compare fails (logged once) */
    struct master_upkeep *upkeep;  /* writer thread only (upkeep.c) */
    atomic_bool etcd_nospace;      /* etcd's NOSPACE alarm is raised */
    atomic_bool trim_due;          /* the view was (re)loaded: malloc_trim at the next chore */
    atomic_llong etcd_db_bytes;    /* etcd's db size at the last look (0: unknown) */
    struct httpd_ops *http;        /* NULL without http_listen */
    struct auth_verifier *ui_auth; /* NULL: no ui_token_public_keys */
    bool ui_closed;                /* no keys over HTTPS: /ui answers 403 */
    struct master_events *events;  /* the dashboard's event ring (events.h) */
    struct spare_table *spares;    /* hot-spare reservations (spares.h), own lock */
    struct stock_table *stock;     /* the leader's stock (stock.h), own lock */
    struct stock_run *stock_run;   /* its launches in flight (stock_run.c) */
    unsigned char kx_pk[32];       /* report MAC key exchange (auth/report_mac.h): fresh */
    unsigned char kx_sk[32];       /* per process, set before any thread; pk in masters/<id> */
} master;

/* config.c */
int master_config_load(const char *path, master_config *cfg);
/* Same without printing, for SIGHUP: the error is left in em. */
lb_err master_config_read(const char *path, master_config *cfg, lb_errmsg *em);
/* SIGHUP (reload.c): applies the new file's strategy, strategies, zone_spill,
 * overprovision, alternates and log_level; rejects a bad file keeping the old.
 * flag_level is --log-level (NULL: none), which still wins. Main thread. */
int master_reload(master *m, const char *flag_level);
void master_config_free(master_config *cfg);
/* Hot spares offered to a new session of app (0: none). Pure. */
int master_spares_for(const master_config *cfg, const char *app);
/* Stock processes the leader holds per server for app (0: none). Pure. */
int master_stock_for(const master_config *cfg, const char *app);

/* stock_run.c: the leader's stock (stock.h) */
void master_stock_init(master *m);
void master_stock_free(master *m); /* after master_rpc_stop: no launch in flight */
/* A ready stock process of app at server, checked alive in the view, taken
 * for a new session (removed from the stock); false when there is none (a
 * dead one found on the way is dropped and stopped). Any thread; takes the
 * view's lock (the caller must not hold it). */
bool master_stock_take(master *m, const char *server, const char *app, struct stock_item *out);
/* Starts a background launch to bring server's stock of app back to its
 * count (STOCK_INFLIGHT_PER_SERVER in flight per server at most); does
 * nothing when not needed or the server does not qualify. Any thread; takes
 * the view's lock. */
void master_stock_refill(master *m, const char *server, const char *app);
/* After a hit at server: refills now when hits pause or the stock of app
 * there is down to a quarter, else leaves it to the chores and replies
 * (stock_run.c). Any thread; takes the view's lock. */
void master_stock_used(master *m, const char *server, const char *app);
/* Writer thread, every chore: drops (and stops) stock that may not be handed
 * out any more (dead, server out of selection, not leading) and refills. */
void master_stock_tick(master *m, bool lead);

/* writer.c: etcd side (watch, lease, leader, batched writes, chores) */
int master_etcd_start(master *m);
void master_etcd_stop(master *m);
/* Queues a put (value copied) or a delete (value NULL). Never blocks on etcd. */
void master_queue_write(master *m, const char *key, const void *value, size_t len);
/* Queues a session (and with affinity, its client's affinity record: only
 * etcd_economy off writes one) as one unit that is never split across txns;
 * with joined, the op queued just before (the delete of the client's
 * previous session) belongs to the same unit. */
void master_queue_session(master *m, const Lb__Session *s, bool joined, bool affinity);
/* Queues the deletion of session s's record (and of its affinity record,
 * which only etcd_economy off writes). View lock held, as for every queuer. */
void master_queue_session_delete(master *m, const Lb__Session *s);
/* Takes session s (the view's own, from reg_session_locked) out of the view
 * ahead of etcd's DELETE, as the leader does on a release, an expiry or a
 * client that moved; the dashboard keeps its detail for that DELETE, which
 * will not find it in the view (events.h). View lock held; s is invalid
 * afterwards. */
void master_session_forget_locked(master *m, const Lb__Session *s);
/* Wakes the writer thread (leadership changed: it switches the watch). */
void master_writer_wake(master *m);
/* Whether the sessions/ watch's last reload was made for leadership term
 * (lead_term): the view then holds every session put before it, and the
 * watch leaves out this master's own puts. Any thread. */
bool master_view_synced(master *m, int64_t term);

/* upkeep.c (writer thread): etcd alarms on every master; on the leader,
 * history compaction (compact_retention), the db size against etcd_quota and
 * the removal of load/ and affinity/ records an older version wrote. */
void master_upkeep(master *m, bool lead);
void master_upkeep_free(master *m);
/* Why the master is not healthy because of etcd's own state (NOSPACE), or
 * false. Any thread. */
bool master_upkeep_unhealthy(master *m, char *why, size_t cap);

/* leader.c: fenced leadership */
/* Runs the election (a txn on the leader key's create_revision == 0) with lease. */
void master_try_lead(master *m, int64_t lease);
/* True while this master may act as leader: it won the key and its lease was
 * refreshed within 3/4 of the ttl. Thread-safe, cheap (the request path asks). */
bool master_leading(master *m);
int master_leader_start(master *m);
void master_leader_stop(master *m);

/* ops.c: /metrics and /healthz (http_listen), metric help, scrape-time gauges */
int master_ops_start(master *m);
void master_ops_stop(master *m);

/* ui.c: the dashboard (/ui and its JSON endpoints) on the ops server */
int master_ui_start(master *m);

/* reports.c (nng) and reports_udp.c (datagrams) */
/* Binds report_udp_listen before registration, so masters/<id> advertises
 * report_udp_endpoint only when it is bound (a defaulted one that cannot be
 * bound is turned off with a warning; a configured one is fatal: -1). */
int master_reports_udp_open(master *m);
int master_reports_start(master *m);     /* and the UDP thread */
void master_reports_stop(master *m);     /* both; closes the UDP socket */
void master_reports_udp_stop(master *m); /* the UDP part alone; idempotent */
/* report_auth.c: true when a ServerLoad may be applied (MACed with the pair
 * key of, or signed by, its server's registered key; fresh; not replayed).
 * mac_only (UDP): only a valid MAC for us admits it, an unknown or keyless
 * server is refused; from names the sender for the log. Reports threads. */
bool master_report_admit(master *m, const Lb__ServerLoad *l, bool mac_only, const char *from);
/* Counts a refusal (master_reports_refused_total{reason}) and logs it at most
 * once a minute in all, for datagrams no server can be held to. Any thread. */
void master_report_refuse(const char *reason, const char *from, const char *detail);
/* The same for a slave's SlaveLoad against its slaves/<id> key. */
bool master_slave_report_admit(master *m, const Lb__SlaveLoad *l);
void master_report_auth_free(void);

/* rpc_role.c: the caller's role and what it may ask (README "Security model") */
typedef enum master_role { MASTER_ROLE_SLAVE, MASTER_ROLE_OPERATOR } master_role;
/* The role of the peer msg came from: OPERATOR when it arrived on
 * operator_listen's listener, else SLAVE. Any thread; msg not consumed. */
master_role master_rpc_role(const master *m, nng_msg *msg);
/* true when role may make req; else why holds the refusal ("forbidden: ..."),
 * which is logged (escaped) and counted (master_rpc_forbidden_total{rpc}).
 * Any thread. */
bool master_rpc_permitted(master_role role, const Lb__Envelope *req, char *why, size_t cap);

/* rpc.c */
int master_rpc_start(master *m);
void master_rpc_stop(master *m);

/* launch.c: agent connections */
void master_agents_init(master *m);
void master_agents_free(master *m);
/* Opens a context on the REQ socket of server id's agent (dialing it on first
 * use: the leader's session sync rounds make that within 5 s of a server
 * appearing, so every agent's death shows as its connection closing). false
 * when the agent's endpoint is unknown or the socket fails. */
bool master_agent_ctx(master *m, const char *server_id, const char *endpoint, nng_ctx *out);
/* True when server id's agent has a socket already (dialed, connected or
 * redialing): the session sync paces the new ones. Any thread. */
bool master_agent_connected(master *m, const char *server_id);
/* Asks server id's agent to stop a session's process; does not wait. */
void master_agent_stop(master *m, const char *server_id, const char *endpoint,
                       const char *session_id);
/* Tells server id's agent which of its sessions are live (the leader's view),
 * so it stops processes of sessions that ended; does not wait. */
void master_agent_sync(master *m, const char *server_id, const char *endpoint, char **sessions,
                       size_t n);

#endif
