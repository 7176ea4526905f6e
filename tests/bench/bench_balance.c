/*
 * lb-bench-balance: how evenly each strategy spreads sessions, driving
 * pkg/select directly the way the master does.
 *
 * 1,000 servers of mixed capacity (50, 100, 200, 400 sessions). Sessions
 * arrive as a Poisson process and last an exponential time (mean 60 s), for a
 * cluster utilisation of 70%. Every server reports its session count once a
 * second, and each report reaches the master one second late, carrying the
 * count of one second ago; between reports the master's pending counts are
 * all it knows. Two ways to apply a late report are simulated:
 *   unreported  sel_snapshot_set_load_unreported: pending becomes the sessions
 *               assigned after the report was sampled (what the master should do);
 *   reset       sel_snapshot_set_load: pending back to 0, forgetting them.
 * After a warm-up of three mean lifetimes, the true utilisation of every
 * server is sampled each second.
 *
 * It prints, per strategy and mode, the cluster utilisation, the maximum
 * per-server utilisation and its ratio to the cluster's (averaged over the
 * samples, and the worst sample), and the p99 of per-server utilisation;
 * writes lb-bench-balance.dat (one line per sample) and, when gnuplot is on
 * PATH, lb-bench-balance.png into the directory given with -o (default ".").
 * The last line is `RESULT <strategy>_max_over_mean=<x> ...` for the
 * unreported mode (the reset figures are in the table).
 *
 * Usage: lb-bench-balance [-o DIR] [-s seconds measured, default 300]
 */
#include "select/sel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_SERVERS 1000
#define MEAN_LIFE 60.0
#define TARGET_UTIL 0.70
#define REPORT_DELAY 1.0
#define N_STRATEGIES 4

static const char *const bal_apps[] = {"echo"};

/* --- deterministic randomness ---------------------------------------------- */

static uint64_t bal_rng;

static double unif(void)
{
    bal_rng ^= bal_rng << 13;
    bal_rng ^= bal_rng >> 7;
    bal_rng ^= bal_rng << 17;
    return ((double)(bal_rng >> 11) + 0.5) * 0x1.0p-53;
}

static double expo(double mean)
{
    return -mean * log(unif());
}

/* --- departures: a binary min-heap of (time, server) ----------------------- */

typedef struct dep {
    double t;
    int server;
} dep;

typedef struct dep_heap {
    dep *v;
    size_t n, cap;
} dep_heap;

static void dep_push(dep_heap *h, dep d)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 1024;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
        if (h->v == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    size_t i = h->n++;
    while (i > 0 && h->v[(i - 1) / 2].t > d.t) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = d;
}

static dep dep_pop(dep_heap *h)
{
    dep top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1].t < h->v[c].t)
            c++;
        if (h->v[c].t >= last.t)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* --- one simulated run ----------------------------------------------------- */

typedef struct sample {
    double mean, max, p99;
} sample;

typedef struct outcome {
    sample *s;
    size_t n;
    long rejected, assigned;
} outcome;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const double *phase_key;

static int cmp_phase(const void *a, const void *b)
{
    double x = phase_key[*(const int *)a], y = phase_key[*(const int *)b];
    return (x > y) - (x < y);
}

static void sort_by_phase(int *order, const double *phase)
{
    for (int i = 0; i < N_SERVERS; i++)
        order[i] = i;
    phase_key = phase;
    qsort(order, N_SERVERS, sizeof(order[0]), cmp_phase);
}

static sample take_sample(const uint32_t *sessions, const sel_server *srv)
{
    double u[N_SERVERS], used = 0, cap = 0;
    sample s = {0, 0, 0};
    for (int i = 0; i < N_SERVERS; i++) {
        u[i] = (double)sessions[i] / srv[i].capacity;
        used += sessions[i];
        cap += srv[i].capacity;
        s.max = u[i] > s.max ? u[i] : s.max;
    }
    qsort(u, N_SERVERS, sizeof(u[0]), cmp_double);
    s.mean = used / cap;
    s.p99 = u[(int)(0.99 * (N_SERVERS - 1))];
    return s;
}

static void build_servers(sel_server *srv, char (*ids)[12])
{
    static const uint32_t caps[] = {50, 100, 200, 400};
    bal_rng = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < N_SERVERS; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%04d", i);
        srv[i] = (sel_server){.id = ids[i],
                              .zone = "z",
                              .region = "r",
                              .group = "g",
                              .capacity = caps[(int)(unif() * 4)],
                              .up = true,
                              .apps = bal_apps,
                              .n_apps = 1,
                              .cores = 64,
                              .mem_free = 1ULL << 36};
    }
}

/* How a late report meets the master's pending counts. */
typedef enum report_mode {
    MODE_UNREPORTED, /* set_load_unreported: keeps what was assigned after the sample */
    MODE_RESET,      /* set_load: pending back to 0 */
} report_mode;

/* Delivers server x's late report: `count` sessions when it was sampled, and
 * `since` assigned by the master after that. */
static void deliver(sel_snapshot *snap, report_mode mode, int x, uint32_t count, uint32_t since)
{
    if (mode == MODE_RESET)
        sel_snapshot_set_load(snap, x, count, 1.0, 1ULL << 36, 1ULL << 40);
    else
        sel_snapshot_set_load_unreported(snap, x, count, since, 1.0, 1ULL << 36, 1ULL << 40);
}

static outcome simulate(const sel_server *srv, sel_strategy strategy, report_mode mode,
                        double warmup, double measured)
{
    sel_snapshot *snap;
    sel_policy pol;
    sel_state st = {42, 0};
    sel_request req = {.app = "echo", .client_id = "c", .zone = "z"};
    sel_result r;
    dep_heap deps = {NULL, 0, 0};
    static uint32_t sessions[N_SERVERS], reported[N_SERVERS];
    static uint64_t assigned[N_SERVERS], mark[N_SERVERS]; /* assigned, and at the last sample */
    static double phase[N_SERVERS];
    static int order[N_SERVERS]; /* servers by report phase */
    outcome o = {calloc((size_t)measured + 1, sizeof(sample)), 0, 0, 0};
    double total_cap = 0, end = warmup + measured, next_sample = warmup;

    if (o.s == NULL || sel_snapshot_build(srv, N_SERVERS, NULL, 0, &snap) != LB_OK) {
        fprintf(stderr, "setup failed\n");
        exit(1);
    }
    sel_policy_default(&pol);
    pol.strategy = strategy;
    bal_rng = 0xD1B54A32D192ED03ULL; /* the same arrivals for every strategy */
    for (int i = 0; i < N_SERVERS; i++) {
        total_cap += srv[i].capacity;
        sessions[i] = reported[i] = 0;
        assigned[i] = mark[i] = 0;
        phase[i] = unif();
    }
    sort_by_phase(order, phase);
    double rate = TARGET_UTIL * total_cap / MEAN_LIFE, t_arrival = expo(1.0 / rate);
    /* Reports: server i reports at k + phase[i] for k = 1, 2, ...; one round
     * per second in phase order. */
    int report_i = 0;
    long report_round = 1;
    double t_report = 1.0 + phase[order[0]];
    for (;;) {
        double t_dep = deps.n > 0 ? deps.v[0].t : 1e300;
        double t = t_arrival < t_dep ? t_arrival : t_dep;
        t = t_report < t ? t_report : t;
        t = next_sample < t ? next_sample : t;
        if (t >= end)
            break;
        if (t == next_sample) {
            o.s[o.n++] = take_sample(sessions, srv);
            next_sample += 1.0;
        } else if (t == t_report) {
            /* deliver the count sampled REPORT_DELAY ago, sample the current one */
            int x = order[report_i];
            deliver(snap, mode, x, reported[x], (uint32_t)(assigned[x] - mark[x]));
            reported[x] = sessions[x];
            mark[x] = assigned[x];
            if (++report_i == N_SERVERS) {
                report_i = 0;
                report_round++;
            }
            t_report = (double)report_round * REPORT_DELAY + phase[order[report_i]];
        } else if (t == t_dep) {
            dep d = dep_pop(&deps);
            sessions[d.server]--;
        } else {
            t_arrival += expo(1.0 / rate);
            if (sel_choose(snap, &pol, &req, &st, &r, NULL) != LB_OK) {
                o.rejected++;
                continue;
            }
            sel_snapshot_add_pending(snap, r.server, +1);
            sessions[r.server]++;
            assigned[r.server]++;
            o.assigned++;
            dep_push(&deps, (dep){t + expo(MEAN_LIFE), r.server});
        }
    }
    free(deps.v);
    sel_snapshot_free(&snap);
    return o;
}

/* --- output ------------------------------------------------------------------ */

/* One data line per sample: t, then mean, max and p99 utilisation for each
 * (mode, strategy) run; a PNG of max / mean over time when gnuplot exists. */
static void write_outputs(const char *dir, outcome o[][N_STRATEGIES], const char *const *names,
                          const char *const *modes, double warmup)
{
    char dat[4096], png[4096], gp[4096], cmd[4200];
    snprintf(dat, sizeof(dat), "%s/lb-bench-balance.dat", dir);
    snprintf(png, sizeof(png), "%s/lb-bench-balance.png", dir);
    snprintf(gp, sizeof(gp), "%s/lb-bench-balance.gp", dir);
    FILE *f = fopen(dat, "w");
    if (f == NULL) {
        perror(dat);
        return;
    }
    fprintf(f, "# t_s");
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < N_STRATEGIES; k++)
            fprintf(f, " %s/%s:mean max p99", names[k], modes[m]);
    fprintf(f, "\n");
    for (size_t i = 0; i < o[0][0].n; i++) {
        fprintf(f, "%.0f", warmup + (double)i);
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < N_STRATEGIES; k++)
                fprintf(f, " %.4f %.4f %.4f", o[m][k].s[i].mean, o[m][k].s[i].max,
                        o[m][k].s[i].p99);
        fprintf(f, "\n");
    }
    fclose(f);
    printf("data: %s\n", dat);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("plot: skipped, gnuplot is not on PATH (apt-get install -y gnuplot-nox)\n");
        return;
    }
    f = fopen(gp, "w");
    if (f == NULL) {
        perror(gp);
        return;
    }
    fprintf(f, "set terminal png size 1100,650\nset output '%s'\n", png);
    fprintf(f, "set title 'max per-server utilisation / cluster utilisation (1000 servers, "
               "reports 1 s late)'\n");
    fprintf(f, "set xlabel 'time (s)'\nset ylabel 'max / mean'\nset key outside right\n");
    fprintf(f, "plot ");
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < N_STRATEGIES; k++) {
            int c = 2 + 3 * (m * N_STRATEGIES + k);
            fprintf(f, "%s'%s' u 1:($%d/$%d) w l %s t '%s, %s'", m + k ? ", " : "", dat, c + 1, c,
                    m ? "dt 2" : "dt 1", names[k], modes[m]);
        }
    fprintf(f, "\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "gnuplot '%s'", gp);
    if (system(cmd) == 0)
        printf("plot: %s\n", png);
    else
        printf("plot: gnuplot failed (script %s)\n", gp);
}

static double report_row(const char *name, const char *mode, const outcome *o)
{
    double mean = 0, max = 0, p99 = 0, r = 0, worst = 0, n = (double)o->n;
    for (size_t i = 0; i < o->n; i++) {
        const sample *s = &o->s[i];
        mean += s->mean, max += s->max, p99 += s->p99, r += s->max / s->mean;
        worst = s->max / s->mean > worst ? s->max / s->mean : worst;
    }
    printf("%-16s %-11s %6.1f%% %6.1f%% %9.3f %11.3f %6.1f%% %9.3f %8ld\n", name, mode,
           100 * mean / n, 100 * max / n, r / n, worst, 100 * p99 / n, p99 / mean, o->rejected);
    fflush(stdout);
    return r / n;
}

int main(int argc, char **argv)
{
    static const sel_strategy strategies[N_STRATEGIES] = {SEL_LEAST_LOADED, SEL_P2C,
                                                          SEL_WEIGHTED_RANDOM, SEL_ROUND_ROBIN};
    static const char *const modes[2] = {"unreported", "reset"};
    static sel_server srv[N_SERVERS];
    static char ids[N_SERVERS][12];
    static outcome o[2][N_STRATEGIES];
    const char *names[N_STRATEGIES], *dir = ".";
    double measured = 300, warmup = 3 * MEAN_LIFE, ratio[2][N_STRATEGIES];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            measured = atof(argv[++i]);
    }
    if (measured < 10)
        measured = 10;
    build_servers(srv, ids);
    printf("lb-bench-balance: %d servers (capacity 50/100/200/400), Poisson arrivals, "
           "exponential lifetimes (mean %.0f s), target utilisation %.0f%%,\n"
           "load reports every 1 s delivered %.0f s late; %.0f s warm-up, %.0f s measured.\n"
           "report mode 'unreported': set_load_unreported keeps the sessions assigned after the\n"
           "report's sample as pending; 'reset': set_load sets pending to 0 (forgets them).\n"
           "max/mean: max per-server utilisation over cluster utilisation, averaged over the\n"
           "1 s samples (worst: the worst sample); p99: of per-server utilisation.\n",
           N_SERVERS, MEAN_LIFE, TARGET_UTIL * 100, REPORT_DELAY, warmup, measured);
    printf("%-16s %-11s %7s %7s %9s %11s %7s %9s %8s\n", "strategy", "reports", "mean", "max",
           "max/mean", "worst", "p99", "p99/mean", "rejected");
    for (int m = 0; m < 2; m++) {
        for (int k = 0; k < N_STRATEGIES; k++) {
            names[k] = sel_strategy_name(strategies[k]);
            o[m][k] = simulate(srv, strategies[k], (report_mode)m, warmup, measured);
            ratio[m][k] = report_row(names[k], modes[m], &o[m][k]);
        }
    }
    write_outputs(dir, o, names, modes, warmup);
    printf("RESULT");
    for (int k = 0; k < N_STRATEGIES; k++)
        printf(" %s_max_over_mean=%.3f", names[k], ratio[MODE_UNREPORTED][k]);
    printf("\n");
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < N_STRATEGIES; k++)
            free(o[m][k].s);
    return 0;
}
