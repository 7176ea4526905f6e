/*
 * lb-bench-path: P3 and P2 of issue 10, each against a baseline measured in
 * the same run over the same transport.
 *
 *   lb-bench-path --slave ADDR --master ADDR --slave-id ID [--location ZONE]
 *                 [--app echo] [--pool-app pecho] [--n 400] [--fresh 40]
 *                 [--secs 2] [--pool-wait-ms 3000]
 *
 * P3 (latency, one request at a time): end to end client -> slave -> master ->
 * answer, p50 and p99, divided by one nng round trip (a StatsRequest the slave
 * answers itself) measured just before: sticky repeats (--n) and new sessions
 * of a pooled app (--fresh, a pause after each so the pool refills; not timed).
 * P2 (throughput at the master, concurrency 1, 16, 64): SelectionRequests
 * straight to the master per second divided by StatsRequest round trips per
 * second to the same master socket (an nng echo through the same daemon) at the
 * same concurrency: sticky (one client per thread, --secs each) and new
 * sessions of the pooled app (bounded: --fresh per level, then released so
 * the pool refills for the next level).
 * Bounded in count and time; prints one line per figure and RESULT lines.
 */
#include "common/util.h"
#include "wire/wire.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum op { OP_STATS, OP_CLIENT, OP_SELECT } op;

typedef struct cfg {
    const char *slave, *master, *slave_id, *location, *app, *pool_app;
    int n, fresh, secs, pool_wait_ms;
} cfg;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* One call; the new session's id goes to sid (when not NULL). */
static bool call(const cfg *c, nng_socket s, op kind, const char *app, const char *client,
                 char *sid, size_t sid_cap)
{
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__SelectionRequest sr = LB__SELECTION_REQUEST__INIT;
    Lb__StatsRequest st = LB__STATS_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    cr.client_id = (char *)client;
    cr.app = (char *)app;
    cr.location = (char *)c->location;
    if (kind == OP_STATS) {
        env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
        env.stats_request = &st;
    } else if (kind == OP_CLIENT) {
        env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
        env.client_request = &cr;
    } else {
        sr.request = &cr;
        sr.slave_id = (char *)c->slave_id;
        env.body_case = LB__ENVELOPE__BODY_SELECTION_REQUEST;
        env.selection_request = &sr;
    }
    lb_errmsg em = {{0}};
    bool ok = wire_call(s, &env, 30000, WIRE_TRANSPORT_MAX, &rep, &em) == LB_OK;
    if (ok && kind == OP_STATS)
        ok = rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY;
    else if (ok)
        ok = rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION &&
             rep->instruction->action != LB__ACTION__REJECT;
    if (ok && sid != NULL && kind != OP_STATS)
        snprintf(sid, sid_cap, "%s", rep->instruction->session_id);
    if (!ok)
        fprintf(stderr, "call failed: %s\n",
                em.text[0]                                                ? em.text
                : rep && rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION ? rep->instruction->reason
                                                                          : "unexpected answer");
    wire_free(&rep);
    return ok;
}

static void release(nng_socket s, const char *sid)
{
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    rr.session_id = (char *)sid;
    env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
    env.release_request = &rr;
    wire_call(s, &env, 10000, WIRE_TRANSPORT_MAX, &rep, NULL);
    wire_free(&rep);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct lat {
    double p50, p99;
} lat;

static lat pct(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    lat l = {v[n / 2], v[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1]};
    return l;
}

/* P3: n sequential calls of one kind on one socket. */
static lat p3_series(const cfg *c, nng_socket s, op kind, const char *app, bool fresh, int n,
                     int *errors)
{
    double *v = lb_xcalloc((size_t)n, sizeof *v);
    char client[64], sid[80];
    for (int i = 0; i < n; i++) {
        snprintf(client, sizeof client, fresh ? "p3-fresh-%d-%d" : "p3-sticky-%d", (int)getpid(),
                 i);
        double t0 = now_us();
        *errors += !call(c, s, kind, app, client, sid, sizeof sid);
        v[i] = now_us() - t0;
        if (fresh) /* untimed: the pool refills before the next new client */
            usleep((useconds_t)c->pool_wait_ms * 1000 / (unsigned)(c->fresh > 0 ? c->fresh : 1) +
                   20000);
    }
    lat l = pct(v, n);
    free(v);
    return l;
}

typedef struct p2 {
    const cfg *c;
    const char *addr;
    op kind;
    const char *app;
    bool fresh;
    int id;
    double until_us;
    atomic_int *budget; /* fresh: calls left */
    atomic_long done;
    char (*sids)[80];
    atomic_int *n_sids;
} p2;

typedef struct p2_thread {
    p2 *run;
    int id;
} p2_thread;

static void *p2_worker(void *arg)
{
    p2_thread *t = arg;
    p2 *r = t->run;
    nng_socket s;
    if (wire_req_dial(r->addr, &s, NULL) != LB_OK)
        return NULL;
    char client[64], sid[80];
    for (int i = 0;; i++) {
        if (r->fresh ? atomic_fetch_sub(r->budget, 1) <= 0 : now_us() >= r->until_us)
            break;
        snprintf(client, sizeof client, r->fresh ? "p2-fresh-%d-%d-%d" : "p2-sticky-%d-%d",
                 (int)getpid(), t->id, i);
        if (call(r->c, s, r->kind, r->app, client, sid, sizeof sid)) {
            atomic_fetch_add(&r->done, 1);
            if (r->fresh)
                snprintf(r->sids[atomic_fetch_add(r->n_sids, 1)], 80, "%s", sid);
        }
    }
    nng_close(s);
    return NULL;
}

/* Calls per second at concurrency conc. */
static double p2_rate(const cfg *c, op kind, const char *app, bool fresh, int conc,
                      char (*sids)[80], atomic_int *n_sids)
{
    atomic_int budget = c->fresh;
    p2 r = {.c = c,
            .addr = c->master,
            .kind = kind,
            .app = app,
            .fresh = fresh,
            .budget = &budget,
            .sids = sids,
            .n_sids = n_sids};
    atomic_init(&r.done, 0);
    pthread_t th[64];
    p2_thread ts[64];
    double t0 = now_us();
    r.until_us = t0 + c->secs * 1e6;
    for (int i = 0; i < conc; i++) {
        ts[i] = (p2_thread){&r, i};
        pthread_create(&th[i], NULL, p2_worker, &ts[i]);
    }
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    return (double)atomic_load(&r.done) / ((now_us() - t0) / 1e6);
}

static void run_p3(const cfg *c)
{
    nng_socket s;
    if (wire_req_dial(c->slave, &s, NULL) != LB_OK) {
        fprintf(stderr, "cannot dial %s\n", c->slave);
        exit(1);
    }
    int errors = 0;
    call(c, s, OP_CLIENT, c->app, "p3-warm", NULL, 0); /* connections up */
    lat base = p3_series(c, s, OP_STATS, c->app, false, c->n, &errors);
    lat sticky = p3_series(c, s, OP_CLIENT, c->app, false, c->n, &errors);
    lat base2 = p3_series(c, s, OP_STATS, c->app, false, c->n, &errors);
    lat fresh = p3_series(c, s, OP_CLIENT, c->pool_app, true, c->fresh, &errors);
    nng_close(s);
    double b50 = (base.p50 + base2.p50) / 2, b99 = (base.p99 + base2.p99) / 2;
    printf("P3 latency (us), one at a time over tcp, client -> slave -> master -> answer\n");
    printf("  %-34s p50 %8.0f  p99 %8.0f\n", "nng round trip (slave stats)", b50, b99);
    printf("  %-34s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", "sticky repeat", sticky.p50,
           sticky.p99, sticky.p50 / b50, sticky.p99 / b99);
    printf("  %-34s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", "new session (pool)",
           fresh.p50, fresh.p99, fresh.p50 / b50, fresh.p99 / b99);
    printf("RESULT P3 sticky_p50_ratio=%.2f (goal <= 3) pool_p50_ratio=%.2f (goal <= 4) "
           "sticky_p99_ratio=%.2f pool_p99_ratio=%.2f errors=%d\n",
           sticky.p50 / b50, fresh.p50 / b50, sticky.p99 / b99, fresh.p99 / b99, errors);
}

static void run_p2(const cfg *c)
{
    static const int levels[] = {1, 16, 64};
    char(*sids)[80] = lb_xcalloc((size_t)c->fresh + 64, 80);
    nng_socket ms;
    if (wire_req_dial(c->master, &ms, NULL) != LB_OK) {
        fprintf(stderr, "cannot dial %s\n", c->master);
        exit(1);
    }
    printf("P2 master throughput (calls/s) over tcp, straight to the master\n");
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        int conc = levels[k];
        atomic_int n_sids = 0;
        double echo = p2_rate(c, OP_STATS, c->app, false, conc, NULL, NULL);
        double sticky = p2_rate(c, OP_SELECT, c->app, false, conc, NULL, NULL);
        double fresh = p2_rate(c, OP_SELECT, c->pool_app, true, conc, sids, &n_sids);
        double echo2 = p2_rate(c, OP_STATS, c->app, false, conc, NULL, NULL);
        double e = (echo + echo2) / 2;
        printf("  concurrency %2d: echo %8.0f  sticky %8.0f (%.2f)  new from pool %8.0f (%.2f)\n",
               conc, e, sticky, sticky / e, fresh, fresh / e);
        printf("RESULT P2 c=%d sticky_ratio=%.2f (goal >= 0.6) pool_ratio=%.2f (goal >= 0.4)\n",
               conc, sticky / e, fresh / e);
        for (int i = 0; i < atomic_load(&n_sids); i++) /* the pool refills for the next level */
            release(ms, sids[i]);
        usleep((useconds_t)c->pool_wait_ms * 1000);
    }
    nng_close(ms);
    free(sids);
}

int main(int argc, char **argv)
{
    cfg c = {.location = "",
             .app = "echo",
             .pool_app = "pecho",
             .n = 400,
             .fresh = 40,
             .secs = 2,
             .pool_wait_ms = 3000};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--slave") == 0)
            c.slave = v;
        else if (strcmp(k, "--master") == 0)
            c.master = v;
        else if (strcmp(k, "--slave-id") == 0)
            c.slave_id = v;
        else if (strcmp(k, "--location") == 0)
            c.location = v;
        else if (strcmp(k, "--app") == 0)
            c.app = v;
        else if (strcmp(k, "--pool-app") == 0)
            c.pool_app = v;
        else if (strcmp(k, "--n") == 0)
            c.n = atoi(v);
        else if (strcmp(k, "--fresh") == 0)
            c.fresh = atoi(v);
        else if (strcmp(k, "--secs") == 0)
            c.secs = atoi(v);
        else if (strcmp(k, "--pool-wait-ms") == 0)
            c.pool_wait_ms = atoi(v);
    }
    if (c.slave == NULL || c.master == NULL || c.slave_id == NULL || c.n <= 0 || c.fresh <= 0 ||
        c.secs <= 0 || c.secs > 30 || c.n > 100000 || c.fresh > 10000) {
        fprintf(stderr, "usage: lb-bench-path --slave ADDR --master ADDR --slave-id ID "
                        "[--location Z] [--app A] [--pool-app A] [--n N] [--fresh N] [--secs S] "
                        "[--pool-wait-ms MS]\n");
        return 2;
    }
    run_p3(&c);
    run_p2(&c);
    return 0;
}
