/*
 * A client for etcd's v3 JSON gateway (POST /v3/...), over libcurl, JSON by cJSON.
 * See ../shared/etcd-gateway.md for the wire format this speaks.
 *
 * Keys are C strings (the caller's prefix included); values are bytes. Every
 * call has a timeout (etcd_open's timeout_ms); every failure maps to lb_err
 * (LB_ETIMEDOUT, LB_EUNAVAIL for unreachable endpoints, LB_ENOTFOUND for a lost
 * lease, LB_ECOMPACTED, LB_EAUTH when etcd refuses the credentials or the
 * permission, LB_EETCD for any other gateway error) with the gateway's
 * message and the endpoint in em.
 *
 * Several endpoints may be given; a call that cannot reach one tries the next.
 *
 * Thread-safety: an etcd_client may be used from many threads at once. A watch
 * runs on a thread of its own and calls its callbacks there, one at a time.
 */
#ifndef LB_ETCD_H
#define LB_ETCD_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd_client etcd_client;

/*
 * How to reach a secured etcd: TLS for https:// endpoints (libcurl verifies
 * the server against ca_file and host name; cert_file/key_file answer
 * --client-cert-auth, and must carry an empty CN: etcd 3.4's gateway refuses
 * a client certificate with a CN) and etcd user/password auth (the token of
 * /v3/auth/authenticate, sent as "Authorization: <token>", renewed when etcd
 * says it expired or is invalid). Every field may be NULL. The password comes
 * from password (lbctl's LBCP_ETCD_PASSWORD) or else from the first line of
 * password_file (daemons: secrets stay out of config files).
 * Owned strings; etcd_security_free frees them.
 */
typedef struct etcd_security {
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *user;
    char *password_file;
    char *password;
} etcd_security;
void etcd_security_free(etcd_security *s);

/* endpoints: comma-separated URLs ("http://127.0.0.1:2379,https://..."). */
lb_err etcd_open(const char *endpoints, int timeout_ms, etcd_client **out, lb_errmsg *em);
/* Same with TLS and auth (sec may be NULL). The password file is read here:
 * LB_ECONFIG names it when it cannot be read or is empty. The first
 * authentication happens on the first call, so etcd may still be down. */
lb_err etcd_open_secure(const char *endpoints, int timeout_ms, const etcd_security *sec,
                        etcd_client **out, lb_errmsg *em);
void etcd_close(etcd_client **c);

/* The endpoint list as given (for messages). */
const char *etcd_endpoints(const etcd_client *c);

typedef struct etcd_kv {
    char *key;
    unsigned char *value; /* NUL-terminated for convenience; value_len excludes it */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
} etcd_kv;

typedef struct etcd_kvs {
    etcd_kv *kvs;
    size_t n;
    int64_t revision; /* store revision of the answer's header */
    bool more;
} etcd_kvs;

void etcd_kvs_free(etcd_kvs *r);

/* Puts key=value (lease 0 = none). *revision (may be NULL) gets the new revision. */
lb_err etcd_put(etcd_client *c, const char *key, const void *value, size_t len, int64_t lease,
                int64_t *revision, lb_errmsg *em);

/* Exact key: out->n is 0 or 1. Caller frees with etcd_kvs_free. */
lb_err etcd_get(etcd_client *c, const char *key, etcd_kvs *out, lb_errmsg *em);

/* Every key starting with prefix (all pages). Caller frees with etcd_kvs_free. */
lb_err etcd_range_prefix(etcd_client *c, const char *prefix, etcd_kvs *out, lb_errmsg *em);
/* Every key in [key, range_end) (all pages, one revision); range_end NULL is
 * etcd_range_prefix(key). Caller frees with etcd_kvs_free. */
lb_err etcd_range_between(etcd_client *c, const char *key, const char *range_end, etcd_kvs *out,
                          lb_errmsg *em);

/* Deletes key, or every key under it when prefix is true. */
lb_err etcd_delete(etcd_client *c, const char *key, bool prefix, int64_t *deleted, lb_errmsg *em);

/* ---- transactions (at most 128 ops in each list) ---- */
typedef enum etcd_cmp_target {
    ETCD_CMP_VERSION,
    ETCD_CMP_CREATE,
    ETCD_CMP_MOD,
    ETCD_CMP_VALUE,
    ETCD_CMP_LEASE
} etcd_cmp_target;
typedef enum etcd_cmp_result {
    ETCD_CMP_EQUAL,
    ETCD_CMP_GREATER,
    ETCD_CMP_LESS,
    ETCD_CMP_NOT_EQUAL
} etcd_cmp_result;

typedef struct etcd_cmp {
    const char *key;
    etcd_cmp_target target;
    etcd_cmp_result result;
    int64_t number;    /* VERSION, CREATE, MOD, LEASE */
    const void *value; /* VALUE */
    size_t value_len;
} etcd_cmp;

typedef enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_GET } etcd_op_type;

typedef struct etcd_op {
    etcd_op_type type;
    const char *key;
    const void *value; /* PUT */
    size_t value_len;
    int64_t lease; /* PUT */
    bool prefix;   /* DELETE, GET */
} etcd_op;

/* Runs the txn; *succeeded tells which branch ran. Range results of GET ops are
 * not returned (use etcd_get after). */
lb_err etcd_txn(etcd_client *c, const etcd_cmp *cmps, size_t n_cmps, const etcd_op *success,
                size_t n_success, const etcd_op *failure, size_t n_failure, bool *succeeded,
                int64_t *revision, lb_errmsg *em);

/* ---- the cluster (operators) ---- */
typedef struct etcd_cluster_info {
    char version[32]; /* of the endpoint that answered */
    char **members;   /* "name clientURL" each */
    size_t n_members;
} etcd_cluster_info;
/* Members and version; free with etcd_cluster_free. */
lb_err etcd_cluster(etcd_client *c, etcd_cluster_info *out, lb_errmsg *em);
void etcd_cluster_free(etcd_cluster_info *ci);

/* ---- upkeep (maintenance) ---- */
typedef struct etcd_status_info {
    int64_t db_size;        /* bytes of the answering member's backend file */
    int64_t db_size_in_use; /* bytes in use (the rest is free pages after compaction) */
    int64_t revision;       /* current store revision */
    char version[32];
} etcd_status_info;
/* maintenance/status of the endpoint that answers. */
lb_err etcd_status(etcd_client *c, etcd_status_info *out, lb_errmsg *em);
/* Compacts history up to revision (kv/compaction, physical: returns once it
 * is applied): reads and
 * watches of older revisions fail afterwards (watchers reload). LB_ECOMPACTED
 * when revision is already compacted. */
lb_err etcd_compact(etcd_client *c, int64_t revision, lb_errmsg *em);
/* Active alarms, comma-separated into names ("" when none); *nospace when
 * one is NOSPACE (the store is over its quota: every write fails). */
lb_err etcd_alarms(etcd_client *c, char *names, size_t cap, bool *nospace, lb_errmsg *em);

/* ---- leases ---- */
lb_err etcd_lease_grant(etcd_client *c, int64_t ttl_s, int64_t *id, lb_errmsg *em);
/* One refresh. LB_ENOTFOUND when the lease is gone (expired or revoked). */
lb_err etcd_lease_keepalive(etcd_client *c, int64_t id, int64_t *ttl_left, lb_errmsg *em);
lb_err etcd_lease_revoke(etcd_client *c, int64_t id, lb_errmsg *em);

/* ---- watch ----
 * etcd_watch_start ranges the prefix first and hands the full snapshot to
 * on_reset, then streams events from the snapshot's revision + 1. A dropped
 * connection is resumed from the last revision seen + 1 (with backoff); a
 * compacted start revision triggers a new range and on_reset again. on_status
 * (may be NULL) says when the stream is connected or not. */
typedef enum etcd_event_type { ETCD_EV_PUT, ETCD_EV_DELETE } etcd_event_type;

typedef struct etcd_event {
    etcd_event_type type;
    etcd_kv kv; /* DELETE: key and mod_revision only */
    /* With etcd_watch_cb.prev_kv: the key as it was before this event (for a
     * DELETE, what was deleted). key NULL when etcd sent none (a new key, or
     * that revision is compacted). */
    etcd_kv prev;
} etcd_event;

typedef struct etcd_watch_cb {
    void (*on_reset)(void *arg, const etcd_kvs *snapshot);
    void (*on_events)(void *arg, const etcd_event *evs, size_t n, int64_t revision);
    void (*on_status)(void *arg, bool connected, lb_err err, const char *msg);
    void *arg;
    /* Ask etcd for each event's previous kv (etcd_event.prev): lets a watcher
     * tell what a DELETE removed without keeping a copy of every value. It
     * roughly doubles the stream's bytes for PUTs of existing keys. */
    bool prev_kv;
} etcd_watch_cb;

typedef struct etcd_watch etcd_watch;

lb_err etcd_watch_start(etcd_client *c, const char *prefix, const etcd_watch_cb *cb,
                        etcd_watch **out, lb_errmsg *em);
/* The same over the keys in [key, range_end) (range_end NULL: under key). */
lb_err etcd_watch_start_range(etcd_client *c, const char *key, const char *range_end,
                              const etcd_watch_cb *cb, etcd_watch **out, lb_errmsg *em);
/*
 * Turns etcd's NOPUT filter on (tag > 0: from then on only DELETE events are
 * sent) or off (tag 0; a watch starts with it off). A change ends the current
 * stream and reloads: a fresh range goes to on_reset, then the stream resumes
 * after its revision with the new filter, so no change is lost across the
 * switch. etcd_watch_synced is the tag of the last such reload (0 until one
 * with the filter on): a writer that keeps its own puts in its view asks for
 * the filter, and trusts the view once its tag is synced.
 * Thread-safe; neither blocks.
 */
void etcd_watch_set_noput(etcd_watch *w, int64_t tag);
int64_t etcd_watch_synced(etcd_watch *w);
/* Stops the stream and joins its thread; no callback runs after it returns. */
void etcd_watch_stop(etcd_watch **w);

/* ---- keeping a lease alive ----
 * A thread that grants a lease of ttl_s, calls on_granted(arg, id) (where the
 * owner puts its keys with that lease), refreshes it every ttl_s/4, and when the
 * lease is lost (expired, etcd restarted, unreachable for longer than the ttl)
 * grants a new one and calls on_granted again. */
typedef struct etcd_keeper etcd_keeper;
lb_err etcd_keeper_start(etcd_client *c, int64_t ttl_s,
                         lb_err (*on_granted)(void *arg, int64_t lease_id), void *arg,
                         etcd_keeper **out, lb_errmsg *em);
/* Revokes the lease (so its keys go at once) and joins the thread. */
void etcd_keeper_stop(etcd_keeper **k);
int64_t etcd_keeper_lease(const etcd_keeper *k);
/* Monotonic ms (lb_mono_ms) at which the last successful grant or refresh of
 * the current lease was sent (0: none): etcd cannot expire the lease before
 * this + ttl, so an owner that must not outlive its lease (a fenced leader)
 * stops acting well before. Thread-safe. */
int64_t etcd_keeper_fresh_ms(const etcd_keeper *k);
/* True while the keeper holds a lease and its last grant or refresh succeeded:
 * false as soon as one refresh fails (etcd down), before the lease expires. */
bool etcd_keeper_ok(const etcd_keeper *k);

#endif
