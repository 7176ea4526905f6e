/* lbctl: per-command usage (COMMAND --help) and dispatch of the operator commands. */
#include "ctl_ops.h"

#include <string.h>

static const struct {
    const char *name;
    int (*fn)(const ctl_opts *o, int argc, char **argv);
    const char *usage;
} ctl_cmds[] = {
    {"status", cmd_status,
     "lbctl status [--quota SIZE] [-o table|json]\n  leader, masters, slaves, servers by status "
     "(live, from the leader), sessions, etcd members and version, etcd db size against its "
     "quota (--quota or LBCP_ETCD_QUOTA, default 2GiB; warns past 80 %), etcd alarms, health"},
    {"slaves", cmd_slaves, "lbctl slaves [-o table|wide|json]\n  the front doors in etcd"},
    {"groups", cmd_groups,
     "lbctl groups [-o table|wide|json]\n  priority groups: rank (groups/<name> or advertised), "
     "members"},
    {"sessions", cmd_sessions,
     "lbctl sessions [--server ID] [-o table|wide|json]\n  session records (client, app, server, "
     "process)"},
    {"drain", cmd_override,
     "lbctl drain SERVER [--wait [--timeout S]] [-o json]\n  no new sessions on SERVER; its "
     "sessions (sticky clients too) go on.\n  --wait: print progress until it has no session "
     "(exit 1 at the timeout, default 600 s)"},
    {"undrain", cmd_override, "lbctl undrain SERVER [-o json]\n  new sessions again"},
    {"disable", cmd_override,
     "lbctl disable SERVER [-o json]\n  drained, and its sessions are not renewed (sticky clients "
     "move)"},
    {"enable", cmd_override, "lbctl enable SERVER [-o json]\n  undoes disable"},
    {"set-group", cmd_override,
     "lbctl set-group SERVER GROUP [-o json]\n  puts SERVER in GROUP (\"\" restores the "
     "advertised group)"},
    {"group", cmd_group,
     "lbctl group set NAME RANK [-o json]\n  the priority rank of group NAME (lower is "
     "preferred)"},
    {"pool", cmd_pool,
     "lbctl pool set APP N | pool clear APP [-o json]\n  warm pool size of APP on every agent "
     "offering it (pools/<APP>); clear: back to their min_ready"},
    {"release", cmd_release,
     "lbctl [--master ADDR] release SESSION [-o json]\n  ends any client's session at the leader "
     "master's operator_listen (found in etcd without --master; needs an operator "
     "certificate)"},
    {"watch", cmd_watch,
     "lbctl watch [--count N] [--duration S] [-o json]\n  live events: server up/down, drain, "
     "session start/end, leader change, ...;\n  stops on Ctrl-C, after N events or S seconds.\n"
     "  -o json prints JSON Lines: one JSON object per event and line, flushed as it\n"
     "  happens (e.g. lbctl watch -o json | jq -c 'select(.event==\"session-start\")')"},
    {"top", cmd_top,
     "lbctl top [--iterations N]\n  full-screen server table refreshed every second; q quits"},
    {"servers", cmd_servers,
     "lbctl servers [-o table|wide|json]\n  processing servers with status, sessions, capacity "
     "(wide: region, cpu, memory, ready pool processes per app, agent); status and load are "
     "live, from the leader"},
    {"request", cmd_request,
     "lbctl [--slave ADDR] request --app APP --client ID [--location ZONE]\n"
     "       [--require cpu=N,mem=SIZE,label=K[=V],arch=A,os=O,...] [--arch A] [--os O]\n"
     "       [--server ID] [--visited SLAVE,...] [--unreachable-pid PID] [--token T]\n"
     "       [--claim-spare SESSION] [-o json]\n"
     "  asks a slave as a client would and follows redirects (at most 3 hops).\n"
     "  --app APP       1-64 characters of [A-Za-z0-9._:@-]\n"
     "  --client ID     1-128 characters of [A-Za-z0-9._:@-]; the same id gets the\n"
     "                  same process while it lives (sticky)\n"
     "  --location ZONE the client's zone (servers of that zone are preferred)\n"
     "  --require SPEC  free cores (cpu=N), free memory (mem=SIZE), labels\n"
     "                  (label=K or label=K=V, at most 32), arch=A, os=O\n"
     "  --server ID     the client's own pick (list mode); used when eligible\n"
     "  --visited LIST  slaves the request claims to have seen already\n"
     "  --unreachable-pid PID  the session's process the client could not connect\n"
     "                  to: the master asks the agent instead of its own view\n"
     "  --claim-spare SESSION  make a hot spare reserved for this client (an\n"
     "                  answer's spares[].session) the client's session\n"
     "  --token T       the client's signed token (lbctl token issue; default\n"
     "                  LBCP_TOKEN) for slaves with require_tokens\n"
     "  without --slave: LBCP_SLAVE, the config file's slave, else a slave registered\n"
     "  in etcd (of --location's zone first)"},
    {"list", cmd_list,
     "lbctl [--slave ADDR] list --app APP [-o json]\n"
     "  list mode: every server offering APP, one per line: SERVER@HOST STATUS USERS GROUP"},
    {"explain", cmd_explain,
     "lbctl [--master ADDR] explain --app APP --client ID [--location ZONE]\n"
     "       [--require SPEC] [--arch A] [--os O] [--server ID] [--from-slave ID] [-o json]\n"
     "  the leader master's dry run (no launch, no session): the choice, the\n"
     "  alternates and a verdict per server; without --master the leader is found in etcd"},
    {"stats", cmd_stats,
     "lbctl --addr ADDR stats [-o json]\n  a daemon's counters over its RPC socket "
     "(--master or --slave also name the daemon)"},
    {"token", cmd_token,
     "lbctl token keygen --out FILE [--kid ID] | token issue --client ID --apps A[,B] "
     "--ttl 24h --key FILE\n  an Ed25519 issuer key pair (FILE, FILE.pub), or a signed client "
     "token\n  for liblbclient's token (pkg/auth/token.h)"},
};

bool ctl_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

bool ctl_command_usage(const char *name, FILE *f)
{
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (strcmp(ctl_cmds[i].name, name) == 0) {
            fprintf(f, "usage: %s\n", ctl_cmds[i].usage);
            return true;
        }
    return false;
}

bool ctl_ops_dispatch(const ctl_opts *o, int argc, char **argv, int *rc)
{
    if (ctl_wants_help(argc, argv) && ctl_command_usage(argv[0], stdout)) {
        *rc = EXIT_OK;
        return true;
    }
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (ctl_cmds[i].fn != NULL && strcmp(ctl_cmds[i].name, argv[0]) == 0) {
            *rc = ctl_cmds[i].fn(o, argc, argv);
            return true;
        }
    return false;
}
