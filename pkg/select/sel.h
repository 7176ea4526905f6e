/*
 * The selection policy: pure code over a snapshot (no I/O, no locks, no etcd,
 * no nng). Given servers, slaves and a request, it returns the chosen server,
 * alternates, the slave that should serve the client and, for explain, a
 * verdict for every server (the rule that ruled it out, or its rank).
 *
 * Rules, in order (../shared/DESIGN.md "Selection policy"):
 *   1. eligibility: up, not ejected, not drained/disabled, offers the app, meets the
 *      requirements, below capacity (sessions + pending < capacity);
 *   2. affinity: req->affinity_server is chosen (sel_result.affinity) when it
 *      still can serve the client: up, not disabled, offers the app, meets the
 *      requirements. Drained or full does not move it: the client's session is
 *      there already (a drain stops new sessions only). Otherwise the client is
 *      placed elsewhere and the result says moved + why;
 *   3. priority groups: the best (lowest) group_rank with an eligible server
 *      (optional overprovisioning spill to the next group);
 *   4. locality: client zone, then region, then anywhere; spill to the next tier
 *      when the tier's utilisation is over policy->zone_spill;
 *   5. load strategy, weighted by capacity;
 *   6. slave: among the slaves that front the app (sel_slave.apps) and that the
 *      server is reachable through (sel_server.reachable_via): the client's
 *      session slave (req->affinity_slave) while it can still serve it; else the
 *      requesting slave when in the chosen server's zone (or named by its
 *      reachable_via) and under its limit; else the least loaded slave in that
 *      zone; else the least loaded. sel_result.slave_rule says which rule
 *      (sel_slave_reason words it).
 *
 * The client's own pick (req->preferred_server, list mode) replaces rules 2-5
 * when that server is eligible for the client; otherwise the normal choice is
 * made and sel_result.preferred_refused says why the pick was refused.
 * A server with reachable_via is eligible only while some slave it names (by
 * id or zone) fronts the app (verdict "unreachable").
 *
 * Ownership: see sel_snapshot_build. Results refer to servers and slaves by index.
 * Thread-safety: none inside. sel_choose only reads the snapshot and writes the
 * caller's sel_state; the mutators (add_pending, set_load) write it, so the
 * caller serialises them against readers (the master holds its view lock).
 */
#ifndef LB_SELECT_SEL_H
#define LB_SELECT_SEL_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sel_strategy {
    SEL_LEAST_LOADED = 0,
    SEL_P2C,
    SEL_WEIGHTED_RANDOM,
    SEL_ROUND_ROBIN
} sel_strategy;

/* "least-loaded", "p2c", "weighted-random", "round-robin". */
bool sel_strategy_parse(const char *s, sel_strategy *out);
const char *sel_strategy_name(sel_strategy s);

typedef struct sel_label {
    const char *key;
    const char *value; /* "" when the label has no value */
} sel_label;

typedef struct sel_server {
    const char *id;
    const char *zone;
    const char *region;
    const char *group;
    int group_rank;    /* lower is better */
    uint32_t capacity; /* max sessions; 0 = cannot take any */
    uint32_t sessions; /* last reported */
    uint32_t pending;  /* assigned by this master since that report */
    bool up;
    bool ejected; /* out of selection for a while after failures (outlier ejection) */
    bool drained;
    bool disabled;
    const char *const *apps;
    size_t n_apps;
    uint32_t cores;
    double cpu_load; /* load average: cores busy */
    uint64_t mem_total;
    uint64_t mem_free;
    uint64_t disk_free;
    const sel_label *labels;
    size_t n_labels;
    const char *arch; /* advertised architecture ("x86_64"), may be NULL */
    const char *os;   /* advertised operating system ("linux"), may be NULL */
    /* slave ids or zones through which clients reach this server; empty: any */
    const char *const *reachable_via;
    size_t n_reachable_via;
} sel_server;

typedef struct sel_slave {
    const char *id;
    const char *zone;
    const char *region;
    uint32_t load;
    uint32_t limit;          /* 0 = no limit */
    const char *const *apps; /* apps this slave fronts; empty: all */
    size_t n_apps;
} sel_slave;

typedef struct sel_app_strategy {
    const char *app;
    sel_strategy strategy;
} sel_app_strategy;

typedef struct sel_policy {
    sel_strategy strategy; /* default for apps not listed */
    const sel_app_strategy *per_app;
    size_t n_per_app;
    double
        zone_spill; /* spill to the next locality tier above this utilisation (0..1]; default 1.0 */
    double overprovision; /* Envoy factor (e.g. 1.4); 0 = strict priority groups */
    size_t n_alternates;  /* default 2, at most SEL_MAX_ALTERNATES */
} sel_policy;

void sel_policy_default(sel_policy *p);

typedef struct sel_request {
    const char *app;
    const char *client_id;
    const char *zone;          /* client's zone; may be NULL/"" */
    const char *region;        /* may be NULL/"" (derived from the zone's servers when absent) */
    double min_cpu;            /* free cores */
    uint64_t min_mem;          /* free bytes */
    const char *const *labels; /* "key" or "key=value" */
    size_t n_labels;
    const char *affinity_server;  /* server of the client's live session, or NULL */
    const char *requesting_slave; /* slave id, or NULL */
    const char *arch;             /* required advertised arch, NULL/"" = any */
    const char *os;               /* required advertised os, NULL/"" = any */
    const char *preferred_server; /* the client's own pick, NULL/"" = none */
    const char *affinity_slave;   /* slave of the client's live session, or NULL */
} sel_request;

typedef enum sel_verdict_kind {
    SEL_V_CHOSEN = 0,
    SEL_V_RANKED, /* eligible, ranked (alternate or lower) */
    SEL_V_DOWN,
    SEL_V_DRAINED,
    SEL_V_DISABLED,
    SEL_V_NO_APP,
    SEL_V_REQUIREMENTS,
    SEL_V_FULL,
    SEL_V_LOWER_GROUP, /* eligible but a better group had room */
    SEL_V_FARTHER,     /* eligible but a nearer locality tier was used */
    SEL_V_UNREACHABLE, /* reachable_via names no slave that fronts the app */
    SEL_V_EJECTED,     /* up, but ejected after launch failures (backoff running) */
    SEL_V_COUNT
} sel_verdict_kind;

const char *sel_verdict_name(sel_verdict_kind k);

typedef struct sel_verdict {
    sel_verdict_kind kind;
    int rank;        /* 0 = chosen, 1.. alternates/ranked; -1 when excluded */
    char detail[96]; /* e.g. "needs 2 free cpu, has 0.5", "group backup (rank 1) behind primary" */
} sel_verdict;

#define SEL_MAX_ALTERNATES 4

/* Which rule 6 step chose the slave. */
typedef enum sel_slave_rule {
    SEL_SLAVE_SESSION = 0, /* the client's session slave */
    SEL_SLAVE_REQUESTING,  /* the requesting slave */
    SEL_SLAVE_ZONE,        /* the least loaded of the server's zone */
    SEL_SLAVE_ANY,         /* the least loaded anywhere (of those it is reachable via) */
    SEL_SLAVE_NONE,        /* no slave fronts the app */
} sel_slave_rule;

typedef struct sel_result {
    int server; /* index into snapshot servers, -1 when nothing can serve */
    int alternates[SEL_MAX_ALTERNATES];
    size_t n_alternates;
    int slave;                   /* index into snapshot slaves, -1 when there is none */
    bool affinity;               /* the affinity server was kept */
    bool moved;                  /* the client had an affinity server that is no longer usable */
    char reason[256];            /* why nothing can serve, or why the client moved */
    bool preferred;              /* req->preferred_server was chosen */
    char preferred_refused[160]; /* why req->preferred_server was not ("" when it was) */
    sel_slave_rule slave_rule;   /* why `slave` serves the client (sel_slave_reason) */
} sel_result;

typedef struct sel_snapshot sel_snapshot;

/* The most servers one snapshot indexes (ids are ranked in 20 bits inside the
 * least-loaded keys); sel_snapshot_build refuses more with LB_EINVAL. */
#define SEL_MAX_SERVERS (1u << 20)

/* Copies the server and slave structs (the strings and label/app arrays they
 * point to stay borrowed and must outlive the snapshot) and builds the indexes.
 * Indexes in results are positions in these arrays. */
lb_err sel_snapshot_build(const sel_server *servers, size_t n_servers, const sel_slave *slaves,
                          size_t n_slaves, sel_snapshot **out);
void sel_snapshot_free(sel_snapshot **s);

/* Records that the caller assigned one more session to server idx (delta +1) or
 * that one was given back (-1): updates its pending count and the indexes, so
 * least-loaded does not herd onto one server between load reports. */
void sel_snapshot_add_pending(sel_snapshot *s, int idx, int delta);
/* Replaces one server's reported load (sessions, cpu, memory) and resets its
 * pending count, as on a load report. */
void sel_snapshot_set_load(sel_snapshot *s, int idx, uint32_t sessions, double cpu_load,
                           uint64_t mem_free, uint64_t disk_free);
/* Like sel_snapshot_set_load, for a report that reaches the master late:
 * pending becomes `unreported`, the sessions this master assigned to the server
 * after the report was sampled (the report cannot count them), instead of 0.
 * Resetting to 0 on a late report forgets those sessions, and least-loaded then
 * herds onto the servers that took the most just before (tests/bench). */
void sel_snapshot_set_load_unreported(sel_snapshot *s, int idx, uint32_t sessions,
                                      uint32_t unreported, double cpu_load, uint64_t mem_free,
                                      uint64_t disk_free);
/* Sets a slave's reported load. */
void sel_snapshot_set_slave_load(sel_snapshot *s, int idx, uint32_t load);
const sel_server *sel_snapshot_server(const sel_snapshot *s, int idx);
const sel_slave *sel_snapshot_slave(const sel_snapshot *s, int idx);
size_t sel_snapshot_n_servers(const sel_snapshot *s);
size_t sel_snapshot_n_slaves(const sel_snapshot *s);

/* Mutable per-caller state: rng for random strategies, round-robin cursors. */
typedef struct sel_state {
    uint64_t rng;
    uint64_t rr_cursor;
} sel_state;

/* Chooses. verdicts (may be NULL) must hold n_servers entries and receives a
 * verdict for every server. Returns LB_OK with out->server >= 0, or LB_ENOSERVER
 * with out->reason filled (also when the app is offered nowhere: LB_ENOAPP). */
lb_err sel_choose(const sel_snapshot *snap, const sel_policy *policy, const sel_request *req,
                  sel_state *state, sel_result *out, sel_verdict *verdicts);

/* Words why r's slave serves the client ("requesting slave, zone zone-a, load
 * 3/100"), for a result of sel_choose(snap, ..., req, ...) that chose a server;
 * "" otherwise. Writes at most n bytes to out. */
void sel_slave_reason(const sel_snapshot *snap, const sel_request *req, const sel_result *r,
                      char *out, size_t n);

#endif
