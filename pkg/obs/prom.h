/*
 * Prometheus text exposition (format 0.0.4) of every counter, gauge and
 * histogram of the process: one `# HELP` and `# TYPE` per family, the samples
 * of a family (same name, different labels) together.
 *
 * Thread-safety: every call is safe from any thread.
 */
#ifndef LB_OBS_PROM_H
#define LB_OBS_PROM_H

#include <stddef.h>

/* A counter named `x_microseconds_total` (integer microseconds, cheap on a hot
 * path and exact in StatsRequest) is exposed as `x_seconds_total` in seconds,
 * Prometheus's base unit; describe it under the exposed name. */

/* Sets the HELP text of a family (the name without labels); help is copied.
 * Families without one get a generic text. */
void obs_describe(const char *family, const char *help);

/* Registers fn to run before each exposition (to refresh gauges). At most 8. */
void obs_on_scrape(void (*fn)(void *arg), void *arg);

/* Series whose number follows the cluster (one per server, per slave) are not
 * kept in the process-wide tables: a collector registered here emits them at
 * each scrape from the caller's own view, so a server that left has no series
 * and 10,000 servers cost nothing between scrapes. At most 8 collectors; a
 * scrape keeps at most OBS_MAX_SCRAPE_SERIES samples, the rest are dropped and
 * counted in obs_dropped_series_total. */
#define OBS_MAX_SCRAPE_SERIES 200000
typedef struct obs_scrape obs_scrape;
void obs_on_collect(void (*fn)(obs_scrape *sc, void *arg), void *arg);
/* Emits family{label="value"} v; value is escaped as the format requires
 * (backslash, quote, newline; bytes that are not UTF-8 become U+FFFD). */
void obs_scrape_gauge(obs_scrape *sc, const char *family, const char *label, const char *value,
                      double v);

/* Renders the exposition (obs_dropped_series_total always included); the
 * caller frees the returned NUL-terminated text. NULL when memory is short. */
char *obs_prom_render(size_t *len);

#endif
