/*
 * master_selection_reasons_total{reason}: the bounded class of each selection
 * answer's reason. rpc_reasons_init resolves the counters once (before any
 * answer; not thread-safe); rpc_reasons_count is lock-free, any thread.
 */
#ifndef LB_MASTER_RPC_REASONS_H
#define LB_MASTER_RPC_REASONS_H

#include "lb.pb-c.h"

void rpc_reasons_init(void);
void rpc_reasons_count(const Lb__SelectionInstruction *in);

#endif
