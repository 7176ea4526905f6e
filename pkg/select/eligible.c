/*
 * Eligibility: the rules that take a server out of the running for one
 * request, each with the numbers an operator needs to see why
 * ("needs 2.0 free cpu, has 0.5").
 */
#include "select/sel_internal.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static bool elig_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

bool sel_has_requirements(const sel_request *req)
{
    return req->min_cpu > 0 || req->min_mem > 0 || req->n_labels > 0 || elig_set(req->arch) ||
           elig_set(req->os);
}

/* The advertised attributes a "key=value" requirement may name besides the
 * agent's labels (KPN/TNO: nodes advertise what they are; functions are placed
 * where it fits). A label of the same key wins over the attribute. */
static const char *elig_attr(const sel_server *sv, const char *key, size_t klen)
{
    static const struct {
        const char *name;
        size_t off;
    } attrs[] = {
        {"arch", offsetof(sel_server, arch)},   {"os", offsetof(sel_server, os)},
        {"zone", offsetof(sel_server, zone)},   {"region", offsetof(sel_server, region)},
        {"group", offsetof(sel_server, group)},
    };
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        if (strlen(attrs[i].name) == klen && strncmp(attrs[i].name, key, klen) == 0) {
            const char *v = *(const char *const *)((const char *)sv + attrs[i].off);
            return v != NULL ? v : "";
        }
    return NULL;
}

/* Checks one advertised attribute against a wanted value ("" wants nothing). */
static bool elig_attr_eq(const char *what, const char *want, const char *have, char *detail,
                         size_t n)
{
    if (!elig_set(want) || (have != NULL && strcmp(want, have) == 0))
        return true;
    if (detail != NULL)
        snprintf(detail, n, "needs %s %s, has %s", what, want, elig_set(have) ? have : "none");
    return false;
}

bool sel_slave_fronts(const sel_slave *sl, const char *app)
{
    if (sl->n_apps == 0)
        return true;
    for (size_t i = 0; i < sl->n_apps; i++)
        if (sl->apps[i] != NULL && app != NULL && strcmp(sl->apps[i], app) == 0)
            return true;
    return false;
}

bool sel_slave_reaches(const sel_slave *sl, const sel_server *sv)
{
    if (sv->n_reachable_via == 0)
        return true;
    for (size_t i = 0; i < sv->n_reachable_via; i++) {
        const char *via = sv->reachable_via[i];
        if (via != NULL && (strcmp(via, sl->id) == 0 || strcmp(via, sl->zone) == 0))
            return true;
    }
    return false;
}

bool sel_reachable(const sel_snapshot *s, const sel_server *sv, const char *app)
{
    if (sv->n_reachable_via == 0)
        return true;
    for (size_t i = 0; i < s->n_slaves; i++)
        if (sel_slave_reaches(&s->slaves[i], sv) && sel_slave_fronts(&s->slaves[i], app))
            return true;
    return false;
}

/* "reachable only via slave-b, zone-c: no such slave fronts app 'echo'" */
static void elig_unreachable(const sel_server *sv, const char *app, char *detail, size_t n)
{
    if (detail == NULL)
        return;
    int w = snprintf(detail, n, "reachable only via ");
    size_t len = w > 0 && (size_t)w < n ? (size_t)w : 0;
    for (size_t i = 0; i < sv->n_reachable_via && len < n; i++) {
        w = snprintf(detail + len, n - len, "%s%s", i ? "," : "", sv->reachable_via[i]);
        len += w > 0 && (size_t)w < n - len ? (size_t)w : 0;
    }
    if (len < n)
        snprintf(detail + len, n - len, ": no such slave fronts app '%s'", app);
}

bool sel_offers(const sel_server *sv, const char *app)
{
    for (size_t i = 0; i < sv->n_apps; i++)
        if (sv->apps[i] != NULL && strcmp(sv->apps[i], app) == 0)
            return true;
    return false;
}

void sel_format_bytes(uint64_t b, char *out, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%" PRIu64 " B", b);
    else
        snprintf(out, n, "%.1f %s", v, unit[u]);
}

/* Checks one required label, "key" (any value) or "key=value". */
static bool elig_label(const sel_server *sv, const char *want, char *detail, size_t n)
{
    const char *eq = strchr(want, '=');
    size_t klen = eq != NULL ? (size_t)(eq - want) : strlen(want);
    const sel_label *have = NULL;
    for (size_t i = 0; i < sv->n_labels && have == NULL; i++) {
        const char *k = sv->labels[i].key;
        if (k != NULL && strncmp(k, want, klen) == 0 && k[klen] == '\0')
            have = &sv->labels[i];
    }
    if (have != NULL && eq == NULL)
        return true;
    const char *attr = have == NULL ? elig_attr(sv, want, klen) : NULL;
    if (attr != NULL) {
        if ((eq == NULL && attr[0] != '\0') || (eq != NULL && strcmp(attr, eq + 1) == 0))
            return true;
        if (detail != NULL)
            snprintf(detail, n, "needs %s, has %.*s=%s", want, (int)klen, want,
                     attr[0] ? attr : "(none)");
        return false;
    }
    const char *hv = have != NULL && have->value != NULL ? have->value : "";
    if (have != NULL && strcmp(hv, eq + 1) == 0)
        return true;
    if (detail == NULL)
        return false;
    if (have == NULL)
        snprintf(detail, n, "needs label %s, has none", want);
    else
        snprintf(detail, n, "needs label %s, has %.*s=%s", want, (int)klen, want, hv);
    return false;
}

bool sel_meets(const sel_server *sv, const sel_request *req, char *detail, size_t n)
{
    if (!elig_attr_eq("arch", req->arch, sv->arch, detail, n) ||
        !elig_attr_eq("os", req->os, sv->os, detail, n))
        return false;
    if (req->min_cpu > 0) {
        double free_cpu = (double)sv->cores - sv->cpu_load;
        if (free_cpu < req->min_cpu) {
            if (detail != NULL)
                snprintf(detail, n, "needs %.1f free cpu, has %.1f", req->min_cpu,
                         free_cpu > 0 ? free_cpu : 0.0);
            return false;
        }
    }
    if (req->min_mem > 0 && sv->mem_free < req->min_mem) {
        if (detail != NULL) {
            char want[24], have[24];
            sel_format_bytes(req->min_mem, want, sizeof(want));
            sel_format_bytes(sv->mem_free, have, sizeof(have));
            snprintf(detail, n, "needs %s free memory, has %s", want, have);
        }
        return false;
    }
    for (size_t i = 0; i < req->n_labels; i++)
        if (req->labels[i] != NULL && req->labels[i][0] != '\0' &&
            !elig_label(sv, req->labels[i], detail, n))
            return false;
    return true;
}

static void elig_detail(char *detail, size_t n, const char *text)
{
    if (detail != NULL)
        snprintf(detail, n, "%s", text);
}

/* sticky: the client already has a session on idx, so a drain (no NEW
 * sessions) and a full server (its session is one of those counted) keep it;
 * down, disabled, a dropped app or unmet requirements still move it. */
static sel_verdict_kind classify(const sel_snapshot *s, int idx, const sel_request *req,
                                 char *detail, size_t n, bool sticky)
{
    const sel_server *sv = &s->servers[idx];
    if (!sv->up) {
        elig_detail(detail, n, "status down");
        return SEL_V_DOWN;
    }
    if (sv->ejected) {
        elig_detail(detail, n, "ejected after launch failures");
        return SEL_V_EJECTED;
    }
    if (sv->drained && !sticky) {
        elig_detail(detail, n, "drained by an operator");
        return SEL_V_DRAINED;
    }
    if (sv->disabled) {
        elig_detail(detail, n, "disabled by an operator");
        return SEL_V_DISABLED;
    }
    if (!sel_offers(sv, req->app)) {
        if (detail != NULL)
            snprintf(detail, n, "does not offer app '%s'", req->app);
        return SEL_V_NO_APP;
    }
    if (sel_has_requirements(req) && !sel_meets(sv, req, detail, n))
        return SEL_V_REQUIREMENTS;
    if (!sel_reachable(s, sv, req->app)) {
        elig_unreachable(sv, req->app, detail, n);
        return SEL_V_UNREACHABLE;
    }
    if (!sticky && sel_full(sv)) {
        if (detail != NULL)
            snprintf(detail, n,
                     "%" PRIu64 "/%" PRIu32 " sessions (%" PRIu32 " reported + %" PRIu32
                     " pending)",
                     sel_used(sv), sv->capacity, sv->sessions, sv->pending);
        return SEL_V_FULL;
    }
    return SEL_V_RANKED;
}

sel_verdict_kind sel_classify(const sel_snapshot *s, int idx, const sel_request *req, char *detail,
                              size_t n)
{
    return classify(s, idx, req, detail, n, false);
}

sel_verdict_kind sel_classify_sticky(const sel_snapshot *s, int idx, const sel_request *req,
                                     char *detail, size_t n)
{
    return classify(s, idx, req, detail, n, true);
}

/* Appends ", <n> <what>" (or ": ..." for the first) when n > 0. */
static void elig_count(char *out, size_t size, size_t *len, bool *first, uint32_t n,
                       const char *what)
{
    if (n == 0 || *len >= size)
        return;
    int w = snprintf(out + *len, size - *len, "%s%" PRIu32 " %s", *first ? ": " : ", ", n, what);
    *first = false;
    if (w > 0)
        *len += (size_t)w < size - *len ? (size_t)w : size - *len - 1;
}

void sel_no_server_reason(const sel_snapshot *s, const sel_app *a, const sel_request *req,
                          char *out, size_t n)
{
    uint32_t c[SEL_V_COUNT] = {0};
    if (sel_has_requirements(req)) {
        /* Requirements are per request: only a scan can count them. This is
         * the failure path, and only for requests that carry requirements. */
        for (uint32_t i = 0; i < a->n_all; i++)
            c[sel_classify(s, a->all[i], req, NULL, 0)]++;
    } else {
        c[SEL_V_DOWN] = a->n_down;
        c[SEL_V_EJECTED] = a->n_ejected;
        c[SEL_V_DRAINED] = a->n_drained;
        c[SEL_V_DISABLED] = a->n_disabled;
        c[SEL_V_FULL] = a->n_nocap + (a->n_leaves - a->n_open);
        c[SEL_V_UNREACHABLE] = a->n_unreachable;
    }
    int w = snprintf(out, n, "no eligible server for app '%s'", a->name);
    size_t len = w > 0 ? ((size_t)w < n ? (size_t)w : n - 1) : 0;
    bool first = true;
    elig_count(out, n, &len, &first, c[SEL_V_DOWN], "down");
    elig_count(out, n, &len, &first, c[SEL_V_EJECTED], "ejected");
    elig_count(out, n, &len, &first, c[SEL_V_DRAINED], "drained");
    elig_count(out, n, &len, &first, c[SEL_V_DISABLED], "disabled");
    elig_count(out, n, &len, &first, c[SEL_V_REQUIREMENTS], "fail the requirements");
    elig_count(out, n, &len, &first, c[SEL_V_FULL], "full");
    elig_count(out, n, &len, &first, c[SEL_V_UNREACHABLE], "unreachable through any slave");
}
