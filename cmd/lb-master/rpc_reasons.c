/* See rpc_reasons.h. */
#include "rpc_reasons.h"

#include "obs/metrics.h"

#include <stdio.h>
#include <string.h>

/* The classes of an answer's reason, a bounded label set for
 * master_selection_reasons_total (counters resolved once, by rpc_reasons_init). */
typedef enum rpc_reason {
    RR_NO_APP,
    RR_LAUNCH_FAILED,
    RR_BAD_REQUEST,
    RR_NO_SERVER,
    RR_OTHER,
    RR_MOVED,
    RR_CONFIRMED,
    RR_STICKY,
    RR_NEW,
    RR_N
} rpc_reason;
static const char *const rpc_reason_names[RR_N] = {"no_app",    "launch_failed", "bad_request",
                                                   "no_server", "other",         "moved",
                                                   "confirmed", "sticky",        "new"};
static obs_counter *rpc_reason_counters[RR_N];

static rpc_reason rpc_reason_class(const Lb__SelectionInstruction *in)
{
    if (in->action == LB__ACTION__REJECT) {
        const char *r = in->reason != NULL ? in->reason : "";
        if (strncmp(r, "unknown app", 11) == 0)
            return RR_NO_APP;
        if (strstr(r, "launch failed") != NULL)
            return RR_LAUNCH_FAILED;
        if (strncmp(r, "bad request", 11) == 0)
            return RR_BAD_REQUEST;
        if (strstr(r, "no eligible") != NULL || strstr(r, "no server") != NULL)
            return RR_NO_SERVER;
        return RR_OTHER;
    }
    return in->moved ? RR_MOVED : in->confirmed ? RR_CONFIRMED : in->affinity ? RR_STICKY : RR_NEW;
}

void rpc_reasons_init(void)
{
    for (size_t i = 0; i < RR_N; i++) {
        char name[96];
        snprintf(name, sizeof name, "master_selection_reasons_total{reason=\"%s\"}",
                 rpc_reason_names[i]);
        rpc_reason_counters[i] = obs_counter_get(name);
    }
}

void rpc_reasons_count(const Lb__SelectionInstruction *in)
{
    obs_inc(rpc_reason_counters[rpc_reason_class(in)]);
}
