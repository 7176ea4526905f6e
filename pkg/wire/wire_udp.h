/*
 * Load reports over UDP (issue 8, P9): endpoints are "udp://HOST:PORT" (HOST
 * a name, an IPv4 address or "[v6]"). One report is one datagram holding one
 * encoded Envelope{server_load}, exactly the bytes sent over nng; a datagram
 * is never fragmented on purpose: WIRE_UDP_MAX keeps it inside one Ethernet
 * frame (1500 - IPv6 40 - UDP 8, with room to spare), larger reports go over
 * nng instead.
 *
 * Thread-safety: reentrant; wire_udp_resolve blocks on the resolver for names.
 */
#ifndef LB_WIRE_UDP_H
#define LB_WIRE_UDP_H

#include "common/errmsg.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define WIRE_UDP_MAX 1400

typedef struct wire_udp_addr {
    struct sockaddr_storage sa;
    socklen_t len;
} wire_udp_addr;

/* Splits "HOST:PORT" (what follows "scheme://"; HOST may be "[v6]", which
 * loses its brackets) into host and port; false for another shape or when
 * either does not fit. */
bool wire_hostport_split(const char *rest, char *host, size_t hcap, char *port, size_t pcap);

/* "udp://HOST:PORT" into its first address. LB_EINVAL (em says why) for
 * another scheme, a missing port or a name that does not resolve. */
lb_err wire_udp_resolve(const char *url, wire_udp_addr *out, lb_errmsg *em);

/* The UDP twin of an nng TCP endpoint: "tcp://H:P" or "tls+tcp://H:P" gives
 * "udp://H:P" in out; false (out "") for ipc:// and anything else. */
bool wire_udp_twin(const char *nng_url, char *out, size_t cap);

#endif
