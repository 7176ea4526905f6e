/*
 * Fake servers: their ServerInfo records under one lease, their load reports
 * to every master, and sessions preloaded straight into etcd.
 */
#include "lg.h"

#include "common/hmap.h"
#include "common/util.h"

#include <math.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LG_TXN_OPS 128
#define LG_LEASE_TTL_S 10

double lg_rand01(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *st = x;
    return (double)(x >> 11) / 9007199254740992.0;
}

double lg_gauss(uint64_t *st)
{
    /* sum of 4 uniforms, centred and scaled: close enough to normal for jitter */
    double s = lg_rand01(st) + lg_rand01(st) + lg_rand01(st) + lg_rand01(st);
    return (s - 2.0) * 1.7320508;
}

static size_t pack_info(const lg *g, const lg_server *s, uint8_t **out)
{
    Lb__Resources res = LB__RESOURCES__INIT;
    res.cores = 8;
    res.cpu_load = s->cpu_mean;
    res.mem_total = s->mem_total;
    res.mem_free = s->mem_mean;
    res.arch = "x86_64";
    res.os = "Linux";
    Lb__AppInfo ai = LB__APP_INFO__INIT, *aip = &ai;
    ai.name = (char *)g->app;
    ai.link = "direct";
    ai.per_session = false;
    char *apps[1] = {(char *)g->app};
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = (char *)s->id;
    si.host = "127.0.0.1";
    si.agent_endpoint = (char *)s->endpoint;
    si.zone = (char *)g->zone;
    si.region = (char *)g->region;
    si.group = "primary";
    si.capacity = (uint32_t)g->capacity;
    si.n_apps = 1;
    si.apps = apps;
    si.n_app_infos = 1;
    si.app_infos = &aip;
    si.resources = &res;
    si.started_at = lb_wall_ms();
    if (!g->no_auth) {
        si.report_key.data = (uint8_t *)s->pk;
        si.report_key.len = AUTH_PK_BYTES;
    }
    size_t len = lb__server_info__get_packed_size(&si);
    *out = lb_xcalloc(1, len + 1);
    lb__server_info__pack(&si, *out);
    return len;
}

/* Keeper callback: every server's record with the lease, LG_TXN_OPS per txn. */
static lb_err on_granted(void *arg, int64_t lease)
{
    lg *g = arg;
    etcd_op ops[LG_TXN_OPS];
    char *keys[LG_TXN_OPS];
    uint8_t *vals[LG_TXN_OPS];
    lb_err err = LB_OK;
    for (int i = 0; i < g->servers && err == LB_OK;) {
        size_t n = 0;
        for (; n < LG_TXN_OPS && i < g->servers; n++, i++) {
            keys[n] = lb_xcalloc(1, 512);
            snprintf(keys[n], 512, "%sservers/%s", g->prefix, g->srv[i].id);
            size_t len = pack_info(g, &g->srv[i], &vals[n]);
            ops[n] = (etcd_op){.type = ETCD_OP_PUT,
                               .key = keys[n],
                               .value = vals[n],
                               .value_len = len,
                               .lease = lease};
        }
        bool ok = false;
        lb_errmsg em = {{0}};
        err = etcd_txn(g->etcd, NULL, 0, ops, n, NULL, 0, &ok, NULL, &em);
        if (err != LB_OK)
            fprintf(stderr, "lb-loadgen: registering servers: %s\n", em.text);
        for (size_t k = 0; k < n; k++) {
            free(keys[k]);
            free(vals[k]);
        }
    }
    return err;
}

/* Each report connection dials endpoint. */
static void dial_all(lg *g, const char *endpoint)
{
    for (int c = 0; c < g->report_conns; c++)
        wire_dial(g->pub[c], endpoint, WIRE_ROLE_MASTER, NULL, NULL);
}

/* Takes a master's report datagram endpoint, once per endpoint. */
static void lg_udp_master(lg *g, const Lb__MasterInfo *mi)
{
    if (mi->report_udp_endpoint[0] == '\0' || g->n_udp == LG_MAX_KX)
        return;
    for (unsigned k = 0; k < g->n_udp; k++)
        if (strcmp(g->udp_url[k], mi->report_udp_endpoint) == 0)
            return;
    lb_errmsg em = {{0}};
    if (wire_udp_resolve(mi->report_udp_endpoint, &g->udp[g->n_udp], &em) != LB_OK) {
        fprintf(stderr, "lb-loadgen: master %s: %s\n", mi->id, em.text);
        return;
    }
    snprintf(g->udp_url[g->n_udp++], sizeof g->udp_url[0], "%s", mi->report_udp_endpoint);
    if (!g->quiet)
        fprintf(stderr, "lb-loadgen: report datagrams to master %s at %s%s\n", mi->id,
                mi->report_udp_endpoint, g->report_nng ? " (not used: --report-nng)" : "");
}

/* As an agent: datagrams when every master with a report key has an endpoint
 * and gets a MAC (datagrams are admitted by MAC only). */
static bool use_udp(const lg *g)
{
    return !g->report_nng && !g->no_auth && !g->sign && g->n_kx > 0 && g->n_udp >= g->n_kx;
}

/* One datagram per master; false when the report is over WIRE_UDP_MAX. */
static bool send_udp(lg *g, const Lb__Envelope *env)
{
    uint8_t buf[WIRE_UDP_MAX];
    size_t len = lb__envelope__get_packed_size(env);
    if (len > sizeof buf)
        return false;
    lb__envelope__pack(env, buf);
    for (unsigned k = 0; k < g->n_udp; k++) {
        int f = g->udp[k].sa.ss_family == AF_INET6;
        if (g->udp_fd[f] < 0)
            g->udp_fd[f] = socket(f ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (g->udp_fd[f] >= 0 && sendto(g->udp_fd[f], buf, len, MSG_DONTWAIT,
                                        (struct sockaddr *)&g->udp[k].sa, g->udp[k].len) >= 0)
            atomic_fetch_add(&g->udp_sent, 1);
        else
            atomic_fetch_add(&g->udp_errors, 1);
    }
    return true;
}

/* Dials every master's report endpoint not dialed yet (from etcd's masters/),
 * and takes their report keys. */
static void dial_masters(lg *g, hmap *dialed)
{
    for (size_t i = 0; i < g->n_report; i++)
        if (hmap_get(dialed, g->report[i]) == NULL) {
            dial_all(g, g->report[i]);
            hmap_put(dialed, g->report[i], (void *)1);
        }
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%smasters/", g->prefix);
    etcd_kvs kvs = {0};
    lb_errmsg em = {{0}};
    if (etcd_range_prefix(g->etcd, prefix, &kvs, &em) != LB_OK)
        return;
    for (size_t i = 0; i < kvs.n; i++) {
        Lb__MasterInfo *mi = lb__master_info__unpack(NULL, kvs.kvs[i].value_len, kvs.kvs[i].value);
        if (mi == NULL)
            continue;
        lg_auth_master(g, mi);
        lg_udp_master(g, mi);
        if (mi->report_endpoint[0] != '\0' && hmap_get(dialed, mi->report_endpoint) == NULL) {
            dial_all(g, mi->report_endpoint);
            hmap_put(dialed, mi->report_endpoint, (void *)1);
            if (!g->quiet)
                fprintf(stderr, "lb-loadgen: reporting to master %s at %s\n", mi->id,
                        mi->report_endpoint);
        }
        lb__master_info__free_unpacked(mi, NULL);
    }
    etcd_kvs_free(&kvs);
}

static void send_report(lg *g, int i, uint64_t *rng)
{
    lg_server *s = &g->srv[i];
    Lb__AppLoad al = LB__APP_LOAD__INIT, *alp = &al;
    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    al.app = (char *)g->app;
    al.processes = atomic_load(&s->sessions);
    sl.server_id = s->id;
    sl.sessions = al.processes;
    sl.n_apps = 1;
    sl.apps = &alp;
    double cpu = s->cpu_mean * (1.0 + g->jitter * lg_gauss(rng));
    sl.cpu_load = cpu > 0 ? cpu : 0;
    double mem = (double)s->mem_mean * (1.0 + g->jitter * 0.2 * lg_gauss(rng));
    sl.mem_total = s->mem_total;
    sl.mem_free = mem > 0 && mem < (double)s->mem_total ? (uint64_t)mem : s->mem_mean;
    sl.disk_free = 100ull << 30;
    sl.seq = ++s->seq;
    sl.at_ms = lb_wall_ms();
    sl.launches = atomic_load(&s->launches);
    /* Its app is shared (per_session false), so like a real agent with only
     * shared processes it holds none a session sync would stop: the empty
     * digest, which the leader's list for it (shared apps left out) matches. */
    sl.sid_digest_set = true;
    auth_mac_set macs;
    unsigned char sig[AUTH_SIG_BYTES];
    lg_auth_report(g, s, &sl, &macs, sig);
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = sl.seq;
    env.body_case = LB__ENVELOPE__BODY_SERVER_LOAD;
    env.server_load = &sl;
    nng_msg *m = NULL;
    if (!(use_udp(g) && send_udp(g, &env)) && wire_encode(&env, &m) == LB_OK &&
        nng_sendmsg(g->pub[i % g->report_conns], m, NNG_FLAG_NONBLOCK) != 0)
        nng_msg_free(m);
    atomic_fetch_add(&g->reports, 1);
}

/* Spreads the reports evenly over the interval (10 ms ticks), as N agents
 * started at random times would; looks for new masters every 5 s. */
static void *reporter_main(void *arg)
{
    lg *g = arg;
    hmap *dialed = hmap_new();
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)lb_wall_ms();
    int64_t start = lb_mono_ms(), next_dial = 0;
    int64_t sent = 0, cur_round = 0; /* reports sent in the current round */
    while (!atomic_load(&g->stopping)) {
        int64_t now = lb_mono_ms();
        if (now >= next_dial) {
            dial_masters(g, dialed);
            next_dial = now + 5000;
        }
        int64_t round = (now - start) / g->report_interval_ms;
        int64_t in_round = (now - start) % g->report_interval_ms;
        if (round != cur_round) {
            for (; sent < g->servers; sent++) /* finish a late round first */
                send_report(g, (int)sent, &rng);
            cur_round = round;
            sent = 0;
        }
        int64_t due = (int64_t)g->servers * (in_round + 10) / g->report_interval_ms;
        if (due > g->servers)
            due = g->servers;
        for (; sent < due; sent++)
            send_report(g, (int)sent, &rng);
        lb_sleep_ms(10);
    }
    hmap_free(&dialed, NULL);
    return NULL;
}

int lg_servers_start(lg *g)
{
    lb_errmsg em = {{0}};
    for (int c = 0; c < g->report_conns; c++) {
        int rv = nng_pub0_open(&g->pub[c]);
        if (rv != 0) {
            fprintf(stderr, "lb-loadgen: pub socket: %s\n", nng_strerror(rv));
            return -1;
        }
        nng_socket_set_ms(g->pub[c], NNG_OPT_RECONNMINT, 50);
        nng_socket_set_ms(g->pub[c], NNG_OPT_RECONNMAXT, 1000);
        nng_socket_set_size(g->pub[c], NNG_OPT_SENDBUF, 8192); /* nng's maximum queue depth */
    }
    lg_auth_keys(g); /* before registration: the records carry the public keys */
    if (etcd_keeper_start(g->etcd, LG_LEASE_TTL_S, on_granted, g, &g->keeper, &em) != LB_OK) {
        fprintf(stderr, "lb-loadgen: registering %d servers: %s\n", g->servers, em.text);
        return -1;
    }
    if (pthread_create(&g->reporter, NULL, reporter_main, g) != 0)
        return -1;
    return 0;
}

void lg_servers_stop(lg *g)
{
    pthread_join(g->reporter, NULL);
    etcd_keeper_stop(&g->keeper); /* revokes: every server key goes at once */
    for (int c = 0; c < g->report_conns; c++)
        nng_close(g->pub[c]);
    for (int f = 0; f < 2; f++)
        if (g->udp_fd[f] >= 0)
            close(g->udp_fd[f]);
}

static void session_ids(const lg *g, int k, char *sid, size_t scap, char *client, size_t ccap)
{
    snprintf(sid, scap, "lg%sp%d", g->tag, k);
    snprintf(client, ccap, "lg-%s-p%d", g->tag, k);
}

/* K sessions (records as the leader writes them: no affinity record), 64 per
 * txn, spread over the servers. */
int lg_preload(lg *g)
{
    int64_t now = lb_wall_ms();
    for (int k = 0; k < g->preload;) {
        etcd_op ops[LG_TXN_OPS];
        char keys[LG_TXN_OPS][256];
        uint8_t vals[LG_TXN_OPS][256];
        size_t n = 0;
        for (; n < LG_TXN_OPS && k < g->preload; k++) {
            char sid[64], client[64];
            session_ids(g, k, sid, sizeof sid, client, sizeof client);
            lg_server *s = &g->srv[k % g->servers];
            Lb__ProcessId pid = LB__PROCESS_ID__INIT;
            pid.pid = 3000000 + k;
            pid.host = "127.0.0.1";
            pid.port = 1;
            pid.server_id = s->id;
            Lb__Session se = LB__SESSION__INIT;
            se.session_id = sid;
            se.client_id = client;
            se.app = (char *)g->app;
            se.server_id = s->id;
            se.process = &pid;
            se.created_ms = now;
            se.expires_ms = now + g->session_ttl_ms;
            if (lb__session__get_packed_size(&se) > sizeof vals[0])
                return -1;
            snprintf(keys[n], sizeof keys[n], "%ssessions/%s", g->prefix, sid);
            ops[n] = (etcd_op){.type = ETCD_OP_PUT,
                               .key = keys[n],
                               .value = vals[n],
                               .value_len = lb__session__pack(&se, vals[n])};
            n++;
            atomic_fetch_add(&s->sessions, 1);
        }
        bool ok = false;
        lb_errmsg em = {{0}};
        if (etcd_txn(g->etcd, NULL, 0, ops, n, NULL, 0, &ok, NULL, &em) != LB_OK) {
            fprintf(stderr, "lb-loadgen: preloading sessions: %s\n", em.text);
            return -1;
        }
    }
    return 0;
}

void lg_preload_clean(lg *g)
{
    if (g->preload <= 0)
        return;
    char key[512];
    lb_errmsg em = {{0}};
    /* deleting 100,000 records takes etcd a while on a busy machine */
    etcd_client *slow = NULL;
    if (etcd_open(g->etcd_url, 120000, &slow, &em) != LB_OK) {
        fprintf(stderr, "lb-loadgen: cleaning: %s\n", em.text);
        return;
    }
    snprintf(key, sizeof key, "%ssessions/lg%sp", g->prefix, g->tag);
    if (etcd_delete(slow, key, true, NULL, &em) != LB_OK)
        fprintf(stderr, "lb-loadgen: cleaning %s: %s\n", key, em.text);
    etcd_close(&slow);
}
