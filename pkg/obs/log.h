/*
 * logfmt logging on stderr: `ts=... level=... comp=... msg="..." key=value...`.
 * Thread-safe: each line is formatted into one buffer and written with one write(2).
 */
#ifndef LB_OBS_LOG_H
#define LB_OBS_LOG_H

#include <stdbool.h>

typedef enum obs_level { OBS_DEBUG = 0, OBS_INFO, OBS_WARN, OBS_ERROR } obs_level;

/* Sets the minimum level printed (default OBS_INFO). Safe from any thread at
 * any time (a config reload changes it while others log). */
void obs_log_set_level(obs_level min);
obs_level obs_log_get_level(void);
/* "debug", "info", "warn", "error" -> level; false on anything else. */
bool obs_log_parse_level(const char *s, obs_level *out);

/* msg is quoted; kvfmt (may be NULL) is a printf format for the key=value tail.
 * Every value is escaped here, so call sites pass untrusted text (client ids,
 * app names, reasons) as plain %s arguments:
 *   - a %s inside quotes of the format (`reason=\"%s\"`) is escaped;
 *   - a %s outside quotes (`client=%s`) is written bare when it is plain
 *     printable ASCII, else quoted and escaped (an empty value is "").
 * Escapes: \" \\ \n \r \t, other control bytes \u00XX, bytes that are not
 * UTF-8 \xNN. A line is at most 4 KiB; a longer one is cut at a value boundary,
 * closed, and ends with truncated=1. Each call writes exactly one line. */
void obs_log(obs_level lvl, const char *comp, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 4, 5)));

#define LOG_DEBUG(comp, msg, ...) obs_log(OBS_DEBUG, comp, msg, __VA_ARGS__)
#define LOG_INFO(comp, msg, ...) obs_log(OBS_INFO, comp, msg, __VA_ARGS__)
#define LOG_WARN(comp, msg, ...) obs_log(OBS_WARN, comp, msg, __VA_ARGS__)
#define LOG_ERROR(comp, msg, ...) obs_log(OBS_ERROR, comp, msg, __VA_ARGS__)

#endif
