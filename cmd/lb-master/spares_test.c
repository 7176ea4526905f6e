/* Unit tests of the hot-spare reservation table (spares.c): a spare is
 * claimed only by its own client and only before its expiry, once; expired
 * reservations are collected exactly once for giving back; the bound and
 * bad input are refused with specific errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spares.h"

#include <stdio.h>
#include <string.h>

static spare_resv resv(const char *sid, const char *client, int32_t pid, int64_t exp)
{
    spare_resv r = {.pid = pid, .expires_ms = exp};
    snprintf(r.session_id, sizeof r.session_id, "%s", sid);
    snprintf(r.client_id, sizeof r.client_id, "%s", client);
    snprintf(r.app, sizeof r.app, "echo");
    snprintf(r.server_id, sizeof r.server_id, "srv-b");
    return r;
}

static void claim_by_owner_once(void **state)
{
    (void)state;
    spare_table *t = spare_table_new(4);
    spare_resv r = resv("s1", "c1", 42, 10000);
    assert_int_equal(spare_reserve(t, &r), LB_OK);
    assert_int_equal(spare_count(t), 1);
    spare_resv got;
    assert_int_equal(spare_claim(t, "s1", "c1", 9999, &got), LB_OK);
    assert_int_equal(got.pid, 42);
    assert_string_equal(got.server_id, "srv-b");
    assert_int_equal(spare_count(t), 0);
    assert_int_equal(spare_claim(t, "s1", "c1", 9999, &got), LB_ENOTFOUND);
    spare_table_free(t);
}

static void claim_refuses_other_client_and_late(void **state)
{
    (void)state;
    spare_table *t = spare_table_new(4);
    spare_resv r = resv("s1", "c1", 42, 10000);
    assert_int_equal(spare_reserve(t, &r), LB_OK);
    assert_int_equal(spare_claim(t, "s1", "intruder", 5000, NULL), LB_EAUTH);
    assert_int_equal(spare_claim(t, "s1", "c1", 10000, NULL), LB_ETIMEDOUT);
    /* a refused claim leaves the reservation for its owner / for expiry */
    assert_int_equal(spare_count(t), 1);
    assert_int_equal(spare_claim(t, "nope", "c1", 5000, NULL), LB_ENOTFOUND);
    spare_table_free(t);
}

static void expire_collects_each_once(void **state)
{
    (void)state;
    spare_table *t = spare_table_new(8);
    for (int i = 0; i < 6; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "s%d", i);
        spare_resv r = resv(sid, "c", 100 + i, i % 2 == 0 ? 1000 : 5000);
        assert_int_equal(spare_reserve(t, &r), LB_OK);
    }
    spare_resv out[8];
    assert_int_equal(spare_expire(t, 999, out, 8), 0);
    /* a max smaller than the expired count leaves the rest for the next pass */
    assert_int_equal(spare_expire(t, 1000, out, 2), 2);
    assert_int_equal(spare_expire(t, 1000, out + 2, 6), 1);
    int pids = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].pid % 2, 0);
        pids += out[i].pid;
    }
    assert_int_equal(pids, 100 + 102 + 104);
    assert_int_equal(spare_expire(t, 1000, out, 8), 0);
    assert_int_equal(spare_count(t), 3);
    assert_int_equal(spare_expire(t, 5000, out, 8), 3);
    assert_int_equal(spare_count(t), 0);
    spare_table_free(t);
}

static void bounds_and_bad_input(void **state)
{
    (void)state;
    assert_null(spare_table_new(0));
    spare_table *t = spare_table_new(2);
    spare_resv a = resv("a", "c", 1, 10), b = resv("b", "c", 2, 10), c = resv("c", "c", 3, 10);
    assert_int_equal(spare_reserve(t, &a), LB_OK);
    assert_int_equal(spare_reserve(t, &a), LB_EEXISTS);
    assert_int_equal(spare_reserve(t, &b), LB_OK);
    assert_int_equal(spare_reserve(t, &c), LB_EUNAVAIL);
    spare_resv bad = resv("x", "c", 0, 10);
    assert_int_equal(spare_reserve(t, &bad), LB_EINVAL);
    bad = resv("", "c", 5, 10);
    assert_int_equal(spare_reserve(t, &bad), LB_EINVAL);
    bad = resv("x", "c", 5, 10);
    memset(bad.client_id, 'z', sizeof bad.client_id); /* unterminated */
    assert_int_equal(spare_reserve(t, &bad), LB_EINVAL);
    assert_int_equal(spare_reserve(NULL, &a), LB_EINVAL);
    assert_int_equal(spare_count(t), 2);
    spare_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_by_owner_once),
        cmocka_unit_test(claim_refuses_other_client_and_late),
        cmocka_unit_test(expire_collects_each_once),
        cmocka_unit_test(bounds_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
