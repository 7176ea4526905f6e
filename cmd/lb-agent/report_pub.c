/*
 * The nng PUB report socket, dialed only while reports need it. When every
 * master of our report endpoints is known with a datagram endpoint
 * (report_keys.c), reports go as UDP datagrams and an idle TLS connection per
 * master would only cost each master ~50-80 KiB (README P9) per agent. So the
 * socket is dialed when a report must go over nng (a master not known on UDP,
 * a report over WIRE_UDP_MAX) and closed once only datagrams have been sent
 * for report_nng_idle (default 30 s: long enough that a master restarting or
 * a burst of oversized reports does not redial and pay a TLS handshake each
 * time, short enough that a fleet moving to UDP frees masters' memory within
 * half a minute). At start the endpoints are only checked (a bad one or a
 * bad TLS setting fails the start as before), not dialed: agent_start waits
 * a moment for the masters' records (report_keys_start), so an agent whose
 * masters are all known on UDP never connects to them.
 *
 * nng PUB drops what it sends while no pipe is up, so a report sent within
 * PUB_WAIT_MS of a dial first waits (bounded) for a pipe to every report
 * endpoint: the launch or exit report that made us dial is not lost. A master
 * that stays down costs that wait once per dial, not per report.
 *
 * Threads: pub_send, pub_idle and pub_close run with a->report_lock held
 * (report.c), so dial, send and close never race. The pipe callback runs on
 * nng's threads and only counts pipes of the current socket under pub_mu.
 */
#include "agent.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <nng/protocol/pubsub0/pub.h>
#include <pthread.h>
#include <time.h>

/* The longest a report waits for the connections of a fresh dial: a TLS
 * handshake on a loaded host takes well under it. */
#define PUB_WAIT_MS 1000

static pthread_mutex_t pub_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pub_cv;
static pthread_once_t pub_once = PTHREAD_ONCE_INIT;
static int pub_id;                 /* id of the open socket; 0: none (pub_mu) */
static int pub_pipes;              /* its connections up (pub_mu) */
static int64_t dialed_ms, last_ms; /* mono ms of the dial, of the last nng send (report_lock) */

static void pub_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pub_cv, &ca);
    pthread_condattr_destroy(&ca);
}

/* On nng's thread: events of a socket already closed are ignored. */
static void pub_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)arg;
    int id = nng_socket_id(nng_pipe_socket(p));
    pthread_mutex_lock(&pub_mu);
    if (id == pub_id) {
        pub_pipes += ev == NNG_PIPE_EV_ADD_POST ? 1 : -1;
        if (pub_pipes < 0)
            pub_pipes = 0;
        pthread_cond_broadcast(&pub_cv);
    }
    pthread_mutex_unlock(&pub_mu);
}

lb_err report_pub_check(agent *a, lb_errmsg *em)
{
    nng_socket s;
    int rv = nng_pub0_open(&s);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "pub socket: %s", nng_strerror(rv));
    lb_err err = LB_OK;
    for (size_t i = 0; err == LB_OK && i < a->cfg->n_report; i++) {
        lb_errmsg dm = {{0}};
        if (wire_dial_check(s, a->cfg->report[i], WIRE_ROLE_MASTER, NULL, &dm) != LB_OK)
            err = lb_fail(em, LB_EINVAL, "%s: report endpoint '%s': %s", a->cfg->file,
                          a->cfg->report[i], dm.text);
    }
    nng_close(s);
    return err;
}

void report_pub_close(agent *a)
{
    if (!a->pub_open)
        return;
    pthread_mutex_lock(&pub_mu);
    pub_id = 0;
    pub_pipes = 0;
    pthread_mutex_unlock(&pub_mu);
    nng_close(a->pub);
    a->pub_open = false;
}

lb_err report_pub_dial(agent *a, lb_errmsg *em)
{
    pthread_once(&pub_once, pub_init);
    if (a->pub_open)
        return LB_OK;
    int rv = nng_pub0_open(&a->pub);
    if (rv != 0)
        return lb_fail(em, wire_from_nng(rv), "pub socket: %s", nng_strerror(rv));
    nng_socket_set_ms(a->pub, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(a->pub, NNG_OPT_RECONNMAXT, 1000);
    pthread_mutex_lock(&pub_mu);
    pub_id = nng_socket_id(a->pub);
    pub_pipes = 0;
    pthread_mutex_unlock(&pub_mu);
    nng_pipe_notify(a->pub, NNG_PIPE_EV_ADD_POST, pub_pipe_cb, NULL);
    nng_pipe_notify(a->pub, NNG_PIPE_EV_REM_POST, pub_pipe_cb, NULL);
    a->pub_open = true;
    for (size_t i = 0; i < a->cfg->n_report; i++) {
        /* Non-blocking: a master that is down now is dialed again and again. */
        lb_errmsg dm = {{0}};
        if (wire_dial(a->pub, a->cfg->report[i], WIRE_ROLE_MASTER, NULL, &dm) != LB_OK) {
            report_pub_close(a);
            return lb_fail(em, LB_EINVAL, "%s: report endpoint '%s': %s", a->cfg->file,
                           a->cfg->report[i], dm.text);
        }
    }
    dialed_ms = last_ms = lb_mono_ms();
    obs_count("agent_report_nng_dials_total");
    return LB_OK;
}

/* Within PUB_WAIT_MS of the dial, until every report endpoint has a pipe. */
static void pub_wait_pipes(size_t want)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t left = dialed_ms + PUB_WAIT_MS - lb_mono_ms();
    if (left <= 0)
        return;
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pub_mu);
    while ((size_t)pub_pipes < want)
        if (pthread_cond_timedwait(&pub_cv, &pub_mu, &until) != 0)
            break;
    if ((size_t)pub_pipes < want)
        obs_count("agent_report_nng_wait_timeouts_total");
    pthread_mutex_unlock(&pub_mu);
}

void report_pub_send(agent *a, nng_msg *m)
{
    lb_errmsg em = {{0}};
    if (a->cfg->n_report == 0) { /* no master to report to: no socket either */
        nng_msg_free(m);
        return;
    }
    if (report_pub_dial(a, &em) != LB_OK) {
        /* checked at start; only a failing nng_pub0_open gets here */
        LOG_WARN(AGENT_COMP, "report not sent: nng report socket", "error=\"%s\"", em.text);
        obs_count("agent_reports_unsent_total");
        nng_msg_free(m);
        return;
    }
    pub_wait_pipes(a->cfg->n_report);
    if (nng_sendmsg(a->pub, m, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(m);
    last_ms = lb_mono_ms();
}

void report_pub_idle(agent *a)
{
    int64_t idle = a->cfg->report_nng_idle_ms;
    if (!a->pub_open || idle <= 0 || lb_mono_ms() - last_ms < idle)
        return;
    report_pub_close(a);
    obs_count("agent_report_nng_closes_total");
    LOG_INFO(AGENT_COMP, "nng report connection closed: reports go by datagram", "idle_ms=%lld",
             (long long)idle);
}
