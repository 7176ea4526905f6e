#include "lb/version.h"

/* Set by CMake from project(VERSION) and, when the source is a git checkout,
 * git describe at configure time (see the top CMakeLists.txt). */
#ifndef LBCP_VERSION_STRING
#define LBCP_VERSION_STRING "unknown"
#endif

const char *lb_version(void)
{
    return LBCP_VERSION_STRING;
}
