/*
 * lb-rawreq ADDR [--timeout MS]: a test tool. Sends stdin's bytes, as they are,
 * as one message on a REQ socket to ADDR and prints what came back:
 *   error code=<lb_err> message=<text>     an ErrorReply
 *   session_reply ok=<0|1> unknown=<n> ... a SessionReply (release, renew)
 *   body=<case>                            any other envelope
 *   undecodable len=<n>                    bytes that are not an envelope
 *   no answer: <why>                       nothing came back (exit 1)
 *   no answer: TLS refused by <url>        the server refused our certificate
 * TLS from LBCP_TLS_CA, LBCP_TLS_CERT, LBCP_TLS_KEY (wire_tls.h).
 */
#include "wire/wire.h"
#include "wire/wire_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lb-rawreq ADDR [--timeout MS] < bytes\n");
        return 2;
    }
    int timeout = argc >= 4 && strcmp(argv[2], "--timeout") == 0 ? atoi(argv[3]) : 5000;
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    nng_socket s;
    lb_errmsg em = {{0}};
    wire_tls *tls = NULL;
    if (wire_tls_env_default(&tls, &em) != LB_OK || wire_req_dial(argv[1], &s, &em) != LB_OK) {
        fprintf(stderr, "%s\n", em.text);
        return 1;
    }
    nng_msg *m = NULL;
    nng_msg_alloc(&m, 0);
    nng_msg_append(m, buf, len);
    free(buf);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout);
    int rv = nng_sendmsg(s, m, 0);
    if (rv != 0)
        nng_msg_free(m); /* a failed send leaves the message with us */
    else
        rv = nng_recvmsg(s, &m, 0);
    char url[256];
    if (rv != 0) {
        if (wire_tls_refused(s, url, sizeof url))
            printf("no answer: TLS refused by %s\n", url);
        else
            printf("no answer: %s\n", nng_strerror(rv));
        nng_close(s);
        wire_tls_free(&tls);
        return 1;
    }
    Lb__Envelope *env = NULL;
    if (wire_decode(m, WIRE_TRANSPORT_MAX, &env, &em) != LB_OK)
        printf("undecodable len=%zu\n", nng_msg_len(m));
    else if (env->body_case == LB__ENVELOPE__BODY_ERROR)
        printf("error code=%u message=%s\n", env->error->code, env->error->message);
    else if (env->body_case == LB__ENVELOPE__BODY_SESSION_REPLY)
        printf("session_reply ok=%d unknown=%zu error=%s\n", env->session_reply->ok,
               env->session_reply->n_unknown, env->session_reply->error);
    else
        printf("body=%d\n", (int)env->body_case);
    wire_free(&env);
    nng_msg_free(m);
    nng_close(s);
    wire_tls_free(&tls);
    return 0;
}
