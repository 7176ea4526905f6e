/*
 * Hot-spare failover (seed US 6,591,290): the answer listed spares reserved
 * for this client, so a dead chosen process costs a connect, not a new
 * selection; the claim afterwards only turns the reservation into a session.
 */
#include "client_int.h"

#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int lb_connect_failover(lb_client *c, lb_assignment *a, int timeout_ms, lb_err *err)
{
    lb_err dummy;
    err = err != NULL ? err : &dummy;
    if (c == NULL || a == NULL) {
        *err = lbc_fail(LB_EINVAL, "lb_connect_failover: client and assignment are required");
        return -1;
    }
    int fd = lb_assignment_connect(a, timeout_ms, err);
    if (fd >= 0 || a->n_spares == 0)
        return fd;
    lb_err first = *err;
    for (size_t i = 0; i < a->n_spares; i++) {
        const lb_spare *sp = &a->spares[i];
        if (sp->expires_ms <= wall_ms())
            continue; /* the master gives it back; a claim would be refused */
        lb_err e = LB_OK;
        fd = lbc_tcp_connect(sp->host, sp->port, timeout_ms > 0 ? timeout_ms : 5000, &e);
        if (fd < 0)
            continue;
        lb_request r = {.app = a->app, .client_id = a->client_id};
        lb_assignment claimed;
        e = lbc_request(c, &r, 0, sp->session, &claimed);
        if (e != LB_OK) {
            close(fd);
            *err = e;
            return -1;
        }
        lb_client_release(c, a); /* the dead process's session */
        *a = claimed;
        *err = LB_OK;
        return fd;
    }
    *err = lbc_fail(first, "the process and every hot spare of session %s are unreachable",
                    a->session);
    return -1;
}
