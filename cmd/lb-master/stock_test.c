/* Unit tests of the stock table (stock.c): a bounded number of launches in flight per server,
 * at most N per (server, app), only ready entries of the current lease are
 * taken, each once; a fill after a drop is refused so the caller stops the
 * process; bad input and the bound are refused with specific errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "stock.h"

#include <stdio.h>
#include <string.h>

static stock_item item(const char *sid, const char *server, const char *app, int64_t lease)
{
    stock_item it;
    memset(&it, 0, sizeof it);
    snprintf(it.session_id, sizeof it.session_id, "%s", sid);
    snprintf(it.server_id, sizeof it.server_id, "%s", server);
    snprintf(it.app, sizeof it.app, "%s", app);
    it.lease = lease;
    return it;
}

static void fill(stock_table *t, const char *sid, int32_t pid)
{
    stock_item p;
    memset(&p, 0, sizeof p);
    p.pid = pid;
    p.port = 9000;
    snprintf(p.host, sizeof p.host, "127.0.0.1");
    assert_int_equal(stock_fill(t, sid, &p), LB_OK);
}

static void one_launch_per_server_and_n_per_app(void **state)
{
    (void)state;
    stock_table *t = stock_table_new(16);
    /* STOCK_INFLIGHT_PER_SERVER launches at one server, then no more */
    char sid[STOCK_INFLIGHT_PER_SERVER][16];
    for (int i = 0; i < STOCK_INFLIGHT_PER_SERVER; i++) {
        snprintf(sid[i], sizeof sid[i], "f%d", i);
        stock_item f = item(sid[i], "srv-a", "other", 7);
        assert_int_equal(stock_begin(t, &f, 8), LB_OK);
    }
    stock_item a = item("s1", "srv-a", "echo", 7), b = item("s2", "srv-a", "echo", 7);
    assert_int_equal(stock_begin(t, &a, 2), LB_EUNAVAIL); /* in flight there: the limit */
    stock_item other = item("s3", "srv-b", "echo", 7);
    assert_int_equal(stock_begin(t, &other, 2), LB_OK); /* another server may */
    for (int i = 0; i < STOCK_INFLIGHT_PER_SERVER; i++)
        assert_true(stock_drop(t, sid[i], NULL));
    assert_int_equal(stock_begin(t, &a, 2), LB_OK);
    assert_int_equal(stock_begin(t, &b, 2), LB_OK); /* two in flight at srv-a */
    fill(t, "s1", 41);
    fill(t, "s2", 42);
    stock_item c = item("s4", "srv-a", "echo", 7);
    assert_int_equal(stock_begin(t, &c, 2), LB_EUNAVAIL); /* 2 of echo there already */
    assert_int_equal(stock_begin(t, &a, 2), LB_EEXISTS);
    size_t ready = 0;
    assert_int_equal(stock_count(t, &ready), 3);
    assert_int_equal(ready, 2);
    bool launching = true;
    assert_int_equal(stock_count_at(t, "srv-a", "echo", &launching), 2);
    assert_false(launching);
    stock_table_free(t);
}

static void take_ready_of_current_lease_once(void **state)
{
    (void)state;
    stock_table *t = stock_table_new(4);
    stock_item a = item("s1", "srv-a", "echo", 7);
    stock_item got;
    assert_int_equal(stock_begin(t, &a, 1), LB_OK);
    assert_false(stock_take(t, "srv-a", "echo", 7, &got)); /* launching: not yet */
    assert_false(stock_has_ready(t, "srv-a", "echo"));
    fill(t, "s1", 41);
    assert_true(stock_has_ready(t, "srv-a", "echo"));
    assert_false(stock_take(t, "srv-a", "echo", 8, &got)); /* another leader term */
    assert_false(stock_take(t, "srv-a", "other", 7, &got));
    assert_false(stock_take(t, "srv-b", "echo", 7, &got));
    assert_true(stock_take(t, "srv-a", "echo", 7, &got));
    assert_string_equal(got.session_id, "s1");
    assert_int_equal(got.pid, 41);
    assert_string_equal(got.host, "127.0.0.1");
    assert_false(stock_take(t, "srv-a", "echo", 7, &got)); /* once */
    assert_int_equal(stock_count(t, NULL), 0);
    stock_table_free(t);
}

static void fill_after_drop_is_refused(void **state)
{
    (void)state;
    stock_table *t = stock_table_new(4);
    stock_item a = item("s1", "srv-a", "echo", 7), out;
    assert_int_equal(stock_begin(t, &a, 1), LB_OK);
    assert_true(stock_drop(t, "s1", &out));
    assert_false(out.ready);
    stock_item p;
    memset(&p, 0, sizeof p);
    p.pid = 41;
    assert_int_equal(stock_fill(t, "s1", &p), LB_ENOTFOUND);
    assert_false(stock_drop(t, "s1", NULL));
    stock_table_free(t);
}

static void bounds_and_bad_input(void **state)
{
    (void)state;
    assert_null(stock_table_new(0));
    stock_table *t = stock_table_new(1);
    stock_item a = item("s1", "srv-a", "echo", 7), b = item("s2", "srv-b", "echo", 7);
    stock_item empty = item("", "srv-a", "echo", 7);
    assert_int_equal(stock_begin(t, &empty, 1), LB_EINVAL);
    assert_int_equal(stock_begin(t, &a, 1), LB_OK);
    assert_int_equal(stock_begin(t, &b, 1), LB_EUNAVAIL); /* table full */
    stock_item p;
    memset(&p, 0, sizeof p);
    assert_int_equal(stock_fill(t, "s1", &p), LB_EINVAL); /* pid 0 */
    stock_item list[4];
    assert_int_equal(stock_list(t, list, 4), 1);
    assert_string_equal(list[0].session_id, "s1");
    stock_table_free(t);
}

/* The indexes (session id -> slot, counts per server and app) stay true while
 * entries move: 3 servers x 2 apps interleaved, drops and takes from the
 * middle, then every remaining entry found by id and the counts recomputed
 * from the list. */
static void counts_stay_true_as_entries_move(void **state)
{
    (void)state;
    const char *srv[] = {"srv-a", "srv-b", "srv-c"}, *app[] = {"echo", "web"};
    stock_table *t = stock_table_new(64);
    char sid[48];
    for (int i = 0; i < 48; i++) {
        snprintf(sid, sizeof sid, "s%d", i);
        stock_item it = item(sid, srv[i % 3], app[(i / 3) % 2], 7);
        assert_int_equal(stock_begin(t, &it, 100), LB_OK);
        if (i % 7 != 0) /* some stay launching */
            fill(t, sid, 100 + i);
        else if (i >= 21) /* at most STOCK_INFLIGHT_PER_SERVER launching per server */
            assert_true(stock_drop(t, sid, NULL));
    }
    assert_true(stock_drop(t, "s10", NULL));
    assert_true(stock_drop(t, "s1", NULL));
    assert_false(stock_drop(t, "s1", NULL));
    stock_item got;
    for (int k = 0; k < 5; k++)
        assert_true(stock_take(t, "srv-b", "web", 7, &got));
    assert_string_not_equal(got.session_id, "s10");
    stock_item list[64];
    size_t n = stock_list(t, list, 64);
    for (size_t i = 0; i < n; i++) { /* each found by id: drop then begin again */
        stock_item e = list[i], out;
        assert_true(stock_drop(t, e.session_id, &out));
        assert_string_equal(out.server_id, e.server_id);
        assert_int_equal(stock_begin(t, &e, 100), LB_OK);
        if (e.ready)
            fill(t, e.session_id, e.pid);
    }
    for (int s = 0; s < 3; s++)
        for (int a = 0; a < 2; a++) {
            size_t held = 0, ready = 0, launching = 0;
            n = stock_list(t, list, 64);
            for (size_t i = 0; i < n; i++) {
                bool here = strcmp(list[i].server_id, srv[s]) == 0;
                launching += here && !list[i].ready;
                if (here && strcmp(list[i].app, app[a]) == 0) {
                    held++;
                    ready += list[i].ready;
                }
            }
            bool l = false;
            assert_int_equal(stock_count_at(t, srv[s], app[a], &l), held);
            assert_int_equal(l, launching > 0);
            assert_int_equal(stock_has_ready(t, srv[s], app[a]), ready > 0);
        }
    while (stock_take(t, "srv-b", "web", 7, &got))
        ;
    assert_false(stock_has_ready(t, "srv-b", "web"));
    assert_int_equal(stock_count_at(t, "srv-b", "web", NULL), 0);
    stock_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_launch_per_server_and_n_per_app),
        cmocka_unit_test(take_ready_of_current_lease_once),
        cmocka_unit_test(fill_after_drop_is_refused),
        cmocka_unit_test(bounds_and_bad_input),
        cmocka_unit_test(counts_stay_true_as_entries_move),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
