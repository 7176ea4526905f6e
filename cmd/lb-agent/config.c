/*
 * lb-agent configuration. Every key is optional; unknown keys are errors, and
 * every error names file:line and the key (lb-agent exits 2 on it).
 *
 *   id: srv-1                  server id in etcd (default: the hostname)
 *   zone: default              locality: zone, then region
 *   region: default
 *   group: default             priority group name
 *   priority: 0                rank of this server's group, lower is better
 *   capacity: 100              most sessions (live processes) at once
 *   host: 127.0.0.1            host clients use to reach the processes; the
 *                              agent checks readiness by connecting there
 *   listen: tls+tcp://127.0.0.1:7301  launch RPC (REP) endpoint
 *   advertise: (listen)               endpoint masters dial, when listen is 0.0.0.0
 *   report: [tls+tcp://m1:7402, ...]  every master's report (SUB) endpoint;
 *                                     a string or a list (default: none)
 *   etcd: http://127.0.0.1:2379       comma-separated string or a list
 *   prefix: /lb/                      etcd key prefix ('/' appended if missing)
 *   lease_ttl: 5s                     registration lease (2s to 1h)
 *   report_interval: 1s               load report period (50ms to 1h)
 *   report_nng_idle: 30s              the nng report connections close after this long
 *                                     of datagram-only reports (100ms to 1h; 0: never)
 *   ports: {min: 20000, max: 20999}   ports given to launched processes
 *   labels: {gpu: "true"}             string -> string, advertised in etcd
 *   arch: x86_64, os: Linux           advertised resources (default: uname's machine
 *                                     and sysname); requests may require them
 *   reachable_via: [slave-b, zone-c]  slave ids or zones through which clients reach
 *                                     this server (default: any slave)
 *   max_message: 256KiB               largest RPC message accepted
 *   log_level: info                   debug, info, warn, error
 *   http_listen: 127.0.0.1:9301       /metrics and /healthz (default: off)
 *   state_dir: /var/lib/lbcp/agent-<id>   lock + record of started processes (as
 *                                     non-root: $TMPDIR/lbcp-agent-<uid>-<id>); one agent per dir
 *   identity_key: <state_dir>/identity.key  Ed25519 seed (32 raw bytes, 0600) that
 *                                     signs load reports; made on first start
 *   cgroup: auto                      auto: a cgroup per process where cgroup v2 is
 *                                     writable; off: never
 *   inherit_env: [PATH]               names copied from the agent's environment into
 *                                     every app's (the rest of it is the app's env)
 *   shutdown_grace: 30s               SIGTERM: held sessions keep their processes
 *                                     this long (0: stop at once); SIGINT: at once
 *   default_user: nobody              apps' user when the agent is root and an app
 *                                     names none (config_sandbox.c: user, group,
 *                                     allow_root, limits per app)
 *   tls: {ca, cert, key, peer_ca, server_name, insecure}   config/cfg_tls.h; peer_ca:
 *                                     the masters' CA (only masters may launch)
 *   apps:                             the only programs this agent runs
 *     echo:
 *       argv: [lb-echo, --port, "{port}", --session, "{session}"]
 *       env: {ECHO_MODE: plain}       the app's environment (plus inherit_env)
 *       ready_timeout: 5s             until the port accepts connections
 *       per_session: true             false: one shared process for all
 *       link: direct                  direct (client -> process) or relay (via the slave)
 *       pool: {min_ready: 2, max_ready: 4}   warm pool (pool.c); not with {session}
 *
 * argv may use only the placeholders {port} and {session}; argv[0] is an
 * absolute path or a name looked up once, here, in PATH. No shell is ever
 * involved, so nothing in a request can become a command.
 */
#include "agent.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "config/cfg.h"
#include "config/cfg_tls.h"
#include "config/daemon.h"
#include "config/etcd_cfg.h"
#include "obs/log.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const top_keys[] = {"id",
                                       "zone",
                                       "region",
                                       "group",
                                       "priority",
                                       "capacity",
                                       "host",
                                       "listen",
                                       "report",
                                       "etcd",
                                       "prefix",
                                       "lease_ttl",
                                       "report_interval",
                                       "report_nng_idle",
                                       "ports",
                                       "labels",
                                       "max_message",
                                       "log_level",
                                       "apps",
                                       "http_listen",
                                       "advertise",
                                       "state_dir",
                                       "identity_key",
                                       "cgroup",
                                       "inherit_env",
                                       "arch",
                                       "os",
                                       "reachable_via",
                                       "default_user",
                                       CFG_ETCD_SECURITY_KEYS,
                                       "shutdown_grace",
                                       "tls",
                                       NULL};
static const char *const app_keys[] = {"argv", "env",   "ready_timeout", "per_session", "link",
                                       "user", "group", "allow_root",    "limits",      "pool",
                                       NULL};
static const char *const port_keys[] = {"min", "max", NULL};
static const char *const pool_keys[] = {"min_ready", "max_ready", NULL};

/* pool: {min_ready, max_ready}: only for per-session apps whose argv does not
 * name the session (a pool process starts before its session exists). */
static lb_err config_pool(const cfg_doc *d, const cfg_node *n, agent_app *a, lb_errmsg *em)
{
    const cfg_node *p = cfg_map_get(n, "pool");
    int64_t lo = 0, hi = 0;
    lb_err err = cfg_check_keys(d, p, pool_keys, em);
    a->poolable = a->per_session;
    for (size_t i = 0; i < a->argc; i++)
        a->poolable = a->poolable && strstr(a->argv[i], "{session}") == NULL;
    if (err != LB_OK || p == NULL)
        return err;
    if ((err = cfg_get_int(d, p, "min_ready", 0, 10000, 0, &lo, em)) != LB_OK ||
        (err = cfg_get_int(d, p, "max_ready", 0, 10000, lo, &hi, em)) != LB_OK)
        return err;
    if (hi < lo)
        return cfg_fail(d, p, em, "max_ready (%lld) is below min_ready (%lld)", (long long)hi,
                        (long long)lo);
    if (!a->per_session)
        return cfg_fail(d, p, em, "a pool needs per_session: true (a shared process is one)");
    for (size_t i = 0; i < a->argc; i++) {
        if (strstr(a->argv[i], "{session}") != NULL)
            return cfg_fail(d, p, em,
                            "an app whose argv uses {session} cannot be pooled (its processes "
                            "start before their session exists)");
    }
    a->pool_min = (uint32_t)lo;
    a->pool_max = (uint32_t)hi;
    return LB_OK;
}

/* Names that go into etcd keys, metrics labels and messages. */
static bool config_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static char *config_default_id(void)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "agent");
    return lb_strdup(host);
}

/* id, zone, region, group, host, listen, prefix, log_level: plain strings. */
static lb_err config_strings(const cfg_doc *d, const cfg_node *r, agent_config *c, lb_errmsg *em)
{
    lb_err err = LB_OK;
    char *def_id = config_default_id();
    if ((err = cfg_get_str(d, r, "id", def_id, &c->id, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "zone", "default", &c->zone, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "region", "default", &c->region, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "group", "default", &c->group, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "host", "127.0.0.1", &c->host, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "listen", "tls+tcp://127.0.0.1:7301", &c->listen, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "advertise", c->listen, &c->advertise, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "prefix", "/lb/", &c->prefix, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "log_level", "info", &c->log_level, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "http_listen", "", &c->http_listen, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "arch", "", &c->arch, em)) != LB_OK ||
        (err = cfg_get_str(d, r, "os", "", &c->os, em)) != LB_OK ||
        (err = cfg_get_strlist(d, r, "reachable_via", &c->reachable_via, &c->n_reachable_via,
                               em)) != LB_OK)
        goto out;
    obs_level lvl;
    if (!config_name_ok(c->id, 128))
        err = cfg_fail(d, cfg_map_get(r, "id"), em,
                       "'%s' is not a valid id (letters, digits, '-', '_', '.'; 1-128)", c->id);
    else if (c->host[0] == '\0' || c->listen[0] == '\0')
        err = cfg_fail(d, cfg_map_get(r, c->host[0] == '\0' ? "host" : "listen"), em,
                       "must not be empty");
    else if (!obs_log_parse_level(c->log_level, &lvl))
        err = cfg_fail(d, cfg_map_get(r, "log_level"), em,
                       "'%s' is not one of debug, info, warn, error", c->log_level);
    size_t plen = strlen(c->prefix);
    if (err == LB_OK && (plen == 0 || c->prefix[plen - 1] != '/')) {
        size_t n = strlen(c->prefix) + 2;
        char *p = lb_xcalloc(1, n);
        snprintf(p, n, "%s/", c->prefix);
        free(c->prefix);
        c->prefix = p;
    }
out:
    free(def_id);
    return err;
}

/* priority, capacity, durations, sizes, ports. */
static lb_err config_numbers(const cfg_doc *d, const cfg_node *r, agent_config *c, lb_errmsg *em)
{
    lb_err err;
    int64_t prio, cap, pmin, pmax;
    const cfg_node *ports = cfg_map_get(r, "ports");
    if ((err = cfg_get_int(d, r, "priority", INT32_MIN, INT32_MAX, 0, &prio, em)) != LB_OK ||
        (err = cfg_get_int(d, r, "capacity", 1, 1000000, 100, &cap, em)) != LB_OK ||
        (err = cfg_get_duration_ms(d, r, "lease_ttl", 5000, &c->lease_ttl_ms, em)) != LB_OK ||
        (err = cfg_get_duration_ms(d, r, "report_interval", 1000, &c->report_interval_ms, em)) !=
            LB_OK ||
        (err = cfg_get_duration_ms(d, r, "shutdown_grace", 30000, &c->shutdown_grace_ms, em)) !=
            LB_OK ||
        (err = cfg_get_duration_ms(d, r, "report_nng_idle", 30000, &c->report_nng_idle_ms, em)) !=
            LB_OK ||
        (err = cfg_get_size(d, r, "max_message", 256 * 1024, &c->max_message, em)) != LB_OK ||
        (err = cfg_check_keys(d, ports, port_keys, em)) != LB_OK ||
        (err = cfg_get_int(d, ports, "min", 1, 65535, 20000, &pmin, em)) != LB_OK ||
        (err = cfg_get_int(d, ports, "max", 1, 65535, 20999, &pmax, em)) != LB_OK)
        return err;
    c->priority = (int32_t)prio;
    c->capacity = (uint32_t)cap;
    c->port_min = (uint32_t)pmin;
    c->port_max = (uint32_t)pmax;
    if (c->lease_ttl_ms < 2000 || c->lease_ttl_ms > 3600000)
        return cfg_fail(d, cfg_map_get(r, "lease_ttl"), em,
                        "%lld ms is out of range [2s, 1h] (etcd's minimum ttl is 2s)",
                        (long long)c->lease_ttl_ms);
    if (c->shutdown_grace_ms < 0 || c->shutdown_grace_ms > 3600000)
        return cfg_fail(d, cfg_map_get(r, "shutdown_grace"), em, "%lld ms is out of range [0, 1h]",
                        (long long)c->shutdown_grace_ms);
    if (c->report_interval_ms < 50 || c->report_interval_ms > 3600000)
        return cfg_fail(d, cfg_map_get(r, "report_interval"), em,
                        "%lld ms is out of range [50ms, 1h]", (long long)c->report_interval_ms);
    if (c->report_nng_idle_ms != 0 &&
        (c->report_nng_idle_ms < 100 || c->report_nng_idle_ms > 3600000))
        return cfg_fail(d, cfg_map_get(r, "report_nng_idle"), em,
                        "%lld ms is out of range [100ms, 1h] (or 0: never close)",
                        (long long)c->report_nng_idle_ms);
    if (c->max_message < 1024 || c->max_message > 4u * 1024 * 1024)
        return cfg_fail(d, cfg_map_get(r, "max_message"), em,
                        "%llu bytes is out of range [1KiB, 4MiB]",
                        (unsigned long long)c->max_message);
    if (pmin > pmax)
        return cfg_fail(d, ports, em, "min (%lld) is above max (%lld)", (long long)pmin,
                        (long long)pmax);
    return LB_OK;
}

/* value must start with one of the schemes (NULL-terminated). */
static lb_err config_url(const cfg_doc *d, const cfg_node *n, const char *value,
                         const char *const *schemes, lb_errmsg *em)
{
    for (size_t i = 0; schemes[i] != NULL; i++) {
        size_t len = strlen(schemes[i]);
        if (strncmp(value, schemes[i], len) == 0 && value[len] != '\0')
            return LB_OK;
    }
    return cfg_fail(d, n, em, "'%s' is not a %s... address", value, schemes[0]);
}

/* Checks every URL of a list key (a list or one string). */
static lb_err config_urls(const cfg_doc *d, const cfg_node *r, const char *key, char **list,
                          size_t n, const char *const *schemes, lb_errmsg *em)
{
    const cfg_node *node = cfg_map_get(r, key);
    lb_err err = LB_OK;
    for (size_t i = 0; i < n && err == LB_OK; i++) {
        const cfg_node *item = cfg_kind_of(node) == CFG_SEQ ? cfg_seq_at(node, i) : node;
        err = config_url(d, item, list[i], schemes, em);
    }
    return err;
}

static const char *const nng_schemes[] = {"tcp://",      "tcp4://",    "tcp6://", "ipc://",
                                          "inproc://",   "tls+tcp://", "ws://",   "wss://",
                                          "abstract://", NULL};
static const char *const http_schemes[] = {"http://", "https://", NULL};

/* report: endpoint list; etcd: a list or a comma-separated string, joined. */
static lb_err config_endpoints(const cfg_doc *d, const cfg_node *r, agent_config *c, lb_errmsg *em)
{
    char **eps = NULL;
    size_t n = 0;
    lb_err err = cfg_get_strlist(d, r, "report", &c->report, &c->n_report, em);
    if (err != LB_OK)
        return err;
    const cfg_node *listen = cfg_map_get(r, "listen");
    if ((err = config_urls(d, r, "report", c->report, c->n_report, nng_schemes, em)) != LB_OK ||
        (err = config_url(d, listen, c->listen, nng_schemes, em)) != LB_OK)
        return err;
    if ((err = cfg_get_strlist(d, r, "etcd", &eps, &n, em)) != LB_OK)
        return err;
    for (size_t i = 0; i < n && err == LB_OK; i++) {
        /* each list item, or each part of a comma-separated string */
        const cfg_node *en = cfg_map_get(r, "etcd");
        const cfg_node *item = cfg_kind_of(en) == CFG_SEQ ? cfg_seq_at(en, i) : en;
        char *save = NULL, *copy = lb_strdup(eps[i]);
        for (char *tok = strtok_r(copy, ",", &save); tok != NULL && err == LB_OK;
             tok = strtok_r(NULL, ",", &save))
            err = config_url(d, item, tok, http_schemes, em);
        free(copy);
    }
    if (err != LB_OK) {
        cfg_strlist_free(&eps, n);
        return err;
    }
    c->etcd = cfg_join(eps, n, "http://127.0.0.1:2379");
    cfg_strlist_free(&eps, n);
    if (c->etcd[0] == '\0')
        return cfg_fail(d, cfg_map_get(r, "etcd"), em, "no endpoint given");
    return LB_OK;
}

/* Reads a map of string -> string into parallel key/value arrays. */
static lb_err config_strmap(const cfg_doc *d, const cfg_node *m, char ***keys, char ***vals,
                            size_t *n, lb_errmsg *em)
{
    lb_err err = cfg_expect(d, m, CFG_MAP, em);
    size_t len = cfg_len(m);
    if (err != LB_OK || len == 0)
        return err;
    *keys = lb_xcalloc(len, sizeof **keys);
    *vals = lb_xcalloc(len, sizeof **vals);
    for (size_t i = 0; i < len; i++) {
        const cfg_node *v = cfg_map_value(m, i);
        const char *k = cfg_map_key(m, i);
        if (cfg_kind_of(v) != CFG_SCALAR)
            return cfg_fail(d, v, em, "expected a string value");
        if (k[0] == '\0' || strchr(k, '=') != NULL)
            return cfg_fail(d, v, em, "a key must be non-empty and without '='");
        (*keys)[i] = lb_strdup(k);
        (*vals)[i] = lb_strdup(cfg_scalar(v));
        *n = i + 1;
    }
    return LB_OK;
}

/* Finds name in PATH; a new absolute path or NULL. */
static char *config_which(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = lb_strdup(path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
    char *found = NULL, *save = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir != NULL && found == NULL;
         dir = strtok_r(NULL, ":", &save)) {
        char cand[PATH_MAX];
        if (dir[0] != '/') /* a relative PATH entry would depend on the cwd */
            continue;
        if (snprintf(cand, sizeof cand, "%s/%s", dir, name) < (int)sizeof cand &&
            access(cand, X_OK) == 0)
            found = lb_strdup(cand);
    }
    free(copy);
    return found;
}

/* Checks that s uses no placeholder but {port} and {session}. */
static lb_err config_template(const cfg_doc *d, const cfg_node *n, const char *s, lb_errmsg *em)
{
    for (const char *p = strchr(s, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        if (end == NULL)
            break;
        size_t len = (size_t)(end - p + 1);
        if ((len == 6 && strncmp(p, "{port}", 6) == 0) ||
            (len == 9 && strncmp(p, "{session}", 9) == 0))
            continue;
        return cfg_fail(d, n, em, "unknown placeholder '%.*s' (only {port} and {session})",
                        (int)len, p);
    }
    return LB_OK;
}

/* argv: a non-empty list; placeholders checked; argv[0] made absolute. */
static lb_err config_argv(const cfg_doc *d, const cfg_node *app, agent_app *a, lb_errmsg *em)
{
    const cfg_node *argv = cfg_map_get(app, "argv");
    lb_err err = cfg_get_strlist(d, app, "argv", &a->argv, &a->argc, em);
    if (err != LB_OK)
        return err;
    if (argv == NULL)
        return cfg_fail(d, app, em, "argv is required");
    if (a->argc == 0 || a->argv[0][0] == '\0')
        return cfg_fail(d, argv, em, "must name a command");
    for (size_t i = 0; i < a->argc; i++) {
        const cfg_node *item = cfg_kind_of(argv) == CFG_SEQ ? cfg_seq_at(argv, i) : argv;
        if ((err = config_template(d, item, a->argv[i], em)) != LB_OK)
            return err;
    }
    const cfg_node *a0 = cfg_kind_of(argv) == CFG_SEQ ? cfg_seq_at(argv, 0) : argv;
    if (strchr(a->argv[0], '{') != NULL)
        return cfg_fail(d, a0, em, "the command itself cannot be a template");
    if (strchr(a->argv[0], '/') == NULL) {
        char *abs = config_which(a->argv[0]);
        if (abs == NULL)
            return cfg_fail(d, a0, em, "'%s' not found in PATH", a->argv[0]);
        free(a->argv[0]);
        a->argv[0] = abs;
    } else if (a->argv[0][0] != '/') {
        return cfg_fail(d, a0, em, "'%s' must be an absolute path or a name found in PATH",
                        a->argv[0]);
    }
    if (access(a->argv[0], X_OK) != 0)
        return cfg_fail(d, a0, em, "'%s' is not an executable file", a->argv[0]);
    return LB_OK;
}

/* link: direct (default) or relay; anything else names file:line:key. */
static lb_err config_link(const cfg_doc *d, const cfg_node *n, agent_app *a, lb_errmsg *em)
{
    char *link = NULL;
    lb_err err = cfg_get_str(d, n, "link", "direct", &link, em);
    if (err == LB_OK && strcmp(link, "direct") != 0 && strcmp(link, "relay") != 0)
        err = cfg_fail(d, cfg_map_get(n, "link"), em, "expected direct or relay, got '%s'", link);
    a->relay = err == LB_OK && strcmp(link, "relay") == 0;
    free(link);
    return err;
}

static lb_err config_app(const cfg_doc *d, const char *name, const cfg_node *n,
                         const agent_config *c, agent_app *a, lb_errmsg *em)
{
    char **keys = NULL, **vals = NULL;
    size_t n_env = 0;
    a->name = lb_strdup(name);
    lb_err err = cfg_check_keys(d, n, app_keys, em);
    if (err == LB_OK && (cfg_kind_of(n) != CFG_MAP || !config_name_ok(name, 64)))
        err = cfg_fail(d, n, em,
                       cfg_kind_of(n) != CFG_MAP ? "expected a map with argv" : "invalid app name");
    if (err == LB_OK)
        err = config_argv(d, n, a, em);
    if (err == LB_OK)
        err = cfg_get_duration_ms(d, n, "ready_timeout", 5000, &a->ready_timeout_ms, em);
    if (err == LB_OK && (a->ready_timeout_ms < 1 || a->ready_timeout_ms > 600000))
        err = cfg_fail(d, cfg_map_get(n, "ready_timeout"), em, "out of range (1ms to 10m)");
    if (err == LB_OK)
        err = cfg_get_bool(d, n, "per_session", true, &a->per_session, em);
    if (err == LB_OK)
        err = config_link(d, n, a, em);
    if (err == LB_OK)
        err = agent_config_sandbox(d, n, c->default_user, a, em);
    if (err == LB_OK)
        err = config_pool(d, n, a, em);
    if (err == LB_OK)
        err = config_strmap(d, cfg_map_get(n, "env"), &keys, &vals, &n_env, em);
    a->env = n_env > 0 ? lb_xcalloc(n_env, sizeof *a->env) : NULL;
    for (size_t i = 0; i < n_env; i++) {
        size_t len = strlen(keys[i]) + strlen(vals[i]) + 2;
        a->env[i] = lb_xcalloc(1, len);
        snprintf(a->env[i], len, "%s=%s", keys[i], vals[i]);
    }
    a->n_env = n_env;
    cfg_strlist_free(&keys, n_env);
    cfg_strlist_free(&vals, n_env);
    return err;
}

static lb_err config_apps(const cfg_doc *d, const cfg_node *r, agent_config *c, lb_errmsg *em)
{
    const cfg_node *apps = cfg_map_get(r, "apps");
    lb_err err = cfg_expect(d, apps, CFG_MAP, em);
    size_t n = cfg_len(apps);
    if (err != LB_OK || n == 0)
        return err;
    c->apps = lb_xcalloc(n, sizeof *c->apps);
    for (size_t i = 0; i < n && err == LB_OK; i++) {
        c->n_apps = i + 1;
        err = config_app(d, cfg_map_key(apps, i), cfg_map_value(apps, i), c, &c->apps[i], em);
    }
    return err;
}

/* state_dir, cgroup, inherit_env: how the agent keeps its processes. */
static lb_err config_contain(const cfg_doc *d, const cfg_node *r, agent_config *c, lb_errmsg *em)
{
    char *mode = NULL;
    lb_err err = cfg_daemon_get_identity(d, r, "agent", c->id, &c->state_dir, &c->identity_key, em);
    if (err == LB_OK)
        err = cfg_get_str(d, r, "default_user", "nobody", &c->default_user, em);
    if (err == LB_OK)
        err = cfg_get_str(d, r, "cgroup", "auto", &mode, em);
    if (err == LB_OK && strcmp(mode, "auto") != 0 && strcmp(mode, "off") != 0)
        err = cfg_fail(d, cfg_map_get(r, "cgroup"), em, "expected auto or off, got '%s'", mode);
    c->cgroup = mode != NULL && strcmp(mode, "auto") == 0;
    free(mode);
    if (err != LB_OK)
        return err;
    if (cfg_map_get(r, "inherit_env") == NULL) {
        c->inherit_env = lb_xcalloc(1, sizeof *c->inherit_env);
        c->inherit_env[0] = lb_strdup("PATH");
        c->n_inherit_env = 1;
        return LB_OK;
    }
    err = cfg_get_strlist(d, r, "inherit_env", &c->inherit_env, &c->n_inherit_env, em);
    for (size_t i = 0; i < c->n_inherit_env && err == LB_OK; i++) {
        const char *v = c->inherit_env[i];
        if (v[0] == '\0' || strchr(v, '=') != NULL)
            err = cfg_fail(d, cfg_map_get(r, "inherit_env"), em, "'%s' is not a variable name", v);
    }
    return err;
}
static const char *const agent_url_keys[] = {"listen", "advertise", "report", NULL};

lb_err agent_config_load(const char *path, agent_config *c, lb_errmsg *em)
{
    cfg_doc *d = NULL;
    lb_err err = cfg_load_file(path, &d, em);
    if (err != LB_OK)
        return err;
    const cfg_node *r = cfg_root(d);
    c->file = lb_strdup(path);
    if ((err = cfg_check_keys(d, r, top_keys, em)) == LB_OK &&
        (err = config_strings(d, r, c, em)) == LB_OK &&
        (err = config_numbers(d, r, c, em)) == LB_OK &&
        (err = config_endpoints(d, r, c, em)) == LB_OK &&
        (err = config_contain(d, r, c, em)) == LB_OK &&
        (err = cfg_get_etcd_security(d, r, &c->etcd_sec, em)) == LB_OK &&
        (err = config_strmap(d, cfg_map_get(r, "labels"), &c->label_keys, &c->label_values,
                             &c->n_labels, em)) == LB_OK)
        err = config_apps(d, r, c, em);
    if (err == LB_OK && (err = cfg_tls_load(d, r, false, &c->tls, em)) == LB_OK)
        err = cfg_tls_check_urls(d, r, agent_url_keys, &c->tls, em);
    cfg_free(&d);
    if (err != LB_OK)
        agent_config_free(c);
    return err;
}

static void config_free_app(agent_app *a)
{
    free(a->name);
    free(a->user);
    cfg_strlist_free(&a->argv, a->argc);
    cfg_strlist_free(&a->env, a->n_env);
}

void agent_config_free(agent_config *c)
{
    char **strs[] = {
        &c->file,      &c->id,           &c->zone,   &c->region,    &c->group,       &c->host,
        &c->listen,    &c->etcd,         &c->prefix, &c->log_level, &c->http_listen, &c->advertise,
        &c->state_dir, &c->default_user, &c->arch,   &c->os,        &c->identity_key};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    cfg_strlist_free(&c->report, c->n_report);
    cfg_strlist_free(&c->reachable_via, c->n_reachable_via);
    etcd_security_free(&c->etcd_sec);
    cfg_tls_free(&c->tls);
    cfg_strlist_free(&c->label_keys, c->n_labels);
    cfg_strlist_free(&c->label_values, c->n_labels);
    cfg_strlist_free(&c->inherit_env, c->n_inherit_env);
    for (size_t i = 0; i < c->n_apps; i++)
        config_free_app(&c->apps[i]);
    free(c->apps);
    memset(c, 0, sizeof *c);
}

const agent_app *agent_config_app(const agent_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_apps; i++) {
        if (strcmp(c->apps[i].name, name) == 0)
            return &c->apps[i];
    }
    return NULL;
}
