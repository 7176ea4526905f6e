/*
 * A tiny HTTP/1.1 server for operators: GET /metrics (Prometheus text),
 * GET /healthz (200 "ok" or 503 with the reason), 404 otherwise. One thread,
 * a poll loop, at most OBS_HTTP_MAX_CONNS connections, requests bounded to
 * OBS_HTTP_MAX_REQUEST bytes, idle connections closed after 5 s; every answer
 * closes its connection. Garbage gets a 400 and the server goes on.
 */
#ifndef LB_OBS_HTTP_H
#define LB_OBS_HTTP_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>

#define OBS_HTTP_MAX_CONNS 32
#define OBS_HTTP_MAX_REQUEST 8192

typedef struct obs_http obs_http;

/* Returns true when ready; otherwise writes the reason into why (cap bytes).
 * Runs on the server's thread: must not block. */
typedef bool (*obs_health_fn)(void *arg, char *why, size_t cap);

/* Listens on "host:port" (port 0 picks one; see obs_http_port) and starts the
 * thread. health may be NULL (always ready). */
lb_err obs_http_start(const char *listen, obs_health_fn health, void *arg, obs_http **out,
                      lb_errmsg *em);
int obs_http_port(const obs_http *h);
/* Stops the thread, closes every socket, frees *h and sets it to NULL. */
void obs_http_stop(obs_http **h);

#endif
