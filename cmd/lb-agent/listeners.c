/*
 * Which sockets listen on a port (readiness: launch_owns_port). Asked of the
 * kernel with a sock_diag netlink dump of LISTEN sockets only: it walks the
 * listening hash, a few dozen entries. /proc/net/tcp, the fallback when
 * netlink is refused, prints every socket of the machine and restarts its walk
 * at each read(), which cost 7-15 ms of CPU per readiness check with ~1.6k
 * sockets and made each pool refill compete with the hand-outs (issue 10).
 */
#include "agent.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_STATE 10 /* TCP_LISTEN in the kernel's numbering */

/* The fallback: /proc/net/tcp{,6}, read whole. */
static size_t listeners_proc(uint16_t port, unsigned long *ino, size_t cap)
{
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    size_t n = 0;
    for (size_t k = 0; k < 2; k++) {
        FILE *f = fopen(files[k], "re");
        char line[512];
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            unsigned lport = 0, state = 0;
            unsigned long inode = 0;
            const char *colon = strchr(line, ':');                            /* after "sl:" */
            const char *addr = colon != NULL ? strchr(colon + 1, ':') : NULL; /* local port */
            if (addr == NULL ||
                sscanf(addr + 1, "%x %*s %x %*s %*s %*s %*s %*s %lu", &lport, &state, &inode) != 3)
                continue;
            if (lport == port && state == 0x0A /* LISTEN */ && n < cap)
                ino[n++] = inode;
        }
        if (f != NULL)
            fclose(f);
    }
    return n;
}

/* One family's LISTEN sockets on port, appended to ino; -1 when netlink failed. */
static int listeners_diag(int fd, int family, uint16_t port, unsigned long *ino, size_t cap,
                          size_t *n)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = (uint8_t)family;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = 1u << LISTEN_STATE;
    if (send(fd, &req, sizeof req, 0) != (ssize_t)sizeof req)
        return -1;
    long buf[2048]; /* aligned for nlmsghdr */
    for (;;) {
        ssize_t len = recv(fd, buf, sizeof buf, 0);
        if (len <= 0)
            return -1;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -1;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (ntohs(m->id.idiag_sport) == port && *n < cap)
                ino[(*n)++] = m->idiag_inode;
        }
    }
}

size_t listeners_on_port(uint16_t port, unsigned long *ino, size_t cap)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    size_t n = 0;
    bool ok = fd >= 0 && listeners_diag(fd, AF_INET, port, ino, cap, &n) == 0 &&
              listeners_diag(fd, AF_INET6, port, ino, cap, &n) == 0;
    if (fd >= 0)
        close(fd);
    if (ok)
        return n;
    return listeners_proc(port, ino, cap);
}
