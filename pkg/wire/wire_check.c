/*
 * A structural check of decoded messages that protobuf-c does not make.
 *
 * protobuf-c accepts a field tag with field number 0 (invalid in protobuf)
 * and keeps it as an unknown field; packing it again writes a tag it then
 * refuses. A slave forwards a client's ClientRequest to the master inside its
 * SelectionRequest, so such a request would decode at the slave and fail at
 * the master. The libFuzzer target on wire_decode found it; wire_decode now
 * refuses the message at the first hop.
 */
#include "wire/wire_check.h"

#include <stdint.h>

/* Depth cap: protobuf-c already bounds nesting by the message size, this only
 * keeps a hostile deep nesting from using much stack here. */
#define WIRE_CHECK_MAX_DEPTH 32

static bool check_msg(const ProtobufCMessage *m, int depth);

static bool check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, int depth)
{
    const char *base = (const char *)m;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return true;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
        if (which != f->id) /* another member of the oneof owns the storage */
            return true;
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
        for (size_t i = 0; i < n; i++)
            if (!check_msg(items[i], depth + 1))
                return false;
        return true;
    }
    return check_msg(*(const ProtobufCMessage *const *)(base + f->offset), depth + 1);
}

static bool check_msg(const ProtobufCMessage *m, int depth)
{
    if (m == NULL)
        return true;
    if (depth > WIRE_CHECK_MAX_DEPTH)
        return false;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return false;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (!check_field(m, &d->fields[i], depth))
            return false;
    return true;
}

bool wire_check_fields(const ProtobufCMessage *m)
{
    return check_msg(m, 0);
}
