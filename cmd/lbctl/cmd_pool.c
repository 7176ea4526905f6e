/*
 * lbctl pool set APP N | pool clear APP: the cluster-wide warm pool size of an
 * app, <prefix>pools/<APP> (a decimal count). Every agent offering a pooled APP
 * watches it and keeps N ready processes instead of its min_ready (never more
 * than max(N, max_ready)); clear goes back to the agents' configs.
 */
#include "ctl_args.h"
#include "ctl_ops.h"

#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool pool_app_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

int cmd_pool(const ctl_opts *o, int argc, char **argv)
{
    bool set = argc >= 2 && strcmp(argv[1], "set") == 0;
    bool clear = argc >= 2 && strcmp(argv[1], "clear") == 0;
    char *end = NULL;
    if (!set && !clear)
        return ctl_usage_error("pool", "the subcommands are 'set APP N' and 'clear APP'");
    if (argc != (set ? 4 : 3))
        return ctl_usage_error("pool", set ? "give APP and N" : "give APP");
    if (!pool_app_ok(argv[2]))
        return ctl_usage_error("pool", "APP must be 1-64 of [A-Za-z0-9._-] (got '%s')", argv[2]);
    long n = set ? strtol(argv[3], &end, 10) : 0;
    if (set && (end == argv[3] || *end != '\0' || n < 0 || n > 10000))
        return ctl_usage_error("pool", "N must be an integer 0-10000 (got '%s')", argv[3]);
    char key[512], val[16];
    snprintf(key, sizeof key, "%spools/%s", o->prefix, argv[2]);
    snprintf(val, sizeof val, "%ld", n);
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return EXIT_FAIL;
    lb_errmsg em = {{0}};
    int rc = EXIT_OK;
    lb_err err = set ? etcd_put(c, key, val, strlen(val), 0, NULL, &em)
                     : etcd_delete(c, key, false, NULL, &em);
    if (err != LB_OK) {
        ctl_etcd_failed("write", key, em.text);
        rc = EXIT_FAIL;
    } else if (o->out == OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "app", argv[2]);
        if (set)
            cJSON_AddNumberToObject(j, "min_ready", (double)n);
        else
            cJSON_AddNullToObject(j, "min_ready");
        ctl_print_json(j);
    } else if (set) {
        printf("pool %s: %ld ready processes on every agent offering it\n", argv[2], n);
    } else {
        printf("pool %s: back to each agent's min_ready\n", argv[2]);
    }
    etcd_close(&c);
    return rc;
}
