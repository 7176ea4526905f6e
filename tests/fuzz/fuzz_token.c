/*
 * libFuzzer target: the client-token parser every slave runs on what a client
 * sends (pkg/auth auth_token_parse), and the verifier behind it. A token that
 * parses must verify-or-fail without a crash against a key that did not sign
 * it, and its claims, signed again with our own key, must parse back to the
 * same claims and verify: the parser and the issuer agree on the format.
 */
#include "auth/token.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];

static void keys_once(void)
{
    static int done;
    if (done)
        return;
    if (auth_init() != 0)
        abort();
    unsigned char seed[crypto_sign_SEEDBYTES];
    memset(seed, 7, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    done = 1;
}

static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keys_once();
    if (size > AUTH_MAX_TOKEN + 16)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    auth_token t;
    memset(&t, 0, sizeof t);
    lb_errmsg em = {{0}};
    lb_err rc = auth_token_parse(s, &t, &em);
    free(s);
    if (rc != LB_OK) {
        if (em.text[0] == '\0' || strncmp(em.text, "unauthenticated:", 16) != 0)
            abort(); /* a refusal always says why, in the client-facing form */
        return 0;
    }
    /* not signed by our key (or expired): a refusal with a reason, never a pass */
    lb_errmsg em2 = {{0}};
    if (auth_token_verify(&t, pk, t.exp_ms + 1, &em2) == LB_OK)
        abort();
    /* the claims, signed by us, come back the same and verify */
    char *again = NULL;
    if (auth_token_issue(sk, t.kid, t.client_id, (const char *const *)t.apps, t.n_apps, t.iat_ms,
                         t.exp_ms, &again, &em2) == LB_OK) {
        auth_token t2;
        memset(&t2, 0, sizeof t2);
        if (auth_token_parse(again, &t2, &em2) != LB_OK)
            abort();
        if (!same_str(t2.client_id, t.client_id) || !same_str(t2.kid, t.kid) ||
            t2.n_apps != t.n_apps || t2.exp_ms != t.exp_ms || t2.iat_ms != t.iat_ms)
            abort();
        for (size_t i = 0; i < t.n_apps; i++)
            if (!same_str(t2.apps[i], t.apps[i]))
                abort();
        if (t.exp_ms > INT64_MIN + 1 && auth_token_verify(&t2, pk, t.exp_ms - 1, &em2) != LB_OK)
            abort();
        auth_token_free(&t2);
        free(again);
    }
    auth_token_free(&t);
    return 0;
}
