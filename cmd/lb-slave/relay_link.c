/*
 * One relay link: read the token line, connect to the session's process
 * (non-blocking), then splice both ways through two bounded buffers. A side
 * is not read while the buffer towards the other side is full, so a slow
 * reader slows the writer instead of growing memory. EOF on one side becomes
 * shutdown(SHUT_WR) on the other once its buffer is drained; the link ends
 * when both directions are shut or on any error (process died, reset).
 */
#include "relay_int.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static obs_counter *link_counter(int which)
{
    static obs_counter *c[2];
    if (c[which] == NULL)
        c[which] = obs_counter_get(which == 0 ? "slave_relay_bytes_total{dir=\"up\"}"
                                              : "slave_relay_bytes_total{dir=\"down\"}");
    return c[which];
}

rlink *link_new(int cfd)
{
    rlink *l = lb_xcalloc(1, sizeof *l);
    l->cfd = cfd;
    l->pfd = -1;
    l->ci = l->pi = -1;
    l->state = LINK_TOKEN;
    l->deadline_ms = lb_mono_ms() + RELAY_HANDSHAKE_MS;
    return l;
}

void link_free(rlink *l)
{
    if (l == NULL)
        return;
    if (l->state == LINK_SPLICE)
        LOG_INFO("relay", "link closed", "session=%s up=%llu down=%llu", l->session,
                 (unsigned long long)l->n_up, (unsigned long long)l->n_down);
    if (l->cfd >= 0)
        close(l->cfd);
    if (l->pfd >= 0)
        close(l->pfd);
    free(l->up.data);
    free(l->down.data);
    free(l);
}

short link_cevents(const rlink *l)
{
    if (l->state == LINK_TOKEN)
        return POLLIN;
    if (l->state != LINK_SPLICE)
        return 0;
    short ev = 0;
    if (!l->c_eof && l->up.len < RELAY_BUF)
        ev |= POLLIN;
    if (l->down.off < l->down.len)
        ev |= POLLOUT;
    return ev;
}

short link_pevents(const rlink *l)
{
    if (l->state == LINK_CONNECTING)
        return POLLOUT;
    if (l->state != LINK_SPLICE)
        return 0;
    short ev = 0;
    if (!l->p_eof && l->down.len < RELAY_BUF)
        ev |= POLLIN;
    if (l->up.off < l->up.len)
        ev |= POLLOUT;
    return ev;
}

/* Starts a non-blocking connect to host:port into l->pfd. */
static bool link_connect(rlink *l, const char *host, uint32_t port)
{
    struct addrinfo hints = {0}, *res = NULL;
    char svc[16];
    hints.ai_socktype = SOCK_STREAM;
    snprintf(svc, sizeof svc, "%u", port);
    if (getaddrinfo(host, svc, &hints, &res) != 0 || res == NULL)
        return false;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && (connect(fd, res->ai_addr, res->ai_addrlen) == 0 || errno == EINPROGRESS);
    freeaddrinfo(res);
    if (!ok) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    l->pfd = fd;
    return true;
}

/* Reads the token line; on a valid token starts the process connect. Bytes
 * after '\n' are the client's first payload. */
static void link_token(relay *r, rlink *l)
{
    ssize_t n = read(l->cfd, l->line + l->line_len, sizeof l->line - 1 - l->line_len);
    if (n <= 0) {
        l->dead = n == 0 || (errno != EAGAIN && errno != EINTR);
        return;
    }
    l->line_len += (size_t)n;
    char *nl = memchr(l->line, '\n', l->line_len);
    if (nl == NULL) {
        l->dead = l->line_len >= sizeof l->line - 1; /* no token is this long */
        return;
    }
    *nl = '\0';
    if (nl > l->line && nl[-1] == '\r')
        nl[-1] = '\0';
    rtoken t;
    if (!relay_take_token(r, l->line, &t)) {
        obs_count("slave_relay_refused_total");
        LOG_WARN("relay", "refused", "reason=\"unknown, used or expired token\"");
        l->dead = true;
        return;
    }
    l->up.data = lb_xcalloc(1, RELAY_BUF);
    l->down.data = lb_xcalloc(1, RELAY_BUF);
    size_t rest = l->line_len - (size_t)(nl + 1 - l->line);
    memcpy(l->up.data, nl + 1, rest);
    l->up.len = rest;
    l->n_up = rest;
    obs_add(link_counter(0), rest);
    snprintf(l->session, sizeof l->session, "%s", t.session);
    if (!link_connect(l, t.host, t.port)) {
        LOG_WARN("relay", "process unreachable", "session=%s host=%s port=%u", t.session, t.host,
                 t.port);
        l->dead = true;
        return;
    }
    l->state = LINK_CONNECTING;
}

static void link_connected(rlink *l)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(l->pfd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        LOG_WARN("relay", "process connect failed", "session=%s err=\"%s\"", l->session,
                 strerror(soerr));
        l->dead = true;
        return;
    }
    l->state = LINK_SPLICE;
    obs_count("slave_relay_links_total");
    LOG_DEBUG("relay", "link open", "session=%s", l->session);
}

/* Reads from fd into b; sets *eof. False on a hard error. */
static bool fill(int fd, rbuf *b, bool *eof, uint64_t *count, int which)
{
    if (b->off > 0 && b->len == RELAY_BUF) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (*eof || b->len == RELAY_BUF)
        return true;
    ssize_t n = read(fd, b->data + b->len, RELAY_BUF - b->len);
    if (n == 0)
        *eof = true;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n > 0) {
        b->len += (size_t)n;
        *count += (uint64_t)n;
        obs_add(link_counter(which), (uint64_t)n);
    }
    return true;
}

/* Writes b's pending bytes to fd. False on a hard error. */
static bool drain(int fd, rbuf *b)
{
    while (b->off < b->len) {
        ssize_t n = send(fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        b->off += (size_t)n;
    }
    b->off = b->len = 0;
    return true;
}

static void link_splice(rlink *l, short crev, short prev)
{
    bool ok = true;
    if (crev & (POLLIN | POLLHUP | POLLERR))
        ok = fill(l->cfd, &l->up, &l->c_eof, &l->n_up, 0);
    if (ok && (prev & (POLLIN | POLLHUP | POLLERR)))
        ok = fill(l->pfd, &l->down, &l->p_eof, &l->n_down, 1);
    if (ok)
        ok = drain(l->pfd, &l->up) && drain(l->cfd, &l->down);
    if (ok && l->c_eof && l->up.off == l->up.len && !l->p_shut) {
        shutdown(l->pfd, SHUT_WR);
        l->p_shut = true;
    }
    if (ok && l->p_eof && l->down.off == l->down.len && !l->c_shut) {
        shutdown(l->cfd, SHUT_WR);
        l->c_shut = true;
    }
    /* an error on a side we no longer read (buffer full) still ends the link */
    if ((crev & POLLERR) || (prev & POLLERR))
        ok = false;
    l->dead = !ok || (l->c_shut && l->p_shut);
}

void link_io(relay *r, rlink *l, short crev, short prev)
{
    if (l->state == LINK_TOKEN) {
        if (crev != 0)
            link_token(r, l);
        if (!l->dead && l->state == LINK_CONNECTING)
            return; /* wait for POLLOUT on the process socket */
    } else if (l->state == LINK_CONNECTING) {
        if (prev != 0)
            link_connected(l);
        if (l->state == LINK_SPLICE && !l->dead)
            link_splice(l, POLLIN, 0); /* flush the payload that came with the token */
    } else {
        link_splice(l, crev, prev);
    }
    if (l->state != LINK_SPLICE && !l->dead && lb_mono_ms() > l->deadline_ms) {
        LOG_WARN("relay", "handshake timed out", "session=%s", l->session);
        l->dead = true;
    }
}
