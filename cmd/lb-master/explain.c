/*
 * Dry runs for `lbctl explain`: the same policy on the same snapshot as a real
 * request, with a verdict for every server, and no launch, no session, no
 * pending count. Answers a SelectionInstruction whose verdicts list is filled.
 */
#include "explain.h"

#include "common/util.h"
#include "obs/metrics.h"
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct verdict_buf {
    Lb__Verdict *items;
    Lb__Verdict **ptrs;
    size_t n;
} verdict_buf;

/* View lock held: down and ejected servers say why from the view's health. */
static void fill_verdicts(reg *view, const sel_snapshot *snap, const sel_verdict *v, size_t n,
                          verdict_buf *out)
{
    out->items = lb_xcalloc(n, sizeof *out->items);
    out->ptrs = lb_xcalloc(n, sizeof *out->ptrs);
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        const sel_server *s = sel_snapshot_server(snap, (int)i);
        Lb__Verdict *x = &out->items[i];
        lb__verdict__init(x);
        x->server_id = lb_strdup(s->id);
        x->zone = lb_strdup(s->zone);
        x->group = lb_strdup(s->group);
        x->verdict = (char *)sel_verdict_name(v[i].kind);
        x->rank = v[i].rank;
        char why[256] = "";
        if (v[i].kind == SEL_V_DOWN || v[i].kind == SEL_V_EJECTED) {
            const reg_server *rs = reg_server_locked(view, s->id);
            if (rs != NULL)
                reg_health_detail_locked(view, rs, why, sizeof why);
        }
        x->detail = lb_strdup(why[0] != '\0' ? why : v[i].detail);
        out->ptrs[i] = x;
    }
}

static void free_verdicts(verdict_buf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->items[i].server_id);
        free(b->items[i].zone);
        free(b->items[i].group);
        free(b->items[i].detail);
    }
    free(b->items);
    free(b->ptrs);
}

nng_msg *master_explain(master *m, const Lb__Envelope *req)
{
    const Lb__SelectionRequest *sr = req->selection_request;
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    Lb__Alternate alts[SEL_MAX_ALTERNATES], *altp[SEL_MAX_ALTERNATES];
    verdict_buf vb = {0};
    char server[128] = "", slave[128] = "", reason[256] = "", slave_why[128] = "";
    char refused[160] = "";
    sel_result res;
    sel_request q;
    obs_count("master_explains_total");

    reg_lock(m->view);
    sel_snapshot *snap = reg_snapshot_locked(m->view);
    size_t n = sel_snapshot_n_servers(snap);
    sel_verdict *v = lb_xcalloc(n, sizeof *v);
    reg_session_buf cb;
    const Lb__Session *cur =
        sr->request != NULL ? plan_current_session(m->view, sr->request, &cb) : NULL;
    lb_err err = LB_EINVAL;
    if (sr->request != NULL && sr->request->app != NULL && sr->request->client_id != NULL) {
        plan_fill_request(sr, cur, &q);
        pthread_mutex_lock(&m->sel_lock);
        err = sel_choose(snap, &m->cfg.policy, &q, &m->sel, &res, v);
        pthread_mutex_unlock(&m->sel_lock);
    } else {
        snprintf(res.reason, sizeof res.reason, "bad request: app and client_id are required");
    }
    fill_verdicts(m->view, snap, v, err == LB_EINVAL ? 0 : n, &vb);
    if (err == LB_OK) {
        snprintf(server, sizeof server, "%s", sel_snapshot_server(snap, res.server)->id);
        if (res.slave >= 0)
            snprintf(slave, sizeof slave, "%s", sel_snapshot_slave(snap, res.slave)->id);
        for (size_t i = 0; i < res.n_alternates; i++) {
            const sel_server *s = sel_snapshot_server(snap, res.alternates[i]);
            lb__alternate__init(&alts[i]);
            alts[i].server_id = lb_strdup(s->id);
            alts[i].zone = lb_strdup(s->zone);
            altp[i] = &alts[i];
        }
        in.n_alternates = res.n_alternates;
        in.alternates = altp;
    }
    snprintf(reason, sizeof reason, "%s", res.reason);
    if (err != LB_EINVAL) {
        snprintf(refused, sizeof refused, "%s", res.preferred_refused);
        if (err == LB_OK)
            sel_slave_reason(snap, &q, &res, slave_why, sizeof slave_why);
    }
    reg_unlock(m->view);

    in.action = err != LB_OK ? LB__ACTION__REJECT
                : (slave[0] == '\0' || (sr->slave_id && strcmp(slave, sr->slave_id) == 0))
                    ? LB__ACTION__SERVE
                    : LB__ACTION__REDIRECT;
    in.server_id = server;
    in.slave_id = slave;
    in.reason = reason;
    in.moved = err == LB_OK && res.moved;
    in.affinity = err == LB_OK && res.affinity;
    in.preferred = err == LB_OK && res.preferred;
    in.preferred_refused = refused;
    in.slave_reason = slave_why;
    in.n_verdicts = vb.n;
    in.verdicts = vb.ptrs;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = &in;
    nng_msg *msg = NULL;
    wire_encode(&env, &msg);
    for (size_t i = 0; i < in.n_alternates; i++) {
        free(alts[i].server_id);
        free(alts[i].zone);
    }
    free_verdicts(&vb);
    free(v);
    return msg;
}
