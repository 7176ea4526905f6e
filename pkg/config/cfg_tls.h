/*
 * The `tls:` block every daemon config has (README "Security model"):
 *
 *   tls:
 *     ca: /etc/lbcp/tls/ca.pem          # CAs that sign the servers this daemon dials
 *     cert: /etc/lbcp/tls/master.pem    # this daemon's certificate (its role's CA)
 *     key: /etc/lbcp/tls/master.key
 *     peer_ca: /etc/lbcp/tls/peers.pem  # CAs whose certificates may connect (default: ca)
 *     report_peer_ca: ...               # lb-master only: CAs allowed on report_listen
 *     operator_peer_ca: ...             # lb-master only: CAs allowed on operator_listen
 *                                       # (the operator CA alone; required with it)
 *     server_name: ...                  # default: "<role>.lbcp" of the role dialed
 *     insecure: false                   # true: plain tcp:// allowed (a warning at start)
 *     http_insecure: false              # true: http_listen/api_listen plain HTTP (a warning);
 *                                       # otherwise they speak HTTPS with cert/key
 *
 * Ownership: cfg_tls_load fills strings the caller frees with cfg_tls_free.
 * Thread-safety: none needed (loaded once from main).
 */
#ifndef LB_CONFIG_CFG_TLS_H
#define LB_CONFIG_CFG_TLS_H

#include "config/cfg.h"

#include <stdint.h>

enum { CFG_TLS_FILES = 6 }; /* ca, cert, key, peer_ca, report_peer_ca, operator_peer_ca */

typedef struct cfg_tls {
    char *ca, *cert, *key, *peer_ca, *report_peer_ca, *operator_peer_ca, *server_name;
    bool insecure;
    bool http_insecure; /* plain HTTP on http_listen/api_listen despite cert/key */
    /* hash of each file's contents when loaded (0: none or unreadable), so a
     * SIGHUP can tell that a certificate file was replaced in place */
    uint64_t stamp[CFG_TLS_FILES];
} cfg_tls;

/* The certificate and key the daemon's HTTP servers serve HTTPS with, or NULL
 * (plain HTTP: tls.insecure or tls.http_insecure). */
static inline const char *cfg_tls_http_cert(const cfg_tls *t)
{
    return t->insecure || t->http_insecure || !*t->cert ? NULL : t->cert;
}
static inline const char *cfg_tls_http_key(const cfg_tls *t)
{
    return cfg_tls_http_cert(t) != NULL ? t->key : NULL;
}

/* Reads root's `tls` map. with_report: report_peer_ca and operator_peer_ca
 * are keys of this daemon (the master).
 * Without insecure, ca, cert and key are required (error names file:line:key). */
lb_err cfg_tls_load(const cfg_doc *doc, const cfg_node *root, bool with_report, cfg_tls *out,
                    lb_errmsg *em);

/* Checks the endpoints under each key of root (a string or a list of strings)
 * against the policy: plain tcp:// needs tls.insecure; tls+tcp:// needs a
 * certificate. keys is NULL-terminated; absent keys are skipped. */
lb_err cfg_tls_check_urls(const cfg_doc *doc, const cfg_node *root, const char *const *keys,
                          const cfg_tls *tls, lb_errmsg *em);

/* For SIGHUP: appends to buf (comma-separated, "tls.cert", ...) each tls key
 * whose value or file contents differ between the running o and the newly
 * loaded n. A restart applies them: nng 1.5.2 cannot give a running listener
 * a new certificate (README "Security model"). */
void cfg_tls_changed(const cfg_tls *o, const cfg_tls *n, char *buf, size_t cap);

void cfg_tls_free(cfg_tls *t);

#endif
