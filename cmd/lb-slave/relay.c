/*
 * The relay's listener, token table and poll loop (see relay.h). Tokens come
 * from the master's SERVE answers (relay_grant, nng threads) and are consumed
 * by the loop thread when a client presents one; each is usable once and for
 * RELAY_TOKEN_TTL_MS. Releases queue the session for the loop, which closes
 * its links on its next turn.
 */
#define _GNU_SOURCE /* accept4, pipe2 */
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

#define RELAY_MAX_KILL 1024

static void relay_wake(relay *r)
{
    char b = 1;
    ssize_t n = write(r->wake[1], &b, 1);
    (void)n; /* a full pipe already wakes the loop */
}

void relay_grant(relay *r, const char *token, const char *host, uint32_t port, const char *session)
{
    int64_t now = lb_mono_ms();
    pthread_mutex_lock(&r->lock);
    size_t k = 0; /* drop expired tokens while here */
    for (size_t i = 0; i < r->n_tokens; i++)
        if (r->tokens[i].expires_ms > now)
            r->tokens[k++] = r->tokens[i];
    r->n_tokens = k;
    if (r->n_tokens < RELAY_MAX_TOKENS) {
        rtoken *t = &r->tokens[r->n_tokens++];
        snprintf(t->token, sizeof t->token, "%s", token);
        snprintf(t->host, sizeof t->host, "%s", host);
        snprintf(t->session, sizeof t->session, "%s", session);
        t->port = port;
        t->expires_ms = now + RELAY_TOKEN_TTL_MS;
    } else {
        LOG_WARN("relay", "token table full", "session=%s", session);
    }
    pthread_mutex_unlock(&r->lock);
}

bool relay_take_token(relay *r, const char *token, rtoken *out)
{
    bool found = false;
    int64_t now = lb_mono_ms();
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_tokens && !found; i++) {
        if (strcmp(r->tokens[i].token, token) != 0)
            continue;
        found = r->tokens[i].expires_ms > now;
        *out = r->tokens[i];
        r->tokens[i] = r->tokens[--r->n_tokens];
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

void relay_release(relay *r, const char *session)
{
    if (r == NULL || session == NULL || session[0] == '\0')
        return;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n_tokens;) {
        if (strcmp(r->tokens[i].session, session) == 0)
            r->tokens[i] = r->tokens[--r->n_tokens];
        else
            i++;
    }
    if (r->n_kill < RELAY_MAX_KILL)
        snprintf(r->kill[r->n_kill++], sizeof r->kill[0], "%s", session);
    pthread_mutex_unlock(&r->lock);
    relay_wake(r);
}

const char *relay_endpoint(const relay *r)
{
    return r->endpoint;
}

/* Closes the links of released sessions; returns true when stopping. */
static bool relay_take_kills(relay *r)
{
    char buf[64];
    while (read(r->wake[0], buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stopping;
    for (size_t k = 0; k < r->n_kill; k++)
        for (rlink *l = r->links; l != NULL; l = l->next)
            if (strcmp(l->session, r->kill[k]) == 0) {
                LOG_INFO("relay", "session released", "session=%s", l->session);
                l->dead = true;
            }
    r->n_kill = 0;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}

static void relay_accept(relay *r)
{
    while (r->n_links < RELAY_MAX_LINKS) {
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        rlink *l = link_new(fd);
        l->next = r->links;
        r->links = l;
        r->n_links++;
    }
}

static void relay_reap(relay *r)
{
    rlink **pp = &r->links;
    while (*pp != NULL) {
        rlink *l = *pp;
        if (l->dead) {
            *pp = l->next;
            link_free(l);
            r->n_links--;
        } else {
            pp = &l->next;
        }
    }
}

static void *relay_loop(void *arg)
{
    relay *r = arg;
    struct pollfd *fds = lb_xcalloc(2 * RELAY_MAX_LINKS + 2, sizeof *fds);
    for (;;) {
        nfds_t n = 0;
        fds[n++] = (struct pollfd){.fd = r->wake[0], .events = POLLIN};
        fds[n++] =
            (struct pollfd){.fd = r->n_links < RELAY_MAX_LINKS ? r->lfd : -1, .events = POLLIN};
        for (rlink *l = r->links; l != NULL; l = l->next) {
            short ce = link_cevents(l), pe = link_pevents(l);
            l->ci = ce ? (int)n : -1;
            if (ce)
                fds[n++] = (struct pollfd){.fd = l->cfd, .events = ce};
            l->pi = pe ? (int)n : -1;
            if (pe)
                fds[n++] = (struct pollfd){.fd = l->pfd, .events = pe};
        }
        if (poll(fds, n, 250) < 0 && errno != EINTR)
            break;
        if ((fds[0].revents & POLLIN) && relay_take_kills(r))
            break;
        if (fds[1].revents & POLLIN)
            relay_accept(r);
        for (rlink *l = r->links; l != NULL; l = l->next) {
            if (l->dead || l->ci >= (int)n || l->pi >= (int)n)
                continue;
            short crev = l->ci >= 0 ? fds[l->ci].revents : 0;
            short prev = l->pi >= 0 ? fds[l->pi].revents : 0;
            link_io(r, l, crev, prev);
        }
        relay_reap(r);
    }
    free(fds);
    return NULL;
}

/* Splits "tcp://HOST:PORT" or "HOST:PORT" (IPv6 as [addr]:port). */
static bool split_hostport(const char *ep, char *host, size_t cap, char *port, size_t pcap)
{
    if (strncmp(ep, "tcp://", 6) == 0)
        ep += 6;
    const char *colon = strrchr(ep, ':');
    if (colon == NULL || colon == ep || colon[1] == '\0')
        return false;
    const char *h = ep;
    size_t hl = (size_t)(colon - ep);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= cap || strlen(colon + 1) >= pcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return true;
}

static int relay_bind(relay *r, const char *ep, const char *advertise)
{
    char host[256], port[16];
    if (!split_hostport(ep, host, sizeof host, port, sizeof port)) {
        LOG_ERROR("relay", "bad relay_listen", "value=%s want=HOST:PORT", ep);
        return -1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        LOG_ERROR("relay", "bad relay_listen", "value=%s err=\"%s\"", ep, gai_strerror(rc));
        return -1;
    }
    int one = 1;
    r->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->lfd >= 0)
        setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (r->lfd < 0 || bind(r->lfd, res->ai_addr, res->ai_addrlen) != 0 ||
        listen(r->lfd, 128) != 0) {
        LOG_ERROR("relay", "cannot listen", "endpoint=%s err=\"%s\"", ep, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char bound[16] = "0";
    if (getsockname(r->lfd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, bound, sizeof bound, NI_NUMERICSERV);
    if (advertise != NULL && advertise[0] != '\0')
        snprintf(r->endpoint, sizeof r->endpoint, "%s", advertise);
    else if (strchr(host, ':') != NULL)
        snprintf(r->endpoint, sizeof r->endpoint, "[%s]:%s", host, bound);
    else
        snprintf(r->endpoint, sizeof r->endpoint, "%s:%s", host, bound);
    return 0;
}

int relay_start(const char *ep, const char *advertise, relay **out)
{
    relay *r = lb_xcalloc(1, sizeof *r);
    r->lfd = r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->lock, NULL);
    r->tokens = lb_xcalloc(RELAY_MAX_TOKENS, sizeof *r->tokens);
    r->kill = lb_xcalloc(RELAY_MAX_KILL, sizeof *r->kill);
    *out = NULL;
    if (relay_bind(r, ep, advertise) != 0 || pipe2(r->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pthread_create(&r->thread, NULL, relay_loop, r) != 0) {
        if (r->wake[0] >= 0) {
            close(r->wake[0]);
            close(r->wake[1]);
        }
        if (r->lfd >= 0)
            close(r->lfd);
        pthread_mutex_destroy(&r->lock);
        free(r->tokens);
        free(r->kill);
        free(r);
        return -1;
    }
    LOG_INFO("relay", "listening", "endpoint=%s", r->endpoint);
    *out = r;
    return 0;
}

void relay_stop(relay **rp)
{
    relay *r = *rp;
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_mutex_unlock(&r->lock);
    relay_wake(r);
    pthread_join(r->thread, NULL);
    while (r->links != NULL) {
        rlink *l = r->links;
        r->links = l->next;
        link_free(l);
    }
    close(r->lfd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->lock);
    free(r->tokens);
    free(r->kill);
    free(r);
    *rp = NULL;
}
