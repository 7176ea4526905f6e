/* lb-slave's config loader for the fuzz target (see fuzz_config_master.c for why it is included).
 */
#include "../../cmd/lb-slave/config.c"

#include "fuzz_config_daemons.h"

lb_err fuzz_load_slave(const cfg_doc *doc, lb_errmsg *em)
{
    slave_config cfg;
    memset(&cfg, 0, sizeof cfg);
    lb_err err = load_any(doc, &cfg, em);
    slave_config_free(&cfg);
    return err;
}
