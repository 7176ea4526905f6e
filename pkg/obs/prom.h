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

/* Sets the HELP text of a family (the name without labels); help is copied.
 * Families without one get a generic text. */
void obs_describe(const char *family, const char *help);

/* Registers fn to run before each exposition (to refresh gauges). At most 8. */
void obs_on_scrape(void (*fn)(void *arg), void *arg);

/* Renders the exposition; the caller frees the returned NUL-terminated text. */
char *obs_prom_render(size_t *len);

#endif
