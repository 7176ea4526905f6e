/* lbctl stats: any daemon's counters over its RPC socket. */
#include "ctl_args.h"
#include "lbctl.h"

#include "wire/wire.h"

#include <cjson/cJSON.h>
#include <stdio.h>

int cmd_stats(const ctl_opts *o, int argc, char **argv)
{
    const char *addr = o->addr != NULL ? o->addr : o->master != NULL ? o->master : o->slave;
    int urc = ctl_parse_flags("stats", argc, argv, NULL, 0, NULL, 0, NULL);
    if (urc != 0)
        return urc;
    if (addr == NULL)
        return ctl_usage_error("stats", "which daemon? give --addr ADDR (or --master/--slave)");
    nng_socket s;
    lb_errmsg em = {{0}};
    if (ctl_dial(o, addr, &s, &em) != LB_OK) {
        fprintf(stderr, "lbctl: %s\n", em.text);
        return EXIT_FAIL;
    }
    Lb__StatsRequest sr = LB__STATS_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_STATS_REQUEST;
    env.stats_request = &sr;
    int rc = EXIT_FAIL;
    if (wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK) {
        fprintf(stderr, "lbctl: stats from %s: %s\n", addr, em.text);
    } else if (rep->body_case != LB__ENVELOPE__BODY_STATS_REPLY) {
        fprintf(stderr, "lbctl: %s answered something else than stats\n", addr);
    } else {
        const Lb__StatsReply *st = rep->stats_reply;
        if (o->out == OUT_JSON) {
            cJSON *obj = cJSON_CreateObject();
            cJSON_AddStringToObject(obj, "daemon", st->daemon);
            cJSON_AddStringToObject(obj, "id", st->id);
            cJSON *c = cJSON_AddObjectToObject(obj, "counters");
            for (size_t i = 0; i < st->n_stats; i++)
                cJSON_AddNumberToObject(c, st->stats[i]->name, (double)st->stats[i]->value);
            ctl_print_json(obj);
        } else {
            printf("# %s %s\n", st->daemon, st->id);
            for (size_t i = 0; i < st->n_stats; i++)
                printf("%s %llu\n", st->stats[i]->name, (unsigned long long)st->stats[i]->value);
        }
        rc = EXIT_OK;
    }
    wire_free(&rep);
    nng_close(s);
    return rc;
}
