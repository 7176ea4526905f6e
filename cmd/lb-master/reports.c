/*
 * Load reports: agents and slaves PUB to every master's SUB socket, so
 * standbys stay as warm as the leader. One thread receives and applies them,
 * in batches (below). Agents that know every master's UDP endpoint and pair
 * key send datagrams instead (reports_udp.c), taken through the same batch.
 */
#include "reports.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>

/* Reports are taken in batches: after a batch the thread sleeps REPORT_BATCH_MS
 * while nng queues what arrives (up to NNG_OPT_RECVBUF), then drains the queue
 * without blocking. At 10,000 reports/s that is ~200 wake-ups a second instead
 * of one per report (a futex wake and a context switch each), and one view lock
 * per batch; a report waits at most REPORT_BATCH_MS longer, against a report
 * period of a second. */
#define REPORT_BATCH_MS 5

report_batch *report_batch_new(const char *transport, bool mac_only)
{
    report_batch *b = lb_xcalloc(1, sizeof *b);
    char name[96];
    b->mac_only = mac_only;
    b->from = transport;
    b->c_server = obs_counter_get("master_load_reports_total{from=\"agent\"}");
    b->c_slave = obs_counter_get("master_load_reports_total{from=\"slave\"}");
    b->c_bad = obs_counter_get("master_load_reports_errors_total");
    b->c_unknown = obs_counter_get("master_load_reports_unknown_server_total");
    snprintf(name, sizeof name, "master_agent_reports_total{transport=\"%s\"}", transport);
    b->c_transport = obs_counter_get(name);
    return b;
}

void report_batch_flush(master *m, report_batch *b)
{
    if (b->n == 0)
        return;
    size_t known = reg_on_server_loads(m->view, b->loads, b->n);
    obs_add(b->c_unknown, b->n - known); /* removed servers' last reports: not an error */
    b->n = 0;
}

void report_batch_take(master *m, report_batch *b, Lb__Envelope *env)
{
    obs_inc(b->c_server);
    obs_inc(b->c_transport);
    /* refused reports are counted and logged by master_report_admit */
    if (!master_report_admit(m, env->server_load, b->mac_only, b->from))
        return;
    /* protobuf-c allocates each sub-message on its own: the view takes this
     * one as it is, no copy */
    b->loads[b->n++] = env->server_load;
    env->server_load = NULL;
    env->body_case = LB__ENVELOPE__BODY__NOT_SET;
    if (b->n == REPORT_BATCH_MAX)
        report_batch_flush(m, b);
}

void report_batch_free(master *m, report_batch *b)
{
    report_batch_flush(m, b);
    free(b);
}

/* Decodes and admits one message from the SUB socket. */
static void report_take(master *m, report_batch *b, nng_msg *msg)
{
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    if (wire_decode(msg, m->cfg.max_message, &env, &em) != LB_OK) {
        obs_inc(b->c_bad);
        LOG_WARN("master", "bad load report", "err=\"%s\"", em.text);
    } else if (env->body_case == LB__ENVELOPE__BODY_SERVER_LOAD) {
        report_batch_take(m, b, env);
    } else if (env->body_case == LB__ENVELOPE__BODY_SLAVE_LOAD) {
        obs_inc(b->c_slave);
        if (master_slave_report_admit(m, env->slave_load))
            reg_on_slave_load(m->view, env->slave_load);
    } else {
        obs_inc(b->c_bad);
        LOG_WARN("master", "unexpected message on the report socket", "body=%d",
                 (int)env->body_case);
    }
    wire_free(&env);
    nng_msg_free(msg);
}

static void *reports_main(void *arg)
{
    master *m = arg;
    report_batch *b = report_batch_new("nng", false);
    while (!atomic_load(&m->stopping)) {
        nng_msg *msg = NULL;
        int rv = nng_recvmsg(m->sub, &msg, 0); /* blocks (500 ms) when idle */
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        report_take(m, b, msg);
        while (nng_recvmsg(m->sub, &msg, NNG_FLAG_NONBLOCK) == 0)
            report_take(m, b, msg);
        report_batch_flush(m, b);
        lb_sleep_ms(REPORT_BATCH_MS);
    }
    report_batch_free(m, b);
    return NULL;
}

int master_reports_start(master *m)
{
    int rv = nng_sub0_open(&m->sub);
    if (rv == 0)
        rv = nng_socket_set(m->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    if (rv == 0)
        rv = nng_socket_set_size(m->sub, NNG_OPT_RECVMAXSZ, WIRE_TRANSPORT_MAX);
    if (rv == 0) /* nng's deepest queue: a burst of 10,000 servers' reports is not dropped */
        rv = nng_socket_set_int(m->sub, NNG_OPT_RECVBUF, 8192);
    if (rv == 0)
        rv = nng_socket_set_ms(m->sub, NNG_OPT_RECVTIMEO, 500);
    if (rv != 0) {
        LOG_ERROR("master", "report socket", "endpoint=%s err=\"%s\"", m->cfg.report_listen,
                  nng_strerror(rv));
        return -1;
    }
    /* Only agents and slaves publish reports: this listener trusts their CAs. */
    lb_errmsg em = {{0}};
    const char *peer_ca = *m->cfg.tls.report_peer_ca ? m->cfg.tls.report_peer_ca : NULL;
    if (wire_listen(m->sub, m->cfg.report_listen, peer_ca, NULL, NULL, &em) != LB_OK) {
        LOG_ERROR("master", "report socket", "endpoint=%s err=\"%s\"", m->cfg.report_listen,
                  em.text);
        return -1;
    }
    if (pthread_create(&m->reporter, NULL, reports_main, m) != 0)
        return -1;
    return master_reports_udp_start(m);
}

void master_reports_stop(master *m)
{
    master_reports_udp_stop(m);
    nng_close(m->sub);
    pthread_join(m->reporter, NULL);
    master_report_auth_free();
}
