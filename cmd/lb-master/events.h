/*
 * The dashboard's event feed: the events `lbctl watch` prints (server up/down,
 * drain/undrain, disable/enable, set-group, session start/end, leader change,
 * slave and master up/down, group rank set), derived from the master's own
 * etcd watch and kept in a ring of the last EVENTS_MAX, numbered from 1.
 *
 * A session's start is told from etcd (its key's version 1) on a standby,
 * and by the leader when it writes one (events_session_started: the leader's
 * watch leaves out its own session puts, writer.c); its end from
 * etcd's DELETE, named from the view (another writer's delete: the note runs
 * before the view applies it, so the view still has the session) or, for the
 * master's own deletes, which take the session out of its view first, from
 * the detail it kept when it deleted it (events_session_deleting) until that
 * DELETE comes back. The watch does not ask for prev_kv: etcd reads the old
 * value back for every delete it sends with one (+94 us of etcd CPU per
 * delete, tests/bench/etcd_put_cost.py). Nothing is kept per session beyond
 * the deletes in flight (at 100,000 sessions a set of them took ~8 MiB,
 * README P9).
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
#define EVENTS_PENDING_MAX 4096 /* this master's deletes awaiting etcd's DELETE */

typedef struct master_events master_events;

master_events *events_new(void);
void events_free(master_events **e);
/* Records the events n etcd changes make, against the view before they apply. */
void events_note(master_events *e, reg *view, const etcd_event *evs, size_t n);
/* Keeps s's detail for the session-end its DELETE will bring: the caller
 * (the leader, holding the view lock) is deleting s from the view and from
 * etcd. e may be NULL. */
void events_session_deleting(master_events *e, const Lb__Session *s);
/* The leader is writing new session s (view lock held). e may be NULL. */
void events_session_started(master_events *e, const Lb__Session *s);
/* Adds {"events":[{"seq","ts_ms","event","subject","detail"}...],"last":N} with
 * the events numbered above since (oldest first, at most EVENTS_MAX). */
void events_json(master_events *e, uint64_t since, cJSON *out);

#endif
