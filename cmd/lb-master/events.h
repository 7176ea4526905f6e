/*
 * The dashboard's event feed: the events `lbctl watch` prints (server up/down,
 * drain/undrain, disable/enable, set-group, session start/end, leader change,
 * slave and master up/down, group rank set), derived from the master's own
 * etcd watch and kept in a ring of the last EVENTS_MAX, numbered from 1.
 *
 * Session starts and ends are told from etcd alone (a key's version 1, a
 * DELETE's previous value): the master's watch asks for prev_kv. No per-session
 * state is kept (at 100,000 sessions a set of them took ~8 MiB, README P9).
 *
 * Thread-safety: events_note runs on the watch thread before the view applies
 * the events (it compares with the view's old values, taking the view lock);
 * events_json may be called from any thread. The ring has its own lock.
 */
#ifndef LB_MASTER_EVENTS_H
#define LB_MASTER_EVENTS_H

#include "etcd/etcd.h"
#include "registry/reg.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define EVENTS_MAX 512

typedef struct master_events master_events;

master_events *events_new(void);
void events_free(master_events **e);
/* Records the events n etcd changes make, against the view before they apply. */
void events_note(master_events *e, reg *view, const etcd_event *evs, size_t n);
/* Adds {"events":[{"seq","ts_ms","event","subject","detail"}...],"last":N} with
 * the events numbered above since (oldest first, at most EVENTS_MAX). */
void events_json(master_events *e, uint64_t since, cJSON *out);

#endif
