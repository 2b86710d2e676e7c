/* SPDX-License-Identifier: MIT */
/*
 * walcast core: the change model, LSN helpers, a growable byte buffer and
 * the JSON helpers every module shares.
 *
 * Ownership: a struct wc_change and everything it points to is borrowed
 * from the decoder that produced it and valid until that decoder decodes
 * the next message (or is freed).  Names (schema, table, column names, type
 * names, prefixes) are decoded, NUL-terminated UTF-8; values are views of
 * the JSON text wal2json sent (a string value keeps its quotes and escapes,
 * SQL NULL is the four bytes "null").
 */
#ifndef WALCAST_CORE_H
#define WALCAST_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walcast/plugin.h>

typedef uint64_t wc_lsn;

#define WC_LSN_INVALID ((wc_lsn)0)
/* "XXXXXXXX/XXXXXXXX" plus NUL */
#define WC_LSN_STRLEN 18

/* Parses "16/B374D848"; 0 or -EINVAL. */
int wc_lsn_parse(const char *s, wc_lsn *ret_lsn);
/* Same for a string that is not NUL-terminated. */
int wc_lsn_parse_n(const char *s, size_t len, wc_lsn *ret_lsn);
/* Formats into buf (at least WC_LSN_STRLEN bytes); returns buf. */
char *wc_lsn_format(wc_lsn lsn, char buf[WC_LSN_STRLEN]);
/* Same, returning the length written (without the NUL). */
size_t wc_lsn_format_len(wc_lsn lsn, char buf[WC_LSN_STRLEN]);

/* The sizes of a WAL page's header on 64-bit servers: SizeOfXLogLongPHD
 * on the first page of a segment, SizeOfXLogShortPHD on the others. */
#define WC_WAL_LONG_HEADER  40
#define WC_WAL_SHORT_HEADER 24

/*
 * A WAL position inside a page's header, or just past it, moved back to
 * the page's start: no record ends or starts in between, so the last
 * record before it ended there at the latest.  The server's insert
 * position (pg_current_wal_insert_lsn()) points past the header when
 * the WAL ends at a page's start, while what it has sent ends at the
 * start.  Any other position comes back as it is, and every position
 * when a size is 0 (not known).
 */
wc_lsn wc_lsn_page_floor(wc_lsn lsn, uint32_t block_size,
                         uint64_t segment_size);

/* A view: bytes not owned, not necessarily NUL-terminated. */
struct wc_str {
        const char *ptr;
        size_t len;
};

enum wc_op {
        WC_OP_BEGIN = 0,
        WC_OP_COMMIT,
        WC_OP_INSERT,
        WC_OP_UPDATE,
        WC_OP_DELETE,
        WC_OP_TRUNCATE,
        WC_OP_MESSAGE,
        WC_OP_READ, /* a row a snapshot read (lib/snapshot/) */
        WC_OP__COUNT,
};

/* Bit for enum wc_op in op masks. */
#define WC_OP_BIT(op) (1u << (op))
/* insert, update, delete, truncate and message: what filters select. */
#define WC_OPS_DATA                                                            \
        (WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_UPDATE) |                   \
         WC_OP_BIT(WC_OP_DELETE) | WC_OP_BIT(WC_OP_TRUNCATE) |                 \
         WC_OP_BIT(WC_OP_MESSAGE))

/* "insert", "update", ...; NULL for an out-of-range value. */
const char *wc_op_name(enum wc_op op);
/* Inverse of wc_op_name; 0 or -EINVAL. */
int wc_op_parse(const char *name, enum wc_op *ret_op);

struct wc_change {
        enum wc_op op;
        wc_lsn lsn; /* the change's own position ("lsn"), 0 if absent */
        /* begin/commit: commit record LSN ("lsn") and end LSN ("nextlsn") */
        wc_lsn commit_lsn;
        wc_lsn end_lsn;
        bool has_xid;
        uint32_t xid;
        /* commit time, microseconds since the Unix epoch; has_time false
         * when wal2json sent none (non-transactional message) */
        bool has_time;
        int64_t time_us;

        const char *schema; /* insert/update/delete/truncate */
        size_t schema_len;
        const char *table;
        size_t table_len;

        /* struct walcast_column, so that columns reach plugins without a
         * copy */
        struct walcast_columns columns;  /* insert/update: the new row */
        struct walcast_columns identity; /* update/delete: key or old row */
        struct walcast_columns pk;       /* primary key names and types */

        /* message */
        bool transactional;
        const char *prefix;
        size_t prefix_len;
        /* JSON text of the content string; when content_base64, a JSON
         * string of the base64 of the content's bytes instead, since they
         * are not UTF-8 text (pg_logical_emit_message with bytes) */
        struct wc_str content;
        bool content_base64;

        /* The text of "columns", "identity" and "pk" as sent, when it is
         * exactly their canonical form (struct walcast_signal's
         * columns_json); ptr NULL when not. */
        struct wc_str columns_json;
        struct wc_str identity_json;
        struct wc_str pk_json;

        /* update: the columns left out of `columns` as unchanged TOASTed
         * values that `identity` does not carry either (name and type,
         * no value); pgoutput says which, wal2json does not (count 0) */
        struct walcast_columns missing;
        /* read: the last row of its table's snapshot */
        bool snapshot_last;
};

/* Log levels: syslog priorities, the same numbers as <walcast/plugin.h>'s
 * WALCAST_LOG_*.  lib/ does not log; it hands lines and their level to
 * cmd/'s logger (plugin lines through the host's callbacks). */
enum wc_log_level {
        WC_LOG_ERR = WALCAST_LOG_ERR,
        WC_LOG_WARNING = WALCAST_LOG_WARNING,
        WC_LOG_NOTICE = WALCAST_LOG_NOTICE,
        WC_LOG_INFO = WALCAST_LOG_INFO,
        WC_LOG_DEBUG = WALCAST_LOG_DEBUG,
};

/* The value of one hexadecimal digit (either case), or -1. */
static inline int wc_hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Writes a message into a caller's errbuf (nothing when errbuf is NULL or
 * errlen 0): the detail that functions at a boundary hand back. */
void wc_errorf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wc_verrorf(char *errbuf, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* wc_errorf(), then returns err: `return wc_fail(errbuf, errlen, -EIO,
 * ...);` */
int wc_fail(char *errbuf, size_t errlen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* fsync of the directory holding path, so that a new or renamed file's
 * name is as durable as what is written into it.  0 or -errno. */
int wc_sync_dir(const char *path);

/* Growable byte buffer.  Owns data. */
struct wc_buf {
        char *data;
        size_t len;
        size_t cap;
};

void wc_buf_init(struct wc_buf *b);
void wc_buf_free(struct wc_buf *b);
/* Makes room for n more bytes; 0 or -ENOMEM. */
int wc_buf_reserve(struct wc_buf *b, size_t n);
int wc_buf_append(struct wc_buf *b, const void *p, size_t n);
int wc_buf_append_str(struct wc_buf *b, const char *s);
int wc_buf_append_char(struct wc_buf *b, char c);
int wc_buf_printf(struct wc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends v in decimal. */
int wc_buf_append_uint(struct wc_buf *b, uint64_t v);

/*
 * Writers into memory the caller reserved for the worst case (e.g. with
 * wc_buf_reserve()); each returns the byte after what it wrote.
 */
#define WC_UINT_MAX_DIGITS 20
/* v in decimal: at most WC_UINT_MAX_DIGITS bytes. */
char *wc_put_uint(char *o, uint64_t v);
/* A byte that JSON escapes, as wc_json_append_string() escapes it
 * (\" \\ \n \t \r \b \f, else \u00XX): at most WC_JSON_ESCAPE_MAX. */
#define WC_JSON_ESCAPE_MAX 6
char *wc_json_put_escape(char *o, unsigned char c);
/* s as a JSON string literal, quotes included, byte for byte what
 * wc_json_append_string() writes: at most WC_JSON_STRING_MAX(n). */
#define WC_JSON_STRING_MAX(n) ((size_t)(n)*WC_JSON_ESCAPE_MAX + 2)
char *wc_json_put_string(char *o, const char *s, size_t n);
/* p[0..n) in base64 (RFC 4648, padded): WC_BASE64_LEN(n) bytes. */
#define WC_BASE64_LEN(n) (((size_t)(n) + 2) / 3 * 4)
char *wc_base64_put(char *o, const unsigned char *p, size_t n);
static inline void wc_buf_reset(struct wc_buf *b)
{
        b->len = 0;
}

/* Appends s as a JSON string literal, quotes included. */
int wc_json_append_string(struct wc_buf *b, const char *s, size_t len);

/*
 * A column's entry in the canonical text of a list (struct wc_change's
 * columns_json and pk_json), appended: {"name":"N","type":"T","typeoid":O
 * (the typeoid only when not 0), then ,"value": when value (the value and
 * the closing brace follow), else the closing brace (a key's entry).
 * -EINVAL when the name or the type needs a JSON escape (such a list has
 * no canonical text), -ENOMEM.
 */
int wc_json_append_column(struct wc_buf *b, const char *name, size_t name_len,
                          const char *type, size_t type_len, uint32_t type_oid,
                          bool value);
/* The canonical text of a key's list (pk_json), appended: [entry,...] of
 * wc_json_append_column() without values.  -EINVAL, -ENOMEM as it. */
int wc_json_append_key_list(struct wc_buf *b, const struct walcast_column *cols,
                            uint32_t n);

/*
 * Decodes the body of a JSON string (the bytes between the quotes) in
 * place: escapes, \uXXXX and surrogate pairs become UTF-8.  Writes the new
 * length to *ret_len and NUL-terminates (the result is never longer than
 * the input, and the byte after the input is the closing quote, which is
 * overwritten).  -EBADMSG on a bad escape or a lone surrogate.
 */
int wc_json_unescape_inplace(char *s, size_t len, size_t *ret_len);

/*
 * Parses a PostgreSQL timestamptz text ("2026-11-25 13:48:23.57043+00",
 * offsets "+05:30" allowed) to microseconds since the Unix epoch.
 */
int wc_time_parse(const char *s, size_t len, int64_t *ret_us);
/* Formats as RFC 3339 UTC with microseconds: "2026-11-25T13:48:23.570430Z".
 * buf needs WC_TIME_STRLEN bytes. */
#define WC_TIME_STRLEN 28
char *wc_time_format(int64_t us, char buf[WC_TIME_STRLEN]);

/* A schema "NAMESPACE-TENANT" splits at the first '-'; a schema without
 * '-' is its own namespace with an empty tenant. */
void wc_schema_split(const char *schema, size_t len, struct wc_str *ret_ns,
                     struct wc_str *ret_tenant);

#endif
