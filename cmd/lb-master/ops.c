/*
 * The master's operator surface over HTTP (http_listen): /metrics with the
 * gauges refreshed from the view at each scrape, and /healthz (ready while the
 * etcd watch is connected).
 */
#include "master.h"

#include "obs/hist.h"
#include "auth/verifier.h"
#include "httpd/ops.h"
#include "obs/log.h"
#include "obs/prom.h"

#include <stdio.h>
#include <string.h>

static const char *const master_help[][2] = {
    {"master_selections_total", "Selection answers by action (serve, redirect, reject)."},
    {"master_selection_reasons_total",
     "Selection answers by reason class (new, sticky, confirmed, moved, no_app, no_server, "
     "launch_failed, other)."},
    {"master_selection_seconds", "Selection latency at the master, request received to reply."},
    {"master_launches_total", "Launches asked of agents, by result."},
    {"master_launch_seconds", "Launch latency at an agent, as the master sees it, by result."},
    {"master_redirects_total", "Answers that sent the client to another slave."},
    {"master_sticky_answers_total",
     "Sticky repeats, by how the process was known alive: view (exit reports, no agent call) "
     "or agent (asked)."},
    {"master_sticky_unreachable_total",
     "Sticky repeats whose client could not reach its process (the agent is asked)."},
    {"master_live_forgotten_total",
     "Times a server's known-alive processes were forgotten (lost report, server down)."},
    {"master_confirms_total", "Redirect preselections confirmed."},
    {"master_rpc_forbidden_total",
     "Requests refused for the caller's role, by rpc: release/renew naming no client on listen "
     "(operator only), a selection on operator_listen (slaves only)."},
    {"master_preferred_total", "Requests naming the client's own pick: honoured or refused."},
    {"master_load_reports_total", "Load reports received, by sender kind."},
    {"master_agent_reports_total",
     "Agents' load reports received, by transport (udp: report_udp_listen; nng: PUB/SUB)."},
    {"master_udp_reports_dropped_total",
     "Report datagrams the kernel dropped, its receive queue full (SO_RXQ_OVFL)."},
    {"master_server_sessions",
     "Sessions on each server: its last load report plus those assigned since."},
    {"master_sessions", "Session records in the master's view."},
    {"master_is_leader", "1 when this master is the leader."},
    {"master_stepdowns_total", "Times this master stopped acting as leader (lease not fresh, "
                               "key lost, or its writes fenced)."},
    {"master_elections_won_total", "Times this master won the leader key."},
    {"master_etcd_writes_fenced_total",
     "Writes dropped because this master no longer held the leader key (fencing)."},
    {"master_servers_ejected", "Servers ejected from selection after launch failures."},
    {"master_servers_down",
     "Servers down: agent connection closed, or no load report within report_stale."},
    {"master_ejections_total", "Servers ejected after launch failures (outlier detection)."},
    {"master_ejections_skipped_total",
     "Ejections not made because eject_max_percent of the servers were ejected already."},
    {"master_agent_disconnects_total", "Connections to agents that closed (pipe removed)."},
    {"master_etcd_connected", "1 while the etcd watch is connected."},
    {"etcd_requests_total", "etcd gateway calls, by call."},
    {"etcd_errors_total", "etcd gateway calls that failed, by call."},
    {"etcd_request_seconds", "etcd gateway call latency, by call."},
    {"wire_errors_total", "Malformed or oversized messages received, by kind."},
    {"obs_dropped_series_total",
     "Metric series dropped because a table or a scrape was full (0 when all are exposed)."},
    {"http_requests_total", "Requests to the operator HTTP endpoint, by path."},
    {"master_stock_hits_total", "New sessions answered from the leader's stock (no agent call)."},
    {"master_stock_misses_total",
     "New sessions of a stocked app with no stock at the chosen server."},
    {"master_stock_launches_total", "Background launches filling the stock, by result."},
    {"master_stock_dropped_total",
     "Stock processes dropped and stopped unused, by why (dead, out_of_selection, not_leading)."},
    {"master_stock_held", "Stock entries the leader holds (launching included)."},
    {"master_stock_ready", "Stock processes ready to be handed out."},
};

/* Collector: one series per server in the view, built at each scrape, so a
 * server that left has none and the gauge table does not grow with servers. */
static void master_collect(obs_scrape *sc, void *arg)
{
    master *m = arg;
    reg_lock(m->view);
    size_t i = 0;
    reg_server *s;
    while ((s = reg_server_next_locked(m->view, &i)) != NULL) {
        uint32_t n = (s->load != NULL ? s->load->sessions : 0) + s->pending;
        obs_scrape_gauge(sc, "master_server_sessions", "server", s->info->id, n);
    }
    reg_unlock(m->view);
}

/* Scrape hook: the process-wide gauges from the view. */
static void master_scrape(void *arg)
{
    master *m = arg;
    reg_lock(m->view);
    obs_gauge_set(obs_gauge_get("master_sessions"), (double)reg_n_sessions_locked(m->view));
    size_t ejected = 0, down = 0;
    reg_health_counts_locked(m->view, &ejected, &down);
    obs_gauge_set(obs_gauge_get("master_servers_ejected"), (double)ejected);
    obs_gauge_set(obs_gauge_get("master_servers_down"), (double)down);
    reg_unlock(m->view);
    obs_gauge_set(obs_gauge_get("master_is_leader"), master_leading(m) ? 1 : 0);
    obs_gauge_set(obs_gauge_get("master_etcd_connected"), atomic_load(&m->etcd_ok) ? 1 : 0);
}

static bool master_health(void *arg, char *why, size_t cap)
{
    master *m = arg;
    if (!atomic_load(&m->etcd_ok)) {
        snprintf(why, cap, "not ready: etcd watch not connected (%s)", m->cfg.etcd);
        return false;
    }
    if (master_upkeep_unhealthy(m, why, cap))
        return false; /* etcd refuses writes: sticky clients are still served */
    return true;
}

int master_ops_start(master *m)
{
    for (size_t i = 0; i < sizeof master_help / sizeof master_help[0]; i++)
        obs_describe(master_help[i][0], master_help[i][1]);
    obs_on_scrape(master_scrape, m);
    obs_on_collect(master_collect, m);
    if (m->cfg.http_listen[0] == '\0')
        return 0;
    lb_errmsg em = {{0}};
    if (cfg_tls_http_cert(&m->cfg.tls) == NULL)
        LOG_WARN("master", "http endpoint speaks plain HTTP (tls.insecure or tls.http_insecure)",
                 NULL);
    /* the dashboard's routes join before the server listens: a request in
     * between would get 404 (a test saw one) */
    if (httpd_ops_new(m->cfg.http_listen, cfg_tls_http_cert(&m->cfg.tls),
                      cfg_tls_http_key(&m->cfg.tls), master_health, m, &m->http, &em) != LB_OK) {
        LOG_ERROR("master", "http endpoint", "err=\"%s\"", em.text);
        return -1;
    }
    if (master_ui_start(m) != 0) {
        master_ops_stop(m);
        return -1;
    }
    if (httpd_ops_listen(m->http, &em) != LB_OK) {
        LOG_ERROR("master", "http endpoint", "err=\"%s\"", em.text);
        master_ops_stop(m);
        return -1;
    }
    LOG_INFO("master", "http endpoint", "listen=%s paths=\"/metrics /healthz /ui\"",
             m->cfg.http_listen);
    return 0;
}

void master_ops_stop(master *m)
{
    httpd_ops_stop(&m->http);
    auth_verifier_free(&m->ui_auth); /* after the server: no handler uses it any more */
}
