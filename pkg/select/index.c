/*
 * Snapshot construction and the load mutators. Building costs
 * O(P log P) for P (server, app) pairs; everything a request touches
 * afterwards is a binary search or a tree walk (see sel_internal.h).
 */
#include "select/sel_internal.h"

#include <stdlib.h>
#include <string.h>

static const char idx_empty[] = "";

static const char *idx_str(const char *s)
{
    return s != NULL ? s : idx_empty;
}

/* One (app, server) pair with the strings it is sorted by, so qsort needs no
 * context (qsort_r is not C11). */
typedef struct idx_pair {
    const char *app, *region, *zone, *id;
    int rank;
    int32_t server;
} idx_pair;

static int idx_pair_cmp(const void *x, const void *y)
{
    const idx_pair *a = x, *b = y;
    int c = strcmp(a->app, b->app);
    if (c == 0)
        c = (a->rank > b->rank) - (a->rank < b->rank);
    if (c == 0)
        c = strcmp(a->region, b->region);
    if (c == 0)
        c = strcmp(a->zone, b->zone);
    if (c == 0)
        c = strcmp(a->id, b->id);
    if (c == 0)
        c = (a->server > b->server) - (a->server < b->server);
    return c;
}

typedef struct idx_key {
    const char *key;
    int32_t idx;
} idx_key;

static int idx_key_cmp(const void *x, const void *y)
{
    const idx_key *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c != 0 ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Sorts indices 0..n-1 by the string key(i); writes them to out and, when
 * rank is not NULL, each index's position to rank. */
static lb_err idx_sort_by(size_t n, const char *(*key)(const sel_snapshot *, size_t),
                          const sel_snapshot *s, int32_t *out, uint32_t *rank)
{
    idx_key *k = calloc(n ? n : 1, sizeof(*k));
    if (k == NULL)
        return LB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        k[i] = (idx_key){key(s, i), (int32_t)i};
    qsort(k, n, sizeof(*k), idx_key_cmp);
    for (size_t i = 0; i < n; i++) {
        out[i] = k[i].idx;
        if (rank != NULL)
            rank[k[i].idx] = (uint32_t)i;
    }
    free(k);
    return LB_OK;
}

static const char *key_server_id(const sel_snapshot *s, size_t i)
{
    return s->servers[i].id;
}

static const char *key_slave_id(const sel_snapshot *s, size_t i)
{
    return s->slaves[i].id;
}

static const char *key_slave_zone(const sel_snapshot *s, size_t i)
{
    return s->slaves[i].zone;
}

/* FNV-1a: short ids, no need for anything stronger. */
static uint32_t idx_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* Builds the id hash; with duplicate ids the first in id order (the lowest
 * index) wins, as a binary search would find it. */
static lb_err idx_build_hash(sel_snapshot *s)
{
    uint32_t n = 2;
    while (n < 2 * s->n_servers)
        n <<= 1;
    s->id_hash = malloc(n * sizeof(*s->id_hash));
    if (s->id_hash == NULL)
        return LB_ENOMEM;
    s->id_hash_mask = n - 1;
    for (uint32_t i = 0; i < n; i++)
        s->id_hash[i] = (sel_hslot){0, -1};
    for (size_t r = 0; r < s->n_servers; r++) {
        int32_t idx = s->by_id[r];
        if (r > 0 && strcmp(s->servers[s->by_id[r - 1]].id, s->servers[idx].id) == 0)
            continue;
        uint32_t h = idx_hash(s->servers[idx].id), i = h & s->id_hash_mask;
        while (s->id_hash[i].idx >= 0)
            i = (i + 1) & s->id_hash_mask;
        s->id_hash[i] = (sel_hslot){h, idx};
    }
    return LB_OK;
}

static bool idx_can_serve(const sel_server *sv)
{
    return sv->up && !sv->ejected && !sv->drained && !sv->disabled && sv->capacity > 0;
}

/* Gives back the unused tail of an array sized for the worst case (a group,
 * region and zone per server, ~200 bytes a server at 10,000 servers, where a
 * real app has a handful of each). Shrinking never fails in practice; if it
 * does, the larger array is as good. */
static void *idx_shrink(void *p, size_t n, size_t size)
{
    void *q = realloc(p, (n ? n : 1) * size);
    return q != NULL ? q : p;
}

/* Zone -> region of the servers in it (the first region in sort order when a
 * zone name is reused across regions), for clients that give only a zone. */
static lb_err idx_build_zmap(sel_snapshot *s)
{
    lb_err result = LB_OK;
    idx_pair *p = calloc(s->n_servers ? s->n_servers : 1, sizeof(*p));
    s->zmap = calloc(s->n_servers ? s->n_servers : 1, sizeof(*s->zmap));
    if (p == NULL || s->zmap == NULL) {
        result = LB_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->n_servers; i++)
        p[i] = (idx_pair){s->servers[i].zone, s->servers[i].region, idx_empty, idx_empty, 0,
                          (int32_t)i};
    qsort(p, s->n_servers, sizeof(*p), idx_pair_cmp);
    for (size_t i = 0; i < s->n_servers; i++) {
        if (p[i].app[0] == '\0' || p[i].region[0] == '\0')
            continue;
        if (s->n_zmap > 0 && strcmp(s->zmap[s->n_zmap - 1].zone, p[i].app) == 0)
            continue;
        s->zmap[s->n_zmap++] = (sel_zmap){p[i].app, p[i].region};
    }
    s->zmap = idx_shrink(s->zmap, s->n_zmap, sizeof(*s->zmap));
out:
    free(p);
    return result;
}

/* Counts the app's servers that can never serve in this snapshot, by the
 * first rule that excludes them (the order the verdicts use). */
static void idx_count_static(sel_app *a, const sel_server *sv)
{
    if (!sv->up)
        a->n_down++;
    else if (sv->ejected)
        a->n_ejected++;
    else if (sv->drained)
        a->n_drained++;
    else if (sv->disabled)
        a->n_disabled++;
    else if (sv->capacity == 0)
        a->n_nocap++;
}

/* Lays out one app from its sorted pairs p[0..n): leaves, groups, regions,
 * zones. The arrays are sized for n, which bounds every count. */
static lb_err idx_build_app(sel_snapshot *s, sel_app *a, const idx_pair *p, size_t n)
{
    a->name = p[0].app;
    a->all = calloc(n, sizeof(*a->all));
    a->groups = calloc(n, sizeof(*a->groups));
    a->regions = calloc(n, sizeof(*a->regions));
    a->zones = calloc(n, sizeof(*a->zones));
    a->leaf = calloc(n, sizeof(*a->leaf));
    if (!a->all || !a->groups || !a->regions || !a->zones || !a->leaf)
        return LB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const sel_server *sv = &s->servers[p[i].server];
        sel_group *g = a->n_groups ? &a->groups[a->n_groups - 1] : NULL;
        a->all[a->n_all++] = p[i].server;
        if (g == NULL || g->rank != p[i].rank) {
            g = &a->groups[a->n_groups++];
            *g = (sel_group){.rank = p[i].rank,
                             .name = sv->group,
                             .lo = a->n_leaves,
                             .hi = a->n_leaves,
                             .zone0 = a->n_zones,
                             .region0 = a->n_regions};
        }
        g->total_cap += sv->capacity;
        if (!idx_can_serve(sv)) {
            idx_count_static(a, sv);
            continue;
        }
        if (!sel_reachable(s, sv, a->name)) {
            /* decided once here, so the request path never checks slaves */
            a->n_unreachable++;
            continue;
        }
        sel_range *r = g->n_regions ? &a->regions[a->n_regions - 1] : NULL;
        if (r == NULL || strcmp(r->region, p[i].region) != 0) {
            r = &a->regions[a->n_regions++];
            *r = (sel_range){.region = p[i].region, .lo = a->n_leaves};
            g->n_regions++;
        }
        sel_range *z = g->n_zones ? &a->zones[a->n_zones - 1] : NULL;
        if (z == NULL || strcmp(z->region, p[i].region) != 0 || strcmp(z->zone, p[i].zone) != 0) {
            z = &a->zones[a->n_zones++];
            *z = (sel_range){.region = p[i].region, .zone = p[i].zone, .lo = a->n_leaves};
            g->n_zones++;
        }
        a->leaf[a->n_leaves++] = p[i].server;
        g->hi = r->hi = z->hi = a->n_leaves;
    }
    a->groups = idx_shrink(a->groups, a->n_groups, sizeof(*a->groups));
    a->regions = idx_shrink(a->regions, a->n_regions, sizeof(*a->regions));
    a->zones = idx_shrink(a->zones, a->n_zones, sizeof(*a->zones));
    return LB_OK;
}

static void agg_add(sel_agg *g, const sel_agg *d, int sign)
{
    g->nonfull += (uint32_t)(sign * (int64_t)d->nonfull);
    g->cap += (uint64_t)(sign * (int64_t)d->cap);
    g->used += (uint64_t)(sign * (int64_t)d->used);
}

/* Memberships (server -> its leaves) and the initial tree and range sums. */
static lb_err idx_build_members(sel_snapshot *s)
{
    size_t total = 0;
    s->mem_off = calloc(s->n_servers + 1, sizeof(*s->mem_off));
    if (s->mem_off == NULL)
        return LB_ENOMEM;
    for (size_t ai = 0; ai < s->n_apps; ai++)
        for (uint32_t p = 0; p < s->apps[ai].n_leaves; p++)
            s->mem_off[s->apps[ai].leaf[p] + 1]++;
    for (size_t i = 0; i < s->n_servers; i++) {
        total += s->mem_off[i + 1];
        s->mem_off[i + 1] = (uint32_t)total;
    }
    s->mem = calloc(total ? total : 1, sizeof(*s->mem));
    uint32_t *fill = calloc(s->n_servers ? s->n_servers : 1, sizeof(*fill));
    if (s->mem == NULL || fill == NULL) {
        free(fill);
        return LB_ENOMEM;
    }
    for (size_t ai = 0; ai < s->n_apps; ai++) {
        sel_app *a = &s->apps[ai];
        if (sel_tree_init(s, a) != LB_OK) {
            free(fill);
            return LB_ENOMEM;
        }
        for (uint32_t gi = 0; gi < a->n_groups; gi++) {
            sel_group *g = &a->groups[gi];
            g->agg = sel_tree_range_agg(s, a, g->lo, g->hi);
            for (uint32_t ri = g->region0; ri < g->region0 + g->n_regions; ri++)
                a->regions[ri].agg = sel_tree_range_agg(s, a, a->regions[ri].lo, a->regions[ri].hi);
            for (uint32_t zi = g->zone0; zi < g->zone0 + g->n_zones; zi++) {
                sel_range *z = &a->zones[zi];
                z->agg = sel_tree_range_agg(s, a, z->lo, z->hi);
                uint32_t ri = g->region0;
                while (strcmp(a->regions[ri].region, z->region) != 0)
                    ri++;
                for (uint32_t p = z->lo; p < z->hi; p++) {
                    int32_t sv = a->leaf[p];
                    s->mem[s->mem_off[sv] + fill[sv]++] = (sel_member){(uint32_t)ai, p, gi, ri, zi};
                }
            }
        }
    }
    free(fill);
    return LB_OK;
}

static lb_err idx_build_apps(sel_snapshot *s)
{
    lb_err result = LB_OK;
    size_t n = 0;
    for (size_t i = 0; i < s->n_servers; i++)
        n += s->servers[i].n_apps;
    idx_pair *p = calloc(n ? n : 1, sizeof(*p));
    s->apps = calloc(n ? n : 1, sizeof(*s->apps));
    if (p == NULL || s->apps == NULL) {
        result = LB_ENOMEM;
        goto out;
    }
    n = 0;
    for (size_t i = 0; i < s->n_servers; i++) {
        const sel_server *sv = &s->servers[i];
        for (size_t j = 0; j < sv->n_apps; j++)
            if (sv->apps[j] != NULL && sv->apps[j][0] != '\0')
                p[n++] = (idx_pair){sv->apps[j], sv->region,     sv->zone,
                                    sv->id,      sv->group_rank, (int32_t)i};
    }
    qsort(p, n, sizeof(*p), idx_pair_cmp);
    for (size_t i = 0; i < n && result == LB_OK;) {
        size_t j = i, m = 0;
        /* One app's run; a server listing an app twice counts once. */
        while (j < n && strcmp(p[j].app, p[i].app) == 0) {
            if (m == 0 || p[i + m - 1].server != p[j].server)
                p[i + m++] = p[j];
            j++;
        }
        result = idx_build_app(s, &s->apps[s->n_apps++], p + i, m);
        i = j;
    }
    if (result == LB_OK)
        result = idx_build_members(s);
out:
    free(p);
    return result;
}

static lb_err idx_copy(sel_snapshot *s, const sel_server *servers, const sel_slave *slaves)
{
    size_t ns = s->n_servers, nl = s->n_slaves;
    s->servers = calloc(ns ? ns : 1, sizeof(*s->servers));
    s->slaves = calloc(nl ? nl : 1, sizeof(*s->slaves));
    s->id_rank = calloc(ns ? ns : 1, sizeof(*s->id_rank));
    s->by_id = calloc(ns ? ns : 1, sizeof(*s->by_id));
    s->slave_by_id = calloc(nl ? nl : 1, sizeof(*s->slave_by_id));
    s->slave_by_zone = calloc(nl ? nl : 1, sizeof(*s->slave_by_zone));
    if (!s->servers || !s->slaves || !s->id_rank || !s->by_id || !s->slave_by_id ||
        !s->slave_by_zone)
        return LB_ENOMEM;
    for (size_t i = 0; i < ns; i++) {
        sel_server *sv = &s->servers[i];
        *sv = servers[i];
        sv->id = idx_str(sv->id);
        sv->zone = idx_str(sv->zone);
        sv->region = idx_str(sv->region);
        sv->group = idx_str(sv->group);
    }
    for (size_t i = 0; i < nl; i++) {
        sel_slave *sl = &s->slaves[i];
        *sl = slaves[i];
        sl->id = idx_str(sl->id);
        sl->zone = idx_str(sl->zone);
        sl->region = idx_str(sl->region);
    }
    lb_err result = idx_sort_by(ns, key_server_id, s, s->by_id, s->id_rank);
    if (result == LB_OK)
        result = idx_build_hash(s);
    if (result == LB_OK)
        result = idx_sort_by(nl, key_slave_id, s, s->slave_by_id, NULL);
    if (result == LB_OK)
        result = idx_sort_by(nl, key_slave_zone, s, s->slave_by_zone, NULL);
    return result;
}

lb_err sel_snapshot_build(const sel_server *servers, size_t n_servers, const sel_slave *slaves,
                          size_t n_slaves, sel_snapshot **out)
{
    lb_err result = LB_OK;
    sel_snapshot *s = NULL;

    if (out == NULL || (n_servers > 0 && servers == NULL) || (n_slaves > 0 && slaves == NULL) ||
        n_servers > SEL_MAX_SERVERS || n_slaves > INT32_MAX / 2)
        return LB_EINVAL;
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return LB_ENOMEM;
    s->n_servers = n_servers;
    s->n_slaves = n_slaves;
    result = idx_copy(s, servers, slaves);
    if (result == LB_OK)
        result = idx_build_zmap(s);
    if (result == LB_OK)
        result = idx_build_apps(s);
    if (result != LB_OK)
        sel_snapshot_free(&s);
    *out = s;
    return result;
}

void sel_snapshot_free(sel_snapshot **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    sel_snapshot *s = *sp;
    for (size_t i = 0; i < s->n_apps; i++) {
        sel_app *a = &s->apps[i];
        free(a->leaf);
        sel_tree_free(a);
        free(a->groups);
        free(a->regions);
        free(a->zones);
        free(a->all);
    }
    free(s->apps);
    free(s->servers);
    free(s->slaves);
    free(s->id_rank);
    free(s->by_id);
    free(s->id_hash);
    free(s->slave_by_id);
    free(s->slave_by_zone);
    free(s->mem_off);
    free(s->mem);
    free(s->zmap);
    free(s);
    *sp = NULL;
}

/* --- load changes ----------------------------------------------------------- */

/* Re-keys every leaf of server idx after its load changed. */
static void idx_reindex(sel_snapshot *s, int idx)
{
    for (uint32_t m = s->mem_off[idx]; m < s->mem_off[idx + 1]; m++) {
        const sel_member *mb = &s->mem[m];
        sel_app *a = &s->apps[mb->app];
        sel_agg before, after;
        sel_tree_update(s, a, mb->pos, &before, &after);
        sel_agg *rs[3] = {&a->groups[mb->group].agg, &a->regions[mb->region].agg,
                          &a->zones[mb->zone].agg};
        for (int i = 0; i < 3; i++) {
            agg_add(rs[i], &before, -1);
            agg_add(rs[i], &after, +1);
        }
    }
}

void sel_snapshot_add_pending(sel_snapshot *s, int idx, int delta)
{
    if (s == NULL || idx < 0 || (size_t)idx >= s->n_servers)
        return;
    sel_server *sv = &s->servers[idx];
    /* A session given back after a report already reset the count cannot
     * go below zero: the next report carries the truth anyway. */
    int64_t p = (int64_t)sv->pending + delta;
    sv->pending = p < 0 ? 0 : (p > UINT32_MAX ? UINT32_MAX : (uint32_t)p);
    idx_reindex(s, idx);
}

void sel_snapshot_set_load(sel_snapshot *s, int idx, uint32_t sessions, double cpu_load,
                           uint64_t mem_free, uint64_t disk_free)
{
    sel_snapshot_set_load_unreported(s, idx, sessions, 0, cpu_load, mem_free, disk_free);
}

void sel_snapshot_set_load_unreported(sel_snapshot *s, int idx, uint32_t sessions,
                                      uint32_t unreported, double cpu_load, uint64_t mem_free,
                                      uint64_t disk_free)
{
    if (s == NULL || idx < 0 || (size_t)idx >= s->n_servers)
        return;
    sel_server *sv = &s->servers[idx];
    sv->sessions = sessions;
    sv->pending = unreported;
    sv->cpu_load = cpu_load;
    sv->mem_free = mem_free;
    sv->disk_free = disk_free;
    idx_reindex(s, idx);
}

void sel_snapshot_set_slave_load(sel_snapshot *s, int idx, uint32_t load)
{
    if (s != NULL && idx >= 0 && (size_t)idx < s->n_slaves)
        s->slaves[idx].load = load;
}

const sel_server *sel_snapshot_server(const sel_snapshot *s, int idx)
{
    if (s == NULL || idx < 0 || (size_t)idx >= s->n_servers)
        return NULL;
    return &s->servers[idx];
}

const sel_slave *sel_snapshot_slave(const sel_snapshot *s, int idx)
{
    if (s == NULL || idx < 0 || (size_t)idx >= s->n_slaves)
        return NULL;
    return &s->slaves[idx];
}

size_t sel_snapshot_n_servers(const sel_snapshot *s)
{
    return s != NULL ? s->n_servers : 0;
}

size_t sel_snapshot_n_slaves(const sel_snapshot *s)
{
    return s != NULL ? s->n_slaves : 0;
}

/* --- lookups -------------------------------------------------------------- */

const sel_app *sel_app_find(const sel_snapshot *s, const char *name)
{
    size_t lo = 0, hi = s->n_apps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->apps[mid].name, name);
        if (c == 0)
            return &s->apps[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* First position in sorted (by key) index `ix` whose key is >= name. */
static size_t idx_lower(const int32_t *ix, size_t n, const char *name,
                        const char *(*key)(const sel_snapshot *, size_t), const sel_snapshot *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(key(s, (size_t)ix[mid]), name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int sel_server_find(const sel_snapshot *s, const char *id)
{
    uint32_t h = idx_hash(id);
    for (uint32_t i = h & s->id_hash_mask; s->id_hash[i].idx >= 0; i = (i + 1) & s->id_hash_mask)
        if (s->id_hash[i].hash == h && strcmp(s->servers[s->id_hash[i].idx].id, id) == 0)
            return s->id_hash[i].idx;
    return -1;
}

int sel_slave_find(const sel_snapshot *s, const char *id)
{
    size_t i = idx_lower(s->slave_by_id, s->n_slaves, id, key_slave_id, s);
    if (i < s->n_slaves && strcmp(s->slaves[s->slave_by_id[i]].id, id) == 0)
        return s->slave_by_id[i];
    return -1;
}

/* Position of the first slave of `zone` in slave_by_zone (n_slaves if none). */
size_t sel_slave_zone_lower(const sel_snapshot *s, const char *zone)
{
    return idx_lower(s->slave_by_zone, s->n_slaves, zone, key_slave_zone, s);
}

const char *sel_zone_region(const sel_snapshot *s, const char *zone)
{
    size_t lo = 0, hi = s->n_zmap;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->zmap[mid].zone, zone);
        if (c == 0)
            return s->zmap[mid].region;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const sel_member *sel_member_of(const sel_snapshot *s, const sel_app *a, int idx)
{
    uint32_t ai = (uint32_t)(a - s->apps);
    for (uint32_t m = s->mem_off[idx]; m < s->mem_off[idx + 1]; m++)
        if (s->mem[m].app == ai)
            return &s->mem[m];
    return NULL;
}

int sel_member_pos(const sel_snapshot *s, const sel_app *a, int idx)
{
    const sel_member *m = sel_member_of(s, a, idx);
    return m != NULL ? (int)m->pos : -1;
}
