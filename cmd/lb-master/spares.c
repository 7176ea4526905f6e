/* Hot-spare reservations: a small array under a mutex. The count is bounded
 * by cap (a few per in-flight new session), so linear scans are cheaper and
 * simpler than a hash here. */
#include "spares.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct spare_table {
    pthread_mutex_t mu;
    spare_resv *v;
    size_t n, cap;
};

spare_table *spare_table_new(size_t cap)
{
    if (cap == 0)
        return NULL;
    spare_table *t = calloc(1, sizeof *t);
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

void spare_table_free(spare_table *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->v);
    free(t);
}

/* Whether s is non-empty and fits a SPARE_ID_MAX field with its NUL. */
static bool id_ok(const char *s)
{
    size_t n = strnlen(s, SPARE_ID_MAX);
    return n > 0 && n < SPARE_ID_MAX;
}

/* Index of session_id, or -1. Lock held. */
static long find(const spare_table *t, const char *session_id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].session_id, session_id) == 0)
            return (long)i;
    return -1;
}

/* Removes entry i by moving the last one into it (order does not matter).
 * Lock held. */
static void drop(spare_table *t, size_t i)
{
    t->v[i] = t->v[--t->n];
}

lb_err spare_reserve(spare_table *t, const spare_resv *r)
{
    if (t == NULL || r == NULL || !id_ok(r->session_id) || !id_ok(r->client_id) || !id_ok(r->app) ||
        !id_ok(r->server_id) || r->pid <= 0)
        return LB_EINVAL;
    lb_err err = LB_OK;
    pthread_mutex_lock(&t->mu);
    if (find(t, r->session_id) >= 0)
        err = LB_EEXISTS;
    else if (t->n == t->cap)
        err = LB_EUNAVAIL;
    else
        t->v[t->n++] = *r;
    pthread_mutex_unlock(&t->mu);
    return err;
}

lb_err spare_claim(spare_table *t, const char *session_id, const char *client_id, int64_t now_ms,
                   spare_resv *out)
{
    if (t == NULL || session_id == NULL || client_id == NULL)
        return LB_EINVAL;
    lb_err err = LB_OK;
    pthread_mutex_lock(&t->mu);
    long i = find(t, session_id);
    if (i < 0)
        err = LB_ENOTFOUND;
    else if (now_ms >= t->v[i].expires_ms)
        err = LB_ETIMEDOUT;
    else if (strcmp(t->v[i].client_id, client_id) != 0)
        err = LB_EAUTH;
    if (err == LB_OK) {
        if (out != NULL)
            *out = t->v[i];
        drop(t, (size_t)i);
    }
    pthread_mutex_unlock(&t->mu);
    return err;
}

size_t spare_expire(spare_table *t, int64_t now_ms, spare_resv *out, size_t max)
{
    if (t == NULL)
        return 0;
    size_t k = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && k < max;) {
        if (now_ms >= t->v[i].expires_ms) {
            if (out != NULL)
                out[k] = t->v[i];
            k++;
            drop(t, i); /* i now holds the former last entry: look at it again */
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return k;
}

size_t spare_count(spare_table *t)
{
    if (t == NULL)
        return 0;
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

void spare_foreach(spare_table *t, void (*fn)(const spare_resv *r, void *arg), void *arg)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n; i++)
        fn(&t->v[i], arg);
    pthread_mutex_unlock(&t->mu);
}
