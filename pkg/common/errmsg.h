/* Internal helpers around lb_err / lb_errmsg. */
#ifndef LB_COMMON_ERRMSG_H
#define LB_COMMON_ERRMSG_H

#include "lb/err.h"

/* Formats fmt into em (if not NULL) and returns code, so a failure reads
 * `return lb_fail(em, LB_ECONFIG, "%s:%d: ...", ...);`. */
lb_err lb_fail(lb_errmsg *em, lb_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void lb_errmsg_clear(lb_errmsg *em);

#endif
