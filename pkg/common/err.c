#include "lb/err.h"
#include "common/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[LB_ERR_COUNT] = {
    [LB_OK] = "ok",
    [LB_EINVAL] = "invalid argument",
    [LB_ENOMEM] = "out of memory",
    [LB_ETIMEDOUT] = "timed out",
    [LB_EIO] = "transport error",
    [LB_ENOTFOUND] = "not found",
    [LB_EPROTO] = "malformed message",
    [LB_ETOOBIG] = "message too large",
    [LB_ECONFIG] = "configuration error",
    [LB_EETCD] = "etcd error",
    [LB_ECOMPACTED] = "etcd revision compacted",
    [LB_EUNAVAIL] = "unavailable",
    [LB_EREJECTED] = "rejected",
    [LB_ECLOSED] = "closed",
    [LB_ELAUNCH] = "launch failed",
    [LB_ENOAPP] = "unknown application",
    [LB_ENOSERVER] = "no eligible server",
    [LB_ELOOP] = "redirect loop",
    [LB_EAUTH] = "authentication failed",
    [LB_EEXISTS] = "already exists",
    [LB_ESYS] = "system error",
};

const char *lb_strerror(lb_err e)
{
    if ((int)e < 0 || e >= LB_ERR_COUNT || err_names[e] == NULL)
        return "unknown error";
    return err_names[e];
}

lb_err lb_fail(lb_errmsg *em, lb_err code, const char *fmt, ...)
{
    if (em != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof em->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

void lb_errmsg_clear(lb_errmsg *em)
{
    if (em != NULL)
        em->text[0] = '\0';
}
