/*
 * lbctl watch: a live stream of cluster events from an etcd watch on the
 * prefix: server up/down, drain/undrain/disable/enable/set-group, session
 * start/end, leader change, slave and master up/down, group rank set. Load and
 * affinity records are not events. Stops on SIGINT/SIGTERM, after --count N
 * events or after --duration S seconds.
 */
#include "ctl_args.h"
#include "ctl_ops.h"

#include "common/hmap.h"
#include "common/util.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t watch_stop;

typedef struct watch_state {
    const ctl_opts *o;
    size_t plen;
    hmap *known; /* key -> heap copy of the last value (servers, overrides, sessions ...) */
    atomic_long events;
} watch_state;

static void watch_on_signal(int sig)
{
    (void)sig;
    watch_stop = 1;
}

static void watch_emit(watch_state *w, const char *event, const char *subject, const char *detail)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char when[32];
    snprintf(when, sizeof when, "%02d:%02d:%02d.%03ld", tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
    if (w->o->out == OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "ts_ms", (double)lb_wall_ms());
        cJSON_AddStringToObject(j, "event", event);
        cJSON_AddStringToObject(j, "subject", subject);
        cJSON_AddStringToObject(j, "detail", detail);
        ctl_print_json(j);
    } else {
        printf("%-12s %-14s %-34s %s\n", when, event, subject, detail);
    }
    fflush(stdout);
    atomic_fetch_add(&w->events, 1);
}

static void watch_override(watch_state *w, const char *id, const Lb__Override *old,
                           const Lb__Override *now)
{
    bool od = old && old->drain, odis = old && old->disable, nd = now && now->drain,
         ndis = now && now->disable;
    const char *og = old ? old->group : "", *ng = now ? now->group : "";
    if (od != nd)
        watch_emit(w, nd ? "drain" : "undrain", id, "");
    if (odis != ndis)
        watch_emit(w, ndis ? "disable" : "enable", id, "");
    if (strcmp(og, ng) != 0) {
        char d[160];
        snprintf(d, sizeof d, "group=%s", ng[0] ? ng : "(advertised)");
        watch_emit(w, "set-group", id, d);
    }
}

/* One event on key (after the prefix); value NULL for a delete. */
static void watch_one(watch_state *w, const char *key, const etcd_kv *kv, bool del)
{
    const char *slash = strchr(key, '/');
    const char *id = slash != NULL ? slash + 1 : key;
    size_t klen = slash != NULL ? (size_t)(slash - key) : strlen(key);
    etcd_kv *old = hmap_get(w->known, key);
    char d[256] = "";
    if (klen == 7 && strncmp(key, "servers", 7) == 0) {
        if (del || old == NULL)
            watch_emit(w, del ? "server-down" : "server-up", id, "");
    } else if ((klen == 6 && strncmp(key, "slaves", 6) == 0) ||
               (klen == 7 && strncmp(key, "masters", 7) == 0)) {
        if (del || old == NULL)
            watch_emit(w,
                       key[0] == 's' ? (del ? "slave-down" : "slave-up")
                                     : (del ? "master-down" : "master-up"),
                       id, "");
    } else if (klen == 9 && strncmp(key, "overrides", 9) == 0) {
        Lb__Override *o = old ? lb__override__unpack(NULL, old->value_len, old->value) : NULL;
        Lb__Override *n = del ? NULL : lb__override__unpack(NULL, kv->value_len, kv->value);
        watch_override(w, id, o, n);
        if (o)
            lb__override__free_unpacked(o, NULL);
        if (n)
            lb__override__free_unpacked(n, NULL);
    } else if (klen == 8 && strncmp(key, "sessions", 8) == 0) {
        const etcd_kv *src = del ? old : kv;
        Lb__Session *s = src ? lb__session__unpack(NULL, src->value_len, src->value) : NULL;
        if (s != NULL)
            snprintf(d, sizeof d, "server=%s client=%s app=%s", s->server_id, s->client_id, s->app);
        if (del || old == NULL)
            watch_emit(w, del ? "session-end" : "session-start", id, d);
        if (s)
            lb__session__free_unpacked(s, NULL);
    } else if (klen == 6 && strncmp(key, "groups", 6) == 0 && !del) {
        Lb__GroupInfo *g = lb__group_info__unpack(NULL, kv->value_len, kv->value);
        snprintf(d, sizeof d, "rank=%d", g ? g->rank : 0);
        watch_emit(w, "group-set", id, d);
        if (g)
            lb__group_info__free_unpacked(g, NULL);
    } else if (strcmp(key, "leader") == 0) {
        snprintf(d, sizeof d, "%.*s", del ? 0 : (int)kv->value_len,
                 del ? "" : (const char *)kv->value);
        watch_emit(w, del ? "leader-lost" : "leader-change", del ? "-" : d, "");
    }
}

static void kv_free(void *p)
{
    etcd_kv *kv = p;
    free(kv->value);
    free(kv);
}

static void watch_remember(watch_state *w, const char *key, const etcd_kv *kv, bool del)
{
    if (strncmp(key, "load/", 5) == 0 || strncmp(key, "affinity/", 9) == 0)
        return;
    if (del) {
        void *old = hmap_del(w->known, key);
        if (old)
            kv_free(old);
        return;
    }
    etcd_kv *copy = calloc(1, sizeof *copy);
    copy->value = malloc(kv->value_len + 1);
    memcpy(copy->value, kv->value, kv->value_len);
    copy->value_len = kv->value_len;
    void *old = hmap_put(w->known, key, copy);
    if (old)
        kv_free(old);
}

static void watch_reset(void *arg, const etcd_kvs *snap)
{
    watch_state *w = arg;
    for (size_t i = 0; i < snap->n; i++)
        watch_remember(w, snap->kvs[i].key + w->plen, &snap->kvs[i], false);
}

static void watch_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    (void)revision;
    watch_state *w = arg;
    for (size_t i = 0; i < n; i++) {
        const char *key = evs[i].kv.key + w->plen;
        bool del = evs[i].type == ETCD_EV_DELETE;
        watch_one(w, key, &evs[i].kv, del);
        watch_remember(w, key, &evs[i].kv, del);
    }
}

int cmd_watch(const ctl_opts *o, int argc, char **argv)
{
    const char *count_s = NULL, *duration_s = NULL;
    const ctl_flag flags[] = {{"--count", &count_s, NULL}, {"--duration", &duration_s, NULL}};
    if (ctl_parse_flags("watch", argc, argv, flags, 2, NULL, 0, NULL) != 0)
        return EXIT_USAGE;
    char *end = NULL;
    long count = count_s != NULL ? strtol(count_s, &end, 10) : 0;
    if (count_s != NULL && (end == count_s || *end != '\0' || count < 1))
        return ctl_usage_error("watch", "--count takes a positive number (got '%s')", count_s);
    double duration = duration_s != NULL ? strtod(duration_s, &end) : 0;
    if (duration_s != NULL && (end == duration_s || *end != '\0' || duration <= 0))
        return ctl_usage_error("watch", "--duration takes seconds > 0 (got '%s')", duration_s);
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return EXIT_FAIL;
    watch_state w = {.o = o, .plen = strlen(o->prefix), .known = hmap_new()};
    etcd_watch_cb cb = {.on_reset = watch_reset, .on_events = watch_events, .arg = &w};
    etcd_watch *wt = NULL;
    lb_errmsg em = {{0}};
    signal(SIGINT, watch_on_signal);
    signal(SIGTERM, watch_on_signal);
    int rc = EXIT_OK;
    if (etcd_watch_start(c, o->prefix, &cb, &wt, &em) != LB_OK) {
        fprintf(stderr, "lbctl: watch %s: %s\n", o->prefix, em.text);
        rc = EXIT_FAIL;
    } else {
        if (o->out != OUT_JSON) {
            printf("%-12s %-14s %-34s %s\n", "TIME", "EVENT", "SUBJECT", "DETAIL");
            fflush(stdout);
        }
        int64_t end = duration > 0 ? lb_mono_ms() + (int64_t)(duration * 1000) : 0;
        while (!watch_stop && (count <= 0 || atomic_load(&w.events) < count) &&
               (end == 0 || lb_mono_ms() < end))
            lb_sleep_ms(50);
        etcd_watch_stop(&wt);
    }
    hmap_free(&w.known, kv_free);
    etcd_close(&c);
    return rc;
}
