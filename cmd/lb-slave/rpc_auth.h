/*
 * require_tokens at the slave's front door (rpc_auth.c).
 * Thread-safety: as the verifier (any thread).
 */
#ifndef LB_SLAVE_RPC_AUTH_H
#define LB_SLAVE_RPC_AUTH_H

#include "lb.pb-c.h"

#include <nng/nng.h>
#include <stdbool.h>

struct auth_verifier;

/* v NULL: tokens not required, true. Else checks req's token; on success the
 * request's client_id is set to the token's and true is returned; on failure
 * *reject is the encoded answer (REJECT, or ErrorReply LB_EAUTH for release/renew, the reason
 * starting "unauthenticated:" or "forbidden:"), logged and counted. */
bool slave_auth_check(struct auth_verifier *v, Lb__Envelope *req, nng_msg **reject);

#endif
