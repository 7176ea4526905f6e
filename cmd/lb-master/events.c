/*
 * The dashboard's event ring (see events.h). Same event names and details as
 * cmd/lbctl/cmd_watch.c, so the page and `lbctl watch` read alike.
 */
#include "events.h"

#include "common/hmap.h"
#include "common/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ev {
    uint64_t seq;
    int64_t ts_ms;
    char event[24];
    char subject[160];
    char detail[256];
} ev;

struct master_events {
    pthread_mutex_t lock;
    ev ring[EVENTS_MAX];
    uint64_t last; /* seq of the newest event; 0: none */
    /* session id -> its record: one block "id\0server\0client\0app\0" that
     * also holds the map's (borrowed) key, ~90 bytes a session with the map's
     * slots where an id copy and a detail string took ~120 (12 MiB at 100,000
     * sessions). The leader puts a session in the view before etcd's event
     * comes back, so starts and ends are told from this set, not from the
     * view. Watch thread only. */
    hmap *sessions;
};

master_events *events_new(void)
{
    master_events *e = lb_xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->sessions = hmap_new_borrowed();
    return e;
}

void events_free(master_events **e)
{
    if (e == NULL || *e == NULL)
        return;
    pthread_mutex_destroy(&(*e)->lock);
    hmap_free(&(*e)->sessions, free);
    free(*e);
    *e = NULL;
}

static void emit(master_events *e, const char *event, const char *subject, const char *detail)
{
    pthread_mutex_lock(&e->lock);
    ev *x = &e->ring[e->last % EVENTS_MAX];
    x->seq = ++e->last;
    x->ts_ms = lb_wall_ms();
    snprintf(x->event, sizeof x->event, "%s", event);
    snprintf(x->subject, sizeof x->subject, "%s", subject);
    snprintf(x->detail, sizeof x->detail, "%s", detail);
    pthread_mutex_unlock(&e->lock);
}

static void note_override(master_events *e, const char *id, const Lb__Override *old,
                          const etcd_kv *kv, bool del)
{
    Lb__Override *now = del ? NULL : lb__override__unpack(NULL, kv->value_len, kv->value);
    bool od = old && old->drain, odis = old && old->disable, nd = now && now->drain,
         ndis = now && now->disable;
    const char *og = old ? old->group : "", *ng = now ? now->group : "";
    if (od != nd)
        emit(e, nd ? "drain" : "undrain", id, "");
    if (odis != ndis)
        emit(e, ndis ? "disable" : "enable", id, "");
    if (strcmp(og, ng) != 0) {
        char d[160];
        snprintf(d, sizeof d, "group=%s", ng[0] ? ng : "(advertised)");
        emit(e, "set-group", id, d);
    }
    if (now)
        lb__override__free_unpacked(now, NULL);
}

/* The block for session id from its record (fields "" when undecodable). */
static char *session_rec(const char *id, const etcd_kv *kv)
{
    Lb__Session *s = lb__session__unpack(NULL, kv->value_len, kv->value);
    const char *f[4] = {id, "", "", ""};
    if (s != NULL) {
        f[1] = s->server_id != NULL ? s->server_id : "";
        f[2] = s->client_id != NULL ? s->client_id : "";
        f[3] = s->app != NULL ? s->app : "";
    }
    size_t len[4], n = 0;
    for (int i = 0; i < 4; i++)
        n += (len[i] = strlen(f[i])) + 1;
    char *b = lb_xcalloc(1, n), *cur = b;
    for (int i = 0; i < 4; i++) {
        memcpy(cur, f[i], len[i]);
        cur += len[i] + 1;
    }
    if (s != NULL)
        lb__session__free_unpacked(s, NULL);
    return b;
}

/* The event detail of a session block. */
static void session_detail(const char *rec, char *out, size_t cap)
{
    const char *server = rec + strlen(rec) + 1;
    const char *client = server + strlen(server) + 1;
    const char *app = client + strlen(client) + 1;
    snprintf(out, cap, "server=%s client=%s app=%s", server, client, app);
}

static void note_session(master_events *e, const char *id, const etcd_kv *kv, bool del)
{
    char d[256];
    if (del) {
        char *rec = hmap_del(e->sessions, id);
        if (rec != NULL) {
            session_detail(rec, d, sizeof d);
            emit(e, "session-end", id, d);
        }
        free(rec); /* the key went with it */
    } else if (hmap_get(e->sessions, id) == NULL) {
        char *rec = session_rec(id, kv);
        session_detail(rec, d, sizeof d);
        emit(e, "session-start", id, d);
        hmap_put(e->sessions, rec, rec);
    }
}

void events_reset(master_events *e, const etcd_kvs *snap, const char *prefix)
{
    size_t plen = strlen(prefix);
    hmap_free(&e->sessions, free);
    e->sessions = hmap_new_borrowed();
    for (size_t i = 0; i < snap->n; i++) {
        const char *key = snap->kvs[i].key;
        if (strncmp(key, prefix, plen) == 0 && strncmp(key + plen, "sessions/", 9) == 0) {
            char *rec = session_rec(key + plen + 9, &snap->kvs[i]);
            free(hmap_put(e->sessions, rec, rec)); /* a repeated key: the older goes */
        }
    }
}

/* One change; the view lock is held and the view still has the old values. */
static void note_one(master_events *e, reg *view, const char *key, const etcd_kv *kv, bool del)
{
    const char *slash = strchr(key, '/');
    const char *id = slash != NULL ? slash + 1 : key;
    size_t klen = slash != NULL ? (size_t)(slash - key) : strlen(key);
    char d[256] = "";
    if (klen == 7 && strncmp(key, "servers", 7) == 0) {
        bool known = reg_server_locked(view, id) != NULL;
        if (del ? known : !known)
            emit(e, del ? "server-down" : "server-up", id, "");
    } else if (klen == 6 && strncmp(key, "slaves", 6) == 0) {
        bool known = reg_slave_locked(view, id) != NULL;
        if (del ? known : !known)
            emit(e, del ? "slave-down" : "slave-up", id, "");
    } else if (klen == 7 && strncmp(key, "masters", 7) == 0) {
        bool known = reg_master_locked(view, id) != NULL;
        if (del ? known : !known)
            emit(e, del ? "master-down" : "master-up", id, "");
    } else if (klen == 9 && strncmp(key, "overrides", 9) == 0) {
        reg_server *s = reg_server_locked(view, id);
        note_override(e, id, s != NULL ? s->override : NULL, kv, del);
    } else if (klen == 8 && strncmp(key, "sessions", 8) == 0) {
        note_session(e, id, kv, del);
    } else if (klen == 6 && strncmp(key, "groups", 6) == 0 && !del) {
        Lb__GroupInfo *g = lb__group_info__unpack(NULL, kv->value_len, kv->value);
        snprintf(d, sizeof d, "rank=%d", g ? g->rank : 0);
        emit(e, "group-set", id, d);
        if (g)
            lb__group_info__free_unpacked(g, NULL);
    } else if (strcmp(key, "leader") == 0) {
        snprintf(d, sizeof d, "%.*s", del ? 0 : (int)kv->value_len,
                 del ? "" : (const char *)kv->value);
        emit(e, del ? "leader-lost" : "leader-change", del ? "-" : d, "");
    }
}

void events_note(master_events *e, reg *view, const etcd_event *evs, size_t n)
{
    size_t plen = strlen(reg_prefix(view));
    reg_lock(view);
    for (size_t i = 0; i < n; i++) {
        const char *key = evs[i].kv.key;
        if (strncmp(key, reg_prefix(view), plen) != 0)
            continue;
        note_one(e, view, key + plen, &evs[i].kv, evs[i].type == ETCD_EV_DELETE);
    }
    reg_unlock(view);
}

void events_json(master_events *e, uint64_t since, cJSON *out)
{
    cJSON *arr = cJSON_AddArrayToObject(out, "events");
    pthread_mutex_lock(&e->lock);
    uint64_t first = e->last > EVENTS_MAX ? e->last - EVENTS_MAX + 1 : 1;
    if (since + 1 > first)
        first = since + 1;
    for (uint64_t s = first; s <= e->last; s++) {
        const ev *x = &e->ring[(s - 1) % EVENTS_MAX];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "seq", (double)x->seq);
        cJSON_AddNumberToObject(j, "ts_ms", (double)x->ts_ms);
        cJSON_AddStringToObject(j, "event", x->event);
        cJSON_AddStringToObject(j, "subject", x->subject);
        cJSON_AddStringToObject(j, "detail", x->detail);
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddNumberToObject(out, "last", (double)e->last);
    pthread_mutex_unlock(&e->lock);
}
