/*
 * lb-bench-path: P3 and P2 of issue 10, each against a baseline measured in
 * the same run over the same transport.
 *
 *   lb-bench-path --slave ADDR --master ADDR --slave-id ID [--location ZONE]
 *                 [--app echo] [--pool-app pecho] [--n 400] [--fresh 40]
 *                 [--secs 2] [--pool-wait-ms 3000] [--burst 0] [--rounds 1]
 *                 [--only p3|p2]
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
 * the pool refills for the next level; --rounds bursts per level, the median
 * rate taken, against echo bursts of the same shape).
 * Bounded in count and time; prints one line per figure and RESULT lines.
 */
#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <nng/transport/tcp/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum op { OP_STATS, OP_CLIENT, OP_SELECT, OP_ECHO } op;

#define MAX_ROUNDS 9

typedef struct cfg {
    const char *slave, *master, *slave_id, *location, *app, *pool_app;
    int n, fresh, secs, pool_wait_ms;
    int burst;        /* P3: new sessions back to back after a refill pause (0: none) */
    int rounds;       /* P2: new-session bursts per level (median taken), 1..MAX_ROUNDS */
    const char *only; /* "p3" or "p2": that part alone */
    char echo[64];    /* the in-process echo, "" with TLS */
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
    if (kind == OP_ECHO) { /* a ClientRequest comes back as it went */
        env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
        env.client_request = &cr;
    } else if (kind == OP_STATS) {
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
    if (ok && kind == OP_ECHO)
        ok = rep->body_case == LB__ENVELOPE__BODY_CLIENT_REQUEST;
    else if (ok && kind == OP_STATS)
        ok = rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY;
    else if (ok)
        ok = rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION &&
             rep->instruction->action != LB__ACTION__REJECT;
    if (ok && sid != NULL && kind != OP_STATS && kind != OP_ECHO)
        snprintf(sid, sid_cap, "%s", rep->instruction->session_id);
    if (!ok)
        fprintf(stderr, "call failed: %s\n",
                em.text[0]                                                ? em.text
                : rep && rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION ? rep->instruction->reason
                                                                          : "unexpected answer");
    wire_free(&rep);
    return ok;
}

/* A new session taken by P2, released (by its client: the master's listen
 * refuses a release that names no client) before the next level. */
typedef struct held_sid {
    char sid[80];
    char client[80];
} held_sid;

static void release(nng_socket s, const held_sid *h)
{
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    rr.session_id = (char *)h->sid;
    rr.client_id = (char *)h->client;
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

static double median(double *v, int n)
{
    double w[MAX_ROUNDS];
    memcpy(w, v, (size_t)n * sizeof *w);
    qsort(w, (size_t)n, sizeof *w, cmp);
    return w[n / 2];
}

static lat pct(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    lat l = {v[n / 2], v[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1]};
    return l;
}

/* P3: n sequential calls of one kind on one socket. */
static lat p3_series(const cfg *c, nng_socket s, op kind, const char *app, bool fresh, bool pause,
                     int n, int *errors)
{
    double *v = lb_xcalloc((size_t)n, sizeof *v);
    char client[64], sid[80];
    for (int i = 0; i < n; i++) {
        snprintf(client, sizeof client, fresh ? "p3-fresh-%d-%d" : "p3-sticky-%d", (int)getpid(),
                 i);
        double t0 = now_us();
        *errors += !call(c, s, kind, app, client, sid, sizeof sid);
        v[i] = now_us() - t0;
        if (fresh || pause) /* untimed: the pool refills before the next new client */
            usleep((useconds_t)c->pool_wait_ms * 1000 / (unsigned)(c->fresh > 0 ? c->fresh : 1) +
                   20000);
    }
    lat l = pct(v, n);
    free(v);
    return l;
}

/* P3 of a burst: k new sessions of the pooled app back to back, after an
 * untimed pause so the leader's stock and the pools refill: what first-time
 * clients arriving together see while the stock (stock: {app: N} per server)
 * holds. Not paused between calls, so every hop is warm, as for the echo. */
static lat p3_burst(const cfg *c, nng_socket s, int k, int *errors)
{
    usleep((useconds_t)c->pool_wait_ms * 1000);
    double *v = lb_xcalloc((size_t)k, sizeof *v);
    char client[64], sid[80];
    for (int i = 0; i < k; i++) {
        snprintf(client, sizeof client, "p3-burst-%d-%d", (int)getpid(), i);
        double t0 = now_us();
        *errors += !call(c, s, OP_CLIENT, c->pool_app, client, sid, sizeof sid);
        v[i] = now_us() - t0;
    }
    lat l = pct(v, k);
    free(v);
    return l;
}

typedef struct p2 {
    const cfg *c;
    const char *addr;
    op kind;
    const char *app;
    bool fresh;    /* new sessions: their ids kept for release */
    bool budgeted; /* a fixed number of calls (budget), not secs of them */
    int id;
    atomic_int *budget; /* budgeted: calls left */
    atomic_long done;
    held_sid *sids;
    atomic_int *n_sids;
    pthread_barrier_t go; /* every thread connected (TLS handshakes untimed) */
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
    bool dialed = wire_req_dial(r->addr, &s, NULL) == LB_OK;
    char client[64], sid[80];
    /* connected before the clock starts: a first call per socket finishes the
     * dial (and the TLS handshake) */
    if (dialed &&
        !call(r->c, s, r->kind == OP_ECHO ? OP_ECHO : OP_STATS, r->app, "p2-warm", NULL, 0))
        fprintf(stderr, "warm-up call failed\n");
    pthread_barrier_wait(&r->go);
    double until = now_us() + r->c->secs * 1e6;
    for (int i = 0; dialed; i++) {
        if (r->budgeted ? atomic_fetch_sub(r->budget, 1) <= 0 : now_us() >= until)
            break;
        snprintf(client, sizeof client, r->fresh ? "p2-fresh-%d-%d-%d" : "p2-sticky-%d-%d",
                 (int)getpid(), t->id, i);
        if (call(r->c, s, r->kind, r->app, client, sid, sizeof sid)) {
            atomic_fetch_add(&r->done, 1);
            if (r->fresh) {
                held_sid *h = &r->sids[atomic_fetch_add(r->n_sids, 1)];
                snprintf(h->sid, sizeof h->sid, "%s", sid);
                snprintf(h->client, sizeof h->client, "%s", client);
            }
        }
    }
    if (dialed)
        nng_close(s);
    return NULL;
}

/* A counter of the daemon behind s (StatsRequest), 0 when absent or on error. */
static uint64_t stat_of(nng_socket s, const char *name)
{
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__StatsRequest st = LB__STATS_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &st;
    uint64_t v = 0;
    if (wire_call(s, &env, 5000, WIRE_TRANSPORT_MAX, &rep, NULL) == LB_OK &&
        rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY)
        for (size_t i = 0; i < rep->stats_reply->n_stats; i++)
            if (strcmp(rep->stats_reply->stats[i]->name, name) == 0)
                v = rep->stats_reply->stats[i]->value;
    wire_free(&rep);
    return v;
}

/* Calls per second at concurrency conc: for secs, or (budgeted) c->fresh
 * calls in all, the shape of the new-session run (one burst of c->fresh calls
 * spread over conc threads woken together). */
static double p2_rate_shaped(const cfg *c, op kind, const char *app, bool fresh, bool budgeted,
                             int conc, held_sid *sids, atomic_int *n_sids)
{
    atomic_int budget = c->fresh;
    p2 r = {.c = c,
            .addr = kind == OP_ECHO ? c->echo : c->master,
            .kind = kind,
            .app = app,
            .fresh = fresh,
            .budgeted = budgeted,
            .budget = &budget,
            .sids = sids,
            .n_sids = n_sids};
    atomic_init(&r.done, 0);
    pthread_t th[64];
    p2_thread ts[64];
    pthread_barrier_init(&r.go, NULL, (unsigned)conc + 1);
    for (int i = 0; i < conc; i++) {
        ts[i] = (p2_thread){&r, i};
        pthread_create(&th[i], NULL, p2_worker, &ts[i]);
    }
    pthread_barrier_wait(&r.go);
    double t0 = now_us();
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.go);
    return (double)atomic_load(&r.done) / ((now_us() - t0) / 1e6);
}

static double p2_rate(const cfg *c, op kind, const char *app, bool fresh, int conc, held_sid *sids,
                      atomic_int *n_sids)
{
    return p2_rate_shaped(c, kind, app, fresh, fresh, conc, sids, n_sids);
}

/* ---- an nng echo on the same transport (plain TCP): the round trip baseline
 * without any daemon work; 64 REP contexts answer in nng's callbacks, as the
 * master's do ---- */

#define ECHO_CTXS 64
typedef struct echo_ctx {
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
} echo_ctx;

static nng_socket echo_sock;
static echo_ctx echo_ctxs[ECHO_CTXS];

static void echo_cb(void *arg)
{
    echo_ctx *e = arg;
    int rv = nng_aio_result(e->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (!e->sending && rv == 0) {
        e->sending = true;
        nng_ctx_send(e->ctx, e->aio); /* the message received goes back as is */
        return;
    }
    if (e->sending && rv != 0)
        nng_msg_free(nng_aio_get_msg(e->aio));
    e->sending = false;
    nng_ctx_recv(e->ctx, e->aio);
}

/* Starts the echo; its URL goes to url. */
static bool echo_start(char *url, size_t cap)
{
    nng_listener l;
    int port = 0;
    if (nng_rep0_open(&echo_sock) != 0 ||
        nng_listener_create(&l, echo_sock, "tcp://127.0.0.1:0") != 0 ||
        nng_listener_start(l, 0) != 0 ||
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
        return false;
    snprintf(url, cap, "tcp://127.0.0.1:%d", port);
    for (int i = 0; i < ECHO_CTXS; i++) {
        if (nng_ctx_open(&echo_ctxs[i].ctx, echo_sock) != 0 ||
            nng_aio_alloc(&echo_ctxs[i].aio, echo_cb, &echo_ctxs[i]) != 0)
            return false;
        nng_ctx_recv(echo_ctxs[i].ctx, echo_ctxs[i].aio);
    }
    return true;
}

static void echo_stop(void)
{
    for (int i = 0; i < ECHO_CTXS; i++)
        nng_aio_stop(echo_ctxs[i].aio);
    nng_close(echo_sock);
    for (int i = 0; i < ECHO_CTXS; i++)
        nng_aio_free(echo_ctxs[i].aio);
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
    /* the baseline: the in-process echo on plain TCP, else the slave's own
     * StatsRequest answer (heavier than an echo: every counter) */
    nng_socket bs = s;
    op bk = OP_STATS;
    if (c->echo[0] != '\0' && wire_req_dial(c->echo, &bs, NULL) == LB_OK)
        bk = OP_ECHO;
    else
        bs = s;
    const char *bname =
        bk == OP_ECHO ? "nng echo round trip (in-process)" : "nng round trip (slave stats)";
    call(c, bs, bk, c->app, "p3-warm", NULL, 0);
    lat base = p3_series(c, bs, bk, c->app, false, false, c->n, &errors);
    lat sticky = p3_series(c, s, OP_CLIENT, c->app, false, false, c->n, &errors);
    lat base2 = p3_series(c, bs, bk, c->app, false, false, c->n, &errors);
    lat pbase = p3_series(c, bs, bk, c->app, false, true, c->fresh, &errors);
    lat psticky = p3_series(c, s, OP_CLIENT, c->app, false, true, c->fresh, &errors);
    if (bk == OP_ECHO)
        nng_close(bs);
    lat fresh = p3_series(c, s, OP_CLIENT, c->pool_app, true, false, c->fresh, &errors);
    lat burst = {0, 0};
    if (c->burst > 0)
        burst = p3_burst(c, s, c->burst, &errors);
    nng_close(s);
    double b50 = (base.p50 + base2.p50) / 2, b99 = (base.p99 + base2.p99) / 2;
    printf("P3 latency (us), one at a time over %s, client -> slave -> master -> answer\n",
           wire_url_tls(c->slave) ? "tls+tcp" : "tcp");
    printf("  %-34s p50 %8.0f  p99 %8.0f\n", bname, b50, b99);
    printf("  %-34s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", "sticky repeat", sticky.p50,
           sticky.p99, sticky.p50 / b50, sticky.p99 / b99);
    printf("  %-34s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", "new session (pool)",
           fresh.p50, fresh.p99, fresh.p50 / b50, fresh.p99 / b99);
    printf("  %-34s p50 %8.0f  p99 %8.0f\n", "echo, paused like new sessions", pbase.p50,
           pbase.p99);
    printf("  %-34s p50 %8.0f  p99 %8.0f\n", "sticky, paused like new sessions", psticky.p50,
           psticky.p99);
    if (c->burst > 0) {
        char name[64];
        snprintf(name, sizeof name, "new session, %d back to back", c->burst);
        printf("  %-34s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", name, burst.p50,
               burst.p99, burst.p50 / b50, burst.p99 / b99);
        printf("RESULT P3 %s burst_p50_ratio=%.2f (goal <= 4) burst_p99_ratio=%.2f\n",
               wire_url_tls(c->slave) ? "tls" : "tcp", burst.p50 / b50, burst.p99 / b99);
    }
    printf("RESULT P3 %s sticky_p50_ratio=%.2f (goal <= 3) pool_p50_ratio=%.2f (goal <= 4) "
           "sticky_p99_ratio=%.2f pool_p99_ratio=%.2f errors=%d\n",
           wire_url_tls(c->slave) ? "tls" : "tcp", sticky.p50 / b50, fresh.p50 / b50,
           sticky.p99 / b99, fresh.p99 / b99, errors);
}

static void run_p2(const cfg *c)
{
    static const int levels[] = {1, 16, 64};
    held_sid *sids = lb_xcalloc((size_t)c->fresh + 64, sizeof *sids);
    nng_socket ms;
    if (wire_req_dial(c->master, &ms, NULL) != LB_OK) {
        fprintf(stderr, "cannot dial %s\n", c->master);
        exit(1);
    }
    printf("P2 master throughput (calls/s) over %s, straight to the master; echo: %s\n",
           wire_url_tls(c->master) ? "tls+tcp" : "tcp",
           c->echo[0] != '\0' ? "in-process nng echo" : "the master's StatsRequest answer");
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        int conc = levels[k];
        op bk = c->echo[0] != '\0' ? OP_ECHO : OP_STATS; /* see run_p3 */
        double echo = p2_rate(c, bk, c->app, false, conc, NULL, NULL);
        double sticky = p2_rate(c, OP_SELECT, c->app, false, conc, NULL, NULL);
        /* the new-session run is one burst of --fresh calls (the pool bounds it),
         * not secs of steady calls: its baseline is an echo burst of that shape.
         * A burst lasts ~10 ms, so one stall on 2 shared cores halves it: each
         * level runs --rounds bursts of both (the pool and stock refilled in
         * between) and takes the median rate of each. */
        double fr[MAX_ROUNDS], ebr[MAX_ROUNDS];
        uint64_t hits = 0, misses = 0;
        for (int r = 0; r < c->rounds; r++) {
            atomic_int n_sids = 0;
            uint64_t h0 = stat_of(ms, "master_stock_hits_total");
            uint64_t m0 = stat_of(ms, "master_stock_misses_total");
            fr[r] = p2_rate(c, OP_SELECT, c->pool_app, true, conc, sids, &n_sids);
            hits += stat_of(ms, "master_stock_hits_total") - h0;
            misses += stat_of(ms, "master_stock_misses_total") - m0;
            ebr[r] = p2_rate_shaped(c, bk, c->app, false, true, conc, NULL, NULL);
            for (int i = 0; i < atomic_load(&n_sids); i++) /* the pool refills */
                release(ms, &sids[i]);
            usleep((useconds_t)c->pool_wait_ms * 1000);
        }
        double fresh = median(fr, c->rounds), eb = median(ebr, c->rounds);
        double echo2 = p2_rate(c, bk, c->app, false, conc, NULL, NULL);
        double e = (echo + echo2) / 2;
        printf("  concurrency %2d: echo %8.0f  sticky %8.0f (%.2f)  new from pool %8.0f (%.2f; "
               "echo burst of %d %8.0f: %.2f; medians of %d rounds:",
               conc, e, sticky, sticky / e, fresh, fresh / e, c->fresh, eb, fresh / eb, c->rounds);
        for (int r = 0; r < c->rounds; r++)
            printf(" %.2f", fr[r] / ebr[r]);
        printf(")\n");
        printf("RESULT P2 %s c=%d sticky_ratio=%.2f (goal >= 0.6) pool_ratio=%.2f (goal >= 0.4, "
               "over an echo burst of the same shape) pool_over_steady_echo=%.2f stock_hits=%llu "
               "stock_misses=%llu\n",
               wire_url_tls(c->master) ? "tls" : "tcp", conc, sticky / e, fresh / eb, fresh / e,
               (unsigned long long)hits, (unsigned long long)misses);
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
             .pool_wait_ms = 3000,
             .rounds = 1};
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
        else if (strcmp(k, "--burst") == 0)
            c.burst = atoi(v);
        else if (strcmp(k, "--rounds") == 0)
            c.rounds = atoi(v);
        else if (strcmp(k, "--only") == 0)
            c.only = v;
    }
    if (c.slave == NULL || c.master == NULL || c.slave_id == NULL || c.n <= 0 || c.fresh <= 0 ||
        c.secs <= 0 || c.secs > 30 || c.n > 100000 || c.fresh > 10000 || c.burst < 0 ||
        c.burst > 1000 || c.rounds < 1 || c.rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: lb-bench-path --slave ADDR --master ADDR --slave-id ID "
                        "[--location Z] [--app A] [--pool-app A] [--n N] [--fresh N] [--secs S] "
                        "[--pool-wait-ms MS] [--burst N] [--rounds R] [--only p3|p2]\n");
        return 2;
    }
    /* TLS from LBCP_TLS_CA/CERT/KEY (an operator certificate may call slaves
     * and masters), as lbctl does */
    wire_tls *tls = NULL;
    lb_errmsg em = {{0}};
    if (wire_tls_env_default(&tls, &em) != LB_OK) {
        fprintf(stderr, "tls: %s\n", em.text);
        return 2;
    }
    /* an in-process echo only on plain TCP (a TLS listener would need a
     * server certificate of its own) */
    if (!wire_url_tls(c.master) && !echo_start(c.echo, sizeof c.echo)) {
        fprintf(stderr, "cannot start the echo\n");
        return 1;
    }
    if (c.only == NULL || strcmp(c.only, "p3") == 0)
        run_p3(&c);
    if (c.only == NULL || strcmp(c.only, "p2") == 0)
        run_p2(&c);
    if (c.echo[0] != '\0')
        echo_stop();
    wire_tls_free(&tls);
    return 0;
}
