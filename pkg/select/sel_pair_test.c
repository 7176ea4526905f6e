/*
 * Model test of the server-slave pairing rules on random clusters: 400
 * servers (some reachable only via given slaves or zones, two architectures,
 * two apps), 24 slaves (some fronting one app only), 4,000 random requests
 * with arch requirements, the client's pick, sticky servers and session
 * slaves. Every answer is checked against rules re-derived here by brute
 * force: the server offers the app, meets the arch and is reachable; the slave
 * fronts the app and reaches the server; a pick is honoured exactly when it
 * is eligible; a session slave is kept when it still can serve.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "select/sel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 400
#define NL 24
#define NREQ 4000

static const char *const zones[] = {"a", "b", "c", "d"};
static const char *const arches[] = {"x86_64", "aarch64"};
static const char *const app_sets[][2] = {{"echo", NULL}, {"web", NULL}, {"echo", "web"}};

typedef struct world {
    sel_server srv[NS];
    sel_slave slv[NL];
    char sid[NS][16], lid[NL][16];
    const char *via[NS][2];
    const char *apps[NS][2];
    const char *lapps[NL][1];
    sel_snapshot *snap;
} world;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static bool in_list(const char *const *l, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] != NULL && s != NULL && strcmp(l[i], s) == 0)
            return true;
    return false;
}

static bool fronts(const sel_slave *l, const char *app)
{
    return l->n_apps == 0 || in_list(l->apps, l->n_apps, app);
}

static bool reaches(const sel_slave *l, const sel_server *s)
{
    return s->n_reachable_via == 0 || in_list(s->reachable_via, s->n_reachable_via, l->id) ||
           in_list(s->reachable_via, s->n_reachable_via, l->zone);
}

static bool reachable(const world *w, const sel_server *s, const char *app)
{
    if (s->n_reachable_via == 0)
        return true;
    for (size_t i = 0; i < NL; i++)
        if (fronts(&w->slv[i], app) && reaches(&w->slv[i], s))
            return true;
    return false;
}

static bool eligible(const world *w, const sel_server *s, const sel_request *q, bool sticky)
{
    return s->up && (sticky || !s->drained) && !s->disabled &&
           in_list(s->apps, s->n_apps, q->app) &&
           (q->arch == NULL || strcmp(q->arch, s->arch) == 0) && reachable(w, s, q->app) &&
           (sticky || s->sessions + s->pending < s->capacity);
}

static void build(world *w)
{
    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < NL; i++) {
        sel_slave *l = &w->slv[i];
        snprintf(w->lid[i], sizeof(w->lid[i]), "sl%02zu", i);
        l->id = w->lid[i];
        l->zone = zones[rnd(4)];
        l->region = "r1";
        l->limit = 100;
        l->load = rnd(130); /* some over their limit */
        if (rnd(4) == 0) {
            w->lapps[i][0] = rnd(2) ? "echo" : "web";
            l->apps = w->lapps[i];
            l->n_apps = 1;
        }
    }
    for (size_t i = 0; i < NS; i++) {
        sel_server *s = &w->srv[i];
        snprintf(w->sid[i], sizeof(w->sid[i]), "s%03zu", i);
        s->id = w->sid[i];
        s->zone = zones[rnd(4)];
        s->region = "r1";
        s->group = rnd(5) ? "primary" : "backup";
        s->group_rank = strcmp(s->group, "primary") == 0 ? 0 : 1;
        s->capacity = 1 + rnd(20);
        s->sessions = rnd(s->capacity + 2);
        s->up = rnd(10) != 0;
        s->drained = rnd(12) == 0;
        s->disabled = rnd(15) == 0;
        const char *const *set = app_sets[rnd(3)];
        w->apps[i][0] = set[0];
        w->apps[i][1] = set[1];
        s->apps = w->apps[i];
        s->n_apps = set[1] != NULL ? 2 : 1;
        s->cores = 8;
        s->arch = arches[rnd(2)];
        s->os = "Linux";
        if (rnd(3) == 0) { /* reachable only via a slave id, a zone, or a slave that is gone */
            uint32_t k = rnd(3);
            w->via[i][0] = k == 0 ? w->lid[rnd(NL)] : k == 1 ? zones[rnd(4)] : "gone";
            w->via[i][1] = rnd(2) ? w->lid[rnd(NL)] : NULL;
            s->reachable_via = w->via[i];
            s->n_reachable_via = w->via[i][1] != NULL ? 2 : 1;
        }
    }
    assert_int_equal(sel_snapshot_build(w->srv, NS, w->slv, NL, &w->snap), LB_OK);
}

static int find_slave(const world *w, const char *id)
{
    for (size_t i = 0; id != NULL && i < NL; i++)
        if (strcmp(w->slv[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* The pairing of one answer against the brute-force rules. */
static void check_pairing(const world *w, const sel_request *q, const sel_result *r, lb_err rc)
{
    if (rc != LB_OK)
        return;
    const sel_server *s = sel_snapshot_server(w->snap, r->server);
    bool sticky = (q->affinity_server != NULL && strcmp(q->affinity_server, s->id) == 0);
    assert_true(eligible(w, s, q, sticky));
    for (size_t k = 0; k < r->n_alternates; k++)
        assert_true(eligible(w, sel_snapshot_server(w->snap, r->alternates[k]), q, false));
    if (r->slave >= 0) {
        const sel_slave *l = sel_snapshot_slave(w->snap, r->slave);
        if (!fronts(l, q->app) || !reaches(l, s))
            fail_msg("server %s paired with slave %s (app %s)", s->id, l->id, q->app);
    } else {
        for (size_t i = 0; i < NL; i++)
            assert_false(fronts(&w->slv[i], q->app) && reaches(&w->slv[i], s));
    }
    /* the client's pick: honoured exactly when eligible */
    if (q->preferred_server != NULL) {
        const sel_server *p = sel_snapshot_server(w->snap, atoi(q->preferred_server + 1));
        bool psticky = q->affinity_server != NULL && strcmp(q->affinity_server, p->id) == 0;
        bool ok = eligible(w, p, q, psticky);
        assert_int_equal(r->preferred, ok);
        assert_int_equal(r->preferred_refused[0] == '\0', ok);
        if (ok)
            assert_string_equal(s->id, p->id);
    } else {
        assert_false(r->preferred);
    }
    /* the session slave, while it can still serve this server */
    int as = find_slave(w, q->affinity_slave);
    if (as >= 0 && fronts(&w->slv[as], q->app) && reaches(&w->slv[as], s) &&
        (s->n_reachable_via > 0 || strcmp(w->slv[as].zone, s->zone) == 0 ||
         (q->affinity_server != NULL && strcmp(q->affinity_server, s->id) == 0)))
        assert_int_equal(r->slave, as);
}

static void test_random_pairings(void **state)
{
    (void)state;
    static world w;
    static sel_verdict v[NS];
    char pick[16];
    size_t served = 0, picks_ok = 0, via_served = 0;
    build(&w);
    for (int i = 0; i < NREQ; i++) {
        sel_request q = {.app = rnd(2) ? "echo" : "web",
                         .client_id = "c",
                         .zone = zones[rnd(4)],
                         .requesting_slave = w.lid[rnd(NL)]};
        if (rnd(3) == 0)
            q.arch = arches[rnd(2)];
        if (rnd(3) == 0) {
            snprintf(pick, sizeof(pick), "%s", w.sid[rnd(NS)]);
            q.preferred_server = pick;
        }
        if (rnd(4) == 0)
            q.affinity_server = w.sid[rnd(NS)];
        if (rnd(3) == 0)
            q.affinity_slave = w.lid[rnd(NL)];
        sel_state st = {(uint64_t)i + 1, 0};
        sel_result r;
        lb_err rc = sel_choose(w.snap, NULL, &q, &st, &r, i % 10 == 0 ? v : NULL);
        check_pairing(&w, &q, &r, rc);
        if (i % 10 == 0) /* explain: an unreachable server is never ranked */
            for (size_t k = 0; k < NS; k++)
                if (!reachable(&w, &w.srv[k], q.app) && v[k].rank >= 0)
                    fail_msg("unreachable %s ranked %d (%s)", w.srv[k].id, v[k].rank, v[k].detail);
        served += rc == LB_OK;
        picks_ok += rc == LB_OK && r.preferred;
        via_served += rc == LB_OK && w.srv[r.server].n_reachable_via > 0;
    }
    /* the random cluster exercised every rule, not only the easy paths */
    assert_true(served > NREQ / 2);
    assert_true(picks_ok > 50);
    assert_true(via_served > 50);
    sel_snapshot_free(&w.snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_pairings)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
