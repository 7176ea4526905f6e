/* Unit tests of the dashboard's event ring (events.c): the events `lbctl watch`
 * names from etcd changes compared with the view, session starts told once
 * (from the key's etcd version, not from the view, which the leader fills
 * first), ends named from the view or from what the master kept when it
 * deleted the session (the watch has no prev_kv), and the bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static etcd_event ev_put(const char *key, const ProtobufCMessage *msg)
{
    etcd_event e = {.type = ETCD_EV_PUT};
    e.kv.key = strdup(key);
    if (msg != NULL) {
        e.kv.value_len = protobuf_c_message_get_packed_size(msg);
        e.kv.value = calloc(1, e.kv.value_len + 1);
        protobuf_c_message_pack(msg, e.kv.value);
    } else {
        e.kv.value = (unsigned char *)strdup("");
    }
    return e;
}

static void ev_free(etcd_event *e)
{
    free(e->kv.key);
    free(e->kv.value);
}

/* The events after since, as "event subject detail" lines joined by '|'. */
static void dump(master_events *e, uint64_t since, char *out, size_t cap, double *last)
{
    cJSON *j = cJSON_CreateObject();
    events_json(e, since, j);
    out[0] = '\0';
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(j, "events"))
    {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s %s %s", n ? "|" : "",
                 cJSON_GetObjectItem(x, "event")->valuestring,
                 cJSON_GetObjectItem(x, "subject")->valuestring,
                 cJSON_GetObjectItem(x, "detail")->valuestring);
    }
    *last = cJSON_GetObjectItem(j, "last")->valuedouble;
    cJSON_Delete(j);
}

static void test_watch_events(void **state)
{
    (void)state;
    reg *view = reg_new("/lb/", 0);
    master_events *e = events_new();
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = "a1";
    Lb__Override ov = LB__OVERRIDE__INIT;
    ov.server_id = "a1";
    ov.drain = true;
    Lb__Session s = LB__SESSION__INIT;
    s.session_id = "s1";
    s.server_id = "a1";
    s.client_id = "c1";
    s.app = "echo";
    etcd_event evs[3] = {ev_put("/lb/servers/a1", &si.base), ev_put("/lb/overrides/a1", &ov.base),
                         ev_put("/lb/sessions/s1", &s.base)};
    evs[2].kv.version = 1; /* created */
    /* the leader's view has the session before etcd's event comes back */
    reg_lock(view);
    reg_session_put_locked(view, reg_session_dup(&s));
    reg_unlock(view);
    for (int i = 0; i < 3; i++) { /* as the watch does: note, then the view applies */
        events_note(e, view, &evs[i], 1);
        reg_apply(view, &evs[i], 1);
    }
    evs[2].kv.version = 2; /* a renewal: no second start */
    events_note(e, view, &evs[2], 1);
    /* the leader deletes it: it keeps the detail, then takes it out of its
     * view; the DELETE etcd sends back (no prev_kv) is named from what it kept */
    reg_lock(view);
    events_session_deleting(e, &s);
    reg_session_del_locked(view, "s1");
    reg_unlock(view);
    etcd_event del = {.type = ETCD_EV_DELETE};
    del.kv.key = "/lb/sessions/s1";
    events_note(e, view, &del, 1);
    reg_apply(view, &del, 1);
    /* another writer (lbctl, or the leader as a standby sees it) deletes s2,
     * which the view holds: the detail comes from the view */
    Lb__Session s2 = LB__SESSION__INIT;
    s2.session_id = "s2";
    s2.server_id = "a2";
    s2.client_id = "c2";
    s2.app = "web";
    reg_lock(view);
    reg_session_put_locked(view, reg_session_dup(&s2));
    reg_unlock(view);
    etcd_event del2 = {.type = ETCD_EV_DELETE};
    del2.kv.key = "/lb/sessions/s2";
    events_note(e, view, &del2, 1);
    reg_apply(view, &del2, 1);
    /* a delete of a session this master never had: an end, no detail */
    etcd_event bare = {.type = ETCD_EV_DELETE};
    bare.kv.key = "/lb/sessions/s3";
    events_note(e, view, &bare, 1);
    /* s1's detail was taken by its DELETE: a second one has none left */
    events_note(e, view, &del, 1);
    events_session_deleting(NULL, &s); /* no ring (no dashboard): a no-op */
    char out[1024];
    double last;
    dump(e, 0, out, sizeof out, &last);
    assert_string_equal(out, "server-up a1 |drain a1 |session-start s1 server=a1 client=c1 "
                             "app=echo|session-end s1 server=a1 client=c1 app=echo"
                             "|session-end s2 server=a2 client=c2 app=web"
                             "|session-end s3 server= client= app="
                             "|session-end s1 server= client= app=");
    assert_int_equal((int)last, 7);
    dump(e, 5, out, sizeof out, &last);
    assert_string_equal(out, "session-end s3 server= client= app="
                             "|session-end s1 server= client= app=");
    reg_lock(view);
    assert_int_equal((int)reg_n_sessions_locked(view), 0);
    reg_unlock(view);
    for (int i = 0; i < 3; i++)
        ev_free(&evs[i]);
    events_free(&e);
    assert_null(e);
    reg_free(&view);
}

/* The details kept for this master's deletes are bounded: past
 * EVENTS_PENDING_MAX the oldest goes (its end then has no detail), and every
 * DELETE that comes back takes its own. */
static void test_kept_details_are_bounded(void **state)
{
    (void)state;
    reg *view = reg_new("/lb/", 0);
    master_events *e = events_new();
    char sid[32], key[64];
    Lb__Session s = LB__SESSION__INIT;
    s.server_id = "a1";
    s.client_id = "c";
    s.app = "echo";
    s.session_id = sid;
    for (int i = 0; i < EVENTS_PENDING_MAX + 10; i++) {
        snprintf(sid, sizeof sid, "k%d", i);
        events_session_deleting(e, &s);
    }
    etcd_event del = {.type = ETCD_EV_DELETE};
    del.kv.key = key;
    int ends[3] = {0, 10, EVENTS_PENDING_MAX + 9}; /* dropped, the oldest kept, the newest */
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "/lb/sessions/k%d", ends[i]);
        events_note(e, view, &del, 1);
    }
    char out[512];
    double last;
    dump(e, 0, out, sizeof out, &last);
    char want[512];
    snprintf(want, sizeof want,
             "session-end k0 server= client= app=|session-end k10 server=a1 client=c app=echo"
             "|session-end k%d server=a1 client=c app=echo",
             EVENTS_PENDING_MAX + 9);
    assert_string_equal(out, want);
    events_free(&e);
    reg_free(&view);
}

static void test_ring_keeps_the_newest(void **state)
{
    (void)state;
    reg *view = reg_new("/lb/", 0);
    master_events *e = events_new();
    for (int i = 0; i < EVENTS_MAX + 100; i++) {
        char key[64];
        snprintf(key, sizeof key, "/lb/groups/g%d", i);
        Lb__GroupInfo g = LB__GROUP_INFO__INIT;
        g.name = key;
        g.rank = i;
        etcd_event ev = ev_put(key, &g.base);
        events_note(e, view, &ev, 1);
        ev_free(&ev);
    }
    cJSON *j = cJSON_CreateObject();
    events_json(e, 0, j);
    const cJSON *arr = cJSON_GetObjectItem(j, "events");
    assert_int_equal(cJSON_GetArraySize(arr), EVENTS_MAX);
    assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "seq")->valuedouble, 101);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(arr, EVENTS_MAX - 1), "detail")->valuestring,
        "rank=611");
    cJSON_Delete(j);
    j = cJSON_CreateObject();
    events_json(e, EVENTS_MAX + 100, j); /* nothing newer */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "events")), 0);
    cJSON_Delete(j);
    events_free(&e);
    reg_free(&view);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_events),
        cmocka_unit_test(test_kept_details_are_bounded),
        cmocka_unit_test(test_ring_keeps_the_newest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
