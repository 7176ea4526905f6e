/*
 * Session RPCs at the master: release (client or operator), renew (the client
 * library keeps its sessions alive), and list mode (every server of an app with
 * its status and users, for clients that choose for themselves).
 */
#include "sessions.h"

#include "common/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nng_msg *session_reply(uint64_t id, Lb__SessionReply *sr)
{
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = id;
    env.body_case = LB__ENVELOPE__BODY_SESSION_REPLY;
    env.session_reply = sr;
    nng_msg *m = NULL;
    wire_encode(&env, &m);
    return m;
}

bool master_per_session(const reg_server *s, const char *app)
{
    for (size_t i = 0; s != NULL && i < s->info->n_app_infos; i++)
        if (strcmp(s->info->app_infos[i]->name, app) == 0)
            return s->info->app_infos[i]->per_session;
    return true;
}

bool master_session_needs_write(const master *m, const Lb__Session *stored, int64_t expires_ms)
{
    return !m->cfg.etcd_economy || expires_ms - stored->expires_ms > m->cfg.session_ttl_ms / 4;
}

nng_msg *master_release(master *m, const Lb__Envelope *req)
{
    const Lb__ReleaseRequest *rr = req->release_request;
    Lb__SessionReply rep = LB__SESSION_REPLY__INIT;
    char text[256] = "", server[128] = "", endpoint[256] = "";
    bool stop = false;
    reg_session_buf sb;
    reg_lock(m->view);
    const Lb__Session *s = rr->session_id ? reg_session_locked(m->view, rr->session_id, &sb) : NULL;
    if (s == NULL) {
        snprintf(text, sizeof text, "no such session '%s'", rr->session_id ? rr->session_id : "");
    } else if (rr->client_id != NULL && rr->client_id[0] != '\0' &&
               strcmp(rr->client_id, s->client_id) != 0) {
        snprintf(text, sizeof text, "session '%s' belongs to another client", rr->session_id);
    } else {
        reg_server *srv = reg_server_locked(m->view, s->server_id);
        stop = srv != NULL && master_per_session(srv, s->app);
        if (srv != NULL) {
            snprintf(server, sizeof server, "%s", s->server_id);
            snprintf(endpoint, sizeof endpoint, "%s", srv->info->agent_endpoint);
        }
        master_queue_session_delete(m, s);
        LOG_INFO("master", "session released", "session=%s client=%s server=%s", s->session_id,
                 s->client_id, s->server_id);
        master_session_forget_locked(m, s);
        rep.ok = true;
    }
    reg_unlock(m->view);
    if (stop && endpoint[0] != '\0')
        master_agent_stop(m, server, endpoint, rr->session_id);
    obs_count(rep.ok ? "master_releases_total{result=\"ok\"}"
                     : "master_releases_total{result=\"unknown\"}");
    rep.error = text;
    return session_reply(req->request_id, &rep);
}

nng_msg *master_renew(master *m, const Lb__Envelope *req)
{
    const Lb__RenewRequest *rr = req->renew_request;
    Lb__SessionReply rep = LB__SESSION_REPLY__INIT;
    char **unknown = lb_xcalloc(rr->n_session_ids, sizeof *unknown);
    int64_t expires = lb_wall_ms() + m->cfg.session_ttl_ms, earliest = expires;
    reg_lock(m->view);
    for (size_t i = 0; i < rr->n_session_ids; i++) {
        reg_session_buf cb;
        const Lb__Session *cur = reg_session_locked(m->view, rr->session_ids[i], &cb);
        if (cur == NULL ||
            (rr->client_id && rr->client_id[0] && strcmp(rr->client_id, cur->client_id) != 0)) {
            unknown[rep.n_unknown++] = rr->session_ids[i];
            continue;
        }
        /* disabled = drained and not renewed: the session runs out and its
         * client moves on its next request */
        const reg_server *srv = reg_server_locked(m->view, cur->server_id);
        if (srv != NULL && srv->override != NULL && srv->override->disable) {
            unknown[rep.n_unknown++] = rr->session_ids[i];
            obs_count("master_renewals_refused_total{reason=\"disabled\"}");
            continue;
        }
        if (!master_session_needs_write(m, cur, expires)) {
            /* moved by a quarter of the ttl or less: the stored expiry stands */
            earliest = cur->expires_ms < earliest ? cur->expires_ms : earliest;
            obs_count("master_session_writes_skipped_total");
            continue;
        }
        Lb__Session *s = reg_session_dup(cur);
        s->expires_ms = expires;
        master_queue_session(m, s, false, false);
        reg_session_put_locked(m->view, s);
    }
    reg_unlock(m->view);
    obs_add(obs_counter_get("master_renewals_total"), rr->n_session_ids - rep.n_unknown);
    rep.ok = rep.n_unknown == 0;
    rep.unknown = unknown;
    rep.expires_ms = earliest; /* the client renews again before the first one runs out */
    rep.error = rep.ok ? "" : "some sessions no longer exist";
    nng_msg *msg = session_reply(req->request_id, &rep);
    free(unknown);
    return msg;
}

static const char *status_of(const reg_server *s)
{
    if (s->stale || s->conn_down)
        return "DOWN";
    if (s->ejected_until_ms != 0)
        return "EJECTED";
    if (s->override != NULL && s->override->disable)
        return "DISABLED";
    if (s->override != NULL && s->override->drain)
        return "DRAINING";
    return "UP";
}

static bool offers(const Lb__ServerInfo *in, const char *app)
{
    for (size_t i = 0; i < in->n_apps; i++)
        if (strcmp(in->apps[i], app) == 0)
            return true;
    return false;
}

nng_msg *master_list(master *m, const Lb__Envelope *req)
{
    const char *app = req->list_request->app ? req->list_request->app : "";
    Lb__ServerList out = LB__SERVER_LIST__INIT;
    out.app = (char *)app;
    reg_lock(m->view);
    sel_snapshot *snap = reg_snapshot_locked(m->view); /* for effective group ranks */
    size_t n = reg_n_servers_locked(m->view), k = 0, it = 0;
    Lb__ServerEntry *items = lb_xcalloc(n, sizeof *items);
    Lb__ServerEntry **ptrs = lb_xcalloc(n, sizeof *ptrs);
    reg_server *s;
    while ((s = reg_server_next_locked(m->view, &it)) != NULL) {
        if (app[0] != '\0' && !offers(s->info, app)) /* "": every server (lbctl servers) */
            continue;
        const sel_server *ss = s->idx >= 0 ? sel_snapshot_server(snap, s->idx) : NULL;
        Lb__ServerEntry *e = &items[k];
        lb__server_entry__init(e);
        e->server_id = lb_strdup(s->info->id);
        e->host = lb_strdup(s->info->host);
        e->status = (char *)status_of(s);
        e->users = (s->load != NULL ? s->load->sessions : 0) + s->pending;
        e->capacity = s->info->capacity;
        e->group = lb_strdup(ss != NULL ? ss->group : s->info->group);
        e->group_rank = ss != NULL ? ss->group_rank : s->info->group_rank;
        e->zone = lb_strdup(s->info->zone);
        char why[256];
        reg_health_detail_locked(m->view, s, why, sizeof why);
        e->detail = lb_strdup(why);
        ptrs[k++] = e;
    }
    reg_unlock(m->view);
    out.n_servers = k;
    out.servers = ptrs;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_SERVER_LIST;
    env.server_list = &out;
    nng_msg *msg = NULL;
    wire_encode(&env, &msg);
    for (size_t i = 0; i < k; i++) {
        free(items[i].server_id);
        free(items[i].host);
        free(items[i].group);
        free(items[i].zone);
        free(items[i].detail);
    }
    free(items);
    free(ptrs);
    obs_count("master_lists_total");
    return msg;
}

/* View lock held; why (LIVE_WHY bytes) holds the entry's detail. */
#define LIVE_WHY 256
static void live_fill(reg *view, Lb__ServerLive *e, const reg_server *s, int64_t now, char *why)
{
    lb__server_live__init(e);
    e->server_id = s->info->id;
    e->status = s->stale || s->conn_down ? "DOWN" : s->ejected_until_ms != 0 ? "EJECTED" : "UP";
    reg_health_detail_locked(view, s, why, LIVE_WHY);
    e->detail = why;
    e->load = s->load;
    e->pending = s->pending;
    e->age_ms = s->load != NULL ? now - s->load_at_ms : -1;
}

nng_msg *master_load_list(master *m, const Lb__Envelope *req)
{
    const char *only = req->load_request->server_id;
    Lb__LoadList out = LB__LOAD_LIST__INIT;
    out.master_id = m->cfg.id;
    out.leader = master_leading(m);
    nng_msg *msg = NULL;
    int64_t now = lb_mono_ms();
    /* packed under the view lock: the entries borrow the view's records */
    reg_lock(m->view);
    size_t n = reg_n_servers_locked(m->view), k = 0, it = 0;
    Lb__ServerLive *items = lb_xcalloc(n + 1, sizeof *items);
    Lb__ServerLive **ptrs = lb_xcalloc(n + 1, sizeof *ptrs);
    char *whys = lb_xcalloc(n + 1, LIVE_WHY);
    reg_server *s;
    while ((s = reg_server_next_locked(m->view, &it)) != NULL && k < n) {
        if (only != NULL && only[0] != '\0' && strcmp(only, s->info->id) != 0)
            continue;
        live_fill(m->view, &items[k], s, now, whys + k * LIVE_WHY);
        ptrs[k] = &items[k];
        k++;
    }
    out.n_servers = k;
    out.servers = ptrs;
    Lb__Envelope env = LB__ENVELOPE__INIT;
    env.version = WIRE_VERSION;
    env.request_id = req->request_id;
    env.body_case = LB__ENVELOPE__BODY_LOAD_LIST;
    env.load_list = &out;
    wire_encode(&env, &msg);
    reg_unlock(m->view);
    free(items);
    free(ptrs);
    free(whys);
    obs_count("master_load_lists_total");
    return msg;
}
