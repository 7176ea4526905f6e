/*
 * Report datagrams: one unconnected UDP socket per address family, opened on
 * first use, sending with MSG_DONTWAIT so a full socket buffer or an
 * unreachable master never holds a report (or the report lock) up; such a
 * send is counted and the next report goes as usual. A datagram lost on the
 * way is a report lost: the next one, a report_interval later, replaces it
 * (the master marks a server down only after report_stale without any).
 *
 * Threads: called with report_lock held (report.c), which guards the sockets.
 */
#include "agent.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/wire_udp.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd4 = -1, fd6 = -1; /* report_lock */
static int64_t last_err_log_ms;

static int sock_for(int family)
{
    int *fd = family == AF_INET6 ? &fd6 : &fd4;
    if (*fd < 0)
        *fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    return *fd;
}

void report_udp_send(agent *a, const void *buf, size_t len, const wire_udp_addr *to, size_t n)
{
    (void)a;
    for (size_t i = 0; i < n; i++) {
        int fd = sock_for(to[i].sa.ss_family);
        if (fd >= 0 && sendto(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                              (const struct sockaddr *)&to[i].sa, to[i].len) == (ssize_t)len) {
            obs_count("agent_report_datagrams_total");
            continue;
        }
        obs_count("agent_report_datagram_errors_total");
        int64_t now = lb_mono_ms();
        if (last_err_log_ms == 0 || now - last_err_log_ms >= 60000) { /* once a minute */
            last_err_log_ms = now;
            LOG_WARN(AGENT_COMP, "report datagram not sent (counted; next line in a minute)",
                     "err=\"%s\"", strerror(errno));
        }
    }
}

void report_udp_close(agent *a)
{
    (void)a;
    if (fd4 >= 0)
        close(fd4);
    if (fd6 >= 0)
        close(fd6);
    fd4 = fd6 = -1;
}
