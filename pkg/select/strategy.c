/*
 * Load strategies inside one candidate range (a locality tier of a group),
 * all weighted by capacity and all O(log n) through the tree:
 *
 *   least-loaded     minimum (sessions + pending) / capacity; ties go to the
 *                    server with more free sessions, then to the lower id.
 *   p2c              two independent picks with probability proportional to
 *                    capacity; the less utilised of the two (least-loaded order).
 *   weighted-random  the seed's rule (WO 03/105439): server i with probability
 *                    p_i = (1 - users_i/total) / (live - 1). Its raw terms only
 *                    sum to 1 when total is the users of all servers; with
 *                    per-server totals (capacity c_i) we normalise instead:
 *                    p_i proportional to c_i * (1 - u_i/c_i) = c_i - u_i, the
 *                    server's free sessions. The c_i factor is the capacity
 *                    weighting every strategy has; with equal capacities it is
 *                    exactly p_i proportional to (1 - u_i/c_i), i.e. the seed's
 *                    formula once normalised (its (live - 1) denominator is
 *                    a normaliser). A single live server gets p = 1 (the raw
 *                    formula would divide by zero).
 *   round-robin      a cursor over capacity units: pick k maps to unit
 *                    (k * stride) mod T, T the tier's capacity and stride
 *                    coprime to T, so every T consecutive picks hit each unit
 *                    exactly once (server i gets exactly c_i of them) while
 *                    consecutive picks land far apart instead of in bursts.
 *
 * Requirements (cpu, memory, labels) are checked on the candidates drawn; a
 * rejected draw is redrawn, which keeps the distribution conditional on
 * meeting them. Many rejections fall back to an exact scan of the range.
 */
#include "select/sel_internal.h"

#include <string.h>

#define STRAT_MAX_DRAWS 16

static const char *const strat_names[] = {
    [SEL_LEAST_LOADED] = "least-loaded",
    [SEL_P2C] = "p2c",
    [SEL_WEIGHTED_RANDOM] = "weighted-random",
    [SEL_ROUND_ROBIN] = "round-robin",
};

bool sel_strategy_parse(const char *s, sel_strategy *out)
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < sizeof(strat_names) / sizeof(strat_names[0]); i++) {
        if (strcmp(s, strat_names[i]) == 0) {
            if (out != NULL)
                *out = (sel_strategy)i;
            return true;
        }
    }
    return false;
}

const char *sel_strategy_name(sel_strategy s)
{
    if ((size_t)s < sizeof(strat_names) / sizeof(strat_names[0]))
        return strat_names[s];
    return "unknown";
}

sel_strategy sel_strategy_for(const sel_policy *p, const char *app)
{
    for (size_t i = 0; i < p->n_per_app; i++)
        if (p->per_app[i].app != NULL && strcmp(p->per_app[i].app, app) == 0)
            return p->per_app[i].strategy;
    return p->strategy;
}

/* splitmix64: any seed (0 included) gives a good stream, and the state is
 * one word the caller owns. */
uint64_t sel_rand(sel_state *st)
{
    uint64_t z = (st->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-shift (bias below 2^-32 for our n). */
uint64_t sel_rand_below(sel_state *st, uint64_t n)
{
    uint64_t x = sel_rand(st);
#ifdef __SIZEOF_INT128__
    return (uint64_t)(((unsigned __int128)x * n) >> 64);
#else
    return x % n;
#endif
}

double sel_rand01(sel_state *st)
{
    return (double)(sel_rand(st) >> 11) * 0x1.0p-53;
}

static uint64_t strat_gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static uint64_t strat_mulmod(uint64_t a, uint64_t b, uint64_t m)
{
#ifdef __SIZEOF_INT128__
    return (uint64_t)(((unsigned __int128)a * b) % m);
#else
    uint64_t r = 0;
    a %= m;
    for (; b > 0; b >>= 1, a = (a * 2) % m)
        if (b & 1)
            r = (r + a) % m;
    return r;
#endif
}

/* Round-robin unit for cursor k among t units: a stride near t / golden ratio
 * spreads consecutive picks over the range; coprime to t makes it a
 * permutation of the units. */
static uint64_t strat_rr_unit(uint64_t k, uint64_t t)
{
    uint64_t stride = (uint64_t)((double)t * 0.6180339887498949);
    if (stride == 0)
        stride = 1;
    while (strat_gcd(stride, t) != 1)
        stride++;
    return strat_mulmod(k % t, stride, t);
}

/* --- exact fallback: a scan of the range ------------------------------------ */

static uint64_t strat_weight(const sel_server *sv, sel_weight w)
{
    return w == SEL_W_CAP ? sv->capacity : sv->capacity - sel_used(sv);
}

static uint64_t strat_scan_total(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                                 const sel_filter *f, sel_weight w)
{
    uint64_t t = 0;
    for (uint32_t p = lo; p < hi; p++) {
        int idx = sel_leaf_open(a, p);
        if (idx >= 0 && sel_filter_ok(s, f, idx))
            t += strat_weight(&s->servers[idx], w);
    }
    return t;
}

static int strat_scan_at(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                         const sel_filter *f, sel_weight w, uint64_t target)
{
    for (uint32_t p = lo; p < hi; p++) {
        int idx = sel_leaf_open(a, p);
        if (idx < 0 || !sel_filter_ok(s, f, idx))
            continue;
        uint64_t x = strat_weight(&s->servers[idx], w);
        if (target < x)
            return idx;
        target -= x;
    }
    return -1;
}

/* --- the strategies ------------------------------------------------------- */

/* One draw proportional to weight w among the members passing f. */
static int strat_draw(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                      const sel_agg *agg, sel_weight w, const sel_filter *f, sel_state *st)
{
    uint64_t total = sel_agg_weight(agg, w);
    if (total == 0)
        return -1;
    for (int i = 0; i < STRAT_MAX_DRAWS; i++) {
        int idx = sel_tree_at(a, lo, w, sel_rand_below(st, total));
        if (idx >= 0 && sel_filter_ok(s, f, idx))
            return idx;
    }
    total = strat_scan_total(s, a, lo, hi, f, w);
    return total > 0 ? strat_scan_at(s, a, lo, hi, f, w, sel_rand_below(st, total)) : -1;
}

static int strat_round_robin(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                             const sel_agg *agg, const sel_filter *f, sel_state *st)
{
    uint64_t total = agg->cap;
    if (total == 0)
        return -1;
    for (int i = 0; i < STRAT_MAX_DRAWS; i++) {
        uint64_t k = st->rr_cursor++;
        int idx = sel_tree_at(a, lo, SEL_W_CAP, strat_rr_unit(k, total));
        if (idx >= 0 && sel_filter_ok(s, f, idx))
            return idx;
    }
    total = strat_scan_total(s, a, lo, hi, f, SEL_W_CAP);
    if (total == 0)
        return -1;
    return strat_scan_at(s, a, lo, hi, f, SEL_W_CAP, strat_rr_unit(st->rr_cursor++, total));
}

int sel_pick(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi, const sel_agg *agg,
             sel_strategy strategy, const sel_filter *f, sel_state *st)
{
    int x, y;
    switch (strategy) {
    case SEL_P2C:
        x = strat_draw(s, a, lo, hi, agg, SEL_W_CAP, f, st);
        y = x >= 0 ? strat_draw(s, a, lo, hi, agg, SEL_W_CAP, f, st) : -1;
        return y >= 0 && sel_less(s, y, x) ? y : x;
    case SEL_WEIGHTED_RANDOM:
        return strat_draw(s, a, lo, hi, agg, SEL_W_FREE, f, st);
    case SEL_ROUND_ROBIN:
        return strat_round_robin(s, a, lo, hi, agg, f, st);
    case SEL_LEAST_LOADED:
    default:
        return sel_tree_best(s, a, lo, hi, f, &x, 1) == 1 ? x : -1;
    }
}
