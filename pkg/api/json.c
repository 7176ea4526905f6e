/*
 * JSON <-> protobuf for the HTTP API. Input is strict: an object with known
 * fields of the right types (an unknown field is a 400, so a typo is not
 * silently ignored); output strings are made valid UTF-8 (U+FFFD for a bad
 * byte), so an answer is always valid JSON.
 */
#include "api/api_int.h"

#include "wire/wire.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_VISITED 16
#define API_MAX_LABELS 64

bool api_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : (c & 0xF0) == 0xE0     ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        if (len == 0 || i + len > n)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] > 0x8F))
            return false;
        i += len;
    }
    return true;
}

/* Adds s as a string, bytes that are not UTF-8 replaced by U+FFFD. */
static void add_str(cJSON *o, const char *key, const char *s)
{
    s = s != NULL ? s : "";
    size_t n = strlen(s);
    if (api_utf8_valid(s, n)) {
        cJSON_AddStringToObject(o, key, s);
        return;
    }
    char *clean = malloc(n * 3 + 1);
    if (clean == NULL)
        return;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 1;
        while (k <= 4 && i + k <= n && !api_utf8_valid(s + i, k))
            k++;
        if (k <= 4 && i + k <= n) {
            memcpy(clean + w, s + i, k);
            w += k;
            i += k - 1;
        } else {
            memcpy(clean + w, "\xEF\xBF\xBD", 3);
            w += 3;
        }
    }
    clean[w] = '\0';
    cJSON_AddStringToObject(o, key, clean);
    free(clean);
}

static void take_json(httpd_resp *resp, int status, cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) {
        httpd_resp_printf(resp, 500, "application/json",
                          "{\"error\":{\"code\":\"internal\",\"reason\":\"out of memory\"}}\n");
        return;
    }
    httpd_resp_printf(resp, status, "application/json", "%s\n", text);
    free(text);
}

void api_error(httpd_resp *resp, int status, const char *code, const char *reason)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    add_str(e, "code", code);
    add_str(e, "reason", reason);
    take_json(resp, status, o);
}

/* ---- input ---- */

typedef struct parse {
    httpd_resp *resp;
    bool failed;
} parse;

static bool bad(parse *p, const char *fmt, const char *what)
{
    char why[256];
    snprintf(why, sizeof why, fmt, what);
    if (!p->failed)
        api_error(p->resp, 400, "bad_request", why);
    p->failed = true;
    return false;
}

/* Checks that every member of o is one of names. */
static bool known_fields(parse *p, const cJSON *o, const char *const *names, const char *where)
{
    for (const cJSON *m = o->child; m != NULL; m = m->next) {
        size_t i = 0;
        while (names[i] != NULL && strcmp(names[i], m->string) != 0)
            i++;
        if (names[i] == NULL) {
            char what[160];
            snprintf(what, sizeof what, "%s%.100s", where, m->string);
            return bad(p, "unknown field '%s'", what);
        }
    }
    return true;
}

/* The string member key of o ("" when absent); NULL (and a 400) when it is
 * present and not a string. */
static char *get_str(parse *p, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL || cJSON_IsNull(v))
        return "";
    if (!cJSON_IsString(v)) {
        bad(p, "field '%s' must be a string", key);
        return NULL;
    }
    return v->valuestring;
}

static bool get_num(parse *p, const cJSON *o, const char *key, double max, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > max)
        return bad(p, "field '%s' must be a non-negative number in range", key);
    *out = v->valuedouble;
    return true;
}

/* Fills up to max strings of the array member key into out. */
static size_t get_strs(parse *p, const cJSON *o, const char *key, char **out, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    size_t n = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsArray(v)) {
        bad(p, "field '%s' must be an array of strings", key);
        return 0;
    }
    for (const cJSON *e = v->child; e != NULL; e = e->next) {
        if (!cJSON_IsString(e) || n == max) {
            bad(p, "field '%s' must be an array of at most 64 strings", key);
            return 0;
        }
        out[n++] = e->valuestring;
    }
    return n;
}

typedef struct req_parts {
    Lb__ClientRequest cr;
    Lb__Requirements rq;
    Lb__Preselection pre;
    Lb__ProcessId proc;
    char *labels[API_MAX_LABELS];
    char *visited[API_MAX_VISITED];
    char visited_buf[1024];
} req_parts;

static void parse_requirements(parse *p, const cJSON *o, req_parts *r)
{
    static const char *const names[] = {"min_cpu", "min_mem_bytes", "labels", NULL};
    if (!cJSON_IsObject(o)) {
        bad(p, "field '%s' must be an object", "requirements");
        return;
    }
    double mem = 0;
    if (!known_fields(p, o, names, "requirements.") ||
        !get_num(p, o, "min_cpu", 1e6, &r->rq.min_cpu) ||
        !get_num(p, o, "min_mem_bytes", 1.8e19, &mem))
        return;
    r->rq.min_mem_bytes = (uint64_t)mem;
    r->rq.n_labels = get_strs(p, o, "labels", r->labels, API_MAX_LABELS);
    r->rq.labels = r->labels;
    r->cr.requirements = &r->rq;
}

static void parse_preselection(parse *p, const cJSON *o, req_parts *r)
{
    static const char *const names[] = {"server", "session", "slave",      "pid",
                                        "host",   "port",    "started_at", NULL};
    if (!cJSON_IsObject(o)) {
        bad(p, "field '%s' must be an object", "preselection");
        return;
    }
    double pid = 0, port = 0, started = 0;
    if (!known_fields(p, o, names, "preselection.") || !get_num(p, o, "pid", 2147483647, &pid) ||
        !get_num(p, o, "port", 65535, &port) || !get_num(p, o, "started_at", 9e15, &started))
        return;
    if ((r->pre.server_id = get_str(p, o, "server")) == NULL ||
        (r->pre.session_id = get_str(p, o, "session")) == NULL ||
        (r->pre.slave_id = get_str(p, o, "slave")) == NULL ||
        (r->proc.host = get_str(p, o, "host")) == NULL)
        return;
    r->proc.pid = (int32_t)pid;
    r->proc.port = (uint32_t)port;
    r->proc.started_at = (int64_t)started;
    r->proc.server_id = r->pre.server_id;
    r->pre.process = &r->proc;
    r->cr.preselected = &r->pre;
}

/* A followed redirect: the preselection and visited list ride in the query
 * (so the re-posted body stays the client's own). */
static void parse_query(parse *p, const httpd_req *req, req_parts *r)
{
    const char *srv = httpd_query(req, "pre_server");
    if (srv != NULL) {
        r->pre.server_id = (char *)srv;
        const char *v;
        r->pre.session_id = (char *)((v = httpd_query(req, "pre_session")) ? v : "");
        r->pre.slave_id = (char *)((v = httpd_query(req, "pre_slave")) ? v : "");
        r->proc.host = (char *)((v = httpd_query(req, "pre_host")) ? v : "");
        r->proc.pid = (int32_t)strtol((v = httpd_query(req, "pre_pid")) ? v : "0", NULL, 10);
        r->proc.port = (uint32_t)strtoul((v = httpd_query(req, "pre_port")) ? v : "0", NULL, 10);
        r->proc.started_at =
            (int64_t)strtoll((v = httpd_query(req, "pre_started_at")) ? v : "0", NULL, 10);
        r->proc.server_id = r->pre.server_id;
        r->pre.process = &r->proc;
        r->cr.preselected = &r->pre;
    }
    const char *vis = httpd_query(req, "visited");
    if (vis != NULL && vis[0] != '\0') {
        if (strlen(vis) >= sizeof r->visited_buf) {
            bad(p, "query '%s' too long", "visited");
            return;
        }
        snprintf(r->visited_buf, sizeof r->visited_buf, "%s", vis);
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(r->visited_buf, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (n == API_MAX_VISITED) {
                bad(p, "query '%s' lists too many slaves", "visited");
                return;
            }
            r->visited[n++] = t;
        }
        r->cr.visited = r->visited;
        r->cr.n_visited = n;
    }
}

bool api_json_request(const httpd_req *req, uint8_t **out, size_t *len, httpd_resp *resp)
{
    static const char *const names[] = {"app",   "client_id",    "location",        "requirements",
                                        "token", "preselection", "unreachable_pid", NULL};
    parse p = {.resp = resp};
    if (!api_utf8_valid(req->body, req->body_len))
        return bad(&p, "%s", "body is not valid UTF-8");
    cJSON *root = cJSON_ParseWithLength(req->body, req->body_len);
    if (root == NULL)
        return bad(&p, "%s", "body is not valid JSON");
    req_parts *r = calloc(1, sizeof *r);
    bool ok = false;
    if (r == NULL) {
        api_error(resp, 500, "internal", "out of memory");
        goto out;
    }
    lb__client_request__init(&r->cr);
    lb__requirements__init(&r->rq);
    lb__preselection__init(&r->pre);
    lb__process_id__init(&r->proc);
    if (!cJSON_IsObject(root)) {
        bad(&p, "%s", "body must be a JSON object");
        goto out;
    }
    if (!known_fields(&p, root, names, ""))
        goto out;
    if ((r->cr.app = get_str(&p, root, "app")) == NULL ||
        (r->cr.client_id = get_str(&p, root, "client_id")) == NULL ||
        (r->cr.location = get_str(&p, root, "location")) == NULL ||
        (r->cr.token = get_str(&p, root, "token")) == NULL)
        goto out;
    if (r->cr.app[0] == '\0' || r->cr.client_id[0] == '\0') {
        bad(&p, "%s", "fields 'app' and 'client_id' are required");
        goto out;
    }
    /* the pid of this client's sticky process it could not connect to: the
     * master asks the agent (which probes and replaces it) instead of
     * answering from its view, as the nng client's reconnect does */
    double unreachable = 0;
    if (!get_num(&p, root, "unreachable_pid", 2147483647, &unreachable))
        goto out;
    if (unreachable != (double)(int32_t)unreachable) {
        bad(&p, "%s", "field 'unreachable_pid' must be an integer (a pid)");
        goto out;
    }
    r->cr.unreachable_pid = (int32_t)unreachable;
    const cJSON *rq = cJSON_GetObjectItemCaseSensitive(root, "requirements");
    if (rq != NULL && !cJSON_IsNull(rq))
        parse_requirements(&p, rq, r);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "preselection");
    if (!p.failed && pre != NULL && !cJSON_IsNull(pre))
        parse_preselection(&p, pre, r);
    if (!p.failed)
        parse_query(&p, req, r);
    if (p.failed)
        goto out;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = &r->cr;
    *len = lb__envelope__get_packed_size(&env);
    *out = malloc(*len != 0 ? *len : 1);
    if (*out == NULL) {
        api_error(resp, 500, "internal", "out of memory");
        goto out;
    }
    lb__envelope__pack(&env, *out);
    ok = true;
out:
    free(r);
    cJSON_Delete(root);
    return ok;
}

/* ---- output ---- */

static void url_add(char *buf, size_t cap, size_t *len, const char *key, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    if (val == NULL || val[0] == '\0')
        return;
    int n =
        snprintf(buf + *len, cap - *len, "%s%s=", *len > 0 && strchr(buf, '?') ? "&" : "?", key);
    if (n < 0 || (size_t)n >= cap - *len)
        return;
    *len += (size_t)n;
    for (const unsigned char *s = (const unsigned char *)val; *s != '\0' && *len + 4 < cap; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            strchr("-._~", *s) != NULL) {
            buf[(*len)++] = (char)*s;
        } else {
            buf[(*len)++] = '%';
            buf[(*len)++] = hex[*s >> 4];
            buf[(*len)++] = hex[*s & 15];
        }
    }
    buf[*len] = '\0';
}

/* The chosen slave's API URL with the preselection carried. */
static void redirect_url(const Lb__SelectionInstruction *in, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "%s/v1/request", in->slave_api);
    if (len >= cap) {
        buf[0] = '\0';
        return;
    }
    char num[32], vis[1024] = "";
    url_add(buf, cap, &len, "pre_server", in->server_id);
    url_add(buf, cap, &len, "pre_session", in->session_id);
    url_add(buf, cap, &len, "pre_slave", in->slave_id);
    if (in->process != NULL) {
        url_add(buf, cap, &len, "pre_host", in->process->host);
        snprintf(num, sizeof num, "%d", (int)in->process->pid);
        url_add(buf, cap, &len, "pre_pid", num);
        snprintf(num, sizeof num, "%u", (unsigned)in->process->port);
        url_add(buf, cap, &len, "pre_port", num);
        snprintf(num, sizeof num, "%lld", (long long)in->process->started_at);
        url_add(buf, cap, &len, "pre_started_at", num);
    }
    size_t vl = 0;
    for (size_t i = 0; i < in->n_visited && vl + 1 < sizeof vis; i++) {
        int n = snprintf(vis + vl, sizeof vis - vl, "%s%s", i > 0 ? "," : "", in->visited[i]);
        vl += n > 0 ? (size_t)n : 0;
    }
    url_add(buf, cap, &len, "visited", vis);
}

static const char *action_name(Lb__Action a)
{
    return a == LB__ACTION__SERVE ? "SERVE" : a == LB__ACTION__REDIRECT ? "REDIRECT" : "REJECT";
}

/* HTTP status and code of a REJECT, by the master's reason classes. */
static int reject_status(const char *r, const char **code)
{
    static const struct {
        const char *prefix, *code;
        int status;
    } map[] = {{"unauthenticated:", "unauthenticated", 401},
               {"forbidden:", "forbidden", 403},
               {"bad request", "bad_request", 400},
               {"unknown app", "no_app", 404}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(r, map[i].prefix, strlen(map[i].prefix)) == 0) {
            *code = map[i].code;
            return map[i].status;
        }
    if (strstr(r, "launch failed") != NULL) {
        *code = "launch_failed";
        return 503;
    }
    if (strstr(r, "no eligible") != NULL || strstr(r, "no server") != NULL) {
        *code = "no_server";
        return 503;
    }
    *code = "rejected";
    return 422;
}

static void instruction_json(cJSON *o, const Lb__SelectionInstruction *in)
{
    add_str(o, "action", action_name(in->action));
    add_str(o, "slave", in->slave_id);
    add_str(o, "slave_endpoint", in->slave_endpoint);
    add_str(o, "slave_api", in->slave_api);
    add_str(o, "server", in->server_id);
    const Lb__ProcessId *pr = in->process;
    cJSON_AddNumberToObject(o, "pid", pr != NULL ? pr->pid : 0);
    add_str(o, "host", pr != NULL ? pr->host : "");
    cJSON_AddNumberToObject(o, "port", pr != NULL ? pr->port : 0);
    cJSON_AddNumberToObject(o, "started_at", pr != NULL ? (double)pr->started_at : 0);
    add_str(o, "link", in->link != NULL && in->link[0] != '\0' ? in->link : "direct");
    add_str(o, "relay_endpoint", in->relay_endpoint);
    add_str(o, "relay_token", in->relay_token);
    add_str(o, "session", in->session_id);
    cJSON_AddNumberToObject(o, "expires_ms", (double)in->expires_ms);
    cJSON *alts = cJSON_AddArrayToObject(o, "alternates");
    for (size_t i = 0; i < in->n_alternates; i++) {
        cJSON *a = cJSON_CreateObject();
        add_str(a, "server", in->alternates[i]->server_id);
        add_str(a, "host", in->alternates[i]->host);
        add_str(a, "zone", in->alternates[i]->zone);
        cJSON_AddItemToArray(alts, a);
    }
    cJSON_AddBoolToObject(o, "confirmed", in->confirmed);
    cJSON_AddBoolToObject(o, "moved", in->moved);
    cJSON_AddBoolToObject(o, "affinity", in->affinity);
    add_str(o, "reason", in->reason);
    cJSON *vis = cJSON_AddArrayToObject(o, "visited");
    for (size_t i = 0; i < in->n_visited; i++) {
        const char *v = in->visited[i];
        cJSON_AddItemToArray(vis, cJSON_CreateString(api_utf8_valid(v, strlen(v)) ? v : "?"));
    }
}

void api_json_error_reply(const Lb__ErrorReply *e, httpd_resp *resp)
{
    const char *m = e->message != NULL ? e->message : "";
    switch (e->code) {
    case LB_EUNAVAIL:
        api_error(resp, 503, "no_master", m);
        break;
    case LB_EINVAL:
    case LB_EPROTO:
        api_error(resp, 400, "bad_request", m);
        break;
    case LB_EAUTH:
        api_error(resp, strncmp(m, "forbidden:", 10) == 0 ? 403 : 401,
                  strncmp(m, "forbidden:", 10) == 0 ? "forbidden" : "unauthenticated", m);
        break;
    case LB_ETOOBIG:
        api_error(resp, 413, "too_large", m);
        break;
    case LB_ENOTFOUND:
        api_error(resp, 404, "not_found", m);
        break;
    default:
        api_error(resp, 502, "upstream", m);
    }
}

void api_json_instruction(const Lb__Envelope *env, httpd_resp *resp)
{
    if (env->body_case == LB__ENVELOPE__BODY_ERROR) {
        api_json_error_reply(env->error, resp);
        return;
    }
    if (env->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
        api_error(resp, 502, "upstream", "unexpected answer from the front door");
        return;
    }
    const Lb__SelectionInstruction *in = env->instruction;
    cJSON *o = cJSON_CreateObject();
    int status = 200;
    if (in->action == LB__ACTION__REJECT) {
        const char *code = "rejected";
        status = reject_status(in->reason != NULL ? in->reason : "", &code);
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        add_str(e, "code", code);
        add_str(e, "reason", in->reason);
    }
    instruction_json(o, in);
    if (in->action == LB__ACTION__REDIRECT && in->slave_api != NULL && in->slave_api[0] != '\0') {
        char url[2048];
        redirect_url(in, url, sizeof url);
        add_str(o, "location", url);
        take_json(resp, 307, o);
        httpd_resp_header(resp, "Location", url);
        return;
    }
    take_json(resp, status, o);
}

void api_json_session(const Lb__Envelope *env, const char *id, bool renew, httpd_resp *resp)
{
    if (env->body_case == LB__ENVELOPE__BODY_ERROR) {
        api_json_error_reply(env->error, resp);
        return;
    }
    if (env->body_case != LB__ENVELOPE__BODY_SESSION_REPLY) {
        api_error(resp, 502, "upstream", "unexpected answer from the front door");
        return;
    }
    const Lb__SessionReply *r = env->session_reply;
    bool unknown = false;
    for (size_t i = 0; i < r->n_unknown; i++)
        unknown = unknown || strcmp(r->unknown[i], id) == 0;
    if (!r->ok || unknown) {
        const char *why = r->error != NULL && r->error[0] != '\0' ? r->error : "unknown session";
        bool nf = unknown || strstr(why, "no such") != NULL || strstr(why, "no longer") != NULL;
        bool who = strstr(why, "another client") != NULL;
        api_error(resp,
                  nf    ? 404
                  : who ? 403
                        : 409,
                  nf    ? "not_found"
                  : who ? "forbidden"
                        : "conflict",
                  why);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    add_str(o, "session", id);
    cJSON_AddBoolToObject(o, "ok", true);
    if (renew)
        cJSON_AddNumberToObject(o, "expires_ms", (double)r->expires_ms);
    take_json(resp, 200, o);
}

void api_json_servers(const Lb__Envelope *env, httpd_resp *resp)
{
    if (env->body_case == LB__ENVELOPE__BODY_ERROR) {
        api_json_error_reply(env->error, resp);
        return;
    }
    if (env->body_case != LB__ENVELOPE__BODY_SERVER_LIST) {
        api_error(resp, 502, "upstream", "unexpected answer from the front door");
        return;
    }
    const Lb__ServerList *l = env->server_list;
    cJSON *o = cJSON_CreateObject();
    add_str(o, "app", l->app);
    cJSON *arr = cJSON_AddArrayToObject(o, "servers");
    for (size_t i = 0; i < l->n_servers; i++) {
        const Lb__ServerEntry *e = l->servers[i];
        cJSON *s = cJSON_CreateObject();
        add_str(s, "server", e->server_id);
        add_str(s, "endpoint", e->host);
        add_str(s, "status", e->status);
        cJSON_AddNumberToObject(s, "users", e->users);
        cJSON_AddNumberToObject(s, "capacity", e->capacity);
        add_str(s, "group", e->group);
        cJSON_AddNumberToObject(s, "group_rank", e->group_rank);
        add_str(s, "zone", e->zone);
        cJSON_AddItemToArray(arr, s);
    }
    take_json(resp, 200, o);
}
