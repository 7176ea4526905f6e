/*
 * sel_choose: the rules of sel.h in order. Everything here is O(log n) in the
 * number of servers (binary searches and tree walks) unless the caller asks
 * for verdicts, or the request's requirements reject most candidates.
 */
#include "select/sel_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const sel_verdict_names[] = {
    [SEL_V_CHOSEN] = "chosen",
    [SEL_V_RANKED] = "ranked",
    [SEL_V_DOWN] = "down",
    [SEL_V_DRAINED] = "drained",
    [SEL_V_DISABLED] = "disabled",
    [SEL_V_NO_APP] = "no-app",
    [SEL_V_REQUIREMENTS] = "requirements",
    [SEL_V_FULL] = "full",
    [SEL_V_LOWER_GROUP] = "lower-group",
    [SEL_V_FARTHER] = "farther",
    [SEL_V_UNREACHABLE] = "unreachable",
    [SEL_V_EJECTED] = "ejected",
};

const char *sel_verdict_name(sel_verdict_kind k)
{
    if ((size_t)k < sizeof(sel_verdict_names) / sizeof(sel_verdict_names[0]))
        return sel_verdict_names[k];
    return "unknown";
}

void sel_policy_default(sel_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->strategy = SEL_LEAST_LOADED;
    p->zone_spill = 1.0;
    p->overprovision = 0.0;
    p->n_alternates = 2;
}

static void sel_result_init(sel_result *out)
{
    memset(out, 0, sizeof(*out));
    out->server = -1;
    out->slave = -1;
    for (size_t i = 0; i < SEL_MAX_ALTERNATES; i++)
        out->alternates[i] = -1;
}

/* Checks the client's sticky server. Returns its index when it can take the
 * client again; otherwise -1, with out->moved and out->reason saying why. */
static int sel_affinity(const sel_snapshot *s, const sel_request *req, sel_result *out)
{
    char detail[sizeof(((sel_verdict *)0)->detail)];
    const char *id = req->affinity_server;
    if (id == NULL || id[0] == '\0')
        return -1;
    int idx = sel_server_find(s, id);
    if (idx < 0) {
        out->moved = true;
        snprintf(out->reason, sizeof(out->reason), "server %s is no longer registered", id);
        return -1;
    }
    sel_verdict_kind k = sel_classify_sticky(s, idx, req, detail, sizeof(detail));
    if (k == SEL_V_RANKED)
        return idx;
    out->moved = true;
    switch (k) {
    case SEL_V_DOWN:
    case SEL_V_EJECTED:
    case SEL_V_DRAINED:
    case SEL_V_DISABLED:
        snprintf(out->reason, sizeof(out->reason), "server %s %s", id, sel_verdict_name(k));
        break;
    case SEL_V_NO_APP:
        snprintf(out->reason, sizeof(out->reason), "server %s no longer offers app '%s'", id,
                 req->app);
        break;
    case SEL_V_REQUIREMENTS:
        snprintf(out->reason, sizeof(out->reason), "server %s no longer meets requirements: %s", id,
                 detail);
        break;
    case SEL_V_UNREACHABLE:
        snprintf(out->reason, sizeof(out->reason), "server %s unreachable: %s", id, detail);
        break;
    default:
        snprintf(out->reason, sizeof(out->reason), "server %s full: %s", id, detail);
        break;
    }
    return -1;
}

/* The client's own pick (list mode, WO03/105439 claims 1, 12, 15): its index
 * when that server is eligible for this request, else -1 with
 * out->preferred_refused saying why. A pick of the client's sticky server is
 * judged as sticky (a drain does not refuse it). */
static int sel_preferred(const sel_snapshot *s, const sel_request *req, sel_result *out)
{
    char detail[sizeof(((sel_verdict *)0)->detail)];
    const char *id = req->preferred_server;
    if (id == NULL || id[0] == '\0')
        return -1;
    int idx = sel_server_find(s, id);
    if (idx < 0) {
        snprintf(out->preferred_refused, sizeof(out->preferred_refused),
                 "preferred server %s is not registered", id);
        return -1;
    }
    bool sticky = req->affinity_server != NULL && strcmp(req->affinity_server, id) == 0;
    sel_verdict_kind k = sticky ? sel_classify_sticky(s, idx, req, detail, sizeof(detail))
                                : sel_classify(s, idx, req, detail, sizeof(detail));
    if (k == SEL_V_RANKED)
        return idx;
    snprintf(out->preferred_refused, sizeof(out->preferred_refused), "preferred server %s %s: %s",
             id, sel_verdict_name(k), detail);
    return -1;
}

/* Prepends why nothing can serve to the reason (which may already say why
 * the client left its sticky server). */
static void sel_fail_reason(sel_result *out, const char *why)
{
    char moved[sizeof(out->reason)];
    size_t n = strlen(why);
    memcpy(moved, out->reason, sizeof(moved));
    if (n >= sizeof(out->reason))
        n = sizeof(out->reason) - 1;
    memcpy(out->reason, why, n);
    out->reason[n] = '\0';
    /* Truncation is acceptable: the first part is the one that matters. */
    if (out->moved && moved[0] != '\0' && n + 8 < sizeof(out->reason))
        snprintf(out->reason + n, sizeof(out->reason) - n, " (and %.*s)",
                 (int)(sizeof(out->reason) - n - 8), moved);
}

lb_err sel_choose(const sel_snapshot *snap, const sel_policy *policy, const sel_request *req,
                  sel_state *state, sel_result *out, sel_verdict *verdicts)
{
    sel_policy def_policy;
    sel_state def_state = {0, 0};
    sel_loc loc;
    sel_plan plan;
    char why[sizeof(out->reason)];

    if (out == NULL)
        return LB_EINVAL;
    sel_result_init(out);
    if (snap == NULL || req == NULL || req->app == NULL || req->app[0] == '\0') {
        snprintf(out->reason, sizeof(out->reason), "bad request: no app named");
        return LB_EINVAL;
    }
    if (policy == NULL) {
        sel_policy_default(&def_policy);
        policy = &def_policy;
    }
    if (state == NULL)
        state = &def_state;
    sel_loc_resolve(snap, req, &loc);
    const sel_app *a = sel_app_find(snap, req->app);
    if (a == NULL) {
        snprintf(out->reason, sizeof(out->reason), "unknown app '%s': no server offers it",
                 req->app);
        if (verdicts != NULL)
            sel_explain(snap, NULL, policy, req, &loc, NULL, out, verdicts);
        return LB_ENOAPP;
    }
    sel_filter f = {sel_has_requirements(req) ? req : NULL, NULL, 0};
    int aff = sel_affinity(snap, req, out);
    int pref = sel_preferred(snap, req, out);
    if (pref >= 0 && pref != aff) {
        /* the client asked for another server than its sticky one: its pick
         * wins (leaving the old server is its choice, not a move) */
        aff = pref;
    }
    size_t k =
        policy->n_alternates < SEL_MAX_ALTERNATES ? policy->n_alternates : SEL_MAX_ALTERNATES;
    sel_strategy strategy = sel_strategy_for(policy, a->name);
    /* least-loaded takes its pick and the alternates from one walk of the tier */
    size_t want = strategy == SEL_LEAST_LOADED ? 1 + k : 1;
    sel_plan_make(snap, a, policy, &loc, &f, want, state, &plan);
    if (plan.group >= 0 && aff < 0) {
        const sel_tier *t = &plan.tiers[plan.tier];
        if (strategy == SEL_LEAST_LOADED) {
            if (!plan.walked)
                plan.n_best = sel_tree_best(snap, a, t->lo, t->hi, &f, plan.best, want);
            plan.walked = true;
            out->server = plan.n_best > 0 ? plan.best[0] : -1;
        } else {
            out->server = sel_pick(snap, a, t->lo, t->hi, t->agg, strategy, &f, state);
        }
        /* The plan saw an eligible server in this tier, so a pick exists; a
         * failure here would be a bug, reported as no server, not a crash. */
        if (out->server < 0)
            plan.group = -1;
    }
    if (plan.group < 0 && aff < 0) {
        sel_no_server_reason(snap, a, req, why, sizeof(why));
        sel_fail_reason(out, why);
        if (verdicts != NULL)
            sel_explain(snap, a, policy, req, &loc, &plan, out, verdicts);
        return LB_ENOSERVER;
    }
    if (aff >= 0) {
        out->server = aff;
        out->preferred = aff == pref;
        out->affinity =
            !out->preferred || (req->affinity_server != NULL &&
                                strcmp(req->affinity_server, req->preferred_server) == 0);
    }
    /* When the chosen tier was walked (least-loaded's pick, or the plan's
     * check of a tier under requirements), its list is the tier's ranking:
     * without the chosen server it is the alternates in that tier, provided
     * it still holds k of them or held the whole tier (shorter than asked).
     * A sticky client then needs no second walk of the same tier. */
    int pre[1 + SEL_MAX_ALTERNATES];
    size_t n_pre = 0;
    bool have_pre = false;
    if (plan.group >= 0 && plan.walked) {
        for (size_t i = 0; i < plan.n_best; i++)
            if (plan.best[i] != out->server)
                pre[n_pre++] = plan.best[i];
        have_pre = n_pre >= k || plan.n_best < want;
    }
    /* a sticky client kept on a drained or full server may have no eligible
     * server besides it: then there are no alternates */
    out->n_alternates = plan.group < 0
                            ? 0
                            : sel_alternates(snap, a, &plan, &loc, req, out->server,
                                             have_pre ? pre : NULL, n_pre, out->alternates, k);
    out->slave = sel_slave_choose(snap, &snap->servers[out->server], req, &out->slave_rule);
    if (verdicts != NULL)
        sel_explain(snap, a, policy, req, &loc, &plan, out, verdicts);
    return LB_OK;
}
