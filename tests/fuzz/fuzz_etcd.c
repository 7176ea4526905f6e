/*
 * libFuzzer target: what pkg/etcd reads from the network. The first byte picks
 * the parser:
 *   even: a unary answer (status from the second byte), then every reader the
 *         client runs on answers (kvs, header, txn responses, lease fields, the
 *         auth token);
 *   odd:  a watch stream, fed in chunks whose sizes come from the second byte
 *         (chunks are not lines), with a small line cap so the cap is reached.
 * Invariants checked: a failure says why; events handed out are newer than
 * every revision delivered before and not newer than the batch's revision.
 */
#include "etcd/watch.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_answer(const cJSON *resp)
{
    etcd_kvs kvs = {0};
    lb_errmsg em = {{0}};
    if (etcd_kvs_append(&kvs, cJSON_GetObjectItemCaseSensitive(resp, "kvs"), &em) != LB_OK &&
        em.text[0] == '\0')
        abort();
    kvs.revision = etcd_header_rev(resp);
    kvs.more = etcd_jbool(resp, "more");
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(resp, "responses"))
    {
        const cJSON *rr = cJSON_GetObjectItemCaseSensitive(it, "response_range");
        etcd_kvs_append(&kvs, cJSON_GetObjectItemCaseSensitive(rr, "kvs"), NULL);
    }
    for (size_t i = 0; i < kvs.n; i++) /* values are NUL-terminated */
        if (kvs.kvs[i].key == NULL || kvs.kvs[i].value[kvs.kvs[i].value_len] != '\0')
            abort();
    etcd_kvs_free(&kvs);
    (void)etcd_ji64(resp, "ID");
    (void)etcd_ji64(resp, "TTL");
    (void)etcd_ji64(resp, "deleted");
    (void)etcd_jbool(resp, "succeeded");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(resp, "token"); /* auth/authenticate */
    if (cJSON_IsString(tok) && tok->valuestring == NULL)
        abort();
    (void)etcd_ji64(cJSON_GetObjectItemCaseSensitive(resp, "result"), "TTL");
}

static void fuzz_unary(const uint8_t *data, size_t size)
{
    static const long codes[] = {200, 200, 200, 400, 401, 403, 404, 429, 500, 503};
    long http = codes[(size > 0 ? data[0] : 0) % (sizeof codes / sizeof codes[0])];
    if (size > 0) {
        data++;
        size--;
    }
    char *body = lb_xcalloc(size + 1, 1); /* etcd_buf keeps answers NUL-terminated */
    memcpy(body, data, size);
    cJSON *resp = NULL;
    lb_errmsg em = {{0}};
    int code = -1;
    lb_err rc = etcd_parse_answer(body, size, http, "http://fuzz/v3/kv/range", &resp, &code, &em);
    if (rc == LB_OK && code == 0)
        read_answer(resp);
    else if (rc == LB_OK)
        abort(); /* success carries no error code */
    else if (code == 16 && rc != LB_EAUTH)
        abort(); /* a rejected token must read as an auth error (it is renewed) */
    else if (resp != NULL || em.text[0] == '\0')
        abort();
    cJSON_Delete(resp);
    free(body);
}

typedef struct watch_check {
    int64_t delivered; /* highest revision handed out so far */
} watch_check;

static void on_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    watch_check *ck = arg;
    for (size_t i = 0; i < n; i++)
        if (evs[i].kv.mod_revision <= ck->delivered || evs[i].kv.mod_revision > revision ||
            evs[i].kv.key == NULL)
            abort();
    ck->delivered = revision;
}

static void fuzz_watch(const uint8_t *data, size_t size)
{
    size_t chunk = 1 + (size > 0 ? data[0] : 0);
    if (size > 0) {
        data++;
        size--;
    }
    watch_check ck = {0};
    etcd_watch w = {0};
    w.prefix = "/lb/";
    w.cb.on_events = on_events;
    w.cb.arg = &ck;
    w.connected = -1;
    w.line.max = 4096;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (!etcd_watch_feed(&w, (const char *)data + off, n))
            break;
        off += n;
    }
    etcd_watch_flush(&w);
    if (w.end != WATCH_END_NONE && w.end_msg[0] == '\0')
        abort();
    if (w.rev < ck.delivered)
        abort(); /* the resume point never goes back */
    etcd_buf_free(&w.line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_unary(data + 1, size - 1);
    else
        fuzz_watch(data + 1, size - 1);
    return 0;
}
