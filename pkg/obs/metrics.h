/*
 * Process-wide named counters. A name carries its labels Prometheus-style:
 * `wire_errors_total{kind="decode"}`. Counters live until exit.
 *
 * Thread-safety: every call is safe from any thread; obs_counter() takes a lock
 * once per name lookup, obs_inc/obs_add are lock-free atomics, so hot paths keep
 * the pointer returned by obs_counter().
 */
#ifndef LB_OBS_METRICS_H
#define LB_OBS_METRICS_H

#include <stdint.h>

typedef struct obs_counter obs_counter;

/* Returns the counter named name, creating it at 0. Never NULL: when the table
 * of OBS_MAX_COUNTERS is full (or memory is short) it returns a sink that is
 * never exposed and counts the loss in obs_dropped_series_total. */
obs_counter *obs_counter_get(const char *name);
void obs_add(obs_counter *c, uint64_t n);
static inline void obs_inc(obs_counter *c)
{
    obs_add(c, 1);
}
uint64_t obs_value(const obs_counter *c);

/* Shorthand for one-off increments on cold paths. */
void obs_count(const char *name);

/* Calls fn for every counter in creation order. */
void obs_counter_foreach(void (*fn)(const char *name, uint64_t value, void *arg), void *arg);

#define OBS_MAX_COUNTERS 1024

/* Counts one series that could not be stored or exposed (a full table, a
 * scrape over its limit); exposed as obs_dropped_series_total. */
void obs_note_dropped_series(void);
uint64_t obs_dropped_series(void);

#endif
