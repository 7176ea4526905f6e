/*
 * lb-bench-path: P3 and P2 of issue 10, each against a baseline measured in
 * the same run over the same transport.
 *
 *   lb-bench-path --slave ADDR --master ADDR --slave-id ID [--location ZONE]
 *                 [--app echo] [--pool-app pecho] [--n 500] [--fresh 600]
 *                 [--secs 2] [--p2-new 512] [--rounds 5] [--stock-full 0]
 *                 [--stock-wait-ms 60000]
 *                 [--only p3|p2]
 *
 * P3 (latency, one request at a time): end to end client -> slave -> master ->
 * answer, p50 and p99, divided by one nng round trip (the in-process echo on
 * plain TCP, else a StatsRequest the slave answers itself): --n sticky repeats
 * between two --n echo series, and --fresh new sessions of the pooled app back
 * to back (no pause: every hop warm, as for the echo), interleaved in chunks of
 * 100 with --fresh echoes so machine noise hits both; the bench first waits
 * until the leader's stock is full (--stock-full ready processes).
 * P2 (throughput at the master, concurrency 1, 16, 64): SelectionRequests
 * straight to the master per second divided by echo round trips per second at
 * the same concurrency: sticky for --secs against --secs of echo; new sessions
 * of the pooled app in --rounds runs of --p2-new calls, each run after the
 * stock is full again and paired with an echo run of the same number of calls
 * at the same concurrency (the order alternating per round), the ratio taken
 * over the totals (calls / seconds of each kind). New sessions are released
 * after each round (the stock refills for the next one).
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
#define P3_CHUNK 100 /* P3 alternates echoes and new sessions in chunks of this many */

typedef struct cfg {
    const char *slave, *master, *slave_id, *location, *app, *pool_app;
    int n;             /* P3: sticky repeats and each echo series */
    int fresh;         /* P3: new sessions back to back (and as many echoes) */
    int secs;          /* P2: seconds of sticky and of steady echo per level */
    int p2_new;        /* P2: new sessions per round (and echoes of the same shape) */
    int rounds;        /* P2: rounds per level, 1..MAX_ROUNDS */
    int stock_wait_ms; /* the longest wait for the stock to be full */
    int stock_full;    /* ready stock processes when full (all servers); 0: what a run takes */
    const char *only;  /* "p3" or "p2": that part alone */
    char echo[64];     /* the in-process echo, "" with TLS */
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

/* A new session taken by the bench, released (by its client: the master's
 * listen refuses a release that names no client) before the next round. */
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

static void release_all(nng_socket ms, held_sid *sids, int n)
{
    for (int i = 0; i < n; i++)
        release(ms, &sids[i]);
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

/* Counters of the daemon behind s (one StatsRequest): the value of each of
 * names[0..n) goes to out (0 when absent); false on error. */
static bool stats_of(nng_socket s, const char *const *names, uint64_t *out, size_t n)
{
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__StatsRequest st = LB__STATS_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &st;
    memset(out, 0, n * sizeof *out);
    bool ok = wire_call(s, &env, 5000, WIRE_TRANSPORT_MAX, &rep, NULL) == LB_OK &&
              rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY;
    for (size_t i = 0; ok && i < rep->stats_reply->n_stats; i++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(rep->stats_reply->stats[i]->name, names[k]) == 0)
                out[k] = rep->stats_reply->stats[i]->value;
    wire_free(&rep);
    return ok;
}

static const char *const stock_names[] = {"master_stock_launches_total{result=\"ok\"}",
                                          "master_stock_hits_total",
                                          "master_stock_dropped_total{why=\"dead\"}",
                                          "master_stock_dropped_total{why=\"out_of_selection\"}",
                                          "master_stock_dropped_total{why=\"not_leading\"}",
                                          "master_stock_misses_total"};

/* Ready stock at the master: launched ok, less taken and dropped (counters
 * only: StatsRequest carries no gauges). misses (when not NULL): the misses. */
static long stock_ready(nng_socket ms, uint64_t *misses)
{
    uint64_t v[6];
    if (!stats_of(ms, stock_names, v, 6))
        return -1;
    if (misses != NULL)
        *misses = v[5];
    return (long)v[0] - (long)v[1] - (long)v[2] - (long)v[3] - (long)v[4];
}

/* Waits (bounded by c->stock_wait_ms) until the stock is full (--stock-full,
 * else until it holds want ready processes), or stops growing for 3 s (it
 * holds less than asked: the figure then counts misses). A run takes less
 * than a full stock, so each server's share covers the policy's split.
 * Returns what it holds. Untimed. */
static long stock_wait(const cfg *c, nng_socket ms, long want)
{
    if (c->stock_full > 0)
        want = c->stock_full;
    double end = now_us() + c->stock_wait_ms * 1e3, grew = now_us();
    long have = stock_ready(ms, NULL), last = have;
    while (have < want && now_us() < end && now_us() - grew < 3e6) {
        usleep(100000);
        have = stock_ready(ms, NULL);
        if (have > last) {
            last = have;
            grew = now_us();
        }
    }
    usleep(200000); /* the last launches' refills and reports settle */
    return have;
}

/* P3: n sequential calls of one kind on one socket; latencies go to v. New
 * sessions (fresh) are kept in sids for release. */
static void p3_series(const cfg *c, nng_socket s, op kind, const char *app, bool fresh, int n,
                      double *v, held_sid *sids, int *n_sids, int *errors)
{
    char client[64], sid[80];
    for (int i = 0; i < n; i++) {
        snprintf(client, sizeof client, fresh ? "p3-fresh-%d-%d-%d" : "p3-sticky-%d", (int)getpid(),
                 fresh ? *n_sids : i, i);
        double t0 = now_us();
        bool ok = call(c, s, kind, app, client, sid, sizeof sid);
        v[i] = now_us() - t0;
        *errors += !ok;
        if (ok && fresh) {
            snprintf(sids[*n_sids].sid, sizeof sids[*n_sids].sid, "%s", sid);
            snprintf(sids[*n_sids].client, sizeof sids[*n_sids].client, "%s", client);
            (*n_sids)++;
        }
    }
}

typedef struct p2 {
    const cfg *c;
    const char *addr;
    op kind;
    const char *app;
    bool fresh;    /* new sessions: their ids kept for release */
    bool budgeted; /* a fixed number of calls (budget), not secs of them */
    int round;
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
        snprintf(client, sizeof client, r->fresh ? "p2-fresh-%d-%d-%d-%d" : "p2-sticky-%d-%d",
                 (int)getpid(), t->id, r->round, i);
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

/* One run at concurrency conc: secs of calls, or (budget > 0) budget calls
 * in all spread over conc threads woken together. The calls answered go to
 * *done and the seconds the run took to *secs. */
static void p2_run(const cfg *c, op kind, const char *app, int budget, int round, int conc,
                   held_sid *sids, atomic_int *n_sids, double *done, double *secs)
{
    atomic_int left = budget;
    p2 r = {.c = c,
            .addr = kind == OP_ECHO ? c->echo : c->master,
            .kind = kind,
            .app = app,
            .fresh = sids != NULL,
            .budgeted = budget > 0,
            .round = round,
            .budget = &left,
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
    *secs = (now_us() - t0) / 1e6;
    *done = (double)atomic_load(&r.done);
}

static double p2_rate(const cfg *c, op kind, const char *app, int conc)
{
    double done, secs;
    p2_run(c, kind, app, 0, 0, conc, NULL, NULL, &done, &secs);
    return done / secs;
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

static const char *transport(const char *url)
{
    return wire_url_tls(url) ? "tls" : "tcp";
}

static void run_p3(const cfg *c)
{
    nng_socket s, ms;
    if (wire_req_dial(c->slave, &s, NULL) != LB_OK ||
        wire_req_dial(c->master, &ms, NULL) != LB_OK) {
        fprintf(stderr, "cannot dial %s or %s\n", c->slave, c->master);
        exit(1);
    }
    int errors = 0, n_sids = 0;
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
    int n = c->n, k = c->fresh;
    double *v = lb_xcalloc((size_t)(3 * n + 2 * k), sizeof *v);
    double *eb = v, *st = v + n, *eb2 = v + 2 * n, *ef = v + 3 * n, *nf = v + 3 * n + k;
    held_sid *sids = lb_xcalloc((size_t)k, sizeof *sids);
    p3_series(c, bs, bk, c->app, false, n, eb, NULL, NULL, &errors);
    p3_series(c, s, OP_CLIENT, c->app, false, n, st, NULL, NULL, &errors);
    p3_series(c, bs, bk, c->app, false, n, eb2, NULL, NULL, &errors);
    /* new sessions back to back, in chunks alternating with as many echoes,
     * once the stock holds them all (untimed wait) */
    long held = stock_wait(c, ms, k);
    uint64_t h0[6], h1[6];
    stats_of(ms, stock_names, h0, 6);
    for (int i = 0; i < k; i += P3_CHUNK) {
        int m = k - i < P3_CHUNK ? k - i : P3_CHUNK;
        p3_series(c, bs, bk, c->app, false, m, ef + i, NULL, NULL, &errors);
        p3_series(c, s, OP_CLIENT, c->pool_app, true, m, nf + i, sids, &n_sids, &errors);
    }
    stats_of(ms, stock_names, h1, 6);
    if (bk == OP_ECHO)
        nng_close(bs);
    release_all(ms, sids, n_sids);
    lat sticky = pct(st, n), fresh = pct(nf, k), efl = pct(ef, k);
    memcpy(st, eb2, (size_t)n * sizeof *v); /* sticky's are read: both echo series in a row */
    lat base = pct(eb, 2 * n);              /* both echo series around the sticky one */
    nng_close(s);
    nng_close(ms);
    printf("P3 latency (us), one at a time over %s, client -> slave -> master -> answer\n",
           transport(c->slave));
    printf("  %-38s p50 %8.0f  p99 %8.0f\n", bname, base.p50, base.p99);
    printf("  %-38s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f\n", "sticky repeat", sticky.p50,
           sticky.p99, sticky.p50 / base.p50, sticky.p99 / base.p99);
    printf("  %-38s p50 %8.0f  p99 %8.0f\n", "echo, interleaved with new sessions", efl.p50,
           efl.p99);
    char name[80];
    snprintf(name, sizeof name, "new session, %d back to back", k);
    printf("  %-38s p50 %8.0f  p99 %8.0f   ratio p50 %.2f  p99 %.2f (stock held %ld: %llu hits, "
           "%llu misses)\n",
           name, fresh.p50, fresh.p99, fresh.p50 / efl.p50, fresh.p99 / efl.p99, held,
           (unsigned long long)(h1[1] - h0[1]), (unsigned long long)(h1[5] - h0[5]));
    printf("RESULT P3 %s sticky_p50_ratio=%.2f (goal <= 3) pool_p50_ratio=%.2f (goal <= 4) "
           "sticky_p99_ratio=%.2f pool_p99_ratio=%.2f new_sessions=%d stock_hits=%llu "
           "stock_misses=%llu errors=%d\n",
           transport(c->slave), sticky.p50 / base.p50, fresh.p50 / efl.p50, sticky.p99 / base.p99,
           fresh.p99 / efl.p99, k, (unsigned long long)(h1[1] - h0[1]),
           (unsigned long long)(h1[5] - h0[5]), errors);
    free(sids);
    free(v);
}

/* P2's new sessions at one level: --rounds rounds, each an echo run then a
 * new-session run of --p2-new calls at concurrency conc once the stock is
 * full; the echo goes first so no refill of the round before runs beside it,
 * and the new sessions start from a full stock as the echo from an idle
 * machine. Sums of calls and seconds per kind go to the out parameters. */
static void p2_new_level(const cfg *c, nng_socket ms, op bk, int conc, double *new_done,
                         double *new_secs, double *echo_done, double *echo_secs, double *ratio,
                         uint64_t *hits, uint64_t *misses, long *held_min)
{
    held_sid *sids = lb_xcalloc((size_t)c->p2_new, sizeof *sids);
    *new_done = *new_secs = *echo_done = *echo_secs = 0;
    *hits = *misses = 0;
    *held_min = -1;
    for (int r = 0; r < c->rounds; r++) {
        long held = stock_wait(c, ms, c->p2_new);
        if (*held_min < 0 || held < *held_min)
            *held_min = held;
        double ed, es, nd, ns;
        p2_run(c, bk, c->app, c->p2_new, r, conc, NULL, NULL, &ed, &es);
        uint64_t h0[6], h1[6];
        stats_of(ms, stock_names, h0, 6);
        atomic_int n_sids = 0;
        double t_new = now_us();
        p2_run(c, OP_SELECT, c->pool_app, c->p2_new, r, conc, sids, &n_sids, &nd, &ns);
        if (getenv("LBCP_BENCH_MARKS") != NULL) /* CLOCK_MONOTONIC seconds, for perf -k mono */
            fprintf(stderr, "MARK new c=%d %.6f %.6f\n", conc, t_new / 1e6, now_us() / 1e6);
        stats_of(ms, stock_names, h1, 6);
        *hits += h1[1] - h0[1];
        *misses += h1[5] - h0[5];
        release_all(ms, sids, atomic_load(&n_sids)); /* the stock refills */
        ratio[r] = (nd / ns) / (ed / es);
        *new_done += nd;
        *new_secs += ns;
        *echo_done += ed;
        *echo_secs += es;
    }
    free(sids);
}

static void run_p2(const cfg *c)
{
    static const int levels[] = {1, 16, 64};
    nng_socket ms;
    if (wire_req_dial(c->master, &ms, NULL) != LB_OK) {
        fprintf(stderr, "cannot dial %s\n", c->master);
        exit(1);
    }
    printf("P2 master throughput (calls/s) over %s, straight to the master; echo: %s\n",
           transport(c->master),
           c->echo[0] != '\0' ? "in-process nng echo" : "the master's StatsRequest answer");
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++) {
        int conc = levels[k];
        op bk = c->echo[0] != '\0' ? OP_ECHO : OP_STATS; /* see run_p3 */
        double echo = p2_rate(c, bk, c->app, conc);
        double sticky = p2_rate(c, OP_SELECT, c->app, conc);
        double echo2 = p2_rate(c, bk, c->app, conc);
        double e = (echo + echo2) / 2;
        double nd, ns, ed, es, ratio[MAX_ROUNDS];
        uint64_t hits, misses;
        long held;
        p2_new_level(c, ms, bk, conc, &nd, &ns, &ed, &es, ratio, &hits, &misses, &held);
        double fresh = nd / ns, eb = ed / es;
        printf("  concurrency %2d: echo %8.0f  sticky %8.0f (%.2f)  new from pool %8.0f over echo "
               "%8.0f of the same %d x %d calls: %.2f (over the %d s echo %.2f; rounds:",
               conc, e, sticky, sticky / e, fresh, eb, c->rounds, c->p2_new, fresh / eb, c->secs,
               fresh / e);
        for (int r = 0; r < c->rounds; r++)
            printf(" %.2f", ratio[r]);
        printf("; stock held >= %ld, %llu hits, %llu misses)\n", held, (unsigned long long)hits,
               (unsigned long long)misses);
        printf("RESULT P2 %s c=%d sticky_ratio=%.2f (goal >= 0.6) pool_ratio=%.2f (goal >= 0.4) "
               "pool_over_steady_echo=%.2f new_sessions=%.0f seconds=%.3f stock_hits=%llu "
               "stock_misses=%llu\n",
               transport(c->master), conc, sticky / e, fresh / eb, fresh / e, nd, ns,
               (unsigned long long)hits, (unsigned long long)misses);
        fflush(stdout);
    }
    nng_close(ms);
}

int main(int argc, char **argv)
{
    cfg c = {.location = "",
             .app = "echo",
             .pool_app = "pecho",
             .n = 500,
             .fresh = 600,
             .secs = 2,
             .p2_new = 512,
             .rounds = 5,
             .stock_wait_ms = 60000};
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
        else if (strcmp(k, "--p2-new") == 0)
            c.p2_new = atoi(v);
        else if (strcmp(k, "--rounds") == 0)
            c.rounds = atoi(v);
        else if (strcmp(k, "--stock-full") == 0)
            c.stock_full = atoi(v);
        else if (strcmp(k, "--stock-wait-ms") == 0)
            c.stock_wait_ms = atoi(v);
        else if (strcmp(k, "--only") == 0)
            c.only = v;
    }
    if (c.slave == NULL || c.master == NULL || c.slave_id == NULL || c.n <= 0 || c.fresh <= 0 ||
        c.secs <= 0 || c.secs > 30 || c.n > 100000 || c.fresh > 10000 || c.p2_new <= 0 ||
        c.p2_new > 10000 || c.rounds < 1 || c.rounds > MAX_ROUNDS || c.stock_wait_ms < 0 ||
        c.stock_wait_ms > 600000 || c.stock_full < 0) {
        fprintf(stderr, "usage: lb-bench-path --slave ADDR --master ADDR --slave-id ID "
                        "[--location Z] [--app A] [--pool-app A] [--n N] [--fresh N] [--secs S] "
                        "[--p2-new N] [--rounds R] [--stock-full N] [--stock-wait-ms MS] "
                        "[--only p3|p2]\n");
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
