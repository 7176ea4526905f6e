#include "auth/report_mac.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Domain separation: this hash makes report MAC keys and nothing else. */
static const char KDF_CONTEXT[] = "lbcp report mac v1";

void auth_kx_keypair(unsigned char pk[AUTH_KX_BYTES], unsigned char sk[AUTH_KX_BYTES])
{
    randombytes_buf(sk, AUTH_KX_BYTES);
    crypto_scalarmult_base(pk, sk);
}

/* key = BLAKE2b-256(key = shared, context || agent Ed25519 pk || master X25519 pk):
 * both public keys bind the key to this pair even if a shared secret repeated. */
static void kdf(unsigned char key[AUTH_MAC_KEY_BYTES], const unsigned char shared[32],
                const unsigned char agent_id_pk[AUTH_PK_BYTES],
                const unsigned char master_kx_pk[AUTH_KX_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, shared, 32, AUTH_MAC_KEY_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)KDF_CONTEXT, sizeof KDF_CONTEXT - 1);
    crypto_generichash_update(&st, agent_id_pk, AUTH_PK_BYTES);
    crypto_generichash_update(&st, master_kx_pk, AUTH_KX_BYTES);
    crypto_generichash_final(&st, key, AUTH_MAC_KEY_BYTES);
    sodium_memzero(&st, sizeof st);
}

lb_err auth_mac_key_agent(unsigned char key[AUTH_MAC_KEY_BYTES],
                          const unsigned char id_sk[AUTH_SK_BYTES],
                          const unsigned char id_pk[AUTH_PK_BYTES],
                          const unsigned char master_kx_pk[AUTH_KX_BYTES])
{
    unsigned char csk[32], shared[32];
    lb_err err = LB_OK;
    if (crypto_sign_ed25519_sk_to_curve25519(csk, id_sk) != 0 ||
        crypto_scalarmult(shared, csk, master_kx_pk) != 0)
        err = LB_EINVAL;
    else
        kdf(key, shared, id_pk, master_kx_pk);
    sodium_memzero(csk, sizeof csk);
    sodium_memzero(shared, sizeof shared);
    return err;
}

lb_err auth_mac_key_master(unsigned char key[AUTH_MAC_KEY_BYTES],
                           const unsigned char kx_sk[AUTH_KX_BYTES],
                           const unsigned char kx_pk[AUTH_KX_BYTES],
                           const unsigned char agent_id_pk[AUTH_PK_BYTES])
{
    unsigned char cpk[32], shared[32];
    lb_err err = LB_OK;
    if (crypto_sign_ed25519_pk_to_curve25519(cpk, agent_id_pk) != 0 ||
        crypto_scalarmult(shared, kx_sk, cpk) != 0)
        err = LB_EINVAL;
    else
        kdf(key, shared, agent_id_pk, kx_pk);
    sodium_memzero(shared, sizeof shared);
    return err;
}

void auth_mac_buf(unsigned char mac[AUTH_MAC_BYTES], const unsigned char *buf, size_t len,
                  const unsigned char key[AUTH_MAC_KEY_BYTES])
{
    crypto_generichash(mac, AUTH_MAC_BYTES, buf, len, key, AUTH_MAC_KEY_BYTES);
}

unsigned char *auth_report_pack_unsigned(const Lb__ServerLoad *l, unsigned char *buf, size_t cap,
                                         size_t *len)
{
    Lb__ServerLoad tmp = *l;
    tmp.sig.data = NULL;
    tmp.sig.len = 0;
    tmp.n_macs = 0;
    tmp.macs = NULL;
    *len = lb__server_load__get_packed_size(&tmp);
    unsigned char *out = *len <= cap ? buf : malloc(*len ? *len : 1);
    if (out != NULL)
        lb__server_load__pack(&tmp, out);
    return out;
}

lb_err auth_report_mac(Lb__ServerLoad *l, const auth_mac_to *to, size_t n, auth_mac_set *set)
{
    if (n > AUTH_MAC_MAX)
        n = AUTH_MAC_MAX;
    l->n_macs = 0;
    l->macs = NULL;
    if (n == 0)
        return LB_OK;
    unsigned char stack[1024];
    size_t len = 0;
    unsigned char *buf = auth_report_pack_unsigned(l, stack, sizeof stack, &len);
    if (buf == NULL)
        return LB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        lb__report_mac__init(&set->msg[i]);
        memcpy(set->to[i], to[i].to, AUTH_MAC_TO_BYTES);
        auth_mac_buf(set->mac[i], buf, len, to[i].key);
        set->msg[i].to.data = set->to[i];
        set->msg[i].to.len = AUTH_MAC_TO_BYTES;
        set->msg[i].mac.data = set->mac[i];
        set->msg[i].mac.len = AUTH_MAC_BYTES;
        set->ptr[i] = &set->msg[i];
    }
    if (buf != stack)
        free(buf);
    l->n_macs = n;
    l->macs = set->ptr;
    return LB_OK;
}

int auth_report_mac_find(const Lb__ServerLoad *l, const unsigned char to[AUTH_MAC_TO_BYTES])
{
    for (size_t i = 0; i < l->n_macs && i < AUTH_MAC_MAX; i++) {
        const Lb__ReportMac *m = l->macs[i];
        if (m->to.len == AUTH_MAC_TO_BYTES && memcmp(m->to.data, to, AUTH_MAC_TO_BYTES) == 0)
            return (int)i;
    }
    return -1;
}

bool auth_report_mac_verify(const Lb__ServerLoad *l, size_t i,
                            const unsigned char key[AUTH_MAC_KEY_BYTES])
{
    if (i >= l->n_macs || l->macs[i]->mac.len != AUTH_MAC_BYTES)
        return false;
    unsigned char stack[1024], mac[AUTH_MAC_BYTES];
    size_t len = 0;
    unsigned char *buf = auth_report_pack_unsigned(l, stack, sizeof stack, &len);
    if (buf == NULL)
        return false;
    auth_mac_buf(mac, buf, len, key);
    if (buf != stack)
        free(buf);
    return sodium_memcmp(mac, l->macs[i]->mac.data, AUTH_MAC_BYTES) == 0;
}
