/*
 * Which slave serves the client: the requesting one when it sits in the chosen
 * server's zone and has room (no redirect at all); else the least loaded slave
 * of that zone; else the least loaded slave anywhere.
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

int sel_slave_choose(const sel_snapshot *s, const sel_server *server, const char *requesting)
{
    int req = requesting != NULL && requesting[0] != '\0' ? sel_slave_find(s, requesting) : -1;
    int best = -1;

    if (s->n_slaves == 0)
        return -1;
    if (req >= 0 && strcmp(s->slaves[req].zone, server->zone) == 0 && !slave_over(&s->slaves[req]))
        return req;
    for (size_t i = sel_slave_zone_lower(s, server->zone); i < s->n_slaves; i++) {
        int sl = s->slave_by_zone[i];
        if (strcmp(s->slaves[sl].zone, server->zone) != 0)
            break;
        if (best < 0 || slave_better(s, sl, best, req))
            best = sl;
    }
    if (best >= 0 && !slave_over(&s->slaves[best]))
        return best;
    best = -1;
    for (size_t i = 0; i < s->n_slaves; i++)
        if (best < 0 || slave_better(s, (int)i, best, req))
            best = (int)i;
    return best;
}
