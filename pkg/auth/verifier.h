/*
 * The slave's token check: the issuers' public keys (files from `lbctl token
 * keygen`, selected by the token's key id) and a cache of verified tokens, so
 * a client that sends the same token on every request pays the Ed25519 verify
 * (~80 us) once, then a BLAKE2b hash and a lookup (~1-2 us).
 *
 * The cache is direct-mapped on the token's 32-byte hash (AUTH_CACHE_SLOTS
 * entries, a colliding token evicts the older one), so it is bounded; an entry
 * holds the claims and is used only while now < the token's expiry. A hit is
 * as good as a verify: the full hash is compared and the entry was written
 * only after the signature checked.
 *
 * Reasons (em, code LB_EAUTH): "unauthenticated: no token", "unauthenticated:
 * malformed token (...)", "unauthenticated: unknown key id X",
 * "unauthenticated: bad signature", "unauthenticated: token expired",
 * "forbidden: app X not in token", "forbidden: client_id X does not match
 * token (Y)". The reason's first word (up to ':') names the counter label.
 *
 * Keys rotate without a restart (auth_verifier_set_keys, on SIGHUP): the new
 * ring replaces the old and the cache is emptied, so a token of a removed key
 * is refused at once ("unknown key id"), even one verified a moment before.
 *
 * Ownership: the verifier owns its keys and cache. Thread-safety: check and
 * set_keys may be called from any number of threads (one mutex around the
 * keys and the cache; the Ed25519 verify runs outside it).
 */
#ifndef LB_AUTH_VERIFIER_H
#define LB_AUTH_VERIFIER_H

#include "lb/err.h"

#include <stddef.h>
#include <stdint.h>

#define AUTH_CACHE_SLOTS 4096

typedef struct auth_verifier auth_verifier;

/* Reads the public key files ("lbcp-ed25519-public KID BASE64"); a bad file
 * is LB_ECONFIG naming it. */
lb_err auth_verifier_new(char *const *files, size_t n, auth_verifier **out, lb_errmsg *em);
void auth_verifier_free(auth_verifier **v);

/* Replaces the key ring with the files' keys and empties the cache. On error
 * (a bad file, named in em) the old keys stay in force. */
lb_err auth_verifier_set_keys(auth_verifier *v, char *const *files, size_t n, lb_errmsg *em);

/* Verifies token s at now_ms. app: checked against the token's apps unless
 * NULL. client_id: must equal the token's unless NULL or "". On success the
 * token's client id is copied into who (cap bytes) when who is not NULL. */
lb_err auth_verifier_check(auth_verifier *v, const char *s, int64_t now_ms, const char *app,
                           const char *client_id, char *who, size_t cap, lb_errmsg *em);

/* Cache statistics (hits, misses) since creation. */
void auth_verifier_stats(auth_verifier *v, uint64_t *hits, uint64_t *misses);

#endif
