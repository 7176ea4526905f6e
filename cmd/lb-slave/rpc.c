/*
 * Client requests: a REP socket with cfg.contexts contexts, each a state machine
 *
 *   RECV -> MASTER_SEND -> MASTER_RECV -> [next master on failure] -> REPLY -> RECV
 *
 * The slave forwards the client's request with its own id and load; the
 * master's instruction (SERVE, REDIRECT to another slave, REJECT) goes back to
 * the client as it is. A standby master's "unavailable" moves on to the next.
 * When no master answers (an election under way, a leader that stepped down
 * for a moment), the request waits and tries them all again until leader_hold
 * has passed since it arrived, as Consul's servers hold RPCs for
 * rpc_hold_timeout: a failover of ~2 s costs the client time, not an error.
 */
#include "slave.h"

#include "relay.h"
#include "rpc_auth.h"
#include "shed.h"

#include "auth/verifier.h"
#include "common/util.h"
#include "lb.pb-c.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASTER_SEND_TIMEOUT_MS 1000
#define HOLD_RETRY_MS 200 /* between rounds over the masters while holding */

typedef enum { ST_RECV, ST_MASTER_SEND, ST_MASTER_RECV, ST_HOLD, ST_REPLY } slave_state;

typedef struct slave_ctx {
    slave *s;
    nng_ctx ctx;
    nng_aio *aio;
    nng_aio *maio;
    nng_ctx mctx;
    bool mctx_open;
    slave_state state;
    Lb__Envelope *req;
    nng_msg *fwd; /* encoded SelectionRequest, kept for retries on other masters */
    size_t attempt;
    int64_t started_ms; /* when the request arrived (lb_mono_ms), for leader_hold */
    size_t which;
    char master_ep[256];
    char failures[512];
} slave_ctx;

static struct {
    obs_counter *requests, *serve, *redirect, *reject, *no_master, *bad, *held;
} sc;

static void ctx_recv(slave_ctx *c)
{
    wire_free(&c->req);
    if (c->fwd != NULL) {
        nng_msg_free(c->fwd);
        c->fwd = NULL;
    }
    if (c->mctx_open) {
        nng_ctx_close(c->mctx);
        c->mctx_open = false;
    }
    atomic_fetch_sub(&c->s->inflight, c->state == ST_REPLY ? 1 : 0);
    c->state = ST_RECV;
    nng_ctx_recv(c->ctx, c->aio);
}

static void ctx_send(slave_ctx *c, nng_msg *msg)
{
    if (msg == NULL) {
        c->state = ST_REPLY;
        ctx_recv(c);
        return;
    }
    c->state = ST_REPLY;
    nng_aio_set_msg(c->aio, msg);
    nng_ctx_send(c->ctx, c->aio);
}

static void ctx_error(slave_ctx *c, lb_err code, const char *text)
{
    nng_msg *msg = NULL;
    wire_error_reply(c->req != NULL ? c->req->request_id : 0, code, text, &msg);
    ctx_send(c, msg);
}

static void try_master(slave_ctx *c);

static void master_failed(slave_ctx *c, const char *why)
{
    LOG_WARN("slave", "master call failed", "master=%s err=\"%s\"", c->master_ep, why);
    size_t used = strlen(c->failures);
    snprintf(c->failures + used, sizeof c->failures - used, "%s%s: %s", used ? "; " : "",
             c->master_ep, why);
    if (c->mctx_open) {
        nng_ctx_close(c->mctx);
        c->mctx_open = false;
    }
    c->attempt++;
    try_master(c);
}

static void try_master(slave_ctx *c)
{
    if (!slave_master_ctx(c->s, c->attempt, &c->mctx, &c->which, c->master_ep,
                          sizeof c->master_ep)) {
        int64_t waited = lb_mono_ms() - c->started_ms;
        if (waited + HOLD_RETRY_MS < c->s->cfg.leader_hold_ms && !atomic_load(&c->s->stopping)) {
            obs_inc(sc.held);
            c->state = ST_HOLD;
            nng_sleep_aio(HOLD_RETRY_MS, c->maio);
            return;
        }
        char text[640];
        obs_inc(sc.no_master);
        snprintf(text, sizeof text, "no master answered%s: %s",
                 waited >= HOLD_RETRY_MS ? " (held for leader_hold)" : "",
                 c->failures[0] ? c->failures : "no master known");
        LOG_ERROR("slave", "no master", "err=\"%s\"", text);
        ctx_error(c, LB_EUNAVAIL, text);
        return;
    }
    c->mctx_open = true;
    nng_msg *copy = NULL;
    if (nng_msg_dup(&copy, c->fwd) != 0) {
        ctx_error(c, LB_ENOMEM, "out of memory");
        return;
    }
    c->state = ST_MASTER_SEND;
    nng_aio_set_msg(c->maio, copy);
    nng_aio_set_timeout(c->maio, MASTER_SEND_TIMEOUT_MS);
    nng_ctx_send(c->mctx, c->maio);
}

/* SERVE with link relay: the relay learns the one-time token and the client
 * learns where the relay listens. The endpoint string replaces the decoded
 * one, so it is allocated as protobuf-c frees it (malloc). */
static void relay_answer(slave *s, Lb__SelectionInstruction *in)
{
    if (in->action != LB__ACTION__SERVE || in->link == NULL || strcmp(in->link, "relay") != 0 ||
        in->relay_token == NULL || in->relay_token[0] == '\0' || in->process == NULL)
        return;
    if (s->relay == NULL) {
        LOG_WARN("slave", "relay app without relay_listen", "session=%s", in->session_id);
        return;
    }
    relay_grant(s->relay, in->relay_token, in->process->host, in->process->port, in->session_id);
    /* proto3 leaves an absent string at the shared default "", never to be freed */
    if (in->relay_endpoint != NULL && in->relay_endpoint[0] != '\0')
        free(in->relay_endpoint);
    in->relay_endpoint = lb_strdup(relay_endpoint(s->relay));
}

/* Forwards the master's answer (decoded) to the client. */
static void master_answered(slave_ctx *c, nng_msg *msg)
{
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    lb_err err = wire_decode(msg, c->s->cfg.max_message, &env, &em);
    nng_msg_free(msg);
    nng_ctx_close(c->mctx);
    c->mctx_open = false;
    if (err != LB_OK) {
        master_failed(c, em.text);
        return;
    }
    if (env->body_case == LB__ENVELOPE__BODY_ERROR && env->error->code == LB_EUNAVAIL) {
        char why[300];
        snprintf(why, sizeof why, "%s", env->error->message);
        wire_free(&env);
        master_failed(c, why);
        return;
    }
    slave_master_ok(c->s, c->which);
    if (env->body_case == LB__ENVELOPE__BODY_SESSION_REPLY && env->session_reply->ok &&
        c->req->body_case == LB__ENVELOPE__BODY_RELEASE_REQUEST)
        relay_release(c->s->relay, c->req->release_request->session_id);
    if (env->body_case == LB__ENVELOPE__BODY_INSTRUCTION) {
        slave_shed_learn(
            c->s->shed, c->s->cfg.id,
            c->req->body_case == LB__ENVELOPE__BODY_CLIENT_REQUEST ? c->req->client_request : NULL,
            env->instruction);
        relay_answer(c->s, env->instruction);
        Lb__SelectionInstruction *in = env->instruction;
        obs_inc(in->action == LB__ACTION__SERVE      ? sc.serve
                : in->action == LB__ACTION__REDIRECT ? sc.redirect
                                                     : sc.reject);
        LOG_DEBUG("slave", "answered", "action=%d server=%s", (int)in->action,
                  in->server_id ? in->server_id : "");
    }
    env->request_id = c->req->request_id;
    nng_msg *out = NULL;
    wire_encode(env, &out);
    wire_free(&env);
    ctx_send(c, out);
}

/* Over its limit, a slave answers a new client itself with a redirect to the
 * least loaded slave of its zone (shed.c); true when it did. */
static bool shed_client(slave_ctx *c, char **visited, size_t n_visited)
{
    slave *s = c->s;
    Lb__ClientRequest *cr = c->req->client_request;
    /* this request is already counted in the window */
    uint32_t w = (uint32_t)atomic_load(&s->window), l = (uint32_t)atomic_load(&s->load);
    uint32_t load = w > 0 && w - 1 > l ? w - 1 : l;
    char id[128], ep[256], reason[400];
    if (!slave_shed_pick(s->shed, s->cfg.id, load, (uint32_t)s->cfg.limit, cr, id, sizeof id, ep,
                         sizeof ep))
        return false;
    snprintf(reason, sizeof reason, "slave %s over its limit (%u/%u): new client shed to %s",
             s->cfg.id, load, (unsigned)s->cfg.limit, id);
    LOG_INFO("slave", "shed", "client=%s app=%s to=%s load=%u limit=%u", cr->client_id, cr->app, id,
             load, (unsigned)s->cfg.limit);
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    in.action = LB__ACTION__REDIRECT;
    in.slave_id = id;
    in.slave_endpoint = ep;
    char api[256];
    slave_shed_api(s->shed, id, api, sizeof api); /* HTTP clients are sent to its API */
    in.slave_api = api;
    in.reason = reason;
    in.shed = true;
    in.visited = visited;
    in.n_visited = n_visited;
    in.slave_reason = reason;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = c->req->request_id;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = &in;
    nng_msg *out = NULL;
    wire_encode(&env, &out);
    obs_inc(sc.redirect);
    ctx_send(c, out);
    return true;
}

static void handle_client(slave_ctx *c)
{
    slave *s = c->s;
    Lb__ClientRequest *cr = c->req->client_request;
    /* forward with this slave added to the visited list (the master avoids
     * redirecting back to a slave the client has already seen) */
    char **visited = lb_xcalloc(cr->n_visited + 1, sizeof *visited);
    for (size_t i = 0; i < cr->n_visited; i++)
        visited[i] = cr->visited[i];
    visited[cr->n_visited] = s->cfg.id;
    if (shed_client(c, visited, cr->n_visited + 1)) {
        free(visited);
        return;
    }
    Lb__ClientRequest fwd_cr = *cr;
    fwd_cr.visited = visited;
    fwd_cr.n_visited = cr->n_visited + 1;
    Lb__SelectionRequest sr = LB__SELECTION_REQUEST__INIT;
    sr.request = &fwd_cr;
    sr.slave_id = s->cfg.id;
    sr.slave_load = (uint32_t)atomic_load(&s->load);
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_SELECTION_REQUEST;
    env.selection_request = &sr;
    lb_err err = wire_encode(&env, &c->fwd);
    free(visited);
    if (err != LB_OK) {
        ctx_error(c, err, "out of memory");
        return;
    }
    c->attempt = 0;
    c->failures[0] = '\0';
    c->started_ms = lb_mono_ms();
    try_master(c);
}

/* Session and list requests go to the master unchanged (with our own request id). */
static void forward_as_is(slave_ctx *c)
{
    uint64_t client_id = c->req->request_id;
    c->req->request_id = wire_next_id();
    lb_err err = wire_encode(c->req, &c->fwd);
    c->req->request_id = client_id;
    if (err != LB_OK) {
        ctx_error(c, err, "out of memory");
        return;
    }
    c->attempt = 0;
    c->failures[0] = '\0';
    c->started_ms = lb_mono_ms();
    try_master(c);
}

static void handle_request(slave_ctx *c, nng_msg *msg)
{
    lb_errmsg em = {{0}};
    lb_err err = wire_decode(msg, c->s->cfg.max_message, &c->req, &em);
    nng_msg_free(msg);
    atomic_fetch_add(&c->s->inflight, 1);
    atomic_fetch_add(&c->s->window, 1);
    obs_inc(sc.requests);
    if (err != LB_OK) {
        obs_inc(sc.bad);
        LOG_WARN("slave", "bad request", "err=\"%s\"", em.text);
        ctx_error(c, err, em.text);
        return;
    }
    nng_msg *refused = NULL;
    if (!slave_auth_check(c->s->tokens, c->req, &refused)) {
        obs_inc(c->req->body_case == LB__ENVELOPE__BODY_CLIENT_REQUEST ? sc.reject : sc.bad);
        ctx_send(c, refused);
        return;
    }
    switch (c->req->body_case) {
    case LB__ENVELOPE__BODY_CLIENT_REQUEST:
        handle_client(c);
        break;
    case LB__ENVELOPE__BODY_RELEASE_REQUEST:
    case LB__ENVELOPE__BODY_RENEW_REQUEST:
    case LB__ENVELOPE__BODY_LIST_REQUEST:
        forward_as_is(c);
        break;
    case LB__ENVELOPE__BODY_STATS_REQUEST: {
        nng_msg *out = NULL;
        wire_stats_reply(c->req->request_id, "lb-slave", c->s->cfg.id, &out);
        ctx_send(c, out);
        break;
    }
    default: {
        char text[128];
        snprintf(text, sizeof text, "unexpected message (body %d) at a slave",
                 (int)c->req->body_case);
        obs_inc(sc.bad);
        LOG_WARN("slave", "bad request", "err=\"%s\"", text);
        ctx_error(c, LB_EINVAL, text);
    }
    }
}

static void ctx_cb(void *arg)
{
    slave_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (c->state == ST_RECV) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        if (rv != 0) {
            ctx_recv(c);
            return;
        }
        handle_request(c, nng_aio_get_msg(c->aio));
    } else if (c->state == ST_REPLY) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
                return;
        }
        ctx_recv(c);
    }
}

static void master_cb(void *arg)
{
    slave_ctx *c = arg;
    int rv = nng_aio_result(c->maio);
    if (rv == NNG_ECLOSED && atomic_load(&c->s->stopping))
        return;
    if (c->state == ST_MASTER_SEND) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->maio));
            master_failed(c, rv == NNG_ETIMEDOUT ? "not connected" : nng_strerror(rv));
            return;
        }
        c->state = ST_MASTER_RECV;
        nng_aio_set_timeout(c->maio, (nng_duration)c->s->cfg.request_timeout_ms);
        nng_ctx_recv(c->mctx, c->maio);
    } else if (c->state == ST_HOLD) {
        if (rv != 0) /* cancelled: the slave is stopping */
            return;
        c->attempt = 0; /* a new round over every master; an error names the last round's */
        c->failures[0] = '\0';
        try_master(c);
    } else if (c->state == ST_MASTER_RECV) {
        if (rv != 0) {
            master_failed(c, rv == NNG_ETIMEDOUT ? "timed out" : nng_strerror(rv));
            return;
        }
        master_answered(c, nng_aio_get_msg(c->maio));
    }
}

int slave_rpc_start(slave *s)
{
    sc.requests = obs_counter_get("slave_requests_total");
    sc.serve = obs_counter_get("slave_answers_total{action=\"serve\"}");
    sc.redirect = obs_counter_get("slave_answers_total{action=\"redirect\"}");
    sc.reject = obs_counter_get("slave_answers_total{action=\"reject\"}");
    sc.no_master = obs_counter_get("slave_no_master_total");
    sc.bad = obs_counter_get("slave_bad_requests_total");
    sc.held = obs_counter_get("slave_leader_hold_rounds_total");
    s->shed = slave_shed_new();
    lb_errmsg em = {{0}};
    if (s->cfg.require_tokens) {
        if (auth_verifier_new(s->cfg.token_public_keys, s->cfg.n_token_public_keys, &s->tokens,
                              &em) != LB_OK) {
            LOG_ERROR("slave", "token keys", "err=\"%s\"", em.text);
            return -1;
        }
        LOG_INFO("slave", "tokens required", "keys=%zu", s->cfg.n_token_public_keys);
    }
    if (wire_rep_listen(s->cfg.listen, &s->rep, &em) != LB_OK) {
        LOG_ERROR("slave", "client socket", "err=\"%s\"", em.text);
        return -1;
    }
    /* the HTTP API's way in: same socket, same state machines */
    int rv = nng_listen(s->rep, SLAVE_FRONT_DOOR_INPROC, NULL, 0);
    if (rv != 0) {
        LOG_ERROR("slave", "client socket", "err=\"inproc listen: %s\"", nng_strerror(rv));
        return -1;
    }
    s->n_ctxs = (size_t)s->cfg.contexts;
    s->ctxs = lb_xcalloc(s->n_ctxs, sizeof *s->ctxs);
    for (size_t i = 0; i < s->n_ctxs; i++) {
        slave_ctx *c = lb_xcalloc(1, sizeof *c);
        c->s = s;
        s->ctxs[i] = c;
        if (nng_ctx_open(&c->ctx, s->rep) != 0 || nng_aio_alloc(&c->aio, ctx_cb, c) != 0 ||
            nng_aio_alloc(&c->maio, master_cb, c) != 0)
            return -1;
        c->state = ST_RECV;
        nng_ctx_recv(c->ctx, c->aio);
    }
    return 0;
}

void slave_rpc_stop(slave *s)
{
    for (size_t i = 0; i < s->n_ctxs; i++)
        if (s->ctxs[i] != NULL) {
            nng_aio_stop(s->ctxs[i]->aio);
            nng_aio_stop(s->ctxs[i]->maio);
        }
    nng_close(s->rep);
    for (size_t i = 0; i < s->n_ctxs; i++) {
        slave_ctx *c = s->ctxs[i];
        if (c == NULL)
            continue;
        nng_aio_free(c->aio);
        nng_aio_free(c->maio);
        if (c->mctx_open)
            nng_ctx_close(c->mctx);
        if (c->fwd != NULL)
            nng_msg_free(c->fwd);
        wire_free(&c->req);
        free(c);
    }
    free(s->ctxs);
    slave_shed_free(&s->shed);
    auth_verifier_free(&s->tokens);
}
