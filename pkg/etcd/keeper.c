/*
 * The keeper: a thread that keeps one lease alive (one keepalive POST every
 * ttl/4) and, when the lease is lost (etcd says it is gone, or no refresh went
 * through for a whole ttl), grants a new one and calls on_granted again so the
 * owner puts its keys back.
 *
 * The first grant and on_granted run in etcd_keeper_start, on the caller's
 * thread, so a daemon learns at once when its keys cannot be written. When etcd
 * cannot be reached at all the start still succeeds (logged, counted) and the
 * keeper's thread goes on trying: a daemon must come up before etcd does.
 */
#include "etcd/internal.h"
#include "etcd/nap.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 200
#define RETRY_MAX_MS 5000

typedef enum keep_state { KEEP_OK, KEEP_FAILING, KEEP_LOST } keep_state;

struct etcd_keeper {
    etcd_client *c;
    int64_t ttl_s;
    lb_err (*on_granted)(void *arg, int64_t lease_id);
    void *arg;
    atomic_llong lease; /* 0 while there is none */
    atomic_bool ok;     /* the last grant or refresh succeeded (health) */
    atomic_llong fresh; /* monotonic ms when the last successful grant or refresh
                           was sent: etcd cannot expire the lease before fresh + ttl */
    keep_state state;   /* logged on changes only */
    etcd_nap nap;
    pthread_t thr;
};

static void set_state(etcd_keeper *k, keep_state s, lb_err err, const char *why)
{
    if (k->state == s)
        return;
    k->state = s;
    long long id = (long long)atomic_load(&k->lease);
    if (s == KEEP_OK)
        LOG_INFO("etcd", "lease kept alive", "lease=%llx ttl=%lld", (unsigned long long)id,
                 (long long)k->ttl_s);
    else if (s == KEEP_FAILING)
        LOG_WARN("etcd", "lease refresh failing; retrying", "lease=%llx err=\"%s\" why=\"%s\"",
                 (unsigned long long)id, lb_strerror(err), why);
    else
        LOG_WARN("etcd", "lease lost; granting a new one", "err=\"%s\" why=\"%s\"",
                 lb_strerror(err), why);
}

/* Grants a lease and has the owner attach its keys; revokes it if that fails. */
static lb_err grant_and_publish(etcd_keeper *k, lb_errmsg *em)
{
    int64_t id = 0, sent = lb_mono_ms();
    lb_err rc = etcd_lease_grant(k->c, k->ttl_s, &id, em);
    if (rc != LB_OK)
        goto out;
    rc = k->on_granted(k->arg, id);
    if (rc != LB_OK) {
        lb_fail(em, rc, "on_granted(lease %llx) failed: %s", (unsigned long long)id,
                lb_strerror(rc));
        etcd_lease_revoke(k->c, id, NULL);
        goto out;
    }
    atomic_store(&k->fresh, sent);
    atomic_store(&k->lease, id);
    atomic_store(&k->ok, true);
    obs_count("etcd_keeper_grants_total");
out:
    return rc;
}

static int64_t grow(int64_t ms, int64_t cap)
{
    return ms * 2 < cap ? ms * 2 : cap;
}

static void *keeper_main(void *arg)
{
    etcd_keeper *k = arg;
    const int64_t ttl_ms = k->ttl_s * 1000;
    /* a quarter of the ttl: a lease owner that fences itself (steps down when
     * no refresh went through for 3/4 of the ttl) survives two lost refreshes */
    const int64_t period = ttl_ms / 4 > 100 ? ttl_ms / 4 : 100;
    int64_t last_ok = lb_mono_ms(), retry = RETRY_MIN_MS;
    int64_t wait = atomic_load(&k->lease) != 0 ? period : RETRY_MIN_MS;
    lb_errmsg em = {{0}};
    while (etcd_nap_sleep(&k->nap, wait)) {
        int64_t id = atomic_load(&k->lease);
        if (id != 0) {
            int64_t sent = lb_mono_ms();
            lb_err rc = etcd_lease_keepalive(k->c, id, NULL, &em);
            if (rc == LB_OK) {
                last_ok = lb_mono_ms();
                atomic_store(&k->fresh, sent);
                atomic_store(&k->ok, true);
                set_state(k, KEEP_OK, rc, "");
                wait = period;
                retry = RETRY_MIN_MS;
                continue;
            }
            atomic_store(&k->ok, false);
            if (rc != LB_ENOTFOUND && lb_mono_ms() - last_ok <= ttl_ms) {
                set_state(k, KEEP_FAILING, rc, em.text); /* the lease may still live */
                wait = retry < period ? retry : period;
                retry = grow(retry, period);
                continue;
            }
            set_state(k, KEEP_LOST, rc, em.text);
            atomic_store(&k->lease, 0);
        }
        lb_err rc = grant_and_publish(k, &em);
        if (rc == LB_OK) {
            last_ok = lb_mono_ms();
            set_state(k, KEEP_OK, rc, "");
            wait = period;
            retry = RETRY_MIN_MS;
        } else {
            set_state(k, KEEP_LOST, rc, em.text);
            wait = retry;
            retry = grow(retry, RETRY_MAX_MS);
        }
    }
    return NULL;
}

static void keeper_free(etcd_keeper *k)
{
    if (k == NULL)
        return;
    etcd_nap_destroy(&k->nap);
    free(k);
}

lb_err etcd_keeper_start(etcd_client *c, int64_t ttl_s,
                         lb_err (*on_granted)(void *arg, int64_t lease_id), void *arg,
                         etcd_keeper **out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    etcd_keeper *k = NULL;
    *out = NULL;
    if (c == NULL || ttl_s <= 0 || on_granted == NULL) {
        rc = lb_fail(em, LB_EINVAL, "etcd_keeper_start: client, ttl > 0, on_granted required");
        goto out;
    }
    k = lb_xcalloc(1, sizeof *k);
    etcd_nap_init(&k->nap);
    k->c = c;
    k->ttl_s = ttl_s;
    k->on_granted = on_granted;
    k->arg = arg;
    atomic_init(&k->lease, 0);
    atomic_init(&k->fresh, 0);
    k->state = KEEP_OK;
    rc = grant_and_publish(k, em);
    if (rc == LB_EAUTH) {
        /* refused credentials or permissions can be fixed in etcd while we run */
        obs_count("etcd_keeper_start_refused_total");
        LOG_ERROR("etcd", "etcd refused our keys; retrying until it accepts them",
                  "err=\"%s\" why=\"%s\"", lb_strerror(rc), em != NULL ? em->text : "");
        k->state = KEEP_LOST;
        rc = LB_OK;
    } else if (rc == LB_EUNAVAIL || rc == LB_ETIMEDOUT || rc == LB_EIO) {
        obs_count("etcd_keeper_start_unreachable_total");
        LOG_WARN("etcd", "etcd unreachable at start; the lease is granted when it answers",
                 "err=\"%s\" why=\"%s\"", lb_strerror(rc), em != NULL ? em->text : "");
        k->state = KEEP_LOST;
        rc = LB_OK; /* the thread retries */
    } else if (rc != LB_OK) {
        goto out;
    }
    int e = pthread_create(&k->thr, NULL, keeper_main, k);
    if (e != 0) {
        rc = lb_fail(em, LB_ESYS, "etcd keeper: pthread_create: %s", strerror(e));
        etcd_lease_revoke(c, atomic_load(&k->lease), NULL);
        goto out;
    }
    *out = k;
    k = NULL;
out:
    keeper_free(k);
    return rc;
}

void etcd_keeper_stop(etcd_keeper **kp)
{
    if (kp == NULL || *kp == NULL)
        return;
    etcd_keeper *k = *kp;
    etcd_nap_stop(&k->nap);
    pthread_join(k->thr, NULL);
    int64_t id = atomic_load(&k->lease);
    lb_errmsg em = {{0}};
    if (id != 0 && etcd_lease_revoke(k->c, id, &em) != LB_OK)
        LOG_WARN("etcd", "lease revoke failed; its keys go when it expires",
                 "lease=%llx why=\"%s\"", (unsigned long long)id, em.text);
    keeper_free(k);
    *kp = NULL;
}

int64_t etcd_keeper_fresh_ms(const etcd_keeper *k)
{
    return k != NULL ? atomic_load(&((etcd_keeper *)k)->fresh) : 0;
}

int64_t etcd_keeper_lease(const etcd_keeper *k)
{
    return k != NULL ? atomic_load(&((etcd_keeper *)k)->lease) : 0;
}

bool etcd_keeper_ok(const etcd_keeper *k)
{
    return k != NULL && atomic_load(&((etcd_keeper *)k)->lease) != 0 &&
           atomic_load(&((etcd_keeper *)k)->ok);
}
