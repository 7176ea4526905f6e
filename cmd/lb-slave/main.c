/*
 * lb-slave: read config -> register and connect upward -> serve clients -> run
 * until SIGTERM. SIGHUP re-reads the config and applies log_level and the
 * token issuer keys (reload.c); the other keys take effect at the next start
 * (a bad file is rejected, the old kept).
 */
#include "slave.h"

#include "relay.h"

#include "api/api.h"
#include "config/daemon.h"
#include "obs/log.h"
#include "wire/wire_tls.h"

#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

typedef struct reload_ctx {
    slave *s;
    const char *path;
    const char *flag_level;
} reload_ctx;

static int reload(void *arg)
{
    reload_ctx *c = arg;
    return slave_reload(c->s, c->path, c->flag_level);
}

int main(int argc, char **argv)
{
    /* First of all: nng starts its threads at the first TLS or socket call, and a
     * thread that does not block SIGHUP takes one that arrives while main is
     * busy reloading — and dies of it. Every thread inherits this mask. */
    sigset_t set;
    cfg_daemon_signals(&set);
    const char *path = NULL, *level = NULL;
    int status = cfg_daemon_args("lb-slave", argc, argv, false, &path, &level);
    if (status != 0)
        return status < 0 ? 0 : status;
    static slave s;
    if (slave_config_load(path, &s.cfg) != 0)
        return 2;
    if (cfg_daemon_check_only()) {
        slave_config_free(&s.cfg);
        return cfg_daemon_check_done("lb-slave", path);
    }
    wire_tls_opts tls = {s.cfg.tls.ca,      s.cfg.tls.cert,
                         s.cfg.tls.key,     s.cfg.tls.server_name[0] ? s.cfg.tls.server_name : NULL,
                         s.cfg.tls.peer_ca, s.cfg.tls.insecure};
    if (cfg_daemon_log_level("lb-slave", level, s.cfg.log_level) != 0 ||
        wire_tls_start("lb-slave", &tls) != 0) {
        slave_config_free(&s.cfg);
        return 2;
    }
    int rc = 1;
    if (s.cfg.relay_listen[0] != '\0' &&
        relay_start(s.cfg.relay_listen, s.cfg.relay_advertise, &s.relay) != 0)
        goto out;
    if (s.cfg.api_listen[0] != '\0') {
        /* bound before registering: SlaveInfo carries its URL */
        api_config ac = {.listen = s.cfg.api_listen,
                         .advertise = s.cfg.api_advertise,
                         .front_door = SLAVE_FRONT_DOOR_INPROC,
                         .slave_id = s.cfg.id,
                         .max_body = s.cfg.api_max_body,
                         .max_conns = (unsigned)s.cfg.api_max_conns,
                         .per_ip = (unsigned)s.cfg.api_per_ip,
                         .timeout_ms = s.cfg.request_timeout_ms * 2 + 1000,
                         .max_message = s.cfg.max_message,
                         .tls_cert = cfg_tls_http_cert(&s.cfg.tls),
                         .tls_key = cfg_tls_http_key(&s.cfg.tls)};
        lb_errmsg em = {{0}};
        if (api_start(&ac, &s.api, &em) != LB_OK) {
            LOG_ERROR("slave", "api endpoint", "err=\"%s\"", em.text);
            goto out;
        }
        LOG_INFO("slave", "api endpoint", "listen=%s url=%s https=%d", s.cfg.api_listen,
                 api_endpoint(s.api), ac.tls_cert != NULL);
        if (ac.tls_cert == NULL)
            LOG_WARN("slave", "api endpoint speaks plain HTTP (tls.insecure or tls.http_insecure)",
                     NULL);
    }
    if (slave_upstream_start(&s) != 0)
        goto out;
    if (slave_rpc_start(&s) != 0)
        goto out_up;
    if (slave_ops_start(&s) != 0)
        goto out_rpc;
    LOG_INFO("slave", "started", "id=%s zone=%s listen=%s etcd=%s", s.cfg.id, s.cfg.zone,
             s.cfg.listen, s.cfg.etcd);
    reload_ctx rc_ctx = {&s, path, level};
    int sig = cfg_daemon_wait(&set, "slave", path != NULL ? reload : NULL, &rc_ctx);
    LOG_INFO("slave", "stopping", "signal=%d", sig);
    rc = 0;
    atomic_store(&s.stopping, true);
    api_stop(&s.api); /* waiting API clients get a 503 now */
    slave_ops_stop(&s);
out_rpc:
    slave_rpc_stop(&s);
out_up:
    slave_upstream_stop(&s);
out:
    api_stop(&s.api);
    relay_stop(&s.relay);
    slave_config_free(&s.cfg);
    wire_tls *t = wire_tls_default();
    wire_tls_free(&t);
    return rc;
}
