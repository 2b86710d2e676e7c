/* SPDX-License-Identifier: MIT */
/* Schema/table/op filters and the decision cache. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/filter.h"
#include "core/pattern.h"

#define LIST(...)                                                              \
        ((struct wc_pattern_list){(char *[]){__VA_ARGS__},                     \
                                  sizeof((char *[]){__VA_ARGS__}) /            \
                                      sizeof(char *)})
#define NONE ((struct wc_pattern_list){NULL, 0})

static struct wc_change change(enum wc_op op, const char *schema,
                               const char *table)
{
        return (struct wc_change){.op = op,
                                  .schema = schema,
                                  .schema_len = strlen(schema),
                                  .table = table,
                                  .table_len = strlen(table)};
}

static void schema_patterns(void **state)
{
        (void)state;
        /* exact */
        assert_true(wc_pattern_schema_match("town6-govikon", "town6-govikon"));
        assert_false(wc_pattern_schema_match("town6-govikon", "town6-bern"));
        /* namespace: a plain name matches NAME-<tenant> */
        assert_true(wc_pattern_schema_match("town6", "town6-govikon"));
        assert_true(wc_pattern_schema_match("town6", "town6-bern"));
        assert_true(wc_pattern_schema_match("town6", "town6"));
        assert_false(wc_pattern_schema_match("town6", "town6x-bern"));
        assert_false(wc_pattern_schema_match("town", "town6-bern"));
        assert_false(wc_pattern_schema_match("org", "org-"));
        /* globs */
        assert_true(wc_pattern_schema_match("*-archive", "org-acme-archive"));
        assert_false(wc_pattern_schema_match("*-archive", "org-acme"));
        assert_true(wc_pattern_schema_match("town?-*", "town6-bern"));
        assert_true(wc_pattern_schema_match("org-[ab]*", "org-acme"));
        assert_false(wc_pattern_schema_match("org-[b]*", "org-acme"));
}

static void table_patterns(void **state)
{
        (void)state;
        assert_true(wc_pattern_table_match("tickets", "a", "tickets"));
        assert_false(wc_pattern_table_match("tickets", "a", "tickets2"));
        assert_true(wc_pattern_table_match("tick*", "a", "tickets"));
        assert_true(wc_pattern_table_match("*.upgrade_state", "org-acme",
                                           "upgrade_state"));
        assert_false(
            wc_pattern_table_match("*.upgrade_state", "org-acme", "users"));
        assert_true(
            wc_pattern_table_match("org-acme.users", "org-acme", "users"));
        assert_false(
            wc_pattern_table_match("org-acme.users", "org-acm", "users"));
        assert_false(
            wc_pattern_table_match("org-acme.users", "org-acme", "user"));
        assert_true(wc_pattern_table_match("org-*.u*", "org-acme", "users"));
        /* long names take the heap path */
        char schema[300];
        memset(schema, 's', sizeof(schema) - 1);
        schema[sizeof(schema) - 1] = '\0';
        assert_true(wc_pattern_table_match("s*.t", schema, "t"));
}

static void filter_decisions(void **state)
{
        struct wc_filter_config f = {
            .schemas_include = LIST("town6", "org-*"),
            .schemas_exclude = LIST("*-archive"),
            .tables_exclude = LIST("*.upgrade_state", "secrets"),
            .ops = WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_DELETE) |
                   WC_OP_BIT(WC_OP_MESSAGE),
        };
        struct wc_filter *r = wc_filter_new(&f);
        struct wc_change c;
        (void)state;

        assert_non_null(r);
        /* twice each: the second answer comes from the cache */
        for (int pass = 0; pass < 2; pass++) {
                c = change(WC_OP_INSERT, "town6-govikon", "tickets");
                assert_true(wc_filter_match(r, &c));
                c = change(WC_OP_INSERT, "org-acme", "tickets");
                assert_true(wc_filter_match(r, &c));
                c = change(WC_OP_INSERT, "public", "tickets");
                assert_false(wc_filter_match(r, &c));
                c = change(WC_OP_INSERT, "org-acme-archive", "tickets");
                assert_false(wc_filter_match(r, &c));
                c = change(WC_OP_INSERT, "org-acme", "upgrade_state");
                assert_false(wc_filter_match(r, &c));
                c = change(WC_OP_DELETE, "town6-bern", "secrets");
                assert_false(wc_filter_match(r, &c));
                /* ops */
                c = change(WC_OP_UPDATE, "town6-govikon", "tickets");
                assert_false(wc_filter_match(r, &c));
                c = change(WC_OP_DELETE, "town6-govikon", "tickets");
                assert_true(wc_filter_match(r, &c));
                c = change(WC_OP_TRUNCATE, "town6-govikon", "tickets");
                assert_false(wc_filter_match(r, &c));
                /* messages have no schema; begin/commit always pass */
                c = (struct wc_change){.op = WC_OP_MESSAGE};
                assert_true(wc_filter_match(r, &c));
                c = (struct wc_change){.op = WC_OP_BEGIN};
                assert_true(wc_filter_match(r, &c));
                c = (struct wc_change){.op = WC_OP_COMMIT};
                assert_true(wc_filter_match(r, &c));
        }
        /* a schema and table that concatenate alike must not share a
         * cache entry */
        c = change(WC_OP_INSERT, "town6-a", "bsecrets");
        assert_true(wc_filter_match(r, &c));
        c = change(WC_OP_INSERT, "town6-ab", "secrets");
        assert_false(wc_filter_match(r, &c));
        wc_filter_free(r);
        wc_filter_free(NULL);
}

/* The uncached rules, as sinks use them, and a sink's "ops" text. */
static void sink_rules_and_ops(void **state)
{
        struct wc_filter_config f = {
            .schemas_include = LIST("town6"),
            .tables_include = LIST("tickets", "org-acme.users"),
            .tables_exclude = LIST("town6-bern.*"),
        };
        unsigned ops = 12345;
        (void)state;

        assert_true(wc_filter_table_pass(&f, "town6-govikon", "tickets"));
        assert_false(wc_filter_table_pass(&f, "town6-bern", "tickets"));
        assert_false(wc_filter_table_pass(&f, "town6-govikon", "users"));
        /* the table include names a schema the schema include leaves out */
        assert_false(wc_filter_table_pass(&f, "org-acme", "users"));
        f.schemas_include = NONE;
        assert_true(wc_filter_table_pass(&f, "org-acme", "users"));

        assert_int_equal(wc_filter_ops_parse("insert,truncate", &ops), 0);
        assert_int_equal(ops,
                         WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_TRUNCATE));
        assert_int_equal(
            wc_filter_ops_parse("insert,update,delete,truncate,message", &ops),
            0);
        assert_int_equal(ops, WC_OPS_DATA);
        /* accepted twice, as before */
        assert_int_equal(wc_filter_ops_parse("delete,delete", &ops), 0);
        assert_int_equal(ops, WC_OP_BIT(WC_OP_DELETE));
        assert_int_equal(wc_filter_ops_parse("", &ops), 0);
        assert_int_equal(ops, 0);
        /* begin and commit are not for a filter; nor is anything else */
        ops = 7;
        assert_int_equal(wc_filter_ops_parse("begin", &ops), -EINVAL);
        assert_int_equal(wc_filter_ops_parse("insert,commit", &ops), -EINVAL);
        assert_int_equal(wc_filter_ops_parse("insert,upsert", &ops), -EINVAL);
        assert_int_equal(wc_filter_ops_parse("insert,,delete", &ops), -EINVAL);
        assert_int_equal(wc_filter_ops_parse("inser", &ops), -EINVAL);
        assert_int_equal(ops, 7);
}

static void cache_survives_many_tables(void **state)
{
        struct wc_filter_config f = {.schemas_include = LIST("t"),
                                     .ops = WC_OPS_DATA};
        struct wc_filter *r = wc_filter_new(&f);
        char schema[32], table[32];
        (void)state;

        /* more distinct tables than the cache holds: it empties itself and
         * keeps answering correctly */
        for (int i = 0; i < 70000; i++) {
                snprintf(schema, sizeof(schema), "%s-%d", i % 2 ? "t" : "u", i);
                snprintf(table, sizeof(table), "tab%d", i);
                struct wc_change c = change(WC_OP_INSERT, schema, table);
                assert_int_equal(wc_filter_match(r, &c), i % 2 == 1);
        }
        struct wc_change c = change(WC_OP_INSERT, "t-1", "tab1");
        assert_true(wc_filter_match(r, &c));
        wc_filter_free(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(schema_patterns),
            cmocka_unit_test(table_patterns),
            cmocka_unit_test(filter_decisions),
            cmocka_unit_test(sink_rules_and_ops),
            cmocka_unit_test(cache_survives_many_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
