/* SPDX-License-Identifier: MIT */
/*
 * wal2json format-version 2 decoder, on the JSON scanner (json_scan.h).
 *
 * One pass over the bytes both validates and decodes.  Column values are
 * handed to sinks as the JSON text we received, so anything that is not
 * valid JSON must be refused here, once: every byte of the message is
 * looked at by the scanner.
 *
 * wal2json's shape is fixed: a flat object whose column lists hold flat
 * objects whose values are scalars.  The parser expects that shape and
 * wal2json's key order (a column's keys are first compared with the one
 * wal2json sends next), but accepts any key order and any JSON value as a
 * column value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/json_scan.h"
#include "decode/wal2json.h"

/* Longest timestamp text whose value is remembered: every change of a
 * transaction carries the same one. */
#define TS_CACHE_MAX 48
/* Decoded names are kept in chunks of at least this size. */
#define NAMES_CHUNK 4096
/* Names up to this long are copied with one fixed-size copy. */
#define NAME_SLACK 16

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

struct wal2json {
        struct wc_decoder base; /* first: a struct wc_decoder * is one */
        struct wc_jscan js;
        struct col_vec cols, ident, pk;
        struct wc_change change;
        struct names_chunk *names, *names_cur;
        /* the last timestamp text decoded, and its value */
        bool ts_valid;
        size_t ts_len;
        int64_t ts_us;
        char ts_text[TS_CACHE_MAX];
        struct wc_buf content; /* a content as base64 (content_base64()) */
        /* a message with wal2json's unescaped type names, escaped
         * (repair_types()) */
        struct wc_buf repair;
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

static struct wc_decoder *wal2json_create(void)
{
        struct wal2json *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        if (wc_jscan_init(&d->js, "wal2json") < 0) {
                free(d);
                return NULL;
        }
        return &d->base;
}

void wc_wal2json_set_avx2(struct wc_decoder *dec, bool on)
{
        struct wal2json *d = (struct wal2json *)dec;

        wc_jscan_set_avx2(&d->js, on);
}

static void wal2json_destroy(struct wc_decoder *dec)
{
        struct wal2json *d = (struct wal2json *)dec;

        if (!d)
                return;
        wc_jscan_destroy(&d->js);
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
/*
 * The content of a logical message whose bytes are not UTF-8 text
 * (pg_logical_emit_message with a bytea that is not): JSON cannot carry
 * them, so the change carries a JSON string of their base64 instead,
 * made in d->content.  wal2json writes such bytes as they are, its
 * escapes aside, which are decoded first.  The message itself is left as
 * it is (errors quote it).  0, or a negative errno with the error set.
 */
static int content_base64(struct wal2json *d, const char *body, size_t n,
                          struct wc_str *ret)
{
        size_t m, at;
        char *o;

        wc_buf_reset(&d->content);
        if (wc_buf_reserve(&d->content, n + 1 + WC_BASE64_LEN(n) + 3) < 0)
                return wc_jscan_fail(&d->js, "out of memory");
        memcpy(d->content.data, body, n);
        if (wc_json_unescape_inplace(d->content.data, n, &m) < 0)
                return wc_jscan_fail(&d->js, "invalid escape in \"content\"");
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

/* ---- names ---- */

static char *names_alloc_slow(struct wal2json *d, size_t n)
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
HOT char *names_alloc(struct wal2json *d, size_t n)
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
HOT void copy_name(const struct wal2json *d, char *dst, const char *s, size_t n)
{
        if (n <= NAME_SLACK && (size_t)(d->js.end - s) >= NAME_SLACK)
                memcpy(dst, s, NAME_SLACK);
        else
                memcpy(dst, s, n);
}

/* A string value decoded in place: names, and the few scalars we read.
 * NUL-terminated where its closing quote was. */
HOT int name(struct wal2json *d, const char *what, bool nonempty,
             const char **ret_s, size_t *ret_len)
{
        char *s = NULL, *dst;
        size_t n = 0;
        int r;

        r = wc_jscan_string_at(&d->js, what, &s, &n);
        if (r < 0)
                return r;
        /* Names travel as C strings: decoded into the decoder's storage,
         * so that the message stays the text wal2json sent. */
        dst = names_alloc(d, n + 1);
        if (!dst)
                return wc_jscan_nomem(&d->js);
        copy_name(d, dst, s, n);
        if (r > 0) {
                if (wc_json_unescape_inplace(dst, n, &n) < 0)
                        return wc_jscan_fail(&d->js, "bad escape in \"%s\"",
                                             what);
                /* raw NULs were refused above, so only \u0000 can make
                 * one */
                if (memchr(dst, '\0', n))
                        return wc_jscan_fail(&d->js, "\\u0000 in \"%s\"", what);
        } else {
                dst[n] = '\0';
        }
        if (nonempty && n == 0)
                return wc_jscan_fail(&d->js, "\"%s\" is empty", what);
        *ret_s = dst;
        *ret_len = n;
        return 0;
}

/* A string value for its bytes alone (an action, a position, a time):
 * as sent when it has no escapes, decoded otherwise; not NUL-terminated. */
HOT int string_value(struct wal2json *d, const char *what, const char **ret_s,
                     size_t *ret_len)
{
        char *s = NULL, *dst;
        size_t n = 0;
        int r;

        r = wc_jscan_string_at(&d->js, what, &s, &n);
        if (r < 0)
                return r;
        if (r > 0) {
                dst = names_alloc(d, n + 1);
                if (!dst)
                        return wc_jscan_nomem(&d->js);
                memcpy(dst, s, n);
                if (wc_json_unescape_inplace(dst, n, &n) < 0)
                        return wc_jscan_fail(&d->js, "bad escape in \"%s\"",
                                             what);
                s = dst;
        }
        *ret_s = s;
        *ret_len = n;
        return 0;
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

static int lsn_value(struct wal2json *d, const char *what, wc_lsn *ret)
{
        const char *s = NULL;
        char q[48];
        size_t n = 0;
        uint32_t hi, lo;
        int r;

        /* "HI/LO" as wal2json writes it; anything else the long way */
        s = d->js.p;
        if (s < d->js.end && *s == '"' && (s = hex32(s + 1, d->js.end, &hi)) &&
            *s == '/' && (s = hex32(s + 1, d->js.end, &lo)) && *s == '"') {
                d->js.p = (char *)s + 1;
                *ret = (wc_lsn)hi << 32 | lo;
                return 0;
        }
        r = string_value(d, what, &s, &n);
        if (r < 0)
                return r;
        if (wc_lsn_parse_n(s, n, ret) < 0)
                return wc_jscan_fail(&d->js, "invalid \"%s\" \"%s\"", what,
                                     wc_jscan_quote(q, sizeof(q), s, n));
        return 0;
}

static int timestamp_value(struct wal2json *d, int64_t *ret_us)
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
                return wc_jscan_fail(&d->js, "invalid \"timestamp\" \"%s\"",
                                     wc_jscan_quote(q, sizeof(q), s, n));
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

/* The top-level key at d->js.p as wal2json writes it (no escapes, the colon
 * right after): which it is, with d->js.p past the colon and any whitespace
 * after it; -1 (d->js.p unchanged) when it is not one of those. */
HOT int top_key_at(struct wal2json *d)
{
        const char *p = d->js.p;
        size_t n = (size_t)(d->js.end - p);
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
                d->js.p += len;
                wc_jscan_skip_ws(&d->js);
        }
        return k;
}

/*
 * The key at d->js.p (which must be one): which of `names` it is, with d->js.p
 * moved past its colon and the whitespace after it.  Raw bytes equal to a
 * known key need no decoding; a key with escapes is decoded in place, in
 * case it is a known key spelled with them.
 */
static int key_index(struct wal2json *d, const char *const *names, int count,
                     int (*fast)(const char *, size_t), const char *where)
{
        char *s = NULL;
        size_t n = 0;
        char q[48], key[32];
        int k, r;

        wc_jscan_skip_ws(&d->js);
        if (d->js.p >= d->js.end || *d->js.p != '"')
                return wc_jscan_bad_json(&d->js, d->js.p);
        r = wc_jscan_string(&d->js, &s, &n);
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
                        return wc_jscan_fail(
                            &d->js, "bad escape in a key at offset %zu",
                            wc_jscan_offset(&d->js, s));
                s = key;
                for (k = count - 1; k >= 0; k--)
                        if (strlen(names[k]) == n &&
                            memcmp(names[k], s, n) == 0)
                                break;
        }
        if (k < 0) {
                if (where)
                        return wc_jscan_fail(
                            &d->js, "unknown key \"%s\" in \"%s\"",
                            wc_jscan_quote(q, sizeof(q), s, n), where);
                return wc_jscan_fail(&d->js, "unknown key \"%s\"",
                                     wc_jscan_quote(q, sizeof(q), s, n));
        }
        wc_jscan_skip_ws(&d->js);
        if (d->js.p >= d->js.end || *d->js.p != ':')
                return wc_jscan_bad_json(&d->js, d->js.p);
        d->js.p++;
        wc_jscan_skip_ws(&d->js);
        return k;
}

/* ---- columns ---- */

static int reserve_cols(struct wal2json *d, struct col_vec *v, size_t n)
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
                return wc_jscan_nomem(&d->js);
        v->items = grown;
        memo = realloc(v->memo, cap * sizeof(*memo));
        if (!memo)
                return wc_jscan_nomem(&d->js);
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
 * One {"name":..,"type":..,"typeoid":..,"value":..} at d->js.p.  *ret_canon
 * is the length the entry has in canonical form when its keys came in the
 * canonical order, 0 when not; then the entry is also remembered in m.
 */
static int column(struct wal2json *d, const char *what, bool with_value,
                  struct walcast_column *col, size_t *ret_canon,
                  struct col_memo *m)
{
        unsigned seen = 0;
        int guess = C_NAME;
        bool ordered = true;
        const char *entry, *value_at = NULL;
        size_t n = 0;
        int r;

        wc_jscan_skip_ws(&d->js);
        if (d->js.p >= d->js.end)
                return wc_jscan_truncated(&d->js);
        if (*d->js.p != '{')
                return wc_jscan_fail(
                    &d->js, "an entry of \"%s\" is not an object", what);
        col->type_oid = 0;
        col->value = entry = d->js.p;
        col->value_len = 0;
        d->js.p++;
        wc_jscan_skip_ws(&d->js);
        if (d->js.p < d->js.end && *d->js.p == '}') {
                d->js.p++;
                goto check;
        }
        do {
                const char *v = NULL;
                int ck;

                /* wal2json's next key, as it writes it, or any */
                size_t lit =
                    col_key_at(d->js.p, (size_t)(d->js.end - d->js.p), guess);

                if (lit) {
                        /* the value's reader skips any whitespace */
                        ck = guess;
                        d->js.p += lit;
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
                        return wc_jscan_fail(
                            &d->js, "unexpected key \"value\" in \"%s\"", what);
                if (seen & KB(ck))
                        return wc_jscan_fail(&d->js,
                                             "duplicate key \"%s\" in \"%s\"",
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
                        r = wc_jscan_uint32(&d->js, "typeoid", &col->type_oid);
                        break;
                default:
                        /* the JSON text as sent: strings keep quotes and
                         * escapes */
                        value_at = d->js.p;
                        r = wc_jscan_any_value(&d->js, &v, &n);
                        col->value = v;
                        col->value_len = (uint32_t)n;
                        break;
                }
                if (r < 0)
                        return r;
                r = wc_jscan_next_member(&d->js, '}');
                if (r < 0)
                        return r;
        } while (r);
check:
        if (!(seen & KB(C_NAME)) || !(seen & KB(C_TYPE)) ||
            (with_value && !(seen & KB(C_VALUE))))
                return wc_jscan_fail(&d->js, "an entry of \"%s\" lacks \"%s\"",
                                     what,
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
                        memo_set(m, entry, (size_t)(d->js.p - entry), col,
                                 canon);
        }
        return 0;
}

/*
 * The entry at d->js.p when it starts with the text m remembers: *col as
 * then, with the value read now.  Returns 1 with *ret_canon set when it
 * did, 0 (d->js.p unchanged) when the entry must take the long way, or an
 * error, which is the one the long way would give.
 */
HOT int column_memo(struct wal2json *d, bool with_value,
                    const struct col_memo *m, struct walcast_column *col,
                    size_t *ret_canon)
{
        char *entry = d->js.p;
        const char *v = NULL;
        size_t n = 0;
        int r;

        if (!m->len || (size_t)(d->js.end - entry) < m->len ||
            memcmp(entry, m->text, m->len) != 0)
                return 0;
        *col = m->col;
        d->js.p += m->len;
        if (!with_value) {
                /* the whole entry */
                col->value = entry;
                col->value_len = 0;
                *ret_canon = m->canon;
                return 1;
        }
        r = wc_jscan_any_value(&d->js, &v, &n);
        if (r < 0)
                return r;
        r = wc_jscan_next_member(&d->js, '}');
        if (r < 0)
                return r;
        if (r > 0) {
                /* a key after "value": the long way says which */
                d->js.p = entry;
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
static int column_list(struct wal2json *d, enum key k, struct col_vec *v,
                       struct walcast_columns *ret, struct wc_str *ret_json)
{
        const char *what = key_names[k];
        size_t count = 0, canon = 2;
        bool in_order = true;
        char *open;
        int r;

        if (d->js.p >= d->js.end)
                return wc_jscan_truncated(&d->js);
        if (*d->js.p != '[')
                return wc_jscan_fail(&d->js, "\"%s\" is not an array", what);
        open = d->js.p;
        d->js.p++;
        wc_jscan_skip_ws(&d->js);
        if (d->js.p < d->js.end && *d->js.p == ']') {
                d->js.p++;
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
                        r = wc_jscan_next_member(&d->js, ']');
                        if (r < 0)
                                return r;
                } while (r);
        }
        if (count > UINT32_MAX)
                return wc_jscan_fail(&d->js, "too many entries in \"%s\"",
                                     what);
        ret->items = v->items;
        ret->count = (uint32_t)count;
        if (in_order && (size_t)(d->js.p - open) == canon) {
                ret_json->ptr = open;
                ret_json->len = canon;
        }
        return 0;
}

/* ---- the message ---- */

static int decode_message(struct wal2json *d)
{
        struct wc_change *ch = &d->change;
        const struct action_rule *rule = NULL;
        unsigned seen = 0;
        bool lsn_null = false;
        wc_lsn lsn = 0;
        char q[48];
        int r;

        wc_jscan_skip_ws(&d->js);
        if (d->js.p >= d->js.end)
                return wc_jscan_fail(&d->js, "empty message");
        if (*d->js.p != '{')
                return wc_jscan_fail(&d->js, "not a JSON object");
        d->js.p++;
        wc_jscan_skip_ws(&d->js);
        if (d->js.p < d->js.end && *d->js.p == '}') {
                d->js.p++;
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
                        return wc_jscan_fail(&d->js, "duplicate key \"%s\"",
                                             key_names[key]);
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
                                return wc_jscan_fail(
                                    &d->js, "unknown action \"%s\"",
                                    wc_jscan_quote(q, sizeof(q), s, len));
                        break;
                case K_XID:
                        if (wc_jscan_at_null(&d->js)) {
                                d->js.p += 4;
                                break;
                        }
                        r = wc_jscan_uint32(&d->js, "xid", &ch->xid);
                        if (r < 0)
                                return r;
                        ch->has_xid = true;
                        break;
                case K_TIMESTAMP:
                        if (wc_jscan_at_null(&d->js)) {
                                d->js.p += 4;
                                break;
                        }
                        r = timestamp_value(d, &ch->time_us);
                        if (r < 0)
                                return r;
                        ch->has_time = true;
                        break;
                case K_ORIGIN: {
                        uint32_t origin;

                        if (wc_jscan_at_null(&d->js)) {
                                d->js.p += 4;
                                break;
                        }
                        r = wc_jscan_uint32(&d->js, "origin", &origin);
                        if (r < 0)
                                return r;
                        break;
                }
                case K_LSN:
                        /* a message outside a transaction may lack a
                         * position; what it is depends on the action */
                        if (wc_jscan_at_null(&d->js)) {
                                d->js.p += 4;
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
                        enum wc_jscan_prim kind = WC_JSCAN_NUMBER;

                        if (d->js.p < d->js.end &&
                            wc_jscan_starts_primitive(*d->js.p)) {
                                r = wc_jscan_primitive(&d->js, &kind);
                                if (r < 0)
                                        return r;
                        }
                        if (kind != WC_JSCAN_TRUE && kind != WC_JSCAN_FALSE)
                                return wc_jscan_fail(
                                    &d->js, "\"transactional\" is not a "
                                            "boolean");
                        ch->transactional = kind == WC_JSCAN_TRUE;
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
                        char *open = d->js.p;

                        if (d->js.p >= d->js.end)
                                return wc_jscan_truncated(&d->js);
                        if (*d->js.p != '"')
                                return wc_jscan_fail(
                                    &d->js, "\"content\" is not a string");
                        d->js.bytes_ok = true;
                        d->js.saw_bytes = false;
                        r = wc_jscan_string(&d->js, &body, &n);
                        d->js.bytes_ok = false;
                        if (r < 0)
                                return r;
                        ch->content_base64 = d->js.saw_bytes;
                        if (!d->js.saw_bytes) {
                                ch->content.ptr = open;
                                ch->content.len = (size_t)(d->js.p - open);
                                break;
                        }
                        r = content_base64(d, body, n, &ch->content);
                        if (r < 0)
                                return r;
                        break;
                }
                }
                r = wc_jscan_next_member(&d->js, '}');
                if (r < 0)
                        return r;
        } while (r);
done:
        wc_jscan_skip_ws(&d->js);
        if (d->js.p < d->js.end)
                return wc_jscan_fail(&d->js,
                                     "unexpected data after the object");

        if (!(seen & KB(K_ACTION)))
                return wc_jscan_fail(&d->js, "missing \"action\"");
        if (seen & ~rule->allowed)
                return wc_jscan_fail(
                    &d->js, "unexpected key \"%s\" for action \"%c\"",
                    key_names[__builtin_ctz(seen & ~rule->allowed)],
                    rule->action);
        if (rule->required & ~seen)
                return wc_jscan_fail(
                    &d->js, "missing \"%s\" for action \"%c\"",
                    key_names[__builtin_ctz(rule->required & ~seen)],
                    rule->action);
        ch->op = rule->op;
        if (lsn_null && rule->op != WC_OP_MESSAGE)
                return wc_jscan_fail(&d->js, "\"lsn\" is not a string");
        if (rule->op == WC_OP_BEGIN || rule->op == WC_OP_COMMIT)
                ch->commit_lsn = lsn;
        else
                ch->lsn = lsn;
        return 0;
}

/* Sets up d to read msg[0..len) from its start. */
static void begin(struct wal2json *d, char *msg, size_t len)
{
        d->js.msg = msg;
        d->js.p = msg;
        d->js.end = msg ? msg + len : msg;
        d->names_cur = d->names;
        for (struct names_chunk *c = d->names; c; c = c->next)
                c->used = 0;
        memset(&d->change, 0, sizeof(d->change));
}

static int wal2json_decode(struct wc_decoder *dec, char *msg, size_t len,
                           wc_lsn at, const struct wc_change **ret_change,
                           char *errbuf, size_t errlen)
{
        struct wal2json *d = (struct wal2json *)dec;
        int r;

        d->js.len = len;
        d->js.at = at;
        d->js.errbuf = errbuf;
        d->js.errlen = errlen;
        d->js.excerpt = (const unsigned char *)msg;
        d->js.excerpt_len =
            len < WC_JSCAN_EXCERPT_MAX ? len : WC_JSCAN_EXCERPT_MAX;
        begin(d, msg, len);

        /* column values carry 32-bit lengths */
        if (len > INT32_MAX - 2)
                return wc_jscan_fail(&d->js,
                                     "message of %zu bytes is too large", len);
        if (!msg)
                return wc_jscan_fail(&d->js, "empty message");
        r = decode_message(d);
        if (r == -EBADMSG) {
                int fixed = wc_wal2json_repair_types(msg, len, &d->repair);

                if (fixed < 0)
                        return wc_jscan_nomem(&d->js);
                if (fixed > 0 && d->repair.len <= INT32_MAX - 2) {
                        /* the first error stands if this fails too */
                        d->js.errbuf = NULL;
                        d->js.errlen = 0;
                        begin(d, d->repair.data, d->repair.len);
                        r = decode_message(d);
                        d->js.errbuf = errbuf;
                        d->js.errlen = errlen;
                        if (r == -ENOMEM)
                                return wc_jscan_nomem(&d->js);
                        if (r < 0)
                                return -EBADMSG;
                }
        }
        if (r < 0)
                return r;
        *ret_change = &d->change;
        return 0;
}

static int wal2json_relation(struct wc_decoder *dec, char *msg, size_t len,
                             const struct wc_change **ret_change)
{
        struct wal2json *d = (struct wal2json *)dec;
        struct wc_change *ch = &d->change;
        const struct action_rule *rule = NULL;
        unsigned seen = 0;
        int r;

        d->js.errbuf = NULL;
        d->js.errlen = 0;
        begin(d, msg, len);
        if (!msg || len > INT32_MAX - 2)
                return -EBADMSG;
        wc_jscan_skip_ws(&d->js);
        if (d->js.p >= d->js.end || *d->js.p != '{')
                return -EBADMSG;
        d->js.p++;
        do {
                const char *s = NULL;
                size_t n = 0;
                int key;

                wc_jscan_skip_ws(&d->js);
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
                        r = wc_jscan_any_value(&d->js, &s, &n);
                        break;
                }
                if (r < 0)
                        return r;
                if (rule && ch->schema && ch->table) {
                        ch->op = rule->op;
                        *ret_change = ch;
                        return 0;
                }
                r = wc_jscan_next_member(&d->js, '}');
                if (r < 0)
                        return r;
        } while (r);
        return -EBADMSG;
}

const struct wc_decoder_ops wc_wal2json = {
    .name = "wal2json",
    .plugin = "wal2json",
    .optional = wc_wal2json_optional,
    .optional_lost = wc_wal2json_optional_lost,
    .options = wc_wal2json_options,
    .create = wal2json_create,
    .destroy = wal2json_destroy,
    .decode = wal2json_decode,
    .relation = wal2json_relation,
};

const struct wc_decoder_ops *const wc_decoder_default = &wc_wal2json;
