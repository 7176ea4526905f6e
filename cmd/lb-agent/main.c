/*
 * lb-agent --config FILE [--log-level L]
 *
 * Read config -> block signals -> serve RPC, open the report socket, start
 * registration -> main loop -> shutdown. The main thread owns the signals:
 * SIGTERM, SIGINT and SIGCHLD are blocked in every thread (they are blocked
 * before any thread exists, and threads inherit the mask) and taken here with
 * sigtimedwait, whose timeout is also the report period. So reaping, periodic
 * reports and shutdown all happen on this one thread without signal handlers.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 2 on a usage or configuration error,
 * 1 when the agent cannot start (endpoint in use, ...).
 */
#include "agent.h"
#include "ops.h"

#include "common/util.h"
#include "config/daemon.h"
#include "obs/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGENT_TERM_GRACE_MS 2000
#define AGENT_KILL_WAIT_MS 1000

/* Waits up to ms for every child to be reaped; true when none is left. */
static bool agent_wait_children(agent *a, int64_t ms)
{
    int64_t deadline = lb_mono_ms() + ms;
    for (;;) {
        pthread_mutex_lock(&a->procs.lock);
        procs_reap_locked(a);
        bool empty = a->procs.head == NULL;
        pthread_mutex_unlock(&a->procs.lock);
        if (empty)
            return true;
        if (lb_mono_ms() >= deadline)
            return false;
        lb_sleep_ms(20);
    }
}

/* Runs until SIGTERM/SIGINT: reaps on SIGCHLD, reports every period. */
static void agent_loop(agent *a, const sigset_t *set)
{
    int64_t next = lb_mono_ms();
    for (;;) {
        int64_t now = lb_mono_ms();
        if (now >= next) {
            procs_reap(a); /* belt and braces: a coalesced SIGCHLD is not missed */
            contain_tick(a);
            report_send(a);
            next = now + a->cfg.report_interval_ms;
        }
        int64_t wait = next - now;
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            LOG_INFO(AGENT_COMP, "shutting down", "signal=%s", sig == SIGTERM ? "TERM" : "INT");
            return;
        }
        if (sig == SIGCHLD && procs_reap(a) > 0)
            report_send(a);
    }
}

/* Stops serving, leaves etcd, ends every child (TERM, then KILL after the
 * grace period), says so in a last report and frees everything. */
static void agent_shutdown(agent *a)
{
    atomic_store(&a->stopping, true);
    agent_ops_stop();
    rpc_stop(a);
    register_stop(a);
    size_t n = procs_signal_all(a, SIGTERM);
    if (n > 0 && !agent_wait_children(a, AGENT_TERM_GRACE_MS)) {
        size_t k = procs_signal_all(a, SIGKILL);
        LOG_WARN(AGENT_COMP, "killed processes that ignored SIGTERM", "count=%zu", k);
        agent_wait_children(a, AGENT_KILL_WAIT_MS);
    }
    spawn_stop(a);
    contain_stop(a);
    report_send(a);
    report_close(a);
    procs_destroy(&a->procs);
    pthread_mutex_destroy(&a->report_lock);
    agent_config_free(&a->cfg);
}

/* Starts RPC, reports and registration; em says what failed. */
static lb_err agent_start(agent *a, lb_errmsg *em)
{
    lb_err err = contain_start(a, em); /* first: it forks the guard before any thread */
    if (err == LB_OK)
        err = spawn_start(a, em);
    if (err == LB_OK)
        err = rpc_start(a, em);
    if (err == LB_OK)
        err = report_open(a, em);
    if (err == LB_OK)
        err = register_start(a, em);
    if (err == LB_OK)
        err = agent_ops_start(a, em);
    return err;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *level = NULL;
    int status = cfg_daemon_args("lb-agent", argc, argv, true, &config, &level);
    if (status != 0)
        return status < 0 ? 0 : status;
    static agent a; /* static: big, and lives as long as the process */
    lb_errmsg em = {{0}};
    if (agent_config_load(config, &a.cfg, &em) != LB_OK) {
        fprintf(stderr, "lb-agent: %s\n", em.text);
        return 2;
    }
    if (cfg_daemon_check_only()) {
        agent_config_free(&a.cfg);
        return cfg_daemon_check_done("lb-agent", config);
    }
    if (cfg_daemon_log_level("lb-agent", level, a.cfg.log_level) != 0) {
        agent_config_free(&a.cfg);
        return 2;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    a.started_at_ms = lb_wall_ms();
    procs_init(&a.procs, a.cfg.port_min);
    pthread_mutex_init(&a.report_lock, NULL);
    LOG_INFO(AGENT_COMP, "starting", "id=%s config=%s apps=%zu listen=%s etcd=%s", a.cfg.id, config,
             a.cfg.n_apps, a.cfg.listen, a.cfg.etcd);
    if (agent_start(&a, &em) != LB_OK) {
        LOG_ERROR(AGENT_COMP, "cannot start", "error=\"%s\"", em.text);
        status = 1;
    } else {
        agent_loop(&a, &set);
    }
    agent_shutdown(&a);
    LOG_INFO(AGENT_COMP, "stopped", NULL);
    return status;
}
