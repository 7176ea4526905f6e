#include "obs/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_RESERVE 24 /* room kept for a closing quote, " truncated=1" and \n */

/* Atomic: SIGHUP changes the level while other threads log. */
static _Atomic int log_min = OBS_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void obs_log_set_level(obs_level min)
{
    atomic_store(&log_min, (int)min);
}

obs_level obs_log_get_level(void)
{
    return (obs_level)atomic_load(&log_min);
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

/* One line being built. Appends that do not fit whole set full and are
 * dropped, so an escape sequence is never cut in half. */
typedef struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool full;
    bool quoted; /* inside a quoted value now */
    bool open;   /* was inside a quoted value when it turned full */
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->full || l->len + n > LOG_LINE_MAX - LOG_RESERVE) {
        if (!l->full)
            l->open = l->quoted;
        l->full = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void putc1(line *l, char c)
{
    put(l, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : (c & 0xF0) == 0xE0     ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

/* Appends n bytes of s escaped for the inside of a logfmt quoted value:
 * \" \\ \n \r \t, other control bytes as \u00XX, bytes that are not UTF-8 as
 * \xNN. The result has no raw control byte, so one call is one line. */
static void log_escape(line *l, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    char esc[8];
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t u = utf8_len(p + i, n - i);
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\r') {
            put(l, "\\r", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, 6);
        } else if (u == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            put(l, esc, 4);
        } else {
            put(l, s + i, u);
        }
        i += u != 0 ? u : 1;
    }
}

/* A bare logfmt value: non-empty, printable ASCII without space, quote,
 * equals sign or backslash. Anything else is quoted. */
static bool is_bare(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7F || c == '"' || c == '=' || c == '\\')
            return false;
    }
    return true;
}

/* Appends a %s argument: escaped inside a quoted region of the format,
 * otherwise as a complete logfmt value (quoted when it needs to be). */
static void put_str(line *l, const char *s, int prec, bool in_quotes)
{
    if (s == NULL)
        s = "(null)";
    size_t n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
    if (in_quotes) {
        log_escape(l, s, n);
    } else if (is_bare(s, n)) {
        put(l, s, n);
    } else {
        putc1(l, '"');
        l->quoted = true;
        log_escape(l, s, n);
        putc1(l, '"');
        l->quoted = false;
    }
}

/* Formats one non-string conversion (spec is "%...X" with '*' already
 * replaced) with the argument type its length modifier names. */
static void put_num(line *l, const char *spec, const char *lenmod, char conv, va_list *ap)
{
    char out[128];
    int n = 0;
    bool ll = strcmp(lenmod, "ll") == 0, lo = strcmp(lenmod, "l") == 0;
    bool z = lenmod[0] == 'z', j = lenmod[0] == 'j', t = lenmod[0] == 't';
    switch (conv) {
    case 'd':
    case 'i':
        if (ll)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, long long));
        else if (lo)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, long));
        else if (z)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, ssize_t));
        else if (j)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, intmax_t));
        else if (t)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, ptrdiff_t));
        else
            n = snprintf(out, sizeof out, spec, va_arg(*ap, int));
        break;
    case 'u':
    case 'x':
    case 'X':
    case 'o':
        if (ll)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, unsigned long long));
        else if (lo)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, unsigned long));
        else if (z)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, size_t));
        else if (j)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, uintmax_t));
        else if (t)
            n = snprintf(out, sizeof out, spec, va_arg(*ap, ptrdiff_t));
        else
            n = snprintf(out, sizeof out, spec, va_arg(*ap, unsigned));
        break;
    case 'c': {
        char ch = (char)va_arg(*ap, int);
        log_escape(l, &ch, 1);
        return;
    }
    case 'p':
        n = snprintf(out, sizeof out, spec, va_arg(*ap, void *));
        break;
    default: /* floating point */
        if (lenmod[0] == 'L')
            n = snprintf(out, sizeof out, spec, va_arg(*ap, long double));
        else
            n = snprintf(out, sizeof out, spec, va_arg(*ap, double));
        break;
    }
    if (n > 0)
        log_escape(l, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
}

/* Reads a width or precision at *f ("*" takes an int argument) into spec. */
static int take_num(const char **f, va_list *ap, char *spec, size_t *sl, size_t cap)
{
    int v = -1;
    if (**f == '*') {
        v = va_arg(*ap, int);
        (*f)++;
    } else if (**f >= '0' && **f <= '9') {
        v = 0;
        while (**f >= '0' && **f <= '9')
            v = v * 10 + (*(*f)++ - '0');
    }
    if (v >= 0 && *sl < cap)
        *sl += (size_t)snprintf(spec + *sl, cap - *sl, "%d", v);
    return v;
}

/* printf for the key=value tail: literal text is copied, every %s argument is
 * escaped (it is data: a client id, an app name, a reason) so no value can
 * break the line or forge a key. */
static void format_tail(line *l, const char *f, va_list *ap)
{
    bool in_quotes = false;
    while (*f != '\0' && !l->full) {
        if (*f != '%') {
            if (*f == '"')
                in_quotes = !in_quotes;
            l->quoted = in_quotes;
            putc1(l, *f++);
            continue;
        }
        f++;
        if (*f == '%') {
            putc1(l, *f++);
            continue;
        }
        char spec[48] = "%";
        size_t sl = 1;
        while (*f != '\0' && strchr("-+ #0", *f) != NULL && sl < 8)
            spec[sl++] = *f++;
        take_num(&f, ap, spec, &sl, 24);
        int prec = -1;
        if (*f == '.') {
            spec[sl++] = *f++;
            prec = take_num(&f, ap, spec, &sl, 40);
            if (prec < 0)
                prec = 0;
        }
        char lenmod[3] = "";
        size_t ml = 0;
        while (*f != '\0' && strchr("hlLzjt", *f) != NULL && ml < 2)
            lenmod[ml++] = spec[sl++] = *f++;
        if (*f == '\0')
            break;
        char conv = *f++;
        spec[sl++] = conv;
        spec[sl] = '\0';
        if (conv == 's')
            put_str(l, va_arg(*ap, const char *), prec, in_quotes);
        else if (strchr("diuxXocpfFeEgGaA", conv) != NULL)
            put_num(l, spec, lenmod, conv, ap);
        else
            break; /* %n and unknown conversions end the tail */
    }
}

void obs_log(obs_level lvl, const char *comp, const char *msg, const char *kvfmt, ...)
{
    if ((int)lvl < atomic_load(&log_min))
        return;
    line l = {.len = 0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char head[96];
    int n = snprintf(head, sizeof head,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[lvl]);
    put(&l, head, n > 0 ? (size_t)n : 0);
    put_str(&l, comp, -1, false);
    put(&l, " msg=\"", 6);
    log_escape(&l, msg != NULL ? msg : "", msg != NULL ? strlen(msg) : 0);
    putc1(&l, '"');
    if (kvfmt != NULL && *kvfmt != '\0') {
        putc1(&l, ' ');
        va_list ap;
        va_start(ap, kvfmt);
        format_tail(&l, kvfmt, &ap);
        va_end(ap);
    }
    if (l.full) {
        /* Close what was open: the line stays parseable, and says it was cut. */
        const char *tail = l.open ? "\" truncated=1\n" : " truncated=1\n";
        memcpy(l.buf + l.len, tail, strlen(tail));
        l.len += strlen(tail);
    } else {
        l.buf[l.len++] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
