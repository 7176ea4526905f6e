/*
 * The process table: every child the agent started, until it is reaped.
 *
 * Every waitpid runs under the table lock, and so does every spawn together
 * with the insertion of its entry: a child can therefore never be reaped
 * before its entry exists, and whoever reaps it (the main loop on SIGCHLD, or
 * a launch worker checking on its child) finds the entry. A child that exits
 * while still starting stays in the table, marked exited, for its launch to
 * report; every other reaped child leaves the table and its pid goes into the
 * next load report.
 */
#include "agent.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void procs_init(agent_procs *p, uint32_t first_port)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->next_port = first_port;
}

void procs_destroy(agent_procs *p)
{
    agent_proc *e = p->head;
    while (e != NULL) {
        agent_proc *next = e->next;
        free(e);
        e = next;
    }
    p->head = NULL;
    pthread_mutex_destroy(&p->lock);
}

static bool procs_live(const agent_proc *e)
{
    return !e->exited && !e->failed;
}

void procs_insert_locked(agent_procs *p, agent_proc *e)
{
    e->next = p->head;
    p->head = e;
}

static size_t procs_on_reaped(agent *a, pid_t pid, int status);

void procs_adopt_locked(agent *a, agent_proc *e)
{
    agent_procs *p = &a->procs;
    procs_insert_locked(p, e);
    size_t n = p->n_orphans < AGENT_ORPHANS ? p->n_orphans : AGENT_ORPHANS;
    for (size_t i = 0; i < n; i++) {
        if (p->orphan_pid[i] == e->pid) {
            p->orphan_pid[i] = 0;
            procs_on_reaped(a, e->pid, p->orphan_status[i]);
            return;
        }
    }
}

void procs_remove_locked(agent_procs *p, agent_proc *e)
{
    for (agent_proc **pp = &p->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            free(e);
            return;
        }
    }
}

static agent_proc *procs_by_pid_locked(agent_procs *p, pid_t pid)
{
    for (agent_proc *e = p->head; e != NULL; e = e->next) {
        if (e->pid == pid)
            return e;
    }
    return NULL;
}

const char *procs_status_text(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "status 0x%x", (unsigned)status);
    return buf;
}

/* Books one reaped child; returns 1 when a running process went. */
static size_t procs_on_reaped(agent *a, pid_t pid, int status)
{
    agent_procs *p = &a->procs;
    agent_proc *e = procs_by_pid_locked(p, pid);
    char why[64];
    if (e == NULL) { /* the guard, a child that never ran the app, or a pool
                      * child spawned without the lock and not yet inserted */
        p->orphan_pid[p->n_orphans % AGENT_ORPHANS] = pid;
        p->orphan_status[p->n_orphans % AGENT_ORPHANS] = status;
        p->n_orphans++;
        return 0;
    }
    /* its descendants go with it (a helper it started, even after setsid) */
    contain_cg_release(a, e->cgroup);
    e->cgroup[0] = '\0';
    if (e->starting) {
        e->exited = true;
        e->status = status;
        return 0;
    }
    if (e->failed) {
        procs_remove_locked(p, e);
        return 0;
    }
    LOG_INFO(AGENT_COMP, "process exited",
             "app=%s session=%s pid=%d port=%u status=\"%s\" ran_ms=%lld", e->app->name, e->session,
             (int)pid, e->port, procs_status_text(status, why, sizeof why),
             (long long)(lb_wall_ms() - e->started_at_ms));
    char name[160];
    snprintf(name, sizeof name, "agent_process_exits_total{app=\"%s\"}", e->app->name);
    obs_count(name);
    if (p->n_exited < AGENT_EXITED_MAX)
        p->exited[p->n_exited++] = (int32_t)pid;
    else
        obs_count("agent_exited_pids_dropped_total");
    procs_remove_locked(p, e);
    return 1;
}

void procs_reap_mark(agent *a)
{
    atomic_store(&a->procs.reap_due, true);
}

/* Whether a child may have exited since the last reap. waitpid(-1) walks
 * every child in the kernel: with a deep pool and stock (~600 children) the
 * reaps of every hand-out and readiness poll were a tenth of an agent's CPU
 * while hand-outs flowed (perf, README P2). A child that exits raises
 * SIGCHLD, pending until the main loop takes it; from then until its reap,
 * reap_due says so. */
static bool reap_due(agent *a)
{
    if (atomic_exchange(&a->procs.reap_due, false))
        return true;
    sigset_t pending;
    return sigpending(&pending) != 0 || sigismember(&pending, SIGCHLD) != 0;
}

size_t procs_reap_locked(agent *a)
{
    if (!reap_due(a))
        return 0;
    size_t gone = 0, reaped = 0;
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            if (pid < 0 && errno == EINTR)
                continue;
            break; /* 0: none exited yet; ECHILD: no children */
        }
        gone += procs_on_reaped(a, pid, status);
        reaped++;
    }
    if (reaped > 0)
        contain_save_locked(a);
    return gone;
}

size_t procs_reap(agent *a)
{
    pthread_mutex_lock(&a->procs.lock);
    size_t gone = procs_reap_locked(a);
    pthread_mutex_unlock(&a->procs.lock);
    return gone;
}

agent_proc *procs_find_session_locked(agent_procs *p, const char *session)
{
    for (agent_proc *e = p->head; e != NULL; e = e->next) {
        if (procs_live(e) && strcmp(e->session, session) == 0)
            return e;
    }
    return NULL;
}

agent_proc *procs_find_shared_locked(agent_procs *p, const agent_app *app)
{
    for (agent_proc *e = p->head; e != NULL; e = e->next) {
        if (procs_live(e) && strcmp(e->app->name, app->name) == 0)
            return e;
    }
    return NULL;
}

bool procs_port_used_locked(agent_procs *p, uint16_t port)
{
    /* An entry holds its port until reaped, failed ones too: their process may
     * still be bound to it. */
    for (agent_proc *e = p->head; e != NULL; e = e->next) {
        if (e->port == port)
            return true;
    }
    return port != 0 && port == p->reserved_port;
}

size_t procs_live_locked(agent_procs *p)
{
    size_t n = 0;
    for (agent_proc *e = p->head; e != NULL; e = e->next)
        n += procs_live(e);
    return n + (p->reserved_port != 0); /* a pool process being spawned */
}

size_t procs_signal_all(agent *a, int sig)
{
    size_t n = 0;
    pthread_mutex_lock(&a->procs.lock);
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (!e->exited && kill(-e->pid, sig) == 0)
            n++;
    }
    pthread_mutex_unlock(&a->procs.lock);
    return n;
}

lb_err procs_stop_session(agent *a, const char *session)
{
    lb_err err = LB_ENOTFOUND;
    pthread_mutex_lock(&a->procs.lock);
    procs_reap_locked(a);
    agent_proc *e = procs_find_session_locked(&a->procs, session);
    if (e != NULL && !e->starting) {
        /* The whole group: helpers the app started go with it. */
        kill(-e->pid, SIGTERM);
        LOG_INFO(AGENT_COMP, "stopping process", "app=%s session=%s pid=%d", e->app->name,
                 e->session, (int)e->pid);
        err = LB_OK;
    }
    pthread_mutex_unlock(&a->procs.lock);
    return err;
}

/* e's app's index in cfg (by name when e was started under an older config),
 * or -1 when cfg no longer offers it. */
static ssize_t procs_app_index(const agent_config *cfg, const agent_proc *e)
{
    if (e->app >= cfg->apps && e->app < cfg->apps + cfg->n_apps)
        return e->app - cfg->apps;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        if (strcmp(cfg->apps[i].name, e->app->name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

void procs_snapshot(agent *a, const agent_config *cfg, uint32_t *sessions, uint32_t *per_app,
                    uint32_t *ready, int32_t **exited, size_t *n_exited, wire_sid_digest *dg)
{
    agent_procs *p = &a->procs;
    *sessions = 0;
    *dg = (wire_sid_digest){0};
    memset(per_app, 0, cfg->n_apps * sizeof *per_app);
    memset(ready, 0, cfg->n_apps * sizeof *ready);
    pthread_mutex_lock(&p->lock);
    for (agent_proc *e = p->head; e != NULL; e = e->next) {
        if (!procs_live(e) || e->starting)
            continue;
        ssize_t i = procs_app_index(cfg, e);
        if (e->pooled) { /* ready and unassigned: not a session */
            if (i >= 0)
                ready[i]++;
            continue;
        }
        (*sessions)++;
        if (i >= 0)
            per_app[i]++;
        if (e->app->per_session) /* what a session sync would look at */
            wire_sid_digest_add(dg, e->session);
    }
    *n_exited = p->n_exited;
    *exited = NULL;
    if (p->n_exited > 0) {
        *exited = malloc(p->n_exited * sizeof **exited);
        if (*exited != NULL)
            memcpy(*exited, p->exited, p->n_exited * sizeof **exited);
        else
            *n_exited = 0;
    }
    p->n_exited = 0;
    pthread_mutex_unlock(&p->lock);
}

size_t procs_sync_sessions(agent *a, char *const *keep, size_t n_keep, int64_t grace_ms)
{
    size_t n = 0;
    int64_t before = lb_wall_ms() - grace_ms;
    pthread_mutex_lock(&a->procs.lock);
    procs_reap_locked(a);
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (!procs_live(e) || e->starting || e->pooled || !e->app->per_session ||
            e->ready_at_ms == 0 || e->ready_at_ms > before) /* too new to be in the view */
            continue;
        bool live = false;
        for (size_t i = 0; i < n_keep && !live; i++)
            live = strcmp(keep[i], e->session) == 0;
        if (live)
            continue;
        kill(-e->pid, SIGTERM);
        LOG_INFO(AGENT_COMP, "stopping process of an ended session", "app=%s session=%s pid=%d",
                 e->app->name, e->session, (int)e->pid);
        n++;
    }
    pthread_mutex_unlock(&a->procs.lock);
    if (n > 0)
        obs_add(obs_counter_get("agent_sync_stops_total"), n);
    return n;
}

size_t procs_rebind_locked(agent *a, const agent_config *nc)
{
    size_t stopped = 0;
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        const agent_app *app = agent_config_app(nc, e->app->name);
        if (app != NULL) {
            e->app = app;
            continue;
        }
        /* the app is no longer offered: its process goes (the master moves
         * its clients); e keeps the old app, which stays allocated */
        if (procs_live(e) && !e->starting) {
            kill(-e->pid, SIGTERM);
            LOG_INFO(AGENT_COMP, "stopping process of an app no longer offered",
                     "app=%s session=%s pid=%d", e->app->name, e->session, (int)e->pid);
            stopped++;
        }
    }
    return stopped;
}

size_t procs_sessions_live(agent *a)
{
    size_t n = 0;
    pthread_mutex_lock(&a->procs.lock);
    procs_reap_locked(a);
    for (agent_proc *e = a->procs.head; e != NULL; e = e->next)
        n += procs_live(e) && !e->pooled && e->app->per_session && e->session[0] != '\0';
    pthread_mutex_unlock(&a->procs.lock);
    return n;
}
