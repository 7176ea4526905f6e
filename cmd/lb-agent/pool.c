/*
 * Warm pools: per app, min_ready processes started, ready (their port
 * accepts connections) and unassigned, so a launch hands one out at once and
 * the client never waits for a start-up (the seed's pre-launched processes).
 *
 * One pool thread, woken by a hand-out, a drain or a reload and every
 * POOL_TICK_MS otherwise, brings each app's pool to its target: it starts the
 * missing processes (within capacity; each forks without the table lock, so a
 * hand-out never waits for a refill), waits until each is ready, and stops the
 * extras. Pool processes are ordinary table entries with
 * `pooled` set and no session: they count against capacity (a launch at
 * capacity evicts a pool process of another app), a dead one is reaped and
 * replaced at the next round, and pool_take_locked binds one to a session.
 *
 * The target is the app's min_ready, or the cluster-wide override at
 * <prefix>pools/<app> (a decimal count written by `lbctl pool set APP N`,
 * watched here), and 0 while the agent drains (SIGTERM) or the server is
 * drained or disabled by an operator (<prefix>overrides/<id>, watched too).
 * Pools never exceed max(max_ready, override).
 */
#include "agent.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_TICK_MS 200
#define POOL_RETRY_MS 1000 /* after a failed start, per app */
#define POOL_PROBE_MS 1000 /* each ready pool process's listener (sock_diag) */
#define POOL_SETTLE_MS 50  /* refills wait this long after the last hand-out */
#define POOL_BATCH 64
#define POOL_OVERRIDES_MAX 256

typedef struct pool_override {
    char app[65];
    uint32_t n;
} pool_override;

/* Written by the watch callbacks, read by the pool thread: a->pool_lock. */
static pool_override pool_ovr[POOL_OVERRIDES_MAX];
static size_t pool_n_ovr;
static bool pool_server_off; /* drained or disabled by an operator */
static etcd_watch *pool_watch, *pool_ovr_watch;

void pool_kick(agent *a)
{
    pthread_mutex_lock(&a->pool_lock);
    a->pool_wake = true;
    pthread_cond_signal(&a->pool_cond);
    pthread_mutex_unlock(&a->pool_lock);
}

/* A hand-out's report and refill wait until its answer is sent, and then
 * until hand-outs pause (pool_settle_left): the refill
 * forks, and glibc's fork holds every malloc arena lock while it copies the
 * agent, so an answer encoded meanwhile waited for it; and the report, sent
 * first, kept the master busy (its view lock) when the answer came in. The
 * master needs neither: the answer's launch_seq tells it whether a report
 * already counts the session. (Each cost ~1 ms per hit, issue 10.) */
static _Thread_local bool pool_due;

void pool_kick_later(void)
{
    pool_due = true;
}

bool pool_kick_due(agent *a)
{
    if (!pool_due)
        return false;
    pool_due = false;
    atomic_store(&a->pool_hit_ms, lb_mono_ms());
    atomic_store(&a->pool_report_due, true);
    pool_kick(a);
    return true;
}

/* ---- the etcd overrides ---- */

static void pool_apply_kv(agent *a, const char *key, const unsigned char *val, size_t len, bool put)
{
    char pools[256], ovr[384];
    snprintf(pools, sizeof pools, "%spools/", a->cfg->prefix);
    snprintf(ovr, sizeof ovr, "%soverrides/%s", a->cfg->prefix, a->cfg->id);
    if (strcmp(key, ovr) == 0) {
        Lb__Override *o = put ? lb__override__unpack(NULL, len, val) : NULL;
        pool_server_off = o != NULL && (o->drain || o->disable);
        if (o != NULL)
            lb__override__free_unpacked(o, NULL);
        return;
    }
    if (strncmp(key, pools, strlen(pools)) != 0)
        return;
    const char *app = key + strlen(pools);
    char num[16] = "", *end = NULL;
    snprintf(num, sizeof num, "%.*s", (int)(len < 15 ? len : 15), (const char *)val);
    unsigned long n = strtoul(num, &end, 10);
    bool valid = put && num[0] != '\0' && *end == '\0' && n <= 10000 && strlen(app) <= 64;
    size_t i = 0;
    while (i < pool_n_ovr && strcmp(pool_ovr[i].app, app) != 0)
        i++;
    if (!valid) { /* deleted (or garbage, which is logged): back to the config */
        if (put)
            LOG_WARN(AGENT_COMP, "ignored pool override: not a count 0-10000", "key=%s", key);
        if (i < pool_n_ovr)
            pool_ovr[i] = pool_ovr[--pool_n_ovr];
        return;
    }
    if (i == pool_n_ovr && pool_n_ovr == POOL_OVERRIDES_MAX)
        return;
    if (i == pool_n_ovr)
        pool_n_ovr++;
    snprintf(pool_ovr[i].app, sizeof pool_ovr[i].app, "%s", app);
    pool_ovr[i].n = (uint32_t)n;
}

static void pool_on_reset(void *arg, const etcd_kvs *snap)
{
    agent *a = arg;
    pthread_mutex_lock(&a->pool_lock);
    pool_n_ovr = 0;
    for (size_t i = 0; i < snap->n; i++)
        pool_apply_kv(a, snap->kvs[i].key, snap->kvs[i].value, snap->kvs[i].value_len, true);
    a->pool_wake = true;
    pthread_cond_signal(&a->pool_cond);
    pthread_mutex_unlock(&a->pool_lock);
}

static void pool_on_reset_override(void *arg, const etcd_kvs *snap)
{
    agent *a = arg;
    pthread_mutex_lock(&a->pool_lock);
    pool_server_off = false;
    for (size_t i = 0; i < snap->n; i++)
        pool_apply_kv(a, snap->kvs[i].key, snap->kvs[i].value, snap->kvs[i].value_len, true);
    a->pool_wake = true;
    pthread_cond_signal(&a->pool_cond);
    pthread_mutex_unlock(&a->pool_lock);
}

static void pool_on_events(void *arg, const etcd_event *evs, size_t n, int64_t rev)
{
    agent *a = arg;
    (void)rev;
    pthread_mutex_lock(&a->pool_lock);
    for (size_t i = 0; i < n; i++)
        pool_apply_kv(a, evs[i].kv.key, evs[i].kv.value, evs[i].kv.value_len,
                      evs[i].type == ETCD_EV_PUT);
    a->pool_wake = true;
    pthread_cond_signal(&a->pool_cond);
    pthread_mutex_unlock(&a->pool_lock);
}

/* The target and ceiling of app's pool now. */
static void pool_target(agent *a, const agent_app *app, uint32_t *target, uint32_t *ceiling)
{
    *target = app->pool_min;
    *ceiling = app->pool_max;
    pthread_mutex_lock(&a->pool_lock);
    for (size_t i = 0; i < pool_n_ovr; i++) {
        if (strcmp(pool_ovr[i].app, app->name) == 0) {
            *target = pool_ovr[i].n;
            *ceiling = pool_ovr[i].n > app->pool_max ? pool_ovr[i].n : app->pool_max;
        }
    }
    bool off = pool_server_off;
    pthread_mutex_unlock(&a->pool_lock);
    if (off || atomic_load(&a->draining) || atomic_load(&a->stopping) || !app->poolable)
        *target = *ceiling = 0;
}

/* ---- hand-out ---- */

agent_proc *pool_take_locked(agent *a, const agent_app *app, const char *session)
{
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (!e->pooled || e->starting || e->exited || e->failed ||
            strcmp(e->app->name, app->name) != 0)
            continue;
        /* no connect on the request path: the pool thread probes the
         * listeners (pool_probe); a process that died since is caught here */
        if (!launch_not_dying_locked(e)) /* killed and marked: the next one */
            continue;
        e->pooled = false;
        e->app = app;
        snprintf(e->session, sizeof e->session, "%s", session);
        e->ready_at_ms = lb_wall_ms();
        return e;
    }
    return NULL;
}

bool pool_evict_locked(agent *a, const agent_app *keep)
{
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (e->pooled && !e->starting && !e->exited && !e->failed &&
            strcmp(e->app->name, keep->name) != 0) {
            kill(-e->pid, SIGTERM);
            e->failed = true;
            obs_count("agent_pool_evictions_total");
            return true;
        }
    }
    return false;
}

/* ---- the pool thread ---- */

/* Live pool processes of app (starting ones too). p->lock held. */
static uint32_t pool_count_locked(agent *a, const agent_app *app)
{
    uint32_t n = 0;
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next)
        n += e->pooled && !e->exited && !e->failed && strcmp(e->app->name, app->name) == 0;
    return n;
}

/* Stops pool processes of apps the config no longer pools, and extras above
 * each app's ceiling (ready ones first). p->lock held. */
static size_t pool_trim_locked(agent *a, const agent_config *cfg)
{
    size_t n = 0;
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (!e->pooled || e->exited || e->failed)
            continue;
        const agent_app *app = agent_config_app(cfg, e->app->name);
        uint32_t target = 0, ceiling = 0;
        if (app != NULL)
            pool_target(a, app, &target, &ceiling);
        if (app != NULL && pool_count_locked(a, app) <= ceiling)
            continue;
        kill(-e->pid, SIGTERM);
        e->failed = true;
        n++;
    }
    return n;
}

/* Starts what app's pool lacks into started[]; returns how many. Called
 * without p->lock: each start takes it only briefly and forks without it, so
 * hand-outs and reports are never held up by a refill (issue 10). */
static size_t pool_fill(agent *a, const agent_config *cfg, const agent_app *app,
                        agent_proc **started, size_t cap)
{
    uint32_t target, ceiling;
    pool_target(a, app, &target, &ceiling);
    size_t n = 0;
    while (n < cap) {
        /* only this thread adds pool processes: the count cannot grow meanwhile */
        pthread_mutex_lock(&a->procs.lock);
        bool more =
            pool_count_locked(a, app) < target && procs_live_locked(&a->procs) < cfg->capacity;
        pthread_mutex_unlock(&a->procs.lock);
        if (!more)
            break;
        Lb__LaunchReply rep = LB__LAUNCH_REPLY__INIT;
        agent_proc *e = NULL;
        const char *res = launch_start_pool(a, app, &rep, &e);
        if (res != NULL) {
            LOG_WARN(AGENT_COMP, "pool start failed", "app=%s error=\"%s\"", app->name,
                     rep.error != NULL ? rep.error : res);
            launch_reply_clear(&rep);
            break;
        }
        started[n++] = e;
    }
    return n;
}

/* Waits for each started process; a failed one is killed and its app waits
 * POOL_RETRY_MS. Returns how many became ready. */
static size_t pool_wait(agent *a, agent_proc **started, size_t n, int64_t *retry_at,
                        const agent_config *cfg)
{
    size_t ready = 0;
    for (size_t i = 0; i < n; i++) {
        agent_proc *e = started[i];
        Lb__LaunchReply rep = LB__LAUNCH_REPLY__INIT;
        const char *res = launch_wait_ready(a, e, &rep);
        pthread_mutex_lock(&a->procs.lock);
        if (res == NULL && !e->exited) {
            e->starting = false;
            e->probed_ms = lb_mono_ms(); /* its readiness check was one */
            ready++;
        } else {
            LOG_WARN(AGENT_COMP, "pool process failed to start", "app=%s pid=%d error=\"%s\"",
                     e->app->name, (int)e->pid, rep.error != NULL ? rep.error : "exited");
            obs_count("agent_pool_start_failures_total");
            ptrdiff_t k = agent_config_app(cfg, e->app->name) - cfg->apps;
            if (k >= 0 && (size_t)k < cfg->n_apps)
                retry_at[k] = lb_mono_ms() + POOL_RETRY_MS;
            if (e->exited) {
                procs_remove_locked(&a->procs, e);
            } else {
                kill(-e->pid, SIGKILL);
                e->starting = false;
                e->failed = true;
            }
        }
        pthread_mutex_unlock(&a->procs.lock);
        launch_reply_clear(&rep);
    }
    return ready;
}

/* Checks that each ready pool process not probed for POOL_PROBE_MS still has
 * a listener on its port (one sock_diag dump for all of them, without
 * p->lock: no connection the app would have to accept), and replaces one that has none after a
 * connect confirms it: a hand-out checks only that its process is not exiting
 * (launch_not_dying_locked), so its connect (~100 us of a hit, issue 10) is
 * done here, off the request path. Returns how many were replaced. */
static size_t pool_probe(agent *a)
{
    struct {
        pid_t pid;
        uint16_t port;
        bool ok;
    } due[POOL_BATCH];
    size_t n = 0, bad = 0;
    int64_t now = lb_mono_ms();
    pthread_mutex_lock(&a->procs.lock);
    for (agent_proc *e = a->procs.head; e != NULL && n < POOL_BATCH; e = e->next) {
        if (e->pooled && !e->starting && !e->exited && !e->failed &&
            now - e->probed_ms >= POOL_PROBE_MS) {
            e->probed_ms = now;
            due[n].pid = e->pid;
            due[n++].port = e->port;
        }
    }
    pthread_mutex_unlock(&a->procs.lock);
    if (n > 0) {
        static uint8_t bits[LISTENERS_BITMAP_BYTES]; /* the pool thread's own */
        listeners_ports(bits);
        for (size_t i = 0; i < n; i++)
            due[i].ok = (bits[due[i].port >> 3] >> (due[i].port & 7)) & 1;
    }
    pthread_mutex_lock(&a->procs.lock);
    for (size_t i = 0; i < n; i++) {
        if (due[i].ok)
            continue;
        for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
            /* still the same pool process (not handed out meanwhile: then its
             * client's reconnect tells the master) */
            if (e->pid == due[i].pid && e->pooled && !e->exited && !e->failed) {
                launch_alive_locked(a, e); /* connects, replaces when that fails */
                bad += e->failed;
            }
        }
    }
    pthread_mutex_unlock(&a->procs.lock);
    return bad;
}

/* Milliseconds the refill still waits: hand-outs come in a burst, and a
 * refill's fork + exec + readiness check on the same cores slowed each
 * hand-out of the burst (P2 at 0.03-0.1 of echo, issue 10). So a refill starts
 * POOL_SETTLE_MS after the last hand-out, or at once when a pool has fallen to
 * a quarter of its target (a burst the pool cannot absorb refills as it goes).
 * The hand-outs' report waits too (pool_round sends it first): the master's
 * ready counts lag by at most POOL_SETTLE_MS. 0: refill now. */
static int64_t pool_settle_left(agent *a)
{
    int64_t left = atomic_load(&a->pool_hit_ms) + POOL_SETTLE_MS - lb_mono_ms();
    if (left <= 0)
        return 0;
    agent_config *cfg = a->cfg;
    pthread_mutex_lock(&a->procs.lock);
    for (size_t i = 0; i < cfg->n_apps && left > 0; i++) {
        uint32_t target = 0, ceiling = 0;
        pool_target(a, &cfg->apps[i], &target, &ceiling);
        if (target > 0 && pool_count_locked(a, &cfg->apps[i]) * 4 < target)
            left = 0;
    }
    pthread_mutex_unlock(&a->procs.lock);
    return left;
}

/* One round over every app; true when it changed something. */
static bool pool_round(agent *a, int64_t **retry_at, size_t *n_retry, agent_config **seen)
{
    agent_config *cfg = a->cfg;
    if (cfg != *seen || *n_retry != cfg->n_apps) { /* a reload: new app indexes */
        free(*retry_at);
        *retry_at = lb_xcalloc(cfg->n_apps + 1, sizeof **retry_at);
        *n_retry = cfg->n_apps;
        *seen = cfg;
    }
    agent_proc *started[POOL_BATCH];
    size_t n = 0;
    if (atomic_exchange(&a->pool_report_due, false))
        report_send(a); /* masters see the ready counts the hand-outs left */
    pthread_mutex_lock(&a->procs.lock);
    procs_reap_locked(a);
    size_t trimmed = pool_trim_locked(a, cfg);
    pthread_mutex_unlock(&a->procs.lock);
    trimmed += pool_probe(a);
    int64_t now = lb_mono_ms();
    for (size_t i = 0; i < cfg->n_apps && n < POOL_BATCH; i++) {
        if ((*retry_at)[i] <= now)
            n += pool_fill(a, cfg, &cfg->apps[i], started + n, POOL_BATCH - n);
    }
    size_t ready = pool_wait(a, started, n, *retry_at, cfg);
    if (trimmed > 0 || ready > 0)
        report_send(a); /* masters see the ready counts change at once */
    return n > 0 || trimmed > 0;
}

/* Sleeps up to ms or until pool_stop. */
static void pool_nap(agent *a, int64_t ms)
{
    pthread_mutex_lock(&a->pool_lock);
    if (!a->pool_quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->pool_cond, &a->pool_lock, &ts);
    }
    pthread_mutex_unlock(&a->pool_lock);
}

static void *pool_main(void *arg)
{
    agent *a = arg;
    int64_t *retry_at = NULL;
    size_t n_retry = 0;
    agent_config *seen = NULL;
    bool busy = true;
    for (;;) {
        pthread_mutex_lock(&a->pool_lock);
        if (!busy && !a->pool_wake && !a->pool_quit) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += POOL_TICK_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&a->pool_cond, &a->pool_lock, &ts);
        }
        bool quit = a->pool_quit;
        a->pool_wake = false;
        pthread_mutex_unlock(&a->pool_lock);
        if (quit)
            break;
        int64_t settle = pool_settle_left(a);
        if (settle > 0) {
            /* hand-outs under way: report and refill after the burst (the
             * master counts the sessions by their launch_seq meanwhile) */
            pool_nap(a, settle);
            busy = true; /* then a round */
            continue;
        }
        busy = pool_round(a, &retry_at, &n_retry, &seen);
    }
    free(retry_at);
    return NULL;
}

lb_err pool_start(agent *a, lb_errmsg *em)
{
    pthread_mutex_init(&a->pool_lock, NULL);
    pthread_cond_init(&a->pool_cond, NULL);
    if (a->etcd != NULL) {
        etcd_watch_cb cb = {.on_reset = pool_on_reset, .on_events = pool_on_events, .arg = a};
        etcd_watch_cb ocb = {
            .on_reset = pool_on_reset_override, .on_events = pool_on_events, .arg = a};
        char prefix[256], okey[384];
        snprintf(prefix, sizeof prefix, "%spools/", a->cfg->prefix);
        snprintf(okey, sizeof okey, "%soverrides/%s", a->cfg->prefix, a->cfg->id);
        lb_errmsg wem = {{0}};
        if (etcd_watch_start(a->etcd, prefix, &cb, &pool_watch, &wem) != LB_OK ||
            etcd_watch_start(a->etcd, okey, &ocb, &pool_ovr_watch, &wem) != LB_OK)
            LOG_WARN(AGENT_COMP, "pool overrides not watched", "error=\"%s\"", wem.text);
    }
    if (pthread_create(&a->pool_thread, NULL, pool_main, a) != 0)
        return lb_fail(em, LB_ESYS, "cannot start the pool thread");
    a->pool_started = true;
    return LB_OK;
}

void pool_stop(agent *a)
{
    etcd_watch_stop(&pool_watch);
    etcd_watch_stop(&pool_ovr_watch);
    if (!a->pool_started)
        return;
    pthread_mutex_lock(&a->pool_lock);
    a->pool_quit = true;
    pthread_cond_signal(&a->pool_cond);
    pthread_mutex_unlock(&a->pool_lock);
    pthread_join(a->pool_thread, NULL);
    a->pool_started = false;
    pthread_cond_destroy(&a->pool_cond);
    pthread_mutex_destroy(&a->pool_lock);
}
