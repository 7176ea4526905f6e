/*
 * lb-tls-swap-probe DIR: what Debian's nng 1.5.2 does when a running endpoint
 * is given a new TLS config (README "Security model": why certificates need a
 * restart). DIR holds two self-signed server certificates for "srv": A.crt,
 * A.pem (cert + key) and B.crt, B.pem (tls_swap_probe.sh makes them); the
 * listeners take ports the kernel picks.
 *
 *  1. a listener serving A, swapped to B while started: can a client trusting
 *     B (or A) still connect?
 *  2. a dialer trusting B, started against a server of A (its dials fail),
 *     swapped to trust A: does its next dial succeed?
 *
 * Prints RESULT listener_swap_rv=.. after_swap_new=ok|fail after_swap_old=..
 * fresh_listener_new=.. dialer_swap_rv=.. dialer_after_swap=.. and exits 0.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char *dir;

static nng_tls_config *server_cfg(const char *name)
{
    char path[4096];
    nng_tls_config *c = NULL;
    snprintf(path, sizeof path, "%s/%s.pem", dir, name);
    if (nng_tls_config_alloc(&c, NNG_TLS_MODE_SERVER) != 0 ||
        nng_tls_config_cert_key_file(c, path, NULL) != 0) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(2);
    }
    return c;
}

static nng_tls_config *client_cfg(const char *trust)
{
    char path[4096];
    nng_tls_config *c = NULL;
    snprintf(path, sizeof path, "%s/%s.crt", dir, trust);
    if (nng_tls_config_alloc(&c, NNG_TLS_MODE_CLIENT) != 0 ||
        nng_tls_config_ca_file(c, path) != 0 || nng_tls_config_server_name(c, "srv") != 0 ||
        nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED) != 0) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(2);
    }
    return c;
}

/* Sets cfg on a dialer (d != NULL) or listener and drops our reference: the
 * endpoint holds its own (nng_tls_config is reference-counted). */
static int set_tls(nng_dialer *d, nng_listener *l, nng_tls_config *cfg)
{
    int rv = d != NULL ? nng_dialer_set_ptr(*d, NNG_OPT_TLS_CONFIG, cfg)
                       : nng_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg);
    return rv;
}

/* One request through a new socket trusting `trust`: "ok" or "fail". */
static const char *call(const char *url, const char *trust)
{
    nng_socket c;
    nng_dialer d;
    int rv = nng_req0_open(&c);
    if (rv == 0)
        rv = nng_dialer_create(&d, c, url);
    if (rv == 0)
        rv = set_tls(&d, NULL, client_cfg(trust));
    if (rv == 0)
        rv = nng_dialer_start(d, 0);
    nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 3000);
    if (rv == 0)
        rv = nng_send(c, "hi", 3, 0);
    char *buf = NULL;
    size_t sz = 0;
    if (rv == 0 && (rv = nng_recv(c, &buf, &sz, NNG_FLAG_ALLOC)) == 0)
        nng_free(buf, sz);
    nng_close(c);
    return rv == 0 ? "ok" : "fail";
}

static void *echo(void *arg)
{
    nng_socket s = *(nng_socket *)arg;
    for (;;) {
        nng_msg *m = NULL;
        if (nng_recvmsg(s, &m, 0) != 0 || nng_sendmsg(s, m, 0) != 0)
            return NULL;
    }
}

/* A listener of cert on a port the kernel picks; its URL into url. */
static void listen_on(nng_socket s, const char *cert, nng_listener *l, char *url, size_t cap)
{
    int port = 0;
    if (nng_listener_create(l, s, "tls+tcp://127.0.0.1:0") != 0 ||
        set_tls(NULL, l, server_cfg(cert)) != 0 || nng_listener_start(*l, 0) != 0 ||
        nng_listener_get_int(*l, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        fprintf(stderr, "cannot listen with %s\n", cert);
        exit(2);
    }
    snprintf(url, cap, "tls+tcp://127.0.0.1:%d", port);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lb-tls-swap-probe DIR\n");
        return 2;
    }
    dir = argv[1];
    char u1[64], u2[64], u3[64];
    nng_socket s;
    nng_listener l1, l2, l3;
    pthread_t t;
    if (nng_rep0_open(&s) != 0)
        return 2;
    listen_on(s, "A", &l1, u1, sizeof u1);
    pthread_create(&t, NULL, echo, &s);
    const char *before = call(u1, "A");
    int lrv = set_tls(NULL, &l1, server_cfg("B"));
    const char *new_after = call(u1, "B"), *old_after = call(u1, "A");
    listen_on(s, "B", &l2, u2, sizeof u2);
    const char *fresh = call(u2, "B");

    /* a dialer whose dials fail (it trusts B, the server is A), then trusts A */
    nng_socket c;
    nng_dialer d;
    listen_on(s, "A", &l3, u3, sizeof u3);
    if (nng_req0_open(&c) != 0 || nng_dialer_create(&d, c, u3) != 0)
        return 2;
    nng_socket_set_ms(c, NNG_OPT_RECONNMAXT, 200);
    set_tls(&d, NULL, client_cfg("B"));
    nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    nng_msleep(500);
    int drv = set_tls(&d, NULL, client_cfg("A"));
    nng_socket_set_ms(c, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_ms(c, NNG_OPT_SENDTIMEO, 3000);
    int rv = nng_send(c, "hi", 3, 0);
    char *buf = NULL;
    size_t sz = 0;
    if (rv == 0 && (rv = nng_recv(c, &buf, &sz, NNG_FLAG_ALLOC)) == 0)
        nng_free(buf, sz);
    printf("RESULT before=%s listener_swap_rv=%d after_swap_new=%s after_swap_old=%s "
           "fresh_listener_new=%s dialer_swap_rv=%d dialer_after_swap=%s\n",
           before, lrv, new_after, old_after, fresh, drv, rv == 0 ? "ok" : "fail");
    nng_close(c);
    nng_close(s);
    pthread_join(t, NULL);
    return 0;
}
