/*
 * Signed client tokens (Ed25519, libsodium): "lbt1.<payload>.<signature>",
 * both unpadded base64url; the payload is a protobuf ClientToken (client id,
 * apps, issued-at, expiry, issuer key id) and the signature covers "lbt1." and
 * the payload bytes. Ed25519 rather than HMAC: verifiers (every slave) hold
 * only the issuer's public key, so a compromised slave cannot mint tokens.
 *
 * auth_token_parse is pure (no crypto, no clock): it only splits and decodes,
 * so it can be fuzzed alone; auth_token_verify checks the signature and the
 * expiry. Errors are LB_EAUTH with a reason that starts "unauthenticated:".
 *
 * Ownership: a parsed token owns its strings; free with auth_token_free.
 * Thread-safety: all functions are reentrant (auth_init once before threads).
 */
#ifndef LB_AUTH_TOKEN_H
#define LB_AUTH_TOKEN_H

#include "lb/err.h"

#include <stddef.h>
#include <stdint.h>

#define AUTH_PK_BYTES 32
#define AUTH_SK_BYTES 64
#define AUTH_SIG_BYTES 64
#define AUTH_MAX_TOKEN 4096

typedef struct auth_token {
    char *kid;
    char *client_id;
    char **apps;
    size_t n_apps;
    int64_t iat_ms, exp_ms;
    unsigned char *signed_part; /* "lbt1." + payload bytes, what the signature covers */
    size_t signed_len;
    unsigned char sig[AUTH_SIG_BYTES];
} auth_token;

/* libsodium's init; 0 or -1. */
int auth_init(void);

/* Splits and decodes s. LB_EAUTH "unauthenticated: malformed token (...)". */
lb_err auth_token_parse(const char *s, auth_token *out, lb_errmsg *em);
void auth_token_free(auth_token *t);

/* Checks t's signature with pk and its expiry against now_ms:
 * "unauthenticated: bad signature", "unauthenticated: token expired". */
lb_err auth_token_verify(const auth_token *t, const unsigned char pk[AUTH_PK_BYTES], int64_t now_ms,
                         lb_errmsg *em);

/* Signs claims with sk into a new token string (caller frees). */
lb_err auth_token_issue(const unsigned char sk[AUTH_SK_BYTES], const char *kid,
                        const char *client_id, const char *const *apps, size_t n_apps,
                        int64_t iat_ms, int64_t exp_ms, char **out, lb_errmsg *em);

#endif
