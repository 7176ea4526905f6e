/* Internals of a watch, shared by watch.c (thread, reload) and watch_stream.c (one connection). */
#ifndef LB_ETCD_WATCH_H
#define LB_ETCD_WATCH_H

#include "etcd/internal.h"
#include "etcd/nap.h"

#include <stdatomic.h>

/* Why a stream ended, as its line parser saw it. */
typedef enum watch_end {
    WATCH_END_NONE,   /* the connection dropped or timed out */
    WATCH_END_RELOAD, /* compacted (or an unreadable batch): range again, then stream */
    WATCH_END_ERROR   /* etcd sent an error or canceled the watch */
} watch_end;

struct etcd_watch {
    etcd_client *c;
    char *prefix;    /* the range's first key (or prefix), also named in logs */
    char *range_end; /* NULL: every key under prefix */
    etcd_watch_cb cb;
    _Atomic int64_t want_noput; /* etcd_watch_set_noput's tag (0: filter off) */
    int64_t noput;              /* the tag this watch streams with (thread's) */
    _Atomic int64_t synced;     /* the tag of the last reload delivered */
    int64_t rev;                /* last revision delivered; a stream starts at rev + 1 */
    bool need_reload;           /* range + on_reset before the next stream */
    etcd_kvs first;             /* etcd_watch_start's snapshot, handed to on_reset on the thread */
    bool have_first;
    int connected; /* -1 not yet known, 0 down, 1 up: on_status on changes only */
    size_t ep;     /* endpoint the stream uses */
    etcd_nap nap;  /* stop flag + interruptible backoff */
    CURLM *multi;  /* woken by etcd_watch_stop */
    pthread_t thr;
    /* state of the current stream */
    etcd_buf line;
    watch_end end;
    lb_err end_err;
    char end_msg[256];
    uint64_t auth_gen;   /* generation of the token this stream sent */
    bool token_rejected; /* etcd refused that token: renew it, reconnect at once */
    bool created;        /* etcd confirmed the watch on this stream */
    int64_t created_ms;  /* when (monotonic) */
};

/*
 * Runs one watch stream from rev + 1 until it ends or the watch stops,
 * delivering events (and on_status(true) once etcd confirms). Returns why it
 * ended in w->end / w->end_err / w->end_msg.
 */
void etcd_watch_stream(etcd_watch *w);

/*
 * Feeds n bytes of the stream (any chunking) to the line parser, which hands
 * complete lines' events to the callbacks. False once the stream must end
 * (w->end says why). etcd_watch_flush parses a last line that came without
 * '\n'. Pure parsing: no I/O; used by the stream and by the fuzz target.
 */
bool etcd_watch_feed(etcd_watch *w, const char *ptr, size_t n);
void etcd_watch_flush(etcd_watch *w);

/* Calls on_status when the connection state changes. */
void etcd_watch_status(etcd_watch *w, bool up, lb_err err, const char *msg);

#endif
