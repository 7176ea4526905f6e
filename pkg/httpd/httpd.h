/*
 * One HTTP/1.1 server for every daemon, on libmicrohttpd: the operator
 * endpoints (/metrics, /healthz), the slave's JSON API and the master's
 * dashboard all register routes on it.
 *
 * Limits (httpd_config): total connections, connections per client address
 * (so one abusive address cannot starve a health probe from another), request
 * header bytes (a larger request gets 431), body bytes (413, sent before the
 * body is read when Content-Length says so), and idle seconds per connection.
 * Work runs on a small pool of MHD threads; a handler that has to wait (an RPC
 * to the master) answers later from any thread, so a slow answer holds no
 * thread and slow clients hold only their own connection.
 *
 * Thread-safety: httpd_route may be called before or after httpd_start, from
 * any thread; handlers run on the server's threads and must not block for
 * long; httpd_answer may be called from any thread.
 */
#ifndef LB_HTTPD_HTTPD_H
#define LB_HTTPD_HTTPD_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_ROUTES 32
#define HTTPD_MAX_HEADERS 8

typedef struct httpd httpd;

typedef struct httpd_config {
    const char *listen; /* "host:port" or "[v6]:port"; port 0 picks one */
    unsigned max_conns; /* default 512 */
    unsigned per_ip;    /* connections per client address; default 32 */
    unsigned idle_s;    /* idle seconds before a connection is closed; default 10 */
    size_t max_header;  /* request line + headers; default 16 KiB */
    size_t max_body;    /* default 64 KiB */
    unsigned threads;   /* default 2 */
    const char *name;   /* for logs and metrics, e.g. "ops", "api" */
    bool json_errors;   /* the server's own 404/405/413 as {"error":{"code","reason"}} */
    /* HTTPS when both are set: PEM files of the server's certificate (chain)
     * and key, read once by httpd_new (GnuTLS, through libmicrohttpd). */
    const char *tls_cert, *tls_key;
} httpd_config;

/* A request, valid during the handler call. Strings are NUL-terminated; path
 * is percent-decoded, without the query; body may hold any bytes (body_len). */
typedef struct httpd_req {
    const char *method, *path;
    const char *body;
    size_t body_len;
    char peer[64];   /* client address, without port */
    uint64_t ticket; /* for httpd_answer when the handler returns HTTPD_LATER */
    void *conn_;     /* private */
} httpd_req;

/* A query argument (decoded) or header value, or NULL. */
const char *httpd_query(const httpd_req *r, const char *key);
const char *httpd_header(const httpd_req *r, const char *name);

/* An answer. The server owns body and header strings once it is handed back. */
typedef struct httpd_resp {
    int status;
    const char *content_type; /* static string; default text/plain */
    char *body;               /* malloc'd */
    size_t len;
    size_t n_headers;
    char *headers[HTTPD_MAX_HEADERS][2]; /* malloc'd name, value */
} httpd_resp;

/* Sets status, content type and a body formatted from fmt. */
void httpd_resp_printf(httpd_resp *r, int status, const char *ctype, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets status, content type and takes body (malloc'd, len bytes). */
void httpd_resp_take(httpd_resp *r, int status, const char *ctype, char *body, size_t len);
/* Adds a header (copied); ignored past HTTPD_MAX_HEADERS or with CR/LF. */
void httpd_resp_header(httpd_resp *r, const char *name, const char *value);
/* Frees what r holds (for an answer that is not handed over). */
void httpd_resp_free(httpd_resp *r);

typedef enum httpd_result { HTTPD_DONE = 0, HTTPD_LATER = 1 } httpd_result;

/* A handler fills resp and returns HTTPD_DONE, or keeps req->ticket, returns
 * HTTPD_LATER and calls httpd_answer once, from any thread. */
typedef httpd_result (*httpd_handler)(const httpd_req *req, httpd_resp *resp, void *arg);

/* Creates the server (not yet listening). Defaults for zero fields. */
lb_err httpd_new(const httpd_config *cfg, httpd **out, lb_errmsg *em);
/* Routes method (NULL: any) and path to fn; a path ending in '*' matches that
 * prefix. First match wins; no match is 404, a path matched for another
 * method 405. */
lb_err httpd_route(httpd *h, const char *method, const char *path, httpd_handler fn, void *arg);
/* Binds and starts serving. */
lb_err httpd_start(httpd *h, lb_errmsg *em);
int httpd_port(const httpd *h);
/* Answers a request that returned HTTPD_LATER; takes resp's contents. An
 * unknown ticket (answered, client gone, server stopping) frees resp. */
void httpd_answer(httpd *h, uint64_t ticket, httpd_resp *resp);
/* Answers waiting requests with 503, stops the threads, closes every socket,
 * frees *h and sets it to NULL. */
void httpd_stop(httpd **h);

#endif
