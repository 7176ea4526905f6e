/*
 * Where a request goes before the load strategy runs: the priority group
 * (strict, or Envoy-style overprovisioning) and the locality tier inside it
 * (client zone, client region, anywhere, spilling on utilisation). Also the
 * alternates, which follow the same order.
 *
 * Tiers are nested leaf ranges (a zone lies inside its region, which lies
 * inside its group), so "spill to the next tier" widens the range and the
 * least-loaded order inside the wider range already accounts for the nearer
 * servers.
 */
#include "select/sel_internal.h"

#include <string.h>

void sel_loc_resolve(const sel_snapshot *s, const sel_request *req, sel_loc *loc)
{
    loc->zone = req->zone != NULL && req->zone[0] != '\0' ? req->zone : NULL;
    loc->region = req->region != NULL && req->region[0] != '\0' ? req->region : NULL;
    if (loc->region == NULL && loc->zone != NULL)
        loc->region = sel_zone_region(s, loc->zone);
}

static int plan_zone_cmp(const sel_range *z, const char *region, const char *zone)
{
    int c = strcmp(z->region, region);
    return c != 0 ? c : strcmp(z->zone, zone);
}

static const sel_range *plan_find_zone(const sel_app *a, const sel_group *g, const char *region,
                                       const char *zone)
{
    size_t lo = g->zone0, hi = (size_t)g->zone0 + g->n_zones;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = plan_zone_cmp(&a->zones[mid], region, zone);
        if (c == 0)
            return &a->zones[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const sel_range *plan_find_region(const sel_app *a, const sel_group *g, const char *region)
{
    size_t lo = g->region0, hi = (size_t)g->region0 + g->n_regions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->regions[mid].region, region);
        if (c == 0)
            return &a->regions[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t sel_tiers(const sel_app *a, const sel_group *g, const sel_loc *loc,
                 sel_tier out[SEL_MAX_TIERS])
{
    size_t n = 0;
    const sel_range *z = NULL, *r = NULL;
    if (loc->zone != NULL && loc->region != NULL)
        z = plan_find_zone(a, g, loc->region, loc->zone);
    if (loc->region != NULL)
        r = plan_find_region(a, g, loc->region);
    if (z != NULL)
        out[n++] = (sel_tier){SEL_TIER_ZONE, z->lo, z->hi, &z->agg, z->zone};
    /* A tier is only worth trying when it is wider than the one before. */
    if (r != NULL && (n == 0 || r->hi - r->lo > z->hi - z->lo))
        out[n++] = (sel_tier){SEL_TIER_REGION, r->lo, r->hi, &r->agg, r->region};
    if (n == 0 || g->hi - g->lo > out[n - 1].hi - out[n - 1].lo)
        out[n++] = (sel_tier){SEL_TIER_ANY, g->lo, g->hi, &g->agg, ""};
    return n;
}

/* Does tier t hold an eligible server for f? Without requirements the sums
 * answer; with them, a walk of the tier for its `want` best candidates that
 * meet them (kept in *w: least-loaded's pick and alternates). */
typedef struct plan_walk {
    int v[1 + SEL_MAX_ALTERNATES];
    size_t n;
    bool done;
} plan_walk;

static bool plan_tier_eligible(const sel_snapshot *s, const sel_app *a, const sel_tier *t,
                               const sel_filter *f, size_t want, plan_walk *w)
{
    w->done = false;
    w->n = 0;
    if (t->agg->nonfull == 0)
        return false;
    if (f->req == NULL)
        return true;
    w->n = sel_tree_best(s, a, t->lo, t->hi, f, w->v, want);
    w->done = true;
    return w->n > 0;
}

static double plan_util(const sel_agg *g)
{
    return g->cap > 0 ? (double)g->used / (double)g->cap : 1.0;
}

static void plan_set(sel_plan *plan, int gi, size_t t, const plan_walk *w)
{
    plan->group = gi;
    plan->tier = (int)t;
    plan->walked = w->done;
    plan->n_best = w->n;
    memcpy(plan->best, w->v, w->n * sizeof(w->v[0]));
}

/* Picks the tier of group gi: the nearest with an eligible server whose
 * utilisation is below zone_spill, else the nearest with an eligible server
 * at all. Returns false when the group has none. */
static bool plan_group(const sel_snapshot *s, const sel_app *a, const sel_policy *p,
                       const sel_loc *loc, const sel_filter *f, int gi, size_t want, sel_plan *plan)
{
    plan_walk w, fallback = {{0}, 0, false};
    int fallback_tier = -1;
    plan->n_tiers = sel_tiers(a, &a->groups[gi], loc, plan->tiers);
    for (size_t t = 0; t < plan->n_tiers; t++) {
        if (!plan_tier_eligible(s, a, &plan->tiers[t], f, want, &w))
            continue;
        if (plan_util(plan->tiers[t].agg) < p->zone_spill) {
            plan_set(plan, gi, t, &w);
            return true;
        }
        if (fallback_tier < 0) {
            fallback_tier = (int)t;
            fallback = w;
        }
    }
    if (fallback_tier < 0)
        return false;
    plan_set(plan, gi, (size_t)fallback_tier, &fallback);
    return true;
}

/* Envoy's priority load: group g's health is its eligible share of capacity
 * times the overprovisioning factor, capped at 1; groups take load in rank
 * order up to their health, the shortfall spilling to the next. When the
 * healths sum to less than 1 they are normalised. Returns the group this
 * request starts at (drawn with st), or -1 when no group has any health. */
static int plan_draw_group(const sel_app *a, const sel_policy *p, sel_state *st, double *health0)
{
    double h[64], sum = 0;
    uint32_t n = a->n_groups < 64 ? a->n_groups : 64; /* deeper ranks keep strict order */
    for (uint32_t g = 0; g < n; g++) {
        const sel_group *gr = &a->groups[g];
        double x = gr->total_cap > 0
                       ? p->overprovision * (double)gr->agg.cap / (double)gr->total_cap
                       : 0.0;
        h[g] = x > 1.0 ? 1.0 : x;
        if (g == 0)
            *health0 = h[0];
        if (g == 0 && h[0] >= 1.0)
            return 0; /* the common case: no draw, no scan of other groups */
        sum += h[g];
    }
    if (sum <= 0)
        return -1;
    double r = sel_rand01(st), remaining = 1.0, acc = 0;
    for (uint32_t g = 0; g < n; g++) {
        double load = sum < 1.0 ? h[g] / sum : (h[g] < remaining ? h[g] : remaining);
        remaining -= load;
        acc += load;
        if (r < acc)
            return (int)g;
    }
    return (int)n - 1; /* rounding */
}

void sel_plan_make(const sel_snapshot *s, const sel_app *a, const sel_policy *p, const sel_loc *loc,
                   const sel_filter *f, size_t want, sel_state *st, sel_plan *plan)
{
    int start = -1;
    memset(plan, 0, sizeof(*plan));
    plan->group = -1;
    plan->health = 1.0;
    if (p->overprovision > 0 && a->n_groups > 1)
        start = plan_draw_group(a, p, st, &plan->health);
    /* The drawn group first; when it cannot take this request (requirements,
     * or no health anywhere), strict rank order. */
    if (start >= 0 && plan_group(s, a, p, loc, f, start, want, plan))
        return;
    for (uint32_t g = 0; g < a->n_groups; g++)
        if ((int)g != start && plan_group(s, a, p, loc, f, (int)g, want, plan))
            return;
    plan->group = -1;
}

/* Adds to alt the least-loaded members of [lo, hi) passing the request's
 * requirements and not yet listed, until it holds k. */
static void plan_alt_range(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                           const sel_request *req, int *skip, size_t *n_skip, int *alt, size_t *n,
                           size_t k)
{
    int found[SEL_MAX_ALTERNATES];
    if (*n >= k || lo >= hi)
        return;
    sel_filter f = {req, skip, *n_skip};
    size_t m = sel_tree_best(s, a, lo, hi, &f, found, k - *n);
    for (size_t i = 0; i < m; i++) {
        alt[(*n)++] = found[i];
        skip[(*n_skip)++] = found[i];
    }
}

size_t sel_alternates(const sel_snapshot *s, const sel_app *a, const sel_plan *plan,
                      const sel_loc *loc, const sel_request *req, int chosen, const int *pre,
                      size_t n_pre, int *alt, size_t k)
{
    int skip[SEL_MAX_ALTERNATES + 1];
    size_t n_skip = 0, n = 0, t = (size_t)plan->tier;
    const sel_request *r = sel_has_requirements(req) ? req : NULL;
    if (plan->group < 0 || k == 0)
        return 0;
    skip[n_skip++] = chosen;
    if (pre != NULL) {
        /* The chosen tier was already walked with the pick. */
        for (; n < n_pre && n < k; n++)
            alt[n] = skip[n_skip++] = pre[n];
        t++;
    }
    /* The chosen group from its chosen tier outwards, then the other groups
     * in rank order, each from the client's zone outwards. */
    for (; t < plan->n_tiers; t++)
        plan_alt_range(s, a, plan->tiers[t].lo, plan->tiers[t].hi, r, skip, &n_skip, alt, &n, k);
    for (uint32_t g = 0; g < a->n_groups && n < k; g++) {
        sel_tier tiers[SEL_MAX_TIERS];
        if ((int)g == plan->group || a->groups[g].agg.nonfull == 0)
            continue;
        size_t nt = sel_tiers(a, &a->groups[g], loc, tiers);
        for (size_t t = 0; t < nt; t++)
            plan_alt_range(s, a, tiers[t].lo, tiers[t].hi, r, skip, &n_skip, alt, &n, k);
    }
    return n;
}
