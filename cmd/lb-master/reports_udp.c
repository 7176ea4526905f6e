/*
 * Agents' load reports as UDP datagrams (report_udp_listen), the StatsD /
 * Consul-gossip shape: one datagram is one encoded Envelope{server_load},
 * the same bytes agents publish over nng. Per report this costs the master a
 * share of one recvmmsg call and a decode instead of a TLS record read, an
 * nng pipe and a futex wake, and no per-agent connection (~77 KiB each).
 *
 * Anyone can send a datagram: a report is admitted only by a valid MAC for
 * this master (master_report_admit with mac_only), after a size check and a
 * decode; everything refused is counted under master_reports_refused_total
 * {reason} and logged at most once a minute (report_auth.c). Not encrypted:
 * reports carry load figures and pids (README "Security model").
 *
 * One thread: recvmmsg takes up to UDP_BATCH datagrams per call; after a
 * short batch it sleeps UDP_BATCH_MS while the kernel queues what arrives
 * (SO_RCVBUF large), so 10,000 reports/s are ~200 wake-ups and view locks a
 * second. Datagrams the kernel dropped because the queue was full are counted
 * from SO_RXQ_OVFL (master_udp_reports_dropped_total).
 */
#define _GNU_SOURCE /* recvmmsg, MSG_WAITFORONE */
#include "reports.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire.h"
#include "wire/wire_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define UDP_BATCH 64
#define UDP_BATCH_MS 5
#define UDP_RCVBUF (8 << 20)       /* ~8,000 small datagrams: seconds of reports at 10k servers */
#define UDP_BUF (WIRE_UDP_MAX + 1) /* one byte more tells an oversized datagram */
#define UDP_IDLE_MS 500            /* a blocking receive wakes this often to see stop */

typedef struct udp_rx {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage from[UDP_BATCH];
    unsigned char buf[UDP_BATCH][UDP_BUF];
    unsigned char ctl[UDP_BATCH][CMSG_SPACE(sizeof(uint32_t))];
    uint32_t ovfl; /* the kernel's drop count last seen (cumulative per socket) */
    obs_counter *c_dropped;
} udp_rx;

static void rx_reset(udp_rx *rx)
{
    for (int i = 0; i < UDP_BATCH; i++) {
        rx->iov[i] = (struct iovec){rx->buf[i], UDP_BUF};
        rx->msgs[i].msg_hdr = (struct msghdr){.msg_name = &rx->from[i],
                                              .msg_namelen = sizeof rx->from[i],
                                              .msg_iov = &rx->iov[i],
                                              .msg_iovlen = 1,
                                              .msg_control = rx->ctl[i],
                                              .msg_controllen = sizeof rx->ctl[i]};
        rx->msgs[i].msg_len = 0;
    }
}

/* The kernel's drop count rides on each datagram (SO_RXQ_OVFL): count the
 * growth since the last one seen. */
static void rx_drops(udp_rx *rx, struct msghdr *h)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(c), sizeof v);
            if (v != rx->ovfl) /* unsigned: wraps right */
                obs_add(rx->c_dropped, (uint32_t)(v - rx->ovfl));
            rx->ovfl = v;
        }
}

static void addr_str(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, sa->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

/* One datagram: size, decode, body, then the batch's admission (MAC only). */
static void take(master *m, report_batch *b, udp_rx *rx, int i)
{
    struct msghdr *h = &rx->msgs[i].msg_hdr;
    size_t len = rx->msgs[i].msg_len;
    char from[INET6_ADDRSTRLEN + 10];
    addr_str(&rx->from[i], from, sizeof from);
    rx_drops(rx, h);
    if ((h->msg_flags & MSG_TRUNC) != 0 || len > WIRE_UDP_MAX) {
        master_report_refuse("oversized", from, "over WIRE_UDP_MAX bytes");
        return;
    }
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    if (wire_decode_buf(rx->buf[i], len, WIRE_UDP_MAX, &env, &em) != LB_OK) {
        master_report_refuse("malformed", from, em.text);
        return;
    }
    if (env->body_case != LB__ENVELOPE__BODY_SERVER_LOAD) { /* slaves report over nng */
        master_report_refuse("malformed", from, "not a ServerLoad");
    } else {
        b->from = from;
        report_batch_take(m, b, env);
        b->from = "udp";
    }
    wire_free(&env);
}

static void *udp_main(void *arg)
{
    master *m = arg;
    report_batch *b = report_batch_new("udp", true);
    udp_rx *rx = lb_xcalloc(1, sizeof *rx);
    rx->c_dropped = obs_counter_get("master_udp_reports_dropped_total");
    while (!atomic_load(&m->udp_stop)) {
        /* MSG_WAITFORONE: block (SO_RCVTIMEO) for the first, then take what is queued */
        int flags = MSG_WAITFORONE;
        int n;
        do {
            rx_reset(rx);
            n = recvmmsg(m->udp_fd, rx->msgs, UDP_BATCH, flags, NULL);
            if (atomic_load(&m->udp_stop))
                break; /* after shutdown it returns empty entries from no one */
            for (int i = 0; i < n; i++)
                take(m, b, rx, i);
            flags = MSG_DONTWAIT;
        } while (n == UDP_BATCH && !atomic_load(&m->udp_stop));
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (!atomic_load(&m->udp_stop))
                LOG_ERROR("master", "report datagrams: receive failed", "err=\"%s\"",
                          strerror(errno));
            break;
        }
        report_batch_flush(m, b);
        if (n > 0)
            lb_sleep_ms(UDP_BATCH_MS);
    }
    report_batch_free(m, b);
    free(rx);
    return NULL;
}

/* The socket; with a defaulted report_udp_listen, a failure only turns UDP
 * off (not advertised: agents stay on nng), for a port taken by someone else
 * must not stop a master that was fine without it. */
static int udp_open(master *m)
{
    wire_udp_addr a;
    lb_errmsg em = {{0}};
    const char *why = NULL;
    int fd = -1, on = 1, size = UDP_RCVBUF;
    struct timeval idle = {0, UDP_IDLE_MS * 1000};
    if (wire_udp_resolve(m->cfg.report_udp_listen, &a, &em) != LB_OK)
        why = em.text;
    else if ((fd = socket(a.sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
             bind(fd, (struct sockaddr *)&a.sa, a.len) != 0)
        why = strerror(errno);
    if (why != NULL) {
        if (fd >= 0)
            close(fd);
        if (m->cfg.report_udp_explicit) {
            LOG_ERROR("master", "report_udp_listen", "endpoint=%s err=\"%s\"",
                      m->cfg.report_udp_listen, why);
            return -1;
        }
        LOG_WARN("master", "report datagrams off: agents report over nng", "endpoint=%s err=\"%s\"",
                 m->cfg.report_udp_listen, why);
        m->cfg.report_udp_advertise[0] = '\0';
        return 0;
    }
    /* FORCE passes rmem_max as root; else the kernel caps SO_RCVBUF there */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    socklen_t sl = sizeof size;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &sl);
    LOG_INFO("master", "report datagrams", "listen=%s advertise=%s rcvbuf=%d",
             m->cfg.report_udp_listen, m->cfg.report_udp_advertise, size);
    m->udp_fd = fd;
    return 0;
}

int master_reports_udp_open(master *m)
{
    m->udp_fd = -1;
    m->udp_running = false;
    atomic_store(&m->udp_stop, false);
    if (m->cfg.report_udp_listen[0] == '\0') {
        m->cfg.report_udp_advertise[0] = '\0';
        return 0;
    }
    return udp_open(m);
}

int master_reports_udp_start(master *m)
{
    if (m->udp_fd < 0)
        return 0;
    if (pthread_create(&m->udp_thread, NULL, udp_main, m) != 0)
        return -1;
    m->udp_running = true;
    return 0;
}

void master_reports_udp_stop(master *m)
{
    if (m->udp_fd < 0)
        return;
    atomic_store(&m->udp_stop, true);
    /* wakes a blocked receive at once, even on an unconnected UDP socket
     * (Linux inet_shutdown); SO_RCVTIMEO bounds it anyway */
    shutdown(m->udp_fd, SHUT_RDWR);
    if (m->udp_running)
        pthread_join(m->udp_thread, NULL);
    m->udp_running = false;
    close(m->udp_fd);
    m->udp_fd = -1;
}
