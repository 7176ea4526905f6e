/*
 * A string-keyed hash map (open addressing, linear probing, tombstones).
 * The map copies keys (hmap_new_borrowed: borrows them; hmap_new_keyed: reads
 * them from the values); values are opaque pointers the caller owns.
 * Thread-safety: none; callers serialise access.
 */
#ifndef LB_COMMON_HMAP_H
#define LB_COMMON_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hmap hmap;

/* The maps' string hash (FNV-1a, 64 bits), for callers' own small tables. */
uint64_t hmap_hash(const char *s);
hmap *hmap_new(void);
/* A map that borrows its keys instead of copying them: each key must stay
 * valid, unchanged, while its entry is in the map (e.g. a string inside the
 * value's own record); a put of an existing key takes the new key pointer, so
 * a replaced record's key is never referenced again. Saves a malloc per entry
 * (32 bytes at 100,000 sessions: 3 MiB). */
hmap *hmap_new_borrowed(void);
/* A map whose keys live inside its values: key_of(val) gives val's key, which
 * must stay unchanged while val is in the map, and hmap_put's key must be
 * key_of(val). Values must not be NULL. It keeps no key pointer at all: a
 * slot is 8 bytes, not 16 (2 MiB a map at 100,000 entries, README P9). */
hmap *hmap_new_keyed(const char *(*key_of)(const void *val));
/* Frees the map and its keys; free_val (may be NULL) is called on each value. */
void hmap_free(hmap **m, void (*free_val)(void *));

void *hmap_get(const hmap *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL) for the caller to free. */
void *hmap_put(hmap *m, const char *key, void *val);
/* Removes key; returns its value (or NULL). */
void *hmap_del(hmap *m, const char *key);
size_t hmap_len(const hmap *m);

/* Iteration: i from 0 while hmap_next returns true. Do not modify during it. */
bool hmap_next(const hmap *m, size_t *i, const char **key, void **val);

#endif
