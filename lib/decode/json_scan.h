/* SPDX-License-Identifier: MIT */
/*
 * A JSON scanner for decoders: one pass over a message's bytes that
 * checks them against RFC 8259 and hands the caller views into them,
 * without building a tree.  It knows no format: a decoder for an output
 * plugin that writes JSON walks its own shape with these pieces and
 * decodes what it keeps.
 *
 * Every byte is looked at, strings included (no raw control characters,
 * escapes as RFC 8259 has them, surrogates in pairs, valid UTF-8).
 * Strings are scanned 16 (SSE2) or 8 bytes at a time for a quote, a
 * backslash, a control character or a byte >= 0x80; only those stop the
 * scan, and UTF-8 is validated only where a byte >= 0x80 appears; long
 * strings 32 bytes at a time where the CPU has AVX2.  Nested values are
 * checked by a loop with an explicit stack, so their depth costs no
 * recursion.
 *
 * The pieces every byte or token goes through are inline here, so that a
 * decoder's loop compiles as one; what is rare (errors, nested values,
 * AVX2) is in json_scan.c.  Errors are -EBADMSG (or -ENOMEM) with a
 * message in js->errbuf naming the format, the position and an excerpt:
 *   could not decode <format> message at 0/1547700: "columns" is not an
 *   array: {"action":"I","xid":728,...
 * With errbuf NULL nothing is written.
 */
#ifndef WALCAST_JSON_SCAN_H
#define WALCAST_JSON_SCAN_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* Long strings are scanned with AVX2 where the CPU has it. */
#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_SCAN 1
#include <immintrin.h>
#endif

#include "core/core.h"

/* How much of a message an error quotes. */
#define WC_JSCAN_EXCERPT_MAX 80

#define WC_JSCAN_ONES  0x0101010101010101ull
#define WC_JSCAN_HIGHS 0x8080808080808080ull

/* For the few helpers every byte or token goes through. */
#define HOT __attribute__((always_inline)) static inline

/* The scanner's state: set up by the decoder for each message. */
struct wc_jscan {
        const char *format; /* for errors: "could not decode <format> ..." */
        /* closing brackets of the nested value being checked */
        char *nest;
        size_t nest_cap;
        bool avx2; /* scan long strings with wc_jscan_avx2() */
        /* wc_jscan_string(): bytes that are not UTF-8 are let through (a
         * message's content), and saw_bytes says there were some */
        bool bytes_ok, saw_bytes;

        /* Per message. */
        char *msg;
        char *p; /* the parser's position */
        char *end;
        size_t len;
        wc_lsn at;
        char *errbuf;
        size_t errlen;
        /* what errors quote: the start of the message, never modified */
        const unsigned char *excerpt;
        size_t excerpt_len;
};

enum wc_jscan_prim {
        WC_JSCAN_NUMBER,
        WC_JSCAN_TRUE,
        WC_JSCAN_FALSE,
        WC_JSCAN_NULL
};

/* Sets js up for a decoder of `format` (a static string).  0 or -ENOMEM. */
int wc_jscan_init(struct wc_jscan *js, const char *format);
/* Frees what wc_jscan_init() allocated. */
void wc_jscan_destroy(struct wc_jscan *js);
/* With on false, long strings are scanned 16 bytes at a time even where
 * the CPU has AVX2 (for tests, which compare the two). */
void wc_jscan_set_avx2(struct wc_jscan *js, bool on);

/* Writes the error (see above) and returns -EBADMSG. */
__attribute__((format(printf, 2, 3))) int wc_jscan_fail(struct wc_jscan *d,
                                                        const char *fmt, ...);
/* "out of memory", -ENOMEM. */
int wc_jscan_nomem(struct wc_jscan *d);
/* "truncated JSON", -EBADMSG. */
int wc_jscan_truncated(struct wc_jscan *d);
/* What p, where the grammar expected something else, makes of it. */
int wc_jscan_bad_json(struct wc_jscan *d, const char *p);
/* A string from the message for an error (a key, an action) in out:
 * at most 32 bytes of it, made printable. */
const char *wc_jscan_quote(char *out, size_t room, const char *p, size_t n);
void wc_jscan_skip_ws_slow(struct wc_jscan *d);
/* An object or array at d->p, with everything nested in it; d->p moves
 * past its closing bracket. */
int wc_jscan_nested_value(struct wc_jscan *d);
int wc_jscan_uint32_slow(struct wc_jscan *d, const char *what, uint32_t *ret);
#if HAVE_AVX2_SCAN
const unsigned char *wc_jscan_avx2(const unsigned char *q,
                                   const unsigned char *end, int *escaped);
#endif

/* Length of the valid UTF-8 sequence at p (at most n bytes available), 0
 * when there is none.  Overlong forms, surrogates and code points past
 * U+10FFFF are invalid. */
static inline size_t wc_jscan_utf8_seq(const unsigned char *p, size_t n)
{
        unsigned char c = p[0];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t need;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf) {
                need = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
                need = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                need = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else {
                return 0;
        }
        if (n < need || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < need; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return need;
}

static inline bool wc_jscan_is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool wc_jscan_is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Output plugins write no whitespace: one compare when there is none. */
HOT void wc_jscan_skip_ws(struct wc_jscan *d)
{
        if (d->p < d->end && (unsigned char)*d->p > ' ')
                return;
        wc_jscan_skip_ws_slow(d);
}

static inline size_t wc_jscan_offset(const struct wc_jscan *d, const char *p)
{
        return (size_t)(p - d->msg);
}

static inline int wc_jscan_hexdigit(unsigned char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* \uXXXX at p (n bytes left) as a code unit, -1 when it is not one. */
static inline long wc_jscan_u_escape(const unsigned char *p, size_t n)
{
        long v = 0;

        if (n < 6 || p[0] != '\\' || p[1] != 'u')
                return -1;
        for (int i = 2; i < 6; i++) {
                int h = wc_jscan_hexdigit(p[i]);

                if (h < 0)
                        return -1;
                v = v << 4 | h;
        }
        return v;
}

static inline uint64_t wc_jscan_has_less(uint64_t x, uint64_t n)
{
        return (x - WC_JSCAN_ONES * n) & ~x & WC_JSCAN_HIGHS;
}

static inline uint64_t wc_jscan_has_byte(uint64_t x, uint64_t c)
{
        return wc_jscan_has_less(x ^ (WC_JSCAN_ONES * c), 1);
}

/* What may follow a backslash, but 'u'. */
static const bool wc_jscan_short_escape[256] = {
    ['"'] = true, ['\\'] = true, ['/'] = true, ['b'] = true,
    ['f'] = true, ['n'] = true,  ['r'] = true, ['t'] = true,
};

static inline bool wc_jscan_plain_byte(unsigned char c)
{
        return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * The string whose opening quote is at d->p: checked, and d->p moved past
 * its closing quote.  *ret_body and *ret_len are the bytes between the
 * quotes, as sent.  Returns 1 when the string has escapes, 0 when it is
 * plain, or an error.
 */
HOT int wc_jscan_string(struct wc_jscan *d, char **ret_body, size_t *ret_len)
{
        char *open = d->p;
        const unsigned char *q = (const unsigned char *)open + 1;
        const unsigned char *end = (const unsigned char *)d->end;
        int escaped = 0;

        for (;;) {
                unsigned char c;

#if defined(__SSE2__)
                /* Sixteen bytes at a time: a signed compare with 0x20
                 * catches both control characters and bytes >= 0x80. */
                while (end - q >= 16) {
                        __m128i x = _mm_loadu_si128((const __m128i *)q);
                        __m128i m = _mm_or_si128(
                            _mm_or_si128(
                                _mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                            _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
                        unsigned mask = (unsigned)_mm_movemask_epi8(m);

                        /* two-byte escapes (a JSON document in a text
                         * column is full of \") are stepped over here,
                         * without leaving the block */
                        while (mask) {
                                unsigned i = (unsigned)__builtin_ctz(mask);

                                if (q[i] != '\\' || end - (q + i) < 2 ||
                                    !wc_jscan_short_escape[q[i + 1]]) {
                                        q += i;
                                        goto special;
                                }
                                escaped = 1;
                                if (i >= 14) {
                                        q += i + 2;
                                        goto next_block;
                                }
                                mask &= ~((4u << i) - 1);
                        }
                        q += 16;
#if HAVE_AVX2_SCAN
                        /* sixteen plain bytes: perhaps a long string */
                        if (d->avx2 && end - q >= 64) {
                                q = wc_jscan_avx2(q, end, &escaped);
                                if (end - q >= 32)
                                        goto special;
                        }
#endif
                next_block:;
                }
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* Eight at a time: the lowest flagged byte is exact (a
                 * borrow only flags bytes above a true one). */
                while (end - q >= 8) {
                        uint64_t x, m;

                        memcpy(&x, q, 8);
                        m = wc_jscan_has_less(x, 0x20) | (x & WC_JSCAN_HIGHS) |
                            wc_jscan_has_byte(x, '\\') |
                            wc_jscan_has_byte(x, '"');
                        if (m) {
                                q += (size_t)__builtin_ctzll(m) >> 3;
                                goto special;
                        }
                        q += 8;
                }
#endif
                while (q < end && wc_jscan_plain_byte(*q))
                        q++;
                if (q >= end)
                        return wc_jscan_truncated(d);
        special:
                c = *q;
                if (c == '"')
                        break;
                if (c == '\\') {
                        long cu, lo;

                        escaped = 1;
                        if (end - q < 2)
                                return wc_jscan_truncated(d);
                        switch (q[1]) {
                        case '"':
                        case '\\':
                        case '/':
                        case 'b':
                        case 'f':
                        case 'n':
                        case 'r':
                        case 't':
                                q += 2;
                                continue;
                        case 'u':
                                break;
                        default:
                                /* as jsmn did: the string's start */
                                return wc_jscan_bad_json(d, open);
                        }
                        if (end - q < 6)
                                return wc_jscan_truncated(d);
                        cu = wc_jscan_u_escape(q, 6);
                        if (cu < 0)
                                return wc_jscan_bad_json(d, open);
                        if (cu >= 0xdc00 && cu <= 0xdfff)
                                return wc_jscan_fail(
                                    d,
                                    "lone surrogate \\u%04lx at "
                                    "offset %zu",
                                    cu, wc_jscan_offset(d, (const char *)q));
                        if (cu >= 0xd800 && cu <= 0xdbff) {
                                lo = wc_jscan_u_escape(q + 6,
                                                       (size_t)(end - q) - 6);
                                if (lo < 0xdc00 || lo > 0xdfff)
                                        return wc_jscan_fail(
                                            d,
                                            "lone surrogate \\u%04lx "
                                            "at offset %zu",
                                            cu,
                                            wc_jscan_offset(d,
                                                            (const char *)q));
                                q += 6;
                        }
                        q += 6;
                        continue;
                }
                if (c < 0x20) {
                        if (c == 0)
                                return wc_jscan_fail(
                                    d, "zero byte in the message");
                        return wc_jscan_fail(
                            d, "control character 0x%02x at offset %zu", c,
                            wc_jscan_offset(d, (const char *)q));
                }
                if (c < 0x80) {
                        q++;
                        continue;
                }
                {
                        size_t k = wc_jscan_utf8_seq(q, (size_t)(end - q));

                        if (k == 0) {
                                if (!d->bytes_ok)
                                        return wc_jscan_fail(
                                            d,
                                            "invalid UTF-8 at offset "
                                            "%zu",
                                            wc_jscan_offset(d,
                                                            (const char *)q));
                                d->saw_bytes = true;
                                k = 1;
                        }
                        q += k;
                }
        }
        *ret_body = open + 1;
        *ret_len = (size_t)((const char *)q - (open + 1));
        d->p = (char *)q + 1;
        return escaped;
}

/* A number, true, false or null at d->p: checked against JSON's grammar
 * and d->p moved past it.  What follows is for the caller to check. */
static inline int wc_jscan_primitive(struct wc_jscan *d,
                                     enum wc_jscan_prim *ret_kind)
{
        char *s = d->p, *p = s, *end = d->end;

        switch (*p) {
        case 't':
                if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
                        d->p = p + 4;
                        *ret_kind = WC_JSCAN_TRUE;
                        return 0;
                }
                goto bad;
        case 'f':
                if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
                        d->p = p + 5;
                        *ret_kind = WC_JSCAN_FALSE;
                        return 0;
                }
                goto bad;
        case 'n':
                if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                        d->p = p + 4;
                        *ret_kind = WC_JSCAN_NULL;
                        return 0;
                }
                goto bad;
        }
        if (*p == '-')
                p++;
        if (p < end && *p == '0') {
                p++;
        } else if (p < end && *p >= '1' && *p <= '9') {
                while (p < end && wc_jscan_is_digit(*p))
                        p++;
        } else {
                goto bad;
        }
        if (p < end && *p == '.') {
                p++;
                if (p >= end || !wc_jscan_is_digit(*p))
                        goto bad;
                while (p < end && wc_jscan_is_digit(*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p >= end || !wc_jscan_is_digit(*p))
                        goto bad;
                while (p < end && wc_jscan_is_digit(*p))
                        p++;
        }
        d->p = p;
        *ret_kind = WC_JSCAN_NUMBER;
        return 0;
bad:
        if (p >= end)
                return wc_jscan_truncated(d);
        return wc_jscan_fail(d, "invalid JSON value at offset %zu",
                             wc_jscan_offset(d, s));
}

static inline bool wc_jscan_starts_primitive(char c)
{
        return c == '-' || wc_jscan_is_digit(c) || c == 't' || c == 'f' ||
               c == 'n';
}

/* Any JSON value at d->p, as a column value may be: *ret_s, *ret_len are
 * its text as sent (a string with its quotes). */
HOT int wc_jscan_any_value(struct wc_jscan *d, const char **ret_s,
                           size_t *ret_len)
{
        char *s = d->p;
        int r;

        if (s >= d->end || wc_jscan_is_ws(*s)) {
                wc_jscan_skip_ws(d);
                s = d->p;
                if (s >= d->end)
                        return wc_jscan_truncated(d);
        }
        if (*s == '"') {
                char *body = NULL;
                size_t n = 0;

                r = wc_jscan_string(d, &body, &n);
        } else if (wc_jscan_starts_primitive(*s)) {
                enum wc_jscan_prim kind;

                r = wc_jscan_primitive(d, &kind);
        } else if (*s == '{' || *s == '[') {
                r = wc_jscan_nested_value(d);
        } else {
                r = wc_jscan_bad_json(d, s);
        }
        if (r < 0)
                return r;
        *ret_s = s;
        *ret_len = (size_t)(d->p - s);
        return 0;
}

/* After a member's value: whitespace, then ',' (more members follow:
 * returns 1, d->p after the ',') or the closing bracket (returns 0, d->p
 * past it). */
HOT int wc_jscan_next_member(struct wc_jscan *d, char close)
{
        /* Whitespace is the plugins' exception: looked for only when what
         * is there is not what it writes.  After the ',' it is for the
         * next reader to skip. */
        for (int pass = 0; pass < 2; pass++) {
                if (d->p < d->end) {
                        char c = *d->p;

                        if (c == ',') {
                                d->p++;
                                return 1;
                        }
                        if (c == close) {
                                d->p++;
                                return 0;
                        }
                }
                wc_jscan_skip_ws(d);
        }
        return wc_jscan_bad_json(d, d->p);
}

static inline bool wc_jscan_at_null(const struct wc_jscan *d)
{
        return d->end - d->p >= 4 && memcmp(d->p, "null", 4) == 0;
}

/* The string value at d->p (after any whitespace), as wc_jscan_string()
 * finds it: 1 when it holds escapes, 0 when not, or an error naming
 * `what` when the value is not a string. */
HOT int wc_jscan_string_at(struct wc_jscan *d, const char *what,
                           char **ret_body, size_t *ret_len)
{
        if (d->p >= d->end || *d->p != '"') {
                wc_jscan_skip_ws(d);
                if (d->p >= d->end)
                        return wc_jscan_truncated(d);
                if (*d->p != '"')
                        return wc_jscan_fail(d, "\"%s\" is not a string", what);
        }
        return wc_jscan_string(d, ret_body, ret_len);
}

/* A JSON number that is a 32-bit unsigned integer. */
HOT int wc_jscan_uint32(struct wc_jscan *d, const char *what, uint32_t *ret)
{
        const char *s = d->p, *p = s, *end = d->end;
        uint64_t v;

        /* what plugins write: up to ten digits, no leading zero, then
         * not a fraction or an exponent */
        if (p < end && *p >= '1' && *p <= '9') {
                v = (uint64_t)(*p++ - '0');
                while (p < end && wc_jscan_is_digit(*p) && p - s < 10)
                        v = v * 10 + (uint64_t)(*p++ - '0');
                if (v <= UINT32_MAX &&
                    (p == end || (!wc_jscan_is_digit(*p) && *p != '.' &&
                                  *p != 'e' && *p != 'E'))) {
                        d->p = (char *)p;
                        *ret = (uint32_t)v;
                        return 0;
                }
        }
        return wc_jscan_uint32_slow(d, what, ret);
}

#endif
