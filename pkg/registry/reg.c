/* The registry's core: construction, the etcd feed, load reports. */
#include "registry/reg_internal.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_server(void *p)
{
    reg_server *s = p;
    if (s == NULL)
        return;
    free(s->info); /* compact */
    free(s->load); /* compact */
    free(s->unreported);
    free(s->eject_reason);
    free(s->exited_ring);
    reg_live_clear(s);
    free(s);
}

static void free_slave(void *p)
{
    reg_slave *s = p;
    if (s == NULL)
        return;
    lb__slave_info__free_unpacked(s->info, NULL);
    free(s);
}

static void free_master(void *p)
{
    if (p != NULL)
        lb__master_info__free_unpacked(p, NULL);
}

static void free_group(void *p)
{
    if (p != NULL)
        lb__group_info__free_unpacked(p, NULL);
}

static void free_override(void *p)
{
    if (p != NULL)
        lb__override__free_unpacked(p, NULL);
}

static void free_session(void *p)
{
    free(p); /* a session record: one block (reg_sessions.c) */
}

reg *reg_new(const char *prefix, int64_t report_stale_ms)
{
    reg *r = lb_xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->prefix = lb_strdup(prefix);
    r->prefix_len = strlen(prefix);
    r->report_stale_ms = report_stale_ms;
    r->eject =
        (reg_eject_cfg){.consecutive = 3, .base_ms = 5000, .max_ms = 60000, .max_percent = 50};
    r->servers = hmap_new();
    r->slaves = hmap_new();
    r->masters = hmap_new();
    r->groups = hmap_new();
    r->overrides = hmap_new();
    r->sessions = hmap_new_keyed(reg_session_id_key);
    r->affinity = hmap_new_keyed(reg_session_aff_key);
    r->dirty = true;
    return r;
}

static void reg_clear(reg *r)
{
    reg_snapshot_drop(r);
    hmap_free(&r->servers, free_server);
    hmap_free(&r->slaves, free_slave);
    hmap_free(&r->masters, free_master);
    hmap_free(&r->groups, free_group);
    hmap_free(&r->overrides, free_override);
    hmap_free(&r->affinity, NULL); /* keys and values are the sessions' */
    hmap_free(&r->sessions, free_session);
}

void reg_free(reg **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    reg *r = *rp;
    reg_clear(r);
    pthread_mutex_destroy(&r->lock);
    free(r->prefix);
    free(r);
    *rp = NULL;
}

const char *reg_prefix(const reg *r)
{
    return r->prefix;
}

void reg_lock(reg *r)
{
    pthread_mutex_lock(&r->lock);
}

void reg_unlock(reg *r)
{
    pthread_mutex_unlock(&r->lock);
}

/* Ends a change made by a feeder (watch, reports, stale check): a changed view
 * gets its new selection snapshot here, on the feeding thread, so requests
 * never pay for a rebuild. */
/* A dirty snapshot is rebuilt here, on the feeding thread, but at most every
 * REG_REBUILD_MIN_MS: when thousands of servers change at once (their reports
 * resuming after a stall), one rebuild per report starved the report thread
 * at 10,000 servers and made more of them go stale. What is still dirty is
 * rebuilt by the next feed after that, the periodic stale check, or a request. */
#define REG_REBUILD_MIN_MS 100

void reg_unlock_settled(reg *r)
{
    if (r->dirty && (r->snap == NULL || lb_mono_ms() - r->built_ms >= REG_REBUILD_MIN_MS))
        reg_snapshot_locked(r);
    pthread_mutex_unlock(&r->lock);
}

void reg_key(const reg *r, char *out, size_t cap, const char *kind, const char *id)
{
    snprintf(out, cap, "%s%s/%s", r->prefix, kind, id);
}

void reg_affinity_name(char *out, size_t cap, const char *client, const char *app)
{
    snprintf(out, cap, "%s/%s", client, app);
}

void reg_affinity_key(const reg *r, char *out, size_t cap, const char *client, const char *app)
{
    snprintf(out, cap, "%saffinity/%s/%s", r->prefix, client, app);
}

/* ---- applying one key ---------------------------------------------------------- */

static void put_server(reg *r, const char *id, const etcd_kv *kv)
{
    Lb__ServerInfo *info = (Lb__ServerInfo *)reg_unpack_compact(&lb__server_info__descriptor,
                                                                kv->value_len, kv->value);
    if (info == NULL) {
        obs_count("registry_decode_errors_total{kind=\"server\"}");
        LOG_WARN("registry", "undecodable server record", "key=%s", kv->key);
        return;
    }
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL) {
        s = lb_xcalloc(1, sizeof *s);
        s->idx = -1;
        s->seen_at_ms = lb_mono_ms();
        s->override = hmap_get(r->overrides, id);
        hmap_put(r->servers, id, s);
        LOG_INFO("registry", "server up", "server=%s zone=%s group=%s", info->id, info->zone,
                 info->group);
    } else {
        free(s->info);
    }
    s->info = info;
    r->dirty = true;
}

static void put_record(reg *r, const char *kind, const char *id, const etcd_kv *kv)
{
    if (strcmp(kind, "servers") == 0) {
        put_server(r, id, kv);
    } else if (strcmp(kind, "slaves") == 0) {
        Lb__SlaveInfo *info = lb__slave_info__unpack(NULL, kv->value_len, kv->value);
        if (info == NULL)
            goto bad;
        reg_slave *s = hmap_get(r->slaves, id);
        if (s == NULL) {
            s = lb_xcalloc(1, sizeof *s);
            hmap_put(r->slaves, id, s);
        } else {
            lb__slave_info__free_unpacked(s->info, NULL);
        }
        s->info = info;
        r->dirty = true;
    } else if (strcmp(kind, "masters") == 0) {
        Lb__MasterInfo *m = lb__master_info__unpack(NULL, kv->value_len, kv->value);
        if (m == NULL)
            goto bad;
        free_master(hmap_put(r->masters, id, m));
    } else if (strcmp(kind, "groups") == 0) {
        Lb__GroupInfo *g = lb__group_info__unpack(NULL, kv->value_len, kv->value);
        if (g == NULL)
            goto bad;
        free_group(hmap_put(r->groups, id, g));
        r->dirty = true;
    } else if (strcmp(kind, "overrides") == 0) {
        Lb__Override *o = lb__override__unpack(NULL, kv->value_len, kv->value);
        if (o == NULL)
            goto bad;
        free_override(hmap_put(r->overrides, id, o));
        reg_server *s = hmap_get(r->servers, id);
        if (s != NULL)
            s->override = o;
        r->dirty = true;
    } else if (strcmp(kind, "sessions") == 0) {
        Lb__Session *in = lb__session__unpack(NULL, kv->value_len, kv->value);
        if (in == NULL)
            goto bad;
        const reg_vsession *cur = hmap_get(r->sessions, id);
        /* Our own writes echo back through the watch, possibly after a newer
         * in-memory update: only a renewal (later expiry) replaces what we have. */
        if (cur != NULL && reg_session_expires(cur) > in->expires_ms) {
            lb__session__free_unpacked(in, NULL);
            return;
        }
        reg_session_put_locked(r, in);
    }
    return;
bad:
    obs_count("registry_decode_errors_total{kind=\"record\"}");
    LOG_WARN("registry", "undecodable record", "key=%s", kv->key);
}

static void del_record(reg *r, const char *kind, const char *id)
{
    if (strcmp(kind, "servers") == 0) {
        reg_server *s = hmap_del(r->servers, id);
        if (s != NULL) {
            LOG_INFO("registry", "server gone", "server=%s", id);
            if (s->ejected_until_ms != 0 && r->n_ejected > 0)
                r->n_ejected--;
            reg_snapshot_drop(r); /* the snapshot borrows s's strings */
            free_server(s);
        }
    } else if (strcmp(kind, "slaves") == 0) {
        reg_slave *s = hmap_del(r->slaves, id);
        if (s != NULL) {
            reg_snapshot_drop(r);
            free_slave(s);
        }
    } else if (strcmp(kind, "masters") == 0) {
        free_master(hmap_del(r->masters, id));
    } else if (strcmp(kind, "groups") == 0) {
        free_group(hmap_del(r->groups, id));
        r->dirty = true;
    } else if (strcmp(kind, "overrides") == 0) {
        reg_server *s = hmap_get(r->servers, id);
        if (s != NULL)
            s->override = NULL;
        free_override(hmap_del(r->overrides, id));
        r->dirty = true;
    } else if (strcmp(kind, "sessions") == 0) {
        reg_session_del_locked(r, id);
    }
}

/* Splits "<prefix><kind>/<id>" (id may contain '/'); "leader" has no id. */
static bool split_key(const reg *r, const char *key, char *kind, size_t kcap, const char **id)
{
    if (strncmp(key, r->prefix, r->prefix_len) != 0)
        return false;
    const char *rest = key + r->prefix_len;
    const char *slash = strchr(rest, '/');
    if (slash == NULL) {
        snprintf(kind, kcap, "%s", rest);
        *id = "";
        return true;
    }
    size_t n = (size_t)(slash - rest);
    if (n >= kcap)
        return false;
    memcpy(kind, rest, n);
    kind[n] = '\0';
    *id = slash + 1;
    return **id != '\0';
}

static void apply_one(reg *r, etcd_event_type type, const etcd_kv *kv)
{
    char kind[32];
    const char *id;
    if (!split_key(r, kv->key, kind, sizeof kind, &id))
        return;
    if (strcmp(kind, "leader") == 0) {
        if (type == ETCD_EV_PUT)
            snprintf(r->leader, sizeof r->leader, "%.*s", (int)kv->value_len,
                     (const char *)kv->value);
        else
            r->leader[0] = '\0';
        return;
    }
    if (type == ETCD_EV_PUT)
        put_record(r, kind, id, kv);
    else
        del_record(r, kind, id);
}

/* Carries what the master learnt of each server (load, health, ejection),
 * which is not in etcd, from old into the reloaded servers, and frees old.
 * Lock held. */
static void keep_health(reg *r, hmap *old_servers)
{
    size_t it = 0;
    const char *id;
    void *v;
    r->n_ejected = 0;
    while (hmap_next(old_servers, &it, &id, &v)) {
        reg_server *old = v, *cur = hmap_get(r->servers, id);
        if (cur == NULL)
            continue;
        if (old->load != NULL) {
            cur->load = old->load;
            cur->load_at_ms = old->load_at_ms;
            old->load = NULL;
        }
        /* what the master learnt of the server's health is not in etcd either */
        cur->seen_at_ms = old->seen_at_ms;
        cur->stale = old->stale;
        cur->conn_down = old->conn_down;
        cur->consec_failures = old->consec_failures;
        cur->ejections = old->ejections;
        cur->ejected_until_ms = old->ejected_until_ms;
        cur->eject_reason = old->eject_reason;
        old->eject_reason = NULL;
        if (cur->ejected_until_ms != 0)
            r->n_ejected++;
    }
    hmap_free(&old_servers, free_server);
}

void reg_reset(reg *r, const etcd_kvs *snapshot)
{
    reg_reset_range(r, snapshot, "", NULL);
}

/* Whether the keys of family (prefix + family, e.g. "servers/") lie in [lo, hi). */
static bool family_in(const reg *r, const char *family, const char *lo, const char *hi)
{
    char key[512];
    snprintf(key, sizeof key, "%s%s", r->prefix, family);
    return strcmp(key, lo) >= 0 && (hi == NULL || strcmp(key, hi) < 0);
}

#define RESET_FAMILY(r, field, name, freefn, lo, hi)                                               \
    do {                                                                                           \
        if (family_in(r, name, lo, hi)) {                                                          \
            hmap_free(&(r)->field, freefn);                                                        \
            (r)->field = hmap_new();                                                               \
        }                                                                                          \
    } while (0)

void reg_reset_range(reg *r, const etcd_kvs *snapshot, const char *lo, const char *hi)
{
    reg_lock(r);
    /* Keep load reports across a reload: they come from the agents, not etcd. */
    hmap *old_servers = NULL;
    if (family_in(r, "servers/", lo, hi)) {
        old_servers = r->servers;
        r->servers = hmap_new();
        reg_snapshot_drop(r);
    }
    RESET_FAMILY(r, slaves, "slaves/", free_slave, lo, hi);
    RESET_FAMILY(r, masters, "masters/", free_master, lo, hi);
    RESET_FAMILY(r, groups, "groups/", free_group, lo, hi);
    RESET_FAMILY(r, overrides, "overrides/", free_override, lo, hi);
    if (family_in(r, "leader", lo, hi))
        r->leader[0] = '\0';
    for (size_t i = 0; i < snapshot->n; i++)
        apply_one(r, ETCD_EV_PUT, &snapshot->kvs[i]);
    if (old_servers != NULL)
        keep_health(r, old_servers);
    r->dirty = true;
    reg_unlock_settled(r);
    LOG_INFO("registry", "view loaded", "keys=%zu revision=%lld", snapshot->n,
             (long long)snapshot->revision);
}

void reg_apply(reg *r, const etcd_event *evs, size_t n)
{
    reg_lock(r);
    for (size_t i = 0; i < n; i++)
        apply_one(r, evs[i].type, &evs[i].kv);
    reg_unlock_settled(r);
}

/* ---- load reports ----------------------------------------------------------------- */

int reg_server_report_key(reg *r, const char *id, unsigned char *pk, size_t cap)
{
    reg_lock(r);
    reg_server *s = hmap_get(r->servers, id);
    int n = -1;
    if (s != NULL && s->info != NULL) {
        n = (int)s->info->report_key.len;
        if (n > 0 && (size_t)n <= cap)
            memcpy(pk, s->info->report_key.data, (size_t)n);
    }
    reg_unlock(r);
    return n;
}

int reg_slave_report_key(reg *r, const char *id, unsigned char *pk, size_t cap)
{
    reg_lock(r);
    reg_slave *s = hmap_get(r->slaves, id);
    int n = -1;
    if (s != NULL && s->info != NULL) {
        n = (int)s->info->report_key.len;
        if (n > 0 && (size_t)n <= cap)
            memcpy(pk, s->info->report_key.data, (size_t)n);
    }
    reg_unlock(r);
    return n;
}

/* Makes in (owned, unpacked with the default allocator) server s's last
 * report, kept compact; lock held. */
static void apply_load_locked(reg *r, reg_server *s, Lb__ServerLoad *in)
{
    Lb__ServerLoad *copy = reg_load_compact(in);
    lb__server_load__free_unpacked(in, NULL);
    reg_live_on_load(s, s->load, copy);
    free(s->load);
    s->load = copy;
    s->load_at_ms = lb_mono_ms();
    /* the report counts every launch up to copy->launches: forget those */
    size_t keep = 0;
    for (size_t i = 0; i < s->n_unreported; i++)
        if (s->unreported[i] > copy->launches)
            s->unreported[keep++] = s->unreported[i];
    s->n_unreported = keep;
    s->pending = s->inflight + (uint32_t)keep;
    if (s->stale) {
        s->stale = false;
        r->dirty = true;
    }
    if (!r->dirty && r->snap != NULL && s->idx >= 0)
        sel_snapshot_set_load_unreported(r->snap, s->idx, copy->sessions, s->pending,
                                         copy->cpu_load, copy->mem_free, copy->disk_free);
}

bool reg_on_server_load(reg *r, const Lb__ServerLoad *l)
{
    size_t len = lb__server_load__get_packed_size(l);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return false;
    lb__server_load__pack(l, buf);
    Lb__ServerLoad *copy = lb__server_load__unpack(NULL, len, buf);
    free(buf);
    if (copy == NULL)
        return false;
    return reg_on_server_loads(r, &copy, 1) == 1;
}

size_t reg_on_server_loads(reg *r, Lb__ServerLoad **ls, size_t n)
{
    size_t known = 0;
    reg_lock(r);
    for (size_t i = 0; i < n; i++) {
        reg_server *s = hmap_get(r->servers, ls[i]->server_id);
        if (s != NULL) {
            apply_load_locked(r, s, ls[i]);
            known++;
        } else {
            lb__server_load__free_unpacked(ls[i], NULL);
        }
        ls[i] = NULL;
    }
    reg_unlock_settled(r);
    return known;
}

bool reg_on_slave_load(reg *r, const Lb__SlaveLoad *l)
{
    reg_lock(r);
    reg_slave *s = hmap_get(r->slaves, l->slave_id);
    if (s != NULL) {
        s->load = l->load;
        if (!r->dirty && r->snap != NULL && s->idx >= 0)
            sel_snapshot_set_slave_load(r->snap, s->idx, l->load);
    }
    reg_unlock(r);
    return s != NULL;
}

/* ---- lookups -------------------------------------------------------------------------- */

reg_server *reg_server_locked(reg *r, const char *id)
{
    return hmap_get(r->servers, id);
}

reg_slave *reg_slave_locked(reg *r, const char *id)
{
    return hmap_get(r->slaves, id);
}

size_t reg_n_servers_locked(const reg *r)
{
    return hmap_len(r->servers);
}

size_t reg_n_slaves_locked(const reg *r)
{
    return hmap_len(r->slaves);
}

reg_server *reg_server_next_locked(reg *r, size_t *i)
{
    const char *id;
    void *v;
    return hmap_next(r->servers, i, &id, &v) ? v : NULL;
}

reg_slave *reg_slave_next_locked(reg *r, size_t *i)
{
    const char *id;
    void *v;
    return hmap_next(r->slaves, i, &id, &v) ? v : NULL;
}

static void pending_delta(reg *r, reg_server *s, int delta)
{
    s->pending = s->inflight + (uint32_t)s->n_unreported;
    if (delta != 0 && !r->dirty && r->snap != NULL && s->idx >= 0)
        sel_snapshot_add_pending(r->snap, s->idx, delta);
}

void reg_pending_begin_locked(reg *r, const char *id)
{
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL)
        return;
    s->inflight++;
    pending_delta(r, s, +1);
}

void reg_pending_fail_locked(reg *r, const char *id)
{
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL || s->inflight == 0)
        return;
    s->inflight--;
    pending_delta(r, s, -1);
}

void reg_pending_launched_locked(reg *r, const char *id, uint64_t launch_seq)
{
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL || s->inflight == 0)
        return;
    s->inflight--;
    /* an agent without launch numbers (0), or one whose report already counts
     * this launch: nothing is left pending */
    if (launch_seq == 0 || (s->load != NULL && launch_seq <= s->load->launches)) {
        pending_delta(r, s, -1);
        return;
    }
    if (s->n_unreported == s->cap_unreported) {
        s->cap_unreported = s->cap_unreported ? 2 * s->cap_unreported : 8;
        s->unreported = realloc(s->unreported, s->cap_unreported * sizeof *s->unreported);
        if (s->unreported == NULL)
            abort();
    }
    s->unreported[s->n_unreported++] = launch_seq;
    pending_delta(r, s, 0);
}

void reg_leader(reg *r, char *out, size_t cap)
{
    reg_lock(r);
    snprintf(out, cap, "%s", r->leader);
    reg_unlock(r);
}

const Lb__MasterInfo *reg_master_locked(reg *r, const char *id)
{
    return hmap_get(r->masters, id);
}

const Lb__MasterInfo *reg_master_next_locked(reg *r, size_t *i)
{
    const char *key;
    void *val;
    return hmap_next(r->masters, i, &key, &val) ? val : NULL;
}

bool reg_master_endpoint(reg *r, const char *id, char *out, size_t cap)
{
    reg_lock(r);
    const Lb__MasterInfo *m = hmap_get(r->masters, id);
    if (m != NULL)
        snprintf(out, cap, "%s", m->rpc_endpoint);
    reg_unlock(r);
    return m != NULL;
}
