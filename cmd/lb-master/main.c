/*
 * lb-master: read config -> open the view (etcd range + watch) -> take load
 * reports -> serve selections -> run until SIGTERM/SIGINT; SIGHUP reloads the
 * selection policy and log level (reload.c).
 */
#include "master.h"
#include "spares.h"

#include "events.h"

#include "auth/report_mac.h"
#include "common/util.h"
#include "config/daemon.h"
#include "obs/log.h"
#include "wire/wire_tls.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct reload_ctx {
    master *m;
    const char *flag_level;
} reload_ctx;

static int reload(void *arg)
{
    reload_ctx *c = arg;
    return master_reload(c->m, c->flag_level);
}

#define MASTER_MALLOC_ARENAS 2

int main(int argc, char **argv)
{
    /* First of all: nng starts its threads at the first TLS or socket call, and a
     * thread that does not block SIGHUP takes one that arrives while main is
     * busy reloading — and dies of it. Every thread inherits this mask. */
    sigset_t set;
    cfg_daemon_signals(&set);
    /* glibc gives each thread that allocates an arena of its own (up to 8 per
     * core). The view's records are allocated and freed by the watch, report and
     * RPC threads; at 10,000 servers and 100,000 sessions the free pages left
     * resident across those arenas were ~7 MiB of the master's RSS (README P9).
     * Two arenas keep that down without making every thread share one lock; an
     * operator's MALLOC_ARENA_MAX still wins. Before any thread starts. */
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, MASTER_MALLOC_ARENAS);
    const char *path = NULL, *level = NULL;
    int status = cfg_daemon_args("lb-master", argc, argv, false, &path, &level);
    if (status != 0)
        return status < 0 ? 0 : status;
    static master m;
    if (master_config_load(path, &m.cfg) != 0)
        return 2;
    if (cfg_daemon_check_only()) {
        master_config_free(&m.cfg);
        return cfg_daemon_check_done("lb-master", path);
    }
    wire_tls_opts tls = {m.cfg.tls.ca,      m.cfg.tls.cert,
                         m.cfg.tls.key,     m.cfg.tls.server_name[0] ? m.cfg.tls.server_name : NULL,
                         m.cfg.tls.peer_ca, m.cfg.tls.insecure};
    if (cfg_daemon_log_level("lb-master", level, m.cfg.log_level) != 0 ||
        wire_tls_start("lb-master", &tls) != 0) {
        master_config_free(&m.cfg);
        return 2;
    }

    if (auth_init() != 0) {
        LOG_ERROR("master", "cannot start", "reason=%s", "sodium_init failed");
        master_config_free(&m.cfg);
        return 2;
    }
    auth_kx_keypair(m.kx_pk, m.kx_sk);
    m.view = reg_new(m.cfg.prefix, m.cfg.report_stale_ms);
    reg_set_eject_cfg(m.view, &m.cfg.eject);
    m.events = events_new();
    m.spares = spare_table_new((size_t)m.cfg.contexts * MASTER_MAX_SPARES);
    master_stock_init(&m);
    pthread_mutex_init(&m.sel_lock, NULL);
    m.sel.rng = (uint64_t)lb_wall_ms() ^ ((uint64_t)getpid() << 32);
    master_agents_init(&m);
    int rc = 1;
    if (master_reports_udp_open(&m) != 0 || master_etcd_start(&m) != 0)
        goto out;
    if (master_leader_start(&m) != 0)
        goto out_etcd;
    if (master_reports_start(&m) != 0)
        goto out_leader;
    if (master_rpc_start(&m) != 0)
        goto out_reports;
    if (master_ops_start(&m) != 0)
        goto out_rpc;
    LOG_INFO("master", "started", "id=%s rpc=%s reports=%s etcd=%s", m.cfg.id, m.cfg.listen,
             m.cfg.report_listen, m.cfg.etcd);
    reload_ctx rc_ctx = {&m, level};
    int sig = cfg_daemon_wait(&set, "master", reload, &rc_ctx);
    LOG_INFO("master", "stopping", "signal=%d", sig);
    rc = 0;
    master_ops_stop(&m);
out_rpc:
    master_rpc_stop(&m);
out_reports:
    master_reports_stop(&m);
out_leader:
    master_leader_stop(&m);
out_etcd:
    master_etcd_stop(&m);
out:
    master_reports_udp_stop(&m); /* when opened but not started */
    master_agents_free(&m);
    reg_free(&m.view);
    events_free(&m.events);
    spare_table_free(m.spares);
    master_stock_free(&m);
    pthread_mutex_destroy(&m.sel_lock);
    master_config_free(&m.cfg);
    wire_tls *t = wire_tls_default();
    wire_tls_free(&t);
    return rc;
}
