/*
 * "udp://HOST:PORT" endpoints of load reports (wire_udp.h).
 */
#include "wire/wire_udp.h"

#include <netdb.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

bool wire_hostport_split(const char *rest, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(rest, ':');
    if (colon == NULL || colon == rest || colon[1] == '\0' || strchr(colon + 1, '/') != NULL)
        return false;
    const char *h = rest;
    size_t hl = (size_t)(colon - rest);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return false;
        h++, hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return true;
}

lb_err wire_udp_resolve(const char *url, wire_udp_addr *out, lb_errmsg *em)
{
    static const char pre[] = "udp://";
    char host[256], port[16];
    memset(out, 0, sizeof *out);
    if (strncmp(url, pre, sizeof pre - 1) != 0 ||
        !wire_hostport_split(url + sizeof pre - 1, host, sizeof host, port, sizeof port))
        return lb_fail(em, LB_EINVAL, "'%s' is not udp://HOST:PORT", url);
    char *end = NULL;
    unsigned long p = strtoul(port, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535)
        return lb_fail(em, LB_EINVAL, "'%s': bad port", url);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int rv = getaddrinfo(host, port, &hints, &ai);
    if (rv != 0 || ai == NULL)
        return lb_fail(em, LB_EINVAL, "'%s': %s", url, rv != 0 ? gai_strerror(rv) : "no address");
    memcpy(&out->sa, ai->ai_addr, ai->ai_addrlen);
    out->len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return LB_OK;
}

bool wire_udp_twin(const char *nng_url, char *out, size_t cap)
{
    static const char *const pre[] = {"tcp://", "tls+tcp://"};
    char host[256], port[16];
    out[0] = '\0';
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        size_t n = strlen(pre[i]);
        if (strncmp(nng_url, pre[i], n) != 0)
            continue;
        if (!wire_hostport_split(nng_url + n, host, sizeof host, port, sizeof port))
            return false;
        bool v6 = strchr(host, ':') != NULL;
        int w = snprintf(out, cap, "udp://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
        if (w < 0 || (size_t)w >= cap) {
            out[0] = '\0';
            return false;
        }
        return true;
    }
    return false;
}
