/*
 * lbclient-example: a small program using liblbclient through pkg-config.
 *
 *   cc example.c $(pkg-config --cflags --libs lbclient) -o lbclient-example
 *   ./lbclient-example --slave tcp://127.0.0.1:7201 --app echo --client alice
 *
 * It opens a sticky connection to the app, sends a line and prints the answer.
 * With --kill-process (a local demo: the client runs where the process runs)
 * it then kills its own process to show the sticky connection surviving it:
 * the send fails, lb_sticky_reconnect asks again and affinity brings the same
 * session back on its server with a new process.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* kill, usleep */
#endif
#include <lb/client.h>
#include <lb/version.h>

#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Sends line, reads one answer line into out; 0 on success. */
static int exchange(int fd, const char *line, char *out, size_t cap)
{
    size_t n = 0;
    if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line))
        return -1;
    while (n + 1 < cap && read(fd, out + n, 1) == 1 && out[n] != '\n')
        n++;
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* One exchange; on failure, reconnect (same process, then ask again) and retry once. */
static int talk(lb_sticky *s, const char *line, char *out, size_t cap)
{
    if (exchange(lb_sticky_fd(s), line, out, cap) == 0)
        return 0;
    lb_err err = lb_sticky_reconnect(s);
    if (err != LB_OK) {
        fprintf(stderr, "reconnect failed: %s: %s\n", lb_strerror(err), lb_client_errmsg());
        return -1;
    }
    printf("reconnected (%s) to pid %d\n",
           lb_sticky_last_how(s) == LB_STICKY_SAME ? "same process" : "asked again",
           (int)lb_sticky_assignment(s)->pid);
    return exchange(lb_sticky_fd(s), line, out, cap);
}

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: lbclient-example --slave ADDR [--slave ADDR2] --app APP [--client ID]\n"
               "                        [--location ZONE] [--kill-process]\n"
               "       lbclient-example --version | --help\n");
    return rc;
}

int main(int argc, char **argv)
{
    const char *slaves[4], *app = NULL;
    lb_client_config cfg = {.slaves = slaves};
    int kill_process = 0;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0)
            return usage(stdout, 0);
        else if (strcmp(argv[i], "--version") == 0) {
            printf("lbclient-example (liblbclient %s)\n", lb_version());
            return 0;
        } else if (strcmp(argv[i], "--slave") == 0 && v && cfg.n_slaves < 4)
            slaves[cfg.n_slaves++] = argv[++i];
        else if (strcmp(argv[i], "--app") == 0 && v)
            app = argv[++i];
        else if (strcmp(argv[i], "--client") == 0 && v)
            cfg.client_id = argv[++i];
        else if (strcmp(argv[i], "--location") == 0 && v)
            cfg.location = argv[++i];
        else if (strcmp(argv[i], "--kill-process") == 0)
            kill_process = 1;
        else
            return usage(stderr, 2);
    }
    if (app == NULL || cfg.n_slaves == 0)
        return usage(stderr, 2);
    /* TLS to tls+tcp:// slaves and the client's signed token, as lbctl takes them */
    cfg.tls.ca = getenv("LBCP_TLS_CA");
    cfg.tls.cert = getenv("LBCP_TLS_CERT");
    cfg.tls.key = getenv("LBCP_TLS_KEY");
    cfg.token = getenv("LBCP_TOKEN");
    lb_err err;
    lb_client *c = lb_client_open(&cfg, &err);
    lb_sticky *s = c != NULL ? lb_sticky_open(c, app, &err) : NULL;
    if (s == NULL) {
        fprintf(stderr, "lbclient-example: %s: %s\n", lb_strerror(err), lb_client_errmsg());
        lb_client_close(&c);
        return 1;
    }
    const lb_assignment *a = lb_sticky_assignment(s);
    printf("assigned: server %s, pid %d at %s:%u, session %.8s…, via slave %s (%d hop%s)\n",
           a->server, (int)a->pid, a->host, a->port, a->session, a->slave, a->hops,
           a->hops == 1 ? "" : "s");
    char answer[512];
    int rc = talk(s, "hello\n", answer, sizeof answer) == 0 ? 0 : 1;
    if (rc == 0)
        printf("answer: %s\n", answer);
    if (rc == 0 && kill_process) {
        printf("killing pid %d (demo)\n", (int)a->pid);
        kill(a->pid, SIGKILL);
        usleep(300 * 1000);
        rc = talk(s, "still there?\n", answer, sizeof answer) == 0 ? 0 : 1;
        if (rc == 0)
            printf("answer: %s\n", answer);
    }
    lb_sticky_close(&s); /* releases the session */
    lb_client_close(&c);
    return rc;
}
