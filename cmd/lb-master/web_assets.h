/*
 * The dashboard's static files (web/), embedded into lb-master at build time by
 * cmake/embed_web.cmake, so the binary serves /ui without a files directory to
 * install or to find. Read-only data: any thread.
 */
#ifndef LB_MASTER_WEB_ASSETS_H
#define LB_MASTER_WEB_ASSETS_H

#include <stddef.h>

typedef struct lb_web_asset {
    const char *path; /* relative to web/, e.g. "index.html" */
    const unsigned char *data;
    size_t len;
} lb_web_asset;

extern const lb_web_asset lb_web_assets[];
extern const size_t lb_web_n_assets;

#endif
