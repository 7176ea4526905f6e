/* pkg/etcd against a real etcd: keys, transactions, leases, errors and endpoint failover. */
#include "testlib.h"

static void test_b64_and_prefix_end(void **state)
{
    (void)state;
    unsigned char in[40], *out = NULL;
    size_t n = 0;
    for (size_t len = 0; len < sizeof in; len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(i * 37 + len);
        char *s = etcd_b64_encode(in, len);
        assert_int_equal(strlen(s) % 4, 0);
        assert_true(etcd_b64_decode(s, &out, &n));
        assert_int_equal(n, len);
        assert_memory_equal(out, in, len);
        free(s);
        free(out);
    }
    assert_false(etcd_b64_decode("a*==", &out, &n));
    unsigned char *end = etcd_prefix_end("a/", &n);
    assert_int_equal(n, 2);
    assert_memory_equal(end, "a0", 2);
    free(end);
    end = etcd_prefix_end("a\xff\xff", &n);
    assert_int_equal(n, 1);
    assert_memory_equal(end, "b", 1);
    free(end);
    end = etcd_prefix_end("\xff", &n);
    assert_int_equal(n, 1);
    assert_int_equal(end[0], 0);
    free(end);
}

static void test_put_get_binary(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    int64_t rev1 = 0, rev2 = 0;
    const unsigned char bin[] = {'a', 0, 'b', 0, 0xff, 0};
    uint64_t puts0 = counter("etcd_requests_total{call=\"put\"}");
    assert_int_equal(etcd_put(cli, "/t/kv/bin", bin, sizeof bin, 0, &rev1, &em), LB_OK);
    assert_true(rev1 > 0);
    assert_int_equal(etcd_put(cli, "/t/kv/bin", bin, sizeof bin, 0, &rev2, &em), LB_OK);
    assert_int_equal(rev2, rev1 + 1);
    assert_int_equal(counter("etcd_requests_total{call=\"put\"}"), puts0 + 2);

    etcd_kvs r = {0};
    assert_int_equal(etcd_get(cli, "/t/kv/bin", &r, &em), LB_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.kvs[0].key, "/t/kv/bin");
    assert_int_equal(r.kvs[0].value_len, sizeof bin);
    assert_memory_equal(r.kvs[0].value, bin, sizeof bin);
    assert_int_equal(r.kvs[0].value[sizeof bin], 0);
    assert_int_equal(r.kvs[0].create_revision, rev1);
    assert_int_equal(r.kvs[0].mod_revision, rev2);
    assert_int_equal(r.kvs[0].version, 2);
    assert_int_equal(r.kvs[0].lease, 0);
    assert_int_equal(r.revision, rev2);
    etcd_kvs_free(&r);

    /* empty value: the gateway omits it */
    assert_int_equal(etcd_put(cli, "/t/kv/empty", "", 0, 0, NULL, &em), LB_OK);
    assert_int_equal(etcd_get(cli, "/t/kv/empty", &r, &em), LB_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kvs[0].value_len, 0);
    assert_non_null(r.kvs[0].value);
    etcd_kvs_free(&r);

    assert_int_equal(etcd_get(cli, "/t/kv/missing", &r, &em), LB_OK);
    assert_int_equal(r.n, 0);
    assert_true(r.revision >= rev2);
    etcd_kvs_free(&r);
}

static void test_range_prefix_pages(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    char key[64];
    unsigned char val[8];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "/t/rp/k%02d", i);
        memcpy(val, (unsigned char[]){0, (unsigned char)i, 0, 'x', 0xff, 0, 0, 7}, 8);
        assert_int_equal(etcd_put(cli, key, val, sizeof val, 0, NULL, &em), LB_OK);
    }
    put_str("/t/rp", "outside", 0);  /* the prefix without its slash */
    put_str("/t/rp0", "outside", 0); /* the range end itself */
    put_str("/t/rq/x", "outside", 0);

    etcd_set_page_limit(cli, 3);
    uint64_t ranges0 = counter("etcd_requests_total{call=\"range\"}");
    etcd_kvs r = {0};
    assert_int_equal(etcd_range_prefix(cli, "/t/rp/", &r, &em), LB_OK);
    assert_int_equal(counter("etcd_requests_total{call=\"range\"}") - ranges0, 4);
    etcd_set_page_limit(cli, 0);
    assert_int_equal(r.n, 10);
    assert_false(r.more);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "/t/rp/k%02d", i);
        assert_string_equal(r.kvs[i].key, key);
        assert_int_equal(r.kvs[i].value_len, 8);
        assert_int_equal(r.kvs[i].value[1], i);
        assert_int_equal(r.kvs[i].value[4], 0xff);
        assert_int_equal(r.kvs[i].value[7], 7);
    }
    int64_t rev = r.revision;
    etcd_kvs_free(&r);

    /* one page gives the same answer */
    assert_int_equal(etcd_range_prefix(cli, "/t/rp/", &r, &em), LB_OK);
    assert_int_equal(r.n, 10);
    assert_int_equal(r.revision, rev);
    etcd_kvs_free(&r);

    /* a prefix ending in 0xff */
    put_str("/t/ff\xff", "1", 0);
    put_str("/t/ff\xff\x01", "2", 0);
    put_str("/t/fg", "outside", 0);
    assert_int_equal(etcd_range_prefix(cli, "/t/ff\xff", &r, &em), LB_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.kvs[1].key, "/t/ff\xff\x01");
    etcd_kvs_free(&r);

    assert_int_equal(etcd_range_prefix(cli, "/t/none/", &r, &em), LB_OK);
    assert_int_equal(r.n, 0);
    assert_true(r.revision > 0);
    etcd_kvs_free(&r);
}

static void test_delete(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    int64_t deleted = -1;
    put_str("/t/del/a", "1", 0);
    put_str("/t/del/b", "2", 0);
    put_str("/t/del/c/d", "3", 0);
    put_str("/t/del", "outside", 0);
    assert_int_equal(etcd_delete(cli, "/t/del/a", false, &deleted, &em), LB_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(get_str("/t/del/a", NULL, 0, NULL), 0);
    assert_int_equal(etcd_delete(cli, "/t/del/a", false, &deleted, &em), LB_OK);
    assert_int_equal(deleted, 0);
    assert_int_equal(etcd_delete(cli, "/t/del/", true, &deleted, &em), LB_OK);
    assert_int_equal(deleted, 2);
    etcd_kvs r = {0};
    assert_int_equal(etcd_range_prefix(cli, "/t/del/", &r, &em), LB_OK);
    assert_int_equal(r.n, 0);
    etcd_kvs_free(&r);
    assert_int_equal(get_str("/t/del", NULL, 0, NULL), 1);
}

static void test_txn(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    bool ok = false;
    int64_t rev = 0;
    char v[64];
    etcd_cmp absent = {
        .key = "/t/txn/leader", .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .number = 0};
    etcd_op put_m1 = {.type = ETCD_OP_PUT, .key = "/t/txn/leader", .value = "m1", .value_len = 2};
    etcd_op put_m2 = {.type = ETCD_OP_PUT, .key = "/t/txn/leader", .value = "m2", .value_len = 2};
    etcd_op get = {.type = ETCD_OP_GET, .key = "/t/txn/leader"};
    etcd_op lost = {.type = ETCD_OP_PUT, .key = "/t/txn/lost", .value = "y", .value_len = 1};

    assert_int_equal(etcd_txn(cli, &absent, 1, &put_m1, 1, &get, 1, &ok, &rev, &em), LB_OK);
    assert_true(ok);
    assert_true(rev > 0);
    int64_t rev2 = 0;
    etcd_op fail_ops[2] = {get, lost};
    assert_int_equal(etcd_txn(cli, &absent, 1, &put_m2, 1, fail_ops, 2, &ok, &rev2, &em), LB_OK);
    assert_false(ok);
    assert_int_equal(rev2, rev + 1); /* the failure branch's put ran */
    assert_int_equal(get_str("/t/txn/leader", v, sizeof v, NULL), 1);
    assert_string_equal(v, "m1");
    assert_int_equal(get_str("/t/txn/lost", NULL, 0, NULL), 1);

    /* VALUE compare, then delete by prefix */
    put_str("/t/txn/sub/a", "1", 0);
    etcd_cmp is_m1 = {.key = "/t/txn/leader",
                      .target = ETCD_CMP_VALUE,
                      .result = ETCD_CMP_EQUAL,
                      .value = "m1",
                      .value_len = 2};
    etcd_op dels[2] = {{.type = ETCD_OP_DELETE, .key = "/t/txn/leader"},
                       {.type = ETCD_OP_DELETE, .key = "/t/txn/sub/", .prefix = true}};
    assert_int_equal(etcd_txn(cli, &is_m1, 1, dels, 2, NULL, 0, &ok, NULL, &em), LB_OK);
    assert_true(ok);
    assert_int_equal(get_str("/t/txn/leader", NULL, 0, NULL), 0);
    assert_int_equal(get_str("/t/txn/sub/a", NULL, 0, NULL), 0);

    /* MOD GREATER fails against a missing key */
    etcd_cmp newer = {
        .key = "/t/txn/leader", .target = ETCD_CMP_MOD, .result = ETCD_CMP_GREATER, .number = 0};
    assert_int_equal(etcd_txn(cli, &newer, 1, &put_m1, 1, NULL, 0, &ok, NULL, &em), LB_OK);
    assert_false(ok);

    etcd_op many[ETCD_MAX_TXN_OPS + 1];
    for (size_t i = 0; i < ETCD_MAX_TXN_OPS + 1; i++)
        many[i] = lost;
    assert_int_equal(etcd_txn(cli, NULL, 0, many, ETCD_MAX_TXN_OPS + 1, NULL, 0, &ok, NULL, &em),
                     LB_EINVAL);
}

static void test_lease_expiry(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    int64_t id = 0, ttl = 0, lease = 0;
    assert_int_equal(etcd_lease_grant(cli, 2, &id, &em), LB_OK);
    assert_true(id != 0);
    put_str("/t/lease/k", "v", id);
    assert_int_equal(get_str("/t/lease/k", NULL, 0, &lease), 1);
    assert_int_equal(lease, id);
    assert_int_equal(etcd_lease_keepalive(cli, id, &ttl, &em), LB_OK);
    assert_in_range(ttl, 1, 2);
    int64_t t0 = lb_mono_ms();
    while (get_str("/t/lease/k", NULL, 0, NULL) == 1 && lb_mono_ms() - t0 < 6000)
        lb_sleep_ms(100);
    assert_int_equal(get_str("/t/lease/k", NULL, 0, NULL), 0);
    assert_true(lb_mono_ms() - t0 >= 1000); /* not before the ttl */
    assert_int_equal(etcd_lease_keepalive(cli, id, &ttl, &em), LB_ENOTFOUND);
    assert_int_equal(ttl, 0);
}

static void test_lease_revoked(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    int64_t id = 0, ttl = -1;
    assert_int_equal(etcd_lease_grant(cli, 30, &id, &em), LB_OK);
    put_str("/t/revoke/k", "v", id);
    assert_int_equal(etcd_lease_revoke(cli, id, &em), LB_OK);
    assert_int_equal(get_str("/t/revoke/k", NULL, 0, NULL), 0);
    uint64_t errs0 = counter("etcd_errors_total{call=\"lease_keepalive\"}");
    assert_int_equal(etcd_lease_keepalive(cli, id, &ttl, &em), LB_ENOTFOUND);
    assert_int_equal(counter("etcd_errors_total{call=\"lease_keepalive\"}"), errs0 + 1);
    assert_non_null(strstr(em.text, "not found"));
    /* a put with a lease etcd does not know */
    assert_int_equal(etcd_put(cli, "/t/revoke/k", "v", 1, id, NULL, &em), LB_ENOTFOUND);
    assert_non_null(strstr(em.text, url));
    assert_int_equal(etcd_lease_revoke(cli, id, &em), LB_ENOTFOUND);
}

static void test_unreachable(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", closed_port());
    etcd_client *dead = NULL;
    assert_int_equal(etcd_open(ep, 2000, &dead, &em), LB_OK);
    assert_string_equal(etcd_endpoints(dead), ep);
    uint64_t errs0 = counter("etcd_errors_total{call=\"put\"}");
    int64_t t0 = lb_mono_ms();
    lb_err rc = etcd_put(dead, "/t/x", "y", 1, 0, NULL, &em);
    assert_true(rc == LB_EUNAVAIL || rc == LB_ETIMEDOUT);
    assert_true(lb_mono_ms() - t0 < 1000);
    assert_non_null(strstr(em.text, ep));
    assert_int_equal(counter("etcd_errors_total{call=\"put\"}"), errs0 + 1);

    etcd_kvs r = {0};
    rc = etcd_range_prefix(dead, "/t/", &r, &em);
    assert_true(rc == LB_EUNAVAIL || rc == LB_ETIMEDOUT);
    assert_int_equal(r.n, 0);
    rec rr;
    rec_init(&rr);
    etcd_watch_cb cb = rec_cb(&rr);
    /* A daemon must come up before etcd does: the watch and the keeper start,
     * say they are not connected, and keep retrying on their threads. */
    etcd_watch *w = NULL;
    assert_int_equal(etcd_watch_start(dead, "/t/", &cb, &w, &em), LB_OK);
    assert_non_null(w);
    lb_sleep_ms(300);
    pthread_mutex_lock(&rr.mu);
    assert_true(rr.downs >= 1);
    assert_int_equal(rr.ups, 0);
    assert_int_equal(rr.resets, 0);
    pthread_mutex_unlock(&rr.mu);
    etcd_watch_stop(&w);
    assert_null(w);
    grants g = {.n = 0};
    pthread_mutex_init(&g.mu, NULL);
    etcd_keeper *k = NULL;
    assert_int_equal(etcd_keeper_start(dead, 2, on_granted, &g, &k, &em), LB_OK);
    assert_non_null(k);
    assert_int_equal(etcd_keeper_lease(k), 0);
    lb_sleep_ms(300);
    assert_int_equal(g.n, 0);
    etcd_keeper_stop(&k);
    assert_null(k);
    etcd_close(&dead);
    assert_null(dead);
    pthread_mutex_destroy(&g.mu);
    pthread_mutex_destroy(&rr.mu);

    assert_int_equal(etcd_open(" , ", 2000, &dead, &em), LB_ECONFIG);
    assert_null(dead);
}

static void test_failover(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    char eps[512];
    snprintf(eps, sizeof eps, "http://127.0.0.1:%d, 127.0.0.1:%d/ ,%s", closed_port(),
             closed_port(), url);
    etcd_client *two = NULL;
    assert_int_equal(etcd_open(eps, 3000, &two, &em), LB_OK);
    assert_int_equal(etcd_put(two, "/t/fo/k", "v", 1, 0, NULL, &em), LB_OK);
    char v[16];
    assert_int_equal(get_str("/t/fo/k", v, sizeof v, NULL), 1);
    assert_string_equal(v, "v");
    etcd_kvs r = {0};
    assert_int_equal(etcd_get(two, "/t/fo/k", &r, &em), LB_OK);
    assert_int_equal(r.n, 1);
    etcd_kvs_free(&r);
    /* the watch finds the live endpoint too */
    rec rr;
    rec_init(&rr);
    etcd_watch_cb cb = rec_cb(&rr);
    etcd_watch *w = NULL;
    assert_int_equal(etcd_watch_start(two, "/t/fo/", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&rr, 0, 1, 5000));
    put_str("/t/fo/k2", "v2", 0);
    assert_true(rec_wait(&rr, 1, 1, 10000));
    etcd_watch_stop(&w);
    assert_string_equal(rr.ev[0].key, "/t/fo/k2");
    pthread_mutex_destroy(&rr.mu);
    etcd_close(&two);
}

static void *put_many(void *arg)
{
    lb_errmsg em = {{0}};
    char key[64];
    intptr_t t = (intptr_t)arg, fails = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "/t/mt/%02d/%02d", (int)t, i);
        fails += etcd_put(cli, key, key, strlen(key), 0, NULL, &em) != LB_OK;
    }
    return (void *)fails;
}

static void test_threads(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    pthread_t th[8];
    for (intptr_t i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, put_many, (void *)i), 0);
    for (int i = 0; i < 8; i++) {
        void *fails = NULL;
        pthread_join(th[i], &fails);
        assert_int_equal((intptr_t)fails, 0);
    }
    etcd_kvs r = {0};
    assert_int_equal(etcd_range_prefix(cli, "/t/mt/", &r, &em), LB_OK);
    assert_int_equal(r.n, 400);
    etcd_kvs_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_and_prefix_end),
        cmocka_unit_test(test_put_get_binary),
        cmocka_unit_test(test_range_prefix_pages),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_txn),
        cmocka_unit_test(test_lease_expiry),
        cmocka_unit_test(test_lease_revoked),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_threads),
    };
    return etcd_test_run("etcd_kv", tests, sizeof tests / sizeof tests[0]);
}
