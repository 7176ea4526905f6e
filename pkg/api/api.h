/*
 * The slave's HTTP/JSON front door (api_listen), for clients in any language:
 *
 *   POST   /v1/request             {app, client_id, location, requirements, token,
 *                                   preselection?} -> the assignment
 *   DELETE /v1/sessions/{id}?client_id=C      release
 *   PUT    /v1/sessions/{id}?client_id=C      renew
 *   GET    /v1/apps/{app}/servers             the list mode's server list
 *
 * Same semantics as the nng front door because it IS the nng front door: each
 * call is translated to the same protobuf envelope and sent, over an in-process
 * nng link, to the slave's own REP socket, so master failover, visited lists,
 * relay grants and token checks are the ones nng clients get. A REDIRECT
 * becomes HTTP 307 whose Location is the chosen slave's API URL with the
 * preselection in the query (curl -L re-posts the body there and that slave
 * confirms). The JSON shapes and error codes are documented in README.md
 * ("HTTP API") and are stable.
 *
 * Thread-safety: start and stop from one thread; requests run on the HTTP
 * server's threads and nng's callback threads, never blocking either.
 */
#ifndef LB_API_API_H
#define LB_API_API_H

#include "lb/err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct api_server api_server;

typedef struct api_config {
    const char *listen;     /* HOST:PORT (port 0 picks one) */
    const char *advertise;  /* base URL given to clients in redirects; "" or NULL:
                               http(s)://<listen host>:<bound port> */
    const char *front_door; /* nng URL of the slave's own REP socket (inproc://...) */
    const char *slave_id;
    size_t max_body;                /* default 64 KiB */
    unsigned max_conns;             /* default 512 */
    unsigned per_ip;                /* default 64 */
    unsigned idle_s;                /* default 10 */
    int64_t timeout_ms;             /* one call through the front door; default 30 s */
    size_t max_message;             /* answer size limit from the front door */
    const char *tls_cert, *tls_key; /* PEM files: HTTPS only; NULL: plain HTTP */
} api_config;

/* Binds listen and starts serving (the front door may come up later). */
lb_err api_start(const api_config *cfg, api_server **out, lb_errmsg *em);
/* The base URL clients are sent to, e.g. "http://127.0.0.1:8201". */
const char *api_endpoint(const api_server *a);
/* Answers calls still waiting with 503, stops, frees *a, sets it to NULL. */
void api_stop(api_server **a);

#endif
