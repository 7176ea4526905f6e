/*
 * The slave's TCP relay ("communication link through the slave"): for apps
 * advertised with link relay, the client connects to relay_listen, sends its
 * one-time token and '\n', and the relay splices bytes between the client and
 * the session's process with bounded buffers, forwarding half-closes.
 *
 * One thread runs a poll() loop over every link; relay_grant and
 * relay_release may be called from any thread (nng callbacks): they take the
 * relay's lock briefly and wake the loop through a pipe.
 */
#ifndef LB_SLAVE_RELAY_H
#define LB_SLAVE_RELAY_H

#include <stdint.h>

typedef struct relay relay;

#define RELAY_BUF (64 * 1024)    /* per direction per link */
#define RELAY_TOKEN_TTL_MS 30000 /* a token must be used within this */
#define RELAY_HANDSHAKE_MS 5000  /* token line and process connect */
#define RELAY_MAX_LINKS 1000     /* poll set bound; more connections wait */
#define RELAY_MAX_TOKENS 8192

/* Binds listen ("HOST:PORT" or "tcp://HOST:PORT"; port 0 picks one) and starts
 * the loop thread. advertise (may be NULL or "") is the endpoint given to
 * clients; default the bound HOST:PORT. 0 on success, -1 (logged) otherwise. */
int relay_start(const char *listen, const char *advertise, relay **out);

/* Stops the thread, closes every link and frees *r; sets *r to NULL. */
void relay_stop(relay **r);

/* The endpoint clients connect to ("HOST:PORT"); owned by the relay. */
const char *relay_endpoint(const relay *r);

/* Records a one-time token for session's process at host:port; it expires
 * after RELAY_TOKEN_TTL_MS. Any thread. */
void relay_grant(relay *r, const char *token, const char *host, uint32_t port, const char *session);

/* Forgets the session's tokens and closes its links (after a release). */
void relay_release(relay *r, const char *session);

#endif
