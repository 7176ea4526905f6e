/* lbctl status, slaves, groups, sessions: read views of the cluster from etcd. */
#include "ctl_args.h"
#include "ctl_ops.h"

#include "common/util.h"
#include "lb/version.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define LBCTL_VERSION lb_version()

/* Parses a listing's flags (only -o, handled globally, and the ones given). */
static int no_args(int argc, char **argv)
{
    return ctl_parse_flags(argv[0], argc, argv, NULL, 0, NULL, 0, NULL) != 0 ? -1 : 0;
}

static void count_status(const ctl_view *v, int *up, int *drain, int *dis, int *down)
{
    *up = *drain = *dis = *down = 0;
    for (size_t i = 0; i < v->n_servers; i++) {
        const char *s = v->servers[i].status;
        *(strcmp(s, "UP") == 0         ? up
          : strcmp(s, "DRAINING") == 0 ? drain
          : strcmp(s, "DISABLED") == 0 ? dis
                                       : down) += 1;
    }
}

/* etcd's size against its quota and its alarms (maintenance/status, alarm). */
typedef struct etcd_upkeep {
    etcd_status_info st;
    bool have_st;
    uint64_t quota;
    char alarms[128];
    bool nospace;
} etcd_upkeep;

#define QUOTA_WARN 0.8

static double quota_share(const etcd_upkeep *u)
{
    return u->quota > 0 ? (double)u->st.db_size / (double)u->quota : 0;
}

static void status_json(const ctl_view *v, const etcd_cluster_info *ci, bool etcd_ok,
                        const char *etcd, const etcd_upkeep *u)
{
    int up, drain, dis, down;
    count_status(v, &up, &drain, &dis, &down);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", LBCTL_VERSION);
    cJSON_AddStringToObject(j, "health",
                            !etcd_ok               ? "etcd-unreachable"
                            : u->nospace           ? "etcd-nospace"
                            : v->leader[0] == '\0' ? "no-leader"
                            : up == 0              ? "no-server-up"
                                                   : "ok");
    cJSON_AddStringToObject(j, "leader", v->leader);
    cJSON *ms = cJSON_AddArrayToObject(j, "masters");
    for (size_t i = 0; i < v->n_masters; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", v->masters[i]->id);
        cJSON_AddStringToObject(m, "rpc", v->masters[i]->rpc_endpoint);
        cJSON_AddBoolToObject(m, "leader", strcmp(v->masters[i]->id, v->leader) == 0);
        cJSON_AddItemToArray(ms, m);
    }
    cJSON_AddNumberToObject(j, "slaves", (double)v->n_slaves);
    cJSON *s = cJSON_AddObjectToObject(j, "servers");
    cJSON_AddNumberToObject(s, "total", (double)v->n_servers);
    cJSON_AddNumberToObject(s, "up", up);
    cJSON_AddNumberToObject(s, "draining", drain);
    cJSON_AddNumberToObject(s, "disabled", dis);
    cJSON_AddNumberToObject(s, "down", down);
    cJSON_AddNumberToObject(j, "sessions", (double)v->n_sessions);
    cJSON *e = cJSON_AddObjectToObject(j, "etcd");
    cJSON_AddStringToObject(e, "endpoints", etcd);
    cJSON_AddBoolToObject(e, "healthy", etcd_ok);
    cJSON_AddStringToObject(e, "version", ci->version);
    cJSON *mem = cJSON_AddArrayToObject(e, "members");
    for (size_t i = 0; i < ci->n_members; i++)
        cJSON_AddItemToArray(mem, cJSON_CreateString(ci->members[i]));
    if (u->have_st) {
        cJSON_AddNumberToObject(e, "db_size", (double)u->st.db_size);
        cJSON_AddNumberToObject(e, "db_size_in_use", (double)u->st.db_size_in_use);
        cJSON_AddNumberToObject(e, "revision", (double)u->st.revision);
    }
    cJSON_AddNumberToObject(e, "quota", (double)u->quota);
    cJSON_AddNumberToObject(e, "quota_used", quota_share(u));
    cJSON_AddBoolToObject(e, "quota_warning", quota_share(u) > QUOTA_WARN);
    cJSON_AddStringToObject(e, "alarms", u->alarms);
    ctl_print_json(j);
}

static void print_size(const char *label, double bytes)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (bytes >= 1024 && k < 4) {
        bytes /= 1024;
        k++;
    }
    printf("%s%.1f %s", label, bytes, unit[k]);
}

static void status_etcd_table(const etcd_upkeep *u)
{
    if (u->have_st) {
        print_size("etcd db:   ", (double)u->st.db_size);
        print_size(" of ", (double)u->quota);
        printf(" quota (%.1f%%), revision %lld\n", 100.0 * quota_share(u),
               (long long)u->st.revision);
    }
    if (quota_share(u) > QUOTA_WARN)
        printf("WARNING:   etcd db is over %.0f%% of its quota: compact and defragment etcd "
               "(etcdctl defrag) or raise --quota-backend-bytes\n",
               100 * QUOTA_WARN);
    if (u->alarms[0] != '\0')
        printf("alarms:    %s%s\n", u->alarms,
               u->nospace ? " (etcd refuses writes: compact, defragment, etcdctl alarm disarm)"
                          : "");
}

static void status_table(const ctl_view *v, const etcd_cluster_info *ci, const char *etcd,
                         const etcd_upkeep *u)
{
    int up, drain, dis, down;
    count_status(v, &up, &drain, &dis, &down);
    printf("leader:    %s\n", v->leader[0] ? v->leader : "(none)");
    printf("masters:   %zu:", v->n_masters);
    for (size_t i = 0; i < v->n_masters; i++)
        printf(" %s (%s)%s", v->masters[i]->id, v->masters[i]->rpc_endpoint,
               strcmp(v->masters[i]->id, v->leader) == 0 ? "*" : "");
    printf("\nslaves:    %zu\n", v->n_slaves);
    printf("servers:   %zu: %d up, %d draining, %d disabled, %d down\n", v->n_servers, up, drain,
           dis, down);
    printf("sessions:  %zu\n", v->n_sessions);
    printf("etcd:      %s, version %s, %zu member(s):", etcd, ci->version, ci->n_members);
    for (size_t i = 0; i < ci->n_members; i++)
        printf(" %s", ci->members[i]);
    printf("\n");
    status_etcd_table(u);
    printf("health:    %s\nversion:   lbctl %s\n",
           u->nospace             ? "etcd NOSPACE alarm"
           : v->leader[0] == '\0' ? "no leader"
           : up == 0              ? "no server up"
                                  : "ok",
           LBCTL_VERSION);
}

/* --quota SIZE (etcd's --quota-backend-bytes; default LBCP_ETCD_QUOTA or 2 GiB). */
static int status_quota(int argc, char **argv, uint64_t *quota)
{
    const char *q = NULL;
    const ctl_flag flags[] = {{"--quota", &q, NULL}};
    if (ctl_parse_flags("status", argc, argv, flags, 1, NULL, 0, NULL) != 0)
        return -1;
    if (q == NULL)
        q = getenv("LBCP_ETCD_QUOTA");
    *quota = (uint64_t)2 << 30;
    if (q != NULL && (!lb_parse_size(q, quota) || *quota == 0)) {
        ctl_usage_error("status", "--quota: expected a size like 2GiB, got '%s'", q);
        return -1;
    }
    return 0;
}

int cmd_status(const ctl_opts *o, int argc, char **argv)
{
    etcd_upkeep u = {0};
    if (status_quota(argc, argv, &u.quota) != 0)
        return EXIT_USAGE;
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return EXIT_FAIL;
    ctl_view v;
    etcd_cluster_info ci = {0};
    lb_errmsg em = {{0}};
    int rc = EXIT_FAIL;
    bool etcd_ok = etcd_cluster(c, &ci, &em) == LB_OK;
    if (etcd_ok) {
        u.have_st = etcd_status(c, &u.st, &em) == LB_OK;
        etcd_alarms(c, u.alarms, sizeof u.alarms, &u.nospace, &em);
    }
    if (!etcd_ok)
        fprintf(stderr, "lbctl: etcd: %s\n", em.text);
    else if (ctl_view_load_live(c, o, &v) == 0) {
        if (o->out == OUT_JSON)
            status_json(&v, &ci, etcd_ok, o->etcd, &u);
        else
            status_table(&v, &ci, o->etcd, &u);
        ctl_view_free(&v);
        rc = EXIT_OK;
    }
    etcd_cluster_free(&ci);
    etcd_close(&c);
    return rc;
}

/* Loads the view for a listing; NULL client on failure (message printed). */
static etcd_client *listing_open(const ctl_opts *o, ctl_view *v)
{
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return NULL;
    if (ctl_view_load(c, o, v) != 0)
        etcd_close(&c);
    return c;
}

int cmd_slaves(const ctl_opts *o, int argc, char **argv)
{
    (void)argv;
    if (no_args(argc, argv) != 0)
        return EXIT_USAGE;
    ctl_view v;
    etcd_client *c = listing_open(o, &v);
    if (c == NULL)
        return EXIT_FAIL;
    cJSON *arr = cJSON_CreateArray();
    if (o->out != OUT_JSON)
        printf("%-16s %-10s %-10s %-8s %-26s%s\n", "ID", "ZONE", "REGION", "LIMIT", "ENDPOINT",
               o->out == OUT_WIDE ? " RELAY                  APPS" : "");
    for (size_t i = 0; i < v.n_slaves; i++) {
        const Lb__SlaveInfo *s = v.slaves[i];
        if (o->out != OUT_JSON) {
            printf("%-16s %-10s %-10s %-8u %-26s", s->id, s->zone, s->region, s->limit,
                   s->endpoint);
            if (o->out == OUT_WIDE) {
                /* the apps it fronts: "*" when all */
                printf(" %-22s ", s->relay_endpoint[0] ? s->relay_endpoint : "-");
                for (size_t k = 0; k < s->n_apps; k++)
                    printf("%s%s", k ? "," : "", s->apps[k]);
                printf("%s", s->n_apps ? "" : "*");
            }
            printf("\n");
            continue;
        }
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", s->id);
        cJSON_AddStringToObject(j, "zone", s->zone);
        cJSON_AddStringToObject(j, "region", s->region);
        cJSON_AddStringToObject(j, "endpoint", s->endpoint);
        cJSON_AddStringToObject(j, "relay_endpoint", s->relay_endpoint);
        cJSON_AddNumberToObject(j, "limit", s->limit);
        cJSON *apps = cJSON_AddArrayToObject(j, "apps"); /* empty: all */
        for (size_t k = 0; k < s->n_apps; k++)
            cJSON_AddItemToArray(apps, cJSON_CreateString(s->apps[k]));
        cJSON_AddItemToArray(arr, j);
    }
    if (o->out == OUT_JSON)
        ctl_print_json(arr);
    else
        cJSON_Delete(arr);
    ctl_view_free(&v);
    etcd_close(&c);
    return EXIT_OK;
}

/* The rank of group name: groups/<name>, else the advertised rank of a member. */
static int group_rank(const ctl_view *v, const char *name, bool *explicit_rank)
{
    *explicit_rank = false;
    for (size_t i = 0; i < v->n_groups; i++)
        if (strcmp(v->groups[i]->name, name) == 0) {
            *explicit_rank = true;
            return v->groups[i]->rank;
        }
    for (size_t i = 0; i < v->n_servers; i++)
        if (strcmp(v->servers[i].group, name) == 0)
            return v->servers[i].info->group_rank;
    return 0;
}

static void add_name(const char ***names, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*names)[i], name) == 0)
            return;
    *names = realloc(*names, (*n + 1) * sizeof **names);
    (*names)[(*n)++] = name;
}

int cmd_groups(const ctl_opts *o, int argc, char **argv)
{
    (void)argv;
    if (no_args(argc, argv) != 0)
        return EXIT_USAGE;
    ctl_view v;
    etcd_client *c = listing_open(o, &v);
    if (c == NULL)
        return EXIT_FAIL;
    const char **names = NULL;
    size_t n = 0;
    for (size_t i = 0; i < v.n_groups; i++)
        add_name(&names, &n, v.groups[i]->name);
    for (size_t i = 0; i < v.n_servers; i++)
        add_name(&names, &n, v.servers[i].group);
    cJSON *arr = cJSON_CreateArray();
    if (o->out != OUT_JSON)
        printf("%-16s %-6s %-8s %-8s %s\n", "GROUP", "RANK", "SOURCE", "SERVERS",
               o->out == OUT_WIDE ? "MEMBERS" : "");
    for (size_t g = 0; g < n; g++) {
        bool ex;
        int rank = group_rank(&v, names[g], &ex);
        cJSON *j = cJSON_CreateObject(), *mem = cJSON_AddArrayToObject(j, "servers");
        char members[512] = "";
        for (size_t i = 0; i < v.n_servers; i++)
            if (strcmp(v.servers[i].group, names[g]) == 0) {
                cJSON_AddItemToArray(mem, cJSON_CreateString(v.servers[i].info->id));
                size_t used = strlen(members);
                snprintf(members + used, sizeof members - used, "%s%s", used ? "," : "",
                         v.servers[i].info->id);
            }
        if (o->out != OUT_JSON)
            printf("%-16s %-6d %-8s %-8d %s\n", names[g], rank, ex ? "etcd" : "agent",
                   cJSON_GetArraySize(mem), o->out == OUT_WIDE ? members : "");
        cJSON_AddStringToObject(j, "name", names[g]);
        cJSON_AddNumberToObject(j, "rank", rank);
        cJSON_AddStringToObject(j, "source", ex ? "etcd" : "agent");
        cJSON_AddItemToArray(arr, j);
    }
    if (o->out == OUT_JSON)
        ctl_print_json(arr);
    else
        cJSON_Delete(arr);
    free(names);
    ctl_view_free(&v);
    etcd_close(&c);
    return EXIT_OK;
}

static cJSON *session_json(const Lb__Session *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "session", s->session_id);
    cJSON_AddStringToObject(j, "client", s->client_id);
    cJSON_AddStringToObject(j, "app", s->app);
    cJSON_AddStringToObject(j, "server", s->server_id);
    cJSON_AddStringToObject(j, "slave", s->slave_id);
    cJSON_AddNumberToObject(j, "pid", s->process ? s->process->pid : 0);
    cJSON_AddNumberToObject(j, "port", s->process ? s->process->port : 0);
    cJSON_AddNumberToObject(j, "created_ms", (double)s->created_ms);
    cJSON_AddNumberToObject(j, "expires_ms", (double)s->expires_ms);
    return j;
}

int cmd_sessions(const ctl_opts *o, int argc, char **argv)
{
    const char *server = NULL;
    const ctl_flag flags[] = {{"--server", &server, NULL}};
    if (ctl_parse_flags("sessions", argc, argv, flags, 1, NULL, 0, NULL) != 0)
        return EXIT_USAGE;
    ctl_view v;
    etcd_client *c = listing_open(o, &v);
    if (c == NULL)
        return EXIT_FAIL;
    cJSON *arr = cJSON_CreateArray();
    if (o->out != OUT_JSON)
        printf("%-34s %-14s %-8s %-14s %-8s %s\n", "SESSION", "CLIENT", "APP", "SERVER", "PID",
               o->out == OUT_WIDE ? "SLAVE  PORT  EXPIRES_MS" : "");
    for (size_t i = 0; i < v.n_sessions; i++) {
        const Lb__Session *s = v.sessions[i];
        if (server != NULL && strcmp(s->server_id, server) != 0)
            continue;
        if (o->out == OUT_JSON) {
            cJSON_AddItemToArray(arr, session_json(s));
            continue;
        }
        printf("%-34s %-14s %-8s %-14s %-8d", s->session_id, s->client_id, s->app, s->server_id,
               s->process ? s->process->pid : 0);
        if (o->out == OUT_WIDE)
            printf(" %s  %u  %lld", s->slave_id, s->process ? s->process->port : 0,
                   (long long)s->expires_ms);
        printf("\n");
    }
    if (o->out == OUT_JSON)
        ctl_print_json(arr);
    else
        cJSON_Delete(arr);
    ctl_view_free(&v);
    etcd_close(&c);
    return EXIT_OK;
}
