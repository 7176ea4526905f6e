/*
 * List mode (the seed where the client chooses): every server of an app with
 * status, users and priority group, and the seed's pick rule.
 */
#include "client_int.h"

#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {"UP", "DOWN", "DRAINING", "DISABLED"};

const char *lb_status_name(lb_status s)
{
    return (unsigned)s < 4 ? status_names[s] : "UNKNOWN";
}

static lb_status status_of(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s != NULL && strcmp(s, status_names[i]) == 0)
            return (lb_status)i;
    return LB_STATUS_DOWN;
}

lb_err lb_client_list(lb_client *c, const char *app, lb_server_list *out)
{
    if (c == NULL || app == NULL || out == NULL)
        return lbc_fail(LB_EINVAL, "lb_client_list: client, app and out are required");
    memset(out, 0, sizeof *out);
    Lb__ListRequest lr = LB__LIST_REQUEST__INIT;
    lr.app = (char *)app;
    Lb__Envelope env = LB__ENVELOPE__INIT, *rep = NULL;
    env.body_case = LB__ENVELOPE__BODY_LIST_REQUEST;
    env.list_request = &lr;
    lb_err err = lbc_call_any(c, &env, &rep);
    if (err != LB_OK)
        return err;
    if (rep->body_case != LB__ENVELOPE__BODY_SERVER_LIST) {
        wire_free(&rep);
        return lbc_fail(LB_EPROTO, "list: unexpected answer");
    }
    const Lb__ServerList *sl = rep->server_list;
    lbc_copy(out->app, sizeof out->app, app);
    out->servers = calloc(sl->n_servers + 1, sizeof *out->servers);
    if (out->servers == NULL) {
        wire_free(&rep);
        return lbc_fail(LB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < sl->n_servers; i++) {
        const Lb__ServerEntry *e = sl->servers[i];
        lb_server *s = &out->servers[out->n++];
        lbc_copy(s->id, sizeof s->id, e->server_id);
        lbc_copy(s->host, sizeof s->host, e->host);
        snprintf(s->endpoint, sizeof s->endpoint, "%s@%s", s->id, s->host);
        s->status = status_of(e->status);
        s->users = e->users;
        s->capacity = e->capacity;
        lbc_copy(s->group, sizeof s->group, e->group);
        s->group_rank = e->group_rank;
        lbc_copy(s->zone, sizeof s->zone, e->zone);
    }
    wire_free(&rep);
    return LB_OK;
}

void lb_server_list_free(lb_server_list *l)
{
    if (l == NULL)
        return;
    free(l->servers);
    l->servers = NULL;
    l->n = 0;
}

/* xorshift64*: uniform in [0, 1). */
static double rng_next(uint64_t *st)
{
    uint64_t x = *st != 0 ? *st : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

/* Whether server a's group ranks before b's (rank, then name). */
static bool group_before(const lb_server *a, const lb_server *b)
{
    return a->group_rank != b->group_rank ? a->group_rank < b->group_rank
                                          : strcmp(a->group, b->group) < 0;
}

static bool same_group(const lb_server *a, const lb_server *b)
{
    return a->group_rank == b->group_rank && strcmp(a->group, b->group) == 0;
}

int lb_pick(const lb_server_list *l, uint64_t *rng_state)
{
    const lb_server *best = NULL;
    for (size_t i = 0; l != NULL && i < l->n; i++)
        if (l->servers[i].status == LB_STATUS_UP &&
            (best == NULL || group_before(&l->servers[i], best)))
            best = &l->servers[i];
    if (best == NULL)
        return -1;
    size_t live = 0, last = 0;
    double total = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->servers[i].status == LB_STATUS_UP && same_group(&l->servers[i], best)) {
            live++;
            total += l->servers[i].users;
            last = i;
        }
    if (live == 1)
        return (int)last;
    double u = rng_next(rng_state), acc = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->servers[i].status != LB_STATUS_UP || !same_group(&l->servers[i], best))
            continue;
        acc += total > 0 ? (1.0 - l->servers[i].users / total) / (double)(live - 1)
                         : 1.0 / (double)live;
        if (u < acc)
            return (int)i;
    }
    return (int)last;
}
