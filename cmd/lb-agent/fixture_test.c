/* Shared fixtures and waits of the agent tests: see fixture_test.h. */
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

h_agent main_agent;  /* shared by the tests that do not stop it */
nng_socket reports;  /* SUB: main_agent publishes here */
char report_url[64]; /* its address */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void need_etcd(void)
{
    if (h_etcd_url() == NULL) {
        fprintf(stderr, "LBCP_TEST_ETCD not set (run through tests/with-etcd.sh): skipped\n");
        skip();
    }
}

void assert_has(const char *s, const char *want)
{
    if (s == NULL || strstr(s, want) == NULL)
        fail_msg("'%s' does not contain '%s'", s != NULL ? s : "(null)", want);
}

/* Waits until the server key is present (want) or absent; ms it took, or -1. */
int64_t wait_key(const char *id, bool want, int timeout_ms)
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
Lb__Envelope *wait_report(bool (*pred)(const Lb__ServerLoad *, const void *), const void *arg,
                          int timeout_ms)
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

bool has_sessions(const Lb__ServerLoad *sl, const void *arg)
{
    return sl->sessions >= *(const uint32_t *)arg;
}

bool has_exited(const Lb__ServerLoad *sl, const void *arg)
{
    for (size_t i = 0; i < sl->n_exited_pids; i++) {
        if (sl->exited_pids[i] == *(const int32_t *)arg)
            return true;
    }
    return false;
}

/* Waits up to timeout_ms until no app process of this test remains; how many do. */
size_t wait_no_apps(int timeout_ms)
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

int group_setup(void **state)
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

int group_teardown(void **state)
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

int test_teardown(void **state)
{
    (void)state;
    /* the shared agent stays; anything else this test started goes */
    h_kill_all_but(main_agent.pid);
    return 0;
}

bool launch_ok(h_agent *a, const char *app, const char *session, int32_t *pid, char *err,
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

void stop_session(h_agent *a, const char *session)
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
