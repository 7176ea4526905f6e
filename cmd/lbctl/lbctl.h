/* lbctl: the operator CLI. Exit codes: 0 ok, 1 operation failed, 2 usage. */
#ifndef LB_LBCTL_H
#define LB_LBCTL_H

#include "etcd/etcd.h"
#include "wire/wire_tls.h"

#include <stdbool.h>
#include <stddef.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

typedef enum out_format { OUT_TABLE, OUT_WIDE, OUT_JSON } out_format;

/* Each setting comes from its flag, else its environment variable, else the
 * config file (ctl_config.c), else the default. */
typedef struct ctl_opts {
    const char *etcd;   /* --etcd, LBCP_ETCD, etcd:, http://127.0.0.1:2379 */
    const char *master; /* --master, LBCP_MASTER, master:; else the leader in etcd */
    const char *slave;  /* --slave, LBCP_SLAVE, slave:; else one in etcd */
    const char *addr;   /* --addr: any daemon (stats) */
    const char *prefix; /* --prefix, prefix:, /lb/ */
    out_format out;
    int timeout_ms; /* --call-timeout, call_timeout:, 20 s */
    int connect_ms; /* --connect-timeout, connect_timeout:, 2 s */
    /* --etcd-ca ... or LBCP_ETCD_CA ... or the config file's etcd_tls: {ca,
     * cert, key}, etcd_user, etcd_password_file; strings not owned */
    etcd_security etcd_sec;
    /* the config file's tls: block (nng links); flags and LBCP_TLS_* win over it */
    wire_tls_opts tls;
} ctl_opts;

/* Each command parses its own arguments (argv[0] is the command name). */
int cmd_servers(const ctl_opts *o, int argc, char **argv);
int cmd_request(const ctl_opts *o, int argc, char **argv);
int cmd_stats(const ctl_opts *o, int argc, char **argv);
int cmd_token(const ctl_opts *o, int argc, char **argv);
int cmd_explain(const ctl_opts *o, int argc, char **argv);
int cmd_list(const ctl_opts *o, int argc, char **argv);

/* --require "cpu=N,mem=SIZE,label=K[=V],..." into r; *labels owns the label
 * strings (free with ctl_free_labels). -1 (message printed) on a bad spec. */
struct Lb__Requirements;
struct Lb__ClientRequest;
int ctl_parse_require(const char *spec, struct Lb__Requirements *r, char ***labels);
void ctl_free_labels(char **labels, size_t n);
/* Sets the required arch / os (borrowed strings, NULL: unchanged) and points
 * cr at r when one is set. -1 (message printed) on an empty value. */
int ctl_apply_attrs(struct Lb__Requirements *r, struct Lb__ClientRequest *cr, const char *arch,
                    const char *os);

/* Prints a cJSON value (freed) to stdout followed by a newline. */
struct cJSON;
void ctl_print_json(struct cJSON *v);

#endif
