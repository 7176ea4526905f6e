#include "wire/wire.h"
#include "wire/wire_check.h"

#include "wire/wire_tls.h"

#include "common/errmsg.h"
#include "obs/metrics.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

lb_err wire_from_nng(int rv)
{
    switch (rv) {
    case 0:
        return LB_OK;
    case NNG_ETIMEDOUT:
        return LB_ETIMEDOUT;
    case NNG_ENOMEM:
        return LB_ENOMEM;
    case NNG_EINVAL:
    case NNG_EADDRINVAL:
        return LB_EINVAL;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return LB_ECLOSED;
    case NNG_EMSGSIZE:
        return LB_ETOOBIG;
    case NNG_ECONNREFUSED:
    case NNG_EUNREACHABLE:
        return LB_EUNAVAIL;
    case NNG_EPROTO:
        return LB_EPROTO;
    default:
        return LB_EIO;
    }
}

lb_err wire_encode(const Lb__Envelope *env, nng_msg **out)
{
    size_t len = lb__envelope__get_packed_size(env);
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, len) != 0)
        return LB_ENOMEM;
    lb__envelope__pack(env, nng_msg_body(m));
    *out = m;
    return LB_OK;
}

lb_err wire_decode(const nng_msg *msg, size_t max_bytes, Lb__Envelope **out, lb_errmsg *em)
{
    nng_msg *m = (nng_msg *)msg;
    return wire_decode_buf(nng_msg_body(m), nng_msg_len(m), max_bytes, out, em);
}

lb_err wire_decode_buf(const void *buf, size_t len, size_t max_bytes, Lb__Envelope **out,
                       lb_errmsg *em)
{
    *out = NULL;
    if (len > max_bytes) {
        obs_count("wire_errors_total{kind=\"oversized\"}");
        return lb_fail(em, LB_ETOOBIG, "message of %zu bytes is over the limit of %zu", len,
                       max_bytes);
    }
    Lb__Envelope *env = lb__envelope__unpack(NULL, len, buf);
    if (env == NULL) {
        obs_count("wire_errors_total{kind=\"decode\"}");
        return lb_fail(em, LB_EPROTO, "message of %zu bytes is not a valid Envelope", len);
    }
    if (!wire_check_fields(&env->base)) {
        obs_count("wire_errors_total{kind=\"decode\"}");
        lb__envelope__free_unpacked(env, NULL);
        return lb_fail(em, LB_EPROTO, "message of %zu bytes has a field numbered 0", len);
    }
    if (env->version != WIRE_VERSION) {
        obs_count("wire_errors_total{kind=\"version\"}");
        unsigned v = env->version;
        lb__envelope__free_unpacked(env, NULL);
        return lb_fail(em, LB_EPROTO, "unsupported envelope version %u (want %u)", v, WIRE_VERSION);
    }
    if (env->body_case == LB__ENVELOPE__BODY__NOT_SET) {
        obs_count("wire_errors_total{kind=\"empty\"}");
        lb__envelope__free_unpacked(env, NULL);
        return lb_fail(em, LB_EPROTO, "envelope has no body");
    }
    *out = env;
    return LB_OK;
}

void wire_free(Lb__Envelope **env)
{
    if (env != NULL && *env != NULL) {
        lb__envelope__free_unpacked(*env, NULL);
        *env = NULL;
    }
}

lb_err wire_error_reply(uint64_t request_id, lb_err code, const char *text, nng_msg **out)
{
    Lb__Envelope env = LB__ENVELOPE__INIT;
    Lb__ErrorReply er = LB__ERROR_REPLY__INIT;
    er.code = (uint32_t)code;
    er.message = (char *)(text != NULL ? text : lb_strerror(code));
    env.version = WIRE_VERSION;
    env.request_id = request_id;
    env.body_case = LB__ENVELOPE__BODY_ERROR;
    env.error = &er;
    return wire_encode(&env, out);
}

struct stats_acc {
    Lb__Stat *items;
    Lb__Stat **ptrs;
    size_t n, cap;
};

static void stats_collect(const char *name, uint64_t value, void *arg)
{
    struct stats_acc *a = arg;
    if (a->n == a->cap)
        return;
    lb__stat__init(&a->items[a->n]);
    a->items[a->n].name = (char *)name;
    a->items[a->n].value = value;
    a->ptrs[a->n] = &a->items[a->n];
    a->n++;
}

lb_err wire_stats_reply(uint64_t request_id, const char *daemon, const char *id, nng_msg **out)
{
    wire_tls_sync_counter();
    struct stats_acc a = {.cap = OBS_MAX_COUNTERS};
    a.items = calloc(a.cap, sizeof *a.items);
    a.ptrs = calloc(a.cap, sizeof *a.ptrs);
    if (a.items == NULL || a.ptrs == NULL) {
        free(a.items);
        free(a.ptrs);
        return LB_ENOMEM;
    }
    obs_counter_foreach(stats_collect, &a);
    Lb__StatsReply sr = LB__STATS_REPLY__INIT;
    sr.daemon = (char *)daemon;
    sr.id = (char *)id;
    sr.n_stats = a.n;
    sr.stats = a.ptrs;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = request_id;
    env.body_case = LB__ENVELOPE__BODY_STATS_REPLY;
    env.stats_reply = &sr;
    lb_err err = wire_encode(&env, out);
    free(a.items);
    free(a.ptrs);
    return err;
}

static void wire_set_common(nng_socket s)
{
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WIRE_TRANSPORT_MAX);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 1000);
}

lb_err wire_req_dial(const char *url, nng_socket *out, lb_errmsg *em)
{
    return wire_req_dial_to(url, WIRE_ROLE_ANY, NULL, out, em);
}

lb_err wire_req_dial_to(const char *url, int peer_role, const struct wire_tls *tls, nng_socket *out,
                        lb_errmsg *em)
{
    return wire_req_dial_notify(url, peer_role, tls, NULL, NULL, out, em);
}

lb_err wire_req_dial_notify(const char *url, int peer_role, const struct wire_tls *tls,
                            nng_pipe_cb cb, void *arg, nng_socket *out, lb_errmsg *em)
{
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "req socket: %s", nng_strerror(rv));
    wire_set_common(s);
    if (cb != NULL) {
        nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, cb, arg);
        nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, cb, arg);
    }
    /* We time out and retry at the application level; nng must not resend. */
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    lb_err err = wire_dial(s, url, (wire_role)peer_role, tls, em);
    if (err != LB_OK) {
        nng_close(s);
        return err;
    }
    *out = s;
    return LB_OK;
}

lb_err wire_rep_listen(const char *url, nng_socket *out, lb_errmsg *em)
{
    nng_socket s;
    int rv = nng_rep0_open(&s);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "rep socket: %s", nng_strerror(rv));
    wire_set_common(s);
    lb_err err = wire_listen(s, url, NULL, NULL, NULL, em);
    if (err != LB_OK) {
        nng_close(s);
        return err;
    }
    *out = s;
    return LB_OK;
}

lb_err wire_call(nng_socket sock, const Lb__Envelope *req, int timeout_ms, size_t max_bytes,
                 Lb__Envelope **rep, lb_errmsg *em)
{
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *m = NULL;
    lb_err err = LB_OK;
    *rep = NULL;
    int rv = nng_ctx_open(&ctx, sock);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "context: %s", nng_strerror(rv));
    rv = nng_aio_alloc(&aio, NULL, NULL);
    if (rv != 0) {
        nng_ctx_close(ctx);
        return lb_fail(em, LB_ENOMEM, "aio: %s", nng_strerror(rv));
    }
    err = wire_encode(req, &m);
    if (err != LB_OK)
        goto out;
    /* Sending waits for a connection; in slices, so a server that refuses our
     * TLS handshake is reported at once rather than as a timeout. */
    int64_t left = timeout_ms;
    for (;;) {
        int slice = left > 250 ? 250 : (int)left;
        nng_aio_set_timeout(aio, slice);
        nng_aio_set_msg(aio, m);
        nng_ctx_send(ctx, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
        left -= slice;
        if (rv != NNG_ETIMEDOUT || left <= 0)
            break;
        char url[256];
        if (wire_tls_refused(sock, url, sizeof url)) {
            nng_msg_free(m);
            err = lb_fail(em, LB_EAUTH, "TLS refused by %s: check certificate and CA", url);
            goto out;
        }
    }
    if (rv != 0) {
        nng_msg_free(m);
        char url[256];
        if (wire_tls_refused(sock, url, sizeof url))
            err = lb_fail(em, LB_EAUTH, "TLS refused by %s: check certificate and CA", url);
        else
            err = lb_fail(em, wire_from_nng(rv), "send: %s", nng_strerror(rv));
        goto out;
    }
    nng_aio_set_timeout(aio, timeout_ms);
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    if (rv != 0) {
        err = lb_fail(em, wire_from_nng(rv), "no answer: %s", nng_strerror(rv));
        goto out;
    }
    m = nng_aio_get_msg(aio);
    err = wire_decode(m, max_bytes, rep, em);
    nng_msg_free(m);
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return err;
}

uint64_t wire_next_id(void)
{
    static _Atomic uint64_t next = 1;
    return atomic_fetch_add(&next, 1);
}
