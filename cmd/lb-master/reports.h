/*
 * The batch both report receivers (reports.c: nng; reports_udp.c: UDP
 * datagrams) fill and apply: decoded ServerLoads admitted by
 * master_report_admit, applied to the view under one lock per batch.
 *
 * Ownership: a batch owns the loads it holds. Threads: one batch per receiving
 * thread, never shared.
 */
#ifndef LB_MASTER_REPORTS_H
#define LB_MASTER_REPORTS_H

#include "master.h"
#include "obs/metrics.h"

#define REPORT_BATCH_MAX 512

typedef struct report_batch {
    Lb__ServerLoad *loads[REPORT_BATCH_MAX]; /* detached from their envelopes: owned */
    size_t n;
    bool mac_only;    /* UDP: admitted by a MAC for us only (report_auth.c) */
    const char *from; /* the sender of the envelope being taken, for logs */
    obs_counter *c_server, *c_slave, *c_bad, *c_unknown, *c_transport;
} report_batch;

/* A batch of the receiver named transport ("nng", "udp"). */
report_batch *report_batch_new(const char *transport, bool mac_only);
/* Applies what the batch holds (one view lock) and empties it. */
void report_batch_flush(master *m, report_batch *b);
/* Takes one decoded ServerLoad envelope: admitted, its load joins the batch
 * (flushed when full); refused, it is counted and logged by the admission. */
void report_batch_take(master *m, report_batch *b, Lb__Envelope *env);
void report_batch_free(master *m, report_batch *b); /* flushes first */

/* reports_udp.c: the thread (after master_reports_udp_open). */
int master_reports_udp_start(master *m);

#endif
