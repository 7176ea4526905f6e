#include "common/hmap.h"

#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A slot's key is NULL (never used), TOMB (deleted), or an owned string. In a
 * keyed map (hmap_new_keyed) there is no key array: the slot's value is NULL,
 * TOMB, or a value whose key key_of gives. */
static char hmap_tomb_;
#define TOMB (&hmap_tomb_)

struct hmap {
    char **keys; /* NULL in a keyed map */
    void **vals;
    size_t cap; /* power of two */
    size_t len;
    size_t used;                            /* live + tombstones */
    bool borrow;                            /* keys are the caller's, never copied or freed */
    const char *(*key_of)(const void *val); /* keyed map: the key inside a value */
};

/* Slot i's key: NULL (never used), TOMB, or the key. */
static const char *slot_key(const hmap *m, size_t i)
{
    if (m->keys != NULL)
        return m->keys[i];
    void *v = m->vals[i];
    return v == NULL || v == (void *)TOMB ? v : m->key_of(v);
}

static void slot_set(hmap *m, size_t i, char *key, void *val)
{
    if (m->keys != NULL)
        m->keys[i] = key;
    m->vals[i] = m->keys == NULL && key == TOMB ? (void *)TOMB : val;
}

uint64_t hmap_hash(const char *s)
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

hmap *hmap_new_keyed(const char *(*key_of)(const void *val))
{
    hmap *m = hmap_new_borrowed();
    free(m->keys);
    m->keys = NULL;
    m->key_of = key_of;
    return m;
}

void hmap_free(hmap **mp, void (*free_val)(void *))
{
    if (mp == NULL || *mp == NULL)
        return;
    hmap *m = *mp;
    for (size_t i = 0; i < m->cap; i++) {
        const char *k = slot_key(m, i);
        if (k != NULL && k != TOMB) {
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
        const char *k = slot_key(m, i);
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
    hmap old = *m;
    if (m->len * 2 >= m->cap)
        m->cap *= 2;
    m->keys = old.keys != NULL ? lb_xcalloc(m->cap, sizeof *m->keys) : NULL;
    m->vals = lb_xcalloc(m->cap, sizeof *m->vals);
    m->used = m->len;
    for (size_t i = 0; i < old.cap; i++) {
        const char *k = slot_key(&old, i);
        if (k != NULL && k != TOMB) {
            bool found;
            size_t j = hmap_find(m, k, &found);
            slot_set(m, j, (char *)k, old.vals[i]);
        }
    }
    free(old.keys);
    free(old.vals);
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
        slot_set(m, i, m->borrow ? (char *)key : m->keys[i], val);
        return old;
    }
    if (slot_key(m, i) == NULL)
        m->used++;
    slot_set(m, i, m->borrow ? (char *)key : lb_strdup(key), val);
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
    slot_set(m, i, TOMB, NULL);
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
        const char *k = slot_key(m, *i);
        if (k != NULL && k != TOMB) {
            *key = k;
            *val = m->vals[*i];
            (*i)++;
            return true;
        }
    }
    return false;
}
