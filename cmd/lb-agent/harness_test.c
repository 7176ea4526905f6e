/* Helpers for agent_test (see harness_test.h). */
#include "harness_test.h"

#include "wire/wire.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H_MAX_TRACKED 256
#define H_CALL_TIMEOUT_MS 15000

extern char **environ;

typedef struct h_tracked_pid {
    pid_t pid;
    bool group; /* an app: its whole process group goes */
} h_tracked_pid;

static h_tracked_pid h_tracked[H_MAX_TRACKED];
static size_t h_n_tracked;
static etcd_client *h_etcd_client;

static int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *h_bin(void)
{
    const char *b = getenv("LBCP_BIN");
    return b != NULL ? b : "./bin";
}

const char *h_etcd_url(void)
{
    return getenv("LBCP_TEST_ETCD");
}

etcd_client *h_etcd(void)
{
    if (h_etcd_client == NULL && h_etcd_url() != NULL) {
        lb_errmsg em = {{0}};
        if (etcd_open(h_etcd_url(), 3000, &h_etcd_client, &em) != LB_OK) {
            fprintf(stderr, "etcd_open: %s\n", em.text);
            abort();
        }
    }
    return h_etcd_client;
}

void h_mkdtemp(char *out, size_t len)
{
    snprintf(out, len, "/tmp/agent_test_XXXXXX");
    if (mkdtemp(out) == NULL)
        abort();
}

void h_rmdir(const char *dir)
{
    char cmd[512];
    if (strncmp(dir, "/tmp/agent_test_", 16) != 0) /* never anything else */
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

uint16_t h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

void h_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0)
        abort();
    fclose(f);
}

char *h_read(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, len = 0, n;
    char *buf = calloc(1, cap + 1);
    if (f == NULL || buf == NULL) {
        if (f != NULL)
            fclose(f);
        return buf != NULL ? buf : calloc(1, 1);
    }
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

void h_track(pid_t pid, bool group)
{
    if (pid > 0 && h_n_tracked < H_MAX_TRACKED)
        h_tracked[h_n_tracked++] = (h_tracked_pid){.pid = pid, .group = group};
}

/* Every process started by this test run carries H_TAG=<our pid> in its
 * environment (agents inherit it, their apps too): found and killed even when
 * a crashed agent never told us an app's pid. */
#define H_TAG "LBCP_AGENT_TEST_TAG"

static void h_tag_env(void)
{
    char v[32];
    snprintf(v, sizeof v, "%d", (int)getpid());
    setenv(H_TAG, v, 1);
}

static bool h_tagged(pid_t pid)
{
    char path[64], want[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    size_t wlen = (size_t)snprintf(want, sizeof want, H_TAG "=%d", (int)getpid()) + 1;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i + wlen <= n; i += strlen(buf + i) + 1) {
        if (memcmp(buf + i, want, wlen) == 0)
            return true;
    }
    return false;
}

static void h_kill_tagged(pid_t keep)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && pid != getpid() && pid != keep && h_tagged(pid))
            kill(pid, SIGKILL);
    }
    if (d != NULL)
        closedir(d);
}

void h_kill_all_but(pid_t keep)
{
    size_t kept = 0;
    for (size_t i = 0; i < h_n_tracked; i++) {
        if (h_tracked[i].pid == keep) {
            h_tracked[kept++] = h_tracked[i];
            continue;
        }
        if (h_tracked[i].group)
            kill(-h_tracked[i].pid, SIGKILL);
        kill(h_tracked[i].pid, SIGKILL);
        waitpid(h_tracked[i].pid, NULL, WNOHANG);
    }
    h_n_tracked = kept;
    if (keep == 0)
        h_kill_tagged(0); /* with a shared agent up, its apps are tracked ones */
}

void h_kill_all(void)
{
    h_kill_all_but(0);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

/* Spawns lb-agent --config path with stderr to errpath. */
static pid_t h_spawn_agent(const char *path, const char *errpath)
{
    char exe[512];
    h_tag_env();
    snprintf(exe, sizeof exe, "%s/lb-agent", h_bin());
    char *argv[] = {exe, "--config", (char *)path, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    if (posix_spawn(&pid, exe, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    h_track(pid, false);
    return pid;
}

static int h_wait_pid(pid_t pid, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    int status = 0;
    while (h_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (r < 0)
            return -1;
        h_sleep_ms(20);
    }
    return -1;
}

int h_run_agent_config(const char *path, int timeout_ms, char **err)
{
    char errpath[512];
    snprintf(errpath, sizeof errpath, "%s.stderr", path);
    pid_t pid = h_spawn_agent(path, errpath);
    int st = pid > 0 ? h_wait_pid(pid, timeout_ms) : -1;
    *err = h_read(errpath);
    return st;
}

void h_agent_restart(h_agent *a)
{
    a->pid = h_spawn_agent(a->config, a->log);
    if (a->pid <= 0)
        abort();
}

pid_t h_child_named(pid_t parent, const char *comm)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (d != NULL && found == 0 && (e = readdir(d)) != NULL) {
        char path[64], buf[512], name[64];
        int pid = atoi(e->d_name), ppid = 0;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        if (lp == NULL || rp == NULL || sscanf(rp + 1, " %*c %d", &ppid) != 1)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(rp - lp - 1), lp + 1);
        if (ppid == parent && strcmp(name, comm) == 0)
            found = pid;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

size_t h_tagged_apps(pid_t *out, size_t cap)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        char path[64], exe[512] = "";
        if (pid <= 0 || pid == getpid() || !h_tagged(pid) || h_dead(pid))
            continue;
        snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
        ssize_t len = readlink(path, exe, sizeof exe - 1);
        exe[len > 0 ? len : 0] = '\0';
        if (strstr(exe, "lb-agent") != NULL)
            continue; /* an agent or its guard */
        if (n < cap)
            out[n] = pid;
        n++;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

void h_agent_start(h_agent *a, const char *id, const char *lease_ttl, const char *extra)
{
    h_agent_start_etcd(a, id, lease_ttl, h_etcd_url(), extra);
}

void h_agent_start_etcd(h_agent *a, const char *id, const char *lease_ttl, const char *etcd,
                        const char *extra)
{
    memset(a, 0, sizeof *a);
    h_mkdtemp(a->dir, sizeof a->dir);
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->config, sizeof a->config, "%s/agent.yaml", a->dir);
    snprintf(a->log, sizeof a->log, "%s/agent.log", a->dir);
    snprintf(a->listen, sizeof a->listen, "tcp://127.0.0.1:%u", h_free_port());
    uint16_t lo = h_free_port();
    lo = lo > 65000 ? 40000 : lo; /* a small range starting at a port that was free */
    char cfg[6144];
    snprintf(
        cfg, sizeof cfg,
        "# written by agent_test\n"
        "id: %s\nzone: z1\nregion: r1\ngroup: primary\npriority: 3\ncapacity: 7\n"
        "host: 127.0.0.1\nlisten: %s\netcd: %s\nprefix: /agent_test/\n"
        "tls: {insecure: true}\n"
        "lease_ttl: %s\n%s"
        "ports: {min: %u, max: %u}\nlabels: {gpu: \"true\", rack: r7}\n"
        "log_level: debug\nstate_dir: %s/state\n%s"
        "inherit_env: [PATH, LBCP_AGENT_TEST_TAG]\n"
        "apps:\n  echo:\n    argv: [%s/lb-echo, --port, \"{port}\", --session, "
        "\"{session}\"]\n    env: {LB_TEST: x}\n    ready_timeout: 5s\n"
        "  shared:\n    argv: [%s/lb-echo, --port, \"{port}\", --session, \"{session}\"]\n"
        "    per_session: false\n"
        "  sleeper:\n    argv: [sleep, \"30\"]\n    ready_timeout: 300ms\n"
        "  slow:\n    argv: [sleep, \"30\"]\n    ready_timeout: 3s\n"
        "  failer:\n    argv: [false]\n"
        "  orphaner:\n    argv: [%s/lb-echo, --port, \"{port}\", --session, \"{session}\", "
        "--fork-setsid]\n"
        "  boxed:\n    argv: [/usr/bin/python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n"
        "    user: nobody\n    group: nogroup\n"
        "    limits: {nofile: 256, nproc: 4096, as: 1GiB, cpu: 60s}\n%s",
        id, a->listen, etcd, lease_ttl,
        extra != NULL && strstr(extra, "report_interval") != NULL ? "" : "report_interval: 200ms\n",
        lo, lo + 40, a->dir,
        extra != NULL && strstr(extra, "shutdown_grace") != NULL ? "" : "shutdown_grace: 0s\n",
        h_bin(), h_bin(), h_bin(), extra != NULL ? extra : "");
    h_write(a->config, cfg);
    a->pid = h_spawn_agent(a->config, a->log);
    lb_errmsg em = {{0}};
    if (a->pid <= 0 || wire_req_dial(a->listen, &a->req, &em) != LB_OK)
        abort();
    a->req_open = true;
}

int h_agent_wait(h_agent *a, int timeout_ms)
{
    int st = h_wait_pid(a->pid, timeout_ms);
    return st;
}

void h_agent_close(h_agent *a)
{
    if (a->req_open)
        nng_close(a->req);
    a->req_open = false;
    if (a->dir[0] != '\0' && getenv("LBCP_TEST_KEEP") == NULL)
        h_rmdir(a->dir);
    a->dir[0] = '\0';
}

Lb__Envelope *h_call(h_agent *a, Lb__Envelope *req)
{
    Lb__Envelope *rep = NULL;
    lb_errmsg em = {{0}};
    req->version = WIRE_VERSION;
    req->request_id = wire_next_id();
    if (wire_call(a->req, req, H_CALL_TIMEOUT_MS, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK) {
        fprintf(stderr, "call to %s failed: %s\n", a->listen, em.text);
        return NULL;
    }
    if (rep->request_id != req->request_id) {
        lb__envelope__free_unpacked(rep, NULL);
        return NULL;
    }
    return rep;
}

Lb__Envelope *h_launch(h_agent *a, const char *app, const char *session)
{
    Lb__LaunchRequest lr = LB__LAUNCH_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    lr.app = (char *)app;
    lr.session_id = (char *)session;
    lr.client_id = "agent_test";
    env.body_case = LB__ENVELOPE__BODY_LAUNCH_REQUEST;
    env.launch_request = &lr;
    Lb__Envelope *rep = h_call(a, &env);
    if (rep != NULL && rep->body_case == LB__ENVELOPE__BODY_LAUNCH_REPLY &&
        rep->launch_reply->process != NULL)
        h_track(rep->launch_reply->process->pid, true);
    return rep;
}

Lb__Envelope *h_call_raw(h_agent *a, const void *buf, size_t len)
{
    nng_socket s;
    nng_msg *m = NULL;
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    if (wire_req_dial(a->listen, &s, &em) != LB_OK)
        return NULL;
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, H_CALL_TIMEOUT_MS);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, H_CALL_TIMEOUT_MS);
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0)
        abort();
    int rv = nng_sendmsg(s, m, 0);
    if (rv != 0)
        nng_msg_free(m);
    else if (nng_recvmsg(s, &m, 0) == 0) {
        env = lb__envelope__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
        nng_msg_free(m);
    }
    nng_close(s);
    return env;
}

int64_t h_stat(h_agent *a, const char *name)
{
    Lb__StatsRequest sr = LB__STATS_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &sr;
    Lb__Envelope *rep = h_call(a, &env);
    int64_t v = -1;
    if (rep != NULL && rep->body_case == LB__ENVELOPE__BODY_STATS_REPLY) {
        for (size_t i = 0; i < rep->stats_reply->n_stats; i++) {
            if (strcmp(rep->stats_reply->stats[i]->name, name) == 0)
                v = (int64_t)rep->stats_reply->stats[i]->value;
        }
    }
    if (rep != NULL)
        lb__envelope__free_unpacked(rep, NULL);
    return v;
}

const char *h_echo(const char *host, unsigned port, const char *line)
{
    static char buf[512];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 3};
    size_t len = 0;
    buf[0] = '\0';
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return buf;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && dprintf(fd, "%s\n", line) > 0) {
        while (len + 1 < sizeof buf && memchr(buf, '\n', len) == NULL) {
            ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
        }
    }
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    close(fd);
    return buf;
}

bool h_dead(pid_t pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *rp = strrchr(stat, ')'); /* state follows "(comm)" */
    return rp == NULL || rp[1] == '\0' || rp[2] == 'Z' || rp[2] == 'X';
}

bool h_wait_dead(pid_t pid, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    while (!h_dead(pid)) {
        if (h_now_ms() > deadline)
            return false;
        h_sleep_ms(20);
    }
    return true;
}

Lb__ServerInfo *h_server_info(const char *prefix, const char *id)
{
    char key[256];
    etcd_kvs kvs = {0};
    Lb__ServerInfo *si = NULL;
    snprintf(key, sizeof key, "%sservers/%s", prefix, id);
    if (etcd_get(h_etcd(), key, &kvs, NULL) == LB_OK && kvs.n == 1)
        si = lb__server_info__unpack(NULL, kvs.kvs[0].value_len, kvs.kvs[0].value);
    etcd_kvs_free(&kvs);
    return si;
}
