/*
 * lb_client: configuration, the slave sockets, the tables of held sessions
 * (kept alive) and known processes (hot spares), and per-thread error text.
 */
#include "client_int.h"

#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char lbc_errtext[512];

lb_err lbc_fail(lb_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lbc_errtext, sizeof lbc_errtext, fmt, ap);
    va_end(ap);
    return e;
}

const char *lb_client_errmsg(void)
{
    return lbc_errtext;
}

void lbc_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static char *dup_or(const char *s, const char *def)
{
    return strdup(s != NULL ? s : def);
}

static int def_int(int v, int def)
{
    return v > 0 ? v : def;
}

static lb_client *client_new(const lb_client_config *cfg)
{
    lb_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    char rid[33];
    lb_random_id(rid);
    char gen[40];
    snprintf(gen, sizeof gen, "lbc-%.16s", rid);
    /* every configured endpoint may expand into several (a DNS name fronting
     * several slaves): tried in order like the configured list */
    c->slaves = calloc(cfg->n_slaves * WIRE_MAX_EXPAND, sizeof *c->slaves);
    c->labels = calloc(cfg->n_labels + 1, sizeof *c->labels);
    c->held = calloc(LBC_MAX_HELD, sizeof *c->held);
    c->client_id = dup_or(cfg->client_id, gen);
    c->location = dup_or(cfg->location, "");
    c->token = dup_or(cfg->token, "");
    c->arch = dup_or(cfg->arch, "");
    c->os = dup_or(cfg->os, "");
    if (c->slaves == NULL || c->labels == NULL || c->held == NULL || c->client_id == NULL ||
        c->location == NULL || c->token == NULL || c->arch == NULL || c->os == NULL) {
        lb_client_close(&c);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_slaves; i++) {
        char **eps = NULL;
        size_t n = 0;
        if (wire_endpoint_expand(cfg->slaves[i], &eps, &n) != LB_OK) {
            lb_client_close(&c);
            return NULL;
        }
        for (size_t j = 0; j < n; j++) {
            size_t k = 0;
            while (k < c->n_slaves && strcmp(c->slaves[k], eps[j]) != 0)
                k++;
            if (k == c->n_slaves) /* the same address twice is tried once */
                c->slaves[c->n_slaves++] = strdup(eps[j]);
        }
        wire_endpoints_free(&eps, n);
    }
    for (size_t i = 0; i < cfg->n_labels; i++, c->n_labels++)
        c->labels[i] = strdup(cfg->labels[i]);
    return c;
}

lb_client *lb_client_open(const lb_client_config *cfg, lb_err *err)
{
    lb_err dummy;
    err = err != NULL ? err : &dummy;
    *err = LB_OK;
    if (cfg == NULL || cfg->n_slaves == 0 || cfg->slaves == NULL) {
        *err = lbc_fail(LB_EINVAL, "lb_client_open: no slaves configured");
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_slaves; i++)
        if (cfg->slaves[i] == NULL || strstr(cfg->slaves[i], "://") == NULL) {
            *err = lbc_fail(LB_EINVAL, "lb_client_open: slave %zu: expected tcp://HOST:PORT", i);
            return NULL;
        }
    lb_client *c = client_new(cfg);
    if (c == NULL) {
        *err = lbc_fail(LB_ENOMEM, "lb_client_open: out of memory");
        return NULL;
    }
    wire_tls_opts to = {cfg->tls.ca,          cfg->tls.cert, cfg->tls.key,
                        cfg->tls.server_name, cfg->tls.ca,   cfg->tls.insecure};
    lb_errmsg tm = {{0}};
    if ((to.ca || to.cert || to.key) && (*err = wire_tls_new(&to, &c->tls, &tm)) != LB_OK) {
        lb_client_close(&c);
        *err = lbc_fail(*err, "lb_client_open: %s", tm.text);
        return NULL;
    }
    c->min_cpu = cfg->min_cpu;
    c->min_mem = cfg->min_mem;
    c->connect_timeout_ms = def_int(cfg->connect_timeout_ms, 1000);
    c->request_timeout_ms = def_int(cfg->request_timeout_ms, 15000);
    c->retries = cfg->retries > 0 ? cfg->retries : (cfg->retries < 0 ? 0 : 2);
    c->backoff_ms = def_int(cfg->backoff_ms, 100);
    c->max_hops = def_int(cfg->max_hops, 3);
    if (c->max_hops > LB_MAX_HOPS)
        c->max_hops = LB_MAX_HOPS;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->wake, NULL);
    c->keepalive = !cfg->no_keepalive;
    if (c->keepalive && lbc_keepalive_start(c) != 0) {
        c->keepalive = false;
        lb_client_close(&c);
        *err = lbc_fail(LB_ESYS, "lb_client_open: cannot start the keepalive thread");
        return NULL;
    }
    return c;
}

void lb_client_close(lb_client **cp)
{
    lb_client *c = cp != NULL ? *cp : NULL;
    if (c == NULL)
        return;
    if (c->held != NULL && c->slaves != NULL && c->n_slaves > 0 && c->max_hops > 0) {
        lbc_keepalive_stop(c);
        /* release what is still held, newest first; a failure is only logged
         * by the master's expiry (the session expires on its own) */
        while (c->n_held > 0) {
            lbc_held h = c->held[--c->n_held];
            lbc_release_session(c, h.session, h.client_id);
        }
        for (size_t i = 0; i < c->n_socks; i++)
            nng_close(c->socks[i].sock);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->wake);
    }
    for (size_t i = 0; i < c->n_slaves; i++)
        free(c->slaves[i]);
    for (size_t i = 0; i < c->n_labels; i++)
        free(c->labels[i]);
    free(c->slaves);
    free(c->labels);
    free(c->held);
    free(c->client_id);
    free(c->location);
    free(c->token);
    free(c->arch);
    free(c->os);
    wire_tls_free(&c->tls);
    free(c);
    *cp = NULL;
}

lb_err lbc_socket(lb_client *c, const char *endpoint, nng_socket *out)
{
    lb_err err = LB_OK;
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->n_socks && strcmp(c->socks[i].endpoint, endpoint) != 0)
        i++;
    if (i == c->n_socks) {
        lb_errmsg em = {{0}};
        if (c->n_socks == LBC_MAX_SOCKS) {
            err = lbc_fail(LB_ENOMEM, "too many slave endpoints (max %d)", LBC_MAX_SOCKS);
        } else if ((err = wire_req_dial_to(endpoint, WIRE_ROLE_SLAVE, c->tls, &c->socks[i].sock,
                                           &em)) != LB_OK) {
            lbc_fail(err, "%s", em.text);
        } else {
            lbc_copy(c->socks[i].endpoint, sizeof c->socks[i].endpoint, endpoint);
            c->n_socks++;
        }
    }
    if (err == LB_OK)
        *out = c->socks[i].sock;
    pthread_mutex_unlock(&c->lock);
    return err;
}

void lbc_hold(lb_client *c, const lb_assignment *a)
{
    int64_t now = lb_wall_ms();
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->n_held && strcmp(c->held[i].session, a->session) != 0)
        i++;
    if (i < LBC_MAX_HELD) {
        lbc_held *h = &c->held[i];
        lbc_copy(h->session, sizeof h->session, a->session);
        lbc_copy(h->client_id, sizeof h->client_id, a->client_id);
        h->expires_ms = a->expires_ms;
        h->renew_at = a->expires_ms > now ? now + (a->expires_ms - now) / 3 : now + 1000;
        if (i == c->n_held)
            c->n_held++;
        pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->lock);
}

void lbc_unhold(lb_client *c, const char *session)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_held; i++)
        if (strcmp(c->held[i].session, session) == 0) {
            c->held[i] = c->held[--c->n_held];
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

void lbc_remember(lb_client *c, const lb_assignment *a)
{
    if (a->relay || a->port == 0)
        return; /* a relay token is single-use: nothing to reuse later */
    pthread_mutex_lock(&c->lock);
    lbc_known *k = &c->known[c->known_next];
    c->known_next = (c->known_next + 1) % LBC_MAX_KNOWN;
    if (c->n_known < LBC_MAX_KNOWN)
        c->n_known++;
    lbc_copy(k->app, sizeof k->app, a->app);
    lbc_copy(k->server, sizeof k->server, a->server);
    lbc_copy(k->host, sizeof k->host, a->host);
    lbc_copy(k->session, sizeof k->session, a->session);
    k->port = a->port;
    pthread_mutex_unlock(&c->lock);
}

void lbc_forget(lb_client *c, const char *host, uint16_t port)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_known; i++)
        if (c->known[i].port == port && strcmp(c->known[i].host, host) == 0)
            c->known[i].port = 0;
    pthread_mutex_unlock(&c->lock);
}

bool lbc_known_on(lb_client *c, const char *app, const char *server, lbc_known *out)
{
    bool found = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_known && !found; i++) {
        const lbc_known *k = &c->known[i];
        found = k->port != 0 && strcmp(k->app, app) == 0 && strcmp(k->server, server) == 0;
        if (found)
            *out = *k;
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}
