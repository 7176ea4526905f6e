/*
 * lbctl's operator commands (status, slaves, groups, sessions, drain, undrain,
 * disable, enable, set-group, group set, release, watch, top) and the helpers
 * they share: reading the cluster's records from etcd into a view.
 */
#ifndef LB_LBCTL_OPS_H
#define LB_LBCTL_OPS_H

#include "lbctl.h"

#include "etcd/etcd.h"
#include "lb.pb-c.h"

#include <stdint.h>
#include <stdio.h>

/* A server as operators see it: its record, the leader's live load (borrowed
 * from the view's live answer) and the operator override (each may be NULL
 * but info). */
typedef struct ctl_server {
    Lb__ServerInfo *info;
    const Lb__ServerLoad *load;
    Lb__Override *ov;
    const char *group;  /* override's group, else the advertised one */
    const char *status; /* UP, DOWN (the leader has no fresh report), DRAINING, DISABLED,
                           UNKNOWN (no live load asked for, or no master answered) */
    uint32_t sessions;  /* session records on it */
    uint32_t pending;   /* sessions assigned there that no report counts yet */
} ctl_server;

typedef struct ctl_view {
    ctl_server *servers; /* sorted by id */
    size_t n_servers;
    Lb__SlaveInfo **slaves;
    size_t n_slaves;
    Lb__MasterInfo **masters;
    size_t n_masters;
    Lb__GroupInfo **groups;
    size_t n_groups;
    Lb__Session **sessions; /* sorted by server, then id */
    size_t n_sessions;
    char leader[128];      /* "" when none */
    struct ctl_live *live; /* ctl_view_load_live only */
} ctl_view;

/* Opens etcd (message printed on failure). */
int ctl_etcd_open(const ctl_opts *o, etcd_client **c);
/* Reads everything under o->prefix into v; -1 (message printed) on failure. */
int ctl_view_load(etcd_client *c, const ctl_opts *o, ctl_view *v);
/* ctl_view_load plus the leader's live load (status UP/DOWN, load); when no
 * master answers, a warning is printed and servers stay UNKNOWN. */
int ctl_view_load_live(etcd_client *c, const ctl_opts *o, ctl_view *v);
void ctl_view_free(ctl_view *v);
ctl_server *ctl_view_server(ctl_view *v, const char *id);
/* The master to call: --master, else the leader's endpoint from etcd
 * (ctl_master_endpoint). */
int ctl_master_addr(const ctl_opts *o, char *out, size_t cap);
/* The endpoint lbctl calls a master on: its operator endpoint (operator_listen,
 * where an operator certificate has operator rights) when it publishes one,
 * else its rpc endpoint (slave rights only: release of another client's
 * session is refused there). Borrowed from mi. */
const char *ctl_master_endpoint(const Lb__MasterInfo *mi);
/* Prints why an etcd read or write (what) of key failed; etcd's permission
 * denied names the cause (the credentials are not an operator's) and the
 * flags that fix it. */
void ctl_etcd_failed(const char *what, const char *key, const char *text);
/* True when argv[1..] holds --help or -h. */
bool ctl_wants_help(int argc, char **argv);
/* Prints a command's usage to f; false when name is not one of ours. */
bool ctl_command_usage(const char *name, FILE *f);
/* Runs one of the commands here; false when name is not one of them. */
bool ctl_ops_dispatch(const ctl_opts *o, int argc, char **argv, int *rc);

int cmd_status(const ctl_opts *o, int argc, char **argv);
int cmd_slaves(const ctl_opts *o, int argc, char **argv);
int cmd_groups(const ctl_opts *o, int argc, char **argv);
int cmd_sessions(const ctl_opts *o, int argc, char **argv);
int cmd_override(const ctl_opts *o, int argc, char **argv); /* drain .. set-group */
int cmd_group(const ctl_opts *o, int argc, char **argv);
int cmd_pool(const ctl_opts *o, int argc, char **argv);
int cmd_release(const ctl_opts *o, int argc, char **argv);
int cmd_watch(const ctl_opts *o, int argc, char **argv);
int cmd_top(const ctl_opts *o, int argc, char **argv);

#endif
