/*
 * Sticky connections, reconnecting as the seed describes (Fig. 4): first the
 * same server (here: the same process), then a fresh request (affinity brings
 * the client back to its server while it is good, with a relaunched process
 * if the old one died, else to another server), and when no slave can be
 * reached, a live process this client already holds on one of the alternate
 * servers. Closing releases the session.
 */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STICKY_CONNECT_MS 3000

struct lb_sticky {
    lb_client *c;
    lb_assignment a;
    int fd;
    lb_sticky_how how;
};

lb_sticky *lb_sticky_open(lb_client *c, const char *app, lb_err *err)
{
    lb_err dummy;
    err = err != NULL ? err : &dummy;
    lb_sticky *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *err = lbc_fail(LB_ENOMEM, "out of memory");
        return NULL;
    }
    s->c = c;
    s->fd = -1;
    s->how = LB_STICKY_NEW;
    *err = lb_client_request(c, app, &s->a);
    if (*err == LB_OK)
        s->fd = lb_assignment_connect(&s->a, STICKY_CONNECT_MS, err);
    if (*err == LB_OK)
        return s;
    if (s->a.session[0] != '\0')
        lb_client_release(c, &s->a);
    free(s);
    return NULL;
}

int lb_sticky_fd(lb_sticky *s)
{
    return s != NULL ? s->fd : -1;
}

const lb_assignment *lb_sticky_assignment(const lb_sticky *s)
{
    return &s->a;
}

lb_sticky_how lb_sticky_last_how(const lb_sticky *s)
{
    return s->how;
}

/* Step 3: a process of this app the client holds on an alternate server. */
static lb_err sticky_alternate(lb_sticky *s)
{
    lb_err err = LB_EUNAVAIL;
    for (size_t i = 0; i < s->a.n_alternates; i++) {
        lbc_known k;
        if (!lbc_known_on(s->c, s->a.app, s->a.alternates[i].server, &k))
            continue;
        int fd = lbc_tcp_connect(k.host, k.port, STICKY_CONNECT_MS, &err);
        if (fd < 0) {
            lbc_forget(s->c, k.host, k.port);
            continue;
        }
        /* the session stays this sticky's own (still held, released on close) */
        s->fd = fd;
        lbc_copy(s->a.server, sizeof s->a.server, k.server);
        lbc_copy(s->a.host, sizeof s->a.host, k.host);
        s->a.port = k.port;
        s->a.pid = 0;
        s->how = LB_STICKY_ALTERNATE;
        return LB_OK;
    }
    return err;
}

lb_err lb_sticky_reconnect(lb_sticky *s)
{
    if (s == NULL)
        return lbc_fail(LB_EINVAL, "lb_sticky_reconnect: no sticky");
    lb_err err = LB_OK;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    /* 1: the same process (a relay token is single-use: ask again instead) */
    if (!s->a.relay && s->a.port != 0) {
        s->fd = lbc_tcp_connect(s->a.host, s->a.port, STICKY_CONNECT_MS, &err);
        if (s->fd >= 0) {
            s->how = LB_STICKY_SAME;
            return LB_OK;
        }
        lbc_forget(s->c, s->a.host, s->a.port);
    }
    /* 2: ask again under the same identity, saying which process was
     * unreachable (a relayed link that ended counts: its process may have died
     * a moment ago), so the master asks its agent rather than its own view,
     * which may not have the exit report yet */
    lb_assignment na;
    lb_request r = {.app = s->a.app, .client_id = s->a.client_id};
    err = lbc_request(s->c, &r, (int32_t)s->a.pid, NULL, &na);
    if (err == LB_OK) {
        int fd = lb_assignment_connect(&na, STICKY_CONNECT_MS, &err);
        if (strcmp(na.session, s->a.session) != 0)
            lb_client_release(s->c, &s->a); /* moved: the old session is done */
        s->a = na;
        if (fd < 0)
            return err;
        s->fd = fd;
        s->how = LB_STICKY_REREQUEST;
        return LB_OK;
    }
    if (!lbc_retryable(err))
        return err;
    /* 3: no slave answered: the alternates as hot spares */
    lb_err alt = sticky_alternate(s);
    return alt == LB_OK ? LB_OK : err;
}

void lb_sticky_close(lb_sticky **sp)
{
    lb_sticky *s = sp != NULL ? *sp : NULL;
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    if (s->a.session[0] != '\0')
        lb_client_release(s->c, &s->a);
    free(s);
    *sp = NULL;
}
