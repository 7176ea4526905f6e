/*
 * Histograms (fixed buckets) and gauges, named like counters with their labels
 * in the name: `master_selection_seconds{action="serve"}`. They live until exit,
 * so they are for series of bounded number (per action, per call); series per
 * server or per client come from a collector at scrape time (obs/prom.h).
 * A full table never aborts: the caller gets a sink that is not exposed and
 * the loss is counted in obs_dropped_series_total.
 *
 * Thread-safety: obs_hist_get / obs_gauge_get take a lock for the name lookup
 * (hot paths keep the pointer); obs_observe and obs_gauge_set are lock-free.
 */
#ifndef LB_OBS_HIST_H
#define LB_OBS_HIST_H

#include <stddef.h>
#include <stdint.h>

#define OBS_HIST_MAX_BUCKETS 16
#define OBS_MAX_HISTS 256
#define OBS_MAX_GAUGES 1024

typedef struct obs_hist obs_hist;
typedef struct obs_gauge obs_gauge;

/* Latency buckets in seconds, 0.5 ms .. 10 s (the default when bounds is NULL). */
extern const double obs_latency_buckets[];
extern const size_t obs_latency_nbuckets;

/* Returns the histogram named name, creating it with the n ascending upper
 * bounds given (NULL: obs_latency_buckets; more than OBS_HIST_MAX_BUCKETS
 * bounds are cut). Never NULL (a sink when the table is full). */
obs_hist *obs_hist_get(const char *name, const double *bounds, size_t n);
/* Records one value (seconds for latencies). */
void obs_observe(obs_hist *h, double v);
/* Records the seconds elapsed since start_ns (obs_now_ns()). */
void obs_observe_since(obs_hist *h, uint64_t start_ns);
/* Monotonic clock in nanoseconds. */
uint64_t obs_now_ns(void);

/* A histogram's state, copied (buckets are per-bucket, not cumulative). */
typedef struct obs_hist_snap {
    const char *name;
    size_t n;
    const double *bounds;
    uint64_t counts[OBS_HIST_MAX_BUCKETS + 1]; /* the last one is +Inf */
    uint64_t count;
    double sum;
} obs_hist_snap;
void obs_hist_foreach(void (*fn)(const obs_hist_snap *s, void *arg), void *arg);

/* Returns the gauge named name, created at 0; never NULL (a sink when full). */
obs_gauge *obs_gauge_get(const char *name);
void obs_gauge_set(obs_gauge *g, double v);
double obs_gauge_value(const obs_gauge *g);
void obs_gauge_foreach(void (*fn)(const char *name, double value, void *arg), void *arg);

#endif
