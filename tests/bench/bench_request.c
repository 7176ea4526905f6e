/*
 * lb-bench-request: the request path under load, against a running cluster.
 *
 *   lb-bench-request --slave ADDR [--app echo] [--clients 32] [--requests 4000]
 *                    [--threads 4] [--location ZONE]
 *
 * Phase 1 (new sessions): each of --clients client ids asks once: selection,
 * a launch at an agent (spawn + readiness), the session recorded.
 * Phase 2 (sticky): --requests requests spread over the same clients, from
 * --threads threads: selection with affinity and the agent's reuse check.
 * Baseline: the same number of StatsRequests to the same slave, answered by the
 * slave itself: one nng round trip on loopback, no master, no agent.
 * Prints p50/p99/max latency and throughput per phase, then one RESULT line.
 * Bounded: it sends exactly clients + 2 * requests messages and stops.
 */
#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench {
    const char *slave, *app, *location;
    int clients, requests, threads;
    bool stats_only; /* baseline */
    bool fresh;      /* phase 1: one request per client */
    double *lat_us;  /* one per request */
    int next;        /* next request index */
    int errors;
    pthread_mutex_t mu;
} bench;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int one(bench *b, nng_socket s, int i)
{
    char client[64];
    snprintf(client, sizeof client, "bench-client-%d", i % b->clients);
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__StatsRequest st = LB__STATS_REQUEST__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    if (b->stats_only) {
        env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
        env.stats_request = &st;
    } else {
        cr.client_id = client;
        cr.app = (char *)b->app;
        cr.location = (char *)b->location;
        env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
        env.client_request = &cr;
    }
    lb_errmsg em = {{0}};
    int ok = wire_call(s, &env, 30000, WIRE_TRANSPORT_MAX, &rep, &em) == LB_OK &&
             (b->stats_only ? rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY
                            : rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION &&
                                  rep->instruction->action == LB__ACTION__SERVE);
    if (!ok)
        fprintf(stderr, "request %d failed: %s\n", i,
                em.text[0] ? em.text
                : rep && rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION
                    ? (rep->instruction->action == LB__ACTION__REDIRECT
                           ? "redirected (use --location of the slave's zone)"
                           : rep->instruction->reason)
                    : "unexpected answer");
    wire_free(&rep);
    return ok;
}

static void *worker(void *arg)
{
    bench *b = arg;
    nng_socket s;
    if (wire_req_dial_to(b->slave, WIRE_ROLE_SLAVE, NULL, &s, NULL) != LB_OK)
        return NULL;
    int total = b->fresh ? b->clients : b->requests;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int i = b->next++;
        pthread_mutex_unlock(&b->mu);
        if (i >= total)
            break;
        double t0 = now_us();
        int ok = one(b, s, i);
        b->lat_us[i] = now_us() - t0;
        if (!ok) {
            pthread_mutex_lock(&b->mu);
            b->errors++;
            pthread_mutex_unlock(&b->mu);
        }
    }
    nng_close(s);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct phase_result {
    double p50, p99, max, rps;
    int errors;
} phase_result;

static phase_result run_phase(bench *b, bool fresh, bool stats_only)
{
    int total = fresh ? b->clients : b->requests;
    b->fresh = fresh;
    b->stats_only = stats_only;
    b->next = 0;
    b->errors = 0;
    b->lat_us = calloc((size_t)total, sizeof *b->lat_us);
    pthread_t th[64];
    int nt = b->threads < 64 ? b->threads : 64;
    double t0 = now_us();
    for (int i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, worker, b);
    for (int i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    double secs = (now_us() - t0) / 1e6;
    qsort(b->lat_us, (size_t)total, sizeof *b->lat_us, cmp);
    phase_result r = {.p50 = b->lat_us[total / 2],
                      .p99 = b->lat_us[(int)(total * 0.99)],
                      .max = b->lat_us[total - 1],
                      .rps = total / secs,
                      .errors = b->errors};
    free(b->lat_us);
    return r;
}

static void print(const char *name, int n, phase_result r)
{
    printf("%-28s %8d %10.0f %10.0f %10.0f %10.0f %6d\n", name, n, r.p50, r.p99, r.max, r.rps,
           r.errors);
}

int main(int argc, char **argv)
{
    bench b = {.app = "echo", .location = "", .clients = 32, .requests = 4000, .threads = 4};
    pthread_mutex_init(&b.mu, NULL);
    wire_tls *tls = NULL; /* LBCP_TLS_CA/CERT/KEY: a tls+tcp:// slave */
    lb_errmsg em = {{0}};
    if (wire_tls_env_default(&tls, &em) != LB_OK) {
        fprintf(stderr, "bench: %s\n", em.text);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--slave") == 0)
            b.slave = argv[i + 1];
        else if (strcmp(argv[i], "--app") == 0)
            b.app = argv[i + 1];
        else if (strcmp(argv[i], "--location") == 0)
            b.location = argv[i + 1];
        else if (strcmp(argv[i], "--clients") == 0)
            b.clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--requests") == 0)
            b.requests = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            b.threads = atoi(argv[i + 1]);
    }
    if (b.slave == NULL || b.clients < 1 || b.requests < 1 || b.threads < 1) {
        fprintf(stderr, "usage: lb-bench-request --slave ADDR [--app A] [--location Z] "
                        "[--clients N] [--requests N] [--threads N]\n");
        return 2;
    }
    printf("%-28s %8s %10s %10s %10s %10s %6s\n", "phase", "requests", "p50_us", "p99_us", "max_us",
           "req/s", "errors");
    phase_result fresh = run_phase(&b, true, false);
    print("new session (launch)", b.clients, fresh);
    phase_result sticky = run_phase(&b, false, false);
    print("sticky (select + reuse)", b.requests, sticky);
    phase_result base = run_phase(&b, false, true);
    print("baseline: slave round trip", b.requests, base);
    printf("RESULT new_p50_us=%.0f sticky_p50_us=%.0f sticky_p99_us=%.0f sticky_rps=%.0f "
           "baseline_p50_us=%.0f sticky_over_baseline_p50=%.2f errors=%d\n",
           fresh.p50, sticky.p50, sticky.p99, sticky.rps, base.p50, sticky.p50 / base.p50,
           fresh.errors + sticky.errors + base.errors);
    return fresh.errors + sticky.errors + base.errors ? 1 : 0;
}
