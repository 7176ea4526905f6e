/*
 * Table-driven tests of the selection policy: each case is a small cluster, a
 * policy, a request and what must come out (server, alternates, slave, flags,
 * reason, verdicts). Every case also runs with explain on and checks the
 * verdict invariants, and checks that explain does not change the decision.
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

#define MAXS 12
#define MAXL 6
#define GiB (1024ULL * 1024 * 1024)
#define MiB (1024ULL * 1024)

typedef struct tsrv {
    const char *id, *zone, *region, *group;
    int rank;
    uint32_t cap, sessions, pending; /* cap 0 means 10 unless flags has "nocap" */
    const char *flags;               /* "down", "drained", "disabled", "nocap" */
    const char *apps;                /* comma-separated; NULL means "echo" */
    double cpu;                      /* load of 8 cores */
    uint64_t mem_free;               /* 0 means 8 GiB */
    const char *labels;              /* "gpu,disk=ssd" */
    const char *arch, *os;           /* advertised resources */
    const char *via;                 /* reachable_via, comma-separated */
} tsrv;

typedef struct tslave {
    const char *id, *zone;
    uint32_t load, limit;
    const char *apps; /* comma-separated apps fronted; NULL: all */
} tslave;

typedef struct tverd {
    const char *id;
    sel_verdict_kind kind;
    int rank;           /* checked when != -2 */
    const char *detail; /* substring, or NULL */
} tverd;

typedef struct tcase {
    const char *name;
    tsrv srv[MAXS];
    tslave slv[MAXL];
    const char *strategy; /* NULL: least-loaded */
    double zone_spill;    /* 0: default */
    double overprovision;
    int n_alt; /* 0: default (2); -1: none */
    /* request */
    const char *app, *zone, *region, *labels, *affinity, *slave;
    double min_cpu;
    uint64_t min_mem;
    const char *arch, *os, *preferred, *aff_slave;
    /* expected */
    lb_err rc;
    const char *chosen;
    const char *alts;      /* comma-separated ids; NULL: not checked; "": none */
    const char *slave_out; /* NULL: not checked; "-": none */
    bool kept, moved;      /* sel_result.affinity, .moved */
    const char *reason;    /* substring, NULL: not checked */
    bool pref;             /* sel_result.preferred */
    const char *refused;   /* substring of preferred_refused, NULL: not checked */
    const char *slave_why; /* substring of slave_reason, NULL: not checked */
    tverd v[MAXS];
} tcase;

/* --- fixture: turns a tcase into snapshot inputs ---------------------------- */

typedef struct fixture {
    sel_server srv[MAXS];
    sel_slave slv[MAXL];
    char abuf[MAXS][64], lbuf[MAXS][96], rbuf[96], vbuf[MAXS][64], sabuf[MAXL][64];
    const char *apps[MAXS][6], *via[MAXS][6], *sapps[MAXL][6];
    sel_label labels[MAXS][6];
    const char *rlabels[6];
    size_t n_srv, n_slv;
    sel_snapshot *snap;
    sel_policy pol;
    sel_request req;
} fixture;

/* Splits buf in place on ',' into out (at most max); returns the count. */
static size_t split(char *buf, const char **out, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL && n < max; t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void fixture_server(fixture *fx, size_t i, const tsrv *t)
{
    sel_server *s = &fx->srv[i];
    const char *kv[6];
    memset(s, 0, sizeof(*s));
    s->id = t->id;
    s->zone = t->zone ? t->zone : "a";
    s->region = t->region ? t->region : "r1";
    s->group = t->group ? t->group : "primary";
    s->group_rank = t->rank;
    bool nocap = t->flags && strstr(t->flags, "nocap");
    s->capacity = t->cap ? t->cap : (nocap ? 0 : 10);
    s->sessions = t->sessions;
    s->pending = t->pending;
    s->up = !(t->flags && strstr(t->flags, "down"));
    s->drained = t->flags && strstr(t->flags, "drained");
    s->disabled = t->flags && strstr(t->flags, "disabled");
    snprintf(fx->abuf[i], sizeof(fx->abuf[i]), "%s", t->apps ? t->apps : "echo");
    s->n_apps = split(fx->abuf[i], fx->apps[i], 6);
    s->apps = fx->apps[i];
    s->cores = 8;
    s->cpu_load = t->cpu;
    s->mem_total = 16 * GiB;
    s->mem_free = t->mem_free ? t->mem_free : 8 * GiB;
    snprintf(fx->lbuf[i], sizeof(fx->lbuf[i]), "%s", t->labels ? t->labels : "");
    size_t nl = split(fx->lbuf[i], kv, 6);
    for (size_t j = 0; j < nl; j++) {
        char *eq = strchr((char *)kv[j], '=');
        if (eq != NULL)
            *eq = '\0';
        fx->labels[i][j] = (sel_label){kv[j], eq ? eq + 1 : ""};
    }
    s->labels = fx->labels[i];
    s->n_labels = nl;
    s->arch = t->arch;
    s->os = t->os;
    snprintf(fx->vbuf[i], sizeof(fx->vbuf[i]), "%s", t->via ? t->via : "");
    s->n_reachable_via = split(fx->vbuf[i], fx->via[i], 6);
    s->reachable_via = fx->via[i];
}

static void fixture_build(fixture *fx, const tcase *c)
{
    memset(fx, 0, sizeof(*fx));
    for (size_t i = 0; i < MAXS && c->srv[i].id; i++)
        fixture_server(fx, fx->n_srv++, &c->srv[i]);
    for (size_t i = 0; i < MAXL && c->slv[i].id; i++, fx->n_slv++) {
        fx->slv[i] = (sel_slave){c->slv[i].id,    c->slv[i].zone, "r1", c->slv[i].load,
                                 c->slv[i].limit, fx->sapps[i],   0};
        snprintf(fx->sabuf[i], sizeof(fx->sabuf[i]), "%s", c->slv[i].apps ? c->slv[i].apps : "");
        fx->slv[i].n_apps = split(fx->sabuf[i], fx->sapps[i], 6);
    }
    assert_int_equal(sel_snapshot_build(fx->srv, fx->n_srv, fx->slv, fx->n_slv, &fx->snap), LB_OK);
    sel_policy_default(&fx->pol);
    if (c->strategy)
        assert_true(sel_strategy_parse(c->strategy, &fx->pol.strategy));
    if (c->zone_spill > 0)
        fx->pol.zone_spill = c->zone_spill;
    fx->pol.overprovision = c->overprovision;
    if (c->n_alt)
        fx->pol.n_alternates = c->n_alt < 0 ? 0 : (size_t)c->n_alt;
    fx->req = (sel_request){.app = c->app ? c->app : "echo",
                            .client_id = "c1",
                            .zone = c->zone,
                            .region = c->region,
                            .min_cpu = c->min_cpu,
                            .min_mem = c->min_mem,
                            .affinity_server = c->affinity,
                            .requesting_slave = c->slave,
                            .arch = c->arch,
                            .os = c->os,
                            .preferred_server = c->preferred,
                            .affinity_slave = c->aff_slave};
    if (c->labels) {
        snprintf(fx->rbuf, sizeof(fx->rbuf), "%s", c->labels);
        fx->req.n_labels = split(fx->rbuf, fx->rlabels, 6);
        fx->req.labels = fx->rlabels;
    }
}

static int server_idx(const fixture *fx, const char *id)
{
    for (size_t i = 0; i < fx->n_srv; i++)
        if (strcmp(fx->srv[i].id, id) == 0)
            return (int)i;
    fail_msg("no server %s in the case", id);
    return -1;
}

static const char *sid(const fixture *fx, int idx)
{
    return idx >= 0 ? sel_snapshot_server(fx->snap, idx)->id : "-";
}

/* Verdict invariants that hold for every case. */
static void check_verdicts(const fixture *fx, const sel_result *r, const sel_verdict *v)
{
    for (size_t i = 0; i < fx->n_srv; i++) {
        assert_true(v[i].kind <= SEL_V_UNREACHABLE);
        assert_true(v[i].detail[0] != '\0');
        bool excluded =
            (v[i].kind >= SEL_V_DOWN && v[i].kind <= SEL_V_FULL) || v[i].kind == SEL_V_UNREACHABLE;
        if (excluded)
            assert_int_equal(v[i].rank, -1);
        else
            assert_true(v[i].rank >= 0);
        assert_int_equal(v[i].kind == SEL_V_CHOSEN, (int)i == r->server);
    }
    if (r->server >= 0)
        assert_int_equal(v[r->server].rank, 0);
    for (size_t k = 0; k < r->n_alternates; k++)
        assert_int_equal(v[r->alternates[k]].rank, (int)k + 1);
}

static void check_case(const tcase *c)
{
    fixture fx;
    sel_result r, r2;
    sel_verdict v[MAXS];
    sel_state st = {42, 0}, st2 = {42, 0};

    fixture_build(&fx, c);
    memset(v, 0xff, sizeof(v));
    lb_err rc = sel_choose(fx.snap, &fx.pol, &fx.req, &st, &r, v);
    lb_err rc2 = sel_choose(fx.snap, &fx.pol, &fx.req, &st2, &r2, NULL);
    if (rc != c->rc || (c->chosen && strcmp(sid(&fx, r.server), c->chosen) != 0))
        fail_msg("%s: rc %d server %s reason '%s' (want rc %d server %s)", c->name, rc,
                 sid(&fx, r.server), r.reason, c->rc, c->chosen ? c->chosen : "?");
    assert_int_equal(rc, rc2);
    assert_int_equal(r.server, r2.server);
    assert_int_equal(r.n_alternates, r2.n_alternates);
    if (c->alts) {
        char got[128] = "";
        for (size_t k = 0; k < r.n_alternates; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "," : "",
                     sid(&fx, r.alternates[k]));
        if (strcmp(got, c->alts) != 0)
            fail_msg("%s: alternates '%s', want '%s'", c->name, got, c->alts);
    }
    if (c->slave_out) {
        const char *got = r.slave >= 0 ? sel_snapshot_slave(fx.snap, r.slave)->id : "-";
        if (strcmp(got, c->slave_out) != 0)
            fail_msg("%s: slave %s, want %s", c->name, got, c->slave_out);
    }
    if (r.affinity != c->kept || r.moved != c->moved)
        fail_msg("%s: affinity %d moved %d (reason '%s')", c->name, r.affinity, r.moved, r.reason);
    if (c->reason && strstr(r.reason, c->reason) == NULL)
        fail_msg("%s: reason '%s' lacks '%s'", c->name, r.reason, c->reason);
    if (r.preferred != c->pref)
        fail_msg("%s: preferred %d (refused '%s')", c->name, r.preferred, r.preferred_refused);
    if ((c->refused && strstr(r.preferred_refused, c->refused) == NULL) ||
        (!c->refused && r.preferred_refused[0] != '\0'))
        fail_msg("%s: preferred_refused '%s', want '%s'", c->name, r.preferred_refused,
                 c->refused ? c->refused : "");
    char why[160];
    sel_slave_reason(fx.snap, &fx.req, &r, why, sizeof(why));
    if (c->slave_why && strstr(why, c->slave_why) == NULL)
        fail_msg("%s: slave_reason '%s' lacks '%s'", c->name, why, c->slave_why);
    check_verdicts(&fx, &r, v);
    for (size_t k = 0; k < MAXS && c->v[k].id; k++) {
        const sel_verdict *x = &v[server_idx(&fx, c->v[k].id)];
        if (x->kind != c->v[k].kind || (c->v[k].rank != -2 && x->rank != c->v[k].rank) ||
            (c->v[k].detail && strstr(x->detail, c->v[k].detail) == NULL))
            fail_msg("%s: verdict of %s is %s rank %d '%s', want %s rank %d '%s'", c->name,
                     c->v[k].id, sel_verdict_name(x->kind), x->rank, x->detail,
                     sel_verdict_name(c->v[k].kind), c->v[k].rank,
                     c->v[k].detail ? c->v[k].detail : "");
    }
    sel_snapshot_free(&fx.snap);
    assert_null(fx.snap);
}

#define ANY (-2)

/* clang-format off */
static const tcase cases[] = {
    {.name = "single server", .srv = {{.id = "s1"}}, .chosen = "s1", .alts = "",
     .v = {{"s1", SEL_V_CHOSEN, 0, "least-loaded in"}}},
    {.name = "least utilisation wins", .srv = {{.id = "s1", .sessions = 6}, {.id = "s2", .sessions = 3},
     {.id = "s3", .sessions = 5}}, .chosen = "s2", .alts = "s3,s1"},
    {.name = "capacity weights utilisation", .srv = {{.id = "s1", .cap = 10, .sessions = 5},
     {.id = "s2", .cap = 100, .sessions = 40}}, .chosen = "s2", .alts = "s1"},
    {.name = "tie: more free sessions first", .srv = {{.id = "s1", .cap = 10, .sessions = 5},
     {.id = "s2", .cap = 20, .sessions = 10}}, .chosen = "s2"},
    {.name = "tie: id order whatever the input order", .srv = {{.id = "sb"}, {.id = "sc"}, {.id = "sa"}},
     .chosen = "sa", .alts = "sb,sc"},
    {.name = "pending counts in the load", .srv = {{.id = "s1", .sessions = 2, .pending = 5},
     {.id = "s2", .sessions = 6}}, .chosen = "s2"},
    {.name = "full counting pending", .srv = {{.id = "s1", .sessions = 8, .pending = 2},
     {.id = "s2", .sessions = 9}}, .chosen = "s2", .alts = "",
     .v = {{"s1", SEL_V_FULL, -1, "10/10 sessions (8 reported + 2 pending)"}}},
    {.name = "capacity zero is full", .srv = {{.id = "s1", .flags = "nocap"}, {.id = "s2", .sessions = 9}},
     .chosen = "s2", .v = {{"s1", SEL_V_FULL, -1, "0/0 sessions"}}},
    {.name = "down excluded", .srv = {{.id = "s1", .flags = "down"}, {.id = "s2", .sessions = 9}},
     .chosen = "s2", .v = {{"s1", SEL_V_DOWN, -1, "down"}}},
    {.name = "drained excluded", .srv = {{.id = "s1", .flags = "drained"}, {.id = "s2", .sessions = 9}},
     .chosen = "s2", .v = {{"s1", SEL_V_DRAINED, -1, "drained"}}},
    {.name = "disabled excluded", .srv = {{.id = "s1", .flags = "disabled"}, {.id = "s2", .sessions = 9}},
     .chosen = "s2", .v = {{"s1", SEL_V_DISABLED, -1, "disabled"}}},
    {.name = "app not offered", .srv = {{.id = "s1", .apps = "web"}, {.id = "s2", .apps = "web,echo", .sessions = 9}},
     .chosen = "s2", .v = {{"s1", SEL_V_NO_APP, -1, "does not offer app 'echo'"}}},
    {.name = "unknown app", .srv = {{.id = "s1"}, {.id = "s2", .flags = "down"}}, .app = "nope",
     .rc = LB_ENOAPP, .reason = "unknown app 'nope': no server offers it",
     .v = {{"s1", SEL_V_NO_APP, -1, "nope"}, {"s2", SEL_V_DOWN, -1, NULL}}},
    {.name = "app offered only by a down server", .srv = {{.id = "s1", .flags = "down"}},
     .rc = LB_ENOSERVER, .reason = "no eligible server for app 'echo': 1 down"},
    {.name = "no eligible server: counts", .srv = {{.id = "s1", .flags = "down"}, {.id = "s2", .flags = "down"},
     {.id = "s3", .sessions = 10}, {.id = "s4", .flags = "drained"}}, .rc = LB_ENOSERVER,
     .reason = "no eligible server for app 'echo': 2 down, 1 drained, 1 full"},
    {.name = "no eligible server: requirements counted", .srv = {{.id = "s1", .labels = "gpu=no"},
     {.id = "s2"}, {.id = "s3", .sessions = 10, .labels = "gpu"}}, .labels = "gpu=yes",
     .rc = LB_ENOSERVER, .reason = "'echo': 3 fail the requirements",
     .v = {{"s1", SEL_V_REQUIREMENTS, -1, "needs label gpu=yes, has gpu=no"},
           {"s2", SEL_V_REQUIREMENTS, -1, "needs label gpu=yes, has none"}}},
    {.name = "group fallback: best group all down", .srv = {{.id = "p1", .flags = "down"},
     {.id = "p2", .flags = "down"}, {.id = "b1", .group = "backup", .rank = 1, .sessions = 9}},
     .chosen = "b1", .v = {{"p1", SEL_V_DOWN, -1, NULL}, {"b1", SEL_V_CHOSEN, 0, "group backup"}}},
    {.name = "group fallback: best group all full", .srv = {{.id = "p1", .sessions = 10},
     {.id = "p2", .sessions = 7, .pending = 3}, {.id = "b1", .group = "backup", .rank = 1, .sessions = 9}},
     .chosen = "b1", .v = {{"p2", SEL_V_FULL, -1, "(7 reported + 3 pending)"}}},
    {.name = "group fallback: best group all drained", .srv = {{.id = "p1", .flags = "drained"},
     {.id = "b1", .group = "backup", .rank = 1}, {.id = "b2", .group = "backup", .rank = 1, .sessions = 1}},
     .chosen = "b1", .alts = "b2"},
    {.name = "strict groups: loaded primary beats empty backup", .srv = {{.id = "p1", .sessions = 9},
     {.id = "b1", .group = "backup", .rank = 1}}, .chosen = "p1", .alts = "b1",
     .v = {{"b1", SEL_V_LOWER_GROUP, 1, "group backup (rank 1) behind primary (rank 0)"}}},
    {.name = "three groups, the two best empty", .srv = {{.id = "p1", .flags = "down"},
     {.id = "b1", .group = "backup", .rank = 1, .flags = "disabled"},
     {.id = "c1", .group = "cold", .rank = 5}}, .chosen = "c1"},
    {.name = "zone preferred over load", .srv = {{.id = "a1", .zone = "a", .sessions = 5},
     {.id = "b1", .zone = "b"}}, .zone = "a", .chosen = "a1", .alts = "b1",
     .v = {{"b1", SEL_V_FARTHER, 1, "zone b, region r1; zone a used"}}},
    {.name = "zone spill over threshold", .srv = {{.id = "a1", .zone = "a", .sessions = 9},
     {.id = "b1", .zone = "b", .sessions = 5}}, .zone = "a", .zone_spill = 0.8, .chosen = "b1",
     .alts = "a1", .v = {{"a1", SEL_V_RANKED, 1, NULL}}},
    {.name = "zone under threshold stays", .srv = {{.id = "a1", .zone = "a", .sessions = 7},
     {.id = "b1", .zone = "b"}}, .zone = "a", .zone_spill = 0.8, .chosen = "a1"},
    {.name = "zone full spills to region before anywhere", .srv = {{.id = "a1", .zone = "a", .sessions = 10},
     {.id = "b1", .zone = "b", .sessions = 5}, {.id = "x1", .zone = "x", .region = "r2"}},
     .zone = "a", .chosen = "b1", .alts = "x1",
     .v = {{"a1", SEL_V_FULL, -1, NULL}, {"x1", SEL_V_FARTHER, 1, "region r1 used"}}},
    {.name = "region derived from the zone's servers", .srv = {{.id = "z1", .zone = "a", .apps = "web"},
     {.id = "b1", .zone = "b", .sessions = 5}, {.id = "x1", .zone = "x", .region = "r2"}},
     .zone = "a", .chosen = "b1"},
    {.name = "explicit region for an unknown zone", .srv = {{.id = "e1", .zone = "e", .region = "eu", .sessions = 6},
     {.id = "u1", .zone = "u", .region = "us"}}, .zone = "nowhere", .region = "eu", .chosen = "e1",
     .alts = "u1"},
    {.name = "every tier over: nearest with room", .srv = {{.id = "a1", .zone = "a", .sessions = 9},
     {.id = "b1", .zone = "b", .sessions = 8}, {.id = "x1", .zone = "x", .region = "r2", .sessions = 7}},
     .zone = "a", .zone_spill = 0.5, .chosen = "a1", .alts = "b1,x1"},
    {.name = "no client zone: anywhere", .srv = {{.id = "a1", .zone = "a", .sessions = 5},
     {.id = "x1", .zone = "x", .region = "r2"}}, .chosen = "x1"},
    {.name = "affinity kept over load, zone and group", .srv = {{.id = "a1", .zone = "a"},
     {.id = "s9", .zone = "b", .group = "backup", .rank = 1, .sessions = 8}}, .zone = "a",
     .affinity = "s9", .kept = true, .chosen = "s9", .alts = "a1",
     .v = {{"s9", SEL_V_CHOSEN, 0, "affinity"}, {"a1", SEL_V_RANKED, 1, NULL}}},
    {.name = "affinity to a drained server is kept (drain stops new sessions only)",
     .srv = {{.id = "s1", .flags = "drained"}, {.id = "s2", .sessions = 5}}, .affinity = "s1",
     .kept = true, .chosen = "s1", .alts = "s2"},
    {.name = "a new client avoids the drained server", .srv = {{.id = "s1", .flags = "drained"},
     {.id = "s2", .sessions = 5}}, .chosen = "s2", .alts = "",
     .v = {{"s1", SEL_V_DRAINED, -1, "drained by an operator"}}},
    {.name = "affinity to a full server is kept (its session is counted there)",
     .srv = {{.id = "s1", .sessions = 9, .pending = 1}, {.id = "s2", .sessions = 5}},
     .affinity = "s1", .kept = true, .chosen = "s1", .alts = "s2"},
    {.name = "affinity to a drained server that fails the requirements moves",
     .srv = {{.id = "s1", .flags = "drained", .cpu = 7.5}, {.id = "s2", .sessions = 5, .cpu = 1}},
     .affinity = "s1", .min_cpu = 2, .chosen = "s2", .moved = true,
     .reason = "server s1 no longer meets requirements: needs 2.0 free cpu, has 0.5"},
    {.name = "affinity to a down server moves", .srv = {{.id = "s1", .flags = "down"}, {.id = "s2"}},
     .affinity = "s1", .chosen = "s2", .moved = true, .reason = "server s1 down"},
    {.name = "affinity to a disabled server moves", .srv = {{.id = "s1", .flags = "disabled"}, {.id = "s2"}},
     .affinity = "s1", .chosen = "s2", .moved = true, .reason = "server s1 disabled"},
    {.name = "affinity to a vanished server moves", .srv = {{.id = "s2"}}, .affinity = "gone",
     .chosen = "s2", .moved = true, .reason = "server gone is no longer registered"},
    {.name = "affinity to a server dropping the app moves", .srv = {{.id = "s1", .apps = "web"}, {.id = "s2"}},
     .affinity = "s1", .chosen = "s2", .moved = true, .reason = "server s1 no longer offers app 'echo'"},
    {.name = "affinity: requirements force a move", .srv = {{.id = "s1", .cpu = 7.5},
     {.id = "s2", .sessions = 5, .cpu = 1}}, .affinity = "s1", .min_cpu = 2, .chosen = "s2",
     .moved = true, .reason = "server s1 no longer meets requirements: needs 2.0 free cpu, has 0.5"},
    {.name = "affinity moved and nothing left", .srv = {{.id = "s1", .flags = "disabled"}},
     .affinity = "s1", .rc = LB_ENOSERVER, .moved = true,
     .reason = "no eligible server for app 'echo': 1 disabled (and server s1 disabled)"},
    {.name = "affinity kept on the only, drained, server", .srv = {{.id = "s1", .flags = "drained"}},
     .affinity = "s1", .kept = true, .chosen = "s1", .alts = ""},
    {.name = "cpu requirement skips the least loaded", .srv = {{.id = "s1", .cpu = 7.5},
     {.id = "s2", .sessions = 5}}, .min_cpu = 2, .chosen = "s2", .alts = "",
     .v = {{"s1", SEL_V_REQUIREMENTS, -1, "needs 2.0 free cpu, has 0.5"}}},
    {.name = "memory requirement", .srv = {{.id = "s1", .mem_free = 512 * MiB}, {.id = "s2", .sessions = 5}},
     .min_mem = GiB, .chosen = "s2",
     .v = {{"s1", SEL_V_REQUIREMENTS, -1, "needs 1.0 GiB free memory, has 512.0 MiB"}}},
    {.name = "label key requirement", .srv = {{.id = "s1"}, {.id = "s2", .sessions = 5, .labels = "ssd,gpu=a100"}},
     .labels = "gpu", .chosen = "s2", .v = {{"s1", SEL_V_REQUIREMENTS, -1, "needs label gpu, has none"}}},
    {.name = "label key=value requirement", .srv = {{.id = "s1", .labels = "disk=hdd"},
     {.id = "s2", .sessions = 5, .labels = "disk=ssd"}, {.id = "s3", .sessions = 1, .labels = "disk"}},
     .labels = "disk=ssd", .chosen = "s2",
     .v = {{"s1", SEL_V_REQUIREMENTS, -1, "needs label disk=ssd, has disk=hdd"},
           {"s3", SEL_V_REQUIREMENTS, -1, "has disk="}}},
    {.name = "requirements empty the best group", .srv = {{.id = "p1"}, {.id = "p2"},
     {.id = "b1", .group = "backup", .rank = 1, .sessions = 9, .labels = "gpu"}}, .labels = "gpu",
     .chosen = "b1", .alts = ""},
    {.name = "requirements empty the zone tier", .srv = {{.id = "a1", .zone = "a"},
     {.id = "b1", .zone = "b", .sessions = 8, .labels = "gpu"}, {.id = "x1", .zone = "x", .region = "r2", .labels = "gpu"}},
     .zone = "a", .labels = "gpu", .chosen = "b1", .alts = "x1"},
    {.name = "slave: requesting slave in the zone", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "a", 50, 100}, {"l2", "a", 0, 100}}, .slave = "l1", .chosen = "s1", .slave_out = "l1"},
    {.name = "slave: requesting slave over its limit", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "a", 100, 100}, {"l2", "a", 60, 100}, {"l3", "a", 20, 100}}, .slave = "l1",
     .slave_out = "l3"},
    {.name = "slave: requesting slave in another zone", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "b", 0, 100}, {"l2", "a", 60, 100}, {"l3", "a", 35, 50}}, .slave = "l1",
     .slave_out = "l2"},
    {.name = "slave: none in the zone, least loaded anywhere", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "b", 50, 100}, {"l2", "c", 10, 100}}, .slave = "l1", .slave_out = "l2"},
    {.name = "slave: zone slaves all full, one with room elsewhere", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "a", 10, 10}, {"l2", "b", 99, 100}}, .slave_out = "l2"},
    {.name = "slave: no slaves at all", .srv = {{.id = "s1"}}, .slave = "l1", .slave_out = "-"},
    {.name = "slave: unlimited slave counts as empty", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"l1", "a", 5, 10}, {"l2", "a", 500, 0}}, .slave_out = "l2"},
    {.name = "alternates: zone, region, then lower group", .srv = {{.id = "a1", .zone = "a", .sessions = 1},
     {.id = "a2", .zone = "a", .sessions = 3}, {.id = "b1", .zone = "b", .sessions = 2},
     {.id = "x1", .zone = "x", .region = "r2"}, {.id = "k1", .group = "backup", .rank = 1, .zone = "a"}},
     .zone = "a", .n_alt = 4, .chosen = "a1", .alts = "a2,b1,x1,k1",
     .v = {{"a2", SEL_V_RANKED, 1, "alternate 1"}, {"b1", SEL_V_FARTHER, 2, NULL},
           {"x1", SEL_V_FARTHER, 3, NULL}, {"k1", SEL_V_LOWER_GROUP, 4, NULL}}},
    {.name = "alternates: none asked", .srv = {{.id = "s1"}, {.id = "s2"}}, .n_alt = -1,
     .chosen = "s1", .alts = ""},
    {.name = "alternates skip excluded servers", .srv = {{.id = "s1"}, {.id = "s2", .flags = "down"},
     {.id = "s3", .sessions = 10}, {.id = "s4", .sessions = 4}, {.id = "s5", .sessions = 2}},
     .chosen = "s1", .alts = "s5,s4", .v = {{"s4", SEL_V_RANKED, 2, NULL}}},
    {.name = "overprovision: healthy primary takes all", .srv = {{.id = "p1"}, {.id = "p2", .flags = "down"},
     {.id = "p3"}, {.id = "p4"}, {.id = "b1", .group = "backup", .rank = 1}}, .overprovision = 1.4,
     .chosen = "p1"},
    {.name = "overprovision: dead primary spills all", .srv = {{.id = "p1", .flags = "down"},
     {.id = "b1", .group = "backup", .rank = 1}}, .overprovision = 1.4, .chosen = "b1"},
    {.name = "weighted-random: one live server gets p = 1", .strategy = "weighted-random",
     .srv = {{.id = "s1", .flags = "down"}, {.id = "s2", .sessions = 9}, {.id = "s3", .sessions = 10}},
     .chosen = "s2"},
    {.name = "round-robin: first unit is the first leaf", .strategy = "round-robin",
     .srv = {{.id = "s2"}, {.id = "s1", .sessions = 9}}, .chosen = "s1"},
    {.name = "round-robin with requirements keeps the tier's alternates", .strategy = "round-robin",
     .labels = "gpu", .srv = {{.id = "s1", .labels = "gpu"}, {.id = "s2", .labels = "gpu"},
     {.id = "s3", .labels = "gpu", .sessions = 1}, {.id = "s4"}}, .chosen = "s1", .alts = "s2,s3"},
    /* --- issue 13: resource matching, the client's pick, reachability, slave choice --- */
    {.name = "arch requirement picks the matching server", .arch = "aarch64",
     .srv = {{.id = "x1", .arch = "x86_64", .os = "linux"}, {.id = "a1", .arch = "aarch64", .os = "linux", .sessions = 9}},
     .chosen = "a1", .alts = "", .v = {{"x1", SEL_V_REQUIREMENTS, -1, "needs arch aarch64, has x86_64"}}},
    {.name = "os requirement; none advertised is unmet", .os = "freebsd",
     .srv = {{.id = "l1", .os = "linux"}, {.id = "n1"}, {.id = "f1", .os = "freebsd", .sessions = 5}},
     .chosen = "f1", .v = {{"l1", SEL_V_REQUIREMENTS, -1, "needs os freebsd, has linux"},
                           {"n1", SEL_V_REQUIREMENTS, -1, "needs os freebsd, has none"}}},
    {.name = "arch unmet everywhere: reason counts it", .arch = "riscv64",
     .srv = {{.id = "x1", .arch = "x86_64"}}, .rc = LB_ENOSERVER, .reason = "1 fail the requirements"},
    {.name = "label requirement names an advertised attribute", .labels = "os=linux,zone=b",
     .srv = {{.id = "a1", .zone = "a", .os = "linux"}, {.id = "b1", .zone = "b", .os = "linux", .sessions = 3},
             {.id = "b2", .zone = "b", .os = "windows"}}, .chosen = "b1",
     .v = {{"a1", SEL_V_REQUIREMENTS, -1, "needs zone=b, has zone=a"}, {"b2", SEL_V_REQUIREMENTS, -1, "os=windows"}}},
    {.name = "preferred server honoured over least-loaded and zone", .zone = "a", .preferred = "b1",
     .srv = {{.id = "a1", .zone = "a"}, {.id = "b1", .zone = "b", .sessions = 8}}, .chosen = "b1", .pref = true,
     .v = {{"b1", SEL_V_CHOSEN, 0, "client's pick"}}},
    {.name = "preferred server drained: refused with its reason", .preferred = "s1",
     .srv = {{.id = "s1", .flags = "drained"}, {.id = "s2", .sessions = 4}}, .chosen = "s2",
     .refused = "preferred server s1 drained: drained by an operator"},
    {.name = "preferred server unknown", .preferred = "zz", .srv = {{.id = "s1"}}, .chosen = "s1",
     .refused = "preferred server zz is not registered"},
    {.name = "preferred server failing requirements refused", .preferred = "x1", .arch = "aarch64",
     .srv = {{.id = "x1", .arch = "x86_64"}, {.id = "a1", .arch = "aarch64"}}, .chosen = "a1",
     .refused = "preferred server x1 requirements: needs arch aarch64"},
    {.name = "preferred = sticky server, drained, still honoured", .preferred = "s1", .affinity = "s1",
     .srv = {{.id = "s1", .flags = "drained"}, {.id = "s2"}}, .chosen = "s1", .pref = true, .kept = true},
    {.name = "preferred other than sticky: the pick wins", .preferred = "s2", .affinity = "s1",
     .srv = {{.id = "s1"}, {.id = "s2", .sessions = 5}}, .chosen = "s2", .pref = true},
    {.name = "reachable only via slave-b: paired with slave-b", .slave = "sa", .zone = "a",
     .srv = {{.id = "p", .zone = "a", .via = "sb"}}, .slv = {{"sa", "a", 0, 10}, {"sb", "b", 5, 10}},
     .chosen = "p", .slave_out = "sb", .slave_why = "least loaded slave the server is reachable via, zone b, load 5/10"},
    {.name = "reachable via a zone: requesting slave of that zone", .slave = "sb2", .zone = "a",
     .srv = {{.id = "p", .zone = "a", .via = "b"}}, .slv = {{"sa", "a", 0, 10}, {"sb1", "b", 0, 10}, {"sb2", "b", 3, 10}},
     .chosen = "p", .slave_out = "sb2", .slave_why = "requesting slave"},
    {.name = "reachable via a missing slave: unreachable, not chosen", .slave = "sa",
     .srv = {{.id = "p", .via = "gone"}, {.id = "q", .sessions = 9}}, .slv = {{"sa", "a", 0, 10}},
     .chosen = "q", .slave_out = "sa", .alts = "",
     .v = {{"p", SEL_V_UNREACHABLE, -1, "reachable only via gone: no such slave fronts app 'echo'"}}},
    {.name = "only unreachable servers: reject says so", .srv = {{.id = "p", .via = "sb"}},
     .slv = {{"sb", "b", 0, 10, "web"}}, .rc = LB_ENOSERVER, .reason = "1 unreachable through any slave"},
    {.name = "sticky on a now unreachable server moves", .affinity = "p",
     .srv = {{.id = "p", .via = "gone"}, {.id = "q"}}, .slv = {{"sa", "a", 0, 10}}, .chosen = "q",
     .moved = true, .reason = "server p unreachable"},
    {.name = "slave apps: a slave that does not front the app is skipped", .slave = "sa", .zone = "a",
     .srv = {{.id = "s1", .zone = "a"}}, .slv = {{"sa", "a", 0, 10, "web"}, {"sa2", "a", 7, 10, "web,echo"}},
     .chosen = "s1", .slave_out = "sa2", .slave_why = "least loaded slave of zone a, load 7/10"},
    {.name = "slave apps: none fronts the app", .slave = "sa", .srv = {{.id = "s1"}},
     .slv = {{"sa", "a", 0, 10, "web"}}, .chosen = "s1", .slave_out = "-", .slave_why = "no slave fronts app 'echo'"},
    {.name = "session slave kept while eligible, even over its limit", .slave = "sa1", .zone = "a",
     .affinity = "s1", .aff_slave = "sa2", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"sa1", "a", 0, 10}, {"sa2", "a", 12, 10}}, .chosen = "s1", .kept = true, .slave_out = "sa2",
     .slave_why = "client's session slave"},
    {.name = "session slave no longer fronting the app is left", .slave = "sa1", .zone = "a",
     .affinity = "s1", .aff_slave = "sa2", .srv = {{.id = "s1", .zone = "a"}},
     .slv = {{"sa1", "a", 0, 10}, {"sa2", "a", 0, 10, "web"}}, .chosen = "s1", .kept = true, .slave_out = "sa1",
     .slave_why = "requesting slave"},
    {.name = "p2c over one server", .strategy = "p2c", .srv = {{.id = "s1", .sessions = 3}}, .chosen = "s1"},
    {.name = "explain: a verdict for every server", .zone = "a", .labels = "gpu",
     .srv = {{.id = "c", .zone = "a", .labels = "gpu", .sessions = 1},
             {.id = "r", .zone = "a", .labels = "gpu", .sessions = 2},
             {.id = "f", .zone = "b", .labels = "gpu"},
             {.id = "l", .group = "backup", .rank = 1, .labels = "gpu"},
             {.id = "d", .flags = "down", .labels = "gpu"}, {.id = "dr", .flags = "drained"},
             {.id = "di", .flags = "disabled"}, {.id = "n", .apps = "web"}, {.id = "q", .zone = "a"},
             {.id = "u", .zone = "a", .labels = "gpu", .sessions = 10}},
     .n_alt = 1, .chosen = "c", .alts = "r",
     .v = {{"c", SEL_V_CHOSEN, 0, NULL}, {"r", SEL_V_RANKED, 1, "alternate 1: 2/10"},
           {"f", SEL_V_FARTHER, 2, "zone b"}, {"l", SEL_V_LOWER_GROUP, 3, "behind primary"},
           {"d", SEL_V_DOWN, -1, NULL}, {"dr", SEL_V_DRAINED, -1, NULL},
           {"di", SEL_V_DISABLED, -1, NULL}, {"n", SEL_V_NO_APP, -1, NULL},
           {"q", SEL_V_REQUIREMENTS, -1, "needs label gpu"}, {"u", SEL_V_FULL, -1, "10/10"}}},
};
/* clang-format on */

static void test_case(void **state)
{
    check_case(*state);
}

/* --- behaviour over several calls -------------------------------------------- */

static void test_per_app_strategy(void **state)
{
    (void)state;
    const char *apps[] = {"echo", "rr"};
    sel_server s[2] = {
        {.id = "s1", .capacity = 10, .sessions = 5, .up = true, .apps = apps, .n_apps = 2},
        {.id = "s2", .capacity = 10, .up = true, .apps = apps, .n_apps = 2}};
    sel_snapshot *snap;
    assert_int_equal(sel_snapshot_build(s, 2, NULL, 0, &snap), LB_OK);
    sel_app_strategy per[] = {{"rr", SEL_ROUND_ROBIN}};
    sel_policy p;
    sel_policy_default(&p);
    p.per_app = per;
    p.n_per_app = 1;
    sel_state st = {1, 0};
    sel_result r;
    int hits[2] = {0, 0};
    sel_request req = {.app = "rr"};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sel_choose(snap, &p, &req, &st, &r, NULL), LB_OK);
        hits[r.server]++;
    }
    /* Round-robin ignores load: both servers get their capacity share. */
    assert_int_equal(hits[0], 10);
    assert_int_equal(hits[1], 10);
    req.app = "echo";
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sel_choose(snap, &p, &req, &st, &r, NULL), LB_OK);
        assert_int_equal(r.server, 1); /* least-loaded: s2 stays below s1 */
    }
    sel_snapshot_free(&snap);
}

static void test_load_updates(void **state)
{
    (void)state;
    const char *apps[] = {"echo"};
    sel_server s[2] = {
        {.id = "s1", .capacity = 4, .up = true, .apps = apps, .n_apps = 1},
        {.id = "s2", .capacity = 4, .sessions = 1, .up = true, .apps = apps, .n_apps = 1}};
    sel_snapshot *snap;
    sel_result r;
    sel_request req = {.app = "echo"};
    assert_int_equal(sel_snapshot_build(s, 2, NULL, 0, &snap), LB_OK);
    /* Fill both through pending; then nothing is left. */
    for (int i = 0; i < 7; i++) {
        assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
        sel_snapshot_add_pending(snap, r.server, +1);
    }
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_ENOSERVER);
    assert_non_null(strstr(r.reason, "2 full"));
    /* A session given back frees a slot; the count never goes negative. */
    sel_snapshot_add_pending(snap, 0, -1);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
    assert_int_equal(r.server, 0);
    for (int i = 0; i < 10; i++)
        sel_snapshot_add_pending(snap, 0, -1);
    assert_int_equal(sel_snapshot_server(snap, 0)->pending, 0);
    /* A report resets pending and replaces the load. */
    sel_snapshot_set_load(snap, 1, 0, 0.5, 1 << 20, 1 << 30);
    assert_int_equal(sel_snapshot_server(snap, 1)->pending, 0);
    assert_int_equal(sel_snapshot_server(snap, 1)->sessions, 0);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
    assert_int_equal(r.server, 0); /* both empty: equal, s1 by id */
    sel_snapshot_set_load(snap, 0, 4, 0.5, 1 << 20, 1 << 30);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
    assert_int_equal(r.server, 1);
    /* A late report keeps what it could not count as pending. */
    sel_snapshot_set_load_unreported(snap, 1, 1, 2, 0.5, 1 << 20, 1 << 30);
    assert_int_equal(sel_snapshot_server(snap, 1)->sessions, 1);
    assert_int_equal(sel_snapshot_server(snap, 1)->pending, 2);
    sel_snapshot_add_pending(snap, 1, +1);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_ENOSERVER);
    /* Out-of-range indexes are ignored, not crashes. */
    sel_snapshot_add_pending(snap, 7, 1);
    sel_snapshot_set_load(snap, -1, 0, 0, 0, 0);
    sel_snapshot_set_slave_load(snap, 3, 1);
    assert_null(sel_snapshot_server(snap, 2));
    assert_null(sel_snapshot_slave(snap, 0));
    assert_int_equal(sel_snapshot_n_servers(snap), 2);
    assert_int_equal(sel_snapshot_n_slaves(snap), 0);
    sel_snapshot_free(&snap);
    sel_snapshot_free(&snap);
}

static void test_slave_load_updates(void **state)
{
    (void)state;
    const char *apps[] = {"echo"};
    sel_server s = {.id = "s1", .zone = "a", .capacity = 4, .up = true, .apps = apps, .n_apps = 1};
    sel_slave l[2] = {{.id = "l1", .zone = "a", .limit = 10},
                      {.id = "l2", .zone = "a", .limit = 10}};
    sel_snapshot *snap;
    sel_result r;
    sel_request req = {.app = "echo", .requesting_slave = "l1"};
    assert_int_equal(sel_snapshot_build(&s, 1, l, 2, &snap), LB_OK);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
    assert_int_equal(r.slave, 0);
    sel_snapshot_set_slave_load(snap, 0, 10);
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_OK);
    assert_int_equal(r.slave, 1);
    assert_int_equal(sel_snapshot_slave(snap, 0)->load, 10);
    sel_snapshot_free(&snap);
}

static void test_names_and_errors(void **state)
{
    (void)state;
    sel_strategy st;
    const char *names[] = {"least-loaded", "p2c", "weighted-random", "round-robin"};
    for (int i = 0; i < 4; i++) {
        assert_true(sel_strategy_parse(names[i], &st));
        assert_int_equal(st, i);
        assert_string_equal(sel_strategy_name(st), names[i]);
    }
    assert_false(sel_strategy_parse("fastest", &st));
    assert_false(sel_strategy_parse(NULL, &st));
    assert_string_equal(sel_verdict_name(SEL_V_LOWER_GROUP), "lower-group");
    assert_string_equal(sel_verdict_name(SEL_V_FARTHER), "farther");
    sel_policy p;
    sel_policy_default(&p);
    assert_int_equal(p.strategy, SEL_LEAST_LOADED);
    assert_int_equal(p.n_alternates, 2);
    assert_true(p.zone_spill == 1.0 && p.overprovision == 0.0);

    sel_snapshot *snap = NULL;
    sel_result r;
    assert_int_equal(sel_snapshot_build(NULL, 3, NULL, 0, &snap), LB_EINVAL);
    assert_int_equal(sel_snapshot_build(NULL, 0, NULL, 0, &snap), LB_OK);
    sel_request req = {.app = "echo"};
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_ENOAPP);
    assert_int_equal(r.server, -1);
    assert_int_equal(r.slave, -1);
    req.app = NULL;
    assert_int_equal(sel_choose(snap, NULL, &req, NULL, &r, NULL), LB_EINVAL);
    sel_snapshot_free(&snap);
}

int main(void)
{
    const struct CMUnitTest more[] = {
        cmocka_unit_test(test_per_app_strategy),
        cmocka_unit_test(test_load_updates),
        cmocka_unit_test(test_slave_load_updates),
        cmocka_unit_test(test_names_and_errors),
    };
    size_t n_cases = sizeof(cases) / sizeof(cases[0]);
    size_t n_more = sizeof(more) / sizeof(more[0]);
    struct CMUnitTest *tests = calloc(n_cases + n_more, sizeof(*tests));
    if (tests == NULL)
        return 1;
    /* One cmocka test per table row, named after it. */
    for (size_t i = 0; i < n_cases; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
    memcpy(tests + n_cases, more, sizeof(more));
    int rc = _cmocka_run_group_tests("sel_test", tests, n_cases + n_more, NULL, NULL);
    free(tests);
    return rc;
}
