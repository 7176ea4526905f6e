/*
 * etcd upkeep: the store's size and revision (maintenance/status), history
 * compaction (kv.c: etcd_compact) and alarms (maintenance/alarm). The leader
 * master compacts; every daemon may read status and alarms.
 */
#include "etcd/internal.h"

#include "common/errmsg.h"

#include <stdio.h>
#include <string.h>

lb_err etcd_status(etcd_client *c, etcd_status_info *out, lb_errmsg *em)
{
    memset(out, 0, sizeof *out);
    cJSON *req = etcd_jobj(), *ans = NULL;
    lb_err rc = etcd_call(c, "status", "/v3/maintenance/status", req, 1 << 16, &ans, em);
    cJSON_Delete(req);
    if (rc != LB_OK)
        return rc;
    out->db_size = etcd_ji64(ans, "dbSize");
    out->db_size_in_use = etcd_ji64(ans, "dbSizeInUse");
    out->revision = etcd_header_rev(ans);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ans, "version");
    snprintf(out->version, sizeof out->version, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(ans);
    return LB_OK;
}

lb_err etcd_alarms(etcd_client *c, char *names, size_t cap, bool *nospace, lb_errmsg *em)
{
    *nospace = false;
    if (cap > 0)
        names[0] = '\0';
    cJSON *req = etcd_jobj(), *ans = NULL;
    etcd_jadd_str(req, "action", "GET");
    lb_err rc = etcd_call(c, "alarm", "/v3/maintenance/alarm", req, 1 << 16, &ans, em);
    cJSON_Delete(req);
    if (rc != LB_OK)
        return rc;
    const cJSON *a;
    size_t used = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(ans, "alarms"))
    {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(a, "alarm");
        const char *k = cJSON_IsString(kind) ? kind->valuestring : "NONE";
        if (strcmp(k, "NONE") == 0)
            continue;
        if (strcmp(k, "NOSPACE") == 0)
            *nospace = true;
        if (used < cap) {
            int n = snprintf(names + used, cap - used, "%s%s", used ? "," : "", k);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    cJSON_Delete(ans);
    return LB_OK;
}
