/*
 * lb-agent: runs on each processing server. It registers the server in etcd
 * under a kept-alive lease, publishes load reports to every master, launches
 * allow-listed applications on request (LaunchRequest over REQ/REP) and
 * supervises them (reaping, stop, shutdown).
 *
 * One agent struct holds all state; each file owns one concern:
 *   config.c   YAML -> agent_config (every key, its default, its checks)
 *   procs.c    the process table and reaping
 *   contain.c  containment: state dir and its lock, a cgroup per process, the
 *              guard that kills everything when the agent dies, leftovers
 *   spawn.c    the spawner thread: fork, sandbox (cgroup, user, limits,
 *              parent-death signal, descriptors, environment), exec
 *   launch.c   LaunchRequest: reuse, port choice, spawn, readiness
 *   report.c   ServerLoad by datagram (report_udp.c) or nng (report_pub.c), host resources
 *   register.c ServerInfo in etcd under the keeper's lease
 *   rpc.c      REP socket, worker threads, request dispatch
 *   lifecycle.c signals: the main loop, reload (SIGHUP), drain (SIGTERM), shutdown
 *   main.c     flags, start
 */
#ifndef LB_AGENT_H
#define LB_AGENT_H

#include "config/cfg_tls.h"
#include "etcd/etcd.h"
#include "lb.pb-c.h"
#include "lb/err.h"
#include "wire/sid_digest.h"

#include <limits.h>
#include <nng/nng.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_COMP "agent"
#define AGENT_WORKERS 8
#define AGENT_SESSION_MAX 64
#define AGENT_EXITED_MAX 4096
#define AGENT_ORPHANS 64
#define AGENT_CGROUP_NAME 32
#define AGENT_LIMITS_MAX 8
#define AGENT_RELOADS_MAX 256 /* reloads kept apart; later ones free their config at exit */

/* ---- configuration (config.c) ---- */

typedef struct agent_app {
    char *name;
    char **argv; /* templates; argv[0] resolved to an absolute path at load */
    size_t argc;
    char **env; /* "KEY=value", added to (and overriding) the agent's environment */
    size_t n_env;
    int64_t ready_timeout_ms;
    bool per_session; /* false: one shared process serves every session */
    bool relay;       /* link: relay (clients connect through the slave's relay) */
    /* sandbox (spawn.c): who it runs as and its limits */
    bool set_user; /* false: the agent's own user (only when it is not root) */
    uid_t uid;
    gid_t gid;
    char *user;                      /* name, for messages */
    int limit_res[AGENT_LIMITS_MAX]; /* RLIMIT_* */
    uint64_t limit_val[AGENT_LIMITS_MAX];
    size_t n_limits;
    uint64_t memory_max;         /* cgroup memory.max in bytes; 0: none */
    uint32_t cpu_max_milli;      /* cgroup cpu.max in thousandths of a core; 0: none */
    uint32_t pool_min, pool_max; /* warm pool: ready unassigned processes kept (pool.c) */
    bool poolable; /* per-session and argv without {session}: the etcd override applies */
} agent_app;

typedef struct agent_config {
    char *file;
    char *id, *zone, *region, *group;
    int32_t priority;
    uint32_t capacity;
    char *host;      /* advertised host of the processes; readiness connects here */
    char *listen;    /* launch RPC endpoint */
    char *advertise; /* endpoint masters dial (default: listen) */
    char **report;
    size_t n_report;
    char *etcd;             /* comma-separated endpoints */
    etcd_security etcd_sec; /* etcd_tls, etcd_user, etcd_password_file */
    char *prefix;
    int64_t lease_ttl_ms, report_interval_ms;
    int64_t
        report_nng_idle_ms; /* datagram-only time before the nng report socket closes; 0: never */
    uint32_t port_min, port_max;
    char **label_keys, **label_values;
    size_t n_labels;
    uint64_t max_message;
    char *log_level;
    char *http_listen;         /* HOST:PORT of /metrics and /healthz; empty: off */
    char *state_dir;           /* the agent's own files (lock, process records) */
    char *identity_key;        /* report signing seed; empty: <state_dir>/identity.key */
    char *default_user;        /* apps' user when the agent is root and an app names none */
    bool cgroup;               /* cgroup: auto (true) or off */
    int64_t shutdown_grace_ms; /* SIGTERM: how long held sessions keep their processes */
    char **inherit_env;        /* names passed from the agent's environment to apps */
    size_t n_inherit_env;
    char *arch, *os;      /* advertised instead of uname's when not empty */
    char **reachable_via; /* slave ids or zones clients reach this server through */
    size_t n_reachable_via;
    cfg_tls tls; /* certificates and CAs of every nng link */
    agent_app *apps;
    size_t n_apps;
} agent_config;

/* An app's user, group, allow_root and limits (config_sandbox.c). */
struct cfg_doc;
struct cfg_node;
lb_err agent_config_sandbox(const struct cfg_doc *d, const struct cfg_node *n,
                            const char *default_user, agent_app *a, lb_errmsg *em);

/* Loads and checks path into cfg (zeroed by the caller). On failure em holds
 * "file:line: key: problem" and cfg holds nothing to free. */
lb_err agent_config_load(const char *path, agent_config *cfg, lb_errmsg *em);
void agent_config_free(agent_config *cfg);
const agent_app *agent_config_app(const agent_config *cfg, const char *name);

/* ---- process table (procs.c) ---- */

typedef struct agent_proc {
    pid_t pid; /* also its process group */
    uint16_t port;
    char session[AGENT_SESSION_MAX + 1];
    const agent_app *app;
    int64_t started_at_ms;
    int64_t ready_at_ms;            /* wall time it was handed out (0: not yet) */
    uint64_t start_ticks;           /* /proc/PID/stat starttime: tells a reused pid apart */
    char cgroup[AGENT_CGROUP_NAME]; /* its cgroup's name under the agent's, "" if none */
    bool pooled;                    /* warm pool: no session yet (""); a launch hands it out */
    int64_t probed_ms;              /* pooled: last listener probe (mono), pool thread */
    bool starting;                  /* spawned, not yet ready: its launch owns it */
    bool exited;                    /* reaped while starting: status is valid */
    bool failed;                    /* launch gave up on it: reaped silently, never reused */
    int status;
    struct agent_proc *next;
} agent_proc;

typedef struct agent_procs {
    pthread_mutex_t lock; /* guards everything below; waitpid runs under it */
    agent_proc *head;
    int32_t exited[AGENT_EXITED_MAX]; /* pids reaped since the last report */
    size_t n_exited;
    uint32_t next_port; /* where the next port search starts */
    /* A pool refill spawns without this lock (a hand-out must never wait for
     * a fork + exec): its port is reserved here until its entry is in the
     * table, and a child reaped before that is remembered here, so its exit
     * is not lost (procs_adopt_locked). */
    uint16_t reserved_port;
    pid_t orphan_pid[AGENT_ORPHANS];
    int orphan_status[AGENT_ORPHANS];
    size_t n_orphans;     /* ring: the oldest is overwritten */
    atomic_bool reap_due; /* the main loop took a SIGCHLD: the next reap walks */
} agent_procs;

/* ---- containment (contain.c) and the spawner (spawn.c) ---- */

typedef struct spawn_job spawn_job;

typedef struct agent_contain {
    char *state_dir;   /* absolute */
    int lock_fd;       /* <state_dir>/lock, flock'ed while this agent (or its guard) lives */
    char *cg_base;     /* this agent's cgroup directory; NULL: no cgroup */
    bool cg_limits;    /* memory and cpu controllers usable in cg_base */
    char instance[33]; /* random; marks apps' environment when there is no cgroup */
    uint64_t cg_seq;   /* names of per-process cgroups */
    int guard_fd;      /* write end of the guard's pipe; -1 none */
    pid_t guard_pid;
    pthread_mutex_t lock; /* guards the cgroups still to remove */
    char **cg_pending;
    size_t n_cg_pending;
    /* the spawner thread: every child is forked by this one long-lived thread,
     * because the parent-death signal fires when the forking thread exits */
    pthread_t spawner;
    bool spawner_started;
    pthread_mutex_t sp_lock;
    pthread_cond_t sp_cond;
    spawn_job *job; /* the one job in hand (callers queue on sp_lock) */
    bool sp_stop;
} agent_contain;

/* ---- the agent ---- */

struct agent;
typedef struct rpc_slot {
    struct agent *a;
    nng_aio *aio; /* the worker's; rpc_stop stops it */
} rpc_slot;

typedef struct agent {
    /* The running config. SIGHUP swaps in a new one (main thread); a replaced
     * one is kept until exit (retired), because workers may still hold its
     * apps: read the pointer once where several fields must agree. */
    agent_config *_Atomic cfg;
    agent_config *retired[AGENT_RELOADS_MAX];
    size_t n_retired;
    int64_t started_at_ms;
    atomic_bool stopping; /* set at shutdown: launches refuse and give up */
    atomic_bool draining; /* SIGTERM: no new processes; held sessions go on */
    agent_procs procs;
    agent_contain contain;
    pthread_t pool_thread;
    bool pool_started;
    pthread_mutex_t pool_lock; /* guards pool_stop and pool_wake */
    pthread_cond_t pool_cond;
    bool pool_quit, pool_wake;
    atomic_int_fast64_t pool_hit_ms; /* last hand-out (mono ms): refills wait for quiet */
    atomic_bool pool_report_due;     /* a hand-out not yet reported */
    atomic_uint_fast64_t launches;   /* processes started since start */

    nng_socket rep; /* launch RPC */
    bool rep_open;
    pthread_t workers[AGENT_WORKERS];
    rpc_slot rpc_slots[AGENT_WORKERS];
    atomic_bool rpc_quit;
    size_t n_workers;

    nng_socket pub;              /* load reports over nng, dialed while needed (report_pub.c) */
    bool pub_open;               /* pub is open and dialed; report_lock */
    atomic_bool report_on;       /* from report_open to report_close */
    pthread_mutex_t report_lock; /* orders reports (seq) */
    uint64_t report_seq;         /* starts at wall ms * 1000: grows across restarts */
    unsigned char id_sk[64];     /* identity key (auth/report_sig.h): signs reports */
    unsigned char id_pk[32];     /* its public half, published in servers/<id> */

    etcd_client *etcd;
    etcd_keeper *keeper; /* set by the registration thread once granted */
    pthread_t reg_thread;
    bool reg_started;
    pthread_mutex_t reg_lock; /* guards keeper and reg_stop */
    pthread_cond_t reg_cond;
    bool reg_stop;
} agent;

void procs_init(agent_procs *p, uint32_t first_port);
void procs_destroy(agent_procs *p);
/* Reaps every exited child; returns how many running (not starting) processes
 * went, which the caller reports. procs_reap_locked needs p->lock held. Both
 * skip the waitpid walk (it visits every child in the kernel) unless a child
 * may have exited since the last reap: SIGCHLD is pending (it is blocked in
 * every thread until the main loop takes it) or the main loop took it and
 * called procs_reap_mark. */
size_t procs_reap(agent *a);
size_t procs_reap_locked(agent *a);
/* The main loop took a SIGCHLD (or reaps anyway): the next reap walks. Any thread. */
void procs_reap_mark(agent *a);
/* The live process of session (NULL if none); p->lock held. */
agent_proc *procs_find_session_locked(agent_procs *p, const char *session);
/* The live shared process of app (per_session false); p->lock held. */
agent_proc *procs_find_shared_locked(agent_procs *p, const agent_app *app);
bool procs_port_used_locked(agent_procs *p, uint16_t port);
size_t procs_live_locked(agent_procs *p);
void procs_insert_locked(agent_procs *p, agent_proc *e);
/* Inserts e, spawned without p->lock, and books its exit if it was already
 * reaped meanwhile. p->lock held. */
void procs_adopt_locked(agent *a, agent_proc *e);
void procs_remove_locked(agent_procs *p, agent_proc *e);
/* Sends sig to the process group of every live process; returns how many. */
size_t procs_signal_all(agent *a, int sig);
/* "exit status 3" or "killed by signal 9" into buf, returned. */
const char *procs_status_text(int status, char *buf, size_t len);
/* SIGTERM to session's process group: LB_ENOTFOUND when it has none. */
lb_err procs_stop_session(agent *a, const char *session);
/* Stops every per-session process handed out more than grace_ms ago whose
 * session is not in keep (the master's live sessions); returns how many. */
size_t procs_sync_sessions(agent *a, char *const *keep, size_t n_keep, int64_t grace_ms);
/* Fills sessions (running processes), per-app counts (cfg.n_apps entries),
 * the digest of the sessions of per-session processes (what a session sync
 * looks at: wire/sid_digest.h) and moves the exited pids into *exited
 * (caller frees). */
void procs_snapshot(agent *a, const agent_config *cfg, uint32_t *sessions, uint32_t *per_app,
                    uint32_t *ready, int32_t **exited, size_t *n_exited, wire_sid_digest *dg);
/* After a reload to nc: points every entry at nc's app of the same name and
 * stops (SIGTERM) the processes of apps nc no longer offers; how many. p->lock held. */
size_t procs_rebind_locked(agent *a, const agent_config *nc);
/* Per-session processes (starting ones included) still serving a session. */
size_t procs_sessions_live(agent *a);

/* Opens the state dir (locked: one agent per dir), stops what a previous
 * agent of this dir left running, sets up cgroups (or says once why not) and
 * forks the guard. Call before any thread exists. */
lb_err contain_start(agent *a, lb_errmsg *em);
/* Kills whatever is left in the agent's cgroups, removes them and the state
 * file, ends the guard and releases the dir. After every child was reaped. */
void contain_stop(agent *a);
/* A per-process cgroup for the next child: its name into name (cap
 * AGENT_CGROUP_NAME) and an open fd of its cgroup.procs, or -1 with name "". */
int contain_cg_new(agent *a, char *name);
/* Kills what remains in the cgroup name (a process's descendants) and removes
 * it, now or at a later contain_tick. */
void contain_cg_release(agent *a, const char *name);
/* Applies the fallbacks for app limits the cgroup cannot enforce to cfg's
 * apps, saying so in the log (at start and for a reloaded config). */
void contain_limits_fallback(agent *a, agent_config *cfg);
/* Retries removals of cgroups whose processes were still exiting. */
void contain_tick(agent *a);
/* Rewrites the state file from the process table; p->lock held. */
void contain_save_locked(agent *a);
/* starttime of pid from /proc/PID/stat (0 if gone). */
uint64_t contain_start_ticks(pid_t pid);

lb_err spawn_start(agent *a, lb_errmsg *em);
void spawn_stop(agent *a);
/* Starts app with argv/envp from the spawner thread, in its own process group
 * and cgroup, sandboxed. On success fills e's pid, start_ticks and cgroup and
 * returns 0; else an errno (what failed in why). p->lock held by the caller so
 * the child cannot be reaped before its entry exists, except for the pool
 * thread (launch_start_pool: procs_adopt_locked books an early exit). */
int spawn_app(agent *a, const agent_app *app, char *const *argv, char *const *envp, agent_proc *e,
              char *why, size_t why_len);

/* ---- listeners (listeners.c) ---- */

/* Inodes of the TCP sockets (IPv4 and IPv6) listening on port into ino (at
 * most cap); returns how many. Thread-safe, no lock. */
size_t listeners_on_port(uint16_t port, unsigned long *ino, size_t cap);
#define LISTENERS_BITMAP_BYTES (65536 / 8)
/* Sets bit p (bits[p / 8] & (1 << p % 8)) for every port p some TCP socket
 * (IPv4 or IPv6) listens on, and clears the rest. Thread-safe, no lock. */
void listeners_ports(uint8_t bits[LISTENERS_BITMAP_BYTES]);

/* ---- launch (launch.c) ---- */

/* Answers one LaunchRequest into rep (whose strings and process the caller
 * frees with launch_reply_clear). Blocks up to the app's ready_timeout. */
void launch_handle(agent *a, const Lb__LaunchRequest *req, Lb__LaunchReply *rep);
void launch_reply_clear(Lb__LaunchReply *rep);
bool launch_session_valid(const char *s);

/* Waits until e's port accepts a connection on a socket e owns. NULL when
 * ready, else the result label with rep holding the error (launch.c). */
const char *launch_wait_ready(agent *a, agent_proc *e, Lb__LaunchReply *rep);
/* Spawns app (session "" for a pool process) on a free port; p->lock held.
 * NULL with *out set, or the result label with rep holding the error. */
/* launch_start_locked for a pool process, called WITHOUT p->lock (it forks
 * without it); the entry is pooled and starting. Only the pool thread. */
const char *launch_start_pool(agent *a, const agent_app *app, Lb__LaunchReply *rep,
                              agent_proc **out);
const char *launch_start_locked(agent *a, const agent_app *app, const char *session,
                                Lb__LaunchReply *rep, agent_proc **out);
/* True when e still accepts connections; else kills it and marks it failed. */
bool launch_alive_locked(agent *a, agent_proc *e);
/* The hand-out's check: true unless e is exiting (one /proc read, no connect;
 * the pool thread checks the listeners, pool.c); else as above. */
bool launch_not_dying_locked(agent_proc *e);

/* ---- warm pools (pool.c) ---- */

/* Starts the pool thread, which keeps each app's min_ready processes started,
 * ready and unassigned (0 while draining), replaces dead ones and stops extras. */
lb_err pool_start(agent *a, lb_errmsg *em);
void pool_stop(agent *a);
/* Wakes the pool thread (a hand-out, an exit, a drain, a reload). */
void pool_kick(agent *a);
/* A hand-out's report and pool_kick, deferred: pool_kick_later marks the
 * calling thread's request as having taken a pool process; pool_kick_due (the
 * RPC worker, after sending the answer) books the report and kicks if so; the
 * pool thread reports and refills once hand-outs pause. Per thread. */
void pool_kick_later(void);
bool pool_kick_due(agent *a); /* true: this thread's request was a hand-out */
/* A ready pool process of app bound to session, or NULL (a miss); p->lock held. */
agent_proc *pool_take_locked(agent *a, const agent_app *app, const char *session);
/* Frees a slot for a launch at capacity by stopping a pool process of another
 * app; true when one went. p->lock held. */
bool pool_evict_locked(agent *a, const agent_app *keep);

/* ---- reports (report.c) ---- */

typedef struct agent_res {
    uint32_t cores;
    double cpu_load;
    uint64_t mem_total, mem_free, disk_free;
    char arch[65], os[65];
} agent_res;

void agent_res_read(agent_res *r);
lb_err report_open(agent *a, lb_errmsg *em);
/* Sends one ServerLoad now: as one datagram per master when every master is
 * known with a pair key and a UDP endpoint, else on the PUB socket. Safe from
 * any thread. */
void report_send(agent *a);
void report_close(agent *a);

/* ---- report datagrams (report_udp.c) ---- */

struct wire_udp_addr;
/* Sends buf (one encoded envelope) to each of the n addresses, non-blocking;
 * a failure is counted (agent_report_datagram_errors_total), not fatal.
 * report_lock held. */
void report_udp_send(agent *a, const void *buf, size_t len, const struct wire_udp_addr *to,
                     size_t n);
void report_udp_close(agent *a);

/* ---- the nng report socket (report_pub.c); all with report_lock held ---- */
/* What dialing the report endpoints would refuse, without dialing them; em
 * names the endpoint. */
lb_err report_pub_check(agent *a, lb_errmsg *em);
/* Opens and dials pub to every report endpoint unless it is open. */
lb_err report_pub_dial(agent *a, lb_errmsg *em);
/* Sends m (consumed) on pub, dialing it first if needed; just after a dial it
 * waits (bounded) for the connections so m is not dropped. */
void report_pub_send(agent *a, nng_msg *m);
/* After a datagram-only report: closes pub once report_nng_idle_ms passed
 * without an nng report. */
void report_pub_idle(agent *a);
void report_pub_close(agent *a);

/* ---- masters' report keys (report_keys.c) ---- */

struct auth_mac_to;
/* Watches masters/ for their key-exchange keys (after register_start: it uses
 * a->etcd); a watch that cannot start leaves reports signed only. Returns
 * once the first snapshot is in (at once when etcd does not answer), at most
 * after REPORT_KEYS_WAIT_MS, so the first reports go by datagram without
 * dialing nng when the masters are known. */
#define REPORT_KEYS_WAIT_MS 1000
void report_keys_start(agent *a);
/* Before the etcd client goes. */
void report_keys_stop(void);
/* Copies the pair keys of the masters known now into out (AUTH_MAC_MAX
 * entries); returns how many. When each of the n_report endpoints in report
 * is a known master's report_endpoint and that master has a datagram
 * endpoint, their addresses go into udp (AUTH_MAC_MAX entries) and *n_udp is
 * n_report; else *n_udp is 0. Thread-safe. */
size_t report_keys_get(struct auth_mac_to *out, char *const *report, size_t n_report,
                       struct wire_udp_addr *udp, size_t *n_udp);

/* ---- registration (register.c) ---- */

lb_err register_start(agent *a, lb_errmsg *em);
/* Writes ServerInfo again under the current lease (after a reload). */
void register_refresh(agent *a);
/* Revokes the lease (the server key leaves etcd at once). */
void register_stop(agent *a);

/* ---- life (lifecycle.c) ---- */

/* The main loop, on the main thread with set (every signal it takes) blocked:
 * returns when the agent must shut down (SIGINT, SIGTERM after the drain).
 * level_flag: --log-level, which a reload does not override. */
void agent_run(agent *a, const sigset_t *set, const char *level_flag);
/* Stops serving, leaves etcd, ends every child (TERM, then KILL), removes
 * cgroups and state, sends a last report and frees everything. */
void agent_shutdown(agent *a);

/* ---- RPC (rpc.c) ---- */

lb_err rpc_start(agent *a, lb_errmsg *em);
/* Closes the REP socket and joins the workers. */
void rpc_stop(agent *a);

#endif
