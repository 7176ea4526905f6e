/*
 * Internals of the etcd gateway client shared by its files: the client
 * struct, the HTTP call with endpoint failover, a capped buffer, base64 and
 * JSON helpers. Not part of the public API; tests may use it.
 */
#ifndef LB_ETCD_INTERNAL_H
#define LB_ETCD_INTERNAL_H

#include "etcd/etcd.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

/* Hard caps on what is read from the network. */
#define ETCD_MAX_RANGE_BYTES ((size_t)64 << 20) /* one range or txn answer */
#define ETCD_MAX_SMALL_BYTES ((size_t)1 << 20)  /* put, delete, lease answers */
/* One watch line: etcd takes requests up to 1.5 MiB, which base64 and JSON
 * grow to about 2 MiB, so 4 MiB holds any event batch a default etcd sends. */
#define ETCD_MAX_WATCH_LINE ((size_t)4 << 20)
#define ETCD_MAX_TXN_OPS 128
#define ETCD_POOL_MAX 16            /* idle easy handles kept for reuse */
#define ETCD_DEFAULT_PAGE 1000      /* keys per range page */
#define ETCD_DEFAULT_IDLE_MS 630000 /* etcd's progress notify (10 min) + margin */

/* A pooled easy handle with its error buffer. */
typedef struct etcd_conn {
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
} etcd_conn;

struct etcd_client {
    char *endpoints; /* as given */
    char **eps;      /* normalised URLs without trailing '/' */
    size_t n_eps;
    atomic_size_t cur; /* endpoint that last answered; tried first */
    int timeout_ms;
    atomic_int page_limit;
    atomic_llong watch_idle_ms;
    struct curl_slist *headers;
    /* TLS (NULL: libcurl's defaults) */
    char *ca_file, *cert_file, *key_file;
    /* etcd auth: user NULL = none. token and token_gen are guarded by auth_mu. */
    char *user;
    char *password;
    pthread_mutex_t auth_mu;
    char *token;
    uint64_t token_gen; /* bumped whenever token changes */
    bool auth_off;      /* etcd answered "authentication is not enabled" */
    pthread_mutex_t mu; /* guards pool */
    etcd_conn *pool[ETCD_POOL_MAX];
    size_t n_pool;
};

/* A growable buffer that refuses to grow past max. */
typedef struct etcd_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
    bool too_big;
} etcd_buf;

bool etcd_buf_append(etcd_buf *b, const void *d, size_t n);
void etcd_buf_free(etcd_buf *b);

/* curl_global_init, once per process. */
lb_err etcd_global_init(lb_errmsg *em);

/* Sets the options every handle of this client shares (signals, headers). */
void etcd_conn_setup(const etcd_client *c, CURL *h);
/* Takes an idle pooled handle or makes one (NULL when curl cannot); gives it back. */
etcd_conn *etcd_conn_get(etcd_client *c);
void etcd_conn_put(etcd_client *c, etcd_conn *k);

/*
 * POSTs req (JSON) to path ("/v3/kv/put") on the endpoint that answered last,
 * trying the next ones when an endpoint cannot be reached. On success *out is
 * the parsed answer (caller frees with cJSON_Delete). call is the counter
 * label ("put"); every request and every failure is counted. Answers over
 * max bytes fail with LB_ETOOBIG. Thread-safe.
 */
lb_err etcd_call(etcd_client *c, const char *call, const char *path, const cJSON *req, size_t max,
                 cJSON **out, lb_errmsg *em);

/*
 * Turns one unary answer (body of len bytes, NUL-terminated, HTTP status http)
 * into *out (a JSON object, caller frees) or an lb_err naming url with the
 * gateway's message. Pure: no I/O, no counters. Thread-safe.
 */
lb_err etcd_parse_answer(const char *body, size_t len, long http, const char *url, cJSON **out,
                         int *grpc_code, lb_errmsg *em);

/*
 * POSTs body to path with headers hdr (endpoint failover, size cap max,
 * counting under call) and parses the answer as etcd_parse_answer does;
 * *grpc_code (may be NULL) gets etcd's error code (0 when none).
 */
lb_err etcd_post(etcd_client *c, const char *call, const char *path, const char *body,
                 const struct curl_slist *hdr, size_t max, cJSON **out, int *grpc_code,
                 lb_errmsg *em);

/* ---- auth (auth.c) ---- */

/* True when etcd's error (code, message) means "this token is no good": it
 * expired (code 16, "invalid auth token") or the auth store changed since it
 * was issued ("auth store is old"). A new token fixes both. */
bool etcd_auth_token_rejected(int grpc_code, const char *msg);

/*
 * The headers for one request: the client's shared ones plus
 * "Authorization: <token>" when auth is configured, authenticating first when
 * there is no token. *gen gets the token's generation (for etcd_auth_renew).
 * The caller frees *out with curl_slist_free_all. Thread-safe.
 */
lb_err etcd_auth_headers(etcd_client *c, struct curl_slist **out, uint64_t *gen, lb_errmsg *em);

/* The token of generation gen was rejected: drops it (unless another thread
 * already replaced it) so that the next etcd_auth_headers authenticates.
 * True when this call dropped it (the caller logs and counts the renewal). */
bool etcd_auth_renew(etcd_client *c, uint64_t gen);

/* Reads the first line of a secret file (trailing CR/LF removed); LB_ECONFIG
 * naming the file when it is missing, unreadable, empty or over 4 KiB. */
lb_err etcd_read_secret(const char *path, char **out, lb_errmsg *em);

/* gRPC code (+ message) of an etcd error -> lb_err. */
lb_err etcd_map_grpc(int code, const char *msg);

/* Counts one request / one failure of call. */
void etcd_count_request(const char *call);
void etcd_count_error(const char *call);

/* ---- base64 (standard alphabet, with padding) ---- */
char *etcd_b64_encode(const void *p, size_t n);
/* *out is NUL-terminated (not counted in *n); false on malformed input. */
bool etcd_b64_decode(const char *s, unsigned char **out, size_t *n);

/* ---- JSON (abort on out-of-memory, as lb_xcalloc does) ---- */
cJSON *etcd_jobj(void);
cJSON *etcd_jarr(cJSON *parent, const char *name);
cJSON *etcd_jchild(cJSON *parent, const char *name);
void etcd_jadd_b64(cJSON *o, const char *name, const void *p, size_t n);
void etcd_jadd_i64(cJSON *o, const char *name, int64_t v); /* as a string */
void etcd_jadd_bool(cJSON *o, const char *name, bool v);
void etcd_jadd_str(cJSON *o, const char *name, const char *v);
/* Adds key (and range_end when prefix) as etcd wants them. */
void etcd_jadd_range(cJSON *o, const char *key, bool prefix);

/* Optional fields with a zero default; int64 as string or number. */
int64_t etcd_ji64(const cJSON *o, const char *name);
bool etcd_jbool(const cJSON *o, const char *name);
int64_t etcd_header_rev(const cJSON *resp);

/* Parses one {"key","value",...} object into kv (which it clears first). */
lb_err etcd_kv_parse(const cJSON *j, etcd_kv *kv, lb_errmsg *em);
void etcd_kv_clear(etcd_kv *kv);
/* Appends the answer's kvs array to out (growing it). */
lb_err etcd_kvs_append(etcd_kvs *out, const cJSON *kvs, lb_errmsg *em);

/*
 * Range end for a prefix: the prefix with its last byte below 0xff
 * incremented and what follows dropped; "\0" (every key from the start) when
 * there is none. Writes the length to *n; caller frees.
 */
unsigned char *etcd_prefix_end(const char *prefix, size_t *n);

/* ---- internals exposed for tests and tools ---- */

/* Keys per page of etcd_range_prefix (default ETCD_DEFAULT_PAGE). */
void etcd_set_page_limit(etcd_client *c, int limit);
/* No byte on a watch stream for this long => reconnect. */
void etcd_set_watch_idle_ms(etcd_client *c, int64_t ms);
/*
 * A watch that skips the first range and streams from start_revision; a
 * compacted start revision then reloads (range + on_reset) as any watch does.
 */
lb_err etcd_watch_start_at(etcd_client *c, const char *prefix, int64_t start_revision,
                           const etcd_watch_cb *cb, etcd_watch **out, lb_errmsg *em);

#endif
