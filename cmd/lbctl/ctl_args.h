/*
 * lbctl's shared command-line pieces (ctl_args.c) and its config file
 * (ctl_config.c). Single-threaded: lbctl runs one command and exits.
 */
#ifndef LB_LBCTL_ARGS_H
#define LB_LBCTL_ARGS_H

#include "lbctl.h"

#include "lb/err.h"

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A new argv (free the array, not the strings) where every "--flag=value" is
 * two words, "--flag" "value"; argv's strings are cut in place. */
char **ctl_split_eq(int argc, char **argv, int *out_argc);

/* One flag of a command: val for a flag with a value, on for a switch. */
typedef struct ctl_flag {
    const char *name; /* "--app" */
    const char **val;
    bool *on;
} ctl_flag;

/* Parses argv[1..]: flags into their targets, other words into pos (at most
 * max_pos). On a flag it does not know, a flag without its value or a word too
 * many, prints `lbctl CMD: <which and why>` and the usage; returns EXIT_USAGE.
 * 0 otherwise. */
int ctl_parse_flags(const char *cmd, int argc, char **argv, const ctl_flag *flags, size_t n_flags,
                    const char **pos, size_t max_pos, size_t *n_pos);

/* Prints `lbctl CMD: <message>` and CMD's usage on stderr; returns EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For tcp:// endpoints, one TCP connect bounded by ms: "cannot connect to URL:
 * Connection refused (nothing listening there)" or "no answer within ms", so a
 * dead endpoint fails at once instead of after the call timeout. LB_OK for
 * other transports. */
lb_err ctl_probe(const char *url, int ms, lb_errmsg *em);
/* ctl_probe (o->connect_ms), then a REQ socket dialed to url. */
lb_err ctl_dial(const ctl_opts *o, const char *url, nng_socket *s, lb_errmsg *em);
/* Same, to a server of role (a wire_role: its certificate must carry that role's name). */
lb_err ctl_dial_to(const ctl_opts *o, int role, const char *url, nng_socket *s, lb_errmsg *em);

/* The slave to ask: --slave/LBCP_SLAVE/config, else one registered in etcd
 * (of zone first when given). -1 after printing why there is none. */
int ctl_slave_addr(const ctl_opts *o, const char *zone, char *out, size_t cap);

/* The config file: path (NULL: $LBCP_CONFIG, else ~/.config/lbcp/lbctl.yaml,
 * else /etc/lbcp/lbctl.yaml; a missing default file is no error) fills the
 * fields of o that are still NULL / unset. -1 after printing file:line: key. */
int ctl_config_load(const char *path, ctl_opts *o);
/* The file ctl_config_load would read ("" when none exists). */
const char *ctl_config_path(void);

#endif
