/*
 * The master's etcd side: the watch that feeds the view, the lease that keeps
 * masters/<id> (and the leader key) alive, leader election, and one writer
 * thread that batches sessions (and, economy off, affinity and load) into txns of at most 128
 * ops (group commit: what queues while a txn is in flight goes in the next)
 * and runs the periodic chores. Nothing here runs on the request path.
 */
#include "master.h"

#include "batch.h"
#include "events.h"
#include "sessions.h"
#include "spares.h"
#include "stock.h"

#include "common/hmap.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/sid_digest.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TXN_MAX_OPS BATCH_MAX_OPS
#define WRITE_BACKOFF_MAX_MS 2000
#define NOPUT_WAIT_MAX_MS 3000 /* switch_noput waits this long at most for an empty queue */
#define WQ_MAX 200000          /* writes kept while etcd is down; beyond, the oldest are dropped */

/* ---- watch feed ------------------------------------------------------------------ */

/* The prefix is watched as three ranges: [prefix, sessions/), sessions/ and
 * [sessions0, prefix end). While this master leads, the sessions/ watch runs
 * with etcd's NOPUT filter: only the leader puts sessions (its txns are
 * fenced), it puts each in its view before queuing it, and an echo of every
 * put was etcd's largest cost per new session (it encodes each event for the
 * gateway) and the master's (it parses and applies it under the view lock).
 * Deletes still come (lbctl, an expiry by an older leader). The switch is
 * made by the writer thread with an empty write queue (switch_noput), and
 * reloads sessions/ (etcd_watch_set_noput), so nothing written before it is
 * missed; master_leading waits for that reload (leader.c). */
enum { WATCH_LO = 1, WATCH_S = 2, WATCH_HI = 4, WATCH_ALL = 7 };

typedef struct watch_feed {
    master *m;
    int bit;
    char lo[512], hi[512]; /* the range's keys */
    obs_counter *puts;     /* master_watch_session_puts_total (the sessions/ feed) */
} watch_feed;

static watch_feed feeds[3]; /* one master per process */

static void on_reset(void *arg, const etcd_kvs *snap)
{
    watch_feed *f = arg;
    master *m = f->m;
    reg_reset_range(m->view, snap, f->lo, f->hi);
    if (f->bit == WATCH_S && !master_leading(m)) {
        /* a leader keeps the sessions whose writes are queued; a standby (or
         * a leader still switching) must not keep deleted ones */
        size_t n = reg_drop_sessions_absent(m->view, snap);
        if (n > 0) {
            obs_add(obs_counter_get("master_view_sessions_dropped_total"), n);
            LOG_INFO("master", "view reloaded: dropped sessions etcd no longer holds", "count=%zu",
                     n);
        }
    }
    atomic_store(&m->trim_due, true);
}

static void on_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    (void)revision;
    watch_feed *f = arg;
    master *m = f->m;
    if (f->puts != NULL) { /* what the filter saves: none while leading (test_failover.py) */
        size_t puts = 0;
        for (size_t i = 0; i < n; i++)
            puts += evs[i].type == ETCD_EV_PUT;
        obs_add(f->puts, puts);
    }
    if (m->events != NULL) /* before the view applies them: events compare old and new */
        events_note(m->events, m->view, evs, n);
    reg_apply(m->view, evs, n);
}

/* Connected while all three streams are. */
static void on_status(void *arg, bool connected, lb_err err, const char *msg)
{
    watch_feed *f = arg;
    master *m = f->m;
    (void)err;
    (void)msg; /* pkg/etcd logs a loss with its cause: one line is enough */
    int up = connected ? atomic_fetch_or(&m->watch_up, f->bit) | f->bit
                       : atomic_fetch_and(&m->watch_up, ~f->bit) & ~f->bit;
    bool all = up == WATCH_ALL;
    bool was = atomic_exchange(&m->etcd_ok, all);
    if (was != all && all)
        LOG_INFO("master", "etcd watch connected", "etcd=%s", m->cfg.etcd);
}

/* Writer thread: the sessions/ watch filters this master's own puts while it
 * leads. On: only with nothing queued nor in flight (this thread writes), so
 * the reload's range holds every put made before; then master_leading waits
 * for that reload. Off at once: the reload brings what the filter hid. */
static void switch_noput(master *m)
{
    int64_t want = atomic_load(&m->is_leader) ? atomic_load(&m->lead_term) : 0;
    if (want == m->noput_asked)
        return;
    if (want != 0) {
        pthread_mutex_lock(&m->wq_lock);
        size_t queued = m->wq_len;
        pthread_mutex_unlock(&m->wq_lock);
        int64_t now = lb_mono_ms();
        if (queued > 0 && m->noput_wait_since == 0)
            m->noput_wait_since = now;
        if (queued > 0 && now - m->noput_wait_since < NOPUT_WAIT_MAX_MS)
            return;
        /* etcd has refused the queue that long (NOSPACE, say): lead anyway
         * rather than not at all; sessions whose puts land after the reload
         * may then be missing from the view (their processes are stopped by
         * the next session sync, their records expire) */
        if (queued > 0)
            LOG_WARN("master", "switching the session watch with writes still queued",
                     "queued=%zu waited_ms=%lld", queued, (long long)(now - m->noput_wait_since));
    }
    m->noput_wait_since = 0;
    etcd_watch_set_noput(m->watch_s, want);
    m->noput_asked = want;
    LOG_INFO("master",
             want != 0 ? "own session puts filtered from the watch" : "session puts watched",
             "term=%lld", (long long)want);
}

void master_writer_wake(master *m)
{
    pthread_mutex_lock(&m->wq_lock);
    pthread_cond_signal(&m->wq_cond);
    pthread_mutex_unlock(&m->wq_lock);
}

bool master_view_synced(master *m, int64_t term)
{
    return etcd_watch_synced(m->watch_s) == term;
}

static lb_err watch_start(master *m)
{
    lb_errmsg em = {{0}};
    const char *p = m->cfg.prefix;
    size_t pl = strlen(p);
    snprintf(feeds[0].lo, sizeof feeds[0].lo, "%s", p);
    snprintf(feeds[0].hi, sizeof feeds[0].hi, "%ssessions/", p);
    snprintf(feeds[1].lo, sizeof feeds[1].lo, "%ssessions/", p);
    snprintf(feeds[1].hi, sizeof feeds[1].hi, "%ssessions0", p);
    snprintf(feeds[2].lo, sizeof feeds[2].lo, "%ssessions0", p);
    snprintf(feeds[2].hi, sizeof feeds[2].hi, "%s", p);
    feeds[2].hi[pl - 1]++; /* the prefix's end: "/lb/" -> "/lb0" (config: ends in '/') */
    etcd_watch **ws[3] = {&m->watch_lo, &m->watch_s, &m->watch_hi};
    int bits[3] = {WATCH_LO, WATCH_S, WATCH_HI};
    for (int i = 0; i < 3; i++) {
        feeds[i].m = m;
        feeds[i].bit = bits[i];
        /* looked up once, shown from 0 */
        feeds[i].puts =
            bits[i] == WATCH_S ? obs_counter_get("master_watch_session_puts_total") : NULL;
        /* no prev_kv: a deleted session's detail comes from the view (events.h) */
        etcd_watch_cb cb = {
            .on_reset = on_reset, .on_events = on_events, .on_status = on_status, .arg = &feeds[i]};
        if (etcd_watch_start_range(m->etcd, feeds[i].lo, feeds[i].hi, &cb, ws[i], &em) != LB_OK) {
            LOG_ERROR("master", "etcd watch", "range=%s err=\"%s\"", feeds[i].lo, em.text);
            return LB_EETCD;
        }
    }
    return LB_OK;
}

/* ---- registration and leadership ------------------------------------------------- */

static lb_err on_granted(void *arg, int64_t lease)
{
    master *m = arg;
    Lb__MasterInfo mi = LB__MASTER_INFO__INIT;
    mi.id = m->cfg.id;
    mi.rpc_endpoint = m->cfg.advertise;
    mi.report_endpoint = m->cfg.report_advertise;
    mi.report_kx_key.data = m->kx_pk;
    mi.report_kx_key.len = sizeof m->kx_pk;
    mi.operator_endpoint = m->cfg.operator_advertise;
    mi.report_udp_endpoint = m->cfg.report_udp_advertise; /* "" when not bound */
    size_t len = lb__master_info__get_packed_size(&mi);
    uint8_t *buf = lb_xcalloc(1, len);
    lb__master_info__pack(&mi, buf);
    char key[512];
    reg_key(m->view, key, sizeof key, "masters", m->cfg.id);
    lb_errmsg em = {{0}};
    lb_err err = etcd_put(m->etcd, key, buf, len, lease, NULL, &em);
    free(buf);
    if (err != LB_OK) {
        LOG_WARN("master", "registration failed", "key=%s err=\"%s\"", key, em.text);
        return err;
    }
    master_try_lead(m, lease);
    return LB_OK;
}

/* ---- write queue ------------------------------------------------------------------- */

static void queue_op(master *m, const char *key, const void *value, size_t len, bool with_prev)
{
    write_op *op = lb_xcalloc(1, sizeof *op);
    op->with_prev = with_prev;
    op->key = lb_strdup(key);
    if (value != NULL) {
        op->value = lb_xcalloc(1, len);
        memcpy(op->value, value, len);
        op->len = len;
    }
    pthread_mutex_lock(&m->wq_lock);
    if (m->wq_tail != NULL)
        m->wq_tail->next = op;
    else
        m->wq_head = op;
    m->wq_tail = op;
    m->wq_len++;
    while (m->wq_len > WQ_MAX) {
        write_op *old = m->wq_head;
        m->wq_head = old->next;
        m->wq_len--;
        free(old->key);
        free(old->value);
        free(old);
        obs_count("master_etcd_writes_dropped_total");
    }
    pthread_cond_signal(&m->wq_cond);
    pthread_mutex_unlock(&m->wq_lock);
}

void master_queue_write(master *m, const char *key, const void *value, size_t len)
{
    queue_op(m, key, value, len, false);
}

void master_queue_session(master *m, const Lb__Session *s, bool joined, bool affinity)
{
    char key[512];
    size_t len = lb__session__get_packed_size(s);
    uint8_t *buf = lb_xcalloc(1, len);
    lb__session__pack(s, buf);
    reg_key(m->view, key, sizeof key, "sessions", s->session_id);
    queue_op(m, key, buf, len, joined);
    free(buf);
    if (!affinity)
        return;
    Lb__Affinity a = LB__AFFINITY__INIT;
    a.session_id = s->session_id;
    uint8_t abuf[256];
    if (lb__affinity__get_packed_size(&a) <= sizeof abuf) {
        len = lb__affinity__pack(&a, abuf);
        reg_affinity_key(m->view, key, sizeof key, s->client_id, s->app);
        queue_op(m, key, abuf, len, true);
    }
}

void master_queue_session_delete(master *m, const Lb__Session *s)
{
    char key[512];
    if (!m->cfg.etcd_economy) {
        reg_affinity_key(m->view, key, sizeof key, s->client_id, s->app);
        master_queue_write(m, key, NULL, 0);
    }
    reg_key(m->view, key, sizeof key, "sessions", s->session_id);
    master_queue_write(m, key, NULL, 0);
}

void master_session_forget_locked(master *m, const Lb__Session *s)
{
    events_session_deleting(m->events, s);
    reg_session_del_locked(m->view, s->session_id);
}

static void free_ops(write_op *op)
{
    while (op != NULL) {
        write_op *next = op->next;
        free(op->key);
        free(op->value);
        free(op);
        op = next;
    }
}

/* Writes one batch: the last op per key wins (etcd refuses a key twice in a txn). */
static lb_err flush_batch(master *m, write_op **batch, size_t n)
{
    etcd_op ops[TXN_MAX_OPS];
    const char *keys[TXN_MAX_OPS];
    bool superseded[TXN_MAX_OPS];
    for (size_t i = 0; i < n; i++)
        keys[i] = batch[i]->key;
    batch_superseded(keys, n, superseded);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (superseded[i])
            continue;
        ops[k++] = (etcd_op){.type = batch[i]->value != NULL ? ETCD_OP_PUT : ETCD_OP_DELETE,
                             .key = batch[i]->key,
                             .value = batch[i]->value,
                             .value_len = batch[i]->len};
    }
    /* fencing: the writes land only while this master still holds the leader
     * key with the lease it won it with; a deposed leader's writes fail */
    char key[512];
    snprintf(key, sizeof key, "%sleader", m->cfg.prefix);
    int64_t lease = atomic_load(&m->leader_lease);
    etcd_cmp cmps[2] = {
        {.key = key,
         .target = ETCD_CMP_VALUE,
         .result = ETCD_CMP_EQUAL,
         .value = m->cfg.id,
         .value_len = strlen(m->cfg.id)},
        {.key = key, .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL, .number = lease}};
    bool ok = false;
    lb_errmsg em = {{0}};
    lb_err err = lease == 0 ? LB_OK : etcd_txn(m->etcd, cmps, 2, ops, k, NULL, 0, &ok, NULL, &em);
    if (err == LB_OK && !ok) {
        obs_add(obs_counter_get("master_etcd_writes_fenced_total"), k);
        if (!m->writes_fenced)
            LOG_WARN("master", "writes fenced: not the leader; dropped", "ops=%zu lease=%llx", k,
                     (unsigned long long)lease);
        m->writes_fenced = true;
        atomic_store(&m->is_leader, false); /* leader.c logs the step-down */
        return LB_OK;                       /* dropped, never retried */
    }
    if (err != LB_OK) {
        obs_count("master_etcd_write_errors_total");
        /* logged when writes start failing, not on every retry */
        if (!m->writes_failing)
            LOG_WARN("master", "batched writes failing; retrying with backoff",
                     "ops=%zu err=\"%s\"", k, em.text);
        m->writes_failing = true;
    } else {
        obs_add(obs_counter_get("master_etcd_writes_total"), k);
        if (m->writes_failing)
            LOG_INFO("master", "batched writes resumed", "ops=%zu", k);
        m->writes_failing = false;
        m->writes_fenced = false;
    }
    return err;
}

/* Writes everything queued; what fails stays queued, in order. */
static lb_err flush_queue(master *m)
{
    pthread_mutex_lock(&m->wq_lock);
    write_op *head = m->wq_head;
    m->wq_head = m->wq_tail = NULL;
    m->wq_len = 0;
    pthread_mutex_unlock(&m->wq_lock);
    write_op *batch[TXN_MAX_OPS];
    write_op *op = head, *failed = NULL;
    while (op != NULL) {
        size_t n = 0;
        write_op *start = op;
        while (op != NULL && n < TXN_MAX_OPS) {
            /* a unit (an op and those joined to it) is never split across txns */
            size_t u = 1;
            for (const write_op *q = op->next; q != NULL && q->with_prev; q = q->next)
                u++;
            if (n > 0 && n + u > TXN_MAX_OPS)
                break;
            for (size_t k = 0; k < u && op != NULL; k++) {
                batch[n++] = op;
                op = op->next;
            }
        }
        if (flush_batch(m, batch, n) != LB_OK) {
            failed = start; /* keep this batch and the rest for the next round */
            break;
        }
    }
    /* free what was written; requeue the rest in front */
    write_op *p = head;
    while (p != NULL && p != failed) {
        write_op *next = p->next;
        p->next = NULL;
        free_ops(p);
        p = next;
    }
    if (failed != NULL) {
        write_op *tail = failed;
        size_t n = 1;
        while (tail->next != NULL) {
            tail = tail->next;
            n++;
        }
        pthread_mutex_lock(&m->wq_lock);
        tail->next = m->wq_head;
        m->wq_head = failed;
        if (m->wq_tail == NULL)
            m->wq_tail = tail;
        m->wq_len += n;
        pthread_mutex_unlock(&m->wq_lock);
    }
    return failed != NULL ? LB_EUNAVAIL : LB_OK;
}

/* ---- chores ------------------------------------------------------------------------- */

struct expired {
    char **sids;
    char **stop_server, **stop_endpoint; /* per-session processes to stop (NULL: none) */
    size_t n, cap;
    int64_t now;
};

static void collect_expired(const Lb__Session *s, void *arg)
{
    struct expired *e = arg;
    if (s->expires_ms > e->now || e->n == e->cap)
        return;
    e->sids[e->n++] = lb_strdup(s->session_id);
}

static void reap_sessions(master *m)
{
    struct expired e = {.cap = 4096, .now = lb_wall_ms()};
    e.sids = lb_xcalloc(e.cap, sizeof *e.sids);
    e.stop_server = lb_xcalloc(e.cap, sizeof *e.stop_server);
    e.stop_endpoint = lb_xcalloc(e.cap, sizeof *e.stop_endpoint);
    reg_lock(m->view);
    reg_sessions_foreach_locked(m->view, collect_expired, &e);
    for (size_t i = 0; i < e.n; i++) {
        reg_session_buf sb;
        const Lb__Session *s = reg_session_locked(m->view, e.sids[i], &sb);
        reg_server *srv = reg_server_locked(m->view, s->server_id);
        if (srv != NULL && master_per_session(srv, s->app)) { /* as a release does */
            e.stop_server[i] = lb_strdup(s->server_id);
            e.stop_endpoint[i] = lb_strdup(srv->info->agent_endpoint);
        }
        master_queue_session_delete(m, s);
        master_session_forget_locked(m, s);
    }
    reg_unlock(m->view);
    if (e.n > 0)
        LOG_INFO("master", "sessions expired", "count=%zu", e.n);
    obs_add(obs_counter_get("master_sessions_expired_total"), e.n);
    for (size_t i = 0; i < e.n; i++) {
        if (e.stop_server[i] != NULL)
            master_agent_stop(m, e.stop_server[i], e.stop_endpoint[i], e.sids[i]);
        free(e.stop_server[i]);
        free(e.stop_endpoint[i]);
        free(e.sids[i]);
    }
    free(e.stop_server);
    free(e.stop_endpoint);
    free(e.sids);
}

/* The old behaviour (etcd_economy: false, the P6 baseline): every server's
 * last load report rewritten at load/<id> every second. With economy, load
 * stays out of etcd: every master gets the reports directly and lbctl asks
 * the leader (LoadRequest); only stale load/ records of an older version are
 * deleted, once, by a new leader. */
static void write_loads(master *m)
{
    char key[512];
    reg_lock(m->view);
    size_t it = 0;
    reg_server *s;
    while ((s = reg_server_next_locked(m->view, &it)) != NULL) {
        if (s->load == NULL)
            continue;
        size_t len = lb__server_load__get_packed_size(s->load);
        uint8_t *buf = lb_xcalloc(1, len);
        lb__server_load__pack(s->load, buf);
        reg_key(m->view, key, sizeof key, "load", s->info->id);
        master_queue_write(m, key, buf, len);
        free(buf);
    }
    reg_unlock(m->view);
}

/* ---- session sync: agents stop processes of sessions the leader ended ---- */

#define SYNC_EVERY_CHORES 5      /* seconds */
#define SYNC_MAX_SESSIONS 2000   /* per server: one message stays well under max_message */
#define SYNC_DIALS_PER_ROUND 500 /* new agent connections a round opens: 10,000 in 100 s */

struct sync_server {
    char *id, *endpoint;
    char **sids; /* grown as needed: most servers hold few sessions */
    size_t n, cap;
    bool too_many;
    char **shared; /* its apps with one shared process (not per session): the
                    * agent's sync never stops those, so they are not listed */
    size_t n_shared;
    wire_sid_digest ours;   /* over sids */
    wire_sid_digest agents; /* from its last report */
    bool agents_set;        /* the report carried one */
};

struct sync_all {
    struct sync_server *srv;
    size_t n;
    hmap *by_id; /* server id -> struct sync_server *: one lookup per session, not a scan */
    reg *view;
};

static void collect(struct sync_all *a, const char *sid, const char *server_id, const char *app)
{
    struct sync_server *ss = hmap_get(a->by_id, server_id);
    if (ss == NULL)
        return;
    for (size_t i = 0; app != NULL && i < ss->n_shared; i++)
        if (strcmp(ss->shared[i], app) == 0)
            return;
    if (ss->n == SYNC_MAX_SESSIONS) {
        ss->too_many = true;
        return;
    }
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 8;
        ss->sids = realloc(ss->sids, ss->cap * sizeof *ss->sids);
        if (ss->sids == NULL)
            abort(); /* as lb_xcalloc does */
    }
    ss->sids[ss->n++] = lb_strdup(sid);
    wire_sid_digest_add(&ss->ours, sid);
}

static void collect_session(const Lb__Session *s, void *arg)
{
    collect(arg, s->session_id, s->server_id, s->app);
}

/* The leader's hot-spare reservations are kept too: they are no sessions,
 * and the agents would stop their processes as ended ones (after 3 s, while
 * spare_ttl is 10 s by default). Reservations of a previous leader are not
 * listed: that is what stops them after a failover. */
static void collect_spare(const spare_resv *r, void *arg)
{
    collect(arg, r->session_id, r->server_id, r->app);
}

/* The leader's stock likewise (launching entries too: the agent may have
 * started the process already). */
static void collect_stock(const stock_item *it, void *arg)
{
    collect(arg, it->session_id, it->server_id, it->app);
}

/* A server's entry, under the view lock: its shared apps and its agent's
 * last digest. */
static void sync_server_init(struct sync_server *ss, const reg_server *s)
{
    ss->id = lb_strdup(s->info->id);
    ss->endpoint = lb_strdup(s->info->agent_endpoint);
    const Lb__ServerInfo *si = s->info;
    ss->shared = si->n_app_infos ? lb_xcalloc(si->n_app_infos, sizeof *ss->shared) : NULL;
    for (size_t i = 0; i < si->n_app_infos; i++)
        if (!si->app_infos[i]->per_session)
            ss->shared[ss->n_shared++] = lb_strdup(si->app_infos[i]->name);
    if (s->load != NULL && s->load->sid_digest_set) {
        ss->agents_set = true;
        ss->agents = (wire_sid_digest){.x = s->load->sid_digest, .n = s->load->sid_digest_n};
    }
}

static void sync_server_free(struct sync_server *ss)
{
    for (size_t k = 0; k < ss->n; k++)
        free(ss->sids[k]);
    for (size_t k = 0; k < ss->n_shared; k++)
        free(ss->shared[k]);
    free(ss->sids);
    free(ss->shared);
    free(ss->id);
    free(ss->endpoint);
}

/* Every SYNC_EVERY_CHORES s each agent gets the leader's list of its live
 * sessions, and stops the per-session processes not on it (a stop that was
 * lost, a session ended while it was unreachable) — unless its last report's
 * digest says it holds exactly that list already: at steady state almost
 * every agent, so the leader sends nothing to them (10,000 messages every 5 s
 * at 10,000 servers otherwise). A process started after that report is in
 * the next report's digest, so what a skip leaves is caught a sync later. */
static void sync_agents(master *m)
{
    struct sync_all a = {.view = m->view, .by_id = hmap_new()};
    size_t it = 0, cap = 0;
    reg_server *s;
    reg_lock(m->view);
    while ((s = reg_server_next_locked(m->view, &it)) != NULL)
        cap++;
    a.srv = lb_xcalloc(cap + 1, sizeof *a.srv);
    it = 0;
    while ((s = reg_server_next_locked(m->view, &it)) != NULL && a.n < cap) {
        if (s->info->agent_endpoint == NULL || s->info->agent_endpoint[0] == '\0')
            continue;
        struct sync_server *ss = &a.srv[a.n++];
        sync_server_init(ss, s);
        hmap_put(a.by_id, ss->id, ss);
    }
    reg_sessions_foreach_locked(m->view, collect_session, &a);
    reg_unlock(m->view);
    spare_foreach(m->spares, collect_spare, &a);
    stock_foreach(m->stock, collect_stock, &a);
    size_t sent = 0, skipped = 0, dials = 0, deferred = 0;
    for (size_t i = 0; i < a.n; i++) {
        struct sync_server *ss = &a.srv[i];
        /* A new leader of 10,000 agents would dial them all in one round: the
         * client side of every TLS handshake is this process's CPU, and
         * handshakes queued behind thousands of others time out and are
         * dialed again, a storm that feeds itself. New connections are paced
         * (a launch still dials at once); the rest wait for later rounds,
         * their agents' deaths meanwhile seen through report_stale. */
        bool fresh = !master_agent_connected(m, ss->id);
        if (fresh && dials == SYNC_DIALS_PER_ROUND) {
            deferred++;
        } else if (ss->agents_set && ss->agents.x == ss->ours.x && ss->agents.n == ss->ours.n &&
                   !ss->too_many) {
            skipped++;
            /* nothing to say, but the leader stays connected to every agent:
             * that connection closing is how an idle agent's death is seen
             * at once (launch.c), not report_stale later */
            nng_ctx ctx;
            if (master_agent_ctx(m, ss->id, ss->endpoint, &ctx))
                nng_ctx_close(ctx);
            dials += fresh;
        } else if (!ss->too_many) { /* a partial list would stop live sessions */
            master_agent_sync(m, ss->id, ss->endpoint, ss->sids, ss->n);
            sent++;
            dials += fresh;
        }
        sync_server_free(ss);
    }
    obs_add(obs_counter_get("master_agent_syncs_total{result=\"deferred\"}"), deferred);
    obs_add(obs_counter_get("master_agent_syncs_total{result=\"sent\"}"), sent);
    obs_add(obs_counter_get("master_agent_syncs_total{result=\"in_step\"}"), skipped);
    free(a.srv);
    hmap_free(&a.by_id, NULL);
}

static void chores(master *m)
{
    static unsigned n_chores; /* the writer thread's own */
    /* Loading the view parses etcd's whole answer (at 100,000 sessions tens of
     * MiB of JSON and base64) and frees it; glibc keeps freed pages mapped,
     * so the load's peak stayed in RSS for good. Hand them back once the
     * load is over (the watch thread freed the answer by the next chore). */
    if (atomic_exchange(&m->trim_due, false))
        malloc_trim(0);
    bool lead = master_leading(m);
    if (lead) {
        reap_sessions(m);
        if (!m->cfg.etcd_economy)
            write_loads(m);
        if (++n_chores % SYNC_EVERY_CHORES == 0)
            sync_agents(m);
    }
    master_stock_tick(m, lead);
    master_upkeep(m, lead);
}

static void *writer_main(void *arg)
{
    master *m = arg;
    int64_t backoff = 0;
    int64_t next_chore = lb_mono_ms(), next_health = 0;
    while (!atomic_load(&m->stopping)) {
        pthread_mutex_lock(&m->wq_lock);
        if (m->wq_head == NULL && !atomic_load(&m->stopping)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&m->wq_cond, &m->wq_lock, &ts);
        }
        bool queued = m->wq_head != NULL;
        pthread_mutex_unlock(&m->wq_lock);
        /* Group commit: what was queued while the last txn was in flight goes
         * out now, together (in txns of at most TXN_MAX_OPS), after a short
         * linger (write_interval, default 1 ms) so back-to-back requests share
         * a txn too: etcd's CPU per put falls steeply with the txn's size
         * (tests/bench/etcd_put_cost.py), and it shares the machine with the
         * request path (README "Measured", P3). Under load the txns grow
         * instead of multiplying; a session is in etcd a linger and one txn
         * after its answer. */
        if (queued && m->cfg.write_interval_ms + backoff > 0)
            lb_sleep_ms(m->cfg.write_interval_ms + backoff);
        /* while etcd refuses, retry at most every WRITE_BACKOFF_MAX_MS */
        if (flush_queue(m) != LB_OK)
            backoff = backoff == 0 ? 100
                                   : (backoff * 2 < WRITE_BACKOFF_MAX_MS ? backoff * 2
                                                                         : WRITE_BACKOFF_MAX_MS);
        else
            backoff = 0;
        switch_noput(m);
        /* a server whose reports stopped is out within report_stale + 200 ms */
        if (lb_mono_ms() >= next_health) {
            reg_check_stale(m->view);
            next_health = lb_mono_ms() + 200;
        }
        if (lb_mono_ms() >= next_chore) {
            chores(m);
            next_chore = lb_mono_ms() + 1000;
        }
    }
    flush_queue(m);
    return NULL;
}

int master_etcd_start(master *m)
{
    lb_errmsg em = {{0}};
    if (etcd_open_secure(m->cfg.etcd, (int)m->cfg.etcd_timeout_ms, &m->cfg.etcd_sec, &m->etcd,
                         &em) != LB_OK) {
        LOG_ERROR("master", "etcd client", "err=\"%s\"", em.text);
        return -1;
    }
    /* before the keeper: an election it runs wakes the writer */
    pthread_mutex_init(&m->wq_lock, NULL);
    pthread_cond_init(&m->wq_cond, NULL);
    if (watch_start(m) != LB_OK)
        return -1;
    int64_t ttl_s = m->cfg.lease_ttl_ms / 1000 > 2 ? m->cfg.lease_ttl_ms / 1000 : 2;
    if (etcd_keeper_start(m->etcd, ttl_s, on_granted, m, &m->keeper, &em) != LB_OK) {
        LOG_ERROR("master", "etcd lease", "err=\"%s\"", em.text);
        return -1;
    }
    if (pthread_create(&m->writer, NULL, writer_main, m) != 0)
        return -1;
    return 0;
}

void master_etcd_stop(master *m)
{
    atomic_store(&m->stopping, true);
    pthread_mutex_lock(&m->wq_lock);
    pthread_cond_signal(&m->wq_cond);
    pthread_mutex_unlock(&m->wq_lock);
    pthread_join(m->writer, NULL);
    master_upkeep_free(m);
    etcd_keeper_stop(&m->keeper);
    etcd_watch_stop(&m->watch_lo);
    etcd_watch_stop(&m->watch_s);
    etcd_watch_stop(&m->watch_hi);
    free_ops(m->wq_head);
    m->wq_head = m->wq_tail = NULL;
    pthread_cond_destroy(&m->wq_cond);
    pthread_mutex_destroy(&m->wq_lock);
    etcd_close(&m->etcd);
}
