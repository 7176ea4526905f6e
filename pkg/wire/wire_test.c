/* Unit tests of pkg/wire's decoder on inputs the fuzz target found or guards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "wire/sid_digest.h"
#include "wire/wire.h"
#include "wire/wire_udp.h"

#include <netinet/in.h>

#include <string.h>

static lb_err decode_bytes(const void *p, size_t n, size_t max, Lb__Envelope **env, lb_errmsg *em)
{
    nng_msg *m = NULL;
    assert_int_equal(nng_msg_alloc(&m, n), 0);
    memcpy(nng_msg_body(m), p, n);
    lb_err rc = wire_decode(m, max, env, em);
    nng_msg_free(m);
    return rc;
}

/* protobuf-c takes a field numbered 0 (tag bytes 80 00) as an unknown field
 * and cannot decode what it packs from it: refused at the first hop. */
static void test_field_zero_refused(void **state)
{
    (void)state;
    static const unsigned char top[] = {0x80, 0x00, 0x00, 0x08, 0x01, 0xa2, 0x01, 0x00};
    /* the same inside a ClientRequest (field 10) that a slave would forward */
    static const unsigned char nested[] = {0x08, 0x01, 0x10, 0x07, 0x52, 0x05,
                                           0x0a, 0x01, 0x61, 0x80, 0x00};
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(decode_bytes(top, sizeof top, WIRE_DEFAULT_MAX, &env, &em), LB_EPROTO);
    assert_null(env);
    assert_non_null(strstr(em.text, "field numbered 0"));
    assert_int_equal(decode_bytes(nested, sizeof nested, WIRE_DEFAULT_MAX, &env, &em), LB_EPROTO);
    assert_null(env);
}

/* A valid envelope with an unknown (future) field decodes and survives packing. */
static void test_roundtrip_with_unknown_field(void **state)
{
    (void)state;
    static const unsigned char msg[] = {0x08, 0x01, 0x10, 0x07, 0x52, 0x06,
                                        0x0a, 0x01, 0x61, 0xf8, 0x07, 0x2a}; /* field 127 = 42 */
    Lb__Envelope *env = NULL, *again = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(decode_bytes(msg, sizeof msg, WIRE_DEFAULT_MAX, &env, &em), LB_OK);
    assert_int_equal(env->body_case, LB__ENVELOPE__BODY_CLIENT_REQUEST);
    assert_string_equal(env->client_request->client_id, "a");
    nng_msg *m = NULL;
    assert_int_equal(wire_encode(env, &m), LB_OK);
    assert_int_equal(wire_decode(m, WIRE_DEFAULT_MAX, &again, &em), LB_OK);
    assert_string_equal(again->client_request->client_id, "a");
    nng_msg_free(m);
    wire_free(&again);
    wire_free(&env);
}

static void test_limits_and_garbage(void **state)
{
    (void)state;
    static const unsigned char ok[] = {0x08, 0x01, 0x10, 0x07, 0x9a, 0x01, 0x00}; /* stats req */
    static const unsigned char garbage[] = {0xff, 0xff, 0xff};
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(decode_bytes(ok, sizeof ok, 4, &env, &em), LB_ETOOBIG);
    assert_int_equal(decode_bytes(garbage, sizeof garbage, 64, &env, &em), LB_EPROTO);
    assert_int_equal(decode_bytes(ok, sizeof ok, 64, &env, &em), LB_OK);
    assert_int_equal(env->body_case, LB__ENVELOPE__BODY_STATS_REQUEST);
    wire_free(&env);
}

/* report_udp_listen's default and agents' endpoints: the UDP twin of the nng
 * report endpoint; names, v4 and [v6] resolve; other shapes are refused. */
static void test_udp_endpoints(void **state)
{
    (void)state;
    char out[128];
    assert_true(wire_udp_twin("tls+tcp://127.0.0.1:7102", out, sizeof out));
    assert_string_equal(out, "udp://127.0.0.1:7102");
    assert_true(wire_udp_twin("tcp://[::1]:7102", out, sizeof out));
    assert_string_equal(out, "udp://[::1]:7102");
    assert_false(wire_udp_twin("ipc:///tmp/x", out, sizeof out));
    assert_string_equal(out, "");
    assert_false(wire_udp_twin("tcp://nohost", out, sizeof out));
    assert_false(wire_udp_twin("tcp://127.0.0.1:7102", out, 8)); /* does not fit */

    wire_udp_addr a;
    lb_errmsg em = {{0}};
    assert_int_equal(wire_udp_resolve("udp://127.0.0.1:7102", &a, &em), LB_OK);
    assert_int_equal(a.sa.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 7102);
    assert_int_equal(wire_udp_resolve("udp://[::1]:9", &a, &em), LB_OK);
    assert_int_equal(a.sa.ss_family, AF_INET6);
    assert_int_equal(wire_udp_resolve("tcp://127.0.0.1:7102", &a, &em), LB_EINVAL);
    assert_int_equal(wire_udp_resolve("udp://127.0.0.1:0", &a, &em), LB_EINVAL);
    assert_int_equal(wire_udp_resolve("udp://127.0.0.1:99999", &a, &em), LB_EINVAL);
    assert_int_equal(wire_udp_resolve("udp://127.0.0.1:", &a, &em), LB_EINVAL);
    assert_int_equal(wire_udp_resolve("udp://[::1:7", &a, &em), LB_EINVAL);
    assert_non_null(strstr(em.text, "udp://HOST:PORT"));
}

/* A datagram decodes like an nng message: same limits, same errors. */
static void test_decode_buf(void **state)
{
    (void)state;
    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff};
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(wire_decode_buf(garbage, sizeof garbage, WIRE_DEFAULT_MAX, &env, &em),
                     LB_EPROTO);
    assert_null(env);
    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    sl.server_id = "s1";
    sl.seq = 7;
    Lb__Envelope e = LB__ENVELOPE__INIT;
    e.version = WIRE_VERSION;
    e.body_case = LB__ENVELOPE__BODY_SERVER_LOAD;
    e.server_load = &sl;
    unsigned char buf[256];
    size_t n = lb__envelope__pack(&e, buf);
    assert_int_equal(wire_decode_buf(buf, n, n - 1, &env, &em), LB_ETOOBIG);
    assert_int_equal(wire_decode_buf(buf, n, WIRE_DEFAULT_MAX, &env, &em), LB_OK);
    assert_string_equal(env->server_load->server_id, "s1");
    assert_int_equal(env->server_load->seq, 7);
    wire_free(&env);
}

/* The session-set digest: the same set in any order gives the same digest,
 * one id more, less or changed gives another, and an id added twice is told
 * apart from none by the count. */
static void test_sid_digest(void **state)
{
    (void)state;
    const char *ids[] = {"s-1", "s-2", "stock-0123456789abcdef", "spare-x", ""};
    wire_sid_digest fwd = {0}, back = {0}, fewer = {0}, changed = {0}, twice = {0};
    for (size_t i = 0; i < 5; i++) {
        wire_sid_digest_add(&fwd, ids[i]);
        wire_sid_digest_add(&back, ids[4 - i]);
        if (i != 2)
            wire_sid_digest_add(&fewer, ids[i]);
        wire_sid_digest_add(&changed, i == 1 ? "s-3" : ids[i]);
    }
    assert_true(fwd.x == back.x && fwd.n == back.n && fwd.n == 5);
    assert_true(fewer.x != fwd.x && fewer.n == 4);
    assert_true(changed.x != fwd.x && changed.n == fwd.n);
    wire_sid_digest_add(&twice, "s-1");
    wire_sid_digest_add(&twice, "s-1");
    assert_true(twice.x == 0 && twice.n == 2); /* XOR cancels, the count does not */
    assert_true(wire_sid_hash("s-1") != wire_sid_hash("s-2"));
    assert_true(wire_sid_hash("a") != 0 && wire_sid_hash("") != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_zero_refused),
        cmocka_unit_test(test_roundtrip_with_unknown_field),
        cmocka_unit_test(test_limits_and_garbage),
        cmocka_unit_test(test_udp_endpoints),
        cmocka_unit_test(test_decode_buf),
        cmocka_unit_test(test_sid_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
