/* Shared helpers of the pkg/etcd tests, which run against a real etcd under
 * tests/with-etcd.sh (its URL in LBCP_TEST_ETCD). */
#ifndef LB_ETCD_TESTLIB_H
#define LB_ETCD_TESTLIB_H

#include "etcd/etcd.h"
#include "etcd/internal.h"
#include "common/util.h"
#include "obs/metrics.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

extern const char *url;  /* LBCP_TEST_ETCD */
extern etcd_client *cli; /* a client of it, 5 s timeout */

typedef struct rec_ev {
    etcd_event_type type;
    char key[128];
    char value[128];
    int64_t mod_revision;
    int64_t version;
    bool has_prev; /* etcd sent the key's previous kv (etcd_watch_cb.prev_kv) */
    char prev_value[128];
} rec_ev;

typedef struct rec {
    pthread_mutex_t mu;
    int resets;
    size_t snap_n;
    char snap_keys[16][128];
    int64_t snap_rev;
    rec_ev ev[256];
    size_t n_ev;
    int ups, downs;
    int bad_revs;
} rec;

typedef struct grants grants;

struct grants {
    pthread_mutex_t mu;
    int n;
    int64_t last;
};

void put_str(const char *key, const char *value, int64_t lease);
int get_str(const char *key, char *out, size_t cap, int64_t *lease);
uint64_t counter(const char *name);
int closed_port(void);
void rec_init(rec *r);
bool rec_wait(rec *r, size_t n_ev, int resets, int ms);
etcd_watch_cb rec_cb(rec *r);
pid_t etcd_pid(void);
int rec_downs(rec *r);
lb_err on_granted(void *arg, int64_t lease);
int grants_n(grants *g);

/* Opens cli on LBCP_TEST_ETCD, runs the group, closes it; returns the exit status. */
int etcd_test_run(const char *group, const struct CMUnitTest *tests, size_t n);

#endif
