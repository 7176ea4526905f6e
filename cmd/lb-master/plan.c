/* Turning a SelectionRequest into a plan with the pure policy (pkg/select). */
#include "plan.h"
#include "events.h"
#include "sessions.h"
#include "stock.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids that end up in etcd keys and argv must be plain. */
static bool plain_id(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.' && c != '@' && c != ':')
            return false;
    }
    return true;
}

/* An optional id (absent or "" is fine) that is not plain. */
static bool bad_optional(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && !plain_id(s, max);
}

static bool validate(const Lb__SelectionRequest *sr, plan *p)
{
    const Lb__ClientRequest *cr = sr->request;
    const char *what = NULL;
    if (cr == NULL)
        what = "no client request";
    else if (!plain_id(cr->app, 64))
        what = "app must be 1-64 characters of [A-Za-z0-9._:@-]";
    else if (!plain_id(cr->client_id, 128))
        what = "client_id must be 1-128 characters of [A-Za-z0-9._:@-]";
    else if (cr->requirements != NULL && cr->requirements->n_labels > 32)
        what = "more than 32 required labels";
    else if (bad_optional(cr->preferred_server, 128))
        what = "preferred_server must be 1-128 characters of [A-Za-z0-9._:@-]";
    else if (cr->requirements != NULL &&
             (bad_optional(cr->requirements->arch, 64) || bad_optional(cr->requirements->os, 64)))
        what = "arch and os must be 1-64 characters of [A-Za-z0-9._:@-]";
    if (what == NULL)
        return true;
    p->reject = true;
    snprintf(p->reason, sizeof p->reason, "bad request: %s", what);
    return false;
}

static bool app_is_relay(const Lb__ServerInfo *in, const char *app)
{
    for (size_t i = 0; i < in->n_app_infos; i++)
        if (strcmp(in->app_infos[i]->name, app) == 0)
            return in->app_infos[i]->link != NULL && strcmp(in->app_infos[i]->link, "relay") == 0;
    return false;
}

static void add_cand(reg *view, plan *p, const sel_snapshot *snap, int idx, const char *app)
{
    const sel_server *s = sel_snapshot_server(snap, idx);
    reg_server *rs = reg_server_locked(view, s->id);
    if (rs == NULL || p->n_cand == PLAN_MAX_CAND)
        return;
    plan_cand *c = &p->cand[p->n_cand++];
    snprintf(c->server, sizeof c->server, "%s", s->id);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", rs->info->agent_endpoint);
    snprintf(c->host, sizeof c->host, "%s", rs->info->host);
    snprintf(c->zone, sizeof c->zone, "%s", s->zone);
    c->relay = app_is_relay(rs->info, app);
}

/* Ready (warm pool) processes of app on server, from its last load report. */
static uint32_t ready_of(reg *view, const char *server, const char *app)
{
    reg_server *rs = reg_server_locked(view, server);
    if (rs == NULL || rs->load == NULL)
        return 0;
    for (size_t i = 0; i < rs->load->n_apps; i++)
        if (strcmp(rs->load->apps[i]->app, app) == 0)
            return rs->load->apps[i]->ready;
    return 0;
}

/* A ready pool process of app at server, or one in the leader's stock. */
static bool has_ready(master *m, const char *server, const char *app)
{
    return ready_of(m->view, server, app) > 0 || stock_has_ready(m->stock, server, app);
}

/* Among servers as good as the choice (same group rank and zone, same load
 * (sessions + pending) / capacity), prefers one with a ready pool process of
 * the app (the stock counts too): its client skips the app's start-up.
 * Alternates keep their order. */
static void prefer_ready(master *m, const sel_snapshot *snap, sel_result *res, const char *app)
{
    const sel_server *c = sel_snapshot_server(snap, res->server);
    if (res->affinity || res->preferred || has_ready(m, c->id, app))
        return;
    for (size_t k = 0; k < res->n_alternates; k++) {
        const sel_server *o = sel_snapshot_server(snap, res->alternates[k]);
        uint64_t lc = (uint64_t)(c->sessions + c->pending) * o->capacity;
        uint64_t lo = (uint64_t)(o->sessions + o->pending) * c->capacity;
        if (o->group_rank != c->group_rank || strcmp(o->zone, c->zone) != 0 || lc != lo ||
            !has_ready(m, o->id, app))
            continue;
        int chosen = res->server;
        res->server = res->alternates[k];
        res->alternates[k] = chosen;
        obs_count("master_ready_preferred_total");
        return;
    }
}

/* The client's live session for this app (or a redirected preselection). */
const Lb__Session *plan_current_session(reg *view, const Lb__ClientRequest *cr,
                                        reg_session_buf *buf)
{
    const Lb__Session *s = NULL;
    if (cr->preselected != NULL && cr->preselected->session_id != NULL &&
        cr->preselected->session_id[0] != '\0')
        s = reg_session_locked(view, cr->preselected->session_id, buf);
    if (s == NULL) {
        const char *sid = reg_affinity_locked(view, cr->client_id, cr->app);
        s = sid != NULL ? reg_session_locked(view, sid, buf) : NULL;
    }
    if (s != NULL && (strcmp(s->client_id, cr->client_id) != 0 || strcmp(s->app, cr->app) != 0))
        s = NULL; /* a preselection must belong to this client and app */
    if (s != NULL && s->expires_ms < lb_wall_ms())
        s = NULL;
    return s;
}

void plan_fill_request(const Lb__SelectionRequest *sr, const Lb__Session *cur, sel_request *q)
{
    const Lb__ClientRequest *cr = sr->request;
    memset(q, 0, sizeof *q);
    q->app = cr->app;
    q->client_id = cr->client_id;
    q->zone = cr->location;
    q->requesting_slave = sr->slave_id;
    q->affinity_server = cur != NULL ? cur->server_id : NULL;
    q->affinity_slave = cur != NULL ? cur->slave_id : NULL;
    q->preferred_server = cr->preferred_server;
    if (cr->requirements != NULL) {
        q->min_cpu = cr->requirements->min_cpu;
        q->min_mem = cr->requirements->min_mem_bytes;
        q->labels = (const char *const *)cr->requirements->labels;
        q->n_labels = cr->requirements->n_labels;
        q->arch = cr->requirements->arch;
        q->os = cr->requirements->os;
    }
}

static bool visited(const Lb__ClientRequest *cr, const char *slave_id)
{
    for (size_t i = 0; i < cr->n_visited; i++)
        if (strcmp(cr->visited[i], slave_id) == 0)
            return true;
    return false;
}

/* The requesting slave's zone peers (itself included) with their loads: a
 * full slave sheds new clients to the least loaded of them without a master
 * call (EP1180886 [0103]); the loads come with every answer rather than from
 * etcd, which holds state, not telemetry. View lock held. */
static void add_peers(reg *view, const char *slave_id, plan *p)
{
    reg_slave *me =
        slave_id != NULL && slave_id[0] != '\0' ? reg_slave_locked(view, slave_id) : NULL;
    if (me == NULL)
        return;
    size_t it = 0;
    reg_slave *sl;
    while ((sl = reg_slave_next_locked(view, &it)) != NULL && p->n_peers < PLAN_MAX_PEERS) {
        if (strcmp(sl->info->zone, me->info->zone) != 0)
            continue;
        plan_peer *x = &p->peers[p->n_peers++];
        snprintf(x->id, sizeof x->id, "%s", sl->info->id);
        snprintf(x->endpoint, sizeof x->endpoint, "%s", sl->info->endpoint);
        snprintf(x->api, sizeof x->api, "%s",
                 sl->info->api_endpoint != NULL ? sl->info->api_endpoint : "");
        snprintf(x->zone, sizeof x->zone, "%s", sl->info->zone);
        x->load = sl->load;
        x->limit = sl->info->limit;
        x->n_apps = sl->info->n_apps;
        x->apps = x->n_apps ? lb_xcalloc(x->n_apps, sizeof *x->apps) : NULL;
        for (size_t i = 0; i < x->n_apps; i++)
            x->apps[i] = lb_strdup(sl->info->apps[i]);
    }
}

/* A sticky repeat whose process is alive in the view needs no agent call. */
static void plan_local(reg *view, const Lb__ClientRequest *cr, const Lb__Session *cur, plan *p)
{
    const Lb__ProcessId *pr = cur->process;
    if (pr == NULL || strcmp(cur->server_id, p->cand[0].server) != 0)
        return;
    if (cr->unreachable_pid != 0 && cr->unreachable_pid == pr->pid) {
        reg_live_forget_locked(view, cur->server_id, pr->pid);
        obs_count("master_sticky_unreachable_total");
        return;
    }
    if (!reg_live_alive_locked(view, cur))
        return;
    p->local = true;
    lb__process_id__init(&p->local_proc);
    p->local_proc.pid = pr->pid;
    p->local_proc.port = pr->port;
    p->local_proc.started_at = pr->started_at;
    snprintf(p->local_host, sizeof p->local_host, "%s", pr->host != NULL ? pr->host : "");
    p->local_proc.host = p->local_host;
    p->local_proc.server_id = p->cand[0].server;
}

void plan_free(plan *p)
{
    for (size_t i = 0; i < p->n_peers; i++) {
        for (size_t j = 0; j < p->peers[i].n_apps; j++)
            free(p->peers[i].apps[j]);
        free(p->peers[i].apps);
    }
    p->n_peers = 0;
}

void plan_make(master *m, const Lb__SelectionRequest *sr, plan *p)
{
    plan_free(p);
    memset(p, 0, sizeof *p);
    p->pending_on = -1;
    if (!validate(sr, p))
        return;
    const Lb__ClientRequest *cr = sr->request;
    sel_result res;
    sel_request q;
    reg_lock(m->view);
    sel_snapshot *snap = reg_snapshot_locked(m->view);
    reg_session_buf cb;
    const Lb__Session *cur = plan_current_session(m->view, cr, &cb);
    plan_fill_request(sr, cur, &q);
    pthread_mutex_lock(&m->sel_lock);
    lb_err err = sel_choose(snap, &m->cfg.policy, &q, &m->sel, &res, NULL);
    pthread_mutex_unlock(&m->sel_lock);
    add_peers(m->view, sr->slave_id, p);
    snprintf(p->preferred_refused, sizeof p->preferred_refused, "%s", res.preferred_refused);
    if (err != LB_OK) {
        p->reject = true;
        snprintf(p->reason, sizeof p->reason, "%s", res.reason);
        goto out;
    }
    prefer_ready(m, snap, &res, cr->app);
    add_cand(m->view, p, snap, res.server, cr->app);
    for (size_t i = 0; i < res.n_alternates; i++)
        add_cand(m->view, p, snap, res.alternates[i], cr->app);
    p->moved = res.moved;
    p->preferred = res.preferred;
    sel_slave_reason(snap, &q, &res, p->slave_reason, sizeof p->slave_reason);
    if (res.moved)
        snprintf(p->reason, sizeof p->reason, "%s", res.reason);
    if (res.affinity && cur != NULL) {
        p->reuse = true;
        snprintf(p->session_id, sizeof p->session_id, "%s", cur->session_id);
        p->preselected_ok = cr->preselected != NULL && cr->preselected->session_id != NULL &&
                            strcmp(cr->preselected->session_id, cur->session_id) == 0;
        plan_local(m->view, cr, cur, p);
    } else {
        lb_random_id(p->session_id);
        if (!sr->dry_run) {
            reg_pending_begin_locked(m->view, p->cand[0].server);
            p->pending_on = 0;
        }
    }
    if (res.slave >= 0 && sr->slave_id != NULL && sr->slave_id[0] != '\0' &&
        strcmp(sel_snapshot_slave(snap, res.slave)->id, sr->slave_id) != 0 &&
        visited(cr, sel_snapshot_slave(snap, res.slave)->id)) {
        /* the client has been there already: serve here rather than loop */
        snprintf(p->slave_id, sizeof p->slave_id, "%s", sr->slave_id);
        snprintf(p->slave_reason, sizeof p->slave_reason,
                 "requesting slave: the chosen %s was already visited (no redirect loop)",
                 sel_snapshot_slave(snap, res.slave)->id);
    } else if (res.slave >= 0) {
        const sel_slave *sl = sel_snapshot_slave(snap, res.slave);
        reg_slave *rs = reg_slave_locked(m->view, sl->id);
        snprintf(p->slave_id, sizeof p->slave_id, "%s", sl->id);
        snprintf(p->slave_endpoint, sizeof p->slave_endpoint, "%s",
                 rs != NULL ? rs->info->endpoint : "");
        snprintf(p->slave_api, sizeof p->slave_api, "%s",
                 rs != NULL && rs->info->api_endpoint != NULL ? rs->info->api_endpoint : "");
    } else {
        snprintf(p->slave_id, sizeof p->slave_id, "%s", sr->slave_id ? sr->slave_id : "");
    }
out:
    reg_unlock(m->view);
}

bool plan_superseded(master *m, const Lb__SelectionRequest *sr, const plan *p,
                     int64_t since_wall_ms)
{
    const Lb__ClientRequest *cr = sr->request;
    bool newer = false;
    reg_lock(m->view);
    const char *sid = reg_affinity_locked(m->view, cr->client_id, cr->app);
    if (sid != NULL && strcmp(sid, p->session_id) != 0) {
        reg_session_buf sb;
        const Lb__Session *s = reg_session_locked(m->view, sid, &sb);
        newer = s != NULL && s->created_ms >= since_wall_ms;
    }
    reg_unlock(m->view);
    return newer;
}

void plan_abandon(master *m, plan *p, size_t i)
{
    if (p->pending_on != (int)i)
        return;
    reg_lock(m->view);
    reg_pending_fail_locked(m->view, p->cand[i].server);
    reg_unlock(m->view);
    p->pending_on = -1;
}

void plan_next(master *m, plan *p, size_t i)
{
    if (p->reuse || p->pending_on == (int)i)
        return;
    reg_lock(m->view);
    reg_pending_begin_locked(m->view, p->cand[i].server);
    reg_unlock(m->view);
    p->pending_on = (int)i;
}

/* Whether a session record differs from what is stored beyond its expiry. */
static bool same_record(const Lb__Session *a, const Lb__Session *b)
{
    const Lb__ProcessId *x = a->process, *y = b->process;
    return strcmp(a->server_id, b->server_id) == 0 && strcmp(a->slave_id, b->slave_id) == 0 &&
           x != NULL && y != NULL && x->pid == y->pid && x->port == y->port &&
           x->started_at == y->started_at && strcmp(x->host, y->host) == 0;
}

void plan_commit(master *m, const Lb__SelectionRequest *sr, plan *p, size_t i,
                 const Lb__ProcessId *proc, uint64_t launch_seq)
{
    const Lb__ClientRequest *cr = sr->request;
    int64_t now = lb_wall_ms();
    Lb__Session s = LB__SESSION__INIT;
    Lb__ProcessId pid = *proc;
    s.session_id = p->session_id;
    s.client_id = cr->client_id;
    s.app = cr->app;
    s.server_id = p->cand[i].server;
    s.process = &pid;
    s.slave_id = p->slave_id;
    s.created_ms = now;
    s.expires_ms = now + m->cfg.session_ttl_ms;
    p->expires_ms = s.expires_ms;
    reg_lock(m->view);
    reg_live_mark_locked(m->view, p->cand[i].server, proc);
    if (p->pending_on == (int)i) {
        reg_pending_launched_locked(m->view, p->cand[i].server, launch_seq);
        p->pending_on = -1;
    }
    reg_session_buf ob, pb;
    const Lb__Session *old = reg_session_locked(m->view, p->session_id, &ob);
    /* No affinity record: a session carries its client and app, and the view
     * derives the client's affinity from it, so a new session is one put and
     * one watch event, not two. etcd_economy off (the P6 baseline) writes
     * affinity/<client>/<app> every time, as before. */
    bool affinity_record = !m->cfg.etcd_economy;
    if (old != NULL)
        s.created_ms = old->created_ms;
    /* A sticky repeat that only moves the expiry, by a quarter of the ttl or
     * less, writes nothing: the stored expiry stays (the session then lives at
     * least 3/4 ttl after its last use) and etcd sees no write per request. */
    if (old != NULL && same_record(old, &s) && !master_session_needs_write(m, old, s.expires_ms)) {
        p->expires_ms = old->expires_ms;
        reg_unlock(m->view);
        obs_count("master_session_writes_skipped_total");
        return;
    }
    /* a client that moved leaves its old session behind: drop it (in the same
     * txn as the new one), and have its process stopped (the seed's move frees
     * what the service held) */
    const char *prev = reg_affinity_locked(m->view, cr->client_id, cr->app);
    char stop_sid[80] = "", stop_server[128] = "", stop_ep[256] = "";
    bool joined = false;
    if (prev != NULL && strcmp(prev, p->session_id) != 0) {
        const Lb__Session *ps = reg_session_locked(m->view, prev, &pb);
        reg_server *srv = ps != NULL ? reg_server_locked(m->view, ps->server_id) : NULL;
        if (srv != NULL && master_per_session(srv, ps->app)) {
            snprintf(stop_sid, sizeof stop_sid, "%s", prev);
            snprintf(stop_server, sizeof stop_server, "%s", ps->server_id);
            snprintf(stop_ep, sizeof stop_ep, "%s", srv->info->agent_endpoint);
        }
        char key[512];
        reg_key(m->view, key, sizeof key, "sessions", prev);
        master_queue_write(m, key, NULL, 0);
        if (ps != NULL)
            master_session_forget_locked(m, ps);
        joined = true;
    }
    if (old == NULL) /* the leader's watch does not bring its own puts back */
        events_session_started(m->events, &s);
    reg_session_put_locked(m->view, reg_session_dup(&s));
    /* under the view lock, as every queuer is, so nothing comes between the
     * delete and the session it is joined to */
    master_queue_session(m, &s, joined, affinity_record);
    reg_unlock(m->view);
    if (stop_sid[0] != '\0') {
        LOG_INFO("master", "client moved: stopping its old process",
                 "client=%s old_session=%s server=%s", cr->client_id, stop_sid, stop_server);
        obs_count("master_move_stops_total");
        master_agent_stop(m, stop_server, stop_ep, stop_sid);
    }
}
