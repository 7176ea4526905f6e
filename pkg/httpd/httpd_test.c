/* pkg/httpd on real sockets: operator routes, limits, answers given later. */
#include "httpd/httpd.h"
#include "httpd/ops.h"
#include "obs/metrics.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static bool health_flag;
static bool health(void *arg, char *why, size_t cap)
{
    (void)arg;
    snprintf(why, cap, "etcd: not connected");
    return health_flag;
}

/* Sends req to 127.0.0.1:port, returns the whole answer (caller frees). */
static char *http_raw(int port, const char *req, size_t reqlen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap + 1);
    ssize_t r;
    while (len < cap && (r = recv(fd, out + len, cap - len, 0)) > 0)
        len += (size_t)r;
    close(fd);
    return out;
}

static char *http_s(int port, const char *req)
{
    return http_raw(port, req, strlen(req));
}

static void test_ops_routes(void **state)
{
    (void)state;
    httpd_ops *o = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(httpd_ops_start("127.0.0.1:0", NULL, NULL, health, NULL, &o, &em), LB_OK);
    int port = httpd_ops_port(o);
    health_flag = true;
    const char *g = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *a = http_s(port, g);
    assert_non_null(strstr(a, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(a, "\r\n\r\nok\n"));
    free(a);
    health_flag = false;
    a = http_s(port, g);
    assert_non_null(strstr(a, "HTTP/1.1 503"));
    assert_non_null(strstr(a, "etcd: not connected"));
    free(a);
    a = http_s(port, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(a, "http_requests_total{path=\"/healthz\"} 2"));
    assert_non_null(strstr(a, "Content-Type: text/plain; version=0.0.4"));
    free(a);
    a = http_s(port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 404"));
    free(a);
    a = http_s(port, "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 405"));
    free(a);
    /* garbage: libmicrohttpd answers 400 or just closes; never a 2xx, never a crash */
    a = http_raw(port, "\x01\x02garbage\r\n\r\n", 13);
    assert_true(a[0] == '\0' || strncmp(a, "HTTP/1.1 400", 12) == 0);
    free(a);
    /* headers over the 16 KiB limit */
    size_t bl = 40000;
    char *big = malloc(bl + 64);
    int n = snprintf(big, 64, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'A', bl);
    memcpy(big + n + bl, "\r\n\r\n", 4);
    a = http_raw(port, big, (size_t)n + bl + 4);
    assert_non_null(strstr(a, "HTTP/1.1 431"));
    free(a);
    free(big);
    a = http_s(port, g); /* still serving */
    assert_non_null(strstr(a, "HTTP/1.1 503"));
    free(a);
    httpd_ops *bad = NULL;
    assert_int_equal(httpd_ops_start("nonsense", NULL, NULL, NULL, NULL, &bad, &em), LB_ECONFIG);
    assert_null(bad);
    httpd_ops_stop(&o);
    assert_null(o);
}

static httpd_result echo(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)arg;
    const char *q = httpd_query(req, "x");
    const char *hdr = httpd_header(req, "X-Test");
    httpd_resp_printf(resp, 201, "application/json", "%s %s peer=%s q=%s h=%s len=%zu body=%.*s",
                      req->method, req->path, req->peer, q ? q : "-", hdr ? hdr : "-",
                      req->body_len, (int)req->body_len, req->body);
    httpd_resp_header(resp, "Location", "/elsewhere");
    httpd_resp_header(resp, "X-Bad", "a\r\nInjected: 1");
    return HTTPD_DONE;
}

typedef struct later_arg {
    httpd *h;
    uint64_t ticket;
} later_arg;

static void *later_thread(void *p)
{
    later_arg *la = p;
    nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
    httpd_resp r = {0};
    httpd_resp_printf(&r, 200, NULL, "later %llu\n", (unsigned long long)la->ticket);
    httpd_answer(la->h, la->ticket, &r);
    free(la);
    return NULL;
}

static httpd_result later(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)resp;
    later_arg *la = malloc(sizeof *la);
    la->h = arg;
    la->ticket = req->ticket;
    pthread_t t;
    pthread_create(&t, NULL, later_thread, la);
    pthread_detach(t);
    return HTTPD_LATER;
}

static uint64_t parked_ticket;
static httpd_result never(const httpd_req *req, httpd_resp *resp, void *arg)
{
    (void)resp;
    (void)arg;
    parked_ticket = req->ticket;
    return HTTPD_LATER;
}

static void *get_parked(void *p)
{
    return http_s(*(int *)p, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
}

/* A TLS server whose certificate cannot be read does not start, and says which file. */
static void test_tls_bad_files(void **state)
{
    (void)state;
    lb_errmsg em = {{0}};
    httpd *h = NULL;
    httpd_config cfg = {.listen = "127.0.0.1:0",
                        .tls_cert = "/nonexistent/cert.pem",
                        .tls_key = "/nonexistent/key.pem"};
    assert_int_equal(httpd_new(&cfg, &h, &em), LB_ECONFIG);
    assert_null(h);
    assert_non_null(strstr(em.text, "/nonexistent/cert.pem"));
    httpd_ops *o = NULL;
    assert_int_equal(httpd_ops_start("127.0.0.1:0", "/dev/null", "/dev/null", NULL, NULL, &o, &em),
                     LB_ECONFIG);
    assert_null(o);
    assert_non_null(strstr(em.text, "empty"));
}

static void test_routes_limits_and_later(void **state)
{
    (void)state;
    httpd *h = NULL;
    lb_errmsg em = {{0}};
    httpd_config cfg = {.listen = "127.0.0.1:0", .max_body = 1000, .name = "t"};
    assert_int_equal(httpd_new(&cfg, &h, &em), LB_OK);
    assert_int_equal(httpd_route(h, "POST", "/echo/*", echo, NULL), LB_OK);
    assert_int_equal(httpd_route(h, "GET", "/later", later, h), LB_OK);
    assert_int_equal(httpd_route(h, "GET", "/never", never, h), LB_OK);
    assert_int_equal(httpd_start(h, &em), LB_OK);
    int port = httpd_port(h);
    char *a = http_s(port, "POST /echo/a%20b?x=1%262 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n"
                           "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
    assert_non_null(strstr(a, "HTTP/1.1 201"));
    assert_non_null(strstr(a, "POST /echo/a b peer=127.0.0.1 q=1&2 h=yes len=5 body=hello"));
    assert_non_null(strstr(a, "Location: /elsewhere\r\n"));
    assert_null(strstr(a, "Injected"));
    free(a);
    /* Content-Length over the limit: 413 before the body is read */
    a = http_s(port, "POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 413"));
    free(a);
    /* a chunked body that grows past the limit */
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                     "chunked\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += snprintf(req + n, sizeof req - (size_t)n, "1f4\r\n");
        memset(req + n, 'z', 500);
        n += 500;
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof req - (size_t)n, "0\r\n\r\n");
    a = http_raw(port, req, (size_t)n);
    assert_non_null(strstr(a, "HTTP/1.1 413"));
    free(a);
    a = http_s(port, "GET /echo/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 405"));
    free(a);
    a = http_s(port, "GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(a, "HTTP/1.1 200"));
    assert_non_null(strstr(a, "\r\n\r\nlater "));
    free(a);
    /* a request still waiting when the server stops gets a 503 */
    pthread_t t;
    pthread_create(&t, NULL, get_parked, &port);
    for (int i = 0; i < 200 && parked_ticket == 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
    assert_true(parked_ticket != 0);
    httpd_stop(&h);
    assert_null(h);
    char *parked = NULL;
    pthread_join(t, (void **)&parked);
    assert_non_null(strstr(parked, "HTTP/1.1 503"));
    free(parked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_routes),
        cmocka_unit_test(test_routes_limits_and_later),
        cmocka_unit_test(test_tls_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
