/*
 * Integration test of the real lb-agent binary against a real etcd (run by
 * tests/with-etcd.sh) with lb-echo as the app: config errors, registration,
 * launch, reuse, restart after a crash, refusals, malformed messages, stop and
 * concurrent launches. Lifecycle and sandbox: agent_life_test.c; warm pools
 * and exit reports: agent_pool_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture_test.h"
#include "wire/wire.h"

#include <dirent.h>
#include <errno.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- config errors: exit non-zero, file:line and key on stderr ---- */

static void config_case(const char *dir, const char *name, const char *yaml, const char *want1,
                        const char *want2)
{
    char path[512], want[600];
    char *err = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    h_write(path, yaml);
    int st = h_run_agent_config(path, 10000, &err);
    if (st <= 0) {
        free(err);
        fail_msg("%s: lb-agent exited %d, want non-zero", name, st);
    }
    snprintf(want, sizeof want, "%s:%s", path, want1);
    assert_has(err, want);
    assert_has(err, want2);
    free(err);
}

static void test_config_errors(void **state)
{
    (void)state;
    char dir[256];
    h_mkdtemp(dir, sizeof dir);
    config_case(dir, "syntax.yaml", "id: a\nzone: [z1\nregion: r\n", "3:", "did not find");
    config_case(dir, "type.yaml", "id: a\n\ncapacity: lots\n", "3: capacity", "lots");
    config_case(dir, "tmpl.yaml", "apps:\n  echo:\n    argv: [/bin/echo, --x, \"{foo}\"]\n",
                "3: apps.echo.argv[2]", "{foo}");
    config_case(dir, "unknown.yaml", "id: a\ncolour: red\n", "2: colour", "unknown key");
    config_case(dir, "nopath.yaml", "apps:\n  x:\n    argv: [no-such-program-here]\n",
                "3: apps.x.argv[0]", "not found in PATH");
    config_case(dir, "ports.yaml", "ports: {min: 30000, max: 20000}\n", "1: ports", "above max");
    if (geteuid() == 0)
        config_case(dir, "root.yaml", "apps:\n  x:\n    argv: [/bin/true]\n    user: root\n",
                    "4: apps.x.user", "will not run an app as root");
    config_case(dir, "pool.yaml",
                "apps:\n  x:\n    argv: [/bin/true, \"{session}\"]\n    pool: {min_ready: 1}\n",
                "4: apps.x.pool", "uses {session} cannot be pooled");
    config_case(dir, "nouser.yaml", "apps:\n  x:\n    argv: [/bin/true]\n    user: no-such-u\n",
                "4: apps.x.user", "no such user 'no-such-u'");
    config_case(dir, "limit.yaml", "apps:\n  x:\n    argv: [/bin/true]\n    limits: {stack: 1}\n",
                "4: apps.x.limits.stack", "unknown key");
    h_rmdir(dir);
}

/* ---- registration ---- */

static void test_registered(void **state)
{
    (void)state;
    need_etcd();
    assert_true(wait_key("t-main", true, 10000) >= 0);
    Lb__ServerInfo *si = h_server_info(PREFIX, "t-main");
    assert_non_null(si);
    assert_string_equal(si->id, "t-main");
    assert_string_equal(si->host, "127.0.0.1");
    assert_string_equal(si->agent_endpoint, main_agent.listen);
    assert_string_equal(si->zone, "z1");
    assert_string_equal(si->region, "r1");
    assert_string_equal(si->group, "primary");
    assert_int_equal(si->group_rank, 3);
    assert_int_equal(si->capacity, 7);
    assert_int_equal(si->n_apps, 7);
    assert_string_equal(si->apps[0], "echo");
    assert_int_equal(si->n_labels, 2);
    assert_string_equal(si->labels[0]->key, "gpu");
    assert_string_equal(si->labels[0]->value, "true");
    assert_non_null(si->resources);
    assert_true(si->resources->cores >= 1);
    assert_true(si->resources->mem_total > 0);
    assert_true(si->resources->mem_free > 0);
    assert_true(si->resources->disk_free > 0);
    assert_true(si->resources->arch[0] != '\0');
    assert_string_equal(si->resources->os, "Linux");
    assert_true(si->started_at > 0);
    lb__server_info__free_unpacked(si, NULL);
}

/* ---- launch, reuse, restart after a crash ---- */

static void test_launch_reuse_restart(void **state)
{
    (void)state;
    need_etcd();
    Lb__Envelope *r1 = h_launch(&main_agent, "echo", "s-1");
    assert_non_null(r1);
    assert_int_equal(r1->body_case, LB__ENVELOPE__BODY_LAUNCH_REPLY);
    Lb__LaunchReply *lr = r1->launch_reply;
    if (!lr->ok)
        fail_msg("launch failed: %s", lr->error);
    assert_false(lr->reused);
    Lb__ProcessId *p = lr->process;
    assert_true(p->pid > 0);
    assert_false(h_dead(p->pid));
    assert_string_equal(p->host, "127.0.0.1");
    assert_string_equal(p->server_id, "t-main");
    assert_true(p->started_at > 0);
    char want[128];
    snprintf(want, sizeof want, "pid=%d session=s-1 echo=hi", p->pid);
    assert_string_equal(h_echo(p->host, p->port, "hi"), want);
    uint32_t one = 1;
    Lb__Envelope *rep = wait_report(has_sessions, &one, 3000);
    assert_non_null(rep);
    assert_string_equal(rep->server_load->apps[0]->app, "echo");
    assert_true(rep->server_load->apps[0]->processes >= 1);
    assert_true(rep->server_load->launches >= 1);
    lb__envelope__free_unpacked(rep, NULL);

    Lb__Envelope *r2 = h_launch(&main_agent, "echo", "s-1");
    assert_non_null(r2);
    assert_true(r2->launch_reply->ok);
    assert_true(r2->launch_reply->reused);
    assert_int_equal(r2->launch_reply->process->pid, p->pid);
    assert_int_equal(r2->launch_reply->process->port, p->port);

    int32_t old = p->pid;
    kill(old, SIGKILL);
    assert_true(h_wait_dead(old, 3000));
    Lb__Envelope *r3 = h_launch(&main_agent, "echo", "s-1");
    assert_non_null(r3);
    if (!r3->launch_reply->ok)
        fail_msg("relaunch failed: %s", r3->launch_reply->error);
    assert_false(r3->launch_reply->reused);
    int32_t fresh = r3->launch_reply->process->pid;
    assert_true(fresh != old);
    assert_false(h_dead(fresh));
    snprintf(want, sizeof want, "pid=%d session=s-1 echo=again", fresh);
    assert_string_equal(h_echo("127.0.0.1", r3->launch_reply->process->port, "again"), want);
    rep = wait_report(has_exited, &old, 3000);
    assert_non_null(rep);
    lb__envelope__free_unpacked(rep, NULL);
    assert_true(h_stat(&main_agent, "agent_process_exits_total{app=\"echo\"}") >= 1);
    assert_true(h_stat(&main_agent, "agent_launches_total{app=\"echo\",result=\"ok\"}") >= 2);
    assert_true(h_stat(&main_agent, "agent_launches_total{app=\"echo\",result=\"reused\"}") >= 1);
    lb__envelope__free_unpacked(r1, NULL);
    lb__envelope__free_unpacked(r2, NULL);
    lb__envelope__free_unpacked(r3, NULL);
}

/* ---- refusals ---- */

static void expect_launch_error(const char *app, const char *session, const char *want)
{
    Lb__Envelope *r = h_launch(&main_agent, app, session);
    assert_non_null(r);
    assert_int_equal(r->body_case, LB__ENVELOPE__BODY_LAUNCH_REPLY);
    assert_false(r->launch_reply->ok);
    assert_null(r->launch_reply->process);
    assert_has(r->launch_reply->error, want);
    lb__envelope__free_unpacked(r, NULL);
}

static void test_refusals(void **state)
{
    (void)state;
    need_etcd();
    expect_launch_error(
        "nope", "s-2",
        "unknown app 'nope' (this agent offers: echo, shared, sleeper, slow, failer, orphaner, "
        "boxed)");
    expect_launch_error("echo", "../x", "invalid session_id '../x'");
    expect_launch_error("echo", "a b", "invalid session_id 'a b'");
    expect_launch_error("echo", "", "invalid session_id ''");
    expect_launch_error("echo", "x;rm -rf /", "invalid session_id");
    expect_launch_error("echo", "-p1", "invalid session_id '-p1'"); /* an option in argv */
    char longid[80];
    memset(longid, 'a', 65);
    longid[65] = '\0';
    expect_launch_error("echo", longid, "invalid session_id");
    assert_true(h_stat(&main_agent, "agent_launches_total{result=\"unknown_app\"}") >= 1);
}

static void test_start_failures(void **state)
{
    (void)state;
    need_etcd();
    /* never listens: killed after its ready_timeout */
    Lb__Envelope *r = h_launch(&main_agent, "sleeper", "s-slow");
    assert_non_null(r);
    assert_false(r->launch_reply->ok);
    assert_has(r->launch_reply->error, "did not accept connections");
    lb__envelope__free_unpacked(r, NULL);
    /* exits at once: its status in the error */
    expect_launch_error("failer", "s-fail", "exited during start-up: exit status 1");
    assert_true(h_stat(&main_agent, "agent_launches_total{app=\"sleeper\",result=\"timeout\"}") ==
                1);
}

/* ---- per_session: false: one process serves every session ---- */

static void test_shared_app(void **state)
{
    (void)state;
    need_etcd();
    Lb__Envelope *r1 = h_launch(&main_agent, "shared", "s-sh-1");
    Lb__Envelope *r2 = h_launch(&main_agent, "shared", "s-sh-2");
    assert_non_null(r1);
    assert_non_null(r2);
    assert_true(r1->launch_reply->ok);
    assert_true(r2->launch_reply->ok);
    assert_false(r1->launch_reply->reused);
    assert_true(r2->launch_reply->reused);
    assert_int_equal(r1->launch_reply->process->pid, r2->launch_reply->process->pid);
    lb__envelope__free_unpacked(r1, NULL);
    lb__envelope__free_unpacked(r2, NULL);
}

/* ---- stop ---- */

static void test_stop(void **state)
{
    (void)state;
    need_etcd();
    Lb__Envelope *r = h_launch(&main_agent, "echo", "s-stop");
    assert_non_null(r);
    assert_true(r->launch_reply->ok);
    int32_t pid = r->launch_reply->process->pid;
    lb__envelope__free_unpacked(r, NULL);
    Lb__StopRequest sr = LB__STOP_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    sr.session_id = "s-stop";
    env.body_case = LB__ENVELOPE__BODY_STOP_REQUEST;
    env.stop_request = &sr;
    r = h_call(&main_agent, &env);
    assert_non_null(r);
    assert_true(r->launch_reply->ok);
    lb__envelope__free_unpacked(r, NULL);
    assert_true(h_wait_dead(pid, 3000));
    sr.session_id = "s-none";
    r = h_call(&main_agent, &env);
    assert_non_null(r);
    assert_false(r->launch_reply->ok);
    assert_has(r->launch_reply->error, "no such session");
    lb__envelope__free_unpacked(r, NULL);
}

/* ---- malformed input: an error reply each time, and serving goes on ---- */

static void expect_raw_error(const void *buf, size_t len, lb_err code, const char *want)
{
    Lb__Envelope *r = h_call_raw(&main_agent, buf, len);
    assert_non_null(r);
    assert_int_equal(r->body_case, LB__ENVELOPE__BODY_ERROR);
    assert_int_equal(r->error->code, code);
    assert_has(r->error->message, want);
    lb__envelope__free_unpacked(r, NULL);
    /* the next good request is still served */
    assert_true(h_stat(&main_agent, "agent_rpc_errors_total{kind=\"decode\"}") >= 0);
}

static void test_bad_messages(void **state)
{
    (void)state;
    need_etcd();
    const char garbage[] = "\xff\xfe garbage \x01\x02\x03 not protobuf";
    expect_raw_error(garbage, sizeof garbage, LB_EPROTO, "not a valid Envelope");

    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    lr.app = "echo";
    lr.session_id = "s-truncated-request";
    env.version = WIRE_VERSION;
    env.request_id = 77;
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    uint8_t packed[256];
    size_t len = lb__envelope__pack(&env, packed);
    expect_raw_error(packed, len / 2, LB_EPROTO, "not a valid Envelope");

    size_t big = 1024 * 1024;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    memset(huge, 'x', big);
    expect_raw_error(huge, big, LB_ETOOBIG, "over the limit");
    free(huge);

    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    env.body_case = LB__ENVELOPE__BODY_SERVER_LOAD;
    env.server_load = &sl;
    len = lb__envelope__pack(&env, packed);
    expect_raw_error(packed, len, LB_EINVAL, "unexpected message server_load");

    assert_true(h_stat(&main_agent, "agent_rpc_errors_total{kind=\"decode\"}") >= 2);
    assert_true(h_stat(&main_agent, "agent_rpc_errors_total{kind=\"oversized\"}") >= 1);
    assert_true(h_stat(&main_agent, "agent_rpc_errors_total{kind=\"unexpected\"}") >= 1);
    Lb__Envelope *r = h_launch(&main_agent, "echo", "s-after-garbage");
    assert_non_null(r);
    assert_true(r->launch_reply->ok);
    lb__envelope__free_unpacked(r, NULL);
}

/* ---- a slow launch does not hold up other requests ---- */

static void *slow_launch(void *arg)
{
    (void)arg;
    h_agent *a = &main_agent;
    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    lr.app = "slow";
    lr.session_id = "s-slow-2";
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    return h_call(a, &env); /* its pid is never returned: the agent kills it */
}

static void test_concurrent(void **state)
{
    (void)state;
    need_etcd();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_launch, NULL), 0);
    usleep(50 * 1000);
    int64_t start = now_ms();
    assert_true(h_stat(&main_agent, "agent_reports_total") >= 1);
    Lb__Envelope *r = h_launch(&main_agent, "echo", "s-during-slow");
    int64_t took = now_ms() - start;
    void *slow = NULL;
    pthread_join(t, &slow);
    /* read everything, free, then assert: a failed assertion must not leak */
    bool r_ok = r != NULL && r->launch_reply->ok;
    bool slow_ok = slow != NULL && ((Lb__Envelope *)slow)->launch_reply->ok;
    char slow_err[256] = "";
    if (slow != NULL && ((Lb__Envelope *)slow)->launch_reply->error != NULL)
        snprintf(slow_err, sizeof slow_err, "%s", ((Lb__Envelope *)slow)->launch_reply->error);
    if (r != NULL)
        lb__envelope__free_unpacked(r, NULL);
    if (slow != NULL)
        lb__envelope__free_unpacked(slow, NULL);
    assert_true(r_ok);
    assert_non_null(slow);
    if (slow_ok) /* it never listens: only another program on its port could make it "ready" */
        fail_msg("a launch of an app that never listens succeeded");
    assert_has(slow_err, "did not accept connections");
    if (took > 2000) /* the slow app's ready_timeout is 3 s */
        fail_msg("requests waited %lld ms behind a slow launch", (long long)took);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_config_errors, test_teardown),
        cmocka_unit_test_teardown(test_registered, test_teardown),
        cmocka_unit_test_teardown(test_launch_reuse_restart, test_teardown),
        cmocka_unit_test_teardown(test_refusals, test_teardown),
        cmocka_unit_test_teardown(test_start_failures, test_teardown),
        cmocka_unit_test_teardown(test_shared_app, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
        cmocka_unit_test_teardown(test_bad_messages, test_teardown),
        cmocka_unit_test_teardown(test_concurrent, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
