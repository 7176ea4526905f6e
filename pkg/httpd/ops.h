/*
 * The operator endpoints every daemon serves on http_listen: GET /metrics
 * (Prometheus text 0.0.4) and GET /healthz (200 "ok" or 503 with the reason),
 * on the shared HTTP server (httpd.h), which other routes can join
 * (httpd_ops_server), e.g. the master's dashboard.
 *
 * Thread-safety: start and stop from one thread; health runs on the server's
 * threads and must not block.
 */
#ifndef LB_HTTPD_OPS_H
#define LB_HTTPD_OPS_H

#include "httpd/httpd.h"

typedef struct httpd_ops httpd_ops;

/* Returns true when ready; otherwise writes the reason into why (cap bytes). */
typedef bool (*httpd_health_fn)(void *arg, char *why, size_t cap);

/* Listens on "host:port" (port 0 picks one) with the default limits and
 * serves /metrics and /healthz. health may be NULL (always ready). With
 * tls_cert and tls_key (PEM files) it speaks HTTPS only; NULL: plain HTTP. */
lb_err httpd_ops_start(const char *listen, const char *tls_cert, const char *tls_key,
                       httpd_health_fn health, void *arg, httpd_ops **out, lb_errmsg *em);
/* httpd_ops_start in two steps, for a caller with routes of its own: the
 * route table is not safe to change while the server runs, so a route added
 * after the start would race the server's threads (and a request in between
 * would get 404). new: the server with /metrics and /healthz, not listening;
 * add routes with httpd_ops_server + httpd_route; then listen. On a listen
 * error the caller still owns o (httpd_ops_stop). */
lb_err httpd_ops_new(const char *listen, const char *tls_cert, const char *tls_key,
                     httpd_health_fn health, void *arg, httpd_ops **out, lb_errmsg *em);
lb_err httpd_ops_listen(httpd_ops *o, lb_errmsg *em);
/* The server, to add routes to before it listens. */
httpd *httpd_ops_server(httpd_ops *o);
int httpd_ops_port(const httpd_ops *o);
/* Stops the server, frees *o and sets it to NULL. */
void httpd_ops_stop(httpd_ops **o);

#endif
