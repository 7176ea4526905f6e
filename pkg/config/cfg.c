/*
 * The YAML loader: libyaml's event stream turned into a tree of cfg_node that
 * remembers each node's line and dotted key path, so that every later error can
 * say where the offending value was written.
 *
 * Deliberately refused, because they make "which line set this key?" ambiguous
 * or are never needed in a daemon config: aliases, non-scalar map keys, several
 * documents in one file, duplicate keys, and nesting deeper than CFG_MAX_DEPTH
 * (which also bounds the recursion of the loader).
 */
#include "config/cfg_int.h"

#include "common/errmsg.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CFG_MAX_DEPTH 64
#define CFG_MAX_FILE (16u * 1024u * 1024u)

typedef struct cfg_loader {
    yaml_parser_t parser;
    const char *name;
    lb_errmsg *em;
} cfg_loader;

const char *cfg_kind_name(cfg_kind k)
{
    switch (k) {
    case CFG_MAP:
        return "a map";
    case CFG_SEQ:
        return "a list";
    default:
        return "a value";
    }
}

static void node_free(cfg_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++) {
        free(n->entries[i].key);
        node_free(n->entries[i].value);
    }
    free(n->entries);
    free(n->value);
    free(n->path);
    free(n);
}

/* Child paths: `a.b` under a map, `a.b[2]` under a list. */
static char *child_path(const cfg_node *parent, const char *key, size_t index)
{
    const char *pp = parent != NULL ? parent->path : "";
    char idx[32];
    if (key == NULL) {
        snprintf(idx, sizeof idx, "[%zu]", index);
        key = idx;
    }
    size_t len = strlen(pp) + strlen(key) + 2;
    char *p = lb_xcalloc(1, len);
    if (*pp == '\0' || key == idx)
        snprintf(p, len, "%s%s", pp, key);
    else
        snprintf(p, len, "%s.%s", pp, key);
    return p;
}

static void entry_add(cfg_node *parent, char *key, int key_line, cfg_node *value)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        cfg_entry *e = realloc(parent->entries, cap * sizeof *e);
        if (e == NULL)
            abort();
        parent->entries = e;
        parent->cap = cap;
    }
    parent->entries[parent->n++] = (cfg_entry){.key = key, .key_line = key_line, .value = value};
}

/* A plain (unquoted) empty, `~` or `null` scalar is YAML's null. */
static bool scalar_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* Reports the parser's own error as "file:line:col: problem (context)". */
static lb_err syntax_error(cfg_loader *ld)
{
    yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem != NULL ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR)
        return lb_fail(ld->em, LB_ECONFIG, "%s: byte %zu: %s", ld->name, p->problem_offset,
                       problem);
    if (p->context != NULL)
        return lb_fail(ld->em, LB_ECONFIG, "%s:%zu:%zu: %s (%s at line %zu)", ld->name,
                       p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                       p->context_mark.line + 1);
    return lb_fail(ld->em, LB_ECONFIG, "%s:%zu:%zu: %s", ld->name, p->problem_mark.line + 1,
                   p->problem_mark.column + 1, problem);
}

static lb_err next_event(cfg_loader *ld, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ld->parser, ev))
        return syntax_error(ld);
    return LB_OK;
}

static lb_err parse_node(cfg_loader *ld, yaml_event_t *ev, char *path, int depth, cfg_node **out);

/* Reads the entries of a map until MAPPING_END into n. */
static lb_err parse_map(cfg_loader *ld, cfg_node *n, int depth)
{
    lb_err err = LB_OK;
    for (;;) {
        yaml_event_t ev;
        if ((err = next_event(ld, &ev)) != LB_OK)
            return err;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return LB_OK;
        }
        int line = (int)ev.start_mark.line + 1;
        if (ev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&ev);
            return lb_fail(ld->em, LB_ECONFIG, "%s:%d: %s: map keys must be plain strings",
                           ld->name, line, *n->path ? n->path : "(top level)");
        }
        char *key = lb_strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        for (size_t i = 0; i < n->n; i++) {
            if (strcmp(n->entries[i].key, key) == 0) {
                char *p = child_path(n, key, 0);
                err = lb_fail(ld->em, LB_ECONFIG, "%s:%d: %s: duplicate key (first set at line %d)",
                              ld->name, line, p, n->entries[i].key_line);
                free(p);
                free(key);
                return err;
            }
        }
        cfg_node *child = NULL;
        if ((err = next_event(ld, &ev)) == LB_OK)
            err = parse_node(ld, &ev, child_path(n, key, 0), depth + 1, &child);
        if (err != LB_OK) {
            free(key);
            return err;
        }
        /* A block map or list under a key starts on the next line; errors about
         * it read better pointing at the line that names the key. */
        child->line = line;
        entry_add(n, key, line, child);
    }
}

/* Reads the items of a sequence until SEQUENCE_END into n. */
static lb_err parse_seq(cfg_loader *ld, cfg_node *n, int depth)
{
    for (;;) {
        yaml_event_t ev;
        lb_err err = next_event(ld, &ev);
        if (err != LB_OK)
            return err;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return LB_OK;
        }
        cfg_node *child = NULL;
        err = parse_node(ld, &ev, child_path(n, NULL, n->n), depth + 1, &child);
        if (err != LB_OK)
            return err;
        entry_add(n, NULL, child->line, child);
    }
}

/* Builds the node that starts with ev (consumed) at path (owned: freed on
 * failure). On success *out is a new subtree. */
static lb_err parse_node(cfg_loader *ld, yaml_event_t *ev, char *path, int depth, cfg_node **out)
{
    lb_err err = LB_OK;
    cfg_node *n = lb_xcalloc(1, sizeof *n);
    n->path = path;
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    const char *shown = *path ? path : "(top level)";
    if (depth > CFG_MAX_DEPTH) {
        err = lb_fail(ld->em, LB_ECONFIG, "%s:%d: %s: nested deeper than %d levels", ld->name,
                      n->line, shown, CFG_MAX_DEPTH);
        yaml_event_delete(ev);
        goto out;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->kind = CFG_SCALAR;
        n->value = lb_strdup((const char *)ev->data.scalar.value);
        n->is_null = scalar_is_null(ev);
        yaml_event_delete(ev);
        break;
    case YAML_MAPPING_START_EVENT:
        n->kind = CFG_MAP;
        yaml_event_delete(ev);
        err = parse_map(ld, n, depth);
        break;
    case YAML_SEQUENCE_START_EVENT:
        n->kind = CFG_SEQ;
        yaml_event_delete(ev);
        err = parse_seq(ld, n, depth);
        break;
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        err = lb_fail(ld->em, LB_ECONFIG, "%s:%d: %s: YAML aliases are not supported", ld->name,
                      n->line, shown);
        break;
    default:
        yaml_event_delete(ev);
        err = lb_fail(ld->em, LB_ECONFIG, "%s:%d: %s: unexpected YAML event", ld->name, n->line,
                      shown);
        break;
    }
out:
    if (err != LB_OK) {
        node_free(n);
        n = NULL;
    }
    *out = n;
    return err;
}

/* Expects an event of type want next; anything else is a document-level error. */
static lb_err expect_event(cfg_loader *ld, yaml_event_type_t want, yaml_event_t *ev)
{
    lb_err err = next_event(ld, ev);
    if (err != LB_OK)
        return err;
    if (ev->type != want) {
        int line = (int)ev->start_mark.line + 1;
        yaml_event_delete(ev);
        return lb_fail(ld->em, LB_ECONFIG, "%s:%d: only one YAML document per file is supported",
                       ld->name, line);
    }
    return LB_OK;
}

/* stream := STREAM_START (DOCUMENT_START node DOCUMENT_END)? STREAM_END */
static lb_err load_stream(cfg_loader *ld, cfg_node **root)
{
    yaml_event_t ev;
    lb_err err = expect_event(ld, YAML_STREAM_START_EVENT, &ev);
    if (err != LB_OK)
        return err;
    yaml_event_delete(&ev);
    if ((err = next_event(ld, &ev)) != LB_OK)
        return err;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return LB_OK;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if ((err = next_event(ld, &ev)) != LB_OK)
        return err;
    if ((err = parse_node(ld, &ev, lb_strdup(""), 0, root)) != LB_OK)
        return err;
    if ((err = expect_event(ld, YAML_DOCUMENT_END_EVENT, &ev)) != LB_OK)
        return err;
    yaml_event_delete(&ev);
    if ((err = expect_event(ld, YAML_STREAM_END_EVENT, &ev)) != LB_OK)
        return err;
    yaml_event_delete(&ev);
    return LB_OK;
}

lb_err cfg_load_string(const char *name, const char *text, cfg_doc **out, lb_errmsg *em)
{
    cfg_loader ld = {.name = name != NULL ? name : "(config)", .em = em};
    cfg_node *root = NULL;
    *out = NULL;
    if (!yaml_parser_initialize(&ld.parser))
        return lb_fail(em, LB_ENOMEM, "%s: cannot initialise the YAML parser", ld.name);
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, strlen(text));
    lb_err err = load_stream(&ld, &root);
    yaml_parser_delete(&ld.parser);
    if (err != LB_OK) {
        node_free(root);
        return err;
    }
    cfg_doc *doc = lb_xcalloc(1, sizeof *doc);
    doc->file = lb_strdup(ld.name);
    doc->root = root;
    *out = doc;
    return LB_OK;
}

lb_err cfg_load_file(const char *path, cfg_doc **out, lb_errmsg *em)
{
    lb_err err = LB_OK;
    char *text = NULL;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lb_fail(em, LB_ECONFIG, "%s: cannot open: %s", path, strerror(errno));
    /* grown as it is read: a 16 MiB buffer for a 1 KiB file made every load
     * (and the config fuzz target) pay for zeroing it */
    size_t len = 0, cap = 0;
    while (!ferror(f) && !feof(f) && len <= CFG_MAX_FILE) {
        if (len == cap) {
            cap = cap == 0 ? 16384 : cap * 2 > CFG_MAX_FILE + 1 ? CFG_MAX_FILE + 1 : cap * 2;
            char *grown = realloc(text, cap + 1);
            if (grown == NULL)
                abort();
            text = grown;
        }
        len += fread(text + len, 1, cap - len, f);
    }
    text[len] = '\0';
    if (ferror(f))
        err = lb_fail(em, LB_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
    else if (len > CFG_MAX_FILE)
        err = lb_fail(em, LB_ECONFIG, "%s: larger than %u bytes", path, CFG_MAX_FILE);
    else if (memchr(text, '\0', len) != NULL)
        err = lb_fail(em, LB_ECONFIG, "%s: contains a NUL byte (not a text file?)", path);
    fclose(f);
    if (err == LB_OK)
        err = cfg_load_string(path, text, out, em);
    free(text);
    return err;
}

void cfg_free(cfg_doc **doc)
{
    if (doc == NULL || *doc == NULL)
        return;
    node_free((*doc)->root);
    free((*doc)->file);
    free(*doc);
    *doc = NULL;
}

const cfg_node *cfg_root(const cfg_doc *doc)
{
    return doc != NULL ? doc->root : NULL;
}

const char *cfg_file(const cfg_doc *doc)
{
    return doc != NULL ? doc->file : "";
}

lb_err cfg_fail(const cfg_doc *doc, const cfg_node *n, lb_errmsg *em, const char *fmt, ...)
{
    char what[sizeof em->text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (n == NULL)
        return lb_fail(em, LB_ECONFIG, "%s: %s", cfg_file(doc), what);
    if (*n->path == '\0')
        return lb_fail(em, LB_ECONFIG, "%s:%d: %s", cfg_file(doc), n->line, what);
    return lb_fail(em, LB_ECONFIG, "%s:%d: %s: %s", cfg_file(doc), n->line, n->path, what);
}
