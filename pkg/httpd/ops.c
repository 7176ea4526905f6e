#include "httpd/ops.h"

#include "common/errmsg.h"
#include "obs/metrics.h"
#include "obs/prom.h"

#include <stdio.h>
#include <stdlib.h>

struct httpd_ops {
    httpd *srv;
    httpd_health_fn health;
    void *arg;
};

static httpd_result ops_health(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)req;
    httpd_ops *o = arg;
    obs_count("http_requests_total{path=\"/healthz\"}");
    char why[256] = "";
    bool ok = o->health == NULL || o->health(o->arg, why, sizeof why);
    httpd_resp_printf(resp, ok ? 200 : 503, NULL, "%s\n", ok ? "ok" : why);
    return HTTPD_DONE;
}

static httpd_result ops_metrics(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    obs_count("http_requests_total{path=\"/metrics\"}");
    size_t len = 0;
    char *text = obs_prom_render(&len);
    if (text == NULL)
        httpd_resp_printf(resp, 500, NULL, "out of memory\n");
    else
        httpd_resp_take(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    return HTTPD_DONE;
}

lb_err httpd_ops_new(const char *listen, const char *tls_cert, const char *tls_key,
                     httpd_health_fn health, void *arg, httpd_ops **out, lb_errmsg *em)
{
    *out = NULL;
    httpd_ops *o = calloc(1, sizeof *o);
    if (o == NULL)
        return lb_fail(em, LB_ENOMEM, "http: out of memory");
    o->health = health;
    o->arg = arg;
    httpd_config cfg = {.listen = listen, .name = "ops", .tls_cert = tls_cert, .tls_key = tls_key};
    lb_err err = httpd_new(&cfg, &o->srv, em);
    if (err == LB_OK && (httpd_route(o->srv, "GET", "/healthz", ops_health, o) != LB_OK ||
                         httpd_route(o->srv, "GET", "/metrics", ops_metrics, o) != LB_OK))
        err = lb_fail(em, LB_EINVAL, "http: cannot add the operator routes");
    if (err != LB_OK) {
        httpd_stop(&o->srv);
        free(o);
        return err;
    }
    *out = o;
    return LB_OK;
}

lb_err httpd_ops_listen(httpd_ops *o, lb_errmsg *em)
{
    return httpd_start(o->srv, em);
}

lb_err httpd_ops_start(const char *listen, const char *tls_cert, const char *tls_key,
                       httpd_health_fn health, void *arg, httpd_ops **out, lb_errmsg *em)
{
    lb_err err = httpd_ops_new(listen, tls_cert, tls_key, health, arg, out, em);
    if (err == LB_OK && (err = httpd_ops_listen(*out, em)) != LB_OK)
        httpd_ops_stop(out);
    return err;
}

httpd *httpd_ops_server(httpd_ops *o)
{
    return o->srv;
}

int httpd_ops_port(const httpd_ops *o)
{
    return httpd_port(o->srv);
}

void httpd_ops_stop(httpd_ops **op)
{
    httpd_ops *o = *op;
    if (o == NULL)
        return;
    httpd_stop(&o->srv);
    free(o);
    *op = NULL;
}
