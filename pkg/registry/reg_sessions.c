/* Sessions and the client affinity derived from them.
 *
 * The view holds each session compact: one allocation with the Session, its
 * ProcessId and their strings, instead of protobuf-c's nine (a struct and a
 * string each, 16 bytes of malloc overhead and rounding apiece): at 100,000
 * sessions that is ~20 MiB less (README P9). Unknown fields are not kept.
 * View sessions are therefore freed with free(), never free_unpacked.
 *
 * The block also holds the session's affinity name ("client/app"), first
 * after the structs, and the maps read their keys from it (hmap_new_keyed,
 * reg_session_id_key / reg_session_aff_key): sessions are keyed by the block's
 * session_id, affinity by that name, and an affinity entry's value is the
 * session itself, not a copy of its id. So a session is one allocation plus an
 * 8-byte slot in each map (README P9). */
#include "registry/reg_internal.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static size_t str_size(const char *p)
{
    return p != NULL ? strlen(p) + 1 : 0;
}

static char *str_put(char **cur, const char *src)
{
    if (src == NULL)
        return NULL;
    size_t n = strlen(src) + 1;
    char *out = *cur;
    memcpy(out, src, n);
    *cur += n;
    return out;
}

static size_t head_size(bool has_process)
{
    return sizeof(Lb__Session) + (has_process ? sizeof(Lb__ProcessId) : 0);
}

/* The affinity name stored in view session s (reg_session_compact). */
static const char *aff_name(const Lb__Session *s)
{
    return (const char *)s + head_size(s->process != NULL);
}

const char *reg_session_id_key(const void *s)
{
    return ((const Lb__Session *)s)->session_id;
}

const char *reg_session_aff_key(const void *s)
{
    return aff_name(s);
}

Lb__Session *reg_session_compact(const Lb__Session *s)
{
    const Lb__ProcessId *p = s->process;
    char name[512];
    reg_affinity_name(name, sizeof name, s->client_id != NULL ? s->client_id : "",
                      s->app != NULL ? s->app : "");
    /* the process's server is the session's: stored once when they agree */
    bool same_srv = p != NULL && p->server_id != NULL && s->server_id != NULL &&
                    strcmp(p->server_id, s->server_id) == 0;
    size_t head = head_size(p != NULL);
    size_t n = head + strlen(name) + 1 + str_size(s->session_id) + str_size(s->client_id) +
               str_size(s->app) + str_size(s->server_id) + str_size(s->slave_id);
    if (p != NULL)
        n += str_size(p->host) + (same_srv ? 0 : str_size(p->server_id));
    unsigned char *b = lb_xcalloc(1, n);
    Lb__Session *c = (Lb__Session *)b;
    *c = *s;
    c->base.n_unknown_fields = 0;
    c->base.unknown_fields = NULL;
    char *cur = (char *)b + head;
    str_put(&cur, name);
    c->session_id = str_put(&cur, s->session_id);
    c->client_id = str_put(&cur, s->client_id);
    c->app = str_put(&cur, s->app);
    c->server_id = str_put(&cur, s->server_id);
    c->slave_id = str_put(&cur, s->slave_id);
    if (p != NULL) {
        Lb__ProcessId *cp = (Lb__ProcessId *)(b + sizeof(Lb__Session));
        *cp = *p;
        cp->base.n_unknown_fields = 0;
        cp->base.unknown_fields = NULL;
        cp->host = str_put(&cur, p->host);
        cp->server_id = same_srv ? c->server_id : str_put(&cur, p->server_id);
        c->process = cp;
    }
    return c;
}

const Lb__Session *reg_session_locked(reg *r, const char *sid)
{
    return hmap_get(r->sessions, sid);
}

const char *reg_affinity_locked(reg *r, const char *client, const char *app)
{
    char name[512];
    reg_affinity_name(name, sizeof name, client, app);
    const Lb__Session *s = hmap_get(r->affinity, name);
    return s != NULL ? s->session_id : NULL;
}

/* Drops the affinity entry of view session s when it is s's (before s goes). */
static void affinity_drop(reg *r, const Lb__Session *s)
{
    if (hmap_get(r->affinity, aff_name(s)) == s)
        hmap_del(r->affinity, aff_name(s));
}

void reg_session_put_locked(reg *r, Lb__Session *in)
{
    Lb__Session *s = in;
    if (hmap_get(r->sessions, in->session_id) != in) { /* not the view's own already */
        s = reg_session_compact(in);
        lb__session__free_unpacked(in, NULL);
    }
    Lb__Session *old = hmap_put(r->sessions, s->session_id, s);
    if (old != NULL && old != s) {
        affinity_drop(r, old); /* its key lives in old's block */
        free(old);
    }
    hmap_put(r->affinity, aff_name(s), s);
}

void reg_session_del_locked(reg *r, const char *sid)
{
    Lb__Session *s = hmap_del(r->sessions, sid);
    if (s == NULL)
        return;
    affinity_drop(r, s);
    free(s); /* compact: one block, the maps' keys with it */
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
    while (hmap_next(r->sessions, &it, &id, &v))
        fn(v, arg);
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
