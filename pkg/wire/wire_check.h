/*
 * Structural checks of a decoded protobuf message that protobuf-c's unpack
 * does not make (see wire_check.c). Pure; thread-safe; m is only read.
 */
#ifndef LB_WIRE_CHECK_H
#define LB_WIRE_CHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* False when m, or a message inside it, holds an unknown field with field
 * number 0 (which would not survive being packed again) or nests deeper
 * than 32 levels. */
bool wire_check_fields(const ProtobufCMessage *m);

#endif
