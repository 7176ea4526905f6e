/*
 * Explain: a verdict for every server, the operator's dry run (lbctl explain).
 * It may scan and sort everything; the request path never calls it unless the
 * caller asked for verdicts.
 *
 * Eligible servers are ranked in the order alternates follow: the chosen group
 * from its chosen tier outwards, then the other groups by rank, each from the
 * client's zone outwards, least-loaded first inside a tier. Rank 0 is the
 * chosen server, 1..n_alternates the alternates, then the rest; the kind says
 * where a server stands: RANKED inside the chosen tier, FARTHER outside it,
 * LOWER_GROUP behind the chosen group (an overprovisioning spill past a better
 * group leaves that group's servers RANKED, with the spill in the detail).
 */
#include "select/sel_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct expl_entry {
    const sel_snapshot *s;
    int idx;
    int group;
    int gorder; /* 0 for the chosen group, then the others by rank */
    int torder; /* tier distance from the chosen tier (or from the zone) */
} expl_entry;

static int expl_cmp(const void *x, const void *y)
{
    const expl_entry *a = x, *b = y;
    if (a->gorder != b->gorder)
        return a->gorder < b->gorder ? -1 : 1;
    if (a->torder != b->torder)
        return a->torder < b->torder ? -1 : 1;
    if (a->idx == b->idx)
        return 0;
    return sel_less(a->s, a->idx, b->idx) ? -1 : 1;
}

static void expl_tier_name(const sel_app *a, const sel_plan *plan, const sel_tier *t, char *out,
                           size_t n)
{
    if (t->kind == SEL_TIER_ZONE)
        snprintf(out, n, "zone %s", t->name);
    else if (t->kind == SEL_TIER_REGION)
        snprintf(out, n, "region %s", t->name);
    else
        snprintf(out, n, "group %s", a->groups[plan->group].name);
}

static int expl_narrowest(const sel_tier *t, size_t nt, uint32_t pos)
{
    for (size_t i = 0; i < nt; i++)
        if (pos >= t[i].lo && pos < t[i].hi)
            return (int)i;
    return (int)nt;
}

static void expl_chosen(const sel_snapshot *s, const sel_app *a, const sel_policy *p,
                        const sel_plan *plan, const sel_result *res, sel_verdict *v)
{
    const sel_server *sv = &s->servers[res->server];
    char tier[48];
    v->kind = SEL_V_CHOSEN;
    v->rank = 0;
    if (res->preferred) {
        snprintf(v->detail, sizeof(v->detail),
                 "client's pick%s: eligible, %" PRIu64 "/%" PRIu32 " sessions",
                 res->affinity ? " (its server)" : "", sel_used(sv), sv->capacity);
        return;
    }
    if (res->affinity) {
        snprintf(v->detail, sizeof(v->detail),
                 "affinity: client's server, %" PRIu64 "/%" PRIu32 " sessions", sel_used(sv),
                 sv->capacity);
        return;
    }
    expl_tier_name(a, plan, &plan->tiers[plan->tier], tier, sizeof(tier));
    snprintf(v->detail, sizeof(v->detail), "%s in %s: %" PRIu64 "/%" PRIu32 " sessions",
             sel_strategy_name(sel_strategy_for(p, a->name)), tier, sel_used(sv), sv->capacity);
}

/* Kind and detail of an eligible, not chosen server at rank `rank`. */
static void expl_ranked(const sel_snapshot *s, const sel_app *a, const sel_plan *plan,
                        const expl_entry *e, size_t n_alt, int rank, sel_verdict *v)
{
    const sel_server *sv = &s->servers[e->idx];
    const sel_group *cg = &a->groups[plan->group], *g = &a->groups[e->group];
    char pre[24] = "", tier[48];
    v->rank = rank;
    if ((size_t)rank <= n_alt)
        snprintf(pre, sizeof(pre), "alternate %d: ", rank);
    if (e->gorder == 0 && e->torder == 0) {
        v->kind = SEL_V_RANKED;
        snprintf(v->detail, sizeof(v->detail), "%s%" PRIu64 "/%" PRIu32 " sessions", pre,
                 sel_used(sv), sv->capacity);
    } else if (e->gorder == 0) {
        v->kind = SEL_V_FARTHER;
        expl_tier_name(a, plan, &plan->tiers[plan->tier], tier, sizeof(tier));
        snprintf(v->detail, sizeof(v->detail), "%szone %s, region %s; %s used", pre, sv->zone,
                 sv->region, tier);
    } else if (g->rank > cg->rank) {
        v->kind = SEL_V_LOWER_GROUP;
        snprintf(v->detail, sizeof(v->detail), "%sgroup %s (rank %d) behind %s (rank %d)", pre,
                 g->name, g->rank, cg->name, cg->rank);
    } else {
        v->kind = SEL_V_RANKED;
        snprintf(v->detail, sizeof(v->detail),
                 "%sgroup %s: spilled to %s (overprovisioning, health %.0f%%)", pre, g->name,
                 cg->name, plan->health * 100);
    }
}

static void expl_exclusions(const sel_snapshot *s, const sel_request *req, sel_verdict *v,
                            expl_entry *e, size_t *n_e)
{
    for (size_t i = 0; i < s->n_servers; i++) {
        v[i].kind = sel_classify(s, (int)i, req, v[i].detail, sizeof(v[i].detail));
        v[i].rank = -1;
        if (v[i].kind == SEL_V_RANKED && e != NULL)
            e[(*n_e)++] = (expl_entry){s, (int)i, -1, 0, 0};
    }
}

void sel_explain(const sel_snapshot *s, const sel_app *a, const sel_policy *p,
                 const sel_request *req, const sel_loc *loc, const sel_plan *plan,
                 const sel_result *res, sel_verdict *v)
{
    size_t n_e = 0;
    bool ranked = a != NULL && plan != NULL && plan->group >= 0 && res->server >= 0;
    expl_entry *e = ranked ? calloc(s->n_servers ? s->n_servers : 1, sizeof(*e)) : NULL;
    sel_tier *tiers = ranked ? calloc(a->n_groups, SEL_MAX_TIERS * sizeof(*tiers)) : NULL;
    size_t *nt = ranked ? calloc(a->n_groups, sizeof(*nt)) : NULL;

    expl_exclusions(s, req, v, e, &n_e);
    if (!ranked && res->server >= 0 && (res->affinity || res->preferred)) {
        /* a sticky client kept on a drained or full server, nothing else eligible */
        expl_chosen(s, a, p, plan, res, &v[res->server]);
        goto out;
    }
    if (e == NULL || tiers == NULL || nt == NULL)
        goto out; /* no ranking (or no memory for one): exclusions only */
    for (uint32_t g = 0; g < a->n_groups; g++)
        nt[g] = sel_tiers(a, &a->groups[g], loc, tiers + g * SEL_MAX_TIERS);
    size_t m = 0;
    for (size_t i = 0; i < n_e; i++) {
        const sel_member *mb = sel_member_of(s, a, e[i].idx);
        if (e[i].idx == res->server || mb == NULL)
            continue;
        int g = (int)mb->group;
        int j = expl_narrowest(tiers + g * SEL_MAX_TIERS, nt[g], mb->pos);
        e[m] = e[i];
        e[m].group = g;
        e[m].gorder = g == plan->group ? 0 : (g < plan->group ? g + 1 : g);
        e[m].torder = g == plan->group ? (j > plan->tier ? j - plan->tier : 0) : j;
        m++;
    }
    qsort(e, m, sizeof(*e), expl_cmp);
    expl_chosen(s, a, p, plan, res, &v[res->server]);
    for (size_t i = 0; i < m; i++)
        expl_ranked(s, a, plan, &e[i], res->n_alternates, (int)i + 1, &v[e[i].idx]);
out:
    free(e);
    free(tiers);
    free(nt);
}
