/* Put, get, range by prefix (paged), delete, compaction. */
#include "etcd/internal.h"

#include "common/errmsg.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

lb_err etcd_put(etcd_client *c, const char *key, const void *value, size_t len, int64_t lease,
                int64_t *revision, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    etcd_jadd_b64(req, "key", key, strlen(key));
    etcd_jadd_b64(req, "value", value != NULL ? value : "", value != NULL ? len : 0);
    if (lease != 0)
        etcd_jadd_i64(req, "lease", lease);
    rc = etcd_call(c, "put", "/v3/kv/put", req, ETCD_MAX_SMALL_BYTES, &resp, em);
    if (rc == LB_OK && revision != NULL)
        *revision = etcd_header_rev(resp);
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}

/* One range request; appends its kvs to out. key/end are raw bytes. */
static lb_err range_once(etcd_client *c, const void *key, size_t klen, const void *end, size_t elen,
                         int64_t rev, int64_t limit, etcd_kvs *out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    etcd_jadd_b64(req, "key", key, klen);
    if (end != NULL)
        etcd_jadd_b64(req, "range_end", end, elen);
    if (rev > 0)
        etcd_jadd_i64(req, "revision", rev);
    if (limit > 0)
        etcd_jadd_i64(req, "limit", limit);
    rc = etcd_call(c, "range", "/v3/kv/range", req, ETCD_MAX_RANGE_BYTES, &resp, em);
    if (rc != LB_OK)
        goto out;
    out->revision = etcd_header_rev(resp);
    out->more = etcd_jbool(resp, "more");
    rc = etcd_kvs_append(out, cJSON_GetObjectItemCaseSensitive(resp, "kvs"), em);
out:
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}

lb_err etcd_get(etcd_client *c, const char *key, etcd_kvs *out, lb_errmsg *em)
{
    memset(out, 0, sizeof *out);
    lb_err rc = range_once(c, key, strlen(key), NULL, 0, 0, 0, out, em);
    if (rc != LB_OK)
        etcd_kvs_free(out);
    return rc;
}

/* Every page of [prefix, range_end) at one revision (the first page's);
 * range_end NULL: every key under prefix. */
static lb_err range_pages(etcd_client *c, const char *prefix, const char *range_end, etcd_kvs *out,
                          lb_errmsg *em)
{
    lb_err rc = LB_OK;
    size_t elen = range_end != NULL ? strlen(range_end) : 0;
    unsigned char *end =
        range_end != NULL ? (unsigned char *)lb_strdup(range_end) : etcd_prefix_end(prefix, &elen);
    size_t klen = prefix[0] != '\0' ? strlen(prefix) : 1; /* "" -> "\0" */
    char *key = lb_xcalloc(klen + 1, 1);
    memcpy(key, prefix, strlen(prefix));
    int64_t limit = atomic_load(&c->page_limit);
    int64_t rev = 0;
    while (true) {
        size_t before = out->n;
        rc = range_once(c, key, klen, end, elen, rev, limit, out, em);
        if (rc == LB_ETOOBIG && limit > 1 && out->n == before) {
            limit /= 2; /* big values: smaller pages fit under the answer cap */
            continue;
        }
        if (rc != LB_OK)
            goto out;
        if (rev == 0)
            rev = out->revision;
        out->revision = rev;
        if (!out->more)
            break;
        if (out->n == before) {
            rc = lb_fail(em, LB_EPROTO, "etcd range %s: \"more\" with no keys", prefix);
            goto out;
        }
        /* next page starts just after the last key: last key + "\0" */
        free(key);
        klen = strlen(out->kvs[out->n - 1].key) + 1;
        key = lb_xcalloc(klen, 1);
        memcpy(key, out->kvs[out->n - 1].key, klen - 1);
    }
out:
    free(key);
    free(end);
    return rc;
}

lb_err etcd_range_prefix(etcd_client *c, const char *prefix, etcd_kvs *out, lb_errmsg *em)
{
    return etcd_range_between(c, prefix, NULL, out, em);
}

lb_err etcd_range_between(etcd_client *c, const char *key, const char *range_end, etcd_kvs *out,
                          lb_errmsg *em)
{
    lb_err rc = LB_OK;
    memset(out, 0, sizeof *out);
    /* a compaction between pages loses the first page's revision: start over */
    for (int attempt = 0; attempt < 3; attempt++) {
        etcd_kvs_free(out);
        rc = range_pages(c, key, range_end, out, em);
        if (rc != LB_ECOMPACTED)
            break;
    }
    if (rc != LB_OK)
        etcd_kvs_free(out);
    out->more = false;
    return rc;
}

lb_err etcd_delete(etcd_client *c, const char *key, bool prefix, int64_t *deleted, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    etcd_jadd_range(req, key, prefix);
    rc = etcd_call(c, "deleterange", "/v3/kv/deleterange", req, ETCD_MAX_SMALL_BYTES, &resp, em);
    if (rc == LB_OK && deleted != NULL)
        *deleted = etcd_ji64(resp, "deleted");
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}

lb_err etcd_compact(etcd_client *c, int64_t revision, lb_errmsg *em)
{
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    etcd_jadd_i64(req, "revision", revision);
    etcd_jadd_bool(req, "physical", true);
    lb_err rc =
        etcd_call(c, "compaction", "/v3/kv/compaction", req, ETCD_MAX_SMALL_BYTES, &resp, em);
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}
