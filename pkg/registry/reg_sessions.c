/* Sessions and the client affinity derived from them. */
#include "registry/reg_internal.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

const Lb__Session *reg_session_locked(reg *r, const char *sid)
{
    return hmap_get(r->sessions, sid);
}

const char *reg_affinity_locked(reg *r, const char *client, const char *app)
{
    char name[512];
    reg_affinity_name(name, sizeof name, client, app);
    return hmap_get(r->affinity, name);
}

void reg_session_put_locked(reg *r, Lb__Session *s)
{
    Lb__Session *old = hmap_put(r->sessions, s->session_id, s);
    if (old != NULL && old != s)
        lb__session__free_unpacked(old, NULL);
    char name[512];
    reg_affinity_name(name, sizeof name, s->client_id, s->app);
    free(hmap_put(r->affinity, name, lb_strdup(s->session_id)));
}

void reg_session_del_locked(reg *r, const char *sid)
{
    Lb__Session *s = hmap_del(r->sessions, sid);
    if (s == NULL)
        return;
    char name[512];
    reg_affinity_name(name, sizeof name, s->client_id, s->app);
    const char *cur = hmap_get(r->affinity, name);
    if (cur != NULL && strcmp(cur, sid) == 0)
        free(hmap_del(r->affinity, name));
    lb__session__free_unpacked(s, NULL);
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
