/*
 * The spawner: every app process is started by one long-lived thread.
 *
 * Why a thread of its own: the parent-death signal (PR_SET_PDEATHSIG) fires
 * when the *thread* that forked the child exits, not the process, so children
 * forked by short-lived threads would be killed early. glibc's posix_spawn
 * cannot set it (nor the cgroup, user or limits), so the spawner does what
 * posix_spawn does inside: clone(CLONE_VM | CLONE_VFORK) onto a stack of its
 * own, the agent's threads blocked from signals meanwhile. The child shares
 * the agent's memory until exec and the spawner waits for that exec, so no
 * page table is copied and no page of the agent is left copy-on-write: a
 * fork() of the agent cost more than the app's own start (the page copy in
 * the child, then copy-on-write faults and TLB shootdowns in every agent
 * thread), and pool refills run next to the request path. Between clone and
 * exec the child does only raw system calls that touch no memory but its own
 * stack (set*id through syscall(): glibc's wrappers would signal the agent's
 * threads to change theirs too), in this order:
 * join its cgroup (write "0" to the cgroup.procs the agent opened), own process
 * group, supplementary groups, gid, uid, limits, then the parent-death signal
 * (a uid change clears it, so it must come after), a check that the agent did
 * not die meanwhile, stdin from /dev/null, every other descriptor marked
 * close-on-exec, default signal handling, exec. A step that fails is reported
 * through a close-on-exec pipe (errno and the step), so the launch says what
 * failed; a successful exec closes the pipe with nothing written.
 *
 * Callers hold the process table lock while they spawn, so the child cannot
 * be reaped before its entry exists; the spawner never takes that lock.
 */
#define _GNU_SOURCE
#include "agent.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct spawn_job {
    const agent_app *app;
    char *const *argv;
    char *const *envp;
    int cg_fd;
    pid_t pid;
    int err;
    const char *step;
    bool done;
};

static const char *const spawn_steps[] = {"cgroup", "setpgid",   "setgroups", "setgid",
                                          "setuid", "setrlimit", "pdeathsig", "agent gone",
                                          "stdin",  "exec"};

typedef struct spawn_fail {
    int err;
    int step;
} spawn_fail;

/* In the child: reports step's failure and exits. */
static void spawn_child_fail(int fd, int step)
{
    spawn_fail f = {.err = errno, .step = step};
    if (write(fd, &f, sizeof f) < 0) {
        /* nothing more to do: the parent sees an exit status 127 */
    }
    _exit(127);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void spawn_child(const struct spawn_job *j, pid_t parent, int fd)
{
    const agent_app *app = j->app;
    if (j->cg_fd >= 0 && write(j->cg_fd, "0", 1) != 1)
        spawn_child_fail(fd, 0);
    if (setpgid(0, 0) != 0)
        spawn_child_fail(fd, 1);
    if (app->set_user) { /* raw calls: this process only (see the top) */
        if (syscall(SYS_setgroups, 1, &app->gid) != 0)
            spawn_child_fail(fd, 2);
        if (syscall(SYS_setgid, app->gid) != 0)
            spawn_child_fail(fd, 3);
        if (syscall(SYS_setuid, app->uid) != 0)
            spawn_child_fail(fd, 4);
    }
    for (size_t i = 0; i < app->n_limits; i++) {
        struct rlimit rl = {.rlim_cur = app->limit_val[i], .rlim_max = app->limit_val[i]};
        if (setrlimit(app->limit_res[i], &rl) != 0)
            spawn_child_fail(fd, 5);
    }
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        spawn_child_fail(fd, 6);
    if (getppid() != parent) { /* the agent died before the line above */
        errno = ESRCH;
        spawn_child_fail(fd, 7);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) != 0)
        spawn_child_fail(fd, 8);
    if (null != 0)
        close(null);
    /* the agent's sockets, lock and pipes never reach the app */
    close_range(3u, ~0u, CLOSE_RANGE_CLOEXEC);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL); /* fails harmlessly for KILL, STOP, glibc's own */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(j->argv[0], j->argv, j->envp);
    spawn_child_fail(fd, 9);
}

/* The child's stack: one, reused, since CLONE_VFORK holds the spawner until
 * the child has exec'ed or exited. */
#define SPAWN_STACK (256 * 1024)

typedef struct spawn_arg {
    const struct spawn_job *j;
    pid_t parent;
    int fd;
} spawn_arg;

static int spawn_child_main(void *arg)
{
    const spawn_arg *sa = arg;
    spawn_child(sa->j, sa->parent, sa->fd);
    return 127; /* not reached: spawn_child execs or exits */
}

/* On the spawner thread: clones, and waits for exec (or its failure). */
static void spawn_run(struct spawn_job *j, void *stack)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        j->err = errno;
        j->step = "pipe";
        return;
    }
    spawn_arg sa = {.j = j, .parent = getpid(), .fd = p[1]};
    /* a handler must not run in the child, on the agent's memory, before the
     * child has set every signal back to its default */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid =
        clone(spawn_child_main, (char *)stack + SPAWN_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &sa);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (pid < 0) {
        j->err = clone_errno;
        j->step = "fork";
        close(p[0]);
        return;
    }
    spawn_fail f;
    ssize_t r;
    while ((r = read(p[0], &f, sizeof f)) < 0 && errno == EINTR) {
    }
    close(p[0]);
    if (r == (ssize_t)sizeof f) { /* it never ran the app: reap it here */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        j->err = f.err != 0 ? f.err : EIO;
        j->step = f.step >= 0 && f.step < (int)(sizeof spawn_steps / sizeof spawn_steps[0])
                      ? spawn_steps[f.step]
                      : "?";
        return;
    }
    j->pid = pid;
}

static void *spawn_thread(void *arg)
{
    agent_contain *c = &((agent *)arg)->contain;
    void *stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    pthread_mutex_lock(&c->sp_lock);
    for (;;) {
        while (!c->sp_stop && (c->job == NULL || c->job->done))
            pthread_cond_wait(&c->sp_cond, &c->sp_lock);
        if (c->sp_stop)
            break;
        struct spawn_job *j = c->job;
        pthread_mutex_unlock(&c->sp_lock);
        if (stack == MAP_FAILED) {
            j->err = ENOMEM;
            j->step = "spawner stack";
        } else {
            spawn_run(j, stack);
        }
        pthread_mutex_lock(&c->sp_lock);
        j->done = true;
        pthread_cond_broadcast(&c->sp_cond);
    }
    pthread_mutex_unlock(&c->sp_lock);
    if (stack != MAP_FAILED)
        munmap(stack, SPAWN_STACK);
    return NULL;
}

lb_err spawn_start(agent *a, lb_errmsg *em)
{
    agent_contain *c = &a->contain;
    pthread_mutex_init(&c->sp_lock, NULL);
    pthread_cond_init(&c->sp_cond, NULL);
    if (pthread_create(&c->spawner, NULL, spawn_thread, a) != 0)
        return lb_fail(em, LB_ESYS, "cannot start the spawner thread");
    c->spawner_started = true;
    return LB_OK;
}

void spawn_stop(agent *a)
{
    agent_contain *c = &a->contain;
    if (!c->spawner_started)
        return;
    pthread_mutex_lock(&c->sp_lock);
    c->sp_stop = true;
    pthread_cond_broadcast(&c->sp_cond);
    pthread_mutex_unlock(&c->sp_lock);
    pthread_join(c->spawner, NULL);
    c->spawner_started = false;
    pthread_cond_destroy(&c->sp_cond);
    pthread_mutex_destroy(&c->sp_lock);
}

/* Writes the app's declared memory and cpu limits into its cgroup. */
static void spawn_cg_limits(agent *a, const agent_app *app, const char *name)
{
    char path[PATH_MAX], val[64];
    if (!a->contain.cg_limits || name[0] == '\0')
        return;
    if (app->memory_max > 0) {
        snprintf(path, sizeof path, "%s/%s/memory.max", a->contain.cg_base, name);
        snprintf(val, sizeof val, "%llu", (unsigned long long)app->memory_max);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, val, strlen(val)) < 0)
            obs_count("agent_cgroup_errors_total");
        if (fd >= 0)
            close(fd);
    }
    if (app->cpu_max_milli > 0) {
        snprintf(path, sizeof path, "%s/%s/cpu.max", a->contain.cg_base, name);
        snprintf(val, sizeof val, "%u 100000", app->cpu_max_milli * 100);
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, val, strlen(val)) < 0)
            obs_count("agent_cgroup_errors_total");
        if (fd >= 0)
            close(fd);
    }
}

int spawn_app(agent *a, const agent_app *app, char *const *argv, char *const *envp, agent_proc *e,
              char *why, size_t why_len)
{
    agent_contain *c = &a->contain;
    struct spawn_job j = {.app = app, .argv = argv, .envp = envp};
    j.cg_fd = contain_cg_new(a, e->cgroup);
    spawn_cg_limits(a, app, e->cgroup);
    pthread_mutex_lock(&c->sp_lock);
    while (c->job != NULL && !c->sp_stop)
        pthread_cond_wait(&c->sp_cond, &c->sp_lock);
    if (c->sp_stop || !c->spawner_started) {
        j.err = ECANCELED;
        j.step = "agent stopping";
    } else {
        c->job = &j;
        pthread_cond_broadcast(&c->sp_cond);
        while (!j.done)
            pthread_cond_wait(&c->sp_cond, &c->sp_lock);
        c->job = NULL;
        pthread_cond_broadcast(&c->sp_cond);
    }
    pthread_mutex_unlock(&c->sp_lock);
    if (j.cg_fd >= 0)
        close(j.cg_fd);
    if (j.err != 0) {
        snprintf(why, why_len, "%s: %s", j.step, strerror(j.err));
        contain_cg_release(a, e->cgroup);
        e->cgroup[0] = '\0';
        return j.err;
    }
    e->pid = j.pid;
    e->start_ticks = contain_start_ticks(j.pid);
    return 0;
}
