/*
 * Helpers for agent_test: temp dirs, free ports, starting real lb-agent
 * binaries, talking to them over nng and TCP, reading etcd. Every process
 * started (and every app process an agent reports) is remembered and killed by
 * h_kill_all, which the tests call from teardown and atexit, so a failing
 * assertion never leaves processes behind.
 */
#ifndef LB_AGENT_HARNESS_TEST_H
#define LB_AGENT_HARNESS_TEST_H

#include "etcd/etcd.h"
#include "lb.pb-c.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct h_agent {
    pid_t pid;
    char id[64];
    char dir[256];    /* its temp dir (config, log) */
    char config[320]; /* config path */
    char log[320];    /* its stderr */
    char listen[64];  /* tcp://127.0.0.1:P */
    nng_socket req;
    bool req_open;
} h_agent;

/* Directory with lb-agent and lb-echo (LBCP_BIN), etcd URL (LBCP_TEST_ETCD). */
const char *h_bin(void);
const char *h_etcd_url(void);
etcd_client *h_etcd(void);

/* A new temp dir under /tmp, removed by h_kill_all's caller via h_rmdir. */
void h_mkdtemp(char *out, size_t len);
void h_rmdir(const char *dir);
uint16_t h_free_port(void);
void h_write(const char *path, const char *text);
char *h_read(const char *path); /* whole file, caller frees; "" if missing */

/* Remembers pid (an agent or one of its apps) for h_kill_all. group: kill its
 * process group too. */
void h_track(pid_t pid, bool group);
void h_kill_all(void);
/* Same, sparing keep (0: none). */
void h_kill_all_but(pid_t keep);

/* Runs lb-agent --config path, waits for its exit (<= timeout_ms) and returns
 * its exit status (-1 on timeout); *err gets its stderr (caller frees). */
int h_run_agent_config(const char *path, int timeout_ms, char **err);

/* Writes a config with id, lease_ttl and extra YAML lines, starts the agent. */
void h_agent_start(h_agent *a, const char *id, const char *lease_ttl, const char *extra);
/* Same with another etcd endpoint (e.g. one that is down). */
void h_agent_start_etcd(h_agent *a, const char *id, const char *lease_ttl, const char *etcd,
                        const char *extra);
/* Starts the agent again with the same config (and state dir). */
void h_agent_restart(h_agent *a);
/* The child of parent whose command name is comm, or 0. */
pid_t h_child_named(pid_t parent, const char *comm);
/* Live processes started under this test (its tag in their environment) that
 * are not lb-agent (nor its guard): up to cap pids into out; the count. */
size_t h_tagged_apps(pid_t *out, size_t cap);
/* Waits up to timeout_ms for the agent to exit; its status, or -1. */
int h_agent_wait(h_agent *a, int timeout_ms);
void h_agent_close(h_agent *a);

/* Request/reply with the agent; the caller frees *rep with lb__envelope__free_unpacked. */
Lb__Envelope *h_call(h_agent *a, Lb__Envelope *req);
Lb__Envelope *h_launch(h_agent *a, const char *app, const char *session);
/* Sends raw bytes on a fresh REQ socket; returns the decoded reply or NULL. */
Lb__Envelope *h_call_raw(h_agent *a, const void *buf, size_t len);
/* Value of counter name in the agent's stats, or -1 when absent. */
int64_t h_stat(h_agent *a, const char *name);

/* Sends "line\n" to host:port, returns the answer line (static buffer) or "". */
const char *h_echo(const char *host, unsigned port, const char *line);
/* True when pid is gone or a zombie. */
bool h_dead(pid_t pid);
bool h_wait_dead(pid_t pid, int timeout_ms);

/* ServerInfo at <prefix>servers/<id>, NULL if absent (caller frees). */
Lb__ServerInfo *h_server_info(const char *prefix, const char *id);

#endif
