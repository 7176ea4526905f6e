/*
 * Requests: one call per slave (a short timeout to reach it, a long one for
 * the answer, which covers the launch), REDIRECTs followed with the
 * preselection and the visited list (at most max_hops slaves, never one
 * twice), and failover across the configured slaves in rounds with a doubling
 * backoff. Definitive answers (REJECT, bad request) end the search at once.
 */
#include "client_int.h"

#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool lbc_retryable(lb_err e)
{
    return e == LB_ETIMEDOUT || e == LB_EIO || e == LB_EUNAVAIL || e == LB_ECLOSED ||
           e == LB_EPROTO || e == LB_ELOOP;
}

lb_err lbc_call(lb_client *c, const char *endpoint, Lb__Envelope *req, Lb__Envelope **rep)
{
    nng_socket sock;
    lb_err err = lbc_socket(c, endpoint, &sock);
    if (err != LB_OK)
        return err;
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *m = NULL;
    lb_errmsg em = {{0}};
    *rep = NULL;
    req->version = WIRE_VERSION;
    req->request_id = wire_next_id();
    if (nng_ctx_open(&ctx, sock) != 0)
        return lbc_fail(LB_ECLOSED, "%s: cannot open a context", endpoint);
    if (nng_aio_alloc(&aio, NULL, NULL) != 0 || wire_encode(req, &m) != LB_OK) {
        err = lbc_fail(LB_ENOMEM, "out of memory");
        goto out;
    }
    /* reaching the slave: a dead one costs connect_timeout, not the long one */
    nng_aio_set_timeout(aio, c->connect_timeout_ms);
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    int rv = nng_aio_result(aio);
    if (rv != 0) {
        nng_msg_free(m);
        if (wire_tls_refused(sock, NULL, 0))
            err = lbc_fail(LB_EAUTH, "TLS refused by %s: check certificate and CA", endpoint);
        else
            err = lbc_fail(wire_from_nng(rv), "slave %s: %s", endpoint,
                           rv == NNG_ETIMEDOUT ? "not reachable" : nng_strerror(rv));
        goto out;
    }
    nng_aio_set_timeout(aio, c->request_timeout_ms);
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv != 0) {
        err = lbc_fail(wire_from_nng(rv), "slave %s: no answer: %s", endpoint, nng_strerror(rv));
        goto out;
    }
    m = nng_aio_get_msg(aio);
    err = wire_decode(m, WIRE_TRANSPORT_MAX, rep, &em);
    nng_msg_free(m);
    if (err != LB_OK)
        lbc_fail(err, "slave %s: %s", endpoint, em.text);
    else if ((*rep)->body_case == LB__ENVELOPE__BODY_ERROR) {
        err = (*rep)->error->code > 0 && (*rep)->error->code < LB_ERR_COUNT
                  ? (lb_err)(*rep)->error->code
                  : LB_EPROTO;
        lbc_fail(err, "slave %s: %s", endpoint, (*rep)->error->message);
        wire_free(rep);
    }
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return err;
}

/* Tries attempt(c, slave, arg) on every slave in order, for 1 + c->retries
 * rounds with backoff between rounds, until one succeeds or fails in a way
 * another slave cannot fix. why (may be NULL) keeps the last failure's text. */
static lb_err lbc_each_slave(lb_client *c, lb_err (*attempt)(lb_client *, const char *, void *),
                             void *arg, char *why, size_t why_cap)
{
    lb_err err = LB_EUNAVAIL;
    int backoff = c->backoff_ms;
    for (int round = 0; round <= c->retries; round++) {
        if (round > 0) {
            lb_sleep_ms(backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
        }
        for (size_t i = 0; i < c->n_slaves; i++) {
            err = attempt(c, c->slaves[i], arg);
            if (err == LB_OK || !lbc_retryable(err))
                return err;
            if (why != NULL)
                snprintf(why, why_cap, "%s", lb_client_errmsg());
        }
    }
    return err;
}

struct call_args {
    Lb__Envelope *req;
    Lb__Envelope **rep;
};

static lb_err call_attempt(lb_client *c, const char *slave, void *arg)
{
    struct call_args *a = arg;
    return lbc_call(c, slave, a->req, a->rep);
}

lb_err lbc_call_any(lb_client *c, Lb__Envelope *req, Lb__Envelope **rep)
{
    struct call_args a = {req, rep};
    return lbc_each_slave(c, call_attempt, &a, NULL, 0);
}

static void fill_assignment(const Lb__SelectionInstruction *in, const char *endpoint,
                            lb_assignment *out)
{
    const Lb__ProcessId *p = in->process;
    lbc_copy(out->server, sizeof out->server, in->server_id);
    lbc_copy(out->host, sizeof out->host, p != NULL ? p->host : "");
    out->port = p != NULL ? (uint16_t)p->port : 0;
    out->pid = p != NULL ? p->pid : 0;
    lbc_copy(out->session, sizeof out->session, in->session_id);
    lbc_copy(out->slave, sizeof out->slave, in->slave_id);
    lbc_copy(out->slave_endpoint, sizeof out->slave_endpoint, endpoint);
    out->confirmed = in->confirmed;
    out->affinity = in->affinity;
    out->relay = in->link != NULL && strcmp(in->link, "relay") == 0;
    lbc_copy(out->relay_endpoint, sizeof out->relay_endpoint, in->relay_endpoint);
    lbc_copy(out->relay_token, sizeof out->relay_token, in->relay_token);
    out->expires_ms = in->expires_ms;
    out->preferred = in->preferred;
    lbc_copy(out->preferred_refused, sizeof out->preferred_refused, in->preferred_refused);
    lbc_copy(out->slave_reason, sizeof out->slave_reason, in->slave_reason);
    out->n_alternates = 0;
    for (size_t i = 0; i < in->n_alternates && i < LB_MAX_ALTERNATES; i++) {
        lb_alternate *a = &out->alternates[out->n_alternates++];
        lbc_copy(a->server, sizeof a->server, in->alternates[i]->server_id);
        lbc_copy(a->host, sizeof a->host, in->alternates[i]->host);
        lbc_copy(a->zone, sizeof a->zone, in->alternates[i]->zone);
    }
    out->n_spares = 0;
    for (size_t i = 0; i < in->n_spares && i < LB_MAX_SPARES; i++) {
        const Lb__SpareProcess *sp = in->spares[i];
        if (sp->process == NULL)
            continue;
        lb_spare *s = &out->spares[out->n_spares++];
        lbc_copy(s->server, sizeof s->server, sp->server_id);
        lbc_copy(s->host, sizeof s->host, sp->process->host);
        s->port = (uint16_t)sp->process->port;
        s->pid = sp->process->pid;
        lbc_copy(s->session, sizeof s->session, sp->session_id);
        s->expires_ms = sp->expires_ms;
    }
}

/* Calls ep, or in turn each address its host name resolves to (a redirect may
 * name a DNS entry point too; configured endpoints were expanded at open);
 * used (cap bytes) gets the address that answered. */
static lb_err call_any_address(lb_client *c, const char *ep, Lb__Envelope *env, Lb__Envelope **rep,
                               char *used, size_t cap)
{
    char **eps = NULL;
    size_t n = 0;
    lb_err err = wire_endpoint_expand(ep, &eps, &n);
    if (err != LB_OK)
        return lbc_fail(err, "out of memory");
    err = LB_EUNAVAIL;
    for (size_t i = 0; i < n; i++) {
        err = lbc_call(c, eps[i], env, rep);
        if (err == LB_OK || !lbc_retryable(err)) {
            lbc_copy(used, cap, eps[i]);
            break;
        }
    }
    wire_endpoints_free(&eps, n);
    return err;
}

/* Asks endpoint and follows its redirects. *prev keeps the last REDIRECT
 * answer alive while cr points into it. */
static lb_err follow(lb_client *c, const char *first, Lb__ClientRequest *cr, lb_assignment *out)
{
    Lb__Preselection pre = LB__PRESELECTION__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL, *prev = NULL;
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = cr;
    const char *ep = first;
    lb_err err = LB_OK;
    out->hops = 0;
    for (;;) {
        for (int i = 0; i < out->hops; i++)
            if (strcmp(out->hop[i], ep) == 0) {
                err = lbc_fail(LB_ELOOP, "redirect loop: slave %s visited twice", ep);
                goto out;
            }
        if (out->hops == c->max_hops) {
            err = lbc_fail(LB_ELOOP, "more than %d hops (last redirect to %s)", c->max_hops, ep);
            goto out;
        }
        char *hop = out->hop[out->hops++];
        lbc_copy(hop, sizeof out->hop[0], ep);
        if ((err = call_any_address(c, hop, &env, &rep, hop, sizeof out->hop[0])) != LB_OK)
            goto out;
        ep = hop;
        if (rep->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
            err = lbc_fail(LB_EPROTO, "slave %s answered an unexpected message", ep);
            goto out;
        }
        const Lb__SelectionInstruction *in = rep->instruction;
        if (in->action == LB__ACTION__SERVE) {
            fill_assignment(in, ep, out);
            goto out;
        }
        if (in->action != LB__ACTION__REDIRECT) {
            err = lbc_fail(LB_EREJECTED, "rejected by %s: %s", ep, in->reason ? in->reason : "");
            goto out;
        }
        pre.server_id = in->server_id;
        pre.process = in->process;
        pre.session_id = in->session_id;
        pre.slave_id = in->slave_id;
        cr->preselected = &pre;
        cr->visited = in->visited;
        cr->n_visited = in->n_visited;
        ep = in->slave_endpoint;
        wire_free(&prev);
        prev = rep;
        rep = NULL;
    }
out:
    cr->preselected = NULL;
    cr->visited = NULL;
    cr->n_visited = 0;
    wire_free(&rep);
    wire_free(&prev);
    return err;
}

struct follow_args {
    Lb__ClientRequest *cr;
    lb_assignment *out;
};

static lb_err follow_attempt(lb_client *c, const char *slave, void *arg)
{
    struct follow_args *a = arg;
    return follow(c, slave, a->cr, a->out);
}

static lb_err request_rounds(lb_client *c, Lb__ClientRequest *cr, lb_assignment *out)
{
    char why[512] = "";
    struct follow_args a = {cr, out};
    lb_err err = lbc_each_slave(c, follow_attempt, &a, why, sizeof why);
    if (err == LB_OK || !lbc_retryable(err))
        return err;
    return lbc_fail(err, "no slave served the request (%zu slaves, %d rounds); last: %s",
                    c->n_slaves, c->retries + 1, why);
}

lb_err lb_client_request_ex(lb_client *c, const lb_request *req, lb_assignment *out)
{
    return lbc_request(c, req, 0, NULL, out);
}

lb_err lbc_request(lb_client *c, const lb_request *req, int32_t unreachable_pid,
                   const char *claim_spare, lb_assignment *out)
{
    if (c == NULL || req == NULL || req->app == NULL || req->app[0] == '\0' || out == NULL)
        return lbc_fail(LB_EINVAL, "lb_client_request: client, app and out are required");
    memset(out, 0, sizeof *out);
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__Requirements rq = LB__REQUIREMENTS__INIT;
    cr.client_id = (char *)(req->client_id != NULL ? req->client_id : c->client_id);
    cr.location = (char *)(req->location != NULL ? req->location : c->location);
    cr.app = (char *)req->app;
    cr.token = c->token;
    cr.preferred_server = (char *)(req->server_id != NULL ? req->server_id : "");
    cr.unreachable_pid = unreachable_pid;
    cr.claim_spare = (char *)(claim_spare != NULL ? claim_spare : "");
    if (c->min_cpu > 0 || c->min_mem > 0 || c->n_labels > 0 || c->arch[0] || c->os[0]) {
        rq.min_cpu = c->min_cpu;
        rq.min_mem_bytes = c->min_mem;
        rq.labels = c->labels;
        rq.n_labels = c->n_labels;
        rq.arch = c->arch;
        rq.os = c->os;
        cr.requirements = &rq;
    }
    lb_err err = request_rounds(c, &cr, out);
    if (err != LB_OK)
        return err;
    lbc_copy(out->app, sizeof out->app, req->app);
    lbc_copy(out->client_id, sizeof out->client_id, cr.client_id);
    lbc_hold(c, out);
    lbc_remember(c, out);
    return LB_OK;
}

lb_err lb_client_request(lb_client *c, const char *app, lb_assignment *out)
{
    lb_request r = {.app = app};
    return lb_client_request_ex(c, &r, out);
}

lb_err lb_request_on(lb_client *c, const char *app, const char *server_id, lb_assignment *out)
{
    lb_request r = {.app = app, .server_id = server_id};
    return lb_client_request_ex(c, &r, out);
}

lb_err lb_client_release(lb_client *c, const lb_assignment *a)
{
    if (c == NULL || a == NULL || a->session[0] == '\0')
        return lbc_fail(LB_EINVAL, "lb_client_release: no session");
    lbc_unhold(c, a->session);
    lbc_forget(c, a->host, a->port);
    return lbc_release_session(c, a->session, a->client_id);
}
