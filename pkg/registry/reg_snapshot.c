/* Building the selection snapshot from the view. */
#include "registry/reg_internal.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

void reg_snapshot_drop(reg *r)
{
    sel_snapshot_free(&r->snap);
    free(r->sel_servers);
    free(r->sel_labels);
    free(r->sel_slaves);
    free(r->by_idx);
    free(r->slave_by_idx);
    r->sel_servers = NULL;
    r->sel_labels = NULL;
    r->sel_slaves = NULL;
    r->by_idx = NULL;
    r->slave_by_idx = NULL;
    r->dirty = true;
}

static void fill_server(reg *r, reg_server *s, sel_server *out, sel_label *labels)
{
    const Lb__ServerInfo *in = s->info;
    const Lb__Override *ov = s->override;
    const char *group =
        (ov != NULL && ov->group != NULL && ov->group[0] != '\0') ? ov->group : in->group;
    const Lb__GroupInfo *g = hmap_get(r->groups, group);
    out->id = in->id;
    out->zone = in->zone;
    out->region = in->region;
    out->group = group;
    out->group_rank = g != NULL ? g->rank : in->group_rank;
    out->capacity = in->capacity;
    out->sessions = s->load != NULL ? s->load->sessions : 0;
    out->pending = s->pending;
    out->up = !s->stale && !s->conn_down;
    out->ejected = s->ejected_until_ms != 0;
    out->drained = ov != NULL && ov->drain;
    out->disabled = ov != NULL && ov->disable;
    out->apps = (const char *const *)in->apps;
    out->n_apps = in->n_apps;
    const Lb__Resources *res = in->resources;
    out->cores = res != NULL ? res->cores : 0;
    if (s->load != NULL) {
        out->cpu_load = s->load->cpu_load;
        out->mem_total = s->load->mem_total;
        out->mem_free = s->load->mem_free;
        out->disk_free = s->load->disk_free;
    } else if (res != NULL) {
        out->cpu_load = res->cpu_load;
        out->mem_total = res->mem_total;
        out->mem_free = res->mem_free;
        out->disk_free = res->disk_free;
    }
    for (size_t i = 0; i < in->n_labels; i++) {
        labels[i].key = in->labels[i]->key;
        labels[i].value = in->labels[i]->value;
    }
    out->labels = labels;
    out->n_labels = in->n_labels;
    out->arch = res != NULL ? res->arch : NULL;
    out->os = res != NULL ? res->os : NULL;
    out->reachable_via = (const char *const *)in->reachable_via;
    out->n_reachable_via = in->n_reachable_via;
}

static void build(reg *r)
{
    reg_snapshot_drop(r);
    r->built_ms = lb_mono_ms();
    size_t ns = hmap_len(r->servers), nl = hmap_len(r->slaves), n_labels = 0;
    size_t it = 0;
    const char *id;
    void *v;
    while (hmap_next(r->servers, &it, &id, &v))
        n_labels += ((reg_server *)v)->info->n_labels;
    r->sel_servers = lb_xcalloc(ns, sizeof *r->sel_servers);
    r->sel_labels = lb_xcalloc(n_labels, sizeof *r->sel_labels);
    r->by_idx = lb_xcalloc(ns, sizeof *r->by_idx);
    r->sel_slaves = lb_xcalloc(nl, sizeof *r->sel_slaves);
    r->slave_by_idx = lb_xcalloc(nl, sizeof *r->slave_by_idx);
    size_t i = 0, li = 0;
    it = 0;
    while (hmap_next(r->servers, &it, &id, &v)) {
        reg_server *s = v;
        fill_server(r, s, &r->sel_servers[i], &r->sel_labels[li]);
        li += s->info->n_labels;
        s->idx = (int)i;
        r->by_idx[i++] = s;
    }
    i = 0;
    it = 0;
    while (hmap_next(r->slaves, &it, &id, &v)) {
        reg_slave *s = v;
        r->sel_slaves[i] = (sel_slave){.id = s->info->id,
                                       .zone = s->info->zone,
                                       .region = s->info->region,
                                       .load = s->load,
                                       .limit = s->info->limit,
                                       .apps = (const char *const *)s->info->apps,
                                       .n_apps = s->info->n_apps};
        s->idx = (int)i;
        r->slave_by_idx[i++] = s;
    }
    if (sel_snapshot_build(r->sel_servers, ns, r->sel_slaves, nl, &r->snap) != LB_OK)
        abort(); /* only fails on out-of-memory */
    r->dirty = false;
}

sel_snapshot *reg_snapshot_locked(reg *r)
{
    if (r->dirty || r->snap == NULL)
        build(r);
    return r->snap;
}
