/*
 * The writer's batches (writer.c): which ops of a txn another op on the same
 * key supersedes (etcd refuses a key twice in one txn; the last op wins).
 * Pure code; no state, any thread.
 */
#ifndef LB_MASTER_BATCH_H
#define LB_MASTER_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#define BATCH_MAX_OPS 128 /* ops in one txn */

/* Sets superseded[i] when keys[i] comes again at a later index; n at most
 * BATCH_MAX_OPS (beyond it, nothing is marked). Keys are borrowed. */
void batch_superseded(const char *const *keys, size_t n, bool *superseded);

#endif
