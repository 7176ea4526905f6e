/*
 * An app's sandbox keys (see config.c for the file format):
 *
 *   user: nobody        run as this user (name or uid); default: default_user
 *                       when the agent is root, else the agent's own user
 *   group: nogroup      its group (default: the user's primary group)
 *   allow_root: false   an agent running as root refuses to run an app as
 *                       root unless this says so
 *   limits:             setrlimit, soft = hard (absent: inherited)
 *     nofile: 1024      open files
 *     nproc: 256        processes of its user
 *     as: 2GiB          address space
 *     cpu: 10m          CPU time
 *     memory: 512MiB    cgroup memory.max (RLIMIT_AS when the memory
 *                       controller is not enabled and `as` is not set)
 *     cpus: 0.5         cgroup cpu.max, in cores (not enforced without the cpu
 *                       controller; the log says so at start)
 */
#include "agent.h"

#include "common/util.h"
#include "config/cfg.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const limit_keys[] = {"nofile", "nproc", "as", "cpu", "memory", "cpus", NULL};

/* A user by name or number: uid and primary gid; false when unknown. */
static bool sandbox_user(const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096], *end = NULL;
    if (getpwnam_r(name, &pw, buf, sizeof buf, &res) == 0 && res != NULL) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
        return true;
    }
    unsigned long v = strtoul(name, &end, 10);
    if (name[0] == '\0' || *end != '\0' || v > 0x7fffffffUL)
        return false;
    *uid = (uid_t)v;
    *gid =
        getpwuid_r(*uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL ? res->pw_gid : (gid_t)v;
    return true;
}

static bool sandbox_group(const char *name, gid_t *gid)
{
    struct group gr, *res = NULL;
    char buf[4096], *end = NULL;
    if (getgrnam_r(name, &gr, buf, sizeof buf, &res) == 0 && res != NULL) {
        *gid = res->gr_gid;
        return true;
    }
    unsigned long v = strtoul(name, &end, 10);
    if (name[0] == '\0' || *end != '\0' || v > 0x7fffffffUL)
        return false;
    *gid = (gid_t)v;
    return true;
}

static void sandbox_limit(agent_app *a, int res, uint64_t v)
{
    if (a->n_limits < AGENT_LIMITS_MAX) {
        a->limit_res[a->n_limits] = res;
        a->limit_val[a->n_limits++] = v;
    }
}

static lb_err sandbox_limits(const cfg_doc *d, const cfg_node *n, agent_app *a, lb_errmsg *em)
{
    const cfg_node *l = cfg_map_get(n, "limits");
    lb_err err = cfg_check_keys(d, l, limit_keys, em);
    int64_t nofile = 0, nproc = 0, cpu_ms = 0;
    uint64_t as = 0;
    double cpus = 0;
    if (err != LB_OK || l == NULL)
        return err;
    if ((err = cfg_get_int(d, l, "nofile", 1, 1 << 20, 0, &nofile, em)) != LB_OK ||
        (err = cfg_get_int(d, l, "nproc", 1, 1 << 22, 0, &nproc, em)) != LB_OK ||
        (err = cfg_get_size(d, l, "as", 0, &as, em)) != LB_OK ||
        (err = cfg_get_duration_ms(d, l, "cpu", 0, &cpu_ms, em)) != LB_OK ||
        (err = cfg_get_size(d, l, "memory", 0, &a->memory_max, em)) != LB_OK ||
        (err = cfg_get_double(d, l, "cpus", 0, 4096, 0, &cpus, em)) != LB_OK)
        return err;
    if (cfg_map_get(l, "as") != NULL && as < 1024 * 1024)
        return cfg_fail(d, cfg_map_get(l, "as"), em, "below 1MiB");
    if (cfg_map_get(l, "memory") != NULL && a->memory_max < 1024 * 1024)
        return cfg_fail(d, cfg_map_get(l, "memory"), em, "below 1MiB");
    if (cfg_map_get(l, "cpu") != NULL && cpu_ms < 1000)
        return cfg_fail(d, cfg_map_get(l, "cpu"), em, "below 1s");
    if (cfg_map_get(l, "cpus") != NULL && cpus < 0.01)
        return cfg_fail(d, cfg_map_get(l, "cpus"), em, "below 0.01 cores");
    if (nofile > 0)
        sandbox_limit(a, RLIMIT_NOFILE, (uint64_t)nofile);
    if (nproc > 0)
        sandbox_limit(a, RLIMIT_NPROC, (uint64_t)nproc);
    if (as > 0)
        sandbox_limit(a, RLIMIT_AS, as);
    if (cpu_ms > 0)
        sandbox_limit(a, RLIMIT_CPU, (uint64_t)(cpu_ms / 1000));
    a->cpu_max_milli = (uint32_t)(cpus * 1000 + 0.5);
    return LB_OK;
}

lb_err agent_config_sandbox(const cfg_doc *d, const cfg_node *n, const char *default_user,
                            agent_app *a, lb_errmsg *em)
{
    char *user = NULL, *group = NULL;
    bool allow_root = false;
    bool root = geteuid() == 0;
    const cfg_node *un = cfg_map_get(n, "user");
    lb_err err = cfg_get_str(d, n, "user", root ? default_user : "", &user, em);
    if (err == LB_OK)
        err = cfg_get_str(d, n, "group", "", &group, em);
    if (err == LB_OK)
        err = cfg_get_bool(d, n, "allow_root", false, &allow_root, em);
    if (err == LB_OK && user[0] != '\0') {
        if (!sandbox_user(user, &a->uid, &a->gid))
            err = cfg_fail(d, un != NULL ? un : n, em, "no such user '%s'", user);
        else if (!root && a->uid != geteuid())
            err = cfg_fail(d, un != NULL ? un : n, em,
                           "the agent is not root: it can run apps only as itself (uid %d)",
                           (int)geteuid());
        else
            a->set_user = root;
    }
    if (err == LB_OK && group[0] != '\0') {
        if (!sandbox_group(group, &a->gid))
            err = cfg_fail(d, cfg_map_get(n, "group"), em, "no such group '%s'", group);
        else if (!root && a->gid != getegid())
            err = cfg_fail(d, cfg_map_get(n, "group"), em,
                           "the agent is not root: it can run apps only in its own group");
        else
            a->set_user = root;
    }
    if (err == LB_OK && root && (!a->set_user || a->uid == 0) && !allow_root)
        err = cfg_fail(d, un != NULL ? un : n, em,
                       "the agent runs as root and will not run an app as root: set user to an "
                       "unprivileged user, or allow_root: true");
    if (err == LB_OK)
        err = sandbox_limits(d, n, a, em);
    a->user = lb_strdup(user != NULL ? user : "");
    free(user);
    free(group);
    return err;
}
