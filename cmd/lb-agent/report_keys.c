/*
 * The masters' report key-exchange keys (MasterInfo.report_kx_key), watched
 * under masters/, each turned into this agent's pair key with that master
 * (auth/report_mac.h) once, when its record appears or changes. report_send
 * MACs each report for every master here, which a master checks in ~1 us
 * instead of verifying the Ed25519 signature (~50 us); it still signs while
 * it knows fewer keys than it has report endpoints (a master just started, an
 * older master, etcd unreachable since start), so those masters can check it.
 * The same record names the master's report datagram endpoint
 * (report_udp_endpoint, resolved here once) beside its nng report_endpoint:
 * report_send uses UDP when each of this agent's report endpoints is the
 * report_endpoint of a master known here with a datagram endpoint (an agent
 * reports to the masters its config names, never to others it sees in etcd).
 *
 * Threads: the watch callbacks write the table, report_send reads a copy;
 * mk_lock guards it.
 */
#include "agent.h"

#include "auth/report_mac.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire_udp.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct mkey {
    char key[256]; /* etcd key of the masters/<id> record */
    auth_mac_to t;
    wire_udp_addr udp; /* valid when has_udp */
    bool has_udp;
    char report[256]; /* its nng report_endpoint, matched against ours */
} mkey;

static pthread_mutex_t mk_lock = PTHREAD_MUTEX_INITIALIZER;
static mkey mk[AUTH_MAC_MAX];
static size_t n_mk;
static etcd_watch *mk_watch;
static pthread_cond_t mk_cv; /* mk_loaded set */
static bool mk_loaded;       /* the first snapshot is in (mk_lock) */
static bool mk_unreachable;  /* etcd did not answer: no snapshot soon (mk_lock) */

/* mk_lock held. */
static void mk_remove(const char *key)
{
    for (size_t i = 0; i < n_mk; i++)
        if (strcmp(mk[i].key, key) == 0) {
            mk[i] = mk[--n_mk];
            return;
        }
}

/* A masters/<id> record put (value) or deleted (NULL); mk_lock held. */
static void mk_apply(agent *a, const char *key, const unsigned char *value, size_t len)
{
    mk_remove(key);
    if (value == NULL || strlen(key) >= sizeof mk[0].key)
        return;
    Lb__MasterInfo *mi = lb__master_info__unpack(NULL, len, value);
    if (mi == NULL) {
        obs_count("agent_master_records_bad_total");
        return;
    }
    if (mi->report_kx_key.len == AUTH_KX_BYTES && n_mk < AUTH_MAC_MAX) {
        mkey *e = &mk[n_mk];
        if (auth_mac_key_agent(e->t.key, a->id_sk, a->id_pk, mi->report_kx_key.data) == LB_OK) {
            snprintf(e->key, sizeof e->key, "%s", key);
            memcpy(e->t.to, mi->report_kx_key.data, AUTH_MAC_TO_BYTES);
            e->has_udp = false;
            snprintf(e->report, sizeof e->report, "%s", mi->report_endpoint);
            lb_errmsg um = {{0}};
            if (mi->report_udp_endpoint[0] != '\0') {
                e->has_udp = wire_udp_resolve(mi->report_udp_endpoint, &e->udp, &um) == LB_OK;
                if (!e->has_udp) /* the etcd user of masters wrote it: say so */
                    LOG_WARN(AGENT_COMP, "master report datagram endpoint unusable: nng only",
                             "master=%s err=\"%s\"", mi->id, um.text);
            }
            n_mk++;
            LOG_DEBUG(AGENT_COMP, "report key of a master", "master=%s", mi->id);
        } else {
            obs_count("agent_master_records_bad_total");
            LOG_WARN(AGENT_COMP, "master report key unusable", "master=%s", mi->id);
        }
    }
    lb__master_info__free_unpacked(mi, NULL);
}

static void mk_on_reset(void *arg, const etcd_kvs *snap)
{
    pthread_mutex_lock(&mk_lock);
    n_mk = 0;
    for (size_t i = 0; i < snap->n; i++)
        mk_apply(arg, snap->kvs[i].key, snap->kvs[i].value, snap->kvs[i].value_len);
    mk_loaded = true;
    pthread_cond_broadcast(&mk_cv);
    pthread_mutex_unlock(&mk_lock);
}

static void mk_on_events(void *arg, const etcd_event *evs, size_t n, int64_t rev)
{
    (void)rev;
    pthread_mutex_lock(&mk_lock);
    for (size_t i = 0; i < n; i++)
        mk_apply(arg, evs[i].kv.key, evs[i].type == ETCD_EV_PUT ? evs[i].kv.value : NULL,
                 evs[i].kv.value_len);
    pthread_mutex_unlock(&mk_lock);
}

/* etcd unreachable: report_keys_start waits no longer for a snapshot. */
static void mk_on_status(void *arg, bool connected, lb_err err, const char *msg)
{
    (void)arg, (void)err, (void)msg;
    if (connected)
        return;
    pthread_mutex_lock(&mk_lock);
    mk_unreachable = true;
    pthread_cond_broadcast(&mk_cv);
    pthread_mutex_unlock(&mk_lock);
}

void report_keys_start(agent *a)
{
    if (a->etcd == NULL)
        return;
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%smasters/", a->cfg->prefix);
    etcd_watch_cb cb = {
        .on_reset = mk_on_reset, .on_events = mk_on_events, .on_status = mk_on_status, .arg = a};
    lb_errmsg em = {{0}};
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mk_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (etcd_watch_start(a->etcd, prefix, &cb, &mk_watch, &em) != LB_OK) {
        LOG_WARN(AGENT_COMP, "masters' report keys not watched: reports are signed only",
                 "error=\"%s\"", em.text);
        return;
    }
    /* the snapshot comes from the watch thread; etcd answered the range just
     * now, so it is a moment away unless etcd went at once */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += REPORT_KEYS_WAIT_MS / 1000;
    until.tv_nsec += (REPORT_KEYS_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mk_lock);
    while (!mk_loaded && !mk_unreachable && pthread_cond_timedwait(&mk_cv, &mk_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&mk_lock);
}

void report_keys_stop(void)
{
    etcd_watch_stop(&mk_watch);
}

/* mk_lock held. The datagram address of the master reached at report. */
static const wire_udp_addr *udp_of(const char *report)
{
    for (size_t i = 0; i < n_mk; i++)
        if (strcmp(mk[i].report, report) == 0)
            return mk[i].has_udp ? &mk[i].udp : NULL;
    return NULL;
}

size_t report_keys_get(auth_mac_to *out, char *const *report, size_t n_report, wire_udp_addr *udp,
                       size_t *n_udp)
{
    pthread_mutex_lock(&mk_lock);
    size_t n = n_mk;
    for (size_t i = 0; i < n; i++)
        out[i] = mk[i].t;
    *n_udp = n_report <= AUTH_MAC_MAX ? n_report : 0;
    for (size_t i = 0; i < *n_udp; i++) {
        const wire_udp_addr *u = udp_of(report[i]);
        if (u == NULL)
            *n_udp = 0; /* one master without: all over nng, as before */
        else
            udp[i] = *u;
    }
    pthread_mutex_unlock(&mk_lock);
    return n;
}
