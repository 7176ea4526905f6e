/* The agent's operator surface: /metrics and /healthz on http_listen. */
#ifndef LB_AGENT_OPS_H
#define LB_AGENT_OPS_H

#include "agent.h"

/* Starts the HTTP endpoint when http_listen is set (a no-op otherwise). */
lb_err agent_ops_start(agent *a, lb_errmsg *em);
/* Stops it; safe when it never started. */
void agent_ops_stop(void);

#endif
