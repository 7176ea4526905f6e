/* lbctl servers: the processing servers as etcd has them, with the leader's
 * live load (load is not stored in etcd) and its view of their health (DOWN,
 * EJECTED with why and the time left). */
#include "ctl_live.h"
#include "ctl_args.h"
#include "lbctl.h"

#include "common/hmap.h"
#include "etcd/etcd.h"
#include "lb.pb-c.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct server_row {
    Lb__ServerInfo *info;
    const Lb__ServerLive *live; /* NULL: the leader did not say */
    const Lb__ServerLoad *load;
    Lb__Override *ov;
    bool have_live; /* a master answered */
};

static void free_override(void *p)
{
    lb__override__free_unpacked(p, NULL);
}

static const char *last_part(const char *key)
{
    const char *s = strrchr(key, '/');
    return s != NULL ? s + 1 : key;
}

static int load_prefix(etcd_client *c, const ctl_opts *o, const char *kind, etcd_kvs *out)
{
    char prefix[512];
    lb_errmsg em = {{0}};
    snprintf(prefix, sizeof prefix, "%s%s/", o->prefix, kind);
    if (etcd_range_prefix(c, prefix, out, &em) != LB_OK) {
        fprintf(stderr, "lbctl: reading %s from etcd: %s\n", prefix, em.text);
        return -1;
    }
    return 0;
}

/* The leader's DOWN and EJECTED come first: an operator's drain does not hide
 * a dead server. */
static const char *status_of(const struct server_row *r)
{
    if (r->live != NULL &&
        (strcmp(r->live->status, "DOWN") == 0 || strcmp(r->live->status, "EJECTED") == 0))
        return r->live->status;
    if (r->ov != NULL && r->ov->disable)
        return "DISABLED";
    if (r->ov != NULL && r->ov->drain)
        return "DRAINING";
    if (!r->have_live)
        return "UNKNOWN";
    return r->live != NULL && strcmp(r->live->status, "UP") == 0 ? "UP" : "DOWN";
}

/* Why the leader has the server DOWN or EJECTED ("" otherwise). */
static const char *detail_of(const struct server_row *r)
{
    return r->live != NULL && r->live->detail != NULL ? r->live->detail : "";
}

static uint32_t sessions_of(const struct server_row *r)
{
    return r->load != NULL ? r->load->sessions + r->live->pending : 0;
}

static void apps_string(const Lb__ServerInfo *in, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < in->n_apps; i++) {
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i ? "," : "", in->apps[i]);
    }
}

static void print_rows(const ctl_opts *o, struct server_row *rows, size_t n)
{
    if (o->out == OUT_JSON) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n; i++) {
            const Lb__ServerInfo *in = rows[i].info;
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "id", in->id);
            cJSON_AddStringToObject(s, "zone", in->zone);
            cJSON_AddStringToObject(s, "region", in->region);
            cJSON_AddStringToObject(s, "group",
                                    rows[i].ov && rows[i].ov->group && rows[i].ov->group[0]
                                        ? rows[i].ov->group
                                        : in->group);
            cJSON_AddStringToObject(s, "status", status_of(&rows[i]));
            cJSON_AddNumberToObject(s, "sessions", sessions_of(&rows[i]));
            cJSON_AddStringToObject(s, "detail", detail_of(&rows[i]));
            cJSON_AddNumberToObject(s, "capacity", in->capacity);
            cJSON_AddStringToObject(s, "host", in->host);
            cJSON_AddStringToObject(s, "agent", in->agent_endpoint);
            cJSON_AddStringToObject(s, "arch", in->resources ? in->resources->arch : "");
            cJSON_AddStringToObject(s, "os", in->resources ? in->resources->os : "");
            cJSON *via = cJSON_AddArrayToObject(s, "reachable_via");
            for (size_t k = 0; k < in->n_reachable_via; k++)
                cJSON_AddItemToArray(via, cJSON_CreateString(in->reachable_via[k]));
            cJSON *apps = cJSON_AddArrayToObject(s, "apps");
            for (size_t k = 0; k < in->n_apps; k++)
                cJSON_AddItemToArray(apps, cJSON_CreateString(in->apps[k]));
            if (rows[i].load != NULL) {
                cJSON *ready = cJSON_AddObjectToObject(s, "ready");
                for (size_t k = 0; k < rows[i].load->n_apps; k++)
                    cJSON_AddNumberToObject(ready, rows[i].load->apps[k]->app,
                                            rows[i].load->apps[k]->ready);
                cJSON_AddNumberToObject(s, "cpu_load", rows[i].load->cpu_load);
                cJSON_AddNumberToObject(s, "mem_free", (double)rows[i].load->mem_free);
            }
            cJSON_AddItemToArray(arr, s);
        }
        ctl_print_json(arr);
        return;
    }
    bool wide = o->out == OUT_WIDE;
    if (wide)
        printf("%-16s %-10s %-10s %-10s %-9s %-9s %-8s %-6s %-10s %-12s %-12s %s\n", "ID", "ZONE",
               "REGION", "GROUP", "STATUS", "SESSIONS", "CAPACITY", "CPU", "MEM_FREE", "APPS",
               "READY", "AGENT");
    else
        printf("%-16s %-10s %-10s %-9s %-9s %-8s %s\n", "ID", "ZONE", "GROUP", "STATUS", "SESSIONS",
               "CAPACITY", "APPS");
    for (size_t i = 0; i < n; i++) {
        const Lb__ServerInfo *in = rows[i].info;
        const Lb__ServerLoad *l = rows[i].load;
        char apps[256], sessions[16], cpu[16] = "-", mem[16] = "-";
        apps_string(in, apps, sizeof apps);
        snprintf(sessions, sizeof sessions, l != NULL ? "%u" : "-", sessions_of(&rows[i]));
        if (!wide) {
            printf("%-16s %-10s %-10s %-9s %-9s %-8u %s%s%s%s\n", in->id, in->zone, in->group,
                   status_of(&rows[i]), sessions, in->capacity, apps,
                   detail_of(&rows[i])[0] ? " (" : "", detail_of(&rows[i]),
                   detail_of(&rows[i])[0] ? ")" : "");
            continue;
        }
        char ready[256] = "-";
        size_t rl = 0;
        for (size_t k = 0; l != NULL && k < l->n_apps && rl + 1 < sizeof ready; k++) {
            if (l->apps[k]->ready == 0)
                continue;
            int w = snprintf(ready + rl, sizeof ready - rl, "%s%s:%u", rl > 0 ? "," : "",
                             l->apps[k]->app, l->apps[k]->ready);
            rl += w > 0 ? (size_t)w : 0;
        }
        if (l != NULL) {
            snprintf(cpu, sizeof cpu, "%.2f", l->cpu_load);
            snprintf(mem, sizeof mem, "%.1fG", (double)l->mem_free / (1024.0 * 1024 * 1024));
        }
        printf("%-16s %-10s %-10s %-10s %-9s %-9s %-8u %-6s %-10s %-12s %-12s %s\n", in->id,
               in->zone, in->region, in->group, status_of(&rows[i]), sessions, in->capacity, cpu,
               mem, apps, ready, in->agent_endpoint);
    }
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct server_row *)a)->info->id,
                  ((const struct server_row *)b)->info->id);
}

int cmd_servers(const ctl_opts *o, int argc, char **argv)
{
    if (ctl_parse_flags("servers", argc, argv, NULL, 0, NULL, 0, NULL) != 0)
        return EXIT_USAGE;
    etcd_client *c = NULL;
    lb_errmsg em = {{0}};
    if (etcd_open_secure(o->etcd, o->timeout_ms, &o->etcd_sec, &c, &em) != LB_OK) {
        fprintf(stderr, "lbctl: etcd: %s\n", em.text);
        return EXIT_FAIL;
    }
    etcd_kvs servers = {0}, ovs = {0};
    ctl_live live;
    int rc = EXIT_FAIL;
    if (load_prefix(c, o, "servers", &servers) != 0 || load_prefix(c, o, "overrides", &ovs) != 0)
        goto out;
    bool have_live = ctl_live_load(c, o, &live) == 0;
    if (!have_live)
        fprintf(stderr, "lbctl: no live load from the leader (%s): status and load unknown\n",
                live.why);
    hmap *ov_by = hmap_new();
    for (size_t i = 0; i < ovs.n; i++) {
        Lb__Override *ov = lb__override__unpack(NULL, ovs.kvs[i].value_len, ovs.kvs[i].value);
        if (ov != NULL)
            hmap_put(ov_by, last_part(ovs.kvs[i].key), ov);
    }
    struct server_row *rows = calloc(servers.n + 1, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; i < servers.n; i++) {
        Lb__ServerInfo *in =
            lb__server_info__unpack(NULL, servers.kvs[i].value_len, servers.kvs[i].value);
        if (in == NULL) {
            fprintf(stderr, "lbctl: undecodable record at %s\n", servers.kvs[i].key);
            continue;
        }
        rows[n].info = in;
        rows[n].have_live = have_live;
        rows[n].live = ctl_live_get(&live, in->id);
        rows[n].load = rows[n].live != NULL ? rows[n].live->load : NULL;
        rows[n].ov = hmap_get(ov_by, in->id);
        n++;
    }
    qsort(rows, n, sizeof *rows, by_id);
    print_rows(o, rows, n);
    for (size_t i = 0; i < n; i++)
        lb__server_info__free_unpacked(rows[i].info, NULL);
    free(rows);
    hmap_free(&ov_by, free_override);
    ctl_live_free(&live);
    rc = EXIT_OK;
out:
    etcd_kvs_free(&servers);
    etcd_kvs_free(&ovs);
    etcd_close(&c);
    return rc;
}
