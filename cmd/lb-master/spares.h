#ifndef LB_MASTER_SPARES_H
#define LB_MASTER_SPARES_H
/*
 * Hot-spare reservations (issue 10 item 3, seed US 6,591,290): a pool process
 * handed to one client as a spare, held for it until spare_ttl passes.
 *
 * Reservations live in the leader's memory only, never in etcd: a spare costs
 * no etcd write, and a new leader simply does not know old reservations: its
 * session sync (writer.c) lists sessions and its own reservations only, so
 * the agents stop the old spares' processes (handed out more than the sync's
 * 3 s grace ago) at its first sync, and a claim of one is refused ("not known
 * to this leader"). The table is the
 * bookkeeping only; launching the spare and giving an expired one back to its
 * agent are the caller's.
 *
 * Thread-safety: every function takes the table's own mutex, so any thread
 * may call them. Ownership: the table owns its entries; results are copied
 * out to the caller.
 */
#include "lb/err.h"

#include <stddef.h>
#include <stdint.h>

#define SPARE_ID_MAX 128

typedef struct spare_resv {
    char session_id[SPARE_ID_MAX]; /* reservation session id given to the agent */
    char client_id[SPARE_ID_MAX];  /* the only client that may claim it */
    char app[SPARE_ID_MAX];
    char server_id[SPARE_ID_MAX];
    char endpoint[256]; /* the agent's, for giving the process back */
    char host[256];     /* the process's address, for the claim's answer */
    uint32_t port;
    int64_t started_at;
    int32_t pid;
    int64_t expires_ms; /* unix ms; unclaimed past this it goes back */
} spare_resv;

typedef struct spare_table spare_table;

/* A table of at most cap reservations (cap > 0); NULL on out-of-memory. */
spare_table *spare_table_new(size_t cap);
void spare_table_free(spare_table *t);

/* Records r (copied). LB_EINVAL: empty ids, an id too long or pid <= 0;
 * LB_EEXISTS: its session id is already reserved; LB_EUNAVAIL: the table is
 * full (the caller answers without that spare). */
lb_err spare_reserve(spare_table *t, const spare_resv *r);

/* Turns the reservation session_id into client_id's session: removes it and
 * copies it to out. LB_ENOTFOUND: unknown (or already claimed / expired and
 * collected); LB_ETIMEDOUT: past its expiry at now_ms (left for
 * spare_expire, so it is given back exactly once); LB_EAUTH: reserved for
 * another client. */
lb_err spare_claim(spare_table *t, const char *session_id, const char *client_id, int64_t now_ms,
                   spare_resv *out);

/* Removes up to max reservations expired at now_ms, copying them to out for
 * the caller to give back to their agents; returns how many. */
size_t spare_expire(spare_table *t, int64_t now_ms, spare_resv *out, size_t max);

/* Calls fn for each reservation held, under the table's mutex (fn must not
 * call back into the table). The session sync lists them, so agents keep
 * reserved spares (writer.c). */
void spare_foreach(spare_table *t, void (*fn)(const spare_resv *r, void *arg), void *arg);

/* Reservations held now (metrics, tests). */
size_t spare_count(spare_table *t);

#endif
