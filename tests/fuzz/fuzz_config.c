/*
 * libFuzzer target: the YAML config loader (pkg/config) and every daemon's
 * config parser. The input is a YAML file: it is loaded, every typed getter is
 * run on every key of every map in it, then lb-master's, lb-slave's and
 * lb-agent's loaders run on it. Invariants: every error names the file (the
 * "file:line: key" rule), and a loaded document is freed without a leak.
 */
#define _GNU_SOURCE
#include "../../cmd/lb-agent/agent.h"
#include "config/cfg.h"
#include "fuzz_config_daemons.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_FILE "fuzz.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(lb_err err, const lb_errmsg *em, const char *file)
{
    if (err != LB_OK && (err != LB_ECONFIG || strstr(em->text, file) == NULL))
        abort(); /* a config error must name its file */
}

/* Every getter on every key of map, then the same below it (bounded depth). */
static void walk(const cfg_doc *doc, const cfg_node *n, int depth)
{
    if (n == NULL || depth > 16)
        return;
    lb_errmsg em = {{0}};
    for (size_t i = 0; i < cfg_len(n); i++) {
        if (cfg_kind_of(n) == CFG_SEQ) {
            walk(doc, cfg_seq_at(n, i), depth + 1);
            continue;
        }
        const char *key = cfg_map_key(n, i);
        char *s = NULL, **list = NULL;
        size_t nl = 0;
        int64_t iv = 0;
        uint64_t uv = 0;
        double dv = 0;
        bool bv = false;
        check_msg(cfg_get_str(doc, n, key, "d", &s, &em), &em, FUZZ_FILE);
        free(s);
        check_msg(cfg_get_int(doc, n, key, -5, INT64_MAX, 0, &iv, &em), &em, FUZZ_FILE);
        check_msg(cfg_get_double(doc, n, key, 0, 1e300, 0, &dv, &em), &em, FUZZ_FILE);
        check_msg(cfg_get_bool(doc, n, key, false, &bv, &em), &em, FUZZ_FILE);
        check_msg(cfg_get_duration_ms(doc, n, key, 1, &iv, &em), &em, FUZZ_FILE);
        check_msg(cfg_get_size(doc, n, key, 1, &uv, &em), &em, FUZZ_FILE);
        check_msg(cfg_get_strlist(doc, n, key, &list, &nl, &em), &em, FUZZ_FILE);
        cfg_strlist_free(&list, nl);
        walk(doc, cfg_map_value(n, i), depth + 1);
    }
    static const char *const none[] = {NULL};
    check_msg(cfg_check_keys(doc, n, none, &em), &em, FUZZ_FILE);
}

/* lb-agent's loader reads a file: the input goes into a memfd named by /proc. */
static void load_agent(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-agent.yaml", 0);
        if (fd < 0)
            return;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        return;
    agent_config c;
    memset(&c, 0, sizeof c);
    lb_errmsg em = {{0}};
    lb_err err = agent_config_load(path, &c, &em);
    if (err == LB_OK)
        agent_config_free(&c);
    check_msg(err, &em, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cfg_doc *doc = NULL;
    lb_errmsg em = {{0}};
    lb_err err = cfg_load_string(FUZZ_FILE, text, &doc, &em);
    check_msg(err, &em, FUZZ_FILE);
    if (err == LB_OK) {
        walk(doc, cfg_root(doc), 0);
        check_msg(fuzz_load_master(doc, &em), &em, FUZZ_FILE);
        check_msg(fuzz_load_slave(doc, &em), &em, FUZZ_FILE);
        cfg_free(&doc);
        if (strlen(text) == size) /* libyaml reads files up to a NUL too */
            load_agent(data, size);
    }
    free(text);
    return 0;
}
