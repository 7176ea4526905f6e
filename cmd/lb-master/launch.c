/*
 * Connections to agents: one REQ socket per server, dialed on first use and
 * redialed when the server's agent endpoint changes. Launch requests go out on
 * their own context of that socket (many in flight per agent).
 *
 * The socket's pipe events are the fastest sign of a dead agent: a killed
 * process closes its TCP connection at once, and NNG_PIPE_EV_REM_POST marks the
 * server down in the view before any report can go missing. nng redials on its
 * own; the pipe coming back (ADD_POST) marks it up again.
 */
#include "master.h"

#include "common/util.h"
#include "obs/log.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent_conn {
    nng_socket sock;
    char *endpoint;
    master *m;
    char server[128];
    atomic_bool closing; /* our own close: its pipe events say nothing of the agent */
};

/* On nng's pipe thread: only the view's lock is taken, never agents_lock
 * (nng_close, called under agents_lock, waits for these callbacks). */
static void agent_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    struct agent_conn *a = arg;
    if (atomic_load(&a->closing))
        return;
    reg_set_conn(a->m->view, a->server, ev == NNG_PIPE_EV_ADD_POST);
}

static void agent_conn_free(void *p)
{
    struct agent_conn *a = p;
    if (a == NULL)
        return;
    atomic_store(&a->closing, true);
    nng_close(a->sock);
    free(a->endpoint);
    free(a);
}

void master_agents_init(master *m)
{
    pthread_mutex_init(&m->agents_lock, NULL);
    m->agents = hmap_new();
}

void master_agents_free(master *m)
{
    hmap_free(&m->agents, agent_conn_free);
    pthread_mutex_destroy(&m->agents_lock);
}

bool master_agent_connected(master *m, const char *server_id)
{
    pthread_mutex_lock(&m->agents_lock);
    bool known = hmap_get(m->agents, server_id) != NULL;
    pthread_mutex_unlock(&m->agents_lock);
    return known;
}

bool master_agent_ctx(master *m, const char *server_id, const char *endpoint, nng_ctx *out)
{
    bool ok = false;
    pthread_mutex_lock(&m->agents_lock);
    struct agent_conn *a = hmap_get(m->agents, server_id);
    if (a != NULL && strcmp(a->endpoint, endpoint) != 0) {
        LOG_INFO("master", "agent endpoint changed", "server=%s endpoint=%s", server_id, endpoint);
        agent_conn_free(hmap_del(m->agents, server_id));
        a = NULL;
    }
    if (a == NULL) {
        a = lb_xcalloc(1, sizeof *a);
        a->m = m;
        snprintf(a->server, sizeof a->server, "%s", server_id);
        atomic_init(&a->closing, false);
        lb_errmsg em = {{0}};
        if (wire_req_dial_notify(endpoint, WIRE_ROLE_AGENT, NULL, agent_pipe_cb, a, &a->sock,
                                 &em) != LB_OK) {
            LOG_WARN("master", "cannot dial agent", "server=%s err=\"%s\"", server_id, em.text);
            free(a);
            goto out;
        }
        a->endpoint = lb_strdup(endpoint);
        hmap_put(m->agents, server_id, a);
    }
    ok = nng_ctx_open(out, a->sock) == 0;
out:
    pthread_mutex_unlock(&m->agents_lock);
    return ok;
}

/* ---- fire-and-forget stop ---------------------------------------------------------
 * A released session's process is stopped without holding up the release: a
 * small self-freeing state machine sends StopRequest and drains the answer. */

struct stop_op {
    nng_ctx ctx;
    nng_aio *aio;
    bool sent;
    char server[128];
};

static void stop_cb(void *arg)
{
    struct stop_op *op = arg;
    int rv = nng_aio_result(op->aio);
    if (!op->sent && rv == 0) {
        op->sent = true;
        nng_ctx_recv(op->ctx, op->aio);
        return;
    }
    if (rv != 0) {
        if (!op->sent)
            nng_msg_free(nng_aio_get_msg(op->aio));
        LOG_WARN("master", "stop request failed", "server=%s err=\"%s\"", op->server,
                 nng_strerror(rv));
    } else {
        nng_msg_free(nng_aio_get_msg(op->aio));
    }
    nng_ctx_close(op->ctx);
    nng_aio_reap(op->aio); /* frees the aio from within its own callback */
    free(op);
}

/* Sends env to server_id's agent and drains the answer; does not wait. */
static void master_agent_send(master *m, const char *server_id, const char *endpoint,
                              Lb__Envelope *env)
{
    env->version = WIRE_VERSION;
    env->request_id = wire_next_id();
    nng_msg *msg = NULL;
    struct stop_op *op = lb_xcalloc(1, sizeof *op);
    snprintf(op->server, sizeof op->server, "%s", server_id);
    if (wire_encode(env, &msg) != LB_OK || !master_agent_ctx(m, server_id, endpoint, &op->ctx)) {
        if (msg != NULL)
            nng_msg_free(msg);
        free(op);
        return;
    }
    if (nng_aio_alloc(&op->aio, stop_cb, op) != 0) {
        nng_msg_free(msg);
        nng_ctx_close(op->ctx);
        free(op);
        return;
    }
    nng_aio_set_timeout(op->aio, 5000);
    nng_aio_set_msg(op->aio, msg);
    nng_ctx_send(op->ctx, op->aio);
}

void master_agent_stop(master *m, const char *server_id, const char *endpoint,
                       const char *session_id)
{
    Lb__StopRequest sr = LB__STOP_REQUEST__INIT;
    sr.session_id = (char *)session_id;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_STOP_REQUEST;
    env.stop_request = &sr;
    master_agent_send(m, server_id, endpoint, &env);
}

void master_agent_sync(master *m, const char *server_id, const char *endpoint, char **sessions,
                       size_t n)
{
    Lb__StopRequest sr = LB__STOP_REQUEST__INIT;
    sr.sync = true;
    sr.keep_sessions = sessions;
    sr.n_keep_sessions = n;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_STOP_REQUEST;
    env.stop_request = &sr;
    master_agent_send(m, server_id, endpoint, &env);
}
