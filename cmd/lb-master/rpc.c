/*
 * The master's RPC: a REP socket with cfg.contexts contexts, each a small
 * state machine driven by nng's callbacks:
 *
 *   RECV -> (decode, plan) -> LAUNCH (an attempt) -> [next candidate] -> REPLY -> RECV
 *
 * Nothing here blocks: the plan is pure work under the view's lock, the launch
 * is an aio on the agent's socket, and etcd writes are queued for the writer.
 */
#include "master.h"
#include "attempt.h"
#include "explain.h"
#include "plan.h"
#include "rpc_reasons.h"
#include "sessions.h"
#include "spares.h"
#include "stock.h"

#include "common/util.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/prom.h"
#include "obs/metrics.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum rpc_state { ST_RECV, ST_LAUNCH, ST_REPLY } rpc_state;

typedef struct rpc_ctx {
    master *m;
    nng_ctx ctx;
    nng_aio *aio; /* REP side; the agent side is an attempt (attempt.h) */
    rpc_state state;
    Lb__Envelope *req;
    int64_t started_ms;
    int64_t started_wall_ms; /* a session created after this belongs to a newer request */
    uint64_t t0_ns;          /* request received (selection latency) */
    uint64_t launch_t0_ns;   /* current launch sent (launch latency) */
    uint64_t reply_ns;       /* the chosen launch's reply received (path stages) */
    uint64_t answer_ns;      /* its answer handed to nng (0: not a launched answer) */
    bool pool_hit;           /* the chosen launch was a pool hand-out */
    plan plan;
    size_t cur; /* candidate being launched */
    char failures[512];
    Lb__Envelope *chosen; /* the chosen launch's reply, kept while spares launch */
    bool stock_hit;       /* chosen NULL: the process came from the stock */
    Lb__ProcessId stock_proc;
    char stock_host[256];
    size_t spare_next; /* next candidate tried as a spare */
    size_t n_spares;
    Lb__Envelope *spare_env[MASTER_MAX_SPARES]; /* their launch replies */
    Lb__SpareProcess spare[MASTER_MAX_SPARES];
    char spare_sid[MASTER_MAX_SPARES][48];
} rpc_ctx;

static struct {
    obs_counter *path_n, *path_plan, *path_agent, *path_commit, *path_send;
    obs_counter *serve, *redirect, *reject, *confirm, *errors, *launch_ok, *launch_fail;
    obs_counter *redirects, *pref_ok, *pref_refused, *sticky_local, *sticky_agent;
    obs_hist *lat_serve, *lat_redirect, *lat_reject, *launch_ok_s, *launch_fail_s;
} rpc_c;

/* Counts and times one selection answer. */
static void rpc_observe(rpc_ctx *c, const Lb__SelectionInstruction *in)
{
    rpc_reasons_count(in);
    obs_observe_since(in->action == LB__ACTION__REJECT     ? rpc_c.lat_reject
                      : in->action == LB__ACTION__REDIRECT ? rpc_c.lat_redirect
                                                           : rpc_c.lat_serve,
                      c->t0_ns);
}

static uint64_t rpc_us(uint64_t from, uint64_t to)
{
    return to > from ? (to - from) / 1000 : 0;
}

/* Where a new session's time went when its process came from a pool, as
 * sums of microseconds per stage (StatsRequest carries counters: divide by
 * master_pool_path_launches_total): receive -> launch sent (plan), -> agent's
 * reply (agent), -> answer handed to nng (commit), -> nng done with it (send).
 * Spares' launches fall in commit. */
static void rpc_path_done(rpc_ctx *c)
{
    uint64_t now = obs_now_ns();
    obs_inc(rpc_c.path_n);
    obs_add(rpc_c.path_plan, rpc_us(c->t0_ns, c->launch_t0_ns));
    obs_add(rpc_c.path_agent, rpc_us(c->launch_t0_ns, c->reply_ns));
    obs_add(rpc_c.path_commit, rpc_us(c->reply_ns, c->answer_ns));
    obs_add(rpc_c.path_send, rpc_us(c->answer_ns, now));
}

static void rpc_recv(rpc_ctx *c)
{
    wire_free(&c->req);
    c->state = ST_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

static void rpc_send_msg(rpc_ctx *c, nng_msg *msg)
{
    if (msg == NULL) { /* out of memory: drop the request */
        rpc_recv(c);
        return;
    }
    c->state = ST_REPLY;
    nng_aio_set_msg(c->aio, msg);
    nng_ctx_send(c->ctx, c->aio);
}

static void rpc_error(rpc_ctx *c, uint64_t id, lb_err code, const char *text)
{
    nng_msg *msg = NULL;
    obs_inc(rpc_c.errors);
    wire_error_reply(id, code, text, &msg);
    rpc_send_msg(c, msg);
}

/* What every answer to a slave carries besides the choice: the fate of the
 * client's own pick and the loads of the requesting slave's zone peers. */
static void rpc_reply(rpc_ctx *c, Lb__SelectionInstruction *in)
{
    const plan *p = &c->plan;
    Lb__SlavePeer peers[PLAN_MAX_PEERS], *pp[PLAN_MAX_PEERS];
    for (size_t i = 0; i < p->n_peers; i++) {
        lb__slave_peer__init(&peers[i]);
        peers[i].slave_id = (char *)p->peers[i].id;
        peers[i].endpoint = (char *)p->peers[i].endpoint;
        peers[i].api_endpoint = (char *)p->peers[i].api;
        peers[i].zone = (char *)p->peers[i].zone;
        peers[i].load = p->peers[i].load;
        peers[i].limit = p->peers[i].limit;
        peers[i].apps = p->peers[i].apps;
        peers[i].n_apps = p->peers[i].n_apps;
        pp[i] = &peers[i];
    }
    in->peers = pp;
    in->n_peers = p->n_peers;
    const Lb__ClientRequest *cr = c->req->selection_request->request;
    if (cr != NULL && cr->preferred_server != NULL && cr->preferred_server[0] != '\0')
        obs_inc(in->preferred ? rpc_c.pref_ok : rpc_c.pref_refused);
    in->preferred_refused = (char *)p->preferred_refused;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = c->req->request_id;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = in;
    rpc_observe(c, in);
    nng_msg *msg = NULL;
    wire_encode(&env, &msg);
    rpc_send_msg(c, msg);
}

static void rpc_reject(rpc_ctx *c, const char *reason)
{
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    in.action = LB__ACTION__REJECT;
    in.reason = (char *)reason;
    obs_inc(rpc_c.reject);
    const Lb__ClientRequest *cr = c->req->selection_request->request;
    LOG_INFO("master", "rejected", "client=%s app=%s reason=\"%s\"",
             cr && cr->client_id ? cr->client_id : "", cr && cr->app ? cr->app : "", reason);
    rpc_reply(c, &in);
}

/* Answers with the plan's outcome for candidate i and its process. */
static void rpc_answer(rpc_ctx *c, size_t i, Lb__ProcessId *proc)
{
    const Lb__SelectionRequest *sr = c->req->selection_request;
    plan *p = &c->plan;
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    Lb__Alternate alts[PLAN_MAX_CAND], *altp[PLAN_MAX_CAND];
    bool serve = p->slave_id[0] == '\0' || (sr->slave_id && strcmp(p->slave_id, sr->slave_id) == 0);
    in.action = serve ? LB__ACTION__SERVE : LB__ACTION__REDIRECT;
    in.slave_id = p->slave_id;
    in.slave_endpoint = p->slave_endpoint;
    in.slave_api = p->slave_api;
    in.server_id = p->cand[i].server;
    in.process = proc;
    in.session_id = p->session_id;
    in.moved = p->moved;
    in.reason = p->moved ? p->reason : "";
    in.confirmed = p->preselected_ok && i == 0;
    in.affinity = p->reuse && i == 0;
    in.expires_ms = p->expires_ms;
    in.preferred = p->preferred && i == 0;
    char refused[320] = "";
    if (p->preferred && i > 0)
        snprintf(refused, sizeof refused, "preferred server %s failed to launch: %.120s",
                 p->cand[0].server, c->failures);
    in.slave_reason = p->slave_reason;
    /* relay: the serving slave splices the client to the process; the token is
     * single-use and the slave learns it from this answer */
    char token[33] = "";
    in.link = p->cand[i].relay ? "relay" : "direct";
    if (p->cand[i].relay)
        lb_random_id(token);
    in.relay_token = token;
    in.visited = sr->request->visited;
    in.n_visited = sr->request->n_visited;
    size_t na = 0;
    for (size_t k = 0; k < p->n_cand; k++) {
        if (k == i)
            continue;
        lb__alternate__init(&alts[na]);
        alts[na].server_id = p->cand[k].server;
        alts[na].host = p->cand[k].host;
        alts[na].zone = p->cand[k].zone;
        altp[na] = &alts[na];
        na++;
    }
    in.alternates = altp;
    in.n_alternates = na;
    in.preferred_refused = refused;
    Lb__SpareProcess *sparep[MASTER_MAX_SPARES];
    for (size_t k = 0; k < c->n_spares; k++)
        sparep[k] = &c->spare[k];
    in.spares = sparep;
    in.n_spares = c->n_spares;
    obs_inc(serve ? rpc_c.serve : rpc_c.redirect);
    if (!serve)
        obs_inc(rpc_c.redirects);
    if (in.confirmed)
        obs_inc(rpc_c.confirm);
    rpc_reply(c, &in);
}

static void rpc_launch(rpc_ctx *c);
static void rpc_spare_next(rpc_ctx *c);

/* conn: the agent could not be reached or did not answer (ejects at once). */
static void rpc_launch_failed(rpc_ctx *c, const char *why, bool conn)
{
    plan *p = &c->plan;
    reg_launch_failed(c->m->view, p->cand[c->cur].server, why, conn);
    obs_inc(rpc_c.launch_fail);
    obs_observe_since(rpc_c.launch_fail_s, c->launch_t0_ns);
    LOG_WARN("master", "launch failed", "server=%s app=%s err=\"%s\"", p->cand[c->cur].server,
             c->req->selection_request->request->app, why);
    size_t used = strlen(c->failures);
    snprintf(c->failures + used, sizeof c->failures - used, "%s%s: %s", used ? "; " : "",
             p->cand[c->cur].server, why);
    plan_abandon(c->m, p, c->cur);
    c->cur++;
    if (c->cur < p->n_cand) {
        plan_next(c->m, p, c->cur);
        rpc_launch(c);
        return;
    }
    char reason[640];
    snprintf(reason, sizeof reason, "launch failed on every candidate: %s", c->failures);
    rpc_reject(c, reason);
}

static void rpc_launch_done(rpc_ctx *c, nng_msg *msg);

/* The attempt's end (nng's thread): a reply, or why there is none. */
static void rpc_attempt_done(void *owner, nng_msg *reply, const char *why)
{
    rpc_ctx *c = owner;
    if (reply != NULL)
        rpc_launch_done(c, reply);
    else
        rpc_launch_failed(c, why, true);
}

static void rpc_launch(rpc_ctx *c)
{
    plan *p = &c->plan;
    const Lb__ClientRequest *cr = c->req->selection_request->request;
    c->launch_t0_ns = obs_now_ns();
    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    lr.app = cr->app;
    lr.session_id = p->session_id;
    lr.client_id = cr->client_id;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    nng_msg *msg = NULL;
    if (wire_encode(&env, &msg) != LB_OK) {
        rpc_launch_failed(c, "out of memory", false);
        return;
    }
    c->state = ST_LAUNCH;
    const char *why = NULL;
    if (!attempt_start(c->m, p->cand[c->cur].server, p->cand[c->cur].endpoint, p->session_id, msg,
                       rpc_attempt_done, c, &why))
        rpc_launch_failed(c, why, true);
}

static void rpc_launch_done(rpc_ctx *c, nng_msg *msg)
{
    c->reply_ns = obs_now_ns();
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    lb_err err = wire_decode(msg, c->m->cfg.max_message, &env, &em);
    nng_msg_free(msg);
    if (err != LB_OK) {
        rpc_launch_failed(c, em.text, false);
        return;
    }
    if (env->body_case == LB__ENVELOPE__BODY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "%s", env->error->message);
        wire_free(&env);
        rpc_launch_failed(c, why, false);
        return;
    }
    if (env->body_case != LB__ENVELOPE__BODY_LAUNCH_REPLY || !env->launch_reply->ok ||
        env->launch_reply->process == NULL) {
        char why[300];
        snprintf(why, sizeof why, "%s",
                 env->body_case == LB__ENVELOPE__BODY_LAUNCH_REPLY ? env->launch_reply->error
                                                                   : "unexpected answer");
        wire_free(&env);
        rpc_launch_failed(c, why, false);
        return;
    }
    obs_inc(rpc_c.launch_ok);
    obs_observe_since(rpc_c.launch_ok_s, c->launch_t0_ns);
    plan *p = &c->plan;
    reg_launch_ok(c->m->view, p->cand[c->cur].server);
    if (plan_superseded(c->m, c->req->selection_request, p, c->started_wall_ms)) {
        /* the client was served by a newer request meanwhile (it gave up on
         * this one): this launch must not take its session back */
        obs_count("master_launches_superseded_total");
        LOG_WARN("master", "launch superseded by a newer request; stopping its process",
                 "server=%s session=%s", p->cand[c->cur].server, p->session_id);
        master_agent_stop(c->m, p->cand[c->cur].server, p->cand[c->cur].endpoint, p->session_id);
        plan_abandon(c->m, p, c->cur);
        wire_free(&env);
        rpc_reject(c, "superseded by a newer request of this client");
        return;
    }
    if (c->cur > 0 && p->reuse && !p->moved) {
        p->moved = true;
        snprintf(p->reason, sizeof p->reason, "affinity server failed to launch: %.200s",
                 c->failures);
    }
    plan_commit(c->m, c->req->selection_request, p, c->cur, env->launch_reply->process,
                env->launch_reply->launch_seq);
    c->pool_hit = env->launch_reply->pool_hit;
    c->chosen = env;
    c->spare_next = c->cur + 1;
    rpc_spare_next(c);
}

/* Answers with the chosen process and the spares launched, then frees them. */
static void rpc_finish(rpc_ctx *c)
{
    if (c->stock_hit) {
        c->stock_hit = false;
        rpc_answer(c, c->cur, &c->stock_proc);
    } else {
        c->answer_ns = obs_now_ns();
        rpc_answer(c, c->cur, c->chosen->launch_reply->process);
    }
    wire_free(&c->chosen);
    for (size_t k = 0; k < c->n_spares; k++)
        wire_free(&c->spare_env[k]);
    c->n_spares = 0;
}

/* A spare's launch reply (nng's thread): reserved for the client when it is
 * a process, else that candidate is skipped. Then the next spare. */
static void rpc_spare_done(void *owner, nng_msg *reply, const char *why)
{
    rpc_ctx *c = owner;
    plan *p = &c->plan;
    size_t k = c->spare_next - 1, n = c->n_spares;
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    if (reply != NULL) {
        if (wire_decode(reply, c->m->cfg.max_message, &env, &em) != LB_OK)
            why = "malformed launch reply";
        nng_msg_free(reply);
    }
    if (env != NULL && (env->body_case != LB__ENVELOPE__BODY_LAUNCH_REPLY ||
                        !env->launch_reply->ok || env->launch_reply->process == NULL)) {
        why = "launch refused";
        wire_free(&env);
    }
    if (env == NULL) {
        obs_count("master_spares_failed_total");
        LOG_WARN("master", "spare launch failed", "server=%s err=\"%s\"", p->cand[k].server,
                 why != NULL ? why : "?");
        rpc_spare_next(c);
        return;
    }
    spare_resv r = {.pid = env->launch_reply->process->pid,
                    .expires_ms = lb_wall_ms() + c->m->cfg.spare_ttl_ms};
    const Lb__ClientRequest *cr = c->req->selection_request->request;
    snprintf(r.session_id, sizeof r.session_id, "%s", c->spare_sid[n]);
    snprintf(r.client_id, sizeof r.client_id, "%s", cr->client_id);
    snprintf(r.app, sizeof r.app, "%s", cr->app);
    snprintf(r.server_id, sizeof r.server_id, "%s", p->cand[k].server);
    snprintf(r.endpoint, sizeof r.endpoint, "%s", p->cand[k].endpoint);
    const Lb__ProcessId *sp = env->launch_reply->process;
    snprintf(r.host, sizeof r.host, "%s", sp->host != NULL ? sp->host : "");
    r.port = sp->port;
    r.started_at = sp->started_at;
    if (spare_reserve(c->m->spares, &r) != LB_OK) {
        /* table full (or a bad pid): not offered, so given back at once */
        master_agent_stop(c->m, r.server_id, r.endpoint, r.session_id);
        wire_free(&env);
        rpc_spare_next(c);
        return;
    }
    obs_count("master_spares_reserved_total");
    c->spare_env[n] = env;
    lb__spare_process__init(&c->spare[n]);
    c->spare[n].server_id = p->cand[k].server;
    c->spare[n].process = env->launch_reply->process;
    c->spare[n].session_id = c->spare_sid[n];
    c->spare[n].expires_ms = r.expires_ms;
    c->n_spares++;
    rpc_spare_next(c);
}

/* Launches the next hot spare (spares: {app: K}) of a new session on a
 * lower-ranked direct-link candidate, one at a time (each is a pool hand-out at its
 * agent, so this adds a pool round trip per spare); answers when K are
 * reserved or the candidates run out. Sticky repeats get none. */
static void rpc_spare_next(rpc_ctx *c)
{
    plan *p = &c->plan;
    const Lb__ClientRequest *cr = c->req->selection_request->request;
    size_t want =
        p->reuse || c->m->spares == NULL ? 0 : (size_t)master_spares_for(&c->m->cfg, cr->app);
    /* relay-linked servers are skipped: a spare is reached by a direct
     * connect, with no slave to splice it */
    while (c->spare_next < p->n_cand && p->cand[c->spare_next].relay)
        c->spare_next++;
    if (c->n_spares >= want || c->spare_next >= p->n_cand) {
        rpc_finish(c);
        return;
    }
    size_t k = c->spare_next++;
    char rnd[33];
    lb_random_id(rnd);
    snprintf(c->spare_sid[c->n_spares], sizeof c->spare_sid[0], "spare-%s", rnd);
    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    lr.app = cr->app;
    lr.session_id = c->spare_sid[c->n_spares];
    lr.client_id = cr->client_id;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    nng_msg *msg = NULL;
    const char *why = NULL;
    if (wire_encode(&env, &msg) != LB_OK) {
        rpc_finish(c);
        return;
    }
    if (!attempt_start(c->m, p->cand[k].server, p->cand[k].endpoint, lr.session_id, msg,
                       rpc_spare_done, c, &why))
        rpc_spare_done(c, NULL, why);
}

/* Standbys answer "unavailable, the leader is X" so slaves move on. */
static bool rpc_standby(rpc_ctx *c)
{
    master *m = c->m;
    if (master_leading(m)) /* fenced: a leader whose lease may lapse answers as a standby */
        return false;
    char leader[128], ep[256] = "", text[512];
    reg_leader(m->view, leader, sizeof leader);
    if (leader[0] != '\0')
        reg_master_endpoint(m->view, leader, ep, sizeof ep);
    snprintf(text, sizeof text, "master %s is a standby; leader: %s %s", m->cfg.id,
             leader[0] ? leader : "(none)", ep);
    rpc_error(c, c->req->request_id, LB_EUNAVAIL, text);
    return true;
}

/* A client that connected to one of its hot spares claims it: the
 * reservation becomes the client's session on the spare's process, with the
 * spare's session id (the one the agent knows it by), and no launch. The
 * selection made by plan_make (validation, slave) is kept, its candidate
 * replaced by the spare's server. */
static void rpc_claim(rpc_ctx *c)
{
    master *m = c->m;
    const Lb__SelectionRequest *sr = c->req->selection_request;
    const Lb__ClientRequest *cr = sr->request;
    plan *p = &c->plan;
    spare_resv r;
    lb_err e = spare_claim(m->spares, cr->claim_spare, cr->client_id, lb_wall_ms(), &r);
    if (e == LB_OK && strcmp(r.app, cr->app) != 0) {
        master_agent_stop(m, r.server_id, r.endpoint, r.session_id);
        e = LB_EINVAL;
    }
    if (e != LB_OK) {
        obs_count("master_spare_claims_total{result=\"refused\"}");
        char why[256];
        snprintf(why, sizeof why, "spare not claimed: %s",
                 e == LB_ENOTFOUND   ? "no such reservation at this leader (expired, claimed, or "
                                       "made by a previous leader: reservations live in the "
                                       "leader's memory)"
                 : e == LB_ETIMEDOUT ? "reservation expired"
                 : e == LB_EAUTH     ? "reserved for another client"
                                     : "reserved for another app");
        rpc_reject(c, why);
        return;
    }
    obs_count("master_spare_claims_total{result=\"ok\"}");
    plan_abandon(m, p, 0); /* the planned launch does not happen */
    plan_cand *pc = &p->cand[0];
    snprintf(pc->server, sizeof pc->server, "%s", r.server_id);
    snprintf(pc->endpoint, sizeof pc->endpoint, "%s", r.endpoint);
    snprintf(pc->host, sizeof pc->host, "%s", r.host);
    pc->relay = false;
    p->n_cand = 1;
    p->reuse = p->local = p->moved = p->preselected_ok = p->preferred = false;
    snprintf(p->session_id, sizeof p->session_id, "%.63s", r.session_id);
    Lb__ProcessId proc = LB__PROCESS_ID__INIT;
    proc.pid = r.pid;
    proc.host = r.host;
    proc.port = r.port;
    proc.started_at = r.started_at;
    proc.server_id = r.server_id;
    plan_commit(m, sr, p, 0, &proc, 0);
    rpc_answer(c, 0, &proc);
}

/* A new session chosen for a server that holds stock of its app: the stock
 * process becomes the session (its reservation id is the session id the
 * agent knows it by), answered here on the receiving thread with no agent
 * call; then the stock is refilled in the background. false: no stock there,
 * the launch goes to the agent as before. The choice of server is the
 * policy's, unchanged. */
static bool rpc_stock(rpc_ctx *c)
{
    master *m = c->m;
    const Lb__SelectionRequest *sr = c->req->selection_request;
    plan *p = &c->plan;
    stock_item it;
    if (p->reuse || !master_stock_take(m, p->cand[0].server, sr->request->app, &it))
        return false;
    plan_abandon(m, p, 0); /* no launch: the agent already counts the process */
    snprintf(p->session_id, sizeof p->session_id, "%s", it.session_id);
    lb__process_id__init(&c->stock_proc);
    snprintf(c->stock_host, sizeof c->stock_host, "%s", it.host);
    c->stock_proc.pid = it.pid;
    c->stock_proc.host = c->stock_host;
    c->stock_proc.port = it.port;
    c->stock_proc.started_at = it.started_at;
    c->stock_proc.server_id = p->cand[0].server;
    plan_commit(m, sr, p, 0, &c->stock_proc, 0);
    c->stock_hit = true;
    c->spare_next = 1;
    rpc_spare_next(c);                          /* hot spares as for a launch; answers when done */
    master_stock_used(m, it.server_id, it.app); /* refills now or after the burst */
    return true;
}

static void rpc_selection(rpc_ctx *c)
{
    master *m = c->m;
    const Lb__SelectionRequest *sr = c->req->selection_request;
    if (sr->request == NULL) {
        rpc_error(c, c->req->request_id, LB_EINVAL, "selection request without a client request");
        return;
    }
    if (sr->dry_run) {
        rpc_send_msg(c, master_explain(m, c->req));
        return;
    }
    plan_make(m, sr, &c->plan);
    if (c->plan.reject) {
        rpc_reject(c, c->plan.reason);
        return;
    }
    /* app and client id were validated ([A-Za-z0-9._:@-]) by plan_make */
    LOG_DEBUG("master", "selected", "app=%s client=%s server=%s reuse=%d", sr->request->app,
              sr->request->client_id, c->plan.cand[0].server, (int)c->plan.reuse);
    c->cur = 0;
    c->failures[0] = '\0';
    if (sr->request->claim_spare != NULL && sr->request->claim_spare[0] != '\0') {
        rpc_claim(c);
        return;
    }
    if (c->plan.local) {
        /* sticky, and the process is alive as far as the agent's exit reports
         * tell: answered here, on the receiving thread, with no agent call */
        obs_inc(rpc_c.sticky_local);
        plan_commit(m, sr, &c->plan, 0, &c->plan.local_proc, 0);
        rpc_answer(c, 0, &c->plan.local_proc);
        return;
    }
    if (c->plan.reuse)
        obs_inc(rpc_c.sticky_agent);
    else if (rpc_stock(c))
        return;
    rpc_launch(c);
}

static void rpc_request(rpc_ctx *c, nng_msg *msg)
{
    lb_errmsg em = {{0}};
    master_role role = master_rpc_role(c->m, msg); /* the pipe is the message's, read first */
    lb_err err = wire_decode(msg, c->m->cfg.max_message, &c->req, &em);
    nng_msg_free(msg);
    if (err != LB_OK) {
        LOG_WARN("master", "bad request", "role=%s err=\"%s\"",
                 role == MASTER_ROLE_OPERATOR ? "operator" : "slave", em.text);
        obs_count("master_rpc_errors_total{kind=\"decode\"}");
        rpc_error(c, 0, err, em.text);
        return;
    }
    char why[256];
    if (!master_rpc_permitted(role, c->req, why, sizeof why)) {
        rpc_error(c, c->req->request_id, LB_EAUTH, why);
        return;
    }
    c->started_ms = lb_mono_ms();
    c->started_wall_ms = lb_wall_ms();
    c->t0_ns = obs_now_ns();
    switch (c->req->body_case) {
    case LB__ENVELOPE__BODY_SELECTION_REQUEST:
        if (!rpc_standby(c))
            rpc_selection(c);
        break;
    case LB__ENVELOPE__BODY_RELEASE_REQUEST:
        if (!rpc_standby(c))
            rpc_send_msg(c, master_release(c->m, c->req));
        break;
    case LB__ENVELOPE__BODY_RENEW_REQUEST:
        if (!rpc_standby(c))
            rpc_send_msg(c, master_renew(c->m, c->req));
        break;
    case LB__ENVELOPE__BODY_LIST_REQUEST:
        rpc_send_msg(c, master_list(c->m, c->req));
        break;
    case LB__ENVELOPE__BODY_LOAD_REQUEST:
        rpc_send_msg(c, master_load_list(c->m, c->req));
        break;
    case LB__ENVELOPE__BODY_STATS_REQUEST: {
        nng_msg *out = NULL;
        wire_stats_reply(c->req->request_id, "lb-master", c->m->cfg.id, &out);
        rpc_send_msg(c, out);
        break;
    }
    default: {
        char text[128];
        snprintf(text, sizeof text, "unexpected message (body %d) at the master",
                 (int)c->req->body_case);
        LOG_WARN("master", "bad request", "err=\"%s\"", text);
        obs_count("master_rpc_errors_total{kind=\"unexpected\"}");
        rpc_error(c, c->req->request_id, LB_EINVAL, text);
    }
    }
}

static void rpc_cb(void *arg)
{
    rpc_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    switch (c->state) {
    case ST_RECV:
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        if (rv != 0) {
            rpc_recv(c);
            return;
        }
        rpc_request(c, nng_aio_get_msg(c->aio));
        break;
    case ST_REPLY:
        if (c->answer_ns != 0 && c->pool_hit)
            rpc_path_done(c);
        c->answer_ns = 0;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
                return;
        }
        rpc_recv(c);
        break;
    default:
        break;
    }
}

int master_rpc_start(master *m)
{
    obs_describe("master_pool_path_launches_total", "New sessions answered from a pool hit.");
    obs_describe("master_pool_path_seconds_total",
                 "Time of pool-hit new sessions by stage (plan, agent, commit, send).");
    rpc_reasons_init();
    rpc_c.path_n = obs_counter_get("master_pool_path_launches_total");
    rpc_c.path_plan = obs_counter_get("master_pool_path_microseconds_total{stage=\"plan\"}");
    rpc_c.path_agent = obs_counter_get("master_pool_path_microseconds_total{stage=\"agent\"}");
    rpc_c.path_commit = obs_counter_get("master_pool_path_microseconds_total{stage=\"commit\"}");
    rpc_c.path_send = obs_counter_get("master_pool_path_microseconds_total{stage=\"send\"}");
    rpc_c.serve = obs_counter_get("master_selections_total{action=\"serve\"}");
    rpc_c.redirect = obs_counter_get("master_selections_total{action=\"redirect\"}");
    rpc_c.reject = obs_counter_get("master_selections_total{action=\"reject\"}");
    rpc_c.confirm = obs_counter_get("master_confirms_total");
    rpc_c.errors = obs_counter_get("master_rpc_error_replies_total");
    rpc_c.launch_ok = obs_counter_get("master_launches_total{result=\"ok\"}");
    rpc_c.launch_fail = obs_counter_get("master_launches_total{result=\"failed\"}");
    rpc_c.redirects = obs_counter_get("master_redirects_total");
    rpc_c.sticky_local = obs_counter_get("master_sticky_answers_total{via=\"view\"}");
    rpc_c.sticky_agent = obs_counter_get("master_sticky_answers_total{via=\"agent\"}");
    rpc_c.pref_ok = obs_counter_get("master_preferred_total{result=\"honoured\"}");
    rpc_c.pref_refused = obs_counter_get("master_preferred_total{result=\"refused\"}");
    rpc_c.lat_serve = obs_hist_get("master_selection_seconds{action=\"serve\"}", NULL, 0);
    rpc_c.lat_redirect = obs_hist_get("master_selection_seconds{action=\"redirect\"}", NULL, 0);
    rpc_c.lat_reject = obs_hist_get("master_selection_seconds{action=\"reject\"}", NULL, 0);
    rpc_c.launch_ok_s = obs_hist_get("master_launch_seconds{result=\"ok\"}", NULL, 0);
    rpc_c.launch_fail_s = obs_hist_get("master_launch_seconds{result=\"failed\"}", NULL, 0);
    lb_errmsg em = {{0}};
    m->operator_listener = -1;
    if (wire_rep_listen(m->cfg.listen, &m->rpc, &em) != LB_OK) {
        LOG_ERROR("master", "rpc socket", "err=\"%s\"", em.text);
        return -1;
    }
    if (m->cfg.operator_listen[0] != '\0') {
        /* the same socket and contexts: each message's pipe tells its listener
         * (rpc_role.c); this one trusts the operator CA alone */
        nng_listener l;
        const char *ca = m->cfg.tls.operator_peer_ca[0] ? m->cfg.tls.operator_peer_ca : NULL;
        if (wire_listen(m->rpc, m->cfg.operator_listen, ca, NULL, &l, &em) != LB_OK) {
            LOG_ERROR("master", "operator listener", "err=\"%s\"", em.text);
            nng_close(m->rpc);
            return -1;
        }
        m->operator_listener = nng_listener_id(l);
        LOG_INFO("master", "operator listener", "endpoint=%s", m->cfg.operator_listen);
        if (!wire_url_tls(m->cfg.operator_listen))
            LOG_WARN("master", "operator listener is plain TCP",
                     "endpoint=%s note=\"whoever reaches it may release any session\"",
                     m->cfg.operator_listen);
    }
    m->n_ctxs = (size_t)m->cfg.contexts;
    m->ctxs = lb_xcalloc(m->n_ctxs, sizeof *m->ctxs);
    for (size_t i = 0; i < m->n_ctxs; i++) {
        rpc_ctx *c = lb_xcalloc(1, sizeof *c);
        c->m = m;
        m->ctxs[i] = c;
        if (nng_ctx_open(&c->ctx, m->rpc) != 0 || nng_aio_alloc(&c->aio, rpc_cb, c) != 0)
            return -1;
        rpc_recv(c);
    }
    return 0;
}

void master_rpc_stop(master *m)
{
    attempt_stop_all(m); /* no attempt calls back into a context after this */
    for (size_t i = 0; i < m->n_ctxs; i++)
        if (m->ctxs[i] != NULL)
            nng_aio_stop(m->ctxs[i]->aio);
    nng_close(m->rpc);
    for (size_t i = 0; i < m->n_ctxs; i++) {
        rpc_ctx *c = m->ctxs[i];
        if (c == NULL)
            continue;
        nng_aio_free(c->aio);
        wire_free(&c->req);
        wire_free(&c->chosen); /* stopped while its spares launched */
        for (size_t k = 0; k < c->n_spares; k++)
            wire_free(&c->spare_env[k]);
        plan_free(&c->plan);
        free(c);
    }
    free(m->ctxs);
    m->ctxs = NULL;
}
