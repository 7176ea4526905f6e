#ifndef LB_MASTER_SESSIONS_H
#define LB_MASTER_SESSIONS_H

#include "master.h"
#include "wire/wire.h"

/* Each answers one request envelope of its kind; the caller owns the message
 * (NULL on out-of-memory). They take the view lock briefly, queue etcd writes,
 * and never wait on etcd or agents. */
nng_msg *master_release(master *m, const Lb__Envelope *req);
nng_msg *master_renew(master *m, const Lb__Envelope *req);
nng_msg *master_list(master *m, const Lb__Envelope *req);
/* Live load of every server (or one) from this master's view (LoadList). */
nng_msg *master_load_list(master *m, const Lb__Envelope *req);

/* Whether app runs one process per session on server s (default yes), so
 * the end of a session (release or expiry) stops its process. View lock held. */
bool master_per_session(const reg_server *s, const char *app);

/* Whether moving a stored session's expiry to expires_ms is worth an etcd
 * write: only when it moves by more than a quarter of session_ttl (always
 * with etcd_economy off). Pure; any thread. */
bool master_session_needs_write(const master *m, const Lb__Session *stored, int64_t expires_ms);

#endif
