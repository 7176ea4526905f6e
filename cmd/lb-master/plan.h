/*
 * A request's plan: what the selection decided (candidates to launch on, in
 * order, the slave, the session) and the bookkeeping after the launch.
 * Pure data plus the functions that fill it under the view's lock.
 */
#ifndef LB_MASTER_PLAN_H
#define LB_MASTER_PLAN_H

#include "master.h"

#define PLAN_MAX_CAND (1 + SEL_MAX_ALTERNATES)
#define PLAN_ID 128
#define PLAN_EP 256

typedef struct plan_cand {
    char server[PLAN_ID];
    char endpoint[PLAN_EP]; /* agent endpoint */
    char host[PLAN_EP];
    char zone[PLAN_ID];
    bool relay; /* the app's link on this server is "relay" */
} plan_cand;

/* A slave of the requesting slave's zone, as the answer tells that slave
 * (SelectionInstruction.peers) so it can shed new clients on its own. */
#define PLAN_MAX_PEERS 16
typedef struct plan_peer {
    char id[PLAN_ID];
    char endpoint[PLAN_EP];
    char api[PLAN_EP]; /* its HTTP API base URL, "" when off */
    char zone[PLAN_ID];
    uint32_t load, limit;
    char **apps; /* owned copies: the view's strings live only under its lock */
    size_t n_apps;
} plan_peer;

typedef struct plan {
    bool reject;
    char reason[256]; /* REJECT reason, or why a sticky client moved */
    bool moved;
    bool reuse;          /* sticky: the client's session on cand[0] is kept */
    bool preselected_ok; /* a redirected request's preselection still holds */
    int pending_on;      /* candidate counted as pending at its server, -1 none */
    char session_id[64];
    plan_cand cand[PLAN_MAX_CAND];
    size_t n_cand;
    char slave_id[PLAN_ID];
    char slave_endpoint[PLAN_EP];
    int64_t expires_ms; /* set by plan_commit */
    bool preferred;     /* the client's preferred_server was chosen */
    char preferred_refused[160];
    char slave_reason[160];
    plan_peer peers[PLAN_MAX_PEERS];
    size_t n_peers;
    char slave_api[PLAN_EP]; /* the chosen slave's HTTP API, for redirects */
    /* sticky and the process is alive in the view (reg_live_alive_locked):
     * answered with local_proc, no launch at the agent */
    bool local;
    Lb__ProcessId local_proc; /* host points into local_host */
    char local_host[PLAN_EP];
} plan;

/* Frees what plan_make allocated (peers' app lists). */
void plan_free(plan *p);

/* Validates the request and runs the selection; never touches etcd or agents.
 * p must be zeroed or hold an earlier plan (whose allocations it frees). */
void plan_make(master *m, const Lb__SelectionRequest *sr, plan *p);

/* The client's live session for the request's app (or its preselection),
 * decoded into buf (reg_session_locked), or NULL. View lock held. */
const Lb__Session *plan_current_session(reg *view, const Lb__ClientRequest *cr,
                                        reg_session_buf *buf);
/* Fills the policy's request from a SelectionRequest (pointers borrow sr/cur). */
void plan_fill_request(const Lb__SelectionRequest *sr, const Lb__Session *cur, sel_request *q);

/* Records the session of a successful launch on candidate i (view + etcd
 * queue); launch_seq (the agent's number for the launch, 0 if none) keeps the
 * session pending until a load report counts it. */
void plan_commit(master *m, const Lb__SelectionRequest *sr, plan *p, size_t i,
                 const Lb__ProcessId *proc, uint64_t launch_seq);

/* True when the client's affinity for the app now names another session that
 * was created at or after since_wall_ms: a newer request of this client was
 * served while this one waited on its launch (the client gave up on it). */
bool plan_superseded(master *m, const Lb__SelectionRequest *sr, const plan *p,
                     int64_t since_wall_ms);

/* Gives back the pending count of a candidate whose launch failed. */
void plan_abandon(master *m, plan *p, size_t i);

/* Counts candidate i as pending before launching there (after cand[0] failed). */
void plan_next(master *m, plan *p, size_t i);

#endif
