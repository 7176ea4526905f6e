/*
 * The real lb-agent's life and death against a real etcd: SIGKILL (apps die
 * with it, with and without cgroups; a restart stops leftovers), the sandbox
 * (user, limits, fds, environment), SIGTERM, etcd unreachable at start,
 * SIGHUP reload, SIGTERM drain and its grace.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
    /* the child set its ids by raw calls: the agent itself is still root */
    proc_line(main_agent.pid, "status", "Uid:", v, sizeof v);
    assert_string_equal(v, "0\t0\t0\t0");
    proc_line(main_agent.pid, "status", "Groups:", v, sizeof v);
    assert_string_not_equal(v, "65534 ");
}

/* A step between clone and exec that fails is named in the launch's error,
 * and the agent goes on: here the app's binary vanished after the config was
 * read, so exec fails. */
static void test_spawn_failure_named(void **state)
{
    (void)state;
    need_etcd();
    char dir[] = "/tmp/lbcp-vanish-XXXXXX", bin[64], extra[160];
    assert_non_null(mkdtemp(dir));
    snprintf(bin, sizeof bin, "%s/app", dir);
    h_write(bin, "#!/bin/sh\nexit 0\n");
    assert_int_equal(chmod(bin, 0755), 0);
    snprintf(extra, sizeof extra, "  vanish:\n    argv: [%s]\n", bin);
    h_agent a;
    h_agent_start(&a, "t-vanish", "2s", extra);
    assert_true(wait_key("t-vanish", true, 10000) >= 0);
    assert_int_equal(unlink(bin), 0);
    rmdir(dir);
    Lb__Envelope *r = h_launch(&a, "vanish", "s-vanish");
    assert_non_null(r);
    assert_false(r->launch_reply->ok);
    assert_has(r->launch_reply->error, "exec: No such file or directory");
    lb__envelope__free_unpacked(r, NULL);
    r = h_launch(&a, "echo", "s-after-vanish"); /* the spawner still works */
    assert_non_null(r);
    bool ok = r->launch_reply->ok;
    lb__envelope__free_unpacked(r, NULL);
    kill(a.pid, SIGTERM);
    h_agent_wait(&a, 10000);
    h_agent_close(&a);
    assert_true(ok);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sandbox_fds_env, test_teardown),
        cmocka_unit_test_teardown(test_sandbox_user_limits, test_teardown),
        cmocka_unit_test_teardown(test_spawn_failure_named, test_teardown),
        cmocka_unit_test_teardown(test_sigkill_agent, test_teardown),
        cmocka_unit_test_teardown(test_sigkill_agent_no_cgroup, test_teardown),
        cmocka_unit_test_teardown(test_restart_stops_leftovers, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_agent, test_teardown),
        cmocka_unit_test_teardown(test_sighup_reload, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_drain, test_teardown),
        cmocka_unit_test_teardown(test_sigterm_grace_ends, test_teardown),
        cmocka_unit_test_teardown(test_etcd_down, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
