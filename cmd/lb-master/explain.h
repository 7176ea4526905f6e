#ifndef LB_MASTER_EXPLAIN_H
#define LB_MASTER_EXPLAIN_H

#include "master.h"
#include "wire/wire.h"

/* Answers a dry-run SelectionRequest (req->selection_request->dry_run) with the
 * choice, the alternates and a verdict per server. Caller owns the message
 * (NULL on out-of-memory). Takes the view lock; never touches etcd or agents. */
nng_msg *master_explain(master *m, const Lb__Envelope *req);

#endif
