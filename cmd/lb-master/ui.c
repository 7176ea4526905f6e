/*
 * The dashboard at /ui on the master's http_listen: the static page (web/,
 * embedded) and three JSON endpoints the page polls:
 *   GET /ui/api/state                 masters (leader, standbys), slaves, servers
 *   GET /ui/api/events?since=N        the `lbctl watch` events after N (events.h)
 *   GET /ui/api/explain?app=&client_id=&location=
 *                                     the dry run `lbctl explain` asks over RPC
 *                                     (master_explain), as JSON
 * Every answer comes from this master's view (a standby's view is the same
 * data: it receives every load report); none touches etcd or an agent.
 */
#include "master.h"

#include "common/util.h"
#include "events.h"
#include "explain.h"
#include "auth/verifier.h"
#include "httpd/ops.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "web_assets.h"
#include "wire/wire.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static httpd_result ui_json(httpd_resp *resp, int status, cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (text == NULL) {
        httpd_resp_printf(resp, 500, "text/plain", "out of memory\n");
        return HTTPD_DONE;
    }
    httpd_resp_take(resp, status, "application/json", text, strlen(text));
    httpd_resp_header(resp, "Cache-Control", "no-store");
    return HTTPD_DONE;
}

static const char *ui_ctype(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

static httpd_result ui_static(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)arg;
    if (strcmp(req->path, "/ui") == 0) { /* relative asset paths need the slash */
        httpd_resp_printf(resp, 308, "text/plain", "see /ui/\n");
        httpd_resp_header(resp, "Location", "/ui/");
        return HTTPD_DONE;
    }
    if (strncmp(req->path, "/ui/", 4) != 0) {
        httpd_resp_printf(resp, 404, "text/plain", "not found\n");
        return HTTPD_DONE;
    }
    const char *name = req->path + strlen("/ui/");
    if (name[0] == '\0')
        name = "index.html";
    for (size_t i = 0; i < lb_web_n_assets; i++) {
        if (strcmp(lb_web_assets[i].path, name) != 0)
            continue;
        char *body = malloc(lb_web_assets[i].len + 1);
        memcpy(body, lb_web_assets[i].data, lb_web_assets[i].len);
        httpd_resp_take(resp, 200, ui_ctype(name), body, lb_web_assets[i].len);
        httpd_resp_header(resp, "Cache-Control", "no-cache");
        httpd_resp_header(resp, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        httpd_resp_header(resp, "X-Content-Type-Options", "nosniff");
        return HTTPD_DONE;
    }
    httpd_resp_printf(resp, 404, "text/plain", "not found\n");
    return HTTPD_DONE;
}

/* As lbctl servers shows them (sessions.c status_of): DOWN, EJECTED, DISABLED,
 * DRAINING or UP. */
static const char *ui_status(const reg_server *s)
{
    if (s->stale || s->conn_down || s->load == NULL)
        return "DOWN";
    if (s->ejected_until_ms != 0)
        return "EJECTED";
    if (s->override != NULL && s->override->disable)
        return "DISABLED";
    if (s->override != NULL && s->override->drain)
        return "DRAINING";
    return "UP";
}

static void ui_server_json(cJSON *arr, reg *view, const reg_server *s, int64_t now)
{
    char health[256];
    reg_health_detail_locked(view, s, health, sizeof health);
    const Lb__ServerInfo *in = s->info;
    cJSON *j = cJSON_CreateObject();
    bool og = s->override != NULL && s->override->group != NULL && s->override->group[0];
    cJSON_AddStringToObject(j, "id", in->id);
    cJSON_AddStringToObject(j, "host", in->host);
    cJSON_AddStringToObject(j, "zone", in->zone);
    cJSON_AddStringToObject(j, "region", in->region);
    cJSON_AddStringToObject(j, "group", og ? s->override->group : in->group);
    cJSON_AddNumberToObject(j, "group_rank", in->group_rank);
    cJSON_AddNumberToObject(j, "capacity", in->capacity);
    cJSON_AddNumberToObject(j, "sessions", (s->load != NULL ? s->load->sessions : 0) + s->pending);
    cJSON_AddStringToObject(j, "status", ui_status(s));
    cJSON_AddStringToObject(j, "health", health); /* why out of selection, e.g. ejected */
    cJSON_AddNumberToObject(j, "age_ms", s->load != NULL ? (double)(now - s->load_at_ms) : -1);
    cJSON_AddNumberToObject(j, "cpu_load", s->load != NULL ? s->load->cpu_load : 0);
    cJSON *apps = cJSON_AddArrayToObject(j, "apps");
    for (size_t i = 0; i < in->n_apps; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "app", in->apps[i]);
        for (size_t k = 0; s->load != NULL && k < s->load->n_apps; k++)
            if (strcmp(s->load->apps[k]->app, in->apps[i]) == 0) {
                cJSON_AddNumberToObject(a, "processes", s->load->apps[k]->processes);
                cJSON_AddNumberToObject(a, "ready", s->load->apps[k]->ready);
            }
        cJSON_AddItemToArray(apps, a);
    }
    cJSON_AddItemToArray(arr, j);
}

static httpd_result ui_state(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)req;
    master *m = arg;
    cJSON *j = cJSON_CreateObject();
    char leader[128];
    reg_leader(m->view, leader, sizeof leader);
    cJSON_AddNumberToObject(j, "ts_ms", (double)lb_wall_ms());
    cJSON_AddStringToObject(j, "master", m->cfg.id);
    cJSON_AddStringToObject(j, "leader", leader);
    cJSON_AddBoolToObject(j, "etcd_connected", atomic_load(&m->etcd_ok));
    cJSON *ms = cJSON_AddArrayToObject(j, "masters");
    cJSON *sl = cJSON_AddArrayToObject(j, "slaves");
    cJSON *sv = cJSON_AddArrayToObject(j, "servers");
    int64_t now = lb_mono_ms();
    reg_lock(m->view);
    size_t i = 0;
    const Lb__MasterInfo *mi;
    while ((mi = reg_master_next_locked(m->view, &i)) != NULL) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", mi->id);
        cJSON_AddStringToObject(x, "endpoint", mi->rpc_endpoint);
        cJSON_AddStringToObject(x, "role", strcmp(mi->id, leader) == 0 ? "leader" : "standby");
        cJSON_AddItemToArray(ms, x);
    }
    i = 0;
    reg_slave *s;
    while ((s = reg_slave_next_locked(m->view, &i)) != NULL) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", s->info->id);
        cJSON_AddStringToObject(x, "zone", s->info->zone);
        cJSON_AddStringToObject(x, "endpoint", s->info->endpoint);
        cJSON_AddStringToObject(x, "api", s->info->api_endpoint);
        cJSON_AddNumberToObject(x, "load", s->load);
        cJSON_AddNumberToObject(x, "limit", s->info->limit);
        cJSON_AddItemToArray(sl, x);
    }
    i = 0;
    reg_server *sr;
    while ((sr = reg_server_next_locked(m->view, &i)) != NULL)
        ui_server_json(sv, m->view, sr, now);
    cJSON_AddNumberToObject(j, "sessions", (double)reg_n_sessions_locked(m->view));
    reg_unlock(m->view);
    return ui_json(resp, 200, j);
}

static httpd_result ui_events(const httpd_req *req, httpd_resp *resp, void *arg)
{
    master *m = arg;
    const char *since = httpd_query(req, "since");
    cJSON *j = cJSON_CreateObject();
    events_json(m->events, since != NULL ? strtoull(since, NULL, 10) : 0, j);
    return ui_json(resp, 200, j);
}

static cJSON *ui_error(const char *code, const char *reason)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(j, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "reason", reason);
    return j;
}

static cJSON *ui_instruction_json(const Lb__SelectionInstruction *in)
{
    cJSON *j = cJSON_CreateObject();
    /* no slave asked: the choice is a server and the slave that would serve it */
    cJSON_AddStringToObject(j, "action", in->action == LB__ACTION__REJECT ? "REJECT" : "CHOSEN");
    cJSON_AddStringToObject(j, "server", in->server_id);
    cJSON_AddStringToObject(j, "slave", in->slave_id);
    cJSON_AddStringToObject(j, "reason", in->reason);
    cJSON_AddStringToObject(j, "slave_reason", in->slave_reason);
    cJSON_AddBoolToObject(j, "affinity", in->affinity);
    cJSON_AddBoolToObject(j, "moved", in->moved);
    cJSON *alts = cJSON_AddArrayToObject(j, "alternates");
    for (size_t i = 0; i < in->n_alternates; i++)
        cJSON_AddItemToArray(alts, cJSON_CreateString(in->alternates[i]->server_id));
    cJSON *vs = cJSON_AddArrayToObject(j, "verdicts");
    for (size_t i = 0; i < in->n_verdicts; i++) {
        const Lb__Verdict *v = in->verdicts[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "server", v->server_id);
        cJSON_AddStringToObject(x, "zone", v->zone);
        cJSON_AddStringToObject(x, "group", v->group);
        cJSON_AddStringToObject(x, "verdict", v->verdict);
        cJSON_AddNumberToObject(x, "rank", v->rank);
        cJSON_AddStringToObject(x, "detail", v->detail);
        cJSON_AddItemToArray(vs, x);
    }
    return j;
}

/* The same dry run as `lbctl explain` (master_explain), answered as JSON. */
static httpd_result ui_explain(const httpd_req *req, httpd_resp *resp, void *arg)
{
    master *m = arg;
    const char *app = httpd_query(req, "app"), *client = httpd_query(req, "client_id");
    const char *loc = httpd_query(req, "location");
    if (app == NULL || app[0] == '\0' || client == NULL || client[0] == '\0')
        return ui_json(resp, 400, ui_error("bad_request", "app and client_id are required"));
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    cr.app = (char *)app;
    cr.client_id = (char *)client;
    cr.location = (char *)(loc != NULL ? loc : "");
    Lb__SelectionRequest sr = LB__SELECTION_REQUEST__INIT;
    sr.request = &cr;
    sr.dry_run = true;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.body_case = LB__ENVELOPE__BODY_SELECTION_REQUEST;
    env.selection_request = &sr;
    nng_msg *msg = master_explain(m, &env);
    Lb__Envelope *out = NULL;
    lb_errmsg em = {{0}};
    if (msg == NULL || wire_decode(msg, m->cfg.max_message, &out, &em) != LB_OK ||
        out->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
        if (msg != NULL)
            nng_msg_free(msg);
        wire_free(&out);
        return ui_json(resp, 500, ui_error("internal", "explain failed"));
    }
    nng_msg_free(msg);
    cJSON *j = ui_instruction_json(out->instruction);
    wire_free(&out);
    return ui_json(resp, 200, j);
}

/* The operator token of a request: "Authorization: Bearer T", or the
 * lbcp_ui cookie the login (?token=T) set for the browser. */
static const char *ui_token(const httpd_req *req, char *buf, size_t cap)
{
    const char *a = httpd_header(req, "Authorization");
    if (a != NULL && strncmp(a, "Bearer ", 7) == 0)
        return a + 7;
    const char *c = httpd_header(req, "Cookie");
    const char *p = c != NULL ? strstr(c, "lbcp_ui=") : NULL;
    if (p == NULL || (p != c && p[-1] != ' ' && p[-1] != ';'))
        return NULL;
    p += 8;
    size_t n = strcspn(p, "; ");
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* true: the caller holds an operator token (or /ui is open); false: resp
 * holds the 401 (logged, counted). */
static bool ui_allowed(master *m, const httpd_req *req, httpd_resp *resp)
{
    if (m->ui_auth == NULL && m->ui_closed) {
        obs_count("master_ui_rejects_total");
        httpd_resp_printf(resp, 403, "text/plain",
                          "forbidden: /ui over HTTPS needs ui_token_public_keys (operator token "
                          "keys) in the master's config\n");
        return false;
    }
    if (m->ui_auth == NULL)
        return true;
    char buf[2048];
    const char *t = ui_token(req, buf, sizeof buf);
    lb_errmsg em = {{0}};
    char who[128] = "";
    if (t != NULL &&
        auth_verifier_check(m->ui_auth, t, lb_wall_ms(), NULL, NULL, who, sizeof who, &em) == LB_OK)
        return true;
    const char *why = t == NULL ? "unauthenticated: no operator token" : em.text;
    obs_count("master_ui_rejects_total");
    LOG_WARN("master", "dashboard refused", "peer=%s path=%s reason=\"%s\"", req->peer, req->path,
             why);
    httpd_resp_printf(resp, 401, "text/plain", "%s\n", why);
    httpd_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"lbcp ui\"");
    return false;
}

/* GET /ui/?token=T: checks T, stores it in an HttpOnly cookie (so the page's
 * own fetches carry it and scripts cannot read it) and drops it from the URL. */
static bool ui_login(master *m, const httpd_req *req, httpd_resp *resp)
{
    const char *t = httpd_query(req, "token");
    if (t == NULL || m->ui_auth == NULL)
        return false;
    lb_errmsg em = {{0}};
    if (strlen(t) > 1500 ||
        auth_verifier_check(m->ui_auth, t, lb_wall_ms(), NULL, NULL, NULL, 0, &em) != LB_OK) {
        obs_count("master_ui_rejects_total");
        LOG_WARN("master", "dashboard login refused", "peer=%s reason=\"%s\"", req->peer,
                 strlen(t) > 1500 ? "token too long" : em.text);
        httpd_resp_printf(resp, 401, "text/plain", "%s\n",
                          strlen(t) > 1500 ? "unauthenticated: token too long" : em.text);
        return true;
    }
    char cookie[1700];
    snprintf(cookie, sizeof cookie, "lbcp_ui=%s; Path=/ui; HttpOnly; Secure; SameSite=Strict", t);
    httpd_resp_printf(resp, 303, "text/plain", "see /ui/\n");
    httpd_resp_header(resp, "Set-Cookie", cookie);
    httpd_resp_header(resp, "Location", "/ui/");
    return true;
}

static httpd_result ui_static_guarded(const httpd_req *req, httpd_resp *resp, void *arg)
{
    if (ui_login(arg, req, resp) || !ui_allowed(arg, req, resp))
        return HTTPD_DONE;
    return ui_static(req, resp, arg);
}

static httpd_result ui_state_guarded(const httpd_req *req, httpd_resp *resp, void *arg)
{
    return ui_allowed(arg, req, resp) ? ui_state(req, resp, arg) : HTTPD_DONE;
}

static httpd_result ui_events_guarded(const httpd_req *req, httpd_resp *resp, void *arg)
{
    return ui_allowed(arg, req, resp) ? ui_events(req, resp, arg) : HTTPD_DONE;
}

static httpd_result ui_explain_guarded(const httpd_req *req, httpd_resp *resp, void *arg)
{
    return ui_allowed(arg, req, resp) ? ui_explain(req, resp, arg) : HTTPD_DONE;
}

int master_ui_start(master *m)
{
    if (m->http == NULL)
        return 0;
    if (m->cfg.n_ui_token_public_keys > 0) {
        lb_errmsg em = {{0}};
        if (auth_verifier_new(m->cfg.ui_token_public_keys, m->cfg.n_ui_token_public_keys,
                              &m->ui_auth, &em) != LB_OK) {
            LOG_ERROR("master", "dashboard keys", "err=\"%s\"", em.text);
            return -1;
        }
    } else if (cfg_tls_http_cert(&m->cfg.tls) != NULL) {
        /* HTTPS without operator keys: closed rather than open to anyone */
        m->ui_closed = true;
        LOG_WARN("master", "dashboard closed (403): no ui_token_public_keys", NULL);
    } else {
        LOG_WARN("master", "dashboard open to anyone on plain HTTP: no ui_token_public_keys", NULL);
    }
    httpd *h = httpd_ops_server(m->http);
    if (httpd_route(h, "GET", "/ui/api/state", ui_state_guarded, m) != LB_OK ||
        httpd_route(h, "GET", "/ui/api/events", ui_events_guarded, m) != LB_OK ||
        httpd_route(h, "GET", "/ui/api/explain", ui_explain_guarded, m) != LB_OK ||
        httpd_route(h, "GET", "/ui*", ui_static_guarded, m) != LB_OK) {
        LOG_ERROR("master", "dashboard routes", "err=\"route table full\"");
        return -1;
    }
    LOG_INFO("master", "dashboard", "path=/ui assets=%zu", lb_web_n_assets);
    return 0;
}
