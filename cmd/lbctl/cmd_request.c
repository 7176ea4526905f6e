/*
 * lbctl request: acts as a client. Asks a slave, follows REDIRECTs (at most
 * MAX_HOPS, refusing to revisit an endpoint), prints each hop and the final
 * assignment.
 */
#include "ctl_args.h"
#include "lbctl.h"

#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOPS 3

typedef struct req_args {
    const char *app, *client, *location, *require, *arch, *os, *server, *visited, *unreachable,
        *token, *claim;
} req_args;

int ctl_apply_attrs(Lb__Requirements *r, Lb__ClientRequest *cr, const char *arch, const char *os)
{
    if ((arch != NULL && arch[0] == '\0') || (os != NULL && os[0] == '\0')) {
        fprintf(stderr, "lbctl: --arch and --os take a non-empty value\n");
        return -1;
    }
    if (arch != NULL)
        r->arch = (char *)arch;
    if (os != NULL)
        r->os = (char *)os;
    if (arch != NULL || os != NULL)
        cr->requirements = r;
    return 0;
}

int ctl_parse_require(const char *spec, Lb__Requirements *r, char ***labels)
{
    char *copy = lb_strdup(spec), *save = NULL;
    int rc = 0;
    *labels = calloc(strlen(spec) + 1, sizeof **labels);
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            rc = -1;
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(tok, "cpu") == 0) {
            char *end;
            r->min_cpu = strtod(v, &end);
            rc = *end == '\0' ? 0 : -1;
        } else if (strcmp(tok, "mem") == 0) {
            rc = lb_parse_size(v, &r->min_mem_bytes) ? 0 : -1;
        } else if (strcmp(tok, "label") == 0) {
            (*labels)[r->n_labels++] = lb_strdup(v);
        } else if (strcmp(tok, "arch") == 0 || strcmp(tok, "os") == 0) {
            /* an advertised attribute, matched like a label of that key */
            size_t n = strlen(tok) + strlen(v) + 2;
            char *kv = lb_xcalloc(1, n);
            snprintf(kv, n, "%s=%s", tok, v);
            (*labels)[r->n_labels++] = kv;
            rc = v[0] != '\0' ? 0 : -1;
        } else {
            rc = -1;
        }
        if (rc != 0)
            break;
    }
    r->labels = *labels;
    free(copy);
    if (rc != 0)
        fprintf(stderr,
                "lbctl: --require takes cpu=N,mem=SIZE,label=K[=V],arch=A,os=O (got '%s')\n", spec);
    return rc;
}

void ctl_free_labels(char **labels, size_t n)
{
    for (size_t i = 0; labels != NULL && i < n; i++)
        free(labels[i]);
    free(labels);
}

static cJSON *alternates_json(const Lb__SelectionInstruction *in)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < in->n_alternates; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "server", in->alternates[i]->server_id);
        cJSON_AddStringToObject(a, "host", in->alternates[i]->host);
        cJSON_AddStringToObject(a, "zone", in->alternates[i]->zone);
        cJSON_AddItemToArray(arr, a);
    }
    return arr;
}

/* Hot spares of a new session (master spares: {app: K}). */
static cJSON *spares_json(const Lb__SelectionInstruction *in)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < in->n_spares; i++) {
        const Lb__SpareProcess *sp = in->spares[i];
        cJSON *a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "server", sp->server_id);
        cJSON_AddNumberToObject(a, "pid", sp->process ? sp->process->pid : 0);
        cJSON_AddStringToObject(a, "host",
                                sp->process && sp->process->host ? sp->process->host : "");
        cJSON_AddNumberToObject(a, "port", sp->process ? sp->process->port : 0);
        cJSON_AddStringToObject(a, "session", sp->session_id);
        cJSON_AddNumberToObject(a, "expires_ms", (double)sp->expires_ms);
        cJSON_AddItemToArray(arr, a);
    }
    return arr;
}

static void print_final(const ctl_opts *o, const Lb__SelectionInstruction *in, char **hops,
                        size_t n_hops, const char *serving_slave)
{
    const Lb__ProcessId *p = in->process;
    if (o->out == OUT_JSON) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "action", in->action == LB__ACTION__REJECT ? "REJECT" : "SERVE");
        cJSON *h = cJSON_AddArrayToObject(j, "hops");
        for (size_t i = 0; i < n_hops; i++)
            cJSON_AddItemToArray(h, cJSON_CreateString(hops[i]));
        cJSON_AddBoolToObject(j, "redirected", n_hops > 1);
        if (in->action == LB__ACTION__REJECT) {
            cJSON_AddStringToObject(j, "reason", in->reason);
        } else {
            cJSON_AddStringToObject(j, "slave", in->slave_id);
            cJSON_AddStringToObject(j, "slave_endpoint", serving_slave);
            cJSON_AddStringToObject(j, "server", in->server_id);
            cJSON_AddNumberToObject(j, "pid", p ? p->pid : 0);
            cJSON_AddStringToObject(j, "host", p && p->host ? p->host : "");
            cJSON_AddNumberToObject(j, "port", p ? p->port : 0);
            cJSON_AddStringToObject(j, "session", in->session_id);
            cJSON_AddBoolToObject(j, "confirmed", in->confirmed);
            cJSON_AddBoolToObject(j, "affinity", in->affinity);
            cJSON_AddBoolToObject(j, "moved", in->moved);
            cJSON_AddStringToObject(j, "reason", in->reason);
            cJSON_AddItemToObject(j, "alternates", alternates_json(in));
            cJSON_AddItemToObject(j, "spares", spares_json(in));
            cJSON_AddBoolToObject(j, "preferred", in->preferred);
            cJSON_AddStringToObject(j, "slave_reason", in->slave_reason);
        }
        cJSON_AddStringToObject(j, "preferred_refused", in->preferred_refused);
        ctl_print_json(j);
        return;
    }
    if (in->preferred_refused[0] != '\0')
        printf("preferred server refused: %s\n", in->preferred_refused);
    if (in->action == LB__ACTION__REJECT) {
        printf("REJECT: %s\n", in->reason);
        return;
    }
    printf("SERVE by slave %s (%s): server %s, pid %d at %s:%u, session %s%s\n", in->slave_id,
           serving_slave, in->server_id, p ? p->pid : 0, p && p->host ? p->host : "",
           p ? p->port : 0, in->session_id, in->confirmed ? " (confirmed)" : "");
    if (in->moved)
        printf("moved: %s\n", in->reason);
    if (in->preferred)
        printf("preferred server %s honoured\n", in->server_id);
}

/* One hop: asks the slave at addr; *rep gets its answer. -1 when the slave
 * could not be asked (dial, send, answer), -2 when it answered an error. */
static int ask(const ctl_opts *o, const char *addr, Lb__ClientRequest *cr, Lb__Envelope **rep)
{
    nng_socket s;
    lb_errmsg em = {{0}};
    if (ctl_dial_to(o, WIRE_ROLE_SLAVE, addr, &s, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        return -1;
    }
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_CLIENT_REQUEST;
    env.client_request = cr;
    lb_err err = wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, rep, &em);
    nng_close(s);
    if (err != LB_OK) {
        fprintf(stderr, "lbctl: slave %s: %s\n", addr, em.text);
        return -1;
    }
    if ((*rep)->body_case == LB__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "lbctl: slave %s: %s (%s)\n", addr, (*rep)->error->message,
                lb_strerror((lb_err)(*rep)->error->code));
        return -2;
    }
    if ((*rep)->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
        fprintf(stderr, "lbctl: slave %s answered an unexpected message\n", addr);
        return -2;
    }
    return 0;
}

/* A hop: --slave (or a redirect's endpoint) may be a name that resolves to
 * several slaves (WO03/105439 claim 8); each address is tried in order until
 * one answers. */
static int ask_first(const ctl_opts *o, char **addr, Lb__ClientRequest *cr, Lb__Envelope **rep)
{
    char **eps = NULL;
    size_t n = 0;
    int rc = -1;
    if (wire_endpoint_expand(*addr, &eps, &n) != LB_OK)
        return -1;
    for (size_t i = 0; i < n && rc == -1; i++) {
        if (n > 1 && o->out != OUT_JSON)
            printf("entry %s: trying %s (%zu of %zu)\n", *addr, eps[i], i + 1, n);
        rc = ask(o, eps[i], cr, rep);
        if (rc == 0) {
            free(*addr);
            *addr = lb_strdup(eps[i]);
        }
    }
    wire_endpoints_free(&eps, n);
    return rc;
}

static int follow(const ctl_opts *o, const char *first, Lb__ClientRequest *cr)
{
    char *hops[MAX_HOPS + 1];
    size_t n_hops = 0;
    char *addr = lb_strdup(first);
    Lb__Envelope *rep = NULL, *prev = NULL;
    Lb__Preselection pre = LB__PRESELECTION__INIT;
    int rc = EXIT_FAIL;
    for (;;) {
        for (size_t i = 0; i < n_hops; i++) {
            if (strcmp(hops[i], addr) == 0) {
                fprintf(stderr, "lbctl: redirect loop: %s visited twice\n", addr);
                free(addr);
                goto out;
            }
        }
        if (n_hops == MAX_HOPS) {
            fprintf(stderr, "lbctl: more than %d hops\n", MAX_HOPS);
            free(addr);
            goto out;
        }
        hops[n_hops++] = addr;
        if (ask_first(o, &hops[n_hops - 1], cr, &rep) != 0)
            goto out;
        addr = hops[n_hops - 1];
        const Lb__SelectionInstruction *in = rep->instruction;
        if (in->action != LB__ACTION__REDIRECT) {
            print_final(o, in, hops, n_hops, addr);
            rc = in->action == LB__ACTION__REJECT ? EXIT_FAIL : EXIT_OK;
            goto out;
        }
        if (o->out != OUT_JSON && in->shed)
            printf("hop %zu: %s -> REDIRECT to slave %s (%s): shed by a full slave\n", n_hops, addr,
                   in->slave_id, in->slave_endpoint);
        else if (o->out != OUT_JSON)
            printf("hop %zu: %s -> REDIRECT to slave %s (%s), server %s pid %d\n", n_hops, addr,
                   in->slave_id, in->slave_endpoint, in->server_id,
                   in->process ? in->process->pid : 0);
        /* the next hop carries the preselection and the slaves visited so far */
        pre.server_id = in->server_id;
        pre.process = in->process;
        pre.session_id = in->session_id;
        pre.slave_id = in->slave_id;
        cr->preselected = &pre;
        cr->visited = in->visited;
        cr->n_visited = in->n_visited;
        addr = lb_strdup(in->slave_endpoint);
        wire_free(&prev);
        prev = rep; /* pre points into it */
        rep = NULL;
    }
out:
    wire_free(&rep);
    wire_free(&prev);
    for (size_t i = 0; i < n_hops; i++)
        free(hops[i]);
    return rc;
}

int cmd_request(const ctl_opts *o, int argc, char **argv)
{
    req_args a = {0};
    const ctl_flag flags[] = {{"--app", &a.app, NULL},
                              {"--client", &a.client, NULL},
                              {"--location", &a.location, NULL},
                              {"--require", &a.require, NULL},
                              {"--arch", &a.arch, NULL},
                              {"--os", &a.os, NULL},
                              {"--server", &a.server, NULL},
                              {"--visited", &a.visited, NULL},
                              {"--unreachable-pid", &a.unreachable, NULL},
                              {"--claim-spare", &a.claim, NULL},
                              {"--token", &a.token, NULL}};
    int urc = ctl_parse_flags("request", argc, argv, flags, sizeof flags / sizeof flags[0], NULL, 0,
                              NULL);
    if (urc != 0)
        return urc;
    if (a.app == NULL)
        return ctl_usage_error("request", "--app is required");
    if (a.client == NULL)
        return ctl_usage_error("request", "--client is required");
    char slave[256];
    if (ctl_slave_addr(o, a.location, slave, sizeof slave) != 0)
        return EXIT_FAIL;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__Requirements req = LB__REQUIREMENTS__INIT;
    char **labels = NULL;
    cr.client_id = (char *)a.client;
    cr.app = (char *)a.app;
    /* a slave with require_tokens wants one (lbctl token issue); env for scripts */
    cr.token = (char *)(a.token != NULL        ? a.token
                        : getenv("LBCP_TOKEN") ? getenv("LBCP_TOKEN")
                                               : "");
    cr.location = (char *)(a.location != NULL ? a.location : "");
    if (a.require != NULL) {
        if (ctl_parse_require(a.require, &req, &labels) != 0) {
            free(labels);
            return EXIT_USAGE;
        }
        cr.requirements = &req;
    }
    if (ctl_apply_attrs(&req, &cr, a.arch, a.os) != 0) {
        ctl_free_labels(labels, req.n_labels);
        return EXIT_USAGE;
    }
    cr.preferred_server = (char *)(a.server != NULL ? a.server : "");
    cr.claim_spare = (char *)(a.claim != NULL ? a.claim : "");
    if (a.unreachable != NULL) { /* as liblbclient says after a failed connect */
        char *end = NULL;
        long pid = strtol(a.unreachable, &end, 10);
        if (end == a.unreachable || *end != '\0' || pid <= 0 || pid > INT32_MAX) {
            ctl_free_labels(labels, req.n_labels);
            return ctl_usage_error("request", "--unreachable-pid takes a positive pid");
        }
        cr.unreachable_pid = (int32_t)pid;
    }
    /* --visited: slaves the request claims to have seen already, to show (and
     * test) that no slave or master redirects back to one of them */
    char *vcopy = a.visited != NULL ? lb_strdup(a.visited) : NULL, *save = NULL;
    char **vis = a.visited != NULL ? lb_xcalloc(strlen(a.visited) + 1, sizeof *vis) : NULL;
    for (char *t = vcopy ? strtok_r(vcopy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        vis[cr.n_visited++] = t;
    cr.visited = vis;
    int rc = follow(o, slave, &cr);
    free(vis);
    free(vcopy);
    ctl_free_labels(labels, req.n_labels);
    return rc;
}
