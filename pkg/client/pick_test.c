/* lb_pick: the seed's rule, p = (1 - users/total) / (live - 1) inside the best
 * group with an UP server, checked over 10,000 picks against the formula. */
#include "lb/client.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define PICKS 10000

static lb_server srv(const char *id, lb_status st, uint32_t users, const char *group, int rank)
{
    lb_server s;
    memset(&s, 0, sizeof s);
    snprintf(s.id, sizeof s.id, "%s", id);
    s.status = st;
    s.users = users;
    snprintf(s.group, sizeof s.group, "%s", group);
    s.group_rank = rank;
    return s;
}

/* Counts picks per index and checks each against expected probabilities
 * within 5 standard deviations, plus a chi-square bound. */
static void check_distribution(lb_server_list *l, const double *p)
{
    size_t count[16] = {0};
    uint64_t rng = 12345;
    for (int i = 0; i < PICKS; i++) {
        int k = lb_pick(l, &rng);
        assert_true(k >= 0 && (size_t)k < l->n);
        count[k]++;
    }
    double chi2 = 0;
    int dof = -1;
    for (size_t i = 0; i < l->n; i++) {
        double e = p[i] * PICKS;
        if (p[i] == 0) {
            assert_int_equal(count[i], 0);
            continue;
        }
        double sd = sqrt(PICKS * p[i] * (1 - p[i]));
        printf("  %s: %zu picks, expected %.0f\n", l->servers[i].id, count[i], e);
        assert_true(fabs((double)count[i] - e) < 5 * sd);
        chi2 += ((double)count[i] - e) * ((double)count[i] - e) / e;
        dof++;
    }
    assert_true(chi2 < 20.0); /* p < 0.0005 even at dof 3 */
}

static void test_weighted_by_users(void **state)
{
    (void)state;
    lb_server s[] = {srv("a", LB_STATUS_UP, 100, "A", 0), srv("b", LB_STATUS_UP, 300, "A", 0),
                     srv("c", LB_STATUS_UP, 600, "A", 0), srv("d", LB_STATUS_DOWN, 0, "A", 0)};
    lb_server_list l = {.n = 4, .servers = s};
    /* total 1000, live 3: (1 - u/1000) / 2 */
    double p[] = {0.45, 0.35, 0.20, 0};
    check_distribution(&l, p);
}

static void test_seed_example(void **state)
{
    (void)state;
    lb_server s[] = {srv("serverA", LB_STATUS_UP, 2963, "A", 0),
                     srv("serverB", LB_STATUS_DOWN, 0, "B", 1),
                     srv("serverN", LB_STATUS_UP, 2979, "A", 0)};
    lb_server_list l = {.n = 3, .servers = s};
    double pa = 1.0 - 2963.0 / 5942.0; /* 0.501 in the seed */
    double p[] = {pa, 0, 1 - pa};
    check_distribution(&l, p);
}

static void test_best_group_only_and_fallback(void **state)
{
    (void)state;
    lb_server s[] = {srv("p1", LB_STATUS_UP, 10, "primary", 0),
                     srv("s1", LB_STATUS_UP, 0, "secondary", 1),
                     srv("p2", LB_STATUS_UP, 30, "primary", 0)};
    lb_server_list l = {.n = 3, .servers = s};
    double p[] = {0.75, 0, 0.25};
    check_distribution(&l, p);
    s[0].status = LB_STATUS_DRAINING;
    s[2].status = LB_STATUS_DOWN;
    uint64_t rng = 7;
    assert_int_equal(lb_pick(&l, &rng), 1); /* the only UP server, in group B */
}

static void test_no_users_is_uniform_and_none_up_is_minus_one(void **state)
{
    (void)state;
    lb_server s[] = {srv("a", LB_STATUS_UP, 0, "A", 0), srv("b", LB_STATUS_UP, 0, "A", 0)};
    lb_server_list l = {.n = 2, .servers = s};
    double p[] = {0.5, 0.5};
    check_distribution(&l, p);
    s[0].status = s[1].status = LB_STATUS_DOWN;
    uint64_t rng = 1;
    assert_int_equal(lb_pick(&l, &rng), -1);
    lb_server_list empty = {0};
    assert_int_equal(lb_pick(&empty, &rng), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_by_users),
        cmocka_unit_test(test_seed_example),
        cmocka_unit_test(test_best_group_only_and_fallback),
        cmocka_unit_test(test_no_users_is_uniform_and_none_up_is_minus_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
