/*
 * lb-bench-token [N]: the cost of checking one client token (pkg/auth):
 * parse (base64url + protobuf) and Ed25519 verify, N times (default 5000),
 * and the parse alone. Prints RESULT verify_us=... parse_us=...
 */
#include "auth/token.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
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
    printf("RESULT verify_us=%.1f parse_us=%.2f token_bytes=%zu n=%d errors=%d\n", verify, parse,
           strlen(tok), n, bad);
    free(tok);
    return bad != 0;
}
