/*
 * The digest of a set of session ids that agents put in their load reports
 * and the leader computes over its own list before a session sync
 * (cmd/lb-master/writer.c): equal digests and sizes mean the agent holds
 * processes for exactly the sessions the leader keeps, so there is nothing
 * to stop and the sync message is not sent.
 *
 * XOR of a 64-bit hash per id: order does not matter and an id is added or
 * removed the same way. Not a MAC: a wrong digest only costs its own agent
 * a sync (or, forged by the agent itself, keeps its own leftovers up to the
 * next report); ids are chosen by the leader, not by clients. Pure
 * functions, thread-safe.
 */
#ifndef LB_WIRE_SID_DIGEST_H
#define LB_WIRE_SID_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit hash of a session id (FNV-1a, then a splitmix64 finalizer so that
 * ids differing in one character differ in about half the bits). */
uint64_t wire_sid_hash(const char *sid);

typedef struct wire_sid_digest {
    uint64_t x; /* XOR of wire_sid_hash over the set */
    uint32_t n; /* ids in the set */
} wire_sid_digest;

static inline void wire_sid_digest_add(wire_sid_digest *d, const char *sid)
{
    d->x ^= wire_sid_hash(sid);
    d->n++;
}

#endif
