/* Transactions: compare, then the success or the failure ops. */
#include "etcd/internal.h"

#include "common/errmsg.h"

#include <string.h>

static const char *const target_names[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
static const char *const target_fields[] = {"version", "create_revision", "mod_revision", "value",
                                            "lease"};
static const char *const result_names[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

static lb_err add_cmps(cJSON *req, const etcd_cmp *cmps, size_t n, lb_errmsg *em)
{
    cJSON *arr = etcd_jarr(req, "compare");
    for (size_t i = 0; i < n; i++) {
        const etcd_cmp *k = &cmps[i];
        if (k->key == NULL || (unsigned)k->target > ETCD_CMP_LEASE ||
            (unsigned)k->result > ETCD_CMP_NOT_EQUAL)
            return lb_fail(em, LB_EINVAL, "etcd txn: compare %zu is invalid", i);
        cJSON *o = etcd_jchild(arr, NULL);
        etcd_jadd_str(o, "target", target_names[k->target]);
        etcd_jadd_str(o, "result", result_names[k->result]);
        etcd_jadd_b64(o, "key", k->key, strlen(k->key));
        if (k->target == ETCD_CMP_VALUE)
            etcd_jadd_b64(o, "value", k->value != NULL ? k->value : "",
                          k->value != NULL ? k->value_len : 0);
        else
            etcd_jadd_i64(o, target_fields[k->target], k->number);
    }
    return LB_OK;
}

static lb_err add_ops(cJSON *req, const char *name, const etcd_op *ops, size_t n, lb_errmsg *em)
{
    cJSON *arr = etcd_jarr(req, name);
    for (size_t i = 0; i < n; i++) {
        const etcd_op *op = &ops[i];
        if (op->key == NULL)
            return lb_fail(em, LB_EINVAL, "etcd txn: %s op %zu has no key", name, i);
        cJSON *o = etcd_jchild(arr, NULL);
        switch (op->type) {
        case ETCD_OP_PUT: {
            cJSON *p = etcd_jchild(o, "request_put");
            etcd_jadd_b64(p, "key", op->key, strlen(op->key));
            etcd_jadd_b64(p, "value", op->value != NULL ? op->value : "",
                          op->value != NULL ? op->value_len : 0);
            if (op->lease != 0)
                etcd_jadd_i64(p, "lease", op->lease);
            break;
        }
        case ETCD_OP_DELETE:
            etcd_jadd_range(etcd_jchild(o, "request_delete_range"), op->key, op->prefix);
            break;
        case ETCD_OP_GET:
            etcd_jadd_range(etcd_jchild(o, "request_range"), op->key, op->prefix);
            break;
        default:
            return lb_fail(em, LB_EINVAL, "etcd txn: %s op %zu has an unknown type", name, i);
        }
    }
    return LB_OK;
}

lb_err etcd_txn(etcd_client *c, const etcd_cmp *cmps, size_t n_cmps, const etcd_op *success,
                size_t n_success, const etcd_op *failure, size_t n_failure, bool *succeeded,
                int64_t *revision, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    cJSON *resp = NULL;
    cJSON *req = etcd_jobj();
    if (n_cmps > ETCD_MAX_TXN_OPS || n_success > ETCD_MAX_TXN_OPS || n_failure > ETCD_MAX_TXN_OPS) {
        rc = lb_fail(em, LB_EINVAL, "etcd txn: over %d ops (%zu compares, %zu, %zu ops)",
                     ETCD_MAX_TXN_OPS, n_cmps, n_success, n_failure);
        goto out;
    }
    rc = add_cmps(req, cmps, n_cmps, em);
    if (rc == LB_OK)
        rc = add_ops(req, "success", success, n_success, em);
    if (rc == LB_OK)
        rc = add_ops(req, "failure", failure, n_failure, em);
    if (rc != LB_OK)
        goto out;
    rc = etcd_call(c, "txn", "/v3/kv/txn", req, ETCD_MAX_RANGE_BYTES, &resp, em);
    if (rc != LB_OK)
        goto out;
    if (succeeded != NULL)
        *succeeded = etcd_jbool(resp, "succeeded"); /* absent when the compare failed */
    if (revision != NULL)
        *revision = etcd_header_rev(resp);
out:
    cJSON_Delete(resp);
    cJSON_Delete(req);
    return rc;
}
