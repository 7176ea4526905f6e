/*
 * lb-bench-firstbyte (P4): first byte of a first-time client for an app that
 * takes --delay ms to listen.
 *
 *   lb-bench-firstbyte --slave ADDR --app APP --echo PATH [--delay 200] [--n 10]
 *                      [--location ZONE] [--gap 600]
 *
 * Pool: --n first-time clients (new ids) each ask the slave, connect to the
 * process named in the answer, send a line and read the first byte of the
 * answer; timed from sending the request. The app is expected to be pooled
 * (--gap ms between clients lets the pool refill, as it would between
 * arrivals).
 * Baseline (started on connect, implemented here): --n times, start PATH
 * (lb-echo) with --listen-delay --delay on a free port when the client
 * arrives, connect as soon as it accepts, send a line, read the first byte;
 * timed from the start.
 * Prints p50/max of both and RESULT ratio = pool p50 / baseline p50.
 */
#include "common/util.h"
#include "wire/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Connects to 127.0.0.1-or-host:port, sends a line, reads one byte; 0 ok. */
static int first_byte(const char *host, unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char c;
    int rv = -1;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        write(fd, "hi\n", 3) == 3 && read(fd, &c, 1) == 1)
        rv = 0;
    if (fd >= 0)
        close(fd);
    return rv;
}

static unsigned free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        exit(1);
    close(fd);
    return ntohs(sa.sin_port);
}

static double baseline_once(const char *echo, int delay)
{
    char port[16], d[16];
    unsigned p = free_port();
    snprintf(port, sizeof port, "%u", p);
    snprintf(d, sizeof d, "%d", delay);
    char *argv[] = {(char *)echo, "--port",         port, "--session",
                    "baseline",   "--listen-delay", d,    NULL};
    double t0 = now_ms();
    pid_t pid;
    if (posix_spawn(&pid, echo, NULL, NULL, argv, environ) != 0)
        return -1;
    double took = -1;
    while (now_ms() - t0 < 10000) {
        if (first_byte("127.0.0.1", p) == 0) {
            took = now_ms() - t0;
            break;
        }
        usleep(1000); /* a client retrying its connect every millisecond */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return took;
}

static double pool_once(nng_socket s, const char *app, const char *location, int i)
{
    char client[64];
    snprintf(client, sizeof client, "fb-%d-%d", (int)getpid(), i);
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    cr.client_id = client;
    cr.app = (char *)app;
    cr.location = (char *)location;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = &cr;
    lb_errmsg em = {{0}};
    double t0 = now_ms(), took = -1;
    if (wire_call(s, &env, 30000, WIRE_TRANSPORT_MAX, &rep, &em) == LB_OK &&
        rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION &&
        rep->instruction->action == LB__ACTION__SERVE && rep->instruction->process != NULL &&
        first_byte(rep->instruction->process->host, rep->instruction->process->port) == 0)
        took = now_ms() - t0;
    else
        fprintf(stderr, "request %d failed: %s\n", i,
                em.text[0] ? em.text
                : rep != NULL && rep->body_case == LB__ENVELOPE__BODY_INSTRUCTION
                    ? rep->instruction->reason
                    : "no answer");
    wire_free(&rep);
    return took;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *slave = NULL, *app = "warm", *echo = NULL, *location = "";
    int delay = 200, n = 10, gap = 600;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--slave") == 0)
            slave = argv[i + 1];
        else if (strcmp(argv[i], "--app") == 0)
            app = argv[i + 1];
        else if (strcmp(argv[i], "--echo") == 0)
            echo = argv[i + 1];
        else if (strcmp(argv[i], "--location") == 0)
            location = argv[i + 1];
        else if (strcmp(argv[i], "--delay") == 0)
            delay = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--n") == 0)
            n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--gap") == 0)
            gap = atoi(argv[i + 1]);
    }
    if (slave == NULL || echo == NULL || n < 1 || n > 1000) {
        fprintf(stderr, "usage: lb-bench-firstbyte --slave ADDR --echo PATH [--app warm] "
                        "[--delay 200] [--n 10] [--gap 600] [--location ZONE]\n");
        return 2;
    }
    nng_socket s;
    if (wire_req_dial(slave, &s, NULL) != LB_OK)
        return 1;
    double *pool = calloc((size_t)n, sizeof *pool), *base = calloc((size_t)n, sizeof *base);
    int errors = 0;
    for (int i = 0; i < n; i++) {
        usleep((useconds_t)gap * 1000); /* arrivals apart: the pool refills between them */
        pool[i] = pool_once(s, app, location, i);
        base[i] = baseline_once(echo, delay);
        errors += pool[i] < 0 || base[i] < 0;
    }
    nng_close(s);
    qsort(pool, (size_t)n, sizeof *pool, cmp);
    qsort(base, (size_t)n, sizeof *base, cmp);
    printf("P4 first byte, app listening after %d ms, %d first-time clients each:\n", delay, n);
    printf("  pool hit          p50 %8.2f ms  max %8.2f ms\n", pool[n / 2], pool[n - 1]);
    printf("  started on connect p50 %8.2f ms  max %8.2f ms\n", base[n / 2], base[n - 1]);
    printf("RESULT p4_ratio=%.4f (goal <= 0.05) errors=%d\n", pool[n / 2] / base[n / 2], errors);
    free(pool);
    free(base);
    return errors > 0;
}
