/*
 * Token verifier: key ring and verified-token cache (see verifier.h).
 */
#include "auth/verifier.h"

#include "auth/token.h"
#include "common/errmsg.h"
#include "common/util.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BYTES 32

typedef struct {
    char kid[129];
    unsigned char pk[AUTH_PK_BYTES];
} auth_key;

typedef struct {
    unsigned char hash[HASH_BYTES];
    bool used;
    auth_token claims; /* strings owned; signed_part freed on insert */
} cache_slot;

struct auth_verifier {
    pthread_mutex_t lock; /* guards everything below */
    auth_key *keys;
    size_t n_keys;
    uint64_t gen; /* bumped when the keys change: a verify begun before is not cached */
    cache_slot *slots;
    uint64_t hits, misses;
};

static lb_err read_key(const char *path, auth_key *k, lb_errmsg *em)
{
    FILE *f = fopen(path, "r");
    char kind[64] = "", b64[256] = "";
    int n = f != NULL ? fscanf(f, "%63s %128s %255s", kind, k->kid, b64) : 0;
    if (f != NULL)
        fclose(f);
    size_t len = 0;
    if (n != 3 || strcmp(kind, "lbcp-ed25519-public") != 0 ||
        sodium_base642bin(k->pk, AUTH_PK_BYTES, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != AUTH_PK_BYTES)
        return lb_fail(em, LB_ECONFIG,
                       "token_public_keys: %s is not an lbcp-ed25519-public key (lbctl token "
                       "keygen writes FILE.pub)",
                       path);
    return LB_OK;
}

/* Reads n key files into a new array (*out, owned by the caller). */
static lb_err read_keys(char *const *files, size_t n, auth_key **out, lb_errmsg *em)
{
    auth_key *keys = lb_xcalloc(n > 0 ? n : 1, sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        lb_err err = read_key(files[i], &keys[i], em);
        if (err != LB_OK) {
            free(keys);
            return err;
        }
    }
    *out = keys;
    return LB_OK;
}

lb_err auth_verifier_new(char *const *files, size_t n, auth_verifier **out, lb_errmsg *em)
{
    *out = NULL;
    if (auth_init() != 0)
        return lb_fail(em, LB_ESYS, "libsodium did not initialise");
    auth_key *keys = NULL;
    lb_err err = read_keys(files, n, &keys, em);
    if (err != LB_OK)
        return err;
    auth_verifier *v = lb_xcalloc(1, sizeof *v);
    v->keys = keys;
    v->n_keys = n;
    v->slots = lb_xcalloc(AUTH_CACHE_SLOTS, sizeof *v->slots);
    pthread_mutex_init(&v->lock, NULL);
    *out = v;
    return LB_OK;
}

/* Every cached claim goes: it was verified with a key that may be gone. */
static void cache_clear_locked(auth_verifier *v)
{
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++)
        if (v->slots[i].used) {
            auth_token_free(&v->slots[i].claims);
            v->slots[i].used = false;
        }
}

lb_err auth_verifier_set_keys(auth_verifier *v, char *const *files, size_t n, lb_errmsg *em)
{
    auth_key *keys = NULL;
    lb_err err = read_keys(files, n, &keys, em);
    if (err != LB_OK)
        return err;
    pthread_mutex_lock(&v->lock);
    auth_key *old = v->keys;
    size_t n_old = v->n_keys;
    v->keys = keys;
    v->n_keys = n;
    v->gen++;
    cache_clear_locked(v);
    pthread_mutex_unlock(&v->lock);
    sodium_memzero(old, n_old * sizeof *old);
    free(old);
    return LB_OK;
}

void auth_verifier_free(auth_verifier **pv)
{
    auth_verifier *v = *pv;
    if (v == NULL)
        return;
    cache_clear_locked(v);
    free(v->slots);
    sodium_memzero(v->keys, v->n_keys * sizeof *v->keys);
    free(v->keys);
    pthread_mutex_destroy(&v->lock);
    free(v);
    *pv = NULL;
}

/* Claims checks shared by a hit and a fresh verify. */
static lb_err check_claims(const auth_token *t, const char *app, const char *client_id, char *who,
                           size_t cap, lb_errmsg *em)
{
    if (app != NULL) {
        bool ok = false;
        for (size_t i = 0; i < t->n_apps && !ok; i++)
            ok = strcmp(t->apps[i], app) == 0;
        if (!ok)
            return lb_fail(em, LB_EAUTH, "forbidden: app %.64s not in token", app);
    }
    if (client_id != NULL && client_id[0] != '\0' && strcmp(client_id, t->client_id) != 0)
        return lb_fail(em, LB_EAUTH, "forbidden: client_id %.64s does not match token (%.64s)",
                       client_id, t->client_id);
    if (who != NULL && cap > 0)
        snprintf(who, cap, "%s", t->client_id);
    return LB_OK;
}

/* Copies key kid into pk and the key generation into gen; false when unknown. */
static bool find_key(auth_verifier *v, const char *kid, unsigned char pk[AUTH_PK_BYTES],
                     uint64_t *gen)
{
    bool found = false;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->n_keys && !found; i++)
        if (strcmp(v->keys[i].kid, kid) == 0) {
            memcpy(pk, v->keys[i].pk, AUTH_PK_BYTES);
            found = true;
        }
    *gen = v->gen;
    pthread_mutex_unlock(&v->lock);
    return found;
}

/* Full parse and verify; on success the claims go into the slot. */
static lb_err verify_fresh(auth_verifier *v, const char *s, const unsigned char *hash,
                           int64_t now_ms, const char *app, const char *client_id, char *who,
                           size_t cap, lb_errmsg *em)
{
    auth_token t;
    lb_err err = auth_token_parse(s, &t, em);
    if (err != LB_OK)
        return err;
    unsigned char pk[AUTH_PK_BYTES];
    uint64_t gen = 0;
    if (!find_key(v, t.kid, pk, &gen)) {
        /* the kid is the client's text: cap it, the log escapes it */
        err = lb_fail(em, LB_EAUTH, "unauthenticated: unknown key id %.64s", t.kid);
        auth_token_free(&t);
        return err;
    }
    if ((err = auth_token_verify(&t, pk, now_ms, em)) != LB_OK) {
        auth_token_free(&t);
        return err;
    }
    err = check_claims(&t, app, client_id, who, cap, em);
    free(t.signed_part); /* the cache keeps only the claims */
    t.signed_part = NULL;
    pthread_mutex_lock(&v->lock);
    if (v->gen != gen) { /* the keys changed meanwhile: this one may be gone */
        pthread_mutex_unlock(&v->lock);
        auth_token_free(&t);
        return err;
    }
    cache_slot *slot = &v->slots[(hash[0] | (size_t)hash[1] << 8) % AUTH_CACHE_SLOTS];
    if (slot->used)
        auth_token_free(&slot->claims);
    memcpy(slot->hash, hash, HASH_BYTES);
    slot->claims = t;
    slot->used = true;
    pthread_mutex_unlock(&v->lock);
    return err;
}

lb_err auth_verifier_check(auth_verifier *v, const char *s, int64_t now_ms, const char *app,
                           const char *client_id, char *who, size_t cap, lb_errmsg *em)
{
    if (s == NULL || s[0] == '\0')
        return lb_fail(em, LB_EAUTH, "unauthenticated: no token");
    size_t len = strlen(s);
    if (len > AUTH_MAX_TOKEN)
        return lb_fail(em, LB_EAUTH, "unauthenticated: malformed token (longer than %d bytes)",
                       AUTH_MAX_TOKEN);
    unsigned char hash[HASH_BYTES];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)s, len, NULL, 0);
    pthread_mutex_lock(&v->lock);
    cache_slot *slot = &v->slots[(hash[0] | (size_t)hash[1] << 8) % AUTH_CACHE_SLOTS];
    if (slot->used && memcmp(slot->hash, hash, HASH_BYTES) == 0 && now_ms < slot->claims.exp_ms) {
        v->hits++;
        lb_err err = check_claims(&slot->claims, app, client_id, who, cap, em);
        pthread_mutex_unlock(&v->lock);
        return err;
    }
    v->misses++;
    pthread_mutex_unlock(&v->lock);
    return verify_fresh(v, s, hash, now_ms, app, client_id, who, cap, em);
}

void auth_verifier_stats(auth_verifier *v, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&v->lock);
    *hits = v->hits;
    *misses = v->misses;
    pthread_mutex_unlock(&v->lock);
}
