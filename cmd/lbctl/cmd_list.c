/*
 * lbctl list --app APP: the list-mode answer (via --slave) in the seed's
 * layout, one line per server: `endpoint STATUS users GROUP`, where endpoint
 * is SERVER_ID@HOST. -o json prints the servers as an array.
 */
#include "ctl_args.h"
#include "lbctl.h"

#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static void print_list(const ctl_opts *o, const Lb__ServerList *l)
{
    if (o->out == OUT_JSON) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < l->n_servers; i++) {
            const Lb__ServerEntry *e = l->servers[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "server", e->server_id);
            cJSON_AddStringToObject(j, "host", e->host);
            cJSON_AddStringToObject(j, "status", e->status);
            cJSON_AddNumberToObject(j, "users", e->users);
            cJSON_AddNumberToObject(j, "capacity", e->capacity);
            cJSON_AddStringToObject(j, "group", e->group);
            cJSON_AddNumberToObject(j, "group_rank", e->group_rank);
            cJSON_AddStringToObject(j, "zone", e->zone);
            cJSON_AddItemToArray(arr, j);
        }
        ctl_print_json(arr);
        return;
    }
    for (size_t i = 0; i < l->n_servers; i++) {
        const Lb__ServerEntry *e = l->servers[i];
        printf("%s@%s %s %u %s\n", e->server_id, e->host, e->status, e->users, e->group);
    }
}

int cmd_list(const ctl_opts *o, int argc, char **argv)
{
    const char *app = NULL;
    const ctl_flag flags[] = {{"--app", &app, NULL}};
    int urc = ctl_parse_flags("list", argc, argv, flags, 1, NULL, 0, NULL);
    if (urc != 0)
        return urc;
    if (app == NULL)
        return ctl_usage_error("list", "--app is required");
    char slave[256];
    if (ctl_slave_addr(o, NULL, slave, sizeof slave) != 0)
        return EXIT_FAIL;
    nng_socket s;
    lb_errmsg em = {{0}};
    if (ctl_dial_to(o, WIRE_ROLE_SLAVE, slave, &s, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        return EXIT_FAIL;
    }
    Lb__ListRequest lr = LB__LIST_REQUEST__INIT;
    lr.app = (char *)app;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_LIST_REQUEST;
    env.list_request = &lr;
    lb_err err = wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, &rep, &em);
    nng_close(s);
    int rc = EXIT_FAIL;
    if (err != LB_OK)
        fprintf(stderr, "lbctl: slave %s: %s\n", slave, em.text);
    else if (rep->body_case == LB__ENVELOPE__BODY_ERROR)
        fprintf(stderr, "lbctl: slave %s: %s\n", slave, rep->error->message);
    else if (rep->body_case != LB__ENVELOPE__BODY_SERVER_LIST)
        fprintf(stderr, "lbctl: slave %s answered an unexpected message\n", slave);
    else {
        print_list(o, rep->server_list);
        rc = EXIT_OK;
    }
    wire_free(&rep);
    return rc;
}
