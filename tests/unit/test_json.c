/* SPDX-License-Identifier: MIT */
/* JSON string helpers and timestamp parsing/formatting. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* ---- wc_json_append_string ---- */

static void expect_quoted(const char *in, size_t len, const char *want)
{
        struct wc_buf b;

        wc_buf_init(&b);
        assert_int_equal(wc_json_append_string(&b, in, len), 0);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        assert_int_equal(b.data[b.len], '\0');
        wc_buf_free(&b);
}

static void append_plain(void **state)
{
        (void)state;
        expect_quoted("", 0, "\"\"");
        expect_quoted("a", 1, "\"a\"");
        expect_quoted("town6-govikon", 13, "\"town6-govikon\"");
        /* long enough for the eight-bytes-at-a-time path */
        expect_quoted("abcdefghijklmnopqrstuvwxyz0123456789", 36,
                      "\"abcdefghijklmnopqrstuvwxyz0123456789\"");
        /* UTF-8 and DEL pass through */
        expect_quoted("caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f", 12,
                      "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f\"");
}

static void append_escapes(void **state)
{
        (void)state;
        expect_quoted("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
        expect_quoted("a\\b", 3, "\"a\\\\b\"");
        expect_quoted("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
        expect_quoted("\x01\x1f", 2, "\"\\u0001\\u001f\"");
        /* an embedded NUL is data, not the end */
        expect_quoted("a\0b", 3, "\"a\\u0000b\"");
        /* '/' needs no escape */
        expect_quoted("a/b", 3, "\"a/b\"");
        /* escapes at every position of an eight-byte block */
        for (size_t pos = 0; pos < 17; pos++) {
                char in[17], want[64];
                size_t w = 0;

                memset(in, 'x', sizeof(in));
                in[pos] = '"';
                want[w++] = '"';
                for (size_t i = 0; i < sizeof(in); i++) {
                        if (i == pos)
                                want[w++] = '\\';
                        want[w++] = in[i];
                }
                want[w++] = '"';
                want[w] = '\0';
                expect_quoted(in, sizeof(in), want);
        }
}

static void append_appends(void **state)
{
        struct wc_buf b;
        (void)state;

        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_str(&b, "{\"k\":"), 0);
        assert_int_equal(wc_json_append_string(&b, "v\"", 2), 0);
        assert_int_equal(wc_buf_append_char(&b, '}'), 0);
        assert_string_equal(b.data, "{\"k\":\"v\\\"\"}");
        wc_buf_free(&b);
}

static void append_grows(void **state)
{
        /* all escapes: six bytes out for each byte in */
        size_t n = 10000;
        char *in = malloc(n);
        struct wc_buf b;
        (void)state;

        assert_non_null(in);
        memset(in, '\x02', n);
        wc_buf_init(&b);
        assert_int_equal(wc_json_append_string(&b, in, n), 0);
        assert_int_equal(b.len, n * 6 + 2);
        assert_memory_equal(b.data + 1, "\\u0002\\u0002", 12);
        assert_int_equal(b.data[b.len - 1], '"');
        wc_buf_free(&b);
        free(in);
}

/* wc_json_put_string() writes what wc_json_append_string() does, short
 * (a byte at a time) or long (runs of eight), with one or two bytes to
 * escape anywhere, and stays within WC_JSON_STRING_MAX. */
static void put_like_append(void **state)
{
        static const char specials[] = {'"', '\\', '\n', '\x01', 0x1f, '\0'};
        char in[100];
        (void)state;

        for (size_t len = 0; len < sizeof(in); len++) {
                for (size_t pos = 0; pos <= len; pos++) {
                        for (size_t k = 0; k < sizeof(specials); k++) {
                                struct wc_buf want;
                                char out[WC_JSON_STRING_MAX(sizeof(in)) + 1];
                                char *end;

                                memset(in, 'p', len);
                                if (pos < len)
                                        in[pos] = specials[k];
                                /* and a second one near the end */
                                if (len > 40 && pos + 9 < len)
                                        in[len - 9] =
                                            specials[(k + 1) %
                                                     sizeof(specials)];
                                memset(out, '#', sizeof(out));
                                end = wc_json_put_string(out, in, len);
                                assert_true((size_t)(end - out) <=
                                            WC_JSON_STRING_MAX(len));
                                assert_int_equal(end[0], '#');
                                wc_buf_init(&want);
                                assert_int_equal(
                                    wc_json_append_string(&want, in, len), 0);
                                assert_int_equal((size_t)(end - out), want.len);
                                assert_memory_equal(out, want.data, want.len);
                                wc_buf_free(&want);
                        }
                }
        }
}

/* A column's entry in a list's canonical text: up to its value, or a
 * key's whole entry; no typeoid for 0; a name or type that needs an
 * escape has none, and the buffer is left as it was. */
static void append_column(void **state)
{
        struct wc_buf b;
        (void)state;

        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_char(&b, '['), 0);
        assert_int_equal(
            wc_json_append_column(&b, "id", 2, "bigint", 6, 20, true), 0);
        assert_string_equal(
            b.data, "[{\"name\":\"id\",\"type\":\"bigint\",\"typeoid\":20,"
                    "\"value\":");
        wc_buf_reset(&b);
        assert_int_equal(wc_json_append_column(&b, "caf\xc3\xa9", 5,
                                               "town6-x.mood", 12, 4294967295u,
                                               false),
                         0);
        assert_string_equal(
            b.data, "{\"name\":\"caf\xc3\xa9\",\"type\":\"town6-x.mood\","
                    "\"typeoid\":4294967295}");
        /* a quoted type name needs an escape */
        assert_int_equal(
            wc_json_append_column(&b, "v", 1, "\"town6-x\".mood", 14, 1, true),
            -EINVAL);
        wc_buf_reset(&b);
        wc_buf_reset(&b);
        assert_int_equal(wc_json_append_column(&b, "v", 1, "text", 4, 0, false),
                         0);
        assert_string_equal(b.data, "{\"name\":\"v\",\"type\":\"text\"}");
        assert_int_equal(
            wc_json_append_column(&b, "a\nb", 3, "text", 4, 25, true), -EINVAL);
        assert_int_equal(wc_json_append_column(&b, "ab", 2, "t\\", 2, 25, true),
                         -EINVAL);
        assert_int_equal(b.len, strlen("{\"name\":\"v\",\"type\":\"text\"}"));
        wc_buf_free(&b);
}

/* ---- wc_json_unescape_inplace ---- */

/* Unescapes `in` (the body of a JSON string) in a buffer that, like a
 * message, has the closing quote after it. */
static int unescape(const char *in, char *out, size_t *ret_len)
{
        size_t len = strlen(in);

        memcpy(out, in, len);
        out[len] = '"';
        out[len + 1] = 'X'; /* must survive */
        return wc_json_unescape_inplace(out, len, ret_len);
}

static void expect_unescaped(const char *in, const char *want, size_t wantlen)
{
        char buf[256];
        size_t n = 999;

        assert_int_equal(unescape(in, buf, &n), 0);
        assert_int_equal(n, wantlen);
        assert_memory_equal(buf, want, wantlen);
        assert_int_equal(buf[n], '\0');
        assert_int_equal(buf[strlen(in) + 1], 'X');
}

static void unescape_plain(void **state)
{
        (void)state;
        expect_unescaped("", "", 0);
        expect_unescaped("public", "public", 6);
        expect_unescaped("caf\xc3\xa9", "caf\xc3\xa9", 5);
}

static void unescape_simple(void **state)
{
        (void)state;
        expect_unescaped("\\\"", "\"", 1);
        expect_unescaped("\\\\", "\\", 1);
        expect_unescaped("\\/", "/", 1);
        expect_unescaped("\\b\\f\\n\\r\\t", "\b\f\n\r\t", 5);
        expect_unescaped("say \\\"hi\\\"", "say \"hi\"", 8);
        expect_unescaped("back\\\\slash", "back\\slash", 10);
        expect_unescaped("a\\\\\\\"b", "a\\\"b", 4);
}

static void unescape_unicode(void **state)
{
        (void)state;
        expect_unescaped("\\u0041", "A", 1);
        expect_unescaped("\\u0001\\u001F", "\x01\x1f", 2);
        expect_unescaped("caf\\u00e9", "caf\xc3\xa9", 5);
        expect_unescaped("caf\\u00E9", "caf\xc3\xa9", 5);
        expect_unescaped("\\u07ff", "\xdf\xbf", 2);
        expect_unescaped("\\u0800", "\xe0\xa0\x80", 3);
        expect_unescaped("\\u4e2d\\u6587", "\xe4\xb8\xad\xe6\x96\x87", 6);
        expect_unescaped("\\u20ac", "\xe2\x82\xac", 3);
        expect_unescaped("\\uffff", "\xef\xbf\xbf", 3);
        /* surrogate pairs */
        expect_unescaped("\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4);
        expect_unescaped("\\uD83D\\uDE80!", "\xf0\x9f\x9a\x80!", 5);
        expect_unescaped("\\ud800\\udc00", "\xf0\x90\x80\x80", 4);
        expect_unescaped("\\udbff\\udfff", "\xf4\x8f\xbf\xbf", 4);
        /* NUL is a character like any other here */
        expect_unescaped("a\\u0000b", "a\0b", 3);
        expect_unescaped("x\\u00e9\\ud83d\\ude00y\\n",
                         "x\xc3\xa9\xf0\x9f\x98\x80y\n", 9);
}

static void unescape_rejects(void **state)
{
        static const char *const bad[] = {
            "\\",
            "abc\\",
            "\\x",
            "\\a",
            "\\'",
            "\\U0041",
            "\\u",
            "\\u004",
            "\\u004g",
            "\\u00G1",
            "\\ud800",
            "\\ud800x",
            "\\ud800\\u0041",
            "\\ud800\\ud800",
            "\\udc00",
            "\\ude00\\ud83d",
            "\\ud83d\\",
            "\\ud83d\\u",
            "\\ud83d\\ude0",
            "\\ud83d\\n",
            "ok\\u12",
        };
        (void)state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char buf[64];
                size_t n = 12345;

                assert_int_equal(unescape(bad[i], buf, &n), -EBADMSG);
                assert_int_equal(n, 12345);
        }
}

/* ---- wc_time_parse / wc_time_format ---- */

static void expect_time(const char *in, const char *want_rfc3339)
{
        char buf[WC_TIME_STRLEN];
        int64_t us = 0;

        assert_int_equal(wc_time_parse(in, strlen(in), &us), 0);
        assert_string_equal(wc_time_format(us, buf), want_rfc3339);
}

static void time_parses_postgres(void **state)
{
        int64_t us;
        (void)state;

        expect_time("2026-11-25 13:48:23.57043+00",
                    "2026-11-25T13:48:23.570430Z");
        expect_time("2026-11-25 13:48:23+00", "2026-11-25T13:48:23.000000Z");
        expect_time("2026-11-25 13:48:23.5+00", "2026-11-25T13:48:23.500000Z");
        expect_time("2026-11-25 13:48:23.000001+00",
                    "2026-11-25T13:48:23.000001Z");
        expect_time("2026-11-25 13:48:23.999999+00",
                    "2026-11-25T13:48:23.999999Z");
        /* the same instant in the zones recorded in tests/data */
        expect_time("2026-11-25 19:23:26.276923+05:30",
                    "2026-11-25T13:53:26.276923Z");
        expect_time("2026-11-25 19:38:26.276923+05:45",
                    "2026-11-25T13:53:26.276923Z");
        expect_time("2026-11-25 05:53:26.276923-08",
                    "2026-11-25T13:53:26.276923Z");
        /* seconds in the offset: local mean time of old dates */
        expect_time("1900-01-01 00:00:00+00:19:32",
                    "1899-12-31T23:40:28.000000Z");
        expect_time("2026-01-01 00:00:00-00:00:01",
                    "2026-01-01T00:00:01.000000Z");
        /* crossing a day, a month and a year through the offset */
        expect_time("2027-01-01 02:00:00+05", "2026-12-31T21:00:00.000000Z");
        expect_time("2026-12-31 20:00:00-08", "2027-01-01T04:00:00.000000Z");
        /* leap days */
        expect_time("2024-02-29 12:00:00+00", "2024-02-29T12:00:00.000000Z");
        expect_time("2000-02-29 00:00:00+00", "2000-02-29T00:00:00.000000Z");
        expect_time("2024-03-01 00:00:00+01", "2024-02-29T23:00:00.000000Z");
        /* our own output parses back */
        expect_time("2026-11-25T13:48:23.570430Z",
                    "2026-11-25T13:48:23.570430Z");

        assert_int_equal(wc_time_parse("1970-01-01 00:00:00+00", 22, &us), 0);
        assert_true(us == 0);
        assert_int_equal(wc_time_parse("1970-01-01 00:00:01.5+00", 24, &us), 0);
        assert_true(us == 1500000);
        assert_int_equal(
            wc_time_parse("1969-12-31 23:59:59.999999+00", 29, &us), 0);
        assert_true(us == -1);
        assert_int_equal(wc_time_parse("2000-01-01 00:00:00+00", 22, &us), 0);
        assert_true(us == 946684800ll * 1000000);
        assert_int_equal(wc_time_parse("2026-11-25 13:48:23.57043+00", 28, &us),
                         0);
        assert_true(us == 1795614503570430ll);
        /* only len bytes are read */
        assert_int_equal(
            wc_time_parse("1970-01-01 00:00:00+00garbage", 22, &us), 0);
        assert_true(us == 0);
}

static void time_rejects_garbage(void **state)
{
        static const char *const bad[] = {
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25 13:48:23",
            "2026-11-25 13:48:23.5",
            "2026-11-25 13:48:23.+00",
            "2026-11-25 13:48:23.1234567+00",
            "2026-11-25 13:48+00",
            "2026-11-25  13:48:23+00",
            "2026-11-25 13:48:23 +00",
            "2026-11-25 13:48:23+00 ",
            " 2026-11-25 13:48:23+00",
            "2026-11-25 13:48:23+0",
            "2026-11-25 13:48:23+000",
            "2026-11-25 13:48:23+0530",
            "2026-11-25 13:48:23+05:3",
            "2026-11-25 13:48:23+05:30:1",
            "2026-11-25 13:48:23+05:30:15:00",
            "2026-11-25 13:48:23+168",
            "2026-11-25 13:48:23+05:60",
            "2026-11-25 13:48:23~00",
            "2026-11-25 13:48:23z",
            "2026-13-01 00:00:00+00",
            "2026-00-01 00:00:00+00",
            "2026-11-00 00:00:00+00",
            "2026-11-31 00:00:00+00",
            "2026-02-29 00:00:00+00",
            "1900-02-29 00:00:00+00",
            "2026-11-25 24:00:00+00",
            "2026-11-25 23:60:00+00",
            "2026-11-25 23:59:60+00",
            "26-11-25 13:48:23+00",
            "0000-01-01 00:00:00+00",
            "1234567-01-01 00:00:00+00",
            "2026/11/25 13:48:23+00",
            "2026-1-25 13:48:23+00",
            "2026-11-25 1:48:23+00",
            "2026-11-25 13:48:23.57043+00 BC",
            "infinity",
            "-infinity",
            "+2026-11-25 13:48:23+00",
            "2026-11-25 13:48:23.-1+00",
        };
        (void)state;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int64_t us = 77;

                assert_int_equal(wc_time_parse(bad[i], strlen(bad[i]), &us),
                                 -EINVAL);
                assert_true(us == 77);
        }
        assert_int_equal(wc_time_parse(NULL, 0, &(int64_t){0}), -EINVAL);
        /* a cut copy of a valid text is not valid */
        assert_int_equal(
            wc_time_parse("2026-11-25 13:48:23+00", 21, &(int64_t){0}),
            -EINVAL);
}

static void time_big_years(void **state)
{
        char buf[WC_TIME_STRLEN];
        int64_t us;
        (void)state;

        /* PostgreSQL prints five and six digit years as they are */
        assert_int_equal(wc_time_parse("10000-01-01 00:00:00+00", 23, &us), 0);
        assert_true(us == 253402300800ll * 1000000);
        /* PostgreSQL's last year is out of int64 microseconds from 1970 */
        assert_int_equal(
            wc_time_parse("294276-12-31 23:59:59.999999+00", 31, &us), -EINVAL);
        assert_int_equal(
            wc_time_parse("200000-12-31 23:59:59.999999+00", 31, &us), 0);
        /* RFC 3339 cannot say them: formatting clamps */
        assert_string_equal(wc_time_format(us, buf),
                            "9999-12-31T23:59:59.999999Z");
        assert_int_equal(wc_time_parse("0001-01-01 00:00:00+00", 22, &us), 0);
        assert_string_equal(wc_time_format(us, buf),
                            "0001-01-01T00:00:00.000000Z");
}

static void time_formats(void **state)
{
        char buf[WC_TIME_STRLEN];
        (void)state;

        assert_string_equal(wc_time_format(0, buf),
                            "1970-01-01T00:00:00.000000Z");
        assert_ptr_equal(wc_time_format(0, buf), buf);
        assert_string_equal(wc_time_format(1, buf),
                            "1970-01-01T00:00:00.000001Z");
        assert_string_equal(wc_time_format(-1, buf),
                            "1969-12-31T23:59:59.999999Z");
        assert_string_equal(wc_time_format(-1000000, buf),
                            "1969-12-31T23:59:59.000000Z");
        assert_string_equal(wc_time_format(-86400ll * 1000000, buf),
                            "1969-12-31T00:00:00.000000Z");
        assert_string_equal(wc_time_format(951782400ll * 1000000, buf),
                            "2000-02-29T00:00:00.000000Z");
        assert_string_equal(wc_time_format(1795614503570430ll, buf),
                            "2026-11-25T13:48:23.570430Z");
        assert_int_equal(strlen(buf), WC_TIME_STRLEN - 1);
        /* before year 0 and past 9999: clamped, never a malformed text */
        assert_string_equal(wc_time_format(INT64_MIN, buf),
                            "0000-01-01T00:00:00.000000Z");
        assert_string_equal(wc_time_format(INT64_MAX, buf),
                            "9999-12-31T23:59:59.999999Z");
}

/* Every day from 1600 to 2400, at an odd time of day: format, parse back,
 * and check the calendar against a day counter that knows nothing but
 * month lengths. */
static void time_round_trips(void **state)
{
        static const int dim[12] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
        int64_t day = -135140; /* 1600-01-01 relative to 1970-01-01 */
        (void)state;

        for (int y = 1600; y <= 2400; y++) {
                bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

                for (int m = 1; m <= 12; m++) {
                        int days = dim[m - 1] + (m == 2 && leap);

                        for (int d = 1; d <= days; d++, day++) {
                                int64_t us =
                                    day * 86400000000ll +
                                    45296789012ll; /* 12:34:56.789012 */
                                char buf[WC_TIME_STRLEN], want[40];
                                int64_t back;

                                snprintf(want, sizeof(want),
                                         "%04d-%02d-%02dT12:34:56.789012Z", y,
                                         m, d);
                                assert_string_equal(wc_time_format(us, buf),
                                                    want);
                                assert_int_equal(
                                    wc_time_parse(buf, strlen(buf), &back), 0);
                                assert_true(back == us);
                        }
                }
        }
}

/* The writers into reserved memory match the appending ones, byte for
 * byte, for every byte value and at the bounds they promise. */
static void put_matches_append(void **state)
{
        char all[256], out[WC_JSON_STRING_MAX(256)], num[WC_UINT_MAX_DIGITS];
        struct wc_buf b;
        char *end;

        (void)state;
        for (int i = 0; i < 256; i++)
                all[i] = (char)i;
        wc_buf_init(&b);
        assert_int_equal(wc_json_append_string(&b, all, sizeof(all)), 0);
        end = wc_json_put_string(out, all, sizeof(all));
        assert_int_equal((size_t)(end - out), b.len);
        assert_memory_equal(out, b.data, b.len);

        /* the worst case is what the bound says */
        memset(all, 1, sizeof(all));
        end = wc_json_put_string(out, all, sizeof(all));
        assert_int_equal((size_t)(end - out), WC_JSON_STRING_MAX(256));

        wc_buf_reset(&b);
        assert_int_equal(wc_buf_append_uint(&b, UINT64_MAX), 0);
        end = wc_put_uint(num, UINT64_MAX);
        assert_int_equal((size_t)(end - num), WC_UINT_MAX_DIGITS);
        assert_memory_equal(num, "18446744073709551615", WC_UINT_MAX_DIGITS);
        assert_string_equal(b.data, "18446744073709551615");
        end = wc_put_uint(num, 0);
        assert_int_equal(end - num, 1);
        assert_int_equal(num[0], '0');
        wc_buf_free(&b);
}

/* every length and every digit pair, against printf */
static void put_uint_matches_printf(void **state)
{
        char got[WC_UINT_MAX_DIGITS + 1], want[32];
        uint64_t x = 0x9e3779b97f4a7c15u;
        (void)state;

        for (uint64_t v = 0; v < 100000; v++) {
                *wc_put_uint(got, v) = '\0';
                snprintf(want, sizeof(want), "%" PRIu64, v);
                assert_string_equal(got, want);
        }
        for (uint64_t p = 1; p <= UINT64_MAX / 10; p *= 10) {
                uint64_t vs[] = {p - 1, p, p + 1, p * 10 - 1, p * 9 + 99};

                for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
                        *wc_put_uint(got, vs[i]) = '\0';
                        snprintf(want, sizeof(want), "%" PRIu64, vs[i]);
                        assert_string_equal(got, want);
                }
        }
        for (int i = 0; i < 100000; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *wc_put_uint(got, x >> (i % 64)) = '\0';
                snprintf(want, sizeof(want), "%" PRIu64, x >> (i % 64));
                assert_string_equal(got, want);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(append_plain),
            cmocka_unit_test(append_escapes),
            cmocka_unit_test(append_appends),
            cmocka_unit_test(put_matches_append),
            cmocka_unit_test(put_uint_matches_printf),
            cmocka_unit_test(append_grows),
            cmocka_unit_test(put_like_append),
            cmocka_unit_test(append_column),
            cmocka_unit_test(unescape_plain),
            cmocka_unit_test(unescape_simple),
            cmocka_unit_test(unescape_unicode),
            cmocka_unit_test(unescape_rejects),
            cmocka_unit_test(time_parses_postgres),
            cmocka_unit_test(time_rejects_garbage),
            cmocka_unit_test(time_big_years),
            cmocka_unit_test(time_formats),
            cmocka_unit_test(time_round_trips),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
