/*
 * Clients: each thread asks the slave at --client-rate requests per second;
 * with probability --new-ratio it is a new client id (a new session), else
 * the same client again (a sticky repeat). Every session a client was served
 * is released through the slave when the run ends, so nothing is left behind.
 */
#include "lg.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LG_CALL_TIMEOUT_MS 15000

typedef struct held {
    char client[64];
    char session[64];
} held;

typedef struct client_thread {
    lg *g;
    int idx;
    nng_socket sock;
    held *held;
    size_t n_held, cap_held;
} client_thread;

static client_thread *threads;

static void remember(client_thread *t, const char *client, const char *session)
{
    for (size_t i = 0; i < t->n_held; i++)
        if (strcmp(t->held[i].client, client) == 0) {
            snprintf(t->held[i].session, sizeof t->held[i].session, "%s", session);
            return;
        }
    if (t->n_held == t->cap_held) {
        t->cap_held = t->cap_held ? t->cap_held * 2 : 16;
        t->held = realloc(t->held, t->cap_held * sizeof *t->held);
        if (t->held == NULL)
            abort();
    }
    held *h = &t->held[t->n_held++];
    snprintf(h->client, sizeof h->client, "%s", client);
    snprintf(h->session, sizeof h->session, "%s", session);
}

static void request(client_thread *t, const char *client, bool fresh)
{
    lg *g = t->g;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    cr.client_id = (char *)client;
    cr.app = (char *)g->app;
    cr.location = (char *)g->location;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = &cr;
    lb_errmsg em = {{0}};
    atomic_fetch_add(fresh ? &g->new_req : &g->sticky_req, 1);
    atomic_fetch_add(&g->requests, 1);
    if (wire_call(t->sock, &env, LG_CALL_TIMEOUT_MS, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK ||
        rep->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
        atomic_fetch_add(&g->errors, 1);
        if (!g->quiet)
            fprintf(stderr, "lb-loadgen: request for %s: %s\n", client,
                    em.text[0] ? em.text : "not an instruction");
    } else if (rep->instruction->action == LB__ACTION__SERVE) {
        atomic_fetch_add(&g->serve, 1);
        remember(t, client, rep->instruction->session_id);
    } else if (rep->instruction->action == LB__ACTION__REDIRECT) {
        atomic_fetch_add(&g->redirect, 1); /* not followed: use --location of the slave */
        remember(t, client, rep->instruction->session_id);
    } else {
        atomic_fetch_add(&g->reject, 1);
    }
    wire_free(&rep);
}

static void release_all(client_thread *t)
{
    for (size_t i = 0; i < t->n_held; i++) {
        if (t->held[i].session[0] == '\0')
            continue;
        Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
        rr.session_id = t->held[i].session;
        rr.client_id = t->held[i].client;
        Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
        env.version = WIRE_VERSION;
        env.request_id = wire_next_id();
        env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
        env.release_request = &rr;
        lb_errmsg em = {{0}};
        if (wire_call(t->sock, &env, LG_CALL_TIMEOUT_MS, WIRE_TRANSPORT_MAX, &rep, &em) == LB_OK &&
            rep->body_case == LB__ENVELOPE__BODY_SESSION_REPLY && rep->session_reply->ok)
            atomic_fetch_add(&t->g->released, 1);
        wire_free(&rep);
    }
}

static void *client_main(void *arg)
{
    client_thread *t = arg;
    lg *g = t->g;
    uint64_t rng = 0x2545f4914f6cdd1dull * (uint64_t)(t->idx + 1) ^ (uint64_t)lb_wall_ms();
    char client[64];
    int k = 0;
    snprintf(client, sizeof client, "lg-%s-c%d-%d", g->tag, t->idx, k);
    bool fresh = true;
    int64_t period = g->client_rate > 0 ? (int64_t)(1000.0 / g->client_rate) : 1000;
    /* start spread over one period so the clients do not ask in lockstep */
    int64_t next = lb_mono_ms() + (int64_t)(lg_rand01(&rng) * (double)period);
    while (!atomic_load(&g->stopping)) {
        int64_t now = lb_mono_ms();
        if (now < next) {
            lb_sleep_ms(next - now < 50 ? next - now : 50);
            continue;
        }
        next += period;
        if (next < now)
            next = now; /* behind: do not burst to catch up */
        request(t, client, fresh);
        fresh = lg_rand01(&rng) < g->new_ratio;
        if (fresh)
            snprintf(client, sizeof client, "lg-%s-c%d-%d", g->tag, t->idx, ++k);
    }
    release_all(t);
    return NULL;
}

int lg_clients_start(lg *g)
{
    if (g->clients <= 0)
        return 0;
    threads = lb_xcalloc((size_t)g->clients, sizeof *threads);
    g->client_threads = lb_xcalloc((size_t)g->clients, sizeof *g->client_threads);
    for (int i = 0; i < g->clients; i++) {
        client_thread *t = &threads[i];
        t->g = g;
        t->idx = i;
        lb_errmsg em = {{0}};
        if (wire_req_dial_to(g->slave, WIRE_ROLE_SLAVE, NULL, &t->sock, &em) != LB_OK) {
            fprintf(stderr, "lb-loadgen: slave %s: %s\n", g->slave, em.text);
            g->clients = i; /* the ones running are joined by lg_clients_stop */
            return -1;
        }
        if (pthread_create(&g->client_threads[i], NULL, client_main, t) != 0) {
            nng_close(t->sock);
            g->clients = i;
            return -1;
        }
    }
    return 0;
}

void lg_clients_stop(lg *g)
{
    if (g->clients <= 0 || threads == NULL)
        return;
    for (int i = 0; i < g->clients; i++) {
        pthread_join(g->client_threads[i], NULL);
        nng_close(threads[i].sock);
        free(threads[i].held);
    }
    free(threads);
    free(g->client_threads);
    threads = NULL;
}
