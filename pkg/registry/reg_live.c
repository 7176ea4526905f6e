/* Processes alive in the master's view (reg.h): what lets a sticky repeat be
 * answered without a round trip to the agent. The agent reports each exit at
 * once (a report right after it reaps a child) and numbers its reports, so a
 * missing report is seen as a gap in seq; only then, or when the server is
 * down, is the knowledge dropped and the next repeat asks the agent again. */
#include "registry/reg_internal.h"

#include "common/util.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pid_key(char *out, size_t cap, int32_t pid)
{
    snprintf(out, cap, "%d", (int)pid);
}

void reg_live_clear(reg_server *s)
{
    if (s->live != NULL && hmap_len(s->live) > 0)
        obs_count("master_live_forgotten_total");
    hmap_free(&s->live, free);
}

static bool exited_recently(const reg_server *s, int32_t pid)
{
    if (s->exited_ring == NULL)
        return false;
    for (size_t i = 0; i < REG_EXITED_RING; i++)
        if (s->exited_ring[i] == pid)
            return true;
    return false;
}

void reg_live_on_load(reg_server *s, const Lb__ServerLoad *prev, const Lb__ServerLoad *l)
{
    /* a report lost in between (or an agent restarted: its seq starts over)
     * may have carried exits we never saw */
    if (prev == NULL || l->seq != prev->seq + 1)
        reg_live_clear(s);
    size_t ring = REG_EXITED_RING;
    if (l->n_exited_pids > 0 && s->exited_ring == NULL)
        s->exited_ring = lb_xcalloc(ring, sizeof *s->exited_ring);
    for (size_t i = 0; i < l->n_exited_pids; i++) {
        int32_t pid = l->exited_pids[i];
        s->exited_ring[s->exited_next++ % ring] = pid;
        if (s->live != NULL) {
            char key[16];
            pid_key(key, sizeof key, pid);
            free(hmap_del(s->live, key));
        }
    }
}

void reg_live_mark_locked(reg *r, const char *id, const Lb__ProcessId *p)
{
    reg_server *s = hmap_get(r->servers, id);
    /* no report yet: an exit before the first one would not be a gap */
    if (s == NULL || p == NULL || p->pid <= 0 || s->stale || s->conn_down || s->load == NULL ||
        exited_recently(s, p->pid))
        return;
    if (s->live == NULL)
        s->live = hmap_new();
    char key[16];
    pid_key(key, sizeof key, p->pid);
    int64_t *at = lb_xcalloc(1, sizeof *at);
    *at = p->started_at;
    free(hmap_put(s->live, key, at));
}

bool reg_live_alive_locked(reg *r, const Lb__Session *se)
{
    const Lb__ProcessId *p = se->process;
    reg_server *s = p != NULL ? hmap_get(r->servers, se->server_id) : NULL;
    if (s == NULL || s->live == NULL || s->stale || s->conn_down)
        return false;
    char key[16];
    pid_key(key, sizeof key, p->pid);
    const int64_t *at = hmap_get(s->live, key);
    return at != NULL && *at == p->started_at;
}

void reg_live_forget_locked(reg *r, const char *id, int32_t pid)
{
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL || s->live == NULL)
        return;
    char key[16];
    pid_key(key, sizeof key, pid);
    free(hmap_del(s->live, key));
}
