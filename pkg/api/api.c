/*
 * The API server: routes on the shared HTTP server (pkg/httpd), each call a
 * small state machine on an nng context of a REQ socket dialed to the slave's
 * own front door (SEND -> RECV -> answer), answered through httpd_answer.
 */
#include "api/api.h"

#include "api/api_int.h"
#include "common/errmsg.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <nng/nng.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { CALL_REQUEST, CALL_RELEASE, CALL_RENEW, CALL_LIST } call_kind;

static const char *const call_names[] = {"request", "release", "renew", "servers"};

struct api_server {
    httpd *http;
    nng_socket sock;
    bool sock_open;
    char endpoint[512];
    int timeout_ms;
    size_t max_message;
    atomic_int live; /* calls whose callback may still run */
    obs_counter *c_calls[4], *c_bad, *c_no_master;
    obs_hist *h_lat[4];
};

typedef struct api_call {
    api_server *a;
    uint64_t ticket;
    call_kind kind;
    char id[256]; /* session id (release, renew) */
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
    uint64_t t0;
} api_call;

/* Logs and counts a request refused before it reached the front door: the
 * answer, and the start of what was sent (the logger escapes both). */
static void api_refused(api_server *a, const httpd_req *req, const httpd_resp *resp)
{
    obs_inc(a->c_bad);
    size_t rl = resp->len > 0 && resp->body[resp->len - 1] == '\n' ? resp->len - 1 : resp->len;
    LOG_WARN("api", "bad request",
             "peer=%s method=%s path=%s status=%d answer=\"%.*s\" request=\"%.*s\"", req->peer,
             req->method, req->path, resp->status, (int)(rl > 300 ? 300 : rl),
             resp->body != NULL ? resp->body : "", (int)(req->body_len > 200 ? 200 : req->body_len),
             req->body);
}

static void call_finish(api_call *c, httpd_resp *resp)
{
    api_server *a = c->a;
    if (resp->status == 503)
        obs_inc(a->c_no_master);
    obs_observe_since(a->h_lat[c->kind], c->t0);
    httpd_answer(a->http, c->ticket, resp);
    nng_ctx_close(c->ctx);
    nng_aio_reap(c->aio); /* we run in its callback: free it from elsewhere */
    free(c);
    atomic_fetch_sub(&a->live, 1);
}

static void call_answered(api_call *c, nng_msg *msg)
{
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    httpd_resp resp = {0};
    lb_err err = wire_decode(msg, c->a->max_message, &env, &em);
    nng_msg_free(msg);
    if (err != LB_OK) {
        api_error(&resp, 502, "upstream", em.text);
    } else if (c->kind == CALL_REQUEST) {
        api_json_instruction(env, &resp);
    } else if (c->kind == CALL_LIST) {
        api_json_servers(env, &resp);
    } else {
        api_json_session(env, c->id, c->kind == CALL_RENEW, &resp);
    }
    wire_free(&env);
    call_finish(c, &resp);
}

static void call_cb(void *arg)
{
    api_call *c = arg;
    int rv = nng_aio_result(c->aio);
    if (rv == 0 && c->sending) {
        c->sending = false;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        if (c->sending)
            nng_msg_free(nng_aio_get_msg(c->aio));
        httpd_resp resp = {0};
        char why[160];
        snprintf(why, sizeof why, "no answer from the slave's front door: %s",
                 rv == NNG_ETIMEDOUT ? "timed out" : nng_strerror(rv));
        api_error(&resp, 503, "no_master", why);
        call_finish(c, &resp);
        return;
    }
    call_answered(c, nng_aio_get_msg(c->aio));
}

/* Sends the packed envelope through the front door; the answer comes later. */
static httpd_result call_start(api_server *a, const httpd_req *req, httpd_resp *resp,
                               call_kind kind, const char *id, const uint8_t *buf, size_t len)
{
    obs_inc(a->c_calls[kind]);
    api_call *c = calloc(1, sizeof *c);
    nng_msg *m = NULL;
    if (c == NULL || nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0 ||
        nng_ctx_open(&c->ctx, a->sock) != 0) {
        if (m != NULL)
            nng_msg_free(m);
        free(c);
        api_error(resp, 500, "internal", "out of resources");
        return HTTPD_DONE;
    }
    if (nng_aio_alloc(&c->aio, call_cb, c) != 0) {
        nng_msg_free(m);
        nng_ctx_close(c->ctx);
        free(c);
        api_error(resp, 500, "internal", "out of resources");
        return HTTPD_DONE;
    }
    c->a = a;
    c->ticket = req->ticket;
    c->kind = kind;
    c->t0 = obs_now_ns();
    snprintf(c->id, sizeof c->id, "%s", id != NULL ? id : "");
    c->sending = true;
    atomic_fetch_add(&a->live, 1);
    nng_aio_set_timeout(c->aio, a->timeout_ms);
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
    return HTTPD_LATER;
}

/* Packs env and starts the call. */
static httpd_result call_env(api_server *a, const httpd_req *req, httpd_resp *resp, call_kind kind,
                             const char *id, Lb__Envelope *env)
{
    env->version = WIRE_VERSION;
    env->request_id = wire_next_id();
    size_t len = lb__envelope__get_packed_size(env);
    uint8_t *buf = malloc(len != 0 ? len : 1);
    if (buf == NULL) {
        api_error(resp, 500, "internal", "out of memory");
        return HTTPD_DONE;
    }
    lb__envelope__pack(env, buf);
    httpd_result r = call_start(a, req, resp, kind, id, buf, len);
    free(buf);
    return r;
}

/* ---- routes ---- */

static httpd_result route_request(const httpd_req *req, httpd_resp *resp, void *arg)
{
    api_server *a = arg;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!api_json_request(req, &buf, &len, resp)) {
        api_refused(a, req, resp);
        return HTTPD_DONE;
    }
    httpd_result r = call_start(a, req, resp, CALL_REQUEST, NULL, buf, len);
    free(buf);
    return r;
}

/* The one path segment after prefix (decoded), or NULL when absent, empty,
 * followed by more segments, or not UTF-8. */
static const char *path_segment(const char *path, const char *prefix, const char *suffix, char *out,
                                size_t cap)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (strncmp(path, prefix, pl) != 0 || n < pl + sl + 1 || strcmp(path + n - sl, suffix) != 0)
        return NULL;
    size_t len = n - pl - sl;
    if (len >= cap || memchr(path + pl, '/', len) != NULL || !api_utf8_valid(path + pl, len))
        return NULL;
    memcpy(out, path + pl, len);
    out[len] = '\0';
    return out;
}

static httpd_result route_session(const httpd_req *req, httpd_resp *resp, void *arg)
{
    api_server *a = arg;
    char id[256];
    bool del = strcmp(req->method, "DELETE") == 0, put = strcmp(req->method, "PUT") == 0;
    if (!del && !put) {
        api_error(resp, 405, "method_not_allowed", "sessions take DELETE (release) or PUT (renew)");
        return HTTPD_DONE;
    }
    const char *client = httpd_query(req, "client_id");
    /* the client's token, for slaves with require_tokens: "Authorization: Bearer T" */
    const char *auth = httpd_header(req, "Authorization");
    char *token = auth != NULL && strncmp(auth, "Bearer ", 7) == 0 ? (char *)auth + 7 : "";
    if (path_segment(req->path, "/v1/sessions/", "", id, sizeof id) == NULL) {
        api_error(resp, 400, "bad_request", "want /v1/sessions/{id}");
    } else if (client == NULL || client[0] == '\0' || !api_utf8_valid(client, strlen(client))) {
        api_error(resp, 400, "bad_request", "query 'client_id' is required");
    } else {
        Lb__Envelope env = LB__ENVELOPE__INIT;
        if (del) {
            Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
            rr.session_id = id;
            rr.client_id = (char *)client;
            rr.token = token;
            env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
            env.release_request = &rr;
            return call_env(a, req, resp, CALL_RELEASE, id, &env);
        }
        Lb__RenewRequest rn = LB__RENEW_REQUEST__INIT;
        char *ids[1] = {id};
        rn.client_id = (char *)client;
        rn.token = token;
        rn.session_ids = ids;
        rn.n_session_ids = 1;
        env.body_case = LB__ENVELOPE__BODY_RENEW_REQUEST;
        env.renew_request = &rn;
        return call_env(a, req, resp, CALL_RENEW, id, &env);
    }
    api_refused(a, req, resp);
    return HTTPD_DONE;
}

static httpd_result route_servers(const httpd_req *req, httpd_resp *resp, void *arg)
{
    api_server *a = arg;
    char app[256];
    if (path_segment(req->path, "/v1/apps/", "/servers", app, sizeof app) == NULL) {
        api_error(resp, 404, "not_found", "want GET /v1/apps/{app}/servers");
        api_refused(a, req, resp);
        return HTTPD_DONE;
    }
    Lb__ListRequest lr = LB__LIST_REQUEST__INIT;
    lr.app = app;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_LIST_REQUEST;
    env.list_request = &lr;
    return call_env(a, req, resp, CALL_LIST, NULL, &env);
}

static httpd_result route_unknown(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)arg;
    (void)req;
    api_error(resp, 404, "not_found",
              "no such route; see POST /v1/request, DELETE|PUT /v1/sessions/{id}, "
              "GET /v1/apps/{app}/servers");
    return HTTPD_DONE;
}

/* ---- lifecycle ---- */

static void api_counters(api_server *a)
{
    char name[96];
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "api_requests_total{route=\"%s\"}", call_names[k]);
        a->c_calls[k] = obs_counter_get(name);
        snprintf(name, sizeof name, "api_request_seconds{route=\"%s\"}", call_names[k]);
        a->h_lat[k] = obs_hist_get(name, NULL, 0);
    }
    a->c_bad = obs_counter_get("api_bad_requests_total");
    a->c_no_master = obs_counter_get("api_unavailable_total");
}

lb_err api_start(const api_config *cfg, api_server **out, lb_errmsg *em)
{
    *out = NULL;
    api_server *a = calloc(1, sizeof *a);
    if (a == NULL)
        return lb_fail(em, LB_ENOMEM, "api: out of memory");
    a->timeout_ms = cfg->timeout_ms > 0 ? (int)cfg->timeout_ms : 30000;
    a->max_message = cfg->max_message != 0 ? cfg->max_message : WIRE_DEFAULT_MAX;
    api_counters(a);
    httpd_config hc = {.listen = cfg->listen,
                       .max_conns = cfg->max_conns,
                       .per_ip = cfg->per_ip != 0 ? cfg->per_ip : 64,
                       .idle_s = cfg->idle_s,
                       .max_body = cfg->max_body,
                       .json_errors = true,
                       .name = "api",
                       .tls_cert = cfg->tls_cert,
                       .tls_key = cfg->tls_key};
    lb_err err = wire_req_dial(cfg->front_door, &a->sock, em);
    a->sock_open = err == LB_OK;
    if (err == LB_OK)
        err = httpd_new(&hc, &a->http, em);
    if (err == LB_OK && (httpd_route(a->http, "POST", "/v1/request", route_request, a) != LB_OK ||
                         httpd_route(a->http, NULL, "/v1/sessions/*", route_session, a) != LB_OK ||
                         httpd_route(a->http, "GET", "/v1/apps/*", route_servers, a) != LB_OK ||
                         httpd_route(a->http, NULL, "/*", route_unknown, a) != LB_OK))
        err = lb_fail(em, LB_EINVAL, "api: cannot add routes");
    if (err == LB_OK)
        err = httpd_start(a->http, em);
    if (err != LB_OK) {
        api_stop(&a);
        return err;
    }
    if (cfg->advertise != NULL && cfg->advertise[0] != '\0') {
        snprintf(a->endpoint, sizeof a->endpoint, "%s", cfg->advertise);
    } else {
        const char *colon = strrchr(cfg->listen, ':');
        int hl = colon != NULL ? (int)(colon - cfg->listen) : 0;
        snprintf(a->endpoint, sizeof a->endpoint, "%s://%.*s:%d",
                 cfg->tls_cert != NULL ? "https" : "http", hl, cfg->listen, httpd_port(a->http));
    }
    size_t el = strlen(a->endpoint);
    while (el > 0 && a->endpoint[el - 1] == '/')
        a->endpoint[--el] = '\0';
    *out = a;
    return LB_OK;
}

const char *api_endpoint(const api_server *a)
{
    return a->endpoint;
}

void api_stop(api_server **ap)
{
    api_server *a = *ap;
    if (a == NULL)
        return;
    /* Closing the socket ends every call (their callbacks answer through the
     * HTTP server, which must still exist); then the server stops. */
    if (a->sock_open)
        nng_close(a->sock);
    for (int i = 0; i < 400 && atomic_load(&a->live) > 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    httpd_stop(&a->http);
    free(a);
    *ap = NULL;
}
