/* The shedding decision of a full slave (shed.c), without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shed.h"

#include <stdio.h>
#include <string.h>

/* An answer from the master carrying the zone's peers ("id:load:limit[:app]"). */
typedef struct answer {
    Lb__SelectionInstruction in;
    Lb__SlavePeer peers[4], *pp[4];
    char ep[4][64];
    char *apps[4][1];
} answer;

static void answer_init(answer *a, const char *const *spec, size_t n)
{
    lb__selection_instruction__init(&a->in);
    a->in.action = LB__ACTION__SERVE;
    a->in.slave_id = "self";
    for (size_t i = 0; i < n; i++) {
        static char ids[4][32], app[4][32];
        unsigned load = 0, limit = 0;
        app[i][0] = '\0';
        sscanf(spec[i], "%31[^:]:%u:%u:%31s", ids[i], &load, &limit, app[i]);
        lb__slave_peer__init(&a->peers[i]);
        snprintf(a->ep[i], sizeof a->ep[i], "tcp://127.0.0.1:%zu", 7000 + i);
        a->peers[i].slave_id = ids[i];
        a->peers[i].endpoint = a->ep[i];
        a->peers[i].load = load;
        a->peers[i].limit = limit;
        if (app[i][0] != '\0') {
            a->apps[i][0] = app[i];
            a->peers[i].apps = a->apps[i];
            a->peers[i].n_apps = 1;
        }
        a->pp[i] = &a->peers[i];
    }
    a->in.peers = a->pp;
    a->in.n_peers = n;
}

static Lb__ClientRequest request(const char *client, char **visited, size_t n_visited)
{
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    cr.client_id = (char *)client;
    cr.app = "echo";
    cr.visited = visited;
    cr.n_visited = n_visited;
    return cr;
}

static bool pick(slave_shed *sh, uint32_t load, const Lb__ClientRequest *cr, char *id)
{
    char ep[256];
    return slave_shed_pick(sh, "self", load, 10, cr, id, 128, ep, sizeof ep);
}

static void test_least_loaded_peer_with_room(void **state)
{
    (void)state;
    slave_shed *sh = slave_shed_new();
    answer a;
    const char *spec[] = {"self:12:10", "p1:8:10", "p2:3:10", "p3:0:0:web"};
    answer_init(&a, spec, 4);
    slave_shed_learn(sh, "self", NULL, &a.in);
    Lb__ClientRequest cr = request("new", NULL, 0);
    char id[128];
    assert_false(pick(sh, 9, &cr, id)); /* under the limit: never */
    assert_true(pick(sh, 10, &cr, id));
    assert_string_equal(id, "p2"); /* p3 is emptier but does not front echo */
    slave_shed_free(&sh);
    assert_null(sh);
}

static void test_visited_full_and_self_are_skipped(void **state)
{
    (void)state;
    slave_shed *sh = slave_shed_new();
    answer a;
    const char *spec[] = {"self:0:10", "p1:10:10", "p2:2:10"};
    answer_init(&a, spec, 3);
    slave_shed_learn(sh, "self", NULL, &a.in);
    char *visited[] = {"p2"};
    Lb__ClientRequest cr = request("new", visited, 1);
    char id[128];
    /* p2 was visited, p1 is full, self is self: to the master */
    assert_false(pick(sh, 20, &cr, id));
    slave_shed_free(&sh);
}

static void test_sticky_and_preselected_clients_are_not_shed(void **state)
{
    (void)state;
    slave_shed *sh = slave_shed_new();
    answer a;
    const char *spec[] = {"p1:0:10"};
    answer_init(&a, spec, 1);
    Lb__ClientRequest old = request("old", NULL, 0);
    slave_shed_learn(sh, "self", &old, &a.in); /* a SERVE by self: old is sticky here */
    char id[128];
    assert_false(pick(sh, 50, &old, id));
    Lb__Preselection pre = LB__PRESELECTION__INIT;
    Lb__ClientRequest sent = request("sent", NULL, 0);
    sent.preselected = &pre;
    assert_false(pick(sh, 50, &sent, id));
    Lb__ClientRequest fresh = request("fresh", NULL, 0);
    assert_true(pick(sh, 50, &fresh, id));
    assert_string_equal(id, "p1");
    slave_shed_free(&sh);
}

/* The set of clients served here is bounded: two generations of 32768; after
 * 70,000 newer clients the first one counts as new again, the last as sticky. */
static void test_served_set_is_bounded(void **state)
{
    (void)state;
    slave_shed *sh = slave_shed_new();
    answer a;
    const char *spec[] = {"p1:0:10"};
    answer_init(&a, spec, 1);
    char name[32];
    for (int i = 0; i < 70000; i++) {
        snprintf(name, sizeof name, "c%d", i);
        Lb__ClientRequest cr = request(name, NULL, 0);
        slave_shed_learn(sh, "self", &cr, &a.in);
    }
    char id[128];
    Lb__ClientRequest first = request("c0", NULL, 0), last = request("c69999", NULL, 0);
    assert_true(pick(sh, 50, &first, id));
    assert_false(pick(sh, 50, &last, id));
    slave_shed_free(&sh);
}

static void test_no_peers_known(void **state)
{
    (void)state;
    slave_shed *sh = slave_shed_new();
    Lb__ClientRequest cr = request("new", NULL, 0);
    char id[128];
    assert_false(pick(sh, 50, &cr, id));
    slave_shed_free(&sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_loaded_peer_with_room),
        cmocka_unit_test(test_visited_full_and_self_are_skipped),
        cmocka_unit_test(test_sticky_and_preselected_clients_are_not_shed),
        cmocka_unit_test(test_no_peers_known),
        cmocka_unit_test(test_served_set_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
