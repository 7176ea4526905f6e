/*
 * P9's view alone, in seconds instead of the minutes of etcd_economy.py p9: a
 * registry loaded with N servers and M sessions shaped as lb-loadgen writes
 * them (ServerInfo with one app, resources and a report key; Session with its
 * ProcessId: no affinity record, the view derives it), one MACed ServerLoad applied per server, and
 * the selection snapshot built. Prints the heap in use (mallinfo2) and RSS before and after, and
 * the bytes per server and per session. lb-bench-view [servers] [sessions]     (defaults 10000
 * 100000)
 */
#include "registry/reg_internal.h" /* the snapshot apart: reg_snapshot_drop */

#include "common/util.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return (double)res * 4096.0 / (1024.0 * 1024.0);
}

static void kv_set(etcd_kv *kv, const char *key, unsigned char *val, size_t len)
{
    kv->key = lb_strdup(key);
    kv->value = val;
    kv->value_len = len;
}

static size_t server_record(int i, unsigned char **out)
{
    char id[32], ep[64];
    snprintf(id, sizeof id, "lg-s%d", i);
    snprintf(ep, sizeof ep, "tls+tcp://127.0.0.1:%d", 20000 + i % 1000);
    unsigned char pk[32];
    memset(pk, i & 0xff, sizeof pk);
    Lb__Resources res = LB__RESOURCES__INIT;
    res.cores = 8;
    res.cpu_load = 0.5;
    res.mem_total = 16ull << 30;
    res.mem_free = 8ull << 30;
    res.arch = "x86_64";
    res.os = "Linux";
    Lb__AppInfo ai = LB__APP_INFO__INIT, *aip = &ai;
    ai.name = "echo";
    ai.link = "direct";
    char *apps[1] = {"echo"};
    Lb__ServerInfo si = LB__SERVER_INFO__INIT;
    si.id = id;
    si.host = "127.0.0.1";
    si.agent_endpoint = getenv("BENCH_VIEW_NO_ENDPOINT") != NULL ? "" : ep;
    si.zone = "zone-a";
    si.region = "region-1";
    si.group = "primary";
    si.capacity = 100;
    si.n_apps = 1;
    si.apps = apps;
    si.n_app_infos = 1;
    si.app_infos = &aip;
    si.resources = &res;
    si.started_at = 1700000000000;
    si.report_key.data = pk;
    si.report_key.len = sizeof pk;
    size_t len = lb__server_info__get_packed_size(&si);
    *out = lb_xcalloc(1, len + 1);
    lb__server_info__pack(&si, *out);
    return len;
}

static void session_record(int k, int servers, etcd_kv *skv)
{
    char sid[64], client[64], srv[32], key[256];
    snprintf(sid, sizeof sid, "lg%xp%d", 0xbeef, k);
    snprintf(client, sizeof client, "lg-%x-p%d", 0xbeef, k);
    snprintf(srv, sizeof srv, "lg-s%d", k % servers);
    Lb__ProcessId pid = LB__PROCESS_ID__INIT;
    pid.pid = 3000000 + k;
    pid.host = "127.0.0.1";
    pid.port = 1;
    pid.server_id = srv;
    Lb__Session se = LB__SESSION__INIT;
    se.session_id = sid;
    se.client_id = client;
    se.app = "echo";
    se.server_id = srv;
    se.process = &pid;
    se.created_ms = 1700000000000;
    se.expires_ms = 1700000600000;
    size_t len = lb__session__get_packed_size(&se);
    unsigned char *v = lb_xcalloc(1, len + 1);
    lb__session__pack(&se, v);
    snprintf(key, sizeof key, "/lb/sessions/%s", sid);
    kv_set(skv, key, v, len);
}

/* A report as an agent sends it: one app, one MAC for the one master. */
static Lb__ServerLoad *report(int i)
{
    char id[32];
    snprintf(id, sizeof id, "lg-s%d", i);
    unsigned char to[8], mac[32], sig[64];
    memset(to, 1, sizeof to);
    memset(mac, 2, sizeof mac);
    memset(sig, 3, sizeof sig);
    Lb__AppLoad al = LB__APP_LOAD__INIT, *alp = &al;
    al.app = "echo";
    al.processes = 10;
    Lb__ReportMac rm = LB__REPORT_MAC__INIT, *rmp = &rm;
    rm.to = (ProtobufCBinaryData){sizeof to, to};
    rm.mac = (ProtobufCBinaryData){sizeof mac, mac};
    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    sl.server_id = id;
    sl.sessions = 10;
    sl.n_apps = 1;
    sl.apps = &alp;
    sl.cpu_load = 0.5;
    sl.mem_total = 16ull << 30;
    sl.mem_free = 8ull << 30;
    sl.disk_free = 100ull << 30;
    sl.seq = 1;
    sl.at_ms = 1700000000000;
    sl.n_macs = 1;
    sl.macs = &rmp;
    size_t len = lb__server_load__get_packed_size(&sl);
    unsigned char *buf = lb_xcalloc(1, len);
    lb__server_load__pack(&sl, buf);
    Lb__ServerLoad *out = lb__server_load__unpack(NULL, len, buf);
    free(buf);
    return out;
}

int main(int argc, char **argv)
{
    int servers = argc > 1 ? atoi(argv[1]) : 10000;
    int sessions = argc > 2 ? atoi(argv[2]) : 100000;
    if (servers <= 0 || sessions < 0)
        return 2;
    etcd_kvs kvs = {.n = (size_t)servers + (size_t)sessions};
    kvs.kvs = lb_xcalloc(kvs.n, sizeof *kvs.kvs);
    for (int i = 0; i < servers; i++) {
        char key[64];
        unsigned char *v;
        size_t len = server_record(i, &v);
        snprintf(key, sizeof key, "/lb/servers/lg-s%d", i);
        kv_set(&kvs.kvs[i], key, v, len);
    }
    for (int k = 0; k < sessions; k++)
        session_record(k, servers, &kvs.kvs[servers + k]);

    malloc_trim(0);
    size_t h0 = heap_used();
    double r0 = rss_mib();
    reg *r = reg_new("/lb/", 0);
    reg_reset(r, &kvs);
    size_t h_srv_sess = heap_used() - h0;
    Lb__ServerLoad **ls = lb_xcalloc((size_t)servers, sizeof *ls);
    for (int i = 0; i < servers; i++)
        ls[i] = report(i);
    size_t h_reports0 = heap_used();
    size_t known = reg_on_server_loads(r, ls, (size_t)servers);
    (void)h_reports0;
    free(ls);
    reg_lock(r);
    (void)reg_snapshot_locked(r);
    size_t ns = reg_n_servers_locked(r), nss = reg_n_sessions_locked(r);
    reg_unlock(r);
    size_t h1 = heap_used() - h0;
    double r1 = rss_mib();

    /* the per-kind split: the same view with sessions only */
    reg *r2 = reg_new("/lb/", 0);
    size_t h2a = heap_used();
    etcd_kvs only = {.kvs = kvs.kvs + servers, .n = 2 * (size_t)sessions};
    reg_reset(r2, &only);
    size_t h_sess = heap_used() - h2a;
    reg_free(&r2);

    /* the selection snapshot's share */
    reg_lock(r);
    size_t h3a = heap_used();
    reg_snapshot_drop(r);
    size_t h_snap = h3a - heap_used();
    (void)reg_snapshot_locked(r);
    reg_unlock(r);

    double mib = 1024.0 * 1024.0;
    printf("view: servers=%zu sessions=%zu (reports applied to %zu)\n", ns, nss, known);
    printf("  heap in use: %.1f MiB (%.1f MiB after reset, %.1f MiB of it sessions)\n", h1 / mib,
           h_srv_sess / mib, h_sess / mib);
    printf("  per server %.0f B (with its report and snapshot), per session %.0f B\n",
           (double)(h1 - h_sess) / (double)servers,
           sessions > 0 ? (double)h_sess / (double)sessions : 0.0);
    printf("  of a server: selection snapshot %.0f B, its last report %.0f B, reg_server %zu B\n",
           (double)h_snap / (double)servers, (double)(h1 - h_srv_sess) / (double)servers,
           sizeof(reg_server));
    printf("  process RSS %.1f -> %.1f MiB (the input records included)\n", r0, r1);
    printf("RESULT servers=%zu sessions=%zu view_heap_mib=%.1f server_bytes=%.0f "
           "session_bytes=%.0f\n",
           ns, nss, h1 / mib, (double)(h1 - h_sess) / (double)servers,
           sessions > 0 ? (double)h_sess / (double)sessions : 0.0);
    reg_free(&r);
    etcd_kvs_free(&kvs);
    return 0;
}
