/* Unit tests of the view's compact records (reg_compact.c, reg_sessions.c) and
 * of the borrowed-key map they rely on: round trips byte for byte, empty and
 * long strings, hostile input, and no key left pointing into a freed record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/hmap.h"
#include "common/util.h"
#include "registry/reg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* msg packed, unpacked compact, packed again: the same bytes. */
static void assert_compact_round_trip(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *a = malloc(len + 1), *b = malloc(len + 1);
    protobuf_c_message_pack(msg, a);
    ProtobufCMessage *c = reg_unpack_compact(msg->descriptor, len, a);
    assert_non_null(c);
    assert_int_equal(protobuf_c_message_get_packed_size(c), len);
    protobuf_c_message_pack(c, b);
    assert_memory_equal(a, b, len);
    free(c); /* one block: ASan reports anything else left */
    free(a);
    free(b);
}

static void test_unpack_compact_server_info(void **state)
{
    (void)state;
    char *longs = malloc(70000);
    memset(longs, 'x', 69999);
    longs[69999] = '\0';
    Lb__Label l1 = LB__LABEL__INIT, l2 = LB__LABEL__INIT, *labels[] = {&l1, &l2};
    l1.key = "gpu";
    l1.value = "a100";
    l2.key = "";
    l2.value = longs;
    Lb__Resources res = LB__RESOURCES__INIT;
    res.cores = 8;
    res.cpu_load = 0.25;
    res.arch = "x86_64";
    res.os = "";
    Lb__AppInfo ai = LB__APP_INFO__INIT, *aip = &ai;
    ai.name = "echo";
    ai.link = "relay";
    ai.per_session = true;
    char *apps[] = {"echo", "", longs};
    char *via[] = {"zone-a"};
    unsigned char pk[32];
    memset(pk, 7, sizeof pk);
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = "s1";
    si.host = "";
    si.agent_endpoint = longs;
    si.zone = "zone-a";
    si.region = "r1";
    si.group = "g";
    si.group_rank = -3;
    si.capacity = 100;
    si.n_apps = 3;
    si.apps = apps;
    si.n_labels = 2;
    si.labels = labels;
    si.resources = &res;
    si.n_app_infos = 1;
    si.app_infos = &aip;
    si.n_reachable_via = 1;
    si.reachable_via = via;
    si.report_key.data = pk;
    si.report_key.len = sizeof pk;
    si.started_at = 1700000000000;
    assert_compact_round_trip(&si.base);
    /* the empty record too */
    Lb__ServerInfo empty = LB__SERVER_INFO__INIT;
    assert_compact_round_trip(&empty.base);
    /* the fields are where the caller reads them */
    size_t len = lb__server_info__get_packed_size(&si);
    uint8_t *buf = malloc(len);
    lb__server_info__pack(&si, buf);
    Lb__ServerInfo *c =
        (Lb__ServerInfo *)reg_unpack_compact(&lb__server_info__descriptor, len, buf);
    assert_non_null(c);
    assert_string_equal(c->apps[2], longs);
    assert_string_equal(c->labels[1]->value, longs);
    assert_string_equal(c->resources->arch, "x86_64");
    assert_int_equal(c->report_key.len, 32);
    assert_memory_equal(c->report_key.data, pk, 32);
    free(c);
    free(buf);
    free(longs);
}

/* Truncated records, a length prefix past the end, a wrong wire type, random
 * bytes: NULL, nothing leaked, nothing read out of bounds (ASan). */
static void test_unpack_compact_hostile(void **state)
{
    (void)state;
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = "server-with-a-name";
    si.zone = "zone-a";
    size_t len = lb__server_info__get_packed_size(&si);
    uint8_t *buf = malloc(len);
    lb__server_info__pack(&si, buf);
    for (size_t cut = 1; cut < len; cut++) {
        ProtobufCMessage *m = reg_unpack_compact(&lb__server_info__descriptor, cut, buf);
        if (m != NULL) /* a cut between fields is a valid shorter record */
            free(m);
    }
    free(buf);
    const uint8_t huge_len[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}; /* id: 4 GiB claimed */
    assert_null(reg_unpack_compact(&lb__server_info__descriptor, sizeof huge_len, huge_len));
    const uint8_t bad_type[] = {0x0b, 0x01}; /* field 1 as a start group */
    assert_null(reg_unpack_compact(&lb__server_info__descriptor, sizeof bad_type, bad_type));
    uint64_t rng = 0x2545f4914f6cdd1dull;
    uint8_t junk[64];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            junk[i] = (uint8_t)rng;
        }
        size_t n = 1 + (size_t)(rng % sizeof junk);
        ProtobufCMessage *m = reg_unpack_compact(&lb__server_info__descriptor, n, junk);
        free(m);
        m = reg_unpack_compact(&lb__server_load__descriptor, n, junk);
        free(m);
    }
}

/* The kept report is the report without its MACs and signature. */
static void test_load_compact(void **state)
{
    (void)state;
    unsigned char to[8] = {1}, mac[32] = {2}, sig[64] = {3};
    Lb__ReportMac rm = LB__REPORT_MAC__INIT, *rmp = &rm;
    rm.to = (ProtobufCBinaryData){sizeof to, to};
    rm.mac = (ProtobufCBinaryData){sizeof mac, mac};
    Lb__AppLoad a1 = LB__APP_LOAD__INIT, a2 = LB__APP_LOAD__INIT, *apps[] = {&a1, &a2};
    a1.app = "echo";
    a1.processes = 3;
    a1.ready = 2;
    a2.app = "";
    int32_t pids[] = {11, 12, -1};
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "s1";
    l.sessions = 5;
    l.n_apps = 2;
    l.apps = apps;
    l.cpu_load = 1.5;
    l.mem_total = 1ull << 40;
    l.n_exited_pids = 3;
    l.exited_pids = pids;
    l.seq = 99;
    l.at_ms = 1700000000000;
    l.launches = 7;
    l.n_macs = 1;
    l.macs = &rmp;
    l.sig = (ProtobufCBinaryData){sizeof sig, sig};
    Lb__ServerLoad *c = reg_load_compact(&l);
    assert_int_equal(c->n_macs, 0);
    assert_int_equal(c->sig.len, 0);
    l.n_macs = 0;
    l.macs = NULL;
    l.sig = (ProtobufCBinaryData){0, NULL};
    size_t len = lb__server_load__get_packed_size(&l);
    assert_int_equal(lb__server_load__get_packed_size(c), len);
    uint8_t *x = malloc(len), *y = malloc(len);
    lb__server_load__pack(&l, x);
    lb__server_load__pack(c, y);
    assert_memory_equal(x, y, len);
    assert_int_equal(c->apps[0]->ready, 2);
    assert_int_equal(c->exited_pids[2], -1);
    free(c);
    /* no apps, no pids */
    Lb__ServerLoad e = LB__SERVER_LOAD__INIT;
    c = reg_load_compact(&e);
    assert_null(c->apps);
    assert_null(c->exited_pids);
    assert_int_equal(lb__server_load__get_packed_size(c), 0);
    free(c);
    free(x);
    free(y);
}

/* A borrowed-key map takes the new key pointer on replace, so freeing the
 * record that held the old key leaves nothing pointing at it (ASan). */
static void test_hmap_borrowed(void **state)
{
    (void)state;
    hmap *m = hmap_new_borrowed();
    char *k1 = lb_strdup("key"), *k2 = lb_strdup("key");
    assert_null(hmap_put(m, k1, k1));
    assert_ptr_equal(hmap_put(m, k2, k2), k1);
    free(k1);
    assert_ptr_equal(hmap_get(m, "key"), k2);
    size_t it = 0;
    const char *key;
    void *v;
    assert_true(hmap_next(m, &it, &key, &v));
    assert_ptr_equal(key, k2);
    char many[64][16];
    for (int i = 0; i < 64; i++) { /* through a few grows */
        snprintf(many[i], sizeof many[i], "k%d", i);
        hmap_put(m, many[i], many[i]);
    }
    for (int i = 0; i < 64; i++)
        assert_ptr_equal(hmap_get(m, many[i]), many[i]);
    assert_ptr_equal(hmap_del(m, "key"), k2);
    free(k2);
    assert_int_equal(hmap_len(m), 64);
    hmap_free(&m, NULL);
}

static const char *rec_key(const void *v)
{
    return (const char *)v + 1; /* a record: one tag byte, then its key */
}

/* A keyed map reads keys from its values: lookups, replaces, deletes and
 * iteration through grows and tombstones find exactly the live records. */
static void test_hmap_keyed(void **state)
{
    (void)state;
    hmap *m = hmap_new_keyed(rec_key);
    enum { N = 3000 };
    char *recs[N];
    for (int i = 0; i < N; i++) {
        recs[i] = malloc(16);
        snprintf(recs[i], 16, "Ak%d", i);
        assert_null(hmap_put(m, recs[i] + 1, recs[i]));
    }
    for (int i = 0; i < N; i += 2) /* tombstones in every run */
        assert_ptr_equal(hmap_del(m, recs[i] + 1), recs[i]);
    assert_null(hmap_del(m, "k0"));
    char *repl = strdup("Bk1");
    assert_ptr_equal(hmap_put(m, repl + 1, repl), recs[1]);
    free(recs[1]);
    recs[1] = repl;
    for (int i = 0; i < N; i += 2) { /* put back over the tombstones, then grow */
        snprintf(recs[i], 16, "Ck%d", i);
        assert_null(hmap_put(m, recs[i] + 1, recs[i]));
    }
    assert_int_equal(hmap_len(m), N);
    for (int i = 0; i < N; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        assert_ptr_equal(hmap_get(m, k), recs[i]);
    }
    assert_null(hmap_get(m, "k3000"));
    size_t it = 0, seen = 0;
    const char *key;
    void *v;
    while (hmap_next(m, &it, &key, &v)) {
        assert_ptr_equal(key, (char *)v + 1);
        seen++;
    }
    assert_int_equal(seen, N);
    assert_ptr_equal(hmap_get(m, "k1"), repl);
    assert_int_equal(((char *)hmap_get(m, "k1"))[0], 'B');
    hmap_free(&m, free); /* frees every record once (ASan) */
}

static Lb__Session *session(const char *sid, const char *client, const char *app, const char *srv)
{
    Lb__ProcessId p = LB__PROCESS_ID__INIT;
    p.pid = 42;
    p.host = "127.0.0.1";
    p.server_id = (char *)srv;
    Lb__Session s = LB__SESSION__INIT;
    s.session_id = (char *)sid;
    s.client_id = (char *)client;
    s.app = (char *)app;
    s.server_id = (char *)srv;
    s.process = &p;
    s.expires_ms = 1;
    return reg_session_dup(&s);
}

/* Sessions and affinity share the session's block: replacing a session by
 * one of another client, deleting it, or a client id longer than the affinity
 * name buffer leaves every lookup right and nothing dangling (ASan). */
static void test_session_maps_borrow(void **state)
{
    (void)state;
    reg *r = reg_new("/lb/", 0);
    reg_lock(r);
    reg_session_put_locked(r, session("s1", "c1", "echo", "srv"));
    assert_string_equal(reg_affinity_locked(r, "c1", "echo"), "s1");
    /* same id, another client: c1's affinity must go with the old block */
    reg_session_put_locked(r, session("s1", "c2", "echo", "srv"));
    assert_null(reg_affinity_locked(r, "c1", "echo"));
    assert_string_equal(reg_affinity_locked(r, "c2", "echo"), "s1");
    /* a second session of c2: the affinity moves; deleting the first keeps it */
    reg_session_put_locked(r, session("s2", "c2", "echo", "other"));
    assert_string_equal(reg_affinity_locked(r, "c2", "echo"), "s2");
    reg_session_del_locked(r, "s1");
    assert_string_equal(reg_affinity_locked(r, "c2", "echo"), "s2");
    reg_session_buf sb;
    const Lb__Session *s2 = reg_session_locked(r, "s2", &sb);
    assert_string_equal(s2->process->server_id, "other");
    assert_string_equal(s2->server_id, "other");
    reg_session_del_locked(r, "s2");
    assert_null(reg_affinity_locked(r, "c2", "echo"));
    /* a client id past the name buffer: found by the same (truncated) name */
    char *longc = malloc(2000);
    memset(longc, 'c', 1999);
    longc[1999] = '\0';
    reg_session_put_locked(r, session("s3", longc, "echo", "srv"));
    assert_string_equal(reg_affinity_locked(r, longc, "echo"), "s3");
    assert_string_equal(reg_session_locked(r, "s3", &sb)->client_id, longc);
    /* empty strings */
    reg_session_put_locked(r, session("s4", "", "", ""));
    assert_string_equal(reg_affinity_locked(r, "", ""), "s4");
    assert_int_equal(reg_n_sessions_locked(r), 2);
    reg_unlock(r);
    reg_free(&r); /* frees the rest: ASan reports leaks */
    free(longc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unpack_compact_server_info),
        cmocka_unit_test(test_unpack_compact_hostile),
        cmocka_unit_test(test_load_compact),
        cmocka_unit_test(test_hmap_borrowed),
        cmocka_unit_test(test_hmap_keyed),
        cmocka_unit_test(test_session_maps_borrow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
