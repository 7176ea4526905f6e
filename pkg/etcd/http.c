/* One unary POST to the gateway: endpoint failover, timeouts, size caps, error mapping. */
#include "etcd/internal.h"

#include "common/errmsg.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool etcd_buf_append(etcd_buf *b, const void *d, size_t n)
{
    if (b->len > b->max || n > b->max - b->len) {
        b->too_big = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

void etcd_buf_free(etcd_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->too_big = false;
}

static void count(const char *what, const char *call)
{
    char name[128];
    snprintf(name, sizeof name, "%s{call=\"%s\"}", what, call);
    obs_count(name);
}

void etcd_count_request(const char *call)
{
    count("etcd_requests_total", call);
}

void etcd_count_error(const char *call)
{
    count("etcd_errors_total", call);
}

lb_err etcd_map_grpc(int code, const char *msg)
{
    switch (code) {
    case 4: /* DeadlineExceeded */
        return LB_ETIMEDOUT;
    case 5: /* NotFound: lease */
        return LB_ENOTFOUND;
    case 7:  /* PermissionDenied */
    case 16: /* Unauthenticated */
        return LB_EAUTH;
    case 8: /* ResourceExhausted: message too large */
        return LB_ETOOBIG;
    case 11: /* OutOfRange: compacted, or a future revision */
        return msg != NULL && strstr(msg, "compacted") != NULL ? LB_ECOMPACTED : LB_EETCD;
    case 14: /* Unavailable: no leader, server stopping */
        return LB_EUNAVAIL;
    default:
        return LB_EETCD;
    }
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    size_t n = size * nmemb;
    return etcd_buf_append(ud, ptr, n) ? n : 0;
}

typedef struct attempt {
    CURLcode cc;
    long http;
    bool unsent;   /* nothing reached the server: another endpoint may be tried */
    bool tls_done; /* a TLS handshake completed on this attempt */
} attempt;

static void post_once(const etcd_client *c, etcd_conn *k, const char *url, const char *body,
                      const struct curl_slist *hdr, etcd_buf *buf, attempt *a)
{
    CURL *h = k->h;
    long connect_ms = c->timeout_ms;
    if (c->n_eps > 1 && connect_ms / (long)c->n_eps >= 100)
        connect_ms /= (long)c->n_eps; /* leave time for the next endpoints */
    k->errbuf[0] = '\0';
    buf->len = 0;
    buf->too_big = false;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr != NULL ? hdr : c->headers);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    a->cc = curl_easy_perform(h);
    a->http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->http);
    long sent = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
    a->unsent = a->cc != CURLE_OK && sent == 0;
    curl_off_t tls_us = 0;
    curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &tls_us);
    a->tls_done = tls_us > 0;
}

/* A handshake or certificate failure: retrying will not help, the TLS
 * settings (or etcd's) must change. */
static bool etcd_tls_failure(CURLcode cc, const char *why)
{
    switch (cc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        return true;
    case CURLE_RECV_ERROR: /* TLS 1.3 reports a refused client certificate after the handshake */
        return strstr(why, "alert") != NULL || strstr(why, "certificate") != NULL;
    default:
        return false;
    }
}

static lb_err transport_error(const etcd_conn *k, const etcd_buf *buf, const attempt *a,
                              const char *url, size_t tried, lb_errmsg *em)
{
    const char *why = k->errbuf[0] != '\0' ? k->errbuf : curl_easy_strerror(a->cc);
    lb_err rc = LB_EUNAVAIL;
    if (a->cc == CURLE_WRITE_ERROR && buf->too_big)
        return lb_fail(em, LB_ETOOBIG, "etcd %s: answer over %zu bytes", url, buf->max);
    if (a->cc == CURLE_OPERATION_TIMEDOUT && !a->unsent)
        rc = LB_ETIMEDOUT;
    else if (a->cc == CURLE_URL_MALFORMAT || a->cc == CURLE_UNSUPPORTED_PROTOCOL)
        rc = LB_ECONFIG;
    else if (etcd_tls_failure(a->cc, why))
        return lb_fail(em, LB_EAUTH, "etcd %s: TLS refused: %s (check etcd_tls: ca, cert, key)",
                       url, why);
    else if (a->tls_done && a->http == 0 && a->cc != CURLE_OPERATION_TIMEDOUT)
        /* with TLS 1.3 a server refuses our client certificate after the
         * handshake, by closing: the error is then a bare read or send failure */
        return lb_fail(em, LB_EAUTH,
                       "etcd %s: TLS refused: closed right after the handshake (%s); does etcd's "
                       "--trusted-ca-file accept our certificate? (check etcd_tls: cert, key)",
                       url, why);
    if (tried > 1)
        return lb_fail(em, rc, "etcd %s: %s (no endpoint of %zu reachable)", url, why, tried);
    return lb_fail(em, rc, "etcd %s: %s", url, why);
}

/* Maps a non-2xx answer {"error","message","code"} to lb_err. */
static lb_err answer_error(const char *body, size_t len, long http, const char *url, int *grpc_code,
                           lb_errmsg *em)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(msg))
        msg = cJSON_GetObjectItemCaseSensitive(j, "error");
    lb_err rc = LB_EETCD;
    if (cJSON_IsNumber(code) && cJSON_IsString(msg)) {
        *grpc_code = code->valueint;
        rc = etcd_map_grpc(code->valueint, msg->valuestring);
        const char *hint = "";
        if (strstr(msg->valuestring, "user name is empty") != NULL) {
            rc = LB_EAUTH; /* code 3, but it means "log in first" */
            hint = ": etcd requires authentication; set etcd_user and etcd_password_file";
        } else if (etcd_auth_token_rejected(code->valueint, msg->valuestring)) {
            rc = LB_EAUTH;
        }
        lb_fail(em, rc, "etcd %s: %s (code %d, HTTP %ld)%s", url, msg->valuestring, code->valueint,
                http, hint);
    } else {
        rc = http == 503 ? LB_EUNAVAIL : LB_EETCD;
        lb_fail(em, rc, "etcd %s: HTTP %ld: %.200s", url, http, body);
    }
    cJSON_Delete(j);
    return rc;
}

lb_err etcd_parse_answer(const char *body, size_t len, long http, const char *url, cJSON **out,
                         int *grpc_code, lb_errmsg *em)
{
    int ignored = 0;
    *out = NULL;
    if (grpc_code == NULL)
        grpc_code = &ignored;
    *grpc_code = 0;
    if (http < 200 || http > 299)
        return answer_error(body, len, http, url, grpc_code, em);
    *out = cJSON_ParseWithLength(body, len);
    if (*out != NULL && cJSON_IsObject(*out))
        return LB_OK;
    cJSON_Delete(*out);
    *out = NULL;
    return lb_fail(em, LB_EPROTO, "etcd %s: answer is not a JSON object: %.120s", url, body);
}

lb_err etcd_post(etcd_client *c, const char *call, const char *path, const char *body,
                 const struct curl_slist *hdr, size_t max, cJSON **out, int *grpc_code,
                 lb_errmsg *em)
{
    lb_err rc = LB_OK;
    etcd_buf buf = {.max = max};
    char url[1024];
    *out = NULL;
    if (grpc_code != NULL)
        *grpc_code = 0;
    uint64_t t0 = obs_now_ns();
    etcd_count_request(call);
    etcd_conn *k = etcd_conn_get(c);
    if (k == NULL) {
        rc = lb_fail(em, LB_ENOMEM, "etcd %s: out of memory", path);
        goto out;
    }
    size_t first = atomic_load(&c->cur) % c->n_eps, idx = first, tried = 0;
    attempt a = {0};
    do {
        snprintf(url, sizeof url, "%s%s", c->eps[idx], path);
        post_once(c, k, url, body, hdr, &buf, &a);
        tried++;
        if (a.cc == CURLE_OK || !a.unsent || tried == c->n_eps)
            break;
        idx = (idx + 1) % c->n_eps;
    } while (true);
    if (a.cc != CURLE_OK) {
        rc = transport_error(k, &buf, &a, url, tried, em);
        goto out;
    }
    if (idx != first) {
        atomic_store(&c->cur, idx);
        LOG_INFO("etcd", "switched endpoint", "endpoint=%s", c->eps[idx]);
    }
    rc = etcd_parse_answer(buf.p != NULL ? buf.p : "", buf.len, a.http, url, out, grpc_code, em);
out:
    if (rc != LB_OK)
        etcd_count_error(call);
    char hname[128];
    snprintf(hname, sizeof hname, "etcd_request_seconds{call=\"%s\"}", call);
    obs_observe_since(obs_hist_get(hname, NULL, 0), t0);
    etcd_conn_put(c, k);
    etcd_buf_free(&buf);
    return rc;
}

lb_err etcd_call(etcd_client *c, const char *call, const char *path, const cJSON *req, size_t max,
                 cJSON **out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    lb_errmsg local = {{0}};
    *out = NULL;
    char *body = cJSON_PrintUnformatted(req);
    if (body == NULL)
        return lb_fail(em, LB_ENOMEM, "etcd %s: out of memory", path);
    /* a rejected token is renewed and the call made once more */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct curl_slist *hdr = NULL;
        uint64_t gen = 0;
        int code = 0;
        rc = etcd_auth_headers(c, &hdr, &gen, &local);
        if (rc == LB_OK)
            rc = etcd_post(c, call, path, body, hdr, max, out, &code, &local);
        curl_slist_free_all(hdr);
        if (rc != LB_EAUTH || c->user == NULL)
            break;
        if (attempt == 0 && etcd_auth_token_rejected(code, local.text)) {
            if (etcd_auth_renew(c, gen)) { /* the first thread refused: others just retry */
                obs_count("etcd_auth_token_renewals_total");
                LOG_INFO("etcd", "auth token rejected; renewing", "user=%s why=\"%s\"", c->user,
                         local.text);
            }
            continue;
        }
        if (code == 7) { /* say who was refused */
            size_t n = strlen(local.text);
            snprintf(local.text + n, sizeof local.text - n, " as etcd user '%s'", c->user);
        }
        break;
    }
    if (rc != LB_OK && em != NULL)
        *em = local;
    free(body);
    return rc;
}
