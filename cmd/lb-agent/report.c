/*
 * Load reports: one Envelope{server_load} published on a PUB socket that dials
 * every master's report endpoint, so leader and standbys all stay current;
 * or, once every master of our report endpoints is known with a pair key and
 * a report datagram endpoint (report_keys.c), the same bytes as one UDP
 * datagram per master (report_udp.c) and not on PUB: a master admits
 * datagrams by MAC only, so they go only when each master gets a MAC it can
 * check. The PUB socket is dialed only while reports need it (report_pub.c:
 * a master not known on UDP, a report over WIRE_UDP_MAX) and closed after
 * report_nng_idle of datagrams only.
 * Sent every report_interval by the main loop, and at once after a launch or
 * a process exit so the master's view is never a full period behind.
 *
 * The host resources read here also go into the ServerInfo (register.c).
 */
#include "agent.h"

#include "auth/report_mac.h"
#include "auth/report_sig.h"
#include "common/errmsg.h"
#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "wire/sid_digest.h"
#include "wire/wire.h"
#include "wire/wire_tls.h"
#include "wire/wire_udp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

/* MemTotal and MemAvailable from /proc/meminfo, in bytes. */
static void res_meminfo(uint64_t *total, uint64_t *avail)
{
    char line[256];
    FILE *f = fopen("/proc/meminfo", "r");
    *total = *avail = 0;
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long kb = 0;
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *avail = kb * 1024;
    }
    fclose(f);
}

void agent_res_read(agent_res *r)
{
    memset(r, 0, sizeof *r);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    r->cores = cores > 0 ? (uint32_t)cores : 1;
    double load[1] = {0};
    if (getloadavg(load, 1) == 1)
        r->cpu_load = load[0];
    res_meminfo(&r->mem_total, &r->mem_free);
    struct statvfs vfs;
    if (statvfs("/", &vfs) == 0)
        r->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(r->arch, sizeof r->arch, "%s", u.machine);
        snprintf(r->os, sizeof r->os, "%s", u.sysname);
    }
}

/* The identity key signs every report; loaded before registration, which
 * publishes its public half. */
static lb_err report_identity(agent *a, lb_errmsg *em)
{
    char deflt[4096];
    snprintf(deflt, sizeof deflt, "%s/identity.key", a->contain.state_dir);
    const char *path = a->cfg->identity_key != NULL && a->cfg->identity_key[0] != '\0'
                           ? a->cfg->identity_key
                           : deflt;
    lb_err err = auth_identity_open(a->cfg->identity_key, deflt, a->id_sk, a->id_pk, em);
    if (err == LB_OK)
        LOG_INFO(AGENT_COMP, "identity key", "path=%s", path);
    a->report_seq = (uint64_t)lb_wall_ms() * 1000;
    return err;
}

lb_err report_open(agent *a, lb_errmsg *em)
{
    lb_err ierr = report_identity(a, em);
    if (ierr != LB_OK)
        return ierr;
    /* checked now so a bad endpoint fails the start; dialed when a report needs it */
    lb_err err = report_pub_check(a, em);
    atomic_store(&a->report_on, err == LB_OK);
    return err;
}

/* The report as one datagram to each master; false when it is over
 * WIRE_UDP_MAX (counted): the caller publishes it on nng instead. */
static bool report_datagram(agent *a, const Lb__Envelope *env, const wire_udp_addr *udp, size_t n)
{
    size_t len = lb__envelope__get_packed_size(env);
    if (len > WIRE_UDP_MAX) {
        obs_count("agent_reports_oversized_datagram_total");
        return false;
    }
    uint8_t buf[WIRE_UDP_MAX];
    lb__envelope__pack(env, buf);
    report_udp_send(a, buf, len, udp, n);
    return true;
}

void report_send(agent *a)
{
    if (!atomic_load(&a->report_on))
        return;
    agent_config *cfg = a->cfg; /* one config for the whole report */
    uint32_t *per_app = lb_xcalloc(cfg->n_apps + 1, sizeof *per_app);
    uint32_t *ready = lb_xcalloc(cfg->n_apps + 1, sizeof *ready);
    Lb__AppLoad *apps = lb_xcalloc(cfg->n_apps, sizeof *apps);
    Lb__AppLoad **app_ptrs = lb_xcalloc(cfg->n_apps, sizeof *app_ptrs);
    Lb__ServerLoad sl = LB__SERVER_LOAD__INIT;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    int32_t *exited = NULL;
    size_t n_exited = 0;
    uint32_t sessions = 0;
    agent_res res;
    agent_res_read(&res);
    /* Under the report lock, so seq order is send order and no exited pid is
     * lost between the snapshot and the send. */
    pthread_mutex_lock(&a->report_lock);
    wire_sid_digest dg;
    procs_snapshot(a, cfg, &sessions, per_app, ready, &exited, &n_exited, &dg);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        lb__app_load__init(&apps[i]);
        apps[i].app = cfg->apps[i].name;
        apps[i].processes = per_app[i];
        apps[i].ready = ready[i];
        app_ptrs[i] = &apps[i];
    }
    sl.server_id = cfg->id;
    sl.sessions = sessions;
    sl.n_apps = cfg->n_apps;
    sl.apps = app_ptrs;
    sl.cpu_load = res.cpu_load;
    sl.mem_total = res.mem_total;
    sl.mem_free = res.mem_free;
    sl.disk_free = res.disk_free;
    sl.n_exited_pids = n_exited;
    sl.exited_pids = exited;
    sl.seq = ++a->report_seq;
    sl.at_ms = lb_wall_ms();
    sl.launches = atomic_load(&a->launches);
    sl.sid_digest_set = true;
    sl.sid_digest = dg.x;
    sl.sid_digest_n = dg.n;
    /* MACs for the masters whose key we know (cheap for them to check); the
     * signature too while some report endpoint's master is not among them */
    auth_mac_to to[AUTH_MAC_MAX];
    wire_udp_addr udp[AUTH_MAC_MAX];
    size_t n_udp = 0;
    auth_mac_set macs;
    size_t n_to = report_keys_get(to, cfg->report, cfg->n_report, udp, &n_udp);
    auth_report_mac(&sl, to, n_to, &macs);
    unsigned char sig[AUTH_SIG_BYTES];
    if (n_to < cfg->n_report)
        auth_report_sign(&sl, a->id_sk, sig);
    env.version = WIRE_VERSION;
    env.request_id = sl.seq;
    env.body_case = LB__ENVELOPE__BODY_SERVER_LOAD;
    env.server_load = &sl;
    if (n_udp > 0 && report_datagram(a, &env, udp, n_udp)) {
        report_pub_idle(a);
    } else {
        nng_msg *m = NULL;
        if (wire_encode(&env, &m) == LB_OK)
            report_pub_send(a, m);
    }
    pthread_mutex_unlock(&a->report_lock);
    obs_count("agent_reports_total");
    free(exited);
    free(app_ptrs);
    free(apps);
    free(per_app);
    free(ready);
}

void report_close(agent *a)
{
    pthread_mutex_lock(&a->report_lock);
    atomic_store(&a->report_on, false);
    report_udp_close(a);
    report_pub_close(a);
    pthread_mutex_unlock(&a->report_lock);
}
