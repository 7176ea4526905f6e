/*
 * etcd upkeep, on the writer thread (called from its 1 s chores):
 *
 * - every master reads etcd's alarms every UPKEEP_ALARM_MS: a NOSPACE alarm
 *   (the store is over its quota, every write fails) turns /healthz 503 with
 *   that reason and is logged once when raised and once when cleared;
 * - the leader samples (time, revision) and compacts history older than
 *   compact_retention, so etcd's history stays bounded without relying on the
 *   operator's --auto-compaction flags (the shipped configs set them too);
 * - the leader watches the db size against etcd_quota and warns past 80 %;
 * - a new leader deletes load/ records an older version wrote every second,
 *   and affinity/ records an older version wrote with each session (the view
 *   derives a client's affinity from its sessions, which carry client and
 *   app; nothing reads those records).
 */
#include "master.h"
#include "spares.h"

#include "common/util.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPKEEP_ALARM_MS 2000
#define UPKEEP_SAMPLES 64
#define UPKEEP_SAMPLE_MIN_MS 1000
#define UPKEEP_SAMPLE_MAX_MS 10000

typedef struct rev_sample {
    int64_t at_ms; /* monotonic */
    int64_t rev;
} rev_sample;

struct master_upkeep {
    int64_t next_alarm, next_sample;
    rev_sample ring[UPKEEP_SAMPLES]; /* oldest overwritten first */
    size_t next, n;
    int64_t compacted; /* highest revision compacted by us */
    bool quota_warned, legacy_cleaned, alarm_failing;
};

static void check_alarms(master *m, struct master_upkeep *u)
{
    char names[128];
    bool nospace = false;
    lb_errmsg em = {{0}};
    if (etcd_alarms(m->etcd, names, sizeof names, &nospace, &em) != LB_OK) {
        u->alarm_failing = true; /* etcd unreachable: the watch status says so */
        return;
    }
    u->alarm_failing = false;
    bool was = atomic_exchange(&m->etcd_nospace, nospace);
    if (nospace && !was)
        LOG_ERROR("master", "etcd NOSPACE alarm: etcd is over its quota and refuses writes",
                  "alarms=%s etcd=%s action=\"compact and defragment etcd, raise "
                  "--quota-backend-bytes if needed, then etcdctl alarm disarm\"",
                  names, m->cfg.etcd);
    else if (!nospace && was)
        LOG_INFO("master", "etcd NOSPACE alarm cleared", "etcd=%s", m->cfg.etcd);
    obs_gauge_set(obs_gauge_get("master_etcd_nospace"), nospace ? 1 : 0);
}

static void check_quota(master *m, struct master_upkeep *u, int64_t db)
{
    atomic_store(&m->etcd_db_bytes, db);
    obs_gauge_set(obs_gauge_get("master_etcd_db_bytes"), (double)db);
    if (m->cfg.etcd_quota == 0)
        return;
    double share = (double)db / (double)m->cfg.etcd_quota;
    if (share > 0.8 && !u->quota_warned) {
        LOG_WARN("master", "etcd db over 80% of its quota", "db_bytes=%lld quota_bytes=%llu",
                 (long long)db, (unsigned long long)m->cfg.etcd_quota);
        u->quota_warned = true;
    } else if (share < 0.7 && u->quota_warned) {
        LOG_INFO("master", "etcd db back under 70% of its quota", "db_bytes=%lld", (long long)db);
        u->quota_warned = false;
    }
}

/* Compacts up to the newest sampled revision older than the retention. */
static void compact(master *m, struct master_upkeep *u, int64_t now)
{
    int64_t target = 0;
    for (size_t i = 0; i < u->n; i++) {
        const rev_sample *s = &u->ring[i];
        if (now - s->at_ms >= m->cfg.compact_retention_ms && s->rev > target)
            target = s->rev;
    }
    if (target <= u->compacted)
        return;
    lb_errmsg em = {{0}};
    lb_err err = etcd_compact(m->etcd, target, &em);
    if (err == LB_OK || err == LB_ECOMPACTED) {
        u->compacted = target;
        obs_count("master_etcd_compactions_total");
        obs_gauge_set(obs_gauge_get("master_etcd_compacted_revision"), (double)target);
        LOG_DEBUG("master", "etcd history compacted", "revision=%lld", (long long)target);
    } else {
        obs_count("master_etcd_compaction_errors_total");
        LOG_WARN("master", "etcd compaction failed", "revision=%lld err=\"%s\"", (long long)target,
                 em.text);
    }
}

static void sample(master *m, struct master_upkeep *u, int64_t now)
{
    etcd_status_info st;
    lb_errmsg em = {{0}};
    if (etcd_status(m->etcd, &st, &em) != LB_OK)
        return;
    check_quota(m, u, st.db_size);
    u->ring[u->next] = (rev_sample){.at_ms = now, .rev = st.revision};
    u->next = (u->next + 1) % UPKEEP_SAMPLES;
    if (u->n < UPKEEP_SAMPLES)
        u->n++;
    if (m->cfg.compact_retention_ms > 0)
        compact(m, u, now);
}

/* Deletes every record under prefix/kind/ (once; true when
 * done). Plain deletes, not fenced: nothing reads these records. */
static bool clean_kind(master *m, const char *kind, const char *why)
{
    char key[512];
    reg_key(m->view, key, sizeof key, kind, "");
    int64_t deleted = 0;
    lb_errmsg em = {{0}};
    if (etcd_delete(m->etcd, key, true, &deleted, &em) != LB_OK)
        return false;
    if (deleted > 0)
        LOG_INFO("master", "removed records an older version wrote",
                 "kind=%s count=%lld why=\"%s\"", kind, (long long)deleted, why);
    return true;
}

static void clean_legacy(master *m, struct master_upkeep *u)
{
    u->legacy_cleaned = clean_kind(m, "load", "load is no longer stored in etcd") &&
                        clean_kind(m, "affinity", "affinity is derived from the sessions");
}

/* Hot spares not claimed within spare_ttl: the agent stops them (its pool
 * refills in the background, so a spare is not returned as such). Any master
 * that holds reservations does this, leader or not any more. */
static void expire_spares(master *m)
{
    spare_resv out[16];
    size_t n;
    while ((n = spare_expire(m->spares, lb_wall_ms(), out, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            obs_count("master_spares_expired_total");
            LOG_INFO("master", "spare unclaimed; stopping it", "server=%s session=%s pid=%d",
                     out[i].server_id, out[i].session_id, (int)out[i].pid);
            master_agent_stop(m, out[i].server_id, out[i].endpoint, out[i].session_id);
        }
    }
}

void master_upkeep(master *m, bool lead)
{
    expire_spares(m);
    if (m->upkeep == NULL)
        m->upkeep = lb_xcalloc(1, sizeof *m->upkeep);
    struct master_upkeep *u = m->upkeep;
    int64_t now = lb_mono_ms();
    if (now >= u->next_alarm) {
        check_alarms(m, u);
        u->next_alarm = now + UPKEEP_ALARM_MS;
    }
    if (!lead)
        return;
    if (m->cfg.etcd_economy && !u->legacy_cleaned)
        clean_legacy(m, u);
    if (now >= u->next_sample) {
        /* ~30 samples per retention window, between 1 s and 10 s apart */
        int64_t every = m->cfg.compact_retention_ms / 30;
        every = every < UPKEEP_SAMPLE_MIN_MS   ? UPKEEP_SAMPLE_MIN_MS
                : every > UPKEEP_SAMPLE_MAX_MS ? UPKEEP_SAMPLE_MAX_MS
                                               : every;
        sample(m, u, now);
        u->next_sample = now + every;
    }
}

void master_upkeep_free(master *m)
{
    free(m->upkeep);
    m->upkeep = NULL;
}

bool master_upkeep_unhealthy(master *m, char *why, size_t cap)
{
    if (!atomic_load(&m->etcd_nospace))
        return false;
    snprintf(why, cap,
             "etcd NOSPACE alarm: etcd is over its quota and refuses writes (%s); "
             "compact, defragment and disarm it",
             m->cfg.etcd);
    return true;
}
