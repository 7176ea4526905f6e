/*
 * lbclient-probe: drives liblbclient for the integration tests (client_test.py)
 * and prints JSON lines. Also a raw byte echo server for the relay test.
 *
 *   lbclient-probe --slaves A[,B..] [--client ID] [--location Z] CMD
 *     request APP              one request, the assignment as JSON
 *     list APP                 list mode answer
 *     failover APP             request, wait for a stdin line, lb_connect_failover
 *     request-on APP SERVER    lb_request_on: the client's own pick
 *     pick APP                 list mode, lb_pick, then lb_request_on the pick
 *     relay APP BYTES          sticky to a relay app, BYTES up and back, compared
 *     threads APP N PER        N threads share one client, PER requests each
 *     repl                     stdin: open APP | echo TEXT | reconnect |
 *                              request APP CLIENT | release | wait-eof MS |
 *                              close | quit
 *       release: lb_client_release of the sticky's session, its socket kept open;
 *       wait-eof: reads the sticky's socket until EOF/reset or MS elapse
 *   lbclient-probe serve-echo --port P    byte echo server (half-close aware)
 */
#include "lb/client.h"

#include "probe.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t probe_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_assignment(const char *what, lb_err err, const lb_assignment *a, const char *how)
{
    if (err != LB_OK) {
        printf("{\"cmd\":\"%s\",\"ok\":false,\"err\":\"%s\",\"msg\":\"%s\"}\n", what,
               lb_strerror(err), lb_client_errmsg());
        fflush(stdout);
        return;
    }
    printf("{\"cmd\":\"%s\",\"ok\":true,\"server\":\"%s\",\"host\":\"%s\",\"port\":%u,"
           "\"pid\":%d,\"session\":\"%s\",\"slave\":\"%s\",\"hops\":%d,\"confirmed\":%s,"
           "\"relay\":%s,\"relay_endpoint\":\"%s\",\"relay_token\":\"%s\",\"expires_ms\":%lld,"
           "\"how\":\"%s\",\"preferred\":%s,\"preferred_refused\":\"%s\","
           "\"alternates\":[",
           what, a->server, a->host, a->port, a->pid, a->session, a->slave, a->hops,
           a->confirmed ? "true" : "false", a->relay ? "true" : "false", a->relay_endpoint,
           a->relay_token, (long long)a->expires_ms, how != NULL ? how : "",
           a->preferred ? "true" : "false", a->preferred_refused);
    for (size_t i = 0; i < a->n_alternates; i++)
        printf("%s\"%s\"", i ? "," : "", a->alternates[i].server);
    printf("],\"hop\":[");
    for (int i = 0; i < a->hops; i++)
        printf("%s\"%s\"", i ? "," : "", a->hop[i]);
    printf("]}\n");
    fflush(stdout);
}

static int cmd_request(lb_client *c, const char *app)
{
    lb_assignment a;
    lb_err err = lb_client_request(c, app, &a);
    print_assignment("request", err, &a, NULL);
    return err == LB_OK ? 0 : 1;
}

/* failover APP: a request, its spares' pids printed, a line awaited on stdin
 * (the test kills the chosen process meanwhile), then lb_connect_failover
 * and "hi" echoed through the socket it gives. */
static int cmd_failover(lb_client *c, const char *app)
{
    lb_assignment a;
    lb_err err = lb_client_request(c, app, &a);
    print_assignment("request", err, &a, NULL);
    if (err != LB_OK)
        return 1;
    printf("{\"cmd\":\"spares\",\"pids\":[");
    for (size_t i = 0; i < a.n_spares; i++)
        printf("%s%d", i ? "," : "", a.spares[i].pid);
    printf("]}\n");
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL)
        return 1;
    int fd = lb_connect_failover(c, &a, 3000, &err);
    print_assignment("failover", err, &a, NULL);
    if (fd < 0)
        return 1;
    char buf[128] = "";
    ssize_t n = probe_write_all(fd, "hi\n", 3) ? read(fd, buf, sizeof buf - 1) : -1;
    printf("{\"cmd\":\"echo\",\"ok\":%s}\n", n > 0 && strstr(buf, "hi") ? "true" : "false");
    fflush(stdout);
    close(fd);
    return 0;
}

static int cmd_request_on(lb_client *c, const char *app, const char *server)
{
    lb_assignment a;
    lb_err err = lb_request_on(c, app, server, &a);
    print_assignment("request-on", err, &a, NULL);
    return err == LB_OK ? 0 : 1;
}

/* The seed's list mode end to end: the list, the client's pick, a request on it. */
static int cmd_pick(lb_client *c, const char *app)
{
    lb_server_list l;
    uint64_t rng = (uint64_t)probe_now_ms() | 1;
    lb_err err = lb_client_list(c, app, &l);
    int i = err == LB_OK ? lb_pick(&l, &rng) : -1;
    if (i < 0) {
        printf("{\"cmd\":\"pick\",\"ok\":false,\"err\":\"%s\"}\n", lb_strerror(err));
        if (err == LB_OK)
            lb_server_list_free(&l);
        return 1;
    }
    char picked[128];
    snprintf(picked, sizeof picked, "%s", l.servers[i].id);
    lb_server_list_free(&l);
    return cmd_request_on(c, app, picked);
}

static int cmd_list(lb_client *c, const char *app)
{
    lb_server_list l;
    lb_err err = lb_client_list(c, app, &l);
    if (err != LB_OK) {
        printf("{\"cmd\":\"list\",\"ok\":false,\"err\":\"%s\"}\n", lb_strerror(err));
        return 1;
    }
    printf("{\"cmd\":\"list\",\"ok\":true,\"servers\":[");
    for (size_t i = 0; i < l.n; i++)
        printf("%s{\"id\":\"%s\",\"status\":\"%s\",\"users\":%u,\"group\":\"%s\"}", i ? "," : "",
               l.servers[i].id, lb_status_name(l.servers[i].status), l.servers[i].users,
               l.servers[i].group);
    printf("]}\n");
    lb_server_list_free(&l);
    return 0;
}

static const char *how_name(lb_sticky_how h)
{
    static const char *const n[] = {"new", "same", "rerequest", "alternate"};
    return (unsigned)h < 4 ? n[h] : "?";
}

/* Sends one line on the sticky and reads the answer line. */
static void repl_echo(lb_sticky *s, const char *text)
{
    int fd = lb_sticky_fd(s);
    char line[1024];
    size_t n = 0;
    bool ok = fd >= 0 && probe_write_all(fd, text, strlen(text)) && probe_write_all(fd, "\n", 1);
    while (ok && n < sizeof line - 1) {
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0) {
            ok = false;
            break;
        }
        if (line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    if (ok)
        printf("{\"cmd\":\"echo\",\"ok\":true,\"line\":\"%s\"}\n", line);
    else
        printf("{\"cmd\":\"echo\",\"ok\":false}\n");
    fflush(stdout);
}

/* Reads the sticky's socket until the peer closes it (EOF or reset) or ms pass;
 * reports whether it closed, after how long, and how many bytes came first. */
static void repl_wait_eof(lb_sticky *s, int ms)
{
    int fd = lb_sticky_fd(s);
    int64_t t0 = probe_now_ms(), deadline = t0 + ms;
    long long bytes = 0;
    const char *how = "timeout";
    char buf[4096];
    while (fd >= 0) {
        int64_t left = deadline - probe_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            bytes += n;
            continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        how = n == 0 ? "eof" : "reset";
        break;
    }
    printf("{\"cmd\":\"wait-eof\",\"ok\":true,\"closed\":%s,\"how\":\"%s\",\"ms\":%lld,"
           "\"bytes\":%lld}\n",
           strcmp(how, "timeout") != 0 ? "true" : "false", how, (long long)(probe_now_ms() - t0),
           bytes);
    fflush(stdout);
}

static int cmd_repl(lb_client *c)
{
    char buf[1024];
    lb_sticky *s = NULL;
    while (fgets(buf, sizeof buf, stdin) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        char *arg = strchr(buf, ' ');
        if (arg != NULL)
            *arg++ = '\0';
        lb_err err = LB_OK;
        if (strcmp(buf, "open") == 0 && arg != NULL && s == NULL) {
            s = lb_sticky_open(c, arg, &err);
            print_assignment("open", err, s ? lb_sticky_assignment(s) : NULL, "new");
        } else if (strcmp(buf, "echo") == 0 && s != NULL) {
            repl_echo(s, arg != NULL ? arg : "");
        } else if (strcmp(buf, "reconnect") == 0 && s != NULL) {
            err = lb_sticky_reconnect(s);
            print_assignment("reconnect", err, lb_sticky_assignment(s),
                             how_name(lb_sticky_last_how(s)));
        } else if (strcmp(buf, "request") == 0 && arg != NULL && strchr(arg, ' ') != NULL) {
            char *client = strchr(arg, ' ');
            *client++ = '\0';
            lb_assignment a;
            lb_request r = {.app = arg, .client_id = client};
            err = lb_client_request_ex(c, &r, &a);
            print_assignment("request", err, &a, NULL);
        } else if (strcmp(buf, "release") == 0 && s != NULL) {
            err = lb_client_release(c, lb_sticky_assignment(s));
            printf("{\"cmd\":\"release\",\"ok\":%s,\"err\":\"%s\"}\n",
                   err == LB_OK ? "true" : "false", lb_strerror(err));
            fflush(stdout);
        } else if (strcmp(buf, "wait-eof") == 0 && s != NULL && arg != NULL) {
            repl_wait_eof(s, atoi(arg));
        } else if (strcmp(buf, "close") == 0) {
            lb_sticky_close(&s);
            printf("{\"cmd\":\"close\",\"ok\":true}\n");
            fflush(stdout);
        } else if (strcmp(buf, "quit") == 0) {
            break;
        } else {
            printf("{\"cmd\":\"%s\",\"ok\":false,\"err\":\"bad command\"}\n", buf);
            fflush(stdout);
        }
    }
    lb_sticky_close(&s);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: lbclient-probe --slaves A[,B] [--client ID] [--location Z] "
                    "[--connect-timeout MS] request APP | list APP | relay APP BYTES | "
                    "threads APP N PER | repl\n       lbclient-probe serve-echo --port P\n");
    return 2;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 4 && strcmp(argv[1], "serve-echo") == 0 && strcmp(argv[2], "--port") == 0)
        return probe_serve_echo(atoi(argv[3]));
    const char *slaves[8];
    lb_client_config cfg = {.slaves = slaves, .retries = 1};
    char *list = NULL;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "--slaves") == 0)
            list = argv[i + 1];
        else if (strcmp(argv[i], "--client") == 0)
            cfg.client_id = argv[i + 1];
        else if (strcmp(argv[i], "--location") == 0)
            cfg.location = argv[i + 1];
        else if (strcmp(argv[i], "--connect-timeout") == 0)
            cfg.connect_timeout_ms = atoi(argv[i + 1]);
        else
            return usage();
    }
    if (list == NULL || i >= argc)
        return usage();
    /* the same environment as lbctl's TLS flags; LBCP_TOKEN: a signed token */
    cfg.tls.ca = getenv("LBCP_TLS_CA");
    cfg.tls.cert = getenv("LBCP_TLS_CERT");
    cfg.tls.key = getenv("LBCP_TLS_KEY");
    cfg.tls.insecure = getenv("LBCP_TLS_INSECURE") != NULL;
    cfg.token = getenv("LBCP_TOKEN");
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t != NULL && cfg.n_slaves < 8;
         t = strtok_r(NULL, ",", &save))
        slaves[cfg.n_slaves++] = t;
    lb_err err;
    lb_client *c = lb_client_open(&cfg, &err);
    if (c == NULL) {
        fprintf(stderr, "lbclient-probe: %s: %s\n", lb_strerror(err), lb_client_errmsg());
        return 1;
    }
    const char *cmd = argv[i], *a1 = i + 1 < argc ? argv[i + 1] : NULL;
    int rc = 2;
    if (strcmp(cmd, "request") == 0 && a1 != NULL)
        rc = cmd_request(c, a1);
    else if (strcmp(cmd, "failover") == 0 && a1 != NULL)
        rc = cmd_failover(c, a1);
    else if (strcmp(cmd, "list") == 0 && a1 != NULL)
        rc = cmd_list(c, a1);
    else if (strcmp(cmd, "request-on") == 0 && i + 2 < argc)
        rc = cmd_request_on(c, a1, argv[i + 2]);
    else if (strcmp(cmd, "pick") == 0 && a1 != NULL)
        rc = cmd_pick(c, a1);
    else if (strcmp(cmd, "relay") == 0 && i + 2 < argc)
        rc = probe_relay(c, a1, strtoull(argv[i + 2], NULL, 10));
    else if (strcmp(cmd, "threads") == 0 && i + 3 < argc)
        rc = probe_threads(c, a1, atoi(argv[i + 2]), atoi(argv[i + 3]));
    else if (strcmp(cmd, "repl") == 0)
        rc = cmd_repl(c);
    else
        usage();
    lb_client_close(&c);
    return rc;
}
