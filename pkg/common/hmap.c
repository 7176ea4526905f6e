#include "common/hmap.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A slot's key is NULL (never used), TOMB (deleted), or an owned string. */
static char hmap_tomb_;
#define TOMB (&hmap_tomb_)

struct hmap {
    char **keys;
    void **vals;
    size_t cap; /* power of two */
    size_t len;
    size_t used; /* live + tombstones */
    bool borrow; /* keys are the caller's, never copied or freed */
};

static uint64_t hmap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

hmap *hmap_new(void)
{
    hmap *m = lb_xcalloc(1, sizeof *m);
    m->cap = 16;
    m->keys = lb_xcalloc(m->cap, sizeof *m->keys);
    m->vals = lb_xcalloc(m->cap, sizeof *m->vals);
    return m;
}

hmap *hmap_new_borrowed(void)
{
    hmap *m = hmap_new();
    m->borrow = true;
    return m;
}

void hmap_free(hmap **mp, void (*free_val)(void *))
{
    if (mp == NULL || *mp == NULL)
        return;
    hmap *m = *mp;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != NULL && m->keys[i] != TOMB) {
            if (!m->borrow)
                free(m->keys[i]);
            if (free_val != NULL)
                free_val(m->vals[i]);
        }
    }
    free(m->keys);
    free(m->vals);
    free(m);
    *mp = NULL;
}

/* Slot holding key, or (when absent) the slot where it would go. */
static size_t hmap_find(const hmap *m, const char *key, bool *found)
{
    size_t mask = m->cap - 1, i = hmap_hash(key) & mask, first_tomb = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (k == NULL) {
            *found = false;
            return first_tomb != SIZE_MAX ? first_tomb : i;
        }
        if (k == TOMB) {
            if (first_tomb == SIZE_MAX)
                first_tomb = i;
        } else if (strcmp(k, key) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static void hmap_grow(hmap *m)
{
    size_t old_cap = m->cap;
    char **old_keys = m->keys;
    void **old_vals = m->vals;
    if (m->len * 2 >= m->cap)
        m->cap *= 2;
    m->keys = lb_xcalloc(m->cap, sizeof *m->keys);
    m->vals = lb_xcalloc(m->cap, sizeof *m->vals);
    m->used = m->len;
    for (size_t i = 0; i < old_cap; i++) {
        if (old_keys[i] != NULL && old_keys[i] != TOMB) {
            bool found;
            size_t j = hmap_find(m, old_keys[i], &found);
            m->keys[j] = old_keys[i];
            m->vals[j] = old_vals[i];
        }
    }
    free(old_keys);
    free(old_vals);
}

void *hmap_get(const hmap *m, const char *key)
{
    bool found;
    size_t i = hmap_find(m, key, &found);
    return found ? m->vals[i] : NULL;
}

void *hmap_put(hmap *m, const char *key, void *val)
{
    if ((m->used + 1) * 4 >= m->cap * 3)
        hmap_grow(m);
    bool found;
    size_t i = hmap_find(m, key, &found);
    if (found) {
        void *old = m->vals[i];
        m->vals[i] = val;
        if (m->borrow)
            m->keys[i] = (char *)key;
        return old;
    }
    if (m->keys[i] == NULL)
        m->used++;
    m->keys[i] = m->borrow ? (char *)key : lb_strdup(key);
    m->vals[i] = val;
    m->len++;
    return NULL;
}

void *hmap_del(hmap *m, const char *key)
{
    bool found;
    size_t i = hmap_find(m, key, &found);
    if (!found)
        return NULL;
    void *old = m->vals[i];
    if (!m->borrow)
        free(m->keys[i]);
    m->keys[i] = TOMB;
    m->vals[i] = NULL;
    m->len--;
    return old;
}

size_t hmap_len(const hmap *m)
{
    return m->len;
}

bool hmap_next(const hmap *m, size_t *i, const char **key, void **val)
{
    for (; *i < m->cap; (*i)++) {
        if (m->keys[*i] != NULL && m->keys[*i] != TOMB) {
            *key = m->keys[*i];
            *val = m->vals[*i];
            (*i)++;
            return true;
        }
    }
    return false;
}
