/* SPDX-License-Identifier: MIT */
/*
 * The JSON scanner's rare paths: errors, nested values, AVX2 (the pieces
 * every byte goes through are inline in json_scan.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/json_scan.h"

/* Initial depth of the stack for nested values. */
#define NEST_INITIAL 64

int wc_jscan_init(struct wc_jscan *js, const char *format)
{
        js->format = format;
        js->nest = malloc(NEST_INITIAL);
        if (!js->nest)
                return -ENOMEM;
        js->nest_cap = NEST_INITIAL;
        wc_jscan_set_avx2(js, true);
        return 0;
}

void wc_jscan_destroy(struct wc_jscan *js)
{
        free(js->nest);
        js->nest = NULL;
        js->nest_cap = 0;
}

void wc_jscan_set_avx2(struct wc_jscan *js, bool on)
{
#if HAVE_AVX2_SCAN
        __builtin_cpu_init();
        js->avx2 = on && __builtin_cpu_supports("avx2");
#else
        (void)on;
        js->avx2 = false;
#endif
}

/* ---- error text ---- */

/* Appends p[0..n) to out for a human: printable ASCII and valid UTF-8 as
 * they are (C1 controls excepted), every other byte as '?'.  With
 * stop_partial, a character cut at the end is dropped instead. */
static void sanitize(char *out, size_t room, const unsigned char *p, size_t n,
                     bool stop_partial)
{
        size_t o = 0, i = 0;

        while (i < n && o + 4 < room) {
                size_t k = wc_jscan_utf8_seq(p + i, n - i);

                if (k == 1 && p[i] >= 0x20 && p[i] < 0x7f) {
                        out[o++] = (char)p[i++];
                } else if (k > 1 && !(p[i] == 0xc2 && p[i + 1] < 0xa0)) {
                        memcpy(out + o, p + i, k);
                        o += k;
                        i += k;
                } else if (k == 0 && stop_partial && p[i] >= 0xc2 &&
                           n - i < 4) {
                        break;
                } else {
                        out[o++] = '?';
                        i++;
                }
        }
        out[o] = '\0';
}

int wc_jscan_fail(struct wc_jscan *d, const char *fmt, ...)
{
        char lsn[WC_LSN_STRLEN], what[256], ex[WC_JSCAN_EXCERPT_MAX * 4 + 8];
        bool cut = d->len > d->excerpt_len;
        va_list ap;

        if (!d->errbuf || d->errlen == 0)
                return -EBADMSG;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        sanitize(ex, sizeof(ex) - 3, d->excerpt, d->excerpt_len, cut);
        if (cut)
                strcat(ex, "...");
        snprintf(d->errbuf, d->errlen,
                 "could not decode %s message at %s: %s: %s", d->format,
                 wc_lsn_format(d->at, lsn), what, ex);
        return -EBADMSG;
}

int wc_jscan_nomem(struct wc_jscan *d)
{
        wc_jscan_fail(d, "out of memory");
        return -ENOMEM;
}

/* A string from the message for an error: a key, an action. */
const char *wc_jscan_quote(char *out, size_t room, const char *p, size_t n)
{
        size_t max = room > 40 ? 40 : room;

        sanitize(out, max - 4, (const unsigned char *)p, n > 32 ? 32 : n,
                 n > 32);
        if (n > 32)
                strcat(out, "...");
        return out;
}

void __attribute__((noinline)) wc_jscan_skip_ws_slow(struct wc_jscan *d)
{
        char *p = d->p;

        while (p < d->end && wc_jscan_is_ws(*p))
                p++;
        d->p = p;
}

int wc_jscan_truncated(struct wc_jscan *d)
{
        return wc_jscan_fail(d, "truncated JSON");
}

/* What p, where the grammar expected something else, makes of it. */
int wc_jscan_bad_json(struct wc_jscan *d, const char *p)
{
        if (p >= d->end)
                return wc_jscan_truncated(d);
        if (*p == '\0')
                return wc_jscan_fail(d, "zero byte in the message");
        return wc_jscan_fail(d, "invalid JSON at offset %zu",
                             wc_jscan_offset(d, p));
}

#if HAVE_AVX2_SCAN
__attribute__((target("avx2"), noinline)) const unsigned char *
wc_jscan_avx2(const unsigned char *q, const unsigned char *end, int *escaped)
{
        const __m256i quote = _mm256_set1_epi8('"');
        const __m256i backslash = _mm256_set1_epi8('\\');
        const __m256i space = _mm256_set1_epi8(0x20);

        while (end - q >= 32) {
                __m256i x = _mm256_loadu_si256((const __m256i *)q);
                __m256i m = _mm256_or_si256(
                    _mm256_or_si256(_mm256_cmpeq_epi8(x, quote),
                                    _mm256_cmpeq_epi8(x, backslash)),
                    _mm256_cmpgt_epi8(space, x));
                uint32_t mask = (uint32_t)_mm256_movemask_epi8(m);

                while (mask) {
                        unsigned i = (unsigned)__builtin_ctz(mask);

                        if (q[i] != '\\' || end - (q + i) < 2 ||
                            !wc_jscan_short_escape[q[i + 1]])
                                return q + i;
                        *escaped = 1;
                        if (i >= 30) {
                                q += i + 2;
                                goto next_block;
                        }
                        mask &= ~((4u << i) - 1);
                }
                q += 32;
        next_block:;
        }
        return q;
}

#endif

/* After an object's '{' or ',' (and whitespace): a key, its colon and the
 * whitespace after it, for a value of no interest to us. */
static int wc_jscan_any_key(struct wc_jscan *d)
{
        char *body = NULL;
        size_t n = 0;
        int r;

        if (d->p >= d->end || *d->p != '"')
                return wc_jscan_bad_json(d, d->p);
        r = wc_jscan_string(d, &body, &n);
        if (r < 0)
                return r;
        wc_jscan_skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
                return wc_jscan_bad_json(d, d->p);
        d->p++;
        wc_jscan_skip_ws(d);
        return 0;
}

/*
 * An object or array at d->p, with everything nested in it; d->p moves
 * past its closing bracket.  Iterative: d->nest holds the closing bracket
 * each open container expects.
 */
int wc_jscan_nested_value(struct wc_jscan *d)
{
        size_t depth = 0;
        int r;

        for (;;) {
                char c;

                /* a value starts at d->p */
                if (d->p >= d->end)
                        return wc_jscan_truncated(d);
                c = *d->p;
                if (c == '{' || c == '[') {
                        char close = c == '{' ? '}' : ']';

                        if (depth == d->nest_cap) {
                                char *grown = realloc(d->nest, d->nest_cap * 2);

                                if (!grown)
                                        return wc_jscan_nomem(d);
                                d->nest = grown;
                                d->nest_cap *= 2;
                        }
                        d->nest[depth++] = close;
                        d->p++;
                        wc_jscan_skip_ws(d);
                        if (d->p < d->end && *d->p == close) {
                                d->p++;
                                depth--;
                        } else {
                                if (close == '}') {
                                        r = wc_jscan_any_key(d);
                                        if (r < 0)
                                                return r;
                                }
                                continue;
                        }
                } else if (c == '"') {
                        char *body = NULL;
                        size_t n = 0;

                        r = wc_jscan_string(d, &body, &n);
                        if (r < 0)
                                return r;
                } else if (wc_jscan_starts_primitive(c)) {
                        enum wc_jscan_prim kind;

                        r = wc_jscan_primitive(d, &kind);
                        if (r < 0)
                                return r;
                } else {
                        return wc_jscan_bad_json(d, d->p);
                }

                /* after a value: close containers until one goes on */
                for (;;) {
                        if (depth == 0)
                                return 0;
                        wc_jscan_skip_ws(d);
                        if (d->p >= d->end)
                                return wc_jscan_truncated(d);
                        c = *d->p;
                        if (c == d->nest[depth - 1]) {
                                d->p++;
                                depth--;
                                continue;
                        }
                        if (c != ',')
                                return wc_jscan_bad_json(d, d->p);
                        d->p++;
                        wc_jscan_skip_ws(d);
                        if (d->nest[depth - 1] == '}') {
                                r = wc_jscan_any_key(d);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
        }
}

int wc_jscan_uint32_slow(struct wc_jscan *d, const char *what, uint32_t *ret)
{
        char *s;
        uint64_t v = 0;
        /* set on success only; gcc -O3 cannot see that every failure
         * returns a negative value, and warns */
        enum wc_jscan_prim kind = WC_JSCAN_NULL;
        size_t n;
        int r;

        wc_jscan_skip_ws(d);
        s = d->p;
        if (s >= d->end)
                return wc_jscan_truncated(d);
        if (!wc_jscan_starts_primitive(*s)) {
                if (*s == '"' || *s == '{' || *s == '[')
                        return wc_jscan_fail(d, "\"%s\" is not a number", what);
                return wc_jscan_bad_json(d, s);
        }
        r = wc_jscan_primitive(d, &kind);
        if (r < 0)
                return r;
        if (kind != WC_JSCAN_NUMBER)
                return wc_jscan_fail(d, "\"%s\" is not a number", what);
        /* the grammar holds: digits alone are an integer without a
         * leading zero */
        n = (size_t)(d->p - s);
        if (n <= 10) {
                size_t i = 0;

                while (i < n && wc_jscan_is_digit(s[i]))
                        v = v * 10 + (uint64_t)(s[i++] - '0');
                if (i == n && v <= UINT32_MAX) {
                        *ret = (uint32_t)v;
                        return 0;
                }
        }
        return wc_jscan_fail(d, "\"%s\" is not a 32-bit unsigned integer",
                             what);
}
