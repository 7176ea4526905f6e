/*
 * lbctl's shared command-line pieces: `--flag=value` as well as `--flag value`,
 * one flag parser whose errors name the flag, usage errors that say what is
 * missing, dialing a daemon that fails fast when nothing listens there, and
 * finding a slave in etcd when none is given.
 */
#include "ctl_args.h"
#include "ctl_ops.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "wire/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

char **ctl_split_eq(int argc, char **argv, int *out_argc)
{
    /* every "--x=y" becomes "--x" "y": at most twice as many words */
    char **out = lb_xcalloc((size_t)argc * 2 + 1, sizeof *out);
    int n = 0;
    for (int i = 0; i < argc; i++) {
        /* "--flag=value", and "-o=json" as kubectl takes it */
        char *eq = strncmp(argv[i], "--", 2) == 0 || strncmp(argv[i], "-o=", 3) == 0
                       ? strchr(argv[i], '=')
                       : NULL;
        if (eq != NULL && eq > argv[i] + 1) {
            *eq = '\0'; /* argv strings are ours to modify (C11 5.1.2.2.1) */
            out[n++] = argv[i];
            out[n++] = eq + 1;
        } else {
            out[n++] = argv[i];
        }
    }
    *out_argc = n;
    return out;
}

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lbctl %s: %s\n", cmd, msg);
    ctl_command_usage(cmd, stderr);
    return EXIT_USAGE;
}

int ctl_parse_flags(const char *cmd, int argc, char **argv, const ctl_flag *flags, size_t n_flags,
                    const char **pos, size_t max_pos, size_t *n_pos)
{
    size_t np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            if (np == max_pos)
                return ctl_usage_error(cmd, "unexpected argument '%s'", a);
            pos[np++] = a;
            continue;
        }
        size_t k = 0;
        while (k < n_flags && strcmp(flags[k].name, a) != 0)
            k++;
        if (k == n_flags)
            return ctl_usage_error(cmd, "unknown flag '%s'", a);
        if (flags[k].on != NULL) {
            *flags[k].on = true;
        } else if (i + 1 >= argc) {
            return ctl_usage_error(cmd, "%s needs a value", a);
        } else {
            *flags[k].val = argv[++i];
        }
    }
    if (n_pos != NULL)
        *n_pos = np;
    return 0;
}

/* "tcp://host:port" (also tcp4/tcp6/tls+tcp) -> host and port; false for
 * other transports (ipc://, inproc://), which fail at once on their own. */
static bool tcp_host_port(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p = strstr(url, "://");
    if (p == NULL || strstr(url, "tcp") == NULL || strstr(url, "tcp") > p)
        return false;
    p += 3;
    const char *colon = strrchr(p, ':');
    if (colon == NULL)
        return false;
    const char *h = p, *he = colon;
    if (*h == '[' && he > h && he[-1] == ']') { /* [::1]:7101 */
        h++;
        he--;
    }
    snprintf(host, hcap, "%.*s", (int)(he - h), h);
    snprintf(port, pcap, "%s", colon + 1);
    return host[0] != '\0' && port[0] != '\0';
}

/* One non-blocking connect, waited for at most ms. */
static lb_err probe_one(const struct addrinfo *ai, int ms, int *err_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err_out = errno;
        return LB_ESYS;
    }
    lb_err rc = LB_OK;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err_out = errno;
            rc = LB_EUNAVAIL;
        } else {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, ms);
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (r == 0) {
                *err_out = ETIMEDOUT;
                rc = LB_ETIMEDOUT;
            } else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 ||
                       soerr != 0) {
                *err_out = r < 0 ? errno : soerr;
                rc = LB_EUNAVAIL;
            }
        }
    }
    close(fd);
    return rc;
}

lb_err ctl_probe(const char *url, int ms, lb_errmsg *em)
{
    char host[256], port[32];
    if (!tcp_host_port(url, host, sizeof host, port, sizeof port))
        return LB_OK;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0)
        return lb_fail(em, LB_EUNAVAIL, "cannot connect to %s: %s", url, gai_strerror(g));
    lb_err rc = LB_EUNAVAIL;
    int err = 0;
    for (struct addrinfo *ai = res; ai != NULL && rc != LB_OK; ai = ai->ai_next)
        rc = probe_one(ai, ms, &err);
    freeaddrinfo(res);
    if (rc == LB_ETIMEDOUT)
        return lb_fail(em, rc, "cannot connect to %s: no answer within %d ms", url, ms);
    if (rc != LB_OK)
        return lb_fail(em, rc, "cannot connect to %s: %s%s", url, strerror(err),
                       err == ECONNREFUSED ? " (nothing listening there)" : "");
    return LB_OK;
}

lb_err ctl_dial(const ctl_opts *o, const char *url, nng_socket *s, lb_errmsg *em)
{
    lb_err err = ctl_probe(url, o->connect_ms, em);
    return err != LB_OK ? err : wire_req_dial(url, s, em);
}

lb_err ctl_dial_to(const ctl_opts *o, int role, const char *url, nng_socket *s, lb_errmsg *em)
{
    lb_err err = ctl_probe(url, o->connect_ms, em);
    return err != LB_OK ? err : wire_req_dial_to(url, role, NULL, s, em);
}

int ctl_slave_addr(const ctl_opts *o, const char *zone, char *out, size_t cap)
{
    if (o->slave != NULL) {
        snprintf(out, cap, "%s", o->slave);
        return 0;
    }
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return -1;
    ctl_view v;
    int rc = -1;
    if (ctl_view_load(c, o, &v) == 0) {
        /* a slave of the client's zone first, else any: the cluster redirects */
        for (int pass = 0; pass < 2 && rc != 0; pass++)
            for (size_t i = 0; i < v.n_slaves && rc != 0; i++) {
                const Lb__SlaveInfo *si = v.slaves[i];
                if (pass == 0 && (zone == NULL || strcmp(si->zone, zone) != 0))
                    continue;
                snprintf(out, cap, "%s", si->endpoint);
                rc = 0;
            }
        if (rc != 0)
            fprintf(stderr, "lbctl: no slave registered in etcd under %s; give --slave ADDR\n",
                    o->prefix);
        ctl_view_free(&v);
    }
    etcd_close(&c);
    return rc;
}
