#include "testlib.h"

const char *url;
etcd_client *cli;

void put_str(const char *key, const char *value, int64_t lease)
{
    lb_errmsg em = {{0}};
    assert_int_equal(etcd_put(cli, key, value, strlen(value), lease, NULL, &em), LB_OK);
}

/* 1 when key exists (value copied to out), 0 when not. */
int get_str(const char *key, char *out, size_t cap, int64_t *lease)
{
    lb_errmsg em = {{0}};
    etcd_kvs r = {0};
    assert_int_equal(etcd_get(cli, key, &r, &em), LB_OK);
    assert_true(r.n <= 1);
    int found = (int)r.n;
    if (found && out != NULL)
        snprintf(out, cap, "%s", (const char *)r.kvs[0].value);
    if (found && lease != NULL)
        *lease = r.kvs[0].lease;
    etcd_kvs_free(&r);
    return found;
}

uint64_t counter(const char *name)
{
    return obs_value(obs_counter_get(name));
}

/* A loopback port with nothing listening on it. */
int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

static void on_reset(void *arg, const etcd_kvs *snap)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    r->resets++;
    r->snap_n = snap->n;
    r->snap_rev = snap->revision;
    for (size_t i = 0; i < snap->n && i < 16; i++)
        snprintf(r->snap_keys[i], sizeof r->snap_keys[i], "%s", snap->kvs[i].key);
    pthread_mutex_unlock(&r->mu);
}

static void on_events(void *arg, const etcd_event *evs, size_t n, int64_t revision)
{
    rec *r = arg;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < n && r->n_ev < 256; i++) {
        rec_ev *e = &r->ev[r->n_ev++];
        e->type = evs[i].type;
        snprintf(e->key, sizeof e->key, "%s", evs[i].kv.key);
        snprintf(e->value, sizeof e->value, "%s", (const char *)evs[i].kv.value);
        e->mod_revision = evs[i].kv.mod_revision;
        e->version = evs[i].kv.version;
        e->has_prev = evs[i].prev.key != NULL;
        snprintf(e->prev_value, sizeof e->prev_value, "%s",
                 e->has_prev ? (const char *)evs[i].prev.value : "");
        r->bad_revs += e->mod_revision > revision; /* no cmocka asserts off the main thread */
    }
    pthread_mutex_unlock(&r->mu);
}

static void on_status(void *arg, bool up, lb_err err, const char *msg)
{
    rec *r = arg;
    (void)err;
    (void)msg;
    pthread_mutex_lock(&r->mu);
    if (up)
        r->ups++;
    else
        r->downs++;
    pthread_mutex_unlock(&r->mu);
}

/* Waits up to ms for at least n_ev events and resets resets; true if reached. */
bool rec_wait(rec *r, size_t n_ev, int resets, int ms)
{
    int64_t until = lb_mono_ms() + ms;
    bool ok = false;
    while (!ok && lb_mono_ms() < until) {
        pthread_mutex_lock(&r->mu);
        ok = r->n_ev >= n_ev && r->resets >= resets;
        pthread_mutex_unlock(&r->mu);
        if (!ok)
            lb_sleep_ms(20);
    }
    return ok;
}

etcd_watch_cb rec_cb(rec *r)
{
    etcd_watch_cb cb = {
        .on_reset = on_reset, .on_events = on_events, .on_status = on_status, .arg = r};
    return cb;
}

pid_t etcd_pid(void)
{
    char path[512];
    long pid = 0;
    const char *dir = getenv("LBCP_TEST_ETCD_DIR");
    snprintf(path, sizeof path, "%s/etcd.pid", dir != NULL ? dir : ".");
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid == 0 && getenv("LBCP_TEST_ETCD_PID") != NULL)
        pid = atol(getenv("LBCP_TEST_ETCD_PID"));
    return (pid_t)pid;
}

int rec_downs(rec *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->downs;
    pthread_mutex_unlock(&r->mu);
    return n;
}

lb_err on_granted(void *arg, int64_t lease)
{
    grants *g = arg;
    lb_errmsg em = {{0}};
    lb_err rc = etcd_put(cli, "/t/keeper/me", "here", 4, lease, NULL, &em);
    pthread_mutex_lock(&g->mu);
    g->n++;
    g->last = lease;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

int grants_n(grants *g)
{
    pthread_mutex_lock(&g->mu);
    int n = g->n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

int etcd_test_run(const char *group, const struct CMUnitTest *tests, size_t n)
{
    url = getenv("LBCP_TEST_ETCD");
    if (url == NULL) {
        fprintf(stderr, "LBCP_TEST_ETCD is not set: run under tests/with-etcd.sh\n");
        return 1;
    }
    lb_errmsg em = {{0}};
    if (etcd_open(url, 5000, &cli, &em) != LB_OK) {
        fprintf(stderr, "etcd_open: %s\n", em.text);
        return 1;
    }
    int failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    etcd_close(&cli);
    return failed;
}
