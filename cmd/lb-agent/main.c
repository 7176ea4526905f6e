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
#include "wire/wire_tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        report_keys_start(a); /* after registration: it watches etcd */
    if (err == LB_OK)
        err = pool_start(a, em); /* after registration: it watches etcd */
    if (err == LB_OK)
        err = agent_ops_start(a, em);
    return err;
}

int main(int argc, char **argv)
{
    /* First of all: nng starts its threads at the first TLS or socket call, and a
     * thread that does not block SIGHUP takes one that arrives while the main
     * loop is busy reloading — and dies of it. Every thread inherits this mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *config = NULL, *level = NULL;
    int status = cfg_daemon_args("lb-agent", argc, argv, true, &config, &level);
    if (status != 0)
        return status < 0 ? 0 : status;
    static agent a; /* static: big, and lives as long as the process */
    lb_errmsg em = {{0}};
    agent_config *cfg = lb_xcalloc(1, sizeof *cfg);
    if (agent_config_load(config, cfg, &em) != LB_OK) {
        fprintf(stderr, "lb-agent: %s\n", em.text);
        free(cfg);
        return 2;
    }
    if (cfg_daemon_check_only()) {
        agent_config_free(cfg);
        free(cfg);
        return cfg_daemon_check_done("lb-agent", config);
    }
    wire_tls_opts tls = {cfg->tls.ca,      cfg->tls.cert,
                         cfg->tls.key,     cfg->tls.server_name[0] ? cfg->tls.server_name : NULL,
                         cfg->tls.peer_ca, cfg->tls.insecure};
    if (cfg_daemon_log_level("lb-agent", level, cfg->log_level) != 0 ||
        wire_tls_start("lb-agent", &tls) != 0) {
        agent_config_free(cfg);
        free(cfg);
        return 2;
    }
    a.cfg = cfg;

    a.started_at_ms = lb_wall_ms();
    procs_init(&a.procs, a.cfg->port_min);
    pthread_mutex_init(&a.report_lock, NULL);
    LOG_INFO(AGENT_COMP, "starting", "id=%s config=%s apps=%zu listen=%s etcd=%s", a.cfg->id,
             config, a.cfg->n_apps, a.cfg->listen, a.cfg->etcd);
    if (agent_start(&a, &em) != LB_OK) {
        LOG_ERROR(AGENT_COMP, "cannot start", "error=\"%s\"", em.text);
        status = 1;
    } else {
        agent_run(&a, &set, level);
    }
    agent_shutdown(&a);
    LOG_INFO(AGENT_COMP, "stopped", NULL);
    wire_tls *t = wire_tls_default();
    wire_tls_free(&t);
    return status;
}
