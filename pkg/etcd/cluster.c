/* The etcd cluster itself, for operators: members and the answering server's version. */
#include "etcd/internal.h"

#include "common/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void etcd_cluster_free(etcd_cluster_info *ci)
{
    for (size_t i = 0; i < ci->n_members; i++)
        free(ci->members[i]);
    free(ci->members);
    memset(ci, 0, sizeof *ci);
}

static lb_err cluster_members(etcd_client *c, etcd_cluster_info *out, lb_errmsg *em)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    lb_err rc = etcd_call(c, "member_list", "/v3/cluster/member/list", req, 1 << 20, &ans, em);
    cJSON_Delete(req);
    if (rc != LB_OK)
        return rc;
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(ans, "members");
    size_t n = (size_t)cJSON_GetArraySize(ms);
    out->members = calloc(n + 1, sizeof *out->members);
    const cJSON *m;
    cJSON_ArrayForEach(m, ms)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *urls = cJSON_GetObjectItemCaseSensitive(m, "clientURLs");
        const cJSON *u0 = cJSON_GetArrayItem(urls, 0);
        char buf[512];
        snprintf(buf, sizeof buf, "%s %s", cJSON_IsString(name) ? name->valuestring : "?",
                 cJSON_IsString(u0) ? u0->valuestring : "");
        out->members[out->n_members++] = strdup(buf);
    }
    cJSON_Delete(ans);
    return LB_OK;
}

lb_err etcd_cluster(etcd_client *c, etcd_cluster_info *out, lb_errmsg *em)
{
    memset(out, 0, sizeof *out);
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    lb_err rc = etcd_call(c, "status", "/v3/maintenance/status", req, 1 << 16, &ans, em);
    cJSON_Delete(req);
    if (rc != LB_OK)
        return rc;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ans, "version");
    snprintf(out->version, sizeof out->version, "%s", cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(ans);
    rc = cluster_members(c, out, em);
    if (rc != LB_OK)
        etcd_cluster_free(out);
    return rc;
}
