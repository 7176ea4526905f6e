/*
 * Cheap per-report authentication that keeps per-agent identity.
 *
 * An Ed25519 verify costs a master ~50 us, ~0.5 core at 10,000 reports/s.
 * Instead each agent/master pair agrees on a symmetric key once: the master
 * has a fresh X25519 key pair per process (public half in its masters/<id>
 * record), the agent converts its Ed25519 identity key to X25519, and both
 * hash the X25519 shared secret with both public keys into a 32-byte pair
 * key. Each report then carries, per master, a keyed BLAKE2b-256 MAC (~1 us).
 * Only agent X and that master can compute X's pair key, so a MAC that
 * verifies under the key derived from X's registered identity proves the
 * report came from X, as the signature did. A master's key dies with its
 * process, so reports MACed for an earlier run of it are refused outright.
 *
 * The MAC, like the signature, covers the ServerLoad packed with sig and
 * macs empty.
 *
 * Ownership: callers own every buffer. Thread-safety: reentrant (auth_init
 * once before threads).
 */
#ifndef LB_AUTH_REPORT_MAC_H
#define LB_AUTH_REPORT_MAC_H

#include "auth/token.h"
#include "common/errmsg.h"
#include "lb.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

#define AUTH_KX_BYTES 32 /* X25519 public or secret key */
#define AUTH_MAC_KEY_BYTES 32
#define AUTH_MAC_BYTES 32
#define AUTH_MAC_TO_BYTES 8 /* which master: a prefix of its X25519 public key */
#define AUTH_MAC_MAX 16     /* masters a report carries MACs for */

/* A master's key-exchange pair (fresh randomness). */
void auth_kx_keypair(unsigned char pk[AUTH_KX_BYTES], unsigned char sk[AUTH_KX_BYTES]);

/* The pair key, agent side: from its Ed25519 identity (sk, pk as
 * auth_identity_load gives them) and the master's X25519 public key.
 * LB_EINVAL for a key that yields no shared secret (a low-order point). */
lb_err auth_mac_key_agent(unsigned char key[AUTH_MAC_KEY_BYTES],
                          const unsigned char id_sk[AUTH_SK_BYTES],
                          const unsigned char id_pk[AUTH_PK_BYTES],
                          const unsigned char master_kx_pk[AUTH_KX_BYTES]);

/* The same pair key, master side: from its X25519 pair and the agent's
 * registered Ed25519 public key. LB_EINVAL for a key that is not a valid
 * Ed25519 point or yields no shared secret. */
lb_err auth_mac_key_master(unsigned char key[AUTH_MAC_KEY_BYTES],
                           const unsigned char kx_sk[AUTH_KX_BYTES],
                           const unsigned char kx_pk[AUTH_KX_BYTES],
                           const unsigned char agent_id_pk[AUTH_PK_BYTES]);

/* BLAKE2b-256 of buf keyed with key: the primitive, for other messages
 * (slave reports) that adopt the scheme. */
void auth_mac_buf(unsigned char mac[AUTH_MAC_BYTES], const unsigned char *buf, size_t len,
                  const unsigned char key[AUTH_MAC_KEY_BYTES]);

/* One recipient of a report: its id (AUTH_MAC_TO_BYTES of its X25519 key)
 * and the pair key. */
typedef struct auth_mac_to {
    unsigned char to[AUTH_MAC_TO_BYTES];
    unsigned char key[AUTH_MAC_KEY_BYTES];
} auth_mac_to;

/* Storage for the MACs one report carries; must outlive the report's use. */
typedef struct auth_mac_set {
    Lb__ReportMac msg[AUTH_MAC_MAX];
    Lb__ReportMac *ptr[AUTH_MAC_MAX];
    unsigned char to[AUTH_MAC_MAX][AUTH_MAC_TO_BYTES];
    unsigned char mac[AUTH_MAC_MAX][AUTH_MAC_BYTES];
} auth_mac_set;

/* Sets l->macs to one MAC per recipient (at most AUTH_MAC_MAX; n == 0 clears
 * them). Leaves l->sig as it is: sign before or after, either works. */
lb_err auth_report_mac(Lb__ServerLoad *l, const auth_mac_to *to, size_t n, auth_mac_set *set);

/* The index of l's MAC addressed to `to`, or -1. */
int auth_report_mac_find(const Lb__ServerLoad *l, const unsigned char to[AUTH_MAC_TO_BYTES]);

/* True when l->macs[i] is l's MAC under key (constant-time compare). */
bool auth_report_mac_verify(const Lb__ServerLoad *l, size_t i,
                            const unsigned char key[AUTH_MAC_KEY_BYTES]);

/* l packed with sig and macs empty, what both the signature and the MACs
 * cover: into buf when it fits in cap (returns buf), else into a malloc'd
 * buffer the caller frees (returns it); NULL on allocation failure. */
unsigned char *auth_report_pack_unsigned(const Lb__ServerLoad *l, unsigned char *buf, size_t cap,
                                         size_t *len);

#endif
