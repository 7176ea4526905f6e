/*
 * Live load for lbctl: load reports go to every master directly and are not
 * stored in etcd (etcd holds state, not telemetry), so status, servers and top
 * ask the leader (or --master) for its view with one LoadRequest.
 */
#include "ctl_args.h"
#include "ctl_live.h"
#include "ctl_ops.h"

#include "common/util.h"
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The leader's endpoint for lbctl from etcd (leader key, then masters/<id>):
 * its operator endpoint when it has one (ctl_master_endpoint). */
static int leader_addr(etcd_client *c, const ctl_opts *o, char *out, size_t cap)
{
    char key[512];
    etcd_kvs kv = {0};
    lb_errmsg em = {{0}};
    snprintf(key, sizeof key, "%sleader", o->prefix);
    if (etcd_get(c, key, &kv, &em) != LB_OK || kv.n == 0) {
        etcd_kvs_free(&kv);
        return -1;
    }
    snprintf(key, sizeof key, "%smasters/%.*s", o->prefix, (int)kv.kvs[0].value_len,
             (const char *)kv.kvs[0].value);
    etcd_kvs_free(&kv);
    int rc = -1;
    if (etcd_get(c, key, &kv, &em) == LB_OK && kv.n == 1) {
        Lb__MasterInfo *mi = lb__master_info__unpack(NULL, kv.kvs[0].value_len, kv.kvs[0].value);
        if (mi != NULL && ctl_master_endpoint(mi)[0] != '\0') {
            snprintf(out, cap, "%s", ctl_master_endpoint(mi));
            rc = 0;
        }
        if (mi != NULL)
            lb__master_info__free_unpacked(mi, NULL);
    }
    etcd_kvs_free(&kv);
    return rc;
}

int ctl_live_load(etcd_client *c, const ctl_opts *o, ctl_live *out)
{
    memset(out, 0, sizeof *out);
    out->by_id = hmap_new();
    char addr[512];
    if (o->master != NULL)
        snprintf(addr, sizeof addr, "%s", o->master);
    else if (leader_addr(c, o, addr, sizeof addr) != 0) {
        snprintf(out->why, sizeof out->why, "no leader master in etcd");
        return -1;
    }
    nng_socket s;
    lb_errmsg em = {{0}};
    if (ctl_dial(o, addr, &s, &em) != LB_OK) {
        snprintf(out->why, sizeof out->why, "%.200s: %.300s", addr, em.text);
        return -1;
    }
    Lb__LoadRequest lr = LB__LOAD_REQUEST__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = wire_next_id();
    env.body_case = LB__ENVELOPE__BODY_LOAD_REQUEST;
    env.load_request = &lr;
    Lb__Envelope *rep = NULL;
    int rc = -1;
    if (wire_call(s, &env, o->timeout_ms, WIRE_TRANSPORT_MAX, &rep, &em) != LB_OK)
        snprintf(out->why, sizeof out->why, "%.200s: %.300s", addr, em.text);
    else if (rep->body_case != LB__ENVELOPE__BODY_LOAD_LIST)
        snprintf(out->why, sizeof out->why, "%.200s: %.300s", addr,
                 rep->body_case == LB__ENVELOPE__BODY_ERROR ? rep->error->message
                                                            : "unexpected answer");
    else {
        for (size_t i = 0; i < rep->load_list->n_servers; i++)
            hmap_put(out->by_id, rep->load_list->servers[i]->server_id, rep->load_list->servers[i]);
        snprintf(out->master, sizeof out->master, "%s", rep->load_list->master_id);
        out->env = rep;
        rep = NULL;
        rc = 0;
    }
    wire_free(&rep);
    nng_close(s);
    return rc;
}

const Lb__ServerLive *ctl_live_get(const ctl_live *l, const char *id)
{
    return l->by_id != NULL ? hmap_get(l->by_id, id) : NULL;
}

void ctl_live_free(ctl_live *l)
{
    hmap_free(&l->by_id, NULL);
    Lb__Envelope *env = l->env;
    wire_free(&env);
    memset(l, 0, sizeof *l);
}
