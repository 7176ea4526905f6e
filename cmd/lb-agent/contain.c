/*
 * Containment: no app process outlives its supervision, however the agent
 * ends.
 *
 *  - Each child gets the parent-death signal (spawn.c), so it dies with the
 *    agent's spawner thread. That does not reach its descendants.
 *  - Where the machine has a writable cgroup v2 hierarchy, each child runs in a
 *    cgroup of its own under the agent's (<own cgroup>/lbcp-agent-<id>-<hash of
 *    state_dir>/p<n>); its descendants stay in it, even after setsid, and
 *    `cgroup.kill` (which needs no controller) ends them all at once.
 *  - Without one, apps carry LBCP_AGENT_INSTANCE=<random> in their environment
 *    and are found by it (a descendant that clears its environment escapes;
 *    the log says at start that containment is weaker).
 *  - The state dir holds a lock (one agent per dir) and a record of every
 *    child (pid, start time, process group, cgroup). A guard process, forked
 *    before any thread, waits on a pipe from the agent: when the agent dies in
 *    any way (SIGKILL too) the pipe closes and the guard stops everything the
 *    record and the cgroups still hold. A restarted agent does the same before
 *    serving, for the case where the guard died as well.
 */
#define _GNU_SOURCE
#include "agent.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTAIN_LOCK_WAIT_MS 5000
#define CONTAIN_RMDIR_WAIT_MS 2000
#define CONTAIN_PENDING_MAX 4096

/* dir/name into out; false (out "") when it does not fit. */
static bool contain_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return false;
    }
    return true;
}

static bool contain_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len;
    close(fd);
    return ok;
}

static bool contain_read(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return true;
}

uint64_t contain_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!contain_read(path, buf, sizeof buf))
        return 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long t = 0;
    if (p == NULL || sscanf(p + 1,
                            " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                            "%*d %*d %llu",
                            &t) != 1)
        return 0;
    return t;
}

/* ---- cgroups ---- */

/* The cgroup v2 mount point, or NULL. */
static char *contain_cg2_mount(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[1024], *found = NULL;
    while (f != NULL && found == NULL && fgets(line, sizeof line, f) != NULL) {
        char mnt[512], fstype[64];
        const char *dash = strstr(line, " - ");
        if (dash == NULL || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
            continue;
        if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1)
            found = lb_strdup(mnt);
    }
    if (f != NULL)
        fclose(f);
    return found;
}

/* The agent's own cgroup v2 path ("/..."), or NULL. */
static char *contain_own_cgroup(void)
{
    char buf[4096];
    if (!contain_read("/proc/self/cgroup", buf, sizeof buf))
        return NULL;
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "0::", 3) == 0)
            return lb_strdup(line + 3);
    }
    return NULL;
}

static uint32_t contain_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* Kills every process in dir (descendants included) and removes it, waiting
 * up to wait_ms for them to go; true when removed. */
static bool contain_cg_kill_dir(const char *dir, int64_t wait_ms)
{
    char path[PATH_MAX];
    contain_join(path, sizeof path, dir, "cgroup.kill");
    contain_write(path, "1");
    int64_t deadline = lb_mono_ms() + wait_ms;
    for (;;) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return true;
        if (errno != EBUSY || lb_mono_ms() >= deadline)
            return false;
        lb_sleep_ms(10);
    }
}

/* Kills and removes every child cgroup of base; returns how many held a process. */
static size_t contain_cg_kill_children(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *de;
    size_t n = 0;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char dir[PATH_MAX], procs[PATH_MAX], buf[64] = "";
        snprintf(dir, sizeof dir, "%s/%s", base, de->d_name);
        contain_join(procs, sizeof procs, dir, "cgroup.procs");
        if (contain_read(procs, buf, sizeof buf) && buf[0] != '\0')
            n++;
        if (!contain_cg_kill_dir(dir, CONTAIN_RMDIR_WAIT_MS))
            LOG_WARN(AGENT_COMP, "cannot remove cgroup", "path=%s error=\"%s\"", dir,
                     strerror(errno));
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Picks this agent's cgroup dir and checks that it works; says once why not. */
static void contain_cg_setup(agent *a)
{
    agent_contain *c = &a->contain;
    char *mnt = contain_cg2_mount(), *own = contain_own_cgroup();
    char base[PATH_MAX], probe[PATH_MAX];
    const char *why = NULL;
    if (!a->cfg->cgroup)
        why = "cgroup: off in the config";
    else if (mnt == NULL || own == NULL)
        why = "no cgroup v2 hierarchy mounted";
    if (why == NULL) {
        snprintf(base, sizeof base, "%s%s/lbcp-agent-%s-%08x", mnt,
                 strcmp(own, "/") == 0 ? "" : own, a->cfg->id, contain_hash(c->state_dir));
        contain_join(probe, sizeof probe, base, "cgroup.kill");
        if (mkdir(base, 0755) != 0 && errno != EEXIST)
            why = "cannot create a cgroup there";
        else if (access(probe, W_OK) != 0)
            why = "no cgroup.kill (kernel older than 5.14)";
    }
    if (why != NULL) {
        LOG_WARN(AGENT_COMP,
                 "no cgroup per process: apps are found by an environment marker and "
                 "limited by setrlimit only",
                 "reason=\"%s\" cgroup2=%s", why, mnt != NULL ? mnt : "none");
        free(mnt);
        free(own);
        return;
    }
    c->cg_base = lb_strdup(base);
    contain_join(probe, sizeof probe, base, "cgroup.subtree_control");
    c->cg_limits = contain_write(probe, "+memory +cpu");
    char ctl[256] = "";
    contain_join(probe, sizeof probe, base, "cgroup.controllers");
    contain_read(probe, ctl, sizeof ctl);
    ctl[strcspn(ctl, "\n")] = '\0';
    if (c->cg_limits)
        LOG_INFO(AGENT_COMP, "a cgroup per process, with memory and cpu limits", "cgroup=%s", base);
    else
        LOG_WARN(AGENT_COMP,
                 "a cgroup per process, but the memory and cpu controllers are not enabled "
                 "there: memory and cpu limits by setrlimit only",
                 "cgroup=%s controllers=\"%s\"", base, ctl);
    free(mnt);
    free(own);
}

/* Without the memory controller an app's memory limit becomes RLIMIT_AS
 * (unless it sets `as` itself); without the cpu controller its cpus limit is
 * not enforced. Said once per app, at start. */
void contain_limits_fallback(agent *a, agent_config *cfg)
{
    if (a->contain.cg_limits)
        return;
    for (size_t i = 0; i < cfg->n_apps; i++) {
        agent_app *app = &cfg->apps[i];
        bool has_as = false;
        for (size_t k = 0; k < app->n_limits; k++)
            has_as = has_as || app->limit_res[k] == RLIMIT_AS;
        if (app->memory_max > 0 && !has_as && app->n_limits < AGENT_LIMITS_MAX) {
            app->limit_res[app->n_limits] = RLIMIT_AS;
            app->limit_val[app->n_limits++] = app->memory_max;
            LOG_WARN(AGENT_COMP,
                     "no memory controller: the app's memory limit is its address space",
                     "app=%s limit=%llu", app->name, (unsigned long long)app->memory_max);
        }
        if (app->cpu_max_milli > 0)
            LOG_WARN(AGENT_COMP, "no cpu controller: the app's cpus limit is not enforced",
                     "app=%s cpus=%.2f", app->name, app->cpu_max_milli / 1000.0);
    }
}

int contain_cg_new(agent *a, char *name)
{
    agent_contain *c = &a->contain;
    name[0] = '\0';
    if (c->cg_base == NULL)
        return -1;
    char dir[PATH_MAX], procs[PATH_MAX];
    snprintf(name, AGENT_CGROUP_NAME,
             "p%llu", /* atomic: the pool thread spawns without the table lock */
             (unsigned long long)__atomic_add_fetch(&c->cg_seq, 1, __ATOMIC_RELAXED));
    snprintf(dir, sizeof dir, "%s/%s", c->cg_base, name);
    contain_join(procs, sizeof procs, dir, "cgroup.procs");
    int fd = -1;
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        LOG_WARN(AGENT_COMP, "cannot create the process's cgroup", "path=%s error=\"%s\"", dir,
                 strerror(errno));
        obs_count("agent_cgroup_errors_total");
        rmdir(dir);
        name[0] = '\0';
    }
    return fd;
}

void contain_cg_release(agent *a, const char *name)
{
    agent_contain *c = &a->contain;
    if (c->cg_base == NULL || name[0] == '\0')
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", c->cg_base, name);
    if (contain_cg_kill_dir(dir, 0))
        return;
    pthread_mutex_lock(&c->lock);
    if (c->n_cg_pending < CONTAIN_PENDING_MAX) {
        char **v = realloc(c->cg_pending, (c->n_cg_pending + 1) * sizeof *v);
        if (v != NULL) {
            c->cg_pending = v;
            v[c->n_cg_pending++] = lb_strdup(dir);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void contain_tick(agent *a)
{
    agent_contain *c = &a->contain;
    pthread_mutex_lock(&c->lock);
    size_t kept = 0;
    for (size_t i = 0; i < c->n_cg_pending; i++) {
        if (contain_cg_kill_dir(c->cg_pending[i], 0))
            free(c->cg_pending[i]);
        else
            c->cg_pending[kept++] = c->cg_pending[i];
    }
    c->n_cg_pending = kept;
    pthread_mutex_unlock(&c->lock);
}

/* ---- the state file ---- */

static void contain_state_path(const agent *a, char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", a->contain.state_dir, name);
}

void contain_save_locked(agent *a)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    contain_state_path(a, path, sizeof path, "procs");
    contain_state_path(a, tmp, sizeof tmp, "procs.tmp");
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        obs_count("agent_state_write_errors_total");
        return;
    }
    fprintf(f, "instance %s\n", a->contain.instance);
    for (const agent_proc *e = a->procs.head; e != NULL; e = e->next) {
        if (!e->exited)
            fprintf(f, "proc %d %llu %s\n", (int)e->pid, (unsigned long long)e->start_ticks,
                    e->cgroup[0] != '\0' ? e->cgroup : "-");
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        obs_count("agent_state_write_errors_total");
}

/* Kills pid's group and pid when pid is still the process recorded (same
 * start time); true when it was. */
static bool contain_kill_recorded(pid_t pid, uint64_t ticks)
{
    if (pid <= 1 || ticks == 0 || contain_start_ticks(pid) != ticks)
        return false;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    return true;
}

/* Kills every process whose environment carries our instance marker. */
static size_t contain_kill_marked(const char *instance)
{
    char want[64];
    size_t wlen = (size_t)snprintf(want, sizeof want, "LBCP_AGENT_INSTANCE=%s", instance) + 1;
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t n = 0;
    static char buf[65536];
    while (d != NULL && (de = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(de->d_name);
        char path[64];
        if (pid <= 1 || pid == getpid())
            continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf);
        close(fd);
        for (ssize_t i = 0; len > 0 && i + (ssize_t)wlen <= len;
             i += (ssize_t)strlen(buf + i) + 1) {
            if (memcmp(buf + i, want, wlen) == 0) {
                kill(pid, SIGKILL);
                n++;
                break;
            }
        }
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* Stops what the state file and the cgroups still hold; returns how many
 * processes (or cgroups) it stopped. Used at start, by the guard and at stop. */
static size_t contain_kill_leftovers(agent *a)
{
    agent_contain *c = &a->contain;
    char path[PATH_MAX], line[256], instance[40] = "";
    size_t n = 0;
    contain_state_path(a, path, sizeof path, "procs");
    FILE *f = fopen(path, "re");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        int pid = 0;
        unsigned long long ticks = 0;
        if (sscanf(line, "instance %32s", instance) == 1)
            continue;
        if (sscanf(line, "proc %d %llu", &pid, &ticks) == 2)
            n += contain_kill_recorded((pid_t)pid, ticks);
    }
    if (f != NULL)
        fclose(f);
    if (c->cg_base != NULL)
        n += contain_cg_kill_children(c->cg_base);
    else if (instance[0] != '\0')
        n += contain_kill_marked(instance);
    unlink(path);
    return n;
}

/* ---- the guard ---- */

/* The guard: waits for the agent to go, then stops what it left. Never
 * returns. Forked before any thread exists, so plain calls are safe here. */
static void contain_guard(agent *a, int rfd)
{
    prctl(PR_SET_NAME, "lb-agent-guard", 0, 0, 0);
    for (int fd = 3; fd < 1024; fd++) {
        if (fd != rfd && fd != a->contain.lock_fd)
            close(fd);
    }
    char b;
    for (;;) {
        ssize_t r = read(rfd, &b, 1);
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
    size_t n = contain_kill_leftovers(a);
    if (n > 0)
        LOG_WARN(AGENT_COMP, "agent gone: the guard stopped its processes", "count=%zu", n);
    if (a->contain.cg_base != NULL)
        rmdir(a->contain.cg_base);
    _exit(0); /* no atexit handlers: they belong to the agent */
}

static lb_err contain_guard_start(agent *a, lb_errmsg *em)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return lb_fail(em, LB_ESYS, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return lb_fail(em, LB_ESYS, "cannot fork the guard: %s", strerror(errno));
    }
    if (pid == 0) {
        close(p[1]);
        contain_guard(a, p[0]);
    }
    close(p[0]);
    a->contain.guard_fd = p[1];
    a->contain.guard_pid = pid;
    return LB_OK;
}

/* ---- start and stop ---- */

static lb_err contain_open_dir(agent *a, lb_errmsg *em)
{
    agent_contain *c = &a->contain;
    const char *dir = a->cfg->state_dir;
    char path[PATH_MAX];
    for (char *s = strchr(dir + 1, '/');; s = strchr(s + 1, '/')) { /* mkdir -p */
        size_t len = s != NULL ? (size_t)(s - dir) : strlen(dir);
        snprintf(path, sizeof path, "%.*s", (int)len, dir);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return lb_fail(em, LB_ESYS, "state_dir %s: cannot create %s: %s", dir, path,
                           strerror(errno));
        if (s == NULL)
            break;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return lb_fail(em, LB_ESYS, "state_dir %s: not a directory owned by uid %d", dir,
                       (int)geteuid());
    char *abs = realpath(dir, NULL);
    if (abs == NULL)
        return lb_fail(em, LB_ESYS, "state_dir %s: %s", dir, strerror(errno));
    c->state_dir = abs;
    snprintf(path, sizeof path, "%s/lock", abs);
    c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lock_fd < 0)
        return lb_fail(em, LB_ESYS, "state_dir %s: cannot open lock: %s", abs, strerror(errno));
    /* a guard still cleaning up after the previous agent holds it a moment */
    int64_t deadline = lb_mono_ms() + CONTAIN_LOCK_WAIT_MS;
    while (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (lb_mono_ms() >= deadline)
            return lb_fail(em, LB_EEXISTS,
                           "state_dir %s is in use by another lb-agent (each agent needs its own)",
                           abs);
        lb_sleep_ms(20);
    }
    return LB_OK;
}

lb_err contain_start(agent *a, lb_errmsg *em)
{
    agent_contain *c = &a->contain;
    c->lock_fd = -1;
    c->guard_fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    lb_err err = contain_open_dir(a, em);
    if (err != LB_OK)
        return err;
    contain_cg_setup(a);
    size_t n = contain_kill_leftovers(a);
    if (n > 0) {
        LOG_WARN(AGENT_COMP, "stopped processes a previous agent left running", "count=%zu", n);
        obs_add(obs_counter_get("agent_leftovers_stopped_total"), n);
    }
    contain_limits_fallback(a, a->cfg);
    lb_random_id(c->instance);
    pthread_mutex_lock(&a->procs.lock);
    contain_save_locked(a);
    pthread_mutex_unlock(&a->procs.lock);
    return contain_guard_start(a, em);
}

void contain_stop(agent *a)
{
    agent_contain *c = &a->contain;
    if (c->state_dir == NULL)
        return;
    size_t n = contain_kill_leftovers(a); /* descendants of exited apps */
    if (n > 0)
        LOG_INFO(AGENT_COMP, "stopped what apps left behind", "count=%zu", n);
    contain_tick(a);
    if (c->cg_base != NULL && rmdir(c->cg_base) != 0 && errno != ENOENT)
        LOG_WARN(AGENT_COMP, "cannot remove cgroup", "path=%s error=\"%s\"", c->cg_base,
                 strerror(errno));
    if (c->guard_fd >= 0)
        close(c->guard_fd); /* the guard finds nothing left and exits */
    for (size_t i = 0; i < c->n_cg_pending; i++)
        free(c->cg_pending[i]);
    free(c->cg_pending);
    free(c->cg_base);
    free(c->state_dir);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof *c);
}
