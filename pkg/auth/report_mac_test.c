/* pkg/auth report MACs: both ends derive the same pair key, and a MAC verifies
 * only under the pair key of the agent that made it, for the master it names. */
#include "auth/report_mac.h"
#include "auth/report_sig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

typedef struct agent_id {
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES];
} agent_id;

static void agent_new(agent_id *a)
{
    crypto_sign_keypair(a->pk, a->sk);
}

static void test_pair_key_agrees(void **state)
{
    (void)state;
    agent_id a1, a2;
    agent_new(&a1);
    agent_new(&a2);
    unsigned char mpk[AUTH_KX_BYTES], msk[AUTH_KX_BYTES], mpk2[AUTH_KX_BYTES], msk2[AUTH_KX_BYTES];
    auth_kx_keypair(mpk, msk);
    auth_kx_keypair(mpk2, msk2);
    unsigned char ka[32], km[32], k2[32], kother[32];
    assert_int_equal(auth_mac_key_agent(ka, a1.sk, a1.pk, mpk), LB_OK);
    assert_int_equal(auth_mac_key_master(km, msk, mpk, a1.pk), LB_OK);
    assert_memory_equal(ka, km, 32);
    /* another agent, or the same agent with another master: another key */
    assert_int_equal(auth_mac_key_master(k2, msk, mpk, a2.pk), LB_OK);
    assert_memory_not_equal(km, k2, 32);
    assert_int_equal(auth_mac_key_agent(kother, a1.sk, a1.pk, mpk2), LB_OK);
    assert_memory_not_equal(ka, kother, 32);
    /* a low-order master key gives no shared secret: refused, not a zero key */
    unsigned char zero[AUTH_KX_BYTES] = {0};
    assert_int_equal(auth_mac_key_agent(ka, a1.sk, a1.pk, zero), LB_EINVAL);
    /* a registered report key that is not an Ed25519 point is refused */
    unsigned char bad[AUTH_PK_BYTES];
    memset(bad, 0xff, sizeof bad);
    assert_int_equal(auth_mac_key_master(km, msk, mpk, bad), LB_EINVAL);
}

static void test_mac_verify(void **state)
{
    (void)state;
    agent_id a1, a2;
    agent_new(&a1);
    agent_new(&a2);
    unsigned char mpk[AUTH_KX_BYTES], msk[AUTH_KX_BYTES], opk[AUTH_KX_BYTES], osk[AUTH_KX_BYTES];
    auth_kx_keypair(mpk, msk);
    auth_kx_keypair(opk, osk);
    auth_mac_to to[2];
    memcpy(to[0].to, opk, AUTH_MAC_TO_BYTES); /* another master first */
    assert_int_equal(auth_mac_key_agent(to[0].key, a1.sk, a1.pk, opk), LB_OK);
    memcpy(to[1].to, mpk, AUTH_MAC_TO_BYTES);
    assert_int_equal(auth_mac_key_agent(to[1].key, a1.sk, a1.pk, mpk), LB_OK);
    unsigned char k1[32], k2[32];
    assert_int_equal(auth_mac_key_master(k1, msk, mpk, a1.pk), LB_OK);
    assert_int_equal(auth_mac_key_master(k2, msk, mpk, a2.pk), LB_OK);

    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "a1";
    l.sessions = 3;
    l.seq = 42;
    assert_int_equal(auth_report_mac_find(&l, mpk), -1); /* no MAC yet */
    auth_mac_set set;
    assert_int_equal(auth_report_mac(&l, to, 2, &set), LB_OK);
    assert_int_equal(l.n_macs, 2);
    int i = auth_report_mac_find(&l, mpk);
    assert_int_equal(i, 1);
    assert_true(auth_report_mac_verify(&l, (size_t)i, k1));
    assert_false(auth_report_mac_verify(&l, (size_t)i, k2)); /* a2's pair key */
    assert_false(auth_report_mac_verify(&l, 0, k1));         /* the MAC for the other master */
    assert_false(auth_report_mac_verify(&l, 5, k1));         /* out of range */
    l.sessions = 4;                                          /* any field changed */
    assert_false(auth_report_mac_verify(&l, (size_t)i, k1));
    l.sessions = 3;
    l.server_id = "a2";
    assert_false(auth_report_mac_verify(&l, (size_t)i, k1));
    l.server_id = "a1";
    /* the signature and the MACs cover the same bytes: either order works */
    unsigned char sig[AUTH_SIG_BYTES];
    assert_int_equal(auth_report_sign(&l, a1.sk, sig), LB_OK);
    assert_true(auth_report_verify(&l, a1.pk, sizeof a1.pk));
    assert_true(auth_report_mac_verify(&l, (size_t)i, k1));
    /* a truncated MAC does not verify */
    set.msg[1].mac.len = 16;
    assert_false(auth_report_mac_verify(&l, (size_t)i, k1));
    set.msg[1].mac.len = AUTH_MAC_BYTES;
    /* a report bigger than the stack buffer goes through the heap path alike */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    l.server_id = big;
    assert_int_equal(auth_report_mac(&l, to, 2, &set), LB_OK);
    assert_true(auth_report_mac_verify(&l, 1, k1));
    assert_int_equal(auth_report_mac(&l, to, 0, &set), LB_OK);
    assert_int_equal(l.n_macs, 0);
}

int main(void)
{
    assert_int_equal(auth_init(), 0);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pair_key_agrees),
                                       cmocka_unit_test(test_mac_verify)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
