/*
 * lb-bench-select: nanoseconds per selection decision at 100, 1,000 and 10,000
 * servers with every rule on: affinity lookups, cpu and label requirements,
 * three priority groups with overprovisioning, zones and regions with spill,
 * slave choice, alternates, and after each decision the master's bookkeeping
 * (add_pending for the pick). Load reports (set_load) are delivered between
 * batches of decisions and timed on their own.
 *
 * The figure that matters is how the cost grows with the cluster: the last
 * line is `RESULT ratio_10000_vs_100=<x>` for the default strategy (goal < 1.5).
 * Usage: lb-bench-select [decisions per run, default 100000]
 */
#include "select/sel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_ZONES 12
#define N_REQ 4096
#define N_SLAVES 24
#define REPS 9

static const char *const zone_names[N_ZONES] = {"z00", "z01", "z02", "z03", "z04", "z05",
                                                "z06", "z07", "z08", "z09", "z10", "z11"};
static const char *const region_names[4] = {"eu-west", "eu-north", "us-east", "ap-south"};
static const char *const group_names[3] = {"primary", "secondary", "dr"};
static const char *const apps_both[2] = {"echo", "web"};
static const char *const apps_echo[1] = {"echo"};
static const sel_label labels_gpu[2] = {{"ssd", ""}, {"gpu", "a100"}};
static const sel_label labels_ssd[1] = {{"ssd", ""}};
static const char *const want_ssd[1] = {"ssd"};

static uint64_t bench_rng = 0x2545F4914F6CDD1DULL;

static uint32_t rnd(uint32_t n)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return (uint32_t)(bench_rng % n);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct cluster {
    size_t n;
    sel_server *srv;
    char (*ids)[16];
    uint32_t *base; /* initial sessions, what the simulated reports carry */
    sel_slave slv[N_SLAVES];
    char slave_ids[N_SLAVES][8];
    sel_request req[N_REQ];
    sel_snapshot *snap;
} cluster;

static void cluster_servers(cluster *c)
{
    for (size_t i = 0; i < c->n; i++) {
        sel_server *s = &c->srv[i];
        int z = (int)rnd(N_ZONES), g = rnd(10) < 6 ? 0 : (rnd(4) < 3 ? 1 : 2);
        bool gpu = rnd(10) < 3, ssd = rnd(10) < 8;
        snprintf(c->ids[i], sizeof(c->ids[i]), "srv-%06zu", (i * 7919) % 1000003);
        *s = (sel_server){.id = c->ids[i],
                          .zone = zone_names[z],
                          .region = region_names[z / 3],
                          .group = group_names[g],
                          .group_rank = g,
                          .capacity = 50u << rnd(3),
                          .up = rnd(50) != 0,
                          .drained = rnd(100) == 0,
                          .apps = rnd(2) ? apps_both : apps_echo,
                          .cores = 16,
                          .cpu_load = rnd(13),
                          .mem_total = 64ULL << 30,
                          .mem_free = 32ULL << 30,
                          .labels = gpu ? labels_gpu : (ssd ? labels_ssd : NULL),
                          .n_labels = gpu ? 2 : (ssd ? 1 : 0)};
        s->n_apps = s->apps == apps_both ? 2 : 1;
        s->sessions = c->base[i] = s->capacity * (20 + rnd(40)) / 100;
    }
}

static void cluster_requests(cluster *c)
{
    for (int i = 0; i < N_SLAVES; i++) {
        snprintf(c->slave_ids[i], sizeof(c->slave_ids[i]), "sl%02d", i);
        c->slv[i] = (sel_slave){c->slave_ids[i],
                                zone_names[i % N_ZONES],
                                region_names[(i % N_ZONES) / 3],
                                rnd(500),
                                1000,
                                NULL,
                                0};
    }
    for (int i = 0; i < N_REQ; i++) {
        sel_request *q = &c->req[i];
        *q = (sel_request){.app = rnd(10) < 8 ? "echo" : "web",
                           .client_id = "client",
                           .zone = zone_names[rnd(N_ZONES)],
                           .requesting_slave = c->slave_ids[rnd(N_SLAVES)]};
        if (rnd(2))
            q->min_cpu = 1.0;
        if (rnd(10) < 3)
            q->labels = want_ssd, q->n_labels = 1;
        /* a third of the clients come back to a sticky server */
        if (rnd(3) == 0)
            q->affinity_server = c->ids[rnd((uint32_t)c->n)];
    }
}

static void cluster_init(cluster *c, size_t n)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
    c->srv = calloc(n, sizeof(*c->srv));
    c->ids = calloc(n, sizeof(*c->ids));
    c->base = calloc(n, sizeof(*c->base));
    if (c->srv == NULL || c->ids == NULL || c->base == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    cluster_servers(c);
    cluster_requests(c);
}

static void cluster_free(cluster *c)
{
    sel_snapshot_free(&c->snap);
    free(c->srv);
    free(c->ids);
    free(c->base);
}

typedef struct timing {
    double decide; /* ns per decision: sel_choose + add_pending for the pick */
    double report; /* ns per load report: sel_snapshot_set_load */
    long rejected;
} timing;

#define BATCH 512

/* Runs `decisions` decisions on a fresh snapshot, in batches of BATCH; after
 * each batch, BATCH load reports (cycling over the servers) reset the pending
 * counts as the agents' reports would. Decisions and reports are timed apart:
 * reports arrive per server per second, not per decision. */
static timing run(cluster *c, sel_strategy st, long decisions)
{
    sel_policy p;
    sel_state state = {12345, 0};
    sel_result r;
    size_t report = 0;
    timing t = {0, 0, 0};
    double t_decide = 0, t_report = 0;

    sel_snapshot_free(&c->snap);
    if (sel_snapshot_build(c->srv, c->n, c->slv, N_SLAVES, &c->snap) != LB_OK) {
        fprintf(stderr, "snapshot build failed\n");
        exit(1);
    }
    sel_policy_default(&p);
    p.strategy = st;
    p.zone_spill = 0.85;
    p.overprovision = 1.4;
    for (long done = 0; done < decisions; done += BATCH) {
        double t0 = now_ns();
        for (long i = done; i < done + BATCH; i++) {
            if (sel_choose(c->snap, &p, &c->req[i % N_REQ], &state, &r, NULL) == LB_OK)
                sel_snapshot_add_pending(c->snap, r.server, +1);
            else
                t.rejected++;
        }
        double t1 = now_ns();
        for (int i = 0; i < BATCH; i++) {
            sel_snapshot_set_load(c->snap, (int)report, c->base[report], 4.0, 32ULL << 30,
                                  1ULL << 40);
            report = report + 1 == c->n ? 0 : report + 1;
        }
        t_decide += t1 - t0;
        t_report += now_ns() - t1;
    }
    long n = (decisions + BATCH - 1) / BATCH * BATCH;
    t.decide = t_decide / (double)n;
    t.report = t_report / (double)n;
    return t;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {100, 1000, 10000};
    static const sel_strategy strategies[] = {SEL_LEAST_LOADED, SEL_P2C, SEL_WEIGHTED_RANDOM,
                                              SEL_ROUND_ROBIN};
    static cluster c[3];
    double ns[3][4], rep[3];
    long rejected[3] = {0, 0, 0};
    long decisions = argc > 1 ? atol(argv[1]) : 100000;
    if (decisions <= 0)
        decisions = 100000;

    printf("lb-bench-select: ns per decision (sel_choose + add_pending), best of %d runs of %ld;\n"
           "every rule on: affinity, requirements, 3 groups + overprovisioning, zones/regions + "
           "spill, slaves, 2 alternates\n",
           REPS, decisions);
    for (size_t z = 0; z < 3; z++) {
        cluster_init(&c[z], sizes[z]);
        rep[z] = 1e18;
        for (size_t k = 0; k < 4; k++) {
            ns[z][k] = 1e18;
            run(&c[z], strategies[k], decisions / 10); /* warm-up */
        }
    }
    /* Rounds interleave the sizes, so a noisy moment (a shared machine)
     * cannot favour one size; each cell keeps its best round. */
    for (int r = 0; r < REPS; r++) {
        for (size_t z = 0; z < 3; z++) {
            for (size_t k = 0; k < 4; k++) {
                timing t = run(&c[z], strategies[k], decisions);
                ns[z][k] = t.decide < ns[z][k] ? t.decide : ns[z][k];
                rep[z] = t.report < rep[z] ? t.report : rep[z];
                rejected[z] += t.rejected;
            }
        }
    }
    printf("%-8s", "servers");
    for (size_t k = 0; k < 4; k++)
        printf(" %16s", sel_strategy_name(strategies[k]));
    printf(" %16s\n", "set_load (ns)");
    for (size_t z = 0; z < 3; z++) {
        printf("%-8zu", sizes[z]);
        for (size_t k = 0; k < 4; k++)
            printf(" %16.0f", ns[z][k]);
        printf(" %16.0f", rep[z]);
        if (rejected[z] > 0)
            printf("  (%ld requests rejected)", rejected[z]);
        printf("\n");
        cluster_free(&c[z]);
    }
    printf("ratios 10000/100:");
    for (size_t k = 0; k < 4; k++)
        printf(" %s=%.2f", sel_strategy_name(strategies[k]), ns[2][k] / ns[0][k]);
    printf("\nRESULT ratio_10000_vs_100=%.2f\n", ns[2][0] / ns[0][0]);
    return 0;
}
