/*
 * One watch connection: POST /v3/watch, then a never-ending chunked answer of
 * one JSON object per line. Chunks are not lines: bytes are buffered and split
 * on '\n' here; the last line may come without one.
 */
#include "etcd/watch.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 5))) static void end_with(etcd_watch *w, watch_end end, lb_err err,
                                                           const char *fmt, ...)
{
    va_list ap;
    w->end = end;
    w->end_err = err;
    va_start(ap, fmt);
    vsnprintf(w->end_msg, sizeof w->end_msg, fmt, ap);
    va_end(ap);
}

/* {"error":{"grpc_code","message"}} on the stream, or a unary error body. */
static void on_error_line(etcd_watch *w, const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *msg = NULL;
    int code = 0;
    if (cJSON_IsObject(e)) {
        msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        code = (int)etcd_ji64(e, "grpc_code");
    } else {
        msg = cJSON_GetObjectItemCaseSensitive(j, "message");
        code = (int)etcd_ji64(j, "code");
    }
    const char *text = cJSON_IsString(msg) ? msg->valuestring : "error";
    lb_err rc = etcd_map_grpc(code, text);
    if (etcd_auth_token_rejected(code, text)) {
        w->token_rejected = true;
        rc = LB_EAUTH;
    }
    end_with(w, WATCH_END_ERROR, rc, "etcd watch: %s (code %d)", text, code);
}

static void on_canceled(etcd_watch *w, const cJSON *result)
{
    int64_t compacted = etcd_ji64(result, "compact_revision");
    if (compacted > 0) {
        LOG_INFO("etcd", "watch start revision compacted; reloading", "prefix=\"%s\" rev=%lld",
                 w->prefix, (long long)compacted);
        end_with(w, WATCH_END_RELOAD, LB_ECOMPACTED, "etcd watch %s: compacted at %lld", w->prefix,
                 (long long)compacted);
        return;
    }
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(result, "cancel_reason");
    const char *text = cJSON_IsString(why) ? why->valuestring : "no reason given";
    lb_err rc = LB_EETCD;
    /* etcd checks the token when a watch is created and cancels it at once
     * ("created" and "canceled" together) when it is refused */
    if (etcd_auth_token_rejected(0, text)) {
        w->token_rejected = true;
        rc = LB_EAUTH;
    } else if (strstr(text, "permission denied") != NULL ||
               strstr(text, "user name is empty") != NULL) {
        rc = LB_EAUTH;
    }
    end_with(w, WATCH_END_ERROR, rc, "etcd watch %s: canceled: %s", w->prefix, text);
}

/* Parses the events and hands the ones after w->rev to on_events. */
static void on_events(etcd_watch *w, const cJSON *events)
{
    size_t max = (size_t)cJSON_GetArraySize(events), n = 0;
    etcd_event *evs = calloc(max, sizeof *evs);
    const cJSON *it = NULL;
    int64_t rev = w->rev;
    if (evs == NULL)
        abort();
    cJSON_ArrayForEach(it, events)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
        etcd_event *ev = &evs[n];
        if (etcd_kv_parse(cJSON_GetObjectItemCaseSensitive(it, "kv"), &ev->kv, NULL) != LB_OK) {
            end_with(w, WATCH_END_ERROR, LB_EPROTO, "etcd watch %s: malformed event", w->prefix);
            goto out;
        }
        ev->type = cJSON_IsString(type) && strcmp(type->valuestring, "DELETE") == 0 ? ETCD_EV_DELETE
                                                                                    : ETCD_EV_PUT;
        const cJSON *prev = cJSON_GetObjectItemCaseSensitive(it, "prev_kv");
        if (w->cb.prev_kv && prev != NULL && etcd_kv_parse(prev, &ev->prev, NULL) != LB_OK)
            memset(&ev->prev, 0, sizeof ev->prev); /* a bad prev only loses what it would tell */
        if (ev->kv.mod_revision <= w->rev) {       /* already delivered */
            etcd_kv_clear(&ev->kv);
            etcd_kv_clear(&ev->prev);
            continue;
        }
        if (ev->kv.mod_revision > rev)
            rev = ev->kv.mod_revision;
        n++;
    }
    if (n > 0 && w->cb.on_events != NULL)
        w->cb.on_events(w->cb.arg, evs, n, rev);
    w->rev = rev;
out:
    for (size_t i = 0; i < max; i++) {
        etcd_kv_clear(&evs[i].kv);
        etcd_kv_clear(&evs[i].prev);
    }
    free(evs);
}

/* Handles one line; false ends the stream (w->end says why). */
static bool on_line(etcd_watch *w, const char *p, size_t len)
{
    bool go_on = true;
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
        len--;
    if (len == 0)
        return true;
    cJSON *j = cJSON_ParseWithLength(p, len);
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(result, "events");
    if (j == NULL) {
        end_with(w, WATCH_END_ERROR, LB_EPROTO, "etcd watch %s: not JSON (%zu bytes)", w->prefix,
                 len);
    } else if (cJSON_GetObjectItemCaseSensitive(j, "error") != NULL) {
        on_error_line(w, j);
    } else if (!cJSON_IsObject(result)) {
        /* nothing we know: ignore */
    } else if (etcd_jbool(result, "canceled")) {
        on_canceled(w, result);
    } else if (etcd_jbool(result, "created")) {
        w->created = true;
        w->created_ms = lb_mono_ms();
        etcd_watch_status(w, true, LB_OK, "watching");
    } else if (cJSON_GetArraySize(events) > 0) {
        on_events(w, events);
    } else {
        /* progress notify: sent only when the watcher is in sync */
        int64_t rev = etcd_header_rev(result);
        if (rev > w->rev)
            w->rev = rev;
    }
    go_on = w->end == WATCH_END_NONE;
    cJSON_Delete(j);
    return go_on;
}

/* Splits the buffer into lines, keeping an unfinished last one. */
static bool drain_lines(etcd_watch *w)
{
    size_t off = 0;
    bool go_on = true;
    while (go_on && off < w->line.len) {
        char *nl = memchr(w->line.p + off, '\n', w->line.len - off);
        if (nl == NULL)
            break;
        go_on = on_line(w, w->line.p + off, (size_t)(nl - (w->line.p + off)));
        off = (size_t)(nl - w->line.p) + 1;
    }
    if (off > 0) {
        memmove(w->line.p, w->line.p + off, w->line.len - off);
        w->line.len -= off;
        w->line.p[w->line.len] = '\0';
    }
    return go_on;
}

bool etcd_watch_feed(etcd_watch *w, const char *ptr, size_t n)
{
    if (!etcd_buf_append(&w->line, ptr, n)) {
        /* cannot skip a batch: take a fresh snapshot after it instead */
        LOG_ERROR("etcd", "watch line over its size cap; reloading", "prefix=\"%s\" cap=%zu",
                  w->prefix, w->line.max);
        end_with(w, WATCH_END_RELOAD, LB_ETOOBIG, "etcd watch %s: line over %zu bytes", w->prefix,
                 w->line.max);
        return false;
    }
    return drain_lines(w);
}

void etcd_watch_flush(etcd_watch *w)
{
    if (w->end == WATCH_END_NONE && w->line.len > 0)
        on_line(w, w->line.p, w->line.len);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    etcd_watch *w = ud;
    size_t n = size * nmemb;
    if (etcd_nap_stopped(&w->nap))
        return 0;
    return etcd_watch_feed(w, ptr, n) ? n : 0;
}

static CURL *stream_handle(etcd_watch *w, const char *url, const char *body,
                           const struct curl_slist *hdr, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return NULL;
    long idle_s = (long)((atomic_load(&w->c->watch_idle_ms) + 999) / 1000);
    etcd_conn_setup(w->c, h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)w->c->timeout_ms);
    /* no byte (not even a progress notify) for idle_s => the stream is dead */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, idle_s);
    return h;
}

static char *request_body(const etcd_watch *w)
{
    cJSON *req = etcd_jobj();
    cJSON *cr = etcd_jchild(req, "create_request");
    if (w->range_end != NULL) {
        etcd_jadd_b64(cr, "key", w->prefix, strlen(w->prefix));
        etcd_jadd_b64(cr, "range_end", w->range_end, strlen(w->range_end));
    } else {
        etcd_jadd_range(cr, w->prefix, true);
    }
    if (w->noput > 0) {
        cJSON *f = cJSON_AddArrayToObject(cr, "filters");
        if (f == NULL || !cJSON_AddItemToArray(f, cJSON_CreateString("NOPUT")))
            abort();
    }
    etcd_jadd_i64(cr, "start_revision", w->rev + 1);
    etcd_jadd_bool(cr, "progress_notify", true);
    if (w->cb.prev_kv)
        etcd_jadd_bool(cr, "prev_kv", true);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (body == NULL)
        abort();
    return body;
}

/* Drives the transfer until it ends or the watch stops; returns curl's result. */
static CURLcode run_transfer(etcd_watch *w, CURL *h)
{
    CURLcode cc = CURLE_ABORTED_BY_CALLBACK;
    int running = 1;
    curl_multi_add_handle(w->multi, h);
    while (running && !etcd_nap_stopped(&w->nap) && atomic_load(&w->want_noput) == w->noput) {
        if (curl_multi_perform(w->multi, &running) != CURLM_OK || running == 0)
            break;
        if (curl_multi_poll(w->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            break;
    }
    CURLMsg *m = NULL;
    int left = 0;
    while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == h)
            cc = m->data.result;
    }
    curl_multi_remove_handle(w->multi, h);
    return cc;
}

void etcd_watch_stream(etcd_watch *w)
{
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    char *body = request_body(w);
    etcd_client *c = w->c;
    struct curl_slist *hdr = NULL;
    CURL *h = NULL;
    lb_errmsg em = {{0}};
    w->end = WATCH_END_NONE;
    w->created = false;
    w->token_rejected = false;
    w->line.len = 0;
    snprintf(url, sizeof url, "%s/v3/watch", c->eps[w->ep % c->n_eps]);
    lb_err rc = etcd_auth_headers(c, &hdr, &w->auth_gen, &em);
    if (rc != LB_OK) {
        end_with(w, WATCH_END_ERROR, rc, "%s", em.text);
        goto out;
    }
    h = stream_handle(w, url, body, hdr, errbuf);
    if (h == NULL) {
        end_with(w, WATCH_END_ERROR, LB_ENOMEM, "etcd watch %s: out of memory", url);
        goto out;
    }
    etcd_count_request("watch");
    CURLcode cc = run_transfer(w, h);
    if (!etcd_nap_stopped(&w->nap))
        etcd_watch_flush(w); /* a last line without '\n' */
    if (w->end == WATCH_END_NONE) {
        long sent = 0;
        curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
        if (cc != CURLE_OK && sent == 0)
            w->ep = (w->ep + 1) % c->n_eps; /* unreachable: try the next endpoint */
        const char *why = cc == CURLE_OK      ? "stream closed by etcd"
                          : errbuf[0] != '\0' ? errbuf
                                              : curl_easy_strerror(cc);
        end_with(w, WATCH_END_NONE, cc == CURLE_OPERATION_TIMEDOUT ? LB_ETIMEDOUT : LB_EUNAVAIL,
                 "etcd watch %s: %s", url, why);
    }
    if (w->end != WATCH_END_RELOAD && !etcd_nap_stopped(&w->nap) &&
        atomic_load(&w->want_noput) == w->noput)
        etcd_count_error("watch");
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(body);
}
