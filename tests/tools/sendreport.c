/*
 * lb-sendreport ADDR --server ID --key FILE --seq N --sessions S [--count K]
 *               [--unsigned] [--mac-for HEX [--no-sig]]: a test tool. Publishes
 * K (default 1) copies of one ServerLoad for server ID, signed with the Ed25519
 * seed in FILE (an agent's identity.key), to a master's report endpoint, as an
 * agent would; the same bytes sent twice are a replay. --mac-for adds a MAC
 * (auth/report_mac.h) for the master whose X25519 report key is HEX (its
 * masters/<id> record's report_kx_key), with FILE's pair key for it;
 * --no-sig leaves the signature out. TLS from LBCP_TLS_CA, LBCP_TLS_CERT,
 * LBCP_TLS_KEY (wire_tls.h). Exit 0 when sent (PUB cannot tell if applied).
 * ADDR udp://HOST:PORT sends each copy as one datagram instead (a master's
 * report_udp_listen); --dump FILE also writes the encoded envelope there
 * (to replay or mangle it); --at-ms N sets at_ms (a stale report).
 *
 * lb-sendreport ADDR --slave ID --key FILE --seq N --load L [--count K]
 *               [--unsigned] [--garbage-sig]: the same for a SlaveLoad of slave
 * ID, signed with FILE (a slave's identity.key); --garbage-sig sends 64 random
 * bytes as the signature.
 */
#include "auth/report_mac.h"
#include "auth/report_sig.h"
#include "common/util.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"
#include "wire/wire_udp.h"

#include <nng/protocol/pubsub0/pub.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int pipes;

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p, (void)arg;
    atomic_fetch_add(&pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

/* A SlaveLoad for slave in env (vl and sig_buf must outlive env's use). */
static void slave_envelope(Lb__Envelope *env, Lb__SlaveLoad *vl, const char *slave,
                           unsigned long long seq, unsigned long long load, const unsigned char *sk,
                           int mode, unsigned char sig_buf[AUTH_SIG_BYTES])
{
    vl->slave_id = (char *)slave;
    vl->load = (uint32_t)load;
    vl->limit = 100;
    vl->seq = seq;
    vl->at_ms = lb_wall_ms();
    if (mode == 1) {
        auth_slave_load_sign(vl, sk, sig_buf);
    } else if (mode == 2) { /* garbage */
        randombytes_buf(sig_buf, AUTH_SIG_BYTES);
        vl->sig.data = sig_buf;
        vl->sig.len = AUTH_SIG_BYTES;
    }
    env->body_case = LB__ENVELOPE__BODY_SLAVE_LOAD;
    env->slave_load = vl;
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : NULL, *server = NULL, *slave = NULL, *key = NULL;
    unsigned long long seq = 1, sessions = 0, count = 1, load = 0;
    bool sign = true, sig = true, garbage = false;
    const char *mac_for = NULL, *dump = NULL;
    long long at_ms = 0;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(argv[i], "--server") == 0)
            server = v, i++;
        else if (strcmp(argv[i], "--key") == 0)
            key = v, i++;
        else if (strcmp(argv[i], "--seq") == 0)
            seq = strtoull(v, NULL, 10), i++;
        else if (strcmp(argv[i], "--sessions") == 0)
            sessions = strtoull(v, NULL, 10), i++;
        else if (strcmp(argv[i], "--count") == 0)
            count = strtoull(v, NULL, 10), i++;
        else if (strcmp(argv[i], "--unsigned") == 0)
            sign = false;
        else if (strcmp(argv[i], "--mac-for") == 0)
            mac_for = v, i++;
        else if (strcmp(argv[i], "--no-sig") == 0)
            sig = false;
        else if (strcmp(argv[i], "--slave") == 0)
            slave = v, i++;
        else if (strcmp(argv[i], "--load") == 0)
            load = strtoull(v, NULL, 10), i++;
        else if (strcmp(argv[i], "--garbage-sig") == 0)
            sign = false, garbage = true;
        else if (strcmp(argv[i], "--dump") == 0)
            dump = v, i++;
        else if (strcmp(argv[i], "--at-ms") == 0)
            at_ms = strtoll(v, NULL, 10), i++;
    }
    if (addr == NULL || (server == NULL) == (slave == NULL) || (sign && key == NULL)) {
        fprintf(stderr, "usage: lb-sendreport ADDR --server ID|--slave ID --key FILE --seq N "
                        "--sessions S|--load L [--count K] [--unsigned|--garbage-sig] "
                        "[--mac-for HEX [--no-sig]]\n");
        return 2;
    }
    lb_errmsg em = {{0}};
    unsigned char sk[AUTH_SK_BYTES], pk[AUTH_PK_BYTES], sig_buf[AUTH_SIG_BYTES];
    if (auth_init() != 0 || (sign && auth_identity_load(key, false, sk, pk, &em) != LB_OK)) {
        fprintf(stderr, "%s\n", em.text);
        return 1;
    }
    bool udp = strncmp(addr, "udp://", 6) == 0;
    wire_udp_addr ua;
    int ufd = -1;
    if (udp && (wire_udp_resolve(addr, &ua, &em) != LB_OK ||
                (ufd = socket(ua.sa.ss_family, SOCK_DGRAM, 0)) < 0)) {
        fprintf(stderr, "lb-sendreport: %s\n", em.text);
        return 1;
    }
    wire_tls *tls = NULL;
    nng_socket s = NNG_SOCKET_INITIALIZER;
    if (!udp && (wire_tls_env_default(&tls, &em) != LB_OK || nng_pub0_open(&s) != 0 ||
                 nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe, NULL) != 0 ||
                 nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, on_pipe, NULL) != 0 ||
                 wire_dial(s, addr, WIRE_ROLE_MASTER, NULL, &em) != LB_OK)) {
        fprintf(stderr, "%s\n", em.text);
        return 1;
    }
    /* PUB drops what it sends before the pipe is up: wait for it (10 s) */
    struct timespec tick = {0, 10 * 1000 * 1000}, ts = {1, 0};
    for (int i = 0; !udp && i < 1000 && atomic_load(&pipes) <= 0; i++)
        nanosleep(&tick, NULL);
    if (!udp && atomic_load(&pipes) <= 0) {
        fprintf(stderr, "lb-sendreport: not connected to %s\n", addr);
        return 1;
    }
    nanosleep(&tick, NULL); /* the subscriber side adds its pipe too */
    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    sl.server_id = (char *)server;
    sl.sessions = (uint32_t)sessions;
    sl.seq = seq;
    sl.at_ms = at_ms != 0 ? at_ms : lb_wall_ms();
    auth_mac_to to;
    auth_mac_set macs;
    if (sign && mac_for != NULL) {
        unsigned char kx[AUTH_KX_BYTES];
        if (strlen(mac_for) != 2 * AUTH_KX_BYTES ||
            sodium_hex2bin(kx, sizeof kx, mac_for, strlen(mac_for), NULL, NULL, NULL) != 0 ||
            auth_mac_key_agent(to.key, sk, pk, kx) != LB_OK) {
            fprintf(stderr, "lb-sendreport: --mac-for: not a 32-byte X25519 key in hex\n");
            return 2;
        }
        memcpy(to.to, kx, AUTH_MAC_TO_BYTES);
        auth_report_mac(&sl, &to, 1, &macs);
    }
    if (sign && sig && slave == NULL)
        auth_report_sign(&sl, sk, sig_buf);
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = seq;
    env.body_case = LB__ENVELOPE__BODY_SERVER_LOAD;
    env.server_load = &sl;
    Lb__SlaveLoad vl = LB__SLAVE_LOAD__INIT;
    if (slave != NULL)
        slave_envelope(&env, &vl, slave, seq, load, sk, sign ? 1 : garbage ? 2 : 0, sig_buf);
    for (unsigned long long i = 0; i < count; i++) {
        nng_msg *m = NULL;
        if (wire_encode(&env, &m) != LB_OK) {
            fprintf(stderr, "encode failed\n");
            return 1;
        }
        if (dump != NULL && i == 0) {
            FILE *f = fopen(dump, "wb");
            if (f == NULL || fwrite(nng_msg_body(m), 1, nng_msg_len(m), f) != nng_msg_len(m) ||
                fclose(f) != 0) {
                fprintf(stderr, "lb-sendreport: --dump %s: cannot write\n", dump);
                return 1;
            }
        }
        if (udp) {
            ssize_t w =
                sendto(ufd, nng_msg_body(m), nng_msg_len(m), 0, (struct sockaddr *)&ua.sa, ua.len);
            nng_msg_free(m);
            if (w < 0) {
                perror("lb-sendreport: sendto");
                return 1;
            }
        } else if (nng_sendmsg(s, m, 0) != 0) {
            fprintf(stderr, "send failed\n");
            return 1;
        }
        struct timespec gap = {0, 200 * 1000 * 1000};
        nanosleep(&gap, NULL);
    }
    if (udp) {
        close(ufd);
        return 0;
    }
    nanosleep(&ts, NULL); /* nng_close may drop what is still queued */
    nng_close(s);
    wire_tls_free(&tls);
    return 0;
}
