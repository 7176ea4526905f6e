#include "obs/prom.h"

#include "obs/hist.h"
#include "obs/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_MAX_HELP 256
#define PROM_MAX_HOOKS 8
#define PROM_MAX_COLLECTORS 8

static pthread_mutex_t prom_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *family, *help;
} prom_help[PROM_MAX_HELP];
static size_t prom_nhelp;
static struct {
    void (*fn)(void *);
    void *arg;
} prom_hooks[PROM_MAX_HOOKS];
static size_t prom_nhooks;
static struct {
    void (*fn)(obs_scrape *, void *);
    void *arg;
} prom_collectors[PROM_MAX_COLLECTORS];
static size_t prom_ncollectors;

void obs_describe(const char *family, const char *help)
{
    pthread_mutex_lock(&prom_lock);
    for (size_t i = 0; i < prom_nhelp; i++) {
        if (strcmp(prom_help[i].family, family) == 0) {
            free(prom_help[i].help);
            prom_help[i].help = strdup(help);
            pthread_mutex_unlock(&prom_lock);
            return;
        }
    }
    if (prom_nhelp < PROM_MAX_HELP) {
        prom_help[prom_nhelp].family = strdup(family);
        prom_help[prom_nhelp].help = strdup(help);
        prom_nhelp++;
    }
    pthread_mutex_unlock(&prom_lock);
}

void obs_on_scrape(void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&prom_lock);
    if (prom_nhooks < PROM_MAX_HOOKS) {
        prom_hooks[prom_nhooks].fn = fn;
        prom_hooks[prom_nhooks].arg = arg;
        prom_nhooks++;
    }
    pthread_mutex_unlock(&prom_lock);
}

void obs_on_collect(void (*fn)(obs_scrape *sc, void *arg), void *arg)
{
    pthread_mutex_lock(&prom_lock);
    if (prom_ncollectors < PROM_MAX_COLLECTORS) {
        prom_collectors[prom_ncollectors].fn = fn;
        prom_collectors[prom_ncollectors].arg = arg;
        prom_ncollectors++;
    }
    pthread_mutex_unlock(&prom_lock);
}

/* ---- a growable output buffer; on a failed allocation it turns failed ---- */
typedef struct pbuf {
    char *p;
    size_t len, cap;
    bool failed;
} pbuf;

static void __attribute__((format(printf, 2, 3))) pb_printf(pbuf *b, const char *fmt, ...)
{
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap != 0 ? b->cap * 2 : 8192;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* ---- one sample of any kind, collected before rendering ---- */
typedef enum { K_COUNTER, K_GAUGE, K_HIST } kind;

typedef struct sample {
    kind k;
    size_t order; /* creation order: families keep their first appearance */
    char family[128];
    char *labels;    /* without braces; may be empty; owned */
    double value;    /* counter, gauge */
    obs_hist_snap h; /* histogram */
} sample;

struct obs_scrape {
    sample *s;
    size_t n, cap;
    bool failed;
};

static sample *add_sample(obs_scrape *c, kind k, const char *family, size_t fl, const char *labels,
                          size_t ll)
{
    if (c->failed)
        return NULL;
    if (c->n == OBS_MAX_SCRAPE_SERIES) {
        obs_note_dropped_series();
        return NULL;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap != 0 ? c->cap * 2 : 256;
        sample *ns = realloc(c->s, cap * sizeof *ns);
        if (ns == NULL) {
            c->failed = true;
            return NULL;
        }
        c->s = ns;
        c->cap = cap;
    }
    sample *s = &c->s[c->n];
    memset(s, 0, sizeof *s);
    s->labels = strndup(labels, ll);
    if (s->labels == NULL) {
        c->failed = true;
        return NULL;
    }
    s->k = k;
    s->order = c->n++;
    snprintf(s->family, sizeof s->family, "%.*s", (int)fl, family);
    return s;
}

/* Splits `family{labels}` and adds it. */
static sample *add_named(obs_scrape *c, kind k, const char *name)
{
    const char *brace = strchr(name, '{');
    size_t fl = brace != NULL ? (size_t)(brace - name) : strlen(name);
    const char *l = "";
    size_t ll = 0;
    if (brace != NULL) {
        const char *end = strrchr(brace, '}');
        l = brace + 1;
        ll = end != NULL && end > brace ? (size_t)(end - l) : strlen(l);
    }
    return add_sample(c, k, name, fl, l, ll);
}

/* Length of the valid UTF-8 sequence at s (of n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

void obs_scrape_gauge(obs_scrape *sc, const char *family, const char *label, const char *value,
                      double v)
{
    /* The exposition format escapes \, " and newline; a byte that is not UTF-8
     * becomes U+FFFD so the text stays valid UTF-8. */
    pbuf l = {0};
    pb_printf(&l, "%s=\"", label);
    const unsigned char *p = (const unsigned char *)value;
    size_t n = strlen(value);
    for (size_t i = 0; i < n;) {
        size_t u = utf8_len(p + i, n - i);
        if (p[i] == '\\' || p[i] == '"')
            pb_printf(&l, "\\%c", p[i]);
        else if (p[i] == '\n')
            pb_printf(&l, "\\n");
        else if (u == 0)
            pb_printf(&l, "\xEF\xBF\xBD");
        else
            pb_printf(&l, "%.*s", (int)u, (const char *)p + i);
        i += u != 0 ? u : 1;
    }
    pb_printf(&l, "\"");
    sample *s = l.failed ? NULL : add_sample(sc, K_GAUGE, family, strlen(family), l.p, l.len);
    if (s != NULL)
        s->value = v;
    free(l.p);
}

/* Counters kept in integer microseconds (cheap to add from a hot path, exact
 * in StatsRequest) are exposed in seconds, Prometheus's base unit:
 * `x_microseconds_total{...}` becomes `x_seconds_total{...}`. */
#define US_SUFFIX "_microseconds_total"

static void on_counter(const char *name, uint64_t v, void *arg)
{
    const char *brace = strchr(name, '{');
    size_t fl = brace != NULL ? (size_t)(brace - name) : strlen(name);
    size_t sl = sizeof US_SUFFIX - 1;
    if (fl > sl && fl - sl < 100 && memcmp(name + fl - sl, US_SUFFIX, sl) == 0) {
        char renamed[256];
        snprintf(renamed, sizeof renamed, "%.*s_seconds_total%s", (int)(fl - sl), name,
                 brace != NULL ? brace : "");
        sample *s = add_named(arg, K_COUNTER, renamed);
        if (s != NULL)
            s->value = (double)v / 1e6;
        return;
    }
    sample *s = add_named(arg, K_COUNTER, name);
    if (s != NULL)
        s->value = (double)v;
}

static void on_gauge(const char *name, double v, void *arg)
{
    sample *s = add_named(arg, K_GAUGE, name);
    if (s != NULL)
        s->value = v;
}

static void on_hist(const obs_hist_snap *h, void *arg)
{
    sample *s = add_named(arg, K_HIST, h->name);
    if (s != NULL)
        s->h = *h;
}

static void render_help(pbuf *b, const sample *s)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    const char *help = NULL;
    pthread_mutex_lock(&prom_lock);
    for (size_t i = 0; i < prom_nhelp && help == NULL; i++)
        if (strcmp(prom_help[i].family, s->family) == 0)
            help = prom_help[i].help;
    if (help != NULL)
        pb_printf(b, "# HELP %s %s\n", s->family, help);
    else
        pb_printf(b, "# HELP %s lbcp %s %s\n", s->family, s->k == K_COUNTER ? "counter" : "metric",
                  s->family);
    pthread_mutex_unlock(&prom_lock);
    pb_printf(b, "# TYPE %s %s\n", s->family, types[s->k]);
}

static void render_sample(pbuf *b, const sample *s)
{
    const char *l = s->labels, *sep = s->labels[0] ? "," : "";
    if (s->k == K_COUNTER) {
        /* integers as such; seconds from microseconds to the microsecond */
        pb_printf(b, s->value == (double)(uint64_t)s->value ? "%s%s%s%s %.0f\n" : "%s%s%s%s %.6f\n",
                  s->family, l[0] ? "{" : "", l, l[0] ? "}" : "", s->value);
        return;
    }
    if (s->k == K_GAUGE) {
        pb_printf(b, "%s%s%s%s %.17g\n", s->family, l[0] ? "{" : "", l, l[0] ? "}" : "", s->value);
        return;
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= s->h.n; i++) {
        cum += s->h.counts[i];
        if (i < s->h.n)
            pb_printf(b, "%s_bucket{%s%sle=\"%.17g\"} %llu\n", s->family, l, sep, s->h.bounds[i],
                      (unsigned long long)cum);
        else
            pb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->family, l, sep,
                      (unsigned long long)cum);
    }
    pb_printf(b, "%s_sum%s%s%s %.17g\n", s->family, l[0] ? "{" : "", l, l[0] ? "}" : "", s->h.sum);
    pb_printf(b, "%s_count%s%s%s %llu\n", s->family, l[0] ? "{" : "", l, l[0] ? "}" : "",
              (unsigned long long)cum);
}

/* Sorts by family (then kind), keeping creation order inside a family, so a
 * family's samples are rendered together in O(n log n) at 10,000 servers. */
static int sample_cmp(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    if (c == 0)
        c = (int)x->k - (int)y->k;
    if (c == 0)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

char *obs_prom_render(size_t *len)
{
    pthread_mutex_lock(&prom_lock);
    size_t nh = prom_nhooks, nc = prom_ncollectors;
    pthread_mutex_unlock(&prom_lock);
    for (size_t i = 0; i < nh; i++)
        prom_hooks[i].fn(prom_hooks[i].arg);
    obs_scrape c = {0};
    obs_counter_foreach(on_counter, &c);
    obs_gauge_foreach(on_gauge, &c);
    obs_hist_foreach(on_hist, &c);
    for (size_t i = 0; i < nc; i++)
        prom_collectors[i].fn(&c, prom_collectors[i].arg);
    /* Last, so the losses of this very scrape are in it. */
    on_counter("obs_dropped_series_total", obs_dropped_series(), &c);
    pbuf b = {0};
    pb_printf(&b, "%s", "");
    if (c.n > 0)
        qsort(c.s, c.n, sizeof *c.s, sample_cmp);
    for (size_t i = 0; i < c.n; i++) {
        if (i == 0 || c.s[i].k != c.s[i - 1].k || strcmp(c.s[i].family, c.s[i - 1].family) != 0)
            render_help(&b, &c.s[i]);
        render_sample(&b, &c.s[i]);
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.s[i].labels);
    free(c.s);
    if (b.failed || c.failed) {
        free(b.p);
        return NULL;
    }
    if (len != NULL)
        *len = b.len;
    return b.p;
}
