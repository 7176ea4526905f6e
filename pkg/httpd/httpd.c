/*
 * The libmicrohttpd glue: routes, body buffering with its cap, answers later.
 *
 * A request's state (hreq) is created at MHD's first call for it and freed in
 * the completion callback. While a handler works on it, it sits in the
 * server's waiting list under its ticket, so an answer from another thread
 * finds it or finds nothing (client gone, server stopping) and is dropped.
 */
#include "httpd/httpd.h"

#include "common/errmsg.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct route {
    char method[16]; /* "" for any */
    char path[128];
    bool prefix;
    httpd_handler fn;
    void *arg;
} route;

typedef struct hreq {
    httpd *h;
    struct MHD_Connection *conn;
    char *body;
    size_t len, cap;
    bool too_big, queued;
    bool waiting, suspended, answered;
    uint64_t ticket;
    httpd_resp resp;
    struct hreq *next, *prev; /* in h->waiting */
} hreq;

struct httpd {
    httpd_config cfg;
    char *listen, *name;
    char *tls_cert, *tls_key; /* PEM text (HTTPS), or NULL */
    struct MHD_Daemon *d;
    int fd, port;
    pthread_mutex_t lock; /* routes, waiting, next_ticket, n_suspended */
    route routes[HTTPD_MAX_ROUTES];
    size_t n_routes;
    hreq *waiting;
    uint64_t next_ticket;
    size_t n_suspended;
    obs_counter *c_requests, *c_too_big, *c_not_found, *c_bad;
};

/* ---- answers ---- */

void httpd_resp_take(httpd_resp *r, int status, const char *ctype, char *body, size_t len)
{
    free(r->body);
    r->status = status;
    r->content_type = ctype;
    r->body = body;
    r->len = body != NULL ? len : 0;
}

void httpd_resp_printf(httpd_resp *r, int status, const char *ctype, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s != NULL)
        vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    va_end(ap);
    httpd_resp_take(r, status, ctype, s, s != NULL ? (size_t)n : 0);
}

void httpd_resp_header(httpd_resp *r, const char *name, const char *value)
{
    if (r->n_headers == HTTPD_MAX_HEADERS || strpbrk(name, "\r\n:") != NULL ||
        strpbrk(value, "\r\n") != NULL)
        return;
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return;
    }
    r->headers[r->n_headers][0] = n;
    r->headers[r->n_headers][1] = v;
    r->n_headers++;
}

void httpd_resp_free(httpd_resp *r)
{
    free(r->body);
    for (size_t i = 0; i < r->n_headers; i++) {
        free(r->headers[i][0]);
        free(r->headers[i][1]);
    }
    memset(r, 0, sizeof *r);
}

/* Hands r to MHD (r is emptied either way). */
static enum MHD_Result queue(hreq *q, httpd_resp *r)
{
    if (r->status == 0)
        httpd_resp_printf(r, 500, NULL, "handler gave no answer\n");
    struct MHD_Response *m = MHD_create_response_from_buffer(
        r->len, r->body != NULL ? r->body : "",
        r->body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (m == NULL) {
        httpd_resp_free(r);
        return MHD_NO;
    }
    r->body = NULL; /* MHD frees it */
    MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->content_type != NULL ? r->content_type
                                                    : "text/plain; charset=utf-8");
    for (size_t i = 0; i < r->n_headers; i++)
        MHD_add_response_header(m, r->headers[i][0], r->headers[i][1]);
    enum MHD_Result ok = MHD_queue_response(q->conn, (unsigned)r->status, m);
    MHD_destroy_response(m);
    httpd_resp_free(r);
    q->queued = ok == MHD_YES;
    return ok;
}

/* The server's own errors; text is a constant without quotes or backslashes. */
static enum MHD_Result queue_text(hreq *q, int status, const char *text)
{
    httpd_resp r = {0};
    if (q->h->cfg.json_errors) {
        const char *code = status == 404   ? "not_found"
                           : status == 405 ? "method_not_allowed"
                           : status == 413 ? "too_large"
                                           : "error";
        httpd_resp_printf(&r, status, "application/json",
                          "{\"error\":{\"code\":\"%s\",\"reason\":\"%s\"}}\n", code, text);
    } else {
        httpd_resp_printf(&r, status, NULL, "%s\n", text);
    }
    return queue(q, &r);
}

/* ---- requests ---- */

const char *httpd_query(const httpd_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn_, MHD_GET_ARGUMENT_KIND, key);
}

const char *httpd_header(const httpd_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn_, MHD_HEADER_KIND, name);
}

static void peer_of(struct MHD_Connection *c, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, cap, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

/* Finds the route; *wrong_method tells a 405 from a 404. */
static bool route_find(httpd *h, const char *method, const char *path, route *out,
                       bool *wrong_method)
{
    *wrong_method = false;
    bool found = false;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->n_routes && !found; i++) {
        const route *r = &h->routes[i];
        bool match =
            r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0;
        if (!match)
            continue;
        if (r->method[0] != '\0' && strcmp(r->method, method) != 0 &&
            !(strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0)) {
            *wrong_method = true;
            if (!r->prefix)
                break; /* an exact path with another method: 405, not a catch-all */
            continue;
        }
        *out = *r;
        found = true;
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}

static void waiting_unlink_locked(httpd *h, hreq *q)
{
    if (!q->waiting)
        return;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        h->waiting = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    q->next = q->prev = NULL;
    q->waiting = false;
}

/* Runs the handler: its answer now, or the connection suspended until
 * httpd_answer. */
static enum MHD_Result dispatch(httpd *h, hreq *q, const char *method, const char *url)
{
    route rt;
    bool wrong_method;
    if (!route_find(h, method, url, &rt, &wrong_method)) {
        obs_inc(h->c_not_found);
        return queue_text(q, wrong_method ? 405 : 404,
                          wrong_method ? "method not allowed" : "not found");
    }
    obs_inc(h->c_requests);
    httpd_req req = {.method = method,
                     .path = url,
                     .body = q->body != NULL ? q->body : "",
                     .body_len = q->len,
                     .conn_ = q->conn};
    peer_of(q->conn, req.peer, sizeof req.peer);
    pthread_mutex_lock(&h->lock);
    q->ticket = req.ticket = ++h->next_ticket;
    q->next = h->waiting;
    if (h->waiting != NULL)
        h->waiting->prev = q;
    h->waiting = q;
    q->waiting = true;
    pthread_mutex_unlock(&h->lock);
    httpd_resp resp = {0};
    httpd_result r = rt.fn(&req, &resp, rt.arg);
    pthread_mutex_lock(&h->lock);
    if (r == HTTPD_DONE || q->answered) {
        waiting_unlink_locked(h, q);
        pthread_mutex_unlock(&h->lock);
        if (r == HTTPD_DONE) {
            httpd_resp_free(&q->resp);
            return queue(q, &resp);
        }
        httpd_resp_free(&resp);
        return queue(q, &q->resp);
    }
    httpd_resp_free(&resp);
    q->suspended = true;
    h->n_suspended++;
    MHD_suspend_connection(q->conn);
    pthread_mutex_unlock(&h->lock);
    return MHD_YES;
}

/* MHD's access callback: called once with the headers, then once per chunk
 * of body, then once more with nothing left (and again after a resume). */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    (void)version;
    httpd *h = cls;
    hreq *q = *con_cls;
    if (q == NULL) {
        q = calloc(1, sizeof *q);
        if (q == NULL)
            return MHD_NO;
        q->h = h;
        q->conn = c;
        *con_cls = q;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > h->cfg.max_body) {
            /* Said too big up front: answer before reading a byte of it. */
            obs_inc(h->c_too_big);
            q->too_big = true;
            return queue_text(q, 413, "request body over the size limit");
        }
        return MHD_YES;
    }
    if (q->suspended) { /* resumed: the answer is here */
        pthread_mutex_lock(&h->lock);
        q->suspended = false;
        h->n_suspended--;
        pthread_mutex_unlock(&h->lock);
        return queue(q, &q->resp);
    }
    if (*upload_size != 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->queued)
            return MHD_YES; /* discarded */
        if (q->len + n > h->cfg.max_body) {
            obs_inc(h->c_too_big);
            q->too_big = true;
            free(q->body);
            q->body = NULL;
            q->len = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap != 0 ? q->cap : 1024;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *b = realloc(q->body, cap);
            if (b == NULL)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        q->body[q->len] = '\0';
        return MHD_YES;
    }
    if (q->queued)
        return MHD_YES;
    if (q->too_big)
        return queue_text(q, 413, "request body over the size limit");
    return dispatch(h, q, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    httpd *h = cls;
    hreq *q = *con_cls;
    if (q == NULL)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && toe != MHD_REQUEST_TERMINATED_CLIENT_ABORT &&
        toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN)
        obs_inc(h->c_bad);
    pthread_mutex_lock(&h->lock);
    waiting_unlink_locked(h, q);
    pthread_mutex_unlock(&h->lock);
    httpd_resp_free(&q->resp);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

void httpd_answer(httpd *h, uint64_t ticket, httpd_resp *resp)
{
    pthread_mutex_lock(&h->lock);
    hreq *q = h->waiting;
    while (q != NULL && q->ticket != ticket)
        q = q->next;
    if (q == NULL || q->answered) {
        pthread_mutex_unlock(&h->lock);
        httpd_resp_free(resp);
        return;
    }
    q->resp = *resp;
    memset(resp, 0, sizeof *resp);
    q->answered = true;
    waiting_unlink_locked(h, q);
    if (q->suspended)
        MHD_resume_connection(q->conn);
    pthread_mutex_unlock(&h->lock);
}

/* ---- the server ---- */

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    httpd *h = cls;
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    text[strcspn(text, "\n")] = '\0';
    /* debug: refusals at a connection cap are expected under abuse and would flood */
    LOG_DEBUG("httpd", "libmicrohttpd", "server=%s text=\"%s\"", h->name, text);
}

/* The whole of a small PEM file, NUL-terminated (libmicrohttpd takes text). */
static lb_err read_pem(const char *path, char **out, lb_errmsg *em)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lb_fail(em, LB_ECONFIG, "https: cannot read '%s': %s", path, strerror(errno));
    size_t cap = 64 * 1024;
    char *buf = malloc(cap + 1);
    size_t n = buf != NULL ? fread(buf, 1, cap + 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return lb_fail(em, LB_ENOMEM, "https: out of memory");
    if (n == 0 || n > cap) {
        free(buf);
        return lb_fail(em, LB_ECONFIG, "https: '%s' is empty or over 64 KiB", path);
    }
    buf[n] = '\0';
    *out = buf;
    return LB_OK;
}

static lb_err load_tls(httpd *h, const httpd_config *cfg, lb_errmsg *em)
{
    if (cfg->tls_cert == NULL || cfg->tls_key == NULL)
        return LB_OK;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return lb_fail(em, LB_ECONFIG, "https: libmicrohttpd was built without TLS");
    lb_err err = read_pem(cfg->tls_cert, &h->tls_cert, em);
    if (err == LB_OK)
        err = read_pem(cfg->tls_key, &h->tls_key, em);
    return err;
}

lb_err httpd_new(const httpd_config *cfg, httpd **out, lb_errmsg *em)
{
    *out = NULL;
    httpd *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lb_fail(em, LB_ENOMEM, "http server: out of memory");
    h->cfg = *cfg;
    h->cfg.max_conns = cfg->max_conns != 0 ? cfg->max_conns : 512;
    h->cfg.per_ip = cfg->per_ip != 0 ? cfg->per_ip : 32;
    h->cfg.idle_s = cfg->idle_s != 0 ? cfg->idle_s : 10;
    h->cfg.max_header = cfg->max_header != 0 ? cfg->max_header : 16384;
    h->cfg.max_body = cfg->max_body != 0 ? cfg->max_body : 65536;
    h->cfg.threads = cfg->threads != 0 ? cfg->threads : 2;
    h->listen = strdup(cfg->listen != NULL ? cfg->listen : "");
    h->name = strdup(cfg->name != NULL ? cfg->name : "http");
    h->fd = -1;
    pthread_mutex_init(&h->lock, NULL);
    if (h->listen == NULL || h->name == NULL) {
        httpd_stop(&h);
        return lb_fail(em, LB_ENOMEM, "http server: out of memory");
    }
    lb_err err = load_tls(h, cfg, em);
    if (err != LB_OK) {
        httpd_stop(&h);
        return err;
    }
    h->cfg.tls_cert = h->cfg.tls_key = NULL; /* the caller's strings may not outlive us */
    char name[128];
    snprintf(name, sizeof name, "httpd_requests_total{server=\"%s\"}", h->name);
    h->c_requests = obs_counter_get(name);
    snprintf(name, sizeof name, "httpd_rejected_total{server=\"%s\",reason=\"too_big\"}", h->name);
    h->c_too_big = obs_counter_get(name);
    snprintf(name, sizeof name, "httpd_rejected_total{server=\"%s\",reason=\"no_route\"}", h->name);
    h->c_not_found = obs_counter_get(name);
    snprintf(name, sizeof name, "httpd_rejected_total{server=\"%s\",reason=\"aborted\"}", h->name);
    h->c_bad = obs_counter_get(name);
    *out = h;
    return LB_OK;
}

lb_err httpd_route(httpd *h, const char *method, const char *path, httpd_handler fn, void *arg)
{
    lb_err err = LB_OK;
    size_t pl = strlen(path);
    pthread_mutex_lock(&h->lock);
    if (h->n_routes == HTTPD_MAX_ROUTES || pl == 0 || pl >= sizeof h->routes[0].path) {
        err = LB_EINVAL;
    } else {
        route *r = &h->routes[h->n_routes++];
        snprintf(r->method, sizeof r->method, "%s", method != NULL ? method : "");
        r->prefix = path[pl - 1] == '*';
        snprintf(r->path, sizeof r->path, "%.*s", (int)(r->prefix ? pl - 1 : pl), path);
        r->fn = fn;
        r->arg = arg;
    }
    pthread_mutex_unlock(&h->lock);
    return err;
}

/* Binds "host:port" / "[v6]:port" (port 0: any) and listens. */
static lb_err httpd_bind(httpd *h, lb_errmsg *em)
{
    char host[256];
    const char *colon = strrchr(h->listen, ':');
    if (colon == NULL || colon == h->listen || colon[1] == '\0')
        return lb_fail(em, LB_ECONFIG, "http listen '%s': want host:port", h->listen);
    const char *hs = h->listen;
    size_t hl = (size_t)(colon - h->listen);
    if (hs[0] == '[' && hl >= 2 && hs[hl - 1] == ']') {
        hs++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)hl, hs);
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return lb_fail(em, LB_ECONFIG, "http listen '%s': bad port", h->listen);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rv = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rv != 0)
        return lb_fail(em, LB_ECONFIG, "http listen '%s': %s", h->listen, gai_strerror(rv));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        lb_err err = lb_fail(em, LB_ESYS, "http listen '%s': %s", h->listen, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return err;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    h->fd = fd;
    return LB_OK;
}

lb_err httpd_start(httpd *h, lb_errmsg *em)
{
    lb_err err = httpd_bind(h, em);
    if (err != LB_OK)
        return err;
    /* HTTPS only on a TLS server: a plain request there fails the handshake */
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    bool tls = h->tls_cert != NULL;
    h->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
            (tls ? MHD_USE_TLS : 0),
        0, NULL, NULL, on_access, h, MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[2],
        MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_THREAD_POOL_SIZE, h->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, h->cfg.max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        h->cfg.per_ip, MHD_OPTION_CONNECTION_TIMEOUT, h->cfg.idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->cfg.max_header, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (h->d == NULL) {
        close(h->fd);
        h->fd = -1;
        return lb_fail(em, LB_ESYS, "http listen '%s': libmicrohttpd did not start", h->listen);
    }
    return LB_OK;
}

int httpd_port(const httpd *h)
{
    return h->port;
}

void httpd_stop(httpd **hp)
{
    httpd *h = *hp;
    if (h == NULL)
        return;
    if (h->d != NULL) {
        /* MHD must not stop with suspended connections: answer them, then
         * give its threads a moment to take them back (at most 2 s). */
        pthread_mutex_lock(&h->lock);
        while (h->waiting != NULL) {
            hreq *q = h->waiting;
            waiting_unlink_locked(h, q);
            httpd_resp_printf(&q->resp, 503, NULL, "shutting down\n");
            q->answered = true;
            if (q->suspended)
                MHD_resume_connection(q->conn);
        }
        pthread_mutex_unlock(&h->lock);
        for (int i = 0; i < 400; i++) {
            pthread_mutex_lock(&h->lock);
            size_t n = h->n_suspended;
            pthread_mutex_unlock(&h->lock);
            if (n == 0)
                break;
            nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
        }
        MHD_stop_daemon(h->d);
    }
    if (h->fd >= 0)
        close(h->fd);
    pthread_mutex_destroy(&h->lock);
    free(h->listen);
    free(h->name);
    free(h->tls_cert);
    free(h->tls_key);
    free(h);
    *hp = NULL;
}
