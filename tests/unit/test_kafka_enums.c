/* SPDX-License-Identifier: MIT */
/*
 * The enum types a debezium Kafka sink knows (sinks/kafka/enums.h): which
 * columns make it look a type up, when the labels of a known one are
 * looked up again, what a failed lookup and a vanished type leave, and
 * the bound on what is kept.  The lookup is a hand-written table here
 * (the catalog's own query runs in test_kafka_debezium.py).
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

#include "sinks/kafka/enums.h"

/* What the "catalog" has: oid -> labels ("-": no enum) */
struct fake {
        struct {
                uint32_t oid;
                const char *labels;
        } types[8];
        int fail;      /* > 0: the next lookups fail */
        int calls;     /* lookups made */
        size_t asked;  /* oids in the last one */
        uint32_t last; /* the first oid of the last one */
        char logs[8][512];
        int nlogs;
};

static int lookup(void *ud, const uint32_t *oids, size_t n,
                  wc_kafka_enum_found_fn found, void *found_ud, char *errbuf,
                  size_t errlen)
{
        struct fake *f = ud;

        f->calls++;
        f->asked = n;
        f->last = n ? oids[0] : 0;
        if (f->fail) {
                snprintf(errbuf, errlen, "could not connect: refused");
                return -EHOSTUNREACH;
        }
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < 8; j++)
                        if (f->types[j].oid && f->types[j].oid == oids[i]) {
                                const char *l = f->types[j].labels;
                                int r = found(found_ud, oids[i],
                                              strcmp(l, "-") ? l : NULL);

                                if (r)
                                        return r;
                        }
        return 0;
}

static void logged(void *ud, int level, const char *msg)
{
        struct fake *f = ud;

        (void)level;
        if (f->nlogs < 8)
                snprintf(f->logs[f->nlogs++], sizeof(f->logs[0]), "%s", msg);
}

static void setup(struct wc_kafka_enums *e, struct fake *f)
{
        memset(e, 0, sizeof(*e));
        e->lookup = lookup;
        e->lookup_ud = f;
        e->log = logged;
        e->log_ud = f;
}

static struct walcast_column col(uint32_t oid, const char *value)
{
        return (struct walcast_column){.name = "c",
                                       .name_len = 1,
                                       .type = "public.t",
                                       .type_len = 8,
                                       .type_oid = oid,
                                       .value = value,
                                       .value_len =
                                           value ? (uint32_t)strlen(value) : 0};
}

/* The clock resolve reads, and how often it did. */
static int64_t clock_now;
static int clock_reads;

static int64_t test_clock(void)
{
        clock_reads++;
        return clock_now;
}

static int resolve1(struct wc_kafka_enums *e, struct walcast_column c,
                    int64_t now)
{
        const struct walcast_columns l = {&c, 1};

        clock_now = now;
        return wc_kafka_enums_resolve(
            e, (const struct walcast_columns *const[]){NULL, &l}, 2,
            test_clock);
}

static const char *labels_of(const struct wc_kafka_enums *e, uint32_t oid)
{
        for (size_t i = 0; i < e->n; i++)
                if (e->items[i].oid == oid)
                        return e->items[i].labels ? e->items[i].labels : "-";
        return NULL;
}

static void test_has_label(void **state)
{
        (void)state;
        assert_true(wc_kafka_enum_has_label("new,open,done", "\"new\"", 5));
        assert_true(wc_kafka_enum_has_label("new,open,done", "\"open\"", 6));
        assert_true(wc_kafka_enum_has_label("new,open,done", "\"done\"", 6));
        /* a part of a label, or labels around a comma, is none */
        assert_false(wc_kafka_enum_has_label("new,open,done", "\"ope\"", 5));
        assert_false(wc_kafka_enum_has_label("new,open,done", "\"pen\"", 5));
        assert_false(wc_kafka_enum_has_label("new,open,done", "\"w,o\"", 5));
        assert_false(wc_kafka_enum_has_label("new,open,done", "\"closed\"", 8));
        assert_false(wc_kafka_enum_has_label("new,open", "\"new,open,x\"", 12));
        /* escaped in JSON, compared as the label */
        assert_true(wc_kafka_enum_has_label("a\"b,c\\d", "\"a\\\"b\"", 6));
        assert_true(wc_kafka_enum_has_label("a\"b,c\\d", "\"c\\\\d\"", 6));
        assert_true(wc_kafka_enum_has_label("x,\xc3\xa9t\xc3\xa9",
                                            "\"\\u00e9t\\u00e9\"", 15));
        /* a value longer than any label can be */
        {
                char big[400];

                memset(big, 'a', sizeof(big));
                big[0] = '"';
                big[1] = '\\';
                big[2] = 'n';
                big[sizeof(big) - 1] = '"';
                assert_false(wc_kafka_enum_has_label("a", big, sizeof(big)));
        }
        assert_false(wc_kafka_enum_has_label(NULL, "\"a\"", 3));
        assert_false(wc_kafka_enum_has_label("", "\"a\"", 3));
}

/* Built-in types never; a type of its own once, whether an enum or not. */
static void test_unknown_looked_up_once(void **state)
{
        struct fake f = {.types = {{16500, "x,y"}, {16501, "-"}}};
        struct wc_kafka_enums e;
        uint64_t gen;

        (void)state;
        setup(&e, &f);
        clock_reads = 0;
        assert_int_equal(resolve1(&e, col(25, "\"a\""), 1), 0);
        assert_int_equal(resolve1(&e, col(16383, "\"a\""), 1), 0);
        assert_int_equal(f.calls, 0);
        /* changes of built-in types only do not even read the clock */
        assert_int_equal(clock_reads, 0);
        gen = e.gen;
        assert_int_equal(resolve1(&e, col(16500, "\"y\""), 1), 0);
        assert_int_equal(f.calls, 1);
        assert_string_equal(labels_of(&e, 16500), "x,y");
        assert_true(e.gen != gen);
        /* a null value of an unknown type is looked up too: the schema
         * needs the labels */
        gen = e.gen;
        assert_int_equal(resolve1(&e, col(16501, "null"), 2), 0);
        assert_int_equal(f.calls, 2);
        assert_string_equal(labels_of(&e, 16501), "-");
        assert_true(e.gen == gen); /* text before, text now */
        for (int i = 0; i < 3; i++) {
                assert_int_equal(resolve1(&e, col(16500, "\"x\""), 5000 + i),
                                 0);
                assert_int_equal(resolve1(&e, col(16501, "\"z\""), 5000 + i),
                                 0);
        }
        assert_int_equal(f.calls, 2);
        assert_int_equal(f.nlogs, 0);
        wc_kafka_enums_free(&e);
}

/* Several unknown types of one change: one lookup, each once. */
static void test_one_lookup_per_change(void **state)
{
        struct fake f = {.types = {{16500, "x"}, {16600, "p,q"}}};
        struct wc_kafka_enums e;
        struct walcast_column cs[4] = {col(16600, "\"p\""), col(23, "1"),
                                       col(16500, "\"x\""),
                                       col(16600, "\"q\"")};
        const struct walcast_columns l = {cs, 4}, l2 = {cs, 1};

        (void)state;
        setup(&e, &f);
        clock_now = 1;
        assert_int_equal(
            wc_kafka_enums_resolve(
                &e, (const struct walcast_columns *const[]){&l2, NULL, &l}, 3,
                test_clock),
            0);
        assert_int_equal(f.calls, 1);
        assert_int_equal(f.asked, 2);
        assert_string_equal(labels_of(&e, 16500), "x");
        assert_string_equal(labels_of(&e, 16600), "p,q");
        /* sorted by oid, as wc_dbz_type_of searches them */
        assert_int_equal(e.n, 2);
        assert_true(e.items[0].oid < e.items[1].oid);
        wc_kafka_enums_free(&e);
}

/* ADD VALUE: a value not among the labels known makes them looked up
 * again, at once, however recent the last lookup; a null value does not.
 * A value the lookup does not have either quiets the type for a second. */
static void test_refresh(void **state)
{
        static const struct wc_dbz_enum seed[] = {{16414, "new,open,done"}};
        struct fake f = {.types = {{16414, "new,open,done,closed"}}};
        struct wc_kafka_enums e;
        uint64_t gen;

        (void)state;
        setup(&e, &f);
        assert_int_equal(wc_kafka_enums_seed(&e, seed, 1), 0);
        assert_int_equal(resolve1(&e, col(16414, "\"open\""), 10), 0);
        assert_int_equal(resolve1(&e, col(16414, "null"), 10), 0);
        assert_int_equal(resolve1(&e, col(16414, NULL), 10), 0);
        assert_int_equal(f.calls, 0);
        gen = e.gen;
        /* known since start: looked up at once */
        assert_int_equal(resolve1(&e, col(16414, "\"closed\""), 10), 0);
        assert_int_equal(f.calls, 1);
        assert_string_equal(labels_of(&e, 16414), "new,open,done,closed");
        assert_true(e.gen != gen);
        /* another value added right after: looked up at once too */
        f.types[0].labels = "new,open,done,closed,archived";
        assert_int_equal(resolve1(&e, col(16414, "\"archived\""), 11), 0);
        assert_int_equal(f.calls, 2);
        assert_string_equal(labels_of(&e, 16414),
                            "new,open,done,closed,archived");
        /* a value the catalog does not have either (renamed since): not
         * again within the second, whatever the value */
        gen = e.gen;
        assert_int_equal(resolve1(&e, col(16414, "\"gone\""), 500), 0);
        assert_int_equal(f.calls, 3);
        assert_int_equal(resolve1(&e, col(16414, "\"gone\""), 501), 0);
        assert_int_equal(resolve1(&e, col(16414, "\"other\""), 1499), 0);
        assert_int_equal(f.calls, 3);
        /* known values need no lookup, quiet or not */
        assert_int_equal(resolve1(&e, col(16414, "\"open\""), 1499), 0);
        assert_int_equal(f.calls, 3);
        assert_int_equal(resolve1(&e, col(16414, "\"gone\""), 1500), 0);
        assert_int_equal(f.calls, 4);
        assert_true(e.gen == gen); /* the same labels */
        /* a lookup that has the value ends the quiet */
        f.types[0].labels = "new,open,done,closed,archived,gone";
        assert_int_equal(resolve1(&e, col(16414, "\"gone\""), 2500), 0);
        assert_int_equal(f.calls, 5);
        f.types[0].labels = "new,open,done,closed,archived,gone,x";
        assert_int_equal(resolve1(&e, col(16414, "\"x\""), 2501), 0);
        assert_int_equal(f.calls, 6);
        assert_string_equal(labels_of(&e, 16414),
                            "new,open,done,closed,archived,gone,x");
        wc_kafka_enums_free(&e);
}

/* The catalog down: said once, no lookup for the retry interval (the
 * types stay unknown: text), then looked up, and the recovery said. */
static void test_failure(void **state)
{
        struct fake f = {.types = {{16500, "x,y"}}, .fail = 1};
        struct wc_kafka_enums e;

        (void)state;
        setup(&e, &f);
        assert_int_equal(resolve1(&e, col(16500, "\"x\""), 100), 0);
        assert_int_equal(f.calls, 1);
        assert_null(labels_of(&e, 16500));
        assert_int_equal(f.nlogs, 1);
        assert_non_null(strstr(f.logs[0], "could not look up enum types in "
                                          "the catalog (could not connect: "
                                          "refused)"));
        assert_non_null(strstr(f.logs[0], "walcast.data.Text"));
        for (int64_t t = 100; t < 100 + WC_KAFKA_ENUM_RETRY_MS; t += 997)
                assert_int_equal(resolve1(&e, col(16500, "\"x\""), t), 0);
        assert_int_equal(f.calls, 1);
        /* still down: tried, not said again */
        assert_int_equal(
            resolve1(&e, col(16500, "\"x\""), 100 + WC_KAFKA_ENUM_RETRY_MS), 0);
        assert_int_equal(f.calls, 2);
        assert_int_equal(f.nlogs, 1);
        f.fail = 0;
        assert_int_equal(
            resolve1(&e, col(16500, "\"x\""), 100 + 2 * WC_KAFKA_ENUM_RETRY_MS),
            0);
        assert_int_equal(f.calls, 3);
        assert_string_equal(labels_of(&e, 16500), "x,y");
        assert_int_equal(f.nlogs, 2);
        assert_non_null(strstr(f.logs[1], "looked up in the catalog again"));
        wc_kafka_enums_free(&e);
}

/* A type dropped since its change was written: text, said once; a known
 * enum dropped since keeps its last labels. */
static void test_gone(void **state)
{
        static const struct wc_dbz_enum seed[] = {{16414, "a,b"}};
        struct fake f = {.types = {{1, "-"}}};
        struct wc_kafka_enums e;

        (void)state;
        setup(&e, &f);
        assert_int_equal(wc_kafka_enums_seed(&e, seed, 1), 0);
        assert_int_equal(resolve1(&e, col(16777, "\"a\""), 1), 0);
        assert_string_equal(labels_of(&e, 16777), "-");
        assert_int_equal(f.nlogs, 1);
        assert_non_null(
            strstr(f.logs[0], "type 16777 is no longer in the catalog"));
        assert_int_equal(resolve1(&e, col(16777, "\"a\""), 5000), 0);
        assert_int_equal(f.calls, 1);
        assert_int_equal(f.nlogs, 1);
        assert_int_equal(resolve1(&e, col(16414, "\"c\""), 5000), 0);
        assert_int_equal(f.calls, 2);
        assert_string_equal(labels_of(&e, 16414), "a,b");
        assert_int_equal(f.nlogs, 1);
        /* and is quiet for a second, not looked up at every change */
        assert_int_equal(resolve1(&e, col(16414, "\"c\""), 5999), 0);
        assert_int_equal(f.calls, 2);
        assert_int_equal(resolve1(&e, col(16414, "\"c\""), 6000), 0);
        assert_int_equal(f.calls, 3);
        wc_kafka_enums_free(&e);
}

/* No lookup function (no DSN): what was seeded only, nothing else. */
static void test_no_lookup(void **state)
{
        static const struct wc_dbz_enum seed[] = {{16414, "a,b"}};
        struct wc_kafka_enums e = {0};

        (void)state;
        assert_int_equal(wc_kafka_enums_seed(&e, seed, 1), 0);
        assert_int_equal(resolve1(&e, col(16777, "\"a\""), 1), 0);
        assert_int_equal(resolve1(&e, col(16414, "\"c\""), 1), 0);
        assert_int_equal(e.n, 1);
        assert_string_equal(labels_of(&e, 16414), "a,b");
        wc_kafka_enums_free(&e);
}

/* Thousands of types: at most WC_KAFKA_ENUMS_MAX kept, and the change
 * that finds the cache full still gets its types. */
static void test_bound(void **state)
{
        struct fake f = {.types = {{1, "-"}}};
        struct wc_kafka_enums e;
        struct wc_dbz_enum *many =
            calloc(WC_KAFKA_ENUMS_MAX + 10, sizeof(*many));
        uint64_t gen;

        (void)state;
        setup(&e, &f);
        assert_non_null(many);
        for (size_t i = 0; i < WC_KAFKA_ENUMS_MAX + 10; i++)
                many[i] = (struct wc_dbz_enum){(uint32_t)(20000 + i), "a"};
        assert_int_equal(wc_kafka_enums_seed(&e, many, WC_KAFKA_ENUMS_MAX + 10),
                         0);
        assert_int_equal(e.n, WC_KAFKA_ENUMS_MAX);
        f.types[1].oid = 16500;
        f.types[1].labels = "x";
        gen = e.gen;
        assert_int_equal(resolve1(&e, col(16500, "\"x\""), 1), 0);
        assert_int_equal(e.n, 1);
        assert_string_equal(labels_of(&e, 16500), "x");
        assert_true(e.gen != gen);
        free(many);
        wc_kafka_enums_free(&e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_has_label),
            cmocka_unit_test(test_unknown_looked_up_once),
            cmocka_unit_test(test_one_lookup_per_change),
            cmocka_unit_test(test_refresh),
            cmocka_unit_test(test_failure),
            cmocka_unit_test(test_gone),
            cmocka_unit_test(test_no_lookup),
            cmocka_unit_test(test_bound),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
