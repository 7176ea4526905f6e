/*
 * lb-loadgen: a bounded load generator for a running lbcp cluster.
 *
 * Fake servers: N ServerInfo records under ONE etcd lease (as agents write
 * them, cmd/lb-agent/register.c), each publishing ServerLoad to every master's
 * report endpoint at a rate, with cpu and memory jittering around a per-server
 * mean and sessions/launches counted from the launches it answered.
 *
 * Launches: with --agents each fake server has an agent endpoint of its own
 * (one REP socket, one TCP listener per server on 127.0.0.1) that answers
 * LaunchRequest with a made-up ProcessId (no process runs: clients must not
 * connect to it) and StopRequest by forgetting the session. --shared-agent
 * gives every server the same endpoint (one listener, for 10,000 servers
 * within the fd limit; launches are then not counted per server). Without either
 * the servers advertise an endpoint nobody listens on (--no-endpoint: none, so
 * a master dials nothing: the view without the transport's connections): they
 * are there for the scale of the master's view, reports and metrics, and a
 * launch on them fails.
 *
 * Report identity (unless --no-auth): each fake server has its own Ed25519
 * key, published in its record as an agent's is, and MACs its reports for
 * every master whose report key (masters/<id>) it has seen, signing them
 * only while some master has none (auth/report_mac.h) — so a master pays what
 * it pays for real agents. Reports go out as one UDP datagram per master when
 * every master seen advertises a report datagram endpoint (as real agents do,
 * cmd/lb-agent/report_udp.c), else (or with --report-nng) on --report-conns
 * PUB sockets (servers spread over them), as real agents each have their own
 * connection.
 *
 * Clients: M threads asking a slave for new and sticky sessions at a rate.
 * Sessions: K records preloaded straight into etcd (as a leader writes them).
 *
 * Bounded: at most LG_MAX_SERVERS servers, LG_MAX_CLIENTS clients, and it
 * stops after --duration; on the way out it releases its clients' sessions,
 * deletes the records it preloaded and revokes its lease (the servers' keys go).
 *
 * Threads: main (setup, wait, teardown), the lease keeper (pkg/etcd), the
 * reporter, the fake agent, one per client. Shared counters are atomics.
 */
#ifndef LB_LOADGEN_H
#define LB_LOADGEN_H

#include "auth/report_mac.h"
#include "auth/report_sig.h"
#include "etcd/etcd.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"
#include "wire/wire_udp.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define LG_MAX_SERVERS 20000
#define LG_MAX_CLIENTS 256
#define LG_MAX_REPORT 16
#define LG_MAX_KX 4     /* masters' report keys a fake server MACs for */
#define LG_MAX_CONNS 64 /* report connections */

typedef struct lg_server {
    char id[64];
    char endpoint[64]; /* agent endpoint advertised */
    double cpu_mean;   /* load average this server jitters around */
    uint64_t mem_total, mem_mean;
    atomic_uint sessions; /* launched (not stopped) + preloaded */
    atomic_ullong launches;
    uint64_t seq;                                       /* reporter thread only */
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES]; /* identity (not --no-auth) */
    auth_mac_to to[LG_MAX_KX];                          /* pair keys, reporter thread only */
    unsigned n_to;
    void *sessions_by_id; /* hmap session id -> ProcessId*, agent thread only */
} lg_server;

typedef struct lg {
    /* options */
    const char *etcd_url, *prefix, *id_prefix, *zone, *region, *app, *slave, *location;
    const char *report[LG_MAX_REPORT];
    size_t n_report;
    int servers, clients;
    int64_t report_interval_ms, duration_ms, session_ttl_ms;
    double client_rate, new_ratio, jitter;
    int capacity, preload;
    bool agents, shared_agent, quiet, no_auth, no_endpoint;
    bool report_nng; /* --report-nng: never UDP (the P9 comparison) */
    int report_conns;
    char tag[16]; /* unique per run: names its preloaded records */

    /* state */
    etcd_client *etcd;
    etcd_keeper *keeper;
    lg_server *srv;
    nng_socket pub[LG_MAX_CONNS], agent_rep;
    unsigned char kx[LG_MAX_KX][AUTH_KX_BYTES]; /* masters' report keys seen (reporter thread) */
    unsigned n_kx;
    bool sign; /* a master without a report key was seen: sign too (reporter thread) */
    wire_udp_addr udp[LG_MAX_KX]; /* masters' report datagram endpoints (reporter thread) */
    char udp_url[LG_MAX_KX][128];
    unsigned n_udp;
    int udp_fd[2];      /* AF_INET, AF_INET6; -1 until used (reporter thread) */
    void *listener_map; /* hmap listener id -> lg_server* */
    lg_server *shared;  /* --shared-agent: where every launch is counted */
    pthread_t reporter, agent, *client_threads;
    atomic_bool stopping;

    /* counters */
    atomic_ullong reports, launches, reused, stops, agent_errors;
    atomic_ullong requests, serve, redirect, reject, errors, new_req, sticky_req;
    atomic_ullong released;
    atomic_ullong udp_sent, udp_errors; /* report datagrams */
} lg;

/* lg_servers.c: registration (keeper callback), masters' report endpoints,
 * the reporter thread and preloaded sessions. */
int lg_servers_start(lg *g); /* udp_fd must be -1 before */
void lg_servers_stop(lg *g);
int lg_preload(lg *g);
void lg_preload_clean(lg *g);

/* lg_auth.c: report identity. lg_auth_keys makes every server's key (before
 * registration); lg_auth_master takes a master's record (new report key:
 * every server's pair key for it); lg_auth_report MACs / signs a report. */
void lg_auth_keys(lg *g);
void lg_auth_master(lg *g, const Lb__MasterInfo *mi);
void lg_auth_report(lg *g, lg_server *s, Lb__ServerLoad *sl, auth_mac_set *set,
                    unsigned char sig[AUTH_SIG_BYTES]);

/* lg_agent.c: the fake agent (with --agents). lg_agent_open binds the
 * listeners (fills each server's endpoint) before registration. */
int lg_agent_open(lg *g);
int lg_agent_start(lg *g);
void lg_agent_stop(lg *g);

/* lg_clients.c: client threads; stop releases every session they hold. */
int lg_clients_start(lg *g);
void lg_clients_stop(lg *g);

/* A uniform double in [0,1) and an approximately normal one (mean 0, sd 1),
 * from a caller-held xorshift state. */
double lg_rand01(uint64_t *st);
double lg_gauss(uint64_t *st);

#endif
