/*
 * lb-master configuration (YAML). Every key is optional:
 *
 *   id: master-1                     # default: hostname
 *   listen: tls+tcp://127.0.0.1:7101     # RPC for slaves and lbctl
 *   report_listen: tls+tcp://127.0.0.1:7102  # load reports from agents and slaves (SUB)
 *   advertise: tls+tcp://master-1:7101   # RPC endpoint others dial (in etcd); default: listen
 *   report_advertise: tls+tcp://master-1:7102  # report endpoint others dial; default:
 *                                    # report_listen
 *   report_udp_listen: udp://127.0.0.1:7102  # agents' load reports as datagrams, MAC-only
 *                                    # admission; default: report_listen's host and port
 *                                    # (UDP); "": off (every report over nng TLS)
 *   report_udp_advertise: udp://master-1:7102  # in masters/<id>; default: report_advertise's
 *                                    # host and port when report_udp_listen is defaulted,
 *                                    # else report_udp_listen
 *   operator_listen: tls+tcp://127.0.0.1:7103  # operator RPC (lbctl release ...); default:
 *                                    # off; needs tls.operator_peer_ca (the operator CA)
 *   operator_advertise: tls+tcp://master-1:7103  # in masters/<id>; default: operator_listen
 *   etcd: http://127.0.0.1:2379      # string (comma-separated) or list
 *   prefix: /lb/
 *   lease_ttl: 2s                    # masters/<id> and leader key; refreshed every ttl/4, a
 *                                    # leader steps down when no refresh went through for 3/4
 *   tls: {ca, cert, key, peer_ca, report_peer_ca, server_name, insecure}  # config/cfg_tls.h
 *   session_ttl: 10m                 # sessions expire this long after last use
 *   launch_timeout: 10s              # one launch at an agent
 *   etcd_timeout: 3s                 # one etcd call
 *   report_stale: 3s                 # an agent silent this long (or never heard) counts as down
 *   eject_consecutive_failures: 3    # launch errors in a row that eject a server (an
 *                                    # unreachable or timed-out agent ejects at once)
 *   eject_base_time: 5s              # first ejection; doubles with each one in a row
 *   eject_max_time: 60s              # cap of one ejection
 *   eject_max_percent: 50            # most servers ejected at once (one always may be)
 *   write_interval: 1ms              # group-commit linger before each flush of etcd writes
 *   contexts: 64                     # requests in flight
 *   max_message: 256KiB
 *   strategy: least-loaded           # least-loaded | p2c | weighted-random | round-robin
 *   strategies: {app: strategy}      # per app
 *   zone_spill: 1.0                  # spill to the next locality tier above this utilisation
 *   overprovision: 0                 # Envoy factor for priority-group spill (0 = strict)
 *   alternates: 2
 *   spares: {app: K}                 # hot spares per app (0-4; default 0: none)
 *   spare_ttl: 10s                   # an unclaimed spare is stopped after this
 *   stock: {app: N}                  # leader-held pool processes per server (0-512; none)
 *   log_level: info
 *   http_listen: 127.0.0.1:9101      # /metrics and /healthz; default: off
 *   compact_retention: 5m            # leader compacts etcd history older than this; 0: never
 *   etcd_quota: 2GiB                 # etcd's --quota-backend-bytes: warn past 80 %
 *   etcd_economy: true               # false: the old writes (P6 baseline only)
 *   etcd_tls: {ca, cert, key}        # etcd TLS; etcd_user + etcd_password_file: etcd auth
 *                                    # (see pkg/config/etcd_cfg.h)
 *   tls: {ca, cert, key, peer_ca, report_peer_ca, operator_peer_ca, server_name, insecure}
 *                                    # config/cfg_tls.h
 */
#include "master.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "config/cfg.h"
#include "config/cfg_tls.h"
#include "config/daemon.h"
#include "config/etcd_cfg.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"
#include "wire/wire_udp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const master_keys[] = {"id",
                                          "listen",
                                          "report_listen",
                                          "etcd",
                                          "prefix",
                                          "lease_ttl",
                                          "session_ttl",
                                          "launch_timeout",
                                          "etcd_timeout",
                                          "report_stale",
                                          "write_interval",
                                          "contexts",
                                          "max_message",
                                          "strategy",
                                          "strategies",
                                          "spares",
                                          "spare_ttl",
                                          "stock",
                                          "zone_spill",
                                          "overprovision",
                                          "alternates",
                                          "log_level",
                                          "http_listen",
                                          "compact_retention",
                                          "etcd_quota",
                                          "etcd_economy",
                                          CFG_ETCD_SECURITY_KEYS,
                                          "advertise",
                                          "report_advertise",
                                          "report_udp_listen",
                                          "report_udp_advertise",
                                          "operator_listen",
                                          "operator_advertise",
                                          "eject_consecutive_failures",
                                          "eject_base_time",
                                          "eject_max_time",
                                          "eject_max_percent",
                                          "tls",
                                          "ui_token_public_keys",
                                          NULL};

static const char *const master_url_keys[] = {"listen", "report_listen", "operator_listen", NULL};

/* operator_listen over TLS trusts tls.operator_peer_ca alone: falling back to
 * peer_ca (slaves too) would hand slaves the operator's rights, which is the
 * confusion this listener exists to remove. */
static lb_err check_operator(const cfg_doc *doc, const cfg_node *root, const master_config *cfg,
                             lb_errmsg *em)
{
    const cfg_node *n = root != NULL ? cfg_map_get(root, "operator_listen") : NULL;
    if (cfg->operator_listen[0] == '\0' || !wire_url_tls(cfg->operator_listen) ||
        cfg->tls.operator_peer_ca[0] != '\0')
        return LB_OK;
    return lb_fail(em, LB_ECONFIG,
                   "%s:%d: operator_listen: needs tls.operator_peer_ca (the operator CA only; "
                   "slaves must not be trusted there)",
                   cfg_file(doc), n != NULL ? cfg_line(n) : 0);
}

static lb_err load_strategies(const cfg_doc *doc, const cfg_node *root, master_config *cfg,
                              lb_errmsg *em)
{
    char *name = NULL;
    lb_err err = cfg_get_str(doc, root, "strategy", "least-loaded", &name, em);
    if (err != LB_OK)
        return err;
    const cfg_node *n = root != NULL ? cfg_map_get(root, "strategy") : NULL;
    if (!sel_strategy_parse(name, &cfg->policy.strategy)) {
        err = lb_fail(em, LB_ECONFIG, "%s:%d: strategy: unknown strategy '%s'", cfg_file(doc),
                      n != NULL ? cfg_line(n) : 0, name);
        free(name);
        return err;
    }
    free(name);
    const cfg_node *map = root != NULL ? cfg_map_get(root, "strategies") : NULL;
    if ((err = cfg_expect(doc, map, CFG_MAP, em)) != LB_OK || map == NULL)
        return err;
    cfg->n_per_app = cfg_len(map);
    cfg->per_app = lb_xcalloc(cfg->n_per_app, sizeof *cfg->per_app);
    cfg->per_app_names = lb_xcalloc(cfg->n_per_app, sizeof *cfg->per_app_names);
    for (size_t i = 0; i < cfg->n_per_app; i++) {
        const cfg_node *v = cfg_map_value(map, i);
        cfg->per_app_names[i] = lb_strdup(cfg_map_key(map, i));
        cfg->per_app[i].app = cfg->per_app_names[i];
        if (cfg_scalar(v) == NULL || !sel_strategy_parse(cfg_scalar(v), &cfg->per_app[i].strategy))
            return lb_fail(em, LB_ECONFIG, "%s:%d: %s: expected a strategy name", cfg_file(doc),
                           cfg_line(v), cfg_path(v));
    }
    cfg->policy.per_app = cfg->per_app;
    cfg->policy.n_per_app = cfg->n_per_app;
    return LB_OK;
}

/* key: {app: N} with 0 <= N <= max, into *out / *n_out ("what" names N in
 * the error). */
static lb_err load_counts(const cfg_doc *doc, const cfg_node *root, const char *key, int max,
                          const char *what, master_spare_cfg **out, size_t *n_out, lb_errmsg *em)
{
    lb_err err;
    const cfg_node *map = root != NULL ? cfg_map_get(root, key) : NULL;
    if ((err = cfg_expect(doc, map, CFG_MAP, em)) != LB_OK || map == NULL)
        return err;
    *n_out = cfg_len(map);
    *out = lb_xcalloc(*n_out, sizeof **out);
    for (size_t i = 0; i < *n_out; i++) {
        const cfg_node *v = cfg_map_value(map, i);
        const char *txt = cfg_scalar(v);
        char *end = NULL;
        long k = txt != NULL ? strtol(txt, &end, 10) : -1;
        (*out)[i].app = lb_strdup(cfg_map_key(map, i));
        if (txt == NULL || end == txt || *end != '\0' || k < 0 || k > max)
            return lb_fail(em, LB_ECONFIG, "%s:%d: %s: expected a %s 0-%d", cfg_file(doc),
                           cfg_line(v), cfg_path(v), what, max);
        (*out)[i].count = (int)k;
    }
    return LB_OK;
}

/* spares: {app: K}: how many hot spares a new session of app is offered;
 * stock: {app: N}: how many pool processes of app the leader holds per
 * server (stock.h). */
static lb_err load_spares(const cfg_doc *doc, const cfg_node *root, master_config *cfg,
                          lb_errmsg *em)
{
    lb_err err;
    if ((err = cfg_get_duration_ms(doc, root, "spare_ttl", 10000, &cfg->spare_ttl_ms, em)))
        return err;
    if ((err = load_counts(doc, root, "spares", MASTER_MAX_SPARES, "spare count", &cfg->spares,
                           &cfg->n_spares, em)))
        return err;
    return load_counts(doc, root, "stock", MASTER_MAX_STOCK, "stock count", &cfg->stock,
                       &cfg->n_stock, em);
}

static int count_for(const master_spare_cfg *v, size_t n, const char *app)
{
    for (size_t i = 0; i < n; i++)
        if (app != NULL && strcmp(v[i].app, app) == 0)
            return v[i].count;
    return 0;
}

int master_stock_for(const master_config *cfg, const char *app)
{
    return count_for(cfg->stock, cfg->n_stock, app);
}

int master_spares_for(const master_config *cfg, const char *app)
{
    return count_for(cfg->spares, cfg->n_spares, app);
}

/* report_udp_listen and report_udp_advertise: defaults derived from the nng
 * report endpoints (UDP on the same host and port), checked as udp://H:P. */
static lb_err load_udp(const cfg_doc *doc, const cfg_node *root, master_config *cfg, lb_errmsg *em)
{
    char twin[512];
    const cfg_node *n = root != NULL ? cfg_map_get(root, "report_udp_listen") : NULL;
    cfg->report_udp_explicit = n != NULL;
    wire_udp_twin(cfg->report_listen, twin, sizeof twin);
    lb_err err = cfg_get_str(doc, root, "report_udp_listen", twin, &cfg->report_udp_listen, em);
    if (err != LB_OK)
        return err;
    if (!cfg->report_udp_explicit)
        wire_udp_twin(cfg->report_advertise, twin, sizeof twin);
    else
        snprintf(twin, sizeof twin, "%s", cfg->report_udp_listen);
    if (cfg->report_udp_listen[0] == '\0')
        twin[0] = '\0'; /* off: nothing to advertise */
    if ((err = cfg_get_str(doc, root, "report_udp_advertise", twin, &cfg->report_udp_advertise,
                           em)) != LB_OK)
        return err;
    static const char *const keys[] = {"report_udp_listen", "report_udp_advertise"};
    const char *vals[] = {cfg->report_udp_listen, cfg->report_udp_advertise};
    for (size_t i = 0; i < 2; i++) {
        const cfg_node *k = root != NULL ? cfg_map_get(root, keys[i]) : NULL;
        if (k == NULL || vals[i][0] == '\0')
            continue;
        wire_udp_addr a;
        lb_errmsg rm = {{0}};
        /* the advertised name may only resolve where agents run: shape only */
        if (strncmp(vals[i], "udp://", 6) != 0 ||
            (i == 0 && wire_udp_resolve(vals[i], &a, &rm) != LB_OK))
            return lb_fail(em, LB_ECONFIG, "%s:%d: %s: %s", cfg_file(doc), cfg_line(k), keys[i],
                           rm.text[0] ? rm.text : "must be udp://HOST:PORT or \"\"");
    }
    return LB_OK;
}

static lb_err load_all(const cfg_doc *doc, master_config *cfg, lb_errmsg *em)
{
    const cfg_node *root = cfg_root(doc);
    lb_err err;
    char host[256] = "master";
    gethostname(host, sizeof host - 1);
    char **etcd = NULL;
    size_t n_etcd = 0;
    int64_t ctxs = 0, alternates = 0, ej_n = 0, ej_pct = 0;
    double spill = 1.0, over = 0;
    if ((err = cfg_expect(doc, root, CFG_MAP, em)) != LB_OK ||
        (err = cfg_check_keys(doc, root, master_keys, em)) != LB_OK ||
        (err = cfg_get_str(doc, root, "id", host, &cfg->id, em)) != LB_OK ||
        (err = cfg_get_str(doc, root, "listen", "tls+tcp://127.0.0.1:7101", &cfg->listen, em)) ||
        (err = cfg_get_str(doc, root, "report_listen", "tls+tcp://127.0.0.1:7102",
                           &cfg->report_listen, em)) ||
        (err = cfg_get_str(doc, root, "advertise", cfg->listen, &cfg->advertise, em)) ||
        (err = cfg_get_str(doc, root, "report_advertise", cfg->report_listen,
                           &cfg->report_advertise, em)) ||
        (err = load_udp(doc, root, cfg, em)) ||
        (err = cfg_get_str(doc, root, "operator_listen", "", &cfg->operator_listen, em)) ||
        (err = cfg_get_str(doc, root, "operator_advertise", cfg->operator_listen,
                           &cfg->operator_advertise, em)) ||
        (err = cfg_get_strlist(doc, root, "etcd", &etcd, &n_etcd, em)) ||
        (err = cfg_get_str(doc, root, "prefix", "/lb/", &cfg->prefix, em)) ||
        (err = cfg_get_duration_ms(doc, root, "lease_ttl", 2000, &cfg->lease_ttl_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "session_ttl", 600000, &cfg->session_ttl_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "launch_timeout", 10000, &cfg->launch_timeout_ms,
                                   em)) ||
        (err = cfg_get_duration_ms(doc, root, "etcd_timeout", 3000, &cfg->etcd_timeout_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "report_stale", 3000, &cfg->report_stale_ms, em)) ||
        (err = cfg_get_int(doc, root, "eject_consecutive_failures", 1, 1000, 3, &ej_n, em)) ||
        (err = cfg_get_duration_ms(doc, root, "eject_base_time", 5000, &cfg->eject.base_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "eject_max_time", 60000, &cfg->eject.max_ms, em)) ||
        (err = cfg_get_int(doc, root, "eject_max_percent", 0, 100, 50, &ej_pct, em)) ||
        (err = cfg_get_duration_ms(doc, root, "write_interval", 1, &cfg->write_interval_ms, em)) ||
        (err = cfg_get_int(doc, root, "contexts", 1, 4096, 64, &ctxs, em)) ||
        (err = cfg_get_size(doc, root, "max_message", WIRE_DEFAULT_MAX, &cfg->max_message, em)) ||
        (err = cfg_get_double(doc, root, "zone_spill", 0.01, 1.0, 1.0, &spill, em)) ||
        (err = cfg_get_double(doc, root, "overprovision", 0, 100, 0, &over, em)) ||
        (err = cfg_get_int(doc, root, "alternates", 0, SEL_MAX_ALTERNATES, 2, &alternates, em)) ||
        (err = cfg_daemon_get_level(doc, root, &cfg->log_level, em)) ||
        (err = cfg_get_str(doc, root, "http_listen", "", &cfg->http_listen, em)) ||
        (err = cfg_get_duration_ms(doc, root, "compact_retention", 300000,
                                   &cfg->compact_retention_ms, em)) ||
        (err = cfg_get_size(doc, root, "etcd_quota", (uint64_t)2 << 30, &cfg->etcd_quota, em)) ||
        (err = cfg_get_bool(doc, root, "etcd_economy", true, &cfg->etcd_economy, em)) ||
        (err = cfg_get_etcd_security(doc, root, &cfg->etcd_sec, em)) ||
        (err = cfg_tls_load(doc, root, true, &cfg->tls, em)) ||
        (err = cfg_tls_check_urls(doc, root, master_url_keys, &cfg->tls, em)) ||
        (err = check_operator(doc, root, cfg, em)) ||
        (err = cfg_get_strlist(doc, root, "ui_token_public_keys", &cfg->ui_token_public_keys,
                               &cfg->n_ui_token_public_keys, em)))
        goto out;
    sel_policy_default(&cfg->policy);
    cfg->policy.zone_spill = spill;
    cfg->policy.overprovision = over;
    cfg->policy.n_alternates = (size_t)alternates;
    cfg->contexts = ctxs;
    cfg->eject.consecutive = (uint32_t)ej_n;
    cfg->eject.max_percent = (uint32_t)ej_pct;
    if (cfg->eject.max_ms < cfg->eject.base_ms)
        cfg->eject.max_ms = cfg->eject.base_ms;
    cfg->etcd = cfg_join(etcd, n_etcd, "http://127.0.0.1:2379");
    size_t pl = strlen(cfg->prefix);
    if (pl == 0 || cfg->prefix[pl - 1] != '/') {
        err = lb_fail(em, LB_ECONFIG, "%s: prefix: must end in '/' (got '%s')", cfg_file(doc),
                      cfg->prefix);
        goto out;
    }
    if ((err = load_strategies(doc, root, cfg, em)) == LB_OK)
        err = load_spares(doc, root, cfg, em);
out:
    cfg_strlist_free(&etcd, n_etcd);
    return err;
}

static lb_err load_any(const cfg_doc *doc, void *cfg, lb_errmsg *em)
{
    return load_all(doc, cfg, em);
}

int master_config_load(const char *path, master_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = lb_strdup(path);
    return cfg_daemon_load("lb-master", path, load_any, cfg);
}

lb_err master_config_read(const char *path, master_config *cfg, lb_errmsg *em)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->path = lb_strdup(path);
    return cfg_daemon_read(path, load_any, cfg, em);
}

void master_config_free(master_config *cfg)
{
    free(cfg->path);
    free(cfg->id);
    free(cfg->listen);
    free(cfg->report_listen);
    free(cfg->advertise);
    free(cfg->report_advertise);
    free(cfg->report_udp_listen);
    free(cfg->report_udp_advertise);
    free(cfg->operator_listen);
    free(cfg->operator_advertise);
    free(cfg->etcd);
    etcd_security_free(&cfg->etcd_sec);
    free(cfg->prefix);
    free(cfg->log_level);
    free(cfg->http_listen);
    cfg_tls_free(&cfg->tls);
    cfg_strlist_free(&cfg->ui_token_public_keys, cfg->n_ui_token_public_keys);
    for (size_t i = 0; i < cfg->n_per_app; i++)
        free(cfg->per_app_names[i]);
    free(cfg->per_app_names);
    free(cfg->per_app);
    for (size_t i = 0; i < cfg->n_spares; i++)
        free(cfg->spares[i].app);
    free(cfg->spares);
    for (size_t i = 0; i < cfg->n_stock; i++)
        free(cfg->stock[i].app);
    free(cfg->stock);
    memset(cfg, 0, sizeof *cfg);
}
