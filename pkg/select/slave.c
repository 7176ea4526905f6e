/*
 * Which slave serves the client. Only slaves that front the app and that the
 * chosen server is reachable through are candidates (EP1180886 [0095]: some
 * servers are reached only through certain slaves). Among them: the slave of
 * the client's session while it is a candidate and the client stays on its
 * server (or the slave is in the new server's zone), full or not (the client is
 * served there already; claims 5 and 9 of WO03/105439: the slave is chosen
 * from the client's request); else the requesting one when it sits in the
 * chosen server's zone, or is named by its reachable_via, and has room (no
 * redirect at all); else the least loaded slave of that zone; else the least
 * loaded slave anywhere.
 *
 * "Least loaded" is load / limit; a slave without a limit (0) counts as empty
 * and ties are broken by raw load, then in favour of the requesting slave
 * (one redirect fewer), then by id. A slave at or over its limit is only
 * picked when no slave anywhere has room, so a zone whose slaves are all full
 * sends the client to a slave elsewhere rather than to an overloaded one.
 *
 * Slaves are front doors, tens not thousands: the zone's slaves are found by
 * binary search and scanned; the global scan only runs when that zone has no
 * slave with room.
 */
#include "select/sel_internal.h"

#include <stdio.h>
#include <string.h>

static bool slave_over(const sel_slave *sl)
{
    return sl->limit > 0 && sl->load >= sl->limit;
}

/* Compares load / limit of two slaves, a slave without a limit counting 0. */
static int slave_util_cmp(const sel_slave *x, const sel_slave *y)
{
    uint64_t nx = x->limit ? x->load : 0, dx = x->limit ? x->limit : 1;
    uint64_t ny = y->limit ? y->load : 0, dy = y->limit ? y->limit : 1;
    uint64_t l = nx * dy, r = ny * dx;
    return (l > r) - (l < r);
}

/* True when slave a is a better choice than b (req is the requesting index). */
static bool slave_better(const sel_snapshot *s, int a, int b, int req)
{
    const sel_slave *x = &s->slaves[a], *y = &s->slaves[b];
    bool ox = slave_over(x), oy = slave_over(y);
    if (ox != oy)
        return !ox;
    int c = slave_util_cmp(x, y);
    if (c != 0)
        return c < 0;
    if (x->load != y->load)
        return x->load < y->load;
    if ((a == req) != (b == req))
        return a == req;
    return strcmp(x->id, y->id) < 0;
}

/* Slave i can be paired with server for app. */
static bool slave_ok(const sel_snapshot *s, int i, const sel_server *server, const char *app)
{
    return sel_slave_fronts(&s->slaves[i], app) && sel_slave_reaches(&s->slaves[i], server);
}

static void slave_load_text(const sel_slave *sl, char *out, size_t n)
{
    if (sl->limit > 0)
        snprintf(out, n, "load %u/%u", sl->load, sl->limit);
    else
        snprintf(out, n, "load %u, no limit", sl->load);
}

int sel_slave_choose(const sel_snapshot *s, const sel_server *server, const sel_request *req,
                     sel_slave_rule *rule)
{
    const char *app = req->app;
    const char *rq = req->requesting_slave, *as = req->affinity_slave;
    int me = rq != NULL && rq[0] != '\0' ? sel_slave_find(s, rq) : -1;
    int aff = as != NULL && as[0] != '\0' ? sel_slave_find(s, as) : -1;
    int best = -1;

    if (me >= 0 && !slave_ok(s, me, server, app))
        me = -1;
    *rule = SEL_SLAVE_SESSION;
    if (aff >= 0 && slave_ok(s, aff, server, app) &&
        (server->n_reachable_via > 0 || strcmp(s->slaves[aff].zone, server->zone) == 0 ||
         (req->affinity_server != NULL && strcmp(req->affinity_server, server->id) == 0)))
        return aff;
    *rule = SEL_SLAVE_REQUESTING;
    if (me >= 0 && !slave_over(&s->slaves[me]) &&
        (strcmp(s->slaves[me].zone, server->zone) == 0 || server->n_reachable_via > 0))
        return me;
    for (size_t i = sel_slave_zone_lower(s, server->zone); i < s->n_slaves; i++) {
        int sl = s->slave_by_zone[i];
        if (strcmp(s->slaves[sl].zone, server->zone) != 0)
            break;
        if (slave_ok(s, sl, server, app) && (best < 0 || slave_better(s, sl, best, me)))
            best = sl;
    }
    *rule = SEL_SLAVE_ZONE;
    if (best >= 0 && !slave_over(&s->slaves[best]))
        return best;
    best = -1;
    for (size_t i = 0; i < s->n_slaves; i++)
        if (slave_ok(s, (int)i, server, app) && (best < 0 || slave_better(s, (int)i, best, me)))
            best = (int)i;
    *rule = best < 0 ? SEL_SLAVE_NONE : SEL_SLAVE_ANY;
    return best;
}

/* The text is made only when asked for (explain, the master's answer): a
 * decision costs a few hundred ns, and formatting would double it. */
void sel_slave_reason(const sel_snapshot *s, const sel_request *req, const sel_result *r, char *out,
                      size_t n)
{
    const sel_server *server = r->server >= 0 ? &s->servers[r->server] : NULL;
    const sel_slave *sl = r->slave >= 0 ? &s->slaves[r->slave] : NULL;
    char load[48] = "";
    if (n > 0)
        out[0] = '\0';
    if (server == NULL || (sl == NULL && r->slave_rule != SEL_SLAVE_NONE))
        return;
    const char *via = server->n_reachable_via > 0 ? " (reachable_via)" : "";
    if (sl != NULL)
        slave_load_text(sl, load, sizeof(load));
    switch (r->slave_rule) {
    case SEL_SLAVE_SESSION:
        snprintf(out, n, "client's session slave%s", via);
        break;
    case SEL_SLAVE_REQUESTING:
        snprintf(out, n, "requesting slave, zone %s, %s%s", sl->zone, load, via);
        break;
    case SEL_SLAVE_ZONE:
        snprintf(out, n, "least loaded slave of zone %s, %s%s", server->zone, load, via);
        break;
    case SEL_SLAVE_ANY:
        if (server->n_reachable_via > 0)
            snprintf(out, n, "least loaded slave the server is reachable via, zone %s, %s",
                     sl->zone, load);
        else
            snprintf(out, n, "least loaded slave (zone %s has none with room), %s", server->zone,
                     load);
        break;
    case SEL_SLAVE_NONE:
        snprintf(out, n, "no slave fronts app '%s': the requesting slave serves", req->app);
        break;
    }
}
