/*
 * Server health as the master sees it, beside what etcd says: reports that
 * stopped (or never came), the connection to the agent closing, and outlier
 * ejection after launch failures (Envoy's consecutive-failure detector: the
 * ejection time doubles with each ejection in a row, up to a cap, and at most
 * a share of the servers is ejected at once so a cluster-wide fault does not
 * empty the selection).
 */
#include "registry/reg_internal.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reg_set_eject_cfg(reg *r, const reg_eject_cfg *c)
{
    reg_lock(r);
    r->eject = *c;
    if (r->eject.consecutive == 0)
        r->eject.consecutive = 1;
    reg_unlock(r);
}

void reg_set_conn(reg *r, const char *id, bool up)
{
    reg_lock(r);
    reg_server *s = hmap_get(r->servers, id);
    if (s != NULL && s->conn_down == up) {
        s->conn_down = !up;
        r->dirty = true;
        reg_live_clear(s); /* exits while it was away went unreported */
        if (up) {
            LOG_INFO("registry", "agent connection back", "server=%s", id);
        } else {
            LOG_WARN("registry", "agent connection lost; server down", "server=%s", id);
            obs_count("master_agent_disconnects_total");
        }
    }
    reg_unlock_settled(r);
}

static void end_ejection(reg *r, reg_server *s, const char *why)
{
    s->ejected_until_ms = 0;
    if (r->n_ejected > 0)
        r->n_ejected--;
    r->dirty = true;
    LOG_INFO("registry", "server back from ejection", "server=%s why=%s", s->info->id, why);
}

bool reg_launch_failed(reg *r, const char *id, const char *why, bool conn)
{
    bool ejected = false;
    reg_lock(r);
    reg_server *s = hmap_get(r->servers, id);
    if (s == NULL || s->ejected_until_ms != 0)
        goto out;
    s->consec_failures++;
    if (!conn && s->consec_failures < r->eject.consecutive)
        goto out;
    size_t n = hmap_len(r->servers);
    /* the cap, but one server may always be ejected */
    if (r->n_ejected > 0 && (r->n_ejected + 1) * 100 > (size_t)r->eject.max_percent * n) {
        obs_count("master_ejections_skipped_total");
        goto out;
    }
    int64_t t = r->eject.base_ms;
    for (uint32_t i = 0; i < s->ejections && t < r->eject.max_ms; i++)
        t *= 2;
    if (t > r->eject.max_ms)
        t = r->eject.max_ms;
    s->ejections++;
    s->ejected_until_ms = lb_mono_ms() + t;
    char reason[160];
    snprintf(reason, sizeof reason, "%" PRIu32 " launch failure%s: %.120s", s->consec_failures,
             s->consec_failures == 1 ? "" : "s", why);
    free(s->eject_reason);
    s->eject_reason = lb_strdup(reason);
    r->n_ejected++;
    r->dirty = true;
    ejected = true;
    obs_count("master_ejections_total");
    LOG_WARN("registry", "server ejected", "server=%s for_ms=%lld ejections=%" PRIu32 " why=\"%s\"",
             id, (long long)t, s->ejections, s->eject_reason);
out:
    reg_unlock_settled(r);
    return ejected;
}

void reg_launch_ok(reg *r, const char *id)
{
    reg_lock(r);
    reg_server *s = hmap_get(r->servers, id);
    if (s != NULL) {
        s->consec_failures = 0;
        s->ejections = 0; /* a success after an ejection ends the backoff */
    }
    reg_unlock(r);
}

void reg_check_stale(reg *r)
{
    int64_t now = lb_mono_ms();
    reg_lock(r);
    size_t it = 0;
    const char *id;
    void *v;
    while (hmap_next(r->servers, &it, &id, &v)) {
        reg_server *s = v;
        if (s->ejected_until_ms != 0 && now >= s->ejected_until_ms)
            end_ejection(r, s, "backoff over");
        if (r->report_stale_ms <= 0)
            continue;
        /* a server that registered and never reported is as dead as one that
         * stopped reporting */
        bool stale = s->load != NULL ? now - s->load_at_ms > r->report_stale_ms
                                     : now - s->seen_at_ms > r->report_stale_ms;
        if (stale != s->stale) {
            s->stale = stale;
            reg_live_clear(s);
            r->dirty = true;
            LOG_WARN("registry",
                     stale ? (s->load != NULL ? "server reports stopped" : "server never reported")
                           : "server reports resumed",
                     "server=%s", id);
        }
    }
    reg_unlock_settled(r);
}

void reg_health_detail_locked(const reg *r, const reg_server *s, char *out, size_t cap)
{
    int64_t now = lb_mono_ms();
    out[0] = '\0';
    if (s->conn_down)
        snprintf(out, cap, "agent connection closed");
    else if (s->stale && s->load == NULL)
        snprintf(out, cap, "never reported (registered %.1fs ago, report_stale %.1fs)",
                 (double)(now - s->seen_at_ms) / 1000, (double)r->report_stale_ms / 1000);
    else if (s->stale)
        snprintf(out, cap, "no load report for %.1fs (report_stale %.1fs)",
                 (double)(now - s->load_at_ms) / 1000, (double)r->report_stale_ms / 1000);
    else if (s->ejected_until_ms != 0)
        snprintf(out, cap, "%s; %.1fs left", s->eject_reason != NULL ? s->eject_reason : "",
                 (double)(s->ejected_until_ms > now ? s->ejected_until_ms - now : 0) / 1000);
}

void reg_health_counts_locked(const reg *r, size_t *ejected, size_t *down)
{
    size_t it = 0, d = 0;
    const char *id;
    void *v;
    while (hmap_next(r->servers, &it, &id, &v)) {
        const reg_server *s = v;
        d += s->stale || s->conn_down;
    }
    *ejected = r->n_ejected;
    *down = d;
}
