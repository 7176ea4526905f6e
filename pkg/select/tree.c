/*
 * The per-app segment tree: a least-loaded minimum and capacity / usage sums
 * per node, over leaves ordered by (group, region, zone, id). Updates, range
 * minima, best-first walks and weighted descents are all O(log n), which is
 * what keeps sel_choose independent of the number of servers.
 */
#include "select/sel_internal.h"

#include <stddef.h>
#include <string.h>

/* a * b compared with c * d without overflow (sessions and capacities are
 * 32-bit, so the products need up to 65 bits). */
static int tree_cmp_products(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 l = (unsigned __int128)a * b, r = (unsigned __int128)c * d;
#else
    long double l = (long double)a * b, r = (long double)c * d;
#endif
    return l < r ? -1 : (l > r ? 1 : 0);
}

bool sel_less(const sel_snapshot *s, int a, int b)
{
    const sel_server *x = &s->servers[a], *y = &s->servers[b];
    uint64_t ux = sel_used(x), uy = sel_used(y);
    int c = tree_cmp_products(ux, y->capacity, uy, x->capacity);
    if (c != 0)
        return c < 0;
    /* Equal utilisation: the server with more free sessions first. Full
     * servers never reach here (they are not candidates). */
    uint64_t fx = x->capacity > ux ? x->capacity - ux : 0;
    uint64_t fy = y->capacity > uy ? y->capacity - uy : 0;
    if (fx != fy)
        return fx > fy;
    return s->id_rank[a] < s->id_rank[b];
}

static int tree_better(const sel_snapshot *s, int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return sel_less(s, b, a) ? b : a;
}

static void tree_pull(const sel_snapshot *s, sel_app *a, size_t i)
{
    const sel_node *l = &a->node[2 * i], *r = &a->node[2 * i + 1];
    sel_node *n = &a->node[i];
    n->best = tree_better(s, l->best, r->best);
    n->agg.nonfull = l->agg.nonfull + r->agg.nonfull;
    n->agg.cap = l->agg.cap + r->agg.cap;
    n->agg.used = l->agg.used + r->agg.used;
}

static void tree_set_leaf(const sel_snapshot *s, sel_app *a, uint32_t pos)
{
    sel_node *n = &a->node[a->size + pos];
    int idx = a->leaf[pos];
    memset(n, 0, sizeof(*n));
    n->best = -1;
    if (idx < 0 || sel_full(&s->servers[idx]))
        return;
    n->best = idx;
    n->agg.nonfull = 1;
    n->agg.cap = s->servers[idx].capacity;
    n->agg.used = sel_used(&s->servers[idx]);
}

void sel_tree_init(const sel_snapshot *s, sel_app *a)
{
    for (uint32_t p = 0; p < a->size; p++)
        tree_set_leaf(s, a, p);
    for (size_t i = a->size - 1; i >= 1; i--)
        tree_pull(s, a, i);
}

void sel_tree_update(sel_snapshot *s, sel_app *a, uint32_t pos, sel_agg *before, sel_agg *after)
{
    size_t i = a->size + pos;
    *before = a->node[i].agg;
    tree_set_leaf(s, a, pos);
    *after = a->node[i].agg;
    for (i >>= 1; i >= 1; i >>= 1)
        tree_pull(s, a, i);
}

sel_agg sel_tree_range_agg(const sel_app *a, uint32_t lo, uint32_t hi)
{
    sel_agg g = {0, 0, 0};
    for (size_t l = a->size + lo, r = a->size + hi; l < r; l >>= 1, r >>= 1) {
        if (l & 1) {
            const sel_agg *x = &a->node[l++].agg;
            g.nonfull += x->nonfull, g.cap += x->cap, g.used += x->used;
        }
        if (r & 1) {
            const sel_agg *x = &a->node[--r].agg;
            g.nonfull += x->nonfull, g.cap += x->cap, g.used += x->used;
        }
    }
    return g;
}

uint64_t sel_agg_weight(const sel_agg *g, sel_weight w)
{
    /* Non-full members have used < cap, so the difference is their free room. */
    return w == SEL_W_CAP ? g->cap : g->cap - g->used;
}

bool sel_filter_ok(const sel_snapshot *s, const sel_filter *f, int idx)
{
    if (f == NULL)
        return true;
    for (size_t i = 0; i < f->n_skip; i++)
        if (f->skip[i] == idx)
            return false;
    return f->req == NULL || sel_meets(&s->servers[idx], f->req, NULL, 0);
}

/* --- best-first walk ------------------------------------------------------ */

/* A small binary heap of tree nodes ordered by their best leaf. Sized for the
 * usual case (a handful of results, a few rejections); a walk that outgrows it
 * falls back to a scan, which is correct and only slower. */
#define TREE_HEAP_MAX 384

typedef struct tree_heap {
    const sel_snapshot *s;
    const sel_app *a;
    uint32_t n;
    uint32_t v[TREE_HEAP_MAX];
} tree_heap;

static bool heap_less(const tree_heap *h, uint32_t x, uint32_t y)
{
    return sel_less(h->s, h->a->node[x].best, h->a->node[y].best);
}

static bool heap_push(tree_heap *h, uint32_t node)
{
    if (h->a->node[node].best < 0)
        return true;
    if (h->n == TREE_HEAP_MAX)
        return false;
    uint32_t i = h->n++;
    while (i > 0 && heap_less(h, node, h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = node;
    return true;
}

static uint32_t heap_pop(tree_heap *h)
{
    uint32_t top = h->v[0], last = h->v[--h->n], i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_less(h, h->v[c + 1], h->v[c]))
            c++;
        if (!heap_less(h, h->v[c], last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* Inserts idx into the sorted top-k list out[0..*n). */
static void topk_insert(const sel_snapshot *s, int *out, size_t *n, size_t k, int idx)
{
    size_t i = *n < k ? (*n)++ : k;
    if (i == k && !sel_less(s, idx, out[k - 1]))
        return;
    if (i == k)
        i = k - 1;
    while (i > 0 && sel_less(s, idx, out[i - 1])) {
        out[i] = out[i - 1];
        i--;
    }
    out[i] = idx;
}

static size_t tree_scan_best(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                             const sel_filter *f, int *out, size_t k)
{
    size_t n = 0;
    for (uint32_t p = lo; p < hi; p++) {
        int idx = a->node[a->size + p].best; /* -1 when full or padding */
        if (idx >= 0 && sel_filter_ok(s, f, idx))
            topk_insert(s, out, &n, k, idx);
    }
    return n;
}

size_t sel_tree_best(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                     const sel_filter *f, int *out, size_t k)
{
    tree_heap h;
    size_t n = 0;
    bool ok = true;

    if (k == 0 || lo >= hi)
        return 0;
    h.s = s, h.a = a, h.n = 0;
    for (size_t l = a->size + lo, r = a->size + hi; l < r && ok; l >>= 1, r >>= 1) {
        if (l & 1)
            ok = heap_push(&h, (uint32_t)l++);
        if (r & 1)
            ok = ok && heap_push(&h, (uint32_t)--r);
    }
    while (ok && h.n > 0 && n < k) {
        uint32_t node = heap_pop(&h);
        if (node >= a->size) {
            int idx = a->node[node].best;
            if (sel_filter_ok(s, f, idx))
                out[n++] = idx;
            continue;
        }
        ok = heap_push(&h, 2 * node) && heap_push(&h, 2 * node + 1);
    }
    if (!ok)
        return tree_scan_best(s, a, lo, hi, f, out, k);
    return n;
}

/* --- weighted descent ------------------------------------------------------ */

static uint64_t node_weight(const sel_app *a, size_t i, sel_weight w)
{
    return sel_agg_weight(&a->node[i].agg, w);
}

int sel_tree_at(const sel_snapshot *s, const sel_app *a, uint32_t lo, sel_weight w, uint64_t target)
{
    (void)s;
    /* Turn the offset inside the range into an offset from leaf 0, then descend. */
    for (size_t l = a->size, r = a->size + lo; l < r; l >>= 1, r >>= 1) {
        if (l & 1)
            target += node_weight(a, l++, w);
        if (r & 1)
            target += node_weight(a, --r, w);
    }
    size_t i = 1;
    while (i < a->size) {
        uint64_t lw = node_weight(a, 2 * i, w);
        if (target < lw) {
            i = 2 * i;
        } else {
            target -= lw;
            i = 2 * i + 1;
        }
    }
    return a->node[i].best;
}
