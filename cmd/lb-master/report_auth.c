/*
 * Per-peer identity of load reports. A ServerLoad for server X is applied
 * only when it is authenticated by the key X published in its servers/X
 * record, carries a seq above the last one applied from X, and was made
 * within REPORT_MAX_SKEW_MS of our clock (the seqs are forgotten when the
 * master restarts: the window bounds what a replayed signature can bring
 * back; a MAC cannot be replayed across a restart at all, the key is new).
 *
 * Authenticated means, checked in this order (README "Security model"):
 *  1. a MAC addressed to us (auth/report_mac.h) that verifies under the pair
 *     key derived from our X25519 key and X's Ed25519 key: ~1 us. The pair key
 *     is derived once per server (and again when X's registered key changes)
 *     and cached here: one X25519 (~60 us) per server per master process;
 *  2. else an Ed25519 signature by X's key (auth/report_sig.h): ~50 us, for
 *     agents that do not know our key yet (started before we registered, or
 *     older agents).
 * A record with no key (an agent older than report signing, or loadgen with
 * --no-auth) is trusted as before: only that agent's etcd user can write it,
 * and every agent of this version publishes a key, so another agent cannot
 * strip it.
 *
 * Slaves (tens, reporting once a second) only sign: a SlaveLoad for slave X
 * is applied only when signed by the key in slaves/X, fresh and not replayed,
 * by the same rules (master_slave_report_admit). Refusals are counted
 * (master_reports_refused_total{reason} for agents,
 * master_slave_reports_refused_total{reason} for slaves) and logged once a
 * minute per peer.
 *
 * Over UDP (reports_udp.c: anyone can send a datagram) a report is admitted
 * only by a valid MAC addressed to us (mac_only): never by signature, whose
 * ~50 us verify per forged datagram would let a flood cost us a core, and
 * never for a keyless or unknown server. Those refusals and the datagrams
 * that do not decode are counted under the same metric and logged at most
 * once a minute in all (master_report_refuse): a flood cannot fill the log.
 *
 * Threads: the nng reports thread and the UDP one; auth_lock guards the
 * state below (uncontended: ~20 ns against the ~1 us MAC).
 */
#include "master.h"

#include "auth/report_mac.h"
#include "auth/report_sig.h"
#include "common/hmap.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX_SKEW_MS (5 * 60 * 1000)
#define REPORT_LOG_EVERY_MS 60000

typedef struct report_peer {
    uint64_t last_seq;
    int64_t last_log_ms; /* monotonic; refusals are logged once a minute per server */
    bool has_key;        /* key below is the pair key of id_pk */
    unsigned char id_pk[AUTH_PK_BYTES];
    unsigned char key[AUTH_MAC_KEY_BYTES];
} report_peer;

static pthread_mutex_t auth_lock = PTHREAD_MUTEX_INITIALIZER;
static hmap *peers;  /* server id -> report_peer; grows with the (known) servers ever seen */
static hmap *slaves; /* slave id -> report_peer; likewise */
static obs_counter *c_mac, *c_sig, *c_keyless;

/* Counts and (once a minute per peer) logs a refusal; slave: a SlaveLoad's. */
static void refuse_peer(bool slave, const char *id, uint64_t seq, report_peer *p,
                        const char *reason)
{
    char name[96];
    snprintf(name, sizeof name, "%s{reason=\"%s\"}",
             slave ? "master_slave_reports_refused_total" : "master_reports_refused_total", reason);
    obs_count(name);
    int64_t now = lb_mono_ms();
    if (p->last_log_ms == 0 || now - p->last_log_ms >= REPORT_LOG_EVERY_MS) {
        p->last_log_ms = now;
        /* the log escapes the peer-chosen id */
        LOG_WARN("master", slave ? "slave load report refused" : "load report refused",
                 "%s=%s reason=%s seq=%llu", slave ? "slave" : "server", id, reason,
                 (unsigned long long)seq);
    }
}

/* Refusals not tied to a known server (UDP): one log line a minute in all. */
static atomic_llong anon_last_log_ms;

void master_report_refuse(const char *reason, const char *from, const char *detail)
{
    char name[96];
    snprintf(name, sizeof name, "master_reports_refused_total{reason=\"%s\"}", reason);
    obs_count(name);
    long long now = lb_mono_ms(), last = atomic_load(&anon_last_log_ms);
    bool log = (last == 0 || now - last >= REPORT_LOG_EVERY_MS) &&
               atomic_compare_exchange_strong(&anon_last_log_ms, &last, now);
    if (log) /* the log escapes detail (a peer-chosen id) */
        LOG_WARN("master", "load report datagram refused (next such line in a minute at most)",
                 "reason=%s from=%s detail=\"%s\"", reason, from, detail);
}

static void refuse(const Lb__ServerLoad *l, report_peer *p, const char *reason)
{
    refuse_peer(false, l->server_id, l->seq, p, reason);
}

/* NULL when a report made at at_ms with seq may be applied after p's last. */
static const char *fresh(const report_peer *p, int64_t at_ms, uint64_t seq)
{
    int64_t skew = lb_wall_ms() - at_ms;
    if (skew > REPORT_MAX_SKEW_MS || skew < -REPORT_MAX_SKEW_MS)
        return "stale";
    return seq <= p->last_seq ? "replayed" : NULL;
}

static report_peer *peer_of(hmap **map, const char *id)
{
    if (*map == NULL)
        *map = hmap_new();
    report_peer *p = hmap_get(*map, id);
    if (p == NULL) {
        p = lb_xcalloc(1, sizeof *p);
        hmap_put(*map, id, p);
    }
    return p;
}

/* NULL reason: authentic. Else why not. */
static const char *authenticate(master *m, const Lb__ServerLoad *l, report_peer *p,
                                const unsigned char pk[AUTH_PK_BYTES], bool mac_only)
{
    int i = auth_report_mac_find(l, m->kx_pk);
    if (i < 0 && mac_only)
        return "no_mac";
    if (i >= 0) {
        if (!p->has_key || sodium_memcmp(p->id_pk, pk, AUTH_PK_BYTES) != 0) {
            p->has_key = false;
            if (auth_mac_key_master(p->key, m->kx_sk, m->kx_pk, pk) != LB_OK)
                return "bad_key";
            memcpy(p->id_pk, pk, AUTH_PK_BYTES);
            p->has_key = true;
        }
        if (!auth_report_mac_verify(l, (size_t)i, p->key))
            return "bad_mac";
        obs_inc(c_mac);
        return NULL;
    }
    if (l->sig.len == 0)
        return "unsigned";
    if (!auth_report_verify(l, pk, AUTH_PK_BYTES))
        return "bad_signature";
    obs_inc(c_sig);
    return NULL;
}

static bool admit_locked(master *m, const Lb__ServerLoad *l, bool mac_only, const char *from)
{
    if (peers == NULL) {
        peers = hmap_new();
        c_mac = obs_counter_get("master_reports_authenticated_total{by=\"mac\"}");
        c_sig = obs_counter_get("master_reports_authenticated_total{by=\"signature\"}");
        c_keyless = obs_counter_get("master_reports_authenticated_total{by=\"none\"}");
    }
    unsigned char pk[AUTH_PK_BYTES];
    int n = reg_server_report_key(m->view, l->server_id, pk, sizeof pk);
    if (n <= 0 && mac_only) { /* no per-server state for ids anyone can make up */
        master_report_refuse(n < 0 ? "unknown_server" : "unsigned", from, l->server_id);
        return false;
    }
    if (n <= 0) {
        if (n == 0)
            obs_inc(c_keyless);
        return true; /* unknown (ignored later) or keyless record: see above */
    }
    report_peer *p = peer_of(&peers, l->server_id);
    if (n != AUTH_PK_BYTES) {
        refuse(l, p, "bad_key");
        return false;
    }
    const char *why = authenticate(m, l, p, pk, mac_only);
    if (why != NULL) {
        refuse(l, p, why);
        return false;
    }
    if ((why = fresh(p, l->at_ms, l->seq)) != NULL) {
        refuse(l, p, why);
        return false;
    }
    p->last_seq = l->seq;
    return true;
}

bool master_report_admit(master *m, const Lb__ServerLoad *l, bool mac_only, const char *from)
{
    pthread_mutex_lock(&auth_lock);
    bool ok = admit_locked(m, l, mac_only, from);
    pthread_mutex_unlock(&auth_lock);
    return ok;
}

bool master_slave_report_admit(master *m, const Lb__SlaveLoad *l)
{
    unsigned char pk[AUTH_PK_BYTES];
    int n = reg_slave_report_key(m->view, l->slave_id, pk, sizeof pk);
    if (n <= 0)
        return true; /* unknown (ignored later) or keyless record: see above */
    pthread_mutex_lock(&auth_lock);
    report_peer *p = peer_of(&slaves, l->slave_id);
    const char *why = n != AUTH_PK_BYTES                          ? "bad_key"
                      : l->sig.len == 0                           ? "unsigned"
                      : !auth_slave_load_verify(l, pk, sizeof pk) ? "bad_signature"
                                                                  : fresh(p, l->at_ms, l->seq);
    if (why == NULL)
        p->last_seq = l->seq;
    else
        refuse_peer(true, l->slave_id, l->seq, p, why);
    pthread_mutex_unlock(&auth_lock);
    return why == NULL;
}

void master_report_auth_free(void)
{
    pthread_mutex_lock(&auth_lock);
    hmap_free(&peers, free);
    hmap_free(&slaves, free);
    pthread_mutex_unlock(&auth_lock);
}
