/*
 * LaunchRequest: reuse the session's live process, or pick a port, spawn the
 * app (spawn.c: never a shell, its own process group and cgroup) and wait until its
 * port accepts a TCP connection on a socket the child (or its cgroup or
 * process group) owns, so the client the master sends there is
 * never refused.
 *
 * Runs on an RPC worker thread and may block up to the app's ready_timeout;
 * the other workers serve meanwhile. The table lock is held only for the
 * quick steps (reap, lookup, port choice, spawn + insert), never while waiting.
 */
#define _GNU_SOURCE
#include "agent.h"

#include "common/util.h"
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LAUNCH_POLL_MS 20
#define LAUNCH_PROBE_MS 200 /* reuse check: connect to a live process's port */

bool launch_session_valid(const char *s)
{
    size_t n = strlen(s);
    /* it goes into argv: a leading '-' would make it an option */
    if (n == 0 || n > AGENT_SESSION_MAX || s[0] == '-')
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Frees a string field we set; protobuf-c's init points unset ones at its
 * static empty string, which must not be freed. */
static void launch_free_str(char *s)
{
    if (s != protobuf_c_empty_string)
        free(s);
}

void launch_reply_clear(Lb__LaunchReply *rep)
{
    launch_free_str(rep->error);
    if (rep->process != NULL) {
        free(rep->process->host);
        free(rep->process->server_id);
        free(rep->process);
    }
    lb__launch_reply__init(rep);
}

static void launch_fail(Lb__LaunchReply *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void launch_fail(Lb__LaunchReply *rep, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rep->ok = false;
    launch_free_str(rep->error);
    rep->error = lb_strdup(buf);
}

static void launch_count(const char *app, const char *result)
{
    char name[192];
    if (app != NULL)
        snprintf(name, sizeof name, "agent_launches_total{app=\"%s\",result=\"%s\"}", app, result);
    else /* an unknown app's name is the client's: keep it out of metric names */
        snprintf(name, sizeof name, "agent_launches_total{result=\"%s\"}", result);
    obs_count(name);
}

static void launch_pool_count(const agent_app *app, const char *what)
{
    char name[160];
    snprintf(name, sizeof name, "agent_pool_%s_total{app=\"%s\"}", what, app->name);
    obs_count(name);
}

/* tmpl with every {port} and {session} replaced. */
static char *launch_subst(const char *tmpl, const char *port, const char *session)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    for (const char *p = strchr(tmpl, '{'); p != NULL; p = strchr(p + 1, '{'))
        cap += strlen(port) + strlen(session); /* generous upper bound */
    char *out = lb_xcalloc(1, cap);
    for (const char *p = tmpl; *p != '\0';) {
        const char *val = NULL;
        size_t skip = 0;
        if (strncmp(p, "{port}", 6) == 0) {
            val = port;
            skip = 6;
        } else if (strncmp(p, "{session}", 9) == 0) {
            val = session;
            skip = 9;
        }
        if (val != NULL) {
            memcpy(out + len, val, strlen(val));
            len += strlen(val);
            p += skip;
        } else {
            out[len++] = *p++;
        }
    }
    return out;
}

static void launch_strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* The app's environment, exactly: its env map, the variables inherit_env names
 * (from the agent's own environment), and, when there is no cgroup to find
 * its descendants by, the agent's instance marker. */
static char **launch_envp(agent *a, const agent_app *app)
{
    size_t n = 0;
    char **envp = lb_xcalloc(a->cfg->n_inherit_env + app->n_env + 2, sizeof *envp);
    for (size_t i = 0; i < a->cfg->n_inherit_env; i++) {
        const char *name = a->cfg->inherit_env[i], *v = getenv(name);
        bool overridden = false;
        for (size_t j = 0; j < app->n_env && !overridden; j++)
            overridden =
                strncmp(app->env[j], name, strlen(name)) == 0 && app->env[j][strlen(name)] == '=';
        if (v == NULL || overridden)
            continue;
        size_t len = strlen(name) + strlen(v) + 2;
        envp[n] = lb_xcalloc(1, len);
        snprintf(envp[n++], len, "%s=%s", name, v);
    }
    for (size_t j = 0; j < app->n_env; j++)
        envp[n++] = lb_strdup(app->env[j]);
    if (a->contain.cg_base == NULL) {
        size_t len = sizeof "LBCP_AGENT_INSTANCE=" + strlen(a->contain.instance);
        envp[n] = lb_xcalloc(1, len);
        snprintf(envp[n++], len, "LBCP_AGENT_INSTANCE=%s", a->contain.instance);
    }
    return envp;
}

/* True when nothing listens on host:port (or on any address when host is not
 * local, e.g. an advertised public name behind NAT). */
static bool launch_port_free(const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    if (getaddrinfo(host, ps, &hints, &res) != 0)
        return false;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, rv = -1;
    if (fd >= 0) {
        /* as the app will: TIME_WAIT leftovers do not make a port busy */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        rv = bind(fd, res->ai_addr, res->ai_addrlen);
        if (rv != 0 && errno == EADDRNOTAVAIL) {
            struct sockaddr_storage any = {0};
            memcpy(&any, res->ai_addr, res->ai_addrlen);
            if (any.ss_family == AF_INET)
                ((struct sockaddr_in *)&any)->sin_addr.s_addr = htonl(INADDR_ANY);
            else
                ((struct sockaddr_in6 *)&any)->sin6_addr = in6addr_any;
            rv = bind(fd, (struct sockaddr *)&any, res->ai_addrlen);
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rv == 0;
}

/* A port of the range not held by a child and bindable now; p->lock held. */
static lb_err launch_pick_port_locked(agent *a, uint16_t *out)
{
    agent_procs *p = &a->procs;
    uint32_t lo = a->cfg->port_min, hi = a->cfg->port_max, span = hi - lo + 1;
    for (uint32_t i = 0; i < span; i++) {
        uint32_t port = lo + (p->next_port - lo + i) % span;
        if (procs_port_used_locked(p, (uint16_t)port) ||
            !launch_port_free(a->cfg->host, (uint16_t)port))
            continue;
        /* Rotate so a port just released is not handed out again at once. */
        p->next_port = port + 1 > hi ? lo : port + 1;
        *out = (uint16_t)port;
        return LB_OK;
    }
    return LB_EUNAVAIL;
}

/* Spawns app for session on port into a new entry (not yet in the table). 0
 * or an errno with why set. Needs no lock. */
static int launch_spawn(agent *a, const agent_app *app, const char *session, uint16_t port,
                        agent_proc **out, char *why, size_t why_len)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    char **argv = lb_xcalloc(app->argc + 1, sizeof *argv);
    for (size_t i = 0; i < app->argc; i++)
        argv[i] = launch_subst(app->argv[i], ps, session);
    char **envp = launch_envp(a, app);
    agent_proc *e = lb_xcalloc(1, sizeof *e);
    int rv = spawn_app(a, app, argv, envp, e, why, why_len);
    launch_strv_free(argv);
    launch_strv_free(envp);
    if (rv != 0) {
        free(e);
        return rv;
    }
    e->port = port;
    e->app = app;
    e->starting = true;
    e->started_at_ms = lb_wall_ms();
    snprintf(e->session, sizeof e->session, "%s", session);
    *out = e;
    return 0;
}

/* Spawns app for session on port; p->lock held, so the entry is in the table
 * before the reaper can see the child. 0 or an errno with why set. */
static int launch_spawn_locked(agent *a, const agent_app *app, const char *session, uint16_t port,
                               agent_proc **out, char *why, size_t why_len)
{
    int rv = launch_spawn(a, app, session, port, out, why, why_len);
    if (rv != 0)
        return rv;
    procs_insert_locked(&a->procs, *out);
    contain_save_locked(a);
    return 0;
}

/* One TCP connect attempt to host:port bounded by timeout_ms. */
static bool launch_connect(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool ok = false;
    if (fd < 0)
        return false;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        ok = true;
    } else if (errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (poll(&pfd, 1, timeout_ms) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0)
            ok = soerr == 0;
    }
    close(fd);
    return ok;
}

/* True when pid holds one of the socket inodes. */
static bool launch_pid_holds(pid_t pid, const unsigned long *ino, size_t n)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *de;
    bool found = false;
    while (d != NULL && !found && (de = readdir(d)) != NULL) {
        char path[PATH_MAX], link[64];
        unsigned long v = 0;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        ssize_t len = readlink(path, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (sscanf(link, "socket:[%lu]", &v) != 1)
            continue;
        for (size_t i = 0; i < n && !found; i++)
            found = ino[i] == v;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

/* True when the listener on e's port belongs to e or to a process of its
 * cgroup: another program that took the port meanwhile (the range is shared
 * with the rest of the machine) does not make e ready. */
static bool launch_owns_port(agent *a, const agent_proc *e)
{
    unsigned long ino[16];
    size_t n = listeners_on_port(e->port, ino, 16);
    if (n == 0)
        return false;
    if (launch_pid_holds(e->pid, ino, n))
        return true;
    if (e->cgroup[0] == '\0')
        return false; /* a helper in its process group: not found without a scan */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/cgroup.procs", a->contain.cg_base, e->cgroup);
    FILE *f = fopen(path, "re");
    int pid = 0;
    bool found = false;
    while (f != NULL && !found && fscanf(f, "%d", &pid) == 1)
        found = pid != e->pid && launch_pid_holds((pid_t)pid, ino, n);
    if (f != NULL)
        fclose(f);
    return found;
}

/* Waits until e's port accepts a connection. Returns NULL when ready, else
 * the result label with rep holding the error. */
const char *launch_wait_ready(agent *a, agent_proc *e, Lb__LaunchReply *rep)
{
    const agent_app *app = e->app;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[8], why[64];
    snprintf(ps, sizeof ps, "%u", e->port);
    int rv = getaddrinfo(a->cfg->host, ps, &hints, &ai);
    if (rv != 0) {
        launch_fail(rep, "cannot resolve host '%s': %s", a->cfg->host, gai_strerror(rv));
        return "resolve";
    }
    const char *result = NULL;
    int64_t deadline = lb_mono_ms() + app->ready_timeout_ms;
    int64_t nap = 1; /* most apps listen within milliseconds: poll fast, then back off */
    for (;;) {
        pthread_mutex_lock(&a->procs.lock);
        size_t gone = procs_reap_locked(a);
        bool exited = e->exited;
        int status = e->status;
        pthread_mutex_unlock(&a->procs.lock);
        if (gone > 0)
            report_send(a);
        int64_t left = deadline - lb_mono_ms();
        if (exited) {
            launch_fail(rep, "app '%s' (pid %d) exited during start-up: %s", app->name, (int)e->pid,
                        procs_status_text(status, why, sizeof why));
            result = "exited";
        } else if (atomic_load(&a->stopping)) {
            launch_fail(rep, "agent '%s' is shutting down", a->cfg->id);
            result = "shutdown";
        } else if (launch_connect(ai, left < 200 ? (int)(left > 0 ? left : 1) : 200) &&
                   launch_owns_port(a, e)) {
            break;
        } else if ((left = deadline - lb_mono_ms()) <= 0) {
            launch_fail(rep, "app '%s' (pid %d) did not accept connections on %s:%u within %lld ms",
                        app->name, (int)e->pid, a->cfg->host, e->port,
                        (long long)app->ready_timeout_ms);
            result = "timeout";
        }
        if (result != NULL)
            break;
        lb_sleep_ms(left < nap ? left : nap);
        nap = nap * 2 < LAUNCH_POLL_MS ? nap * 2 : LAUNCH_POLL_MS;
    }
    freeaddrinfo(ai);
    return result;
}

/* Fills an ok reply with e's identity; p->lock held. */
static void launch_fill(agent *a, const agent_proc *e, Lb__LaunchReply *rep)
{
    Lb__ProcessId *pid = lb_xcalloc(1, sizeof *pid);
    lb__process_id__init(pid);
    pid->pid = e->pid;
    pid->host = lb_strdup(a->cfg->host);
    pid->port = e->port;
    pid->started_at = e->started_at_ms;
    pid->server_id = lb_strdup(a->cfg->id);
    rep->ok = true;
    rep->process = pid;
}

/* Picks a port and spawns; p->lock held. NULL with *out set on success. */
const char *launch_start_locked(agent *a, const agent_app *app, const char *session,
                                Lb__LaunchReply *rep, agent_proc **out)
{
    uint16_t port = 0;
    if (launch_pick_port_locked(a, &port) != LB_OK) {
        launch_fail(rep, "no free port in [%u, %u] on %s", a->cfg->port_min, a->cfg->port_max,
                    a->cfg->host);
        return "no_port";
    }
    char why[160];
    int rv = launch_spawn_locked(a, app, session, port, out, why, sizeof why);
    if (rv != 0) {
        launch_fail(rep, "cannot start app '%s' (%s): %s", app->name, app->argv[0], why);
        return "spawn_error";
    }
    LOG_INFO(AGENT_COMP, "process started", "app=%s session=%s pid=%d port=%u", app->name, session,
             (int)(*out)->pid, port);
    return NULL;
}

/* A pool process: like launch_start_locked, but called without p->lock and
 * forking without it, so hand-outs and reports never wait for a fork + exec
 * (they did: 2-4 ms per hit, issue 10). The port stays reserved meanwhile, and
 * procs_adopt_locked books an exit the reaper saw before the entry existed. */
const char *launch_start_pool(agent *a, const agent_app *app, Lb__LaunchReply *rep,
                              agent_proc **out)
{
    uint16_t port = 0;
    pthread_mutex_lock(&a->procs.lock);
    /* checked again here: a launch may have taken the last slot meanwhile */
    bool full = procs_live_locked(&a->procs) >= a->cfg->capacity;
    lb_err perr = full ? LB_EUNAVAIL : launch_pick_port_locked(a, &port);
    if (perr == LB_OK)
        a->procs.reserved_port = port; /* counted as live until inserted */
    pthread_mutex_unlock(&a->procs.lock);
    if (full) {
        launch_fail(rep, "agent '%s' is at capacity", a->cfg->id);
        return "capacity";
    }
    if (perr != LB_OK) {
        launch_fail(rep, "no free port in [%u, %u] on %s", a->cfg->port_min, a->cfg->port_max,
                    a->cfg->host);
        return "no_port";
    }
    char why[160];
    agent_proc *e = NULL;
    int rv = launch_spawn(a, app, "", port, &e, why, sizeof why);
    pid_t pid = rv == 0 ? e->pid : 0;
    pthread_mutex_lock(&a->procs.lock);
    a->procs.reserved_port = 0;
    if (rv == 0) {
        e->pooled = true;
        procs_adopt_locked(a, e);
        contain_save_locked(a);
    }
    pthread_mutex_unlock(&a->procs.lock);
    if (rv != 0) {
        launch_fail(rep, "cannot start app '%s' (%s): %s", app->name, app->argv[0], why);
        return "spawn_error";
    }
    LOG_INFO(AGENT_COMP, "process started", "app=%s session= pid=%d port=%u", app->name, (int)pid,
             port);
    *out = e;
    return NULL;
}

/* True when the kernel already has pid on its way out: a zombie, exiting
 * (PF_EXITING, set as exit starts, before its memory and files are torn down,
 * which under ASan takes a while) or with a SIGKILL pending. Such a process can
 * still accept connections on its listener for a moment. One read of
 * /proc/PID/stat: its `signal` field (the 31st) shows the pending signals below
 * 32, and a SIGKILL is put on every thread's own pending set (complete_signal),
 * so /proc/PID/status, five times the text, is not needed (issue 10: the two
 * reads cost ~100 us of a pool hit). */
static bool launch_dying(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return true;
    /* after ')' come fields 3 (state), ..., 9 (flags), ..., 31 (signal) */
    char state = 0, *save = NULL;
    unsigned long long flags = 0, sig = 0;
    int field = 3;
    for (char *t = strtok_r(p + 1, " ", &save); t != NULL && field <= 31;
         t = strtok_r(NULL, " ", &save), field++) {
        if (field == 3)
            state = t[0];
        else if (field == 9)
            flags = strtoull(t, NULL, 10);
        else if (field == 31)
            sig = strtoull(t, NULL, 10);
    }
    if (field <= 31)
        return true; /* not the format we know: as if it were gone */
    return state == 'Z' || state == 'X' || state == 'x' || (flags & 0x4u) != 0 /* PF_EXITING */ ||
           (sig & (1ull << (SIGKILL - 1))) != 0;
}

/* pool_take_locked, its time summed in agent_path_microseconds_total{stage="take"}
 * (per agent_pool_hits_total: where a hit's time goes, issue 10). */
static agent_proc *launch_take_timed(agent *a, const agent_app *app, const char *session)
{
    uint64_t t0 = obs_now_ns();
    agent_proc *e = pool_take_locked(a, app, session);
    static obs_counter *take_us; /* set under procs.lock, as every call is */
    if (take_us == NULL)
        take_us = obs_counter_get("agent_path_microseconds_total{stage=\"take\"}");
    obs_add(take_us, (obs_now_ns() - t0) / 1000);
    return e;
}

/* True when a TCP connect to port on the agent's host succeeds within
 * LAUNCH_PROBE_MS. No lock needed. */
static bool launch_accepts(agent *a, uint16_t port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    bool ok = getaddrinfo(a->cfg->host, ps, &hints, &ai) == 0 && ai != NULL &&
              launch_connect(ai, LAUNCH_PROBE_MS);
    if (ai != NULL)
        freeaddrinfo(ai);
    return ok;
}

/* Marks e failed (never handed out again, reaped quietly) and kills its group. */
static void launch_replace_locked(agent_proc *e, const char *why)
{
    LOG_WARN(AGENT_COMP, "process no longer usable; replacing it",
             "app=%s session=%s pid=%d port=%u why=\"%s\"", e->app->name, e->session, (int)e->pid,
             e->port, why);
    obs_count("agent_replaced_dead_processes_total");
    kill(-e->pid, SIGKILL);
    e->failed = true;
}

/* A process is reused only if it still accepts connections: one killed a
 * moment ago may have closed its sockets without being reapable yet, and one
 * that closed its listener is no use to the client either. (A stopped process
 * still has its connections accepted by the kernel: this is not a hang check.)
 * It must not be dying either (launch_dying). A process that fails is killed
 * (its group) and marked failed, so it is never handed out again and is reaped
 * quietly. p->lock held; the connect on loopback takes microseconds, and at most
 * LAUNCH_PROBE_MS when the host drops it. */
bool launch_alive_locked(agent *a, agent_proc *e)
{
    bool ok = !launch_dying(e->pid) && launch_accepts(a, e->port);
    if (!ok)
        launch_replace_locked(e, "does not accept connections or is exiting");
    return ok;
}

bool launch_not_dying_locked(agent_proc *e)
{
    bool ok = !launch_dying(e->pid);
    if (!ok)
        launch_replace_locked(e, "exiting");
    return ok;
}

/* Finds the process to reuse or starts one. Returns NULL when *out is a new
 * child to wait for, else the result label of a finished reply. */
static const char *launch_acquire(agent *a, const agent_app *app, const char *session,
                                  Lb__LaunchReply *rep, agent_proc **out)
{
    /* A launch of the same session in flight finishes within its timeout. */
    int64_t deadline = lb_mono_ms() + app->ready_timeout_ms + 1000;
    for (;;) {
        const char *result = NULL;
        bool wait = false, hit = false;
        pthread_mutex_lock(&a->procs.lock);
        size_t gone = procs_reap_locked(a);
        agent_proc *e = app->per_session ? procs_find_session_locked(&a->procs, session)
                                         : procs_find_shared_locked(&a->procs, app);
        if (e != NULL && strcmp(e->app->name, app->name) != 0) {
            launch_fail(rep, "session '%s' already runs app '%s'", session, e->app->name);
            result = "conflict";
        } else if (e != NULL && e->starting) {
            wait = true;
        } else if (e != NULL && launch_alive_locked(a, e)) {
            launch_fill(a, e, rep);
            rep->reused = true;
            result = "reused";
        } else if (e != NULL) {
            wait = true; /* replaced: the next round starts a new process */
        } else if (atomic_load(&a->draining)) {
            launch_fail(rep, "agent '%s' is draining: no new sessions", a->cfg->id);
            result = "draining";
        } else if (app->per_session && (e = launch_take_timed(a, app, session)) != NULL) {
            launch_fill(a, e, rep); /* a warm process: no start-up on the request path */
            result = "pool_hit";
            hit = true;
        } else if (procs_live_locked(&a->procs) >= a->cfg->capacity && !pool_evict_locked(a, app)) {
            launch_fail(rep, "agent '%s' is at capacity (%u sessions)", a->cfg->id,
                        a->cfg->capacity);
            result = "capacity";
        } else {
            result = launch_start_locked(a, app, session, rep, out);
            if (app->pool_max > 0)
                launch_pool_count(app, "misses");
        }
        pthread_mutex_unlock(&a->procs.lock);
        if (hit) {
            rep->launch_seq = atomic_fetch_add(&a->launches, 1) + 1;
            rep->pool_hit = true;
            launch_pool_count(app, "hits");
            LOG_INFO(AGENT_COMP, "pool process handed out", "app=%s session=%s pid=%d", app->name,
                     session, (int)rep->process->pid);
        }
        if (hit) /* reported and refilled once our answer is sent (rpc.c) */
            pool_kick_later();
        else if (gone > 0)
            report_send(a);
        if (!wait)
            return result;
        if (lb_mono_ms() > deadline || atomic_load(&a->stopping)) {
            launch_fail(rep, "session '%s' is still starting", session);
            return "busy";
        }
        lb_sleep_ms(LAUNCH_POLL_MS);
    }
}

/* Waits for the new child e; on failure kills its group and leaves it to the
 * reaper. Returns the result label. */
static const char *launch_finish(agent *a, agent_proc *e, Lb__LaunchReply *rep)
{
    const char *result = launch_wait_ready(a, e, rep);
    char why[64];
    pthread_mutex_lock(&a->procs.lock);
    if (result == NULL && e->exited) { /* accepted, then died at once */
        launch_fail(rep, "app '%s' (pid %d) exited right after start-up: %s", e->app->name,
                    (int)e->pid, procs_status_text(e->status, why, sizeof why));
        result = "exited";
    }
    pid_t pid = e->pid;
    const char *app = e->app->name;
    if (result == NULL) {
        e->starting = false;
        e->ready_at_ms = lb_wall_ms();
        launch_fill(a, e, rep);
    } else if (e->exited) {
        procs_remove_locked(&a->procs, e);
    } else {
        kill(-e->pid, SIGKILL);
        e->starting = false;
        e->failed = true;
    }
    pthread_mutex_unlock(&a->procs.lock);
    if (result == NULL) {
        /* the master matches this number against ServerLoad.launches to know
         * whether a report already counts this session */
        rep->launch_seq = atomic_fetch_add(&a->launches, 1) + 1;
        LOG_INFO(AGENT_COMP, "process ready", "app=%s pid=%d", app, (int)pid);
        report_send(a); /* the master learns of the new session at once */
        return "ok";
    }
    LOG_WARN(AGENT_COMP, "launch failed", "app=%s pid=%d error=\"%s\"", app, (int)pid, rep->error);
    return result;
}

/* Copies s for a message: at most max bytes, non-printable bytes as '?'. */
static void launch_printable(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++)
        dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
    dst[i] = '\0';
}

static void launch_unknown_app(agent *a, const char *name, Lb__LaunchReply *rep)
{
    char list[256] = "", shown[65];
    size_t len = 0;
    for (size_t i = 0; i < a->cfg->n_apps && len + 1 < sizeof list; i++) {
        int n = snprintf(list + len, sizeof list - len, "%s%s", i > 0 ? ", " : "",
                         a->cfg->apps[i].name);
        len += n > 0 ? (size_t)n : 0;
    }
    launch_printable(shown, sizeof shown, name);
    launch_fail(rep, "unknown app '%s' (this agent offers: %s)", shown,
                a->cfg->n_apps > 0 ? list : "none");
}

void launch_handle(agent *a, const Lb__LaunchRequest *req, Lb__LaunchReply *rep)
{
    const char *name = req->app != NULL ? req->app : "";
    const char *session = req->session_id != NULL ? req->session_id : "";
    const agent_app *app = agent_config_app(a->cfg, name);
    const char *result = NULL;
    char shown[AGENT_SESSION_MAX + 2];
    agent_proc *e = NULL;
    lb__launch_reply__init(rep);
    if (atomic_load(&a->stopping)) {
        launch_fail(rep, "agent '%s' is shutting down", a->cfg->id);
        result = "shutdown";
    } else if (app == NULL) {
        launch_unknown_app(a, name, rep);
        result = "unknown_app";
    } else if (!launch_session_valid(session)) {
        launch_printable(shown, sizeof shown, session);
        launch_fail(rep,
                    "invalid session_id '%s' (want 1-%d of A-Z a-z 0-9 _ -, not starting with -)",
                    shown, AGENT_SESSION_MAX);
        result = "bad_session";
    } else {
        result = launch_acquire(a, app, session, rep, &e);
        if (e != NULL)
            result = launch_finish(a, e, rep);
    }
    if (result != NULL &&
        (strcmp(result, "unknown_app") == 0 || strcmp(result, "bad_session") == 0))
        /* the peer's own text, raw: the logger escapes it */
        LOG_WARN(AGENT_COMP, "launch refused", "app=%s session=%s client=%s error=\"%s\"", name,
                 session, req->client_id != NULL ? req->client_id : "", rep->error);
    launch_count(app != NULL ? app->name : NULL, result);
}
