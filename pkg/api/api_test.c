/* pkg/api: the front door's answers rendered as HTTP status, code and JSON. */
#include "api/api_int.h"

#include "lb/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

static void render_reject(const char *reason, httpd_resp *resp)
{
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    in.action = LB__ACTION__REJECT;
    in.reason = (char *)reason;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = &in;
    memset(resp, 0, sizeof *resp);
    api_json_instruction(&env, resp);
}

static void test_reject_statuses(void **state)
{
    (void)state;
    static const struct {
        const char *reason, *code;
        int status;
    } cases[] = {
        {"unauthenticated: token signature invalid", "\"code\":\"unauthenticated\"", 401},
        {"forbidden: role client may not list", "\"code\":\"forbidden\"", 403},
        {"bad request: app must be 1-64 characters", "\"code\":\"bad_request\"", 400},
        {"unknown app 'x': no server offers it", "\"code\":\"no_app\"", 404},
        {"no eligible server for app 'echo'", "\"code\":\"no_server\"", 503},
        {"agent-a: launch failed: exited", "\"code\":\"launch_failed\"", 503},
        {"something else", "\"code\":\"rejected\"", 422},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        httpd_resp r;
        render_reject(cases[i].reason, &r);
        assert_int_equal(r.status, cases[i].status);
        assert_string_equal(r.content_type, "application/json");
        assert_non_null(strstr(r.body, cases[i].code));
        assert_non_null(strstr(r.body, cases[i].reason)); /* the nng path's text, as is */
        assert_non_null(strstr(r.body, "\"action\":\"REJECT\""));
        httpd_resp_free(&r);
    }
}

static void test_error_replies(void **state)
{
    (void)state;
    Lb__ErrorReply e = LB__ERROR_REPLY__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_ERROR;
    env.error = &e;
    httpd_resp r = {0};
    e.code = LB_EUNAVAIL;
    e.message = "no master answered: tcp://m:1: timed out";
    api_json_instruction(&env, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "{\"error\":{\"code\":\"no_master\",\"reason\":\"no master "
                                   "answered: tcp://m:1: timed out\"}}"));
    httpd_resp_free(&r);
    e.code = LB_EAUTH;
    e.message = "forbidden: not an operator";
    api_json_instruction(&env, &r);
    assert_int_equal(r.status, 403);
    httpd_resp_free(&r);
    e.message = "unauthenticated: no token";
    api_json_instruction(&env, &r);
    assert_int_equal(r.status, 401);
    httpd_resp_free(&r);
}

static void test_redirect_location_and_clean_utf8(void **state)
{
    (void)state;
    Lb__ProcessId pr = LB__PROCESS_ID__INIT;
    pr.pid = 42;
    pr.host = "::1";
    pr.port = 9000;
    pr.started_at = 1700000000000;
    char *visited[] = {"slave-a", "slave b"};
    Lb__SelectionInstruction in = LB__SELECTION_INSTRUCTION__INIT;
    in.action = LB__ACTION__REDIRECT;
    in.slave_id = "slave-b";
    in.slave_api = "http://10.0.0.2:8201";
    in.server_id = "srv&1";
    in.session_id = "s1";
    in.process = &pr;
    in.visited = visited;
    in.n_visited = 2;
    in.reason = "bad\xff";
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_INSTRUCTION;
    env.instruction = &in;
    httpd_resp r = {0};
    api_json_instruction(&env, &r);
    assert_int_equal(r.status, 307);
    const char *want = "http://10.0.0.2:8201/v1/request?pre_server=srv%261&pre_session=s1"
                       "&pre_slave=slave-b&pre_host=%3A%3A1&pre_pid=42&pre_port=9000"
                       "&pre_started_at=1700000000000&visited=slave-a%2Cslave%20b";
    assert_int_equal(r.n_headers, 1);
    assert_string_equal(r.headers[0][0], "Location");
    assert_string_equal(r.headers[0][1], want);
    assert_non_null(strstr(r.body, "\"action\":\"REDIRECT\""));
    assert_non_null(strstr(r.body, "\"reason\":\"bad\xEF\xBF\xBD\""));
    assert_true(api_utf8_valid(r.body, r.len));
    httpd_resp_free(&r);
    /* a chosen slave without an API: the JSON says REDIRECT, no Location */
    in.slave_api = "";
    api_json_instruction(&env, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.n_headers, 0);
    httpd_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reject_statuses),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_redirect_location_and_clean_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
