/* Unit tests of pkg/etcd's answer parsing (no etcd needed): what the fuzz
 * target found, and the error mapping the auth refresh relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "etcd/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cJSON *parse_ok(const char *body)
{
    cJSON *j = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_parse_answer(body, strlen(body), 200, "u", &j, NULL, &em), LB_OK);
    return j;
}

/* A JSON number outside int64_t's range was cast (undefined behaviour). */
static void test_ji64_out_of_range(void **state)
{
    (void)state;
    cJSON *j = parse_ok("{\"a\":1e30,\"b\":-1e300,\"c\":9223372036854775808,\"d\":12,"
                        "\"e\":\"18446744073709551615\",\"f\":\"7\",\"g\":-5}");
    assert_int_equal(etcd_ji64(j, "a"), 0);
    assert_int_equal(etcd_ji64(j, "b"), 0);
    assert_int_equal(etcd_ji64(j, "c"), 0);
    assert_int_equal(etcd_ji64(j, "d"), 12);
    assert_int_equal(etcd_ji64(j, "e"), -1); /* a uint64 id keeps its bits */
    assert_int_equal(etcd_ji64(j, "f"), 7);
    assert_int_equal(etcd_ji64(j, "g"), -5);
    assert_int_equal(etcd_ji64(j, "absent"), 0);
    cJSON_Delete(j);
}

static void test_answer_errors(void **state)
{
    (void)state;
    cJSON *j = NULL;
    lb_errmsg em = {{0}};
    const char *tok = "{\"error\":\"etcdserver: invalid auth token\","
                      "\"message\":\"etcdserver: invalid auth token\",\"code\":16}";
    int code = 0;
    assert_int_equal(etcd_parse_answer(tok, strlen(tok), 401, "http://e/v3/kv/put", &j, &code, &em),
                     LB_EAUTH);
    assert_int_equal(code, 16);
    assert_true(etcd_auth_token_rejected(code, em.text));
    assert_null(j);
    assert_non_null(strstr(em.text, "invalid auth token (code 16, HTTP 401)"));
    assert_non_null(strstr(em.text, "http://e/v3/kv/put"));
    const char *gone = "{\"error\":\"x\",\"message\":\"etcdserver: requested lease not found\","
                       "\"code\":5}";
    assert_int_equal(etcd_parse_answer(gone, strlen(gone), 404, "u", &j, NULL, &em), LB_ENOTFOUND);
    assert_int_equal(etcd_parse_answer("<html>", 6, 502, "u", &j, NULL, &em), LB_EETCD);
    assert_non_null(strstr(em.text, "HTTP 502"));
    assert_int_equal(etcd_parse_answer("", 0, 503, "u", &j, NULL, &em), LB_EUNAVAIL);
    assert_int_equal(etcd_parse_answer("[1]", 3, 200, "u", &j, NULL, &em), LB_EPROTO);
    assert_null(j);
    assert_int_equal(etcd_parse_answer("{\"a\"", 4, 200, "u", &j, NULL, &em), LB_EPROTO);
}

/* Auth answers: what makes the client renew its token, and what it says
 * when etcd wants credentials it was not given. */
static void test_auth_answers(void **state)
{
    (void)state;
    cJSON *j = NULL;
    lb_errmsg em = {{0}};
    int code = 0;
    const char *anon = "{\"error\":\"etcdserver: user name is empty\","
                       "\"message\":\"etcdserver: user name is empty\",\"code\":3}";
    assert_int_equal(etcd_parse_answer(anon, strlen(anon), 400, "u", &j, &code, &em), LB_EAUTH);
    assert_int_equal(code, 3);
    assert_non_null(strstr(em.text, "set etcd_user and etcd_password_file"));
    assert_false(etcd_auth_token_rejected(code, em.text)); /* a new token would not help */
    const char *old = "{\"error\":\"x\",\"message\":\"etcdserver: revision of auth store is "
                      "old\",\"code\":3}";
    assert_int_equal(etcd_parse_answer(old, strlen(old), 400, "u", &j, &code, &em), LB_EAUTH);
    assert_true(etcd_auth_token_rejected(code, em.text));
    const char *denied = "{\"error\":\"x\",\"message\":\"etcdserver: permission denied\","
                         "\"code\":7}";
    assert_int_equal(etcd_parse_answer(denied, strlen(denied), 403, "u", &j, &code, &em), LB_EAUTH);
    assert_false(etcd_auth_token_rejected(code, em.text));
    assert_true(etcd_auth_token_rejected(0, "rpc error: code = Unauthenticated desc = etcdserver: "
                                            "invalid auth token"));
}

static void test_read_secret(void **state)
{
    (void)state;
    char path[] = "/tmp/lbcp-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char *pw = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(write(fd, "s3cret\r\nsecond line\n", 20), 20);
    assert_int_equal(etcd_read_secret(path, &pw, &em), LB_OK);
    assert_string_equal(pw, "s3cret");
    free(pw);
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(etcd_read_secret(path, &pw, &em), LB_ECONFIG);
    assert_null(pw);
    assert_non_null(strstr(em.text, "empty"));
    assert_non_null(strstr(em.text, path));
    close(fd);
    unlink(path);
    assert_int_equal(etcd_read_secret(path, &pw, &em), LB_ECONFIG);
    assert_non_null(strstr(em.text, "No such file"));
}

static void test_kvs_malformed(void **state)
{
    (void)state;
    cJSON *j = parse_ok("{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Yg==\",\"mod_revision\":\"3\"},"
                        "{\"key\":\"not base64!\"}]}");
    etcd_kvs out = {0};
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_kvs_append(&out, cJSON_GetObjectItem(j, "kvs"), &em), LB_EPROTO);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.kvs[0].key, "a");
    assert_int_equal(out.kvs[0].mod_revision, 3);
    etcd_kvs_free(&out);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ji64_out_of_range), cmocka_unit_test(test_answer_errors),
        cmocka_unit_test(test_kvs_malformed),     cmocka_unit_test(test_auth_answers),
        cmocka_unit_test(test_read_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
