/* Unit tests of the registry: etcd records in, selection snapshot and sessions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
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

/* The view's session record decodes to a Session that packs to the same bytes
 * as the one it was made from; a Session or ProcessId with a new field must
 * be added to the record (else it would be lost): the counts guard that. */
static void assert_record_round_trip(const Lb__Session *in)
{
    uint8_t *a = malloc(lb__session__get_packed_size(in) + 1);
    size_t la = lb__session__pack(in, a);
    reg_vsession *v = reg_session_record(in);
    reg_session_buf buf;
    const Lb__Session *c = reg_session_decode(v, &buf);
    assert_ptr_not_equal(c->client_id, in->client_id);
    uint8_t *b = malloc(lb__session__get_packed_size(c) + 1);
    size_t lc = lb__session__pack(c, b);
    assert_int_equal(la, lc);
    assert_memory_equal(a, b, la);
    free(v); /* one block: ASan reports anything else left */
    free(a);
    free(b);
}

static void test_session_record(void **state)
{
    (void)state;
    assert_int_equal(lb__session__descriptor.n_fields, 8);
    assert_int_equal(lb__process_id__descriptor.n_fields, 5);
    Lb__ProcessId p = LB__PROCESS_ID__INIT;
    p.pid = 42;
    p.host = "10.0.0.7";
    p.port = 9001;
    p.started_at = 1234;
    p.server_id = "s1";
    Lb__Session in = LB__SESSION__INIT;
    in.session_id = "sid-1";
    in.client_id = "client-1";
    in.app = "echo";
    in.server_id = "s1";
    in.process = &p;
    in.slave_id = "slave-a";
    in.created_ms = 5;
    in.expires_ms = 6;
    assert_record_round_trip(&in);
    p.server_id = "s-other"; /* a process on another server than the session's */
    assert_record_round_trip(&in);
    p.pid = -7; /* hostile numbers are kept as they are */
    p.port = UINT32_MAX;
    p.started_at = INT64_MIN;
    in.expires_ms = INT64_MAX;
    assert_record_round_trip(&in);
    /* long strings (past the 512-byte affinity name) and empty ones */
    char *longs = malloc(70000);
    memset(longs, 'x', 69999);
    longs[69999] = '\0';
    in.client_id = longs;
    p.host = longs;
    in.app = "";
    in.slave_id = "";
    assert_record_round_trip(&in);
    /* NULL strings are kept as "" (proto3: the same message) */
    in.client_id = NULL;
    in.slave_id = NULL;
    p.host = NULL;
    p.server_id = NULL;
    assert_record_round_trip(&in);
    reg_vsession *v = reg_session_record(&in);
    reg_session_buf buf;
    const Lb__Session *c = reg_session_decode(v, &buf);
    assert_string_equal(c->client_id, "");
    assert_string_equal(c->process->host, "");
    assert_string_equal(c->process->server_id, "");
    free(v);
    in.process = NULL; /* no process yet */
    in.client_id = longs;
    assert_record_round_trip(&in);
    v = reg_session_record(&in);
    c = reg_session_decode(v, &buf);
    assert_null(c->process);
    assert_string_equal(c->client_id, longs);
    assert_string_equal(c->session_id, "sid-1");
    free(v);
    free(longs);

    /* the view takes, replaces and deletes them (ASan: no leak, no double free) */
    in.client_id = "client-1";
    in.app = "echo";
    in.process = &p;
    p.host = "10.0.0.7";
    reg *r = fixture();
    reg_lock(r);
    reg_session_put_locked(r, reg_session_dup(&in));
    in.expires_ms = 7;
    reg_session_put_locked(r, reg_session_dup(&in));
    const Lb__Session *got = reg_session_locked(r, "sid-1", &buf);
    assert_int_equal(got->expires_ms, 7);
    assert_string_equal(got->process->host, "10.0.0.7");
    assert_int_equal(got->process->pid, -7);
    Lb__Session *renewed = reg_session_dup(got); /* as a renewal does */
    renewed->expires_ms = 8;
    reg_session_put_locked(r, renewed);
    assert_int_equal(reg_session_locked(r, "sid-1", &buf)->expires_ms, 8);
    assert_string_equal(reg_affinity_locked(r, "client-1", "echo"), "sid-1");
    reg_session_del_locked(r, "sid-1");
    assert_null(reg_session_locked(r, "sid-1", &buf));
    reg_session_put_locked(r, reg_session_dup(&in)); /* freed with the view */
    reg_unlock(r);
    reg_free(&r);
}

/* A batch is applied under one lock and owned by the view: known servers get
 * their report, unknown ones are freed (ASan checks neither leaks nor doubles). */
static void test_load_batch(void **state)
{
    (void)state;
    reg *r = fixture();
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    Lb__ServerLoad *batch[3];
    const char *ids[3] = {"s2", "nope", "s1"};
    for (int k = 0; k < 3; k++) {
        l.server_id = (char *)ids[k];
        l.sessions = (uint32_t)(10 + k);
        uint8_t buf[256];
        size_t len = lb__server_load__pack(&l, buf);
        batch[k] = lb__server_load__unpack(NULL, len, buf);
        assert_non_null(batch[k]);
    }
    assert_int_equal(reg_on_server_loads(r, batch, 3), 2);
    for (int k = 0; k < 3; k++)
        assert_null(batch[k]); /* taken */
    reg_lock(r);
    sel_snapshot *s = reg_snapshot_locked(r);
    assert_int_equal(sel_snapshot_server(s, find(s, "s2"))->sessions, 10);
    assert_int_equal(sel_snapshot_server(s, find(s, "s1"))->sessions, 12);
    reg_unlock(r);
    reg_free(&r);
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
    reg_session_buf sb;
    assert_string_equal(reg_session_locked(r, "sid1", &sb)->server_id, "s2");
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
    assert_string_equal(reg_session_locked(r, "sid1", &sb)->server_id, "s2");
    reg_unlock(r);
    kvbuf_free(&b);

    /* delete: the session and its affinity go */
    etcd_event del = {.type = ETCD_EV_DELETE, .kv = {.key = "/lb/sessions/sid1"}};
    reg_apply(r, &del, 1);
    reg_lock(r);
    assert_null(reg_session_locked(r, "sid1", &sb));
    assert_null(reg_affinity_locked(r, "alice", "echo"));
    assert_int_equal(reg_n_sessions_locked(r), 0);
    reg_unlock(r);
    reg_free(&r);
}

/* No affinity record in etcd: the view derives it from the sessions, and
 * of two live sessions of one client and app it names the newer, whatever
 * order they arrive in (a load applies them in key order). */
static void test_affinity_names_the_newer_session(void **state)
{
    (void)state;
    reg *r = reg_new("/lb/", 5000);
    Lb__Session a = LB__SESSION__INIT, b = LB__SESSION__INIT;
    a.session_id = "zzz-old";
    b.session_id = "aaa-new";
    a.client_id = b.client_id = "carol";
    a.app = b.app = "echo";
    a.server_id = "s1";
    b.server_id = "s2";
    a.created_ms = 1000;
    b.created_ms = 2000;
    a.expires_ms = b.expires_ms = 1u << 30;
    reg_session_buf sb;
    for (int order = 0; order < 2; order++) {
        reg_lock(r);
        reg_session_put_locked(r, reg_session_dup(order == 0 ? &a : &b));
        reg_session_put_locked(r, reg_session_dup(order == 0 ? &b : &a));
        assert_string_equal(reg_affinity_locked(r, "carol", "echo"), "aaa-new");
        assert_string_equal(reg_session_locked(r, "zzz-old", &sb)->server_id, "s1");
        /* the older one goes: the affinity stays on the newer */
        reg_session_del_locked(r, "zzz-old");
        assert_string_equal(reg_affinity_locked(r, "carol", "echo"), "aaa-new");
        reg_session_del_locked(r, "aaa-new");
        assert_null(reg_affinity_locked(r, "carol", "echo"));
        reg_unlock(r);
    }
    reg_free(&r);
}

/* A standby's reload after a compaction: sessions the snapshot lacks were
 * deleted while its watch was away and go; the others stay, with their
 * affinity. reg_reset alone keeps them (a leader's queued sessions). */
static void test_reload_drops_sessions_etcd_no_longer_holds(void **state)
{
    (void)state;
    reg *r = reg_new("/lb/", 5000);
    Lb__Session a = LB__SESSION__INIT, b = LB__SESSION__INIT;
    a.session_id = "kept";
    b.session_id = "gone";
    a.client_id = "ann";
    b.client_id = "bob";
    a.app = b.app = "echo";
    a.server_id = b.server_id = "s1";
    a.expires_ms = b.expires_ms = 1u << 30;
    kvbuf kb = {.n = 0};
    add(&kb, "/lb/sessions/kept", &a.base);
    add(&kb, "/lb/sessions/gone", &b.base);
    etcd_kvs snap = {.kvs = kb.kv, .n = kb.n};
    reg_reset(r, &snap);
    reg_lock(r);
    assert_int_equal(reg_n_sessions_locked(r), 2);
    reg_unlock(r);
    snap.n = 1; /* "gone" was deleted meanwhile */
    reg_reset(r, &snap);
    reg_lock(r);
    assert_int_equal(reg_n_sessions_locked(r), 2); /* reset alone keeps it */
    reg_unlock(r);
    assert_int_equal(reg_drop_sessions_absent(r, &snap), 1);
    reg_session_buf sb;
    reg_lock(r);
    assert_null(reg_session_locked(r, "gone", &sb));
    assert_null(reg_affinity_locked(r, "bob", "echo"));
    assert_non_null(reg_session_locked(r, "kept", &sb));
    assert_string_equal(reg_affinity_locked(r, "ann", "echo"), "kept");
    reg_unlock(r);
    assert_int_equal(reg_drop_sessions_absent(r, &snap), 0);
    snap.n = 0;
    assert_int_equal(reg_drop_sessions_absent(r, &snap), 1);
    kvbuf_free(&kb);
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

/* Outlier ejection: a connection failure ejects at once, agent errors after
 * `consecutive`; the time doubles per ejection in a row up to the cap; at most
 * max_percent of the servers (but always one) are out; a lost connection is
 * DOWN; and the selection snapshot leaves both out. */
static void test_ejection_backoff_cap_and_conn(void **state)
{
    (void)state;
    reg *r = fixture();
    reg_eject_cfg ec = {.consecutive = 2, .base_ms = 1000, .max_ms = 3000, .max_percent = 50};
    reg_set_eject_cfg(r, &ec);
    char why[256];
    assert_false(reg_launch_failed(r, "s2", "exit status 1", false));
    assert_true(reg_launch_failed(r, "s2", "exit status 1", false));
    reg_lock(r);
    reg_server *s2 = reg_server_locked(r, "s2");
    assert_true(s2->ejected_until_ms != 0);
    reg_health_detail_locked(r, s2, why, sizeof why);
    assert_non_null(strstr(why, "2 launch failures: exit status 1"));
    assert_non_null(strstr(why, "s left"));
    sel_snapshot *snap = reg_snapshot_locked(r);
    assert_true(sel_snapshot_server(snap, s2->idx)->ejected);
    size_t ej = 0, down = 0;
    reg_health_counts_locked(r, &ej, &down);
    assert_int_equal(ej, 1);
    /* 1 of 2 servers is out: 50 % reached, s1 may not be ejected too */
    reg_unlock(r);
    assert_false(reg_launch_failed(r, "s1", "agent unreachable", true));
    /* the backoff doubles per ejection in a row, up to max_ms */
    int64_t want[] = {2000, 3000, 3000};
    for (size_t i = 0; i < 3; i++) {
        reg_lock(r);
        s2->ejected_until_ms = 1; /* time is up */
        reg_unlock(r);
        reg_check_stale(r);
        reg_lock(r);
        assert_int_equal(s2->ejected_until_ms, 0);
        reg_unlock(r);
        assert_true(reg_launch_failed(r, "s2", "launch timed out", true));
        reg_lock(r);
        int64_t left = s2->ejected_until_ms - lb_mono_ms();
        assert_true(left > want[i] - 500 && left <= want[i]);
        reg_unlock(r);
    }
    /* a success resets the backoff */
    reg_launch_ok(r, "s2");
    reg_lock(r);
    assert_int_equal(s2->ejections, 0);
    assert_int_equal(s2->consec_failures, 0);
    reg_unlock(r);
    /* the agent's connection closing makes the server down until it is back */
    reg_set_conn(r, "s1", false);
    reg_lock(r);
    snap = reg_snapshot_locked(r);
    reg_server *s1 = reg_server_locked(r, "s1");
    assert_false(sel_snapshot_server(snap, s1->idx)->up);
    reg_health_detail_locked(r, s1, why, sizeof why);
    assert_string_equal(why, "agent connection closed");
    reg_unlock(r);
    reg_set_conn(r, "s1", true);
    reg_lock(r);
    snap = reg_snapshot_locked(r);
    assert_true(sel_snapshot_server(snap, s1->idx)->up);
    reg_unlock(r);
    reg_free(&r);
}

/* A server that registered and never reported is down after report_stale. */
static void test_never_reported_is_down(void **state)
{
    (void)state;
    kvbuf b = {.n = 0};
    add_server(&b, "s1", "zone-a", "primary", 0);
    etcd_kvs snap = {.kvs = b.kv, .n = b.n, .revision = 7};
    reg *r = reg_new("/lb/", 50);
    reg_reset(r, &snap);
    kvbuf_free(&b);
    reg_check_stale(r);
    reg_lock(r);
    assert_false(reg_server_locked(r, "s1")->stale);
    reg_server_locked(r, "s1")->seen_at_ms -= 100;
    reg_unlock(r);
    reg_check_stale(r);
    reg_lock(r);
    reg_server *s1 = reg_server_locked(r, "s1");
    assert_true(s1->stale);
    char why[256];
    reg_health_detail_locked(r, s1, why, sizeof why);
    assert_non_null(strstr(why, "never reported"));
    assert_false(sel_snapshot_server(reg_snapshot_locked(r), s1->idx)->up);
    reg_unlock(r);
    reg_free(&r);
}

/* What a sticky repeat may trust without the agent (reg_live.c). */
static void test_live_processes(void **state)
{
    (void)state;
    reg *r = fixture();
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "s2";
    l.seq = 1;
    Lb__ProcessId p = LB__PROCESS_ID__INIT, q = LB__PROCESS_ID__INIT;
    p.pid = 100;
    p.started_at = 1000;
    q.pid = 200;
    q.started_at = 2000;
    Lb__Session se = LB__SESSION__INIT, sq = LB__SESSION__INIT;
    se.server_id = "s2";
    se.process = &p;
    sq.server_id = "s2";
    sq.process = &q;

    reg_lock(r); /* no report yet: nothing can be known alive */
    reg_live_mark_locked(r, "s2", &p);
    assert_false(reg_live_alive_locked(r, &se));
    reg_unlock(r);
    reg_on_server_load(r, &l);
    reg_lock(r);
    reg_live_mark_locked(r, "s2", &p);
    reg_live_mark_locked(r, "s2", &q);
    assert_true(reg_live_alive_locked(r, &se));
    Lb__ProcessId other = p; /* same pid, another start: not the same process */
    other.started_at = 999;
    Lb__Session so = se;
    so.process = &other;
    assert_false(reg_live_alive_locked(r, &so));
    reg_unlock(r);

    /* the next report lists pid 100 as exited: it is gone, 200 stays */
    int32_t exited[] = {100};
    l.seq = 2;
    l.exited_pids = exited;
    l.n_exited_pids = 1;
    reg_on_server_load(r, &l);
    reg_lock(r);
    assert_false(reg_live_alive_locked(r, &se));
    assert_true(reg_live_alive_locked(r, &sq));
    /* a launch reply naming a pid already reported exited is not believed */
    reg_live_mark_locked(r, "s2", &p);
    assert_false(reg_live_alive_locked(r, &se));
    reg_unlock(r);

    /* a report went missing (seq 3 never came): what it said is unknown */
    l.seq = 4;
    l.n_exited_pids = 0;
    reg_on_server_load(r, &l);
    reg_lock(r);
    assert_false(reg_live_alive_locked(r, &sq));
    reg_live_mark_locked(r, "s2", &q);
    assert_true(reg_live_alive_locked(r, &sq));
    reg_unlock(r);

    /* the agent connection closes: forgotten, and nothing is marked meanwhile */
    reg_set_conn(r, "s2", false);
    reg_lock(r);
    assert_false(reg_live_alive_locked(r, &sq));
    reg_live_mark_locked(r, "s2", &q);
    assert_false(reg_live_alive_locked(r, &sq));
    reg_unlock(r);
    reg_set_conn(r, "s2", true);

    /* a client that could not reach it */
    reg_lock(r);
    reg_live_mark_locked(r, "s2", &q);
    assert_true(reg_live_alive_locked(r, &sq));
    reg_live_forget_locked(r, "s2", 200);
    assert_false(reg_live_alive_locked(r, &sq));
    reg_unlock(r);
    reg_free(&r);
}

/* reg_reset_range replaces the families in its range only: a reload of the
 * keys below "sessions/" keeps the slaves (above) and every session. */
static void test_reset_range_keeps_other_families(void **state)
{
    (void)state;
    reg *r = fixture();
    kvbuf b = {.n = 0};
    Lb__SlaveInfo sl = LB__SLAVE_INFO__INIT;
    sl.id = "sa";
    add(&b, "/lb/slaves/sa", &sl.base);
    etcd_kvs hi = {.kvs = b.kv, .n = b.n, .revision = 8};
    reg_reset_range(r, &hi, "/lb/sessions0", "/lb0");
    kvbuf_free(&b);
    reg_lock(r);
    assert_non_null(reg_slave_locked(r, "sa"));
    assert_non_null(reg_server_locked(r, "s1")); /* below the range: kept */
    reg_unlock(r);

    b.n = 0;
    add_server(&b, "s3", "zone-a", "primary", 0);
    etcd_kvs lo = {.kvs = b.kv, .n = b.n, .revision = 9};
    reg_reset_range(r, &lo, "/lb/", "/lb/sessions/");
    kvbuf_free(&b);
    char leader[64];
    reg_leader(r, leader, sizeof leader);
    assert_string_equal(leader, ""); /* "leader" is in the range, not in its snapshot */
    reg_lock(r);
    assert_null(reg_server_locked(r, "s1"));
    assert_non_null(reg_server_locked(r, "s3"));
    assert_non_null(reg_slave_locked(r, "sa")); /* above it: kept */
    reg_session_buf sb;
    assert_non_null(reg_session_locked(r, "sid1", &sb));
    reg_unlock(r);
    reg_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_builds_snapshot),
        cmocka_unit_test(test_load_and_pending),
        cmocka_unit_test(test_load_batch),
        cmocka_unit_test(test_session_record),
        cmocka_unit_test(test_sessions_and_affinity),
        cmocka_unit_test(test_affinity_names_the_newer_session),
        cmocka_unit_test(test_reload_drops_sessions_etcd_no_longer_holds),
        cmocka_unit_test(test_events_add_remove_servers_and_overrides),
        cmocka_unit_test(test_bad_records_are_skipped),
        cmocka_unit_test(test_ejection_backoff_cap_and_conn),
        cmocka_unit_test(test_never_reported_is_down),
        cmocka_unit_test(test_live_processes),
        cmocka_unit_test(test_reset_range_keeps_other_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
