/*
 * /healthz is ready while the registration lease is kept alive: the server
 * is in etcd and the keeper's last refresh succeeded.
 */
#include "ops.h"

#include "httpd/ops.h"
#include "obs/log.h"
#include "obs/prom.h"

#include <stdio.h>

static httpd_ops *agent_http;

static bool agent_health(void *arg, char *why, size_t cap)
{
    agent *a = arg;
    pthread_mutex_lock(&a->reg_lock);
    bool ok = etcd_keeper_ok(a->keeper);
    pthread_mutex_unlock(&a->reg_lock);
    if (!ok)
        snprintf(why, cap, "not ready: no etcd lease (etcd %s unreachable or registering)",
                 a->cfg->etcd);
    return ok;
}

lb_err agent_ops_start(agent *a, lb_errmsg *em)
{
    obs_describe("agent_process_exits_total", "Launched processes that exited, by app.");
    obs_describe("agent_reports_total", "Load reports published.");
    obs_describe("agent_registrations_total", "Registrations of the server in etcd.");
    obs_describe("etcd_request_seconds", "etcd gateway call latency, by call.");
    if (a->cfg->http_listen == NULL || a->cfg->http_listen[0] == '\0')
        return LB_OK;
    if (cfg_tls_http_cert(&a->cfg->tls) == NULL)
        LOG_WARN("agent", "http endpoint speaks plain HTTP (tls.insecure or tls.http_insecure)",
                 NULL);
    lb_err err = httpd_ops_start(a->cfg->http_listen, cfg_tls_http_cert(&a->cfg->tls),
                                 cfg_tls_http_key(&a->cfg->tls), agent_health, a, &agent_http, em);
    if (err == LB_OK)
        LOG_INFO("agent", "http endpoint", "listen=%s paths=\"/metrics /healthz\"",
                 a->cfg->http_listen);
    return err;
}

void agent_ops_stop(void)
{
    httpd_ops_stop(&agent_http);
}
