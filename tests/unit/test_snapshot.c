/* SPDX-License-Identifier: MIT */
/* The pure parts of a watermark snapshot: values rendered as wal2json
 * renders them, the chunk's rows and the keys the stream touched, the
 * watermark payloads, the re-read guard. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "snapshot/chunk.h"
#include "snapshot/copytext.h"
#include "snapshot/guard.h"
#include "snapshot/snapshot.h"

static char *render(uint32_t oid, const char *text, bool isnull,
                    bool as_strings)
{
        static char out[256];
        struct wc_buf b;

        wc_buf_init(&b);
        assert_int_equal(wc_snap_render_value(&b, oid, text,
                                              text ? strlen(text) : 0, isnull,
                                              as_strings),
                         0);
        assert_true(b.len < sizeof(out));
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
        wc_buf_free(&b);
        return out;
}

/* Each expected text is what wal2json 2.5 sent for the same value (the
 * recorded lines of tests/data/wal2json/types.jsonl and escapes.jsonl). */
static void values(void **state)
{
        (void)state;
        assert_string_equal(render(20, "42", false, false), "42");
        assert_string_equal(render(1700, "1.50", false, false), "1.50");
        assert_string_equal(render(701, "3.25e+10", false, false), "3.25e+10");
        assert_string_equal(render(1700, "NaN", false, false), "null");
        assert_string_equal(render(701, "-Infinity", false, false), "null");
        assert_string_equal(render(700, "Infinity", false, false), "null");
        /* numbers pass as they are, whatever their first byte */
        assert_string_equal(render(20, "-7", false, false), "-7");
        assert_string_equal(render(1700, "-0.5", false, false), "-0.5");
        assert_string_equal(render(1700, "0", false, false), "0");
        assert_string_equal(render(700, "-inf", false, false), "-inf");
        assert_string_equal(render(700, "nan", false, false), "null");
        assert_string_equal(render(700, "infinity", false, false), "null");
        assert_string_equal(render(701, "-", false, false), "-");
        assert_string_equal(render(1700, "1.50", false, true), "\"1.50\"");
        assert_string_equal(render(1700, "NaN", false, true), "\"NaN\"");
        assert_string_equal(render(16, "t", false, false), "true");
        assert_string_equal(render(16, "f", false, false), "false");
        assert_string_equal(render(23, NULL, true, false), "null");
        assert_string_equal(render(25, NULL, true, false), "null");
        assert_string_equal(render(17, "\\x00ff10", false, false),
                            "\"00ff10\"");
        assert_string_equal(
            render(25, "tab\there \"q\" \\ \x01\x1f\x7f", false, false),
            "\"tab\\there \\\"q\\\" \\\\ \\u0001\\u001f\x7f\"");
        assert_string_equal(
            render(25, "\xc3\xa9 \xf0\x9f\x98\x80", false, false),
            "\"\xc3\xa9 \xf0\x9f\x98\x80\"");
        /* a domain over integer, an array of integers: strings */
        assert_string_equal(render(16385, "7", false, false), "\"7\"");
        assert_string_equal(render(1007, "{1,NULL,3}", false, false),
                            "\"{1,NULL,3}\"");
        assert_string_equal(render(3802, "{\"a\": 1}", false, false),
                            "\"{\\\"a\\\": 1}\"");
}

/* A table (b text, a int, v text) with the key (a, b): key order is not
 * table order. */
static struct wc_snap_chunk *two_key_chunk(void)
{
        struct wc_snap_col cols[] = {
            {.name = "b", .type = "text", .type_oid = 25, .key_pos = 2},
            {.name = "a", .type = "integer", .type_oid = 23, .key_pos = 1},
            {.name = "v", .type = "text", .type_oid = 25},
        };
        int err;
        struct wc_snap_chunk *k =
            wc_snap_chunk_new("s-x", "t", cols, 3, false, &err);

        assert_non_null(k);
        assert_int_equal(err, 0);
        assert_int_equal(wc_snap_chunk_nkeys(k), 2);
        assert_int_equal(wc_snap_chunk_key_col(k, 0), 1);
        assert_int_equal(wc_snap_chunk_key_col(k, 1), 0);
        return k;
}

static void add(struct wc_snap_chunk *k, const char *b, const char *a,
                const char *v)
{
        const char *texts[] = {b, a, v};
        size_t lens[] = {strlen(b), strlen(a), v ? strlen(v) : 0};
        bool nulls[] = {false, false, v == NULL};

        assert_int_equal(wc_snap_chunk_add_row(k, texts, lens, nulls, false),
                         0);
}

#define COL(n, v)                                                              \
        {                                                                      \
                .name = (n), .name_len = 1, .value = (v),                      \
                .value_len = (uint32_t)strlen(v)                               \
        }

static struct wc_change change(enum wc_op op, const char *table,
                               const struct walcast_column *cols, uint32_t nc,
                               const struct walcast_column *ident, uint32_t ni)
{
        return (struct wc_change){
            .op = op,
            .schema = "s-x",
            .schema_len = 3,
            .table = table,
            .table_len = strlen(table),
            .columns = {cols, nc},
            .identity = {ident, ni},
        };
}

/* A read row carries its lists' canonical text (what the file sink would
 * write for them, so that it copies them), unless a name or type needs an
 * escape; the key's list in the key's order of the pk (table order). */
static void chunk_lists(void **state)
{
        struct wc_snap_chunk *k = two_key_chunk();
        struct wc_snap_col odd[] = {
            {.name = "we\"ird", .type = "text", .type_oid = 25, .key_pos = 1},
        };
        const char *texts[] = {"x"};
        size_t lens[] = {1};
        bool nulls[] = {false};
        struct wc_change c;
        int err;
        (void)state;

        add(k, "k\"q", "2", NULL);
        add(k, "m", "-3", "\xc3\xa9");
        assert_int_equal(wc_snap_chunk_row(k, 0, &c), 0);
        assert_non_null(c.columns_json.ptr);
        assert_int_equal(c.columns_json.len, strlen(c.columns_json.ptr));
        assert_string_equal(
            c.columns_json.ptr,
            "[{\"name\":\"b\",\"type\":\"text\",\"typeoid\":25,"
            "\"value\":\"k\\\"q\"},{\"name\":\"a\",\"type\":\"integer\","
            "\"typeoid\":23,\"value\":2},{\"name\":\"v\",\"type\":\"text\","
            "\"typeoid\":25,\"value\":null}]");
        assert_memory_equal(c.pk_json.ptr,
                            "[{\"name\":\"b\",\"type\":\"text\",\"typeoid\":"
                            "25},{\"name\":\"a\",\"type\":\"integer\","
                            "\"typeoid\":23}]",
                            c.pk_json.len);
        assert_int_equal(c.pk_json.len, 84);
        assert_int_equal(wc_snap_chunk_row(k, 1, &c), 0);
        assert_memory_equal(c.columns_json.ptr + c.columns_json.len - 41,
                            "\"type\":\"text\",\"typeoid\":25,\"value\":"
                            "\"\xc3\xa9\"}]",
                            41);
        wc_snap_chunk_free(k);

        k = wc_snap_chunk_new("s", "t", odd, 1, false, &err);
        assert_non_null(k);
        assert_int_equal(wc_snap_chunk_add_row(k, texts, lens, nulls, false),
                         0);
        assert_int_equal(wc_snap_chunk_row(k, 0, &c), 0);
        assert_null(c.columns_json.ptr);
        assert_null(c.pk_json.ptr);
        assert_string_equal(c.columns.items[0].name, "we\"ird");
        wc_snap_chunk_free(k);
}

static void chunk_observe(void **state)
{
        struct wc_snap_chunk *k = two_key_chunk();
        struct walcast_column ins[] = {COL("b", "\"k\""), COL("a", "2"),
                                       COL("v", "\"new\"")};
        struct walcast_column upd_new[] = {COL("b", "\"k\""), COL("a", "9"),
                                           COL("v", "\"x\"")};
        struct walcast_column upd_old[] = {COL("b", "\"k\""), COL("a", "3")};
        struct walcast_column same_a[] = {COL("b", "\"q\""), COL("a", "1")};
        struct wc_change c;
        (void)state;

        add(k, "k", "1", "one");
        add(k, "k", "2", NULL);
        add(k, "k", "3", "three");
        add(k, "z", "1", "four");
        assert_int_equal(wc_snap_chunk_rows(k), 4);

        /* another table, and a key that is not in the chunk: nothing */
        c = change(WC_OP_INSERT, "u", ins, 3, NULL, 0);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        c = change(WC_OP_DELETE, "t", NULL, 0, same_a, 2);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 4);

        /* an insert of a key the chunk read (deleted and inserted again
         * between the watermarks) */
        c = change(WC_OP_INSERT, "t", ins, 3, NULL, 0);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 3);

        /* a primary-key change: the old key goes */
        c = change(WC_OP_UPDATE, "t", upd_new, 3, upd_old, 2);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 2);

        /* the rows left, in read order, with the insert's shape */
        {
                const char *want_a[] = {"1", "1"};
                const char *want_v[] = {"\"one\"", "\"four\""};
                size_t n = 0;

                for (size_t i = 0; i < wc_snap_chunk_rows(k); i++) {
                        int r = wc_snap_chunk_row(k, i, &c);
                        if (r == 1)
                                continue;
                        assert_int_equal(r, 0);
                        assert_int_equal(c.op, WC_OP_READ);
                        assert_int_equal(c.columns.count, 3);
                        assert_int_equal(c.pk.count, 2);
                        assert_string_equal(c.pk.items[0].name, "b");
                        assert_int_equal(c.pk.items[0].value_len, 0);
                        assert_string_equal(c.columns.items[2].type, "text");
                        assert_int_equal(c.columns.items[1].type_oid, 23);
                        assert_true(n < 2);
                        assert_memory_equal(c.columns.items[1].value, want_a[n],
                                            1);
                        assert_int_equal(c.columns.items[2].value_len,
                                         strlen(want_v[n]));
                        assert_memory_equal(c.columns.items[2].value, want_v[n],
                                            strlen(want_v[n]));
                        n++;
                }
                assert_int_equal(n, 2);
        }

        /* a change whose row lacks a key column cannot be matched: the
         * chunk gives way entirely (the stream's changes stand) */
        wc_snap_chunk_clear(k);
        add(k, "k", "1", "one");
        c = change(WC_OP_DELETE, "t", NULL, 0, upd_old + 1, 1);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 0);

        /* a truncate empties it; clear starts the next chunk afresh */
        wc_snap_chunk_clear(k);
        add(k, "k", "1", "one");
        assert_int_equal(wc_snap_chunk_rows_left(k), 1);
        c = change(WC_OP_TRUNCATE, "t", NULL, 0, NULL, 0);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 0);
        assert_int_equal(wc_snap_chunk_row(k, 0, &c), 1);
        wc_snap_chunk_clear(k);
        assert_int_equal(wc_snap_chunk_rows(k), 0);
        wc_snap_chunk_free(k);
}

/* Many keys: the set grows, and every touched key is found. */
static void chunk_many(void **state)
{
        struct wc_snap_col cols[] = {
            {.name = "id", .type = "bigint", .type_oid = 20, .key_pos = 1},
        };
        struct walcast_column id = {.name = "id", .name_len = 2};
        struct wc_change c = change(WC_OP_DELETE, "t", NULL, 0, &id, 1);
        char text[32];
        int err;
        struct wc_snap_chunk *k =
            wc_snap_chunk_new("s-x", "t", cols, 1, false, &err);
        (void)state;

        assert_non_null(k);
        for (int i = 0; i < 5000; i++) {
                const char *t = text;
                size_t len = (size_t)snprintf(text, sizeof(text), "%d", i);
                bool null = false;
                assert_int_equal(
                    wc_snap_chunk_add_row(k, &t, &len, &null, false), 0);
        }
        for (int i = 0; i < 5000; i += 3) {
                snprintf(text, sizeof(text), "%d", i);
                id.value = text;
                id.value_len = (uint32_t)strlen(text);
                assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        }
        assert_int_equal(wc_snap_chunk_rows_left(k), 5000 - 1667);
        wc_snap_chunk_free(k);
}

static void chunk_needs_key(void **state)
{
        struct wc_snap_col cols[] = {
            {.name = "x", .type = "integer", .type_oid = 23},
        };
        int err = 0;
        (void)state;

        struct walcast_column x = {
            .name = "x", .name_len = 1, .value = "1", .value_len = 1};
        struct wc_change c = {.op = WC_OP_DELETE,
                              .schema = "s",
                              .schema_len = 1,
                              .table = "nopk",
                              .table_len = 4,
                              .identity = {&x, 1}};
        const char *text = "1";
        size_t len = 1;
        bool null = false;
        struct wc_snap_chunk *k;

        assert_null(wc_snap_chunk_new("s", "nopk", cols, 1, false, &err));
        assert_int_equal(err, -EINVAL);
        /* keyless: whole: read, no key to match, a truncate empties it */
        k = wc_snap_chunk_new("s", "nopk", cols, 1, true, &err);
        assert_non_null(k);
        assert_int_equal(wc_snap_chunk_add_row(k, &text, &len, &null, false),
                         0);
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 1);
        assert_int_equal(wc_snap_chunk_row(k, 0, &c), 0);
        assert_int_equal(c.pk.count, 0);
        c.op = WC_OP_TRUNCATE;
        assert_int_equal(wc_snap_chunk_observe(k, &c), 0);
        assert_int_equal(wc_snap_chunk_rows_left(k), 0);
        wc_snap_chunk_free(k);
}

static void marks(void **state)
{
        struct wc_snap_mark m = {.id = 0xfeedfacecafebeefull,
                                 .chunk = 12,
                                 .high = true},
                            got;
        struct wc_buf b;
        static const char *const bad[] = {
            "",
            "{}",
            "{\"id\":\"feedfacecafebeef\",\"chunk\":1,\"w\":\"mid\"}",
            "{\"id\":\"feedfacecafebeef\",\"chunk\":1,\"w\":\"low\"} ",
            "{\"id\":\"feedfacecafebeef\",\"chunk\":1}",
            "{\"request\":1}",
        };
        (void)state;

        wc_buf_init(&b);
        assert_int_equal(wc_snap_mark_format(&b, &m), 0);
        assert_string_equal(
            b.data,
            "{\"id\":\"feedfacecafebeef\",\"chunk\":12,\"w\":\"high\"}");
        assert_int_equal(wc_snap_mark_parse(b.data, b.len, &got), 0);
        assert_true(got.id == m.id && got.chunk == 12 && got.high);
        wc_buf_reset(&b);
        m.high = false;
        m.chunk = 0;
        assert_int_equal(wc_snap_mark_format(&b, &m), 0);
        assert_int_equal(wc_snap_mark_parse(b.data, b.len, &got), 0);
        assert_true(got.id == m.id && got.chunk == 0 && !got.high);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(
                    wc_snap_mark_parse(bad[i], strlen(bad[i]), &got), -EINVAL);
        wc_buf_free(&b);
}

/* The durable progress: tables (hex, so any name survives), each done,
 * queued, or at its last confirmed key (hex of the NUL-ended texts), with
 * its rows; each worker takes a table not done. */
static void progress_text(void **state)
{
        static const char text[] =
            "# walcast snapshot progress (docs/snapshots.md); written by "
            "walcastd\n"
            /* snap.one: done, 250 rows */
            "table=736e6170.6f6e65 250 done\n"
            /* "a"-b.t": 40 rows, the last key "k", "12", "" */
            "table=2261222d62.7422 40 at 6b0031320000\n"
            /* c.d: not started */
            "table=63.64 0 queued\n"
            /* e.f: 7 rows, read by another worker */
            "table=65.66 7 at 3700\n"
            "request=00000000000000ab\n";
        static const char *const bad[] = {
            "table=736e6170 0 queued\n",
            "table=736e6170.6f6e65\n",
            "table=736e6170.6f6e65 0\n",
            "table=736e6170.6f6e65 x queued\n",
            "table=736e6170.6f6e65 0 maybe\n",
            "request=ab\ntable=736e6170.6f6e65 0 queued\n",
            /* a key that is not NUL-ended texts, or not hex */
            "table=736e6170.6f6e65 0 at 6b\n",
            "table=736e6170.6f6e65 0 at 6x00\n",
            "table=736e6170.6f6e65 0 at \n",
            "table=736e6170.6f6e6 0 queued\n",
            "table=736e6170.6f6e65 0 queued\nwhat=1\n",
            /* the format before workers */
            "table=736e6170.6f6e65 0\nat=0\nrows=0\n",
        };
        struct wc_snapshot_config c = {.dsn = "dbname=x", .workers = 2};
        struct wc_snapshot *s = wc_snapshot_new(&c);
        const char *schema, *table, *st;
        uint64_t rows;
        size_t done, tables;
        struct wc_buf b;
        (void)state;

        assert_non_null(s);
        assert_int_equal(wc_snapshot_workers(s), 2);
        wc_buf_init(&b);
        assert_int_equal(wc_snapshot_load_text(s, text, strlen(text)), 0);
        assert_true(wc_snapshot_running(s));
        wc_snapshot_progress(s, &rows, &done, &tables);
        assert_true(rows == 297 && done == 1 && tables == 4);
        /* the two workers took the first two tables not done; the third
         * waits */
        wc_snapshot_table_at(s, 0, &schema, &table, &rows, &st);
        assert_true(strcmp(schema, "snap") == 0 && strcmp(table, "one") == 0 &&
                    rows == 250 && strcmp(st, "done") == 0);
        wc_snapshot_table_at(s, 1, &schema, &table, &rows, &st);
        assert_true(strcmp(schema, "\"a\"-b") == 0 && rows == 40 &&
                    strcmp(st, "reading") == 0);
        wc_snapshot_table_at(s, 2, &schema, &table, &rows, &st);
        assert_true(rows == 0 && strcmp(st, "reading") == 0);
        wc_snapshot_table_at(s, 3, &schema, &table, &rows, &st);
        assert_true(rows == 7 && strcmp(st, "reading") == 0);
        assert_true(wc_snapshot_needs_step(s, 0) &&
                    wc_snapshot_needs_step(s, 1));
        assert_false(wc_snapshot_needs_step(s, 2));
        assert_int_equal(wc_snapshot_save_text(s, &b), 0);
        assert_string_equal(b.data, text);
        /* the listing still owed is kept too, and only the first worker
         * lists */
        wc_buf_reset(&b);
        assert_int_equal(wc_snapshot_start_all(s), 0);
        assert_true(wc_snapshot_needs_step(s, 0));
        assert_false(wc_snapshot_needs_step(s, 1));
        assert_int_equal(wc_snapshot_save_text(s, &b), 0);
        assert_non_null(strstr(b.data, "list=pending\n"));
        assert_int_equal(wc_snapshot_load_text(s, b.data, b.len), 0);
        assert_true(wc_snapshot_running(s));
        /* every table done: nothing left to do */
        {
                static const char all_done[] = "table=61.62 3 done\n";
                assert_int_equal(
                    wc_snapshot_load_text(s, all_done, strlen(all_done)), 0);
        }
        assert_false(wc_snapshot_running(s));
        assert_false(wc_snapshot_needs_step(s, 0));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(
                    wc_snapshot_load_text(s, bad[i], strlen(bad[i])), -EINVAL);
        wc_buf_free(&b);
        wc_snapshot_free(s);
}

/* The re-read guard: a transaction the stream read before the chunk took
 * keys, invisible to the chunk's SELECT, tears the chunk; nothing else
 * does. */
static void guard(void **state)
{
        struct wc_snap_guard *g = calloc(1, sizeof(*g));

        (void)state;
        assert_non_null(g);
        /* nothing read, no snapshot: never torn */
        assert_false(wc_snap_guard_torn(g));
        wc_snap_guard_saw(g, 700);
        wc_snap_guard_saw(g, 705);
        wc_snap_guard_keys_from_now(g);
        /* 705 still in progress for the SELECT */
        assert_int_equal(wc_snap_guard_set(g, "700:710:705,708"), 0);
        assert_int_equal(g->nxip, 2);
        assert_true(wc_snap_guard_torn(g));
        /* read again: now it sees 705 */
        assert_int_equal(wc_snap_guard_set(g, "706:712:708"), 0);
        assert_false(wc_snap_guard_torn(g));
        /* at or past xmax: invisible */
        assert_int_equal(wc_snap_guard_set(g, "700:705:"), 0);
        assert_int_equal(g->nxip, 0);
        assert_true(wc_snap_guard_torn(g));
        /* a transaction read after the keys were taken does not count
         * (its keys are taken out of the chunk) */
        assert_int_equal(wc_snap_guard_set(g, "706:711:"), 0);
        wc_snap_guard_saw(g, 711);
        assert_false(wc_snap_guard_torn(g));

        /* the bug CI found: the next chunk returns no row, so it has no
         * snapshot; the previous chunk's, which cannot see 711, must not
         * stand in for it (the chunk was read again forever) */
        wc_snap_guard_keys_from_now(g);
        assert_true(wc_snap_guard_torn(g));
        assert_int_equal(wc_snap_guard_set(g, NULL), 0);
        assert_false(wc_snap_guard_torn(g));
        /* nor after a snapshot text that does not parse */
        assert_int_equal(wc_snap_guard_set(g, "706:712:"), 0);
        assert_int_equal(wc_snap_guard_set(g, "706"), -EBADMSG);
        assert_false(wc_snap_guard_torn(g));
        assert_int_equal(wc_snap_guard_set(g, "706:x:"), -EBADMSG);
        assert_int_equal(wc_snap_guard_set(g, ":712:"), -EBADMSG);
        assert_int_equal(wc_snap_guard_set(g, "706:712:7x"), -EBADMSG);
        assert_int_equal(wc_snap_guard_set(g, "706:712:,"), -EBADMSG);
        assert_false(wc_snap_guard_torn(g));

        /* the snapshot's xids carry the epoch; the stream's do not */
        assert_int_equal(wc_snap_guard_set(g, "8589935300:8589935312:"
                                              "8589935301"),
                         0);
        assert_false(wc_snap_guard_torn(g)); /* 700, 705, 711: visible */
        wc_snap_guard_saw(g, 1301);
        wc_snap_guard_keys_from_now(g);
        assert_true(wc_snap_guard_torn(g));
        /* across the 32-bit wrap: 4294967290 precedes xmax 5 + 2^32 */
        wc_snap_guard_free(g);
        memset(g, 0, sizeof(*g));
        wc_snap_guard_saw(g, 4294967290u);
        wc_snap_guard_keys_from_now(g);
        assert_int_equal(wc_snap_guard_set(g, "4294967280:4294967301:"), 0);
        assert_false(wc_snap_guard_torn(g));
        wc_snap_guard_saw(g, 3); /* after the wrap: 2^32 + 3 */
        wc_snap_guard_keys_from_now(g);
        assert_false(wc_snap_guard_torn(g));
        assert_int_equal(wc_snap_guard_set(g, "4294967280:4294967299:"), 0);
        assert_true(wc_snap_guard_torn(g));
        /* no xid (0) and the special ones are never in the way */
        memset(g->ring, 0, sizeof(g->ring));
        wc_snap_guard_keys_from_now(g);
        assert_int_equal(wc_snap_guard_set(g, "2147483700:2147483800:"), 0);
        assert_false(wc_snap_guard_torn(g));

        /* the last WC_SNAP_GUARD_RING transactions before the keys are
         * taken are checked, however many the stream reads after (a
         * writer without pauses once pushed them out of the ring before
         * the chunk's high watermark came) */
        wc_snap_guard_free(g);
        memset(g, 0, sizeof(*g));
        wc_snap_guard_saw(g, 900);
        for (uint32_t i = 0; i < WC_SNAP_GUARD_RING; i++)
                wc_snap_guard_saw(g, 500 + i % 100);
        wc_snap_guard_keys_from_now(g);
        assert_int_equal(wc_snap_guard_set(g, "800:1000:900"), 0);
        assert_false(wc_snap_guard_torn(g)); /* 900 is too old */
        wc_snap_guard_saw(g, 900);
        wc_snap_guard_keys_from_now(g);
        for (uint32_t i = 0; i < 3 * WC_SNAP_GUARD_RING; i++)
                wc_snap_guard_saw(g, 1000 + i);
        assert_true(wc_snap_guard_torn(g));
        wc_snap_guard_free(g);
        free(g);
}

/* Splits a COPY text row (a copy of it: the parser writes in place). */
static int copy_split(const char *row, size_t len, uint32_t n, char *buf,
                      const char **texts, size_t *lens, bool *nulls)
{
        memcpy(buf, row, len);
        return wc_snap_copy_fields(buf, len, n, texts, lens, nulls);
}

#define ROW(s) s, sizeof(s) - 1

/* Rows as COPY ... TO STDOUT writes them (PostgreSQL 15's
 * CopyAttributeOutText), and the escapes COPY FROM reads. */
static void copy_text(void **state)
{
        char buf[256];
        const char *t[8];
        size_t l[8];
        bool nul[8];

        (void)state;
        /* plain fields, an empty text, a NULL in the middle and at the end */
        assert_int_equal(
            copy_split(ROW("1\tabc\t\t\\N\t\\N\n"), 5, buf, t, l, nul), 0);
        assert_string_equal(t[0], "1");
        assert_int_equal(l[0], 1);
        assert_string_equal(t[1], "abc");
        assert_false(nul[1]);
        assert_int_equal(l[2], 0);
        assert_false(nul[2]);
        assert_true(nul[3]);
        assert_true(nul[4]);

        /* every escape COPY TO writes: embedded tab, newline, carriage
         * return, backslash, backspace, form feed, vertical tab */
        assert_int_equal(
            copy_split(ROW("a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh\t\\\\N\n"), 2, buf,
                       t, l, nul),
            0);
        assert_int_equal(l[0], 15);
        assert_memory_equal(t[0], "a\tb\nc\rd\\e\bf\fg\vh", 15);
        /* an escaped backslash before N is the text \N, not NULL */
        assert_false(nul[1]);
        assert_string_equal(t[1], "\\N");

        /* octal: one to three digits; hex: one or two */
        assert_int_equal(copy_split(ROW("\\101\\7\\0123\t\\x41\\x4a2\\xg\n"), 2,
                                    buf, t, l, nul),
                         0);
        assert_int_equal(l[0], 4);
        assert_memory_equal(t[0], "A\a\n3", 4);
        assert_string_equal(t[1], "AJ2xg");

        /* \0 is a NUL inside the text: its length says so */
        assert_int_equal(copy_split(ROW("a\\0b\n"), 1, buf, t, l, nul), 0);
        assert_int_equal(l[0], 3);
        assert_memory_equal(t[0], "a\0b", 3);

        /* any other escaped byte is itself, a tab included; \N inside a
         * longer text is N */
        assert_int_equal(
            copy_split(ROW("\\q\\.\\\t\t\\Nx\n"), 2, buf, t, l, nul), 0);
        assert_string_equal(t[0], "q.\t");
        assert_false(nul[1]);
        assert_string_equal(t[1], "Nx");

        /* UTF-8 passes through byte for byte */
        assert_int_equal(copy_split(ROW("gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\x98"
                                        "\t\xe2\x82\xac\\n\n"),
                                    2, buf, t, l, nul),
                         0);
        assert_string_equal(t[0], "gr\xc3\xbc\xc3\x9f \xf0\x9f\x90\x98");
        assert_string_equal(t[1], "\xe2\x82\xac\n");

        /* a bytea as bytea_output = hex writes it: the backslash doubled */
        assert_int_equal(copy_split(ROW("\\\\x00ff\n"), 1, buf, t, l, nul), 0);
        assert_string_equal(t[0], "\\x00ff");

        /* one field, empty */
        assert_int_equal(copy_split(ROW("\n"), 1, buf, t, l, nul), 0);
        assert_int_equal(l[0], 0);
        assert_false(nul[0]);
}

static void copy_text_bad(void **state)
{
        char buf[256];
        const char *t[8];
        size_t l[8];
        bool nul[8];

        (void)state;
        /* a row cut in the middle: no newline, or cut in an escape */
        assert_int_equal(copy_split(ROW("1\tab"), 2, buf, t, l, nul), -EBADMSG);
        assert_int_equal(copy_split(ROW("1\tab\\"), 2, buf, t, l, nul),
                         -EBADMSG);
        assert_int_equal(copy_split(ROW("1\tab\\\n"), 2, buf, t, l, nul),
                         -EBADMSG);
        assert_int_equal(copy_split("", 0, 1, buf, t, l, nul), -EBADMSG);
        /* too few, too many fields */
        assert_int_equal(copy_split(ROW("1\tab\n"), 3, buf, t, l, nul),
                         -EBADMSG);
        assert_int_equal(copy_split(ROW("1\tab\tc\n"), 2, buf, t, l, nul),
                         -EBADMSG);
        assert_int_equal(copy_split(ROW("1\tab\t\n"), 2, buf, t, l, nul),
                         -EBADMSG);
        /* two rows in one */
        assert_int_equal(copy_split(ROW("1\ta\n2\tb\n"), 2, buf, t, l, nul),
                         -EBADMSG);
        assert_int_equal(copy_split(ROW("1\\N\n"), 1, buf, t, l, nul), 0);
        assert_string_equal(t[0], "1N");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(values),        cmocka_unit_test(chunk_observe),
            cmocka_unit_test(chunk_many),    cmocka_unit_test(chunk_needs_key),
            cmocka_unit_test(marks),         cmocka_unit_test(progress_text),
            cmocka_unit_test(guard),         cmocka_unit_test(copy_text),
            cmocka_unit_test(copy_text_bad), cmocka_unit_test(chunk_lists),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
