/*
 * Slave-side shedding (EP1180886 [0103]): a slave over its limit answers a NEW
 * client itself with a redirect to the least loaded slave of its zone, without
 * asking the master. It learns its zone peers and their loads from the
 * master's answers (SelectionInstruction.peers), never from etcd: load is
 * telemetry, and etcd holds state.
 *
 * "New" means: no preselection (a redirected client was sent here on purpose)
 * and not a client this slave has served for that app (its sticky clients are
 * still served, through the master, however full the slave is). The served
 * set is bounded: two generations of at most SHED_GEN entries each, the older
 * dropped when the newer fills, so it remembers the recent clients.
 *
 * Never redirects to a slave the client has visited, to itself, to a peer at
 * or over its own limit, to one that does not front the app, or on a peer
 * load older than SHED_STALE_MS; then the request goes to the master as usual.
 */
#include "shed.h"

#include "common/hmap.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHED_MAX_PEERS 16
#define SHED_GEN 32768
#define SHED_STALE_MS 30000

typedef struct shed_peer {
    char id[128];
    char endpoint[256];
    char api[256];  /* HTTP API base URL, "" when off */
    char apps[512]; /* ",a,b," or "" for all */
    uint32_t load, limit;
} shed_peer;

struct slave_shed {
    pthread_mutex_t lock; /* guards everything below */
    shed_peer peers[SHED_MAX_PEERS];
    size_t n_peers;
    int64_t peers_ms; /* monotonic time of the last update */
    hmap *served, *served_old;
    obs_counter *shed, *kept;
};

slave_shed *slave_shed_new(void)
{
    slave_shed *sh = lb_xcalloc(1, sizeof *sh);
    pthread_mutex_init(&sh->lock, NULL);
    sh->served = hmap_new();
    sh->served_old = hmap_new();
    sh->shed = obs_counter_get("slave_shed_total");
    sh->kept = obs_counter_get("slave_shed_kept_total");
    return sh;
}

void slave_shed_free(slave_shed **sh)
{
    if (sh == NULL || *sh == NULL)
        return;
    hmap_free(&(*sh)->served, NULL);
    hmap_free(&(*sh)->served_old, NULL);
    pthread_mutex_destroy(&(*sh)->lock);
    free(*sh);
    *sh = NULL;
}

static void served_key(const char *client, const char *app, char *out, size_t n)
{
    snprintf(out, n, "%s\n%s", client != NULL ? client : "", app != NULL ? app : "");
}

void slave_shed_learn(slave_shed *sh, const char *self, const Lb__ClientRequest *cr,
                      const Lb__SelectionInstruction *in)
{
    char key[256];
    pthread_mutex_lock(&sh->lock);
    if (in->n_peers > 0) {
        sh->n_peers = 0;
        for (size_t i = 0; i < in->n_peers && sh->n_peers < SHED_MAX_PEERS; i++) {
            const Lb__SlavePeer *p = in->peers[i];
            shed_peer *x = &sh->peers[sh->n_peers++];
            snprintf(x->id, sizeof x->id, "%s", p->slave_id);
            snprintf(x->endpoint, sizeof x->endpoint, "%s", p->endpoint);
            snprintf(x->api, sizeof x->api, "%s", p->api_endpoint != NULL ? p->api_endpoint : "");
            x->load = p->load;
            x->limit = p->limit;
            size_t len = 0;
            x->apps[0] = '\0';
            for (size_t j = 0; j < p->n_apps && len + 2 < sizeof x->apps; j++) {
                int w = snprintf(x->apps + len, sizeof x->apps - len, "%s%s,", len ? "" : ",",
                                 p->apps[j]);
                len += w > 0 ? (size_t)w : 0;
            }
        }
        sh->peers_ms = lb_mono_ms();
    }
    if (cr != NULL && in->action == LB__ACTION__SERVE && in->slave_id != NULL &&
        strcmp(in->slave_id, self) == 0) {
        served_key(cr->client_id, cr->app, key, sizeof key);
        if (hmap_get(sh->served, key) == NULL) {
            if (hmap_len(sh->served) >= SHED_GEN) {
                hmap_free(&sh->served_old, NULL);
                sh->served_old = sh->served;
                sh->served = hmap_new();
            }
            hmap_put(sh->served, key, (void *)1);
        }
    }
    pthread_mutex_unlock(&sh->lock);
}

static bool peer_fronts(const shed_peer *p, const char *app)
{
    char want[80];
    if (p->apps[0] == '\0')
        return true;
    snprintf(want, sizeof want, ",%s,", app);
    return strstr(p->apps, want) != NULL;
}

static bool was_visited(const Lb__ClientRequest *cr, const char *id)
{
    for (size_t i = 0; i < cr->n_visited; i++)
        if (cr->visited[i] != NULL && strcmp(cr->visited[i], id) == 0)
            return true;
    return false;
}

/* load/limit of a below b (cross-multiplied; limit 0 counts as empty). */
static bool peer_less(const shed_peer *a, const shed_peer *b)
{
    uint64_t l = (uint64_t)(a->limit ? a->load : 0) * (b->limit ? b->limit : 1);
    uint64_t r = (uint64_t)(b->limit ? b->load : 0) * (a->limit ? a->limit : 1);
    return l != r ? l < r : a->load < b->load;
}

bool slave_shed_pick(slave_shed *sh, const char *self, uint32_t load, uint32_t limit,
                     const Lb__ClientRequest *cr, char *id, size_t id_cap, char *ep, size_t ep_cap)
{
    char key[256];
    bool found = false;
    if (limit == 0 || load < limit)
        return false;
    if (cr->preselected != NULL)
        return false; /* sent here on purpose: the master already chose this slave */
    served_key(cr->client_id, cr->app, key, sizeof key);
    pthread_mutex_lock(&sh->lock);
    if (hmap_get(sh->served, key) != NULL || hmap_get(sh->served_old, key) != NULL) {
        obs_inc(sh->kept);
        goto out;
    }
    if (sh->n_peers == 0 || lb_mono_ms() - sh->peers_ms > SHED_STALE_MS)
        goto out;
    const shed_peer *best = NULL;
    for (size_t i = 0; i < sh->n_peers; i++) {
        const shed_peer *p = &sh->peers[i];
        if (strcmp(p->id, self) == 0 || p->endpoint[0] == '\0' || was_visited(cr, p->id) ||
            !peer_fronts(p, cr->app) || (p->limit > 0 && p->load >= p->limit))
            continue;
        if (best == NULL || peer_less(p, best))
            best = p;
    }
    if (best != NULL) {
        snprintf(id, id_cap, "%s", best->id);
        snprintf(ep, ep_cap, "%s", best->endpoint);
        obs_inc(sh->shed);
        found = true;
    }
out:
    pthread_mutex_unlock(&sh->lock);
    return found;
}

bool slave_shed_api(slave_shed *sh, const char *id, char *api, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < sh->n_peers && !found; i++)
        if (strcmp(sh->peers[i].id, id) == 0) {
            snprintf(api, cap, "%s", sh->peers[i].api);
            found = sh->peers[i].api[0] != '\0';
        }
    pthread_mutex_unlock(&sh->lock);
    if (!found && cap > 0)
        api[0] = '\0';
    return found;
}
