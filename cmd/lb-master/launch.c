/*
 * Connections to agents: one REQ socket per server, dialed on first use and
 * redialed when the server's agent endpoint changes. Launch requests go out on
 * their own context of that socket (many in flight per agent).
 */
#include "master.h"

#include "common/util.h"
#include "obs/log.h"
#include "wire/wire.h"

#include <stdlib.h>
#include <string.h>

struct agent_conn {
    nng_socket sock;
    char *endpoint;
};

static void agent_conn_free(void *p)
{
    struct agent_conn *a = p;
    if (a == NULL)
        return;
    nng_close(a->sock);
    free(a->endpoint);
    free(a);
}

void master_agents_init(master *m)
{
    pthread_mutex_init(&m->agents_lock, NULL);
    m->agents = hmap_new();
}

void master_agents_free(master *m)
{
    hmap_free(&m->agents, agent_conn_free);
    pthread_mutex_destroy(&m->agents_lock);
}

bool master_agent_ctx(master *m, const char *server_id, const char *endpoint, nng_ctx *out)
{
    bool ok = false;
    pthread_mutex_lock(&m->agents_lock);
    struct agent_conn *a = hmap_get(m->agents, server_id);
    if (a != NULL && strcmp(a->endpoint, endpoint) != 0) {
        LOG_INFO("master", "agent endpoint changed", "server=%s endpoint=%s", server_id,
                 endpoint);
        agent_conn_free(hmap_del(m->agents, server_id));
        a = NULL;
    }
    if (a == NULL) {
        nng_socket s;
        lb_errmsg em = {{0}};
        if (wire_req_dial(endpoint, &s, &em) != LB_OK) {
            LOG_WARN("master", "cannot dial agent", "server=%s err=\"%s\"", server_id, em.text);
            goto out;
        }
        a = lb_xcalloc(1, sizeof *a);
        a->sock = s;
        a->endpoint = lb_strdup(endpoint);
        hmap_put(m->agents, server_id, a);
    }
    ok = nng_ctx_open(out, a->sock) == 0;
out:
    pthread_mutex_unlock(&m->agents_lock);
    return ok;
}
