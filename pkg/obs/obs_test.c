/* pkg/obs: histograms, exposition grouping, collectors, lock-free counter lookup, dropped
 * series, log escaping. */
#include "obs/hist.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/prom.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Counters looked up from many threads at once (the lookup takes no lock):
 * every thread gets the same counter for a name, no name is listed twice,
 * and no increment is lost. */
#define RACE_THREADS 8
#define RACE_NAMES 40
#define RACE_ROUNDS 200

static void *race_worker(void *arg)
{
    (void)arg;
    char name[64];
    for (int r = 0; r < RACE_ROUNDS; r++)
        for (int i = 0; i < RACE_NAMES; i++) {
            snprintf(name, sizeof name, "race_total{n=\"%d\"}", i);
            obs_count(name);
        }
    return NULL;
}

static void count_race(const char *name, uint64_t value, void *arg)
{
    int *seen = arg;
    int i;
    if (sscanf(name, "race_total{n=\"%d\"}", &i) == 1 && i >= 0 && i < RACE_NAMES) {
        seen[i]++;
        assert_int_equal(value, (uint64_t)RACE_THREADS * RACE_ROUNDS);
    }
}

static void test_counters_found_without_a_lock(void **state)
{
    (void)state;
    pthread_t th[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, race_worker, NULL), 0);
    for (int t = 0; t < RACE_THREADS; t++)
        pthread_join(th[t], NULL);
    int seen[RACE_NAMES] = {0};
    obs_counter_foreach(count_race, seen);
    for (int i = 0; i < RACE_NAMES; i++)
        assert_int_equal(seen[i], 1);
    assert_ptr_equal(obs_counter_get("race_total{n=\"3\"}"),
                     obs_counter_get("race_total{n=\"3\"}"));
    assert_ptr_not_equal(obs_counter_get("race_total{n=\"3\"}"),
                         obs_counter_get("race_total{n=\"4\"}"));
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    const double b[] = {0.1, 1};
    obs_hist *h = obs_hist_get("t_seconds{x=\"1\"}", b, 2);
    assert_ptr_equal(h, obs_hist_get("t_seconds{x=\"1\"}", b, 2));
    obs_observe(h, 0.05);
    obs_observe(h, 0.5);
    obs_observe(h, 5);
    char *text = obs_prom_render(NULL);
    assert_non_null(strstr(text, "# TYPE t_seconds histogram\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{x=\"1\",le=\"0.10000000000000001\"} 1\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{x=\"1\",le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "t_seconds_bucket{x=\"1\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "t_seconds_count{x=\"1\"} 3\n"));
    free(text);
}

static void test_families_grouped(void **state)
{
    (void)state;
    obs_count("fam_total{a=\"1\"}");
    obs_count("other_total");
    obs_count("fam_total{a=\"2\"}");
    obs_describe("fam_total", "A family.");
    obs_gauge_set(obs_gauge_get("g_now{s=\"x\"}"), 2.5);
    char *text = obs_prom_render(NULL);
    const char *f = strstr(text, "# HELP fam_total A family.\n# TYPE fam_total counter\n"
                                 "fam_total{a=\"1\"} 1\nfam_total{a=\"2\"} 1\n");
    assert_non_null(f);
    assert_non_null(strstr(text, "# TYPE g_now gauge\ng_now{s=\"x\"} 2.5\n"));
    assert_non_null(strstr(text, "# HELP other_total "));
    free(text);
}

/* Integer microseconds inside, seconds (the base unit promtool asks for) out. */
static void test_microseconds_exposed_in_seconds(void **state)
{
    (void)state;
    obs_add(obs_counter_get("w_microseconds_total{s=\"a\"}"), 1500000);
    obs_add(obs_counter_get("w_microseconds_total{s=\"b\"}"), 250);
    obs_add(obs_counter_get("plain_microseconds_total"), 2000000);
    obs_describe("w_seconds_total", "Time.");
    char *text = obs_prom_render(NULL);
    assert_non_null(
        strstr(text, "# HELP w_seconds_total Time.\n# TYPE w_seconds_total counter\n"
                     "w_seconds_total{s=\"a\"} 1.500000\nw_seconds_total{s=\"b\"} 0.000250\n"));
    assert_non_null(strstr(text, "\nplain_seconds_total 2\n"));
    assert_null(strstr(text, "microseconds"));
    free(text);
}

/* Fills each table past its size: the extra series are dropped and counted,
 * the process goes on, and the sink handed out takes writes. */
static void test_full_tables_drop_and_count(void **state)
{
    (void)state;
    uint64_t before = obs_dropped_series();
    char name[64];
    for (int i = 0; i <= OBS_MAX_COUNTERS; i++) {
        snprintf(name, sizeof name, "fill_total{i=\"%d\"}", i);
        obs_inc(obs_counter_get(name));
    }
    for (int i = 0; i <= OBS_MAX_GAUGES; i++) {
        snprintf(name, sizeof name, "fillg{i=\"%d\"}", i);
        obs_gauge_set(obs_gauge_get(name), 1);
    }
    for (int i = 0; i <= OBS_MAX_HISTS; i++) {
        snprintf(name, sizeof name, "fillh_seconds{i=\"%d\"}", i);
        obs_observe(obs_hist_get(name, NULL, 0), 0.1);
    }
    /* Tests before this one created a few series of each kind. */
    uint64_t dropped = obs_dropped_series() - before;
    assert_true(dropped >= 3);
    assert_non_null(obs_counter_get("one_more_total"));
    assert_int_equal(obs_dropped_series() - before, dropped + 1);
    char *text = obs_prom_render(NULL);
    assert_non_null(text);
    char want[128];
    snprintf(want, sizeof want, "\nobs_dropped_series_total %llu\n",
             (unsigned long long)obs_dropped_series());
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "one_more_total"));
    assert_null(strstr(text, "obs_dropped{")); /* the sinks are not exposed */
    free(text);
}

static void collect_many(obs_scrape *sc, void *arg)
{
    (void)arg;
    char id[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "srv-%05d", i);
        obs_scrape_gauge(sc, "coll_sessions", "server", id, i);
    }
    obs_scrape_gauge(sc, "coll_sessions", "server", "a\"b\\c\nd\xff", 7);
}

/* A collector's series come and go with its view; label values are escaped. */
static void test_collector_series(void **state)
{
    (void)state;
    uint64_t before = obs_dropped_series();
    obs_on_collect(collect_many, NULL);
    char *text = obs_prom_render(NULL);
    assert_non_null(text);
    assert_non_null(strstr(text,
                           "# TYPE coll_sessions gauge\ncoll_sessions{server=\"srv-00000\"} 0\n"
                           "coll_sessions{server=\"srv-00001\"} 1\n"));
    assert_non_null(strstr(text, "coll_sessions{server=\"srv-09999\"} 9999\n"));
    assert_non_null(strstr(text, "coll_sessions{server=\"a\\\"b\\\\c\\nd\xEF\xBF\xBD\"} 7\n"));
    size_t helps = 0;
    for (const char *p = text; (p = strstr(p, "# TYPE coll_sessions ")) != NULL; p++)
        helps++;
    assert_int_equal(helps, 1);
    assert_int_equal(obs_dropped_series(), before);
    free(text);
}

/* Runs one obs_log call with stderr captured; returns what it wrote after
 * the timestamp (caller frees). */
#define CAPTURE(out, call)                                                                         \
    do {                                                                                           \
        FILE *tmp_ = tmpfile();                                                                    \
        int saved_ = dup(2);                                                                       \
        dup2(fileno(tmp_), 2);                                                                     \
        call;                                                                                      \
        dup2(saved_, 2);                                                                           \
        close(saved_);                                                                             \
        long n_ = ftell(tmp_);                                                                     \
        rewind(tmp_);                                                                              \
        (out) = calloc(1, (size_t)n_ + 1);                                                         \
        size_t got_ = fread((out), 1, (size_t)n_, tmp_);                                           \
        (out)[got_] = '\0';                                                                        \
        fclose(tmp_);                                                                              \
    } while (0)

static const char *after_ts(const char *line)
{
    const char *p = strstr(line, " level=");
    assert_non_null(p);
    return p + 1;
}

static void test_log_values_escaped(void **state)
{
    (void)state;
    char *out;
    CAPTURE(out, LOG_INFO("master", "rejected", "client=%s app=%s reason=\"%s\"",
                          "x\n ts=x level=error msg=\"forged\"", "a b\"c", "bad\\ \x01\x1b\xff"));
    assert_string_equal(after_ts(out),
                        "level=info comp=master msg=\"rejected\" "
                        "client=\"x\\n ts=x level=error msg=\\\"forged\\\"\" app=\"a b\\\"c\" "
                        "reason=\"bad\\\\ \\u0001\\u001b\\xff\"\n");
    free(out);
    /* Plain values stay bare; empty ones are ""; valid UTF-8 is kept; numbers. */
    CAPTURE(out,
            LOG_WARN("slave", "m\nsg", "id=%s e=%s u=%s n=%d z=%zu ll=%llu f=%.2f w=%*d p=%.3s",
                     "plain-1", "", "\xc3\xa9t\xc3\xa9", -3, (size_t)7, (unsigned long long)1 << 40,
                     0.5, 4, 9, "abcdef"));
    assert_string_equal(after_ts(out), "level=warn comp=slave msg=\"m\\nsg\" id=plain-1 e=\"\" "
                                       "u=\"\xc3\xa9t\xc3\xa9\" n=-3 z=7 ll=1099511627776 f=0.50 "
                                       "w=   9 p=abc\n");
    free(out);
    /* An overlong or surrogate sequence is not UTF-8. */
    CAPTURE(out, LOG_INFO("x", "m", "a=%s", "\xc0\xaf\xed\xa0\x80"));
    assert_non_null(strstr(out, "a=\"\\xc0\\xaf\\xed\\xa0\\x80\"\n"));
    free(out);
}

static void test_log_long_line_cut_and_closed(void **state)
{
    (void)state;
    char *big = malloc(10000);
    memset(big, 'q', 9999);
    big[9999] = '\0';
    big[5000] = ' ';
    char *out;
    CAPTURE(out, LOG_INFO("x", "m", "a=%s b=1", big));
    size_t n = strlen(out);
    assert_true(n <= 4096);
    assert_ptr_equal(strchr(out, '\n'), out + n - 1);
    assert_non_null(strstr(out, "qq\" truncated=1\n"));
    free(out);
    CAPTURE(out, LOG_INFO("x", "m", "a=\"%s\" b=1", big));
    assert_non_null(strstr(out, "qq\" truncated=1\n"));
    free(out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test(test_families_grouped),
        cmocka_unit_test(test_collector_series),
        cmocka_unit_test(test_log_values_escaped),
        cmocka_unit_test(test_log_long_line_cut_and_closed),
        cmocka_unit_test(test_microseconds_exposed_in_seconds),
        cmocka_unit_test(test_counters_found_without_a_lock),
        cmocka_unit_test(test_full_tables_drop_and_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
