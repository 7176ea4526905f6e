#include "config/cfg_tls.h"

#include "common/errmsg.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const tls_keys[] = {"ca",          "cert",     "key",           "peer_ca",
                                       "server_name", "insecure", "http_insecure", NULL};
static const char *const tls_keys_report[] = {
    "ca",          "cert",     "key",           "peer_ca", "report_peer_ca", "operator_peer_ca",
    "server_name", "insecure", "http_insecure", NULL};

/* FNV-1a of a file's contents: a change detector, not a security check. Only
 * a regular file, and its first MiB (a PEM bundle is far smaller): a config
 * naming /dev/zero must not hang the load. */
static uint64_t file_stamp(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        close(fd);
        return 0;
    }
    uint64_t h = 1469598103934665603ULL;
    unsigned char buf[4096];
    size_t n, total = 0;
    while (total < (1u << 20) && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        total += n;
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ULL;
    }
    fclose(f);
    return h | 1; /* never 0: 0 means no file */
}

static void tls_files(const cfg_tls *t, const char *out[CFG_TLS_FILES])
{
    out[0] = t->ca;
    out[1] = t->cert;
    out[2] = t->key;
    out[3] = t->peer_ca;
    out[4] = t->report_peer_ca;
    out[5] = t->operator_peer_ca;
}

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
        (err = cfg_get_str(doc, n, "operator_peer_ca", "", &out->operator_peer_ca, em)) ||
        (err = cfg_get_str(doc, n, "server_name", "", &out->server_name, em)) ||
        (err = cfg_get_bool(doc, n, "insecure", false, &out->insecure, em)) ||
        (err = cfg_get_bool(doc, n, "http_insecure", false, &out->http_insecure, em)))
        return err;
    const char *files[CFG_TLS_FILES];
    tls_files(out, files);
    for (int i = 0; i < CFG_TLS_FILES; i++)
        out->stamp[i] = file_stamp(files[i]);
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

static bool str_differs(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") != 0;
}

void cfg_tls_changed(const cfg_tls *o, const cfg_tls *n, char *buf, size_t cap)
{
    static const char *const names[CFG_TLS_FILES] = {
        "tls.ca",      "tls.cert",           "tls.key",
        "tls.peer_ca", "tls.report_peer_ca", "tls.operator_peer_ca"};
    const char *of[CFG_TLS_FILES], *nf[CFG_TLS_FILES];
    tls_files(o, of);
    tls_files(n, nf);
    for (int i = 0; i < CFG_TLS_FILES; i++)
        if (str_differs(of[i], nf[i]) || o->stamp[i] != n->stamp[i])
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", names[i]);
    const struct {
        const char *name;
        bool differs;
    } k[] = {{"tls.server_name", str_differs(o->server_name, n->server_name)},
             {"tls.insecure", o->insecure != n->insecure},
             {"tls.http_insecure", o->http_insecure != n->http_insecure}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (k[i].differs)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "," : "", k[i].name);
}

void cfg_tls_free(cfg_tls *t)
{
    free(t->ca);
    free(t->cert);
    free(t->key);
    free(t->peer_ca);
    free(t->report_peer_ca);
    free(t->operator_peer_ca);
    free(t->server_name);
    memset(t, 0, sizeof *t);
}
