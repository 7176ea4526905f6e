/* lbclient-probe: byte echo server, relay transfer check, shared-client threads. */
#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool probe_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Echoes bytes until EOF, then shuts its write side (half-close). */
static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (!probe_write_all(fd, buf, (size_t)n))
            break;
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

int probe_serve_echo(int port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0) {
        perror("serve-echo");
        return 1;
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        if (pthread_create(&t, NULL, echo_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

static uint8_t pattern(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;
    return (uint8_t)(x >> 56);
}

typedef struct sender {
    int fd;
    uint64_t bytes;
    bool ok;
} sender;

static void *send_main(void *arg)
{
    sender *s = arg;
    uint8_t buf[50000];
    uint64_t off = 0;
    s->ok = true;
    while (off < s->bytes && s->ok) {
        size_t n = s->bytes - off < sizeof buf ? (size_t)(s->bytes - off) : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        s->ok = probe_write_all(s->fd, buf, n);
        off += n;
    }
    shutdown(s->fd, SHUT_WR); /* half-close: the echo ends after the last byte */
    return NULL;
}

int probe_relay(lb_client *c, const char *app, uint64_t bytes)
{
    lb_err err;
    lb_sticky *s = lb_sticky_open(c, app, &err);
    if (s == NULL) {
        printf("{\"cmd\":\"relay\",\"ok\":false,\"err\":\"%s\",\"msg\":\"%s\"}\n", lb_strerror(err),
               lb_client_errmsg());
        return 1;
    }
    sender sd = {.fd = lb_sticky_fd(s), .bytes = bytes};
    pthread_t t;
    pthread_create(&t, NULL, send_main, &sd);
    uint64_t got = 0, bad = 0;
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(sd.fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            bad += buf[i] != pattern(got + (uint64_t)i);
        got += (uint64_t)n;
    }
    pthread_join(t, NULL);
    const lb_assignment *a = lb_sticky_assignment(s);
    printf("{\"cmd\":\"relay\",\"ok\":%s,\"sent_ok\":%s,\"sent\":%llu,\"received\":%llu,"
           "\"mismatched\":%llu,\"session\":\"%s\",\"relay\":%s,\"relay_endpoint\":\"%s\","
           "\"host\":\"%s\",\"port\":%u}\n",
           sd.ok && got == bytes && bad == 0 ? "true" : "false", sd.ok ? "true" : "false",
           (unsigned long long)bytes, (unsigned long long)got, (unsigned long long)bad, a->session,
           a->relay ? "true" : "false", a->relay_endpoint, a->host, a->port);
    lb_sticky_close(&s);
    return 0;
}

typedef struct worker {
    lb_client *c;
    const char *app;
    int id, per, ok, fail;
    char sessions[64][64];
} worker;

/* Each iteration: a request under its own identity, one echo line, release. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int j = 0; j < w->per; j++) {
        char client[64];
        snprintf(client, sizeof client, "thr-%d-%d", w->id, j);
        lb_request r = {.app = w->app, .client_id = client};
        lb_assignment a;
        lb_err err = lb_client_request_ex(w->c, &r, &a);
        int fd = err == LB_OK ? lb_assignment_connect(&a, 3000, &err) : -1;
        char line[256] = "";
        bool ok = fd >= 0 && probe_write_all(fd, "x\n", 2) && read(fd, line, sizeof line - 1) > 0;
        if (fd >= 0)
            close(fd);
        ok = ok && strstr(line, a.session) != NULL && lb_client_release(w->c, &a) == LB_OK;
        if (ok && j < 64)
            snprintf(w->sessions[j], sizeof w->sessions[j], "%s", a.session);
        if (ok)
            w->ok++;
        else
            w->fail++;
    }
    return NULL;
}

int probe_threads(lb_client *c, const char *app, int n, int per)
{
    worker *w = calloc((size_t)n, sizeof *w);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        w[i] = (worker){.c = c, .app = app, .id = i, .per = per};
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    int ok = 0, fail = 0, distinct = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
        fail += w[i].fail;
    }
    /* every request got its own session */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < per && j < 64; j++) {
            bool dup = w[i].sessions[j][0] == '\0';
            for (int k = 0; k < n && !dup; k++)
                for (int m = 0; m < per && m < 64 && !dup; m++)
                    dup = (k != i || m != j) && strcmp(w[i].sessions[j], w[k].sessions[m]) == 0;
            distinct += !dup;
        }
    printf("{\"cmd\":\"threads\",\"ok\":%d,\"fail\":%d,\"distinct_sessions\":%d}\n", ok, fail,
           distinct);
    free(w);
    free(t);
    return fail == 0 ? 0 : 1;
}
