/* lbctl: global flags, then a command. */
#include "lbctl.h"
#include "ctl_args.h"
#include "ctl_ops.h"

#include "lb/version.h"
#include "wire/wire_tls.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: lbctl [global flags] COMMAND [flags]\n"
        "\n"
        "global flags (--flag VALUE or --flag=VALUE; anywhere on the line):\n"
        "  --etcd URL[,URL]      etcd gateway (env LBCP_ETCD; default http://127.0.0.1:2379)\n"
        "  --etcd-ca FILE        CA of etcd's certificate, for https:// (env LBCP_ETCD_CA)\n"
        "  --etcd-cert FILE      client certificate for etcd (env LBCP_ETCD_CERT; with\n"
        "                        --etcd-key, env LBCP_ETCD_KEY)\n"
        "  --etcd-user NAME      etcd user (env LBCP_ETCD_USER); its password from\n"
        "                        --etcd-password-file FILE (env LBCP_ETCD_PASSWORD_FILE) or\n"
        "                        the env LBCP_ETCD_PASSWORD (never a flag: argv is public)\n"
        "  --slave ADDR          a slave's client endpoint (env LBCP_SLAVE; default: one\n"
        "                        registered in etcd, of --location's zone first)\n"
        "  --master ADDR         a master's endpoint (env LBCP_MASTER; default: the\n"
        "                        leader's operator_listen registered in etcd, else its\n"
        "                        RPC endpoint)\n"
        "  --addr ADDR           any daemon's RPC endpoint (for stats)\n"
        "  --prefix P            etcd key prefix (default /lb/)\n"
        "  --call-timeout MS     per call to a daemon or etcd (default 20000)\n"
        "  --connect-timeout MS  to reach a daemon at all (default 2000)\n"
        "  --config FILE         lbctl config (env LBCP_CONFIG; default\n"
        "                        ~/.config/lbcp/lbctl.yaml, else /etc/lbcp/lbctl.yaml)\n"
        "  --tls-ca FILE         CAs of the daemons' certificates (env LBCP_TLS_CA)\n"
        "  --tls-cert FILE       lbctl's certificate, from the operators' CA (env\n"
        "                        LBCP_TLS_CERT; with --tls-key, env LBCP_TLS_KEY)\n"
        "  --tls-server-name N   name the daemons' certificates carry (default ROLE.lbcp)\n"
        "  --insecure            also allow plain tcp:// endpoints (env LBCP_TLS_INSECURE=1)\n"
        "  -o, --output FORMAT   table, wide or json\n"
        "  --version             print the version\n"
        "\n"
        "Each setting comes from its flag, else its environment variable, else the\n"
        "config file (keys etcd, prefix, slave, master, call_timeout,\n"
        "connect_timeout, tls: {ca, cert, key}, etcd_user, etcd_password_file),\n"
        "else the default.\n"
        "\n"
        "commands:\n"
        "  servers                                   list processing servers\n"
        "  request --app APP --client ID [--location ZONE] [--require cpu=N,mem=SIZE,label=K[=V]]\n"
        "                                            ask a slave as a client; follows redirects\n"
        "  list --app APP                            list mode: endpoint STATUS users GROUP\n"
        "  explain --app APP --client ID [--location ZONE] [--require ...] [--from-slave ID]\n"
        "                                            the leader's dry run: choice, alternates,\n"
        "                                            a verdict per server\n"
        "  stats                                     a daemon's counters (--addr)\n"
        "  status                                    leader, masters, slaves, servers, sessions, "
        "etcd\n"
        "  slaves | groups | sessions [--server ID]  listings\n"
        "  drain SERVER [--wait [--timeout S]]       no new sessions on SERVER (undrain undoes)\n"
        "  disable SERVER | enable SERVER            drained and sessions not renewed\n"
        "  set-group SERVER GROUP | group set NAME RANK\n"
        "  release SESSION                           end a session at the leader master\n"
        "  watch [--count N] [--duration S]          live cluster events (-o json: JSON Lines)\n"
        "  top [--iterations N]                      full-screen live server table (q quits)\n"
        "\n"
        "Client ids are 1-128 characters and app names 1-64, of [A-Za-z0-9._:@-].\n"
        "Exit status: 0 ok, 1 failed or rejected, 2 usage error.\n"
        "lbctl COMMAND --help shows a command's usage.\n");
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

static bool is_global_with_value(const char *a)
{
    static const char *const names[] = {"--etcd",
                                        "--slave",
                                        "--master",
                                        "--addr",
                                        "--prefix",
                                        "--call-timeout",
                                        "-o",
                                        "--output",
                                        "--connect-timeout",
                                        "--config",
                                        "--etcd-ca",
                                        "--etcd-cert",
                                        "--etcd-key",
                                        "--etcd-user",
                                        "--etcd-password-file",
                                        "--tls-ca",
                                        "--tls-cert",
                                        "--tls-key",
                                        "--tls-server-name",
                                        NULL};
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(a, names[i]) == 0)
            return true;
    return false;
}

/* A positive number of milliseconds, or -1. */
static int parse_ms(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end != s && *end == '\0' && v > 0 && v <= 3600000 ? (int)v : -1;
}

/* Takes the global flags out of argv (they may stand anywhere), leaving the
 * command and its own flags in rest. EXIT_OK or EXIT_USAGE (printed). */
/* TLS of the nng links (wire_tls.h): flags here, the environment in main. */
static wire_tls_opts ctl_tls;

static int parse_globals(int argc, char **argv, ctl_opts *o, const char **config, char **rest,
                         int *nrest)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--insecure") == 0) {
            ctl_tls.insecure = true;
            continue;
        }
        if (!is_global_with_value(a)) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "lbctl: %s needs a value\n", a);
            return EXIT_USAGE;
        }
        const char *v = argv[++i];
        etcd_security *sec = &o->etcd_sec;
        if (strcmp(a, "--etcd-ca") == 0)
            sec->ca_file = (char *)v;
        else if (strcmp(a, "--etcd-cert") == 0)
            sec->cert_file = (char *)v;
        else if (strcmp(a, "--etcd-key") == 0)
            sec->key_file = (char *)v;
        else if (strcmp(a, "--etcd-user") == 0)
            sec->user = (char *)v;
        else if (strcmp(a, "--etcd-password-file") == 0)
            sec->password_file = (char *)v;
        else if (strncmp(a, "--tls-", 6) == 0)
            *(strcmp(a, "--tls-ca") == 0     ? &ctl_tls.ca
              : strcmp(a, "--tls-cert") == 0 ? &ctl_tls.cert
              : strcmp(a, "--tls-key") == 0  ? &ctl_tls.key
                                             : &ctl_tls.server_name) = v;
        else if (strcmp(a, "--etcd") == 0)
            o->etcd = v;
        else if (strcmp(a, "--slave") == 0)
            o->slave = v;
        else if (strcmp(a, "--master") == 0)
            o->master = v;
        else if (strcmp(a, "--addr") == 0)
            o->addr = v;
        else if (strcmp(a, "--prefix") == 0)
            o->prefix = v;
        else if (strcmp(a, "--config") == 0)
            *config = v;
        else if (strcmp(a, "--call-timeout") == 0 || strcmp(a, "--connect-timeout") == 0) {
            int ms = parse_ms(v);
            if (ms < 0) {
                fprintf(stderr, "lbctl: %s takes milliseconds (1-3600000), got '%s'\n", a, v);
                return EXIT_USAGE;
            }
            *(strcmp(a, "--call-timeout") == 0 ? &o->timeout_ms : &o->connect_ms) = ms;
        } else if (!parse_out(v, &o->out)) {
            fprintf(stderr, "lbctl: %s must be table, wide or json (got '%s')\n", a, v);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

/* The config file's TLS settings under the environment's under the flags'; the result is the
 * default every dial uses. Without any, only plain tcp:// endpoints can be reached. */
static int ctl_tls_setup(const wire_tls_opts *file)
{
    wire_tls_opts t = *file; /* the config file's, under the environment's and the flags' */
    wire_tls_opts_from_env(&t);
    t.ca = ctl_tls.ca ? ctl_tls.ca : t.ca;
    t.cert = ctl_tls.cert ? ctl_tls.cert : t.cert;
    t.key = ctl_tls.key ? ctl_tls.key : t.key;
    t.server_name = ctl_tls.server_name ? ctl_tls.server_name : t.server_name;
    t.insecure = t.insecure || ctl_tls.insecure;
    if (t.ca == NULL && t.cert == NULL && t.key == NULL && !t.insecure)
        return EXIT_OK;
    wire_tls *w = NULL;
    lb_errmsg em = {{0}};
    if (wire_tls_new(&t, &w, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        return EXIT_USAGE;
    }
    wire_tls_set_default(w);
    return EXIT_OK;
}

static int run(const ctl_opts *o, int nrest, char **rest)
{
    int rc = EXIT_USAGE;
    if (strcmp(rest[0], "--version") == 0 || strcmp(rest[0], "version") == 0) {
        printf("lbctl %s\n", lb_version());
        rc = EXIT_OK;
    } else if (strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0 ||
               strcmp(rest[0], "help") == 0) {
        if (nrest > 1 && !ctl_command_usage(rest[1], stdout)) {
            fprintf(stderr, "lbctl: unknown command '%s' (see lbctl --help)\n", rest[1]);
            return EXIT_USAGE;
        }
        if (nrest == 1)
            usage(stdout);
        rc = EXIT_OK;
    } else if (ctl_ops_dispatch(o, nrest, rest, &rc)) {
        /* every command, and COMMAND --help */
    } else {
        fprintf(stderr, "lbctl: unknown command '%s' (see lbctl --help)\n", rest[0]);
    }
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    ctl_opts o = {.out = OUT_TABLE};
    const char *config = NULL;
    int n = 0;
    char **args = ctl_split_eq(argc - 1, argv + 1, &n);
    char **rest = calloc((size_t)n + 1, sizeof *rest);
    int nrest = 0;
    int rc = parse_globals(n, args, &o, &config, rest, &nrest);
    if (rc == EXIT_OK && nrest == 0) {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK) {
        /* flag, else environment, else config file, else default */
        o.etcd = o.etcd != NULL ? o.etcd : env_or("LBCP_ETCD", NULL);
        o.master = o.master != NULL ? o.master : env_or("LBCP_MASTER", NULL);
        o.slave = o.slave != NULL ? o.slave : env_or("LBCP_SLAVE", NULL);
        etcd_security *sec = &o.etcd_sec;
        /* a password file named on the command line wins over the env's password */
        if (sec->password_file == NULL)
            sec->password = (char *)env_or("LBCP_ETCD_PASSWORD", NULL);
        sec->ca_file = sec->ca_file ? sec->ca_file : (char *)env_or("LBCP_ETCD_CA", NULL);
        sec->cert_file = sec->cert_file ? sec->cert_file : (char *)env_or("LBCP_ETCD_CERT", NULL);
        sec->key_file = sec->key_file ? sec->key_file : (char *)env_or("LBCP_ETCD_KEY", NULL);
        sec->user = sec->user ? sec->user : (char *)env_or("LBCP_ETCD_USER", NULL);
        sec->password_file = sec->password_file ? sec->password_file
                                                : (char *)env_or("LBCP_ETCD_PASSWORD_FILE", NULL);
        bool quiet = strcmp(rest[0], "--version") == 0 || strcmp(rest[0], "--help") == 0;
        if (!quiet && ctl_config_load(config, &o) != 0)
            rc = EXIT_USAGE;
    }
    if (rc == EXIT_OK) {
        o.etcd = o.etcd != NULL ? o.etcd : "http://127.0.0.1:2379";
        o.prefix = o.prefix != NULL ? o.prefix : "/lb/";
        o.timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 20000;
        o.connect_ms = o.connect_ms > 0 ? o.connect_ms : 2000;
        rc = ctl_tls_setup(&o.tls);
    }
    if (rc == EXIT_OK)
        rc = run(&o, nrest, rest);
    wire_tls *t = wire_tls_default();
    wire_tls_free(&t);
    free(rest);
    free(args);
    return rc;
}
