/* lbctl: live load of every server from the leader master (LoadRequest). */
#ifndef LB_LBCTL_LIVE_H
#define LB_LBCTL_LIVE_H

#include "lbctl.h"

#include "common/hmap.h"
#include "etcd/etcd.h"
#include "lb.pb-c.h"

typedef struct ctl_live {
    struct Lb__Envelope *env; /* owns the entries */
    hmap *by_id;              /* server id -> const Lb__ServerLive * */
    char master[128];         /* the master that answered */
    char why[512];            /* when it failed */
} ctl_live;

/* Asks --master, else the leader named in etcd (through c). -1 with out->why
 * set when no master answered; out is usable (empty) either way and is freed
 * with ctl_live_free. */
int ctl_live_load(etcd_client *c, const ctl_opts *o, ctl_live *out);
/* The server's entry, or NULL. Borrowed from l. */
const Lb__ServerLive *ctl_live_get(const ctl_live *l, const char *id);
void ctl_live_free(ctl_live *l);

#endif
