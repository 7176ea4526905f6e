#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct obs_counter {
    char *name;
    _Atomic uint64_t value;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static obs_counter metrics_table[OBS_MAX_COUNTERS];
static _Atomic size_t metrics_count;
/* Handed out when the table is full: counts go nowhere, the series is not exposed. */
static obs_counter metrics_sink = {.name = "obs_dropped"};
static _Atomic uint64_t dropped_series;

void obs_note_dropped_series(void)
{
    atomic_fetch_add_explicit(&dropped_series, 1, memory_order_relaxed);
}

uint64_t obs_dropped_series(void)
{
    return atomic_load_explicit(&dropped_series, memory_order_relaxed);
}

/* A name -> slot index beside the table, so a lookup (every obs_count on the
 * request path) is a hash probe with no lock instead of a strcmp walk of
 * hundreds of names under a mutex every thread shares: in a burst of new
 * sessions that walk and the mutex's hand-offs were most of the master's
 * strcmp and futex samples. Names are never removed, so readers need no lock:
 * a slot is published (release) only after its counter's name is set. */
#define INDEX_SLOTS (4 * OBS_MAX_COUNTERS)          /* a power of two, at most a quarter full */
static _Atomic uint32_t metrics_index[INDEX_SLOTS]; /* table slot + 1; 0: empty */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static obs_counter *index_find(const char *name, uint32_t h)
{
    for (uint32_t k = 0; k < INDEX_SLOTS; k++) {
        uint32_t v =
            atomic_load_explicit(&metrics_index[(h + k) & (INDEX_SLOTS - 1)], memory_order_acquire);
        if (v == 0)
            return NULL;
        if (strcmp(metrics_table[v - 1].name, name) == 0)
            return &metrics_table[v - 1];
    }
    return NULL;
}

obs_counter *obs_counter_get(const char *name)
{
    uint32_t h = name_hash(name);
    obs_counter *c = index_find(name, h);
    if (c != NULL)
        return c;
    pthread_mutex_lock(&metrics_lock);
    if ((c = index_find(name, h)) != NULL) { /* another thread added it meanwhile */
        pthread_mutex_unlock(&metrics_lock);
        return c;
    }
    size_t n = atomic_load(&metrics_count);
    if (n == OBS_MAX_COUNTERS || (metrics_table[n].name = strdup(name)) == NULL) {
        pthread_mutex_unlock(&metrics_lock);
        obs_note_dropped_series();
        return &metrics_sink;
    }
    atomic_store(&metrics_table[n].value, 0);
    atomic_store(&metrics_count, n + 1);
    uint32_t k = h;
    while (atomic_load_explicit(&metrics_index[k & (INDEX_SLOTS - 1)], memory_order_relaxed) != 0)
        k++; /* never full: at most a quarter of the slots are used */
    atomic_store_explicit(&metrics_index[k & (INDEX_SLOTS - 1)], (uint32_t)n + 1,
                          memory_order_release);
    pthread_mutex_unlock(&metrics_lock);
    return &metrics_table[n];
}

void obs_add(obs_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t obs_value(const obs_counter *c)
{
    return atomic_load_explicit(&((obs_counter *)c)->value, memory_order_relaxed);
}

void obs_count(const char *name)
{
    obs_inc(obs_counter_get(name));
}

void obs_counter_foreach(void (*fn)(const char *name, uint64_t value, void *arg), void *arg)
{
    size_t n = atomic_load(&metrics_count);
    for (size_t i = 0; i < n; i++)
        fn(metrics_table[i].name, obs_value(&metrics_table[i]), arg);
}
