/*
 * The per-app tree: an 8-ary tree over leaves ordered by (group, region,
 * zone, id), each node holding the least-loaded key below it and the open
 * capacity / usage below it. Updates, range minima and weighted descents cost
 * O(log8 n) cache lines, which is what keeps sel_choose nearly flat in the
 * number of servers (see tests/bench/bench_select.c).
 */
#include "select/sel_internal.h"

#include <stdlib.h>
#include <string.h>

#define KEY_UTIL_SHIFT 40
#define KEY_UTIL_ONE (1ULL << 24)

uint64_t sel_key_of(const sel_snapshot *s, int idx)
{
    const sel_server *sv = &s->servers[idx];
    uint64_t used = sel_used(sv), cap = sv->capacity, util, room;
    if (used >= cap) {
        util = KEY_UTIL_ONE - 1;
        room = 0;
    } else {
        util = (used << 24) / cap; /* used < cap < 2^32: no overflow */
        room = cap - used;
        if (room > SEL_KEY_FREE_MAX)
            room = SEL_KEY_FREE_MAX;
    }
    return util << KEY_UTIL_SHIFT | (uint64_t)(SEL_KEY_FREE_MAX - room) << 20 |
           (s->id_rank[idx] & SEL_KEY_RANK_MASK);
}

bool sel_less(const sel_snapshot *s, int a, int b)
{
    return sel_key_of(s, a) < sel_key_of(s, b);
}

static uint64_t tree_min_block(const uint64_t *k)
{
    uint64_t m = k[0];
    for (int i = 1; i < SEL_FANOUT; i++)
        m = k[i] < m ? k[i] : m;
    return m;
}

static sel_agg tree_leaf(const sel_snapshot *s, const sel_app *a, uint32_t pos, uint64_t *key)
{
    int idx = a->leaf[pos];
    const sel_server *sv = &s->servers[idx];
    if (sel_full(sv)) {
        *key = SEL_KEY_NONE;
        return (sel_agg){0, 0, 0};
    }
    *key = sel_key_of(s, idx);
    return (sel_agg){1, sv->capacity, sel_used(sv)};
}

lb_err sel_tree_init(const sel_snapshot *s, sel_app *a)
{
    uint32_t n = a->n_leaves > 0 ? a->n_leaves : 1, total = 0, l = 0;
    for (;;) {
        uint32_t padded = l > 0 && n == 1 ? 1 : (n + SEL_FANOUT - 1) / SEL_FANOUT * SEL_FANOUT;
        a->lvl_off[l] = total;
        a->lvl_n[l] = padded;
        total += padded;
        l++;
        if (padded == 1)
            break;
        n = padded / SEL_FANOUT;
    }
    a->n_levels = l;
    a->key = malloc(total * sizeof(*a->key));
    a->sum = calloc(total, sizeof(*a->sum));
    a->rank_pos = malloc((s->n_servers ? s->n_servers : 1) * sizeof(*a->rank_pos));
    if (a->key == NULL || a->sum == NULL || a->rank_pos == NULL)
        return LB_ENOMEM;
    memset(a->rank_pos, 0xff, (s->n_servers ? s->n_servers : 1) * sizeof(*a->rank_pos));
    for (uint32_t p = 0; p < a->n_leaves; p++)
        a->rank_pos[s->id_rank[a->leaf[p]]] = p;
    memset(a->key, 0xff, total * sizeof(*a->key)); /* SEL_KEY_NONE */
    a->n_open = 0;
    for (uint32_t p = 0; p < a->n_leaves; p++) {
        sel_agg g = tree_leaf(s, a, p, &a->key[p]);
        a->sum[p] = (sel_sum){g.cap, g.used};
        a->n_open += g.nonfull;
    }
    for (l = 1; l < a->n_levels; l++) {
        for (uint32_t j = 0; j < a->lvl_n[l]; j++) {
            uint32_t c = a->lvl_off[l - 1] + j * SEL_FANOUT;
            if (j * SEL_FANOUT >= a->lvl_n[l - 1])
                continue; /* padding of this level: no children */
            a->key[a->lvl_off[l] + j] = tree_min_block(&a->key[c]);
            sel_sum t = {0, 0};
            for (int i = 0; i < SEL_FANOUT; i++)
                t.cap += a->sum[c + i].cap, t.used += a->sum[c + i].used;
            a->sum[a->lvl_off[l] + j] = t;
        }
    }
    return LB_OK;
}

void sel_tree_free(sel_app *a)
{
    free(a->key);
    free(a->sum);
    free(a->rank_pos);
    a->key = NULL;
    a->sum = NULL;
    a->rank_pos = NULL;
}

void sel_tree_update(const sel_snapshot *s, sel_app *a, uint32_t pos, sel_agg *before,
                     sel_agg *after)
{
    uint64_t key;
    *before = (sel_agg){a->key[pos] != SEL_KEY_NONE, a->sum[pos].cap, a->sum[pos].used};
    *after = tree_leaf(s, a, pos, &key);
    a->n_open += after->nonfull - before->nonfull;
    /* Unsigned wrap-around makes these signed deltas. */
    uint64_t dcap = after->cap - before->cap, dused = after->used - before->used;
    bool keys_done = key == a->key[pos];
    a->key[pos] = key;
    a->sum[pos] = (sel_sum){after->cap, after->used};
    for (uint32_t l = 1, j = pos / SEL_FANOUT; l < a->n_levels; l++, j /= SEL_FANOUT) {
        uint32_t at = a->lvl_off[l] + j;
        a->sum[at].cap += dcap;
        a->sum[at].used += dused;
        /* Once a node's minimum is unchanged, so are its ancestors'. */
        if (!keys_done) {
            uint64_t m = tree_min_block(&a->key[a->lvl_off[l - 1] + j * SEL_FANOUT]);
            keys_done = m == a->key[at];
            a->key[at] = m;
        }
    }
}

sel_agg sel_tree_range_agg(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi)
{
    sel_agg g = {0, 0, 0};
    for (uint32_t p = lo; p < hi; p++) {
        uint64_t key;
        sel_agg x = tree_leaf(s, a, p, &key);
        g.nonfull += x.nonfull, g.cap += x.cap, g.used += x.used;
    }
    return g;
}

uint64_t sel_agg_weight(const sel_agg *g, sel_weight w)
{
    /* Open members have used < cap, so the difference is their free room. */
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

/* --- range minima ---------------------------------------------------------- */

/* Smallest key among leaves [lo, hi): the partial blocks at each end of each
 * level, then up one level; at most two cache lines per level. */
static uint64_t tree_min(const sel_app *a, uint32_t lo, uint32_t hi)
{
    uint64_t best = SEL_KEY_NONE;
    for (uint32_t l = 0; lo < hi; l++) {
        const uint64_t *k = a->key + a->lvl_off[l];
        if (lo / SEL_FANOUT == (hi - 1) / SEL_FANOUT) {
            for (uint32_t i = lo; i < hi; i++)
                best = k[i] < best ? k[i] : best;
            break;
        }
        for (; lo % SEL_FANOUT != 0; lo++)
            best = k[lo] < best ? k[lo] : best;
        for (; hi % SEL_FANOUT != 0; hi--)
            best = k[hi - 1] < best ? k[hi - 1] : best;
        lo /= SEL_FANOUT;
        hi /= SEL_FANOUT;
    }
    return best;
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
        int idx = sel_leaf_open(a, p);
        if (idx >= 0 && sel_filter_ok(s, f, idx))
            topk_insert(s, out, &n, k, idx);
    }
    return n;
}

/* The range split into intervals around the servers already taken or
 * rejected, each with its minimum: taking a server only re-computes the
 * minima of the two halves of its own interval. */
#define TREE_IV_MAX 48

typedef struct tree_iv {
    uint32_t lo, hi;
    uint64_t min;
} tree_iv;

static bool tree_iv_split(const sel_app *a, tree_iv *v, size_t *n, size_t i, uint32_t pos)
{
    if (*n == TREE_IV_MAX)
        return false;
    tree_iv right = {pos + 1, v[i].hi, tree_min(a, pos + 1, v[i].hi)};
    v[i].hi = pos;
    v[i].min = tree_min(a, v[i].lo, pos);
    v[(*n)++] = right;
    return true;
}

static bool tree_skipped(const sel_filter *f, int idx)
{
    for (size_t i = 0; f != NULL && i < f->n_skip; i++)
        if (f->skip[i] == idx)
            return true;
    return false;
}

static size_t tree_best_iv(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                           const sel_filter *f, int *out, size_t k)
{
    tree_iv v[TREE_IV_MAX];
    size_t nv = 1, n = 0;
    const sel_request *req = f != NULL ? f->req : NULL;

    if (k == 0 || lo >= hi)
        return 0;
    v[0] = (tree_iv){lo, hi, tree_min(a, lo, hi)};
    while (n < k) {
        size_t b = 0;
        for (size_t i = 1; i < nv; i++)
            b = v[i].min < v[b].min ? i : b;
        if (v[b].min == SEL_KEY_NONE)
            break;
        int idx = s->by_id[v[b].min & SEL_KEY_RANK_MASK];
        /* Skips are few and cost a split only when they surface. */
        if (!tree_skipped(f, idx) && (req == NULL || sel_meets(&s->servers[idx], req, NULL, 0)))
            out[n++] = idx;
        if (n == k)
            break;
        if (!tree_iv_split(a, v, &nv, b, (uint32_t)sel_member_pos(s, a, idx)))
            return tree_scan_best(s, a, lo, hi, f, out, k);
    }
    return n;
}

/* --- best-first walk ------------------------------------------------------- */

/* The walk's frontier: sibling blocks (the SEL_FANOUT children of one node,
 * one cache line of keys), each with a mask of the children still in play
 * and the smallest key among them; together they cover the range's leaves not
 * yet taken. The seed is the partial blocks at each end of each level (at
 * most two per level); taking a leaf clears it from its entry's block and
 * pushes, for each level below, the block on its path minus the path child.
 * The leaf's position comes from its id rank (rank_pos), so every step is
 * computed rather than searched for: the walk's cost at 10,000 servers was
 * branch mispredictions (finding the taken key among eight, pushes that
 * skip empty nodes) and a frontier growing by seven entries per level. Here
 * the frontier grows by one entry per level and every loop is branch-free. */
#define WALK_MAX 128

_Static_assert(SEL_FANOUT == 8, "walk masks and shifts assume 8 children");

typedef struct walk {
    uint32_t n;
    uint64_t key[WALK_MAX]; /* smallest key among the live children, or SEL_KEY_NONE */
    uint32_t blk[WALK_MAX]; /* block index in its level (node index / SEL_FANOUT) */
    uint8_t level[WALK_MAX];
    uint8_t live[WALK_MAX]; /* children still in play, bit i = child i */
} walk;

/* Smallest key among the children of block blk of level l that are in mask. */
static uint64_t walk_block_min(const sel_app *a, uint32_t l, uint32_t blk, unsigned mask)
{
    const uint64_t *k = a->key + a->lvl_off[l] + (size_t)blk * SEL_FANOUT;
    uint64_t m = SEL_KEY_NONE;
    for (unsigned i = 0; i < SEL_FANOUT; i++) {
        /* all ones (SEL_KEY_NONE) for a child not in mask, without a branch */
        uint64_t v = k[i] | ((uint64_t)(~mask >> i & 1u) * SEL_KEY_NONE);
        m = v < m ? v : m;
    }
    return m;
}

static void walk_push(const sel_app *a, walk *w, uint32_t l, uint32_t blk, unsigned mask)
{
    uint32_t n = w->n;
    w->key[n] = walk_block_min(a, l, blk, mask);
    w->blk[n] = blk;
    w->level[n] = (uint8_t)l;
    w->live[n] = (uint8_t)mask;
    w->n = n + 1;
}

/* Children from..to (inclusive, from <= to + 1) of a block as a mask. */
static unsigned walk_mask(uint32_t from, uint32_t to)
{
    return ((2u << to) - 1u) & ~((1u << from) - 1u) & 0xffu;
}

/* Seeds the frontier with the blocks covering [lo, hi), the nodes tree_min
 * visits: at most two entries per level. */
static void walk_seed(const sel_app *a, walk *w, uint32_t lo, uint32_t hi)
{
    for (uint32_t l = 0; lo < hi; l++) {
        if (lo / SEL_FANOUT == (hi - 1) / SEL_FANOUT) {
            walk_push(a, w, l, lo / SEL_FANOUT, walk_mask(lo % SEL_FANOUT, (hi - 1) % SEL_FANOUT));
            break;
        }
        uint32_t lr = lo % SEL_FANOUT, hr = hi % SEL_FANOUT;
        if (lr != 0)
            walk_push(a, w, l, lo / SEL_FANOUT, walk_mask(lr, SEL_FANOUT - 1));
        if (hr != 0)
            walk_push(a, w, l, hi / SEL_FANOUT, walk_mask(0, hr - 1));
        lo = (lo + SEL_FANOUT - 1) / SEL_FANOUT;
        hi /= SEL_FANOUT;
    }
}

/* Takes leaf pos, the best of entry b, out of the frontier: clears its
 * ancestor from b's block and pushes the blocks on its path below b's
 * level, each minus the path child. False when the frontier is full. */
static bool walk_remove(const sel_app *a, walk *w, uint32_t b, uint32_t pos)
{
    uint32_t l = w->level[b];
    if (w->n + l > WALK_MAX)
        return false;
    uint32_t node = pos >> (3 * l);
    unsigned live = w->live[b] & ~(1u << (node % SEL_FANOUT));
    w->live[b] = (uint8_t)live;
    w->key[b] = walk_block_min(a, l, w->blk[b], live);
    while (l-- > 0) {
        node = pos >> (3 * l);
        walk_push(a, w, l, node / SEL_FANOUT, 0xffu & ~(1u << (node % SEL_FANOUT)));
    }
    return true;
}

size_t sel_tree_best(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                     const sel_filter *f, int *out, size_t k)
{
    walk w;
    size_t n = 0;
    const sel_request *req = f != NULL ? f->req : NULL;

    if (k == 0 || lo >= hi)
        return 0;
    if (k == 1) {
        /* The usual pick: one range minimum. */
        uint64_t m = tree_min(a, lo, hi);
        int idx = m != SEL_KEY_NONE ? s->by_id[m & SEL_KEY_RANK_MASK] : -1;
        if (idx < 0 || sel_filter_ok(s, f, idx)) {
            out[0] = idx;
            return idx >= 0;
        }
    }
    w.n = 0;
    walk_seed(a, &w, lo, hi);
    while (n < k) {
        uint64_t m = w.key[0];
        uint32_t b = 0;
        for (uint32_t i = 1; i < w.n; i++) {
            bool lt = w.key[i] < m;
            m = lt ? w.key[i] : m;
            b = lt ? i : b;
        }
        if (m == SEL_KEY_NONE)
            break;
        uint32_t rank = (uint32_t)(m & SEL_KEY_RANK_MASK);
        int idx = s->by_id[rank];
        if (!tree_skipped(f, idx) && (req == NULL || sel_meets(&s->servers[idx], req, NULL, 0)))
            out[n++] = idx;
        /* a frontier outgrowing WALK_MAX means many rejections: slower path */
        if (n < k && !walk_remove(a, &w, b, a->rank_pos[rank]))
            return tree_best_iv(s, a, lo, hi, f, out, k);
    }
    return n;
}

/* --- weighted descent ------------------------------------------------------ */

static uint64_t tree_weight(const sel_sum *x, sel_weight w)
{
    return w == SEL_W_CAP ? x->cap : x->cap - x->used;
}

int sel_tree_at(const sel_app *a, uint32_t lo, sel_weight w, uint64_t target)
{
    /* Turn the offset inside the range into an offset from leaf 0: at each
     * level, the siblings before the path (blocks further left are counted
     * by the level above). */
    for (uint32_t l = 0, j = lo; l + 1 < a->n_levels; l++, j /= SEL_FANOUT) {
        const sel_sum *x = a->sum + a->lvl_off[l];
        for (uint32_t i = j - j % SEL_FANOUT; i < j; i++)
            target += tree_weight(&x[i], w);
    }
    uint32_t j = 0;
    for (uint32_t l = a->n_levels - 1; l > 0; l--) {
        const sel_sum *c = a->sum + a->lvl_off[l - 1] + j * SEL_FANOUT;
        uint32_t i = 0;
        for (; i + 1 < SEL_FANOUT && target >= tree_weight(&c[i], w); i++)
            target -= tree_weight(&c[i], w);
        j = j * SEL_FANOUT + i;
    }
    return j < a->n_leaves ? sel_leaf_open(a, j) : -1;
}
