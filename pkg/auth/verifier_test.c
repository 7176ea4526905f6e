/* pkg/auth verifier: key files, each refusal's reason, and the cache (a hit
 * answers the same as a verify; an expired token is not served from it). */
#include "auth/token.h"
#include "auth/verifier.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], sk2[AUTH_SK_BYTES];
static char keyfile[] = "/tmp/lb-verifier-test-XXXXXX";
static char keyfile2[] = "/tmp/lb-verifier-test2-XXXXXX"; /* k2: pk2 */

static char *issue(const unsigned char *key, const char *kid, const char *client, int64_t exp)
{
    const char *apps[] = {"echo"};
    char *tok = NULL;
    assert_int_equal(auth_token_issue(key, kid, client, apps, 1, 0, exp, &tok, NULL), LB_OK);
    return tok;
}

static auth_verifier *verifier(void)
{
    char *files[] = {keyfile};
    auth_verifier *v = NULL;
    assert_int_equal(auth_verifier_new(files, 1, &v, NULL), LB_OK);
    return v;
}

static void expect(auth_verifier *v, const char *tok, int64_t now, const char *app,
                   const char *client, const char *reason)
{
    lb_errmsg em = {{0}};
    char who[64] = "";
    lb_err err = auth_verifier_check(v, tok, now, app, client, who, sizeof who, &em);
    if (reason == NULL) {
        assert_int_equal(err, LB_OK);
        assert_string_equal(who, "alice");
        return;
    }
    assert_int_equal(err, LB_EAUTH);
    if (strncmp(em.text, reason, strlen(reason)) != 0)
        fail_msg("got \"%s\", want \"%s\"", em.text, reason);
}

static void test_reasons(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *good = issue(sk, "k1", "alice", 5000), *other = issue(sk2, "k2", "alice", 5000);
    char *forged = issue(sk2, "k1", "alice", 5000); /* right kid, wrong signer */
    expect(v, NULL, 1, "echo", NULL, "unauthenticated: no token");
    expect(v, "", 1, "echo", NULL, "unauthenticated: no token");
    expect(v, "lbt1.x", 1, "echo", NULL, "unauthenticated: malformed token");
    expect(v, other, 1, "echo", NULL, "unauthenticated: unknown key id k2");
    expect(v, forged, 1, "echo", NULL, "unauthenticated: bad signature");
    expect(v, good, 6000, "echo", NULL, "unauthenticated: token expired");
    expect(v, good, 1, "chat", NULL, "forbidden: app chat not in token");
    expect(v, good, 1, "echo", "bob", "forbidden: client_id bob does not match token (alice)");
    expect(v, good, 1, "echo", "alice", NULL);
    expect(v, good, 1, NULL, "", NULL);
    free(good);
    free(other);
    free(forged);
    auth_verifier_free(&v);
}

static void test_cache_hits_and_expiry(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *good = issue(sk, "k1", "alice", 5000), *forged = issue(sk2, "k1", "alice", 5000);
    uint64_t hits, misses;
    expect(v, good, 1, "echo", NULL, NULL);
    expect(v, good, 2, "echo", NULL, NULL);
    /* a hit still checks the claims */
    expect(v, good, 3, "chat", NULL, "forbidden: app chat not in token");
    expect(v, good, 3, "echo", "bob", "forbidden: client_id bob");
    auth_verifier_stats(v, &hits, &misses);
    assert_int_equal(misses, 1);
    assert_int_equal(hits, 3);
    /* a failed verify is never cached */
    expect(v, forged, 4, "echo", NULL, "unauthenticated: bad signature");
    expect(v, forged, 5, "echo", NULL, "unauthenticated: bad signature");
    auth_verifier_stats(v, &hits, &misses);
    assert_int_equal(misses, 3);
    /* past its expiry the cached entry is not used */
    expect(v, good, 5000, "echo", NULL, "unauthenticated: token expired");
    free(good);
    free(forged);
    auth_verifier_free(&v);
}

static void test_bad_key_file(void **state)
{
    (void)state;
    char *files[] = {"/nonexistent/issuer.pub"};
    auth_verifier *v = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(auth_verifier_new(files, 1, &v, &em), LB_ECONFIG);
    assert_null(v);
    assert_non_null(strstr(em.text, "/nonexistent/issuer.pub is not an lbcp-ed25519-public key"));
}

/* SIGHUP's rotation: a new key is trusted after set_keys, a removed one
 * refused at once even for a token the cache had verified, and a bad file
 * keeps the old ring. */
static void test_rotation(void **state)
{
    (void)state;
    auth_verifier *v = verifier();
    char *t1 = issue(sk, "k1", "alice", 5000), *t2 = issue(sk2, "k2", "alice", 5000);
    expect(v, t1, 1, "echo", NULL, NULL); /* cached now */
    expect(v, t2, 1, "echo", NULL, "unauthenticated: unknown key id k2");
    char *both[] = {keyfile, keyfile2}, *only2[] = {keyfile2}, *bad[] = {"/nonexistent/x.pub"};
    assert_int_equal(auth_verifier_set_keys(v, both, 2, NULL), LB_OK);
    expect(v, t2, 2, "echo", NULL, NULL);
    expect(v, t1, 2, "echo", NULL, NULL);
    assert_int_equal(auth_verifier_set_keys(v, only2, 1, NULL), LB_OK);
    uint64_t hits0, hits1, misses;
    auth_verifier_stats(v, &hits0, &misses);
    expect(v, t1, 3, "echo", NULL, "unauthenticated: unknown key id k1");
    auth_verifier_stats(v, &hits1, &misses);
    assert_int_equal(hits1, hits0); /* not answered from the cache */
    expect(v, t2, 3, "echo", NULL, NULL);
    lb_errmsg em = {{0}};
    assert_int_equal(auth_verifier_set_keys(v, bad, 1, &em), LB_ECONFIG);
    assert_non_null(strstr(em.text, "/nonexistent/x.pub"));
    expect(v, t2, 4, "echo", NULL, NULL); /* the old ring stays */
    expect(v, t1, 4, "echo", NULL, "unauthenticated: unknown key id k1");
    free(t1);
    free(t2);
    auth_verifier_free(&v);
}

static void write_key(char *path, const char *kid, const unsigned char *key)
{
    int fd = mkstemp(path);
    char b64[sodium_base64_ENCODED_LEN(AUTH_PK_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof b64, key, AUTH_PK_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "lbcp-ed25519-public %s %s\n", kid, b64);
    fclose(f);
}

int main(void)
{
    if (auth_init() != 0)
        return 1;
    unsigned char pk2[AUTH_PK_BYTES];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(pk2, sk2);
    write_key(keyfile, "k1", pk);
    write_key(keyfile2, "k2", pk2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_cache_hits_and_expiry),
        cmocka_unit_test(test_bad_key_file),
        cmocka_unit_test(test_rotation),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(keyfile);
    unlink(keyfile2);
    return rc;
}
