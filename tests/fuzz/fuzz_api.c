/*
 * libFuzzer target: the slave's HTTP/JSON API translation (pkg/api json.c),
 * what a client in any language sends and gets back. The first byte picks:
 *   even: a POST /v1/request: the query (a followed redirect's preselection,
 *         "k=v&k=v" up to the first '\n') and the JSON body go through
 *         api_json_request; when it accepts them, the envelope it packed must
 *         pass wire_decode as a ClientRequest;
 *   odd:  an answer from the front door (any bytes that decode as an
 *         Envelope) rendered by every renderer (instruction, session, server
 *         list): each must set an HTTP status and, for JSON, valid JSON.
 * The query is read from the input through --wrap'd httpd_query/httpd_header,
 * so no HTTP server is needed and a run takes microseconds.
 */
#include "../../pkg/api/api_int.h"
#include "wire/wire.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__wrap_httpd_query(const httpd_req *r, const char *key);
const char *__wrap_httpd_header(const httpd_req *r, const char *name);

#define MAX_ARGS 16

static struct {
    size_t n;
    char *key[MAX_ARGS], *val[MAX_ARGS];
} args;

const char *__wrap_httpd_query(const httpd_req *r, const char *key)
{
    (void)r;
    for (size_t i = 0; i < args.n; i++)
        if (strcmp(args.key[i], key) == 0)
            return args.val[i];
    return NULL;
}

const char *__wrap_httpd_header(const httpd_req *r, const char *name)
{
    (void)r;
    (void)name;
    return NULL;
}

/* "k=v&k2=v2" (no percent-decoding: libmicrohttpd hands decoded values). */
static void parse_args(char *q)
{
    args.n = 0;
    for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv != NULL && args.n < MAX_ARGS;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq != NULL)
            *eq = '\0';
        args.key[args.n] = kv;
        args.val[args.n++] = eq != NULL ? eq + 1 : "";
    }
}

static void check_resp(httpd_resp *resp)
{
    if (resp->status < 100 || resp->status > 599)
        abort();
    if (resp->content_type != NULL && strstr(resp->content_type, "json") != NULL) {
        cJSON *j = cJSON_ParseWithLength(resp->body != NULL ? resp->body : "", resp->len);
        if (j == NULL)
            abort(); /* a JSON answer that is not JSON */
        cJSON_Delete(j);
    }
    httpd_resp_free(resp);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t qlen = nl != NULL ? (size_t)(nl - data) : 0;
    char *q = malloc(qlen + 1);
    memcpy(q, data, qlen);
    q[qlen] = '\0';
    parse_args(q);
    const uint8_t *body = nl != NULL ? nl + 1 : data;
    size_t blen = size - (size_t)(body - data);
    char *b = malloc(blen + 1);
    memcpy(b, body, blen);
    b[blen] = '\0';
    httpd_req req = {.method = "POST", .path = "/v1/request", .body = b, .body_len = blen};
    httpd_resp resp = {0};
    uint8_t *out = NULL;
    size_t len = 0;
    if (api_json_request(&req, &out, &len, &resp)) {
        nng_msg *m = NULL;
        Lb__Envelope *env = NULL;
        lb_errmsg em = {{0}};
        if (nng_msg_alloc(&m, len) != 0)
            abort();
        memcpy(nng_msg_body(m), out, len);
        if (wire_decode(m, WIRE_TRANSPORT_MAX, &env, &em) != LB_OK ||
            env->body_case != LB__ENVELOPE__BODY_CLIENT_REQUEST)
            abort(); /* what the API forwards must be what the front door accepts */
        wire_free(&env);
        nng_msg_free(m);
        free(out);
        httpd_resp_free(&resp);
    } else {
        check_resp(&resp);
    }
    free(b);
    free(q);
    args.n = 0;
}

static void fuzz_answer(const uint8_t *data, size_t size)
{
    Lb__Envelope *env = lb__envelope__unpack(NULL, size, data);
    if (env == NULL)
        return;
    httpd_resp resp = {0};
    api_json_instruction(env, &resp);
    check_resp(&resp);
    api_json_session(env, "sid-1", true, &resp);
    check_resp(&resp);
    api_json_session(env, "sid-1", false, &resp);
    check_resp(&resp);
    api_json_servers(env, &resp);
    check_resp(&resp);
    if (env->body_case == LB__ENVELOPE__BODY_ERROR) {
        api_json_error_reply(env->error, &resp);
        check_resp(&resp);
    }
    lb__envelope__free_unpacked(env, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_request(data + 1, size - 1);
    else
        fuzz_answer(data + 1, size - 1);
    return 0;
}
