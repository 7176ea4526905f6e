/*
 * lb-slave configuration (YAML). Every key is optional:
 *
 *   id: slave-a                      # default: hostname
 *   zone: default
 *   region: default
 *   listen: tls+tcp://127.0.0.1:7201     # client endpoint
 *   advertise: tls+tcp://127.0.0.1:7201  # endpoint named in redirects (default: listen)
 *   masters: [tls+tcp://127.0.0.1:7101]  # master RPC endpoints (default: discovered from etcd)
 *   report: [tls+tcp://127.0.0.1:7102]   # master report endpoints (default: discovered from etcd)
 *   tls: {ca, cert, key, peer_ca, server_name, insecure}  # config/cfg_tls.h; peer_ca: the
 *                                    # clients' and operators' CAs
 *   etcd: http://127.0.0.1:2379      # string (comma-separated) or list
 *   prefix: /lb/
 *   lease_ttl: 5s
 *   report_interval: 1s
 *   request_timeout: 15s             # one call to a master (covers the launch)
 *   leader_hold: 5s                  # no master answered (an election, a leader that
 *                                    # stepped down): retry this long before failing; 0: off
 *   etcd_timeout: 3s
 *   limit: 10000                     # requests per report interval counted as full load
 *   contexts: 64                     # client requests in flight
 *   max_message: 256KiB
 *   log_level: info
 *   relay_listen: 127.0.0.1:7211     # TCP relay for link-relay apps, HOST:PORT (tcp:// optional;
 *                                    # port 0 picks one); default "": no relay
 *   http_listen: 127.0.0.1:9201      # /metrics and /healthz (default: off)
 *   api_listen: 127.0.0.1:8201       # HTTP/JSON API, HOST:PORT (default: off)
 *   api_advertise: http://10.0.0.5:8201  # its base URL in redirects (default: http://api_listen)
 *   api_max_body: 64KiB              # request body limit (413 above)
 *   api_max_conns: 512               # open API connections
 *   api_per_ip: 64                   # open API connections per client address
 *   relay_advertise: 10.0.0.5:7211   # relay endpoint given to clients (default: bound
 * relay_listen)
 *   apps: [echo]                     # apps this slave fronts (default: all)
 *   require_tokens: false            # true: every client request, release and renew
 *                                    # needs a signed token (pkg/auth, rpc_auth.c)
 *   token_public_keys: [issuer.pub]  # issuer public keys (lbctl token keygen); required
 *                                    # with require_tokens; the token's key id selects
 *                                    # SIGHUP re-reads these files (main.c)
 *   state_dir: /var/lib/lbcp/slave-<id>  (as non-root: $TMPDIR/lbcp-slave-<uid>-<id>)
 *                                    # holds identity.key, made 0700 on first start
 *   identity_key: <state_dir>/identity.key  Ed25519 seed (32 raw bytes, 0600) that
 *                                    # signs every SlaveLoad (auth/report_sig.h); a
 *                                    # configured one must exist
 */
#include "slave.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "config/cfg.h"
#include "config/cfg_tls.h"
#include "config/daemon.h"
#include "config/etcd_cfg.h"
#include "auth/verifier.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const slave_keys[] = {"id",
                                         "zone",
                                         "region",
                                         "listen",
                                         "advertise",
                                         "masters",
                                         "report",
                                         "etcd",
                                         "prefix",
                                         "lease_ttl",
                                         "report_interval",
                                         "request_timeout",
                                         "leader_hold",
                                         "etcd_timeout",
                                         "limit",
                                         "contexts",
                                         "max_message",
                                         "log_level",
                                         "relay_listen",
                                         "relay_advertise",
                                         "http_listen",
                                         "apps",
                                         CFG_ETCD_SECURITY_KEYS,
                                         "api_listen",
                                         "api_advertise",
                                         "api_max_body",
                                         "api_max_conns",
                                         "api_per_ip",
                                         "tls",
                                         "require_tokens",
                                         "token_public_keys",
                                         "state_dir",
                                         "identity_key",
                                         NULL};

static const char *const slave_url_keys[] = {"listen", "advertise", "masters", "report", NULL};

/* The key files are read now so a bad one is a config error naming file:line. */
static lb_err check_token_keys(const cfg_doc *doc, const cfg_node *root, const slave_config *cfg,
                               lb_errmsg *em)
{
    if (!cfg->require_tokens)
        return LB_OK;
    const cfg_node *n = cfg_map_get(root, "token_public_keys");
    if (cfg->n_token_public_keys == 0)
        return lb_fail(em, LB_ECONFIG, "%s:%d: token_public_keys: required with require_tokens",
                       cfg_file(doc), cfg_line(cfg_map_get(root, "require_tokens")));
    auth_verifier *v = NULL;
    lb_errmsg kem = {{0}};
    if (auth_verifier_new(cfg->token_public_keys, cfg->n_token_public_keys, &v, &kem) != LB_OK)
        return lb_fail(em, LB_ECONFIG, "%s:%d: %s", cfg_file(doc), cfg_line(n), kem.text);
    auth_verifier_free(&v);
    return LB_OK;
}

/* state_dir and identity_key: where the report-signing key lives (as the agent's). */
static lb_err load_identity(const cfg_doc *d, const cfg_node *r, slave_config *c, lb_errmsg *em)
{
    return cfg_daemon_get_identity(d, r, "slave", c->id, &c->state_dir, &c->identity_key, em);
}

static lb_err load_all(const cfg_doc *doc, slave_config *cfg, lb_errmsg *em)
{
    const cfg_node *root = cfg_root(doc);
    char host[256] = "slave";
    gethostname(host, sizeof host - 1);
    char **etcd = NULL;
    size_t n_etcd = 0;
    lb_err err;
    if ((err = cfg_expect(doc, root, CFG_MAP, em)) ||
        (err = cfg_check_keys(doc, root, slave_keys, em)) ||
        (err = cfg_get_str(doc, root, "id", host, &cfg->id, em)) ||
        (err = cfg_get_str(doc, root, "zone", "default", &cfg->zone, em)) ||
        (err = cfg_get_str(doc, root, "region", "default", &cfg->region, em)) ||
        (err = cfg_get_str(doc, root, "listen", "tls+tcp://127.0.0.1:7201", &cfg->listen, em)) ||
        (err = cfg_get_str(doc, root, "advertise", cfg->listen, &cfg->advertise, em)) ||
        (err = cfg_get_strlist(doc, root, "masters", &cfg->masters, &cfg->n_masters, em)) ||
        (err = cfg_get_strlist(doc, root, "report", &cfg->report, &cfg->n_report, em)) ||
        (err = cfg_get_strlist(doc, root, "etcd", &etcd, &n_etcd, em)) ||
        (err = cfg_get_str(doc, root, "prefix", "/lb/", &cfg->prefix, em)) ||
        (err = cfg_get_duration_ms(doc, root, "lease_ttl", 5000, &cfg->lease_ttl_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "report_interval", 1000, &cfg->report_interval_ms,
                                   em)) ||
        (err = cfg_get_duration_ms(doc, root, "request_timeout", 15000, &cfg->request_timeout_ms,
                                   em)) ||
        (err = cfg_get_duration_ms(doc, root, "leader_hold", 5000, &cfg->leader_hold_ms, em)) ||
        (err = cfg_get_duration_ms(doc, root, "etcd_timeout", 3000, &cfg->etcd_timeout_ms, em)) ||
        (err = cfg_get_int(doc, root, "limit", 0, 100000000, 10000, &cfg->limit, em)) ||
        (err = cfg_get_int(doc, root, "contexts", 1, 4096, 64, &cfg->contexts, em)) ||
        (err = cfg_get_size(doc, root, "max_message", WIRE_DEFAULT_MAX, &cfg->max_message, em)) ||
        (err = cfg_daemon_get_level(doc, root, &cfg->log_level, em)) ||
        (err = cfg_get_str(doc, root, "relay_listen", "", &cfg->relay_listen, em)) ||
        (err = cfg_get_str(doc, root, "relay_advertise", "", &cfg->relay_advertise, em)) ||
        (err = cfg_get_str(doc, root, "http_listen", "", &cfg->http_listen, em)) ||
        (err = cfg_get_strlist(doc, root, "apps", &cfg->apps, &cfg->n_apps, em)) ||
        (err = cfg_get_etcd_security(doc, root, &cfg->etcd_sec, em)) ||
        (err = cfg_get_str(doc, root, "api_listen", "", &cfg->api_listen, em)) ||
        (err = cfg_get_str(doc, root, "api_advertise", "", &cfg->api_advertise, em)) ||
        (err = cfg_get_size(doc, root, "api_max_body", 65536, &cfg->api_max_body, em)) ||
        (err = cfg_get_int(doc, root, "api_max_conns", 1, 100000, 512, &cfg->api_max_conns, em)) ||
        (err = cfg_get_int(doc, root, "api_per_ip", 1, 100000, 64, &cfg->api_per_ip, em)) ||
        (err = cfg_tls_load(doc, root, false, &cfg->tls, em)) ||
        (err = cfg_tls_check_urls(doc, root, slave_url_keys, &cfg->tls, em)) ||
        (err = cfg_get_bool(doc, root, "require_tokens", false, &cfg->require_tokens, em)) ||
        (err = cfg_get_strlist(doc, root, "token_public_keys", &cfg->token_public_keys,
                               &cfg->n_token_public_keys, em)) ||
        (err = check_token_keys(doc, root, cfg, em)) || (err = load_identity(doc, root, cfg, em)))
        goto out;
    cfg->etcd = cfg_join(etcd, n_etcd, "http://127.0.0.1:2379");
    if (cfg->n_masters > SLAVE_MAX_MASTERS) {
        err = lb_fail(em, LB_ECONFIG, "%s:%d: masters: at most %d endpoints", cfg_file(doc),
                      cfg_line(cfg_map_get(root, "masters")), SLAVE_MAX_MASTERS);
        goto out;
    }
    size_t pl = strlen(cfg->prefix);
    if (pl == 0 || cfg->prefix[pl - 1] != '/')
        err = lb_fail(em, LB_ECONFIG, "%s: prefix: must end in '/' (got '%s')", cfg_file(doc),
                      cfg->prefix);
out:
    cfg_strlist_free(&etcd, n_etcd);
    return err;
}

static lb_err load_any(const cfg_doc *doc, void *cfg, lb_errmsg *em)
{
    return load_all(doc, cfg, em);
}

int slave_config_load(const char *path, slave_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    return cfg_daemon_load("lb-slave", path, load_any, cfg);
}

lb_err slave_config_read(const char *path, slave_config *cfg, lb_errmsg *em)
{
    memset(cfg, 0, sizeof *cfg);
    return cfg_daemon_read(path, load_any, cfg, em);
}

void slave_config_free(slave_config *cfg)
{
    free(cfg->id);
    free(cfg->zone);
    free(cfg->region);
    free(cfg->listen);
    free(cfg->advertise);
    cfg_strlist_free(&cfg->masters, cfg->n_masters);
    cfg_strlist_free(&cfg->report, cfg->n_report);
    free(cfg->etcd);
    etcd_security_free(&cfg->etcd_sec);
    free(cfg->prefix);
    free(cfg->log_level);
    free(cfg->relay_listen);
    free(cfg->relay_advertise);
    free(cfg->http_listen);
    cfg_strlist_free(&cfg->apps, cfg->n_apps);
    free(cfg->api_listen);
    free(cfg->api_advertise);
    cfg_tls_free(&cfg->tls);
    cfg_strlist_free(&cfg->token_public_keys, cfg->n_token_public_keys);
    free(cfg->state_dir);
    free(cfg->identity_key);
    memset(cfg, 0, sizeof *cfg);
}
