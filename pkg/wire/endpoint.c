/*
 * A DNS name as the entry point to several slaves (WO03/105439 claim 8): a
 * "tcp://NAME:PORT" endpoint becomes one endpoint per address NAME resolves
 * to, in the resolver's order, so a caller tries each in turn and fails over
 * instead of nng dialing whichever address it resolves first.
 */
#include "wire/wire.h"
#include "wire/wire_udp.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static char *ep_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* Splits "tcp://HOST:PORT"; false for anything else and for a literal "[v6]"
 * host (nothing to resolve). */
static bool ep_split(const char *ep, char *host, size_t hcap, char *port, size_t pcap)
{
    static const char pre[] = "tcp://";
    if (strncmp(ep, pre, sizeof(pre) - 1) != 0 || ep[sizeof(pre) - 1] == '[')
        return false;
    return wire_hostport_split(ep + sizeof(pre) - 1, host, hcap, port, pcap);
}

static bool ep_is_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1 ||
           strcmp(host, "*") == 0;
}

/* Appends s to list unless it is there already; false on out of memory. */
static bool ep_add(char **list, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    if ((list[*n] = ep_dup(s)) == NULL)
        return false;
    (*n)++;
    return true;
}

lb_err wire_endpoint_expand(const char *ep, char ***out, size_t *n)
{
    char host[256], port[16], addr[INET6_ADDRSTRLEN], buf[320];
    struct addrinfo hints, *res = NULL;
    char **list = calloc(WIRE_MAX_EXPAND, sizeof(*list));
    *out = NULL;
    *n = 0;
    if (list == NULL)
        return LB_ENOMEM;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (ep_split(ep, host, sizeof(host), port, sizeof(port)) && !ep_is_literal(host) &&
        getaddrinfo(host, port, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai != NULL && *n < WIRE_MAX_EXPAND; ai = ai->ai_next) {
            const void *a = ai->ai_family == AF_INET
                                ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                                : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
                inet_ntop(ai->ai_family, a, addr, sizeof(addr)) == NULL)
                continue;
            snprintf(buf, sizeof(buf), ai->ai_family == AF_INET ? "tcp://%s:%s" : "tcp://[%s]:%s",
                     addr, port);
            if (!ep_add(list, n, buf)) {
                freeaddrinfo(res);
                wire_endpoints_free(&list, *n);
                *n = 0;
                return LB_ENOMEM;
            }
        }
        freeaddrinfo(res);
    }
    /* not a name, or it did not resolve: the endpoint as given (its dial
     * then fails with nng's own message) */
    if (*n == 0 && !ep_add(list, n, ep)) {
        free(list);
        return LB_ENOMEM;
    }
    *out = list;
    return LB_OK;
}

void wire_endpoints_free(char ***list, size_t n)
{
    if (list == NULL || *list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
}
