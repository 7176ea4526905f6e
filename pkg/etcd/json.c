/* Base64 and JSON helpers for the gateway's wire format (see etcd-gateway.md). */
#include "etcd/internal.h"

#include "common/errmsg.h"
#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *p, size_t n)
{
    const unsigned char *s = p;
    char *out = lb_xcalloc(4 * ((n + 2) / 3) + 1, 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

bool etcd_b64_decode(const char *s, unsigned char **out, size_t *n)
{
    size_t len = strlen(s);
    while (len > 0 && s[len - 1] == '=')
        len--;
    unsigned char *d = lb_xcalloc(len * 3 / 4 + 1, 1);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    bool ok = len % 4 != 1;
    for (size_t i = 0; ok && i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            ok = false;
            break;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (!ok) {
        free(d);
        d = NULL;
        o = 0;
    } else {
        d[o] = '\0';
    }
    *out = d;
    *n = o;
    return ok;
}

cJSON *etcd_jobj(void)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        abort();
    return o;
}

static void jadd(cJSON *parent, const char *name, cJSON *item)
{
    if (item == NULL || !cJSON_AddItemToObject(parent, name, item))
        abort();
}

cJSON *etcd_jarr(cJSON *parent, const char *name)
{
    cJSON *a = cJSON_CreateArray();
    jadd(parent, name, a);
    return a;
}

cJSON *etcd_jchild(cJSON *parent, const char *name)
{
    cJSON *o = etcd_jobj();
    if (cJSON_IsArray(parent)) {
        if (!cJSON_AddItemToArray(parent, o))
            abort();
    } else {
        jadd(parent, name, o);
    }
    return o;
}

void etcd_jadd_b64(cJSON *o, const char *name, const void *p, size_t n)
{
    char *s = etcd_b64_encode(p, n);
    jadd(o, name, cJSON_CreateString(s));
    free(s);
}

void etcd_jadd_i64(cJSON *o, const char *name, int64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)v);
    jadd(o, name, cJSON_CreateString(s));
}

void etcd_jadd_bool(cJSON *o, const char *name, bool v)
{
    jadd(o, name, cJSON_CreateBool(v));
}

void etcd_jadd_str(cJSON *o, const char *name, const char *v)
{
    jadd(o, name, cJSON_CreateString(v));
}

unsigned char *etcd_prefix_end(const char *prefix, size_t *n)
{
    size_t len = strlen(prefix);
    unsigned char *end = lb_xcalloc(len + 1, 1);
    memcpy(end, prefix, len);
    while (len > 0 && end[len - 1] == 0xff)
        len--;
    if (len == 0) {
        end[0] = '\0'; /* no upper bound: every key from the start */
        *n = 1;
    } else {
        end[len - 1]++;
        *n = len;
    }
    return end;
}

void etcd_jadd_range(cJSON *o, const char *key, bool prefix)
{
    if (prefix && key[0] == '\0') {
        etcd_jadd_b64(o, "key", "", 1); /* "\0": all keys */
    } else {
        etcd_jadd_b64(o, "key", key, strlen(key));
    }
    if (prefix) {
        size_t n = 0;
        unsigned char *end = etcd_prefix_end(key, &n);
        etcd_jadd_b64(o, "range_end", end, n);
        free(end);
    }
}

int64_t etcd_ji64(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(v)) {
        /* a double outside int64_t's range must not be cast (undefined
         * behaviour): a hostile or broken answer reads as 0, "absent" */
        double d = v->valuedouble;
        return isfinite(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d
                                                                                       : 0;
    }
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return 0;
    errno = 0;
    long long r = strtoll(v->valuestring, NULL, 10);
    if (errno == ERANGE) /* a uint64 id above INT64_MAX: keep its bits */
        r = (long long)strtoull(v->valuestring, NULL, 10);
    return (int64_t)r;
}

bool etcd_jbool(const cJSON *o, const char *name)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

int64_t etcd_header_rev(const cJSON *resp)
{
    return etcd_ji64(cJSON_GetObjectItemCaseSensitive(resp, "header"), "revision");
}

void etcd_kv_clear(etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof *kv);
}

/* Decodes field name of j (absent = empty) into a NUL-terminated buffer. */
static bool decode_field(const cJSON *j, const char *name, unsigned char **out, size_t *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (v == NULL) {
        *out = lb_xcalloc(1, 1);
        *n = 0;
        return true;
    }
    return cJSON_IsString(v) && etcd_b64_decode(v->valuestring, out, n);
}

lb_err etcd_kv_parse(const cJSON *j, etcd_kv *kv, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    size_t klen = 0;
    memset(kv, 0, sizeof *kv);
    if (!cJSON_IsObject(j) || !decode_field(j, "key", (unsigned char **)&kv->key, &klen) ||
        !decode_field(j, "value", &kv->value, &kv->value_len)) {
        rc = lb_fail(em, LB_EPROTO, "etcd: malformed kv in answer");
        etcd_kv_clear(kv);
        goto out;
    }
    kv->create_revision = etcd_ji64(j, "create_revision");
    kv->mod_revision = etcd_ji64(j, "mod_revision");
    kv->version = etcd_ji64(j, "version");
    kv->lease = etcd_ji64(j, "lease");
out:
    return rc;
}

lb_err etcd_kvs_append(etcd_kvs *out, const cJSON *kvs, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    if (kvs == NULL)
        goto out;
    if (!cJSON_IsArray(kvs)) {
        rc = lb_fail(em, LB_EPROTO, "etcd: \"kvs\" is not an array");
        goto out;
    }
    size_t add = (size_t)cJSON_GetArraySize(kvs);
    if (add == 0)
        goto out;
    etcd_kv *grown = realloc(out->kvs, (out->n + add) * sizeof *grown);
    if (grown == NULL)
        abort();
    out->kvs = grown;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, kvs)
    {
        rc = etcd_kv_parse(it, &out->kvs[out->n], em);
        if (rc != LB_OK)
            goto out;
        out->n++;
    }
out:
    return rc;
}

void etcd_kvs_free(etcd_kvs *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        etcd_kv_clear(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof *r);
}
