#define _GNU_SOURCE
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lb_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t lb_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

char *lb_strdup(const char *s)
{
    char *d = strdup(s != NULL ? s : "");
    if (d == NULL)
        abort();
    return d;
}

void *lb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

void lb_random_id(char out[33])
{
    unsigned char b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort();
        }
        got += (size_t)n;
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

bool lb_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0)
        return false;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return false;
    /* Converting a double outside int64_t's range is undefined behaviour
     * ("1e30", 40 digits, "inf", "nan"): such values are refused, not cast. */
    double ms = v * mult;
    if (!isfinite(ms) || ms >= 9223372036854775808.0)
        return false;
    *out_ms = (int64_t)ms;
    return true;
}

bool lb_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0)
        return false;
    static const struct {
        const char *suf;
        double mult;
    } units[] = {{"", 1},         {"B", 1},    {"K", 1e3},           {"KB", 1e3},
                 {"KiB", 1024.0}, {"M", 1e6},  {"MB", 1e6},          {"MiB", 1048576.0},
                 {"G", 1e9},      {"GB", 1e9}, {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suf) == 0) {
            double bytes = v * units[i].mult;
            if (!isfinite(bytes) || bytes >= 18446744073709551616.0)
                return false; /* the cast would be undefined behaviour */
            *out = (uint64_t)bytes;
            return true;
        }
    }
    return false;
}

void lb_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
