/*
 * Which sockets listen on a port (readiness: launch_owns_port), and which
 * ports have a listener at all (the pool's probe: one walk for every process
 * due, not one per process: each walk visits every bucket of the kernel's
 * listening hash, tens of thousands). Asked of the kernel with a sock_diag
 * netlink dump of LISTEN sockets (on that port only: the kernel fills a
 * message for matches alone). /proc/net/tcp, the fallback when netlink is
 * refused, prints every socket of the machine and restarts its walk at each
 * read(), which cost 7-15 ms of CPU per readiness check with ~1.6k sockets
 * and made each pool refill compete with the hand-outs (issue 10).
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

/* What a walk does with each listener found: port filtered by the walk
 * (0: every port). */
typedef struct visit {
    uint16_t port;
    unsigned long *ino; /* listeners_on_port */
    size_t cap, n;
    uint8_t *bits; /* listeners_ports: a bit per port */
} visit;

static void visit_one(visit *v, unsigned lport, unsigned long inode)
{
    if (v->bits != NULL)
        v->bits[lport >> 3] |= (uint8_t)(1u << (lport & 7));
    else if (lport == v->port && v->n < v->cap)
        v->ino[v->n++] = inode;
}

/* The fallback: /proc/net/tcp{,6}, read whole. */
static void listeners_proc(visit *v)
{
    static const char *const files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
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
            if (state == 0x0A /* LISTEN */ && lport <= 0xffff)
                visit_one(v, lport, inode);
        }
        if (f != NULL)
            fclose(f);
    }
}

/* One family's LISTEN sockets (on v->port unless 0); -1 when netlink failed. */
static int listeners_diag(int fd, int family, visit *v)
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
    /* The kernel skips listeners on other ports before filling a message for
     * them (inet_diag_dump_icsk compares id.idiag_sport): with a deep pool
     * and stock, ~1,000 listeners on a machine, filling every one was half
     * of an agent's CPU while hand-outs flowed (perf, README P2). visit_one
     * checks the port again for kernels that do not filter. */
    req.r.id.idiag_sport = htons(v->port);
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
            visit_one(v, ntohs(m->id.idiag_sport), m->idiag_inode);
        }
    }
}

/* Both families through netlink, else /proc/net/tcp{,6}. */
static void listeners_walk(visit *v)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    bool ok =
        fd >= 0 && listeners_diag(fd, AF_INET, v) == 0 && listeners_diag(fd, AF_INET6, v) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        v->n = 0;
        if (v->bits != NULL)
            memset(v->bits, 0, LISTENERS_BITMAP_BYTES);
        listeners_proc(v);
    }
}

size_t listeners_on_port(uint16_t port, unsigned long *ino, size_t cap)
{
    visit v = {.port = port, .ino = ino, .cap = cap};
    listeners_walk(&v);
    return v.n;
}

void listeners_ports(uint8_t bits[LISTENERS_BITMAP_BYTES])
{
    memset(bits, 0, LISTENERS_BITMAP_BYTES);
    visit v = {.bits = bits};
    listeners_walk(&v);
}
