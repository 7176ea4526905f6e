/*
 * Fake servers' report identity, as real agents do it (cmd/lb-agent/report.c,
 * report_keys.c): an Ed25519 key each, a pair key per master report key, a
 * MAC per master in every report, a signature only while a master without a
 * report key exists. Only the main thread (keys, before the reporter starts)
 * and the reporter thread touch this state.
 */
#include "lg.h"

#include "common/util.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void lg_auth_keys(lg *g)
{
    if (g->no_auth)
        return;
    for (int i = 0; i < g->servers; i++)
        crypto_sign_keypair(g->srv[i].pk, g->srv[i].sk);
}

void lg_auth_master(lg *g, const Lb__MasterInfo *mi)
{
    if (g->no_auth)
        return;
    if (mi->report_kx_key.len != AUTH_KX_BYTES) {
        g->sign = true; /* an older master: it checks signatures only */
        return;
    }
    for (unsigned k = 0; k < g->n_kx; k++)
        if (memcmp(g->kx[k], mi->report_kx_key.data, AUTH_KX_BYTES) == 0)
            return;
    if (g->n_kx == LG_MAX_KX) {
        g->sign = true;
        return;
    }
    memcpy(g->kx[g->n_kx++], mi->report_kx_key.data, AUTH_KX_BYTES);
    int64_t t0 = lb_mono_ms();
    for (int i = 0; i < g->servers; i++) {
        lg_server *s = &g->srv[i];
        auth_mac_to *t = &s->to[s->n_to];
        if (auth_mac_key_agent(t->key, s->sk, s->pk, mi->report_kx_key.data) != LB_OK)
            continue;
        memcpy(t->to, mi->report_kx_key.data, AUTH_MAC_TO_BYTES);
        s->n_to++;
    }
    if (!g->quiet)
        fprintf(stderr, "lb-loadgen: pair keys with master %s for %d servers in %lld ms\n", mi->id,
                g->servers, (long long)(lb_mono_ms() - t0));
}

void lg_auth_report(lg *g, lg_server *s, Lb__ServerLoad *sl, auth_mac_set *set,
                    unsigned char sig[AUTH_SIG_BYTES])
{
    if (g->no_auth)
        return;
    auth_report_mac(sl, s->to, s->n_to, set);
    if (g->sign || s->n_to == 0)
        auth_report_sign(sl, s->sk, sig);
}
