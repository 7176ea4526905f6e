/*
 * What every lbcp daemon does the same way before it starts: its command line
 * (`--config FILE [--log-level L] [--help]`), its log level (the flag wins over
 * the config's `log_level`) and the comma-joined endpoint lists its config
 * accepts as YAML lists.
 *
 * Thread-safety: call from main before any thread starts (getopt and the log
 * level are process-wide).
 */
#ifndef LB_CONFIG_DAEMON_H
#define LB_CONFIG_DAEMON_H

#include "lb/err.h"

#include <stdbool.h>
#include <stddef.h>

/* Parses argv. Returns 0 to go on; after --help prints the usage on stdout and
 * returns -1 (exit 0); on a usage error prints why and the usage on stderr and
 * returns 2. *config stays NULL when --config is absent (defaults), which is a
 * usage error when config_required. */
int cfg_daemon_args(const char *name, int argc, char **argv, bool config_required,
                    const char **config, const char **level);

/* Loads path (NULL: an empty document, so every key takes its default) and
 * hands the document to load(doc, cfg, em). On any error prints
 * "<name>: config error: <file:line: key: what>" and returns -1; 0 on success. */
struct cfg_doc;
int cfg_daemon_load(const char *name, const char *path,
                    lb_err (*load)(const struct cfg_doc *doc, void *cfg, lb_errmsg *em), void *cfg);

/* Sets the process log level from flag (may be NULL) or configured. Returns 0,
 * or 2 after printing which value is not debug, info, warn or error. */
int cfg_daemon_log_level(const char *name, const char *flag, const char *configured);

/* "a,b,c" from items (def when n is 0). The caller frees the result. */
char *cfg_join(char *const *items, size_t n, const char *def);

#endif
