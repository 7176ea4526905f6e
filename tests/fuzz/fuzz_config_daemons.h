/* The daemons' config loaders, reached by the config fuzz target without their
 * side effects (no printing, no files): see fuzz_config_master.c and
 * fuzz_config_slave.c. Each loads doc into a fresh config and frees it. */
#ifndef LB_FUZZ_CONFIG_DAEMONS_H
#define LB_FUZZ_CONFIG_DAEMONS_H

#include "config/cfg.h"

lb_err fuzz_load_master(const cfg_doc *doc, lb_errmsg *em);
lb_err fuzz_load_slave(const cfg_doc *doc, lb_errmsg *em);

#endif
