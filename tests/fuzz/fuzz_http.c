/*
 * libFuzzer target: the HTTP server every daemon runs (pkg/httpd: our glue
 * over libmicrohttpd's parser: routing, body buffering and its cap, answers
 * given later). One server is started on a loopback port for the process with
 * a health route, a body-echo route and an answer-later route; each input
 * is written on a fresh connection as the request bytes. Invariant: whatever
 * arrives, the answer (if any) starts with an HTTP/1.x status line, and the
 * server keeps answering /healthz.
 */
#include "httpd/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static httpd *fz_srv;

static httpd_result fz_echo(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)arg;
    httpd_resp_printf(resp, 200, "application/octet-stream", "%zu %s", req->body_len, req->path);
    return HTTPD_DONE;
}

static httpd_result fz_later(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)resp;
    (void)arg;
    httpd_resp r = {0};
    httpd_resp_printf(&r, 202, NULL, "later\n");
    httpd_answer(fz_srv, req->ticket, &r); /* answered before the handler returns */
    return HTTPD_LATER;
}

static httpd_result fz_health(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)req;
    (void)arg;
    httpd_resp_printf(resp, 200, NULL, "ok\n");
    return HTTPD_DONE;
}

/* The server: the daemons' defaults but a 1 s idle limit and a high
 * per-address cap, so half-sent inputs (which wait for the idle limit) do not
 * slow the run to a crawl or crowd out the probe. */
static int fz_port(void)
{
    static int port;
    if (port != 0)
        return port;
    lb_errmsg em = {{0}};
    httpd_config cfg = {.listen = "127.0.0.1:0",
                        .idle_s = 1,
                        .per_ip = 4096,
                        .max_conns = 4096,
                        .max_body = 4096,
                        .name = "fuzz"};
    if (httpd_new(&cfg, &fz_srv, &em) != LB_OK)
        abort();
    httpd_route(fz_srv, "GET", "/healthz", fz_health, NULL);
    httpd_route(fz_srv, "POST", "/echo*", fz_echo, NULL);
    httpd_route(fz_srv, NULL, "/later", fz_later, NULL);
    if (httpd_start(fz_srv, &em) != LB_OK)
        abort();
    port = httpd_port(fz_srv);
    return port; /* lives until exit */
}

static size_t fz_exchange(int port, const uint8_t *data, size_t size, char *out, size_t cap,
                          int wait_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = wait_ms / 1000, .tv_usec = (wait_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* a connect that fails is the machine (ephemeral ports all in TIME_WAIT
     * while other tests churn connections), not the server: retry a while and
     * say why before calling it a crash */
    int tries = 0;
    while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (++tries == 100) {
            fprintf(stderr, "fuzz_http: connect to 127.0.0.1:%d: %s\n", port, strerror(errno));
            abort();
        }
        close(fd);
        usleep(20000);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    size_t off = 0;
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t len = 0;
    ssize_t r;
    /* the status line is enough: a kept-alive connection would otherwise wait
     * for the server's idle timeout */
    while (len < 16 && (r = recv(fd, out + len, cap - 1 - len, 0)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[1 << 16];
    int port = fz_port();
    if (size > 1 << 17)
        size = 1 << 17;
    /* an input that leaves the request unfinished gets no answer: wait briefly */
    size_t n = fz_exchange(port, data, size, out, sizeof out, 200);
    if (n > 0 && strncmp(out, "HTTP/1.", 7) != 0)
        abort(); /* an answer is a status line first */
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    n = fz_exchange(port, (const uint8_t *)probe, sizeof probe - 1, out, sizeof out, 5000);
    if (n == 0 || strncmp(out, "HTTP/1.1 200", 12) != 0)
        abort(); /* the server still answers */
    return 0;
}
