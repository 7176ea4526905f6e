/*
 * lb-echo: the demo application agents launch. It listens on host:port and
 * answers every line with `pid=<pid> session=<session> echo=<line>\n`, so a
 * client (or a test) can tell which process and which session served it.
 *
 *   lb-echo --port P --session S [--host H] [--listen-delay MS] [--fork-setsid]
 *
 * --listen-delay makes it a slow starter (benchmarks of warm pools);
 * --fork-setsid leaves a grandchild in a session of its own that ignores
 * SIGTERM, as a badly behaved app would (tests of containment). SIGUSR1 makes
 * it close its listener and live on, as a wedged app would (tests of the
 * agent's listener probes); its clients are still served.
 *
 * One thread, one poll loop over the listener, a signalfd and the clients;
 * sockets are non-blocking and each client has a bounded input and output
 * buffer, so a slow or hostile client cannot stall the others or grow memory.
 * SIGTERM / SIGINT end it with status 0; bad flags give a usage error, status 2.
 */
#define _GNU_SOURCE /* accept4 */
#include "lb/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_MAX_CLIENTS 512
#define ECHO_LINE_MAX 8192
#define ECHO_OUT_MAX (256 * 1024)

typedef struct echo_client {
    int fd;
    char in[ECHO_LINE_MAX];
    size_t in_len;
    char *out;
    size_t out_len;
    int eof; /* the client closed its side: answer what is queued, then drop it */
} echo_client;

typedef struct echo_state {
    const char *host;
    const char *session;
    int port;
    int listen_delay_ms;
    int fork_setsid;
    int listen_fd;
    int sig_fd;
    echo_client *clients[ECHO_MAX_CLIENTS];
    size_t n_clients;
} echo_state;

static void echo_usage(FILE *f)
{
    fprintf(f, "usage: lb-echo --port P --session S [--host H] [--listen-delay MS] "
               "[--fork-setsid]\n"
               "  --port P            TCP port to listen on (1-65535)\n"
               "  --session S         session id echoed back in every answer\n"
               "  --host H            address to listen on (default 127.0.0.1)\n"
               "  --listen-delay MS   wait MS milliseconds before listening (0-600000)\n"
               "  --fork-setsid       fork a grandchild that calls setsid and ignores SIGTERM\n"
               "  --version           print the version and exit\n");
}

/* Parses the flags into st; returns 0, 1 for --help, 3 after --version, or 2
 * on a usage error. */
static int echo_parse_args(int argc, char **argv, echo_state *st)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},  {"session", required_argument, NULL, 's'},
        {"host", required_argument, NULL, 'H'},  {"listen-delay", required_argument, NULL, 'd'},
        {"fork-setsid", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (c) {
        case 'p':
            v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65535) {
                fprintf(stderr, "lb-echo: --port: '%s' is not a port (1-65535)\n", optarg);
                return 2;
            }
            st->port = (int)v;
            break;
        case 's':
            st->session = optarg;
            break;
        case 'H':
            st->host = optarg;
            break;
        case 'd':
            v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 600000) {
                fprintf(stderr, "lb-echo: --listen-delay: '%s' is not 0-600000 ms\n", optarg);
                return 2;
            }
            st->listen_delay_ms = (int)v;
            break;
        case 'f':
            st->fork_setsid = 1;
            break;
        case 'h':
            return 1;
        case 'V':
            printf("lb-echo %s\n", lb_version());
            return 3;
        default:
            fprintf(stderr, "lb-echo: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lb-echo: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (st->port == 0 || st->session == NULL) {
        fprintf(stderr, "lb-echo: --port and --session are required\n");
        return 2;
    }
    return 0;
}

/* Returns a listening, non-blocking socket on host:port, or -1 (reason on stderr). */
static int echo_listen(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rv = getaddrinfo(host, ps, &hints, &res);
    if (rv != 0) {
        fprintf(stderr, "lb-echo: %s: %s\n", host, gai_strerror(rv));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "lb-echo: listen %s:%d: %s\n", host, port, strerror(saved));
    return fd;
}

static void echo_drop(echo_state *st, size_t i)
{
    echo_client *c = st->clients[i];
    close(c->fd);
    free(c->out);
    free(c);
    st->clients[i] = st->clients[--st->n_clients];
}

/* Queues one answer; false when the client's output buffer would overflow. */
static int echo_queue(echo_state *st, echo_client *c, const char *line, size_t len)
{
    int n = snprintf(NULL, 0, "pid=%ld session=%s echo=", (long)getpid(), st->session);
    size_t need = c->out_len + (size_t)n + len + 2;
    if (need > ECHO_OUT_MAX)
        return 0;
    char *o = realloc(c->out, need);
    if (o == NULL)
        return 0;
    c->out = o;
    snprintf(o + c->out_len, (size_t)n + 1, "pid=%ld session=%s echo=", (long)getpid(),
             st->session);
    memcpy(o + c->out_len + n, line, len);
    o[c->out_len + n + len] = '\n';
    c->out_len += (size_t)n + len + 1;
    return 1;
}

/* Reads what is there and answers each complete line; 0 when the client must
 * go at once. End of input sets c->eof (its queued answers still go out). */
static int echo_on_readable(echo_state *st, echo_client *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
        if (r == 0) {
            c->eof = 1;
            return 1;
        }
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->in_len += (size_t)r;
        char *nl;
        while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
            size_t len = (size_t)(nl - c->in);
            size_t line_len = len > 0 && c->in[len - 1] == '\r' ? len - 1 : len;
            if (!echo_queue(st, c, c->in, line_len))
                return 0;
            memmove(c->in, nl + 1, c->in_len - len - 1);
            c->in_len -= len + 1;
        }
        if (c->in_len == sizeof c->in) /* a line longer than we accept */
            return 0;
    }
}

/* Writes as much pending output as the socket takes; 0 on a write error. */
static int echo_flush(echo_client *c)
{
    while (c->out_len > 0) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    return 1;
}

static void echo_accept(echo_state *st)
{
    for (;;) {
        int fd = accept4(st->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (st->n_clients == ECHO_MAX_CLIENTS) {
            close(fd);
            continue;
        }
        echo_client *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return;
        }
        c->fd = fd;
        st->clients[st->n_clients++] = c;
    }
}

/* The poll loop; returns when a termination signal arrives. */
static void echo_run(echo_state *st)
{
    static struct pollfd pfd[ECHO_MAX_CLIENTS + 2];
    for (;;) {
        size_t n = st->n_clients;
        pfd[0] = (struct pollfd){.fd = st->sig_fd, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = st->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            short ev = st->clients[i]->eof ? 0 : POLLIN;
            if (st->clients[i]->out_len > 0)
                ev |= POLLOUT;
            pfd[i + 2] = (struct pollfd){.fd = st->clients[i]->fd, .events = ev};
        }
        if (poll(pfd, n + 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("lb-echo: poll");
            return;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(st->sig_fd, &si, sizeof si) == (ssize_t)sizeof si && si.ssi_signo == SIGUSR1) {
                if (st->listen_fd >= 0)
                    close(st->listen_fd);
                st->listen_fd = -1; /* poll ignores a negative fd */
                continue;
            }
            return;
        }
        /* Walk backwards: echo_drop moves the last client into slot i. */
        for (size_t i = n; i-- > 0;) {
            echo_client *c = st->clients[i];
            short re = pfd[i + 2].revents;
            int keep = 1;
            if (re & POLLERR)
                keep = 0;
            else if (!c->eof && (re & (POLLIN | POLLHUP)))
                keep = echo_on_readable(st, c);
            if (keep)
                keep = echo_flush(c) && !(c->eof && c->out_len == 0);
            if (!keep)
                echo_drop(st, i);
        }
        if (pfd[1].revents & POLLIN)
            echo_accept(st);
    }
}

int main(int argc, char **argv)
{
    echo_state st = {.host = "127.0.0.1", .listen_fd = -1, .sig_fd = -1};
    int status = echo_parse_args(argc, argv, &st);
    if (status == 3)
        return 0;
    if (status != 0) {
        echo_usage(status == 1 ? stdout : stderr);
        return status == 1 ? 0 : 2;
    }
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    st.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (st.fork_setsid && fork() == 0) {
        /* the grandchild: its own session, SIGTERM blocked, never exits */
        setsid();
        for (;;)
            pause();
    }
    if (st.listen_delay_ms > 0) {
        struct timespec ts = {.tv_sec = st.listen_delay_ms / 1000,
                              .tv_nsec = (long)(st.listen_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    st.listen_fd = echo_listen(st.host, st.port);
    if (st.sig_fd < 0 || st.listen_fd < 0) {
        status = 1;
        goto out;
    }
    echo_run(&st);
out:
    while (st.n_clients > 0)
        echo_drop(&st, st.n_clients - 1);
    if (st.listen_fd >= 0)
        close(st.listen_fd);
    if (st.sig_fd >= 0)
        close(st.sig_fd);
    return status;
}
