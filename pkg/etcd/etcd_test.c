/*
 * pkg/etcd against a real etcd (tests/with-etcd.sh sets LBCP_TEST_ETCD and
 * LBCP_TEST_ETCD_RESTART). No mocks: every case talks to the gateway.
 */
#include "etcd/etcd.h"
#include "etcd/internal.h"

#include "common/util.h"
#include "obs/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static const char *url;
static etcd_client *cli;

/* ---- helpers ---- */

static void put_str(const char *key, const char *value, int64_t lease)
{
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_put(cli, key, value, strlen(value), lease, NULL, &em), LB_OK);
}

/* 1 when key exists (value copied to out), 0 when not. */
static int get_str(const char *key, char *out, size_t cap, int64_t *lease)
{
    lb_errmsg em = {{0}};
    etcd_kvs r = {0};
    assert_int_equal(etcd_get(cli, key, &r, &em), LB_OK);
    assert_true(r.n <= 1);
    int found = (int)r.n;
    if (found && out != NULL)
        snprintf(out, cap, "%s", (const char *)r.kvs[0].value);
    if (found && lease != NULL)
        *lease = r.kvs[0].lease;
    etcd_kvs_free(&r);
    return found;
}

static uint64_t counter(const char *name)
{
    return obs_value(obs_counter_get(name));
}

/* A loopback port with nothing listening on it. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* ---- a watch recorder ---- */

typedef struct rec_ev {
    etcd_event_type type;
    char key[128];
    char value[128];
    int64_t mod_revision;
} rec_ev;

typedef struct rec {
    pthread_mutex_t mu;
    int resets;
    size_t snap_n;
    char snap_keys[16][128];
    int64_t snap_rev;
    rec_ev ev[256];
    size_t n_ev;
    int ups, downs;
    int bad_revs;
} rec;

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

static void on_reset(void *arg, const etcd_kvs *snap)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->resets++;
    r->snap_n = snap->n;
    r->snap_rev = snap->revision;
    for (size_t i = 0; i < snap->n && i < 16; i++)
        snprintf(r->snap_keys[i], sizeof r->snap_keys[i], "%s", snap->kvs[i].key);
    pthread_mutex_unlock(&r->mu);
}

static void on_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n && r->n_ev < 256; i++) {
        rec_ev *e = &r->ev[r->n_ev++];
        e->type = evs[i].type;
        snprintf(e->key, sizeof e->key, "%s", evs[i].kv.key);
        snprintf(e->value, sizeof e->value, "%s", (const char *)evs[i].kv.value);
        e->mod_revision = evs[i].kv.mod_revision;
        r->bad_revs += e->mod_revision > revision; /* no cmocka asserts off the main thread */
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_status(void *arg, bool up, lb_err err, const char *msg)
{
    rec *r = arg;
    (void)err;
    (void)msg;
    pthread_mutex_lock(&r->mu);
    if (up)
        r->ups++;
    else
        r->downs++;
    pthread_mutex_unlock(&r->mu);
}

/* Waits up to ms for at least n_ev events and resets resets; true if reached. */
static bool rec_wait(rec *r, size_t n_ev, int resets, int ms)
{
    int64_t until = lb_mono_ms() + ms;
    bool ok = false;
    while (!ok && lb_mono_ms() < until) {
        pthread_mutex_lock(&r->mu);
        ok = r->n_ev >= n_ev && r->resets >= resets;
        pthread_mutex_unlock(&r->mu);
        if (!ok)
            lb_sleep_ms(20);
    }
    return ok;
}

static etcd_watch_cb rec_cb(rec *r)
{
    etcd_watch_cb cb = {
        .on_reset = on_reset, .on_events = on_events, .on_status = on_status, .arg = r};
    return cb;
}

/* ---- cases ---- */

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

static pid_t etcd_pid(void)
{
    char path[512];
    long pid = 0;
    const char *dir = getenv("LBCP_TEST_ETCD_DIR");
    snprintf(path, sizeof path, "%s/etcd.pid", dir != NULL ? dir : ".");
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid == 0 && getenv("LBCP_TEST_ETCD_PID") != NULL)
        pid = atol(getenv("LBCP_TEST_ETCD_PID"));
    return (pid_t)pid;
}

static int rec_downs(rec *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->downs;
    pthread_mutex_unlock(&r->mu);
    return n;
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

typedef struct grants grants;
struct grants {
    pthread_mutex_t mu;
    int n;
    int64_t last;
};
static lb_err on_granted(void *arg, int64_t lease);

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

static lb_err on_granted(void *arg, int64_t lease)
{
    grants *g = arg;
    lb_errmsg em = {{0}};
    lb_err rc = etcd_put(cli, "/t/keeper/me", "here", 4, lease, NULL, &em);
    pthread_mutex_lock(&g->mu);
    g->n++;
    g->last = lease;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static int grants_n(grants *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->n;
    pthread_mutex_unlock(&g->mu);
    return n;
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
    url = getenv("LBCP_TEST_ETCD");
    if (url == NULL) {
        fprintf(stderr, "LBCP_TEST_ETCD is not set: run under tests/with-etcd.sh\n");
        return 1;
    }
    lb_errmsg em = {{0}};
    if (etcd_open(url, 5000, &cli, &em) != LB_OK) {
        fprintf(stderr, "etcd_open: %s\n", em.text);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_and_prefix_end),
        cmocka_unit_test(test_put_get_binary),
        cmocka_unit_test(test_range_prefix_pages),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_txn),
        cmocka_unit_test(test_lease_expiry),
        cmocka_unit_test(test_lease_revoked),
        cmocka_unit_test(test_watch_events),
        cmocka_unit_test(test_watch_across_restart),
        cmocka_unit_test(test_watch_compacted),
        cmocka_unit_test(test_watch_idle),
        cmocka_unit_test(test_keeper),
        cmocka_unit_test(test_keeper_etcd_hung),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_threads),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    etcd_close(&cli);
    return failed;
}
