#include "config/daemon.h"

#include "common/errmsg.h"
#include "common/util.h"
#include "config/cfg.h"
#include "lb/version.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/prom.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool check_only;

static void daemon_usage(FILE *f, const char *name)
{
    fprintf(f,
            "usage: %s --config FILE [--log-level debug|info|warn|error]\n"
            "       %s --check-config FILE\n"
            "       %s --version | --help\n"
            "\n"
            "  --config FILE        YAML configuration (every key has a default)\n"
            "  --log-level LEVEL    overrides the config's log_level\n"
            "  --check-config FILE  load FILE as at start, print the first error as\n"
            "                       file:line: key: what, exit 0 when it is valid, 2 if not\n"
            "  --version            print the version and exit\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop; SIGHUP re-reads the config file (a bad\n"
            "file is rejected with its file:line error and the running config kept).\n",
            name, name, name);
}

int cfg_daemon_args(const char *name, int argc, char **argv, bool config_required,
                    const char **config, const char **level)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"log-level", required_argument, NULL, 'l'},
                                         {"check-config", required_argument, NULL, 'k'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c, rc = 0;
    opterr = 0;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c') {
            *config = optarg;
        } else if (c == 'l') {
            *level = optarg;
        } else if (c == 'k') {
            *config = optarg;
            check_only = true;
        } else if (c == 'h') {
            daemon_usage(stdout, name);
            return -1;
        } else if (c == 'V') {
            printf("%s %s\n", name, lb_version());
            return -1;
        } else if (c == ':' || (c == '?' && optopt != 0)) {
            fprintf(stderr, "%s: option '%s' needs a value\n", name, argv[optind - 1]);
            rc = 2;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", name, argv[optind - 1]);
            rc = 2;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", name, argv[optind]);
        rc = 2;
    }
    if (rc == 0 && config_required && *config == NULL) {
        fprintf(stderr, "%s: --config is required\n", name);
        rc = 2;
    }
    if (rc != 0)
        fprintf(stderr, "(see %s --help)\n", name);
    return rc;
}

bool cfg_daemon_check_only(void)
{
    return check_only;
}

int cfg_daemon_check_done(const char *name, const char *path)
{
    printf("%s: %s: configuration OK\n", name, path != NULL ? path : "<defaults>");
    return 0;
}

int cfg_daemon_log_level(const char *name, const char *flag, const char *configured)
{
    obs_level lvl;
    const char *v = flag != NULL ? flag : configured != NULL ? configured : "info";
    if (!obs_log_parse_level(v, &lvl)) {
        fprintf(stderr, "%s: %s: '%s' is not debug, info, warn or error\n", name,
                flag != NULL ? "--log-level" : "log_level", v);
        return 2;
    }
    obs_log_set_level(lvl);
    return 0;
}

char *cfg_join(char *const *items, size_t n, const char *def)
{
    if (n == 0)
        return lb_strdup(def);
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    char *out = lb_xcalloc(1, len);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(out, ",");
        strcat(out, items[i]);
    }
    return out;
}

lb_err cfg_daemon_read(const char *path,
                       lb_err (*load)(const cfg_doc *doc, void *cfg, lb_errmsg *em), void *cfg,
                       lb_errmsg *em)
{
    cfg_doc *doc = NULL;
    lb_err err =
        path != NULL ? cfg_load_file(path, &doc, em) : cfg_load_string("<defaults>", "", &doc, em);
    if (err == LB_OK)
        err = load(doc, cfg, em);
    cfg_free(&doc);
    return err;
}

int cfg_daemon_load(const char *name, const char *path,
                    lb_err (*load)(const cfg_doc *doc, void *cfg, lb_errmsg *em), void *cfg)
{
    lb_errmsg em = {{0}};
    lb_err err = cfg_daemon_read(path, load, cfg, &em);
    if (err != LB_OK) {
        fprintf(stderr, "%s: config error: %s\n", name, em.text);
        return -1;
    }
    return 0;
}

lb_err cfg_daemon_get_identity(const cfg_doc *d, const cfg_node *r, const char *role,
                               const char *id, char **state_dir, char **identity_key, lb_errmsg *em)
{
    char def[512];
    const char *tmp = getenv("TMPDIR");
    if (geteuid() == 0)
        snprintf(def, sizeof def, "/var/lib/lbcp/%s-%s", role, id);
    else
        snprintf(def, sizeof def, "%s/lbcp-%s-%d-%s", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp",
                 role, (int)geteuid(), id);
    lb_err err = cfg_get_str(d, r, "state_dir", def, state_dir, em);
    if (err == LB_OK)
        err = cfg_get_str(d, r, "identity_key", "", identity_key, em);
    if (err == LB_OK && (*identity_key)[0] != '\0' && (*identity_key)[0] != '/')
        err = cfg_fail(d, cfg_map_get(r, "identity_key"), em, "'%s' must be an absolute path",
                       *identity_key);
    if (err == LB_OK && (*state_dir)[0] != '/')
        err = cfg_fail(d, cfg_map_get(r, "state_dir"), em, "'%s' must be an absolute path",
                       *state_dir);
    return err;
}

lb_err cfg_daemon_get_level(const cfg_doc *doc, const cfg_node *root, char **out, lb_errmsg *em)
{
    lb_err err = cfg_get_str(doc, root, "log_level", "info", out, em);
    obs_level lvl;
    if (err == LB_OK && !obs_log_parse_level(*out, &lvl))
        err = cfg_fail(doc, root != NULL ? cfg_map_get(root, "log_level") : NULL, em,
                       "'%s' is not debug, info, warn or error", *out);
    return err;
}

void cfg_daemon_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, set, NULL); /* every thread started later inherits it */
    signal(SIGPIPE, SIG_IGN);
    obs_describe("config_reloads_total", "SIGHUP config reloads, by result (ok, rejected).");
}

int cfg_daemon_wait(const sigset_t *set, const char *comp, cfg_reload_fn reload, void *ctx)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        LOG_INFO(comp, "SIGHUP: reloading the config", NULL);
        if (reload == NULL)
            LOG_INFO(comp, "nothing to reload (started without --config)", NULL);
        else
            (void)reload(ctx);
    }
}

void cfg_daemon_reload_log(const char *comp, const char *path, const lb_errmsg *em,
                           const char *what)
{
    /* obs_log escapes the values: a config error quotes what the file held */
    if (em != NULL) {
        obs_count("config_reloads_total{result=\"rejected\"}");
        LOG_ERROR(comp, "config reload rejected; keeping the running config",
                  "file=\"%s\" err=\"%s\"", path != NULL ? path : "", em->text);
    } else {
        obs_count("config_reloads_total{result=\"ok\"}");
        LOG_INFO(comp, "config reloaded", "file=\"%s\" changed=\"%s\"", path != NULL ? path : "",
                 what != NULL ? what : "");
    }
}

bool cfg_daemon_reload_level(const char *flag, const char *configured)
{
    obs_level lvl, old = obs_log_get_level();
    const char *v = flag != NULL ? flag : configured != NULL ? configured : "info";
    if (!obs_log_parse_level(v, &lvl) || lvl == old)
        return false;
    obs_log_set_level(lvl);
    return true;
}
