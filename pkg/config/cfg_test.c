/* Unit tests of pkg/config: the loader, paths and lines, every getter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "config/cfg.h"
#include "config/cfg_tls.h"
#include "config/etcd_cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cfg_doc *load_ok(const char *text)
{
    cfg_doc *doc = NULL;
    lb_errmsg em = {{0}};
    lb_err err = cfg_load_string("t.yaml", text, &doc, &em);
    if (err != LB_OK)
        fail_msg("unexpected load error: %s", em.text);
    return doc;
}

/* Loads text, expects failure and that the message contains want. */
static void load_fails(const char *text, const char *want)
{
    cfg_doc *doc = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_load_string("t.yaml", text, &doc, &em), LB_ECONFIG);
    assert_null(doc);
    if (strstr(em.text, want) == NULL)
        fail_msg("error '%s' does not contain '%s'", em.text, want);
}

static void assert_contains(const char *s, const char *want)
{
    if (strstr(s, want) == NULL)
        fail_msg("'%s' does not contain '%s'", s, want);
}

static void test_empty_file(void **state)
{
    (void)state;
    const char *texts[] = {"", "\n\n", "# only a comment\n", "---\n"};
    for (size_t i = 0; i < 4; i++) {
        cfg_doc *doc = load_ok(texts[i]);
        const cfg_node *root = cfg_root(doc);
        if (i < 3)
            assert_null(root);
        int64_t v = 0;
        assert_int_equal(cfg_get_int(doc, root, "capacity", 0, 1000, 100, &v, NULL), LB_OK);
        assert_int_equal(v, 100);
        static const char *const allowed[] = {"x", NULL};
        assert_int_equal(cfg_check_keys(doc, root, allowed, NULL), LB_OK);
        cfg_free(&doc);
        assert_null(doc);
    }
}

static void test_tree_paths_lines(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("id: a1\n"
                           "apps:\n"
                           "  echo:\n"
                           "    argv: [/bin/echo, '{port}']\n"
                           "    env:\n"
                           "      A: b\n"
                           "list:\n"
                           "  - x\n"
                           "  - {k: v}\n");
    const cfg_node *root = cfg_root(doc);
    assert_int_equal(cfg_kind_of(root), CFG_MAP);
    assert_string_equal(cfg_path(root), "");
    assert_int_equal(cfg_len(root), 3);
    assert_string_equal(cfg_map_key(root, 0), "id");
    assert_string_equal(cfg_scalar(cfg_map_value(root, 0)), "a1");
    assert_null(cfg_map_key(root, 3));
    const cfg_node *argv = cfg_map_get(cfg_map_get(cfg_map_get(root, "apps"), "echo"), "argv");
    assert_non_null(argv);
    assert_int_equal(cfg_kind_of(argv), CFG_SEQ);
    assert_string_equal(cfg_path(argv), "apps.echo.argv");
    assert_int_equal(cfg_line(argv), 4);
    assert_int_equal(cfg_len(argv), 2);
    assert_string_equal(cfg_scalar(cfg_seq_at(argv, 1)), "{port}");
    assert_string_equal(cfg_path(cfg_seq_at(argv, 1)), "apps.echo.argv[1]");
    assert_null(cfg_seq_at(argv, 2));
    const cfg_node *a =
        cfg_map_get(cfg_map_get(cfg_map_get(cfg_map_get(root, "apps"), "echo"), "env"), "A");
    assert_string_equal(cfg_path(a), "apps.echo.env.A");
    assert_int_equal(cfg_line(a), 6);
    const cfg_node *k = cfg_map_get(cfg_seq_at(cfg_map_get(root, "list"), 1), "k");
    assert_string_equal(cfg_path(k), "list[1].k");
    assert_int_equal(cfg_line(k), 9);
    assert_null(cfg_scalar(argv));
    assert_null(cfg_map_get(argv, "x"));
    assert_null(cfg_map_get(root, "missing"));
    assert_string_equal(cfg_file(doc), "t.yaml");
    cfg_free(&doc);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    load_fails("a: 1\nb: [1, 2\n", "t.yaml:");
    load_fails("a: 1\nb: c: d\n", "t.yaml:2:");
    load_fails("a: 1\n  b: 2\n", "t.yaml:2:");
    load_fails("a: \"open\n", "t.yaml:");
    load_fails("a:\n\t- x\n", "t.yaml:2:");
    /* the column is there too: file:line:col */
    cfg_doc *doc = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_load_string("t.yaml", "x: 1\ny: [\n", &doc, &em), LB_ECONFIG);
    int line = 0, col = 0;
    assert_int_equal(sscanf(em.text, "t.yaml:%d:%d:", &line, &col), 2);
    assert_true(line >= 2);
    assert_true(col >= 1);
}

static void test_refused_constructs(void **state)
{
    (void)state;
    load_fails("a: 1\nb: 2\na: 3\n", "t.yaml:3: a: duplicate key (first set at line 1)");
    load_fails("apps:\n  echo:\n    argv: [x]\n    argv: [y]\n",
               "t.yaml:4: apps.echo.argv: duplicate key");
    load_fails("a: &x 1\nb: *x\n", "t.yaml:2: b: YAML aliases are not supported");
    load_fails("? [a, b]\n: 1\n", "map keys must be plain strings");
    load_fails("a: 1\n---\nb: 2\n", "t.yaml:2: only one YAML document");
    char deep[400] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    load_fails(deep, "nested deeper than");
}

static void test_get_str(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("s: hello world\nq: \"\"\nn: 42\nnul:\nm: {a: 1}\n");
    const cfg_node *r = cfg_root(doc);
    char *s = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_str(doc, r, "s", "d", &s, NULL), LB_OK);
    assert_string_equal(s, "hello world");
    free(s);
    assert_int_equal(cfg_get_str(doc, r, "q", "d", &s, NULL), LB_OK);
    assert_string_equal(s, ""); /* quoted empty is a value, not null */
    free(s);
    assert_int_equal(cfg_get_str(doc, r, "n", "d", &s, NULL), LB_OK);
    assert_string_equal(s, "42");
    free(s);
    assert_int_equal(cfg_get_str(doc, r, "nul", "dflt", &s, NULL), LB_OK);
    assert_string_equal(s, "dflt");
    free(s);
    assert_int_equal(cfg_get_str(doc, r, "absent", "dflt", &s, NULL), LB_OK);
    assert_string_equal(s, "dflt");
    free(s);
    assert_int_equal(cfg_get_str(doc, r, "absent", NULL, &s, NULL), LB_OK);
    assert_null(s);
    assert_int_equal(cfg_get_str(doc, r, "m", "d", &s, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: m: expected a string, got a map");
    cfg_free(&doc);
}

static void test_get_int(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("capacity: lots\nok: 17\nneg: -3\nbig: 99999999999999999999\n"
                           "l: [1]\nsub:\n  deep: 2x\n");
    const cfg_node *r = cfg_root(doc);
    int64_t v = 0;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_int(doc, r, "ok", 0, 100, 5, &v, NULL), LB_OK);
    assert_int_equal(v, 17);
    assert_int_equal(cfg_get_int(doc, r, "neg", -10, 10, 5, &v, NULL), LB_OK);
    assert_int_equal(v, -3);
    assert_int_equal(cfg_get_int(doc, r, "absent", 0, 100, 5, &v, NULL), LB_OK);
    assert_int_equal(v, 5);
    assert_int_equal(cfg_get_int(doc, r, "capacity", 0, 100, 5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:1: capacity: expected an integer, got 'lots'");
    assert_int_equal(cfg_get_int(doc, r, "ok", 0, 10, 5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:2: ok: 17 is out of range [0, 10]");
    assert_int_equal(cfg_get_int(doc, r, "neg", 0, 10, 5, &v, &em), LB_ECONFIG);
    assert_contains(em.text, "out of range");
    assert_int_equal(cfg_get_int(doc, r, "big", 0, INT64_MAX, 5, &v, &em), LB_ECONFIG);
    assert_contains(em.text, "t.yaml:4: big: ");
    assert_int_equal(cfg_get_int(doc, r, "l", 0, 10, 5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: l: expected an integer, got a list");
    const cfg_node *sub = cfg_map_get(r, "sub");
    assert_int_equal(cfg_get_int(doc, sub, "deep", 0, 10, 5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:7: sub.deep: expected an integer, got '2x'");
    /* asking a key of something that is not a map */
    assert_int_equal(cfg_get_int(doc, cfg_map_get(r, "l"), "x", 0, 10, 5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: l: expected a map, got a list");
    cfg_free(&doc);
}

static void test_get_double(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("a: 0.75\nb: 3\nc: nan\nd: x\ne: 2.5\n");
    const cfg_node *r = cfg_root(doc);
    double v = 0;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_double(doc, r, "a", 0, 1, 0.5, &v, NULL), LB_OK);
    assert_true(v > 0.749 && v < 0.751);
    assert_int_equal(cfg_get_double(doc, r, "b", 0, 10, 0.5, &v, NULL), LB_OK);
    assert_true(v == 3.0);
    assert_int_equal(cfg_get_double(doc, r, "zz", 0, 1, 0.5, &v, NULL), LB_OK);
    assert_true(v == 0.5);
    assert_int_equal(cfg_get_double(doc, r, "c", 0, 1, 0.5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:3: c: expected a number, got 'nan'");
    assert_int_equal(cfg_get_double(doc, r, "d", 0, 1, 0.5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:4: d: expected a number, got 'x'");
    assert_int_equal(cfg_get_double(doc, r, "e", 0, 1, 0.5, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: e: 2.5 is out of range [0, 1]");
    cfg_free(&doc);
}

static void test_get_bool(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("a: true\nb: no\nc: On\nd: FALSE\ne: maybe\n");
    const cfg_node *r = cfg_root(doc);
    bool v = false;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_bool(doc, r, "a", false, &v, NULL), LB_OK);
    assert_true(v);
    assert_int_equal(cfg_get_bool(doc, r, "b", true, &v, NULL), LB_OK);
    assert_false(v);
    assert_int_equal(cfg_get_bool(doc, r, "c", false, &v, NULL), LB_OK);
    assert_true(v);
    assert_int_equal(cfg_get_bool(doc, r, "d", true, &v, NULL), LB_OK);
    assert_false(v);
    assert_int_equal(cfg_get_bool(doc, r, "absent", true, &v, NULL), LB_OK);
    assert_true(v);
    assert_int_equal(cfg_get_bool(doc, r, "e", true, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: e: expected true or false, got 'maybe'");
    cfg_free(&doc);
}

static void test_get_duration_size(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("t1: 250ms\nt2: 5s\nt3: 2m\nt4: 3\nt5: soon\n"
                           "s1: 64KiB\ns2: 1MiB\ns3: 1024\ns4: huge\n");
    const cfg_node *r = cfg_root(doc);
    int64_t ms = 0;
    uint64_t sz = 0;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_duration_ms(doc, r, "t1", 1, &ms, NULL), LB_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(cfg_get_duration_ms(doc, r, "t2", 1, &ms, NULL), LB_OK);
    assert_int_equal(ms, 5000);
    assert_int_equal(cfg_get_duration_ms(doc, r, "t3", 1, &ms, NULL), LB_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(cfg_get_duration_ms(doc, r, "t4", 1, &ms, NULL), LB_OK);
    assert_int_equal(ms, 3000);
    assert_int_equal(cfg_get_duration_ms(doc, r, "none", 1234, &ms, NULL), LB_OK);
    assert_int_equal(ms, 1234);
    assert_int_equal(cfg_get_duration_ms(doc, r, "t5", 1, &ms, &em), LB_ECONFIG);
    assert_contains(em.text, "t.yaml:5: t5: expected a duration");
    assert_contains(em.text, "'soon'");
    assert_int_equal(cfg_get_size(doc, r, "s1", 1, &sz, NULL), LB_OK);
    assert_int_equal(sz, 65536);
    assert_int_equal(cfg_get_size(doc, r, "s2", 1, &sz, NULL), LB_OK);
    assert_int_equal(sz, 1048576);
    assert_int_equal(cfg_get_size(doc, r, "s3", 1, &sz, NULL), LB_OK);
    assert_int_equal(sz, 1024);
    assert_int_equal(cfg_get_size(doc, r, "none", 77, &sz, NULL), LB_OK);
    assert_int_equal(sz, 77);
    assert_int_equal(cfg_get_size(doc, r, "s4", 1, &sz, &em), LB_ECONFIG);
    assert_contains(em.text, "t.yaml:9: s4: expected a size");
    cfg_free(&doc);
}

/* Values whose conversion to an integer would overflow (undefined behaviour
 * before the fuzzer found it) are config errors naming file:line:key. */
static void test_duration_size_overflow(void **state)
{
    (void)state;
    static const char *const durations[] = {"1e30",
                                            "1e30s",
                                            "1e16h",
                                            "9223372036854775808ms",
                                            "1234567890123456789012345678901234567890",
                                            "inf",
                                            "nan",
                                            "-1s",
                                            "infs",
                                            "1e400"};
    static const char *const sizes[] = {"1e30",
                                        "1e30GiB",
                                        "18446744073709551616",
                                        "1234567890123456789012345678901234567890",
                                        "inf",
                                        "nan",
                                        "-5KiB",
                                        "1e12GiB"};
    char text[128];
    lb_errmsg em = {{0}};
    int64_t ms = 0;
    uint64_t sz = 0;
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        snprintf(text, sizeof text, "a: 1\nttl: \"%s\"\n", durations[i]);
        cfg_doc *doc = load_ok(text);
        ms = 42;
        assert_int_equal(cfg_get_duration_ms(doc, cfg_root(doc), "ttl", 1, &ms, &em), LB_ECONFIG);
        assert_contains(em.text, "t.yaml:2: ttl: expected a duration");
        assert_contains(em.text, durations[i]);
        assert_int_equal(ms, 42); /* untouched */
        assert_false(lb_parse_duration_ms(durations[i], &ms));
        cfg_free(&doc);
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(text, sizeof text, "a: 1\nmax: \"%s\"\n", sizes[i]);
        cfg_doc *doc = load_ok(text);
        assert_int_equal(cfg_get_size(doc, cfg_root(doc), "max", 1, &sz, &em), LB_ECONFIG);
        assert_contains(em.text, "t.yaml:2: max: expected a size");
        assert_contains(em.text, sizes[i]);
        assert_false(lb_parse_size(sizes[i], &sz));
        cfg_free(&doc);
    }
    /* the largest values that fit are still accepted */
    assert_true(lb_parse_duration_ms("9223372036854774784ms", &ms));
    assert_int_equal(ms, INT64_C(9223372036854774784));
    assert_true(lb_parse_duration_ms("1e12h", &ms));
    assert_int_equal(ms, INT64_C(3600000000000000000));
    assert_true(lb_parse_size("18446744073709549568", &sz));
    assert_true(sz == UINT64_C(18446744073709549568));
    assert_true(lb_parse_size("16GiB", &sz));
    assert_true(sz == UINT64_C(17179869184));
}

/* etcd_tls / etcd_user / etcd_password_file: errors name file:line:key. */
static void test_etcd_security(void **state)
{
    (void)state;
    etcd_security sec;
    lb_errmsg em = {{0}};
    char text[512];
    snprintf(text, sizeof text,
             "etcd_tls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n  key: /etc/hostname\n"
             "etcd_user: agent-a1\netcd_password_file: /etc/hostname\n");
    cfg_doc *doc = load_ok(text);
    assert_int_equal(cfg_get_etcd_security(doc, cfg_root(doc), &sec, &em), LB_OK);
    assert_string_equal(sec.ca_file, "/etc/hostname");
    assert_string_equal(sec.user, "agent-a1");
    assert_null(sec.password);
    etcd_security_free(&sec);
    cfg_free(&doc);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"a: 1\netcd_user: x\n", "t.yaml:2: etcd_user: needs etcd_password_file"},
        {"etcd_password_file: /etc/hostname\n", "t.yaml:1: etcd_password_file: needs etcd_user"},
        {"etcd_tls:\n  cert: /etc/hostname\n", "t.yaml:2: etcd_tls.cert: needs etcd_tls.key"},
        {"etcd_tls:\n  ca: /nonexistent/ca.pem\n",
         "t.yaml:2: etcd_tls.ca: cannot read '/nonexistent/ca.pem': No such file"},
        {"etcd_tls:\n  cafile: x\n", "t.yaml:2: etcd_tls.cafile: unknown key"},
        {"etcd_tls: yes\n", "t.yaml:1: etcd_tls: expected a map"},
        {"etcd_user: u\netcd_password_file: /nonexistent/pw\n",
         "t.yaml:2: etcd_password_file: cannot read '/nonexistent/pw'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc = load_ok(bad[i].yaml);
        assert_int_equal(cfg_get_etcd_security(doc, cfg_root(doc), &sec, &em), LB_ECONFIG);
        assert_contains(em.text, bad[i].want);
        assert_null(sec.user); /* nothing half-filled is handed back */
        assert_null(sec.ca_file);
        cfg_free(&doc);
    }
}

static void test_get_strlist(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("one: tcp://a:1\nmany:\n  - x\n  - y\n  - z\nempty: []\n"
                           "bad: [a, [b]]\nmap: {a: b}\nnul:\n");
    const cfg_node *r = cfg_root(doc);
    char **l = NULL;
    size_t n = 99;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_get_strlist(doc, r, "one", &l, &n, NULL), LB_OK);
    assert_int_equal(n, 1);
    assert_string_equal(l[0], "tcp://a:1");
    cfg_strlist_free(&l, n);
    assert_null(l);
    assert_int_equal(cfg_get_strlist(doc, r, "many", &l, &n, NULL), LB_OK);
    assert_int_equal(n, 3);
    assert_string_equal(l[2], "z");
    cfg_strlist_free(&l, n);
    assert_int_equal(cfg_get_strlist(doc, r, "empty", &l, &n, NULL), LB_OK);
    assert_int_equal(n, 0);
    cfg_strlist_free(&l, n);
    assert_int_equal(cfg_get_strlist(doc, r, "absent", &l, &n, NULL), LB_OK);
    assert_null(l);
    assert_int_equal(n, 0);
    assert_int_equal(cfg_get_strlist(doc, r, "nul", &l, &n, NULL), LB_OK);
    assert_null(l);
    assert_int_equal(cfg_get_strlist(doc, r, "bad", &l, &n, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:7: bad[1]: expected a string, got a list");
    assert_null(l);
    assert_int_equal(cfg_get_strlist(doc, r, "map", &l, &n, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:8: map: expected a list of strings, got a map");
    cfg_free(&doc);
}

static void test_check_keys_expect(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("id: a\nports:\n  min: 1\n  mx: 2\ncolour: red\nempty:\n");
    const cfg_node *r = cfg_root(doc);
    lb_errmsg em = {{0}};
    static const char *const top[] = {"id", "ports", "empty", NULL};
    static const char *const ports[] = {"min", "max", NULL};
    static const char *const all[] = {"id", "ports", "colour", "empty", NULL};
    assert_int_equal(cfg_check_keys(doc, r, all, NULL), LB_OK);
    assert_int_equal(cfg_check_keys(doc, r, top, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:5: colour: unknown key");
    assert_int_equal(cfg_check_keys(doc, cfg_map_get(r, "ports"), ports, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:4: ports.mx: unknown key");
    assert_int_equal(cfg_check_keys(doc, cfg_map_get(r, "id"), ports, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:1: id: expected a map, got a value");
    /* an empty section is as good as an absent one */
    assert_int_equal(cfg_check_keys(doc, cfg_map_get(r, "empty"), ports, NULL), LB_OK);
    assert_int_equal(cfg_check_keys(doc, NULL, ports, NULL), LB_OK);
    assert_int_equal(cfg_expect(doc, cfg_map_get(r, "ports"), CFG_MAP, NULL), LB_OK);
    assert_int_equal(cfg_expect(doc, cfg_map_get(r, "ports"), CFG_SEQ, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:2: ports: expected a list, got a map");
    assert_int_equal(cfg_expect(doc, NULL, CFG_SEQ, NULL), LB_OK);
    assert_int_equal(cfg_fail(doc, cfg_map_get(r, "id"), &em, "bad %s", "thing"), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:1: id: bad thing");
    assert_int_equal(cfg_fail(doc, NULL, &em, "whole file"), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml: whole file");
    cfg_free(&doc);
}

static void test_root_not_map(void **state)
{
    (void)state;
    cfg_doc *doc = load_ok("just a string\n");
    lb_errmsg em = {{0}};
    int64_t v = 0;
    assert_int_equal(cfg_kind_of(cfg_root(doc)), CFG_SCALAR);
    assert_int_equal(cfg_get_int(doc, cfg_root(doc), "x", 0, 1, 0, &v, &em), LB_ECONFIG);
    assert_string_equal(em.text, "t.yaml:1: expected a map, got a value");
    cfg_free(&doc);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/cfg_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "id: srv\n\ncapacity: lots\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cfg_doc *doc = NULL;
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_load_file(path, &doc, &em), LB_OK);
    int64_t v = 0;
    assert_int_equal(cfg_get_int(doc, cfg_root(doc), "capacity", 0, 9, 1, &v, &em), LB_ECONFIG);
    char want[256];
    snprintf(want, sizeof want, "%s:3: capacity: expected an integer, got 'lots'", path);
    assert_string_equal(em.text, want);
    cfg_free(&doc);
    unlink(path);
    assert_int_equal(cfg_load_file(path, &doc, &em), LB_ECONFIG);
    assert_contains(em.text, path);
    assert_contains(em.text, "cannot open");
    cfg_free(&doc); /* NULL is fine */
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void tls_of(const char *text, cfg_tls *out)
{
    cfg_doc *doc = load_ok(text);
    lb_errmsg em = {{0}};
    assert_int_equal(cfg_tls_load(doc, cfg_root(doc), false, out, &em), LB_OK);
    cfg_free(&doc);
}

/* SIGHUP names the tls keys a restart applies: a changed path, a file
 * replaced in place (same path, new contents), a changed flag; nothing when
 * the files are the same; a FIFO is not read (it would block the load). */
static void test_tls_changed(void **state)
{
    (void)state;
    char dir[] = "/tmp/cfg_tls_test_XXXXXX", text[2048], buf[256] = "", fifo[300];
    assert_non_null(mkdtemp(dir));
    char ca[300], crt[300], key[300];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(crt, sizeof crt, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/c.key", dir);
    write_file(ca, "CA1");
    write_file(crt, "CERT1");
    write_file(key, "KEY1");
    snprintf(text, sizeof text, "tls: {ca: %s, cert: %s, key: %s}\n", ca, crt, key);
    cfg_tls a, b, c;
    tls_of(text, &a);
    tls_of(text, &b);
    cfg_tls_changed(&a, &b, buf, sizeof buf);
    assert_string_equal(buf, "");
    write_file(crt, "CERT2"); /* rotated in place */
    write_file(key, "KEY2");
    tls_of(text, &c);
    cfg_tls_changed(&a, &c, buf, sizeof buf);
    assert_string_equal(buf, "tls.cert,tls.key");
    cfg_tls_free(&c);
    buf[0] = '\0';
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    snprintf(text, sizeof text, "tls: {ca: %s, cert: %s, key: %s, server_name: x}\n", fifo, crt,
             key);
    tls_of(text, &c);
    cfg_tls_changed(&b, &c, buf, sizeof buf);
    assert_string_equal(buf,
                        "tls.ca,tls.cert,tls.key,tls.server_name"); /* b: before the rotation */
    cfg_tls_free(&a);
    cfg_tls_free(&b);
    cfg_tls_free(&c);
    unlink(fifo);
    unlink(ca);
    unlink(crt);
    unlink(key);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_file),        cmocka_unit_test(test_tree_paths_lines),
        cmocka_unit_test(test_syntax_errors),     cmocka_unit_test(test_refused_constructs),
        cmocka_unit_test(test_get_str),           cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_get_double),        cmocka_unit_test(test_get_bool),
        cmocka_unit_test(test_get_duration_size), cmocka_unit_test(test_duration_size_overflow),
        cmocka_unit_test(test_etcd_security),     cmocka_unit_test(test_get_strlist),
        cmocka_unit_test(test_check_keys_expect), cmocka_unit_test(test_root_not_map),
        cmocka_unit_test(test_load_file),         cmocka_unit_test(test_tls_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
