/*
 * etcd user/password auth over the JSON gateway: POST /v3/auth/authenticate
 * gives a token that every later call sends raw as "Authorization: <token>".
 * etcd's simple tokens expire after --auth-token-ttl (300 s) without use, and
 * every token dies with an auth store change or an etcd restart, so a token is
 * fetched lazily and renewed when etcd rejects it: etcd_call retries once, the
 * watch reconnects, the keeper's next refresh goes through etcd_call.
 *
 * One token per client, shared by its threads. Renewals are keyed by a
 * generation so that many threads seeing the same rejected token
 * authenticate once, not once each.
 */
#include "etcd/internal.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET_MAX 4096

bool etcd_auth_token_rejected(int grpc_code, const char *msg)
{
    return grpc_code == 16 || (msg != NULL && (strstr(msg, "invalid auth token") != NULL ||
                                               strstr(msg, "auth store is old") != NULL));
}

lb_err etcd_read_secret(const char *path, char **out, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    char buf[SECRET_MAX + 2];
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return lb_fail(em, LB_ECONFIG, "etcd password file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0077) != 0)
        LOG_WARN("etcd", "password file readable by group or others; chmod 600 it",
                 "path=\"%s\" mode=%o", path, (unsigned)(st.st_mode & 0777));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    if (ferror(f))
        rc = lb_fail(em, LB_ECONFIG, "etcd password file %s: %s", path, strerror(errno));
    else if (n > SECRET_MAX)
        rc = lb_fail(em, LB_ECONFIG, "etcd password file %s: over %d bytes", path, SECRET_MAX);
    fclose(f);
    if (rc != LB_OK)
        return rc;
    buf[strcspn(buf, "\r\n")] = '\0'; /* the first line */
    if (buf[0] == '\0')
        return lb_fail(em, LB_ECONFIG, "etcd password file %s: empty", path);
    *out = lb_strdup(buf);
    memset(buf, 0, sizeof buf);
    return LB_OK;
}

/* POST /v3/auth/authenticate. Called with auth_mu held. */
static lb_err authenticate(etcd_client *c, lb_errmsg *em)
{
    cJSON *req = etcd_jobj(), *resp = NULL;
    etcd_jadd_str(req, "name", c->user);
    etcd_jadd_str(req, "password", c->password);
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    if (body == NULL)
        abort();
    int code = 0;
    lb_errmsg why = {{0}};
    lb_err rc = etcd_post(c, "auth", "/v3/auth/authenticate", body, c->headers,
                          ETCD_MAX_SMALL_BYTES, &resp, &code, &why);
    memset(body, 0, strlen(body)); /* the password */
    free(body);
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(resp, "token");
    if (rc == LB_OK && cJSON_IsString(tok) && tok->valuestring[0] != '\0') {
        free(c->token);
        c->token = lb_strdup(tok->valuestring);
        c->token_gen++;
        obs_count("etcd_auth_total{result=\"ok\"}");
        LOG_DEBUG("etcd", "authenticated", "user=%s", c->user);
    } else if (rc == LB_OK) {
        rc = lb_fail(em, LB_EPROTO, "etcd authentication as user '%s': no token in the answer",
                     c->user);
    } else if (code == 9 || strstr(why.text, "authentication is not enabled") != NULL) {
        /* nothing to send: go on without a token (and say so once) */
        c->auth_off = true;
        rc = LB_OK;
        LOG_WARN("etcd", "etcd has authentication disabled; etcd_user is not used", "user=%s",
                 c->user);
    } else if (rc == LB_EUNAVAIL || rc == LB_ETIMEDOUT) {
        lb_fail(em, rc, "%s", why.text); /* etcd not there: the callers' retry covers it */
    } else {
        if (rc != LB_EAUTH || code != 0)
            rc = LB_EAUTH;
        obs_count("etcd_auth_total{result=\"failed\"}");
        lb_fail(em, rc, "etcd authentication as user '%s' failed: %s", c->user, why.text);
    }
    cJSON_Delete(resp);
    return rc;
}

lb_err etcd_auth_headers(etcd_client *c, struct curl_slist **out, uint64_t *gen, lb_errmsg *em)
{
    lb_err rc = LB_OK;
    char *line = NULL;
    *out = NULL;
    *gen = 0;
    if (c->user != NULL) {
        pthread_mutex_lock(&c->auth_mu);
        if (c->token == NULL && !c->auth_off)
            rc = authenticate(c, em);
        if (rc == LB_OK && c->token != NULL) {
            size_t n = strlen(c->token) + sizeof "Authorization: ";
            line = lb_xcalloc(1, n);
            snprintf(line, n, "Authorization: %s", c->token);
        }
        *gen = c->token_gen;
        pthread_mutex_unlock(&c->auth_mu);
        if (rc != LB_OK)
            return rc;
    }
    struct curl_slist *l = NULL;
    for (const struct curl_slist *h = c->headers; h != NULL; h = h->next) {
        struct curl_slist *n = curl_slist_append(l, h->data);
        if (n == NULL)
            abort();
        l = n;
    }
    if (line != NULL) {
        struct curl_slist *n = curl_slist_append(l, line);
        if (n == NULL)
            abort();
        l = n;
        free(line);
    }
    *out = l;
    return LB_OK;
}

bool etcd_auth_renew(etcd_client *c, uint64_t gen)
{
    bool dropped = false;
    if (c->user == NULL)
        return false;
    pthread_mutex_lock(&c->auth_mu);
    if (c->token_gen == gen && c->token != NULL) {
        free(c->token);
        c->token = NULL;
        c->token_gen++;
        dropped = true;
    }
    pthread_mutex_unlock(&c->auth_mu);
    return dropped;
}

void etcd_security_free(etcd_security *s)
{
    if (s == NULL)
        return;
    free(s->ca_file);
    free(s->cert_file);
    free(s->key_file);
    free(s->user);
    free(s->password_file);
    if (s->password != NULL)
        memset(s->password, 0, strlen(s->password));
    free(s->password);
    memset(s, 0, sizeof *s);
}
