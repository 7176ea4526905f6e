#include "config/cfg_tls.h"

#include "common/errmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tls_keys[] = {"ca",          "cert",     "key",           "peer_ca",
                                       "server_name", "insecure", "http_insecure", NULL};
static const char *const tls_keys_report[] = {"ca",       "cert",           "key",
                                              "peer_ca",  "report_peer_ca", "server_name",
                                              "insecure", "http_insecure",  NULL};

lb_err cfg_tls_load(const cfg_doc *doc, const cfg_node *root, bool with_report, cfg_tls *out,
                    lb_errmsg *em)
{
    memset(out, 0, sizeof *out);
    const cfg_node *n = root != NULL ? cfg_map_get(root, "tls") : NULL;
    lb_err err;
    if ((err = cfg_expect(doc, n, CFG_MAP, em)) ||
        (err = cfg_check_keys(doc, n, with_report ? tls_keys_report : tls_keys, em)) ||
        (err = cfg_get_str(doc, n, "ca", "", &out->ca, em)) ||
        (err = cfg_get_str(doc, n, "cert", "", &out->cert, em)) ||
        (err = cfg_get_str(doc, n, "key", "", &out->key, em)) ||
        (err = cfg_get_str(doc, n, "peer_ca", "", &out->peer_ca, em)) ||
        (err = cfg_get_str(doc, n, "report_peer_ca", "", &out->report_peer_ca, em)) ||
        (err = cfg_get_str(doc, n, "server_name", "", &out->server_name, em)) ||
        (err = cfg_get_bool(doc, n, "insecure", false, &out->insecure, em)) ||
        (err = cfg_get_bool(doc, n, "http_insecure", false, &out->http_insecure, em)))
        return err;
    if (out->insecure && !*out->ca && !*out->cert && !*out->key)
        return LB_OK;
    const char *missing = !*out->ca ? "ca" : !*out->cert ? "cert" : !*out->key ? "key" : NULL;
    if (missing != NULL) {
        char where[64] = "";
        if (n != NULL)
            snprintf(where, sizeof where, "%d:", cfg_line(n));
        return lb_fail(em, LB_ECONFIG,
                       "%s:%s tls.%s: required (a CA, certificate and key for tls+tcp://; or "
                       "tls.insecure: true to run plain tcp://)",
                       cfg_file(doc), where, missing);
    }
    return LB_OK;
}

static lb_err check_one(const cfg_doc *doc, const cfg_node *n, const char *url, const cfg_tls *tls,
                        lb_errmsg *em)
{
    bool plain = strncmp(url, "tcp", 3) == 0 || strncmp(url, "ws:", 3) == 0;
    bool secure = strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss", 3) == 0;
    if (plain && !tls->insecure)
        return cfg_fail(doc, n, em, "plain %s refused: use tls+tcp:// (or set tls.insecure: true)",
                        url);
    if (secure && !*tls->cert)
        return cfg_fail(doc, n, em, "%s needs tls.ca, tls.cert and tls.key", url);
    return LB_OK;
}

lb_err cfg_tls_check_urls(const cfg_doc *doc, const cfg_node *root, const char *const *keys,
                          const cfg_tls *tls, lb_errmsg *em)
{
    if (root == NULL)
        return LB_OK;
    for (size_t k = 0; keys[k] != NULL; k++) {
        const cfg_node *n = cfg_map_get(root, keys[k]);
        if (n == NULL)
            continue;
        if (cfg_kind_of(n) == CFG_SCALAR) {
            lb_err err = check_one(doc, n, cfg_scalar(n), tls, em);
            if (err != LB_OK)
                return err;
        } else if (cfg_kind_of(n) == CFG_SEQ) {
            for (size_t i = 0; i < cfg_len(n); i++) {
                const cfg_node *x = cfg_seq_at(n, i);
                if (cfg_kind_of(x) != CFG_SCALAR)
                    continue;
                lb_err err = check_one(doc, x, cfg_scalar(x), tls, em);
                if (err != LB_OK)
                    return err;
            }
        }
    }
    return LB_OK;
}

void cfg_tls_free(cfg_tls *t)
{
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t->peer_ca);
    free(t->report_peer_ca);
    free(t->server_name);
    memset(t, 0, sizeof *t);
}
