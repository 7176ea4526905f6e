/* Unit tests of the master's role check (rpc_role.c): the role of a request
 * is the listener its connection came in on — shown on real nng sockets, one
 * REP socket with two listeners, as the master has — and what each role may
 * ask: a release or renew naming no client is operator only, a selection is a
 * slave's, read-only calls are open to both; refusals are counted per rpc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "master.h"

#include "obs/metrics.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <string.h>

static uint64_t forbidden(const char *rpc)
{
    char name[96];
    snprintf(name, sizeof name, "master_rpc_forbidden_total{rpc=\"%s\"}", rpc);
    return obs_value(obs_counter_get(name));
}

/* Sends one message from a REQ socket dialed to url (left open in *req: a
 * message's pipe is valid while its connection is); the REP side receives it. */
static nng_msg *via(nng_socket rep, const char *url, nng_socket *req)
{
    assert_int_equal(nng_req0_open(req), 0);
    assert_int_equal(nng_dial(*req, url, NULL, 0), 0);
    assert_int_equal(nng_send(*req, "x", 1, 0), 0);
    nng_msg *msg = NULL;
    assert_int_equal(nng_recvmsg(rep, &msg, 0), 0);
    return msg;
}

static void role_is_the_listener(void **state)
{
    (void)state;
    master m;
    memset(&m, 0, sizeof m);
    nng_socket rep;
    nng_listener slaves, ops;
    assert_int_equal(nng_rep0_open(&rep), 0);
    nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000);
    assert_int_equal(nng_listen(rep, "tcp://127.0.0.1:0", &slaves, 0), 0);
    assert_int_equal(nng_listen(rep, "tcp://127.0.0.1:0", &ops, 0), 0);
    char *u1 = NULL, *u2 = NULL;
    assert_int_equal(nng_listener_get_string(slaves, NNG_OPT_URL, &u1), 0);
    assert_int_equal(nng_listener_get_string(ops, NNG_OPT_URL, &u2), 0);
    nng_socket r1, r2, r3;
    /* operator_listen off: everything is a slave's */
    m.operator_listener = -1;
    nng_msg *msg = via(rep, u2, &r1);
    assert_int_equal(master_rpc_role(&m, msg), MASTER_ROLE_SLAVE);
    nng_msg_free(msg);
    m.operator_listener = nng_listener_id(ops);
    msg = via(rep, u1, &r2);
    assert_int_equal(master_rpc_role(&m, msg), MASTER_ROLE_SLAVE);
    nng_msg_free(msg);
    msg = via(rep, u2, &r3);
    assert_int_equal(master_rpc_role(&m, msg), MASTER_ROLE_OPERATOR);
    /* once its connection is gone, the pipe names no listener: a slave's
     * rights (the safe side) */
    nng_close(r3);
    for (int i = 0; i < 500 && master_rpc_role(&m, msg) != MASTER_ROLE_SLAVE; i++)
        nng_msleep(10); /* the REP side sees the close asynchronously */
    assert_int_equal(master_rpc_role(&m, msg), MASTER_ROLE_SLAVE);
    nng_msg_free(msg);
    /* a message that never had a pipe is never the operator's */
    nng_msg *bare = NULL;
    assert_int_equal(nng_msg_alloc(&bare, 0), 0);
    assert_int_equal(master_rpc_role(&m, bare), MASTER_ROLE_SLAVE);
    assert_int_equal(master_rpc_role(&m, NULL), MASTER_ROLE_SLAVE);
    nng_msg_free(bare);
    nng_close(r1);
    nng_close(r2);
    nng_strfree(u1);
    nng_strfree(u2);
    nng_close(rep);
}

static bool permitted(master_role role, const Lb__Envelope *env, char *why)
{
    why[0] = '\0';
    return master_rpc_permitted(role, env, why, 256);
}

static void release_and_renew_of_any_client_are_operator_only(void **state)
{
    (void)state;
    char why[256];
    Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
    env.release_request = &rr;
    rr.session_id = "s1";
    rr.client_id = "";
    uint64_t before = forbidden("release");
    assert_false(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_non_null(strstr(why, "forbidden: operator only"));
    assert_int_equal(forbidden("release"), before + 1);
    rr.client_id = NULL; /* absent is empty */
    assert_false(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    rr.client_id = "alice"; /* named: the owner check in sessions.c decides */
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    assert_int_equal(forbidden("release"), before + 2);

    char *ids[1] = {"s1"};
    Lb__RenewRequest rn = LB__RENEW_REQUEST__INIT;
    rn.session_ids = ids;
    rn.n_session_ids = 1;
    rn.client_id = "";
    env.body_case = LB__ENVELOPE__BODY_RENEW_REQUEST;
    env.renew_request = &rn;
    before = forbidden("renew");
    assert_false(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_non_null(strstr(why, "forbidden: operator only"));
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    rn.client_id = "alice";
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_int_equal(forbidden("renew"), before + 1);
}

static void selection_is_a_slaves_and_explain_is_open(void **state)
{
    (void)state;
    char why[256];
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__SelectionRequest sr = LB__SELECTION_REQUEST__INIT;
    sr.request = &cr;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_SELECTION_REQUEST;
    env.selection_request = &sr;
    uint64_t before = forbidden("selection");
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_false(permitted(MASTER_ROLE_OPERATOR, &env, why));
    assert_non_null(strstr(why, "forbidden: slaves only"));
    assert_int_equal(forbidden("selection"), before + 1);
    sr.dry_run = true; /* lbctl explain */
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    /* read-only calls */
    Lb__StatsRequest st = LB__STATS_REQUEST__INIT;
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &st;
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    Lb__LoadRequest lr = LB__LOAD_REQUEST__INIT;
    env.body_case = LB__ENVELOPE__BODY_LOAD_REQUEST;
    env.load_request = &lr;
    assert_true(permitted(MASTER_ROLE_SLAVE, &env, why));
    assert_true(permitted(MASTER_ROLE_OPERATOR, &env, why));
    assert_int_equal(forbidden("selection"), before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(role_is_the_listener),
        cmocka_unit_test(release_and_renew_of_any_client_are_operator_only),
        cmocka_unit_test(selection_is_a_slaves_and_explain_is_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
