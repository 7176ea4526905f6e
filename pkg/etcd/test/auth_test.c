/*
 * pkg/etcd against a real etcd with authentication enabled (tests/with-etcd.sh
 * starts a plain one; the first test enables auth through the gateway, so this
 * binary has its etcd to itself). TLS is covered by the integration test
 * test_etcd_auth.py; this one checks the token's life cycle where it can be
 * observed: permission errors naming the user, one login for many threads
 * refused at once, and a watch that reconnects with a dead token.
 */
#include "testlib.h"

#include <cjson/cJSON.h>

#define THREADS 16

static char pw_file[] = "/tmp/lbcp-auth-test-XXXXXX";

/* One gateway call as c; the answer is dropped. */
static lb_err call(etcd_client *c, const char *path, const char *json, lb_errmsg *em)
{
    cJSON *req = cJSON_Parse(json), *resp = NULL;
    assert_non_null(req);
    lb_err rc = etcd_call(c, "test", path, req, 1 << 20, &resp, em);
    cJSON_Delete(req);
    cJSON_Delete(resp);
    return rc;
}

static etcd_client *open_as(const char *user, const char *password, const char *password_file)
{
    etcd_security sec = {
        .user = (char *)user, .password = (char *)password, .password_file = (char *)password_file};
    etcd_client *c = NULL;
    lb_errmsg em = {{0}};
    if (etcd_open_secure(url, 5000, &sec, &c, &em) != LB_OK)
        fail_msg("etcd_open_secure: %s", em.text);
    return c;
}

/* Root, a user "u" whose role may read and write /t/ only, auth on. */
static void enable_auth(void)
{
    static const char *const steps[][2] = {
        {"/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"rootpw\"}"},
        {"/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}"},
        {"/v3/auth/user/add", "{\"name\":\"u\",\"password\":\"upw\"}"},
        {"/v3/auth/role/add", "{\"name\":\"r\"}"},
        {"/v3/auth/role/grant",
         "{\"name\":\"r\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"L3Qv\",\"range_end\":"
         "\"L3Qw\"}}"},
        {"/v3/auth/user/grant", "{\"user\":\"u\",\"role\":\"r\"}"},
        {"/v3/auth/enable", "{}"},
    };
    lb_errmsg em = {{0}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (call(cli, steps[i][0], steps[i][1], &em) != LB_OK)
            fail_msg("%s: %s", steps[i][0], em.text);
}

/* Changing a user's password drops every token etcd gave that user. */
static void invalidate_tokens_of_u(void)
{
    etcd_client *root = open_as("root", "rootpw", NULL);
    lb_errmsg em = {{0}};
    assert_int_equal(
        call(root, "/v3/auth/user/changepw", "{\"name\":\"u\",\"password\":\"upw\"}", &em), LB_OK);
    etcd_close(&root);
}

static void test_user_limited_to_its_keys(void **state)
{
    (void)state;
    enable_auth();
    int fd = mkstemp(pw_file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "upw\n", 4), 4);
    close(fd);
    etcd_client *cu = open_as("u", NULL, pw_file);
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_put(cu, "/t/a", "1", 1, 0, NULL, &em), LB_OK);
    assert_int_equal(etcd_put(cu, "/x/a", "1", 1, 0, NULL, &em), LB_EAUTH);
    assert_non_null(strstr(em.text, "permission denied"));
    assert_non_null(strstr(em.text, "as etcd user 'u'"));
    /* no credentials: told what to set */
    assert_int_equal(etcd_put(cli, "/t/a", "1", 1, 0, NULL, &em), LB_EAUTH);
    assert_non_null(strstr(em.text, "set etcd_user and etcd_password_file"));
    /* a wrong password: said, and no call goes out without a token */
    etcd_client *bad = open_as("u", "nope", NULL);
    assert_int_equal(etcd_put(bad, "/t/a", "1", 1, 0, NULL, &em), LB_EAUTH);
    assert_non_null(strstr(em.text, "etcd authentication as user 'u' failed"));
    assert_non_null(strstr(em.text, "invalid user ID or password"));
    etcd_close(&bad);
    etcd_close(&cu);
}

typedef struct putter {
    etcd_client *c;
    int i;
    lb_err rc;
    char msg[512];
} putter;

static void *put_one(void *arg)
{
    putter *p = arg;
    char key[32];
    lb_errmsg em = {{0}};
    snprintf(key, sizeof key, "/t/many/%d", p->i);
    p->rc = etcd_put(p->c, key, "v", 1, 0, NULL, &em);
    snprintf(p->msg, sizeof p->msg, "%s", em.text);
    return NULL;
}

/* 16 threads refused with the same dead token: all succeed, with one login. */
static void test_dead_token_one_login(void **state)
{
    (void)state;
    etcd_client *cu = open_as("u", "upw", NULL);
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_put(cu, "/t/b", "1", 1, 0, NULL, &em), LB_OK); /* logged in */
    invalidate_tokens_of_u();
    uint64_t logins = counter("etcd_auth_total{result=\"ok\"}");
    uint64_t renewals = counter("etcd_auth_token_renewals_total");
    putter p[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        p[i] = (putter){.c = cu, .i = i};
        assert_int_equal(pthread_create(&th[i], NULL, put_one, &p[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        if (p[i].rc != LB_OK)
            fail_msg("thread %d: %s", i, p[i].msg);
    }
    assert_int_equal(counter("etcd_auth_total{result=\"ok\"}") - logins, 1);
    assert_int_equal(counter("etcd_auth_token_renewals_total") - renewals, 1);
    etcd_close(&cu);
}

/* etcd checks a watch's token when the stream is created: after a restart the
 * watch reconnects with a dead token, is refused, renews and streams on. */
static void test_watch_reconnects_with_new_token(void **state)
{
    (void)state;
    const char *restart = getenv("LBCP_TEST_ETCD_RESTART");
    assert_non_null(restart);
    etcd_client *cu = open_as("u", "upw", NULL);
    rec r;
    rec_init(&r);
    etcd_watch_cb cb = rec_cb(&r);
    etcd_watch *w = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_watch_start(cu, "/t/w/", &cb, &w, &em), LB_OK);
    assert_true(rec_wait(&r, 0, 1, 5000));
    invalidate_tokens_of_u(); /* the open stream is not checked again... */
    uint64_t renewals = counter("etcd_auth_token_renewals_total");
    assert_int_equal(system(restart), 0); /* ...until it must reconnect */
    etcd_client *writer = open_as("root", "rootpw", NULL);
    lb_err rc = LB_EUNAVAIL;
    for (int i = 0; i < 50 && rc != LB_OK; i++) {
        rc = etcd_put(writer, "/t/w/after", "1", 1, 0, NULL, &em);
        if (rc != LB_OK)
            lb_sleep_ms(100);
    }
    assert_int_equal(rc, LB_OK);
    assert_true(rec_wait(&r, 1, 1, 10000));
    assert_string_equal(r.ev[0].key, "/t/w/after");
    assert_true(counter("etcd_auth_token_renewals_total") > renewals);
    etcd_watch_stop(&w);
    etcd_close(&writer);
    etcd_close(&cu);
    pthread_mutex_destroy(&r.mu);
    unlink(pw_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_limited_to_its_keys),
        cmocka_unit_test(test_dead_token_one_login),
        cmocka_unit_test(test_watch_reconnects_with_new_token),
    };
    return etcd_test_run("etcd_auth", tests, sizeof tests / sizeof tests[0]);
}
