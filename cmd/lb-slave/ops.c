/*
 * The slave's operator surface (http_listen): /metrics, and /healthz ready
 * while its etcd lease is kept alive and a master answered in the last
 * SLAVE_MASTER_FRESH_MS. Client traffic stamps master_ok_ms (slave_master_ok);
 * when the slave is idle, a probe thread asks a master for its stats once a
 * second so the stamp stays fresh while a master is reachable.
 */
#include "slave.h"

#include "common/util.h"
#include "httpd/ops.h"
#include "obs/log.h"
#include "obs/prom.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SLAVE_MASTER_FRESH_MS 3000
#define SLAVE_PROBE_MS 1000

struct slave_ops {
    httpd_ops *http;
    pthread_t probe;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool probing; /* the probe thread runs */
};

/* One StatsRequest/StatsReply exchange on ctx; true when a master answered. */
static bool ops_ask(nng_ctx ctx)
{
    Lb__StatsRequest sr = LB__STATS_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &sr;
    nng_msg *msg = NULL;
    nng_aio *aio = NULL;
    bool ok = false;
    if (wire_encode(&env, &msg) != LB_OK || nng_aio_alloc(&aio, NULL, NULL) != 0) {
        nng_msg_free(msg);
        return false;
    }
    nng_aio_set_timeout(aio, SLAVE_PROBE_MS);
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if (nng_aio_result(aio) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
    } else {
        nng_ctx_recv(ctx, aio);
        nng_aio_wait(aio);
        if (nng_aio_result(aio) == 0) {
            nng_msg_free(nng_aio_get_msg(aio));
            ok = true;
        }
    }
    nng_aio_free(aio);
    return ok;
}

static void ops_probe_once(slave *s)
{
    if (lb_mono_ms() - atomic_load(&s->master_ok_ms) < SLAVE_MASTER_FRESH_MS / 2)
        return;
    nng_ctx ctx;
    size_t which = 0;
    char ep[256];
    for (size_t i = 0; slave_master_ctx(s, i, &ctx, &which, ep, sizeof ep); i++) {
        bool ok = ops_ask(ctx);
        nng_ctx_close(ctx);
        if (ok) {
            atomic_store(&s->master_ok_ms, lb_mono_ms());
            return;
        }
    }
}

static void *ops_probe_main(void *arg)
{
    slave *s = arg;
    struct slave_ops *o = s->ops;
    pthread_mutex_lock(&o->lock);
    while (!o->stop) {
        pthread_mutex_unlock(&o->lock);
        ops_probe_once(s);
        pthread_mutex_lock(&o->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!o->stop)
            pthread_cond_timedwait(&o->cond, &o->lock, &ts);
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

static bool slave_health(void *arg, char *why, size_t cap)
{
    slave *s = arg;
    if (!etcd_keeper_ok(s->keeper)) {
        snprintf(why, cap, "not ready: no etcd lease (etcd %s unreachable)", s->cfg.etcd);
        return false;
    }
    int64_t ago = lb_mono_ms() - atomic_load(&s->master_ok_ms);
    if (ago > SLAVE_MASTER_FRESH_MS) {
        snprintf(why, cap, "not ready: no master answered in the last %lld ms", (long long)ago);
        return false;
    }
    return true;
}

int slave_ops_start(slave *s)
{
    obs_describe("slave_requests_total", "Client requests received.");
    obs_describe("slave_answers_total", "Answers to clients, by action.");
    obs_describe("slave_no_master_total", "Requests no master answered.");
    obs_describe("slave_leader_hold_rounds_total",
                 "Pauses of a request waiting for a master to answer (leader_hold).");
    obs_describe("slave_shed_total", "New clients shed to a zone peer while over the limit.");
    obs_describe("slave_shed_kept_total", "Clients of this slave served while over the limit.");
    obs_describe("slave_bad_requests_total", "Malformed client requests.");
    obs_describe("slave_relay_bytes_total", "Bytes relayed between clients and processes.");
    obs_describe("etcd_request_seconds", "etcd gateway call latency, by call.");
    atomic_store(&s->master_ok_ms, -(int64_t)SLAVE_MASTER_FRESH_MS * 10);
    if (s->cfg.http_listen[0] == '\0')
        return 0;
    struct slave_ops *o = lb_xcalloc(1, sizeof *o);
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->cond, NULL);
    s->ops = o;
    lb_errmsg em = {{0}};
    if (cfg_tls_http_cert(&s->cfg.tls) == NULL)
        LOG_WARN("slave", "http endpoint speaks plain HTTP (tls.insecure or tls.http_insecure)",
                 NULL);
    if (httpd_ops_start(s->cfg.http_listen, cfg_tls_http_cert(&s->cfg.tls),
                        cfg_tls_http_key(&s->cfg.tls), slave_health, s, &o->http, &em) != LB_OK) {
        LOG_ERROR("slave", "http endpoint", "err=\"%s\"", em.text);
        return -1;
    }
    if (pthread_create(&o->probe, NULL, ops_probe_main, s) != 0) {
        LOG_ERROR("slave", "cannot start the master probe", NULL);
        return -1;
    }
    o->probing = true;
    LOG_INFO("slave", "http endpoint", "listen=%s paths=\"/metrics /healthz\"", s->cfg.http_listen);
    return 0;
}

void slave_ops_stop(slave *s)
{
    struct slave_ops *o = s->ops;
    if (o == NULL)
        return;
    if (o->probing) {
        pthread_mutex_lock(&o->lock);
        o->stop = true;
        pthread_cond_signal(&o->cond);
        pthread_mutex_unlock(&o->lock);
        pthread_join(o->probe, NULL);
    }
    httpd_ops_stop(&o->http);
    pthread_mutex_destroy(&o->lock);
    pthread_cond_destroy(&o->cond);
    free(o);
    s->ops = NULL;
}
