/* pkg/auth report signatures: what verifies and what does not. */
#include "auth/report_sig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/lbcp-report-sig-XXXXXX";

static void key_at(const char *name, bool create, unsigned char *sk, unsigned char *pk)
{
    char path[256];
    lb_errmsg em = {{0}};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(auth_identity_load(path, create, sk, pk, &em), LB_OK);
}

static void test_sign_verify(void **state)
{
    (void)state;
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES], pk2[AUTH_PK_BYTES];
    unsigned char sig[AUTH_SIG_BYTES];
    key_at("a1.key", true, sk, pk);
    key_at("a2.key", true, sk2, pk2);
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "a1";
    l.sessions = 3;
    l.seq = 42;
    assert_false(auth_report_verify(&l, pk, sizeof pk)); /* unsigned */
    assert_int_equal(auth_report_sign(&l, sk, sig), LB_OK);
    assert_true(auth_report_verify(&l, pk, sizeof pk));
    assert_false(auth_report_verify(&l, pk2, sizeof pk2)); /* another agent's key */
    assert_false(auth_report_verify(&l, pk, 31));          /* a malformed key */
    l.sessions = 4;                                        /* any field changed */
    assert_false(auth_report_verify(&l, pk, sizeof pk));
    l.sessions = 3;
    l.server_id = "a2"; /* a1's signature does not carry over to another server */
    assert_false(auth_report_verify(&l, pk, sizeof pk));
}

static void test_key_file(void **state)
{
    (void)state;
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES], pk2[AUTH_PK_BYTES];
    char path[256];
    lb_errmsg em = {{0}};
    key_at("k.key", true, sk, pk);
    key_at("k.key", false, sk2, pk2); /* read back: the same identity */
    assert_memory_equal(pk, pk2, sizeof pk);
    snprintf(path, sizeof path, "%s/k.key", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/missing.key", dir);
    assert_int_equal(auth_identity_load(path, false, sk, pk, &em), LB_ESYS);
    assert_non_null(strstr(em.text, "missing.key"));
    snprintf(path, sizeof path, "%s/short.key", dir);
    FILE *f = fopen(path, "w");
    fputs("short", f);
    fclose(f);
    assert_int_equal(auth_identity_load(path, true, sk, pk, &em), LB_EINVAL);
    assert_non_null(strstr(em.text, "not a 32-byte Ed25519 seed"));
}

static void test_slave_load(void **state)
{
    (void)state;
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES], sk2[AUTH_SK_BYTES], pk2[AUTH_PK_BYTES];
    unsigned char sig[AUTH_SIG_BYTES];
    key_at("s1.key", true, sk, pk);
    key_at("s2.key", true, sk2, pk2);
    Lb__SlaveLoad l = LB__SLAVE_LOAD__INIT;
    l.slave_id = "slave-a";
    l.load = 5;
    l.seq = 7;
    l.at_ms = 1000;
    assert_false(auth_slave_load_verify(&l, pk, sizeof pk)); /* unsigned */
    assert_int_equal(auth_slave_load_sign(&l, sk, sig), LB_OK);
    assert_true(auth_slave_load_verify(&l, pk, sizeof pk));
    assert_false(auth_slave_load_verify(&l, pk2, sizeof pk2)); /* slave-b's valid key */
    assert_false(auth_slave_load_verify(&l, pk, 33));          /* an oversized key */
    l.load = 6;
    assert_false(auth_slave_load_verify(&l, pk, sizeof pk));
    l.load = 5;
    l.at_ms = 1001; /* the time is signed too: a replay cannot be freshened */
    assert_false(auth_slave_load_verify(&l, pk, sizeof pk));
    l.at_ms = 1000;
    sig[0] ^= 1; /* garbage signature bytes */
    assert_false(auth_slave_load_verify(&l, pk, sizeof pk));
    l.sig.len = 10; /* a short one */
    assert_false(auth_slave_load_verify(&l, pk, sizeof pk));
}

static void test_identity_open(void **state)
{
    (void)state;
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES], pk2[AUTH_PK_BYTES];
    char deflt[256], other[256];
    lb_errmsg em = {{0}};
    /* the default is made with its missing directories, 0700 */
    snprintf(deflt, sizeof deflt, "%s/state/sub/identity.key", dir);
    assert_int_equal(auth_identity_open("", deflt, sk, pk, &em), LB_OK);
    struct stat st;
    snprintf(other, sizeof other, "%s/state/sub", dir);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(auth_identity_open(NULL, deflt, sk, pk2, &em), LB_OK);
    assert_memory_equal(pk, pk2, sizeof pk); /* the same identity at the next start */
    /* a configured one must exist: a typo is not a new identity */
    snprintf(other, sizeof other, "%s/state/typo.key", dir);
    assert_int_equal(auth_identity_open(other, deflt, sk, pk2, &em), LB_ESYS);
    assert_non_null(strstr(em.text, "typo.key"));
    assert_int_equal(access(other, F_OK), -1);
    assert_int_equal(auth_identity_open(deflt, "/nonexistent/x", sk, pk2, &em), LB_OK);
    assert_memory_equal(pk, pk2, sizeof pk);
    /* a default directory others may write to is refused, its key unread */
    snprintf(other, sizeof other, "%s/shared", dir);
    assert_int_equal(mkdir(other, 0777), 0);
    assert_int_equal(chmod(other, 0777), 0);
    snprintf(other, sizeof other, "%s/shared/identity.key", dir);
    assert_int_equal(auth_identity_open("", other, sk, pk2, &em), LB_ESYS);
    assert_non_null(strstr(em.text, "writable only by it"));
    assert_int_equal(access(other, F_OK), -1);
}

int main(void)
{
    assert_int_equal(auth_init(), 0);
    assert_non_null(mkdtemp(dir));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify), cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_slave_load), cmocka_unit_test(test_identity_open)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
