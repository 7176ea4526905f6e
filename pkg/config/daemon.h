/*
 * What every lbcp daemon does the same way: its command line (`--config FILE
 * [--log-level L] [--check-config FILE] [--version] [--help]`), its log level
 * (the flag wins over the config's `log_level`), the comma-joined endpoint
 * lists its config accepts as YAML lists, and its signals: SIGTERM/SIGINT
 * stop, SIGHUP reloads the config (a bad new file is rejected with its
 * file:line error and the running config kept; SIGHUP never kills a daemon).
 *
 * Thread-safety: cfg_daemon_args and cfg_daemon_signals are for main before
 * any thread starts (getopt and the signal mask are process-wide); the log
 * level may be changed at any time (it is an atomic); cfg_daemon_wait and the
 * reload callback run on the main thread.
 */
#ifndef LB_CONFIG_DAEMON_H
#define LB_CONFIG_DAEMON_H

#include "lb/err.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses argv. Returns 0 to go on; after --help or --version prints on stdout
 * and returns -1 (exit 0); on a usage error prints why and the usage on stderr
 * and returns 2. *config stays NULL when --config is absent (defaults), which
 * is a usage error when config_required. `--check-config FILE` sets *config to
 * FILE and cfg_daemon_check_only() to true: the daemon loads the config as it
 * would at start, then calls cfg_daemon_check_done instead of starting. */
int cfg_daemon_args(const char *name, int argc, char **argv, bool config_required,
                    const char **config, const char **level);

bool cfg_daemon_check_only(void);
/* Prints "<name>: <path>: configuration OK" on stdout; returns 0 (the exit status). */
int cfg_daemon_check_done(const char *name, const char *path);

/* Loads path (NULL: an empty document, so every key takes its default) and
 * hands the document to load(doc, cfg, em). On any error prints
 * "<name>: config error: <file:line: key: what>" and returns -1; 0 on success. */
struct cfg_doc;
int cfg_daemon_load(const char *name, const char *path,
                    lb_err (*load)(const struct cfg_doc *doc, void *cfg, lb_errmsg *em), void *cfg);

/* Sets the process log level from flag (may be NULL) or configured. Returns 0,
 * or 2 after printing which value is not debug, info, warn or error. */
int cfg_daemon_log_level(const char *name, const char *flag, const char *configured);

struct cfg_doc;
struct cfg_node;
/* state_dir and identity_key (both absolute; identity_key may be ""): where a
 * daemon keeps its state and its report-signing key. state_dir defaults to
 * /var/lib/lbcp/ROLE-ID for root, else $TMPDIR/lbcp-ROLE-UID-ID. */
lb_err cfg_daemon_get_identity(const struct cfg_doc *doc, const struct cfg_node *root,
                               const char *role, const char *id, char **state_dir,
                               char **identity_key, lb_errmsg *em);

/* Reads the config's `log_level` (default "info") into *out (caller frees),
 * failing with "file:line: log_level: ..." when it is not a level. */
lb_err cfg_daemon_get_level(const struct cfg_doc *doc, const struct cfg_node *root, char **out,
                            lb_errmsg *em);

/* Same as cfg_daemon_load without printing: the error is left in em. */
lb_err cfg_daemon_read(const char *path,
                       lb_err (*load)(const struct cfg_doc *doc, void *cfg, lb_errmsg *em),
                       void *cfg, lb_errmsg *em);

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (so in every thread
 * it starts later) and ignores SIGPIPE; *set holds the three signals, for
 * cfg_daemon_wait or a daemon's own sigwait/sigtimedwait loop. */
void cfg_daemon_signals(sigset_t *set);

/* What a daemon does on SIGHUP: re-read its config file and apply what can
 * change while it runs. Returns 0 when applied, -1 when rejected (the running
 * config is kept); either way it has logged why. */
typedef int (*cfg_reload_fn)(void *ctx);

/* Waits on set (from cfg_daemon_signals) until SIGTERM or SIGINT, which it
 * returns; each SIGHUP in between calls reload(ctx) (a NULL reload just logs
 * that this daemon has nothing to reload). */
int cfg_daemon_wait(const sigset_t *set, const char *comp, cfg_reload_fn reload, void *ctx);

/* For reload callbacks: logs and counts (config_reloads_total /
 * config_reload_failures_total) the outcome of a reload of path. em is the
 * rejection (NULL when applied); what says what changed when applied. */
void cfg_daemon_reload_log(const char *comp, const char *path, const lb_errmsg *em,
                           const char *what);

/* On reload: the log level from flag (the command line wins, as at start) or
 * configured. Returns true when the level changed. */
bool cfg_daemon_reload_level(const char *flag, const char *configured);

/* "a,b,c" from items (def when n is 0). The caller frees the result. */
char *cfg_join(char *const *items, size_t n, const char *def);

#endif
