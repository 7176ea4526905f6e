/*
 * Who may ask the master what (README "Security model"). nng 1.5.2 cannot show
 * a peer certificate's names, so the caller's role is the listener its
 * connection came in on: `listen` trusts slaves (and, for read-only calls,
 * operators), `operator_listen` trusts the operator CA alone. A message's pipe
 * names its listener, so the role is decided per message, on one REP socket.
 *
 * Operator only: release or renew of a session without naming its client
 * (an empty client_id means "any client"). A slave forwards a client's
 * release with the client's id (the token's, with require_tokens) and the
 * master checks it against the session's owner (sessions.c). Slave only: a
 * selection that is not a dry run (an operator does not take sessions).
 * Everything else (explain, list, load, stats) is read-only and open to both.
 */
#include "master.h"

#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <string.h>

master_role master_rpc_role(const master *m, nng_msg *msg)
{
    if (m->operator_listener < 0 || msg == NULL)
        return MASTER_ROLE_SLAVE;
    nng_listener l = nng_pipe_listener(nng_msg_get_pipe(msg));
    /* a pipe of a closed listener, or none: never the operator's */
    return nng_listener_id(l) == m->operator_listener ? MASTER_ROLE_OPERATOR : MASTER_ROLE_SLAVE;
}

static bool empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* The rpc label of a message kind that the role check concerns, or NULL. */
static const char *rpc_name(const Lb__Envelope *req)
{
    switch (req->body_case) {
    case LB__ENVELOPE__BODY_RELEASE_REQUEST:
        return "release";
    case LB__ENVELOPE__BODY_RENEW_REQUEST:
        return "renew";
    case LB__ENVELOPE__BODY_SELECTION_REQUEST:
        return "selection";
    default:
        return NULL;
    }
}

bool master_rpc_permitted(master_role role, const Lb__Envelope *req, char *why, size_t cap)
{
    const char *rpc = rpc_name(req);
    const char *text = NULL;
    if (rpc == NULL)
        return true;
    if (role == MASTER_ROLE_SLAVE) {
        if (req->body_case == LB__ENVELOPE__BODY_RELEASE_REQUEST &&
            empty(req->release_request->client_id))
            text = "forbidden: operator only (releasing any client's session needs the master's "
                   "operator_listen and an operator certificate; a client names itself with "
                   "client_id)";
        else if (req->body_case == LB__ENVELOPE__BODY_RENEW_REQUEST &&
                 empty(req->renew_request->client_id))
            text = "forbidden: operator only (renewing any client's session needs the master's "
                   "operator_listen and an operator certificate; a client names itself with "
                   "client_id)";
    } else if (req->body_case == LB__ENVELOPE__BODY_SELECTION_REQUEST &&
               req->selection_request->request != NULL && !req->selection_request->dry_run) {
        text = "forbidden: slaves only (selections come from slaves on listen; operators may "
               "explain)";
    }
    if (text == NULL)
        return true;
    char name[96];
    snprintf(name, sizeof name, "master_rpc_forbidden_total{rpc=\"%s\"}", rpc);
    obs_count(name);
    const char *sid = req->body_case == LB__ENVELOPE__BODY_RELEASE_REQUEST
                          ? req->release_request->session_id
                      : req->body_case == LB__ENVELOPE__BODY_RENEW_REQUEST &&
                              req->renew_request->n_session_ids > 0
                          ? req->renew_request->session_ids[0]
                          : "";
    LOG_WARN("master", "forbidden", "rpc=%s role=%s session=%s reason=\"%s\"", rpc,
             role == MASTER_ROLE_OPERATOR ? "operator" : "slave", sid != NULL ? sid : "", text);
    snprintf(why, cap, "%s", text);
    return false;
}
