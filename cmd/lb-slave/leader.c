/*
 * Following the leader: a watch on <prefix>leader makes the leader master the
 * preferred upstream the moment etcd names it, so after a failover requests go
 * to the new leader at once instead of first timing out on the dead one (or
 * being told "standby" by the others). The leader's RPC endpoint comes from
 * its masters/<id> record, read on the watch's thread (never on a request).
 */
#include "slave.h"

#include "common/util.h"
#include "lb.pb-c.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void follow(slave *s, const char *id, size_t id_len)
{
    char key[512];
    snprintf(key, sizeof key, "%smasters/%.*s", s->cfg.prefix, (int)id_len, id);
    etcd_kvs kvs = {0};
    lb_errmsg em = {{0}};
    if (etcd_get(s->etcd, key, &kvs, &em) != LB_OK || kvs.n == 0) {
        LOG_WARN("slave", "leader's record not found", "key=%s err=\"%s\"", key, em.text);
        etcd_kvs_free(&kvs);
        return;
    }
    Lb__MasterInfo *mi = lb__master_info__unpack(NULL, kvs.kvs[0].value_len, kvs.kvs[0].value);
    etcd_kvs_free(&kvs);
    if (mi == NULL || mi->rpc_endpoint == NULL || mi->rpc_endpoint[0] == '\0') {
        LOG_WARN("slave", "undecodable leader record", "key=%s", key);
        if (mi != NULL)
            lb__master_info__free_unpacked(mi, NULL);
        return;
    }
    pthread_mutex_lock(&s->up_lock);
    int k = slave_add_master_locked(s, mi->rpc_endpoint);
    bool changed = k >= 0 && (size_t)k != s->preferred;
    if (k >= 0)
        s->preferred = (size_t)k;
    pthread_mutex_unlock(&s->up_lock);
    if (changed) {
        obs_count("slave_leader_changes_total");
        LOG_INFO("slave", "following the leader", "leader=%s endpoint=%s", mi->id,
                 mi->rpc_endpoint);
    }
    lb__master_info__free_unpacked(mi, NULL);
}

static bool is_leader_key(const slave *s, const char *key)
{
    size_t n = strlen(s->cfg.prefix);
    return strncmp(key, s->cfg.prefix, n) == 0 && strcmp(key + n, "leader") == 0;
}

static void on_reset(void *arg, const etcd_kvs *snap)
{
    slave *s = arg;
    for (size_t i = 0; i < snap->n; i++)
        if (is_leader_key(s, snap->kvs[i].key))
            follow(s, (const char *)snap->kvs[i].value, snap->kvs[i].value_len);
}

static void on_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    (void)revision;
    slave *s = arg;
    for (size_t i = 0; i < n; i++)
        if (evs[i].type == ETCD_EV_PUT && is_leader_key(s, evs[i].kv.key))
            follow(s, (const char *)evs[i].kv.value, evs[i].kv.value_len);
}

int slave_leader_start(slave *s)
{
    char key[512];
    snprintf(key, sizeof key, "%sleader", s->cfg.prefix);
    etcd_watch_cb cb = {.on_reset = on_reset, .on_events = on_events, .arg = s};
    lb_errmsg em = {{0}};
    if (etcd_watch_start(s->etcd, key, &cb, &s->leader_watch, &em) != LB_OK) {
        LOG_ERROR("slave", "leader watch", "err=\"%s\"", em.text);
        return -1;
    }
    return 0;
}

void slave_leader_stop(slave *s)
{
    etcd_watch_stop(&s->leader_watch);
}
