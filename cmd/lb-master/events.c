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
    /* the details of sessions this master deleted from its view, until etcd's
     * DELETE comes back: sid -> detail (owned); the oldest is dropped past
     * EVENTS_PENDING_MAX, its end then named without a detail */
    hmap *pending;
    char *order[EVENTS_PENDING_MAX]; /* sids in the order recorded (owned) */
    size_t next;                     /* the slot the next one takes */
};

master_events *events_new(void)
{
    master_events *e = lb_xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->pending = hmap_new();
    return e;
}

void events_free(master_events **e)
{
    if (e == NULL || *e == NULL)
        return;
    pthread_mutex_destroy(&(*e)->lock);
    hmap_free(&(*e)->pending, free);
    for (size_t i = 0; i < EVENTS_PENDING_MAX; i++)
        free((*e)->order[i]);
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

/* The event detail of a session. */
static void session_detail(const Lb__Session *s, char *out, size_t cap)
{
    snprintf(out, cap, "server=%s client=%s app=%s",
             s != NULL && s->server_id != NULL ? s->server_id : "",
             s != NULL && s->client_id != NULL ? s->client_id : "",
             s != NULL && s->app != NULL ? s->app : "");
}

void events_session_deleting(master_events *e, const Lb__Session *s)
{
    if (e == NULL || s == NULL || s->session_id == NULL)
        return;
    char d[256];
    session_detail(s, d, sizeof d);
    pthread_mutex_lock(&e->lock);
    char **slot = &e->order[e->next];
    e->next = (e->next + 1) % EVENTS_PENDING_MAX;
    if (*slot != NULL) /* the oldest: its DELETE never came back (or long ago) */
        free(hmap_del(e->pending, *slot));
    free(*slot);
    *slot = lb_strdup(s->session_id);
    free(hmap_put(e->pending, s->session_id, lb_strdup(d)));
    pthread_mutex_unlock(&e->lock);
}

void events_session_started(master_events *e, const Lb__Session *s)
{
    if (e == NULL || s == NULL || s->session_id == NULL)
        return;
    char d[256];
    session_detail(s, d, sizeof d);
    emit(e, "session-start", s->session_id, d);
}

/* The detail events_session_deleting kept for sid, taken out (caller frees);
 * NULL if none. */
static char *pending_take(master_events *e, const char *sid)
{
    pthread_mutex_lock(&e->lock);
    char *d = hmap_del(e->pending, sid);
    pthread_mutex_unlock(&e->lock);
    return d;
}

/* A session starts when its key is created (etcd version 1: renewals and
 * re-puts count up from there) and ends when it is deleted: one end per
 * DELETE, named from the view (another writer's delete: the view still has
 * the session) or from what this master kept when it deleted it (see
 * events.h). The view lock is held. */
static void note_session(master_events *e, reg *view, const char *id, const etcd_event *ev)
{
    char d[256];
    if (ev->type == ETCD_EV_DELETE) {
        char *kept = pending_take(e, id);
        reg_session_buf sb;
        const Lb__Session *s = reg_session_locked(view, id, &sb);
        if (s != NULL)
            session_detail(s, d, sizeof d);
        else if (kept != NULL)
            snprintf(d, sizeof d, "%s", kept);
        else /* a session this master never had */
            session_detail(NULL, d, sizeof d);
        free(kept);
        emit(e, "session-end", id, d);
    } else if (ev->kv.version == 1) {
        Lb__Session *s = lb__session__unpack(NULL, ev->kv.value_len, ev->kv.value);
        session_detail(s, d, sizeof d);
        if (s != NULL)
            lb__session__free_unpacked(s, NULL);
        emit(e, "session-start", id, d);
    }
}

/* One change; the view lock is held and the view still has the old values. */
static void note_one(master_events *e, reg *view, const char *key, const etcd_event *ev)
{
    const etcd_kv *kv = &ev->kv;
    bool del = ev->type == ETCD_EV_DELETE;
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
        note_session(e, view, id, ev);
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
        note_one(e, view, key + plen, &evs[i]);
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
