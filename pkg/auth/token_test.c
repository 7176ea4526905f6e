/* pkg/auth tokens: issue, parse, verify; every failure has its own reason. */
#include "auth/token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], pk2[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES];

/* Not inlined: GCC 12 at -O2 sees through it and takes the returned token for
 * a pointer to this frame's `tok` (a false -Wdangling-pointer in Release). */
__attribute__((noinline)) static char *issue(const unsigned char *key, int64_t exp_ms)
{
    const char *apps[] = {"echo", "chat"};
    char *tok = NULL;
    assert_int_equal(auth_token_issue(key, "k1", "alice", apps, 2, 1000, exp_ms, &tok, NULL),
                     LB_OK);
    return tok;
}

static void test_round_trip(void **state)
{
    (void)state;
    char *tok = issue(sk, 5000);
    assert_true(strncmp(tok, "lbt1.", 5) == 0);
    auth_token t;
    lb_errmsg em = {{0}};
    assert_int_equal(auth_token_parse(tok, &t, &em), LB_OK);
    assert_string_equal(t.client_id, "alice");
    assert_string_equal(t.kid, "k1");
    assert_int_equal(t.n_apps, 2);
    assert_string_equal(t.apps[1], "chat");
    assert_int_equal(t.exp_ms, 5000);
    assert_int_equal(auth_token_verify(&t, pk, 4999, &em), LB_OK);
    assert_int_equal(auth_token_verify(&t, pk, 5000, &em), LB_EAUTH);
    assert_string_equal(em.text, "unauthenticated: token expired");
    assert_int_equal(auth_token_verify(&t, pk2, 10, &em), LB_EAUTH);
    assert_string_equal(em.text, "unauthenticated: bad signature");
    auth_token_free(&t);
    free(tok);
}

static void test_tampered_payload_fails_signature(void **state)
{
    (void)state;
    char *tok = issue(sk, 5000);
    char *p = strchr(tok + 5, '.') - 3; /* a character inside the payload */
    *p = *p == 'A' ? 'B' : 'A';
    auth_token t;
    lb_errmsg em = {{0}};
    if (auth_token_parse(tok, &t, &em) == LB_OK) {
        assert_int_equal(auth_token_verify(&t, pk, 10, &em), LB_EAUTH);
        assert_string_equal(em.text, "unauthenticated: bad signature");
        auth_token_free(&t);
    } else {
        assert_non_null(strstr(em.text, "unauthenticated: malformed token"));
    }
    free(tok);
}

static void test_malformed_inputs_have_reasons(void **state)
{
    (void)state;
    const char *cases[][2] = {{"", "unauthenticated: no token"},
                              {"bearer xyz", "not an lbt1 token"},
                              {"lbt1.abc", "no signature"},
                              {"lbt1.!!!.AAAA", "payload is not base64url"},
                              {"lbt1.AAAA.AAAA", "signature is not 64"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        auth_token t;
        lb_errmsg em = {{0}};
        assert_int_equal(auth_token_parse(cases[i][0], &t, &em), LB_EAUTH);
        assert_non_null(strstr(em.text, cases[i][1]));
    }
    char *big = malloc(AUTH_MAX_TOKEN + 10);
    memset(big, 'A', AUTH_MAX_TOKEN + 9);
    big[AUTH_MAX_TOKEN + 9] = '\0';
    auth_token t;
    lb_errmsg em = {{0}};
    assert_int_equal(auth_token_parse(big, &t, &em), LB_EAUTH);
    assert_non_null(strstr(em.text, "too long"));
    free(big);
}

/* A token names its client: the issuer will not sign one without, and the
 * parser refuses one (found by fuzz_token: the issuer signed what its own
 * parser refused). */
static void test_no_client_id(void **state)
{
    (void)state;
    char *tok = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(auth_token_issue(sk, "k1", "", NULL, 0, 0, 1, &tok, &em), LB_EINVAL);
    assert_null(tok);
    auth_token t;
    /* payload: only an unknown field 12 (0x60 0x00), so every claim is empty */
    char s[200] = "lbt1.YAA.";
    memset(s + strlen(s), 'A', 86);
    assert_int_equal(auth_token_parse(s, &t, &em), LB_EAUTH);
    assert_non_null(strstr(em.text, "no client id"));
}

int main(void)
{
    if (auth_init() != 0)
        return 1;
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampered_payload_fails_signature),
        cmocka_unit_test(test_malformed_inputs_have_reasons),
        cmocka_unit_test(test_no_client_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
