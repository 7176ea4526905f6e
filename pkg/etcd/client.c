/* The client object: endpoint list, a pool of reusable curl handles. */
#include "etcd/internal.h"

#include "common/errmsg.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

lb_err etcd_global_init(lb_errmsg *em)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return lb_fail(em, LB_EIO, "curl_global_init: %s", curl_easy_strerror(global_rc));
    return LB_OK;
}

/* Splits "a, b,c" into normalised URLs ("http://" added when no scheme). */
static lb_err parse_endpoints(etcd_client *c, const char *endpoints, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    char *copy = lb_strdup(endpoints);
    size_t max = 1;
    for (const char *s = copy; *s != '\0'; s++)
        max += *s == ',';
    c->eps = lb_xcalloc(max, sizeof *c->eps);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t' || tok[n - 1] == '/'))
            tok[--n] = '\0';
        if (n == 0)
            continue;
        const char *scheme = strstr(tok, "://") != NULL ? "" : "http://";
        char *url = lb_xcalloc(strlen(scheme) + n + 1, 1);
        strcpy(url, scheme);
        strcat(url, tok);
        c->eps[c->n_eps++] = url;
    }
    if (c->n_eps == 0)
        rc = lb_fail(em, LB_ECONFIG, "etcd: no endpoint in \"%s\"", endpoints);
    free(copy);
    return rc;
}

/* Copies the TLS and auth settings; reads the password file. */
static lb_err apply_security(etcd_client *c, const etcd_security *sec, lb_errmsg *em)
{
    if (sec == NULL)
        return LB_OK;
    c->ca_file = sec->ca_file != NULL && *sec->ca_file != '\0' ? lb_strdup(sec->ca_file) : NULL;
    c->cert_file =
        sec->cert_file != NULL && *sec->cert_file != '\0' ? lb_strdup(sec->cert_file) : NULL;
    c->key_file = sec->key_file != NULL && *sec->key_file != '\0' ? lb_strdup(sec->key_file) : NULL;
    if (sec->user == NULL || *sec->user == '\0')
        return LB_OK;
    c->user = lb_strdup(sec->user);
    if (sec->password != NULL)
        c->password = lb_strdup(sec->password);
    else if (sec->password_file != NULL && *sec->password_file != '\0')
        return etcd_read_secret(sec->password_file, &c->password, em);
    else
        return lb_fail(em, LB_ECONFIG, "etcd user '%s' has no password (etcd_password_file)",
                       sec->user);
    return LB_OK;
}

lb_err etcd_open(const char *endpoints, int timeout_ms, etcd_client **out, lb_errmsg *em)
{
    return etcd_open_secure(endpoints, timeout_ms, NULL, out, em);
}

lb_err etcd_open_secure(const char *endpoints, int timeout_ms, const etcd_security *sec,
                        etcd_client **out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    etcd_client *c = NULL;
    *out = NULL;
    if (endpoints == NULL || timeout_ms <= 0) {
        rc = lb_fail(em, LB_EINVAL, "etcd_open: endpoints and a positive timeout are required");
        goto out;
    }
    rc = etcd_global_init(em);
    if (rc != LB_OK)
        goto out;
    c = lb_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->auth_mu, NULL);
    c->endpoints = lb_strdup(endpoints);
    c->timeout_ms = timeout_ms;
    atomic_init(&c->cur, 0);
    atomic_init(&c->page_limit, ETCD_DEFAULT_PAGE);
    atomic_init(&c->watch_idle_ms, ETCD_DEFAULT_IDLE_MS);
    rc = parse_endpoints(c, endpoints, em);
    if (rc == LB_OK)
        rc = apply_security(c, sec, em);
    if (rc != LB_OK)
        goto out;
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* small bodies: never wait for a 100-continue */
    struct curl_slist *h2 = c->headers ? curl_slist_append(c->headers, "Expect:") : NULL;
    if (h2 == NULL) {
        rc = lb_fail(em, LB_ENOMEM, "etcd_open: out of memory");
        goto out;
    }
    c->headers = h2;
    *out = c;
    c = NULL;
out:
    etcd_close(&c);
    return rc;
}

void etcd_close(etcd_client **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    etcd_client *c = *cp;
    for (size_t i = 0; i < c->n_pool; i++) {
        curl_easy_cleanup(c->pool[i]->h);
        free(c->pool[i]);
    }
    for (size_t i = 0; i < c->n_eps; i++)
        free(c->eps[i]);
    free(c->eps);
    curl_slist_free_all(c->headers);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->user);
    if (c->password != NULL)
        memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->token);
    pthread_mutex_destroy(&c->auth_mu);
    pthread_mutex_destroy(&c->mu);
    free(c->endpoints);
    free(c);
    *cp = NULL;
}

const char *etcd_endpoints(const etcd_client *c)
{
    return c != NULL ? c->endpoints : "";
}

void etcd_conn_setup(const etcd_client *c, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
    /* HTTP/1.1 also over TLS: the watch's line framing and the pool's one
     * connection per handle stay what they are with http:// */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (c->cert_file != NULL)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
    if (c->key_file != NULL)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
}

/* Takes an idle handle (keeping its open connection) or makes a new one. */
etcd_conn *etcd_conn_get(etcd_client *c)
{
    etcd_conn *k = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->n_pool > 0)
        k = c->pool[--c->n_pool];
    pthread_mutex_unlock(&c->mu);
    if (k != NULL)
        return k;
    k = lb_xcalloc(1, sizeof *k);
    k->h = curl_easy_init();
    if (k->h == NULL) {
        free(k);
        return NULL;
    }
    etcd_conn_setup(c, k->h);
    curl_easy_setopt(k->h, CURLOPT_ERRORBUFFER, k->errbuf);
    return k;
}

void etcd_conn_put(etcd_client *c, etcd_conn *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->n_pool < ETCD_POOL_MAX) {
        c->pool[c->n_pool++] = k;
        k = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (k != NULL) {
        curl_easy_cleanup(k->h);
        free(k);
    }
}

void etcd_set_page_limit(etcd_client *c, int limit)
{
    atomic_store(&c->page_limit, limit > 0 ? limit : ETCD_DEFAULT_PAGE);
}

void etcd_set_watch_idle_ms(etcd_client *c, int64_t ms)
{
    atomic_store(&c->watch_idle_ms, ms > 0 ? (long long)ms : ETCD_DEFAULT_IDLE_MS);
}
