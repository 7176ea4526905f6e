/*
 * lbctl token keygen --out FILE [--kid ID]
 *   an Ed25519 issuer key pair: FILE (secret, mode 0600) and FILE.pub, each one
 *   line "lbcp-ed25519-{secret,public} KID BASE64"; slaves get only FILE.pub.
 * lbctl token issue --client ID --apps A[,B] --ttl 24h --key FILE
 *   prints a signed client token (pkg/auth/token.h) for liblbclient's token.
 */
#include "lbctl.h"

#include "auth/token.h"
#include "common/util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

static int write_key(const char *path, const char *kind, const char *kid, const unsigned char *k,
                     size_t n, mode_t mode)
{
    char b64[sodium_base64_ENCODED_LEN(AUTH_SK_BYTES, B64)];
    sodium_bin2base64(b64, sizeof b64, k, n, B64);
    FILE *f = fopen(path, "w");
    if (f == NULL || fchmod(fileno(f), mode) != 0) {
        perror(path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fprintf(f, "lbcp-ed25519-%s %s %s\n", kind, kid, b64);
    return fclose(f) == 0 ? 0 : -1;
}

static int keygen(int argc, char **argv)
{
    const char *out = NULL, *kid = "k1";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--kid") == 0)
            kid = argv[i + 1];
    }
    if (out == NULL) {
        fprintf(stderr, "usage: lbctl token keygen --out FILE [--kid ID]\n");
        return EXIT_USAGE;
    }
    unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES];
    crypto_sign_keypair(pk, sk);
    char pub[4096];
    snprintf(pub, sizeof pub, "%s.pub", out);
    int rc = write_key(out, "secret", kid, sk, sizeof sk, 0600) == 0 &&
                     write_key(pub, "public", kid, pk, sizeof pk, 0644) == 0
                 ? EXIT_OK
                 : EXIT_FAIL;
    sodium_memzero(sk, sizeof sk);
    if (rc == EXIT_OK)
        printf("secret key %s (keep it with the issuer), public key %s (for the slaves)\n", out,
               pub);
    return rc;
}

static int read_secret(const char *path, char *kid, size_t kcap, unsigned char sk[AUTH_SK_BYTES])
{
    FILE *f = fopen(path, "r");
    char kind[64] = "", id[129] = "", b64[256] = "";
    int n = f != NULL ? fscanf(f, "%63s %128s %255s", kind, id, b64) : 0;
    if (f != NULL)
        fclose(f);
    size_t len = 0;
    if (n != 3 || strcmp(kind, "lbcp-ed25519-secret") != 0 ||
        sodium_base642bin(sk, AUTH_SK_BYTES, b64, strlen(b64), NULL, &len, NULL, B64) != 0 ||
        len != AUTH_SK_BYTES) {
        fprintf(stderr, "lbctl token: %s is not an lbcp-ed25519-secret key (lbctl token keygen)\n",
                path);
        return -1;
    }
    snprintf(kid, kcap, "%s", id);
    return 0;
}

static int issue(int argc, char **argv)
{
    const char *client = NULL, *apps = NULL, *ttl = "24h", *key = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--client") == 0)
            client = v;
        else if (strcmp(a, "--apps") == 0)
            apps = v;
        else if (strcmp(a, "--ttl") == 0)
            ttl = v;
        else if (strcmp(a, "--key") == 0)
            key = v;
    }
    int64_t ttl_ms = 0;
    if (client == NULL || apps == NULL || key == NULL || !lb_parse_duration_ms(ttl, &ttl_ms) ||
        ttl_ms <= 0) {
        fprintf(stderr, "usage: lbctl token issue --client ID --apps A[,B] --ttl 24h --key FILE\n");
        return EXIT_USAGE;
    }
    char kid[129];
    unsigned char sk[AUTH_SK_BYTES];
    if (read_secret(key, kid, sizeof kid, sk) != 0)
        return EXIT_FAIL;
    char *list = strdup(apps), *save = NULL;
    const char *names[64];
    size_t n = 0;
    for (char *t = strtok_r(list, ",", &save); t != NULL && n < 64; t = strtok_r(NULL, ",", &save))
        names[n++] = t;
    int64_t now = lb_wall_ms();
    char *tok = NULL;
    lb_errmsg em = {{0}};
    int rc = EXIT_FAIL;
    if (auth_token_issue(sk, kid, client, names, n, now, now + ttl_ms, &tok, &em) == LB_OK) {
        printf("%s\n", tok);
        rc = EXIT_OK;
    } else {
        fprintf(stderr, "lbctl token: %s\n", em.text);
    }
    sodium_memzero(sk, sizeof sk);
    free(tok);
    free(list);
    return rc;
}

int cmd_token(const ctl_opts *o, int argc, char **argv)
{
    (void)o;
    if (auth_init() != 0) {
        fprintf(stderr, "lbctl token: libsodium did not initialise\n");
        return EXIT_FAIL;
    }
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return keygen(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "issue") == 0)
        return issue(argc, argv);
    fprintf(stderr, "usage: lbctl token keygen --out FILE [--kid ID] | token issue --client ID "
                    "--apps A[,B] --ttl 24h --key FILE\n");
    return EXIT_USAGE;
}
