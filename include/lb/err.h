/*
 * lbcp's one error type. Every fallible call in the project returns an lb_err;
 * 0 is success. Calls that can say more take an optional lb_errmsg *, filled
 * with a human message (what failed and where: file:line:key, endpoint, key).
 *
 * Thread-safety: lb_strerror returns static strings and is safe from any thread.
 */
#ifndef LB_ERR_H
#define LB_ERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lb_err {
    LB_OK = 0,
    LB_EINVAL,     /* invalid argument or request */
    LB_ENOMEM,     /* out of memory */
    LB_ETIMEDOUT,  /* an operation timed out */
    LB_EIO,        /* transport failure (connect, send, receive) */
    LB_ENOTFOUND,  /* key, lease, session or server not found */
    LB_EPROTO,     /* malformed message or answer */
    LB_ETOOBIG,    /* message over its size limit */
    LB_ECONFIG,    /* configuration error */
    LB_EETCD,      /* etcd answered with an error */
    LB_ECOMPACTED, /* etcd revision compacted */
    LB_EUNAVAIL,   /* service unavailable (no leader, no master, down) */
    LB_EREJECTED,  /* the load balancer rejected the request */
    LB_ECLOSED,    /* object closed or shutting down */
    LB_ELAUNCH,    /* process launch failed */
    LB_ENOAPP,     /* unknown application */
    LB_ENOSERVER,  /* no eligible server */
    LB_ELOOP,      /* redirect loop or too many hops */
    LB_EAUTH,      /* authentication failed */
    LB_EEXISTS,    /* already exists */
    LB_ESYS,       /* system call failed (errno in the message) */
    LB_ERR_COUNT
} lb_err;

/* A message buffer for errors; callers may pass NULL where one is accepted. */
typedef struct lb_errmsg {
    char text[512];
} lb_errmsg;

/* Static, never NULL: "ok", "timed out", ... */
const char *lb_strerror(lb_err e);

#ifdef __cplusplus
}
#endif
#endif
