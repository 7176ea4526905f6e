#include "wire/wire_tls.h"

#include "common/errmsg.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"

#include <errno.h>
#include <pthread.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PEM files are small; a bigger one is a mistake (a directory, a log). */
#define TLS_MAX_PEM (256 * 1024)

struct wire_tls {
    bool insecure;
    bool enabled;
    char *ca; /* file names: nng reads CA files itself */
    char *peer_ca;
    char *cert_pem; /* contents: nng takes our own certificate as text */
    char *key_pem;
    nng_tls_config *client[WIRE_ROLE_N];
};

static wire_tls *tls_default;

static const char *const role_names[WIRE_ROLE_N] = {"master.lbcp", "slave.lbcp", "agent.lbcp",
                                                    NULL};

static lb_err read_pem(const char *what, const char *path, char **out, lb_errmsg *em)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lb_fail(em, LB_ECONFIG, "tls.%s: cannot open %s: %s", what, path, strerror(errno));
    char *buf = malloc(TLS_MAX_PEM + 1);
    size_t n = buf != NULL ? fread(buf, 1, TLS_MAX_PEM + 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return LB_ENOMEM;
    if (n == 0 || n > TLS_MAX_PEM || strstr(buf, "-----BEGIN") == NULL) {
        free(buf);
        return lb_fail(em, LB_ECONFIG, "tls.%s: %s is not a PEM file of at most %d bytes", what,
                       path, TLS_MAX_PEM);
    }
    buf[n] = '\0';
    *out = buf;
    return LB_OK;
}

/* A configuration with our certificate, verifying the peer against ca_file. */
static lb_err tls_config(const wire_tls *t, nng_tls_mode mode, const char *ca_file,
                         const char *server_name, nng_tls_config **out, lb_errmsg *em)
{
    nng_tls_config *c = NULL;
    int rv = nng_tls_config_alloc(&c, mode);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "tls: %s", nng_strerror(rv));
    if ((rv = nng_tls_config_ca_file(c, ca_file)) != 0) {
        nng_tls_config_free(c);
        return lb_fail(em, LB_ECONFIG, "tls: CA file %s: %s (want PEM certificates)", ca_file,
                       nng_strerror(rv));
    }
    if (t->cert_pem != NULL &&
        (rv = nng_tls_config_own_cert(c, t->cert_pem, t->key_pem, NULL)) != 0) {
        nng_tls_config_free(c);
        return lb_fail(em, LB_ECONFIG, "tls: certificate and key do not load: %s",
                       nng_strerror(rv));
    }
    rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED);
    if (rv == 0 && server_name != NULL)
        rv = nng_tls_config_server_name(c, server_name);
    if (rv != 0) {
        nng_tls_config_free(c);
        return lb_fail(em, wire_from_nng(rv), "tls: %s", nng_strerror(rv));
    }
    *out = c;
    return LB_OK;
}

lb_err wire_tls_new(const wire_tls_opts *o, wire_tls **out, lb_errmsg *em)
{
    lb_err err = LB_OK;
    wire_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return LB_ENOMEM;
    t->insecure = o->insecure;
    bool any = (o->ca && *o->ca) || (o->cert && *o->cert) || (o->key && *o->key);
    if (!any && o->insecure)
        goto done;
    /* A CA alone makes a client without a certificate: servers refuse it, which
     * is what a test of that refusal needs; daemons' configs require all three. */
    bool no_cert = !(o->cert && *o->cert) && !(o->key && *o->key);
    if (!(o->ca && *o->ca) || (!no_cert && (!(o->cert && *o->cert) || !(o->key && *o->key)))) {
        err =
            lb_fail(em, LB_ECONFIG,
                    "tls: ca, cert and key are all required (or insecure: true for plain tcp://)");
        goto done;
    }
    t->enabled = true;
    t->ca = strdup(o->ca);
    t->peer_ca = strdup(o->peer_ca && *o->peer_ca ? o->peer_ca : o->ca);
    if (t->ca == NULL || t->peer_ca == NULL) {
        err = LB_ENOMEM;
        goto done;
    }
    if (!no_cert && ((err = read_pem("cert", o->cert, &t->cert_pem, em)) != LB_OK ||
                     (err = read_pem("key", o->key, &t->key_pem, em)) != LB_OK))
        goto done;
    for (int r = 0; r < WIRE_ROLE_N && err == LB_OK; r++) {
        const char *name = o->server_name && *o->server_name ? o->server_name : role_names[r];
        err = tls_config(t, NNG_TLS_MODE_CLIENT, t->ca, name, &t->client[r], em);
    }
    if (err == LB_OK && !no_cert) { /* load the listeners' CA now: a bad file fails at start */
        nng_tls_config *probe = NULL;
        err = tls_config(t, NNG_TLS_MODE_SERVER, t->peer_ca, NULL, &probe, em);
        if (probe != NULL)
            nng_tls_config_free(probe);
    }
done:
    if (err != LB_OK)
        wire_tls_free(&t);
    *out = t;
    return err;
}

void wire_tls_free(wire_tls **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    wire_tls *t = *tp;
    for (int r = 0; r < WIRE_ROLE_N; r++)
        if (t->client[r] != NULL)
            nng_tls_config_free(t->client[r]);
    free(t->ca);
    free(t->peer_ca);
    free(t->cert_pem);
    if (t->key_pem != NULL) {
        memset(t->key_pem, 0, strlen(t->key_pem));
        free(t->key_pem);
    }
    if (tls_default == t)
        tls_default = NULL;
    free(t);
    *tp = NULL;
}

void wire_tls_set_default(wire_tls *t)
{
    tls_default = t;
}

wire_tls *wire_tls_default(void)
{
    return tls_default;
}

bool wire_tls_insecure(const wire_tls *t)
{
    return t == NULL || t->insecure;
}

bool wire_tls_enabled(const wire_tls *t)
{
    return t != NULL && t->enabled;
}

void wire_tls_opts_from_env(wire_tls_opts *o)
{
    const char *v;
    if ((v = getenv("LBCP_TLS_CA")) != NULL && *v)
        o->ca = v;
    if ((v = getenv("LBCP_TLS_CERT")) != NULL && *v)
        o->cert = v;
    if ((v = getenv("LBCP_TLS_KEY")) != NULL && *v)
        o->key = v;
    if ((v = getenv("LBCP_TLS_SERVER_NAME")) != NULL && *v)
        o->server_name = v;
    if ((v = getenv("LBCP_TLS_INSECURE")) != NULL && strcmp(v, "1") == 0)
        o->insecure = true;
}

lb_err wire_tls_env_default(wire_tls **out, lb_errmsg *em)
{
    wire_tls_opts o = {0};
    wire_tls_opts_from_env(&o);
    *out = NULL;
    if (o.ca == NULL && o.cert == NULL && o.key == NULL && !o.insecure)
        return LB_OK;
    lb_err err = wire_tls_new(&o, out, em);
    if (err == LB_OK)
        wire_tls_set_default(*out);
    return err;
}

bool wire_url_tls(const char *url)
{
    return strncmp(url, "tls+", 4) == 0 || strncmp(url, "wss", 3) == 0;
}

bool wire_url_plain(const char *url)
{
    return strncmp(url, "tcp", 3) == 0 || strncmp(url, "ws://", 5) == 0 ||
           strncmp(url, "ws4://", 6) == 0 || strncmp(url, "ws6://", 6) == 0;
}

/* The transport policy of the header comment. */
static lb_err check_url(const char *what, const char *url, const wire_tls *t, lb_errmsg *em)
{
    if (wire_url_plain(url) && t != NULL && !t->insecure)
        return lb_fail(em, LB_EAUTH,
                       "%s %s: plain TCP refused (use tls+tcp://, or tls.insecure: true to allow "
                       "it)",
                       what, url);
    if (wire_url_tls(url) && !wire_tls_enabled(t))
        return lb_fail(em, LB_EAUTH,
                       "%s %s: TLS needs a CA, certificate and key (tls.ca, "
                       "tls.cert, tls.key; for lbctl --tls-ca/--tls-cert/--tls-key)",
                       what, url);
    return LB_OK;
}

/* A dialer for url on s, started (non-blocking) when start, else closed again
 * once made: what wire_dial and wire_dial_check share. */
static lb_err dial_make(nng_socket s, const char *url, wire_role peer, const wire_tls *tls,
                        bool start, lb_errmsg *em)
{
    const wire_tls *t = tls != NULL ? tls : tls_default;
    lb_err err = check_url("dial", url, t, em);
    if (err != LB_OK)
        return err;
    nng_dialer d;
    int rv = nng_dialer_create(&d, s, url);
    if (rv == 0 && wire_url_tls(url))
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t->client[peer]);
    if (rv == 0 && start)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    else if (rv == 0)
        nng_dialer_close(d);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "dial %s: %s", url, nng_strerror(rv));
    return LB_OK;
}

lb_err wire_dial(nng_socket s, const char *url, wire_role peer, const wire_tls *tls, lb_errmsg *em)
{
    return dial_make(s, url, peer, tls, true, em);
}

lb_err wire_dial_check(nng_socket s, const char *url, wire_role peer, const wire_tls *tls,
                       lb_errmsg *em)
{
    return dial_make(s, url, peer, tls, false, em);
}

lb_err wire_listen(nng_socket s, const char *url, const char *peer_ca, const wire_tls *tls,
                   nng_listener *out, lb_errmsg *em)
{
    const wire_tls *t = tls != NULL ? tls : tls_default;
    lb_err err = check_url("listen", url, t, em);
    if (err != LB_OK)
        return err;
    if (wire_url_tls(url) && t->cert_pem == NULL)
        return lb_fail(em, LB_EAUTH, "listen %s: TLS needs a certificate and key", url);
    nng_listener l;
    int rv = nng_listener_create(&l, s, url);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "listen %s: %s", url, nng_strerror(rv));
    if (wire_url_tls(url)) {
        nng_tls_config *c = NULL;
        err = tls_config(t, NNG_TLS_MODE_SERVER, peer_ca != NULL ? peer_ca : t->peer_ca, NULL, &c,
                         em);
        if (err != LB_OK) {
            nng_listener_close(l);
            return err;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c);
        nng_tls_config_free(c); /* the listener holds its own reference */
    }
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0) {
        nng_listener_close(l);
        return lb_fail(em, wire_from_nng(rv), "listen %s: %s", url, nng_strerror(rv));
    }
    if (out != NULL)
        *out = l;
    return LB_OK;
}

static uint64_t stat_child(nng_stat *scope, const char *name)
{
    for (nng_stat *c = nng_stat_child(scope); c != NULL; c = nng_stat_next(c))
        if (strcmp(nng_stat_name(c), name) == 0)
            return nng_stat_value(c);
    return 0;
}

static bool stat_has(nng_stat *scope, const char *name)
{
    for (nng_stat *c = nng_stat_child(scope); c != NULL; c = nng_stat_next(c))
        if (strcmp(nng_stat_name(c), name) == 0)
            return true;
    return false;
}

/* Walks every statistics scope named kind ("dialer"/"listener"); for those of
 * socket sid (-1: any) adds what fn returns. */
static uint64_t stat_walk(nng_stat *n, const char *kind, int sid, uint64_t (*fn)(nng_stat *scope))
{
    uint64_t sum = 0;
    for (nng_stat *c = nng_stat_child(n); c != NULL; c = nng_stat_next(c)) {
        if (nng_stat_type(c) != NNG_STAT_SCOPE)
            continue;
        if (strcmp(nng_stat_name(c), kind) == 0 && stat_has(c, "auth") &&
            (sid < 0 || stat_child(c, "socket") == (uint64_t)sid))
            sum += fn(c);
        else
            sum += stat_walk(c, kind, sid, fn);
    }
    return sum;
}

static uint64_t listener_refused(nng_stat *scope)
{
    return stat_child(scope, "auth");
}

/* A server that rejects our certificate either fails the handshake (auth) or
 * closes the connection in it, which nng counts as "other" without a connect. */
static uint64_t dialer_refused(nng_stat *scope)
{
    uint64_t auth = stat_child(scope, "auth");
    if (auth == 0 && stat_child(scope, "connect") == 0)
        auth = stat_child(scope, "other");
    return auth;
}

uint64_t wire_tls_refusals(void)
{
    nng_stat *all = NULL;
    if (nng_stats_get(&all) != 0)
        return 0;
    uint64_t n = stat_walk(all, "listener", -1, listener_refused);
    nng_stats_free(all);
    return n;
}

/* The first dialer scope of socket sid that was refused, under n. */
static nng_stat *refused_dialer(nng_stat *n, int sid)
{
    for (nng_stat *c = nng_stat_child(n); c != NULL; c = nng_stat_next(c)) {
        if (nng_stat_type(c) != NNG_STAT_SCOPE)
            continue;
        if (strcmp(nng_stat_name(c), "dialer") == 0 && stat_has(c, "auth")) {
            if (stat_child(c, "socket") == (uint64_t)sid && dialer_refused(c) > 0)
                return c;
        } else {
            nng_stat *d = refused_dialer(c, sid);
            if (d != NULL)
                return d;
        }
    }
    return NULL;
}

void wire_tls_sync_counter(void)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t seen;
    static obs_counter *c;
    uint64_t now = wire_tls_refusals();
    pthread_mutex_lock(&mu);
    if (c == NULL)
        c = obs_counter_get("wire_tls_refused_total");
    if (c != NULL && now > seen)
        obs_add(c, now - seen);
    if (now > seen)
        seen = now;
    pthread_mutex_unlock(&mu);
}

bool wire_tls_refused(nng_socket s, char *url, size_t cap)
{
    nng_stat *all = NULL;
    if (nng_stats_get(&all) != 0)
        return false;
    nng_stat *d = refused_dialer(all, nng_socket_id(s));
    if (d != NULL && url != NULL && cap > 0) {
        url[0] = '\0';
        for (nng_stat *c = nng_stat_child(d); c != NULL; c = nng_stat_next(c))
            if (strcmp(nng_stat_name(c), "url") == 0 && nng_stat_type(c) == NNG_STAT_STRING)
                snprintf(url, cap, "%s", nng_stat_string(c));
    }
    nng_stats_free(all);
    return d != NULL;
}

int wire_tls_start(const char *daemon, const wire_tls_opts *o)
{
    lb_errmsg em = {{0}};
    wire_tls *t = NULL;
    if (wire_tls_new(o, &t, &em) != LB_OK) {
        fprintf(stderr, "%s: config error: %s\n", daemon, em.text);
        return -1;
    }
    wire_tls_set_default(t);
    if (o->insecure)
        LOG_WARN("tls", "plain TCP allowed",
                 "daemon=%s tls=%s note=\"tls.insecure is true: whoever reaches a tcp:// "
                 "endpoint of this daemon is not authenticated\"",
                 daemon, t->enabled ? "also" : "off");
    return 0;
}
