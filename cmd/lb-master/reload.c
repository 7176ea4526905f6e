/*
 * SIGHUP: re-read the config file and apply what a running master can change
 * without dropping anything in flight: the selection policy (strategy,
 * strategies, zone_spill, overprovision, alternates), log_level and the
 * dashboard's operator token keys (ui_token_public_keys, when the dashboard
 * checks tokens: the verified-token cache is emptied with the old keys). Other
 * keys (endpoints, etcd, TTLs, TLS files) take effect at the next start; a
 * change to them is logged as such. A file that does not load is rejected whole.
 */
#include "master.h"

#include "auth/verifier.h"
#include "common/util.h"
#include "config/daemon.h"
#include "obs/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool str_differs(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

static bool per_app_differs(const master_config *a, const master_config *b)
{
    if (a->n_per_app != b->n_per_app)
        return true;
    for (size_t i = 0; i < a->n_per_app; i++)
        if (strcmp(a->per_app_names[i], b->per_app_names[i]) != 0 ||
            a->per_app[i].strategy != b->per_app[i].strategy)
            return true;
    return false;
}

/* stock: {app: N} differs (the leader's stock keeps its start-time counts). */
static bool stock_differs(const master_config *a, const master_config *b)
{
    if (a->n_stock != b->n_stock)
        return true;
    for (size_t i = 0; i < a->n_stock; i++)
        if (strcmp(a->stock[i].app, b->stock[i].app) != 0 || a->stock[i].count != b->stock[i].count)
            return true;
    return false;
}

/* Keys that only a restart applies, named so the operator is not surprised. */
static void restart_keys(const master_config *o, const master_config *n, char *buf, size_t cap)
{
    const struct {
        const char *key;
        bool differs;
    } k[] = {{"id", str_differs(o->id, n->id)},
             {"listen", str_differs(o->listen, n->listen)},
             {"report_listen", str_differs(o->report_listen, n->report_listen)},
             {"advertise", str_differs(o->advertise, n->advertise)},
             {"operator_listen", str_differs(o->operator_listen, n->operator_listen)},
             {"operator_advertise", str_differs(o->operator_advertise, n->operator_advertise)},
             {"etcd", str_differs(o->etcd, n->etcd)},
             {"prefix", str_differs(o->prefix, n->prefix)},
             {"http_listen", str_differs(o->http_listen, n->http_listen)},
             {"lease_ttl", o->lease_ttl_ms != n->lease_ttl_ms},
             {"session_ttl", o->session_ttl_ms != n->session_ttl_ms},
             {"contexts", o->contexts != n->contexts},
             {"stock", stock_differs(o, n)},
             /* turning the dashboard's token check on or off */
             {"ui_token_public_keys",
              (o->n_ui_token_public_keys == 0) != (n->n_ui_token_public_keys == 0)}};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].differs)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", k[i].key);
    cfg_tls_changed(&o->tls, &n->tls, buf, cap);
}

static void add(char *buf, size_t cap, const char *what)
{
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", what);
}

int master_reload(master *m, const char *flag_level)
{
    master_config n;
    lb_errmsg em = {{0}};
    if (m->cfg.path == NULL) {
        LOG_INFO("master", "nothing to reload (started without --config)", NULL);
        return -1;
    }
    if (master_config_read(m->cfg.path, &n, &em) != LB_OK) {
        cfg_daemon_reload_log("master", m->cfg.path, &em, NULL);
        master_config_free(&n);
        return -1;
    }
    char changed[256] = "", restart[512];
    /* first, as it alone can fail: then nothing of the file is applied */
    if (m->ui_auth != NULL && n.n_ui_token_public_keys > 0) {
        if (auth_verifier_set_keys(m->ui_auth, n.ui_token_public_keys, n.n_ui_token_public_keys,
                                   &em) != LB_OK) {
            cfg_daemon_reload_log("master", m->cfg.path, &em, NULL);
            master_config_free(&n);
            return -1;
        }
        add(changed, sizeof changed, "ui_token_public_keys");
    }
    const sel_policy *op = &m->cfg.policy, *np = &n.policy;
    if (op->strategy != np->strategy || per_app_differs(&m->cfg, &n))
        add(changed, sizeof changed, "strategy");
    if (op->zone_spill != np->zone_spill)
        add(changed, sizeof changed, "zone_spill");
    if (op->overprovision != np->overprovision)
        add(changed, sizeof changed, "overprovision");
    if (op->n_alternates != np->n_alternates)
        add(changed, sizeof changed, "alternates");
    if (cfg_daemon_reload_level(flag_level, n.log_level))
        add(changed, sizeof changed, "log_level");
    restart_keys(&m->cfg, &n, restart, sizeof restart);

    /* The policy and its per-app table are read only under sel_lock. */
    pthread_mutex_lock(&m->sel_lock);
    sel_app_strategy *old_per_app = m->cfg.per_app;
    char **old_names = m->cfg.per_app_names;
    size_t old_n = m->cfg.n_per_app;
    m->cfg.policy = n.policy;
    m->cfg.per_app = n.per_app;
    m->cfg.per_app_names = n.per_app_names;
    m->cfg.n_per_app = n.n_per_app;
    pthread_mutex_unlock(&m->sel_lock);
    char *lvl = m->cfg.log_level;
    m->cfg.log_level = n.log_level;
    n.log_level = lvl;
    n.per_app = old_per_app;
    n.per_app_names = old_names;
    n.n_per_app = old_n;
    master_config_free(&n);

    cfg_daemon_reload_log("master", m->cfg.path, NULL, changed[0] ? changed : "nothing");
    if (restart[0] != '\0')
        LOG_WARN("master", "changed keys take effect at the next start", "keys=%s", restart);
    return 0;
}
