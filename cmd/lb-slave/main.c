/* lb-slave: read config -> register and connect upward -> serve clients -> run until SIGTERM. */
#include "slave.h"

#include "relay.h"

#include "obs/log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *path = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            level = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: lb-slave --config FILE [--log-level debug|info|warn|error]\n");
            return 0;
        } else {
            fprintf(stderr, "lb-slave: unknown argument '%s'\n"
                            "usage: lb-slave --config FILE [--log-level LEVEL]\n", argv[i]);
            return 2;
        }
    }
    static slave s;
    if (slave_config_load(path, &s.cfg) != 0)
        return 2;
    obs_level lvl;
    if (!obs_log_parse_level(level != NULL ? level : s.cfg.log_level, &lvl)) {
        fprintf(stderr, "lb-slave: bad log level '%s'\n", level != NULL ? level : s.cfg.log_level);
        return 2;
    }
    obs_log_set_level(lvl);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    if (s.cfg.relay_listen[0] != '\0' &&
        relay_start(s.cfg.relay_listen, s.cfg.relay_advertise, &s.relay) != 0)
        goto out;
    if (slave_upstream_start(&s) != 0)
        goto out;
    if (slave_rpc_start(&s) != 0)
        goto out_up;
    if (slave_ops_start(&s) != 0)
        goto out_rpc;
    LOG_INFO("slave", "started", "id=%s zone=%s listen=%s etcd=%s", s.cfg.id, s.cfg.zone,
             s.cfg.listen, s.cfg.etcd);
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("slave", "stopping", "signal=%d", sig);
    rc = 0;
    atomic_store(&s.stopping, true);
    slave_ops_stop(&s);
out_rpc:
    slave_rpc_stop(&s);
out_up:
    slave_upstream_stop(&s);
out:
    relay_stop(&s.relay);
    slave_config_free(&s.cfg);
    return rc;
}
