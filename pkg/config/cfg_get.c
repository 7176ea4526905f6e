/*
 * Tree accessors and typed getters. Every getter follows one rule: an absent
 * key (or an explicit YAML null) takes the default; a present key that does
 * not parse as the wanted type, or is out of range, is LB_ECONFIG naming the
 * file, the line of the value and its dotted path, plus what was found.
 */
#include "config/cfg_int.h"

#include "common/errmsg.h"
#include "common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

cfg_kind cfg_kind_of(const cfg_node *n)
{
    return n->kind;
}

int cfg_line(const cfg_node *n)
{
    return n != NULL ? n->line : 0;
}

const char *cfg_path(const cfg_node *n)
{
    return n != NULL ? n->path : "";
}

const char *cfg_scalar(const cfg_node *n)
{
    return n != NULL && n->kind == CFG_SCALAR ? n->value : NULL;
}

size_t cfg_len(const cfg_node *n)
{
    return n != NULL && n->kind != CFG_SCALAR ? n->n : 0;
}

const cfg_node *cfg_map_get(const cfg_node *map, const char *key)
{
    if (map == NULL || map->kind != CFG_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->entries[i].key, key) == 0)
            return map->entries[i].value;
    }
    return NULL;
}

const char *cfg_map_key(const cfg_node *map, size_t i)
{
    if (map == NULL || map->kind != CFG_MAP || i >= map->n)
        return NULL;
    return map->entries[i].key;
}

const cfg_node *cfg_map_value(const cfg_node *map, size_t i)
{
    if (map == NULL || map->kind != CFG_MAP || i >= map->n)
        return NULL;
    return map->entries[i].value;
}

const cfg_node *cfg_seq_at(const cfg_node *seq, size_t i)
{
    if (seq == NULL || seq->kind != CFG_SEQ || i >= seq->n)
        return NULL;
    return seq->entries[i].value;
}

lb_err cfg_expect(const cfg_doc *doc, const cfg_node *n, cfg_kind k, lb_errmsg *em)
{
    /* An empty section (`apps:` with nothing under it) reads as absent. */
    if (cfg_absent(n) || n->kind == k)
        return LB_OK;
    return cfg_fail(doc, n, em, "expected %s, got %s", cfg_kind_name(k), cfg_kind_name(n->kind));
}

lb_err cfg_check_keys(const cfg_doc *doc, const cfg_node *map, const char *const *allowed,
                      lb_errmsg *em)
{
    lb_err err = cfg_expect(doc, map, CFG_MAP, em);
    if (err != LB_OK || cfg_absent(map))
        return err;
    for (size_t i = 0; i < map->n; i++) {
        const cfg_entry *e = &map->entries[i];
        bool ok = false;
        for (size_t j = 0; allowed != NULL && allowed[j] != NULL && !ok; j++)
            ok = strcmp(allowed[j], e->key) == 0;
        if (!ok) {
            const char *pp = map->path;
            return lb_fail(em, LB_ECONFIG, "%s:%d: %s%s%s: unknown key", cfg_file(doc), e->key_line,
                           pp, *pp ? "." : "", e->key);
        }
    }
    return LB_OK;
}

/* Finds key in map as a scalar: *out NULL when absent or null; an error when
 * it is a map or list ("expected <what>"). */
static lb_err get_scalar(const cfg_doc *doc, const cfg_node *map, const char *key, const char *what,
                         const cfg_node **out, lb_errmsg *em)
{
    *out = NULL;
    lb_err err = cfg_expect(doc, map, CFG_MAP, em);
    if (err != LB_OK)
        return err;
    const cfg_node *n = cfg_map_get(map, key);
    if (cfg_absent(n))
        return LB_OK;
    if (n->kind != CFG_SCALAR)
        return cfg_fail(doc, n, em, "expected %s, got %s", what, cfg_kind_name(n->kind));
    *out = n;
    return LB_OK;
}

lb_err cfg_get_str(const cfg_doc *doc, const cfg_node *map, const char *key, const char *def,
                   char **out, lb_errmsg *em)
{
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "a string", &n, em);
    if (err != LB_OK)
        return err;
    if (n != NULL)
        *out = lb_strdup(n->value);
    else
        *out = def != NULL ? lb_strdup(def) : NULL;
    return LB_OK;
}

lb_err cfg_get_int(const cfg_doc *doc, const cfg_node *map, const char *key, int64_t min,
                   int64_t max, int64_t def, int64_t *out, lb_errmsg *em)
{
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "an integer", &n, em);
    if (err != LB_OK)
        return err;
    if (n == NULL) {
        *out = def;
        return LB_OK;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n->value, &end, 10);
    if (end == n->value || *end != '\0')
        return cfg_fail(doc, n, em, "expected an integer, got '%s'", n->value);
    if (errno == ERANGE || v < min || v > max)
        return cfg_fail(doc, n, em, "%s is out of range [%" PRId64 ", %" PRId64 "]", n->value, min,
                        max);
    *out = v;
    return LB_OK;
}

lb_err cfg_get_double(const cfg_doc *doc, const cfg_node *map, const char *key, double min,
                      double max, double def, double *out, lb_errmsg *em)
{
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "a number", &n, em);
    if (err != LB_OK)
        return err;
    if (n == NULL) {
        *out = def;
        return LB_OK;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(n->value, &end);
    if (end == n->value || *end != '\0' || isnan(v))
        return cfg_fail(doc, n, em, "expected a number, got '%s'", n->value);
    if (errno == ERANGE || v < min || v > max)
        return cfg_fail(doc, n, em, "%s is out of range [%g, %g]", n->value, min, max);
    *out = v;
    return LB_OK;
}

lb_err cfg_get_bool(const cfg_doc *doc, const cfg_node *map, const char *key, bool def, bool *out,
                    lb_errmsg *em)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "true or false", &n, em);
    if (err != LB_OK)
        return err;
    if (n == NULL) {
        *out = def;
        return LB_OK;
    }
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(n->value, yes[i]) == 0) {
            *out = true;
            return LB_OK;
        }
        if (strcasecmp(n->value, no[i]) == 0) {
            *out = false;
            return LB_OK;
        }
    }
    return cfg_fail(doc, n, em, "expected true or false, got '%s'", n->value);
}

lb_err cfg_get_duration_ms(const cfg_doc *doc, const cfg_node *map, const char *key, int64_t def_ms,
                           int64_t *out_ms, lb_errmsg *em)
{
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "a duration", &n, em);
    if (err != LB_OK)
        return err;
    if (n == NULL) {
        *out_ms = def_ms;
        return LB_OK;
    }
    if (!lb_parse_duration_ms(n->value, out_ms))
        return cfg_fail(doc, n, em,
                        "expected a duration like 250ms, 5s, 2m or 1h (under 2^63 ms), got '%s'",
                        n->value);
    return LB_OK;
}

lb_err cfg_get_size(const cfg_doc *doc, const cfg_node *map, const char *key, uint64_t def,
                    uint64_t *out, lb_errmsg *em)
{
    const cfg_node *n = NULL;
    lb_err err = get_scalar(doc, map, key, "a size", &n, em);
    if (err != LB_OK)
        return err;
    if (n == NULL) {
        *out = def;
        return LB_OK;
    }
    if (!lb_parse_size(n->value, out))
        return cfg_fail(doc, n, em,
                        "expected a size like 1024, 64KiB or 1MiB (under 2^64 bytes), got '%s'",
                        n->value);
    return LB_OK;
}

lb_err cfg_get_strlist(const cfg_doc *doc, const cfg_node *map, const char *key, char ***out,
                       size_t *n, lb_errmsg *em)
{
    *out = NULL;
    *n = 0;
    lb_err err = cfg_expect(doc, map, CFG_MAP, em);
    if (err != LB_OK)
        return err;
    const cfg_node *v = cfg_map_get(map, key);
    if (cfg_absent(v))
        return LB_OK;
    if (v->kind == CFG_MAP)
        return cfg_fail(doc, v, em, "expected a list of strings, got a map");
    if (v->kind == CFG_SCALAR) {
        *out = lb_xcalloc(1, sizeof **out);
        (*out)[0] = lb_strdup(v->value);
        *n = 1;
        return LB_OK;
    }
    for (size_t i = 0; i < v->n; i++) {
        const cfg_node *item = v->entries[i].value;
        if (item->kind != CFG_SCALAR)
            return cfg_fail(doc, item, em, "expected a string, got %s", cfg_kind_name(item->kind));
    }
    *out = lb_xcalloc(v->n, sizeof **out);
    for (size_t i = 0; i < v->n; i++)
        (*out)[i] = lb_strdup(v->entries[i].value->value);
    *n = v->n;
    return LB_OK;
}

void cfg_strlist_free(char ***list, size_t n)
{
    if (list == NULL || *list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
}
