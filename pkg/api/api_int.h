/* pkg/api internals shared by api.c (server, calls) and json.c (translation). */
#ifndef LB_API_INT_H
#define LB_API_INT_H

#include "httpd/httpd.h"
#include "lb.pb-c.h"

#include <stdbool.h>
#include <stddef.h>

/* An HTTP error answer: {"error":{"code":code,"reason":reason}}. */
void api_error(httpd_resp *resp, int status, const char *code, const char *reason);

/* Builds the envelope for POST /v1/request from the JSON body and the query
 * (a followed redirect's preselection and visited list). On failure fills
 * resp with the 400 and returns false. *out is the packed envelope (free). */
bool api_json_request(const httpd_req *req, uint8_t **out, size_t *len, httpd_resp *resp);

/* Renders the front door's answer to a POST /v1/request into resp (200 for
 * SERVE, 307 + Location for REDIRECT, an error status for REJECT/ErrorReply). */
void api_json_instruction(const Lb__Envelope *env, httpd_resp *resp);
/* Renders a SessionReply (release, renew) for session id. */
void api_json_session(const Lb__Envelope *env, const char *id, bool renew, httpd_resp *resp);
/* Renders a ServerList. */
void api_json_servers(const Lb__Envelope *env, httpd_resp *resp);
/* Maps an ErrorReply to its HTTP status and code. */
void api_json_error_reply(const Lb__ErrorReply *e, httpd_resp *resp);

/* True when s (n bytes) is valid UTF-8. */
bool api_utf8_valid(const char *s, size_t n);

#endif
