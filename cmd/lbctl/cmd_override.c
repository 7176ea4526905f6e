/*
 * lbctl drain / undrain / disable / enable / set-group (overrides/<server>),
 * group set (groups/<name>) and release (the master's operator release).
 * Overrides are written to etcd; the master's watch applies them.
 */
#include "ctl_args.h"
#include "ctl_ops.h"

#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t ovr_interrupted;

static void ovr_on_signal(int sig)
{
    (void)sig;
    ovr_interrupted = 1;
}

/* Reads overrides/<id> into *ov (zeroed when absent). */
static int ovr_read(etcd_client *c, const char *key, const char *id, Lb__Override **ov)
{
    etcd_kvs r = {0};
    lb_errmsg em = {{0}};
    if (etcd_get(c, key, &r, &em) != LB_OK) {
        ctl_etcd_failed("read", key, em.text);
        return -1;
    }
    *ov = r.n == 1 ? lb__override__unpack(NULL, r.kvs[0].value_len, r.kvs[0].value) : NULL;
    etcd_kvs_free(&r);
    if (*ov == NULL) {
        *ov = calloc(1, sizeof **ov);
        lb__override__init(*ov);
        (*ov)->server_id = lb_strdup(id);
        (*ov)->group = lb_strdup("");
    }
    return 0;
}

/* Writes ov, or deletes the key when it overrides nothing. */
static int ovr_write(etcd_client *c, const char *key, const Lb__Override *ov)
{
    lb_errmsg em = {{0}};
    lb_err err;
    if (!ov->drain && !ov->disable && ov->group[0] == '\0') {
        err = etcd_delete(c, key, false, NULL, &em);
    } else {
        size_t len = lb__override__get_packed_size(ov);
        uint8_t *buf = malloc(len + 1);
        lb__override__pack(ov, buf);
        err = etcd_put(c, key, buf, len, 0, NULL, &em);
        free(buf);
    }
    if (err != LB_OK)
        ctl_etcd_failed("write", key, em.text);
    return err == LB_OK ? 0 : -1;
}

static void ovr_print(const ctl_opts *o, const Lb__Override *ov, const char *what)
{
    if (o->out == OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "server", ov->server_id);
        cJSON_AddStringToObject(j, "action", what);
        cJSON_AddBoolToObject(j, "drain", ov->drain);
        cJSON_AddBoolToObject(j, "disable", ov->disable);
        cJSON_AddStringToObject(j, "group", ov->group);
        ctl_print_json(j);
    } else {
        printf("%s: %s (drain=%s disable=%s group=%s)\n", ov->server_id, what,
               ov->drain ? "yes" : "no", ov->disable ? "yes" : "no",
               ov->group[0] ? ov->group : "-");
    }
}

/* drain --wait: polls the server's sessions until none is left. */
static int ovr_wait(const ctl_opts *o, const char *id, int64_t timeout_ms)
{
    signal(SIGINT, ovr_on_signal);
    int64_t deadline = lb_mono_ms() + timeout_ms;
    long last = -1;
    for (;;) {
        etcd_client *c = NULL;
        ctl_view v;
        if (ctl_etcd_open(o, &c) != 0)
            return EXIT_FAIL;
        int rc = ctl_view_load(c, o, &v);
        etcd_close(&c);
        if (rc != 0)
            return EXIT_FAIL;
        long left = 0;
        for (size_t i = 0; i < v.n_sessions; i++)
            left += strcmp(v.sessions[i]->server_id, id) == 0;
        ctl_view_free(&v);
        if (left != last && o->out != OUT_JSON)
            printf("waiting: %s has %ld session(s)\n", id, left);
        fflush(stdout);
        last = left;
        if (left == 0)
            return EXIT_OK;
        if (ovr_interrupted || lb_mono_ms() >= deadline) {
            fprintf(stderr, "lbctl: %s still has %ld session(s)%s\n", id, left,
                    ovr_interrupted ? " (interrupted)" : " after the timeout");
            return EXIT_FAIL;
        }
        lb_sleep_ms(250);
    }
}

/* Applies argv[0] to ov; false on a usage error. */
static bool ovr_apply(int argc, char **argv, Lb__Override *ov, bool *wait, int64_t *timeout_ms)
{
    const char *cmd = argv[0];
    if (strcmp(cmd, "set-group") == 0) {
        if (argc != 3)
            return false;
        free(ov->group);
        ov->group = lb_strdup(argv[2]);
        return true;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(cmd, "drain") == 0 && strcmp(argv[i], "--wait") == 0)
            *wait = true;
        else if (strcmp(cmd, "drain") == 0 && strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            *timeout_ms = (int64_t)(atof(argv[++i]) * 1000);
        else
            return false;
    }
    if (strcmp(cmd, "drain") == 0)
        ov->drain = true;
    else if (strcmp(cmd, "undrain") == 0)
        ov->drain = false;
    else if (strcmp(cmd, "disable") == 0)
        ov->disable = true;
    else if (strcmp(cmd, "enable") == 0)
        ov->disable = false;
    else
        return false;
    return true;
}

/* The words after SERVER, checked before etcd is asked anything, so a typo
 * is named at once: drain takes --wait and --timeout S, the others nothing. */
static int ovr_check_args(int argc, char **argv)
{
    const char *cmd = argv[0];
    bool drain = strcmp(cmd, "drain") == 0;
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        if (drain && strcmp(argv[i], "--wait") == 0)
            continue;
        if (drain && strcmp(argv[i], "--timeout") == 0) {
            if (i + 1 >= argc)
                return ctl_usage_error(cmd, "--timeout needs a value");
            double t = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || t <= 0)
                return ctl_usage_error(cmd, "--timeout takes seconds > 0 (got '%s')", argv[i]);
            continue;
        }
        return ctl_usage_error(
            cmd, argv[i][0] == '-' ? "unknown flag '%s'" : "unexpected argument '%s'", argv[i]);
    }
    return 0;
}

int cmd_override(const ctl_opts *o, int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        return ctl_usage_error(argv[0], "which server? give SERVER (lbctl servers lists them)");
    if (strcmp(argv[0], "set-group") == 0 && argc != 3)
        return ctl_usage_error(
            argv[0], argc < 3 ? "which group? give GROUP after SERVER" : "unexpected argument '%s'",
            argc > 3 ? argv[3] : "");
    if (strcmp(argv[0], "set-group") != 0 && ovr_check_args(argc, argv) != 0)
        return EXIT_USAGE;
    const char *id = argv[1];
    bool wait = false;
    int64_t timeout_ms = 600000;
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return EXIT_FAIL;
    char skey[512], key[512];
    snprintf(skey, sizeof skey, "%sservers/%s", o->prefix, id);
    snprintf(key, sizeof key, "%soverrides/%s", o->prefix, id);
    etcd_kvs r = {0};
    lb_errmsg em = {{0}};
    Lb__Override *ov = NULL;
    int rc = EXIT_FAIL;
    if (etcd_get(c, skey, &r, &em) != LB_OK) {
        ctl_etcd_failed("read", skey, em.text);
    } else if (r.n == 0) {
        fprintf(stderr, "lbctl: no server '%s' is registered\n", id);
    } else if (ovr_read(c, key, id, &ov) == 0) {
        if (!ovr_apply(argc, argv, ov, &wait, &timeout_ms))
            rc = ctl_usage_error(argv[0], "unexpected or incomplete flag after %s", id);
        else if (ovr_write(c, key, ov) == 0) {
            ovr_print(o, ov, argv[0]);
            rc = EXIT_OK;
        }
    }
    etcd_kvs_free(&r);
    if (ov != NULL)
        lb__override__free_unpacked(ov, NULL);
    etcd_close(&c);
    if (rc == EXIT_OK && wait)
        rc = ovr_wait(o, id, timeout_ms);
    return rc;
}

int cmd_group(const ctl_opts *o, int argc, char **argv)
{
    char *end = NULL;
    long rank = argc == 4 ? strtol(argv[3], &end, 10) : 0;
    if (argc < 2 || strcmp(argv[1], "set") != 0)
        return ctl_usage_error("group", "the only subcommand is 'set NAME RANK'");
    if (argc != 4)
        return ctl_usage_error("group",
                               argc < 4 ? "give NAME and RANK" : "unexpected argument '%s'",
                               argc > 4 ? argv[4] : "");
    if (end == argv[3] || *end != '\0')
        return ctl_usage_error("group", "RANK must be an integer (got '%s')", argv[3]);
    Lb__GroupInfo g = LB__GROUP_INFO__INIT;
    g.name = argv[2];
    g.rank = (int32_t)rank;
    uint8_t buf[512];
    size_t len = lb__group_info__get_packed_size(&g);
    if (len > sizeof buf) {
        fprintf(stderr, "lbctl: group name too long\n");
        return EXIT_USAGE;
    }
    lb__group_info__pack(&g, buf);
    char key[512];
    snprintf(key, sizeof key, "%sgroups/%s", o->prefix, g.name);
    etcd_client *c = NULL;
    if (ctl_etcd_open(o, &c) != 0)
        return EXIT_FAIL;
    lb_errmsg em = {{0}};
    int rc = EXIT_OK;
    if (etcd_put(c, key, buf, len, 0, NULL, &em) != LB_OK) {
        ctl_etcd_failed("write", key, em.text);
        rc = EXIT_FAIL;
    } else if (o->out == OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "group", g.name);
        cJSON_AddNumberToObject(j, "rank", g.rank);
        ctl_print_json(j);
    } else {
        printf("group %s: rank %d\n", g.name, g.rank);
    }
    etcd_close(&c);
    return rc;
}

int cmd_release(const ctl_opts *o, int argc, char **argv)
{
    char addr[256];
    if (argc < 2)
        return ctl_usage_error("release",
                               "which session? give SESSION (lbctl sessions lists them)");
    if (argc > 2 || argv[1][0] == '-')
        return ctl_usage_error("release", "unexpected argument '%s'", argv[argc > 2 ? 2 : 1]);
    if (ctl_master_addr(o, addr, sizeof addr) != 0)
        return EXIT_FAIL;
    Lb__ReleaseRequest rr = LB__RELEASE_REQUEST__INIT;
    rr.session_id = argv[1];
    rr.client_id = "";
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_RELEASE_REQUEST;
    env.release_request = &rr;
    nng_socket s;
    lb_errmsg em = {{0}};
    int rc = EXIT_FAIL;
    if (ctl_dial_to(o, WIRE_ROLE_MASTER, addr, &s, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        return EXIT_FAIL;
    }
    if (wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK)
        fprintf(stderr, "lbctl: master %s: %s\n", addr, em.text);
    else if (rep->body_case == LB__ENVELOPE__BODY_ERROR)
        fprintf(stderr, "lbctl: master %s: %s\n", addr, rep->error->message);
    else if (rep->body_case != LB__ENVELOPE__BODY_SESSION_REPLY)
        fprintf(stderr, "lbctl: master %s answered an unexpected message\n", addr);
    else if (!rep->session_reply->ok)
        fprintf(stderr, "lbctl: release %s: %s\n", argv[1], rep->session_reply->error);
    else {
        rc = EXIT_OK;
        if (o->out == OUT_JSON) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "session", argv[1]);
            cJSON_AddBoolToObject(j, "released", true);
            ctl_print_json(j);
        } else {
            printf("session %s released\n", argv[1]);
        }
    }
    wire_free(&rep);
    nng_close(s);
    return rc;
}
