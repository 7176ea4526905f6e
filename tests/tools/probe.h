/* lbclient-probe helpers (probe_io.c). */
#ifndef LB_CLIENT_PROBE_H
#define LB_CLIENT_PROBE_H

#include "lb/client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool probe_write_all(int fd, const void *buf, size_t len);
int probe_serve_echo(int port);
int probe_relay(lb_client *c, const char *app, uint64_t bytes);
int probe_threads(lb_client *c, const char *app, int n, int per);

#endif
