/*
 * lb-bench-report-sig [N]: what per-agent report identity costs a master:
 * verifying one signed ServerLoad (re-pack + Ed25519 verify), N times
 * (default 5000), against decoding the same report (what every report
 * costs already), measured in the same run. Prints RESULT verify_us=...
 * decode_us=... ratio=... and the CPU share of 10,000 servers at 1 report/s;
 * then the same for a slave's signed SlaveLoad (slaves only sign, no MAC):
 * RESULT slave_verify_us=... and the CPU share of 100 slaves at 1 report/s.
 * Then what a master checks first (auth/report_mac.h): the report's keyed
 * BLAKE2b MAC (find + re-pack + MAC), and the one-time pair key derivation
 * per server: RESULT mac_us=... mac_ratio=(verify_us / mac_us) kx_us=...
 */
#include "auth/report_mac.h"
#include "auth/report_sig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    if (auth_init() != 0 || n <= 0)
        return 2;
    unsigned char pk[AUTH_PK_BYTES], sk[AUTH_SK_BYTES], sig[AUTH_SIG_BYTES];
    crypto_sign_keypair(pk, sk);
    /* a report like an agent's: three apps, a few exited pids */
    Lb__AppLoad apps[3], *app_ptrs[3];
    const char *names[] = {"echo", "chat", "video"};
    for (int i = 0; i < 3; i++) {
        lb__app_load__init(&apps[i]);
        apps[i].app = (char *)names[i];
        apps[i].processes = 10 + (uint32_t)i;
        app_ptrs[i] = &apps[i];
    }
    int32_t exited[] = {1234, 5678};
    Lb__ServerLoad l = LB__SERVER_LOAD__INIT;
    l.server_id = "agent-0001";
    l.sessions = 31;
    l.n_apps = 3;
    l.apps = app_ptrs;
    l.cpu_load = 0.7;
    l.mem_total = l.mem_free = l.disk_free = 1ull << 33;
    l.n_exited_pids = 2;
    l.exited_pids = exited;
    l.seq = 1796178626227000ull;
    l.at_ms = 1796178626227;
    auth_report_sign(&l, sk, sig);
    size_t len = lb__server_load__get_packed_size(&l);
    unsigned char *buf = malloc(len);
    lb__server_load__pack(&l, buf);
    int bad = 0;
    double t0 = now_us();
    for (int i = 0; i < n; i++)
        bad += !auth_report_verify(&l, pk, sizeof pk);
    double verify = (now_us() - t0) / n;
    t0 = now_us();
    for (int i = 0; i < n; i++) {
        Lb__ServerLoad *d = lb__server_load__unpack(NULL, len, buf);
        bad += d == NULL;
        lb__server_load__free_unpacked(d, NULL);
    }
    double decode = (now_us() - t0) / n;
    printf("RESULT verify_us=%.1f decode_us=%.2f ratio=%.1f report_bytes=%zu "
           "cpu_10k_servers_1hz=%.1f%% n=%d errors=%d\n",
           verify, decode, verify / decode, len, verify * 10000 / 1e6 * 100, n, bad);
    free(buf);
    /* a slave's report, as cmd/lb-slave/upstream.c makes it */
    Lb__SlaveLoad sl = LB__SLAVE_LOAD__INIT;
    unsigned char ssig[AUTH_SIG_BYTES];
    sl.slave_id = "slave-zone-a-01";
    sl.load = 420;
    sl.limit = 10000;
    sl.seq = 1796178626227000ull;
    sl.at_ms = 1796178626227;
    auth_slave_load_sign(&sl, sk, ssig);
    int sbad = 0;
    t0 = now_us();
    for (int i = 0; i < n; i++)
        sbad += !auth_slave_load_verify(&sl, pk, sizeof pk);
    double sverify = (now_us() - t0) / n;
    printf("RESULT slave_verify_us=%.1f slave_report_bytes=%zu cpu_100_slaves_1hz=%.3f%% n=%d "
           "errors=%d\n",
           sverify, lb__slave_load__get_packed_size(&sl), sverify * 100 / 1e6 * 100, n, sbad);
    /* the MAC path: a master's X25519 key, the agent's pair key with it */
    unsigned char mpk[AUTH_KX_BYTES], msk[AUTH_KX_BYTES], key[AUTH_MAC_KEY_BYTES];
    auth_kx_keypair(mpk, msk);
    auth_mac_to to;
    memcpy(to.to, mpk, AUTH_MAC_TO_BYTES);
    int mbad = auth_mac_key_agent(to.key, sk, pk, mpk) != LB_OK;
    auth_mac_set set;
    auth_report_mac(&l, &to, 1, &set);
    t0 = now_us();
    for (int i = 0; i < n; i++)
        mbad += auth_mac_key_master(key, msk, mpk, pk) != LB_OK;
    double kx = (now_us() - t0) / n;
    t0 = now_us();
    for (int i = 0; i < n; i++) {
        int k = auth_report_mac_find(&l, mpk);
        mbad += k < 0 || !auth_report_mac_verify(&l, (size_t)k, key);
    }
    double mac = (now_us() - t0) / n;
    printf("RESULT mac_us=%.2f mac_ratio=%.1f kx_us=%.1f cpu_10k_servers_1hz_mac=%.2f%% n=%d "
           "errors=%d\n",
           mac, verify / mac, kx, mac * 10000 / 1e6 * 100, n, mbad);
    return bad != 0 || sbad != 0 || mbad != 0;
}
