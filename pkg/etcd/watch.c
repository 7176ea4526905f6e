/*
 * A watch: a thread that hands a snapshot to on_reset, then streams events,
 * resuming from the last revision + 1 after a drop (with backoff) and taking a
 * new snapshot when its revision was compacted.
 */
#include "etcd/watch.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define STABLE_MS 5000 /* a stream up this long was healthy: reset the backoff */

void etcd_watch_status(etcd_watch *w, bool up, lb_err err, const char *msg)
{
    if (w->connected == (up ? 1 : 0))
        return;
    if (up && w->connected == 0)
        LOG_INFO("etcd", "watch connected", "prefix=\"%s\" rev=%lld", w->prefix, (long long)w->rev);
    else if (!up)
        LOG_WARN("etcd", "watch disconnected", "prefix=\"%s\" err=\"%s\" why=\"%s\"", w->prefix,
                 lb_strerror(err), msg);
    w->connected = up ? 1 : 0;
    if (w->cb.on_status != NULL)
        w->cb.on_status(w->cb.arg, up, err, msg);
}

/* Hands snap to on_reset and resumes streaming after its revision. */
static void deliver_reset(etcd_watch *w, etcd_kvs *snap)
{
    w->rev = snap->revision;
    if (w->cb.on_reset != NULL)
        w->cb.on_reset(w->cb.arg, snap);
    etcd_kvs_free(snap);
    atomic_store(&w->synced, w->noput);
}

static lb_err reload(etcd_watch *w)
{
    lb_errmsg em = {{0}};
    etcd_kvs snap = {0};
    lb_err rc = etcd_range_between(w->c, w->prefix, w->range_end, &snap, &em);
    if (rc == LB_OK) {
        obs_count("etcd_watch_reloads_total");
        deliver_reset(w, &snap);
    } else {
        etcd_watch_status(w, false, rc, em.text);
    }
    return rc;
}

static void *watch_main(void *arg)
{
    etcd_watch *w = arg;
    int64_t backoff = BACKOFF_MIN_MS;
    bool renewed = false; /* the token was renewed since the last created stream */
    if (w->have_first) {
        w->have_first = false;
        deliver_reset(w, &w->first);
    }
    while (!etcd_nap_stopped(&w->nap)) {
        int64_t want = atomic_load(&w->want_noput);
        if (want != w->noput) { /* the filter changes: a fresh range, then stream with it */
            w->noput = want;
            w->need_reload = true;
        }
        if (w->need_reload) {
            if (reload(w) != LB_OK) {
                etcd_nap_sleep(&w->nap, backoff);
                backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
                continue;
            }
            w->need_reload = false;
        }
        etcd_watch_stream(w);
        if (etcd_nap_stopped(&w->nap))
            break;
        if (atomic_load(&w->want_noput) != w->noput)
            continue;            /* ended for the filter's switch, not a failure */
        if (w->token_rejected) { /* expired token: a new one, then at once again */
            if (etcd_auth_renew(w->c, w->auth_gen))
                obs_count("etcd_auth_token_renewals_total");
            LOG_INFO("etcd", "watch refused the auth token; renewing", "prefix=\"%s\" why=\"%s\"",
                     w->prefix, w->end_msg);
            if (!renewed) {
                renewed = true;
                continue;
            }
        }
        if (w->created)
            renewed = false;
        if (w->end == WATCH_END_RELOAD) {
            w->need_reload = true;
            continue;
        }
        if (w->created && lb_mono_ms() - w->created_ms >= STABLE_MS)
            backoff = BACKOFF_MIN_MS; /* it was up a while: retry soon */
        etcd_watch_status(w, false, w->end_err, w->end_msg);
        etcd_nap_sleep(&w->nap, backoff);
        backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
    }
    return NULL;
}

static void watch_free(etcd_watch *w)
{
    if (w == NULL)
        return;
    etcd_kvs_free(&w->first);
    etcd_buf_free(&w->line);
    if (w->multi != NULL)
        curl_multi_cleanup(w->multi);
    etcd_nap_destroy(&w->nap);
    free(w->prefix);
    free(w->range_end);
    free(w);
}

/* Makes the watch; the thread starts from rev + 1 (after first, if given). */
static lb_err watch_begin(etcd_client *c, const char *prefix, const char *range_end,
                          const etcd_watch_cb *cb, int64_t rev, etcd_kvs *first, etcd_watch **out,
                          lb_errmsg *em)
{
    lb_err rc = LB_OK;
    etcd_watch *w = lb_xcalloc(1, sizeof *w);
    etcd_nap_init(&w->nap);
    w->c = c;
    w->prefix = lb_strdup(prefix);
    w->range_end = range_end != NULL ? lb_strdup(range_end) : NULL;
    w->cb = *cb;
    w->rev = rev;
    w->connected = -1;
    w->ep = atomic_load(&c->cur);
    w->line.max = ETCD_MAX_WATCH_LINE;
    w->need_reload = rev < 0; /* start with a full range */
    if (first != NULL) {
        w->first = *first;
        w->have_first = true;
        memset(first, 0, sizeof *first);
    }
    w->multi = curl_multi_init();
    if (w->multi == NULL) {
        rc = lb_fail(em, LB_ENOMEM, "etcd watch %s: curl_multi_init failed", prefix);
        goto out;
    }
    int e = pthread_create(&w->thr, NULL, watch_main, w);
    if (e != 0) {
        rc = lb_fail(em, LB_ESYS, "etcd watch %s: pthread_create: %s", prefix, strerror(e));
        goto out;
    }
    *out = w;
    w = NULL;
out:
    watch_free(w);
    return rc;
}

lb_err etcd_watch_start(etcd_client *c, const char *prefix, const etcd_watch_cb *cb,
                        etcd_watch **out, lb_errmsg *em)
{
    return etcd_watch_start_range(c, prefix, NULL, cb, out, em);
}

lb_err etcd_watch_start_range(etcd_client *c, const char *prefix, const char *range_end,
                              const etcd_watch_cb *cb, etcd_watch **out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    etcd_kvs snap = {0};
    *out = NULL;
    if (c == NULL || prefix == NULL || cb == NULL) {
        rc = lb_fail(em, LB_EINVAL, "etcd_watch_start: client, prefix and callbacks required");
        goto out;
    }
    rc = etcd_range_between(c, prefix, range_end, &snap, em);
    if (rc == LB_OK) {
        rc = watch_begin(c, prefix, range_end, cb, snap.revision, &snap, out, em);
    } else if (rc == LB_EUNAVAIL || rc == LB_ETIMEDOUT || rc == LB_EIO || rc == LB_EAUTH) {
        /* etcd is not there yet, or refuses the credentials (fixable in etcd
         * without restarting the daemon): the thread loads the view once it can */
        obs_count("etcd_watch_start_unreachable_total");
        if (cb->on_status != NULL)
            cb->on_status(cb->arg, false, rc, em != NULL ? em->text : "");
        rc = watch_begin(c, prefix, range_end, cb, -1, NULL, out, em);
    }
out:
    etcd_kvs_free(&snap);
    return rc;
}

lb_err etcd_watch_start_at(etcd_client *c, const char *prefix, int64_t start_revision,
                           const etcd_watch_cb *cb, etcd_watch **out, lb_errmsg *em)
{
    *out = NULL;
    if (c == NULL || prefix == NULL || cb == NULL || start_revision < 1)
        return lb_fail(em, LB_EINVAL, "etcd_watch_start_at: bad arguments");
    return watch_begin(c, prefix, NULL, cb, start_revision - 1, NULL, out, em);
}

void etcd_watch_set_noput(etcd_watch *w, int64_t tag)
{
    if (w == NULL || atomic_exchange(&w->want_noput, tag < 0 ? 0 : tag) == tag)
        return;
    curl_multi_wakeup(w->multi); /* the stream ends; the thread reloads with the filter */
}

int64_t etcd_watch_synced(etcd_watch *w)
{
    return w != NULL ? atomic_load(&w->synced) : 0;
}

void etcd_watch_stop(etcd_watch **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    etcd_watch *w = *wp;
    etcd_nap_stop(&w->nap);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thr, NULL);
    watch_free(w);
    *wp = NULL;
}
