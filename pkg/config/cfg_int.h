/*
 * Internals of pkg/config shared by the loader (cfg.c) and the getters
 * (cfg_get.c). Not part of the public interface.
 */
#ifndef LB_CONFIG_CFG_INT_H
#define LB_CONFIG_CFG_INT_H

#include "config/cfg.h"

/* One child of a map (key set) or of a sequence (key NULL). */
typedef struct cfg_entry {
    char *key;
    int key_line; /* where the key was written: what "unknown key" points at */
    cfg_node *value;
} cfg_entry;

struct cfg_node {
    cfg_kind kind;
    int line; /* 1-based */
    int col;  /* 1-based */
    char *path;
    char *value;  /* CFG_SCALAR only */
    bool is_null; /* a plain `~`, `null` or nothing: getters treat it as absent */
    cfg_entry *entries;
    size_t n, cap;
};

struct cfg_doc {
    char *file;
    cfg_node *root; /* NULL for an empty document */
};

/* True when n is absent or an explicit YAML null. */
static inline bool cfg_absent(const cfg_node *n)
{
    return n == NULL || (n->kind == CFG_SCALAR && n->is_null);
}

/* "a map", "a list", "a value": for "expected X, got Y" messages. */
const char *cfg_kind_name(cfg_kind k);

#endif
