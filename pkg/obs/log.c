#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static obs_level log_min = OBS_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void obs_log_set_level(obs_level min)
{
    log_min = min;
}

bool obs_log_parse_level(const char *s, obs_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (s != NULL && strcmp(s, level_names[i]) == 0) {
            *out = (obs_level)i;
            return true;
        }
    }
    return false;
}

/* Appends s as a logfmt quoted value, escaping quotes, backslashes and newlines. */
static size_t log_quote(char *buf, size_t pos, size_t cap, const char *s)
{
    if (pos < cap)
        buf[pos++] = '"';
    for (; s != NULL && *s != '\0' && pos + 2 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = *s;
        } else if (*s == '\n') {
            buf[pos++] = '\\';
            buf[pos++] = 'n';
        } else {
            buf[pos++] = *s;
        }
    }
    if (pos < cap)
        buf[pos++] = '"';
    return pos;
}

void obs_log(obs_level lvl, const char *comp, const char *msg, const char *kvfmt, ...)
{
    if (lvl < log_min)
        return;
    char buf[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(buf, sizeof buf,
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s msg=", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_names[lvl], comp);
    size_t pos = n > 0 ? (size_t)n : 0;
    const size_t cap = sizeof buf - 2;
    pos = log_quote(buf, pos, cap, msg);
    if (kvfmt != NULL && *kvfmt != '\0' && pos + 1 < cap) {
        buf[pos++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(buf + pos, cap - pos, kvfmt, ap);
        va_end(ap);
        if (m > 0)
            pos += (size_t)m < cap - pos ? (size_t)m : cap - pos - 1;
    }
    buf[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, pos);
    (void)w;
}
