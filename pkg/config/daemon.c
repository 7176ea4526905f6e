#include "config/daemon.h"

#include "common/util.h"
#include "config/cfg.h"
#include "obs/log.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void daemon_usage(FILE *f, const char *name)
{
    fprintf(f, "usage: %s --config FILE [--log-level debug|info|warn|error]\n", name);
}

int cfg_daemon_args(const char *name, int argc, char **argv, bool config_required,
                    const char **config, const char **level)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"log-level", required_argument, NULL, 'l'},
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
        } else if (c == 'h') {
            daemon_usage(stdout, name);
            return -1;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", name, argv[optind - 1]);
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
        daemon_usage(stderr, name);
    return rc;
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

int cfg_daemon_load(const char *name, const char *path,
                    lb_err (*load)(const cfg_doc *doc, void *cfg, lb_errmsg *em), void *cfg)
{
    lb_errmsg em = {{0}};
    cfg_doc *doc = NULL;
    lb_err err = path != NULL ? cfg_load_file(path, &doc, &em)
                              : cfg_load_string("<defaults>", "", &doc, &em);
    if (err == LB_OK)
        err = load(doc, cfg, &em);
    cfg_free(&doc);
    if (err != LB_OK) {
        fprintf(stderr, "%s: config error: %s\n", name, em.text);
        return -1;
    }
    return 0;
}
