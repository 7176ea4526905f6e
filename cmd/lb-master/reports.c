/*
 * Load reports: agents and slaves PUB to every master's SUB socket, so
 * standbys stay as warm as the leader. One thread receives and applies them.
 */
#include "master.h"

#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <nng/protocol/pubsub0/sub.h>

static void *reports_main(void *arg)
{
    master *m = arg;
    obs_counter *c_server = obs_counter_get("master_load_reports_total{from=\"agent\"}");
    obs_counter *c_slave = obs_counter_get("master_load_reports_total{from=\"slave\"}");
    obs_counter *c_bad = obs_counter_get("master_load_reports_errors_total");
    while (!atomic_load(&m->stopping)) {
        nng_msg *msg = NULL;
        int rv = nng_recvmsg(m->sub, &msg, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        Lb__Envelope *env = NULL;
        lb_errmsg em = {{0}};
        if (wire_decode(msg, m->cfg.max_message, &env, &em) != LB_OK) {
            obs_inc(c_bad);
            LOG_WARN("master", "bad load report", "err=\"%s\"", em.text);
        } else if (env->body_case == LB__ENVELOPE__BODY_SERVER_LOAD) {
            obs_inc(c_server);
            /* refused reports are counted and logged by master_report_admit */
            if (master_report_admit(m, env->server_load) &&
                !reg_on_server_load(m->view, env->server_load))
                LOG_DEBUG("master", "report from unknown server", "server=%s",
                          env->server_load->server_id);
        } else if (env->body_case == LB__ENVELOPE__BODY_SLAVE_LOAD) {
            obs_inc(c_slave);
            if (master_slave_report_admit(m, env->slave_load))
                reg_on_slave_load(m->view, env->slave_load);
        } else {
            obs_inc(c_bad);
            LOG_WARN("master", "unexpected message on the report socket", "body=%d",
                     (int)env->body_case);
        }
        wire_free(&env);
        nng_msg_free(msg);
    }
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
    return 0;
}

void master_reports_stop(master *m)
{
    nng_close(m->sub);
    pthread_join(m->reporter, NULL);
    master_report_auth_free();
}
