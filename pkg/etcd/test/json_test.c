/* Unit tests of pkg/etcd's answer parsing (no etcd needed): what the fuzz
 * target found, and the error mapping the auth refresh relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "etcd/internal.h"

#include <string.h>

static cJSON *parse_ok(const char *body)
{
    cJSON *j = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_parse_answer(body, strlen(body), 200, "u", &j, &em), LB_OK);
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
    assert_int_equal(etcd_parse_answer(tok, strlen(tok), 401, "http://e/v3/kv/put", &j, &em),
                     LB_EAUTH);
    assert_null(j);
    assert_non_null(strstr(em.text, "invalid auth token (code 16, HTTP 401)"));
    assert_non_null(strstr(em.text, "http://e/v3/kv/put"));
    const char *gone = "{\"error\":\"x\",\"message\":\"etcdserver: requested lease not found\","
                       "\"code\":5}";
    assert_int_equal(etcd_parse_answer(gone, strlen(gone), 404, "u", &j, &em), LB_ENOTFOUND);
    assert_int_equal(etcd_parse_answer("<html>", 6, 502, "u", &j, &em), LB_EETCD);
    assert_non_null(strstr(em.text, "HTTP 502"));
    assert_int_equal(etcd_parse_answer("", 0, 503, "u", &j, &em), LB_EUNAVAIL);
    assert_int_equal(etcd_parse_answer("[1]", 3, 200, "u", &j, &em), LB_EPROTO);
    assert_null(j);
    assert_int_equal(etcd_parse_answer("{\"a\"", 4, 200, "u", &j, &em), LB_EPROTO);
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
        cmocka_unit_test(test_ji64_out_of_range),
        cmocka_unit_test(test_answer_errors),
        cmocka_unit_test(test_kvs_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
