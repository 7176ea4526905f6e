/*
 * Leadership, fenced. A master leads when it won the `leader` key (a txn on
 * create_revision == 0, the key on its own lease) AND its lease is fresh: the
 * last successful refresh was sent less than 3/4 of the lease TTL ago. etcd
 * cannot expire the lease before that refresh + TTL, so a leader cut off from
 * etcd stops answering as leader before a standby can win the key: there is
 * never a moment with two masters answering as leader. Its queued writes are
 * fenced too (writer.c: every txn compares the leader key's value and lease).
 *
 * A master that won leads once its sessions/ watch has switched to leaving
 * out its own puts, with a reload (writer.c): a few ms after the election.
 *
 * One thread checks every 100 ms: it logs a step-down once, and it runs the
 * election the moment the view sees the leader key vacant (a SIGTERMed leader
 * revokes its lease, so a standby takes over at once).
 */
#include "master.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <string.h>

#define LEADER_CHECK_MS 100

static void leader_key(master *m, char *key, size_t cap)
{
    snprintf(key, cap, "%sleader", m->cfg.prefix);
}

/* Leads on lease from now, in a new term: the writer switches the session
 * watch for it, and master_leading waits for that (writer.c). */
static void lead_on(master *m, int64_t lease)
{
    atomic_store(&m->leader_lease, lease);
    atomic_fetch_add(&m->lead_term, 1);
    atomic_store(&m->is_leader, true);
    master_writer_wake(m);
}

void master_try_lead(master *m, int64_t lease)
{
    char key[512];
    leader_key(m, key, sizeof key);
    etcd_cmp cmp = {.key = key, .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0};
    etcd_op put = {.type = ETCD_OP_PUT,
                   .key = key,
                   .value = m->cfg.id,
                   .value_len = strlen(m->cfg.id),
                   .lease = lease};
    bool won = false;
    lb_errmsg em = {{0}};
    if (etcd_txn(m->etcd, &cmp, 1, &put, 1, NULL, 0, &won, NULL, &em) != LB_OK) {
        LOG_WARN("master", "leader election failed", "err=\"%s\"", em.text);
        return;
    }
    if (won) {
        lead_on(m, lease);
        obs_count("master_elections_won_total");
        LOG_INFO("master", "became leader", "id=%s lease=%llx", m->cfg.id,
                 (unsigned long long)lease);
    }
}

/* After a step-down whose cause passed (a short etcd outage), the key may still
 * be ours, on the lease we still keep: nobody else can win it until that lease
 * expires, which it never does while we refresh it. Take it back when a txn
 * confirms the key's value and lease are ours. */
static void try_resume(master *m, int64_t lease)
{
    char key[512];
    leader_key(m, key, sizeof key);
    etcd_cmp cmps[2] = {
        {.key = key,
         .target = ETCD_CMP_VALUE,
         .result = ETCD_CMP_EQUAL,
         .value = m->cfg.id,
         .value_len = strlen(m->cfg.id)},
        {.key = key, .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL, .number = lease}};
    etcd_op get = {.type = ETCD_OP_GET, .key = key};
    bool ours = false;
    lb_errmsg em = {{0}};
    if (etcd_txn(m->etcd, cmps, 2, &get, 1, NULL, 0, &ours, NULL, &em) != LB_OK || !ours)
        return;
    lead_on(m, lease);
    LOG_INFO("master", "leading again", "id=%s lease=%llx", m->cfg.id, (unsigned long long)lease);
}

/* Why this master must not act as leader now ("" when it may). */
static void leader_block(master *m, char *why, size_t cap)
{
    why[0] = '\0';
    int64_t lease = etcd_keeper_lease(m->keeper), won = atomic_load(&m->leader_lease);
    int64_t age = lb_mono_ms() - etcd_keeper_fresh_ms(m->keeper);
    int64_t limit = m->cfg.lease_ttl_ms * 3 / 4;
    char leader[128];
    reg_leader(m->view, leader, sizeof leader);
    if (won == 0 || lease != won)
        snprintf(why, cap, "the lease it won with is gone");
    else if (age >= limit)
        snprintf(why, cap, "leader lease not refreshed for %lldms (limit %lldms of ttl %lldms)",
                 (long long)age, (long long)limit, (long long)m->cfg.lease_ttl_ms);
    else if (leader[0] != '\0' && strcmp(leader, m->cfg.id) != 0)
        snprintf(why, cap, "etcd names leader '%s'", leader);
    /* an empty view (not loaded yet, or the key deleted under a live lease)
     * is no reason: the writer's compare fences a key that is really gone */
}

bool master_leading(master *m)
{
    if (!atomic_load(&m->is_leader))
        return false;
    /* its own session puts are filtered from its watch only once a reload
     * made after the election has its view complete (writer.c) */
    if (!master_view_synced(m, atomic_load(&m->lead_term)))
        return false;
    char why[256];
    leader_block(m, why, sizeof why);
    return why[0] == '\0';
}

static void *leader_main(void *arg)
{
    master *m = arg;
    while (!atomic_load(&m->stopping)) {
        lb_sleep_ms(LEADER_CHECK_MS);
        char why[256];
        if (atomic_load(&m->is_leader)) {
            leader_block(m, why, sizeof why);
            /* leader_lease stays: writes queued while leading still land if
             * the key turns out to be ours on that lease, and fail otherwise */
            if (why[0] != '\0' && atomic_exchange(&m->is_leader, false)) {
                master_writer_wake(m);
                obs_count("master_stepdowns_total");
                LOG_WARN("master", "stepped down as leader", "id=%s why=\"%s\"", m->cfg.id, why);
            }
            continue;
        }
        char leader[128];
        reg_leader(m->view, leader, sizeof leader);
        int64_t lease = etcd_keeper_lease(m->keeper);
        /* lead only on a lease refreshed within half its ttl: one that is
         * about to go stale would make leadership flap */
        bool fresh = lb_mono_ms() - etcd_keeper_fresh_ms(m->keeper) < m->cfg.lease_ttl_ms / 2;
        if (lease == 0 || !fresh || !atomic_load(&m->etcd_ok))
            continue;
        if (leader[0] == '\0')
            master_try_lead(m, lease);
        else if (strcmp(leader, m->cfg.id) == 0)
            try_resume(m, lease);
    }
    return NULL;
}

int master_leader_start(master *m)
{
    return pthread_create(&m->leader_thread, NULL, leader_main, m) == 0 ? 0 : -1;
}

void master_leader_stop(master *m)
{
    atomic_store(&m->stopping, true);
    pthread_join(m->leader_thread, NULL);
}
