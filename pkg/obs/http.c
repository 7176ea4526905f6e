#include "obs/http.h"

#include "common/errmsg.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/prom.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_IDLE_MS 5000

typedef struct http_conn {
    int fd; /* -1: free slot */
    size_t len;
    long long since_ms;
    char buf[OBS_HTTP_MAX_REQUEST];
} http_conn;

struct obs_http {
    int lfd;
    int wake[2];
    int port;
    obs_health_fn health;
    void *arg;
    pthread_t thr;
    http_conn conns[OBS_HTTP_MAX_CONNS];
};

static long long http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of p, waiting at most 2 s for the peer to take it. */
static void http_write_all(int fd, const char *p, size_t n)
{
    long long deadline = http_now_ms() + 2000;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return;
        long long left = deadline - http_now_ms();
        if (left <= 0)
            return;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        poll(&pf, 1, (int)left);
    }
}

static void http_reply(int fd, int code, const char *ctype, const char *body, size_t len)
{
    const char *text = code == 200   ? "OK"
                       : code == 400 ? "Bad Request"
                       : code == 404 ? "Not Found"
                       : code == 405 ? "Method Not Allowed"
                       : code == 431 ? "Request Header Fields Too Large"
                                     : "Service Unavailable";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, text, ctype, len);
    http_write_all(fd, head, (size_t)n);
    http_write_all(fd, body, len);
}

static void http_simple(int fd, int code, const char *body)
{
    http_reply(fd, code, "text/plain; charset=utf-8", body, strlen(body));
}

/* Answers one complete request head held in c->buf. */
static void http_serve(obs_http *h, http_conn *c)
{
    char method[16], path[256], version[16];
    c->buf[c->len] = '\0';
    if (sscanf(c->buf, "%15s %255s %15s", method, path, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        obs_count("http_requests_total{path=\"bad\"}");
        http_simple(c->fd, 400, "bad request\n");
        return;
    }
    char *q = strchr(path, '?');
    if (q != NULL)
        *q = '\0';
    bool is_metrics = strcmp(path, "/metrics") == 0, is_health = strcmp(path, "/healthz") == 0;
    if (!is_metrics && !is_health) {
        obs_count("http_requests_total{path=\"other\"}");
        http_simple(c->fd, 404, "not found: try /metrics or /healthz\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_simple(c->fd, 405, "method not allowed\n");
        return;
    }
    if (is_health) {
        obs_count("http_requests_total{path=\"/healthz\"}");
        char why[256] = "", body[300];
        bool ok = h->health == NULL || h->health(h->arg, why, sizeof why);
        snprintf(body, sizeof body, "%s\n", ok ? "ok" : why);
        http_simple(c->fd, ok ? 200 : 503, body);
        return;
    }
    obs_count("http_requests_total{path=\"/metrics\"}");
    size_t len = 0;
    char *text = obs_prom_render(&len);
    if (text == NULL) {
        http_simple(c->fd, 500, "out of memory\n");
        return;
    }
    http_reply(c->fd, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void http_close(http_conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

static void http_on_readable(obs_http *h, http_conn *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len, 0);
    if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            http_close(c);
        return;
    }
    c->len += (size_t)r;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") != NULL || strstr(c->buf, "\n\n") != NULL) {
        http_serve(h, c);
        http_close(c);
    } else if (c->len >= sizeof c->buf - 1) {
        obs_count("http_requests_total{path=\"bad\"}");
        http_simple(c->fd, 431, "request too large\n");
        http_close(c);
    }
}

static void http_accept(obs_http *h)
{
    int fd = accept(h->lfd, NULL, NULL);
    if (fd < 0)
        return;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    for (size_t i = 0; i < OBS_HTTP_MAX_CONNS; i++) {
        if (h->conns[i].fd < 0) {
            h->conns[i].fd = fd;
            h->conns[i].len = 0;
            h->conns[i].since_ms = http_now_ms();
            return;
        }
    }
    http_simple(fd, 503, "too many connections\n");
    close(fd);
}

static void *http_main(void *arg)
{
    obs_http *h = arg;
    struct pollfd pfs[OBS_HTTP_MAX_CONNS + 2];
    int slot[OBS_HTTP_MAX_CONNS + 2];
    for (;;) {
        size_t n = 0;
        pfs[n++] = (struct pollfd){.fd = h->wake[0], .events = POLLIN};
        pfs[n++] = (struct pollfd){.fd = h->lfd, .events = POLLIN};
        long long now = http_now_ms();
        for (int i = 0; i < OBS_HTTP_MAX_CONNS; i++) {
            http_conn *c = &h->conns[i];
            if (c->fd >= 0 && now - c->since_ms > HTTP_IDLE_MS)
                http_close(c);
            if (c->fd >= 0) {
                slot[n] = i;
                pfs[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
            }
        }
        if (poll(pfs, (nfds_t)n, 1000) < 0 && errno != EINTR)
            break;
        if (pfs[0].revents != 0)
            break;
        for (size_t i = 2; i < n; i++)
            if (pfs[i].revents != 0)
                http_on_readable(h, &h->conns[slot[i]]);
        if (pfs[1].revents & POLLIN)
            http_accept(h);
    }
    return NULL;
}

/* Binds "host:port"; returns the socket or -1 with em set. */
static int http_bind(const char *listen_at, int *port, lb_errmsg *em)
{
    char host[256];
    const char *colon = strrchr(listen_at, ':');
    if (colon == NULL || colon == listen_at || (size_t)(colon - listen_at) >= sizeof host) {
        lb_fail(em, LB_ECONFIG, "http_listen '%s': expected host:port", listen_at);
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen_at), listen_at);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *ai = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0) {
        lb_fail(em, LB_ECONFIG, "http_listen '%s': %s", listen_at, gai_strerror(gai));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            lb_fail(em, LB_ESYS, "http_listen '%s': %s", listen_at, strerror(errno));
            close(fd);
            fd = -1;
        }
    } else {
        lb_fail(em, LB_ESYS, "http_listen '%s': socket: %s", listen_at, strerror(errno));
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    return fd;
}

lb_err obs_http_start(const char *listen_at, obs_health_fn health, void *arg, obs_http **out,
                      lb_errmsg *em)
{
    *out = NULL;
    obs_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lb_fail(em, LB_ENOMEM, "http: out of memory");
    for (size_t i = 0; i < OBS_HTTP_MAX_CONNS; i++)
        h->conns[i].fd = -1;
    h->health = health;
    h->arg = arg;
    h->lfd = http_bind(listen_at, &h->port, em);
    if (h->lfd < 0) {
        free(h);
        return LB_ECONFIG;
    }
    if (pipe(h->wake) != 0 || pthread_create(&h->thr, NULL, http_main, h) != 0) {
        lb_err rc = lb_fail(em, LB_ESYS, "http: cannot start: %s", strerror(errno));
        close(h->lfd);
        free(h);
        return rc;
    }
    *out = h;
    return LB_OK;
}

int obs_http_port(const obs_http *h)
{
    return h->port;
}

void obs_http_stop(obs_http **hp)
{
    obs_http *h = *hp;
    if (h == NULL)
        return;
    char b = 1;
    if (write(h->wake[1], &b, 1) < 0)
        LOG_WARN("http", "cannot wake the server thread", "err=%d", errno);
    pthread_join(h->thr, NULL);
    for (size_t i = 0; i < OBS_HTTP_MAX_CONNS; i++)
        if (h->conns[i].fd >= 0)
            close(h->conns[i].fd);
    close(h->lfd);
    close(h->wake[0]);
    close(h->wake[1]);
    free(h);
    *hp = NULL;
}
