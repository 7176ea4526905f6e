/* lbctl: the cluster's records read from etcd in one pass, for the operator commands. */
#include "ctl_ops.h"
#include "ctl_live.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_etcd_open(const ctl_opts *o, etcd_client **c)
{
    lb_errmsg em = {{0}};
    if (etcd_open_secure(o->etcd, o->timeout_ms, &o->etcd_sec, c, &em) != LB_OK) {
        fprintf(stderr, "lbctl: etcd: %s\n", em.text);
        return -1;
    }
    return 0;
}

static int by_server_id(const void *a, const void *b)
{
    return strcmp(((const ctl_server *)a)->info->id, ((const ctl_server *)b)->info->id);
}

static int by_session(const void *a, const void *b)
{
    const Lb__Session *x = *(Lb__Session *const *)a, *y = *(Lb__Session *const *)b;
    int d = strcmp(x->server_id, y->server_id);
    return d != 0 ? d : strcmp(x->session_id, y->session_id);
}

ctl_server *ctl_view_server(ctl_view *v, const char *id)
{
    for (size_t i = 0; i < v->n_servers; i++)
        if (strcmp(v->servers[i].info->id, id) == 0)
            return &v->servers[i];
    return NULL;
}

/* Unpacks every value under one kind with unpack into a growing array. */
#define CTL_UNPACK_ALL(KVS, KIND, T, UNPACK, ARR, CNT)                                             \
    do {                                                                                           \
        for (size_t _i = 0; _i < (KVS)->n; _i++) {                                                 \
            const etcd_kv *_kv = &(KVS)->kvs[_i];                                                  \
            if (strncmp(_kv->key + plen, KIND "/", sizeof KIND) != 0)                              \
                continue;                                                                          \
            T *_x = UNPACK(NULL, _kv->value_len, _kv->value);                                      \
            if (_x == NULL)                                                                        \
                continue;                                                                          \
            ARR = realloc(ARR, ((CNT) + 1) * sizeof *(ARR));                                       \
            (ARR)[(CNT)++] = _x;                                                                   \
        }                                                                                          \
    } while (0)

static void view_servers(ctl_view *v, const etcd_kvs *all, size_t plen)
{
    Lb__ServerInfo **infos = NULL;
    Lb__Override **ovs = NULL;
    size_t ni = 0, no = 0;
    CTL_UNPACK_ALL(all, "servers", Lb__ServerInfo, lb__server_info__unpack, infos, ni);
    CTL_UNPACK_ALL(all, "overrides", Lb__Override, lb__override__unpack, ovs, no);
    v->servers = lb_xcalloc(ni + 1, sizeof *v->servers);
    for (size_t i = 0; i < ni; i++) {
        ctl_server *s = &v->servers[v->n_servers++];
        s->info = infos[i];
        for (size_t k = 0; k < no; k++)
            if (ovs[k] != NULL && strcmp(ovs[k]->server_id, infos[i]->id) == 0) {
                s->ov = ovs[k];
                ovs[k] = NULL;
            }
        s->group = s->ov != NULL && s->ov->group[0] ? s->ov->group : s->info->group;
        s->status = s->ov != NULL && s->ov->disable ? "DISABLED"
                    : s->ov != NULL && s->ov->drain ? "DRAINING"
                                                    : "UNKNOWN"; /* until live load says */
    }
    for (size_t k = 0; k < no; k++)
        lb__override__free_unpacked(ovs[k], NULL);
    free(infos);
    free(ovs);
    if (v->n_servers > 1)
        qsort(v->servers, v->n_servers, sizeof *v->servers, by_server_id);
}

int ctl_view_load(etcd_client *c, const ctl_opts *o, ctl_view *v)
{
    memset(v, 0, sizeof *v);
    etcd_kvs all = {0};
    lb_errmsg em = {{0}};
    if (etcd_range_prefix(c, o->prefix, &all, &em) != LB_OK) {
        fprintf(stderr, "lbctl: reading %s from etcd: %s\n", o->prefix, em.text);
        return -1;
    }
    size_t plen = strlen(o->prefix);
    view_servers(v, &all, plen);
    CTL_UNPACK_ALL(&all, "slaves", Lb__SlaveInfo, lb__slave_info__unpack, v->slaves, v->n_slaves);
    CTL_UNPACK_ALL(&all, "masters", Lb__MasterInfo, lb__master_info__unpack, v->masters,
                   v->n_masters);
    CTL_UNPACK_ALL(&all, "groups", Lb__GroupInfo, lb__group_info__unpack, v->groups, v->n_groups);
    CTL_UNPACK_ALL(&all, "sessions", Lb__Session, lb__session__unpack, v->sessions, v->n_sessions);
    for (size_t i = 0; i < all.n; i++)
        if (strcmp(all.kvs[i].key + plen, "leader") == 0)
            snprintf(v->leader, sizeof v->leader, "%.*s", (int)all.kvs[i].value_len,
                     (const char *)all.kvs[i].value);
    if (v->n_sessions > 1)
        qsort(v->sessions, v->n_sessions, sizeof *v->sessions, by_session);
    for (size_t i = 0; i < v->n_sessions; i++) {
        ctl_server *s = ctl_view_server(v, v->sessions[i]->server_id);
        if (s != NULL)
            s->sessions++;
    }
    etcd_kvs_free(&all);
    return 0;
}

int ctl_view_load_live(etcd_client *c, const ctl_opts *o, ctl_view *v)
{
    if (ctl_view_load(c, o, v) != 0)
        return -1;
    v->live = lb_xcalloc(1, sizeof *v->live);
    if (ctl_live_load(c, o, v->live) != 0) {
        fprintf(stderr, "lbctl: no live load from the leader (%s): status and load unknown\n",
                v->live->why);
        return 0;
    }
    for (size_t i = 0; i < v->n_servers; i++) {
        ctl_server *s = &v->servers[i];
        const Lb__ServerLive *l = ctl_live_get(v->live, s->info->id);
        s->load = l != NULL ? l->load : NULL;
        s->pending = l != NULL ? l->pending : 0;
        if (strcmp(s->status, "UNKNOWN") == 0) /* an override's status comes first */
            s->status = l != NULL && strcmp(l->status, "UP") == 0 ? "UP" : "DOWN";
    }
    return 0;
}

void ctl_view_free(ctl_view *v)
{
    if (v->live != NULL) {
        ctl_live_free(v->live);
        free(v->live);
    }
    for (size_t i = 0; i < v->n_servers; i++) {
        lb__server_info__free_unpacked(v->servers[i].info, NULL);
        if (v->servers[i].ov)
            lb__override__free_unpacked(v->servers[i].ov, NULL);
    }
    for (size_t i = 0; i < v->n_slaves; i++)
        lb__slave_info__free_unpacked(v->slaves[i], NULL);
    for (size_t i = 0; i < v->n_masters; i++)
        lb__master_info__free_unpacked(v->masters[i], NULL);
    for (size_t i = 0; i < v->n_groups; i++)
        lb__group_info__free_unpacked(v->groups[i], NULL);
    for (size_t i = 0; i < v->n_sessions; i++)
        lb__session__free_unpacked(v->sessions[i], NULL);
    free(v->servers);
    free(v->slaves);
    free(v->masters);
    free(v->groups);
    free(v->sessions);
    memset(v, 0, sizeof *v);
}

void ctl_etcd_failed(const char *what, const char *key, const char *text)
{
    /* etcd RBAC: the user's role lacks the key (an agent's or a slave's
     * credentials); lbctl's writes need an operator's */
    if (strstr(text, "permission denied") != NULL)
        fprintf(stderr,
                "lbctl: etcd refused the %s %s %s: %s (use operator credentials: "
                "--etcd-user/LBCP_ETCD_USER with --etcd-password-file/LBCP_ETCD_PASSWORD_FILE)\n",
                what, strcmp(what, "write") == 0 ? "to" : "of", key, text);
    else
        fprintf(stderr, "lbctl: %s %s: %s\n", strcmp(what, "write") == 0 ? "writing" : "reading",
                key, text);
}

const char *ctl_master_endpoint(const Lb__MasterInfo *mi)
{
    return mi->operator_endpoint != NULL && mi->operator_endpoint[0] != '\0' ? mi->operator_endpoint
                                                                             : mi->rpc_endpoint;
}

int ctl_master_addr(const ctl_opts *o, char *out, size_t cap)
{
    if (o->master != NULL) {
        snprintf(out, cap, "%s", o->master);
        return 0;
    }
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return -1;
    ctl_view v;
    int rc = -1;
    if (ctl_view_load(c, o, &v) == 0) {
        for (size_t i = 0; i < v.n_masters && rc != 0; i++)
            if (strcmp(v.masters[i]->id, v.leader) == 0) {
                snprintf(out, cap, "%s", ctl_master_endpoint(v.masters[i]));
                rc = 0;
            }
        if (rc != 0)
            fprintf(stderr, "lbctl: no leader master in etcd; give --master ADDR\n");
        ctl_view_free(&v);
    }
    etcd_close(&c);
    return rc;
}
