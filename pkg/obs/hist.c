#include "obs/hist.h"

#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double obs_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t obs_latency_nbuckets = sizeof obs_latency_buckets / sizeof obs_latency_buckets[0];

struct obs_hist {
    char *name;
    size_t n;
    double bounds[OBS_HIST_MAX_BUCKETS];
    _Atomic uint64_t counts[OBS_HIST_MAX_BUCKETS + 1];
    _Atomic uint64_t sum_bits; /* a double, updated by compare-and-swap */
};

struct obs_gauge {
    char *name;
    _Atomic uint64_t bits; /* a double */
};

static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;
static obs_hist hist_table[OBS_MAX_HISTS];
static _Atomic size_t hist_count;
static obs_gauge gauge_table[OBS_MAX_GAUGES];
static _Atomic size_t gauge_count;
/* Handed out when a table is full: writes go nowhere, nothing is exposed. */
static obs_hist hist_sink = {.name = "obs_dropped"};
static obs_gauge gauge_sink = {.name = "obs_dropped"};

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

uint64_t obs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

obs_hist *obs_hist_get(const char *name, const double *bounds, size_t n)
{
    if (bounds == NULL) {
        bounds = obs_latency_buckets;
        n = obs_latency_nbuckets;
    }
    if (n > OBS_HIST_MAX_BUCKETS)
        n = OBS_HIST_MAX_BUCKETS; /* the top buckets fold into +Inf */
    pthread_mutex_lock(&hist_lock);
    size_t have = atomic_load(&hist_count);
    for (size_t i = 0; i < have; i++) {
        if (strcmp(hist_table[i].name, name) == 0) {
            pthread_mutex_unlock(&hist_lock);
            return &hist_table[i];
        }
    }
    obs_hist *h = have < OBS_MAX_HISTS ? &hist_table[have] : NULL;
    if (h == NULL || (h->name = strdup(name)) == NULL) {
        pthread_mutex_unlock(&hist_lock);
        obs_note_dropped_series();
        return &hist_sink;
    }
    h->n = n;
    memcpy(h->bounds, bounds, n * sizeof *bounds);
    atomic_store(&hist_count, have + 1);
    pthread_mutex_unlock(&hist_lock);
    return h;
}

void obs_observe(obs_hist *h, double v)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void obs_observe_since(obs_hist *h, uint64_t start_ns)
{
    uint64_t now = obs_now_ns();
    obs_observe(h, now > start_ns ? (double)(now - start_ns) / 1e9 : 0.0);
}

void obs_hist_foreach(void (*fn)(const obs_hist_snap *s, void *arg), void *arg)
{
    size_t have = atomic_load(&hist_count);
    for (size_t i = 0; i < have; i++) {
        obs_hist *h = &hist_table[i];
        obs_hist_snap s = {.name = h->name, .n = h->n, .bounds = h->bounds};
        for (size_t b = 0; b <= h->n; b++) {
            s.counts[b] = atomic_load_explicit(&h->counts[b], memory_order_relaxed);
            s.count += s.counts[b];
        }
        s.sum = u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
        fn(&s, arg);
    }
}

obs_gauge *obs_gauge_get(const char *name)
{
    pthread_mutex_lock(&hist_lock);
    size_t have = atomic_load(&gauge_count);
    for (size_t i = 0; i < have; i++) {
        if (strcmp(gauge_table[i].name, name) == 0) {
            pthread_mutex_unlock(&hist_lock);
            return &gauge_table[i];
        }
    }
    obs_gauge *g = have < OBS_MAX_GAUGES ? &gauge_table[have] : NULL;
    if (g == NULL || (g->name = strdup(name)) == NULL) {
        pthread_mutex_unlock(&hist_lock);
        obs_note_dropped_series();
        return &gauge_sink;
    }
    atomic_store(&g->bits, d2u(0.0));
    atomic_store(&gauge_count, have + 1);
    pthread_mutex_unlock(&hist_lock);
    return g;
}

void obs_gauge_set(obs_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

double obs_gauge_value(const obs_gauge *g)
{
    return u2d(atomic_load_explicit(&((obs_gauge *)g)->bits, memory_order_relaxed));
}

void obs_gauge_foreach(void (*fn)(const char *name, double value, void *arg), void *arg)
{
    size_t have = atomic_load(&gauge_count);
    for (size_t i = 0; i < have; i++)
        fn(gauge_table[i].name, obs_gauge_value(&gauge_table[i]), arg);
}
