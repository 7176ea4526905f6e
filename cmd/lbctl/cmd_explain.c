/*
 * lbctl explain: asks the master for a dry run (no launch, no session) and
 * shows the choice, the alternates and, for every server, the rule that ruled
 * it out or its rank.
 */
#include "ctl_args.h"
#include "ctl_ops.h"
#include "lbctl.h"

#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_json(const Lb__SelectionInstruction *in)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "action",
                            in->action == LB__ACTION__REJECT     ? "REJECT"
                            : in->action == LB__ACTION__REDIRECT ? "REDIRECT"
                                                                 : "SERVE");
    cJSON_AddStringToObject(j, "server", in->server_id);
    cJSON_AddStringToObject(j, "slave", in->slave_id);
    cJSON_AddStringToObject(j, "reason", in->reason);
    cJSON_AddBoolToObject(j, "affinity", in->affinity);
    cJSON_AddBoolToObject(j, "moved", in->moved);
    cJSON_AddBoolToObject(j, "preferred", in->preferred);
    cJSON_AddStringToObject(j, "preferred_refused", in->preferred_refused);
    cJSON_AddStringToObject(j, "slave_reason", in->slave_reason);
    cJSON *alts = cJSON_AddArrayToObject(j, "alternates");
    for (size_t i = 0; i < in->n_alternates; i++)
        cJSON_AddItemToArray(alts, cJSON_CreateString(in->alternates[i]->server_id));
    cJSON *vs = cJSON_AddArrayToObject(j, "servers");
    for (size_t i = 0; i < in->n_verdicts; i++) {
        const Lb__Verdict *v = in->verdicts[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", v->server_id);
        cJSON_AddStringToObject(o, "zone", v->zone);
        cJSON_AddStringToObject(o, "group", v->group);
        cJSON_AddStringToObject(o, "verdict", v->verdict);
        cJSON_AddNumberToObject(o, "rank", v->rank);
        cJSON_AddStringToObject(o, "detail", v->detail);
        cJSON_AddItemToArray(vs, o);
    }
    ctl_print_json(j);
}

static int by_rank(const void *a, const void *b)
{
    const Lb__Verdict *x = *(Lb__Verdict *const *)a, *y = *(Lb__Verdict *const *)b;
    int rx = x->rank < 0 ? 1 << 30 : x->rank, ry = y->rank < 0 ? 1 << 30 : y->rank;
    return rx != ry ? (rx < ry ? -1 : 1) : strcmp(x->server_id, y->server_id);
}

static void print_table(Lb__SelectionInstruction *in)
{
    if (in->action == LB__ACTION__REJECT)
        printf("REJECT: %s\n", in->reason);
    else
        printf("chosen: server %s, slave %s (%s)%s%s%s\n", in->server_id,
               in->slave_id[0] ? in->slave_id : "-",
               in->action == LB__ACTION__SERVE ? "serve" : "redirect",
               in->affinity ? ", sticky" : "", in->moved ? ", moved: " : "",
               in->moved ? in->reason : "");
    if (in->slave_reason[0] != '\0')
        printf("slave: %s\n", in->slave_reason);
    if (in->preferred)
        printf("preferred server: honoured\n");
    else if (in->preferred_refused[0] != '\0')
        printf("preferred server: refused: %s\n", in->preferred_refused);
    printf("alternates:");
    for (size_t i = 0; i < in->n_alternates; i++)
        printf(" %s", in->alternates[i]->server_id);
    printf("%s\n\n", in->n_alternates ? "" : " none");
    qsort(in->verdicts, in->n_verdicts, sizeof *in->verdicts, by_rank);
    printf("%-16s %-10s %-10s %-13s %-5s %s\n", "SERVER", "ZONE", "GROUP", "VERDICT", "RANK",
           "DETAIL");
    for (size_t i = 0; i < in->n_verdicts; i++) {
        const Lb__Verdict *v = in->verdicts[i];
        char rank[16];
        snprintf(rank, sizeof rank, v->rank >= 0 ? "%d" : "-", v->rank);
        printf("%-16s %-10s %-10s %-13s %-5s %s\n", v->server_id, v->zone, v->group, v->verdict,
               rank, v->detail);
    }
}

int cmd_explain(const ctl_opts *o, int argc, char **argv)
{
    const char *app = NULL, *client = NULL, *location = "", *require = NULL, *slave = "";
    const char *arch = NULL, *os = NULL, *server = NULL;
    const ctl_flag flags[] = {{"--app", &app, NULL},
                              {"--client", &client, NULL},
                              {"--location", &location, NULL},
                              {"--require", &require, NULL},
                              {"--from-slave", &slave, NULL},
                              {"--arch", &arch, NULL},
                              {"--os", &os, NULL},
                              {"--server", &server, NULL}};
    int urc = ctl_parse_flags("explain", argc, argv, flags, sizeof flags / sizeof flags[0], NULL, 0,
                              NULL);
    if (urc != 0)
        return urc;
    if (app == NULL)
        return ctl_usage_error("explain", "--app is required");
    if (client == NULL)
        return ctl_usage_error("explain", "--client is required");
    char master[256];
    if (ctl_master_addr(o, master, sizeof master) != 0)
        return EXIT_FAIL;
    Lb__ClientRequest cr = LB__CLIENT_REQUEST__INIT;
    Lb__Requirements req = LB__REQUIREMENTS__INIT;
    char **labels = NULL;
    cr.app = (char *)app;
    cr.client_id = (char *)client;
    cr.location = (char *)location;
    if (require != NULL) {
        if (ctl_parse_require(require, &req, &labels) != 0) {
            ctl_free_labels(labels, req.n_labels);
            return EXIT_USAGE;
        }
        cr.requirements = &req;
    }
    if (ctl_apply_attrs(&req, &cr, arch, os) != 0) {
        ctl_free_labels(labels, req.n_labels);
        return EXIT_USAGE;
    }
    cr.preferred_server = (char *)(server != NULL ? server : "");
    Lb__SelectionRequest sr = LB__SELECTION_REQUEST__INIT;
    sr.request = &cr;
    sr.slave_id = (char *)slave;
    sr.dry_run = true;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_SELECTION_REQUEST;
    env.selection_request = &sr;
    nng_socket s;
    lb_errmsg em = {{0}};
    int rc = EXIT_FAIL;
    if (ctl_dial_to(o, WIRE_ROLE_MASTER, master, &s, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        goto out;
    }
    if (wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK) {
        fprintf(stderr, "lbctl: master %s: %s\n", master, em.text);
    } else if (rep->body_case == LB__ENVELOPE__BODY_ERROR) {
        fprintf(stderr, "lbctl: master %s: %s\n", master, rep->error->message);
    } else if (rep->body_case != LB__ENVELOPE__BODY_INSTRUCTION) {
        fprintf(stderr, "lbctl: master %s answered an unexpected message\n", master);
    } else {
        if (o->out == OUT_JSON)
            print_json(rep->instruction);
        else
            print_table(rep->instruction);
        rc = rep->instruction->action == LB__ACTION__REJECT ? EXIT_FAIL : EXIT_OK;
    }
    nng_close(s);
out:
    wire_free(&rep);
    ctl_free_labels(labels, req.n_labels);
    return rc;
}
