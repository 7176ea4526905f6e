/* lbctl: global flags, then a command. */
#include "lbctl.h"
#include "ctl_ops.h"

#include "lb/version.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: lbctl [global flags] COMMAND [flags]\n"
        "\n"
        "global flags:\n"
        "  --etcd URL[,URL]   etcd gateway (env LBCP_ETCD, default http://127.0.0.1:2379)\n"
        "  --etcd-ca FILE     CA of etcd's certificate, for https:// (env LBCP_ETCD_CA)\n"
        "  --etcd-cert FILE   client certificate for etcd (env LBCP_ETCD_CERT; with --etcd-key,\n"
        "                     env LBCP_ETCD_KEY)\n"
        "  --etcd-user NAME   etcd user (env LBCP_ETCD_USER); its password from\n"
        "                     --etcd-password-file FILE (env LBCP_ETCD_PASSWORD_FILE) or the\n"
        "                     env LBCP_ETCD_PASSWORD (never a flag: argv is public)\n"
        "  --slave ADDR       a slave's client endpoint (env LBCP_SLAVE)\n"
        "  --master ADDR      the master's RPC endpoint (env LBCP_MASTER)\n"
        "  --addr ADDR        any daemon's RPC endpoint (for stats)\n"
        "  --prefix P         etcd key prefix (default /lb/)\n"
        "  --call-timeout MS  per call to a daemon or etcd (default 20000)\n"
        "  -o table|wide|json output format\n"
        "\n"
        "commands:\n"
        "  servers                                   list processing servers\n"
        "  request --app APP --client ID [--location ZONE] [--require cpu=N,mem=SIZE,label=K[=V]]\n"
        "                                            ask a slave as a client; follows redirects\n"
        "  list --app APP                            list mode (via --slave): endpoint STATUS "
        "users GROUP\n"
        "  explain --app APP --client ID [--location ZONE] [--require ...] [--from-slave ID]\n"
        "                                            the master's dry run: choice, alternates, a "
        "verdict per server\n"
        "  stats                                     a daemon's counters (--addr)\n"
        "  status                                    leader, masters, slaves, servers, sessions, "
        "etcd\n"
        "  slaves | groups | sessions [--server ID]  listings\n"
        "  drain SERVER [--wait [--timeout S]]       no new sessions on SERVER (undrain undoes)\n"
        "  disable SERVER | enable SERVER            drained and sessions not renewed\n"
        "  set-group SERVER GROUP | group set NAME RANK\n"
        "  release SESSION                           end a session at the master\n"
        "  watch [--count N] [--duration S]          live cluster events\n"
        "  top [--iterations N]                      full-screen live server table (q quits)\n"
        "\n"
        "COMMAND --help shows a command's usage.\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : def;
}

static bool parse_out(const char *s, out_format *out)
{
    if (strcmp(s, "table") == 0)
        *out = OUT_TABLE;
    else if (strcmp(s, "wide") == 0)
        *out = OUT_WIDE;
    else if (strcmp(s, "json") == 0)
        *out = OUT_JSON;
    else
        return false;
    return true;
}

void ctl_print_json(cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    if (s != NULL) {
        printf("%s\n", s);
        free(s);
    }
    cJSON_Delete(v);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    ctl_opts o = {.etcd = env_or("LBCP_ETCD", "http://127.0.0.1:2379"),
                  .master = env_or("LBCP_MASTER", NULL),
                  .slave = env_or("LBCP_SLAVE", NULL),
                  .prefix = "/lb/",
                  .out = OUT_TABLE,
                  .timeout_ms = 20000,
                  .etcd_sec = {.ca_file = (char *)env_or("LBCP_ETCD_CA", NULL),
                               .cert_file = (char *)env_or("LBCP_ETCD_CERT", NULL),
                               .key_file = (char *)env_or("LBCP_ETCD_KEY", NULL),
                               .user = (char *)env_or("LBCP_ETCD_USER", NULL),
                               .password_file = (char *)env_or("LBCP_ETCD_PASSWORD_FILE", NULL),
                               .password = (char *)env_or("LBCP_ETCD_PASSWORD", NULL)}};
    static const struct {
        const char *flag;
        size_t off;
    } sec_flags[] = {{"--etcd-ca", offsetof(etcd_security, ca_file)},
                     {"--etcd-cert", offsetof(etcd_security, cert_file)},
                     {"--etcd-key", offsetof(etcd_security, key_file)},
                     {"--etcd-user", offsetof(etcd_security, user)},
                     {"--etcd-password-file", offsetof(etcd_security, password_file)}};
    int i = 1;
    /* global flags may also follow the command: collect them wherever they are */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "--etcd") == 0 || strcmp(a, "--slave") == 0 || strcmp(a, "--master") == 0 ||
             strcmp(a, "--addr") == 0 || strcmp(a, "--prefix") == 0 ||
             strcmp(a, "--call-timeout") == 0 || strcmp(a, "-o") == 0 ||
             strcmp(a, "--output") == 0) &&
            v == NULL) {
            fprintf(stderr, "lbctl: %s needs a value\n", a);
            free(rest);
            return EXIT_USAGE;
        }
        size_t f = 0;
        while (f < sizeof sec_flags / sizeof sec_flags[0] && strcmp(a, sec_flags[f].flag) != 0)
            f++;
        if (f < sizeof sec_flags / sizeof sec_flags[0]) {
            if (v == NULL) {
                fprintf(stderr, "lbctl: %s needs a value\n", a);
                free(rest);
                return EXIT_USAGE;
            }
            *(char **)((char *)&o.etcd_sec + sec_flags[f].off) = argv[++i];
            if (f == 4) /* a file named on the command line wins over the environment's password */
                o.etcd_sec.password = NULL;
        } else if (strcmp(a, "--etcd") == 0)
            o.etcd = argv[++i];
        else if (strcmp(a, "--slave") == 0)
            o.slave = argv[++i];
        else if (strcmp(a, "--master") == 0)
            o.master = argv[++i];
        else if (strcmp(a, "--addr") == 0)
            o.addr = argv[++i];
        else if (strcmp(a, "--prefix") == 0)
            o.prefix = argv[++i];
        else if (strcmp(a, "--call-timeout") == 0)
            o.timeout_ms = atoi(argv[++i]);
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!parse_out(argv[++i], &o.out)) {
                fprintf(stderr, "lbctl: -o must be table, wide or json (got '%s')\n", argv[i]);
                free(rest);
                return EXIT_USAGE;
            }
        } else
            rest[nrest++] = argv[i];
    }
    int rc = EXIT_USAGE;
    if (nrest > 0 && (strcmp(rest[0], "--version") == 0 || strcmp(rest[0], "version") == 0)) {
        printf("lbctl %s\n", lb_version());
        rc = EXIT_OK;
    } else if (nrest == 0 || strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0 ||
               strcmp(rest[0], "help") == 0) {
        usage(nrest == 0 ? stderr : stdout);
        rc = nrest == 0 ? EXIT_USAGE : EXIT_OK;
    } else if (ctl_ops_dispatch(&o, nrest, rest, &rc)) {
        /* status, slaves, groups, sessions, drain, ..., watch, top; COMMAND --help */
    } else if (strcmp(rest[0], "servers") == 0) {
        rc = cmd_servers(&o, nrest, rest);
    } else if (strcmp(rest[0], "request") == 0) {
        rc = cmd_request(&o, nrest, rest);
    } else if (strcmp(rest[0], "explain") == 0) {
        rc = cmd_explain(&o, nrest, rest);
    } else if (strcmp(rest[0], "stats") == 0) {
        rc = cmd_stats(&o, nrest, rest);
    } else if (strcmp(rest[0], "list") == 0) {
        rc = cmd_list(&o, nrest, rest);
    } else {
        fprintf(stderr, "lbctl: unknown command '%s' (see lbctl --help)\n", rest[0]);
    }
    free(rest);
    return rc;
}
