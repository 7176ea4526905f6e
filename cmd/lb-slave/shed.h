/*
 * Slave-side shedding of new clients to zone peers (see shed.c).
 * Thread-safety: every call may come from any nng callback thread; the state
 * has its own lock, held only for table lookups.
 */
#ifndef LB_SLAVE_SHED_H
#define LB_SLAVE_SHED_H

#include "lb.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct slave_shed slave_shed;

/* The caller owns the result (slave_shed_free). */
slave_shed *slave_shed_new(void);
void slave_shed_free(slave_shed **sh);

/* Learns from a master's answer: the zone peers and their loads (when it
 * carries any) and, for a SERVE by this slave (self), that cr's client is
 * served here. cr may be NULL (not a client request). Borrows everything. */
void slave_shed_learn(slave_shed *sh, const char *self, const Lb__ClientRequest *cr,
                      const Lb__SelectionInstruction *in);

/* For a client request arriving while this slave's load is at or over its
 * limit (0: none): true, with the peer's id and client endpoint copied out,
 * when the client is new here and a peer of the zone has room. Counts the
 * sheds (slave_shed_total) and the sticky clients kept (slave_shed_kept_total). */
bool slave_shed_pick(slave_shed *sh, const char *self, uint32_t load, uint32_t limit,
                     const Lb__ClientRequest *cr, char *id, size_t id_cap, char *ep, size_t ep_cap);

/* Copies the HTTP API base URL of peer id (as last learnt) into api; false
 * (api "") when unknown or the peer has no API. */
bool slave_shed_api(slave_shed *sh, const char *id, char *api, size_t cap);

#endif
