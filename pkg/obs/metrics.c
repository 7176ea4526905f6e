#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
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

obs_counter *obs_counter_get(const char *name)
{
    pthread_mutex_lock(&metrics_lock);
    size_t n = atomic_load(&metrics_count);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(metrics_table[i].name, name) == 0) {
            pthread_mutex_unlock(&metrics_lock);
            return &metrics_table[i];
        }
    }
    if (n == OBS_MAX_COUNTERS || (metrics_table[n].name = strdup(name)) == NULL) {
        pthread_mutex_unlock(&metrics_lock);
        obs_note_dropped_series();
        return &metrics_sink;
    }
    atomic_store(&metrics_table[n].value, 0);
    atomic_store(&metrics_count, n + 1);
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
