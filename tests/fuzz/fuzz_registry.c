/*
 * libFuzzer target: the master's view of etcd (pkg/registry) fed with hostile
 * records. Whoever can write etcd (or corrupts it) controls these bytes: they
 * must never crash the master, only be ignored or counted. The input is a
 * list of records
 *   [op][id length][id][value length (2 bytes)][value]
 * where op picks the key kind (servers, slaves, masters, groups, overrides,
 * sessions, affinity, load, leader) and, with its top bit, a DELETE. The
 * first half is the snapshot (reg_reset), the rest arrive as watch events;
 * a chunk that decodes as a ServerLoad is also fed as a load report. Then the
 * selection snapshot is built and a selection run on it, as a request would.
 */
#include "registry/reg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = {"servers/",  "slaves/",   "masters/", "groups/", "overrides/",
                                    "sessions/", "affinity/", "load/",    "leader"};

typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take(cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n)
        return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

/* Reads one record into ev; false at the end of the input. */
static bool next_record(cursor *c, etcd_event *ev, int64_t rev, reg *r)
{
    const uint8_t *op = NULL, *idl = NULL, *id = NULL, *vl = NULL, *val = NULL;
    if (!take(c, 1, &op) || !take(c, 1, &idl) || !take(c, *idl % 48, &id) || !take(c, 2, &vl))
        return false;
    size_t vlen = ((size_t)vl[0] << 8 | vl[1]) % 2048;
    if (!take(c, vlen < c->left ? vlen : c->left, &val))
        return false;
    vlen = vlen < (size_t)(c->p - val) ? vlen : (size_t)(c->p - val);
    const char *kind = kinds[(*op & 0x7f) % (sizeof kinds / sizeof kinds[0])];
    size_t klen = strlen("/lb/") + strlen(kind) + (*idl % 48) + 1;
    memset(ev, 0, sizeof *ev);
    ev->type = (*op & 0x80) ? ETCD_EV_DELETE : ETCD_EV_PUT;
    ev->kv.key = malloc(klen);
    snprintf(ev->kv.key, klen, "/lb/%s%.*s", kind, (int)(*idl % 48), (const char *)id);
    ev->kv.value = malloc(vlen + 1);
    memcpy(ev->kv.value, val, vlen);
    ev->kv.value[vlen] = '\0';
    ev->kv.value_len = ev->type == ETCD_EV_DELETE ? 0 : vlen;
    ev->kv.mod_revision = ev->kv.create_revision = rev;
    Lb__ServerLoad *l = lb__server_load__unpack(NULL, vlen, val);
    if (l != NULL) {
        reg_on_server_load(r, l);
        lb__server_load__free_unpacked(l, NULL);
    }
    return true;
}

static void select_once(reg *r)
{
    static const char *const labels[] = {"gpu", "os=linux"};
    sel_policy pol;
    sel_policy_default(&pol);
    sel_request req = {.app = "echo",
                       .client_id = "alice",
                       .zone = "zone-a",
                       .labels = labels,
                       .n_labels = 2,
                       .requesting_slave = "slave-a"};
    sel_state st = {.rng = 42};
    sel_result res;
    reg_lock(r);
    sel_snapshot *snap = reg_snapshot_locked(r);
    const char *sid = reg_affinity_locked(r, "alice", "echo");
    reg_session_buf sb;
    const Lb__Session *s = sid != NULL ? reg_session_locked(r, sid, &sb) : NULL;
    req.affinity_server = s != NULL ? s->server_id : NULL;
    size_t n = sel_snapshot_n_servers(snap);
    sel_verdict *verdicts = calloc(n > 0 ? n : 1, sizeof *verdicts);
    (void)sel_choose(snap, &pol, &req, &st, &res, verdicts);
    free(verdicts);
    reg_unlock(r);
    char leader[128];
    reg_leader(r, leader, sizeof leader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reg *r = reg_new("/lb/", 0);
    etcd_event evs[MAX_RECORDS];
    size_t n = 0;
    cursor c = {data, size};
    while (n < MAX_RECORDS && next_record(&c, &evs[n], (int64_t)n + 2, r))
        n++;
    size_t half = n / 2;
    etcd_kvs snap = {.kvs = calloc(half > 0 ? half : 1, sizeof(etcd_kv)), .revision = 1};
    for (size_t i = 0; i < half; i++)
        if (evs[i].type == ETCD_EV_PUT)
            snap.kvs[snap.n++] = evs[i].kv;
    reg_reset(r, &snap);
    select_once(r);
    if (n > half)
        reg_apply(r, evs + half, n - half);
    reg_check_stale(r);
    select_once(r);
    for (size_t i = 0; i < n; i++) {
        free(evs[i].kv.key);
        free(evs[i].kv.value);
    }
    free(snap.kvs);
    reg_free(&r);
    return 0;
}
