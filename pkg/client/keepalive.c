/*
 * Keepalive: sessions carry an expiry at the master (no lease each); a thread
 * renews every held session when a third of its remaining life is left to
 * go, so a held session never expires while a slave is reachable. Sessions
 * the master no longer knows are dropped from the table (a sticky notices on
 * its next reconnect, which asks again).
 */
#include "client_int.h"

#include "common/util.h"
#include "wire/wire.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

lb_err lbc_release_session(lb_client *c, const char *session, const char *client_id)
{
    Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
    rr.session_id = (char *)session;
    rr.client_id = (char *)(client_id != NULL ? client_id : c->client_id);
    rr.token = c->token;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
    env.release_request = &rr;
    lb_err err = lbc_call_any(c, &env, &rep);
    if (err != LB_OK)
        return err;
    if (rep->body_case != LB__ENVELOPE__BODY_SESSION_REPLY)
        err = lbc_fail(LB_EPROTO, "release: unexpected answer");
    else if (!rep->session_reply->ok)
        err = lbc_fail(LB_ENOTFOUND, "release %s: %s", session, rep->session_reply->error);
    wire_free(&rep);
    return err;
}

/* Renews one session; updates its table entry (or drops it when unknown). */
static void renew_one(lb_client *c, const lbc_held *h)
{
    Lb__RenewRequest rr = LB__RENEW_REQUEST__INIT;
    char *ids[1] = {(char *)h->session};
    rr.client_id = (char *)h->client_id;
    rr.token = c->token;
    rr.session_ids = ids;
    rr.n_session_ids = 1;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.body_case = LB__ENVELOPE__BODY_RENEW_REQUEST;
    env.renew_request = &rr;
    lb_err err = lbc_call_any(c, &env, &rep);
    int64_t now = lb_wall_ms();
    bool gone = err == LB_OK && rep->body_case == LB__ENVELOPE__BODY_SESSION_REPLY &&
                rep->session_reply->n_unknown > 0;
    int64_t expires = err == LB_OK && rep->body_case == LB__ENVELOPE__BODY_SESSION_REPLY
                          ? rep->session_reply->expires_ms
                          : 0;
    wire_free(&rep);
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_held; i++) {
        lbc_held *x = &c->held[i];
        if (strcmp(x->session, h->session) != 0)
            continue;
        if (gone) {
            c->held[i] = c->held[--c->n_held];
        } else if (expires > now) {
            x->expires_ms = expires;
            x->renew_at = now + (expires - now) / 3;
        } else {
            x->renew_at = now + 1000; /* no slave answered: try again soon */
        }
        break;
    }
    pthread_mutex_unlock(&c->lock);
}

static void *keepalive_main(void *arg)
{
    lb_client *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        int64_t now = lb_wall_ms(), next = now + 60000;
        lbc_held due;
        bool have = false;
        for (size_t i = 0; i < c->n_held && !have; i++) {
            if (c->held[i].renew_at <= now) {
                due = c->held[i];
                have = true;
            } else if (c->held[i].renew_at < next) {
                next = c->held[i].renew_at;
            }
        }
        if (have) {
            pthread_mutex_unlock(&c->lock);
            renew_one(c, &due);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
        pthread_cond_timedwait(&c->wake, &c->lock, &ts);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int lbc_keepalive_start(lb_client *c)
{
    return pthread_create(&c->ka_thread, NULL, keepalive_main, c) == 0 ? 0 : -1;
}

void lbc_keepalive_stop(lb_client *c)
{
    if (!c->keepalive)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->ka_thread, NULL);
    c->keepalive = false;
}
