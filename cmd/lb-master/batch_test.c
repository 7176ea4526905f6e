/* Unit tests of batch.c: in a txn's ops, every op but the last on a key is
 * superseded, whatever the order; distinct keys (a full batch, keys that
 * share a prefix) are all kept; a batch beyond the bound marks nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "batch.h"

#include <stdio.h>
#include <string.h>

static void test_last_op_per_key_wins(void **state)
{
    (void)state;
    const char *keys[] = {"/lb/sessions/a", "/lb/sessions/b", "/lb/sessions/a",
                          "/lb/sessions/c", "/lb/sessions/a", "/lb/sessions/b"};
    bool sup[6];
    batch_superseded(keys, 6, sup);
    const bool want[6] = {true, true, true, false, false, false};
    for (int i = 0; i < 6; i++)
        assert_int_equal(sup[i], want[i]);
}

static void test_distinct_keys_all_kept(void **state)
{
    (void)state;
    char buf[BATCH_MAX_OPS][32];
    const char *keys[BATCH_MAX_OPS];
    bool sup[BATCH_MAX_OPS];
    for (int i = 0; i < BATCH_MAX_OPS; i++) {
        snprintf(buf[i], sizeof buf[i], "/lb/sessions/%d", i); /* "1" is a prefix of "10" */
        keys[i] = buf[i];
    }
    batch_superseded(keys, BATCH_MAX_OPS, sup);
    for (int i = 0; i < BATCH_MAX_OPS; i++)
        assert_false(sup[i]);
    /* one key everywhere: only the last is kept */
    for (int i = 0; i < BATCH_MAX_OPS; i++)
        keys[i] = buf[7];
    batch_superseded(keys, BATCH_MAX_OPS, sup);
    for (int i = 0; i < BATCH_MAX_OPS; i++)
        assert_int_equal(sup[i], i < BATCH_MAX_OPS - 1);
}

static void test_beyond_the_bound_marks_nothing(void **state)
{
    (void)state;
    const char *keys[BATCH_MAX_OPS + 1];
    bool sup[BATCH_MAX_OPS + 1];
    for (int i = 0; i <= BATCH_MAX_OPS; i++)
        keys[i] = "same";
    batch_superseded(keys, BATCH_MAX_OPS + 1, sup);
    for (int i = 0; i <= BATCH_MAX_OPS; i++)
        assert_false(sup[i]);
    batch_superseded(keys, 0, sup); /* nothing to do, nothing touched */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_op_per_key_wins),
        cmocka_unit_test(test_distinct_keys_all_kept),
        cmocka_unit_test(test_beyond_the_bound_marks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
