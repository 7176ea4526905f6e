/*
 * The leader's stock at work (stock.h): background launches that fill it,
 * the take on the request path, and the per-chore check that drops what may
 * not be handed out any more.
 *
 * A stock launch is an ordinary LaunchRequest under a "stock-<random>"
 * session id, sent off the request path (after a hit's answer, from the
 * chores, or from the previous stock launch's reply), at most
 * STOCK_INFLIGHT_PER_SERVER at a time per server, only to servers in
 * selection whose pool reported a ready process:
 * it is a pool hand-out at the agent, never a cold start. A hit is decided
 * on the thread that received the request, like a sticky repeat: the process
 * must be alive in the master's view (reg_live: the agent's launch reply,
 * then no exit report, no report gap, server up), else it is dropped and
 * stopped and never handed out.
 *
 * Refills wait for a pause: while hits keep coming (one less than
 * STOCK_QUIET_MS ago) a hit refills only a stock down to a quarter of its
 * target, so a burst the stock can hold is served without launches, pool
 * hand-outs and the agents' refill forks competing for the same cores (the
 * agents' pools wait for a pause the same way); the chores (every second)
 * and the next quiet launch reply top it up.
 *
 * Lock order: the stock table's mutex is never held while taking another
 * lock (stock.h); the view's lock is taken here with no other held.
 */
#include "attempt.h"
#include "master.h"
#include "stock.h"

#include "common/util.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STOCK_SLOTS 64 /* stock launches in flight at once, all servers together */
#define STOCK_QUIET_MS 50

/* One launch in flight: the attempt's owner (static, so nothing leaks when
 * the master stops with launches in flight). */
typedef struct stock_slot {
    master *m;
    bool busy;
    stock_item it; /* ids and endpoint of the launch */
} stock_slot;

struct stock_run {
    pthread_mutex_t mu; /* guards slot[].busy */
    stock_slot slot[STOCK_SLOTS];
    _Atomic int64_t last_hit_ms; /* lb_mono_ms() of the latest hit */
};

void master_stock_init(master *m)
{
    m->stock = NULL;
    m->stock_run = NULL;
    if (m->cfg.n_stock == 0)
        return;
    m->stock = stock_table_new(MASTER_STOCK_CAP);
    m->stock_run = lb_xcalloc(1, sizeof *m->stock_run);
    pthread_mutex_init(&m->stock_run->mu, NULL);
    atomic_init(&m->stock_run->last_hit_ms, INT64_MIN / 2);
    for (size_t i = 0; i < STOCK_SLOTS; i++)
        m->stock_run->slot[i].m = m;
}

void master_stock_free(master *m)
{
    if (m->stock_run != NULL) {
        pthread_mutex_destroy(&m->stock_run->mu);
        free(m->stock_run);
        m->stock_run = NULL;
    }
    stock_table_free(m->stock);
    m->stock = NULL;
}

static stock_slot *slot_get(master *m, const stock_item *it)
{
    struct stock_run *r = m->stock_run;
    stock_slot *got = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < STOCK_SLOTS && got == NULL; i++)
        if (!r->slot[i].busy) {
            got = &r->slot[i];
            got->busy = true;
            got->it = *it;
        }
    pthread_mutex_unlock(&r->mu);
    return got;
}

static void slot_put(master *m, stock_slot *s)
{
    pthread_mutex_lock(&m->stock_run->mu);
    s->busy = false;
    pthread_mutex_unlock(&m->stock_run->mu);
}

static void drop_and_stop(master *m, const stock_item *e, const char *why)
{
    char name[96];
    snprintf(name, sizeof name, "master_stock_dropped_total{why=\"%s\"}", why);
    obs_count(name);
    LOG_INFO("master", "stock dropped; stopping its process", "server=%s session=%s pid=%d why=%s",
             e->server_id, e->session_id, (int)e->pid, why);
    master_agent_stop(m, e->server_id, e->endpoint, e->session_id);
}

/* Whether server is in selection for app (up, not ejected, drained or
 * disabled, with capacity, offering app); its agent endpoint goes to ep.
 * View lock held. */
static bool in_selection_locked(master *m, const char *server, const char *app, char *ep,
                                size_t cap)
{
    sel_snapshot *snap = reg_snapshot_locked(m->view);
    reg_server *rs = reg_server_locked(m->view, server);
    if (rs == NULL || rs->idx < 0 || rs->info->agent_endpoint == NULL ||
        rs->info->agent_endpoint[0] == '\0')
        return false;
    const sel_server *s = sel_snapshot_server(snap, rs->idx);
    if (s == NULL || !s->up || s->ejected || s->drained || s->disabled || s->capacity == 0)
        return false;
    bool offers = false;
    for (size_t i = 0; i < s->n_apps && !offers; i++)
        offers = strcmp(s->apps[i], app) == 0;
    snprintf(ep, cap, "%s", rs->info->agent_endpoint);
    return offers;
}

/* Ready pool processes of app at server in its last report. View lock held. */
static uint32_t pool_ready_locked(master *m, const char *server, const char *app)
{
    reg_server *rs = reg_server_locked(m->view, server);
    if (rs == NULL || rs->load == NULL)
        return 0;
    for (size_t i = 0; i < rs->load->n_apps; i++)
        if (strcmp(rs->load->apps[i]->app, app) == 0)
            return rs->load->apps[i]->ready;
    return 0;
}

static bool alive_locked(master *m, const stock_item *e)
{
    Lb__ProcessId p = LB__PROCESS_ID__INIT;
    p.pid = e->pid;
    p.started_at = e->started_at;
    Lb__Session s = LB__SESSION__INIT;
    s.server_id = (char *)e->server_id;
    s.process = &p;
    return reg_live_alive_locked(m->view, &s);
}

bool master_stock_take(master *m, const char *server, const char *app, stock_item *out)
{
    if (m->stock == NULL || master_stock_for(&m->cfg, app) <= 0)
        return false;
    if (!master_leading(m)) /* fenced: a deposed leader hands nothing out */
        return false;
    int64_t lease = atomic_load(&m->leader_lease);
    while (stock_take(m->stock, server, app, lease, out)) {
        reg_lock(m->view);
        bool alive = alive_locked(m, out);
        reg_unlock(m->view);
        if (alive) {
            obs_count("master_stock_hits_total");
            return true;
        }
        drop_and_stop(m, out, "dead");
    }
    obs_count("master_stock_misses_total");
    return false;
}

static void stock_launch_done(void *owner, nng_msg *reply, const char *why);

/* Whether a refill of app at server should start now (header comment). */
static bool refill_due(master *m, const char *server, const char *app)
{
    if (lb_mono_ms() - atomic_load(&m->stock_run->last_hit_ms) >= STOCK_QUIET_MS)
        return true;
    bool launching = false;
    size_t have = stock_count_at(m->stock, server, app, &launching);
    return (int)have * 4 <= master_stock_for(&m->cfg, app);
}

void master_stock_used(master *m, const char *server, const char *app)
{
    if (m->stock_run == NULL)
        return;
    atomic_store(&m->stock_run->last_hit_ms, lb_mono_ms());
    if (refill_due(m, server, app))
        master_stock_refill(m, server, app);
}

void master_stock_refill(master *m, const char *server, const char *app)
{
    int want = m->stock != NULL ? master_stock_for(&m->cfg, app) : 0;
    if (want <= 0 || !master_leading(m))
        return;
    stock_item it;
    memset(&it, 0, sizeof it);
    reg_lock(m->view);
    bool ok = in_selection_locked(m, server, app, it.endpoint, sizeof it.endpoint) &&
              pool_ready_locked(m, server, app) > 0;
    reg_unlock(m->view);
    if (!ok)
        return;
    char rnd[33];
    lb_random_id(rnd);
    snprintf(it.session_id, sizeof it.session_id, "stock-%s", rnd);
    snprintf(it.app, sizeof it.app, "%s", app);
    snprintf(it.server_id, sizeof it.server_id, "%s", server);
    it.lease = atomic_load(&m->leader_lease);
    if (stock_begin(m->stock, &it, (uint32_t)want) != LB_OK)
        return; /* full, or a launch in flight there already */
    stock_slot *sl = slot_get(m, &it);
    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    lr.app = it.app;
    lr.session_id = it.session_id;
    lr.client_id = "lb-stock";
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    nng_msg *msg = NULL;
    const char *fail = NULL;
    if (sl == NULL)
        fail = "too many stock launches in flight";
    else if (wire_encode(&env, &msg) != LB_OK)
        fail = "out of memory";
    else if (!attempt_start(m, server, it.endpoint, it.session_id, msg, stock_launch_done, sl,
                            &fail))
        ; /* fail set */
    else
        return;
    if (sl != NULL)
        slot_put(m, sl);
    stock_drop(m->stock, it.session_id, NULL);
    obs_count("master_stock_launches_total{result=\"failed\"}");
    LOG_DEBUG("master", "stock launch not sent", "server=%s app=%s err=\"%s\"", server, app,
              fail != NULL ? fail : "?");
}

/* The agent's answer to a stock launch (nng's thread). */
static void stock_launch_done(void *owner, nng_msg *reply, const char *why)
{
    stock_slot *sl = owner;
    master *m = sl->m;
    stock_item it = sl->it;
    slot_put(m, sl);
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    if (reply != NULL) {
        if (wire_decode(reply, m->cfg.max_message, &env, &em) != LB_OK)
            why = "malformed launch reply";
        nng_msg_free(reply);
    }
    if (env != NULL && (env->body_case != LB__ENVELOPE__BODY_LAUNCH_REPLY ||
                        !env->launch_reply->ok || env->launch_reply->process == NULL)) {
        why = "launch refused";
        wire_free(&env);
    }
    if (env == NULL) {
        stock_drop(m->stock, it.session_id, NULL);
        obs_count("master_stock_launches_total{result=\"failed\"}");
        LOG_WARN("master", "stock launch failed", "server=%s app=%s err=\"%s\"", it.server_id,
                 it.app, why != NULL ? why : "?");
        return;
    }
    const Lb__ProcessId *p = env->launch_reply->process;
    it.pid = p->pid;
    it.port = p->port;
    it.started_at = p->started_at;
    snprintf(it.host, sizeof it.host, "%s", p->host != NULL ? p->host : "");
    if (stock_fill(m->stock, it.session_id, &it) != LB_OK) {
        /* dropped while it launched (leadership lost, server drained) */
        wire_free(&env);
        drop_and_stop(m, &it, "dropped_while_launching");
        return;
    }
    reg_lock(m->view);
    reg_live_mark_locked(m->view, it.server_id, p);
    reg_unlock(m->view);
    wire_free(&env);
    obs_count("master_stock_launches_total{result=\"ok\"}");
    if (refill_due(m, it.server_id, it.app)) /* the next one, if still short */
        master_stock_refill(m, it.server_id, it.app);
}

/* Why entry e may not be handed out any more, or NULL. View lock held. */
static const char *unfit_locked(master *m, const stock_item *e, bool lead, int64_t lease)
{
    char ep[256];
    if (!lead || e->lease != lease)
        return "not_leading";
    if (!in_selection_locked(m, e->server_id, e->app, ep, sizeof ep))
        return "out_of_selection";
    if (e->ready && !alive_locked(m, e))
        return "dead";
    return NULL;
}

/* Drops stock that is unfit (stock_run.c's header); returns how many held. */
static size_t check_all(master *m, bool lead)
{
    /* sized to what is held now (a deep stock is thousands of entries; the
     * table may grow meanwhile: stock_list copies at most cap) */
    size_t cap = stock_count(m->stock, NULL) + 1;
    stock_item *v = lb_xcalloc(cap, sizeof *v);
    const char **why = lb_xcalloc(cap, sizeof *why);
    size_t n = stock_list(m->stock, v, cap);
    int64_t lease = atomic_load(&m->leader_lease);
    if (n > 0) {
        reg_lock(m->view);
        for (size_t i = 0; i < n; i++)
            why[i] = unfit_locked(m, &v[i], lead, lease);
        reg_unlock(m->view);
    }
    size_t kept = n;
    for (size_t i = 0; i < n; i++) {
        stock_item e;
        if (why[i] == NULL || !stock_drop(m->stock, v[i].session_id, &e))
            continue;
        kept--;
        if (e.ready) /* a launching one is stopped when its reply comes */
            drop_and_stop(m, &e, why[i]);
    }
    free(why);
    free(v);
    return kept;
}

/* Starts refills at every server in selection for a stocked app. */
static void refill_all(master *m)
{
    size_t cap = 0, n = 0, it = 0;
    reg_server *s;
    reg_lock(m->view);
    while ((s = reg_server_next_locked(m->view, &it)) != NULL)
        cap++;
    char **ids = lb_xcalloc(cap + 1, sizeof *ids);
    it = 0;
    while ((s = reg_server_next_locked(m->view, &it)) != NULL && n < cap)
        ids[n++] = lb_strdup(s->info->id);
    reg_unlock(m->view);
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 0; a < m->cfg.n_stock; a++)
            if (m->cfg.stock[a].count > 0)
                master_stock_refill(m, ids[i], m->cfg.stock[a].app);
        free(ids[i]);
    }
    free(ids);
}

void master_stock_tick(master *m, bool lead)
{
    if (m->stock == NULL)
        return;
    check_all(m, lead);
    if (lead)
        refill_all(m);
    size_t ready = 0, held = stock_count(m->stock, &ready);
    obs_gauge_set(obs_gauge_get("master_stock_held"), (double)held);
    obs_gauge_set(obs_gauge_get("master_stock_ready"), (double)ready);
}
