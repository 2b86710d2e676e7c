/* SPDX-License-Identifier: MIT */
/* LSN parse/format, the byte buffer, op names and schema splitting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/tablemap.h"

static void lsn_round_trips(void **state)
{
        static const char *const texts[] = {
            "0/0", "0/1",       "16/B374D848", "FFFFFFFF/FFFFFFFF",
            "1/0", "0/1547700", "A/B",
        };
        static const wc_lsn values[] = {
            0,          1,         0x16B374D848ull,    UINT64_MAX,
            1ull << 32, 0x1547700, 0xAull << 32 | 0xB,
        };
        char buf[WC_LSN_STRLEN];
        (void)state;

        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                wc_lsn lsn = 42;
                assert_int_equal(wc_lsn_parse(texts[i], &lsn), 0);
                assert_true(lsn == values[i]);
                assert_string_equal(wc_lsn_format(lsn, buf), texts[i]);
        }
        /* lower case is accepted, upper case is written */
        wc_lsn lsn;
        assert_int_equal(wc_lsn_parse("16/b374d848", &lsn), 0);
        assert_string_equal(wc_lsn_format(lsn, buf), "16/B374D848");
        /* values spread over the whole 64-bit range survive format then
         * parse */
        uint64_t v = 1;
        for (int i = 0; i < 10000;
             i++, v = v * 6364136223846793005ull + 1442695040888963407ull) {
                wc_lsn back;
                assert_int_equal(wc_lsn_parse(wc_lsn_format(v, buf), &back), 0);
                assert_true(back == v);
        }
}

/* The hand-written formatter writes exactly what "%X/%X" writes, for
 * halves of every length from 1 to 8 digits. */
static void lsn_format_matches_printf(void **state)
{
        char buf[WC_LSN_STRLEN], want[WC_LSN_STRLEN + 8];
        uint64_t v = 7;
        (void)state;

        for (int i = 0; i < 20000;
             i++, v = v * 6364136223846793005ull + 1442695040888963407ull) {
                /* shift the halves so that short ones are common too */
                wc_lsn lsn = ((v >> 32) >> (i % 33)) << 32 |
                             ((v & 0xffffffffu) >> ((i / 33) % 33));
                size_t n;

                snprintf(want, sizeof(want), "%X/%X", (unsigned)(lsn >> 32),
                         (unsigned)(lsn & 0xffffffffu));
                n = wc_lsn_format_len(lsn, buf);
                assert_string_equal(buf, want);
                assert_int_equal(n, strlen(want));
        }
}

static void lsn_page_floor(void **state)
{
        const uint64_t seg = 16 << 20;
        const uint32_t blk = 8192;
        static const struct {
                wc_lsn in, out;
        } cases[] = {
            /* past a page's short header, or inside it: its start */
            {0x16B374000 + 8192 * 3 + 24, 0x16B374000 + 8192 * 3},
            {0x16B374000 + 8192 * 3 + 8, 0x16B374000 + 8192 * 3},
            {0x16B374000 + 8192 * 3, 0x16B374000 + 8192 * 3},
            /* a record's position on the page: as it is */
            {0x16B374000 + 8192 * 3 + 32, 0x16B374000 + 8192 * 3 + 32},
            {0x16B374000 + 8192 * 3 + 8184, 0x16B374000 + 8192 * 3 + 8184},
            /* a segment's first page has the long header */
            {(wc_lsn)5 * seg + 40, (wc_lsn)5 * seg},
            {(wc_lsn)5 * seg + 24, (wc_lsn)5 * seg},
            {(wc_lsn)5 * seg + 48, (wc_lsn)5 * seg + 48},
            /* where the next page is the next segment's */
            {(wc_lsn)6 * seg - 8, (wc_lsn)6 * seg - 8},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_true(wc_lsn_page_floor(cases[i].in, blk, seg) ==
                            cases[i].out);
        /* other sizes: the server's, whatever they are */
        assert_true(wc_lsn_page_floor((wc_lsn)64 << 20 | 24, 32768,
                                      (uint64_t)64 << 20) == (wc_lsn)64 << 20);
        assert_true(wc_lsn_page_floor(((wc_lsn)16 << 20) + 8192 + 24, 32768,
                                      (uint64_t)64 << 20) ==
                    ((wc_lsn)16 << 20) + 8192 + 24);
        /* sizes not known: nothing moves */
        assert_true(wc_lsn_page_floor(8192 + 24, 0, seg) == 8192 + 24);
        assert_true(wc_lsn_page_floor(8192 + 24, blk, 0) == 8192 + 24);
}

static void lsn_rejects_garbage(void **state)
{
        static const char *const bad[] = {
            "",      "/",           "0/",          "/0",    "0",
            "0//0",  "g/0",         "0/-1",        " 0/1",  "0/1 ",
            "1/2/3", "123456789/0", "0/123456789", "0x1/2",
        };
        (void)state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                wc_lsn lsn = 7;
                assert_int_equal(wc_lsn_parse(bad[i], &lsn), -EINVAL);
                assert_true(lsn == 7); /* untouched on failure */
        }
        assert_int_equal(wc_lsn_parse(NULL, &(wc_lsn){0}), -EINVAL);
        /* _n stops at the length given */
        wc_lsn lsn;
        assert_int_equal(wc_lsn_parse_n("1/2\"junk", 3, &lsn), 0);
        assert_true(lsn == ((1ull << 32) | 2));
}

static void buf_grows_and_formats(void **state)
{
        struct wc_buf b;
        (void)state;

        wc_buf_init(&b);
        for (int i = 0; i < 10000; i++)
                assert_int_equal(wc_buf_append_char(&b, (char)('a' + i % 26)),
                                 0);
        assert_int_equal(b.len, 10000);
        assert_int_equal(b.data[b.len], '\0');
        assert_int_equal(b.data[26], 'a');
        wc_buf_reset(&b);
        assert_int_equal(wc_buf_printf(&b, "%s-%d", "x", 42), 0);
        assert_int_equal(wc_buf_append_uint(&b, 0), 0);
        assert_int_equal(wc_buf_append_char(&b, ' '), 0);
        assert_int_equal(wc_buf_append_uint(&b, UINT64_MAX), 0);
        assert_string_equal(b.data, "x-420 18446744073709551615");
        wc_buf_free(&b);
        wc_buf_free(&b); /* twice is fine */
        wc_buf_free(NULL);
}

/* RFC 4648's test vectors, and every byte value. */
static void base64_vectors(void **state)
{
        static const char *const want[] = {
            "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
        unsigned char all[256];
        char out[400], *o;

        (void)state;
        for (size_t n = 0; n <= 6; n++) {
                o = wc_base64_put(out, (const unsigned char *)"foobar", n);
                assert_int_equal((size_t)(o - out), WC_BASE64_LEN(n));
                *o = '\0';
                assert_string_equal(out, want[n]);
        }
        for (size_t i = 0; i < 256; i++)
                all[i] = (unsigned char)i;
        o = wc_base64_put(out, all, 3);
        *o = '\0';
        assert_string_equal(out, "AAEC");
        o = wc_base64_put(out, all + 250, 6);
        *o = '\0';
        assert_string_equal(out, "+vv8/f7/");
        assert_int_equal((size_t)(wc_base64_put(out, all, 256) - out),
                         WC_BASE64_LEN(256));
}

static void op_names(void **state)
{
        (void)state;
        for (int op = 0; op < WC_OP__COUNT; op++) {
                enum wc_op back;
                assert_non_null(wc_op_name((enum wc_op)op));
                assert_int_equal(wc_op_parse(wc_op_name((enum wc_op)op), &back),
                                 0);
                assert_int_equal(back, op);
        }
        assert_null(wc_op_name(WC_OP__COUNT));
        assert_int_equal(wc_op_parse("upsert", &(enum wc_op){0}), -EINVAL);
        assert_string_equal(wc_op_name(WC_OP_TRUNCATE), "truncate");
}

static void schema_split(void **state)
{
        struct wc_str ns, tenant;
        (void)state;

        wc_schema_split("town6-govikon", 13, &ns, &tenant);
        assert_int_equal(ns.len, 5);
        assert_memory_equal(ns.ptr, "town6", 5);
        assert_int_equal(tenant.len, 7);
        assert_memory_equal(tenant.ptr, "govikon", 7);

        /* only the first '-' splits */
        wc_schema_split("org-acme-archive", 16, &ns, &tenant);
        assert_int_equal(ns.len, 3);
        assert_int_equal(tenant.len, 12);
        assert_memory_equal(tenant.ptr, "acme-archive", 12);

        wc_schema_split("public", 6, &ns, &tenant);
        assert_int_equal(ns.len, 6);
        assert_int_equal(tenant.len, 0);

        wc_schema_split("-x", 2, &ns, &tenant);
        assert_int_equal(ns.len, 0);
        assert_int_equal(tenant.len, 1);
}

/* Names of every length around the hash's eight-byte words, and pairs
 * that are the same bytes split differently. */
static void tablemap_finds_what_it_holds(void **state)
{
        static const char *const names[] = {
            "",
            "a",
            "ab",
            "abc",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "bcdefghi",
            "town6-govikon",
            "town6-hinwil",
            "abcdefghabcdefgh",
            "abcdefghabcdefghX",
            "c",
            "bc",
        };
        size_t n = sizeof(names) / sizeof(names[0]);
        struct wc_tablemap *m = wc_tablemap_new(10000, NULL);
        uintptr_t v = 1;

        (void)state;
        assert_non_null(m);
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        const char *s = names[i], *t = names[j];

                        assert_null(
                            wc_tablemap_get(m, s, strlen(s), t, strlen(t)));
                        assert_int_equal(wc_tablemap_put(m, s, strlen(s), t,
                                                         strlen(t),
                                                         (void *)v++),
                                         0);
                }
        assert_int_equal(wc_tablemap_count(m), n * n);
        v = 1;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        const char *s = names[i], *t = names[j];

                        assert_ptr_equal(
                            wc_tablemap_get(m, s, strlen(s), t, strlen(t)),
                            (void *)v++);
                }
        /* "ab"."c" is not "a"."bc"; a prefix is not the name */
        assert_ptr_not_equal(wc_tablemap_get(m, "ab", 2, "c", 1),
                             wc_tablemap_get(m, "a", 1, "bc", 2));
        assert_null(wc_tablemap_get(m, "abcdefgh", 8, "abcdefg", 6));
        assert_null(wc_tablemap_get(m, "x", 1, "a", 1));
        wc_tablemap_clear(m);
        assert_int_equal(wc_tablemap_count(m), 0);
        assert_null(wc_tablemap_get(m, "a", 1, "a", 1));
        wc_tablemap_free(m);
}

/* At its limit the map empties itself before the next insertion. */
static void tablemap_stays_bounded(void **state)
{
        struct wc_tablemap *m = wc_tablemap_new(100, NULL);
        char t[32];

        (void)state;
        assert_non_null(m);
        for (int i = 0; i < 1000; i++) {
                int len = snprintf(t, sizeof(t), "t%d", i);

                assert_int_equal(
                    wc_tablemap_put(m, "s", 1, t, (size_t)len, (void *)1), 0);
                assert_true(wc_tablemap_count(m) <= 100);
                assert_non_null(wc_tablemap_get(m, "s", 1, t, (size_t)len));
        }
        wc_tablemap_free(m);
}

/* ---- UTC offsets in timestamps ---- */

static void time_offset(const char *in, const char *want_rfc3339)
{
        char buf[WC_TIME_STRLEN];
        int64_t us = 0;

        if (wc_time_parse(in, strlen(in), &us) != 0)
                fail_msg("\"%s\" does not parse", in);
        assert_string_equal(wc_time_format(us, buf), want_rfc3339);
}

/*
 * Every offset PostgreSQL prints with DateStyle ISO, as it printed them
 * (SET TimeZone = ...; SELECT now()::text, '1900-01-01 00:00 UTC'::...):
 * POSIX zones up to a week less one hour either way, with minutes, and
 * local mean time of old dates with seconds.
 */
static void time_parses_every_offset(void **state)
{
        (void)state;

        /* TimeZone 'UTC-16', 'UTC-24', 'UTC-25' */
        time_offset("2026-12-08 07:04:39.200743+16",
                    "2026-12-07T15:04:39.200743Z");
        time_offset("2026-12-08 15:04:39.230997+24",
                    "2026-12-07T15:04:39.230997Z");
        time_offset("2026-12-08 16:04:39.260348+25",
                    "2026-12-07T15:04:39.260348Z");
        /* 'UTC-100:30', 'UTC-167', 'UTC+167', 'UTC-167:59', 'UTC+167:59' */
        time_offset("2026-12-11 19:34:49.706765+100:30",
                    "2026-12-07T15:04:49.706765Z");
        time_offset("2026-12-14 14:04:39.288625+167",
                    "2026-12-07T15:04:39.288625Z");
        time_offset("2026-11-30 16:04:39.316001-167",
                    "2026-12-07T15:04:39.316001Z");
        time_offset("2026-12-14 15:03:49.637088+167:59",
                    "2026-12-07T15:04:49.637088Z");
        time_offset("2026-11-30 15:05:49.664452-167:59",
                    "2026-12-07T15:04:49.664452Z");
        /* 'America/St_Johns' now and before 1935, 'Africa/Monrovia',
         * 'Asia/Kolkata' in 1900, 'Pacific/Kiritimati' */
        time_offset("2026-12-07 11:34:39.402788-03:30",
                    "2026-12-07T15:04:39.402788Z");
        time_offset("1899-12-31 20:29:08-03:30:52",
                    "1900-01-01T00:00:00.000000Z");
        time_offset("1899-12-31 23:16:52-00:43:08",
                    "1900-01-01T00:00:00.000000Z");
        time_offset("1900-01-01 05:21:10+05:21:10",
                    "1900-01-01T00:00:00.000000Z");
        time_offset("2026-12-08 05:04:39.523757+14",
                    "2026-12-07T15:04:39.523757Z");

        /* what PostgreSQL does not print */
        static const char *const bad[] = {
            "2026-12-08 07:04:39+168",     "2026-12-08 07:04:39-168",
            "2026-12-08 07:04:39+999",     "2026-12-08 07:04:39+099",
            "2026-12-08 07:04:39+016",     "2026-12-08 07:04:39+1670",
            "2026-12-08 07:04:39+167:60",  "2026-12-08 07:04:39+16:00:60",
            "2026-12-08 07:04:39+1",       "2026-12-08 07:04:39+167:5",
            "2026-12-08 07:04:39+16:30:1", "2026-12-08 07:04:39+100:",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t us = 77;

                if (wc_time_parse(bad[i], strlen(bad[i]), &us) != -EINVAL)
                        fail_msg("\"%s\" parses", bad[i]);
                assert_true(us == 77);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(lsn_round_trips),
            cmocka_unit_test(lsn_page_floor),
            cmocka_unit_test(lsn_rejects_garbage),
            cmocka_unit_test(lsn_format_matches_printf),
            cmocka_unit_test(buf_grows_and_formats),
            cmocka_unit_test(op_names),
            cmocka_unit_test(base64_vectors),
            cmocka_unit_test(schema_split),
            cmocka_unit_test(tablemap_finds_what_it_holds),
            cmocka_unit_test(tablemap_stays_bounded),
            cmocka_unit_test(time_parses_every_offset),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
