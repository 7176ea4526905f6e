/*
 * Per-peer report identity (Ed25519, libsodium). Each agent and each slave
 * holds its own key pair, publishes the public key in its servers/<id> or
 * slaves/<id> record (which etcd auth lets only that peer write) and signs
 * every ServerLoad or SlaveLoad; a master applies a report for X only when
 * X's registered key verifies it. TLS alone cannot give this: nng 1.5.2 tells
 * only that a peer's certificate chains to an agent or slave CA, not which
 * agent or slave it is.
 *
 * The signature covers the report packed with its sig (and a ServerLoad's
 * macs) fields empty (auth/report_mac.h: masters check an agent's MAC first
 * when there is one; slaves report once a second and only sign), so it
 * covers exactly the values the master applies (the master re-packs what it
 * decoded: a peer's non-canonical encoding simply fails to verify).
 *
 * Key file: the 32-byte Ed25519 seed, raw, mode 0600.
 * Ownership: callers own every buffer. Thread-safety: reentrant (auth_init
 * once before threads).
 */
#ifndef LB_AUTH_REPORT_SIG_H
#define LB_AUTH_REPORT_SIG_H

#include "auth/token.h"
#include "common/errmsg.h"
#include "lb.pb-c.h"

#include <stdbool.h>

/* Reads the seed at path, or, when path does not exist and create is true,
 * makes a fresh one there (0600). Fills the secret and public keys. */
lb_err auth_identity_load(const char *path, bool create, unsigned char sk[AUTH_SK_BYTES],
                          unsigned char pk[AUTH_PK_BYTES], lb_errmsg *em);

/* The identity key of a daemon: configured (path non-empty) must exist, so a
 * typo does not silently mint a new identity; else default_path, made on
 * first start, with its directory (0700) when missing. */
lb_err auth_identity_open(const char *configured, const char *default_path,
                          unsigned char sk[AUTH_SK_BYTES], unsigned char pk[AUTH_PK_BYTES],
                          lb_errmsg *em);

/* Signs l in place: sets l->sig to sig_buf (AUTH_SIG_BYTES, owned by the
 * caller, must outlive l's use). */
lb_err auth_report_sign(Lb__ServerLoad *l, const unsigned char sk[AUTH_SK_BYTES],
                        unsigned char sig_buf[AUTH_SIG_BYTES]);

/* True when l->sig is a valid signature of l by pk (pk_len must be 32). */
bool auth_report_verify(const Lb__ServerLoad *l, const unsigned char *pk, size_t pk_len);

/* The same for a slave's SlaveLoad. */
lb_err auth_slave_load_sign(Lb__SlaveLoad *l, const unsigned char sk[AUTH_SK_BYTES],
                            unsigned char sig_buf[AUTH_SIG_BYTES]);
bool auth_slave_load_verify(const Lb__SlaveLoad *l, const unsigned char *pk, size_t pk_len);

#endif
