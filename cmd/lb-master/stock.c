/* The stock table: an array of entries under a mutex, with indexes so that
 * what runs per request or per launch is O(1) however deep the stock: a
 * session id to its slot, per (server, app) the entries held and ready, per
 * server the launches in flight. A deep stock (512 per server, thousands in
 * all) made the linear scans of these counts on every hit a tenth of the
 * master's CPU in a burst of new sessions (perf, README "P3 and P2"). Taking
 * still walks the array to the first ready entry of the pair, which its ready
 * count says exists. */
#include "stock.h"

#include "common/hmap.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct stock_group { /* one (server, app) */
    size_t held, ready;
} stock_group;

typedef struct stock_server {
    size_t launching; /* entries not ready yet, any app */
} stock_server;

struct stock_table {
    pthread_mutex_t mu;
    stock_item *v;
    size_t n, cap;
    hmap *by_sid;  /* session_id -> slot + 1 (as a pointer) */
    hmap *groups;  /* "server\x1fapp" -> stock_group */
    hmap *servers; /* server -> stock_server */
};

static void free_val(void *p)
{
    free(p);
}

stock_table *stock_table_new(size_t cap)
{
    if (cap == 0)
        return NULL;
    stock_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->v = calloc(cap, sizeof *t->v);
    t->by_sid = hmap_new();
    t->groups = hmap_new();
    t->servers = hmap_new();
    if (t->v == NULL || t->by_sid == NULL || t->groups == NULL || t->servers == NULL) {
        stock_table_free(t);
        return NULL;
    }
    t->cap = cap;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void stock_table_free(stock_table *t)
{
    if (t == NULL)
        return;
    if (t->cap > 0) /* initialised */
        pthread_mutex_destroy(&t->mu);
    if (t->by_sid != NULL)
        hmap_free(&t->by_sid, NULL);
    if (t->groups != NULL)
        hmap_free(&t->groups, free_val);
    if (t->servers != NULL)
        hmap_free(&t->servers, free_val);
    free(t->v);
    free(t);
}

static bool id_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    return n > 0 && n < cap;
}

static long find(const stock_table *t, const char *session_id)
{
    uintptr_t k = (uintptr_t)hmap_get(t->by_sid, session_id);
    return k == 0 ? -1 : (long)(k - 1);
}

/* The group of (server, app); created when make, else NULL when absent.
 * Lock held. */
static stock_group *group(stock_table *t, const char *server, const char *app, bool make)
{
    char key[2 * STOCK_ID_MAX + 2]; /* "server\x1fapp", built without printf (per request) */
    size_t ls = strnlen(server, STOCK_ID_MAX), la = strnlen(app, STOCK_ID_MAX);
    memcpy(key, server, ls);
    key[ls] = '\x1f';
    memcpy(key + ls + 1, app, la);
    key[ls + 1 + la] = '\0';
    stock_group *g = hmap_get(t->groups, key);
    if (g == NULL && make && (g = calloc(1, sizeof *g)) != NULL)
        hmap_put(t->groups, key, g);
    return g;
}

static stock_server *server_of(stock_table *t, const char *server, bool make)
{
    stock_server *s = hmap_get(t->servers, server);
    if (s == NULL && make && (s = calloc(1, sizeof *s)) != NULL)
        hmap_put(t->servers, server, s);
    return s;
}

/* Removes slot i, keeping the indexes true. Lock held. */
static void drop_at(stock_table *t, size_t i)
{
    stock_item *e = &t->v[i];
    stock_group *g = group(t, e->server_id, e->app, false);
    if (g != NULL) {
        g->held--;
        g->ready -= e->ready;
    }
    stock_server *s = server_of(t, e->server_id, false);
    if (s != NULL && !e->ready)
        s->launching--;
    hmap_del(t->by_sid, e->session_id);
    if (i != --t->n) {
        t->v[i] = t->v[t->n];
        hmap_put(t->by_sid, t->v[i].session_id, (void *)(uintptr_t)(i + 1));
    }
}

/* Entries of app at server (0 when app is NULL) and the launches in flight
 * at server. Lock held. */
static size_t count_at(stock_table *t, const char *server, const char *app, size_t *launching)
{
    const stock_group *g = app != NULL ? group(t, server, app, false) : NULL;
    const stock_server *s = server_of(t, server, false);
    if (launching != NULL)
        *launching = s != NULL ? s->launching : 0;
    return g != NULL ? g->held : 0;
}

lb_err stock_begin(stock_table *t, const stock_item *it, uint32_t max)
{
    if (t == NULL || it == NULL || !id_ok(it->session_id, sizeof it->session_id) ||
        !id_ok(it->app, sizeof it->app) || !id_ok(it->server_id, sizeof it->server_id))
        return LB_EINVAL;
    lb_err err = LB_OK;
    pthread_mutex_lock(&t->mu);
    size_t launching = 0;
    size_t k = count_at(t, it->server_id, it->app, &launching);
    if (find(t, it->session_id) >= 0)
        err = LB_EEXISTS;
    else if (launching >= STOCK_INFLIGHT_PER_SERVER)
        err = LB_EUNAVAIL;
    else if (t->n == t->cap || k >= max)
        err = LB_EUNAVAIL;
    else {
        stock_group *g = group(t, it->server_id, it->app, true);
        stock_server *s = server_of(t, it->server_id, true);
        if (g == NULL || s == NULL) {
            err = LB_ENOMEM;
        } else {
            t->v[t->n] = *it;
            t->v[t->n].ready = false;
            hmap_put(t->by_sid, it->session_id, (void *)(uintptr_t)(t->n + 1));
            t->n++;
            g->held++;
            s->launching++;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return err;
}

lb_err stock_fill(stock_table *t, const char *session_id, const stock_item *it)
{
    if (t == NULL || session_id == NULL || it == NULL || it->pid <= 0)
        return LB_EINVAL;
    lb_err err = LB_OK;
    pthread_mutex_lock(&t->mu);
    long i = find(t, session_id);
    if (i < 0) {
        err = LB_ENOTFOUND;
    } else {
        stock_item *e = &t->v[i];
        e->pid = it->pid;
        e->port = it->port;
        e->started_at = it->started_at;
        memcpy(e->host, it->host, sizeof e->host);
        e->host[sizeof e->host - 1] = '\0';
        if (!e->ready) {
            stock_group *g = group(t, e->server_id, e->app, false);
            stock_server *s = server_of(t, e->server_id, false);
            if (g != NULL)
                g->ready++;
            if (s != NULL)
                s->launching--;
        }
        e->ready = true;
    }
    pthread_mutex_unlock(&t->mu);
    return err;
}

bool stock_take(stock_table *t, const char *server, const char *app, int64_t lease, stock_item *out)
{
    if (t == NULL || server == NULL || app == NULL)
        return false;
    bool found = false;
    pthread_mutex_lock(&t->mu);
    const stock_group *g = group(t, server, app, false);
    size_t n = g != NULL && g->ready > 0 ? t->n : 0; /* none ready: no walk */
    for (size_t i = 0; i < n && !found; i++) {
        stock_item *e = &t->v[i];
        if (!e->ready || e->lease != lease || strcmp(e->server_id, server) != 0 ||
            strcmp(e->app, app) != 0)
            continue;
        if (out != NULL)
            *out = *e;
        drop_at(t, i);
        found = true;
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}

bool stock_drop(stock_table *t, const char *session_id, stock_item *out)
{
    if (t == NULL || session_id == NULL)
        return false;
    pthread_mutex_lock(&t->mu);
    long i = find(t, session_id);
    if (i >= 0) {
        if (out != NULL)
            *out = t->v[i];
        drop_at(t, (size_t)i);
    }
    pthread_mutex_unlock(&t->mu);
    return i >= 0;
}

size_t stock_list(stock_table *t, stock_item *out, size_t max)
{
    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->n < max ? t->n : max;
    memcpy(out, t->v, n * sizeof *out);
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t stock_count_at(stock_table *t, const char *server, const char *app, bool *launching)
{
    if (t == NULL || server == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t l = 0, k = count_at(t, server, app, &l);
    pthread_mutex_unlock(&t->mu);
    if (launching != NULL)
        *launching = l > 0;
    return k;
}

bool stock_has_ready(stock_table *t, const char *server, const char *app)
{
    if (t == NULL || server == NULL || app == NULL)
        return false;
    pthread_mutex_lock(&t->mu);
    const stock_group *g = group(t, server, app, false);
    bool found = g != NULL && g->ready > 0;
    pthread_mutex_unlock(&t->mu);
    return found;
}

void stock_foreach(stock_table *t, void (*fn)(const stock_item *it, void *arg), void *arg)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++)
        fn(&t->v[i], arg);
    pthread_mutex_unlock(&t->mu);
}

size_t stock_count(stock_table *t, size_t *ready)
{
    size_t n = 0, r = 0;
    if (t != NULL) {
        pthread_mutex_lock(&t->mu);
        n = t->n;
        for (size_t i = 0; i < t->n; i++)
            r += t->v[i].ready;
        pthread_mutex_unlock(&t->mu);
    }
    if (ready != NULL)
        *ready = r;
    return n;
}
