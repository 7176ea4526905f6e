/*
 * The front door's token check (require_tokens): runs before anything is sent
 * to a master, so a refused request launches nothing. A client request is
 * answered REJECT with the reason; a release or renew an ErrorReply (LB_EAUTH). For release and
 * renew the session's client is the token's, not the message's, so a client cannot act on another
 * client's session (the master compares it with the session's owner). Operators release through the
 * master's operator_listen (lbctl release), which this check does not see; the master's listen,
 * where slaves call, refuses a release or renew that names no client.
 */
#include "rpc_auth.h"

#include "auth/verifier.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Counter label from the reason (a fixed set, never client text). */
static const char *reason_label(const char *r)
{
    static const struct {
        const char *prefix, *label;
    } map[] = {{"unauthenticated: no token", "no_token"},
               {"unauthenticated: malformed", "malformed"},
               {"unauthenticated: unknown key", "unknown_key"},
               {"unauthenticated: bad signature", "bad_signature"},
               {"unauthenticated: token expired", "expired"},
               {"forbidden: app", "app"},
               {"forbidden: client_id", "client_id"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(r, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].label;
    return "other";
}

static void count_reject(const char *reason)
{
    char name[128];
    snprintf(name, sizeof name, "slave_token_rejects_total{reason=\"%s\"}", reason_label(reason));
    obs_inc(obs_counter_get(name));
}

/* Replaces a decoded string field (protobuf-c frees it unless it is the shared "" default). */
static void set_field(char **field, const char *value)
{
    if (*field != NULL && (*field)[0] != '\0')
        free(*field);
    *field = lb_strdup(value);
}

/* A client request gets REJECT (its reason, as a master's would be); release
 * and renew an ErrorReply LB_EAUTH, which the HTTP API maps to 401/403. */
static void reject_reply(const Lb__Envelope *req, const char *reason, nng_msg **out)
{
    if (req->body_case != LB__ENVELOPE__BODY_CLIENT_REQUEST) {
        wire_error_reply(req->request_id, LB_EAUTH, reason, out);
        return;
    }
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    in.action = LB__ACTION__REJECT;
    in.reason = (char *)reason;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = &in;
    wire_encode(&env, out);
}

bool slave_auth_check(struct auth_verifier *v, Lb__Envelope *req, nng_msg **reject)
{
    *reject = NULL;
    if (v == NULL)
        return true;
    const char *token = NULL, *app = NULL;
    char **client = NULL;
    switch (req->body_case) {
    case LB__ENVELOPE__BODY_CLIENT_REQUEST:
        token = req->client_request->token;
        app = req->client_request->app != NULL ? req->client_request->app : "";
        client = &req->client_request->client_id;
        break;
    case LB__ENVELOPE__BODY_RELEASE_REQUEST:
        token = req->release_request->token;
        client = &req->release_request->client_id;
        break;
    case LB__ENVELOPE__BODY_RENEW_REQUEST:
        token = req->renew_request->token;
        client = &req->renew_request->client_id;
        break;
    default:
        return true; /* list and stats carry no session and launch nothing */
    }
    char who[256];
    lb_errmsg em = {{0}};
    if (auth_verifier_check(v, token, lb_wall_ms(), app, *client, who, sizeof who, &em) != LB_OK) {
        count_reject(em.text);
        LOG_WARN("slave", "token refused", "client=%s app=%s reason=\"%s\"",
                 *client != NULL ? *client : "", app != NULL ? app : "", em.text);
        reject_reply(req, em.text, reject);
        return false;
    }
    /* the token names the client: an empty client_id becomes the token's, and
     * an empty one never reaches the master (there it means operator release) */
    set_field(client, who);
    return true;
}
