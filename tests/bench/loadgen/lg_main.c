/*
 * lb-loadgen: see lg.h. Usage:
 *
 *   lb-loadgen --etcd URL [--prefix /lb/] [--servers N] [--report-interval 1s]
 *              [--agents | --shared-agent] [--clients M --slave ADDR [--client-rate R] [--new-ratio
 * F]]
 *              [--sessions K] [--duration 30s] [--report URL]... [--report-conns C]
 *              [--no-auth] [--no-endpoint] [--report-nng] [--quiet]
 *
 * Prints "lb-loadgen: ready ..." on stdout once the servers are registered
 * (scripts wait for it), then one RESULT line when the run ends.
 */
#include "lg.h"

#include "common/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_bool got_signal;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&got_signal, true);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lb-loadgen --etcd URL [options]\n"
            "  --prefix P            etcd key prefix (/lb/)\n"
            "  --servers N           fake servers, one lease for all (100, max %d)\n"
            "  --id-prefix S         server ids S0, S1, ... (lg-s)\n"
            "  --zone Z --region R   locality of the servers (zone-a, region-1)\n"
            "  --app A               app they offer (echo)\n"
            "  --capacity C          sessions per server (1000)\n"
            "  --report-interval D   load report period per server (1s)\n"
            "  --jitter F            relative sd of cpu around its mean (0.05)\n"
            "  --report URL          a master report endpoint (repeatable; masters/ in etcd too)\n"
            "  --agents              answer launches (one listener per server)\n"
            "  --shared-agent        answer launches on one listener for all servers\n"
            "  --no-endpoint         servers advertise no agent endpoint (nothing to dial)\n"
            "  --clients M           client threads (0, max %d) asking --slave ADDR\n"
            "  --client-rate R       requests per second per client (1)\n"
            "  --new-ratio F         share of requests from a new client id (0.2)\n"
            "  --location Z          client location (the servers' zone)\n"
            "  --sessions K          sessions preloaded into etcd (0)\n"
            "  --session-ttl D       their expiry from now (10m)\n"
            "  --duration D          run this long, then clean up and exit (30s)\n"
            "  --report-conns C      report connections, servers spread over them (16, max %d)\n"
            "  --no-auth             servers without identity keys, reports without MAC\n"
            "  --report-nng          reports on nng PUB even to masters that take datagrams\n"
            "  --quiet               no progress lines\n",
            LG_MAX_SERVERS, LG_MAX_CLIENTS, LG_MAX_CONNS);
}

static int dur(const char *s, int64_t *out)
{
    if (!lb_parse_duration_ms(s, out) || *out <= 0) {
        fprintf(stderr, "lb-loadgen: bad duration '%s'\n", s);
        return -1;
    }
    return 0;
}

static int parse(lg *g, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool flag = strcmp(a, "--agents") == 0 || strcmp(a, "--quiet") == 0 ||
                    strcmp(a, "--shared-agent") == 0 || strcmp(a, "--no-auth") == 0 ||
                    strcmp(a, "--no-endpoint") == 0 || strcmp(a, "--report-nng") == 0;
        if (!flag && v == NULL) {
            usage();
            return -1;
        }
        if (!flag)
            i++;
        if (strcmp(a, "--etcd") == 0)
            g->etcd_url = v;
        else if (strcmp(a, "--prefix") == 0)
            g->prefix = v;
        else if (strcmp(a, "--servers") == 0)
            g->servers = atoi(v);
        else if (strcmp(a, "--id-prefix") == 0)
            g->id_prefix = v;
        else if (strcmp(a, "--zone") == 0)
            g->zone = v;
        else if (strcmp(a, "--region") == 0)
            g->region = v;
        else if (strcmp(a, "--app") == 0)
            g->app = v;
        else if (strcmp(a, "--capacity") == 0)
            g->capacity = atoi(v);
        else if (strcmp(a, "--report-interval") == 0) {
            if (dur(v, &g->report_interval_ms) != 0)
                return -1;
        } else if (strcmp(a, "--jitter") == 0)
            g->jitter = atof(v);
        else if (strcmp(a, "--report") == 0 && g->n_report < LG_MAX_REPORT)
            g->report[g->n_report++] = v;
        else if (strcmp(a, "--agents") == 0)
            g->agents = true;
        else if (strcmp(a, "--shared-agent") == 0)
            g->shared_agent = true;
        else if (strcmp(a, "--clients") == 0)
            g->clients = atoi(v);
        else if (strcmp(a, "--slave") == 0)
            g->slave = v;
        else if (strcmp(a, "--client-rate") == 0)
            g->client_rate = atof(v);
        else if (strcmp(a, "--new-ratio") == 0)
            g->new_ratio = atof(v);
        else if (strcmp(a, "--location") == 0)
            g->location = v;
        else if (strcmp(a, "--sessions") == 0)
            g->preload = atoi(v);
        else if (strcmp(a, "--session-ttl") == 0) {
            if (dur(v, &g->session_ttl_ms) != 0)
                return -1;
        } else if (strcmp(a, "--duration") == 0) {
            if (dur(v, &g->duration_ms) != 0)
                return -1;
        } else if (strcmp(a, "--quiet") == 0)
            g->quiet = true;
        else if (strcmp(a, "--no-auth") == 0)
            g->no_auth = true;
        else if (strcmp(a, "--no-endpoint") == 0)
            g->no_endpoint = true;
        else if (strcmp(a, "--report-nng") == 0)
            g->report_nng = true;
        else if (strcmp(a, "--report-conns") == 0)
            g->report_conns = atoi(v);
        else {
            fprintf(stderr, "lb-loadgen: unknown option '%s'\n", a);
            usage();
            return -1;
        }
    }
    const char *bad = g->etcd_url == NULL                             ? "--etcd is required"
                      : g->servers < 1 || g->servers > LG_MAX_SERVERS ? "--servers out of range"
                      : g->clients < 0 || g->clients > LG_MAX_CLIENTS ? "--clients out of range"
                      : g->report_conns < 1 || g->report_conns > LG_MAX_CONNS
                          ? "--report-conns out of range"
                      : g->clients > 0 && g->slave == NULL           ? "--clients needs --slave"
                      : g->preload < 0 || g->preload > 1000000       ? "--sessions out of range"
                      : g->client_rate <= 0 || g->client_rate > 1000 ? "--client-rate out of range"
                      : g->new_ratio < 0 || g->new_ratio > 1         ? "--new-ratio out of range"
                      : g->capacity < 1                              ? "--capacity out of range"
                      : g->duration_ms > 24 * 3600 * 1000LL          ? "--duration over 24h"
                                                                     : NULL;
    if (bad != NULL) {
        fprintf(stderr, "lb-loadgen: %s\n", bad);
        usage();
        return -1;
    }
    if (g->location == NULL)
        g->location = g->zone;
    return 0;
}

static void init_servers(lg *g)
{
    uint64_t rng = 0x853c49e6748fea9bull ^ (uint64_t)getpid();
    g->srv = lb_xcalloc((size_t)g->servers, sizeof *g->srv);
    for (int i = 0; i < g->servers; i++) {
        lg_server *s = &g->srv[i];
        snprintf(s->id, sizeof s->id, "%s%d", g->id_prefix, i);
        s->cpu_mean = 0.2 + 3.0 * lg_rand01(&rng); /* a steady mean per server */
        s->mem_total = 32ull << 30;
        s->mem_mean = (uint64_t)((double)s->mem_total * (0.3 + 0.5 * lg_rand01(&rng)));
    }
}

static void result(lg *g, int64_t ran_ms)
{
    double secs = (double)ran_ms / 1000.0;
#define L(x) (unsigned long long)atomic_load(&g->x)
    printf("RESULT servers=%d seconds=%.1f reports=%llu reports_per_s=%.0f requests=%llu "
           "new=%llu sticky=%llu serve=%llu redirect=%llu reject=%llu errors=%llu "
           "launches=%llu reused=%llu stops=%llu released=%llu preloaded=%d agent_errors=%llu "
           "udp_sent=%llu udp_errors=%llu\n",
           g->servers, secs, L(reports), secs > 0 ? (double)L(reports) / secs : 0.0, L(requests),
           L(new_req), L(sticky_req), L(serve), L(redirect), L(reject), L(errors), L(launches),
           L(reused), L(stops), L(released), g->preload, L(agent_errors), L(udp_sent),
           L(udp_errors));
#undef L
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static lg g;
    wire_tls *tls = NULL; /* LBCP_TLS_CA/CERT/KEY: the cluster's TLS (wire_tls.h) */
    lb_errmsg tem = {{0}};
    if (wire_tls_env_default(&tls, &tem) != LB_OK) {
        fprintf(stderr, "lb-loadgen: %s\n", tem.text);
        return 2;
    }
    g.prefix = "/lb/";
    g.udp_fd[0] = g.udp_fd[1] = -1;
    g.id_prefix = "lg-s";
    g.zone = "zone-a";
    g.region = "region-1";
    g.app = "echo";
    g.servers = 100;
    g.capacity = 1000;
    g.report_interval_ms = 1000;
    g.duration_ms = 30000;
    g.session_ttl_ms = 600000;
    g.client_rate = 1;
    g.new_ratio = 0.2;
    g.jitter = 0.05;
    g.report_conns = 16;
    if (parse(&g, argc, argv) != 0)
        return 2;
    if (auth_init() != 0) {
        fprintf(stderr, "lb-loadgen: libsodium cannot start\n");
        return 1;
    }
    snprintf(g.tag, sizeof g.tag, "%x", (unsigned)(getpid() ^ (lb_wall_ms() & 0xffff)));
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    init_servers(&g);
    lb_errmsg em = {{0}};
    int rc = 1;
    if (etcd_open(g.etcd_url, 5000, &g.etcd, &em) != LB_OK) {
        fprintf(stderr, "lb-loadgen: etcd: %s\n", em.text);
        return 1;
    }
    bool agent_up = false, servers_up = false;
    if (lg_agent_open(&g) != 0 || lg_preload(&g) != 0 || lg_agent_start(&g) != 0)
        goto out;
    agent_up = true;
    if (lg_servers_start(&g) != 0)
        goto out;
    servers_up = true;
    printf("lb-loadgen: ready servers=%d sessions=%d tag=%s\n", g.servers, g.preload, g.tag);
    fflush(stdout);
    int64_t start = lb_mono_ms();
    if (lg_clients_start(&g) == 0) {
        while (!atomic_load(&got_signal) && lb_mono_ms() - start < g.duration_ms)
            lb_sleep_ms(50);
        rc = 0;
    }
    atomic_store(&g.stopping, true);
    lg_clients_stop(&g);
    result(&g, lb_mono_ms() - start);
out:
    atomic_store(&g.stopping, true);
    /* the agent socket first: with thousands of masters' TLS pipes still on
     * it, nng 1.5.2's close of a report socket hung (for minutes) */
    if (agent_up)
        lg_agent_stop(&g);
    if (servers_up)
        lg_servers_stop(&g);
    lg_preload_clean(&g);
    etcd_close(&g.etcd);
    free(g.srv);
    wire_tls_free(&tls);
    return rc;
}
