/* Session-set digest: see sid_digest.h. */
#include "wire/sid_digest.h"

uint64_t wire_sid_hash(const char *sid)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)sid; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 30; /* splitmix64's finalizer */
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}
