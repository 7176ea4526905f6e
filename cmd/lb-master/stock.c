/* The stock table: a small array under a mutex. It holds at most
 * STOCK_MAX_PER_APP entries per (server, app), bounded in total by cap, so
 * linear scans are cheaper and simpler than a hash here. */
#include "stock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct stock_table {
    pthread_mutex_t mu;
    stock_item *v;
    size_t n, cap;
};

stock_table *stock_table_new(size_t cap)
{
    if (cap == 0)
        return NULL;
    stock_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->v = calloc(cap, sizeof *t->v);
    if (t->v == NULL) {
        free(t);
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
    pthread_mutex_destroy(&t->mu);
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
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].session_id, session_id) == 0)
            return (long)i;
    return -1;
}

static void drop_at(stock_table *t, size_t i)
{
    t->v[i] = t->v[--t->n];
}

/* Lock held. */
static size_t count_at(const stock_table *t, const char *server, const char *app, size_t *launching)
{
    size_t k = 0, l = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].server_id, server) != 0)
            continue;
        l += !t->v[i].ready;
        if (app != NULL && strcmp(t->v[i].app, app) == 0)
            k++;
    }
    if (launching != NULL)
        *launching = l;
    return k;
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
        t->v[t->n] = *it;
        t->v[t->n++].ready = false;
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
    for (size_t i = 0; i < t->n && !found; i++) {
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
    bool found = false;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && !found; i++)
        found = t->v[i].ready && strcmp(t->v[i].server_id, server) == 0 &&
                strcmp(t->v[i].app, app) == 0;
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
