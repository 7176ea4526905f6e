/*
 * Registration: ServerInfo at <prefix>servers/<id>, attached to a lease the
 * etcd keeper keeps alive. The key lives exactly as long as the agent does:
 * a crashed agent's key expires with its lease, a stopped agent revokes it.
 *
 * The keeper calls register_on_granted at start and again whenever the lease
 * was lost (etcd down longer than the ttl, etcd restarted). Its first grant
 * is synchronous and fails when etcd is down, so a thread of ours retries it:
 * an agent started before etcd serves launches at once and registers when
 * etcd comes up.
 */
#include "agent.h"

#include "common/errmsg.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REGISTER_ETCD_TIMEOUT_MS 2000
#define REGISTER_RETRY_MIN_MS 200
#define REGISTER_RETRY_MAX_MS 5000

/* Packs the current ServerInfo; the caller frees *out. */
static lb_err register_pack(agent *a, uint8_t **out, size_t *len)
{
    const agent_config *c = a->cfg;
    agent_res r;
    agent_res_read(&r);
    Lb__Resources res = LB__RESOURCES__INIT;
    res.cores = r.cores;
    res.cpu_load = r.cpu_load;
    res.mem_total = r.mem_total;
    res.mem_free = r.mem_free;
    res.disk_free = r.disk_free;
    res.arch = c->arch != NULL && c->arch[0] != '\0' ? c->arch : r.arch;
    res.os = c->os != NULL && c->os[0] != '\0' ? c->os : r.os;
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = c->id;
    si.host = c->host;
    si.agent_endpoint = c->advertise;
    si.zone = c->zone;
    si.region = c->region;
    si.group = c->group;
    si.group_rank = c->priority;
    si.capacity = c->capacity;
    si.resources = &res;
    si.started_at = a->started_at_ms;
    si.report_key.data = a->id_pk;
    si.report_key.len = sizeof a->id_pk;
    si.reachable_via = c->reachable_via;
    si.n_reachable_via = c->n_reachable_via;
    char **apps = calloc(c->n_apps + 1, sizeof *apps);
    Lb__Label *labels = calloc(c->n_labels + 1, sizeof *labels);
    Lb__Label **label_ptrs = calloc(c->n_labels + 1, sizeof *label_ptrs);
    Lb__AppInfo *infos = calloc(c->n_apps + 1, sizeof *infos);
    Lb__AppInfo **info_ptrs = calloc(c->n_apps + 1, sizeof *info_ptrs);
    lb_err err = LB_ENOMEM;
    if (apps == NULL || labels == NULL || label_ptrs == NULL || infos == NULL || info_ptrs == NULL)
        goto out;
    for (size_t i = 0; i < c->n_apps; i++) {
        apps[i] = c->apps[i].name;
        lb__app_info__init(&infos[i]);
        infos[i].name = c->apps[i].name;
        infos[i].link = c->apps[i].relay ? "relay" : "direct";
        infos[i].per_session = c->apps[i].per_session;
        info_ptrs[i] = &infos[i];
    }
    si.n_apps = c->n_apps;
    si.apps = apps;
    si.n_app_infos = c->n_apps;
    si.app_infos = info_ptrs;
    for (size_t i = 0; i < c->n_labels; i++) {
        lb__label__init(&labels[i]);
        labels[i].key = c->label_keys[i];
        labels[i].value = c->label_values[i];
        label_ptrs[i] = &labels[i];
    }
    si.n_labels = c->n_labels;
    si.labels = label_ptrs;
    *len = lb__server_info__get_packed_size(&si);
    *out = malloc(*len ? *len : 1);
    if (*out != NULL) {
        lb__server_info__pack(&si, *out);
        err = LB_OK;
    }
out:
    free(apps);
    free(labels);
    free(label_ptrs);
    free(infos);
    free(info_ptrs);
    return err;
}

static lb_err register_on_granted(void *arg, int64_t lease)
{
    agent *a = arg;
    char key[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    lb_errmsg em = {{0}};
    snprintf(key, sizeof key, "%sservers/%s", a->cfg->prefix, a->cfg->id);
    lb_err err = register_pack(a, &buf, &len);
    if (err == LB_OK)
        err = etcd_put(a->etcd, key, buf, len, lease, NULL, &em);
    free(buf);
    if (err != LB_OK) {
        LOG_WARN(AGENT_COMP, "registration failed", "key=%s lease=%lld err=\"%s\"", key,
                 (long long)lease, em.text);
        obs_count("agent_register_errors_total");
        return err;
    }
    LOG_INFO(AGENT_COMP, "registered", "key=%s lease=%lld", key, (long long)lease);
    obs_count("agent_registrations_total");
    return LB_OK;
}

/* Until the first lease is granted (etcd may be down when the agent starts),
 * retries with backoff; the keeper takes over from there. Stops early when
 * register_stop says so. */
static void *register_main(void *arg)
{
    agent *a = arg;
    int64_t ttl_s = (a->cfg->lease_ttl_ms + 999) / 1000;
    int64_t backoff = REGISTER_RETRY_MIN_MS;
    unsigned attempts = 0;
    pthread_mutex_lock(&a->reg_lock);
    while (!a->reg_stop) {
        lb_errmsg em = {{0}};
        etcd_keeper *k = NULL;
        pthread_mutex_unlock(&a->reg_lock);
        lb_err err = etcd_keeper_start(a->etcd, ttl_s, register_on_granted, a, &k, &em);
        pthread_mutex_lock(&a->reg_lock);
        if (err == LB_OK) {
            a->keeper = k;
            break;
        }
        /* The first failure and then one line a minute or so: etcd being down
         * is worth knowing, not worth a log line every few seconds. */
        if (attempts++ % 12 == 0)
            LOG_WARN(AGENT_COMP, "etcd unreachable; retrying registration",
                     "etcd=%s attempts=%u error=\"%s\"", a->cfg->etcd, attempts, em.text);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += backoff / 1000;
        ts.tv_nsec += (backoff % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!a->reg_stop)
            pthread_cond_timedwait(&a->reg_cond, &a->reg_lock, &ts);
        backoff = backoff * 2 < REGISTER_RETRY_MAX_MS ? backoff * 2 : REGISTER_RETRY_MAX_MS;
    }
    pthread_mutex_unlock(&a->reg_lock);
    return NULL;
}

lb_err register_start(agent *a, lb_errmsg *em)
{
    lb_err err =
        etcd_open_secure(a->cfg->etcd, REGISTER_ETCD_TIMEOUT_MS, &a->cfg->etcd_sec, &a->etcd, em);
    if (err != LB_OK)
        return err;
    pthread_mutex_init(&a->reg_lock, NULL);
    pthread_cond_init(&a->reg_cond, NULL);
    a->reg_stop = false;
    if (pthread_create(&a->reg_thread, NULL, register_main, a) != 0) {
        etcd_close(&a->etcd);
        return lb_fail(em, LB_ESYS, "cannot start the registration thread");
    }
    a->reg_started = true;
    return LB_OK;
}

void register_stop(agent *a)
{
    if (a->reg_started) {
        pthread_mutex_lock(&a->reg_lock);
        a->reg_stop = true;
        pthread_cond_signal(&a->reg_cond);
        pthread_mutex_unlock(&a->reg_lock);
        pthread_join(a->reg_thread, NULL);
        pthread_cond_destroy(&a->reg_cond);
        pthread_mutex_destroy(&a->reg_lock);
        a->reg_started = false;
    }
    if (a->keeper != NULL) {
        etcd_keeper_stop(&a->keeper); /* revokes: the server key goes now */
        LOG_INFO(AGENT_COMP, "deregistered", "id=%s", a->cfg->id);
    }
    etcd_close(&a->etcd);
}

void register_refresh(agent *a)
{
    pthread_mutex_lock(&a->reg_lock);
    int64_t lease = a->keeper != NULL ? etcd_keeper_lease(a->keeper) : 0;
    pthread_mutex_unlock(&a->reg_lock);
    if (lease != 0) /* else the keeper registers the new config when granted */
        register_on_granted(a, lease);
}
