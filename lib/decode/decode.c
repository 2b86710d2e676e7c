/* SPDX-License-Identifier: MIT */
/*
 * wal2json format-version 2 decoder.
 *
 * One pass over the bytes both validates and decodes.  Column values are
 * handed to sinks as the JSON text we received, so anything that is not
 * valid JSON must be refused here, once: every byte of the message is
 * looked at by the grammar below, strings included (no raw control
 * characters, escapes as RFC 8259 has them, surrogates in pairs, valid
 * UTF-8).
 *
 * wal2json's shape is fixed: a flat object whose column lists hold flat
 * objects whose values are scalars.  The parser expects that shape and
 * wal2json's key order (a column's keys are first compared with the one
 * wal2json sends next), but accepts any key order and any JSON value as a
 * column value; nested values are checked by a loop with an explicit
 * stack, so their depth costs no recursion.  Strings are scanned 16 (SSE2)
 * or 8 bytes at a time for a quote, a backslash, a control character or a
 * byte >= 0x80; only those stop the scan, and UTF-8 is validated only
 * where a byte >= 0x80 appears.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* Long strings are scanned with AVX2 where the CPU has it. */
#if defined(__SSE2__) && defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX2_SCAN 1
#include <immintrin.h>
#endif

#include "decode/decode.h"

/* How much of a message an error quotes. */
#define EXCERPT_MAX 80
/* Longest timestamp text whose value is remembered: every change of a
 * transaction carries the same one. */
#define TS_CACHE_MAX 48
/* Initial depth of the stack for nested column values. */
#define NEST_INITIAL 64
/* Decoded names are kept in chunks of at least this size. */
#define NAMES_CHUNK 4096
/* Names up to this long are copied with one fixed-size copy. */
#define NAME_SLACK 16

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* For the few helpers every byte or token goes through. */
#define HOT __attribute__((always_inline)) static inline

/*
 * What the entry at one index of a column list looked like the last time:
 * its text as sent from the '{' up to its value (the whole entry when it
 * has none), and what that text decoded to.  A table's changes repeat
 * their column entries byte for byte, so a memcmp() with this text
 * replaces the checking and decoding of names, types and type OIDs.
 * Kept only for entries whose keys came in wal2json's order.
 */
struct col_memo {
        char *text; /* the text, then the decoded name and type */
        size_t len; /* of the text; 0 when there is no memo */
        size_t cap;
        size_t canon; /* the entry's canonical length without its value */
        struct walcast_column col;
};

struct col_vec {
        struct walcast_column *items;
        struct col_memo *memo;
        size_t cap;
};

/* Storage for the decoded, NUL-terminated names of one message.  Chunks
 * are never moved (names point into them) and are kept for the next
 * message. */
struct names_chunk {
        struct names_chunk *next;
        size_t cap, used;
        char data[];
};

struct wc_decoder {
        struct col_vec cols, ident, pk;
        struct wc_change change;
        /* closing brackets of the nested value being checked */
        char *nest;
        size_t nest_cap;
        struct names_chunk *names, *names_cur;
        /* the last timestamp text decoded, and its value */
        bool ts_valid;
        size_t ts_len;
        int64_t ts_us;
        char ts_text[TS_CACHE_MAX];
        bool avx2; /* scan long strings with scan_avx2() */
        /* scan_string: bytes that are not UTF-8 are let through (a
         * message's content), and saw_bytes says there were some */
        bool bytes_ok, saw_bytes;
        struct wc_buf content; /* a content as base64 (content_base64()) */
        /* a message with wal2json's unescaped type names, escaped
         * (repair_types()) */
        struct wc_buf repair;

        /* Per call. */
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

enum key {
        K_ACTION,
        K_XID,
        K_TIMESTAMP,
        K_ORIGIN,
        K_LSN,
        K_NEXTLSN,
        K_SCHEMA,
        K_TABLE,
        K_COLUMNS,
        K_IDENTITY,
        K_PK,
        K_TRANSACTIONAL,
        K_PREFIX,
        K_CONTENT,
        K__COUNT,
};

static const char *const key_names[K__COUNT] = {
    [K_ACTION] = "action",
    [K_XID] = "xid",
    [K_TIMESTAMP] = "timestamp",
    [K_ORIGIN] = "origin",
    [K_LSN] = "lsn",
    [K_NEXTLSN] = "nextlsn",
    [K_SCHEMA] = "schema",
    [K_TABLE] = "table",
    [K_COLUMNS] = "columns",
    [K_IDENTITY] = "identity",
    [K_PK] = "pk",
    [K_TRANSACTIONAL] = "transactional",
    [K_PREFIX] = "prefix",
    [K_CONTENT] = "content",
};

#define KB(k) (1u << (k))
#define KEYS_COMMON                                                            \
        (KB(K_ACTION) | KB(K_XID) | KB(K_TIMESTAMP) | KB(K_ORIGIN) | KB(K_LSN))
#define KEYS_RELATION (KB(K_SCHEMA) | KB(K_TABLE))

/* What wal2json sends for each action: anything else is unexpected. */
static const struct action_rule {
        char action;
        enum wc_op op;
        unsigned allowed;
        unsigned required;
} action_rules[] = {
    {'B', WC_OP_BEGIN, KEYS_COMMON | KB(K_NEXTLSN), KB(K_LSN) | KB(K_NEXTLSN)},
    {'C', WC_OP_COMMIT, KEYS_COMMON | KB(K_NEXTLSN), KB(K_LSN) | KB(K_NEXTLSN)},
    {'I', WC_OP_INSERT, KEYS_COMMON | KEYS_RELATION | KB(K_COLUMNS) | KB(K_PK),
     KEYS_RELATION | KB(K_COLUMNS)},
    {'U', WC_OP_UPDATE,
     KEYS_COMMON | KEYS_RELATION | KB(K_COLUMNS) | KB(K_IDENTITY) | KB(K_PK),
     KEYS_RELATION | KB(K_COLUMNS)},
    {'D', WC_OP_DELETE, KEYS_COMMON | KEYS_RELATION | KB(K_IDENTITY) | KB(K_PK),
     KEYS_RELATION | KB(K_IDENTITY)},
    {'T', WC_OP_TRUNCATE, KEYS_COMMON | KEYS_RELATION, KEYS_RELATION},
    {'M', WC_OP_MESSAGE,
     KEYS_COMMON | KB(K_TRANSACTIONAL) | KB(K_PREFIX) | KB(K_CONTENT),
     KB(K_TRANSACTIONAL) | KB(K_PREFIX) | KB(K_CONTENT)},
};

enum col_key { C_NAME, C_TYPE, C_TYPEOID, C_VALUE, C__COUNT };

static const char *const col_key_names[C__COUNT] = {
    [C_NAME] = "name",
    [C_TYPE] = "type",
    [C_TYPEOID] = "typeoid",
    [C_VALUE] = "value",
};

struct wc_decoder *wc_decoder_new(void)
{
        struct wc_decoder *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->nest = malloc(NEST_INITIAL);
        if (!d->nest) {
                free(d);
                return NULL;
        }
        d->nest_cap = NEST_INITIAL;
        wc_decoder_set_avx2(d, true);
        return d;
}

void wc_decoder_set_avx2(struct wc_decoder *d, bool on)
{
#if HAVE_AVX2_SCAN
        __builtin_cpu_init();
        d->avx2 = on && __builtin_cpu_supports("avx2");
#else
        (void)on;
        d->avx2 = false;
#endif
}

void wc_decoder_free(struct wc_decoder *d)
{
        if (!d)
                return;
        free(d->nest);
        wc_buf_free(&d->content);
        wc_buf_free(&d->repair);
        while (d->names) {
                struct names_chunk *next = d->names->next;

                free(d->names);
                d->names = next;
        }
        struct col_vec *vecs[] = {&d->cols, &d->ident, &d->pk};

        for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
                for (size_t j = 0; j < vecs[i]->cap; j++)
                        free(vecs[i]->memo[j].text);
                free(vecs[i]->memo);
                free(vecs[i]->items);
        }
        free(d);
}

/* ---- error text ---- */

/* Length of the valid UTF-8 sequence at p (at most n bytes available), 0
 * when there is none.  Overlong forms, surrogates and code points past
 * U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
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

/* Appends p[0..n) to out for a human: printable ASCII and valid UTF-8 as
 * they are (C1 controls excepted), every other byte as '?'.  With
 * stop_partial, a character cut at the end is dropped instead. */
static void sanitize(char *out, size_t room, const unsigned char *p, size_t n,
                     bool stop_partial)
{
        size_t o = 0, i = 0;

        while (i < n && o + 4 < room) {
                size_t k = utf8_seq(p + i, n - i);

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

__attribute__((format(printf, 2, 3))) static int fail(struct wc_decoder *d,
                                                      const char *fmt, ...)
{
        char lsn[WC_LSN_STRLEN], what[256], ex[EXCERPT_MAX * 4 + 8];
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
                 "could not decode wal2json message at %s: %s: %s",
                 wc_lsn_format(d->at, lsn), what, ex);
        return -EBADMSG;
}

static int fail_nomem(struct wc_decoder *d)
{
        fail(d, "out of memory");
        return -ENOMEM;
}

/* A string from the message for an error: a key, an action. */
static const char *quote(char *out, size_t room, const char *p, size_t n)
{
        size_t max = room > 40 ? 40 : room;

        sanitize(out, max - 4, (const unsigned char *)p, n > 32 ? 32 : n,
                 n > 32);
        if (n > 32)
                strcat(out, "...");
        return out;
}

/* ---- the grammar's pieces ---- */

static inline bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static void __attribute__((noinline)) skip_ws_slow(struct wc_decoder *d)
{
        char *p = d->p;

        while (p < d->end && is_ws(*p))
                p++;
        d->p = p;
}

/* wal2json writes no whitespace: one compare when there is none. */
HOT void skip_ws(struct wc_decoder *d)
{
        if (d->p < d->end && (unsigned char)*d->p > ' ')
                return;
        skip_ws_slow(d);
}

static size_t offset(const struct wc_decoder *d, const char *p)
{
        return (size_t)(p - d->msg);
}

static int truncated(struct wc_decoder *d)
{
        return fail(d, "truncated JSON");
}

/* What p, where the grammar expected something else, makes of it. */
static int bad_json(struct wc_decoder *d, const char *p)
{
        if (p >= d->end)
                return truncated(d);
        if (*p == '\0')
                return fail(d, "zero byte in the message");
        return fail(d, "invalid JSON at offset %zu", offset(d, p));
}

static int hexdigit(unsigned char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* \uXXXX at p (n bytes left) as a code unit, -1 when it is not one. */
static long u_escape(const unsigned char *p, size_t n)
{
        long v = 0;

        if (n < 6 || p[0] != '\\' || p[1] != 'u')
                return -1;
        for (int i = 2; i < 6; i++) {
                int h = hexdigit(p[i]);

                if (h < 0)
                        return -1;
                v = v << 4 | h;
        }
        return v;
}

static inline uint64_t has_less(uint64_t x, uint64_t n)
{
        return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint64_t c)
{
        return has_less(x ^ (ONES * c), 1);
}

/* What may follow a backslash, but 'u'. */
static const bool short_escape[256] = {
    ['"'] = true, ['\\'] = true, ['/'] = true, ['b'] = true,
    ['f'] = true, ['n'] = true,  ['r'] = true, ['t'] = true,
};

#if HAVE_AVX2_SCAN
/*
 * From q, 32 bytes at a time, past plain bytes and two-byte escapes
 * (setting *escaped when it passes one): the first other byte that needs
 * a look (a quote, a \u escape, a control character, a byte >= 0x80), or
 * where fewer than 32 bytes are left.  For long strings only: a call
 * costs more than the first 16 bytes inline.
 */
__attribute__((target("avx2"), noinline)) static const unsigned char *
scan_avx2(const unsigned char *q, const unsigned char *end, int *escaped)
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
                            !short_escape[q[i + 1]])
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

static inline bool plain_byte(unsigned char c)
{
        return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/*
 * The string whose opening quote is at d->p: checked, and d->p moved past
 * its closing quote.  *ret_body and *ret_len are the bytes between the
 * quotes, as sent.  Returns 1 when the string has escapes, 0 when it is
 * plain, or an error.
 */
HOT int scan_string(struct wc_decoder *d, char **ret_body, size_t *ret_len)
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
                                    !short_escape[q[i + 1]]) {
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
                                q = scan_avx2(q, end, &escaped);
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
                        m = has_less(x, 0x20) | (x & HIGHS) |
                            has_byte(x, '\\') | has_byte(x, '"');
                        if (m) {
                                q += (size_t)__builtin_ctzll(m) >> 3;
                                goto special;
                        }
                        q += 8;
                }
#endif
                while (q < end && plain_byte(*q))
                        q++;
                if (q >= end)
                        return truncated(d);
        special:
                c = *q;
                if (c == '"')
                        break;
                if (c == '\\') {
                        long cu, lo;

                        escaped = 1;
                        if (end - q < 2)
                                return truncated(d);
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
                                return bad_json(d, open);
                        }
                        if (end - q < 6)
                                return truncated(d);
                        cu = u_escape(q, 6);
                        if (cu < 0)
                                return bad_json(d, open);
                        if (cu >= 0xdc00 && cu <= 0xdfff)
                                return fail(d,
                                            "lone surrogate \\u%04lx at "
                                            "offset %zu",
                                            cu, offset(d, (const char *)q));
                        if (cu >= 0xd800 && cu <= 0xdbff) {
                                lo = u_escape(q + 6, (size_t)(end - q) - 6);
                                if (lo < 0xdc00 || lo > 0xdfff)
                                        return fail(d,
                                                    "lone surrogate \\u%04lx "
                                                    "at offset %zu",
                                                    cu,
                                                    offset(d, (const char *)q));
                                q += 6;
                        }
                        q += 6;
                        continue;
                }
                if (c < 0x20) {
                        if (c == 0)
                                return fail(d, "zero byte in the message");
                        return fail(d, "control character 0x%02x at offset %zu",
                                    c, offset(d, (const char *)q));
                }
                if (c < 0x80) {
                        q++;
                        continue;
                }
                {
                        size_t k = utf8_seq(q, (size_t)(end - q));

                        if (k == 0) {
                                if (!d->bytes_ok)
                                        return fail(d,
                                                    "invalid UTF-8 at offset "
                                                    "%zu",
                                                    offset(d, (const char *)q));
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

/*
 * The content of a logical message whose bytes are not UTF-8 text
 * (pg_logical_emit_message with a bytea that is not): JSON cannot carry
 * them, so the change carries a JSON string of their base64 instead,
 * made in d->content.  wal2json writes such bytes as they are, its
 * escapes aside, which are decoded first.  The message itself is left as
 * it is (errors quote it).  0, or a negative errno with the error set.
 */
static int content_base64(struct wc_decoder *d, const char *body, size_t n,
                          struct wc_str *ret)
{
        size_t m, at;
        char *o;

        wc_buf_reset(&d->content);
        if (wc_buf_reserve(&d->content, n + 1 + WC_BASE64_LEN(n) + 3) < 0)
                return fail(d, "out of memory");
        memcpy(d->content.data, body, n);
        if (wc_json_unescape_inplace(d->content.data, n, &m) < 0)
                return fail(d, "invalid escape in \"content\"");
        at = n + 1;
        o = d->content.data + at;
        *o++ = '"';
        o = wc_base64_put(o, (const unsigned char *)d->content.data, m);
        *o++ = '"';
        *o = '\0';
        ret->ptr = d->content.data + at;
        ret->len = (size_t)(o - ret->ptr);
        return 0;
}

enum prim { P_NUMBER, P_TRUE, P_FALSE, P_NULL };

/* A number, true, false or null at d->p: checked against JSON's grammar
 * and d->p moved past it.  What follows is for the caller to check. */
static int primitive(struct wc_decoder *d, enum prim *ret_kind)
{
        char *s = d->p, *p = s, *end = d->end;

        switch (*p) {
        case 't':
                if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
                        d->p = p + 4;
                        *ret_kind = P_TRUE;
                        return 0;
                }
                goto bad;
        case 'f':
                if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
                        d->p = p + 5;
                        *ret_kind = P_FALSE;
                        return 0;
                }
                goto bad;
        case 'n':
                if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
                        d->p = p + 4;
                        *ret_kind = P_NULL;
                        return 0;
                }
                goto bad;
        }
        if (*p == '-')
                p++;
        if (p < end && *p == '0') {
                p++;
        } else if (p < end && *p >= '1' && *p <= '9') {
                while (p < end && is_digit(*p))
                        p++;
        } else {
                goto bad;
        }
        if (p < end && *p == '.') {
                p++;
                if (p >= end || !is_digit(*p))
                        goto bad;
                while (p < end && is_digit(*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p >= end || !is_digit(*p))
                        goto bad;
                while (p < end && is_digit(*p))
                        p++;
        }
        d->p = p;
        *ret_kind = P_NUMBER;
        return 0;
bad:
        if (p >= end)
                return truncated(d);
        return fail(d, "invalid JSON value at offset %zu", offset(d, s));
}

static bool starts_primitive(char c)
{
        return c == '-' || is_digit(c) || c == 't' || c == 'f' || c == 'n';
}

/* After an object's '{' or ',' (and whitespace): a key, its colon and the
 * whitespace after it, for a value of no interest to us. */
static int any_key(struct wc_decoder *d)
{
        char *body = NULL;
        size_t n = 0;
        int r;

        if (d->p >= d->end || *d->p != '"')
                return bad_json(d, d->p);
        r = scan_string(d, &body, &n);
        if (r < 0)
                return r;
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
                return bad_json(d, d->p);
        d->p++;
        skip_ws(d);
        return 0;
}

/*
 * An object or array at d->p, with everything nested in it; d->p moves
 * past its closing bracket.  Iterative: d->nest holds the closing bracket
 * each open container expects.
 */
static int nested_value(struct wc_decoder *d)
{
        size_t depth = 0;
        int r;

        for (;;) {
                char c;

                /* a value starts at d->p */
                if (d->p >= d->end)
                        return truncated(d);
                c = *d->p;
                if (c == '{' || c == '[') {
                        char close = c == '{' ? '}' : ']';

                        if (depth == d->nest_cap) {
                                char *grown = realloc(d->nest, d->nest_cap * 2);

                                if (!grown)
                                        return fail_nomem(d);
                                d->nest = grown;
                                d->nest_cap *= 2;
                        }
                        d->nest[depth++] = close;
                        d->p++;
                        skip_ws(d);
                        if (d->p < d->end && *d->p == close) {
                                d->p++;
                                depth--;
                        } else {
                                if (close == '}') {
                                        r = any_key(d);
                                        if (r < 0)
                                                return r;
                                }
                                continue;
                        }
                } else if (c == '"') {
                        char *body = NULL;
                        size_t n = 0;

                        r = scan_string(d, &body, &n);
                        if (r < 0)
                                return r;
                } else if (starts_primitive(c)) {
                        enum prim kind;

                        r = primitive(d, &kind);
                        if (r < 0)
                                return r;
                } else {
                        return bad_json(d, d->p);
                }

                /* after a value: close containers until one goes on */
                for (;;) {
                        if (depth == 0)
                                return 0;
                        skip_ws(d);
                        if (d->p >= d->end)
                                return truncated(d);
                        c = *d->p;
                        if (c == d->nest[depth - 1]) {
                                d->p++;
                                depth--;
                                continue;
                        }
                        if (c != ',')
                                return bad_json(d, d->p);
                        d->p++;
                        skip_ws(d);
                        if (d->nest[depth - 1] == '}') {
                                r = any_key(d);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
        }
}

/* Any JSON value at d->p, as a column value may be: *ret_s, *ret_len are
 * its text as sent (a string with its quotes). */
HOT int any_value(struct wc_decoder *d, const char **ret_s, size_t *ret_len)
{
        char *s = d->p;
        int r;

        if (s >= d->end || is_ws(*s)) {
                skip_ws(d);
                s = d->p;
                if (s >= d->end)
                        return truncated(d);
        }
        if (*s == '"') {
                char *body = NULL;
                size_t n = 0;

                r = scan_string(d, &body, &n);
        } else if (starts_primitive(*s)) {
                enum prim kind;

                r = primitive(d, &kind);
        } else if (*s == '{' || *s == '[') {
                r = nested_value(d);
        } else {
                r = bad_json(d, s);
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
HOT int next_member(struct wc_decoder *d, char close)
{
        /* Whitespace is wal2json's exception: looked for only when what
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
                skip_ws(d);
        }
        return bad_json(d, d->p);
}

/* ---- names ---- */

static char *names_alloc_slow(struct wc_decoder *d, size_t n)
{
        struct names_chunk *c = d->names_cur, *nc;
        size_t cap = n > NAMES_CHUNK ? n : NAMES_CHUNK;

        if (c && c->next && c->next->cap - c->next->used >= n) {
                nc = c->next;
        } else {
                nc = malloc(sizeof(*nc) + cap);
                if (!nc)
                        return NULL;
                nc->cap = cap;
                nc->used = 0;
                nc->next = c ? c->next : NULL;
                if (c)
                        c->next = nc;
                else
                        d->names = nc;
        }
        d->names_cur = nc;
        nc->used = n;
        return nc->data;
}

/* Room for n bytes of names, valid until the next message, followed by
 * NAME_SLACK more that may be written but are not kept. */
HOT char *names_alloc(struct wc_decoder *d, size_t n)
{
        struct names_chunk *c = d->names_cur;
        char *p;

        if (!c || c->cap - c->used < n + NAME_SLACK) {
                p = names_alloc_slow(d, n + NAME_SLACK);
                if (p)
                        d->names_cur->used -= NAME_SLACK;
                return p;
        }
        p = c->data + c->used;
        c->used += n;
        return p;
}

/* Copies the n bytes of a name at s (in the message) to dst (from
 * names_alloc(n + 1)): a short name, the common case, with one fixed-size
 * copy when the message has the bytes to read. */
HOT void copy_name(const struct wc_decoder *d, char *dst, const char *s,
                   size_t n)
{
        if (n <= NAME_SLACK && (size_t)(d->end - s) >= NAME_SLACK)
                memcpy(dst, s, NAME_SLACK);
        else
                memcpy(dst, s, n);
}

/* ---- scalars ---- */

static bool at_null(const struct wc_decoder *d)
{
        return d->end - d->p >= 4 && memcmp(d->p, "null", 4) == 0;
}

/* The string value at d->p (after any whitespace), as scan_string()
 * finds it: 1 when it holds escapes, 0 when not, or an error naming
 * `what` when the value is not a string. */
HOT int string_at(struct wc_decoder *d, const char *what, char **ret_body,
                  size_t *ret_len)
{
        if (d->p >= d->end || *d->p != '"') {
                skip_ws(d);
                if (d->p >= d->end)
                        return truncated(d);
                if (*d->p != '"')
                        return fail(d, "\"%s\" is not a string", what);
        }
        return scan_string(d, ret_body, ret_len);
}

/* A string value decoded in place: names, and the few scalars we read.
 * NUL-terminated where its closing quote was. */
HOT int name(struct wc_decoder *d, const char *what, bool nonempty,
             const char **ret_s, size_t *ret_len)
{
        char *s = NULL, *dst;
        size_t n = 0;
        int r;

        r = string_at(d, what, &s, &n);
        if (r < 0)
                return r;
        /* Names travel as C strings: decoded into the decoder's storage,
         * so that the message stays the text wal2json sent. */
        dst = names_alloc(d, n + 1);
        if (!dst)
                return fail_nomem(d);
        copy_name(d, dst, s, n);
        if (r > 0) {
                if (wc_json_unescape_inplace(dst, n, &n) < 0)
                        return fail(d, "bad escape in \"%s\"", what);
                /* raw NULs were refused above, so only \u0000 can make
                 * one */
                if (memchr(dst, '\0', n))
                        return fail(d, "\\u0000 in \"%s\"", what);
        } else {
                dst[n] = '\0';
        }
        if (nonempty && n == 0)
                return fail(d, "\"%s\" is empty", what);
        *ret_s = dst;
        *ret_len = n;
        return 0;
}

/* A string value for its bytes alone (an action, a position, a time):
 * as sent when it has no escapes, decoded otherwise; not NUL-terminated. */
HOT int string_value(struct wc_decoder *d, const char *what, const char **ret_s,
                     size_t *ret_len)
{
        char *s = NULL, *dst;
        size_t n = 0;
        int r;

        r = string_at(d, what, &s, &n);
        if (r < 0)
                return r;
        if (r > 0) {
                dst = names_alloc(d, n + 1);
                if (!dst)
                        return fail_nomem(d);
                memcpy(dst, s, n);
                if (wc_json_unescape_inplace(dst, n, &n) < 0)
                        return fail(d, "bad escape in \"%s\"", what);
                s = dst;
        }
        *ret_s = s;
        *ret_len = n;
        return 0;
}

static int uint32_value_slow(struct wc_decoder *d, const char *what,
                             uint32_t *ret)
{
        char *s;
        uint64_t v = 0;
        enum prim kind;
        size_t n;
        int r;

        skip_ws(d);
        s = d->p;
        if (s >= d->end)
                return truncated(d);
        if (!starts_primitive(*s)) {
                if (*s == '"' || *s == '{' || *s == '[')
                        return fail(d, "\"%s\" is not a number", what);
                return bad_json(d, s);
        }
        r = primitive(d, &kind);
        if (r < 0)
                return r;
        if (kind != P_NUMBER)
                return fail(d, "\"%s\" is not a number", what);
        /* the grammar holds: digits alone are an integer without a
         * leading zero */
        n = (size_t)(d->p - s);
        if (n <= 10) {
                size_t i = 0;

                while (i < n && is_digit(s[i]))
                        v = v * 10 + (uint64_t)(s[i++] - '0');
                if (i == n && v <= UINT32_MAX) {
                        *ret = (uint32_t)v;
                        return 0;
                }
        }
        return fail(d, "\"%s\" is not a 32-bit unsigned integer", what);
}

/* A JSON number that is a 32-bit unsigned integer. */
HOT int uint32_value(struct wc_decoder *d, const char *what, uint32_t *ret)
{
        const char *s = d->p, *p = s, *end = d->end;
        uint64_t v;

        /* what wal2json writes: up to ten digits, no leading zero, then
         * not a fraction or an exponent */
        if (p < end && *p >= '1' && *p <= '9') {
                v = (uint64_t)(*p++ - '0');
                while (p < end && is_digit(*p) && p - s < 10)
                        v = v * 10 + (uint64_t)(*p++ - '0');
                if (v <= UINT32_MAX &&
                    (p == end ||
                     (!is_digit(*p) && *p != '.' && *p != 'e' && *p != 'E'))) {
                        d->p = (char *)p;
                        *ret = (uint32_t)v;
                        return 0;
                }
        }
        return uint32_value_slow(d, what, ret);
}

static inline int hex_nibble(unsigned char c)
{
        if ((unsigned)(c - '0') < 10u)
                return c - '0';
        if ((unsigned)((c | 0x20) - 'a') < 6u)
                return (c | 0x20) - 'a' + 10;
        return -1;
}

/* Up to eight hex digits at p (before end) into *ret; the byte after
 * them, or NULL when there are none or more. */
HOT const char *hex32(const char *p, const char *end, uint32_t *ret)
{
        const char *s = p;
        uint32_t v = 0;
        int h;

        while (p < end && p - s < 9 &&
               (h = hex_nibble((unsigned char)*p)) >= 0) {
                v = v << 4 | (uint32_t)h;
                p++;
        }
        if (p == s || p - s > 8 || p >= end)
                return NULL;
        *ret = v;
        return p;
}

static int lsn_value(struct wc_decoder *d, const char *what, wc_lsn *ret)
{
        const char *s = NULL;
        char q[48];
        size_t n = 0;
        uint32_t hi, lo;
        int r;

        /* "HI/LO" as wal2json writes it; anything else the long way */
        s = d->p;
        if (s < d->end && *s == '"' && (s = hex32(s + 1, d->end, &hi)) &&
            *s == '/' && (s = hex32(s + 1, d->end, &lo)) && *s == '"') {
                d->p = (char *)s + 1;
                *ret = (wc_lsn)hi << 32 | lo;
                return 0;
        }
        r = string_value(d, what, &s, &n);
        if (r < 0)
                return r;
        if (wc_lsn_parse_n(s, n, ret) < 0)
                return fail(d, "invalid \"%s\" \"%s\"", what,
                            quote(q, sizeof(q), s, n));
        return 0;
}

static int timestamp_value(struct wc_decoder *d, int64_t *ret_us)
{
        const char *s = NULL;
        char q[48];
        size_t n = 0;
        int r;

        r = string_value(d, "timestamp", &s, &n);
        if (r < 0)
                return r;
        /* every change of a transaction has its commit time */
        if (d->ts_valid && n == d->ts_len && memcmp(s, d->ts_text, n) == 0) {
                *ret_us = d->ts_us;
                return 0;
        }
        if (wc_time_parse(s, n, ret_us) < 0)
                return fail(d, "invalid \"timestamp\" \"%s\"",
                            quote(q, sizeof(q), s, n));
        if (n <= sizeof(d->ts_text)) {
                memcpy(d->ts_text, s, n);
                d->ts_len = n;
                d->ts_us = *ret_us;
                d->ts_valid = true;
        }
        return 0;
}

/* ---- keys ---- */

/* wal2json's spelling of the top-level keys */
static int top_key(const char *s, size_t n)
{
#define IS(lit) (memcmp(s, lit, sizeof(lit) - 1) == 0)
        switch (n) {
        case 2:
                return IS("pk") ? K_PK : -1;
        case 3:
                return IS("xid") ? K_XID : IS("lsn") ? K_LSN : -1;
        case 5:
                return IS("table") ? K_TABLE : -1;
        case 6:
                return IS("action")   ? K_ACTION
                       : IS("schema") ? K_SCHEMA
                       : IS("origin") ? K_ORIGIN
                       : IS("prefix") ? K_PREFIX
                                      : -1;
        case 7:
                return IS("columns")   ? K_COLUMNS
                       : IS("nextlsn") ? K_NEXTLSN
                       : IS("content") ? K_CONTENT
                                       : -1;
        case 8:
                return IS("identity") ? K_IDENTITY : -1;
        case 9:
                return IS("timestamp") ? K_TIMESTAMP : -1;
        case 13:
                return IS("transactional") ? K_TRANSACTIONAL : -1;
        default:
                return -1;
        }
#undef IS
}

static int col_key(const char *s, size_t n)
{
        switch (n) {
        case 4:
                if (memcmp(s, "name", 4) == 0)
                        return C_NAME;
                if (memcmp(s, "type", 4) == 0)
                        return C_TYPE;
                break;
        case 5:
                if (memcmp(s, "value", 5) == 0)
                        return C_VALUE;
                break;
        case 7:
                if (memcmp(s, "typeoid", 7) == 0)
                        return C_TYPEOID;
                break;
        }
        return -1;
}

/* The top-level key at d->p as wal2json writes it (no escapes, the colon
 * right after): which it is, with d->p past the colon and any whitespace
 * after it; -1 (d->p unchanged) when it is not one of those. */
HOT int top_key_at(struct wc_decoder *d)
{
        const char *p = d->p;
        size_t n = (size_t)(d->end - p);
        int k = -1;
        size_t len = 0;

#define TRY(lit, key)                                                          \
        if (k < 0 && n >= sizeof(lit) - 1 &&                                   \
            memcmp(p, lit, sizeof(lit) - 1) == 0) {                            \
                k = key;                                                       \
                len = sizeof(lit) - 1;                                         \
        }
        if (n < 6 || p[0] != '"')
                return -1;
        switch (p[1]) {
        case 'a':
                TRY("\"action\":", K_ACTION);
                break;
        case 'x':
                TRY("\"xid\":", K_XID);
                break;
        case 't':
                TRY("\"timestamp\":", K_TIMESTAMP);
                TRY("\"table\":", K_TABLE);
                TRY("\"transactional\":", K_TRANSACTIONAL);
                break;
        case 'o':
                TRY("\"origin\":", K_ORIGIN);
                break;
        case 'l':
                TRY("\"lsn\":", K_LSN);
                break;
        case 'n':
                TRY("\"nextlsn\":", K_NEXTLSN);
                break;
        case 's':
                TRY("\"schema\":", K_SCHEMA);
                break;
        case 'c':
                TRY("\"columns\":", K_COLUMNS);
                TRY("\"content\":", K_CONTENT);
                break;
        case 'i':
                TRY("\"identity\":", K_IDENTITY);
                break;
        case 'p':
                TRY("\"pk\":", K_PK);
                TRY("\"prefix\":", K_PREFIX);
                break;
        }
#undef TRY
        if (k >= 0) {
                d->p += len;
                skip_ws(d);
        }
        return k;
}

/*
 * The key at d->p (which must be one): which of `names` it is, with d->p
 * moved past its colon and the whitespace after it.  Raw bytes equal to a
 * known key need no decoding; a key with escapes is decoded in place, in
 * case it is a known key spelled with them.
 */
static int key_index(struct wc_decoder *d, const char *const *names, int count,
                     int (*fast)(const char *, size_t), const char *where)
{
        char *s = NULL;
        size_t n = 0;
        char q[48], key[32];
        int k, r;

        skip_ws(d);
        if (d->p >= d->end || *d->p != '"')
                return bad_json(d, d->p);
        r = scan_string(d, &s, &n);
        if (r < 0)
                return r;
        if (r == 0) {
                k = fast(s, n);
        } else if (n >= sizeof(key)) {
                k = -1; /* longer than any key, even decoded */
        } else {
                /* decoded in a copy: the message stays as sent */
                memcpy(key, s, n);
                if (wc_json_unescape_inplace(key, n, &n) < 0)
                        return fail(d, "bad escape in a key at offset %zu",
                                    offset(d, s));
                s = key;
                for (k = count - 1; k >= 0; k--)
                        if (strlen(names[k]) == n &&
                            memcmp(names[k], s, n) == 0)
                                break;
        }
        if (k < 0) {
                if (where)
                        return fail(d, "unknown key \"%s\" in \"%s\"",
                                    quote(q, sizeof(q), s, n), where);
                return fail(d, "unknown key \"%s\"", quote(q, sizeof(q), s, n));
        }
        skip_ws(d);
        if (d->p >= d->end || *d->p != ':')
                return bad_json(d, d->p);
        d->p++;
        skip_ws(d);
        return k;
}

/* ---- columns ---- */

static int reserve_cols(struct wc_decoder *d, struct col_vec *v, size_t n)
{
        struct walcast_column *grown;
        struct col_memo *memo;
        size_t cap;

        if (n <= v->cap)
                return 0;
        cap = v->cap ? v->cap : 16;
        while (cap < n)
                cap *= 2;
        grown = realloc(v->items, cap * sizeof(*grown));
        if (!grown)
                return fail_nomem(d);
        v->items = grown;
        memo = realloc(v->memo, cap * sizeof(*memo));
        if (!memo)
                return fail_nomem(d);
        memset(memo + v->cap, 0, (cap - v->cap) * sizeof(*memo));
        v->memo = memo;
        v->cap = cap;
        return 0;
}

/* The length of key k as wal2json writes it, colon included, when p (n
 * bytes left) starts with it; 0 when not. */
HOT size_t col_key_at(const char *p, size_t n, int k)
{
#define AT(lit)                                                                \
        (n >= sizeof(lit) - 1 && memcmp(p, lit, sizeof(lit) - 1) == 0          \
             ? sizeof(lit) - 1                                                 \
             : 0)
        switch (k) {
        case C_NAME:
                return AT("\"name\":");
        case C_TYPE:
                return AT("\"type\":");
        case C_TYPEOID:
                return AT("\"typeoid\":");
        case C_VALUE:
                return AT("\"value\":");
        default:
                return 0;
        }
#undef AT
}

static size_t digits(uint32_t v)
{
        /* type OIDs: mostly two to four digits */
        if (v < 10000)
                return v < 100 ? (v < 10 ? 1 : 2) : (v < 1000 ? 3 : 4);
        if (v < 1000000)
                return v < 100000 ? 5 : 6;
        if (v < 100000000)
                return v < 10000000 ? 7 : 8;
        return v < 1000000000 ? 9 : 10;
}

/*
 * The length of col in the canonical form of struct walcast_signal's
 * columns_json: {"name":..,"type":..[,"typeoid":N][,"value":V]}, with
 * names and types as decoded (they had no escapes if the text sent is
 * this long: an escape is always longer than what it decodes to).
 */
static size_t canonical_len(const struct walcast_column *col, bool with_value)
{
        size_t n = 8 + col->name_len + 2 + 8 + col->type_len + 2 + 1;

        if (col->type_oid)
                n += 11 + digits(col->type_oid);
        if (with_value)
                n += 9 + col->value_len;
        return n;
}

/* Remembers the entry text[0..len) and what it decoded to in m; without
 * memory, forgets what m held (the next entry takes the long way). */
static void memo_set(struct col_memo *m, const char *text, size_t len,
                     const struct walcast_column *col, size_t canon)
{
        size_t need = len + col->name_len + 1 + col->type_len + 1;
        char *name, *type;

        if (need > m->cap) {
                char *grown = realloc(m->text, need);

                if (!grown) {
                        m->len = 0;
                        return;
                }
                m->text = grown;
                m->cap = need;
        }
        name = m->text + len;
        type = name + col->name_len + 1;
        memcpy(m->text, text, len);
        memcpy(name, col->name, col->name_len + 1);
        memcpy(type, col->type, col->type_len + 1);
        m->len = len;
        m->canon = canon;
        m->col = *col;
        m->col.name = name;
        m->col.type = type;
}

/*
 * One {"name":..,"type":..,"typeoid":..,"value":..} at d->p.  *ret_canon
 * is the length the entry has in canonical form when its keys came in the
 * canonical order, 0 when not; then the entry is also remembered in m.
 */
static int column(struct wc_decoder *d, const char *what, bool with_value,
                  struct walcast_column *col, size_t *ret_canon,
                  struct col_memo *m)
{
        unsigned seen = 0;
        int guess = C_NAME;
        bool ordered = true;
        const char *entry, *value_at = NULL;
        size_t n = 0;
        int r;

        skip_ws(d);
        if (d->p >= d->end)
                return truncated(d);
        if (*d->p != '{')
                return fail(d, "an entry of \"%s\" is not an object", what);
        col->type_oid = 0;
        col->value = entry = d->p;
        col->value_len = 0;
        d->p++;
        skip_ws(d);
        if (d->p < d->end && *d->p == '}') {
                d->p++;
                goto check;
        }
        do {
                const char *v = NULL;
                int ck;

                /* wal2json's next key, as it writes it, or any */
                size_t lit = col_key_at(d->p, (size_t)(d->end - d->p), guess);

                if (lit) {
                        /* the value's reader skips any whitespace */
                        ck = guess;
                        d->p += lit;
                } else {
                        ck = key_index(d, col_key_names, C__COUNT, col_key,
                                       what);
                        if (ck < 0)
                                return ck;
                        /* keys come in order when each is the one after
                         * the last (or later) */
                        if (ck < guess)
                                ordered = false;
                }
                if (ck == C_VALUE && !with_value)
                        return fail(d, "unexpected key \"value\" in \"%s\"",
                                    what);
                if (seen & KB(ck))
                        return fail(d, "duplicate key \"%s\" in \"%s\"",
                                    col_key_names[ck], what);
                seen |= KB(ck);
                guess = ck + 1;
                switch (ck) {
                case C_NAME:
                        r = name(d, "name", true, &col->name, &n);
                        col->name_len = (uint32_t)n;
                        break;
                case C_TYPE:
                        r = name(d, "type", true, &col->type, &n);
                        col->type_len = (uint32_t)n;
                        break;
                case C_TYPEOID:
                        r = uint32_value(d, "typeoid", &col->type_oid);
                        break;
                default:
                        /* the JSON text as sent: strings keep quotes and
                         * escapes */
                        value_at = d->p;
                        r = any_value(d, &v, &n);
                        col->value = v;
                        col->value_len = (uint32_t)n;
                        break;
                }
                if (r < 0)
                        return r;
                r = next_member(d, '}');
                if (r < 0)
                        return r;
        } while (r);
check:
        if (!(seen & KB(C_NAME)) || !(seen & KB(C_TYPE)) ||
            (with_value && !(seen & KB(C_VALUE))))
                return fail(d, "an entry of \"%s\" lacks \"%s\"", what,
                            !(seen & KB(C_NAME))   ? "name"
                            : !(seen & KB(C_TYPE)) ? "type"
                                                   : "value");
        *ret_canon = 0;
        if (ordered) {
                /* in order, "value" came last */
                size_t canon = canonical_len(col, with_value);

                *ret_canon = canon;
                if (with_value)
                        memo_set(m, entry, (size_t)(value_at - entry), col,
                                 canon - col->value_len);
                else
                        memo_set(m, entry, (size_t)(d->p - entry), col, canon);
        }
        return 0;
}

/*
 * The entry at d->p when it starts with the text m remembers: *col as
 * then, with the value read now.  Returns 1 with *ret_canon set when it
 * did, 0 (d->p unchanged) when the entry must take the long way, or an
 * error, which is the one the long way would give.
 */
HOT int column_memo(struct wc_decoder *d, bool with_value,
                    const struct col_memo *m, struct walcast_column *col,
                    size_t *ret_canon)
{
        char *entry = d->p;
        const char *v = NULL;
        size_t n = 0;
        int r;

        if (!m->len || (size_t)(d->end - entry) < m->len ||
            memcmp(entry, m->text, m->len) != 0)
                return 0;
        *col = m->col;
        d->p += m->len;
        if (!with_value) {
                /* the whole entry */
                col->value = entry;
                col->value_len = 0;
                *ret_canon = m->canon;
                return 1;
        }
        r = any_value(d, &v, &n);
        if (r < 0)
                return r;
        r = next_member(d, '}');
        if (r < 0)
                return r;
        if (r > 0) {
                /* a key after "value": the long way says which */
                d->p = entry;
                return 0;
        }
        col->value = v;
        col->value_len = (uint32_t)n;
        *ret_canon = m->canon + n;
        return 1;
}

/*
 * A list of columns; *ret_json is its text as sent when that is its
 * canonical form (no whitespace, no escapes in names and types, keys in
 * order, typeoid only when nonzero): when the entries have their keys in
 * order, the text has no other bytes exactly when its length is the sum
 * of theirs.
 */
static int column_list(struct wc_decoder *d, enum key k, struct col_vec *v,
                       struct walcast_columns *ret, struct wc_str *ret_json)
{
        const char *what = key_names[k];
        size_t count = 0, canon = 2;
        bool in_order = true;
        char *open;
        int r;

        if (d->p >= d->end)
                return truncated(d);
        if (*d->p != '[')
                return fail(d, "\"%s\" is not an array", what);
        open = d->p;
        d->p++;
        skip_ws(d);
        if (d->p < d->end && *d->p == ']') {
                d->p++;
        } else {
                do {
                        if (count == v->cap) {
                                r = reserve_cols(d, v, count + 1);
                                if (r < 0)
                                        return r;
                        }
                        size_t len = 0;

                        r = column_memo(d, k != K_PK, &v->memo[count],
                                        &v->items[count], &len);
                        if (r == 0)
                                r = column(d, what, k != K_PK, &v->items[count],
                                           &len, &v->memo[count]);
                        if (r < 0)
                                return r;
                        in_order = in_order && len;
                        canon += len + (count ? 1 : 0);
                        count++;
                        r = next_member(d, ']');
                        if (r < 0)
                                return r;
                } while (r);
        }
        if (count > UINT32_MAX)
                return fail(d, "too many entries in \"%s\"", what);
        ret->items = v->items;
        ret->count = (uint32_t)count;
        if (in_order && (size_t)(d->p - open) == canon) {
                ret_json->ptr = open;
                ret_json->len = canon;
        }
        return 0;
}

/* ---- the message ---- */

static int decode_message(struct wc_decoder *d)
{
        struct wc_change *ch = &d->change;
        const struct action_rule *rule = NULL;
        unsigned seen = 0;
        bool lsn_null = false;
        wc_lsn lsn = 0;
        char q[48];
        int r;

        skip_ws(d);
        if (d->p >= d->end)
                return fail(d, "empty message");
        if (*d->p != '{')
                return fail(d, "not a JSON object");
        d->p++;
        skip_ws(d);
        if (d->p < d->end && *d->p == '}') {
                d->p++;
                goto done;
        }
        do {
                const char *s = NULL;
                size_t len = 0;
                int key;

                key = top_key_at(d);
                if (key < 0)
                        key = key_index(d, key_names, K__COUNT, top_key, NULL);
                if (key < 0)
                        return key;
                if (seen & KB(key))
                        return fail(d, "duplicate key \"%s\"", key_names[key]);
                seen |= KB(key);
                switch (key) {
                case K_ACTION:
                        r = string_value(d, "action", &s, &len);
                        if (r < 0)
                                return r;
                        for (size_t a = 0;
                             len == 1 &&
                             a < sizeof(action_rules) / sizeof(action_rules[0]);
                             a++)
                                if (action_rules[a].action == s[0])
                                        rule = &action_rules[a];
                        if (!rule)
                                return fail(d, "unknown action \"%s\"",
                                            quote(q, sizeof(q), s, len));
                        break;
                case K_XID:
                        if (at_null(d)) {
                                d->p += 4;
                                break;
                        }
                        r = uint32_value(d, "xid", &ch->xid);
                        if (r < 0)
                                return r;
                        ch->has_xid = true;
                        break;
                case K_TIMESTAMP:
                        if (at_null(d)) {
                                d->p += 4;
                                break;
                        }
                        r = timestamp_value(d, &ch->time_us);
                        if (r < 0)
                                return r;
                        ch->has_time = true;
                        break;
                case K_ORIGIN: {
                        uint32_t origin;

                        if (at_null(d)) {
                                d->p += 4;
                                break;
                        }
                        r = uint32_value(d, "origin", &origin);
                        if (r < 0)
                                return r;
                        break;
                }
                case K_LSN:
                        /* a message outside a transaction may lack a
                         * position; what it is depends on the action */
                        if (at_null(d)) {
                                d->p += 4;
                                lsn_null = true;
                                break;
                        }
                        r = lsn_value(d, "lsn", &lsn);
                        if (r < 0)
                                return r;
                        break;
                case K_NEXTLSN:
                        r = lsn_value(d, "nextlsn", &ch->end_lsn);
                        if (r < 0)
                                return r;
                        break;
                case K_SCHEMA:
                        r = name(d, "schema", true, &ch->schema,
                                 &ch->schema_len);
                        if (r < 0)
                                return r;
                        break;
                case K_TABLE:
                        r = name(d, "table", true, &ch->table, &ch->table_len);
                        if (r < 0)
                                return r;
                        break;
                case K_COLUMNS:
                        r = column_list(d, K_COLUMNS, &d->cols, &ch->columns,
                                        &ch->columns_json);
                        if (r < 0)
                                return r;
                        break;
                case K_IDENTITY:
                        r = column_list(d, K_IDENTITY, &d->ident, &ch->identity,
                                        &ch->identity_json);
                        if (r < 0)
                                return r;
                        break;
                case K_PK:
                        r = column_list(d, K_PK, &d->pk, &ch->pk, &ch->pk_json);
                        if (r < 0)
                                return r;
                        break;
                case K_TRANSACTIONAL: {
                        enum prim kind = P_NUMBER;

                        if (d->p < d->end && starts_primitive(*d->p)) {
                                r = primitive(d, &kind);
                                if (r < 0)
                                        return r;
                        }
                        if (kind != P_TRUE && kind != P_FALSE)
                                return fail(d, "\"transactional\" is not a "
                                               "boolean");
                        ch->transactional = kind == P_TRUE;
                        break;
                }
                case K_PREFIX:
                        r = name(d, "prefix", false, &ch->prefix,
                                 &ch->prefix_len);
                        if (r < 0)
                                return r;
                        break;
                default: { /* K_CONTENT */
                        char *body = NULL;
                        size_t n = 0;
                        char *open = d->p;

                        if (d->p >= d->end)
                                return truncated(d);
                        if (*d->p != '"')
                                return fail(d, "\"content\" is not a string");
                        d->bytes_ok = true;
                        d->saw_bytes = false;
                        r = scan_string(d, &body, &n);
                        d->bytes_ok = false;
                        if (r < 0)
                                return r;
                        ch->content_base64 = d->saw_bytes;
                        if (!d->saw_bytes) {
                                ch->content.ptr = open;
                                ch->content.len = (size_t)(d->p - open);
                                break;
                        }
                        r = content_base64(d, body, n, &ch->content);
                        if (r < 0)
                                return r;
                        break;
                }
                }
                r = next_member(d, '}');
                if (r < 0)
                        return r;
        } while (r);
done:
        skip_ws(d);
        if (d->p < d->end)
                return fail(d, "unexpected data after the object");

        if (!(seen & KB(K_ACTION)))
                return fail(d, "missing \"action\"");
        if (seen & ~rule->allowed)
                return fail(d, "unexpected key \"%s\" for action \"%c\"",
                            key_names[__builtin_ctz(seen & ~rule->allowed)],
                            rule->action);
        if (rule->required & ~seen)
                return fail(d, "missing \"%s\" for action \"%c\"",
                            key_names[__builtin_ctz(rule->required & ~seen)],
                            rule->action);
        ch->op = rule->op;
        if (lsn_null && rule->op != WC_OP_MESSAGE)
                return fail(d, "\"lsn\" is not a string");
        if (rule->op == WC_OP_BEGIN || rule->op == WC_OP_COMMIT)
                ch->commit_lsn = lsn;
        else
                ch->lsn = lsn;
        return 0;
}

/* ---- wal2json's unescaped type names ----
 *
 * wal2json (2.5 and later, format-version 2) writes a column's type name
 * as format_type() prints it, and leaves it unescaped when that text
 * starts with a double quote and does not end with ']': a type in a
 * schema that needs quoting arrives as "type":"other-tenant".st, which is
 * not JSON.  A message that does not decode is looked at again here (the
 * fast path is not slowed): every string value of a "type" key in an
 * entry of "columns", "identity" or "pk" that is not a JSON string
 * followed by what wal2json writes next is read with format_type()'s
 * grammar instead, and the message is decoded again from a copy in which
 * those values are JSON strings.
 *
 * format_type()'s text is identifiers separated by '.', each plain
 * ([A-Za-z0-9_$] and bytes >= 0x80) or quoted, where a quote inside is
 * doubled; then an optional type modifier "(...)" and "[]" suffixes.
 * Since every quote inside a quoted identifier is doubled, where the name
 * ends is never in doubt; it is accepted only when what follows is what
 * wal2json writes after a type with walcast's options: ,"typeoid":
 * ,"value": or the entry's end "}" followed by "," or "]".  The type name
 * delivered is format_type()'s text exactly, quotes included.
 */

/* Nesting the walk below follows: wal2json's top object, a column list,
 * an entry, and values nested in a value. */
#define REPAIR_DEPTH 64

/* The index after the JSON string whose quote is at m[i], 0 when it does
 * not end. */
static size_t string_end(const char *m, size_t n, size_t i)
{
        for (i++; i < n; i++) {
                if (m[i] == '\\')
                        i++;
                else if (m[i] == '"')
                        return i + 1;
        }
        return 0;
}

static bool lit_at(const char *m, size_t n, size_t i, const char *lit)
{
        size_t k = strlen(lit);

        return n - i >= k && memcmp(m + i, lit, k) == 0;
}

/* Is m[i..] what wal2json writes after a column's type? */
static bool type_continues(const char *m, size_t n, size_t i)
{
        if (i >= n)
                return false;
        if (m[i] == ',')
                return lit_at(m, n, i, ",\"typeoid\":") ||
                       lit_at(m, n, i, ",\"value\":");
        return lit_at(m, n, i, "},{") || lit_at(m, n, i, "}]");
}

static bool plain_ident_byte(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* The index after the format_type() text that starts at m[i], 0 when
 * there is none. */
static size_t format_type_end(const char *m, size_t n, size_t i)
{
        for (;;) {
                if (i < n && m[i] == '"') {
                        for (i++;; i++) {
                                if (i >= n)
                                        return 0;
                                if (m[i] != '"')
                                        continue;
                                if (i + 1 < n && m[i + 1] == '"') {
                                        i++;
                                        continue;
                                }
                                i++;
                                break;
                        }
                } else {
                        size_t start = i;

                        while (i < n && plain_ident_byte((unsigned char)m[i]))
                                i++;
                        if (i == start)
                                return 0;
                }
                if (i < n && m[i] == '.') {
                        i++;
                        continue;
                }
                break;
        }
        if (i < n && m[i] == '(') {
                int level = 0;

                do {
                        if (i >= n || m[i] == '"' || (unsigned char)m[i] < 0x20)
                                return 0;
                        if (m[i] == '(')
                                level++;
                        else if (m[i] == ')')
                                level--;
                        i++;
                } while (level > 0);
        }
        while (n - i >= 2 && m[i] == '[' && m[i + 1] == ']')
                i += 2;
        return i;
}

/* Appends m[from..to) to out as a JSON string. */
static int append_escaped(struct wc_buf *out, const char *m, size_t from,
                          size_t to)
{
        int r = wc_buf_append_char(out, '"');

        for (size_t i = from; i < to && !r; i++) {
                unsigned char c = (unsigned char)m[i];

                if (c == '"' || c == '\\') {
                        r = wc_buf_append_char(out, '\\');
                        if (!r)
                                r = wc_buf_append_char(out, (char)c);
                } else if (c < 0x20) {
                        r = wc_buf_printf(out, "\\u%04x", c);
                } else {
                        r = wc_buf_append_char(out, (char)c);
                }
        }
        if (!r)
                r = wc_buf_append_char(out, '"');
        return r;
}

/*
 * Walks the message m[0..n) as JSON and writes to out a copy in which each
 * unescaped type name is a JSON string.  1 when it made one, 0 when there
 * was nothing to repair or the message is not wal2json's shape with that
 * defect (its error stands), -ENOMEM.
 */
static int repair_types(const char *m, size_t n, struct wc_buf *out)
{
        char stack[REPAIR_DEPTH];
        size_t depth = 0, copied = 0, i = 0;
        /* at an object's key; the last top-level key names a column list;
         * the key just read is an entry's "type"; its value is next */
        bool want_key = false, list_key = false, type_key = false;
        bool type_value = false, in_list = false;
        int r, fixed = 0;

        wc_buf_reset(out);
        while (i < n) {
                char c = m[i];
                size_t e;

                switch (c) {
                case '{':
                case '[':
                        if (depth == REPAIR_DEPTH)
                                return 0;
                        if (depth == 1)
                                in_list = c == '[' && list_key;
                        stack[depth++] = c;
                        want_key = c == '{';
                        type_value = false;
                        i++;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return 0;
                        depth--;
                        want_key = type_value = false;
                        i++;
                        break;
                case ',':
                        want_key = depth && stack[depth - 1] == '{';
                        type_value = false;
                        i++;
                        break;
                case ':':
                        type_value = type_key;
                        type_key = want_key = false;
                        i++;
                        break;
                case '"':
                        e = string_end(m, n, i);
                        if (type_value) {
                                type_value = false;
                                if (e && type_continues(m, n, e)) {
                                        i = e;
                                        break;
                                }
                                e = format_type_end(m, n, i);
                                if (!e || !type_continues(m, n, e))
                                        return 0;
                                r = wc_buf_append(out, m + copied, i - copied);
                                if (!r)
                                        r = append_escaped(out, m, i, e);
                                if (r < 0)
                                        return -ENOMEM;
                                copied = i = e;
                                fixed = 1;
                                break;
                        }
                        if (!e)
                                return 0;
                        if (want_key && depth == 1)
                                list_key = lit_at(m, e, i, "\"columns\"") ||
                                           lit_at(m, e, i, "\"identity\"") ||
                                           lit_at(m, e, i, "\"pk\"");
                        type_key = want_key && depth == 3 && in_list &&
                                   stack[2] == '{' && e - i == 6 &&
                                   memcmp(m + i, "\"type\"", 6) == 0;
                        want_key = false;
                        i = e;
                        break;
                default:
                        if (!is_ws(c))
                                type_value = false;
                        i++;
                        break;
                }
        }
        if (!fixed)
                return 0;
        if (wc_buf_append(out, m + copied, n - copied) < 0)
                return -ENOMEM;
        return 1;
}

/* Sets up d to read msg[0..len) from its start. */
static void begin(struct wc_decoder *d, char *msg, size_t len)
{
        d->msg = msg;
        d->p = msg;
        d->end = msg ? msg + len : msg;
        d->names_cur = d->names;
        for (struct names_chunk *c = d->names; c; c = c->next)
                c->used = 0;
        memset(&d->change, 0, sizeof(d->change));
}

int wc_decoder_decode(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen)
{
        int r;

        d->len = len;
        d->at = at;
        d->errbuf = errbuf;
        d->errlen = errlen;
        d->excerpt = (const unsigned char *)msg;
        d->excerpt_len = len < EXCERPT_MAX ? len : EXCERPT_MAX;
        begin(d, msg, len);

        /* column values carry 32-bit lengths */
        if (len > INT32_MAX - 2)
                return fail(d, "message of %zu bytes is too large", len);
        if (!msg)
                return fail(d, "empty message");
        r = decode_message(d);
        if (r == -EBADMSG) {
                int fixed = repair_types(msg, len, &d->repair);

                if (fixed < 0)
                        return fail_nomem(d);
                if (fixed > 0 && d->repair.len <= INT32_MAX - 2) {
                        /* the first error stands if this fails too */
                        d->errbuf = NULL;
                        d->errlen = 0;
                        begin(d, d->repair.data, d->repair.len);
                        r = decode_message(d);
                        d->errbuf = errbuf;
                        d->errlen = errlen;
                        if (r == -ENOMEM)
                                return fail_nomem(d);
                        if (r < 0)
                                return -EBADMSG;
                }
        }
        if (r < 0)
                return r;
        *ret_change = &d->change;
        return 0;
}

int wc_decoder_relation(struct wc_decoder *d, char *msg, size_t len,
                        const struct wc_change **ret_change)
{
        struct wc_change *ch = &d->change;
        const struct action_rule *rule = NULL;
        unsigned seen = 0;
        int r;

        d->errbuf = NULL;
        d->errlen = 0;
        begin(d, msg, len);
        if (!msg || len > INT32_MAX - 2)
                return -EBADMSG;
        skip_ws(d);
        if (d->p >= d->end || *d->p != '{')
                return -EBADMSG;
        d->p++;
        do {
                const char *s = NULL;
                size_t n = 0;
                int key;

                skip_ws(d);
                key = key_index(d, key_names, K__COUNT, top_key, NULL);
                if (key < 0)
                        return -EBADMSG;
                if (seen & KB(key))
                        return -EBADMSG;
                seen |= KB(key);
                switch (key) {
                case K_ACTION:
                        r = string_value(d, "action", &s, &n);
                        if (r < 0)
                                return r;
                        for (size_t a = 0;
                             n == 1 &&
                             a < sizeof(action_rules) / sizeof(action_rules[0]);
                             a++)
                                if (action_rules[a].action == s[0])
                                        rule = &action_rules[a];
                        if (!rule || !(rule->required & KB(K_SCHEMA)))
                                return -EBADMSG;
                        break;
                case K_SCHEMA:
                        r = name(d, "schema", true, &ch->schema,
                                 &ch->schema_len);
                        break;
                case K_TABLE:
                        r = name(d, "table", true, &ch->table, &ch->table_len);
                        break;
                case K_COLUMNS:
                case K_IDENTITY:
                case K_PK:
                        /* wal2json writes the relation first: a message
                         * that names it later is not one to skip */
                        return -EBADMSG;
                default:
                        r = any_value(d, &s, &n);
                        break;
                }
                if (r < 0)
                        return r;
                if (rule && ch->schema && ch->table) {
                        ch->op = rule->op;
                        *ret_change = ch;
                        return 0;
                }
                r = next_member(d, '}');
                if (r < 0)
                        return r;
        } while (r);
        return -EBADMSG;
}
