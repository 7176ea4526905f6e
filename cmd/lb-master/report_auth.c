/*
 * Per-agent identity of load reports (auth/report_sig.h): a ServerLoad for
 * server X is applied only when it is signed by the key X published in its
 * servers/X record, carries a seq above the last one applied from X, and was
 * made within REPORT_MAX_SKEW_MS of our clock (a master that restarted has
 * forgotten the seqs: the window bounds what a replay can bring back).
 * A record with no key (an agent older than this, or loadgen's fake servers)
 * is trusted as before: only that agent's etcd user can write it, and every
 * agent of this version publishes a key, so another agent cannot strip it.
 *
 * Only the reports thread calls this: the state below is not locked.
 */
#include "master.h"

#include "auth/report_sig.h"
#include "common/hmap.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>

#define REPORT_MAX_SKEW_MS (5 * 60 * 1000)
#define REPORT_LOG_EVERY_MS 60000

typedef struct report_peer {
    uint64_t last_seq;
    int64_t last_log_ms; /* monotonic; refusals are logged once a minute per server */
} report_peer;

static hmap *peers; /* server id -> report_peer; grows with the servers ever seen */

static void refuse(const Lb__ServerLoad *l, report_peer *p, const char *reason)
{
    char name[96];
    snprintf(name, sizeof name, "master_reports_refused_total{reason=\"%s\"}", reason);
    obs_count(name);
    int64_t now = lb_mono_ms();
    if (p->last_log_ms == 0 || now - p->last_log_ms >= REPORT_LOG_EVERY_MS) {
        p->last_log_ms = now;
        LOG_WARN("master", "load report refused", "server=%s reason=%s seq=%llu", l->server_id,
                 reason, (unsigned long long)l->seq);
    }
}

bool master_report_admit(master *m, const Lb__ServerLoad *l)
{
    unsigned char pk[AUTH_PK_BYTES];
    int n = reg_server_report_key(m->view, l->server_id, pk, sizeof pk);
    if (n <= 0)
        return true; /* unknown (ignored later) or keyless record: see above */
    if (peers == NULL)
        peers = hmap_new();
    report_peer *p = hmap_get(peers, l->server_id);
    if (p == NULL) {
        p = lb_xcalloc(1, sizeof *p);
        hmap_put(peers, l->server_id, p);
    }
    if (n != AUTH_PK_BYTES) {
        refuse(l, p, "bad_key");
        return false;
    }
    if (l->sig.len == 0) {
        refuse(l, p, "unsigned");
        return false;
    }
    if (!auth_report_verify(l, pk, sizeof pk)) {
        refuse(l, p, "bad_signature");
        return false;
    }
    int64_t skew = lb_wall_ms() - l->at_ms;
    if (skew > REPORT_MAX_SKEW_MS || skew < -REPORT_MAX_SKEW_MS) {
        refuse(l, p, "stale");
        return false;
    }
    if (l->seq <= p->last_seq) {
        refuse(l, p, "replayed");
        return false;
    }
    p->last_seq = l->seq;
    return true;
}

void master_report_auth_free(void)
{
    hmap_free(&peers, free);
}
