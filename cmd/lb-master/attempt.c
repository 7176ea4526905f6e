/* Launch attempts (attempt.h): a send/receive aio and a timer per attempt,
 * reference-counted so the later of the two callbacks frees it. */
#include "attempt.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_SEND_TIMEOUT_MS 1000 /* an agent that is not connected fails fast */

typedef struct attempt {
    master *m;
    nng_ctx ctx;
    nng_aio *aio;  /* send, then receive */
    nng_aio *taio; /* launch_timeout */
    bool sent;
    int refs;    /* att_lock */
    void *owner; /* att_lock; NULL once done ran or the attempt was abandoned */
    attempt_done_fn done;
    char server[128], endpoint[256], session[64];
    struct attempt *prev, *next; /* live list (att_lock), for shutdown */
} attempt;

static pthread_mutex_t att_lock = PTHREAD_MUTEX_INITIALIZER;
static attempt *att_live;

static void att_release(attempt *a)
{
    pthread_mutex_lock(&att_lock);
    bool last = --a->refs == 0;
    if (last) {
        if (a->prev != NULL)
            a->prev->next = a->next;
        else
            att_live = a->next;
        if (a->next != NULL)
            a->next->prev = a->prev;
    }
    pthread_mutex_unlock(&att_lock);
    if (!last)
        return;
    nng_ctx_close(a->ctx);
    nng_aio_reap(a->aio); /* safe from either aio's own callback */
    nng_aio_reap(a->taio);
    free(a);
}

/* Takes the owner away from the attempt: whoever gets it calls done. */
static void *att_take_owner(attempt *a)
{
    pthread_mutex_lock(&att_lock);
    void *owner = a->owner;
    a->owner = NULL;
    pthread_mutex_unlock(&att_lock);
    return owner;
}

/* A reply nobody waits for: a process it names is stopped. */
static void att_late(attempt *a, nng_msg *msg)
{
    Lb__Envelope *env = NULL;
    if (wire_decode(msg, a->m->cfg.max_message, &env, NULL) == LB_OK &&
        env->body_case == LB__ENVELOPE__BODY_LAUNCH_REPLY && env->launch_reply->ok) {
        obs_count("master_late_launch_replies_total");
        LOG_WARN("master", "late launch reply discarded; stopping its process",
                 "server=%s session=%s pid=%u", a->server, a->session,
                 env->launch_reply->process != NULL ? env->launch_reply->process->pid : 0);
        master_agent_stop(a->m, a->server, a->endpoint, a->session);
    }
    wire_free(&env);
    nng_msg_free(msg);
}

static void att_cb(void *arg)
{
    attempt *a = arg;
    int rv = nng_aio_result(a->aio);
    if (!a->sent && rv == 0) {
        a->sent = true;
        pthread_mutex_lock(&att_lock);
        a->refs++; /* the timer's */
        pthread_mutex_unlock(&att_lock);
        nng_sleep_aio((nng_duration)a->m->cfg.launch_timeout_ms, a->taio);
        nng_aio_set_timeout(a->aio, (nng_duration)(a->m->cfg.launch_timeout_ms + ATTEMPT_LATE_MS));
        nng_ctx_recv(a->ctx, a->aio);
        return;
    }
    nng_msg *msg = NULL;
    if (!a->sent)
        nng_msg_free(nng_aio_get_msg(a->aio));
    else if (rv == 0)
        msg = nng_aio_get_msg(a->aio);
    if (a->sent)
        nng_aio_cancel(a->taio);
    void *owner = att_take_owner(a);
    if (owner != NULL)
        a->done(owner, msg,
                rv == 0                           ? ""
                : rv == NNG_ETIMEDOUT && !a->sent ? "agent not connected"
                : rv == NNG_ETIMEDOUT             ? "launch timed out"
                                                  : nng_strerror(rv));
    else if (msg != NULL)
        att_late(a, msg);
    att_release(a);
}

static void att_timer_cb(void *arg)
{
    attempt *a = arg;
    if (nng_aio_result(a->taio) == 0) {
        void *owner = att_take_owner(a);
        if (owner != NULL) {
            /* abandoned: ask the agent to stop what it may have started (a
             * reply that still comes is stopped again by att_late) */
            master_agent_stop(a->m, a->server, a->endpoint, a->session);
            a->done(owner, NULL, "launch timed out");
        }
    }
    att_release(a);
}

bool attempt_start(master *m, const char *server, const char *endpoint, const char *session,
                   nng_msg *msg, attempt_done_fn done, void *owner, const char **why)
{
    attempt *a = lb_xcalloc(1, sizeof *a);
    a->m = m;
    a->done = done;
    a->owner = owner;
    a->refs = 1;
    snprintf(a->server, sizeof a->server, "%s", server);
    snprintf(a->endpoint, sizeof a->endpoint, "%s", endpoint);
    snprintf(a->session, sizeof a->session, "%s", session);
    if (!master_agent_ctx(m, server, endpoint, &a->ctx)) {
        *why = "agent unreachable";
        goto fail;
    }
    if (nng_aio_alloc(&a->aio, att_cb, a) != 0 || nng_aio_alloc(&a->taio, att_timer_cb, a) != 0) {
        *why = "out of memory";
        nng_ctx_close(a->ctx);
        nng_aio_free(a->aio);
        goto fail;
    }
    pthread_mutex_lock(&att_lock);
    a->next = att_live;
    if (att_live != NULL)
        att_live->prev = a;
    att_live = a;
    pthread_mutex_unlock(&att_lock);
    nng_aio_set_msg(a->aio, msg);
    nng_aio_set_timeout(a->aio, AGENT_SEND_TIMEOUT_MS);
    nng_ctx_send(a->ctx, a->aio);
    return true;
fail:
    nng_msg_free(msg);
    free(a);
    return false;
}

void attempt_stop_all(master *m)
{
    (void)m;
    pthread_mutex_lock(&att_lock);
    size_t n = 0;
    for (attempt *a = att_live; a != NULL; a = a->next)
        n++;
    attempt **all = lb_xcalloc(n + 1, sizeof *all);
    n = 0;
    for (attempt *a = att_live; a != NULL; a = a->next) {
        a->owner = NULL; /* no done call from here on */
        a->refs++;       /* ours, so it outlives the stops below */
        all[n++] = a;
    }
    pthread_mutex_unlock(&att_lock);
    for (size_t i = 0; i < n; i++) {
        /* the send/receive first: its callback may still start the timer */
        nng_aio_stop(all[i]->aio);
        nng_aio_stop(all[i]->taio);
        att_release(all[i]);
    }
    free(all);
}
