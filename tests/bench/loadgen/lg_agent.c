/*
 * The fake agent (--agents): one REP socket with one TCP listener per fake
 * server on 127.0.0.1 (port chosen by the kernel), so a request's pipe tells
 * which server it was for. A LaunchRequest gets a made-up ProcessId, the same
 * one again for a session it already knows (reused); a StopRequest forgets the
 * session. No process is started: the point is the master's side of a launch.
 * One thread, answers at once; nothing a peer sends stops it.
 */
#include "lg.h"

#include "common/hmap.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <nng/protocol/reqrep0/rep.h>

/* --shared-agent: one listener for every server (no fd per server, so 10,000
 * servers fit); a request cannot tell its server, so launches are counted on
 * a pseudo-server that is never reported. */
static int open_shared(lg *g)
{
    nng_listener l;
    int port = 0;
    /* TLS (LBCP_TLS_* with an agent's certificate) when the cluster runs it */
    const char *scheme = wire_tls_enabled(wire_tls_default()) ? "tls+tcp" : "tcp";
    char url[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:0", scheme);
    lb_errmsg em = {{0}};
    int rv = wire_listen(g->agent_rep, url, NULL, NULL, &l, &em) == LB_OK ? 0 : NNG_EINVAL;
    if (rv == 0)
        rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
    if (rv != 0) {
        fprintf(stderr, "lb-loadgen: shared agent listener: %s %s\n", nng_strerror(rv), em.text);
        return -1;
    }
    for (int i = 0; i < g->servers; i++)
        snprintf(g->srv[i].endpoint, sizeof g->srv[i].endpoint, "%s://127.0.0.1:%d", scheme, port);
    g->shared = lb_xcalloc(1, sizeof *g->shared);
    snprintf(g->shared->id, sizeof g->shared->id, "shared");
    g->shared->sessions_by_id = hmap_new();
    return 0;
}

int lg_agent_open(lg *g)
{
    if (!g->agents && !g->shared_agent) {
        for (int i = 0; i < g->servers; i++) /* a port nobody listens on, or none */
            snprintf(g->srv[i].endpoint, sizeof g->srv[i].endpoint, "%s",
                     g->no_endpoint ? "" : "tcp://127.0.0.1:1");
        return 0;
    }
    /* each server costs a listening and an accepted socket */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int rv = nng_rep0_open(&g->agent_rep);
    if (rv == 0)
        rv = nng_socket_set_ms(g->agent_rep, NNG_OPT_RECVTIMEO, 200);
    if (rv != 0) {
        fprintf(stderr, "lb-loadgen: agent socket: %s\n", nng_strerror(rv));
        return -1;
    }
    g->listener_map = hmap_new();
    if (g->shared_agent)
        return open_shared(g);
    for (int i = 0; i < g->servers; i++) {
        /* TLS (LBCP_TLS_* with an agent's certificate) when the cluster runs it */
        const char *scheme = wire_tls_enabled(wire_tls_default()) ? "tls+tcp" : "tcp";
        char url[64];
        snprintf(url, sizeof url, "%s://127.0.0.1:0", scheme);
        nng_listener l;
        lb_errmsg em = {{0}};
        int port = 0;
        rv = wire_listen(g->agent_rep, url, NULL, NULL, &l, &em) == LB_OK ? 0 : NNG_EINVAL;
        if (rv == 0)
            rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
        if (rv != 0) {
            fprintf(stderr, "lb-loadgen: agent listener %d of %d: %s %s\n", i + 1, g->servers,
                    nng_strerror(rv), em.text);
            return -1;
        }
        snprintf(g->srv[i].endpoint, sizeof g->srv[i].endpoint, "%s://127.0.0.1:%d", scheme, port);
        char id[32];
        snprintf(id, sizeof id, "%d", nng_listener_id(l));
        hmap_put(g->listener_map, id, &g->srv[i]);
        g->srv[i].sessions_by_id = hmap_new();
    }
    return 0;
}

static lg_server *server_of(lg *g, nng_msg *msg)
{
    if (g->shared != NULL)
        return g->shared;
    nng_pipe p = nng_msg_get_pipe(msg);
    char id[32];
    snprintf(id, sizeof id, "%d", nng_listener_id(nng_pipe_listener(p)));
    return hmap_get(g->listener_map, id);
}

static void launch(lg *g, lg_server *s, const Lb__LaunchRequest *lr, Lb__LaunchReply *rep,
                   Lb__ProcessId *out)
{
    static int next_pid = 2000000;
    hmap *by = s->sessions_by_id;
    Lb__ProcessId *p = lr->session_id != NULL ? hmap_get(by, lr->session_id) : NULL;
    if (p != NULL) {
        rep->reused = true;
        atomic_fetch_add(&g->reused, 1);
    } else {
        p = lb_xcalloc(1, sizeof *p);
        lb__process_id__init(p);
        p->pid = next_pid++;
        p->host = "127.0.0.1";
        p->port = 1024 + (uint32_t)(p->pid % 60000);
        p->started_at = lb_wall_ms();
        p->server_id = s->id;
        if (lr->session_id != NULL && lr->session_id[0] != '\0') {
            hmap_put(by, lr->session_id, p);
            atomic_fetch_add(&s->sessions, 1);
        }
        atomic_fetch_add(&g->launches, 1);
    }
    *out = *p;
    if (hmap_get(by, lr->session_id != NULL ? lr->session_id : "") != p)
        free(p); /* not kept: no session id */
    rep->ok = true;
    rep->process = out;
    rep->launch_seq = atomic_fetch_add(&s->launches, 1) + 1;
}

static void stop(lg *g, lg_server *s, const Lb__StopRequest *sr, Lb__LaunchReply *rep)
{
    if (sr->sync) { /* the leader's list of live sessions: our app is not per-session */
        rep->ok = true;
        return;
    }
    Lb__ProcessId *p = sr->session_id != NULL ? hmap_del(s->sessions_by_id, sr->session_id) : NULL;
    rep->ok = p != NULL;
    rep->error = p != NULL ? "" : "no such session";
    if (p != NULL) {
        atomic_fetch_sub(&s->sessions, 1);
        atomic_fetch_add(&g->stops, 1);
        free(p);
    }
}

static void handle(lg *g, nng_msg *msg)
{
    Lb__Envelope *req = NULL;
    lb_errmsg em = {{0}};
    nng_msg *out = NULL;
    lg_server *s = server_of(g, msg);
    if (wire_decode(msg, WIRE_DEFAULT_MAX, &req, &em) != LB_OK || s == NULL ||
        (req->body_case != LB__ENVELOPE__BODY_LAUNCH_REQUEST &&
         req->body_case != LB__ENVELOPE__BODY_STOP_REQUEST)) {
        atomic_fetch_add(&g->agent_errors, 1);
        wire_error_reply(req != NULL ? req->request_id : 0, LB_EPROTO,
                         em.text[0] ? em.text : "the fake agent serves launches and stops", &out);
    } else {
        Lb__LaunchReply rep = LB__LAUNCH_REPLY__INIT;
        Lb__ProcessId pid;
        if (req->body_case == LB__ENVELOPE__BODY_LAUNCH_REQUEST)
            launch(g, s, req->launch_request, &rep, &pid);
        else
            stop(g, s, req->stop_request, &rep);
        Lb__Envelope env = LB__ENVELOPE__INIT;
        env.version = WIRE_VERSION;
        env.request_id = req->request_id;
        env.body_case = LB__ENVELOPE__BODY_LAUNCH_REPLY;
        env.launch_reply = &rep;
        wire_encode(&env, &out);
    }
    wire_free(&req);
    if (out != NULL && nng_sendmsg(g->agent_rep, out, 0) != 0)
        nng_msg_free(out);
}

static void *agent_main(void *arg)
{
    lg *g = arg;
    while (!atomic_load(&g->stopping)) {
        nng_msg *msg = NULL;
        int rv = nng_recvmsg(g->agent_rep, &msg, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        handle(g, msg);
        nng_msg_free(msg);
    }
    return NULL;
}

int lg_agent_start(lg *g)
{
    if (!g->agents && !g->shared_agent)
        return 0;
    return pthread_create(&g->agent, NULL, agent_main, g) == 0 ? 0 : -1;
}

void lg_agent_stop(lg *g)
{
    if (!g->agents && !g->shared_agent)
        return;
    pthread_join(g->agent, NULL);
    nng_close(g->agent_rep);
    for (int i = 0; i < g->servers; i++) {
        hmap *m = g->srv[i].sessions_by_id;
        hmap_free(&m, free);
    }
    if (g->shared != NULL) {
        hmap *m = g->shared->sessions_by_id;
        hmap_free(&m, free);
        free(g->shared);
        g->shared = NULL;
    }
    hmap *lm = g->listener_map;
    hmap_free(&lm, NULL);
}
