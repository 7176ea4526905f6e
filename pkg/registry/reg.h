/*
 * The in-memory cluster view: servers, slaves, groups, overrides, sessions and
 * affinity as stored in etcd (fed by a range + watch over the prefix), plus the
 * load reports that agents and slaves publish. The master selects from it
 * without ever reading etcd on the request path.
 *
 * Keys under the prefix (values are protobuf records from proto/lb.proto):
 *   servers/<id> ServerInfo   slaves/<id> SlaveInfo   masters/<id> MasterInfo
 *   groups/<name> GroupInfo   overrides/<id> Override  leader (master id, raw)
 *   sessions/<sid> Session    affinity/<client>/<app> Affinity   load/<id> ServerLoad
 *
 * Thread-safety: every reg_* call that takes a reg * locks internally unless its
 * name ends in _locked; those require the caller to hold reg_lock(). Pointers
 * returned by _locked calls are valid only while the lock is held.
 */
#ifndef LB_REGISTRY_REG_H
#define LB_REGISTRY_REG_H

#include "etcd/etcd.h"
#include "lb.pb-c.h"
#include "select/sel.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct reg reg;

#define REG_EXITED_RING 64

typedef struct reg_server {
    Lb__ServerInfo *info;   /* owned, one block (reg_unpack_compact): free() */
    Lb__ServerLoad *load;   /* owned, one block (reg_load_compact): free(); last report,
                             * NULL before the first; without macs and sig */
    int64_t load_at_ms;     /* monotonic time of the last report */
    Lb__Override *override; /* owned, NULL when none */
    uint32_t pending;       /* inflight + n_unreported: what the last report cannot count */
    uint32_t inflight;      /* sessions chosen here whose launch has not answered yet */
    uint64_t *unreported;   /* launch_seq of launches done here that no report counts yet */
    size_t n_unreported, cap_unreported;
    bool stale; /* reports stopped (or never came): treated as down */
    int idx;    /* index in the current snapshot, -1 when not in it */
    /* health (reg_health.c) */
    int64_t seen_at_ms;       /* monotonic time the server appeared in the view */
    bool conn_down;           /* the master's connection to its agent closed */
    uint32_t consec_failures; /* launch failures since the last success */
    uint32_t ejections;       /* ejections in a row: the backoff's exponent */
    int64_t ejected_until_ms; /* monotonic; 0 when not ejected */
    char *eject_reason;       /* owned; NULL until the first ejection (most never are) */
    /* processes known alive (reg_live.c): pid text -> started_at (int64_t *);
     * exited_ring: the last REG_EXITED_RING pids its reports said exited,
     * allocated at the first exit (NULL until then: 10,000 idle servers would
     * carry 2.5 MiB of zeros) */
    struct hmap *live;
    int32_t *exited_ring;
    size_t exited_next;
} reg_server;

/* Outlier ejection (Envoy style): a server whose launches fail is taken out of
 * selection for base_ms * 2^(ejections-1), at most max_ms; a connection failure
 * (unreachable, not connected, timed out) ejects at once, an error answered by
 * the agent after `consecutive` in a row. At most max_percent of the servers
 * are ejected at one time (at least one may always be). */
typedef struct reg_eject_cfg {
    uint32_t consecutive;
    int64_t base_ms;
    int64_t max_ms;
    uint32_t max_percent;
} reg_eject_cfg;

typedef struct reg_slave {
    Lb__SlaveInfo *info; /* owned */
    uint32_t load;
    int idx;
} reg_slave;

/* prefix: e.g. "/lb/" (must end in '/'). report_stale_ms: a server whose last
 * load report is older is considered down (0: never). */
reg *reg_new(const char *prefix, int64_t report_stale_ms);
void reg_free(reg **r);

const char *reg_prefix(const reg *r);

void reg_lock(reg *r);
void reg_unlock(reg *r);

/* Feeding from etcd (etcd_watch_cb callbacks map onto these). */
void reg_reset(reg *r, const etcd_kvs *snapshot);
/* reg_reset for a snapshot of the keys in [lo, hi) only (hi NULL: no upper
 * bound): the families whose keys lie there are replaced, the others kept
 * (for one of several watches that split the prefix). Sessions are kept as
 * reg_reset keeps them. */
void reg_reset_range(reg *r, const etcd_kvs *snapshot, const char *lo, const char *hi);
/* Drops the sessions the snapshot (of the whole prefix) does not hold, and
 * returns how many. reg_reset keeps every session it does not replace: a
 * leader's view holds sessions whose writes are still queued. A standby's
 * view must not keep sessions deleted while its watch was away (a reload
 * after a compaction), or it would lead with them. Takes the lock. */
size_t reg_drop_sessions_absent(reg *r, const etcd_kvs *snapshot);
void reg_apply(reg *r, const etcd_event *evs, size_t n);

/* The report key (ServerInfo.report_key) server id registered, copied into pk
 * when it fits in cap bytes: its length, 0 when the record has none, -1 when the
 * server is unknown. Takes the lock. */
int reg_server_report_key(reg *r, const char *id, unsigned char *pk, size_t cap);
/* The same for slave id (SlaveInfo.report_key). */
int reg_slave_report_key(reg *r, const char *id, unsigned char *pk, size_t cap);

/* Feeding from load reports. Unknown ids are ignored (false). */
bool reg_on_server_load(reg *r, const Lb__ServerLoad *l);
/* The same for a batch, under one lock and without a copy: takes ownership of
 * each ls[i] (unpacked with the default allocator, e.g. detached from a
 * decoded Envelope), sets it to NULL, and frees those of unknown servers.
 * Returns how many were of known servers. */
size_t reg_on_server_loads(reg *r, Lb__ServerLoad **ls, size_t n);
bool reg_on_slave_load(reg *r, const Lb__SlaveLoad *l);

/* The selection snapshot, rebuilt when the view changed. Never NULL. */
sel_snapshot *reg_snapshot_locked(reg *r);
/* Marks servers whose reports went stale (or never came within report_stale of
 * their registration) as down, and ends ejections whose time is up (call
 * periodically, e.g. every 200 ms). */
void reg_check_stale(reg *r);

/* Health of servers as the master sees it (reg_health.c). */
void reg_set_eject_cfg(reg *r, const reg_eject_cfg *c);
/* The connection to server id's agent went away (up false) or came back. */
void reg_set_conn(reg *r, const char *id, bool up);
/* A launch on server id failed (conn: the agent could not be reached or did
 * not answer in time). Returns true when this ejected the server. Locks. */
bool reg_launch_failed(reg *r, const char *id, const char *why, bool conn);
/* A launch on server id succeeded: its failure count and backoff reset. */
void reg_launch_ok(reg *r, const char *id);
/* Why server s is out of selection, with the time left of an ejection, into
 * out ("" when it is not). Lock held. */
void reg_health_detail_locked(const reg *r, const reg_server *s, char *out, size_t cap);
/* Servers ejected and down right now. Lock held. */
void reg_health_counts_locked(const reg *r, size_t *ejected, size_t *down);

reg_server *reg_server_locked(reg *r, const char *id);
/* Pending sessions: what this master assigned that the server's last load report
 * cannot count yet, so least-loaded does not herd between reports.
 *   begin:    a session was chosen for server id (its launch is starting);
 *   fail:     that launch failed (the session never was);
 *   launched: the launch answered with the agent's launch_seq; the session stays
 *             pending until a report whose `launches` reaches that number.
 * Each updates the view and the snapshot. */
void reg_pending_begin_locked(reg *r, const char *id);
void reg_pending_fail_locked(reg *r, const char *id);
void reg_pending_launched_locked(reg *r, const char *id, uint64_t launch_seq);
/* Iterates servers: i from 0 while it returns non-NULL. */
reg_server *reg_server_next_locked(reg *r, size_t *i);
reg_slave *reg_slave_next_locked(reg *r, size_t *i);
reg_slave *reg_slave_locked(reg *r, const char *id);
size_t reg_n_servers_locked(const reg *r);
size_t reg_n_slaves_locked(const reg *r);

/* Sessions (owned by the registry once put). The view keeps each as a compact
 * record (reg_vsession, reg_sessions.c) and hands it out decoded into a
 * caller's reg_session_buf: the Session and its ProcessId are the buffer's,
 * their strings point into the view's record. The result is valid while the
 * view lock is held and that session is neither replaced nor deleted; copy
 * what must outlive that (reg_session_dup). Never free it, never put it back. */
typedef struct reg_session_buf {
    Lb__Session s;
    Lb__ProcessId p;
} reg_session_buf;
typedef struct reg_vsession reg_vsession;

/* Session sid decoded into buf, or NULL when the view has none. */
const Lb__Session *reg_session_locked(reg *r, const char *sid, reg_session_buf *buf);

/* ---- processes alive in the master's view (reg_live.c) ----------------------------
 * A sticky repeat is answered from the session table, without asking the agent,
 * only when the session's process is known alive: the agent answered a launch
 * with it, and since then every report of its server arrived (no seq gap), none
 * listed its pid as exited, and the server stayed up (no stale reports, no lost
 * agent connection). Anything else forgets what is known of that server. */

/* Records p (from an agent's launch reply on server id) as alive, unless a
 * report already said it exited or the server is down. View lock held. */
void reg_live_mark_locked(reg *r, const char *id, const Lb__ProcessId *p);
/* Whether session s's process is known alive. View lock held. */
bool reg_live_alive_locked(reg *r, const Lb__Session *s);
/* Forgets one process (a client said it could not reach it). View lock held. */
void reg_live_forget_locked(reg *r, const char *id, int32_t pid);
/* Session id of the client's affinity for app, or NULL. */
const char *reg_affinity_locked(reg *r, const char *client, const char *app);
/* Takes ownership of s (allocated with protobuf-c's default allocator, e.g.
 * reg_session_dup), which it frees after keeping a record of it; replaces any
 * session of the same id and points the client/app affinity at it. */
void reg_session_put_locked(reg *r, Lb__Session *s);
/* s as the view keeps it: one block (free() frees it), NULL strings kept as
 * "", unknown fields dropped; and a record decoded into buf (as
 * reg_session_locked does). Pure; exposed for their test. */
reg_vsession *reg_session_record(const Lb__Session *s);
const Lb__Session *reg_session_decode(const reg_vsession *v, reg_session_buf *buf);
void reg_session_del_locked(reg *r, const char *sid);
size_t reg_n_sessions_locked(const reg *r);
/* Calls fn for every session (lock held), decoded into a buffer that is
 * reused: fn must copy what it keeps. */
void reg_sessions_foreach_locked(reg *r, void (*fn)(const Lb__Session *s, void *arg), void *arg);

/* Unpacks a record of type d into one allocation: free() frees it all (never
 * free_unpacked). NULL when undecodable. How the view keeps ServerInfo. Pure;
 * any thread. */
ProtobufCMessage *reg_unpack_compact(const ProtobufCMessageDescriptor *d, size_t len,
                                     const uint8_t *data);

/* l as one allocation (free() frees it), without its MACs, signature and
 * unknown fields: how the view keeps a server's last report. Pure. */
Lb__ServerLoad *reg_load_compact(const Lb__ServerLoad *l);

/* A deep copy of a Session (for handing to a writer thread). */
Lb__Session *reg_session_dup(const Lb__Session *s);
void reg_session_free(Lb__Session *s);

/* etcd key helpers: out gets prefix + parts. */
void reg_key(const reg *r, char *out, size_t cap, const char *kind, const char *id);
void reg_affinity_key(const reg *r, char *out, size_t cap, const char *client, const char *app);

/* Current leader id from the `leader` key ("" when none). Copies into out. */
void reg_leader(reg *r, char *out, size_t cap);

/* A master's record, or NULL; iteration over masters: i from 0 while non-NULL. */
const Lb__MasterInfo *reg_master_locked(reg *r, const char *id);
const Lb__MasterInfo *reg_master_next_locked(reg *r, size_t *i);

/* Master rpc endpoint of the given master id, copied into out; false if unknown. */
bool reg_master_endpoint(reg *r, const char *id, char *out, size_t cap);

#endif
