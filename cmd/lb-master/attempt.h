/*
 * One launch attempt: one LaunchRequest of one request to one agent, on its
 * own context of the agent's socket. It ends exactly once for its owner: with
 * the reply, or with a failure (not sent, launch_timeout passed, socket
 * error). An attempt that timed out is abandoned, not cancelled: it keeps
 * listening (up to ATTEMPT_LATE_MS more), and a reply that comes after is
 * discarded and the process it names is stopped, so a late launch never
 * commits and never leaves a process without a session.
 *
 * Thread-safety: the calls may come from any thread; done runs on nng's
 * callback thread, never twice, and never after attempt_owner_gone.
 */
#ifndef LB_MASTER_ATTEMPT_H
#define LB_MASTER_ATTEMPT_H

#include "master.h"

#define ATTEMPT_LATE_MS 60000

/* reply: the agent's answer (owned by done) or NULL; why: the failure. */
typedef void (*attempt_done_fn)(void *owner, nng_msg *reply, const char *why);

/* Sends msg (owned by the attempt from the call on, even when it fails) to
 * server's agent. false (why set, done never called) when no context opens. */
bool attempt_start(master *m, const char *server, const char *endpoint, const char *session,
                   nng_msg *msg, attempt_done_fn done, void *owner, const char **why);

/* Shutdown: no done call happens after this returns; attempts in flight are
 * stopped and freed. */
void attempt_stop_all(master *m);

#endif
