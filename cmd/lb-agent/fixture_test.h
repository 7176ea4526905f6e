/*
 * What agent_test, agent_life_test and agent_pool_test share: one agent
 * (main_agent, started by group_setup) publishing its load reports to a SUB
 * socket of the test (reports, at report_url), and waits on etcd, reports and
 * app processes. Tests run one at a time within a binary (cmocka), so these
 * globals need no lock.
 */
#ifndef LB_AGENT_FIXTURE_TEST_H
#define LB_AGENT_FIXTURE_TEST_H

#include "harness_test.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PREFIX "/agent_test/"

extern h_agent main_agent;  /* shared by the tests that do not stop it */
extern nng_socket reports;  /* SUB: main_agent publishes here */
extern char report_url[64]; /* its address */

int64_t now_ms(void);
/* Skips the test when no etcd was given (not run through tests/with-etcd.sh). */
void need_etcd(void);
/* Fails the test unless s contains want. */
void assert_has(const char *s, const char *want);
/* Waits until the server key is present (want) or absent; ms it took, or -1. */
int64_t wait_key(const char *id, bool want, int timeout_ms);
/* A load report of main_agent matching pred within timeout_ms; caller frees it. */
Lb__Envelope *wait_report(bool (*pred)(const Lb__ServerLoad *, const void *), const void *arg,
                          int timeout_ms);
bool has_sessions(const Lb__ServerLoad *sl, const void *arg); /* arg: uint32_t minimum */
bool has_exited(const Lb__ServerLoad *sl, const void *arg);   /* arg: int32_t pid */
/* Waits up to timeout_ms until no app process of this test remains; how many do. */
size_t wait_no_apps(int timeout_ms);
/* Launches app for session on a; its pid (or 0) and error text (may be NULL). */
bool launch_ok(h_agent *a, const char *app, const char *session, int32_t *pid, char *err,
               size_t cap);
/* Stops session's process on a; fails the test unless the agent says ok. */
void stop_session(h_agent *a, const char *session);
/* cmocka group fixtures: start / stop main_agent (checking no app outlives it). */
int group_setup(void **state);
int group_teardown(void **state);
/* Per test: kills whatever the test started, sparing main_agent. */
int test_teardown(void **state);

#endif
