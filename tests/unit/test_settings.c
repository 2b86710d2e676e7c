/* SPDX-License-Identifier: MIT */
/*
 * core/settings: a block of nodes read against a key table, each kind of
 * key, and the messages with line:column.  The nodes are written by hand
 * here (the YAML reader is lib/config's); tests/unit/test_config.c checks
 * the same messages through whole configuration files.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/kv.h"
#include "core/pattern.h"
#include "core/settings.h"

/* ---- nodes by hand ---- */

static struct wc_node *node(enum wc_node_kind kind, unsigned line,
                            unsigned column, const char *text)
{
        struct wc_node *n = calloc(1, sizeof(*n));

        assert_non_null(n);
        n->kind = kind;
        n->line = line;
        n->column = column;
        if (text) {
                n->text = strdup(text);
                assert_non_null(n->text);
        } else if (kind == WC_NODE_SCALAR) {
                n->text = strdup("");
                n->null = true;
        }
        return n;
}

/* A scalar at line:column; NULL text is an empty value. */
static struct wc_node *scalar(unsigned line, unsigned column, const char *text)
{
        return node(WC_NODE_SCALAR, line, column, text);
}

/* Appends key: value to map, the key at line:1, the value at line:10. */
static void put(struct wc_node *map, unsigned line, const char *key,
                struct wc_node *value)
{
        assert_int_equal(wc_node_append(map, scalar(line, 1, key)), 0);
        assert_int_equal(wc_node_append(map, value), 0);
}

static void put_text(struct wc_node *map, unsigned line, const char *key,
                     const char *text)
{
        put(map, line, key, scalar(line, 10, text));
}

/* ---- a struct and its table with every kind of key ---- */

enum color { RED = 1, GREEN = 2, BLUE = 3 };

struct conf {
        char *name;
        char *path;
        bool flag;
        uint32_t count;
        uint64_t wait_ms;
        uint64_t bytes;
        int color;
        char *even; /* WC_KEY_SCALAR: a string of even length */
        struct wc_pattern_list schemas;
        unsigned ops;
        struct wc_kv *kv;
        size_t nkv;
        struct {
                char *inner;
        } sub;
        int custom; /* WC_KEY_CUSTOM: how many items a sequence had */
};

static const struct wc_key_value colors[] = {
    {"red", RED}, {"green", GREEN}, {"blue", BLUE}, {NULL, 0}};

static int convert_even(struct wc_settings *s, const struct wc_key *k,
                        const char *path, const char *text,
                        const struct wc_node *at, void *field)
{
        (void)k;
        if (strlen(text) % 2)
                return wc_settings_fail(s, at, "\"%s\" wants an even length",
                                        path);
        return wc_settings_set_string(s, field, text);
}

static int load_count(struct wc_settings *s, const char *path,
                      const struct wc_node *key, const struct wc_node *val,
                      void *base)
{
        (void)key;
        if (val->kind != WC_NODE_SEQUENCE)
                return wc_settings_fail_type(s, val, "a sequence", path);
        ((struct conf *)base)->custom = (int)val->nkids;
        return 0;
}

static const struct wc_key sub_keys[] = {
    {WC_KEY(WC_KEY_STRING, "inner", "in", offsetof(struct conf, sub.inner),
            "a string in a section")},
    {.name = NULL},
};

static const struct wc_key keys[] = {
    {WC_KEY(WC_KEY_STRING, "name", NULL, offsetof(struct conf, name), "name")},
    {WC_KEY(WC_KEY_ABS_PATH, "path", NULL, offsetof(struct conf, path),
            "an absolute path"),
     .required = true},
    {WC_KEY(WC_KEY_BOOL, "flag", "true", offsetof(struct conf, flag), "bool")},
    {WC_KEY(WC_KEY_UINT32, "count", "7", offsetof(struct conf, count),
            "integer"),
     .min = 1, .max = 100},
    {WC_KEY(WC_KEY_DURATION, "wait", "10s", offsetof(struct conf, wait_ms),
            "duration"),
     .min = 1000, .max = 60000},
    {WC_KEY(WC_KEY_SIZE, "bytes", "1MB", offsetof(struct conf, bytes), "size"),
     .min = 1024, .max = (uint64_t)1 << 30},
    {WC_KEY(WC_KEY_ENUM, "color", "green", offsetof(struct conf, color),
            "enum"),
     .noun = "color", .values = colors},
    {WC_KEY(WC_KEY_SCALAR, "even", NULL, offsetof(struct conf, even),
            "custom scalar"),
     .convert = convert_even},
    {WC_KEY(WC_KEY_PATTERNS, "schemas", NULL, offsetof(struct conf, schemas),
            "patterns")},
    {WC_KEY(WC_KEY_OPS, "ops", NULL, offsetof(struct conf, ops), "ops")},
    {WC_KEY(WC_KEY_KV, "kv", NULL, offsetof(struct conf, kv), "map"),
     .count_offset = offsetof(struct conf, nkv)},
    {WC_KEY(WC_KEY_SECTION, "sub", NULL, 0, "nested block"),
     .section = sub_keys},
    {WC_KEY(WC_KEY_CUSTOM, "custom", NULL, 0, "custom load"),
     .load = load_count},
    {.name = NULL},
};

static void conf_free(struct conf *c)
{
        free(c->name);
        free(c->path);
        free(c->even);
        free(c->sub.inner);
        wc_pattern_list_free(&c->schemas);
        wc_kv_free(c->kv, c->nkv);
}

struct fixture {
        struct wc_settings s;
        char err[512];
        struct wc_node *block, *key;
        struct conf c;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        f->s.name = "test.yaml";
        f->s.errbuf = f->err;
        f->s.errlen = sizeof(f->err);
        wc_buf_init(&f->s.scratch);
        f->key = scalar(3, 3, "thing");
        f->block = node(WC_NODE_MAPPING, 4, 5, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        conf_free(&f->c);
        wc_node_free(f->block);
        wc_node_free(f->key);
        wc_buf_free(&f->s.scratch);
        free(f);
        return 0;
}

static int read_block(struct fixture *f)
{
        f->err[0] = '\0';
        return wc_settings_read(&f->s, keys, "sinks[0].thing", f->key, f->block,
                                &f->c);
}

/* ---- each kind of key ---- */

static void defaults_fill_every_key(void **state)
{
        struct fixture *f = *state;

        put_text(f->block, 5, "path", "/tmp/x");
        assert_int_equal(read_block(f), 0);
        assert_string_equal(f->c.path, "/tmp/x");
        assert_null(f->c.name);
        assert_true(f->c.flag);
        assert_int_equal(f->c.count, 7);
        assert_int_equal(f->c.wait_ms, 10000);
        assert_int_equal(f->c.bytes, 1 << 20);
        assert_int_equal(f->c.color, GREEN);
        assert_int_equal(f->c.ops, WC_OPS_DATA);
        assert_string_equal(f->c.sub.inner, "in");
        assert_int_equal(f->c.schemas.count, 0);
        assert_int_equal(f->c.nkv, 0);
}

static void every_kind_is_read(void **state)
{
        struct fixture *f = *state;
        struct wc_node *schemas = node(WC_NODE_SEQUENCE, 9, 10, NULL);
        struct wc_node *ops = node(WC_NODE_SEQUENCE, 10, 10, NULL);
        struct wc_node *kv = node(WC_NODE_MAPPING, 11, 10, NULL);
        struct wc_node *nested = node(WC_NODE_MAPPING, 11, 20, NULL);
        struct wc_node *sub = node(WC_NODE_MAPPING, 12, 10, NULL);
        struct wc_node *custom = node(WC_NODE_SEQUENCE, 13, 10, NULL);

        setenv("WC_SETTINGS_TEST", "from-env", 1);
        put_text(f->block, 1, "name", "${WC_SETTINGS_TEST}");
        put_text(f->block, 2, "path", "/a/b");
        put_text(f->block, 3, "flag", "false");
        put_text(f->block, 4, "count", "100");
        put_text(f->block, 5, "wait", "1m");
        put_text(f->block, 6, "bytes", "1GB");
        put_text(f->block, 7, "color", "blue");
        put_text(f->block, 8, "even", "a$$");
        assert_int_equal(wc_node_append(schemas, scalar(9, 12, "public")), 0);
        assert_int_equal(wc_node_append(schemas, scalar(9, 20, "app_*")), 0);
        put(f->block, 9, "schemas", schemas);
        assert_int_equal(wc_node_append(ops, scalar(10, 12, "insert")), 0);
        assert_int_equal(wc_node_append(ops, scalar(10, 20, "delete")), 0);
        put(f->block, 10, "ops", ops);
        put_text(kv, 11, "a", "1");
        put_text(nested, 11, "c", "2");
        put(kv, 11, "b", nested);
        put(f->block, 11, "kv", kv);
        put_text(sub, 12, "inner", "deep");
        put(f->block, 12, "sub", sub);
        assert_int_equal(wc_node_append(custom, scalar(13, 12, "x")), 0);
        assert_int_equal(wc_node_append(custom, scalar(13, 14, "y")), 0);
        assert_int_equal(wc_node_append(custom, scalar(13, 16, "z")), 0);
        put(f->block, 13, "custom", custom);

        if (read_block(f) != 0)
                fail_msg("%s", f->err);
        assert_string_equal(f->c.name, "from-env");
        assert_string_equal(f->c.path, "/a/b");
        assert_false(f->c.flag);
        assert_int_equal(f->c.count, 100);
        assert_int_equal(f->c.wait_ms, 60000);
        assert_int_equal(f->c.bytes, 1 << 30);
        assert_int_equal(f->c.color, BLUE);
        assert_string_equal(f->c.even, "a$");
        assert_int_equal(f->c.schemas.count, 2);
        assert_string_equal(f->c.schemas.items[1], "app_*");
        assert_int_equal(f->c.ops,
                         WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_DELETE));
        assert_int_equal(f->c.nkv, 2);
        assert_string_equal(f->c.kv[0].key, "a");
        assert_string_equal(f->c.kv[1].key, "b.c");
        assert_string_equal(f->c.kv[1].value, "2");
        assert_string_equal(f->c.sub.inner, "deep");
        assert_int_equal(f->c.custom, 3);
        unsetenv("WC_SETTINGS_TEST");
}

/* ---- errors, with where they are ---- */

struct bad_case {
        const char *key, *text;
        const char *message;
};

static void bad_values_say_where_and_what(void **state)
{
        static const struct bad_case cases[] = {
            {"name", "",
             "test.yaml:6:10: empty value for "
             "\"sinks[0].thing.name\""},
            {"path", "rel/x",
             "test.yaml:6:10: relative path \"rel/x\" for "
             "\"sinks[0].thing.path\": use an absolute path"},
            {"flag", "yes",
             "test.yaml:6:10: invalid boolean \"yes\": use true or false"},
            {"count", "0",
             "test.yaml:6:10: invalid count \"0\": use a number "
             "from 1 to 100"},
            {"count", "101",
             "test.yaml:6:10: invalid count \"101\": use a "
             "number from 1 to 100"},
            {"count", "-1",
             "test.yaml:6:10: invalid count \"-1\": use a "
             "number from 1 to 100"},
            {"wait", "5",
             "test.yaml:6:10: invalid duration \"5\": use a "
             "number with a unit: 500ms, 10s, 5m, 1h"},
            {"wait", "2m",
             "test.yaml:6:10: wait \"2m\" is out of range: use "
             "1s to 1m"},
            {"bytes", "512B",
             "test.yaml:6:10: bytes \"512B\" is out of range: "
             "use 1kB to 1GB"},
            {"bytes", "12",
             "test.yaml:6:10: invalid size \"12\": use a "
             "number with a unit: 512kB, 64MB, 1GB"},
            {"color", "pink",
             "test.yaml:6:10: invalid color \"pink\": use "
             "red, green or blue"},
            {"even", "abc",
             "test.yaml:6:10: \"sinks[0].thing.even\" wants "
             "an even length"},
            {"name", "${WC_SETTINGS_UNSET}",
             "test.yaml:6:10: environment variable \"WC_SETTINGS_UNSET\" is "
             "not set"},
        };
        struct fixture *f = *state;

        unsetenv("WC_SETTINGS_UNSET");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                teardown(state);
                setup(state);
                f = *state;
                if (strcmp(cases[i].key, "path") != 0)
                        put_text(f->block, 5, "path", "/x");
                put_text(f->block, 6, cases[i].key, cases[i].text);
                if (read_block(f) != -EINVAL)
                        fail_msg("case %zu passed", i);
                assert_string_equal(f->err, cases[i].message);
        }
}

static void bad_type_names_what_was_wanted(void **state)
{
        struct fixture *f = *state;

        put_text(f->block, 5, "path", "/x");
        put(f->block, 6, "flag", node(WC_NODE_MAPPING, 6, 10, NULL));
        assert_int_equal(read_block(f), -EINVAL);
        assert_string_equal(f->err, "test.yaml:6:10: expected a boolean for "
                                    "\"sinks[0].thing.flag\", found a mapping");
}

static void unknown_key_at_its_position(void **state)
{
        struct fixture *f = *state;

        put_text(f->block, 5, "path", "/x");
        put_text(f->block, 8, "colour", "red");
        assert_int_equal(read_block(f), -EINVAL);
        assert_string_equal(f->err, "test.yaml:8:1: unknown key \"colour\" in "
                                    "\"sinks[0].thing\"");
}

static void duplicate_key_is_refused(void **state)
{
        struct fixture *f = *state;

        put_text(f->block, 5, "path", "/x");
        put_text(f->block, 6, "path", "/y");
        assert_int_equal(read_block(f), -EINVAL);
        assert_string_equal(f->err, "test.yaml:6:1: duplicate key \"path\" in "
                                    "\"sinks[0].thing\"");
}

static void missing_required_key_at_the_block(void **state)
{
        struct fixture *f = *state;

        put_text(f->block, 5, "flag", "true");
        assert_int_equal(read_block(f), -EINVAL);
        /* reported where the block was opened */
        assert_string_equal(f->err, "test.yaml:3:3: missing required key "
                                    "\"path\" in \"sinks[0].thing\"");
}

static void empty_block_is_the_defaults(void **state)
{
        struct fixture *f = *state;
        static const struct wc_key optional[] = {
            {WC_KEY(WC_KEY_BOOL, "flag", "true", offsetof(struct conf, flag),
                    "bool")},
            {.name = NULL},
        };
        struct wc_node *empty = scalar(4, 5, NULL);

        assert_int_equal(
            wc_settings_read(&f->s, optional, "x", f->key, empty, &f->c), 0);
        assert_true(f->c.flag);
        wc_node_free(empty);
}

static void not_a_mapping_is_refused(void **state)
{
        struct fixture *f = *state;
        struct wc_node *seq = node(WC_NODE_SEQUENCE, 4, 5, NULL);

        assert_int_equal(
            wc_settings_read(&f->s, keys, "sinks[0].thing", f->key, seq, &f->c),
            -EINVAL);
        assert_string_equal(f->err, "test.yaml:4:5: expected a mapping for "
                                    "\"sinks[0].thing\", found a sequence");
        wc_node_free(seq);
}

static void bad_op_and_duplicate_flattened_key(void **state)
{
        struct fixture *f = *state;
        struct wc_node *ops = node(WC_NODE_SEQUENCE, 6, 10, NULL);

        put_text(f->block, 5, "path", "/x");
        assert_int_equal(wc_node_append(ops, scalar(6, 12, "begin")), 0);
        put(f->block, 6, "ops", ops);
        assert_int_equal(read_block(f), -EINVAL);
        assert_string_equal(f->err, "test.yaml:6:12: invalid op \"begin\": use "
                                    "insert, update, delete, truncate or "
                                    "message");

        teardown(state);
        setup(state);
        f = *state;
        struct wc_node *kv = node(WC_NODE_MAPPING, 6, 10, NULL);
        struct wc_node *a = node(WC_NODE_MAPPING, 7, 10, NULL);

        put_text(f->block, 5, "path", "/x");
        put_text(kv, 6, "a.b", "1");
        put_text(a, 7, "b", "2");
        put(kv, 7, "a", a);
        put(f->block, 6, "kv", kv);
        assert_int_equal(read_block(f), -EINVAL);
        assert_string_equal(f->err, "test.yaml:7:1: duplicate key \"a.b\" in "
                                    "\"sinks[0].thing.kv\" once flattened: a "
                                    "\".\" in a key reads as nesting");
}

static void durations_and_sizes_parse(void **state)
{
        uint64_t v;

        (void)state;
        assert_int_equal(wc_duration_parse("500ms", &v), 0);
        assert_int_equal(v, 500);
        assert_int_equal(wc_duration_parse("2h", &v), 0);
        assert_int_equal(v, 7200000);
        assert_int_equal(wc_duration_parse("10", &v), -EINVAL);
        assert_int_equal(wc_size_parse("64MB", &v), 0);
        assert_int_equal(v, 64u << 20);
        assert_int_equal(wc_size_parse("64mb", &v), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(defaults_fill_every_key, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(every_kind_is_read, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(bad_values_say_where_and_what,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(bad_type_names_what_was_wanted,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(unknown_key_at_its_position, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(duplicate_key_is_refused, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(missing_required_key_at_the_block,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(empty_block_is_the_defaults, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(not_a_mapping_is_refused, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(bad_op_and_duplicate_flattened_key,
                                            setup, teardown),
            cmocka_unit_test(durations_and_sizes_parse),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
