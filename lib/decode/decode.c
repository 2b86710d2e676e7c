/* SPDX-License-Identifier: MIT */
/*
 * wal2json format-version 2 decoder.
 *
 * jsmn tokenizes the message in one pass but, even in strict mode, is not
 * a validator: it accepts missing and extra commas, "tru" as a primitive,
 * raw control characters and invalid UTF-8 in strings.  Column values are
 * handed to sinks as the JSON text we received, so anything that is not
 * valid JSON must be refused here, once.
 *
 * So after jsmn, one walk over the tokens both checks and decodes: every
 * token is visited once, its parent link and size are checked against the
 * place the walk expects it, and the bytes between two tokens must be the
 * separator the tree implies (jsmn only matched the brackets).  The walk
 * knows wal2json's shape; a column value, which may be any JSON value, is
 * checked by a generic loop over its subtree.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "decode/decode.h"

/* How much of a message an error quotes. */
#define EXCERPT_MAX 80
/* Room for the longest message seen so far is kept; start with enough
 * tokens for a row of a couple of dozen columns. */
#define TOKENS_INITIAL 256

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

struct col_vec {
        struct walcast_column *items;
        size_t cap;
};

struct wc_decoder {
        jsmntok_t *tok;
        unsigned int tok_cap;
        struct col_vec cols, ident, pk;
        struct wc_change change;

        /* Per call. */
        const char *msg;
        size_t len;
        int ntok;
        wc_lsn at;
        char *errbuf;
        size_t errlen;
        /* Names are decoded in place: errors quote this copy. */
        unsigned char excerpt[EXCERPT_MAX];
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
        d->tok = malloc(TOKENS_INITIAL * sizeof(*d->tok));
        if (!d->tok) {
                free(d);
                return NULL;
        }
        d->tok_cap = TOKENS_INITIAL;
        return d;
}

void wc_decoder_free(struct wc_decoder *d)
{
        if (!d)
                return;
        free(d->tok);
        free(d->cols.items);
        free(d->ident.items);
        free(d->pk.items);
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

/* ---- checks on bytes ---- */

static inline uint64_t has_less(uint64_t x, uint64_t n)
{
        return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint64_t c)
{
        return has_less(x ^ (ONES * c), 1);
}

/* Bytes a string check must look at one by one: controls, non-ASCII and
 * backslashes.  Only the lowest flagged byte is exact (borrows can flag
 * bytes above it), which is all a scan needs. */
static inline uint64_t special_bytes(uint64_t x)
{
        return has_less(x, 0x20) | (x & HIGHS) | has_byte(x, '\\');
}

static inline bool is_ws(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
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

/*
 * The body of a string token: no raw control characters, valid UTF-8,
 * escapes jsmn accepted plus surrogates in pairs (what decodes to valid
 * UTF-8 is the only thing a sink can re-encode).  Returns 1 when the
 * string has escapes, 0 when it is plain.
 */
static int check_string(struct wc_decoder *d, const jsmntok_t *t)
{
        const unsigned char *p = (const unsigned char *)d->msg + t->start;
        const unsigned char *end = (const unsigned char *)d->msg + d->len;
        size_t n = (size_t)(t->end - t->start), i = 0;
        int escaped = 0;

        while (i < n) {
                unsigned char c;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* Eight bytes at a time, reading past the string's end
                 * (never the message's): the closing quote and what
                 * follows are simply ignored. */
                if (end - (p + i) >= 8) {
                        uint64_t x, m;

                        memcpy(&x, p + i, 8);
                        m = special_bytes(x);
                        if (!m) {
                                i += 8;
                                continue;
                        }
                        i += (size_t)__builtin_ctzll(m) >> 3;
                        if (i >= n)
                                break;
                }
#endif
                c = p[i];
                if (c >= 0x20 && c < 0x80 && c != '\\') {
                        i++;
                        continue;
                }
                if (c < 0x20)
                        return fail(d, "control character 0x%02x at offset %d",
                                    c, t->start + (int)i);
                if (c == '\\') {
                        long cu, lo;

                        escaped = 1;
                        if (i + 1 >= n)
                                return fail(d, "bad escape at offset %d",
                                            t->start + (int)i);
                        if (p[i + 1] != 'u') {
                                i += 2;
                                continue;
                        }
                        cu = u_escape(p + i, n - i);
                        if (cu < 0)
                                return fail(d, "bad escape at offset %d",
                                            t->start + (int)i);
                        if (cu >= 0xdc00 && cu <= 0xdfff)
                                return fail(d,
                                            "lone surrogate \\u%04lx at "
                                            "offset %d",
                                            cu, t->start + (int)i);
                        if (cu >= 0xd800 && cu <= 0xdbff) {
                                lo = u_escape(p + i + 6, n - i - 6);
                                if (lo < 0xdc00 || lo > 0xdfff)
                                        return fail(d,
                                                    "lone surrogate \\u%04lx "
                                                    "at offset %d",
                                                    cu, t->start + (int)i);
                                i += 6;
                        }
                        i += 6;
                        continue;
                }
                {
                        size_t k = utf8_seq(p + i, n - i);

                        if (k == 0)
                                return fail(d, "invalid UTF-8 at offset %d",
                                            t->start + (int)i);
                        i += k;
                }
        }
        return escaped;
}

/* JSON's grammar for what jsmn calls a primitive: it takes any run of
 * printable bytes. */
static bool valid_primitive(const char *p, size_t n)
{
        size_t i = 0;

        switch (p[0]) {
        case 't':
                return n == 4 && memcmp(p, "true", 4) == 0;
        case 'f':
                return n == 5 && memcmp(p, "false", 5) == 0;
        case 'n':
                return n == 4 && memcmp(p, "null", 4) == 0;
        }
        if (p[i] == '-')
                i++;
        if (i == n)
                return false;
        if (p[i] == '0') {
                i++;
        } else if (p[i] >= '1' && p[i] <= '9') {
                while (i < n && p[i] >= '0' && p[i] <= '9')
                        i++;
        } else {
                return false;
        }
        if (i < n && p[i] == '.') {
                size_t s = ++i;

                while (i < n && p[i] >= '0' && p[i] <= '9')
                        i++;
                if (i == s)
                        return false;
        }
        if (i < n && (p[i] == 'e' || p[i] == 'E')) {
                size_t s;

                i++;
                if (i < n && (p[i] == '+' || p[i] == '-'))
                        i++;
                s = i;
                while (i < n && p[i] >= '0' && p[i] <= '9')
                        i++;
                if (i == s)
                        return false;
        }
        return i == n;
}

/* ---- checks on the token tree ---- */

/* For the few helpers every token goes through: measured, inlining them
 * takes about 6% off a typical message. */
#define HOT __attribute__((always_inline)) static inline

/* A token's bytes including a string's quotes. */
static inline int ext_start(const jsmntok_t *t)
{
        return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static inline int ext_end(const jsmntok_t *t)
{
        return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/*
 * The bytes between two tokens: whitespace and closing brackets (jsmn
 * matched those), then exactly the separator the tree implies (',' or
 * ':', or none), then whitespace.
 */
static inline bool valid_gap(const char *msg, int from, int to, char sep)
{
        bool seen = false;

        /* what wal2json writes: a bare separator, or nothing */
        if (sep ? to - from == 1 && msg[from] == sep : to == from)
                return true;
        for (int i = from; i < to; i++) {
                char c = msg[i];

                if (is_ws(c))
                        continue;
                if (!seen && (c == ']' || c == '}'))
                        continue;
                if (sep && !seen && c == sep) {
                        seen = true;
                        continue;
                }
                return false;
        }
        return seen || !sep;
}

static int bad_json(struct wc_decoder *d, int offset)
{
        return fail(d, "invalid JSON at offset %d", offset);
}

/* Index of the token after t[i] and everything nested in it. */
static int skip(const struct wc_decoder *d, int i)
{
        const jsmntok_t *t = d->tok;
        int end = t[i].end;
        int j = i + 1;

        if (t[i].type == JSMN_OBJECT || t[i].type == JSMN_ARRAY)
                while (j < d->ntok && t[j].start < end)
                        j++;
        return j;
}

/*
 * Element j of container c (first when j == c + 1): its parent link and
 * the bytes before it.  For an object, also the key's single value and
 * the colon, so the value is at j + 1.
 */
HOT int check_member(struct wc_decoder *d, int c, int j)
{
        const jsmntok_t *t = d->tok;
        int from;
        bool ok;

        if (j >= d->ntok || t[j].parent != c)
                return bad_json(d, t[c].end - 1);
        if (j == c + 1) {
                from = t[c].start + 1;
                ok = valid_gap(d->msg, from, ext_start(&t[j]), 0);
        } else {
                from = ext_end(&t[j - 1]);
                ok = valid_gap(d->msg, from, ext_start(&t[j]), ',');
        }
        if (!ok)
                return bad_json(d, from);
        if (t[c].type != JSMN_OBJECT)
                return 0;
        /* strict jsmn only makes strings keys; one value each */
        if (t[j].type != JSMN_STRING || t[j].size != 1 || j + 1 >= d->ntok ||
            t[j + 1].parent != j)
                return fail(d,
                            "invalid JSON (object key without a value) "
                            "at offset %d",
                            t[j].start - 1);
        if (!valid_gap(d->msg, t[j].end + 1, ext_start(&t[j + 1]), ':'))
                return bad_json(d, t[j].end + 1);
        return 0;
}

/* The end of container c, whose last token (itself when empty) is
 * `last`: nothing but closing brackets in between, and no token of it
 * left over. */
static int check_end(struct wc_decoder *d, int c, int last)
{
        const jsmntok_t *t = d->tok;
        int from = last == c ? t[c].start + 1 : ext_end(&t[last]);

        if (!valid_gap(d->msg, from, t[c].end - 1, 0))
                return bad_json(d, from);
        if (last + 1 < d->ntok && t[last + 1].start < t[c].end)
                return bad_json(d, t[last + 1].start);
        return 0;
}

/*
 * Any JSON value at t[v], as a column value may be; *ret_next is the token
 * after it.  Containers are checked token by token in document order, so
 * nesting costs no recursion.
 */
static int check_value(struct wc_decoder *d, int v, int *ret_next)
{
        const jsmntok_t *t = d->tok;
        int end, r;

        switch (t[v].type) {
        case JSMN_STRING:
                if (t[v].size != 0)
                        return bad_json(d, t[v].end + 1);
                r = check_string(d, &t[v]);
                if (r < 0)
                        return r;
                *ret_next = v + 1;
                return 0;
        case JSMN_PRIMITIVE:
                if (t[v].size != 0 ||
                    !valid_primitive(d->msg + t[v].start,
                                     (size_t)(t[v].end - t[v].start)))
                        return fail(d, "invalid JSON value at offset %d",
                                    t[v].start);
                *ret_next = v + 1;
                return 0;
        default:
                break;
        }

        end = skip(d, v);
        for (int i = v + 1; i < end; i++) {
                const jsmntok_t *cur = &t[i];
                int p = cur->parent;

                if (p < v || p >= i)
                        return bad_json(d, cur->start);
                if (t[p].type == JSMN_OBJECT || t[p].type == JSMN_ARRAY) {
                        /* for an object, this also takes the value */
                        r = check_member(d, p, i);
                        if (r < 0)
                                return r;
                } else if (t[p].type != JSMN_STRING || p != i - 1 ||
                           t[p].parent < v ||
                           t[t[p].parent].type != JSMN_OBJECT) {
                        return bad_json(d, cur->start);
                }
                switch (cur->type) {
                case JSMN_STRING:
                        r = check_string(d, cur);
                        if (r < 0)
                                return r;
                        break;
                case JSMN_PRIMITIVE:
                        if (cur->size != 0 ||
                            !valid_primitive(d->msg + cur->start,
                                             (size_t)(cur->end - cur->start)))
                                return fail(d,
                                            "invalid JSON value at offset %d",
                                            cur->start);
                        break;
                default:
                        if (cur->size == 0) {
                                r = check_end(d, i, i);
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
        }
        /* the closing brackets after the last token of the subtree */
        r = check_end(d, v, end - 1);
        if (r < 0)
                return r;
        *ret_next = end;
        return 0;
}

/* ---- scalars ---- */

static char *tok_ptr(struct wc_decoder *d, const jsmntok_t *t)
{
        return (char *)d->msg + t->start;
}

static size_t tok_len(const jsmntok_t *t)
{
        return (size_t)(t->end - t->start);
}

static bool is_null(struct wc_decoder *d, const jsmntok_t *t)
{
        return t->type == JSMN_PRIMITIVE && tok_len(t) == 4 &&
               memcmp(d->msg + t->start, "null", 4) == 0;
}

/* A string value decoded in place: names, and the few scalars we read. */
HOT int name(struct wc_decoder *d, const jsmntok_t *t, const char *what,
             bool nonempty, const char **ret_s, size_t *ret_len)
{
        char *s = tok_ptr(d, t);
        size_t n = tok_len(t);
        int r;

        if (t->type != JSMN_STRING)
                return fail(d, "\"%s\" is not a string", what);
        if (t->size != 0)
                return bad_json(d, t->end + 1);
        r = check_string(d, t);
        if (r < 0)
                return r;
        if (r > 0) {
                if (wc_json_unescape_inplace(s, n, &n) < 0)
                        return fail(d, "bad escape in \"%s\"", what);
                /* Names travel as C strings from here on; raw NULs were
                 * refused above, so only \u0000 can make one. */
                if (memchr(s, '\0', n))
                        return fail(d, "\\u0000 in \"%s\"", what);
        } else {
                s[n] = '\0';
        }
        if (nonempty && n == 0)
                return fail(d, "\"%s\" is empty", what);
        *ret_s = s;
        *ret_len = n;
        return 0;
}

HOT int uint32_value(struct wc_decoder *d, const jsmntok_t *t, const char *what,
                     uint32_t *ret)
{
        const char *p = d->msg + t->start;
        size_t n = tok_len(t);
        uint64_t v = 0;

        if (t->type != JSMN_PRIMITIVE)
                return fail(d, "\"%s\" is not a number", what);
        /* Digits without a leading zero are a valid JSON number. */
        if (t->size == 0 && n <= 10 && (p[0] != '0' || n == 1)) {
                size_t i = 0;

                while (i < n && p[i] >= '0' && p[i] <= '9')
                        v = v * 10 + (uint64_t)(p[i++] - '0');
                if (i == n && v <= UINT32_MAX) {
                        *ret = (uint32_t)v;
                        return 0;
                }
        }
        if (t->size != 0 || !valid_primitive(p, n))
                return fail(d, "invalid JSON value at offset %d", t->start);
        if (p[0] == '-' || (p[0] >= '0' && p[0] <= '9'))
                return fail(d, "\"%s\" is not a 32-bit unsigned integer", what);
        return fail(d, "\"%s\" is not a number", what);
}

static int lsn_value(struct wc_decoder *d, const jsmntok_t *t, const char *what,
                     wc_lsn *ret)
{
        const char *s = NULL;
        char q[48];
        size_t n = 0;
        int r;

        r = name(d, t, what, false, &s, &n);
        if (r < 0)
                return r;
        if (wc_lsn_parse_n(s, n, ret) < 0)
                return fail(d, "invalid \"%s\" \"%s\"", what,
                            quote(q, sizeof(q), s, n));
        return 0;
}

/*
 * Which of `names` the key t[j] is.  Raw bytes equal to a known key need
 * no decoding (and are valid as they are); anything else is decoded in
 * place, in case it is a known key spelled with escapes.
 */
HOT int key_index(struct wc_decoder *d, const jsmntok_t *t,
                  const char *const *names, int count,
                  int (*fast)(const char *, size_t), const char *where)
{
        const char *s = tok_ptr(d, t);
        size_t n = tok_len(t);
        char q[48];
        int k;

        k = fast(s, n);
        if (k >= 0)
                return k;
        if (memchr(s, '\\', n)) {
                /* a key: a string of size 1, its value being its child */
                int r = check_string(d, t);

                if (r < 0)
                        return r;
                if (wc_json_unescape_inplace(tok_ptr(d, t), tok_len(t), &n) < 0)
                        return fail(d, "bad escape in a key at offset %d",
                                    t->start);
                for (k = 0; k < count; k++)
                        if (strlen(names[k]) == n &&
                            memcmp(names[k], s, n) == 0)
                                return k;
        }
        if (where)
                return fail(d, "unknown key \"%s\" in \"%s\"",
                            quote(q, sizeof(q), s, n), where);
        return fail(d, "unknown key \"%s\"", quote(q, sizeof(q), s, n));
}

/* wal2json's spelling of the top-level keys */
static int top_key(const char *s, size_t n)
{
        int k;

        switch (n) {
        case 2:
                k = K_PK;
                break;
        case 3:
                k = s[0] == 'x' ? K_XID : K_LSN;
                break;
        case 5:
                k = K_TABLE;
                break;
        case 6:
                k = s[0] == 'a'   ? K_ACTION
                    : s[0] == 'o' ? K_ORIGIN
                    : s[0] == 's' ? K_SCHEMA
                                  : K_PREFIX;
                break;
        case 7:
                k = s[0] == 'n'   ? K_NEXTLSN
                    : s[2] == 'l' ? K_COLUMNS
                                  : K_CONTENT;
                break;
        case 8:
                k = K_IDENTITY;
                break;
        case 9:
                k = K_TIMESTAMP;
                break;
        case 13:
                k = K_TRANSACTIONAL;
                break;
        default:
                return -1;
        }
        return memcmp(s, key_names[k], n) == 0 ? k : -1;
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

/* ---- columns ---- */

static int reserve_cols(struct wc_decoder *d, struct col_vec *v, size_t n)
{
        struct walcast_column *grown;
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
        v->cap = cap;
        return 0;
}

/* One {"name":..,"type":..,"typeoid":..,"value":..} at t[o]; *ret_next is
 * the token after it. */
static int column(struct wc_decoder *d, int o, const char *what,
                  bool with_value, struct walcast_column *col, int *ret_next)
{
        const jsmntok_t *t = d->tok;
        unsigned seen = 0;
        int j = o + 1;
        size_t n = 0;
        int r;

        if (t[o].type != JSMN_OBJECT)
                return fail(d, "an entry of \"%s\" is not an object", what);
        col->type_oid = 0;
        col->value = d->msg + t[o].end;
        col->value_len = 0;
        for (int k = 0; k < t[o].size; k++) {
                const jsmntok_t *v;
                int ck;

                r = check_member(d, o, j);
                if (r < 0)
                        return r;
                ck =
                    key_index(d, &t[j], col_key_names, C__COUNT, col_key, what);
                if (ck < 0)
                        return ck;
                if (ck == C_VALUE && !with_value)
                        return fail(d, "unexpected key \"value\" in \"%s\"",
                                    what);
                if (seen & KB(ck))
                        return fail(d, "duplicate key \"%s\" in \"%s\"",
                                    col_key_names[ck], what);
                seen |= KB(ck);
                v = &t[j + 1];
                switch (ck) {
                case C_NAME:
                        r = name(d, v, "name", true, &col->name, &n);
                        col->name_len = (uint32_t)n;
                        j += 2;
                        break;
                case C_TYPE:
                        r = name(d, v, "type", true, &col->type, &n);
                        col->type_len = (uint32_t)n;
                        j += 2;
                        break;
                case C_TYPEOID:
                        r = uint32_value(d, v, "typeoid", &col->type_oid);
                        j += 2;
                        break;
                default:
                        r = check_value(d, j + 1, &j);
                        /* the JSON text as sent: strings keep quotes and
                         * escapes */
                        col->value = d->msg + ext_start(v);
                        col->value_len = (uint32_t)(ext_end(v) - ext_start(v));
                        break;
                }
                if (r < 0)
                        return r;
        }
        r = check_end(d, o, j - 1);
        if (r < 0)
                return r;
        if (!(seen & KB(C_NAME)) || !(seen & KB(C_TYPE)) ||
            (with_value && !(seen & KB(C_VALUE))))
                return fail(d, "an entry of \"%s\" lacks \"%s\"", what,
                            !(seen & KB(C_NAME))   ? "name"
                            : !(seen & KB(C_TYPE)) ? "type"
                                                   : "value");
        *ret_next = j;
        return 0;
}

static int column_list(struct wc_decoder *d, int a, enum key k,
                       struct col_vec *v, struct walcast_columns *ret)
{
        const jsmntok_t *t = d->tok;
        const char *what = key_names[k];
        size_t count;
        int j = a + 1;
        int r;

        if (t[a].type != JSMN_ARRAY)
                return fail(d, "\"%s\" is not an array", what);
        count = (size_t)t[a].size;
        r = reserve_cols(d, v, count);
        if (r < 0)
                return r;
        for (size_t c = 0; c < count; c++) {
                r = check_member(d, a, j);
                if (r < 0)
                        return r;
                r = column(d, j, what, k != K_PK, &v->items[c], &j);
                if (r < 0)
                        return r;
        }
        r = check_end(d, a, j - 1);
        if (r < 0)
                return r;
        ret->items = v->items;
        ret->count = (uint32_t)count;
        return 0;
}

/* ---- the message ---- */

static int decode_message(struct wc_decoder *d)
{
        const jsmntok_t *t = d->tok;
        struct wc_change *ch = &d->change;
        const struct action_rule *rule = NULL;
        int at[K__COUNT] = {0};
        unsigned seen = 0;
        const char *s = NULL;
        size_t len = 0;
        char q[48];
        int j = 1;
        int r;

        if (t[0].type != JSMN_OBJECT)
                return fail(d, "not a JSON object");
        for (int i = 0; i < t[0].start; i++)
                if (!is_ws(d->msg[i]))
                        return fail(d, "unexpected data before the object");
        for (size_t i = (size_t)t[0].end; i < d->len; i++)
                if (!is_ws(d->msg[i]))
                        return fail(d, "unexpected data after the object");

        /* Keys first: what a value means depends on the action, which
         * need not come first. */
        for (int k = 0; k < t[0].size; k++) {
                int key;

                r = check_member(d, 0, j);
                if (r < 0)
                        return r;
                key = key_index(d, &t[j], key_names, K__COUNT, top_key, NULL);
                if (key < 0)
                        return key;
                if (seen & KB(key))
                        return fail(d, "duplicate key \"%s\"", key_names[key]);
                seen |= KB(key);
                at[key] = j + 1;
                j = skip(d, j + 1);
        }
        r = check_end(d, 0, j - 1);
        if (r < 0)
                return r;

        if (!(seen & KB(K_ACTION)))
                return fail(d, "missing \"action\"");
        r = name(d, &t[at[K_ACTION]], "action", false, &s, &len);
        if (r < 0)
                return r;
        for (size_t a = 0;
             len == 1 && a < sizeof(action_rules) / sizeof(action_rules[0]);
             a++)
                if (action_rules[a].action == s[0])
                        rule = &action_rules[a];
        if (!rule)
                return fail(d, "unknown action \"%s\"",
                            quote(q, sizeof(q), s, len));
        if (seen & ~rule->allowed)
                return fail(d, "unexpected key \"%s\" for action \"%c\"",
                            key_names[__builtin_ctz(seen & ~rule->allowed)],
                            rule->action);
        if (rule->required & ~seen)
                return fail(d, "missing \"%s\" for action \"%c\"",
                            key_names[__builtin_ctz(rule->required & ~seen)],
                            rule->action);
        ch->op = rule->op;

        /* Every value is checked here, even those struct wc_change has no
         * room for. */
        if (seen & KB(K_XID)) {
                const jsmntok_t *v = &t[at[K_XID]];

                if (!is_null(d, v)) {
                        r = uint32_value(d, v, "xid", &ch->xid);
                        if (r < 0)
                                return r;
                        ch->has_xid = true;
                }
        }
        if (seen & KB(K_TIMESTAMP)) {
                const jsmntok_t *v = &t[at[K_TIMESTAMP]];

                if (!is_null(d, v)) {
                        r = name(d, v, "timestamp", false, &s, &len);
                        if (r < 0)
                                return r;
                        if (wc_time_parse(s, len, &ch->time_us) < 0)
                                return fail(d, "invalid \"timestamp\" \"%s\"",
                                            quote(q, sizeof(q), s, len));
                        ch->has_time = true;
                }
        }
        if (seen & KB(K_ORIGIN)) {
                const jsmntok_t *v = &t[at[K_ORIGIN]];
                uint32_t origin;

                if (!is_null(d, v)) {
                        r = uint32_value(d, v, "origin", &origin);
                        if (r < 0)
                                return r;
                }
        }
        if (seen & KB(K_LSN)) {
                const jsmntok_t *v = &t[at[K_LSN]];
                bool txn = rule->op == WC_OP_BEGIN || rule->op == WC_OP_COMMIT;

                /* a message outside a transaction may lack a position */
                if (!(rule->op == WC_OP_MESSAGE && is_null(d, v))) {
                        r = lsn_value(d, v, "lsn",
                                      txn ? &ch->commit_lsn : &ch->lsn);
                        if (r < 0)
                                return r;
                }
        }
        if (seen & KB(K_NEXTLSN)) {
                r = lsn_value(d, &t[at[K_NEXTLSN]], "nextlsn", &ch->end_lsn);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_SCHEMA)) {
                r = name(d, &t[at[K_SCHEMA]], "schema", true, &ch->schema,
                         &ch->schema_len);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_TABLE)) {
                r = name(d, &t[at[K_TABLE]], "table", true, &ch->table,
                         &ch->table_len);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_COLUMNS)) {
                r = column_list(d, at[K_COLUMNS], K_COLUMNS, &d->cols,
                                &ch->columns);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_IDENTITY)) {
                r = column_list(d, at[K_IDENTITY], K_IDENTITY, &d->ident,
                                &ch->identity);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_PK)) {
                r = column_list(d, at[K_PK], K_PK, &d->pk, &ch->pk);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_TRANSACTIONAL)) {
                const jsmntok_t *v = &t[at[K_TRANSACTIONAL]];
                const char *p = d->msg + v->start;
                size_t n = tok_len(v);

                if (v->type != JSMN_PRIMITIVE ||
                    !((n == 4 && memcmp(p, "true", 4) == 0) ||
                      (n == 5 && memcmp(p, "false", 5) == 0)))
                        return fail(d, "\"transactional\" is not a boolean");
                if (v->size != 0)
                        return bad_json(d, v->end);
                ch->transactional = p[0] == 't';
        }
        if (seen & KB(K_PREFIX)) {
                r = name(d, &t[at[K_PREFIX]], "prefix", false, &ch->prefix,
                         &ch->prefix_len);
                if (r < 0)
                        return r;
        }
        if (seen & KB(K_CONTENT)) {
                const jsmntok_t *v = &t[at[K_CONTENT]];

                if (v->type != JSMN_STRING)
                        return fail(d, "\"content\" is not a string");
                if (v->size != 0)
                        return bad_json(d, v->end + 1);
                r = check_string(d, v);
                if (r < 0)
                        return r;
                ch->content.ptr = d->msg + ext_start(v);
                ch->content.len = (size_t)(ext_end(v) - ext_start(v));
        }
        return 0;
}

static int tokenize(struct wc_decoder *d)
{
        jsmn_parser parser;
        int r;

        jsmn_init(&parser);
        for (;;) {
                jsmntok_t *grown;
                unsigned int cap;

                r = jsmn_parse(&parser, d->msg, d->len, d->tok, d->tok_cap);
                if (r != JSMN_ERROR_NOMEM)
                        break;
                /* jsmn leaves its state at the token it could not store,
                 * so parsing resumes where it stopped. */
                if (d->tok_cap > INT32_MAX / 2 / sizeof(*grown))
                        return fail_nomem(d);
                cap = d->tok_cap * 2;
                grown = realloc(d->tok, cap * sizeof(*grown));
                if (!grown)
                        return fail_nomem(d);
                d->tok = grown;
                d->tok_cap = cap;
        }
        if (r == JSMN_ERROR_INVAL)
                return fail(d, "invalid JSON at offset %u", parser.pos);
        if (r == JSMN_ERROR_PART) {
                size_t i = 0;

                /* jsmn stops at a NUL as if the text ended there */
                if (memchr(d->msg, '\0', d->len))
                        return fail(d, "zero byte in the message");
                /* and takes a lone number for an unfinished one */
                while (i < d->len && is_ws(d->msg[i]))
                        i++;
                if (i < d->len && d->msg[i] != '{')
                        return fail(d, "not a JSON object");
                return fail(d, "truncated JSON");
        }
        if (r == 0)
                return fail(d, "empty message");
        d->ntok = r;
        return 0;
}

int wc_decoder_decode(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen)
{
        int r;

        d->msg = msg;
        d->len = len;
        d->ntok = 0;
        d->at = at;
        d->errbuf = errbuf;
        d->errlen = errlen;
        d->excerpt_len = len < EXCERPT_MAX ? len : EXCERPT_MAX;
        if (d->excerpt_len)
                memcpy(d->excerpt, msg, d->excerpt_len);

        /* jsmn keeps offsets in int */
        if (len > INT32_MAX - 2)
                return fail(d, "message of %zu bytes is too large", len);
        memset(&d->change, 0, sizeof(d->change));
        r = tokenize(d);
        if (r < 0)
                return r;
        r = decode_message(d);
        if (r < 0)
                return r;
        *ret_change = &d->change;
        return 0;
}
