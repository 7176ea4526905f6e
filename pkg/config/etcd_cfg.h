/*
 * The etcd security keys every daemon's config shares:
 *
 *   etcd_tls:                        # for https:// endpoints
 *     ca: /etc/lbcp/etcd-ca.pem      # CA that signed etcd's certificate (default: the system's)
 *     cert: /etc/lbcp/etcd-client.pem  # client certificate for --client-cert-auth (empty CN)
 *     key: /etc/lbcp/etcd-client.key
 *   etcd_user: agent-a1              # etcd user (default: none, no etcd auth)
 *   etcd_password_file: /etc/lbcp/etcd-password   # its password, first line; required with
 * etcd_user
 *
 * The password is only ever read from a file (mode 600), never written in
 * the YAML: configs get copied, pasted and committed; a secret file does not.
 * Thread-safety: as the rest of pkg/config (call from main).
 */
#ifndef LB_CONFIG_ETCD_CFG_H
#define LB_CONFIG_ETCD_CFG_H

#include "config/cfg.h"
#include "etcd/etcd.h"

/* The keys above, for a daemon's list of allowed top-level keys. */
#define CFG_ETCD_SECURITY_KEYS "etcd_tls", "etcd_user", "etcd_password_file"

/* Reads the keys above from root into *out (zeroed first; free with
 * etcd_security_free). Errors name file:line:key: an unknown key under
 * etcd_tls, cert without key (or the reverse), a user without a password
 * file (or the reverse), a file that cannot be read. */
lb_err cfg_get_etcd_security(const cfg_doc *doc, const cfg_node *root, etcd_security *out,
                             lb_errmsg *em);

#endif
