#include "auth/token.h"

#include "common/errmsg.h"
#include "lb.pb-c.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "lbt1."
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

int auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static lb_err malformed(lb_errmsg *em, const char *why)
{
    return lb_fail(em, LB_EAUTH, "unauthenticated: malformed token (%s)", why);
}

static char *dup_str(const char *s)
{
    return strdup(s != NULL ? s : "");
}

void auth_token_free(auth_token *t)
{
    if (t == NULL)
        return;
    free(t->kid);
    free(t->client_id);
    for (size_t i = 0; i < t->n_apps; i++)
        free(t->apps[i]);
    free(t->apps);
    free(t->signed_part);
    memset(t, 0, sizeof *t);
}

/* Copies the claims out of the decoded message (strings owned by t). */
static lb_err take_claims(const Lb__ClientToken *ct, auth_token *t)
{
    t->kid = dup_str(ct->kid);
    t->client_id = dup_str(ct->client_id);
    t->apps = calloc(ct->n_apps + 1, sizeof *t->apps);
    if (t->kid == NULL || t->client_id == NULL || t->apps == NULL)
        return LB_ENOMEM;
    for (size_t i = 0; i < ct->n_apps; i++, t->n_apps++)
        if ((t->apps[i] = dup_str(ct->apps[i])) == NULL)
            return LB_ENOMEM;
    t->iat_ms = ct->iat_ms;
    t->exp_ms = ct->exp_ms;
    return LB_OK;
}

lb_err auth_token_parse(const char *s, auth_token *out, lb_errmsg *em)
{
    memset(out, 0, sizeof *out);
    size_t len = s != NULL ? strnlen(s, AUTH_MAX_TOKEN + 1) : 0;
    if (len == 0)
        return lb_fail(em, LB_EAUTH, "unauthenticated: no token");
    if (len > AUTH_MAX_TOKEN)
        return malformed(em, "too long");
    const size_t plen = strlen(TOKEN_PREFIX);
    if (len <= plen || memcmp(s, TOKEN_PREFIX, plen) != 0)
        return malformed(em, "not an lbt1 token");
    const char *body = s + plen, *dot = memchr(body, '.', len - plen);
    if (dot == NULL)
        return malformed(em, "no signature");
    size_t b64_len = (size_t)(dot - body), sig_b64_len = len - plen - b64_len - 1;
    unsigned char *buf = malloc(plen + b64_len + 1);
    if (buf == NULL)
        return LB_ENOMEM;
    memcpy(buf, TOKEN_PREFIX, plen);
    size_t payload_len = 0, sig_len = 0;
    lb_err err = LB_OK;
    if (sodium_base642bin(buf + plen, b64_len, body, b64_len, NULL, &payload_len, NULL, B64) != 0 ||
        payload_len == 0)
        err = malformed(em, "payload is not base64url");
    else if (sodium_base642bin(out->sig, sizeof out->sig, dot + 1, sig_b64_len, NULL, &sig_len,
                               NULL, B64) != 0 ||
             sig_len != AUTH_SIG_BYTES)
        err = malformed(em, "signature is not 64 base64url bytes");
    Lb__ClientToken *ct = NULL;
    if (err == LB_OK && (ct = lb__client_token__unpack(NULL, payload_len, buf + plen)) == NULL)
        err = malformed(em, "payload does not decode");
    if (err == LB_OK && (err = take_claims(ct, out)) == LB_OK && out->client_id[0] == '\0')
        err = malformed(em, "no client id"); /* a token names its client, or nothing */
    if (err == LB_OK) {
        out->signed_part = buf;
        out->signed_len = plen + payload_len;
        buf = NULL;
    }
    if (ct != NULL)
        lb__client_token__free_unpacked(ct, NULL);
    free(buf);
    if (err != LB_OK)
        auth_token_free(out);
    return err;
}

lb_err auth_token_verify(const auth_token *t, const unsigned char pk[AUTH_PK_BYTES], int64_t now_ms,
                         lb_errmsg *em)
{
    if (crypto_sign_verify_detached(t->sig, t->signed_part, t->signed_len, pk) != 0)
        return lb_fail(em, LB_EAUTH, "unauthenticated: bad signature");
    if (now_ms >= t->exp_ms)
        return lb_fail(em, LB_EAUTH, "unauthenticated: token expired");
    return LB_OK;
}

lb_err auth_token_issue(const unsigned char sk[AUTH_SK_BYTES], const char *kid,
                        const char *client_id, const char *const *apps, size_t n_apps,
                        int64_t iat_ms, int64_t exp_ms, char **out, lb_errmsg *em)
{
    if (client_id == NULL || client_id[0] == '\0')
        return lb_fail(em, LB_EINVAL, "a token needs a client id");
    Lb__ClientToken ct = LB__CLIENT_TOKEN__INIT;
    ct.kid = (char *)kid;
    ct.client_id = (char *)client_id;
    ct.apps = (char **)apps;
    ct.n_apps = n_apps;
    ct.iat_ms = iat_ms;
    ct.exp_ms = exp_ms;
    const size_t plen = strlen(TOKEN_PREFIX);
    size_t n = lb__client_token__get_packed_size(&ct);
    unsigned char *msg = malloc(plen + n), sig[AUTH_SIG_BYTES];
    size_t b64p = sodium_base64_ENCODED_LEN(n, B64),
           b64s = sodium_base64_ENCODED_LEN(sizeof sig, B64);
    char *tok = malloc(plen + b64p + 1 + b64s);
    if (msg == NULL || tok == NULL) {
        free(msg);
        free(tok);
        return lb_fail(em, LB_ENOMEM, "out of memory");
    }
    memcpy(msg, TOKEN_PREFIX, plen);
    lb__client_token__pack(&ct, msg + plen);
    crypto_sign_detached(sig, NULL, msg, plen + n, sk);
    memcpy(tok, TOKEN_PREFIX, plen);
    sodium_bin2base64(tok + plen, b64p, msg + plen, n, B64);
    size_t at = strlen(tok);
    tok[at++] = '.';
    sodium_bin2base64(tok + at, b64s, sig, sizeof sig, B64);
    free(msg);
    *out = tok;
    return LB_OK;
}
