/*
 * The launch RPC: a REP socket served by AGENT_WORKERS threads, each with its
 * own nng context looping receive -> handle -> send. A launch may block for
 * its app's ready_timeout; the other workers keep serving meanwhile (nng 1.5
 * has no ctx sendmsg, so each worker waits on its own aio).
 *
 * Nothing a peer sends can stop the loop: a message that does not decode, is
 * too big or is not a request this agent serves gets an ErrorReply, a log
 * line and a counter, and the worker goes back to receiving.
 */
#include "agent.h"

#include "common/errmsg.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/prom.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *rpc_body_name(Lb__Envelope__BodyCase c)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&lb__envelope__descriptor, (unsigned)c);
    return f != NULL ? f->name : "unknown";
}

/* An ErrorReply for a request that could not be served; logged and counted. */
static nng_msg *rpc_error(uint64_t id, lb_err code, const char *kind, const char *text)
{
    char name[96];
    nng_msg *m = NULL;
    snprintf(name, sizeof name, "agent_rpc_errors_total{kind=\"%s\"}", kind);
    obs_count(name);
    LOG_WARN(AGENT_COMP, "bad request", "kind=%s request_id=%llu error=\"%s\"", kind,
             (unsigned long long)id, text);
    if (wire_error_reply(id, code, text, &m) != LB_OK)
        return NULL;
    return m;
}

static nng_msg *rpc_launch(agent *a, const Lb__Envelope *req)
{
    Lb__LaunchReply lr;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    nng_msg *m = NULL;
    launch_handle(a, req->launch_request, &lr);
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REPLY;
    env.launch_reply = &lr;
    if (wire_encode(&env, &m) != LB_OK)
        m = NULL;
    launch_reply_clear(&lr);
    return m;
}

#define RPC_SYNC_GRACE_MS 3000

static nng_msg *rpc_stop_session(agent *a, const Lb__Envelope *req)
{
    Lb__LaunchReply lr = LB__LAUNCH_REPLY__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    nng_msg *m = NULL;
    const char *session = req->stop_request->session_id;
    char text[128];
    if (req->stop_request->sync) {
        /* sessions handed out in the last seconds may not be in the leader's
         * view yet: only older ones are stopped */
        procs_sync_sessions(a, req->stop_request->keep_sessions, req->stop_request->n_keep_sessions,
                            RPC_SYNC_GRACE_MS);
        lr.ok = true;
        obs_count("agent_syncs_total");
    } else if (session != NULL && launch_session_valid(session) &&
               procs_stop_session(a, session) == LB_OK) {
        lr.ok = true;
        obs_count("agent_stops_total{result=\"ok\"}");
    } else {
        snprintf(text, sizeof text, "no such session");
        lr.error = text;
        obs_count("agent_stops_total{result=\"not_found\"}");
    }
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REPLY;
    env.launch_reply = &lr;
    if (wire_encode(&env, &m) != LB_OK)
        m = NULL;
    return m;
}

/* Answers one request message (not consumed); NULL only when out of memory. */
static nng_msg *rpc_handle(agent *a, nng_msg *msg)
{
    Lb__Envelope *req = NULL;
    lb_errmsg em = {{0}};
    nng_msg *rep = NULL;
    char text[256];
    lb_err err = wire_decode(msg, a->cfg->max_message, &req, &em);
    if (err != LB_OK)
        return rpc_error(0, err, err == LB_ETOOBIG ? "oversized" : "decode", em.text);
    switch (req->body_case) {
    case LB__ENVELOPE__BODY_LAUNCH_REQUEST:
        rep = rpc_launch(a, req);
        break;
    case LB__ENVELOPE__BODY_STOP_REQUEST:
        rep = rpc_stop_session(a, req);
        break;
    case LB__ENVELOPE__BODY_STATS_REQUEST:
        if (wire_stats_reply(req->request_id, "lb-agent", a->cfg->id, &rep) != LB_OK)
            rep = NULL;
        break;
    default:
        snprintf(text, sizeof text,
                 "unexpected message %s: the agent serves launch_request, stop_request and "
                 "stats_request",
                 rpc_body_name(req->body_case));
        rep = rpc_error(req->request_id, LB_EINVAL, "unexpected", text);
        break;
    }
    wire_free(&req);
    return rep;
}

/* Where a pool hit's answer's time went, as sums of microseconds
 * (StatsRequest carries counters: divide by agent_path_hits_total): handling
 * (decode, hand-out, encode) and sending (until nng hands the aio back). */
static obs_counter *rpc_path_n, *rpc_path_handle, *rpc_path_send; /* set by rpc_start */

static void rpc_path_add(uint64_t t0, uint64_t t1, uint64_t t2)
{
    obs_inc(rpc_path_n);
    obs_add(rpc_path_handle, (t1 - t0) / 1000);
    obs_add(rpc_path_send, (t2 - t1) / 1000);
}

/* One worker: receive -> handle -> send until rpc_stop stops its aio. Its
 * context is closed here, before the socket closes: nng 1.5 can panic when a
 * context is used while its socket is being closed. */
static void *rpc_worker(void *arg)
{
    agent *a = ((rpc_slot *)arg)->a;
    nng_aio *aio = ((rpc_slot *)arg)->aio;
    nng_ctx ctx;
    if (nng_ctx_open(&ctx, a->rep) != 0)
        return NULL;
    while (!atomic_load(&a->rpc_quit)) {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        int rv = nng_aio_result(aio);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&a->rpc_quit))
            break;
        if (rv != 0)
            continue;
        nng_msg *msg = nng_aio_get_msg(aio);
        uint64_t t0 = obs_now_ns();
        nng_msg *rep = rpc_handle(a, msg);
        uint64_t t1 = obs_now_ns();
        nng_msg_free(msg);
        if (rep == NULL) {
            obs_count("agent_rpc_errors_total{kind=\"internal\"}");
            pool_kick_due(a);
            continue; /* the requester times out; nothing better to send */
        }
        nng_aio_set_msg(aio, rep);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
        if (rv != 0) /* the requester went away: its reply has nowhere to go */
            nng_msg_free(rep);
        uint64_t t2 = obs_now_ns();
        if (pool_kick_due(a)) /* a hand-out's report and refill, now its answer is out */
            rpc_path_add(t0, t1, t2);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            break;
    }
    nng_ctx_close(ctx);
    return NULL;
}

lb_err rpc_start(agent *a, lb_errmsg *em)
{
    obs_describe("agent_path_hits_total", "Launches answered from a warm pool.");
    obs_describe("agent_path_seconds_total",
                 "Time of pool-hit launches by stage (handle, take, send).");
    rpc_path_n = obs_counter_get("agent_path_hits_total");
    rpc_path_handle = obs_counter_get("agent_path_microseconds_total{stage=\"handle\"}");
    rpc_path_send = obs_counter_get("agent_path_microseconds_total{stage=\"send\"}");
    lb_err err = wire_rep_listen(a->cfg->listen, &a->rep, em);
    if (err != LB_OK)
        return err;
    a->rep_open = true;
    for (size_t i = 0; i < AGENT_WORKERS; i++) {
        a->rpc_slots[i].a = a;
        if (nng_aio_alloc(&a->rpc_slots[i].aio, NULL, NULL) != 0)
            return lb_fail(em, LB_ENOMEM, "cannot allocate RPC worker %zu", i);
        if (pthread_create(&a->workers[i], NULL, rpc_worker, &a->rpc_slots[i]) != 0)
            return lb_fail(em, LB_ESYS, "cannot start RPC worker %zu", i);
        a->n_workers = i + 1;
    }
    LOG_INFO(AGENT_COMP, "serving launch RPC", "listen=%s workers=%d", a->cfg->listen,
             AGENT_WORKERS);
    return LB_OK;
}

void rpc_stop(agent *a)
{
    /* workers first: each stops at its next receive or send and closes its
     * context; then the socket */
    atomic_store(&a->rpc_quit, true);
    for (size_t i = 0; i < AGENT_WORKERS; i++) {
        if (a->rpc_slots[i].aio != NULL)
            nng_aio_stop(a->rpc_slots[i].aio);
    }
    for (size_t i = 0; i < a->n_workers; i++)
        pthread_join(a->workers[i], NULL);
    a->n_workers = 0;
    for (size_t i = 0; i < AGENT_WORKERS; i++)
        nng_aio_free(a->rpc_slots[i].aio);
    memset(a->rpc_slots, 0, sizeof a->rpc_slots);
    if (a->rep_open) {
        nng_close(a->rep);
        a->rep_open = false;
    }
}
