/*
 * Signals and the agent's life: the main loop, reload, drain and shutdown.
 *
 * Every signal is blocked in every thread and taken here, on the main thread,
 * with sigtimedwait (whose timeout is also the report period):
 *   SIGCHLD  reap, and report an exit at once
 *   SIGHUP   reload the config file: log level, apps, capacity, labels,
 *            zone/region/group/priority and pool sizes apply; keys that need
 *            a restart (id, listen, etcd, ports, ...) keep their running value
 *            and the log names them. A file that does not load is rejected
 *            with its file:line error and the running config stays.
 *   SIGTERM  drain: no new sessions; sessions held on this agent keep their
 *            processes until released or shutdown_grace ends; then shutdown.
 *            A second SIGTERM, or SIGINT, shuts down at once.
 * Shutdown never leaves an app running: TERM, then KILL, then the cgroups.
 */
#include "agent.h"
#include "ops.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGENT_TERM_GRACE_MS 2000
#define AGENT_KILL_WAIT_MS 1000

/* Waits up to ms for every child to be reaped; true when none is left. */
static bool life_wait_children(agent *a, int64_t ms)
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

/* A string key that cannot change while running: keeps the running value. */
static void life_keep_str(const char *key, char **run, char **neu)
{
    if (strcmp(*run, *neu) != 0)
        LOG_WARN(AGENT_COMP, "reload: key needs a restart; keeping the running value", "key=%s",
                 key);
    char *t = *run;
    *run = *neu;
    *neu = t;
}

/* Carries the keys only a restart can change from old into nc (and nc's new
 * values into old, which is retired, not used). */
static void life_keep_fixed(agent_config *old, agent_config *nc)
{
    life_keep_str("id", &old->id, &nc->id);
    life_keep_str("host", &old->host, &nc->host);
    life_keep_str("listen", &old->listen, &nc->listen);
    life_keep_str("advertise", &old->advertise, &nc->advertise);
    life_keep_str("etcd", &old->etcd, &nc->etcd);
    life_keep_str("prefix", &old->prefix, &nc->prefix);
    life_keep_str("http_listen", &old->http_listen, &nc->http_listen);
    life_keep_str("state_dir", &old->state_dir, &nc->state_dir);
    bool same_report = old->n_report == nc->n_report;
    for (size_t i = 0; same_report && i < nc->n_report; i++)
        same_report = strcmp(old->report[i], nc->report[i]) == 0;
    if (!same_report)
        LOG_WARN(AGENT_COMP, "reload: key needs a restart; keeping the running value",
                 "key=report");
    char **rep = old->report;
    size_t n_rep = old->n_report;
    old->report = nc->report;
    old->n_report = nc->n_report;
    nc->report = rep;
    nc->n_report = n_rep;
    if (old->port_min != nc->port_min || old->port_max != nc->port_max ||
        old->lease_ttl_ms != nc->lease_ttl_ms || old->max_message != nc->max_message ||
        old->cgroup != nc->cgroup)
        LOG_WARN(AGENT_COMP, "reload: key needs a restart; keeping the running value",
                 "key=\"ports, lease_ttl, max_message or cgroup\"");
    nc->port_min = old->port_min;
    nc->port_max = old->port_max;
    nc->lease_ttl_ms = old->lease_ttl_ms;
    nc->max_message = old->max_message;
    nc->cgroup = old->cgroup;
}

/* SIGHUP: loads the file again and swaps it in, or keeps the running one. */
static void life_reload(agent *a, const char *level_flag)
{
    agent_config *old = a->cfg;
    agent_config *nc = lb_xcalloc(1, sizeof *nc);
    lb_errmsg em = {{0}};
    obs_level lvl;
    if (agent_config_load(old->file, nc, &em) != LB_OK || a->n_retired == AGENT_RELOADS_MAX) {
        if (a->n_retired == AGENT_RELOADS_MAX) {
            agent_config_free(nc);
            snprintf(em.text, sizeof em.text, "%d reloads since start: restart the agent",
                     AGENT_RELOADS_MAX);
        }
        LOG_ERROR(AGENT_COMP, "reload rejected; the running config stays", "error=\"%s\"", em.text);
        obs_count("agent_reloads_total{result=\"rejected\"}");
        free(nc);
        return;
    }
    life_keep_fixed(old, nc);
    contain_limits_fallback(a, nc);
    pthread_mutex_lock(&a->procs.lock);
    size_t stopped = procs_rebind_locked(a, nc);
    a->cfg = nc;
    pthread_mutex_unlock(&a->procs.lock);
    a->retired[a->n_retired++] = old;
    register_refresh(a);
    pool_kick(a); /* pool sizes may have changed */
    report_send(a);
    obs_count("agent_reloads_total{result=\"ok\"}");
    LOG_INFO(AGENT_COMP, "config reloaded", "apps=%zu capacity=%u log_level=%s stopped=%zu",
             nc->n_apps, nc->capacity, level_flag != NULL ? level_flag : nc->log_level, stopped);
    /* last, so the line above is seen whatever the new level */
    if (level_flag == NULL && obs_log_parse_level(nc->log_level, &lvl))
        obs_log_set_level(lvl); /* --log-level on the command line wins */
}

/* Runs until shutdown is due: reaps on SIGCHLD, reloads on SIGHUP, drains on
 * SIGTERM, reports every period. */
void agent_run(agent *a, const sigset_t *set, const char *level_flag)
{
    int64_t next = lb_mono_ms(), drain_end = 0;
    for (;;) {
        int64_t now = lb_mono_ms();
        if (now >= next) {
            procs_reap_mark(a); /* belt and braces: a coalesced SIGCHLD is not missed */
            procs_reap(a);
            contain_tick(a);
            report_send(a);
            next = now + a->cfg->report_interval_ms;
        }
        if (drain_end != 0) {
            size_t held = procs_sessions_live(a);
            if (held == 0) {
                LOG_INFO(AGENT_COMP, "drained: no session left", NULL);
                return;
            }
            if (now >= drain_end) {
                LOG_WARN(AGENT_COMP, "shutdown_grace over: stopping the sessions left", "count=%zu",
                         held);
                return;
            }
        }
        int64_t wait = next - now;
        if (drain_end != 0 && wait > 50)
            wait = 50; /* a released session ends the drain at once */
        struct timespec ts = {.tv_sec = wait / 1000, .tv_nsec = (wait % 1000) * 1000000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGINT || (sig == SIGTERM && drain_end != 0)) {
            LOG_INFO(AGENT_COMP, "shutting down", "signal=%s", sig == SIGINT ? "INT" : "TERM");
            return;
        }
        if (sig == SIGTERM) {
            int64_t grace = a->cfg->shutdown_grace_ms;
            atomic_store(&a->draining, true);
            pool_kick(a); /* pools shrink to nothing */
            LOG_INFO(AGENT_COMP, "draining: no new sessions, waiting for the held ones",
                     "sessions=%zu shutdown_grace_ms=%lld", procs_sessions_live(a),
                     (long long)grace);
            drain_end = lb_mono_ms() + (grace > 0 ? grace : 0);
            if (grace <= 0)
                return;
        }
        if (sig == SIGHUP)
            life_reload(a, level_flag);
        if (sig == SIGCHLD) {
            procs_reap_mark(a); /* taken: no longer pending, but not reaped yet */
            if (procs_reap(a) > 0)
                report_send(a);
        }
    }
}

void agent_shutdown(agent *a)
{
    atomic_store(&a->stopping, true);
    agent_ops_stop();
    rpc_stop(a);
    pool_stop(a); /* before the etcd client goes: it watches with it */
    report_keys_stop();
    register_stop(a);
    size_t n = procs_signal_all(a, SIGTERM);
    if (n > 0 && !life_wait_children(a, AGENT_TERM_GRACE_MS)) {
        size_t k = procs_signal_all(a, SIGKILL);
        LOG_WARN(AGENT_COMP, "killed processes that ignored SIGTERM", "count=%zu", k);
        life_wait_children(a, AGENT_KILL_WAIT_MS);
    }
    spawn_stop(a);
    contain_stop(a);
    report_send(a);
    report_close(a);
    procs_destroy(&a->procs);
    pthread_mutex_destroy(&a->report_lock);
    for (size_t i = 0; i < a->n_retired; i++) {
        agent_config_free(a->retired[i]);
        free(a->retired[i]);
    }
    agent_config_free(a->cfg);
    free(a->cfg);
    a->cfg = NULL;
}
