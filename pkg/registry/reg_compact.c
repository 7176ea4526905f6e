/* Records unpacked into one allocation (reg.h: reg_unpack_compact).
 *
 * protobuf-c's unpack makes one malloc per message, string, bytes field and
 * repeated array: ~18 for a ServerInfo, each with 16 bytes of malloc header
 * and rounding. The view keeps every server's record for as long as the server
 * lives, so it unpacks twice: once with an allocator that only counts, then
 * into one block of exactly that size with a bump allocator. A record is
 * unpacked when etcd changes it, not per request or report, so the second
 * pass costs nothing that matters.
 *
 * A server's last load report is copied into one block too (reg_load_compact),
 * without its MACs and signature: ~500 bytes a server in protobuf-c's nine
 * allocations, ~200 in one. A copy, not a second unpack, because it happens
 * for every report (10,000 a second at P9). */
#include "registry/reg.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

#define CPT_ALIGN 8u /* the strictest member of a generated struct (int64, double, pointers) */

static size_t cpt_round(size_t n)
{
    return (n + CPT_ALIGN - 1) & ~(size_t)(CPT_ALIGN - 1);
}

static void *count_alloc(void *arg, size_t n)
{
    size_t *total = arg;
    *total += cpt_round(n);
    return malloc(n ? n : 1);
}

static void count_free(void *arg, void *p)
{
    (void)arg;
    free(p);
}

typedef struct bump {
    unsigned char *base;
    size_t used, cap;
} bump;

static void *bump_alloc(void *arg, size_t n)
{
    bump *b = arg;
    size_t k = cpt_round(n);
    if (k > b->cap - b->used)
        return NULL; /* cannot happen: the first pass counted the same calls */
    void *p = b->base + b->used;
    b->used += k;
    return p;
}

static void bump_free(void *arg, void *p)
{
    (void)arg; /* the block goes at once, with free() on the message */
    (void)p;
}

ProtobufCMessage *reg_unpack_compact(const ProtobufCMessageDescriptor *d, size_t len,
                                     const uint8_t *data)
{
    size_t total = 0;
    ProtobufCAllocator counting = {
        .alloc = count_alloc, .free = count_free, .allocator_data = &total};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &counting, len, data);
    if (m == NULL)
        return NULL;
    protobuf_c_message_free_unpacked(m, &counting);
    bump b = {.base = malloc(total ? total : 1), .cap = total};
    if (b.base == NULL)
        return NULL;
    ProtobufCAllocator bumping = {.alloc = bump_alloc, .free = bump_free, .allocator_data = &b};
    m = protobuf_c_message_unpack(d, &bumping, len, data);
    /* protobuf-c allocates the message struct first: it is the block's start,
     * which is what lets free(m) free everything */
    if (m == NULL || (unsigned char *)m != b.base) {
        free(b.base);
        return NULL;
    }
    return m;
}

static char *cpt_str(unsigned char *b, size_t *off, const char *src)
{
    if (src == NULL)
        return NULL;
    size_t n = strlen(src) + 1;
    char *out = (char *)b + *off;
    memcpy(out, src, n);
    *off += n;
    return out;
}

Lb__ServerLoad *reg_load_compact(const Lb__ServerLoad *l)
{
    size_t n_apps = l->apps != NULL ? l->n_apps : 0;
    size_t n_pids = l->exited_pids != NULL ? l->n_exited_pids : 0;
    /* structs first (aligned), then the pid array, then the strings */
    size_t apps_off = cpt_round(sizeof *l);
    size_t app_off = apps_off + cpt_round(n_apps * sizeof(Lb__AppLoad *));
    size_t pids_off = app_off + n_apps * cpt_round(sizeof(Lb__AppLoad));
    size_t str_off = pids_off + n_pids * sizeof(int32_t);
    size_t total = str_off + (l->server_id != NULL ? strlen(l->server_id) + 1 : 0);
    for (size_t i = 0; i < n_apps; i++)
        if (l->apps[i] != NULL && l->apps[i]->app != NULL)
            total += strlen(l->apps[i]->app) + 1;
    unsigned char *b = lb_xcalloc(1, total);
    Lb__ServerLoad *c = (Lb__ServerLoad *)b;
    *c = *l;
    c->base.n_unknown_fields = 0;
    c->base.unknown_fields = NULL;
    c->n_macs = 0; /* checked before the report got here; nothing reads them after */
    c->macs = NULL;
    c->sig = (ProtobufCBinaryData){0, NULL};
    size_t off = str_off;
    c->server_id = cpt_str(b, &off, l->server_id);
    c->n_apps = n_apps;
    c->apps = n_apps > 0 ? (Lb__AppLoad **)(b + apps_off) : NULL;
    size_t kept = 0;
    for (size_t i = 0; i < n_apps; i++) {
        if (l->apps[i] == NULL)
            continue;
        Lb__AppLoad *a = (Lb__AppLoad *)(b + app_off + kept * cpt_round(sizeof(Lb__AppLoad)));
        *a = *l->apps[i];
        a->base.n_unknown_fields = 0;
        a->base.unknown_fields = NULL;
        a->app = cpt_str(b, &off, l->apps[i]->app);
        c->apps[kept++] = a;
    }
    c->n_apps = kept;
    c->n_exited_pids = n_pids;
    c->exited_pids = n_pids > 0 ? (int32_t *)(b + pids_off) : NULL;
    if (n_pids > 0)
        memcpy(c->exited_pids, l->exited_pids, n_pids * sizeof(int32_t));
    return c;
}
