/*
 * lb-bench-token [N]: the cost of checking one client token (pkg/auth):
 * parse (base64url + protobuf) and Ed25519 verify, N times (default 5000),
 * the parse alone, and the slave's check through the verified-token cache
 * (auth_verifier: one verify, then hits) for 100 clients' tokens each used N/100
 * times. Prints RESULT verify_us=... parse_us=... cached_us=... (goal < 20).
 */
#include "auth/token.h"
#include "auth/verifier.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The slave's path: 100 clients' tokens through the verifier (its cache). */
static double cached_check(const unsigned char *pk, const unsigned char *sk, int n, int *bad)
{
    char path[] = "/tmp/lb-bench-token-XXXXXX";
    int fd = mkstemp(path);
    char b64[sodium_base64_ENCODED_LEN(AUTH_PK_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(b64, sizeof b64, pk, AUTH_PK_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL)
        return -1;
    fprintf(f, "lbcp-ed25519-public k1 %s\n", b64);
    fclose(f);
    char *files[] = {path};
    auth_verifier *v = NULL;
    if (auth_verifier_new(files, 1, &v, NULL) != LB_OK) {
        unlink(path);
        return -1;
    }
    unlink(path);
    enum { CLIENTS = 100 };
    char *toks[CLIENTS];
    const char *apps[] = {"echo"};
    for (int i = 0; i < CLIENTS; i++) {
        char id[32];
        snprintf(id, sizeof id, "client-%d", i);
        toks[i] = NULL;
        auth_token_issue(sk, "k1", id, apps, 1, 0, (int64_t)1 << 50, &toks[i], NULL);
    }
    double t0 = now_us();
    for (int i = 0; i < n; i++)
        *bad += auth_verifier_check(v, toks[i % CLIENTS], 1, "echo", NULL, NULL, 0, NULL) != LB_OK;
    double us = (now_us() - t0) / n;
    for (int i = 0; i < CLIENTS; i++)
        free(toks[i]);
    auth_verifier_free(&v);
    return us;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    if (auth_init() != 0 || n <= 0)
        return 2;
    unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
    crypto_sign_keypair(pk, sk);
    const char *apps[] = {"echo", "chat", "video"};
    char *tok = NULL;
    if (auth_token_issue(sk, "k1", "alice@example", apps, 3, 0, (int64_t)1 << 50, &tok, NULL) !=
        LB_OK)
        return 1;
    int bad = 0;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        auth_token t;
        if (auth_token_parse(tok, &t, NULL) != LB_OK || auth_token_verify(&t, pk, 1, NULL) != LB_OK)
            bad++;
        auth_token_free(&t);
    }
    double verify = (now_us() - t0) / n;
    t0 = now_us();
    for (int i = 0; i < n; i++) {
        auth_token t;
        bad += auth_token_parse(tok, &t, NULL) != LB_OK;
        auth_token_free(&t);
    }
    double parse = (now_us() - t0) / n;
    double cached = cached_check(pk, sk, n * 10, &bad);
    printf("RESULT verify_us=%.1f parse_us=%.2f cached_us=%.2f ratio=%.1f token_bytes=%zu n=%d "
           "errors=%d\n",
           verify, parse, cached, cached > 0 ? verify / cached : 0, strlen(tok), n, bad);
    free(tok);
    return bad != 0;
}
