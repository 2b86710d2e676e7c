/* SPDX-License-Identifier: MIT */
/*
 * The file sink's line, written in one pass: the line's size is bounded
 * first (every escape at its longest), room for that is reserved once,
 * and the bytes are then written without a check per fragment.  The part
 * every change of a transaction shares (xid, positions, commit time) is
 * formatted once per transaction by the caller (wc_format_txn()).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sinks/file/filesink.h"

/* Appends a string literal known to need no escaping; returns the end. */
#define PUT(o, lit) put((o), (lit), sizeof(lit) - 1)

/* The longest a column can be beside its name, type and value:
 * ,{"name":"","type":"","typeoid":4294967295,"value":} */
#define COLUMN_FIXED 64
/* Everything of a line but names, values, columns and the transaction's
 * fragment, with room to spare. */
#define LINE_FIXED 256
static inline char *put(char *o, const void *p, size_t n)
{
        /* a view of nothing may be NULL */
        if (n)
                memcpy(o, p, n);
        return o + n;
}

static char *put_lsn(char *o, wc_lsn lsn)
{
        /* wc_lsn_format_len() also writes a NUL, overwritten next */
        *o++ = '"';
        o += wc_lsn_format_len(lsn, o);
        *o++ = '"';
        return o;
}

/* A list's text as wal2json sent it, when the signal has it (ABI 1.1) and
 * it is the form written here: copied instead of formatted. */
struct list {
        const struct walcast_columns *cols;
        const char *json;
        size_t json_len;
};

static struct list list_of(const struct walcast_signal *s,
                           const struct walcast_columns *cols,
                           const char *const *json, const uint32_t *json_len)
{
        struct list l = {cols, NULL, 0};

        if (WALCAST_HAS_FIELD(s, struct walcast_signal, pk_json_len) && *json) {
                l.json = *json;
                l.json_len = *json_len;
        }
        return l;
}

/* The columns of an update's new row that walcastd completed (ABI 1.3). */
static const struct walcast_columns *
completed_of(const struct walcast_signal *s)
{
        if (s->kind != WALCAST_SIG_UPDATE ||
            !WALCAST_HAS_FIELD(s, struct walcast_signal, completed) ||
            s->completed.count == 0)
                return NULL;
        return &s->completed;
}

/* An update's unchanged TOASTed columns that the decoder left out and
 * walcastd could not complete (pgoutput says which; wal2json does not). */
static const struct walcast_columns *missing_of(const struct walcast_signal *s)
{
        if (s->kind != WALCAST_SIG_UPDATE || s->missing.count == 0)
                return NULL;
        return &s->missing;
}

/* Room for a list of the column names of l. */
static size_t names_bound(const struct walcast_columns *l)
{
        size_t n = 2;

        for (uint32_t i = 0; i < l->count; i++)
                n += 3 + WC_JSON_ESCAPE_MAX * (size_t)l->items[i].name_len;
        return n;
}

static char *put_names(char *o, const struct walcast_columns *l)
{
        *o++ = '[';
        for (uint32_t i = 0; i < l->count; i++) {
                if (i)
                        *o++ = ',';
                o = wc_json_put_string(o, l->items[i].name,
                                       l->items[i].name_len);
        }
        *o++ = ']';
        return o;
}

/* The signal has content_flags (ABI 1.2). */
static bool has_content_flags(const struct walcast_signal *s)
{
        return WALCAST_HAS_FIELD(s, struct walcast_signal, content_flags);
}

/* Room a column list needs at most, its key excepted. */
static size_t columns_bound(const struct walcast_columns *l, bool values)
{
        size_t n = 2;

        for (uint32_t i = 0; i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];

                n += COLUMN_FIXED +
                     WC_JSON_ESCAPE_MAX * ((size_t)c->name_len + c->type_len) +
                     (values ? c->value_len : 0);
        }
        return n;
}

static char *put_columns(char *o, const struct walcast_columns *l, bool values)
{
        *o++ = '[';
        for (uint32_t i = 0; i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];

                o = i ? PUT(o, ",{\"name\":") : PUT(o, "{\"name\":");
                o = wc_json_put_string(o, c->name, c->name_len);
                o = PUT(o, ",\"type\":");
                o = wc_json_put_string(o, c->type, c->type_len);
                if (c->type_oid) {
                        o = PUT(o, ",\"typeoid\":");
                        o = wc_put_uint(o, c->type_oid);
                }
                if (values) {
                        o = PUT(o, ",\"value\":");
                        o = put(o, c->value, c->value_len);
                }
                *o++ = '}';
        }
        *o++ = ']';
        return o;
}

static char *put_list(char *o, const struct list *l, bool values)
{
        if (l->json)
                return put(o, l->json, l->json_len);
        return put_columns(o, l->cols, values);
}

int wc_format_txn(struct wc_buf *out, const struct walcast_txn *t,
                  const char *commit_time)
{
        size_t tlen = strlen(commit_time);
        char *o;
        int r;

        if (tlen > SIZE_MAX - LINE_FIXED)
                return -ENOMEM;
        r = wc_buf_reserve(out, LINE_FIXED + tlen);
        if (r < 0)
                return r;
        o = out->data + out->len;
        o = PUT(o, ",\"xid\":");
        o = wc_put_uint(o, t->xid);
        o = PUT(o, ",\"commit_lsn\":");
        o = put_lsn(o, t->commit_lsn);
        o = PUT(o, ",\"end_lsn\":");
        o = put_lsn(o, t->end_lsn);
        o = PUT(o, ",\"commit_time\":\"");
        o = put(o, commit_time, tlen);
        *o++ = '"';
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        return 0;
}

static const char *op_name(uint32_t kind, size_t *ret_len)
{
        switch (kind) {
        case WALCAST_SIG_INSERT:
                *ret_len = 6;
                return "insert";
        case WALCAST_SIG_UPDATE:
                *ret_len = 6;
                return "update";
        case WALCAST_SIG_DELETE:
                *ret_len = 6;
                return "delete";
        case WALCAST_SIG_TRUNCATE:
                *ret_len = 8;
                return "truncate";
        case WALCAST_SIG_MESSAGE:
                *ret_len = 7;
                return "message";
        case WALCAST_SIG_READ:
                *ret_len = 4;
                return "read";
        default:
                return NULL;
        }
}

int wc_format_line(struct wc_buf *out, const struct walcast_signal *s,
                   const char *txn, size_t txn_len)
{
        bool msg = s->kind == WALCAST_SIG_MESSAGE;
        bool read = s->kind == WALCAST_SIG_READ;
        bool cols = s->kind == WALCAST_SIG_INSERT ||
                    s->kind == WALCAST_SIG_UPDATE || read;
        bool ident = s->kind == WALCAST_SIG_DELETE ||
                     (s->kind == WALCAST_SIG_UPDATE && s->identity.count);
        bool pk = s->kind != WALCAST_SIG_TRUNCATE && !msg;
        const struct walcast_columns *done = completed_of(s);
        const struct walcast_columns *missing = missing_of(s);
        size_t op_len = 0, schema_len = 0, table_len = 0, prefix_len = 0;
        const char *op = op_name(s->kind, &op_len);
        size_t bound = LINE_FIXED;
        char *o;
        int r;

        if (!op)
                return -EINVAL;
        if (!s->txn)
                txn_len = 0;
        bound += txn_len;
        if (msg) {
                prefix_len = strlen(s->prefix);
                bound += WC_JSON_ESCAPE_MAX * prefix_len + s->content_len;
        } else {
                schema_len = strlen(s->schema);
                table_len = strlen(s->table);
                bound += WC_JSON_ESCAPE_MAX * (schema_len + table_len);
        }
        struct list lc =
            list_of(s, &s->columns, &s->columns_json, &s->columns_json_len);
        struct list li =
            list_of(s, &s->identity, &s->identity_json, &s->identity_json_len);
        struct list lp = list_of(s, &s->pk, &s->pk_json, &s->pk_json_len);

        if (cols)
                bound += lc.json ? lc.json_len : columns_bound(lc.cols, true);
        if (ident)
                bound += li.json ? li.json_len : columns_bound(li.cols, true);
        if (done)
                bound += 16 + names_bound(done);
        if (missing)
                bound += 16 + names_bound(missing);
        if (read)
                bound += 16;
        if (pk)
                bound += lp.json ? lp.json_len : columns_bound(lp.cols, false);
        r = wc_buf_reserve(out, bound);
        if (r < 0)
                return r;

        o = out->data + out->len;
        o = PUT(o, "{\"op\":\"");
        o = put(o, op, op_len);
        *o++ = '"';
        if (!msg) {
                o = PUT(o, ",\"schema\":");
                o = wc_json_put_string(o, s->schema, schema_len);
                o = PUT(o, ",\"table\":");
                o = wc_json_put_string(o, s->table, table_len);
        }
        o = PUT(o, ",\"lsn\":");
        o = put_lsn(o, s->lsn);
        o = put(o, txn, txn_len);
        if (cols) {
                o = PUT(o, ",\"columns\":");
                o = put_list(o, &lc, true);
        }
        if (ident) {
                o = PUT(o, ",\"identity\":");
                o = put_list(o, &li, true);
        }
        if (pk) {
                o = PUT(o, ",\"pk\":");
                o = put_list(o, &lp, false);
        }
        /* added after the keys of 0.1: at the end (docs/file-format.md) */
        if (done) {
                o = PUT(o, ",\"completed\":");
                o = put_names(o, done);
        }
        if (missing) {
                o = PUT(o, ",\"missing\":");
                o = put_names(o, missing);
        }
        /* a snapshot's row (docs/file-format.md, "Snapshots") */
        if (read)
                o = WALCAST_HAS_FIELD(s, struct walcast_signal, snapshot) &&
                            (s->snapshot & WALCAST_SNAPSHOT_LAST)
                        ? PUT(o, ",\"snapshot\":\"last\"")
                        : PUT(o, ",\"snapshot\":\"true\"");
        if (msg) {
                o = s->transactional ? PUT(o, ",\"transactional\":true")
                                     : PUT(o, ",\"transactional\":false");
                o = PUT(o, ",\"prefix\":");
                o = wc_json_put_string(o, s->prefix, prefix_len);
                /* bytes that are not text: their base64, under a key
                 * of its own so that no reader takes it for the text */
                o = has_content_flags(s) &&
                            (s->content_flags & WALCAST_CONTENT_BASE64)
                        ? PUT(o, ",\"content_base64\":")
                        : PUT(o, ",\"content\":");
                o = put(o, s->content, s->content_len);
        }
        o = PUT(o, "}\n");
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        return 0;
}

int wc_format_signal(struct wc_buf *out, const struct walcast_signal *s,
                     const char *commit_time)
{
        struct wc_buf txn;
        int r = 0;

        wc_buf_init(&txn);
        if (s->txn)
                r = wc_format_txn(&txn, s->txn, commit_time ? commit_time : "");
        if (!r)
                r = wc_format_line(out, s, txn.data, txn.len);
        wc_buf_free(&txn);
        return r;
}
