/* pkg/etcd against a real etcd: watches (events, restarts, compaction, idle streams) and the lease
 * keeper. */
#include "testlib.h"

static void test_watch_events(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    put_str("/t/w/k1", "a", 0);
    put_str("/t/w/k2", "b", 0);
    assert_int_equal(etcd_watch_start(cli, "/t/w/", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    assert_int_equal(r.snap_n, 2);
    assert_string_equal(r.snap_keys[0], "/t/w/k1");
    assert_string_equal(r.snap_keys[1], "/t/w/k2");

    put_str("/t/w/k3", "c", 0);
    put_str("/t/other", "x", 0);
    assert_int_equal(etcd_delete(cli, "/t/w/k1", false, NULL, &em), LB_OK);
    put_str("/t/w/k2", "b2", 0);
    assert_true(rec_wait(&r, 3, 1, 5000));
    lb_sleep_ms(200);
    etcd_watch_stop(&w);
    assert_null(w);
    assert_int_equal(r.n_ev, 3);
    assert_int_equal(r.ev[0].type, ETCD_EV_PUT);
    assert_string_equal(r.ev[0].key, "/t/w/k3");
    assert_string_equal(r.ev[0].value, "c");
    assert_int_equal(r.ev[1].type, ETCD_EV_DELETE);
    assert_string_equal(r.ev[1].key, "/t/w/k1");
    assert_int_equal(r.ev[2].type, ETCD_EV_PUT);
    assert_string_equal(r.ev[2].value, "b2");
    assert_true(r.ev[0].mod_revision > r.snap_rev);
    assert_true(r.ev[1].mod_revision == r.ev[0].mod_revision + 2);
    assert_true(r.ev[2].mod_revision == r.ev[1].mod_revision + 1);
    assert_int_equal(r.resets, 1);
    assert_int_equal(r.bad_revs, 0);
    assert_int_equal(r.ups, 1);
    assert_int_equal(r.downs, 0);
    pthread_mutex_destroy(&r.mu);
}

/* prev_kv: a DELETE carries what it deleted and a PUT the value it replaced;
 * a new key has none, and its version is 1. Without the option, no prev. */
static void test_watch_prev_kv(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    rec r, plain;
    rec_init(&r);
    rec_init(&plain);
    etcd_watch_cb cb = rec_cb(&r), pcb = rec_cb(&plain);
    cb.prev_kv = true;
    etcd_watch *w = NULL, *pw = NULL;
    assert_int_equal(etcd_watch_start(cli, "/t/wp/", &cb, &w, &em), LB_OK);
    assert_int_equal(etcd_watch_start(cli, "/t/wp/", &pcb, &pw, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    assert_true(rec_wait(&plain, 0, 1, 5000));
    put_str("/t/wp/k", "one", 0);
    put_str("/t/wp/k", "two", 0);
    assert_int_equal(etcd_delete(cli, "/t/wp/k", false, NULL, &em), LB_OK);
    assert_true(rec_wait(&r, 3, 1, 5000));
    assert_true(rec_wait(&plain, 3, 1, 5000));
    etcd_watch_stop(&w);
    etcd_watch_stop(&pw);
    assert_int_equal(r.n_ev, 3);
    assert_false(r.ev[0].has_prev);
    assert_int_equal(r.ev[0].version, 1);
    assert_true(r.ev[1].has_prev);
    assert_string_equal(r.ev[1].prev_value, "one");
    assert_int_equal(r.ev[1].version, 2);
    assert_int_equal(r.ev[2].type, ETCD_EV_DELETE);
    assert_true(r.ev[2].has_prev);
    assert_string_equal(r.ev[2].prev_value, "two");
    for (size_t i = 0; i < plain.n_ev; i++)
        assert_false(plain.ev[i].has_prev);
    pthread_mutex_destroy(&r.mu);
    pthread_mutex_destroy(&plain.mu);
}

/* A hung etcd (SIGSTOP) sends nothing: the idle check drops the stream. */
static void test_watch_idle(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    pid_t pid = etcd_pid();
    assert_true(pid > 0);
    etcd_set_watch_idle_ms(cli, 2000);
    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    assert_int_equal(etcd_watch_start(cli, "/t/wi/", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    lb_sleep_ms(300);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t t0 = lb_mono_ms();
    while (rec_downs(&r) == 0 && lb_mono_ms() - t0 < 12000)
        lb_sleep_ms(50);
    int64_t took = lb_mono_ms() - t0;
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(rec_downs(&r), 1);
    assert_in_range(took, 1000, 9000); /* curl averages speed over ~5 s */
    put_str("/t/wi/a", "1", 0);
    assert_true(rec_wait(&r, 1, 1, 10000));
    etcd_watch_stop(&w);
    etcd_set_watch_idle_ms(cli, 0);
    assert_string_equal(r.ev[0].key, "/t/wi/a");
    assert_int_equal(r.resets, 1);
    pthread_mutex_destroy(&r.mu);
}

static void test_watch_across_restart(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    const char *restart = getenv("LBCP_TEST_ETCD_RESTART");
    assert_non_null(restart);
    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    assert_int_equal(etcd_watch_start(cli, "/t/wr/", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    put_str("/t/wr/a", "1", 0);
    assert_true(rec_wait(&r, 1, 1, 5000));
    grants *g = calloc(1, sizeof *g);
    etcd_keeper *k = NULL;
    pthread_mutex_init(&g->mu, NULL);
    assert_int_equal(etcd_keeper_start(cli, 2, on_granted, g, &k, &em), LB_OK);

    assert_int_equal(system(restart), 0);
    /* the first call after the restart may find its pooled connection dead */
    lb_err rc = LB_EUNAVAIL;
    for (int i = 0; i < 20 && rc != LB_OK; i++) {
        rc = etcd_put(cli, "/t/wr/b", "2", 1, 0, NULL, &em);
        if (rc != LB_OK)
            lb_sleep_ms(250);
    }
    assert_int_equal(rc, LB_OK);
    assert_true(rec_wait(&r, 2, 1, 15000));
    lb_sleep_ms(300);
    etcd_watch_stop(&w);
    /* the keeper's key outlives the restart by more than a ttl */
    lb_sleep_ms(3000);
    int64_t lease = 0;
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, &lease), 1);
    assert_int_equal(lease, etcd_keeper_lease(k));
    etcd_keeper_stop(&k);
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, NULL), 0);
    pthread_mutex_destroy(&g->mu);
    free(g);
    assert_int_equal(r.n_ev, 2); /* no event twice */
    assert_string_equal(r.ev[0].key, "/t/wr/a");
    assert_string_equal(r.ev[1].key, "/t/wr/b");
    assert_string_equal(r.ev[1].value, "2");
    assert_int_equal(r.resets, 1); /* resumed, not reloaded */
    assert_true(r.downs >= 1);
    assert_true(r.ups >= 2);
    pthread_mutex_destroy(&r.mu);
}

static void test_watch_compacted(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    int64_t rev0 = 0, rev = 0;
    assert_int_equal(etcd_put(cli, "/t/wc/k1", "old", 3, 0, &rev0, &em), LB_OK);
    put_str("/t/wc/k2", "b", 0);
    put_str("/t/wc/k1", "new", 0);
    assert_int_equal(etcd_put(cli, "/t/wc-other", "x", 1, 0, &rev, &em), LB_OK);
    assert_int_equal(etcd_compact(cli, rev, &em), LB_OK);

    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    uint64_t reloads0 = counter("etcd_watch_reloads_total");
    assert_int_equal(etcd_watch_start_at(cli, "/t/wc/", rev0, &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    assert_int_equal(counter("etcd_watch_reloads_total"), reloads0 + 1);
    assert_int_equal(r.snap_n, 2);
    assert_true(r.snap_rev >= rev);
    put_str("/t/wc/k3", "c", 0);
    assert_true(rec_wait(&r, 1, 1, 5000));
    lb_sleep_ms(200);
    etcd_watch_stop(&w);
    assert_int_equal(r.n_ev, 1); /* nothing from before the compaction */
    assert_string_equal(r.ev[0].key, "/t/wc/k3");
    assert_int_equal(r.resets, 1);

    /* a range at a compacted revision says so */
    cJSON *resp = NULL, *req = etcd_jobj();
    etcd_jadd_range(req, "/t/wc/", true);
    etcd_jadd_i64(req, "revision", rev0);
    assert_int_equal(etcd_call(cli, "range", "/v3/kv/range", req, 1 << 20, &resp, &em),
                     LB_ECOMPACTED);
    assert_null(resp);
    cJSON_Delete(req);
    pthread_mutex_destroy(&r.mu);
}

static void test_keeper(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    grants g = {.n = 0};
    pthread_mutex_init(&g.mu, NULL);
    etcd_keeper *k = NULL;
    int64_t lease = 0, ttl = 0;
    assert_int_equal(etcd_keeper_start(cli, 2, on_granted, &g, &k, &em), LB_OK);
    assert_int_equal(grants_n(&g), 1);
    int64_t id = etcd_keeper_lease(k);
    assert_true(id != 0);
    assert_int_equal(id, g.last);
    /* three and a half ttls: the key stays */
    for (int i = 0; i < 14; i++) {
        assert_int_equal(get_str("/t/keeper/me", NULL, 0, &lease), 1);
        assert_int_equal(lease, id);
        lb_sleep_ms(500);
    }
    assert_int_equal(grants_n(&g), 1);

    /* lost behind its back: a new lease, the key put again */
    assert_int_equal(etcd_lease_revoke(cli, id, &em), LB_OK);
    int64_t t0 = lb_mono_ms();
    while (grants_n(&g) < 2 && lb_mono_ms() - t0 < 5000)
        lb_sleep_ms(50);
    assert_int_equal(grants_n(&g), 2);
    int64_t id2 = etcd_keeper_lease(k);
    assert_true(id2 != 0 && id2 != id);
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, &lease), 1);
    assert_int_equal(lease, id2);

    t0 = lb_mono_ms();
    etcd_keeper_stop(&k);
    assert_null(k);
    assert_true(lb_mono_ms() - t0 < 2000);
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, NULL), 0); /* at once, not at expiry */
    assert_int_equal(etcd_lease_keepalive(cli, id2, &ttl, &em), LB_ENOTFOUND);
    pthread_mutex_destroy(&g.mu);
}

/* etcd hung for twice the ttl: the keeper grants a new lease when it is back. */
static void test_keeper_etcd_hung(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    pid_t pid = etcd_pid();
    assert_true(pid > 0);
    etcd_client *quick = NULL; /* so a hung call gives up before the ttl */
    assert_int_equal(etcd_open(url, 1000, &quick, &em), LB_OK);
    grants g = {.n = 0};
    pthread_mutex_init(&g.mu, NULL);
    etcd_keeper *k = NULL;
    assert_int_equal(etcd_keeper_start(quick, 2, on_granted, &g, &k, &em), LB_OK);
    int64_t id = etcd_keeper_lease(k);
    lb_sleep_ms(1000);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    lb_sleep_ms(4000);
    assert_int_equal(kill(pid, SIGCONT), 0);
    int64_t t0 = lb_mono_ms();
    while (grants_n(&g) < 2 && lb_mono_ms() - t0 < 8000)
        lb_sleep_ms(50);
    assert_int_equal(grants_n(&g), 2);
    int64_t id2 = etcd_keeper_lease(k), lease = 0;
    assert_true(id2 != 0 && id2 != id);
    lb_sleep_ms(1000); /* the old lease's expiry must not take the key */
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, &lease), 1);
    assert_int_equal(lease, id2);
    etcd_keeper_stop(&k);
    assert_int_equal(get_str("/t/keeper/me", NULL, 0, NULL), 0);
    etcd_close(&quick);
    pthread_mutex_destroy(&g.mu);
}

/* A watch of [key, range_end) sees only those keys; etcd_watch_set_noput
 * turns etcd's NOPUT filter on (a reload, then DELETEs only, synced names the
 * tag) and off again (another reload, which brings what the filter hid). */
static void test_watch_range_noput(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    put_str("/t/wn/a1", "a", 0);
    put_str("/t/wn/b1", "b", 0);
    put_str("/t/wn/c1", "c", 0);
    assert_int_equal(etcd_watch_start_range(cli, "/t/wn/b", "/t/wn/c", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    assert_int_equal(r.snap_n, 1);
    assert_string_equal(r.snap_keys[0], "/t/wn/b1");
    assert_int_equal(etcd_watch_synced(w), 0);

    put_str("/t/wn/a2", "x", 0); /* outside the range, both sides */
    put_str("/t/wn/c2", "x", 0);
    put_str("/t/wn/b2", "b", 0);
    assert_true(rec_wait(&r, 1, 1, 5000));
    assert_string_equal(r.ev[0].key, "/t/wn/b2");

    etcd_watch_set_noput(w, 7);
    assert_true(rec_wait(&r, 1, 2, 5000)); /* the switch reloads */
    for (int i = 0; i < 50 && etcd_watch_synced(w) != 7; i++)
        lb_sleep_ms(20);
    assert_int_equal(etcd_watch_synced(w), 7);
    assert_int_equal(r.snap_n, 2);
    lb_sleep_ms(300); /* the filtered stream is created */
    put_str("/t/wn/b3", "hidden", 0);
    put_str("/t/wn/b1", "hidden too", 0);
    assert_int_equal(etcd_delete(cli, "/t/wn/b2", false, NULL, &em), LB_OK);
    assert_true(rec_wait(&r, 2, 2, 5000));
    lb_sleep_ms(200);
    pthread_mutex_lock(&r.mu);
    assert_int_equal(r.n_ev, 2);
    assert_int_equal(r.ev[1].type, ETCD_EV_DELETE);
    assert_string_equal(r.ev[1].key, "/t/wn/b2");
    pthread_mutex_unlock(&r.mu);

    etcd_watch_set_noput(w, 0);
    assert_true(rec_wait(&r, 2, 3, 5000)); /* the reload has the puts the filter hid */
    for (int i = 0; i < 50 && etcd_watch_synced(w) != 0; i++)
        lb_sleep_ms(20);
    assert_int_equal(etcd_watch_synced(w), 0);
    pthread_mutex_lock(&r.mu);
    assert_int_equal(r.snap_n, 2);
    assert_string_equal(r.snap_keys[0], "/t/wn/b1");
    assert_string_equal(r.snap_keys[1], "/t/wn/b3");
    pthread_mutex_unlock(&r.mu);
    put_str("/t/wn/b4", "seen", 0);
    assert_true(rec_wait(&r, 3, 3, 5000));
    etcd_watch_stop(&w);
    assert_int_equal(r.n_ev, 3);
    assert_string_equal(r.ev[2].key, "/t/wn/b4");
    assert_int_equal(r.bad_revs, 0);
    assert_int_equal(r.downs, 0);
    pthread_mutex_destroy(&r.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_events),     cmocka_unit_test(test_watch_prev_kv),
        cmocka_unit_test(test_watch_idle),       cmocka_unit_test(test_watch_across_restart),
        cmocka_unit_test(test_watch_compacted),  cmocka_unit_test(test_keeper),
        cmocka_unit_test(test_keeper_etcd_hung), cmocka_unit_test(test_watch_range_noput),
    };
    return etcd_test_run("etcd_watch", tests, sizeof tests / sizeof tests[0]);
}
