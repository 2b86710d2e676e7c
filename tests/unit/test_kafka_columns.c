/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink's column rules (sinks/kafka/columns.h): which rule a
 * table takes, excluded and masked columns, key columns; and SHA-256
 * against FIPS 180-4's examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sinks/kafka/columns.h"
#include "sinks/kafka/sha256.h"
#include "stream/catalog.h"

static void hex_of(const char *s, char out[65])
{
        struct wc_sha256 c;

        wc_sha256_init(&c);
        wc_sha256_update(&c, s, strlen(s));
        wc_sha256_hex(&c, out);
        out[64] = '\0';
}

/* FIPS 180-4 / its examples document: "abc", the empty string and the
 * two-block message. */
static void test_sha256(void **state)
{
        char h[65];
        struct wc_sha256 c;

        (void)state;
        hex_of("abc", h);
        assert_string_equal(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        hex_of("", h);
        assert_string_equal(
            h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", h);
        assert_string_equal(
            h,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        /* in pieces across a block boundary */
        wc_sha256_init(&c);
        wc_sha256_update(&c, "abcdbcdecdefdefgefghfghighijhij", 31);
        wc_sha256_update(&c, "kijkljklmklmnlmnomnopnopq", 25);
        wc_sha256_hex(&c, h);
        assert_string_equal(
            h,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static char *users_tables[] = {"*.users"};
static char *users_exclude[] = {"password_hash", "tmp_*"};
static char *users_mask[] = {"email"};
static char *users_key[] = {"email"};
static char *all_tables[] = {"public.*"};

static const struct wc_kafka_column_rule rules[] = {
    {.tables = {users_tables, 1},
     .exclude = {users_exclude, 2},
     .mask = {users_mask, 1},
     .key_columns = {users_key, 1}},
    {.tables = {all_tables, 1}},
};

#define COL(n, t, oid, v)                                                      \
        {                                                                      \
                .name = n, .name_len = sizeof(n) - 1, .type = t,               \
                .type_len = sizeof(t) - 1, .type_oid = oid, .value = v,        \
                .value_len = sizeof(v) - 1                                     \
        }

static void test_rule_for(void **state)
{
        (void)state;
        assert_ptr_equal(wc_kafka_rule_for(rules, 2, "town6-a", "users"),
                         &rules[0]);
        assert_ptr_equal(wc_kafka_rule_for(rules, 2, "public", "users"),
                         &rules[0]);
        assert_ptr_equal(wc_kafka_rule_for(rules, 2, "public", "orders"),
                         &rules[1]);
        assert_null(wc_kafka_rule_for(rules, 2, "town6-a", "orders"));
}

static void test_apply(void **state)
{
        static const struct walcast_column row[] = {
            COL("id", "integer", 23, "1"),
            COL("email", "text", 25, "\"a@b.ch\""),
            COL("password_hash", "text", 25, "\"x\""),
            COL("tmp_x", "integer", 23, "2"),
            COL("nick", "text", 25, "null"),
        };
        struct wc_kafka_rule_out o = {0};
        struct walcast_columns out;
        char want[67];

        (void)state;
        assert_int_equal(wc_kafka_rule_apply(&rules[0], "s4lt",
                                             &(struct walcast_columns){row, 5},
                                             &o, &out),
                         0);
        assert_int_equal(out.count, 3);
        assert_string_equal(out.items[0].name, "id");
        assert_string_equal(out.items[1].name, "email");
        assert_string_equal(out.items[2].name, "nick");
        /* sha256("s4lt" "a@b.ch") */
        hex_of("s4lta@b.ch", want + 1);
        want[0] = '"';
        want[65] = '"';
        want[66] = '\0';
        assert_int_equal(out.items[1].value_len, 66);
        assert_memory_equal(out.items[1].value, want, 66);
        assert_string_equal(out.items[1].type, "text");
        /* untouched columns are the decoder's */
        assert_ptr_equal(out.items[0].value, row[0].value);
        assert_ptr_equal(out.items[2].value, row[4].value);
        /* a masked null stays null */
        {
                static const struct walcast_column nul[] = {
                    COL("email", "text", 25, "null")};

                assert_int_equal(
                    wc_kafka_rule_apply(&rules[0], "s4lt",
                                        &(struct walcast_columns){nul, 1}, &o,
                                        &out),
                    0);
                assert_int_equal(out.items[0].value_len, 4);
        }
        wc_kafka_rule_out_free(&o);
}

static void test_key(void **state)
{
        static const struct walcast_column pk[] = {
            {.name = "id", .name_len = 2, .type = "integer", .type_len = 7},
            {.name = "password_hash",
             .name_len = 13,
             .type = "text",
             .type_len = 4}};
        struct wc_kafka_rule_out o = {0};
        struct walcast_columns k = {pk, 1};

        (void)state;
        assert_int_equal(wc_kafka_rule_key(&rules[1], &o, &k), 0);
        assert_ptr_equal(k.items, pk); /* no key columns: the primary key */
        assert_int_equal(wc_kafka_rule_key(&rules[0], &o, &k), 0);
        assert_int_equal(k.count, 1);
        assert_string_equal(k.items[0].name, "email");
        assert_null(wc_kafka_rule_excluded_key(
            &rules[0], &(struct walcast_columns){pk, 1}));
        assert_string_equal(wc_kafka_rule_excluded_key(
                                &rules[0], &(struct walcast_columns){pk, 2}),
                            "password_hash");
        wc_kafka_rule_out_free(&o);
}

/* The rules against the catalog's tables, as a start checks them. */
static char *warned[4];
static size_t nwarned;

static void warn(int level, const char *msg)
{
        assert_int_equal(level, 4);
        if (nwarned < 4)
                warned[nwarned++] = strdup(msg);
}

static void test_rules_check(void **state)
{
        struct wc_catalog_column users_cols[] = {{"id", 23, true},
                                                 {"email", 25, false},
                                                 {"password_hash", 25, false}};
        struct wc_catalog_column orders_cols[] = {
            {"id", 23, true}, {"part", 23, true}, {"note", 25, false}};
        struct wc_catalog_table tables[] = {
            {"public", "orders", orders_cols, 3},
            {"town6-a", "users", users_cols, 3},
        };
        struct wc_catalog_tables t = {tables, 2, NULL, 0};
        static char *t_orders[] = {"orders"}, *t_gone[] = {"gone"};
        static char *ex_part[] = {"pa*"}, *ex_note[] = {"note"};
        static char *k_note[] = {"note"}, *k_id_nope[] = {"id", "nope"};
        static char *mask_id[] = {"id"};
        char err[512];

        (void)state;
        /* users: key_columns [email], password_hash and tmp_* excluded */
        assert_int_equal(
            wc_kafka_rules_check(rules, 1, &t, "k", warn, err, sizeof(err)), 0);
        assert_int_equal(nwarned, 0);
        /* a primary-key column excluded (by a glob) */
        struct wc_kafka_column_rule bad_pk = {.tables = {t_orders, 1},
                                              .exclude = {ex_part, 1}};
        assert_int_equal(
            wc_kafka_rules_check(&bad_pk, 1, &t, "k", warn, err, sizeof(err)),
            -EINVAL);
        assert_string_equal(
            err, "sink \"k\": the column rule for tables \"orders\" "
                 "excludes column \"part\" of table \"public\".\"orders\", "
                 "part of its primary key, which keys the messages; leave "
                 "the column in, or name key_columns");
        /* ... allowed when key_columns key instead */
        struct wc_kafka_column_rule keyed = {.tables = {t_orders, 1},
                                             .exclude = {ex_part, 1},
                                             .key_columns = {k_note, 1}};
        assert_int_equal(
            wc_kafka_rules_check(&keyed, 1, &t, "k", warn, err, sizeof(err)),
            0);
        /* ... but not one of those excluded */
        struct wc_kafka_column_rule keyed_ex = {.tables = {t_orders, 1},
                                                .exclude = {ex_note, 1},
                                                .key_columns = {k_note, 1}};
        assert_int_equal(
            wc_kafka_rules_check(&keyed_ex, 1, &t, "k", warn, err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, "excludes column \"note\" of table "
                                    "\"public\".\"orders\", which its "
                                    "key_columns name"));
        /* a key column the table lacks */
        struct wc_kafka_column_rule nope = {.tables = {t_orders, 1},
                                            .key_columns = {k_id_nope, 2}};
        assert_int_equal(
            wc_kafka_rules_check(&nope, 1, &t, "k", warn, err, sizeof(err)),
            -EINVAL);
        assert_string_equal(
            err, "sink \"k\": table \"public\".\"orders\" has no column "
                 "\"nope\", which the column rule for tables \"orders\" "
                 "names in key_columns; correct key_columns or the rule's "
                 "tables");
        /* a masked key column is allowed; a rule for no table is said */
        struct wc_kafka_column_rule two[] = {
            {.tables = {t_orders, 1}, .mask = {mask_id, 1}},
            {.tables = {t_gone, 1}, .exclude = {ex_note, 1}},
        };
        assert_int_equal(
            wc_kafka_rules_check(two, 2, &t, "k", warn, err, sizeof(err)), 0);
        assert_int_equal(nwarned, 1);
        assert_string_equal(warned[0],
                            "sink \"k\": the column rule for tables \"gone\" "
                            "matches no table the sink takes now; it applies "
                            "to such tables when they are created");
        free(warned[0]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sha256),      cmocka_unit_test(test_rule_for),
            cmocka_unit_test(test_apply),       cmocka_unit_test(test_key),
            cmocka_unit_test(test_rules_check),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
