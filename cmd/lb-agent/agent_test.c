/*
 * Integration test of the real lb-agent binary against a real etcd (run by
 * tests/with-etcd.sh) with lb-echo as the app: registration, launch, reuse,
 * restart after a crash, refusals, malformed messages, load reports, stop,
 * shutdown on SIGTERM and lease expiry after SIGKILL, and config errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness_test.h"
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

#define PREFIX "/agent_test/"

static h_agent main_agent;  /* shared by the tests that do not stop it */
static nng_socket reports;  /* SUB: main_agent publishes here */
static char report_url[64]; /* its address */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void need_etcd(void)
{
    if (h_etcd_url() == NULL) {
        fprintf(stderr, "LBCP_TEST_ETCD not set (run through tests/with-etcd.sh): skipped\n");
        skip();
    }
}

static void assert_has(const char *s, const char *want)
{
    if (s == NULL || strstr(s, want) == NULL)
        fail_msg("'%s' does not contain '%s'", s != NULL ? s : "(null)", want);
}

/* Waits until the server key is present (want) or absent; ms it took, or -1. */
static int64_t wait_key(const char *id, bool want, int timeout_ms)
{
    int64_t start = now_ms();
    while (now_ms() - start < timeout_ms) {
        Lb__ServerInfo *si = h_server_info(PREFIX, id);
        bool present = si != NULL;
        if (si != NULL)
            lb__server_info__free_unpacked(si, NULL);
        if (present == want)
            return now_ms() - start;
        usleep(50 * 1000);
    }
    return -1;
}

/* A load report of main_agent matching pred within timeout_ms. */
static Lb__Envelope *wait_report(bool (*pred)(const Lb__ServerLoad *, const void *),
                                 const void *arg, int timeout_ms)
{
    int64_t start = now_ms();
    while (now_ms() - start < timeout_ms) {
        nng_msg *m = NULL;
        if (nng_recvmsg(reports, &m, 0) != 0)
            continue;
        Lb__Envelope *env = lb__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        nng_msg_free(m);
        if (env != NULL && env->body_case == LB__ENVELOPE__BODY_SERVER_LOAD &&
            strcmp(env->server_load->server_id, main_agent.id) == 0 && pred(env->server_load, arg))
            return env;
        if (env != NULL)
            lb__envelope__free_unpacked(env, NULL);
    }
    return NULL;
}

static bool has_sessions(const Lb__ServerLoad *sl, const void *arg)
{
    return sl->sessions >= *(const uint32_t *)arg;
}

static bool has_exited(const Lb__ServerLoad *sl, const void *arg)
{
    for (size_t i = 0; i < sl->n_exited_pids; i++) {
        if (sl->exited_pids[i] == *(const int32_t *)arg)
            return true;
    }
    return false;
}

/* Waits up to timeout_ms until no app process of this test remains; how many do. */
static size_t wait_no_apps(int timeout_ms)
{
    pid_t pids[16];
    int64_t start = now_ms();
    size_t n;
    while ((n = h_tagged_apps(pids, 16)) > 0 && now_ms() - start < timeout_ms)
        usleep(20 * 1000);
    for (size_t i = 0; i < n && i < 16; i++)
        fprintf(stderr, "app process left behind: pid %d\n", (int)pids[i]);
    return n;
}

static int group_setup(void **state)
{
    (void)state;
    atexit(h_kill_all);
    if (h_etcd_url() == NULL)
        return 0;
    char url[64], extra[128];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%u", h_free_port());
    snprintf(report_url, sizeof report_url, "%s", url);
    if (nng_sub0_open(&reports) != 0 || nng_listen(reports, url, NULL, 0) != 0)
        return -1;
    nng_socket_set(reports, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_ms(reports, NNG_OPT_RECVTIMEO, 200);
    snprintf(extra, sizeof extra, "report: [%s]\n", url);
    h_agent_start(&main_agent, "t-main", "2s", extra);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (main_agent.pid > 0) {
        kill(main_agent.pid, SIGTERM);
        int st = h_agent_wait(&main_agent, 8000);
        if (st != 0) { /* e.g. a sanitizer report at exit */
            char *log = h_read(main_agent.log);
            fprintf(stderr, "main agent exited %d; its log:\n%s\n", st, log);
            free(log);
            rc = -1;
        }
        h_agent_close(&main_agent);
        nng_close(reports);
        if (wait_no_apps(3000) > 0) { /* every app must go with its agent */
            fprintf(stderr, "app processes outlived the agents of this test\n");
            rc = -1;
        }
    }
    h_kill_all();
    etcd_client *c = h_etcd();
    etcd_close(&c);
    return rc;
}

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

/* ---- agent death: lease expiry after SIGKILL, clean exit on SIGTERM ---- */

static void sigkill_agent(const char *id, const char *extra)
{
    need_etcd();
    h_agent a;
    h_agent_start(&a, id, "2s", extra);
    assert_true(wait_key(id, true, 10000) >= 0);
    size_t before = h_tagged_apps(NULL, 0);
    Lb__Envelope *r = h_launch(&a, "orphaner", "s-orphan");
    assert_non_null(r);
    bool ok = r->launch_reply->ok;
    lb__envelope__free_unpacked(r, NULL);
    assert_true(ok);
    /* the app and its setsid grandchild (the main agent's apps are counted too) */
    int64_t t0 = now_ms();
    while (h_tagged_apps(NULL, 0) < before + 2 && now_ms() - t0 < 3000)
        usleep(20 * 1000);
    assert_true(h_tagged_apps(NULL, 0) >= before + 2);
    kill(a.pid, SIGKILL);
    assert_int_equal(h_agent_wait(&a, 3000), 128 + SIGKILL);
    /* the parent-death signal and the guard end both within a moment */
    t0 = now_ms();
    while (h_tagged_apps(NULL, 0) > before && now_ms() - t0 < 3000)
        usleep(20 * 1000);
    size_t left = h_tagged_apps(NULL, 0) - before;
    int64_t took = wait_key(id, false, 8000);
    h_agent_close(&a);
    if (left > 0)
        fail_msg("%zu app processes outlived their SIGKILLed agent", left);
    if (took < 0)
        fail_msg("server key still in etcd 8 s after SIGKILL (lease_ttl 2s)");
    assert_true(took > 200); /* gone by expiry, not by a revoke */
}

static void test_sigkill_agent(void **state)
{
    (void)state;
    sigkill_agent("t-kill", NULL);
}

/* Without cgroups the guard finds the grandchild by the instance marker. */
static void test_sigkill_agent_no_cgroup(void **state)
{
    (void)state;
    sigkill_agent("t-kill-nocg", "cgroup: off\n");
}

/* Agent and guard both SIGKILLed: the setsid grandchild survives them (its
 * parent got the parent-death signal), and the restarted agent stops it. */
static void test_restart_stops_leftovers(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    h_agent_start(&a, "t-restart", "2s", NULL);
    size_t before = h_tagged_apps(NULL, 0);
    Lb__Envelope *r = h_launch(&a, "orphaner", "s-left");
    assert_non_null(r);
    bool ok = r->launch_reply->ok;
    int32_t app = ok ? r->launch_reply->process->pid : 0;
    lb__envelope__free_unpacked(r, NULL);
    assert_true(ok);
    pid_t guard = h_child_named(a.pid, "lb-agent-guard");
    assert_true(guard > 0);
    kill(guard, SIGKILL);
    assert_true(h_wait_dead(guard, 3000));
    kill(a.pid, SIGKILL);
    assert_int_equal(h_agent_wait(&a, 3000), 128 + SIGKILL);
    assert_true(h_wait_dead(app, 3000)); /* parent-death signal */
    usleep(300 * 1000);
    assert_int_equal(h_tagged_apps(NULL, 0), before + 1); /* the grandchild */
    h_agent_restart(&a);
    int64_t t0 = now_ms();
    while (h_tagged_apps(NULL, 0) > before && now_ms() - t0 < 5000)
        usleep(20 * 1000);
    size_t left = h_tagged_apps(NULL, 0) - before;
    kill(a.pid, SIGTERM);
    int st = h_agent_wait(&a, 8000);
    char *log = h_read(a.log);
    bool said = strstr(log, "stopped processes a previous agent left running") != NULL;
    if (left > 0 || st != 0 || !said)
        fprintf(stderr, "%s", log);
    free(log);
    h_agent_close(&a);
    assert_int_equal(left, 0);
    assert_int_equal(st, 0);
    assert_true(said);
}

/* The value of "Key:" in /proc/PID/status, or of a /proc/PID/limits row. */
static void proc_line(int pid, const char *file, const char *prefix, char *out, size_t cap)
{
    char path[64], *text;
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    text = h_read(path);
    const char *p = strstr(text, prefix);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(prefix);
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\n");
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    }
    free(text);
}

/* An app runs as its configured user and group with its limits. */
static void test_sandbox_user_limits(void **state)
{
    (void)state;
    need_etcd();
    if (geteuid() != 0)
        skip(); /* only root can run an app as another user */
    Lb__Envelope *r = h_launch(&main_agent, "boxed", "s-boxed");
    assert_non_null(r);
    bool ok = r->launch_reply->ok;
    int pid = ok ? r->launch_reply->process->pid : 0;
    if (!ok)
        fprintf(stderr, "boxed: %s\n", r->launch_reply->error);
    lb__envelope__free_unpacked(r, NULL);
    assert_true(ok);
    char v[256];
    proc_line(pid, "status", "Uid:", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    proc_line(pid, "status", "Gid:", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    proc_line(pid, "status", "Groups:", v, sizeof v);
    assert_string_equal(v, "65534 ");
    proc_line(pid, "limits", "Max open files", v, sizeof v);
    assert_has(v, "256                  256");
    proc_line(pid, "limits", "Max processes", v, sizeof v);
    assert_has(v, "4096                 4096");
    proc_line(pid, "limits", "Max address space", v, sizeof v);
    assert_has(v, "1073741824           1073741824");
    proc_line(pid, "limits", "Max cpu time", v, sizeof v);
    assert_has(v, "60                   60");
}

/* The app gets no descriptor of the agent and exactly its configured
 * environment, in a cgroup of its own where the machine allows one. */
static void test_sandbox_fds_env(void **state)
{
    (void)state;
    need_etcd();
    Lb__Envelope *r = h_launch(&main_agent, "echo", "s-fds");
    assert_non_null(r);
    bool ok = r->launch_reply->ok;
    int32_t pid = ok ? r->launch_reply->process->pid : 0;
    lb__envelope__free_unpacked(r, NULL);
    assert_true(ok);
    char dir[64], path[320], link[256];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int sockets = 0, others = 0;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        link[len > 0 ? len : 0] = '\0';
        if (strncmp(link, "socket:", 7) == 0)
            sockets++; /* its listener */
        else if (strcmp(link, "anon_inode:[signalfd]") != 0) {
            fprintf(stderr, "unexpected descriptor %d -> %s\n", fd, link);
            others++;
        }
    }
    closedir(d);
    assert_int_equal(sockets, 1);
    assert_int_equal(others, 0);
    snprintf(path, sizeof path, "/proc/%d/fd/0", (int)pid);
    ssize_t len = readlink(path, link, sizeof link - 1);
    link[len > 0 ? len : 0] = '\0';
    assert_string_equal(link, "/dev/null");

    char *env = NULL;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    env = h_read(path);
    bool in_cgroup = strstr(env, "/lbcp-agent-t-main-") != NULL;
    free(env);
    char *alog = h_read(main_agent.log);
    bool cg_said = strstr(alog, "a cgroup per process") != NULL;
    free(alog);
    assert_true(in_cgroup == cg_said);
    int vars = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        const char *v = buf + i;
        vars++;
        if (strncmp(v, "PATH=", 5) != 0 && strncmp(v, "LBCP_AGENT_TEST_TAG=", 20) != 0 &&
            strcmp(v, "LB_TEST=x") != 0 &&
            !(strncmp(v, "LBCP_AGENT_INSTANCE=", 20) == 0 && !in_cgroup))
            fail_msg("unexpected variable in the app's environment: %s", v);
    }
    assert_int_equal(vars, in_cgroup ? 3 : 4);
}

static void test_sigterm_agent(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    h_agent_start(&a, "t-term", "5s", NULL);
    assert_true(wait_key("t-term", true, 10000) >= 0);
    int32_t pids[2];
    const char *sessions[2] = {"s-a", "s-b"};
    for (int i = 0; i < 2; i++) {
        Lb__Envelope *r = h_launch(&a, "echo", sessions[i]);
        assert_non_null(r);
        assert_true(r->launch_reply->ok);
        pids[i] = r->launch_reply->process->pid;
        lb__envelope__free_unpacked(r, NULL);
    }
    kill(a.pid, SIGTERM);
    int st = h_agent_wait(&a, 8000);
    char *log = h_read(a.log);
    if (st != 0) {
        fprintf(stderr, "%s", log);
        free(log);
        fail_msg("lb-agent exited %d after SIGTERM, want 0", st);
    }
    free(log);
    for (int i = 0; i < 2; i++)
        assert_true(h_wait_dead(pids[i], 500));
    Lb__ServerInfo *si = h_server_info(PREFIX, "t-term"); /* revoked, not expired */
    if (si != NULL)
        lb__server_info__free_unpacked(si, NULL);
    assert_null(si);
    h_agent_close(&a);
}

/* ---- etcd unreachable at start: keep serving, keep retrying ---- */

static void test_etcd_down(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    /* port 1: nothing listens there */
    h_agent_start_etcd(&a, "t-noetcd", "2s", "http://127.0.0.1:1", NULL);
    /* it reports although etcd is down (the counter exists after the first) */
    int64_t t0 = now_ms();
    while (h_stat(&a, "agent_reports_total") < 1 && now_ms() - t0 < 10000)
        usleep(50 * 1000);
    assert_true(h_stat(&a, "agent_reports_total") >= 1);
    Lb__Envelope *r = h_launch(&a, "echo", "s-noetcd");
    assert_non_null(r);
    assert_true(r->launch_reply->ok);
    lb__envelope__free_unpacked(r, NULL);
    usleep(500 * 1000);
    assert_false(h_dead(a.pid)); /* still up, still retrying */
    kill(a.pid, SIGTERM);
    assert_int_equal(h_agent_wait(&a, 8000), 0);
    char *log = h_read(a.log);
    assert_has(log, "etcd unreachable"); /* said once, at start */
    free(log);
    h_agent_close(&a);
}

/* ---- SIGHUP: reload ---- */

/* Replaces the first `from` in text with `to` (text is reallocated). */
static char *replace(char *text, const char *from, const char *to)
{
    char *p = strstr(text, from);
    if (p == NULL)
        fail_msg("'%s' not in the config", from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = calloc(1, n);
    snprintf(out, n, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    free(text);
    return out;
}

static bool log_has(h_agent *a, const char *want)
{
    char *log = h_read(a->log);
    bool has = strstr(log, want) != NULL;
    free(log);
    return has;
}

static bool wait_log(h_agent *a, const char *want, int timeout_ms)
{
    int64_t t0 = now_ms();
    while (!log_has(a, want)) {
        if (now_ms() - t0 > timeout_ms)
            return false;
        usleep(20 * 1000);
    }
    return true;
}

static bool launch_ok(h_agent *a, const char *app, const char *session, int32_t *pid, char *err,
                      size_t cap)
{
    Lb__Envelope *r = h_launch(a, app, session);
    bool ok = r != NULL && r->launch_reply->ok;
    if (pid != NULL)
        *pid = ok ? r->launch_reply->process->pid : 0;
    if (err != NULL)
        snprintf(err, cap, "%s", r != NULL && r->launch_reply->error ? r->launch_reply->error : "");
    if (r != NULL)
        lb__envelope__free_unpacked(r, NULL);
    return ok;
}

static void test_sighup_reload(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    h_agent_start(&a, "t-reload", "2s", NULL);
    assert_true(wait_key("t-reload", true, 10000) >= 0);
    size_t before = h_tagged_apps(NULL, 0);
    int32_t kept = 0;
    assert_true(launch_ok(&a, "echo", "s-kept", &kept, NULL, 0));
    char *cfg = h_read(a.config);
    cfg = replace(cfg, "capacity: 7", "capacity: 9");
    cfg = replace(cfg, "log_level: debug", "log_level: warn");
    cfg = replace(cfg, "  shared:", "  echo2:");
    cfg = replace(cfg, "rack: r7", "rack: r8");
    h_write(a.config, cfg);
    free(cfg);
    kill(a.pid, SIGHUP);
    assert_true(wait_log(&a, "config reloaded", 5000));
    Lb__ServerInfo *si = NULL;
    int64_t t0 = now_ms();
    while (now_ms() - t0 < 5000) {
        si = h_server_info(PREFIX, "t-reload");
        if (si != NULL && si->capacity == 9)
            break;
        if (si != NULL)
            lb__server_info__free_unpacked(si, NULL);
        si = NULL;
        usleep(50 * 1000);
    }
    assert_non_null(si);
    bool has_echo2 = false, has_shared = false;
    for (size_t i = 0; i < si->n_apps; i++) {
        has_echo2 = has_echo2 || strcmp(si->apps[i], "echo2") == 0;
        has_shared = has_shared || strcmp(si->apps[i], "shared") == 0;
    }
    char rack[16] = "";
    for (size_t i = 0; i < si->n_labels; i++)
        if (strcmp(si->labels[i]->key, "rack") == 0)
            snprintf(rack, sizeof rack, "%s", si->labels[i]->value);
    lb__server_info__free_unpacked(si, NULL);
    assert_true(has_echo2);
    assert_false(has_shared);
    assert_string_equal(rack, "r8");
    char err[256];
    assert_false(launch_ok(&a, "shared", "s-gone", NULL, err, sizeof err));
    assert_has(err, "unknown app 'shared'");
    assert_true(launch_ok(&a, "echo2", "s-new", NULL, NULL, 0));
    assert_false(log_has(&a, "app=echo2 session=s-new")); /* warn: info lines are gone */
    assert_false(h_dead(kept));                           /* the app it kept serves on */
    assert_true(launch_ok(&a, "echo", "s-kept", NULL, NULL, 0));

    /* a bad file is rejected with file:line and the running config stays */
    cfg = h_read(a.config);
    cfg = replace(cfg, "capacity: 9", "capacity: lots");
    h_write(a.config, cfg);
    free(cfg);
    kill(a.pid, SIGHUP);
    assert_true(wait_log(&a, "reload rejected", 5000));
    char want[400];
    snprintf(want, sizeof want, "%s:", a.config);
    char *log = h_read(a.log);
    const char *rej = strstr(log, "reload rejected");
    bool named = rej != NULL && strstr(rej, want) != NULL && strstr(rej, "capacity") != NULL;
    free(log);
    assert_true(named);
    assert_true(launch_ok(&a, "echo2", "s-after-bad", NULL, NULL, 0));
    assert_false(h_dead(a.pid));
    kill(a.pid, SIGTERM);
    assert_int_equal(h_agent_wait(&a, 8000), 0);
    h_agent_close(&a);
    t0 = now_ms();
    while (h_tagged_apps(NULL, 0) > before && now_ms() - t0 < 3000)
        usleep(20 * 1000);
    assert_int_equal(h_tagged_apps(NULL, 0), before);
}

/* ---- SIGTERM: drain ---- */

static void stop_session(h_agent *a, const char *session)
{
    Lb__StopRequest sr = LB__STOP_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    sr.session_id = (char *)session;
    env.body_case = LB__ENVELOPE__BODY_STOP_REQUEST;
    env.stop_request = &sr;
    Lb__Envelope *r = h_call(a, &env);
    bool ok = r != NULL && r->launch_reply->ok;
    if (r != NULL)
        lb__envelope__free_unpacked(r, NULL);
    assert_true(ok);
}

static void test_sigterm_drain(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    h_agent_start(&a, "t-drain", "2s", "shutdown_grace: 20s\n");
    int32_t p1 = 0, p2 = 0;
    assert_true(launch_ok(&a, "echo", "s-d1", &p1, NULL, 0));
    assert_true(launch_ok(&a, "echo", "s-d2", &p2, NULL, 0));
    kill(a.pid, SIGTERM);
    assert_true(wait_log(&a, "draining", 3000));
    usleep(300 * 1000);
    /* held sessions keep serving; no new session */
    assert_false(h_dead(a.pid));
    char want[64];
    snprintf(want, sizeof want, "pid=%d session=s-d1 echo=still", p1);
    Lb__Envelope *r = h_launch(&a, "echo", "s-d1"); /* a sticky repeat is answered */
    bool reused = r != NULL && r->launch_reply->ok && r->launch_reply->reused;
    unsigned port = reused ? r->launch_reply->process->port : 0;
    if (r != NULL)
        lb__envelope__free_unpacked(r, NULL);
    assert_true(reused);
    assert_string_equal(h_echo("127.0.0.1", port, "still"), want);
    char err[256];
    assert_false(launch_ok(&a, "echo", "s-d3", NULL, err, sizeof err));
    assert_has(err, "draining");
    stop_session(&a, "s-d1"); /* released */
    assert_true(h_wait_dead(p1, 3000));
    usleep(300 * 1000);
    assert_false(h_dead(a.pid)); /* s-d2 still held */
    assert_false(h_dead(p2));
    int64_t t0 = now_ms();
    stop_session(&a, "s-d2"); /* the last one: the agent goes */
    assert_int_equal(h_agent_wait(&a, 5000), 0);
    if (now_ms() - t0 > 3000)
        fail_msg("drain ended %lld ms after the last release", (long long)(now_ms() - t0));
    assert_true(h_dead(p2));
    assert_true(log_has(&a, "drained: no session left"));
    h_agent_close(&a);
}

static void test_sigterm_grace_ends(void **state)
{
    (void)state;
    need_etcd();
    h_agent a;
    h_agent_start(&a, "t-grace", "2s", "shutdown_grace: 1s\n");
    int32_t p1 = 0;
    assert_true(launch_ok(&a, "echo", "s-g1", &p1, NULL, 0));
    int64_t t0 = now_ms();
    kill(a.pid, SIGTERM);
    assert_int_equal(h_agent_wait(&a, 8000), 0);
    int64_t took = now_ms() - t0;
    assert_true(h_dead(p1));
    assert_true(log_has(&a, "shutdown_grace over"));
    h_agent_close(&a);
    if (took < 900 || took > 5000)
        fail_msg("the agent left %lld ms after SIGTERM, want about its 1 s grace", (long long)took);
}

/* ---- warm pools ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True when a report of server id sent from now on says app has want ready
 * processes within timeout_ms (older reports still queued do not count). */
static bool wait_ready_count(const char *id, const char *app, uint32_t want, int timeout_ms)
{
    int64_t start = now_ms(), since = wall_ms();
    while (now_ms() - start < timeout_ms) {
        nng_msg *m = NULL;
        if (nng_recvmsg(reports, &m, 0) != 0)
            continue;
        Lb__Envelope *env = lb__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        nng_msg_free(m);
        bool ok = false;
        if (env != NULL && env->body_case == LB__ENVELOPE__BODY_SERVER_LOAD &&
            strcmp(env->server_load->server_id, id) == 0 && env->server_load->at_ms >= since) {
            for (size_t i = 0; i < env->server_load->n_apps; i++) {
                const Lb__AppLoad *al = env->server_load->apps[i];
                ok = ok || (strcmp(al->app, app) == 0 && al->ready == want);
            }
        }
        if (env != NULL)
            lb__envelope__free_unpacked(env, NULL);
        if (ok)
            return true;
    }
    return false;
}

/* Live app processes of this test whose command line holds word. */
static size_t pids_with(const char *word, pid_t *out, size_t cap)
{
    pid_t all[256];
    size_t n = h_tagged_apps(all, 256), k = 0;
    for (size_t i = 0; i < n && i < 256; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)all[i]);
        FILE *f = fopen(path, "r");
        char buf[1024];
        size_t len = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        for (size_t j = 0; j < len; j++)
            buf[j] = buf[j] == '\0' ? ' ' : buf[j];
        buf[len] = '\0';
        if (strstr(buf, word) != NULL && k < cap)
            out[k++] = all[i];
    }
    return k;
}

static bool in_set(pid_t p, const pid_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == p)
            return true;
    return false;
}

static void test_warm_pool(void **state)
{
    (void)state;
    need_etcd();
    char extra[1024], url[128];
    /* the group's report socket: this agent publishes there too */
    snprintf(url, sizeof url, "%s", report_url);
    snprintf(extra, sizeof extra,
             "  pooled:\n    argv: [%s/lb-echo, --port, \"{port}\", --session, warm-%d]\n"
             "    pool: {min_ready: 2, max_ready: 3}\n"
             "report: [%s]\nshutdown_grace: 20s\n",
             h_bin(), (int)getpid(), url);
    h_agent a;
    h_agent_start(&a, "t-pool", "2s", extra);
    char word[32];
    snprintf(word, sizeof word, "warm-%d", (int)getpid());
    /* filled at start */
    assert_true(wait_ready_count("t-pool", "pooled", 2, 10000));
    pid_t before[16];
    size_t n_before = pids_with(word, before, 16);
    assert_int_equal(n_before, 2);
    /* a first-time request is served by a process that existed before it */
    int32_t p1 = 0;
    assert_true(launch_ok(&a, "pooled", "s-p1", &p1, NULL, 0));
    assert_true(in_set(p1, before, n_before));
    assert_int_equal(h_stat(&a, "agent_pool_hits_total{app=\"pooled\"}"), 1);
    /* refilled after the hand-out */
    assert_true(wait_ready_count("t-pool", "pooled", 2, 10000));
    pid_t now[16];
    size_t n_now = pids_with(word, now, 16);
    assert_int_equal(n_now, 3); /* the handed-out one and two ready */
    /* a killed pool process is replaced */
    pid_t victim = 0;
    for (size_t i = 0; i < n_now; i++)
        if (now[i] != p1)
            victim = now[i];
    assert_true(victim > 0);
    kill(victim, SIGKILL);
    assert_true(h_wait_dead(victim, 3000));
    int64_t t0 = now_ms();
    while (now_ms() - t0 < 10000) {
        n_now = pids_with(word, now, 16);
        if (n_now == 3 && !in_set(victim, now, n_now))
            break;
        usleep(50 * 1000);
    }
    assert_int_equal(n_now, 3);
    assert_false(in_set(victim, now, n_now));
    assert_true(wait_ready_count("t-pool", "pooled", 2, 10000));
    /* one that closes its listener but lives on (lb-echo on SIGUSR1) is found
     * by the pool thread's probe (a hand-out no longer connects) and replaced */
    int64_t replaced = h_stat(&a, "agent_replaced_dead_processes_total");
    if (replaced < 0) /* not created yet */
        replaced = 0;
    pid_t wedged = 0;
    for (size_t i = 0; i < n_now; i++)
        if (now[i] != p1)
            wedged = now[i];
    assert_true(wedged > 0);
    kill(wedged, SIGUSR1);
    assert_true(h_wait_dead(wedged, 5000)); /* probed each second; 5x that */
    assert_int_equal(h_stat(&a, "agent_replaced_dead_processes_total"), replaced + 1);
    assert_true(wait_ready_count("t-pool", "pooled", 2, 10000));
    /* draining shrinks the pool; the held session keeps its process */
    kill(a.pid, SIGTERM);
    assert_true(wait_ready_count("t-pool", "pooled", 0, 10000));
    t0 = now_ms();
    while (pids_with(word, now, 16) > 1 && now_ms() - t0 < 5000)
        usleep(50 * 1000);
    n_now = pids_with(word, now, 16);
    assert_int_equal(n_now, 1);
    assert_int_equal(now[0], p1);
    stop_session(&a, "s-p1");
    assert_int_equal(h_agent_wait(&a, 8000), 0);
    h_agent_close(&a);
    assert_int_equal(pids_with(word, now, 16), 0);
}

/* An exit is reported at once, not at the next periodic report (here an hour
 * away), so masters stop sending clients to a dead process. */
static void test_exit_reported_at_once(void **state)
{
    (void)state;
    need_etcd();
    char extra[256];
    snprintf(extra, sizeof extra, "report: [%s]\nreport_interval: 1h\n", report_url);
    h_agent a;
    h_agent_start(&a, "t-exit", "2s", extra);
    int32_t pid = 0;
    assert_true(launch_ok(&a, "echo", "s-exit", &pid, NULL, 0));
    int64_t t0 = now_ms();
    kill(pid, SIGKILL);
    bool seen = false;
    while (!seen && now_ms() - t0 < 3000) {
        nng_msg *m = NULL;
        if (nng_recvmsg(reports, &m, 0) != 0)
            continue;
        Lb__Envelope *env = lb__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        nng_msg_free(m);
        if (env != NULL && env->body_case == LB__ENVELOPE__BODY_SERVER_LOAD &&
            strcmp(env->server_load->server_id, "t-exit") == 0)
            seen = has_exited(env->server_load, &pid);
        if (env != NULL)
            lb__envelope__free_unpacked(env, NULL);
    }
    int64_t took = now_ms() - t0;
    kill(a.pid, SIGTERM);
    assert_int_equal(h_agent_wait(&a, 8000), 0);
    h_agent_close(&a);
    if (!seen)
        fail_msg("no report named the exited pid %d within 3 s (report_interval 1h)", (int)pid);
    fprintf(stderr, "exit reported %lld ms after the kill\n", (long long)took);
}

static int test_teardown(void **state)
{
    (void)state;
    /* the shared agent stays; anything else this test started goes */
    h_kill_all_but(main_agent.pid);
    return 0;
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
        cmocka_unit_test_teardown(test_sandbox_fds_env, test_teardown),
        cmocka_unit_test_teardown(test_sandbox_user_limits, test_teardown),
        cmocka_unit_test_teardown(test_sigkill_agent, test_teardown),
        cmocka_unit_test_teardown(test_sigkill_agent_no_cgroup, test_teardown),
        cmocka_unit_test_teardown(test_restart_stops_leftovers, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_agent, test_teardown),
        cmocka_unit_test_teardown(test_sighup_reload, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_drain, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_grace_ends, test_teardown),
        cmocka_unit_test_teardown(test_warm_pool, test_teardown),
        cmocka_unit_test_teardown(test_exit_reported_at_once, test_teardown),
        cmocka_unit_test_teardown(test_etcd_down, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
