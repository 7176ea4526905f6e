#ifndef LB_MASTER_STOCK_H
#define LB_MASTER_STOCK_H
/*
 * The leader's stock (stock: {app: N}): pool processes launched ahead at
 * agents under a reservation session id ("stock-<random>") that no client
 * holds yet. A new session of app chosen for a server with stock there takes
 * one on the spot, with no agent call: the session id is the reservation's,
 * which the agent already knows the process by.
 *
 * Like hot spares (spares.h) they live in the leader's memory only: no etcd
 * write until a client takes one; the leader's session sync lists them so
 * the agents keep them; a new leader does not know them, so its first sync
 * has the agents stop them. Each entry carries the leader lease it was made
 * under, and a take names the current lease, so a deposed (or re-elected)
 * leader never hands out stock from an older term. Clients cannot claim
 * stock ids (claim_spare looks in the spare table only).
 *
 * This table is the bookkeeping only (pure, unit tested); launching, the
 * liveness check and stopping are stock_run.c's.
 *
 * Thread-safety: every function takes the table's own mutex and never any
 * other lock, so any thread may call them, also under the view's lock.
 * Ownership: the table owns its entries; results are copied out.
 */
#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STOCK_ID_MAX 128
/* Launches in flight at one server at once: a burst that empties a deep stock
 * is refilled in parallel, yet one agent never sees more than this many stock
 * hand-outs queued beside its clients' launches. */
#define STOCK_INFLIGHT_PER_SERVER 4

typedef struct stock_item {
    char session_id[48]; /* "stock-" + 32 hex: what the agent knows it by */
    char app[STOCK_ID_MAX];
    char server_id[STOCK_ID_MAX];
    char endpoint[256]; /* the agent's */
    char host[256];     /* the process's address */
    uint32_t port;
    int64_t started_at;
    int32_t pid;
    int64_t lease; /* the leader lease it was launched under */
    bool ready;    /* false: its launch has not answered yet */
} stock_item;

typedef struct stock_table stock_table;

/* A table of at most cap entries (cap > 0); NULL on out-of-memory. */
stock_table *stock_table_new(size_t cap);
void stock_table_free(stock_table *t);

/* Records a launch about to start (it->ready ignored, taken as false).
 * LB_EINVAL: empty or too long ids; LB_EEXISTS: session_id is taken;
 * LB_EUNAVAIL: STOCK_INFLIGHT_PER_SERVER launches are in flight at that
 * server already, the table is full, or the server already holds max entries
 * of the app (launching included). */
lb_err stock_begin(stock_table *t, const stock_item *it, uint32_t max);

/* The launch of session_id answered with a process: the entry becomes
 * ready with its pid, host, port, started_at. LB_ENOTFOUND: the entry was
 * dropped meanwhile (the caller stops the process); LB_EINVAL: pid <= 0. */
lb_err stock_fill(stock_table *t, const char *session_id, const stock_item *it);

/* Removes a ready entry of app at server made under lease, copying it to
 * out. false when there is none. */
bool stock_take(stock_table *t, const char *server, const char *app, int64_t lease,
                stock_item *out);

/* Removes session_id (ready or launching), copying it to out when not NULL.
 * false when unknown. */
bool stock_drop(stock_table *t, const char *session_id, stock_item *out);

/* Copies up to max entries into out (for checks made outside the lock);
 * returns how many. */
size_t stock_list(stock_table *t, stock_item *out, size_t max);

/* Entries of app at server (launching ones included) and whether any launch
 * is in flight at server. */
size_t stock_count_at(stock_table *t, const char *server, const char *app, bool *launching);

/* Whether server holds a ready entry of app (the "prefer ready" rule). */
bool stock_has_ready(stock_table *t, const char *server, const char *app);

/* Calls fn for each entry under the table's mutex (fn must not call back
 * into the table). The session sync lists them (writer.c). */
void stock_foreach(stock_table *t, void (*fn)(const stock_item *it, void *arg), void *arg);

/* Entries held now, and how many of them are ready. */
size_t stock_count(stock_table *t, size_t *ready);

#endif
