/*
 * libFuzzer target: the envelope decoder every daemon runs on every nng
 * message (pkg/wire wire_decode). Anything that decodes must survive a
 * re-encode and decode to the same bytes, and be freed without a leak.
 */
#include "wire/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nng_msg *m = NULL;
    if (nng_msg_alloc(&m, size) != 0)
        return 0;
    if (size > 0)
        memcpy(nng_msg_body(m), data, size);
    Lb__Envelope *env = NULL;
    lb_errmsg em = {{0}};
    /* a small limit as well as the default one, so the size check is reached */
    size_t max = size > 0 && data[0] == 0xff ? 16 : WIRE_DEFAULT_MAX;
    lb_err rc = wire_decode(m, max, &env, &em);
    nng_msg_free(m);
    if (rc != LB_OK) {
        if (env != NULL || em.text[0] == '\0')
            abort(); /* a failure must say why and hand nothing back */
        return 0;
    }
    nng_msg *again = NULL;
    if (wire_encode(env, &again) != LB_OK)
        abort();
    Lb__Envelope *env2 = NULL;
    if (wire_decode(again, WIRE_TRANSPORT_MAX, &env2, &em) != LB_OK)
        abort(); /* what we decoded once must decode again after packing */
    if (env2->body_case != env->body_case || env2->request_id != env->request_id)
        abort();
    nng_msg_free(again);
    wire_free(&env2);
    wire_free(&env);
    return 0;
}
