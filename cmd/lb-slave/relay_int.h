/* Internals of the relay shared by relay.c (listener, tokens, loop) and
 * relay_link.c (one link's handshake and splicing). Loop thread only, except
 * the fields marked "lock". */
#ifndef LB_SLAVE_RELAY_INT_H
#define LB_SLAVE_RELAY_INT_H

#include "relay.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rbuf {
    char *data;      /* RELAY_BUF bytes */
    size_t off, len; /* pending bytes are data[off, len) */
} rbuf;

typedef enum { LINK_TOKEN, LINK_CONNECTING, LINK_SPLICE } link_state;

typedef struct rlink {
    link_state state;
    int cfd, pfd;        /* client and process sockets (-1: none) */
    int ci, pi;          /* their slots in the poll set of this turn (-1: none) */
    int64_t deadline_ms; /* handshake deadline (mono) */
    char line[80];       /* token line so far */
    size_t line_len;
    rbuf up, down;       /* up: client -> process, down: process -> client */
    bool c_eof, p_eof;   /* read side saw EOF */
    bool c_shut, p_shut; /* we shut down the write side */
    bool dead;
    uint64_t n_up, n_down;
    char session[64];
    struct rlink *next;
} rlink;

typedef struct rtoken {
    char token[40];
    char host[256];
    uint32_t port;
    char session[64];
    int64_t expires_ms; /* mono */
} rtoken;

struct relay {
    int lfd;
    int wake[2];
    char endpoint[300];
    pthread_t thread;
    bool stopping; /* lock */
    pthread_mutex_t lock;
    rtoken *tokens; /* lock */
    size_t n_tokens;
    char (*kill)[64]; /* lock: sessions whose links to close */
    size_t n_kill;
    rlink *links;
    size_t n_links;
};

/* relay.c: takes token (one-time) into *out; false when unknown or expired. */
bool relay_take_token(relay *r, const char *token, rtoken *out);

/* relay_link.c */
rlink *link_new(int cfd);
void link_free(rlink *l);
/* Handles this turn's poll events of l (revents of its fds, 0 when not polled). */
void link_io(relay *r, rlink *l, short crev, short prev);
/* Poll interest of l's fds. */
short link_cevents(const rlink *l);
short link_pevents(const rlink *l);

#endif
