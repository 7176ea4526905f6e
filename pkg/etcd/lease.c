/* Leases: grant, one keepalive per POST, revoke. */
#include "etcd/internal.h"

#include "common/errmsg.h"

lb_err etcd_lease_grant(etcd_client *c, int64_t ttl_s, int64_t *id, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    *id = 0;
    if (ttl_s <= 0) {
        rc =
            lb_fail(em, LB_EINVAL, "etcd lease grant: ttl %lld must be positive", (long long)ttl_s);
        goto out;
    }
    etcd_jadd_i64(req, "TTL", ttl_s);
    etcd_jadd_i64(req, "ID", 0);
    rc = etcd_call(c, "lease_grant", "/v3/lease/grant", req, ETCD_MAX_SMALL_BYTES, &resp, em);
    if (rc != LB_OK)
        goto out;
    *id = etcd_ji64(resp, "ID");
    if (*id == 0) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
        rc = lb_fail(em, LB_EETCD, "etcd lease grant: no ID in answer (%s)",
                     cJSON_IsString(e) ? e->valuestring : "no error given");
        etcd_count_error("lease_grant");
    }
out:
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}

/* The keepalive is a stream call: errors come as {"error":{"grpc_code",...}}. */
static lb_err stream_error(const cJSON *resp, int64_t id, lb_errmsg *em)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    int code = (int)etcd_ji64(e, "grpc_code");
    const char *text = cJSON_IsString(msg) ? msg->valuestring : "error";
    return lb_fail(em, etcd_map_grpc(code, text), "etcd lease keepalive %llx: %s (code %d)",
                   (unsigned long long)id, text, code);
}

lb_err etcd_lease_keepalive(etcd_client *c, int64_t id, int64_t *ttl_left, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    int64_t ttl = 0;
    etcd_jadd_i64(req, "ID", id);
    rc = etcd_call(c, "lease_keepalive", "/v3/lease/keepalive", req, ETCD_MAX_SMALL_BYTES, &resp,
                   em);
    if (rc != LB_OK)
        goto out;
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(resp, "result");
    if (!cJSON_IsObject(result)) {
        rc = stream_error(resp, id, em);
        etcd_count_error("lease_keepalive");
        goto out;
    }
    ttl = etcd_ji64(result, "TTL");
    if (ttl <= 0) { /* a dead lease answers without TTL */
        rc = lb_fail(em, LB_ENOTFOUND, "etcd lease %llx: not found (expired or revoked)",
                     (unsigned long long)id);
        etcd_count_error("lease_keepalive");
    }
out:
    if (ttl_left != NULL)
        *ttl_left = ttl;
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}

lb_err etcd_lease_revoke(etcd_client *c, int64_t id, lb_errmsg *em)
{
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    etcd_jadd_i64(req, "ID", id);
    lb_err rc =
        etcd_call(c, "lease_revoke", "/v3/lease/revoke", req, ETCD_MAX_SMALL_BYTES, &resp, em);
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}
