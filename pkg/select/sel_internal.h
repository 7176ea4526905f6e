/*
 * Internals of the selection policy, shared by its files and nothing else.
 *
 * The index (built once per snapshot, see index.c):
 *   - one sel_app per application name, sorted by name;
 *   - per app, its servers that can ever be eligible in this snapshot (up, not
 *     drained, not disabled, capacity > 0) sit as the leaves of one 8-ary tree
 *     (tree.c), ordered by (group_rank, region, zone, id). Every priority group,
 *     every region inside a group and every zone inside a region is therefore a
 *     contiguous leaf range, so each locality tier is one range query;
 *   - every tree node keeps the least-loaded key below it (one packed integer
 *     naming the server) and the capacity / usage sums of its open leaves, so
 *     least-loaded is a range minimum, its alternates a short best-first walk,
 *     and the random strategies weighted descents, all O(log n);
 *   - every group, region and zone range also keeps its sums (sel_agg), updated
 *     in O(1) on each load change, so tier utilisation costs nothing per request.
 * Load changes (add_pending, set_load) touch one leaf per app the server offers.
 */
#ifndef LB_SELECT_SEL_INTERNAL_H
#define LB_SELECT_SEL_INTERNAL_H

#include "select/sel.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sums over the non-full members of a range: what tier utilisation and the
 * overprovisioning health are computed from. */
typedef struct sel_agg {
    uint32_t nonfull; /* members with sessions + pending < capacity */
    uint64_t cap;     /* their capacity */
    uint64_t used;    /* their sessions + pending */
} sel_agg;

/* Capacity and usage of the open (below capacity) leaves under a tree node:
 * what the weighted draws descend by. */
typedef struct sel_sum {
    uint64_t cap;
    uint64_t used;
} sel_sum;

/* Tree fan-out: eight 8-byte keys are one cache line, so a level costs one
 * line and 10,000 servers are five levels (a binary tree would be fourteen). */
#define SEL_FANOUT 8
#define SEL_MAX_LEVELS 12

/* The least-loaded order packed in one integer, smaller is better:
 *   bits 63..40  utilisation (sessions + pending) / capacity in 1/2^24 steps
 *                (exact for capacities up to 4096; closer ties fall through),
 *   bits 39..20  free sessions, more is better (saturating at 2^20 - 1),
 *   bits 19..0   the server's id rank, so ties are deterministic.
 * Comparing integers keeps tree walks from touching the server array.
 * SEL_KEY_NONE marks a node with no open leaf below. */
#define SEL_KEY_NONE UINT64_MAX
#define SEL_KEY_FREE_MAX ((1u << 20) - 1)
#define SEL_KEY_RANK_MASK ((1u << 20) - 1)

/* A zone or region: leaves [lo, hi) of its app's tree. */
typedef struct sel_range {
    const char *region;
    const char *zone; /* NULL for a region range */
    uint32_t lo, hi;
    sel_agg agg;
} sel_range;

/* A priority group (all servers of one group_rank) inside one app. */
typedef struct sel_group {
    int rank;
    const char *name; /* the group name of its first server */
    uint32_t lo, hi;  /* its leaves (may be empty when none can serve) */
    sel_agg agg;
    uint64_t total_cap; /* capacity of every server of the group offering the app, any status */
    uint32_t zone0, n_zones;     /* into sel_app.zones, sorted by (region, zone) */
    uint32_t region0, n_regions; /* into sel_app.regions, sorted by region */
} sel_group;

typedef struct sel_app {
    const char *name;
    uint32_t n_leaves; /* members of the tree */
    int32_t *leaf;     /* [n_leaves] server index per leaf */
    /* The tree: level 0 holds the leaves, level n_levels - 1 the root; each
     * level below the root is padded to a multiple of SEL_FANOUT, and node j
     * of level l has children j * SEL_FANOUT .. + SEL_FANOUT - 1 of level l - 1. */
    uint32_t n_levels;
    uint32_t lvl_off[SEL_MAX_LEVELS]; /* first node of each level in key / sum */
    uint32_t lvl_n[SEL_MAX_LEVELS];   /* nodes per level, padding included */
    uint64_t *key;      /* least-loaded key under each node (SEL_KEY_NONE if none open) */
    sel_sum *sum;       /* open capacity / usage under each node */
    uint32_t *rank_pos; /* [n_servers] leaf of the server of each id rank, UINT32_MAX if none */
    uint32_t n_open;    /* open leaves */
    sel_group *groups;  /* sorted by rank */
    uint32_t n_groups;
    sel_range *regions;
    uint32_t n_regions;
    sel_range *zones;
    uint32_t n_zones;
    int32_t *all; /* every server offering the app, any status (explain, reasons) */
    uint32_t n_all;
    uint32_t n_down, n_ejected, n_drained, n_disabled, n_nocap; /* among `all`, in that order */
    uint32_t n_unreachable; /* could serve but no slave it is reachable_via fronts the app */
} sel_app;

/* One (server, app) membership of a tree leaf, so a load change finds its leaves
 * and the group / region / zone sums to adjust without searching. */
typedef struct sel_member {
    uint32_t app, pos, group, region, zone;
} sel_member;

typedef struct sel_zmap {
    const char *zone;
    const char *region;
} sel_zmap;

/* A slot of the server id hash (affinity lookups): O(1) instead of a binary
 * search whose every probe would touch another server's string. */
typedef struct sel_hslot {
    uint32_t hash;
    int32_t idx; /* -1 when empty */
} sel_hslot;

struct sel_snapshot {
    sel_server *servers;
    size_t n_servers;
    sel_slave *slaves;
    size_t n_slaves;
    uint32_t *id_rank;  /* [n_servers] position of the server's id in id order: tiebreak */
    int32_t *by_id;     /* server indices sorted by id: by_id[id_rank[i]] == i */
    sel_hslot *id_hash; /* open addressing, a power of two >= 2 * n_servers slots */
    uint32_t id_hash_mask;
    int32_t *slave_by_id;   /* slave indices sorted by id */
    int32_t *slave_by_zone; /* slave indices sorted by zone */
    sel_app *apps;          /* sorted by name */
    size_t n_apps;
    uint32_t *mem_off; /* [n_servers + 1]: server i's memberships are mem[mem_off[i] ..] */
    sel_member *mem;
    sel_zmap *zmap; /* zone -> region of its servers, sorted by zone (client region) */
    size_t n_zmap;
};

/* --- index.c ------------------------------------------------------------- */
const sel_app *sel_app_find(const sel_snapshot *s, const char *name);
int sel_server_find(const sel_snapshot *s, const char *id);
int sel_slave_find(const sel_snapshot *s, const char *id);
/* Position of the first slave of zone in slave_by_zone (n_slaves when none). */
size_t sel_slave_zone_lower(const sel_snapshot *s, const char *zone);
const char *sel_zone_region(const sel_snapshot *s, const char *zone);
/* Leaf position of server idx in app a's tree, or -1 when it is not a member. */
int sel_member_pos(const sel_snapshot *s, const sel_app *a, int idx);
const sel_member *sel_member_of(const sel_snapshot *s, const sel_app *a, int idx);

/* --- tree.c -------------------------------------------------------------- */
static inline uint64_t sel_used(const sel_server *sv)
{
    return (uint64_t)sv->sessions + sv->pending;
}

static inline bool sel_full(const sel_server *sv)
{
    return sel_used(sv) >= sv->capacity;
}

/* Server at leaf pos when it is below capacity, else -1. */
static inline int sel_leaf_open(const sel_app *a, uint32_t pos)
{
    return a->key[pos] != SEL_KEY_NONE ? a->leaf[pos] : -1;
}

/* Server idx's key (see SEL_KEY_NONE); full servers get the worst key. */
uint64_t sel_key_of(const sel_snapshot *s, int idx);

/* True when server a ranks before b for least-loaded: lower utilisation
 * (sessions + pending) / capacity, then more free sessions (the bigger server
 * has more absolute room), then id order, so ties are deterministic whatever
 * the input order. */
bool sel_less(const sel_snapshot *s, int a, int b);

/* Allocates the tree for a->n_leaves leaves and keys every leaf. */
lb_err sel_tree_init(const sel_snapshot *s, sel_app *a);
void sel_tree_free(sel_app *a);
/* Re-keys leaf pos after its server's load changed; returns the leaf's sums
 * before and after (nonfull 0 or 1) for the range sums to follow. */
void sel_tree_update(const sel_snapshot *s, sel_app *a, uint32_t pos, sel_agg *before,
                     sel_agg *after);
/* Sums of leaves [lo, hi) by a scan: for building only. */
sel_agg sel_tree_range_agg(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi);

typedef enum sel_weight { SEL_W_CAP, SEL_W_FREE } sel_weight;

/* Extra conditions on candidates: the request's requirements (when it has
 * any) and a few servers to skip (alternates). */
typedef struct sel_filter {
    const sel_request *req; /* NULL when the request has no requirements */
    const int *skip;
    size_t n_skip;
} sel_filter;

bool sel_filter_ok(const sel_snapshot *s, const sel_filter *f, int idx);

/* Writes to out the (at most k) least-loaded non-full members of leaves
 * [lo, hi) that pass f, best first; returns how many. Each answer is a range
 * minimum that leaves out the servers already seen, so the cost grows with
 * the candidates f rejects, not with hi - lo (it falls back to a scan of the
 * range when f rejects very many). */
size_t sel_tree_best(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi,
                     const sel_filter *f, int *out, size_t k);

/* Server at weighted offset target (< weight of [lo, hi)) inside [lo, hi). */
int sel_tree_at(const sel_app *a, uint32_t lo, sel_weight w, uint64_t target);
uint64_t sel_agg_weight(const sel_agg *g, sel_weight w);

/* --- eligible.c ---------------------------------------------------------- */
bool sel_has_requirements(const sel_request *req);
/* True when sv meets req's cpu, memory and label requirements; otherwise
 * writes what is missing to detail (when not NULL). */
bool sel_meets(const sel_server *sv, const sel_request *req, char *detail, size_t n);
bool sel_offers(const sel_server *sv, const char *app);
/* Slave sl fronts app (its apps list is empty or names it). */
bool sel_slave_fronts(const sel_slave *sl, const char *app);
/* Server sv may be paired with slave sl (sv->reachable_via empty, or naming
 * sl's id or zone). */
bool sel_slave_reaches(const sel_slave *sl, const sel_server *sv);
/* Some slave of s reaches sv and fronts app. O(slaves) when sv has a
 * reachable_via; the index decides it once per snapshot for the request path. */
bool sel_reachable(const sel_snapshot *s, const sel_server *sv, const char *app);
/* The first rule that excludes server idx for req (SEL_V_RANKED when it is
 * eligible), with the numbers in detail (when not NULL). */
sel_verdict_kind sel_classify(const sel_snapshot *s, int idx, const sel_request *req, char *detail,
                              size_t n);
/* The same for a client whose session is on idx already: drained and full do
 * not exclude it (drain stops new sessions, not existing ones). */
sel_verdict_kind sel_classify_sticky(const sel_snapshot *s, int idx, const sel_request *req,
                                     char *detail, size_t n);
/* "no eligible server for app 'echo': 2 down, 1 full" */
void sel_no_server_reason(const sel_snapshot *s, const sel_app *a, const sel_request *req,
                          char *out, size_t n);
void sel_format_bytes(uint64_t b, char *out, size_t n);

/* --- strategy.c ---------------------------------------------------------- */
uint64_t sel_rand(sel_state *st);
uint64_t sel_rand_below(sel_state *st, uint64_t n);
double sel_rand01(sel_state *st);
sel_strategy sel_strategy_for(const sel_policy *p, const char *app);
/* Picks one server from leaves [lo, hi) by strategy; -1 when none passes f. */
int sel_pick(const sel_snapshot *s, const sel_app *a, uint32_t lo, uint32_t hi, const sel_agg *agg,
             sel_strategy st, const sel_filter *f, sel_state *state);

/* --- plan.c -------------------------------------------------------------- */
#define SEL_MAX_TIERS 3

typedef enum sel_tier_kind { SEL_TIER_ZONE, SEL_TIER_REGION, SEL_TIER_ANY } sel_tier_kind;

typedef struct sel_tier {
    sel_tier_kind kind;
    uint32_t lo, hi;
    const sel_agg *agg;
    const char *name; /* zone or region name, "" for anywhere */
} sel_tier;

/* The client's locality, resolved once per request. */
typedef struct sel_loc {
    const char *zone;   /* NULL when unknown */
    const char *region; /* NULL when unknown */
} sel_loc;

/* Where a request goes: a group and a tier inside it. */
typedef struct sel_plan {
    int group; /* index into app->groups, -1 when nothing is eligible */
    int tier;  /* index into tiers */
    sel_tier tiers[SEL_MAX_TIERS];
    size_t n_tiers;
    bool walked;   /* the tier was walked for requirements: best[] holds its */
    size_t n_best; /* least-loaded eligible servers, best first */
    int best[1 + SEL_MAX_ALTERNATES];
    double health; /* the best group's health when overprovisioning, else 1 */
} sel_plan;

void sel_loc_resolve(const sel_snapshot *s, const sel_request *req, sel_loc *loc);
size_t sel_tiers(const sel_app *a, const sel_group *g, const sel_loc *loc,
                 sel_tier out[SEL_MAX_TIERS]);
/* want: how many least-loaded candidates to collect when a tier has to be
 * walked to know whether it holds an eligible server (requirements). */
void sel_plan_make(const sel_snapshot *s, const sel_app *a, const sel_policy *p, const sel_loc *loc,
                   const sel_filter *f, size_t want, sel_state *st, sel_plan *plan);
/* Fills alt with up to k alternates in rank order, never `chosen`. When pre
 * is not NULL the chosen tier was already walked and gave pre[0..n_pre),
 * all it holds after `chosen` when n_pre < k. */
size_t sel_alternates(const sel_snapshot *s, const sel_app *a, const sel_plan *plan,
                      const sel_loc *loc, const sel_request *req, int chosen, const int *pre,
                      size_t n_pre, int *alt, size_t k);

/* --- explain.c ----------------------------------------------------------- */
void sel_explain(const sel_snapshot *s, const sel_app *a, const sel_policy *p,
                 const sel_request *req, const sel_loc *loc, const sel_plan *plan,
                 const sel_result *res, sel_verdict *v);

/* --- slave.c ------------------------------------------------------------- */
/* The slave for server under req's rules (sel.h rule 6); *rule says which
 * step chose it. -1 when no slave fronts the app (or there are none). */
int sel_slave_choose(const sel_snapshot *s, const sel_server *server, const sel_request *req,
                     sel_slave_rule *rule);

#endif
