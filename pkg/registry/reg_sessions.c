/* Sessions and the client affinity derived from them.
 *
 * The view keeps each session as one small record of its own (reg_vsession):
 * the fixed fields, then its strings back to back. protobuf-c's structs cost
 * ~140 bytes of headers and pointers a session (Session + ProcessId), more
 * than the strings themselves; the record has a 33-byte header, ~110 bytes a
 * session in all where the compact Session block took ~240 (12 MiB less at
 * 100,000 sessions, README P9). Callers read a session decoded into a
 * reg_session_buf whose strings point into the record. Unknown fields are not
 * kept.
 *
 * The record's first string is the session's affinity name ("client/app"),
 * its second the session id, and the maps read their keys from it
 * (hmap_new_keyed): sessions by id, affinity by that name, an affinity entry's
 * value being the session record itself. So a session is one allocation plus
 * an 8-byte slot in each map. */
#include "registry/reg_internal.h"

#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    VS_PROCESS = 1,   /* has a ProcessId */
    VS_OWN_PSRV = 2,  /* the process's server_id differs from the session's: stored */
    VS_N_STR_MAX = 8, /* aff, sid, client, app, server, slave, host, process server */
};

struct reg_vsession {
    int64_t created_ms, expires_ms, started_at;
    int32_t pid;
    uint32_t port;
    uint8_t flags;
    char str[]; /* NUL-terminated, in the order of VS_N_STR_MAX's comment */
};

static const char *or_empty(const char *p)
{
    return p != NULL ? p : "";
}

reg_vsession *reg_session_record(const Lb__Session *s)
{
    const Lb__ProcessId *p = s->process;
    char name[512];
    reg_affinity_name(name, sizeof name, or_empty(s->client_id), or_empty(s->app));
    const char *strs[VS_N_STR_MAX] = {name,
                                      or_empty(s->session_id),
                                      or_empty(s->client_id),
                                      or_empty(s->app),
                                      or_empty(s->server_id),
                                      or_empty(s->slave_id)};
    size_t n_str = 6;
    uint8_t flags = 0;
    if (p != NULL) {
        flags |= VS_PROCESS;
        strs[n_str++] = or_empty(p->host);
        /* the process's server is the session's: stored once when they agree */
        if (strcmp(or_empty(p->server_id), strs[4]) != 0) {
            flags |= VS_OWN_PSRV;
            strs[n_str++] = or_empty(p->server_id);
        }
    }
    size_t len[VS_N_STR_MAX], total = sizeof(reg_vsession);
    for (size_t i = 0; i < n_str; i++)
        total += (len[i] = strlen(strs[i])) + 1;
    reg_vsession *v = lb_xcalloc(1, total);
    v->created_ms = s->created_ms;
    v->expires_ms = s->expires_ms;
    v->flags = flags;
    if (p != NULL) {
        v->pid = p->pid;
        v->port = p->port;
        v->started_at = p->started_at;
    }
    char *cur = v->str;
    for (size_t i = 0; i < n_str; i++) {
        memcpy(cur, strs[i], len[i] + 1);
        cur += len[i] + 1;
    }
    return v;
}

static const char *next_str(const char *p)
{
    return p + strlen(p) + 1;
}

const Lb__Session *reg_session_decode(const reg_vsession *v, reg_session_buf *buf)
{
    Lb__Session *s = &buf->s;
    lb__session__init(s);
    const char *cur = next_str(v->str); /* past the affinity name */
    s->session_id = (char *)cur;
    s->client_id = (char *)(cur = next_str(cur));
    s->app = (char *)(cur = next_str(cur));
    s->server_id = (char *)(cur = next_str(cur));
    s->slave_id = (char *)(cur = next_str(cur));
    s->created_ms = v->created_ms;
    s->expires_ms = v->expires_ms;
    if (v->flags & VS_PROCESS) {
        Lb__ProcessId *p = &buf->p;
        lb__process_id__init(p);
        p->host = (char *)(cur = next_str(cur));
        p->server_id = v->flags & VS_OWN_PSRV ? (char *)next_str(cur) : s->server_id;
        p->pid = v->pid;
        p->port = v->port;
        p->started_at = v->started_at;
        s->process = p;
    }
    return s;
}

const char *reg_session_id_key(const void *v)
{
    return next_str(((const reg_vsession *)v)->str);
}

const char *reg_session_aff_key(const void *v)
{
    return ((const reg_vsession *)v)->str;
}

int64_t reg_session_expires(const reg_vsession *v)
{
    return v->expires_ms;
}

const Lb__Session *reg_session_locked(reg *r, const char *sid, reg_session_buf *buf)
{
    const reg_vsession *v = hmap_get(r->sessions, sid);
    return v != NULL ? reg_session_decode(v, buf) : NULL;
}

const char *reg_affinity_locked(reg *r, const char *client, const char *app)
{
    char name[512];
    reg_affinity_name(name, sizeof name, client, app);
    const reg_vsession *v = hmap_get(r->affinity, name);
    return v != NULL ? reg_session_id_key(v) : NULL;
}

/* Drops the affinity entry of record v when it is v's (before v goes). */
static void affinity_drop(reg *r, const reg_vsession *v)
{
    const char *name = reg_session_aff_key(v);
    if (hmap_get(r->affinity, name) == v)
        hmap_del(r->affinity, name);
}

void reg_session_put_locked(reg *r, Lb__Session *in)
{
    reg_vsession *v = reg_session_record(in);
    lb__session__free_unpacked(in, NULL);
    reg_vsession *old = hmap_put(r->sessions, reg_session_id_key(v), v);
    if (old != NULL) {
        affinity_drop(r, old); /* its key lives in old's record */
        free(old);
    }
    /* Two live sessions of one client and app (a moved client's old session
     * is deleted in the same txn as its new one, so only briefly, or after a
     * load in key order): the affinity names the newer one. */
    const reg_vsession *cur = hmap_get(r->affinity, reg_session_aff_key(v));
    if (cur == NULL || cur->created_ms <= v->created_ms)
        hmap_put(r->affinity, reg_session_aff_key(v), v);
}

void reg_session_del_locked(reg *r, const char *sid)
{
    reg_vsession *v = hmap_del(r->sessions, sid);
    if (v == NULL)
        return;
    affinity_drop(r, v);
    free(v); /* one block, the maps' keys with it */
}

size_t reg_drop_sessions_absent(reg *r, const etcd_kvs *snapshot)
{
    char pre[512];
    int pl = snprintf(pre, sizeof pre, "%ssessions/", r->prefix);
    if (pl < 0 || (size_t)pl >= sizeof pre)
        return 0;
    hmap *in_snap = hmap_new_borrowed(); /* the snapshot's session ids (its own strings) */
    for (size_t i = 0; i < snapshot->n; i++) {
        const char *k = snapshot->kvs[i].key;
        if (k != NULL && strncmp(k, pre, (size_t)pl) == 0)
            hmap_put(in_snap, k + pl, (void *)1);
    }
    reg_lock(r);
    size_t n = 0, cap = 0, it = 0;
    char **gone = NULL;
    const char *id;
    void *v;
    while (hmap_next(r->sessions, &it, &id, &v)) {
        if (hmap_get(in_snap, id) != NULL)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            gone = realloc(gone, cap * sizeof *gone);
            if (gone == NULL)
                abort(); /* as lb_xcalloc does */
        }
        gone[n++] = lb_strdup(id);
    }
    for (size_t i = 0; i < n; i++) {
        reg_session_del_locked(r, gone[i]);
        free(gone[i]);
    }
    free(gone);
    reg_unlock(r);
    hmap_free(&in_snap, NULL);
    return n;
}

size_t reg_n_sessions_locked(const reg *r)
{
    return hmap_len(r->sessions);
}

void reg_sessions_foreach_locked(reg *r, void (*fn)(const Lb__Session *s, void *arg), void *arg)
{
    size_t it = 0;
    const char *id;
    void *v;
    reg_session_buf buf;
    while (hmap_next(r->sessions, &it, &id, &v))
        fn(reg_session_decode(v, &buf), arg);
}

Lb__Session *reg_session_dup(const Lb__Session *s)
{
    size_t len = lb__session__get_packed_size(s);
    uint8_t *buf = lb_xcalloc(1, len);
    lb__session__pack(s, buf);
    Lb__Session *copy = lb__session__unpack(NULL, len, buf);
    free(buf);
    if (copy == NULL)
        abort();
    return copy;
}

void reg_session_free(Lb__Session *s)
{
    if (s != NULL)
        lb__session__free_unpacked(s, NULL);
}
