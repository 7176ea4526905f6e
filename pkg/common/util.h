/* Small helpers shared by every module: time, strings, ids. Thread-safe. */
#ifndef LB_COMMON_UTIL_H
#define LB_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic and wall clocks in milliseconds. */
int64_t lb_mono_ms(void);
int64_t lb_wall_ms(void);

/* strdup that aborts on out-of-memory (the daemons cannot go on without it). */
char *lb_strdup(const char *s);
void *lb_xcalloc(size_t n, size_t size);

/* Random 128-bit hex id, 32 chars + NUL, into out[33]. */
void lb_random_id(char out[33]);

/* Parses "250ms", "5s", "2m", "1h", or a bare number of seconds, into ms.
 * False for garbage, negatives, NaN/infinity and anything of 2^63 ms or more. */
bool lb_parse_duration_ms(const char *s, int64_t *out_ms);

/* Parses "1024", "64KiB", "1MiB", "2G", "512M" into bytes. False for garbage,
 * negatives, NaN/infinity and anything of 2^64 bytes or more. */
bool lb_parse_size(const char *s, uint64_t *out);

/* Sleeps ms milliseconds (restarts on EINTR). */
void lb_sleep_ms(int64_t ms);

#endif
