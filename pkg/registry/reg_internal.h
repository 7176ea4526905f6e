/* Internal layout of the registry, shared by its files. */
#ifndef LB_REGISTRY_INTERNAL_H
#define LB_REGISTRY_INTERNAL_H

#include "common/hmap.h"
#include "registry/reg.h"

#include <pthread.h>

struct reg {
    pthread_mutex_t lock;
    char *prefix;
    size_t prefix_len;
    int64_t report_stale_ms;
    reg_eject_cfg eject;
    size_t n_ejected; /* servers with ejected_until_ms != 0 */

    hmap *servers;   /* id -> reg_server */
    hmap *slaves;    /* id -> reg_slave */
    hmap *masters;   /* id -> Lb__MasterInfo */
    hmap *groups;    /* name -> Lb__GroupInfo */
    hmap *overrides; /* server id -> Lb__Override (also linked from reg_server) */
    hmap *sessions;  /* sid -> reg_vsession (keyed: the key is read from it) */
    hmap *affinity;  /* "client/app" -> reg_vsession of sessions (borrowed; keyed) */
    char leader[128];

    /* selection snapshot and the label array it borrows (it copies the
     * server and slave structs, reg_snapshot.c) */
    bool dirty;
    int64_t built_ms; /* monotonic time of the last snapshot build */
    sel_snapshot *snap;
    sel_label *sel_labels;
};

void reg_snapshot_drop(reg *r);
/* Unlocks after a feeder's change, rebuilding a dirty snapshot first. */
void reg_unlock_settled(reg *r);
/* reg_live.c: drops what is known alive on s; applies report l (prev: the
 * report before it, NULL if none). View lock held. */
void reg_live_clear(reg_server *s);
void reg_live_on_load(reg_server *s, const Lb__ServerLoad *prev, const Lb__ServerLoad *l);
void reg_affinity_name(char *out, size_t cap, const char *client, const char *app);
/* reg_sessions.c: the keys of a session record (hmap_new_keyed's key_of), and
 * its expiry. */
const char *reg_session_id_key(const void *v);
const char *reg_session_aff_key(const void *v);
int64_t reg_session_expires(const reg_vsession *v);

#endif
