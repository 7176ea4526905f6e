/*
 * YAML configuration (libyaml) loaded into a tree that remembers where every
 * node came from, so every error reads `file:line: key.path: what is wrong`.
 *
 * Typed getters read an optional key of a map with a default; a key that is
 * present but of the wrong type or out of range is an error (LB_ECONFIG) that
 * names file, line and the full dotted key path (e.g. `apps.echo.argv`).
 *
 * Ownership: a cfg_doc owns every node; strings returned by cfg_scalar and the
 * node pointers live until cfg_free. Getters that return char ** / lists give
 * the caller new heap copies to free (cfg_strlist_free for lists).
 * Thread-safety: a loaded document is read-only and may be read from any thread.
 */
#ifndef LB_CONFIG_CFG_H
#define LB_CONFIG_CFG_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cfg_doc cfg_doc;
typedef struct cfg_node cfg_node;

typedef enum cfg_kind { CFG_SCALAR, CFG_MAP, CFG_SEQ } cfg_kind;

/* Syntax errors: "file:line:col: <problem> (<context>)". An empty file is a
 * document whose root is NULL (every key takes its default). */
lb_err cfg_load_file(const char *path, cfg_doc **out, lb_errmsg *em);
/* Same from memory; name stands for the file name in messages. */
lb_err cfg_load_string(const char *name, const char *text, cfg_doc **out, lb_errmsg *em);
void cfg_free(cfg_doc **doc);

const cfg_node *cfg_root(const cfg_doc *doc);
const char *cfg_file(const cfg_doc *doc);

cfg_kind cfg_kind_of(const cfg_node *n);
int cfg_line(const cfg_node *n);           /* 1-based */
const char *cfg_path(const cfg_node *n);   /* dotted key path from the root ("" for root) */
const char *cfg_scalar(const cfg_node *n); /* NULL unless CFG_SCALAR */

/* Maps and sequences. */
size_t cfg_len(const cfg_node *n);
const cfg_node *cfg_map_get(const cfg_node *map, const char *key); /* NULL if absent */
const char *cfg_map_key(const cfg_node *map, size_t i);
const cfg_node *cfg_map_value(const cfg_node *map, size_t i);
const cfg_node *cfg_seq_at(const cfg_node *seq, size_t i);

/* Fails when map (may be NULL: nothing to check) holds a key not in allowed
 * (NULL-terminated): "file:line: path.key: unknown key". map must be a map or
 * the error says so. */
lb_err cfg_check_keys(const cfg_doc *doc, const cfg_node *map, const char *const *allowed,
                      lb_errmsg *em);

/* Requires n (may be NULL: fine) to be of kind k: "file:line: path: expected a map". */
lb_err cfg_expect(const cfg_doc *doc, const cfg_node *n, cfg_kind k, lb_errmsg *em);

/* Typed getters. map may be NULL (the key is absent). On success *out is set
 * (to def when the key is absent). */
lb_err cfg_get_str(const cfg_doc *doc, const cfg_node *map, const char *key, const char *def,
                   char **out, lb_errmsg *em);
lb_err cfg_get_int(const cfg_doc *doc, const cfg_node *map, const char *key, int64_t min,
                   int64_t max, int64_t def, int64_t *out, lb_errmsg *em);
lb_err cfg_get_double(const cfg_doc *doc, const cfg_node *map, const char *key, double min,
                      double max, double def, double *out, lb_errmsg *em);
lb_err cfg_get_bool(const cfg_doc *doc, const cfg_node *map, const char *key, bool def, bool *out,
                    lb_errmsg *em);
/* "250ms", "5s", "2m", "1h" or a bare number of seconds. */
lb_err cfg_get_duration_ms(const cfg_doc *doc, const cfg_node *map, const char *key, int64_t def_ms,
                           int64_t *out_ms, lb_errmsg *em);
/* "1024", "64KiB", "1MiB", "2G". */
lb_err cfg_get_size(const cfg_doc *doc, const cfg_node *map, const char *key, uint64_t def,
                    uint64_t *out, lb_errmsg *em);

/* A list of strings: a sequence of scalars, or one scalar (a list of one).
 * Absent: *out = NULL, *n = 0. Free with cfg_strlist_free. */
lb_err cfg_get_strlist(const cfg_doc *doc, const cfg_node *map, const char *key, char ***out,
                       size_t *n, lb_errmsg *em);
void cfg_strlist_free(char ***list, size_t n);

/* Formats "file:line: path: <message>" about node n into em and returns
 * LB_ECONFIG, for checks the typed getters cannot make (a value outside a set,
 * two keys that disagree, a template with an unknown placeholder). n may be
 * NULL: "file: <message>".
 * (Added note on the getters above: an explicit YAML null, i.e. `key:` with
 * nothing after it, `~` or `null`, reads as absent and takes the default.) */
lb_err cfg_fail(const cfg_doc *doc, const cfg_node *n, lb_errmsg *em, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
