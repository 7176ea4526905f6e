/*
 * Connecting to an assignment: a TCP connect with a timeout (non-blocking
 * connect + poll, then back to blocking), and for relay links the one-time
 * token and '\n' written first.
 */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t len = sizeof soerr;
        rc = poll(&p, 1, timeout_ms) == 1 &&
                     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0
                 ? 0
                 : -1;
    }
    if (rc != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fl);
    return fd;
}

int lbc_tcp_connect(const char *host, uint16_t port, int timeout_ms, lb_err *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char svc[8];
    hints.ai_socktype = SOCK_STREAM;
    snprintf(svc, sizeof svc, "%u", (unsigned)port);
    int rc = getaddrinfo(host, svc, &hints, &res);
    if (rc != 0) {
        *err = lbc_fail(LB_EIO, "resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    errno = 0;
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, timeout_ms);
    freeaddrinfo(res);
    if (fd < 0)
        *err = lbc_fail(LB_EIO, "connect %s:%u: %s", host, (unsigned)port,
                        errno == 0 ? "timed out" : strerror(errno));
    return fd;
}

/* Splits "HOST:PORT" (IPv6 as [addr]:port). */
static bool split_endpoint(const char *ep, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(ep, ':');
    if (colon == NULL || colon == ep)
        return false;
    size_t hl = (size_t)(colon - ep);
    if (ep[0] == '[' && hl >= 2 && ep[hl - 1] == ']') {
        ep++;
        hl -= 2;
    }
    if (hl >= cap)
        return false;
    memcpy(host, ep, hl);
    host[hl] = '\0';
    int p = atoi(colon + 1);
    *port = (uint16_t)p;
    return p > 0 && p < 65536;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

int lb_assignment_connect(const lb_assignment *a, int timeout_ms, lb_err *err)
{
    lb_err dummy;
    err = err != NULL ? err : &dummy;
    *err = LB_OK;
    if (a == NULL) {
        *err = lbc_fail(LB_EINVAL, "lb_assignment_connect: no assignment");
        return -1;
    }
    timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    if (!a->relay)
        return lbc_tcp_connect(a->host, a->port, timeout_ms, err);
    char host[256];
    uint16_t port = 0;
    if (a->relay_endpoint[0] == '\0' || a->relay_token[0] == '\0' ||
        !split_endpoint(a->relay_endpoint, host, sizeof host, &port)) {
        *err =
            lbc_fail(LB_EUNAVAIL, "relay app but slave %s gave no relay endpoint/token", a->slave);
        return -1;
    }
    int fd = lbc_tcp_connect(host, port, timeout_ms, err);
    if (fd < 0)
        return -1;
    char line[80];
    int n = snprintf(line, sizeof line, "%s\n", a->relay_token);
    if (!send_all(fd, line, (size_t)n)) {
        close(fd);
        *err = lbc_fail(LB_EIO, "relay %s: sending the token failed", a->relay_endpoint);
        return -1;
    }
    return fd;
}
