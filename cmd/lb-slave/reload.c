/*
 * SIGHUP: re-read the config file and apply what a running slave can change
 * without dropping anything in flight: log_level and the token issuer keys
 * (token_public_keys: the new key ring replaces the old and the verified-token
 * cache is emptied, so a token of a removed key is refused at once). Other
 * keys take effect at the next start; a change to them, and a TLS certificate
 * or CA file replaced in place, is logged as such (nng 1.5.2 cannot give a
 * running listener a new certificate: README "Security model"). A file that
 * does not load (a missing or malformed key file among them) is rejected
 * whole and the running config kept.
 *
 * Runs on the main thread only (cfg_daemon_wait).
 */
#include "slave.h"

#include "auth/verifier.h"
#include "config/daemon.h"
#include "obs/log.h"

#include <stdio.h>
#include <string.h>

static bool str_differs(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

static bool list_differs(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return true;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return true;
    return false;
}

static void add(char *buf, size_t cap, const char *what)
{
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", what);
}

/* Keys that only a restart applies, named so the operator is not surprised. */
static void restart_keys(const slave_config *o, const slave_config *n, char *buf, size_t cap)
{
    const struct {
        const char *key;
        bool differs;
    } k[] = {{"id", str_differs(o->id, n->id)},
             {"zone", str_differs(o->zone, n->zone)},
             {"listen", str_differs(o->listen, n->listen)},
             {"advertise", str_differs(o->advertise, n->advertise)},
             {"masters", list_differs(o->masters, o->n_masters, n->masters, n->n_masters)},
             {"report", list_differs(o->report, o->n_report, n->report, n->n_report)},
             {"etcd", str_differs(o->etcd, n->etcd)},
             {"prefix", str_differs(o->prefix, n->prefix)},
             {"limit", o->limit != n->limit},
             {"require_tokens", o->require_tokens != n->require_tokens},
             {"state_dir", str_differs(o->state_dir, n->state_dir)},
             {"identity_key", str_differs(o->identity_key, n->identity_key)}};
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].differs)
            add(buf, cap, k[i].key);
    cfg_tls_changed(&o->tls, &n->tls, buf, cap);
}

/* The new issuer keys, when tokens are checked; false (em set) when one does
 * not load: then nothing of the file is applied. */
static bool reload_token_keys(slave *s, slave_config *n, char *changed, size_t cap, lb_errmsg *em)
{
    if (s->tokens == NULL || !n->require_tokens)
        return true; /* require_tokens itself is restart-only */
    if (auth_verifier_set_keys(s->tokens, n->token_public_keys, n->n_token_public_keys, em) !=
        LB_OK)
        return false;
    add(changed, cap, "token_public_keys");
    LOG_INFO("slave", "token keys reloaded", "keys=%zu", n->n_token_public_keys);
    char **keys = s->cfg.token_public_keys; /* read by main only after start */
    size_t nk = s->cfg.n_token_public_keys;
    s->cfg.token_public_keys = n->token_public_keys;
    s->cfg.n_token_public_keys = n->n_token_public_keys;
    n->token_public_keys = keys;
    n->n_token_public_keys = nk;
    return true;
}

int slave_reload(slave *s, const char *path, const char *flag_level)
{
    slave_config n;
    lb_errmsg em = {{0}};
    char changed[256] = "", restart[512];
    if (slave_config_read(path, &n, &em) != LB_OK ||
        !reload_token_keys(s, &n, changed, sizeof changed, &em)) {
        cfg_daemon_reload_log("slave", path, &em, NULL);
        slave_config_free(&n);
        return -1;
    }
    restart_keys(&s->cfg, &n, restart, sizeof restart);
    if (cfg_daemon_reload_level(flag_level, n.log_level))
        add(changed, sizeof changed, "log_level");
    char *old = s->cfg.log_level;
    s->cfg.log_level = n.log_level; /* read by main only */
    n.log_level = old;
    slave_config_free(&n);
    cfg_daemon_reload_log("slave", path, NULL, changed[0] ? changed : "nothing");
    if (restart[0] != '\0')
        LOG_WARN("slave", "changed keys take effect at the next start", "keys=%s", restart);
    return 0;
}
