/*
 * lbctl's config file, so a fresh shell on an operator's host needs no flags
 * (kubectl's kubeconfig, consul's CONSUL_HTTP_ADDR): the first of
 * $LBCP_CONFIG, ~/.config/lbcp/lbctl.yaml, /etc/lbcp/lbctl.yaml.
 *
 *   etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379]   # string or list
 *   prefix: /lb/
 *   slave: tcp://10.0.0.5:7201       # default slave for request and list
 *   master: tcp://10.0.0.3:7101      # default: the leader found in etcd
 *   call_timeout: 20s
 *   connect_timeout: 2s
 *   tls:                             # the nng links to daemons, as in their configs
 *     {ca: /etc/lbcp/trust.pem, cert: /etc/lbcp/operator.crt, key: /etc/lbcp/operator.key}
 *   etcd_tls: {ca: /etc/lbcp/etcd-ca.pem, cert: /etc/lbcp/etcd.pem, key: /etc/lbcp/etcd.key}
 *   etcd_user: operator              # etcd auth; the password from a file
 *   etcd_password_file: /etc/lbcp/operator.password
 *
 * A flag or environment variable wins over the file. Errors name file:line: key.
 */
#include "ctl_args.h"

#include "config/cfg.h"
#include "config/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Strings handed to ctl_opts; freed at exit so LeakSanitizer stays quiet. */
static char *owned[16];
static size_t n_owned;
static char found_path[1024];

static void free_owned(void)
{
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    n_owned = 0;
}

static const char *keep(char *s)
{
    if (s == NULL)
        return NULL;
    if (n_owned == sizeof owned / sizeof owned[0]) {
        free(s);
        return NULL;
    }
    if (n_owned == 0)
        atexit(free_owned);
    owned[n_owned++] = s;
    return s;
}

const char *ctl_config_path(void)
{
    const char *env = getenv("LBCP_CONFIG");
    if (env != NULL && *env != '\0') {
        snprintf(found_path, sizeof found_path, "%s", env);
        return found_path;
    }
    const char *home = getenv("HOME");
    if (home != NULL && *home != '\0') {
        snprintf(found_path, sizeof found_path, "%s/.config/lbcp/lbctl.yaml", home);
        if (access(found_path, F_OK) == 0)
            return found_path;
    }
    snprintf(found_path, sizeof found_path, "/etc/lbcp/lbctl.yaml");
    if (access(found_path, F_OK) == 0)
        return found_path;
    found_path[0] = '\0';
    return found_path;
}

static const char *const top_keys[] = {"etcd",
                                       "prefix",
                                       "slave",
                                       "master",
                                       "call_timeout",
                                       "connect_timeout",
                                       "tls",
                                       "etcd_tls",
                                       "etcd_user",
                                       "etcd_password_file",
                                       NULL};
static const char *const etcd_tls_keys[] = {"ca", "cert", "key", NULL};
static const char *const tls_keys[] = {"ca", "cert", "key", "server_name", "insecure", NULL};

/* Sets *dst from key unless a flag or the environment set it already. */
static lb_err opt_str(const cfg_doc *d, const cfg_node *map, const char *key, const char **dst,
                      lb_errmsg *em)
{
    char *v = NULL;
    lb_err err = cfg_get_str(d, map, key, NULL, &v, em);
    if (err == LB_OK && v != NULL && *dst == NULL)
        *dst = keep(v);
    else
        free(v);
    return err;
}

/* The same for etcd_security's (non-const) strings. */
static lb_err sec_str(const cfg_doc *d, const cfg_node *map, const char *key, char **dst,
                      lb_errmsg *em)
{
    const char *v = *dst;
    lb_err err = opt_str(d, map, key, &v, em);
    *dst = (char *)v;
    return err;
}

static lb_err load(const cfg_doc *d, void *arg, lb_errmsg *em)
{
    ctl_opts *o = arg;
    const cfg_node *r = cfg_root(d);
    const cfg_node *tls = r != NULL ? cfg_map_get(r, "tls") : NULL;
    const cfg_node *etls = r != NULL ? cfg_map_get(r, "etcd_tls") : NULL;
    char **etcd = NULL;
    size_t n_etcd = 0;
    int64_t call = 0, conn = 0;
    lb_err err;
    if ((err = cfg_expect(d, r, CFG_MAP, em)) || (err = cfg_check_keys(d, r, top_keys, em)) ||
        (err = cfg_expect(d, tls, CFG_MAP, em)) || (err = cfg_check_keys(d, tls, tls_keys, em)) ||
        (err = cfg_expect(d, etls, CFG_MAP, em)) ||
        (err = cfg_check_keys(d, etls, etcd_tls_keys, em)) ||
        (err = cfg_get_strlist(d, r, "etcd", &etcd, &n_etcd, em)) ||
        (err = opt_str(d, r, "prefix", &o->prefix, em)) ||
        (err = opt_str(d, r, "slave", &o->slave, em)) ||
        (err = opt_str(d, r, "master", &o->master, em)) ||
        (err = cfg_get_duration_ms(d, r, "call_timeout", 0, &call, em)) ||
        (err = cfg_get_duration_ms(d, r, "connect_timeout", 0, &conn, em)) ||
        (err = sec_str(d, etls, "ca", &o->etcd_sec.ca_file, em)) ||
        (err = sec_str(d, etls, "cert", &o->etcd_sec.cert_file, em)) ||
        (err = sec_str(d, etls, "key", &o->etcd_sec.key_file, em)) ||
        (err = opt_str(d, tls, "ca", &o->tls.ca, em)) ||
        (err = opt_str(d, tls, "cert", &o->tls.cert, em)) ||
        (err = opt_str(d, tls, "key", &o->tls.key, em)) ||
        (err = opt_str(d, tls, "server_name", &o->tls.server_name, em)) ||
        (err = cfg_get_bool(d, tls, "insecure", false, &o->tls.insecure, em)) ||
        (err = sec_str(d, r, "etcd_user", &o->etcd_sec.user, em)) ||
        (err = sec_str(d, r, "etcd_password_file", &o->etcd_sec.password_file, em)))
        goto out;
    if (n_etcd > 0 && o->etcd == NULL)
        o->etcd = keep(cfg_join(etcd, n_etcd, ""));
    if (call > 0 && o->timeout_ms == 0)
        o->timeout_ms = (int)(call > 3600000 ? 3600000 : call);
    if (conn > 0 && o->connect_ms == 0)
        o->connect_ms = (int)(conn > 600000 ? 600000 : conn);
out:
    cfg_strlist_free(&etcd, n_etcd);
    return err;
}

int ctl_config_load(const char *path, ctl_opts *o)
{
    bool explicit_path = path != NULL || (getenv("LBCP_CONFIG") && *getenv("LBCP_CONFIG"));
    if (path == NULL)
        path = ctl_config_path();
    if (path[0] == '\0')
        return 0; /* no file: flags, environment and defaults */
    if (!explicit_path && access(path, R_OK) != 0)
        return 0;
    lb_errmsg em = {{0}};
    if (cfg_daemon_read(path, load, o, &em) != LB_OK) {
        fprintf(stderr, "lbctl: config %s\n", em.text);
        return -1;
    }
    return 0;
}
