/*
 * lb-master's config loader for the fuzz target. Its parser (load_all) is
 * file-local to cmd/lb-master/config.c and master_config_load prints to
 * stderr, so the file is included here rather than made public for a test.
 */
#include "../../cmd/lb-master/config.c"

#include "fuzz_config_daemons.h"

lb_err fuzz_load_master(const cfg_doc *doc, lb_errmsg *em)
{
    master_config cfg;
    memset(&cfg, 0, sizeof cfg);
    lb_err err = load_any(doc, &cfg, em);
    master_config_free(&cfg);
    return err;
}
