/*
 * The slave's links upward: its registration in etcd (SlaveInfo under a kept
 * lease), the master RPC sockets (configured, or discovered from masters/ in
 * etcd), and load reports published to every master's report socket.
 */
#include "slave.h"

#include "relay.h"

#include "api/api.h"
#include "auth/report_sig.h"

#include "common/util.h"
#include "lb.pb-c.h"
#include "obs/log.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lb_err on_granted(void *arg, int64_t lease)
{
    slave *s = arg;
    Lb__SlaveInfo si = LB__SLAVE_INFO__INIT;
    si.id = s->cfg.id;
    si.endpoint = s->cfg.advertise;
    si.relay_endpoint = s->relay != NULL ? (char *)relay_endpoint(s->relay) : "";
    si.zone = s->cfg.zone;
    si.region = s->cfg.region;
    si.limit = (uint32_t)s->cfg.limit;
    si.apps = s->cfg.apps;
    si.n_apps = s->cfg.n_apps;
    si.api_endpoint = s->api != NULL ? (char *)api_endpoint(s->api) : "";
    si.report_key.data = s->id_pk;
    si.report_key.len = sizeof s->id_pk;
    size_t len = lb__slave_info__get_packed_size(&si);
    uint8_t *buf = lb_xcalloc(1, len);
    lb__slave_info__pack(&si, buf);
    char key[512];
    snprintf(key, sizeof key, "%sslaves/%s", s->cfg.prefix, s->cfg.id);
    lb_errmsg em = {{0}};
    lb_err err = etcd_put(s->etcd, key, buf, len, lease, NULL, &em);
    free(buf);
    if (err != LB_OK)
        LOG_WARN("slave", "registration failed", "key=%s err=\"%s\"", key, em.text);
    else
        LOG_INFO("slave", "registered", "key=%s lease=%lld", key, (long long)lease);
    return err;
}

/* nng's pipe thread: counts the live connections to one master, so a request
 * is not sent first to a master whose connection is gone (a dead master). */
static void master_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    upstream *u = arg;
    atomic_fetch_add(&u->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

int slave_add_master_locked(slave *s, const char *ep)
{
    for (size_t i = 0; i < s->n_ups; i++)
        if (strcmp(s->ups[i].endpoint, ep) == 0)
            return (int)i;
    if (s->n_ups == SLAVE_MAX_MASTERS)
        return -1;
    lb_errmsg em = {{0}};
    upstream *u = &s->ups[s->n_ups];
    atomic_init(&u->pipes, 0);
    if (wire_req_dial_notify(ep, WIRE_ROLE_MASTER, NULL, master_pipe_cb, u, &u->sock, &em) !=
        LB_OK) {
        LOG_WARN("slave", "cannot dial master", "err=\"%s\"", em.text);
        return -1;
    }
    snprintf(u->endpoint, sizeof u->endpoint, "%s", ep);
    LOG_INFO("slave", "master added", "endpoint=%s", ep);
    return (int)s->n_ups++;
}

static void add_master(slave *s, const char *ep)
{
    slave_add_master_locked(s, ep);
}

static void dial_report(slave *s, const char *ep)
{
    lb_errmsg em = {{0}};
    if (wire_dial(s->pub, ep, WIRE_ROLE_MASTER, NULL, &em) != LB_OK)
        LOG_WARN("slave", "cannot dial report endpoint", "endpoint=%s err=\"%s\"", ep, em.text);
}

/* Discovery: every master registered under masters/ (when not configured). */
static void discover(slave *s, char ***reports, size_t *n_reports)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%smasters/", s->cfg.prefix);
    etcd_kvs kvs = {0};
    if (etcd_range_prefix(s->etcd, prefix, &kvs, NULL) != LB_OK)
        return;
    for (size_t i = 0; i < kvs.n; i++) {
        Lb__MasterInfo *mi = lb__master_info__unpack(NULL, kvs.kvs[i].value_len, kvs.kvs[i].value);
        if (mi == NULL)
            continue;
        if (s->cfg.n_masters == 0) {
            pthread_mutex_lock(&s->up_lock);
            add_master(s, mi->rpc_endpoint);
            pthread_mutex_unlock(&s->up_lock);
        }
        if (s->cfg.n_report == 0) {
            bool known = false;
            for (size_t k = 0; k < *n_reports && !known; k++)
                known = strcmp((*reports)[k], mi->report_endpoint) == 0;
            if (!known && *n_reports < 64) {
                *reports = realloc(*reports, (*n_reports + 1) * sizeof **reports);
                (*reports)[(*n_reports)++] = lb_strdup(mi->report_endpoint);
                dial_report(s, mi->report_endpoint);
            }
        }
        lb__master_info__free_unpacked(mi, NULL);
    }
    etcd_kvs_free(&kvs);
}

static void publish(slave *s, uint64_t seq)
{
    Lb__SlaveLoad sl = LB__SLAVE_LOAD__INIT;
    sl.slave_id = s->cfg.id;
    sl.load = (uint32_t)atomic_load(&s->load) + (uint32_t)atomic_load(&s->inflight);
    sl.limit = (uint32_t)s->cfg.limit;
    sl.seq = seq;
    sl.at_ms = lb_wall_ms();
    unsigned char sig[AUTH_SIG_BYTES];
    auth_slave_load_sign(&sl, s->id_sk, sig);
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.body_case = LB__ENVELOPE__BODY_SLAVE_LOAD;
    env.slave_load = &sl;
    nng_msg *msg = NULL;
    if (wire_encode(&env, &msg) == LB_OK && nng_sendmsg(s->pub, msg, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(msg);
}

static void *upstream_main(void *arg)
{
    slave *s = arg;
    char **reports = NULL;
    size_t n_reports = 0;
    /* from the wall clock: above every seq this slave sent before a restart,
     * which the masters remember (report_auth.c refuses lower ones) */
    uint64_t seq = (uint64_t)lb_wall_ms() * 1000;
    int64_t next_discovery = 0;
    bool discovering = s->cfg.n_masters == 0 || s->cfg.n_report == 0;
    while (!atomic_load(&s->stopping)) {
        if (discovering && lb_mono_ms() >= next_discovery) {
            discover(s, &reports, &n_reports);
            next_discovery = lb_mono_ms() + 2000;
        }
        atomic_store(&s->load, atomic_exchange(&s->window, 0));
        publish(s, ++seq);
        for (int64_t slept = 0; slept < s->cfg.report_interval_ms && !atomic_load(&s->stopping);
             slept += 50)
            lb_sleep_ms(50);
    }
    for (size_t i = 0; i < n_reports; i++)
        free(reports[i]);
    free(reports);
    return NULL;
}

/* The identity key signs every SlaveLoad; loaded before registration, which
 * publishes its public half. */
static int load_identity(slave *s)
{
    char deflt[4096];
    snprintf(deflt, sizeof deflt, "%s/identity.key", s->cfg.state_dir);
    const char *path = s->cfg.identity_key[0] != '\0' ? s->cfg.identity_key : deflt;
    lb_errmsg em = {{0}};
    if (auth_identity_open(s->cfg.identity_key, deflt, s->id_sk, s->id_pk, &em) != LB_OK) {
        LOG_ERROR("slave", "identity key", "err=\"%s\"", em.text);
        return -1;
    }
    LOG_INFO("slave", "identity key", "path=%s", path);
    return 0;
}

int slave_upstream_start(slave *s)
{
    lb_errmsg em = {{0}};
    if (load_identity(s) != 0)
        return -1;
    pthread_mutex_init(&s->up_lock, NULL);
    for (size_t i = 0; i < s->cfg.n_masters; i++)
        add_master(s, s->cfg.masters[i]);
    int rv = nng_pub0_open(&s->pub);
    if (rv != 0) {
        LOG_ERROR("slave", "report socket", "err=\"%s\"", nng_strerror(rv));
        return -1;
    }
    for (size_t i = 0; i < s->cfg.n_report; i++)
        dial_report(s, s->cfg.report[i]);
    if (etcd_open_secure(s->cfg.etcd, (int)s->cfg.etcd_timeout_ms, &s->cfg.etcd_sec, &s->etcd,
                         &em) != LB_OK) {
        LOG_ERROR("slave", "etcd client", "err=\"%s\"", em.text);
        return -1;
    }
    int64_t ttl_s = s->cfg.lease_ttl_ms / 1000 > 2 ? s->cfg.lease_ttl_ms / 1000 : 2;
    if (etcd_keeper_start(s->etcd, ttl_s, on_granted, s, &s->keeper, &em) != LB_OK) {
        LOG_ERROR("slave", "etcd lease", "err=\"%s\"", em.text);
        return -1;
    }
    if (slave_leader_start(s) != 0)
        return -1;
    if (pthread_create(&s->upstream_thread, NULL, upstream_main, s) != 0)
        return -1;
    return 0;
}

void slave_upstream_stop(slave *s)
{
    atomic_store(&s->stopping, true);
    pthread_join(s->upstream_thread, NULL);
    slave_leader_stop(s);
    etcd_keeper_stop(&s->keeper);
    etcd_close(&s->etcd);
    nng_close(s->pub);
    for (size_t i = 0; i < s->n_ups; i++)
        nng_close(s->ups[i].sock);
    pthread_mutex_destroy(&s->up_lock);
}

size_t slave_n_masters(slave *s)
{
    pthread_mutex_lock(&s->up_lock);
    size_t n = s->n_ups;
    pthread_mutex_unlock(&s->up_lock);
    return n;
}

bool slave_master_ctx(slave *s, size_t i, nng_ctx *out, size_t *which, char *ep, size_t ep_cap)
{
    bool ok = false;
    pthread_mutex_lock(&s->up_lock);
    if (i < s->n_ups) {
        /* the preferred master first, then the others; connected ones before
         * those without a connection (still tried, last) */
        size_t order[SLAVE_MAX_MASTERS], n = 0;
        for (int pass = 0; pass < 2; pass++)
            for (size_t j = 0; j < s->n_ups; j++) {
                size_t k = (s->preferred + j) % s->n_ups;
                if ((atomic_load(&s->ups[k].pipes) > 0) == (pass == 0))
                    order[n++] = k;
            }
        size_t k = order[i];
        ok = nng_ctx_open(out, s->ups[k].sock) == 0;
        *which = k;
        snprintf(ep, ep_cap, "%s", s->ups[k].endpoint);
    }
    pthread_mutex_unlock(&s->up_lock);
    return ok;
}

void slave_master_ok(slave *s, size_t which)
{
    pthread_mutex_lock(&s->up_lock);
    s->preferred = which;
    pthread_mutex_unlock(&s->up_lock);
    atomic_store(&s->master_ok_ms, lb_mono_ms());
}
