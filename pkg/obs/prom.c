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

/* ---- a growable output buffer ---- */
typedef struct pbuf {
    char *p;
    size_t len, cap;
} pbuf;

static void __attribute__((format(printf, 2, 3))) pb_printf(pbuf *b, const char *fmt, ...)
{
    for (;;) {
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
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
}

/* ---- one sample of any kind, collected before rendering ---- */
typedef enum { K_COUNTER, K_GAUGE, K_HIST } kind;

typedef struct sample {
    kind k;
    char family[128];
    char labels[256]; /* without braces; may be empty */
    double value;     /* counter, gauge */
    obs_hist_snap h;  /* histogram */
    bool done;
} sample;

typedef struct collect {
    sample *s;
    size_t n, cap;
} collect;

static sample *add_sample(collect *c, kind k, const char *name)
{
    if (c->n == c->cap) {
        c->cap = c->cap != 0 ? c->cap * 2 : 256;
        c->s = realloc(c->s, c->cap * sizeof *c->s);
        if (c->s == NULL)
            abort();
    }
    sample *s = &c->s[c->n++];
    memset(s, 0, sizeof *s);
    s->k = k;
    const char *brace = strchr(name, '{');
    size_t fl = brace != NULL ? (size_t)(brace - name) : strlen(name);
    snprintf(s->family, sizeof s->family, "%.*s", (int)fl, name);
    if (brace != NULL) {
        const char *end = strrchr(brace, '}');
        size_t ll = end != NULL && end > brace ? (size_t)(end - brace - 1) : strlen(brace + 1);
        snprintf(s->labels, sizeof s->labels, "%.*s", (int)ll, brace + 1);
    }
    return s;
}

static void on_counter(const char *name, uint64_t v, void *arg)
{
    add_sample(arg, K_COUNTER, name)->value = (double)v;
}

static void on_gauge(const char *name, double v, void *arg)
{
    add_sample(arg, K_GAUGE, name)->value = v;
}

static void on_hist(const obs_hist_snap *h, void *arg)
{
    add_sample(arg, K_HIST, h->name)->h = *h;
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
        pb_printf(b, "%s%s%s%s %.0f\n", s->family, l[0] ? "{" : "", l, l[0] ? "}" : "", s->value);
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

char *obs_prom_render(size_t *len)
{
    pthread_mutex_lock(&prom_lock);
    size_t nh = prom_nhooks;
    pthread_mutex_unlock(&prom_lock);
    for (size_t i = 0; i < nh; i++)
        prom_hooks[i].fn(prom_hooks[i].arg);
    collect c = {0};
    obs_counter_foreach(on_counter, &c);
    obs_gauge_foreach(on_gauge, &c);
    obs_hist_foreach(on_hist, &c);
    pbuf b = {0};
    pb_printf(&b, "%s", "");
    for (size_t i = 0; i < c.n; i++) {
        if (c.s[i].done)
            continue;
        render_help(&b, &c.s[i]);
        for (size_t j = i; j < c.n; j++) {
            if (!c.s[j].done && c.s[j].k == c.s[i].k && strcmp(c.s[j].family, c.s[i].family) == 0) {
                render_sample(&b, &c.s[j]);
                c.s[j].done = true;
            }
        }
    }
    free(c.s);
    if (len != NULL)
        *len = b.len;
    return b.p;
}
