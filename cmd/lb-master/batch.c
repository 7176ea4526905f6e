/* See batch.h. A small open-addressed table of key hashes, walked from the
 * last op back: a pairwise strcmp was ~8,000 compares for a full batch of
 * distinct keys, 3-7 % of the master's samples while new sessions flowed. */
#include "batch.h"

#include "common/hmap.h"

#include <stdint.h>
#include <string.h>

void batch_superseded(const char *const *keys, size_t n, bool *superseded)
{
    enum { SLOTS = 4 * BATCH_MAX_OPS };
    int16_t slot[SLOTS];
    uint64_t hash[BATCH_MAX_OPS];
    memset(superseded, 0, n * sizeof *superseded);
    if (n > BATCH_MAX_OPS)
        return;
    memset(slot, -1, sizeof slot);
    for (size_t i = n; i-- > 0;) {
        hash[i] = hmap_hash(keys[i]);
        size_t h = (size_t)(hash[i] % SLOTS);
        for (; slot[h] >= 0; h = (h + 1) % SLOTS) {
            size_t j = (size_t)slot[h];
            if (hash[j] == hash[i] && strcmp(keys[j], keys[i]) == 0) {
                superseded[i] = true;
                break;
            }
        }
        if (!superseded[i])
            slot[h] = (int16_t)i;
    }
}
