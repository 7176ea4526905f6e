#include "config/etcd_cfg.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* key (a path) must name a readable file; checked at load so the error
 * points at the config line, not at the first failing etcd call. */
static lb_err readable(const cfg_doc *doc, const cfg_node *map, const char *key, const char *path,
                       lb_errmsg *em)
{
    if (path == NULL || access(path, R_OK) == 0)
        return LB_OK;
    int e = errno;
    return cfg_fail(doc, cfg_map_get(map, key), em, "cannot read '%s': %s", path, strerror(e));
}

lb_err cfg_get_etcd_security(const cfg_doc *doc, const cfg_node *root, etcd_security *out,
                             lb_errmsg *em)
{
    static const char *const tls_keys[] = {"ca", "cert", "key", NULL};
    memset(out, 0, sizeof *out);
    const cfg_node *tls = cfg_map_get(root, "etcd_tls");
    lb_err err = LB_OK;
    if ((err = cfg_check_keys(doc, tls, tls_keys, em)) != LB_OK ||
        (err = cfg_get_str(doc, tls, "ca", NULL, &out->ca_file, em)) != LB_OK ||
        (err = cfg_get_str(doc, tls, "cert", NULL, &out->cert_file, em)) != LB_OK ||
        (err = cfg_get_str(doc, tls, "key", NULL, &out->key_file, em)) != LB_OK ||
        (err = cfg_get_str(doc, root, "etcd_user", NULL, &out->user, em)) != LB_OK ||
        (err = cfg_get_str(doc, root, "etcd_password_file", NULL, &out->password_file, em)) !=
            LB_OK)
        goto out;
    if ((out->cert_file == NULL) != (out->key_file == NULL)) {
        bool has_cert = out->cert_file != NULL;
        err = cfg_fail(doc, cfg_map_get(tls, has_cert ? "cert" : "key"), em,
                       "needs etcd_tls.%s (a client certificate and its private key go together)",
                       has_cert ? "key" : "cert");
        goto out;
    }
    if (out->user != NULL && out->password_file == NULL) {
        err = cfg_fail(doc, cfg_map_get(root, "etcd_user"), em,
                       "needs etcd_password_file (the password is never written in the config)");
        goto out;
    }
    if (out->user == NULL && out->password_file != NULL) {
        err = cfg_fail(doc, cfg_map_get(root, "etcd_password_file"), em, "needs etcd_user");
        goto out;
    }
    if ((err = readable(doc, tls, "ca", out->ca_file, em)) != LB_OK ||
        (err = readable(doc, tls, "cert", out->cert_file, em)) != LB_OK ||
        (err = readable(doc, tls, "key", out->key_file, em)) != LB_OK)
        goto out;
    err = readable(doc, root, "etcd_password_file", out->password_file, em);
out:
    if (err != LB_OK)
        etcd_security_free(out);
    return err;
}
