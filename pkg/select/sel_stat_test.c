/*
 * Statistical and model tests of the selection policy:
 *   - each random strategy over 10,000 picks against its formula (chi-square,
 *     fixed seeds: deterministic, yet a wrong implementation fails);
 *   - round-robin's exact capacity proportions in every window;
 *   - the overprovisioning spill share (Envoy priority load);
 *   - least-loaded does not herd between reports (pending counts);
 *   - the indexed path against a brute-force model of the rules on random
 *     clusters, requests and load changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "select/sel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICKS 10000

static const char *const echo_app[] = {"echo"};

static sel_server mk(const char *id, const char *group, int rank, uint32_t cap, uint32_t sessions)
{
    return (sel_server){.id = id,
                        .zone = "a",
                        .region = "r1",
                        .group = group,
                        .group_rank = rank,
                        .capacity = cap,
                        .sessions = sessions,
                        .up = true,
                        .apps = echo_app,
                        .n_apps = 1,
                        .cores = 8};
}

/* Counts PICKS choices of strategy st over servers s (no load changes). */
static void pick_counts(const sel_server *s, size_t n, sel_strategy st, double overprovision,
                        uint64_t seed, long *count)
{
    sel_snapshot *snap;
    sel_policy p;
    sel_state state = {seed, 0};
    sel_request req = {.app = "echo"};
    sel_result r;
    assert_int_equal(sel_snapshot_build(s, n, NULL, 0, &snap), LB_OK);
    sel_policy_default(&p);
    p.strategy = st;
    p.overprovision = overprovision;
    memset(count, 0, n * sizeof(*count));
    for (int i = 0; i < PICKS; i++) {
        assert_int_equal(sel_choose(snap, &p, &req, &state, &r, NULL), LB_OK);
        count[r.server]++;
    }
    sel_snapshot_free(&snap);
}

/* Pearson's chi-square of counts against probabilities p; fails above the
 * 0.1% critical value for n - 1 degrees of freedom (n <= 6). */
static void chi_square(const long *count, const double *p, size_t n, const char *what)
{
    static const double crit[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52};
    double x2 = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        double e = p[i] * PICKS;
        sum += p[i];
        x2 += (count[i] - e) * (count[i] - e) / e;
    }
    assert_true(fabs(sum - 1.0) < 1e-9);
    print_message("%s: chi-square %.2f (critical %.2f, df %zu)\n", what, x2, crit[n - 1], n - 1);
    assert_true(x2 < crit[n - 1]);
}

/* Servers with distinct least-loaded ranks: s3 (10%, 27 free) < s1 (10%, 9
 * free) < s2 (30%) < s5 (50%, 50 free) < s4 (50%, 20 free). */
static void five(sel_server *s)
{
    s[0] = mk("s1", "g", 0, 10, 1);
    s[1] = mk("s2", "g", 0, 20, 6);
    s[2] = mk("s3", "g", 0, 30, 3);
    s[3] = mk("s4", "g", 0, 40, 20);
    s[4] = mk("s5", "g", 0, 100, 50);
}

static void test_p2c_formula(void **state)
{
    (void)state;
    sel_server s[5];
    long c[5];
    double w[5], p[5];
    const int order[5] = {2, 0, 1, 4, 3}; /* best first */
    five(s);
    for (int i = 0; i < 5; i++)
        w[i] = s[i].capacity / 200.0;
    /* Two independent capacity-weighted draws, the better one kept:
     * P(i) = w_i^2 + 2 w_i * (sum of w_j over servers worse than i). */
    for (int k = 0; k < 5; k++) {
        double worse = 0;
        for (int j = k + 1; j < 5; j++)
            worse += w[order[j]];
        p[order[k]] = w[order[k]] * w[order[k]] + 2 * w[order[k]] * worse;
    }
    pick_counts(s, 5, SEL_P2C, 0, 7, c);
    chi_square(c, p, 5, "p2c");
}

static void test_weighted_random_formula(void **state)
{
    (void)state;
    sel_server s[5];
    long c[5];
    double p[5];
    five(s);
    /* p_i proportional to c_i (1 - u_i / c_i) = free sessions: 9, 14, 27, 20, 50. */
    const double free_[5] = {9, 14, 27, 20, 50};
    for (int i = 0; i < 5; i++)
        p[i] = free_[i] / 120.0;
    pick_counts(s, 5, SEL_WEIGHTED_RANDOM, 0, 11, c);
    chi_square(c, p, 5, "weighted-random");

    /* The seed's own example shape: equal capacities and users summing to
     * the total, where its raw formula p = (1 - u/total) / (live - 1) is
     * already a distribution. */
    sel_server e[3] = {mk("a", "g", 0, 100, 10), mk("b", "g", 0, 100, 30),
                       mk("c", "g", 0, 100, 60)};
    double q[3];
    for (int i = 0; i < 3; i++)
        q[i] = (1.0 - e[i].sessions / 100.0) / (3 - 1);
    pick_counts(e, 3, SEL_WEIGHTED_RANDOM, 0, 13, c);
    chi_square(c, q, 3, "weighted-random (seed formula)");

    /* One live server: p = 1 (the raw formula would divide by zero). */
    e[0].up = false;
    e[2].up = false;
    pick_counts(e, 3, SEL_WEIGHTED_RANDOM, 0, 17, c);
    assert_int_equal(c[1], PICKS);
}

static void test_round_robin_exact(void **state)
{
    (void)state;
    sel_server s[4] = {mk("s1", "g", 0, 3, 0), mk("s2", "g", 0, 5, 2), mk("s3", "g", 0, 7, 6),
                       mk("s4", "g", 0, 1, 0)};
    sel_snapshot *snap;
    sel_policy p;
    sel_state st = {3, 0};
    sel_request req = {.app = "echo"};
    sel_result r;
    static int seq[PICKS];
    long c[4] = {0};
    int run = 0, max_run = 0;
    assert_int_equal(sel_snapshot_build(s, 4, NULL, 0, &snap), LB_OK);
    sel_policy_default(&p);
    p.strategy = SEL_ROUND_ROBIN;
    for (int i = 0; i < PICKS; i++) {
        assert_int_equal(sel_choose(snap, &p, &req, &st, &r, NULL), LB_OK);
        seq[i] = r.server;
        c[r.server]++;
        run = i > 0 && seq[i] == seq[i - 1] ? run + 1 : 1;
        max_run = run > max_run ? run : max_run;
    }
    /* 16 capacity units: every 16 consecutive picks hit each server exactly
     * capacity times, whatever the window (10,000 = 625 rounds). */
    assert_int_equal(c[0], 3 * 625);
    assert_int_equal(c[1], 5 * 625);
    assert_int_equal(c[2], 7 * 625);
    assert_int_equal(c[3], 1 * 625);
    for (int i = 0; i + 16 <= PICKS; i += 7) {
        long w[4] = {0};
        for (int j = i; j < i + 16; j++)
            w[seq[j]]++;
        assert_true(w[0] == 3 && w[1] == 5 && w[2] == 7 && w[3] == 1);
    }
    /* Interleaved, not in bursts of a server's whole capacity. */
    assert_true(max_run < 7);
    sel_snapshot_free(&snap);
}

static void test_overprovision_share(void **state)
{
    (void)state;
    sel_server s[20];
    long c[20];
    char ids[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%02d", i);
        s[i] = mk(ids[i], i < 10 ? "primary" : "backup", i < 10 ? 0 : 1, 1000, 0);
    }
    /* Half the primary down: health 0.5 * 1.4 = 70%, 30% spills. */
    for (int i = 0; i < 5; i++)
        s[i].up = false;
    pick_counts(s, 20, SEL_LEAST_LOADED, 1.4, 5, c);
    long primary = 0;
    for (int i = 0; i < 10; i++)
        primary += c[i];
    double sd = sqrt(PICKS * 0.7 * 0.3);
    print_message("overprovision: primary %ld of %d (expect %.0f +- %.0f)\n", primary, PICKS,
                  0.7 * PICKS, 4 * sd);
    assert_true(fabs(primary - 0.7 * PICKS) < 4 * sd);

    /* Healths summing under 100% are normalised: 35% and 35% -> 50/50. */
    for (int i = 0; i < 20; i++)
        s[i].up = i < 10 ? i >= 5 : i < 15;
    /* primary: 5 of 10 up but 3 of them full -> 2000 / 10000 * 1.4 = 28% */
    s[5].sessions = s[6].sessions = s[7].sessions = 1000;
    /* backup: 5 of 10 up, 2 full -> 3000 / 10000 * 1.4 = 42% */
    s[10].sessions = s[11].sessions = 1000;
    pick_counts(s, 20, SEL_LEAST_LOADED, 1.4, 9, c);
    primary = 0;
    for (int i = 0; i < 10; i++)
        primary += c[i];
    double want = 0.28 / 0.70;
    sd = sqrt(PICKS * want * (1 - want));
    print_message("overprovision normalised: primary %ld (expect %.0f +- %.0f)\n", primary,
                  want * PICKS, 4 * sd);
    assert_true(fabs(primary - want * PICKS) < 4 * sd);
}

static void test_no_herding(void **state)
{
    (void)state;
    sel_server s[10];
    char ids[10][8];
    long c[10] = {0};
    sel_snapshot *snap;
    sel_request req = {.app = "echo"};
    sel_result r;
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "s%d", i);
        s[i] = mk(ids[i], "g", 0, 50, 20);
    }
    assert_int_equal(sel_snapshot_build(s, 10, NULL, 0, &snap), LB_OK);
    /* 100 picks and no load report: pending alone spreads them evenly. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
        sel_snapshot_add_pending(snap, r.server, +1);
        c[r.server]++;
    }
    for (int i = 0; i < 10; i++)
        assert_int_equal(c[i], 10);
    sel_snapshot_free(&snap);
}

/* --- a brute-force model of the rules ---------------------------------------- */

#define MODEL_N 240

typedef struct model {
    sel_server s[MODEL_N];
    char id[MODEL_N][8];
    const char *apps[MODEL_N][2];
    sel_label lab[MODEL_N][1];
    sel_snapshot *snap;
    size_t n;
} model;

static uint64_t model_rng = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
    model_rng ^= model_rng << 13;
    model_rng ^= model_rng >> 7;
    model_rng ^= model_rng << 17;
    return (uint32_t)(model_rng % n);
}

static const char *const zones[] = {"a", "b", "c", "d", "e", "f"};
static const char *const regions[] = {"r1", "r1", "r1", "r2", "r2", "r3"};

static void model_build(model *m, size_t n)
{
    static const char *const app_names[] = {"echo", "web"};
    static const char *const group_names[] = {"gold", "silver", "bronze"};
    memset(m, 0, sizeof(*m));
    m->n = n;
    for (size_t i = 0; i < n; i++) {
        sel_server *s = &m->s[i];
        int z = (int)rnd(6), g = (int)rnd(3);
        /* ids in an order unrelated to the index, so id tiebreaks matter */
        snprintf(m->id[i], sizeof(m->id[i]), "x%03u", (unsigned)((i * 7919) % 1000));
        m->apps[i][0] = app_names[rnd(2)];
        m->apps[i][1] = "echo";
        m->lab[i][0] = (sel_label){"gpu", rnd(2) ? "a100" : "t4"};
        *s = (sel_server){.id = m->id[i],
                          .zone = zones[z],
                          .region = regions[z],
                          .group = group_names[g],
                          .group_rank = g * 10,
                          .capacity = 1 + rnd(4) * 5,
                          .up = rnd(10) != 0,
                          .drained = rnd(20) == 0,
                          .disabled = rnd(25) == 0,
                          .apps = m->apps[i],
                          .n_apps = 1 + rnd(2),
                          .cores = 4,
                          .labels = m->lab[i],
                          .n_labels = rnd(3) ? 1 : 0};
        s->sessions = rnd(s->capacity + 2);
        s->cpu_load = rnd(5);
    }
    assert_int_equal(sel_snapshot_build(m->s, n, NULL, 0, &m->snap), LB_OK);
}

static bool ref_offers(const sel_server *s, const char *app)
{
    for (size_t i = 0; i < s->n_apps; i++)
        if (strcmp(s->apps[i], app) == 0)
            return true;
    return false;
}

static bool ref_static(const sel_server *s)
{
    return s->up && !s->drained && !s->disabled && s->capacity > 0;
}

/* sticky: the client's session is on s already; drained and full keep it. */
static bool ref_eligible_as(const sel_server *s, const sel_request *q, bool sticky)
{
    if (!(sticky ? s->up && !s->disabled : ref_static(s)) || !ref_offers(s, q->app))
        return false;
    if (q->min_cpu > 0 && s->cores - s->cpu_load < q->min_cpu)
        return false;
    for (size_t i = 0; i < q->n_labels; i++) {
        const char *eq = strchr(q->labels[i], '=');
        bool ok = false;
        for (size_t j = 0; j < s->n_labels; j++)
            ok = ok || (strncmp(s->labels[j].key, q->labels[i], eq - q->labels[i]) == 0 &&
                        strcmp(s->labels[j].value, eq + 1) == 0);
        if (!ok)
            return false;
    }
    return sticky || (uint64_t)s->sessions + s->pending < s->capacity;
}

static bool ref_eligible(const sel_server *s, const sel_request *q)
{
    return ref_eligible_as(s, q, false);
}

/* least-loaded order: utilisation, more free, id */
static bool ref_less(const sel_server *a, const sel_server *b)
{
    uint64_t ua = a->sessions + a->pending, ub = b->sessions + b->pending;
    if (ua * b->capacity != ub * a->capacity)
        return ua * b->capacity < ub * a->capacity;
    if (a->capacity - ua != b->capacity - ub)
        return a->capacity - ua > b->capacity - ub;
    return strcmp(a->id, b->id) < 0;
}

/* Tier membership: 0 zone, 1 region, 2 anywhere. */
static bool ref_in_tier(const sel_server *s, int tier, const char *zone, const char *region)
{
    if (tier == 0)
        return zone != NULL && region != NULL && strcmp(s->zone, zone) == 0 &&
               strcmp(s->region, region) == 0;
    if (tier == 1)
        return region != NULL && strcmp(s->region, region) == 0;
    return true;
}

typedef struct ref_out {
    int group, tier; /* where the request goes (group rank, tier), -1 when nowhere */
    int chosen;
    int alt[4];
    size_t n_alt;
} ref_out;

/* Least-loaded eligible server of group rank g in tier t not in skip. */
static int ref_best(const model *m, const sel_request *q, int g, int t, const char *zone,
                    const char *region, const int *skip, size_t n_skip)
{
    int best = -1;
    for (size_t i = 0; i < m->n; i++) {
        const sel_server *s = sel_snapshot_server(m->snap, (int)i);
        bool skipped = false;
        for (size_t k = 0; k < n_skip; k++)
            skipped = skipped || skip[k] == (int)i;
        if (skipped || s->group_rank != g || !ref_eligible(s, q) ||
            !ref_in_tier(s, t, zone, region))
            continue;
        if (best < 0 || ref_less(s, sel_snapshot_server(m->snap, best)))
            best = (int)i;
    }
    return best;
}

/* The rules by brute force; `forced` (when >= 0) is the chosen server (an
 * affinity or a random pick) and only the alternates are computed around it. */
static void ref_choose(const model *m, const sel_request *q, double spill, int forced, ref_out *o)
{
    const char *zone = q->zone, *region = q->zone ? regions[q->zone[0] - 'a'] : NULL;
    int gsel = -1, tsel = -1;
    memset(o, 0, sizeof(*o));
    o->chosen = -1;
    for (int g = 0; g <= 20 && gsel < 0; g += 10) {
        int fallback = -1;
        for (int t = 0; t < 3; t++) {
            if (ref_best(m, q, g, t, zone, region, NULL, 0) < 0)
                continue;
            uint64_t used = 0, cap = 0;
            for (size_t i = 0; i < m->n; i++) {
                const sel_server *s = sel_snapshot_server(m->snap, (int)i);
                if (s->group_rank == g && ref_static(s) && ref_offers(s, q->app) &&
                    ref_in_tier(s, t, zone, region) && s->sessions + s->pending < s->capacity)
                    used += s->sessions + s->pending, cap += s->capacity;
            }
            if ((double)used / (double)cap < spill) {
                tsel = t;
                break;
            }
            if (fallback < 0)
                fallback = t;
        }
        if (tsel < 0)
            tsel = fallback;
        if (tsel >= 0)
            gsel = g;
    }
    o->group = gsel;
    o->tier = tsel;
    if (gsel < 0) {
        o->chosen = forced; /* a sticky client kept with nothing else eligible */
        return;
    }
    o->chosen = forced >= 0 ? forced : ref_best(m, q, gsel, tsel, zone, region, NULL, 0);
    int skip[5] = {o->chosen};
    size_t n_skip = 1;
    for (int gi = -1; gi < 3 && o->n_alt < 2; gi++) {
        int g = gi < 0 ? gsel : gi * 10;
        if (gi >= 0 && g == gsel)
            continue;
        for (int t = gi < 0 ? tsel : 0; t < 3 && o->n_alt < 2; t++) {
            int b;
            while (o->n_alt < 2 && (b = ref_best(m, q, g, t, zone, region, skip, n_skip)) >= 0)
                o->alt[o->n_alt++] = skip[n_skip++] = b;
        }
    }
}

/* One request against the model; returns false on a mismatch. */
static bool model_check(model *m, int it, const sel_request *q, const sel_policy *p)
{
    sel_result r;
    ref_out o;
    sel_state st = {(uint64_t)it, (uint64_t)it};
    lb_err rc = sel_choose(m->snap, p, q, &st, &r, NULL);
    ref_choose(m, q, p->zone_spill, -1, &o);
    const char *zone = q->zone, *region = q->zone ? regions[q->zone[0] - 'a'] : NULL;
    int aff = -1;
    for (size_t i = 0; q->affinity_server != NULL && i < m->n; i++)
        if (strcmp(m->id[i], q->affinity_server) == 0)
            aff = (int)i;
    bool aff_ok = aff >= 0 && ref_eligible_as(sel_snapshot_server(m->snap, aff), q, true);
    bool ok = (rc == LB_OK) == (aff_ok || o.chosen >= 0) &&
              r.moved == (q->affinity_server != NULL && !aff_ok);
    if (ok && rc == LB_OK && (aff_ok || p->strategy != SEL_LEAST_LOADED)) {
        const sel_server *c = sel_snapshot_server(m->snap, r.server);
        if (aff_ok)
            ok = r.server == aff && r.affinity;
        else /* a random pick: eligible and inside the planned group and tier */
            ok = ref_eligible(c, q) && c->group_rank == o.group &&
                 ref_in_tier(c, o.tier, zone, region);
        ref_choose(m, q, p->zone_spill, r.server, &o);
    }
    ok = ok && r.server == o.chosen && r.n_alternates == o.n_alt;
    for (size_t i = 0; ok && i < o.n_alt; i++)
        ok = r.alternates[i] == o.alt[i];
    if (!ok)
        print_error("model mismatch at %d (%s%s): got %d (%zu alts) want %d (%zu alts)\n", it,
                    sel_strategy_name(p->strategy), q->affinity_server ? ", affinity" : "",
                    r.server, r.n_alternates, o.chosen, o.n_alt);
    /* Load changes between requests, as the master makes them. */
    if (r.server >= 0)
        sel_snapshot_add_pending(m->snap, r.server, +1);
    return ok;
}

static void test_model(void **state)
{
    (void)state;
    static model m;
    const char *gpu[] = {"gpu=a100"};
    int checked = 0, failed = 0;
    model_build(&m, MODEL_N);
    for (int it = 0; it < 4000; it++) {
        sel_request q = {.app = rnd(3) ? "echo" : "web"};
        int z = (int)rnd(7);
        q.zone = z < 6 ? zones[z] : NULL;
        if (rnd(4) == 0)
            q.min_cpu = 1 + rnd(3);
        if (rnd(4) == 0)
            q.labels = gpu, q.n_labels = 1;
        if (rnd(5) == 0)
            q.affinity_server = rnd(10) ? m.id[rnd(MODEL_N)] : "gone";
        sel_policy p;
        sel_policy_default(&p);
        p.zone_spill = rnd(2) ? 1.0 : 0.6;
        p.strategy = rnd(2) ? SEL_LEAST_LOADED : (sel_strategy)(1 + rnd(3));
        checked++;
        if (!model_check(&m, it, &q, &p) && failed++ > 5)
            break;
        int x = (int)rnd(MODEL_N);
        if (rnd(3) == 0)
            sel_snapshot_set_load(m.snap, x, rnd(sel_snapshot_server(m.snap, x)->capacity + 2),
                                  rnd(5), 1 << 30, 1 << 30);
        else if (rnd(4) == 0)
            sel_snapshot_add_pending(m.snap, x, -1);
    }
    print_message("model: %d requests checked, %d mismatches\n", checked, failed);
    assert_int_equal(failed, 0);
    sel_snapshot_free(&m.snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p2c_formula),       cmocka_unit_test(test_weighted_random_formula),
        cmocka_unit_test(test_round_robin_exact), cmocka_unit_test(test_overprovision_share),
        cmocka_unit_test(test_no_herding),        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
