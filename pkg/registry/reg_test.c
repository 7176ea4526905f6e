/* Unit tests of the registry: etcd records in, selection snapshot and sessions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/reg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kvbuf {
    etcd_kv kv[16];
    size_t n;
} kvbuf;

static void add(kvbuf *b, const char *key, const ProtobufCMessage *msg)
{
    etcd_kv *kv = &b->kv[b->n++];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    kv->value_len = protobuf_c_message_get_packed_size(msg);
    kv->value = calloc(1, kv->value_len + 1);
    protobuf_c_message_pack(msg, kv->value);
}

static void add_raw(kvbuf *b, const char *key, const char *value)
{
    etcd_kv *kv = &b->kv[b->n++];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    kv->value = (unsigned char *)strdup(value);
    kv->value_len = strlen(value);
}

static void kvbuf_free(kvbuf *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->kv[i].key);
        free(b->kv[i].value);
    }
    b->n = 0;
}

static void add_server(kvbuf *b, const char *id, const char *zone, const char *group, int rank)
{
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    char *apps[] = {"echo"};
    si.id = (char *)id;
    si.zone = (char *)zone;
    si.region = "r1";
    si.group = (char *)group;
    si.group_rank = rank;
    si.capacity = 10;
    si.host = "127.0.0.1";
    si.agent_endpoint = "tcp://127.0.0.1:1";
    si.n_apps = 1;
    si.apps = apps;
    char key[128];
    snprintf(key, sizeof key, "/lb/servers/%s", id);
    add(b, key, &si.base);
}

static int find(const sel_snapshot *s, const char *id)
{
    for (size_t i = 0; i < sel_snapshot_n_servers(s); i++)
        if (strcmp(sel_snapshot_server(s, (int)i)->id, id) == 0)
            return (int)i;
    return -1;
}

/* One registry with two servers, an override, a group rank and a session. */
static reg *fixture(void)
{
    kvbuf b = {.n = 0};
    add_server(&b, "s1", "zone-a", "primary", 0);
    add_server(&b, "s2", "zone-b", "backup", 0);
    Lb__Override ov = LB__OVERRIDE__INIT;
    ov.server_id = "s1";
    ov.drain = true;
    add(&b, "/lb/overrides/s1", &ov.base);
    Lb__GroupInfo g = LB__GROUP_INFO__INIT;
    g.name = "backup";
    g.rank = 5;
    add(&b, "/lb/groups/backup", &g.base);
    Lb__Session se = LB__SESSION__INIT;
    se.session_id = "sid1";
    se.client_id = "alice";
    se.app = "echo";
    se.server_id = "s2";
    se.expires_ms = 2000;
    add(&b, "/lb/sessions/sid1", &se.base);
    add_raw(&b, "/lb/leader", "m1");
    etcd_kvs snap = {.kvs = b.kv, .n = b.n, .revision = 7};
    reg *r = reg_new("/lb/", 0);
    reg_reset(r, &snap);
    kvbuf_free(&b);
    return r;
}

static void test_reset_builds_snapshot(void **state)
{
    (void)state;
    reg *r = fixture();
    reg_lock(r);
    sel_snapshot *s = reg_snapshot_locked(r);
    assert_int_equal(sel_snapshot_n_servers(s), 2);
    const sel_server *s1 = sel_snapshot_server(s, find(s, "s1"));
    const sel_server *s2 = sel_snapshot_server(s, find(s, "s2"));
    assert_true(s1->drained);
    assert_false(s2->drained);
    assert_int_equal(s1->group_rank, 0);
    assert_int_equal(s2->group_rank, 5); /* groups/backup overrides the advertised rank */
    assert_string_equal(s2->zone, "zone-b");
    assert_int_equal(s1->n_apps, 1);
    reg_unlock(r);
    char leader[32];
    reg_leader(r, leader, sizeof leader);
    assert_string_equal(leader, "m1");
    reg_free(&r);
    assert_null(r);
}

static void test_load_and_pending(void **state)
{
    (void)state;
    reg *r = fixture();
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "s2";
    l.sessions = 4;
    l.cpu_load = 0.5;
    assert_true(reg_on_server_load(r, &l));
    l.server_id = "nope";
    assert_false(reg_on_server_load(r, &l));
    reg_lock(r);
    sel_snapshot *s = reg_snapshot_locked(r);
    int i = find(s, "s2");
    assert_int_equal(sel_snapshot_server(s, i)->sessions, 4);
    /* two sessions chosen; one launch fails, one answers with launch number 7 */
    reg_pending_begin_locked(r, "s2");
    reg_pending_begin_locked(r, "s2");
    assert_int_equal(sel_snapshot_server(s, i)->pending, 2);
    reg_pending_fail_locked(r, "s2");
    reg_pending_launched_locked(r, "s2", 7);
    assert_int_equal(reg_server_locked(r, "s2")->pending, 1);
    assert_int_equal(sel_snapshot_server(s, i)->pending, 1);
    reg_pending_fail_locked(r, "s2"); /* nothing in flight: no underflow */
    assert_int_equal(reg_server_locked(r, "s2")->pending, 1);
    reg_unlock(r);

    /* a report sampled before launch 7 keeps it pending; one after forgets it */
    l.server_id = "s2";
    l.sessions = 5;
    l.launches = 6;
    reg_on_server_load(r, &l);
    reg_lock(r);
    s = reg_snapshot_locked(r);
    i = find(s, "s2");
    assert_int_equal(sel_snapshot_server(s, i)->pending, 1);
    assert_int_equal(sel_snapshot_server(s, i)->sessions, 5);
    reg_unlock(r);
    l.launches = 7;
    reg_on_server_load(r, &l);
    reg_lock(r);
    assert_int_equal(sel_snapshot_server(s, i)->pending, 0);
    /* a launch already counted by the last report is not pending at all */
    reg_pending_begin_locked(r, "s2");
    reg_pending_launched_locked(r, "s2", 7);
    assert_int_equal(sel_snapshot_server(s, i)->pending, 0);
    reg_unlock(r);
    reg_free(&r);
}

static void test_sessions_and_affinity(void **state)
{
    (void)state;
    reg *r = fixture();
    reg_lock(r);
    assert_string_equal(reg_affinity_locked(r, "alice", "echo"), "sid1");
    assert_null(reg_affinity_locked(r, "alice", "other"));
    assert_string_equal(reg_session_locked(r, "sid1")->server_id, "s2");
    reg_unlock(r);

    /* an older copy echoed back by the watch does not replace a renewal */
    Lb__Session se = LB__SESSION__INIT;
    se.session_id = "sid1";
    se.client_id = "alice";
    se.app = "echo";
    se.server_id = "s1";
    se.expires_ms = 1000;
    kvbuf b = {.n = 0};
    add(&b, "/lb/sessions/sid1", &se.base);
    etcd_event ev = {.type = ETCD_EV_PUT, .kv = b.kv[0]};
    reg_apply(r, &ev, 1);
    reg_lock(r);
    assert_string_equal(reg_session_locked(r, "sid1")->server_id, "s2");
    reg_unlock(r);
    kvbuf_free(&b);

    /* delete: the session and its affinity go */
    etcd_event del = {.type = ETCD_EV_DELETE, .kv = {.key = "/lb/sessions/sid1"}};
    reg_apply(r, &del, 1);
    reg_lock(r);
    assert_null(reg_session_locked(r, "sid1"));
    assert_null(reg_affinity_locked(r, "alice", "echo"));
    assert_int_equal(reg_n_sessions_locked(r), 0);
    reg_unlock(r);
    reg_free(&r);
}

static void test_events_add_remove_servers_and_overrides(void **state)
{
    (void)state;
    reg *r = fixture();
    kvbuf b = {.n = 0};
    add_server(&b, "s3", "zone-a", "primary", 0);
    etcd_event ev = {.type = ETCD_EV_PUT, .kv = b.kv[0]};
    reg_apply(r, &ev, 1);
    etcd_event dels[2] = {{.type = ETCD_EV_DELETE, .kv = {.key = "/lb/servers/s2"}},
                          {.type = ETCD_EV_DELETE, .kv = {.key = "/lb/overrides/s1"}}};
    reg_apply(r, dels, 2);
    reg_lock(r);
    sel_snapshot *s = reg_snapshot_locked(r);
    assert_int_equal(sel_snapshot_n_servers(s), 2);
    assert_int_equal(find(s, "s2"), -1);
    assert_true(find(s, "s3") >= 0);
    assert_false(sel_snapshot_server(s, find(s, "s1"))->drained); /* override removed */
    reg_unlock(r);
    kvbuf_free(&b);
    reg_free(&r);
}

static void test_bad_records_are_skipped(void **state)
{
    (void)state;
    reg *r = fixture();
    kvbuf b = {.n = 0};
    add_raw(&b, "/lb/servers/junk", "\xff\xff\xff not a protobuf");
    etcd_event ev = {.type = ETCD_EV_PUT, .kv = b.kv[0]};
    reg_apply(r, &ev, 1);
    reg_lock(r);
    assert_int_equal(reg_n_servers_locked(r), 2);
    assert_null(reg_server_locked(r, "junk"));
    reg_unlock(r);
    kvbuf_free(&b);
    reg_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_builds_snapshot),
        cmocka_unit_test(test_load_and_pending),
        cmocka_unit_test(test_sessions_and_affinity),
        cmocka_unit_test(test_events_add_remove_servers_and_overrides),
        cmocka_unit_test(test_bad_records_are_skipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
