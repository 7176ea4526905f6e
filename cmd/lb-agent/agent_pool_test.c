/*
 * The real lb-agent's warm pools (filled at start, refilled after a hand-out,
 * a killed pool process replaced) and its process-exit reports sent at once.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_warm_pool, test_teardown),
        cmocka_unit_test_teardown(test_exit_reported_at_once, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
