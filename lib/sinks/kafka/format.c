/* SPDX-License-Identifier: MIT */
/*
 * The bytes of a Kafka message: key, envelope, topic.  Column values go
 * out as the JSON text wal2json sent, never decoded and re-encoded.
 *
 * This runs for every change, so each function reserves the worst case
 * of what it writes once and then writes through a plain pointer: no
 * capacity check, call or snprintf per piece.  What is the same for every
 * change of a table (source.db, .schema, .table) or of a transaction
 * (txId, source.ts_ms) is formatted once by the caller, with
 * wc_kafka_format_source and wc_kafka_format_txn.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sinks/kafka/topic.h"
#include "sinks/kafka/kafka.h"

static const struct walcast_column *find_column(const struct walcast_columns *l,
                                                const struct walcast_column *c)
{
        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == c->name_len &&
                    memcmp(l->items[i].name, c->name, c->name_len) == 0)
                        return &l->items[i];
        return NULL;
}

static inline char *put(char *p, const void *s, size_t len)
{
        memcpy(p, s, len);
        return p + len;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* At most WC_UINT_MAX_DIGITS bytes too: INT64_MIN is a sign and 19
 * digits. */
char *wc_kafka_put_int(char *p, int64_t v)
{
        if (v >= 0)
                return wc_put_uint(p, (uint64_t)v);
        *p++ = '-';
        return wc_put_uint(p, (uint64_t)0 - (uint64_t)v);
}

/* A column's value; a column without one (a key description) is null. */
static char *put_value(char *p, const struct walcast_column *c)
{
        if (!c->value || c->value_len == 0)
                return PUT_LIT(p, "null");
        return put(p, c->value, c->value_len);
}

static size_t value_max(const struct walcast_column *c)
{
        return c->value && c->value_len ? c->value_len : 4;
}

/* What put_row may write at most. */
static size_t row_max(const struct walcast_columns *cols)
{
        size_t n = 2;

        if (!cols)
                return 4;
        for (uint32_t i = 0; i < cols->count; i++)
                n += WC_JSON_STRING_MAX(cols->items[i].name_len) + 2 +
                     value_max(&cols->items[i]);
        return n;
}

static char *put_row(char *p, const struct walcast_columns *cols)
{
        if (!cols)
                return PUT_LIT(p, "null");
        *p++ = '{';
        for (uint32_t i = 0; i < cols->count; i++) {
                const struct walcast_column *c = &cols->items[i];

                if (i > 0)
                        *p++ = ',';
                p = wc_json_put_string(p, c->name, c->name_len);
                *p++ = ':';
                p = put_value(p, c);
        }
        *p++ = '}';
        return p;
}

/* Ends a write through a pointer: wc_buf keeps its text NUL-terminated
 * (the reservation always leaves room for it). */
static void finish(struct wc_buf *out, char *p)
{
        out->len = (size_t)(p - out->data);
        out->data[out->len] = '\0';
}

int wc_kafka_format_key(struct wc_buf *out, const struct walcast_columns *pk,
                        const struct walcast_columns *row)
{
        const struct walcast_column *found[8], **cols = found;
        size_t max = 2;
        int r = 0;
        char *p;

        if (!pk || pk->count == 0 || !row)
                return -ENOENT;
        if (pk->count > sizeof(found) / sizeof(found[0])) {
                cols = calloc(pk->count, sizeof(*cols));
                if (!cols)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < pk->count; i++) {
                const struct walcast_column *c =
                    find_column(row, &pk->items[i]);

                /* nothing is invented: a key column without a value
                 * (an unchanged TOASTed key) makes no key */
                if (!c || !c->value || c->value_len == 0) {
                        r = -ENOENT;
                        goto out;
                }
                cols[i] = c;
                max += WC_JSON_STRING_MAX(c->name_len) + 2 + c->value_len;
        }
        if (wc_buf_reserve(out, max) < 0) {
                r = -ENOMEM;
                goto out;
        }
        p = out->data + out->len;
        *p++ = '{';
        for (uint32_t i = 0; i < pk->count; i++) {
                if (i > 0)
                        *p++ = ',';
                p = wc_json_put_string(p, cols[i]->name, cols[i]->name_len);
                *p++ = ':';
                p = put(p, cols[i]->value, cols[i]->value_len);
        }
        *p++ = '}';
        finish(out, p);
out:
        if (cols != found)
                free(cols);
        return r;
}

int wc_kafka_format_row(struct wc_buf *out, const struct walcast_columns *cols)
{
        if (wc_buf_reserve(out, row_max(cols)) < 0)
                return -ENOMEM;
        finish(out, put_row(out->data + out->len, cols));
        return 0;
}

/* Floor division: a commit time before 1970 stays in its millisecond. */
static int64_t us_to_ms(int64_t us)
{
        return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

static size_t str_or_null_max(const char *s)
{
        return s ? WC_JSON_STRING_MAX(strlen(s)) : 4;
}

static char *put_str_or_null(char *p, const char *s)
{
        if (!s)
                return PUT_LIT(p, "null");
        return wc_json_put_string(p, s, strlen(s));
}

#define SOURCE_HEAD                                                            \
        ",\"source\":{\"connector\":\"walcast\",\"version\":"                  \
        "\"" WALCAST_VERSION "\",\"db\":"

int wc_kafka_format_source(struct wc_buf *out, const char *database,
                           const char *schema, const char *table)
{
        char *p;

        if (wc_buf_reserve(
                out, sizeof(SOURCE_HEAD) + 32 + str_or_null_max(database) +
                         str_or_null_max(schema) + str_or_null_max(table)) < 0)
                return -ENOMEM;
        p = out->data + out->len;
        p = PUT_LIT(p, SOURCE_HEAD);
        p = put_str_or_null(p, database);
        p = PUT_LIT(p, ",\"schema\":");
        p = put_str_or_null(p, schema);
        p = PUT_LIT(p, ",\"table\":");
        p = put_str_or_null(p, table);
        /* numbers, as Debezium's PostgreSQL connector has them */
        p = PUT_LIT(p, ",\"lsn\":");
        finish(out, p);
        return 0;
}

/* The end of the source (Debezium's source.snapshot: "false" while
 * streaming, a snapshot's read says "true" or "last") and the op key. */
#define TXN_TAIL ",\"snapshot\":\"false\"},\"op\":\""

int wc_kafka_format_txn(struct wc_buf *out, const struct walcast_txn *t)
{
        char *p;

        if (wc_buf_reserve(out,
                           48 + sizeof(TXN_TAIL) + 2 * WC_UINT_MAX_DIGITS) < 0)
                return -ENOMEM;
        p = out->data + out->len;
        p = PUT_LIT(p, ",\"txId\":");
        if (t)
                p = wc_put_uint(p, t->xid);
        else
                p = PUT_LIT(p, "null");
        p = PUT_LIT(p, ",\"ts_ms\":");
        if (t && t->commit_time_us)
                p = wc_kafka_put_int(p, us_to_ms(t->commit_time_us));
        else
                p = PUT_LIT(p, "null");
        p = PUT_LIT(p, TXN_TAIL);
        finish(out, p);
        return 0;
}

/* What put_names may write at most (none for NULL), its key excepted. */
static size_t names_max(const struct walcast_columns *l)
{
        size_t n = 2;

        if (!l)
                return 0;
        for (uint32_t i = 0; i < l->count; i++)
                n += WC_JSON_STRING_MAX(l->items[i].name_len) + 1;
        return n + 16;
}

/* The column names of l as a JSON array. */
static char *put_names(char *p, const struct walcast_columns *l)
{
        *p++ = '[';
        for (uint32_t i = 0; i < l->count; i++) {
                if (i > 0)
                        *p++ = ',';
                p = wc_json_put_string(p, l->items[i].name,
                                       l->items[i].name_len);
        }
        *p++ = ']';
        return p;
}

int wc_kafka_format_envelope_parts(struct wc_buf *out,
                                   const struct wc_kafka_parts *parts,
                                   const struct walcast_signal *s, char op,
                                   const struct walcast_columns *before,
                                   const struct walcast_columns *after)
{
        /* wal2json left out unchanged TOASTed values and no old row had
         * them: say so, rather than let "after" pass for the whole row */
        const struct walcast_columns *missing =
            WALCAST_HAS_FIELD(s, struct walcast_signal, missing) &&
                    s->missing.count > 0
                ? &s->missing
                : NULL;
        /* unchanged TOASTed values walcastd filled in from the identity */
        const struct walcast_columns *completed =
            s->kind == WALCAST_SIG_UPDATE &&
                    WALCAST_HAS_FIELD(s, struct walcast_signal, completed) &&
                    s->completed.count > 0
                ? &s->completed
                : NULL;
        size_t max = 80 + parts->txblock.len + row_max(before) +
                     row_max(after) + parts->source.len + parts->txn.len +
                     parts->lsn.len + parts->ts_ms.len + names_max(missing) +
                     names_max(completed);
        char *p;

        if (wc_buf_reserve(out, max) < 0)
                return -ENOMEM;
        p = out->data + out->len;
        p = PUT_LIT(p, "{\"before\":");
        p = put_row(p, before);
        p = PUT_LIT(p, ",\"after\":");
        p = put_row(p, after);
        p = put(p, parts->source.ptr, parts->source.len);
        p = put(p, parts->lsn.ptr, parts->lsn.len);
        if (s->kind == WALCAST_SIG_READ &&
            parts->txn.len >= sizeof(TXN_TAIL) - 1) {
                /* a snapshot's row: its own source.snapshot */
                p = put(p, parts->txn.ptr,
                        parts->txn.len - (sizeof(TXN_TAIL) - 1));
                p = WALCAST_HAS_FIELD(s, struct walcast_signal, snapshot) &&
                            (s->snapshot & WALCAST_SNAPSHOT_LAST)
                        ? PUT_LIT(p, ",\"snapshot\":\"last\"},\"op\":\"")
                        : PUT_LIT(p, ",\"snapshot\":\"true\"},\"op\":\"");
        } else {
                p = put(p, parts->txn.ptr, parts->txn.len);
        }
        *p++ = op;
        p = PUT_LIT(p, "\",\"ts_ms\":");
        p = put(p, parts->ts_ms.ptr, parts->ts_ms.len);
        if (parts->txblock.len) {
                p = PUT_LIT(p, ",\"transaction\":");
                p = put(p, parts->txblock.ptr, parts->txblock.len);
        }
        if (missing) {
                p = PUT_LIT(p, ",\"missing\":");
                p = put_names(p, missing);
        }
        if (completed) {
                p = PUT_LIT(p, ",\"completed\":");
                p = put_names(p, completed);
        }
        *p++ = '}';
        finish(out, p);
        return 0;
}

int wc_kafka_format_envelope(struct wc_buf *out, const struct wc_str *source,
                             const struct wc_str *txn,
                             const struct walcast_signal *s, char op,
                             const struct walcast_columns *before,
                             const struct walcast_columns *after,
                             int64_t now_ms)
{
        char lsn[WC_UINT_MAX_DIGITS], ts[WC_UINT_MAX_DIGITS];
        struct wc_kafka_parts parts = {
            .source = *source,
            .txn = *txn,
            .lsn = {lsn, (size_t)(wc_put_uint(lsn, s->lsn) - lsn)},
            .ts_ms = {ts, (size_t)(wc_kafka_put_int(ts, now_ms) - ts)},
        };

        return wc_kafka_format_envelope_parts(out, &parts, s, op, before,
                                              after);
}

int wc_kafka_format_value(struct wc_buf *out, const struct walcast_signal *s,
                          char op, const struct walcast_columns *before,
                          const struct walcast_columns *after,
                          const char *database, int64_t now_ms)
{
        struct wc_buf src, txn;
        int r = -ENOMEM;

        wc_buf_init(&src);
        wc_buf_init(&txn);
        if (wc_kafka_format_source(&src, database, s->schema, s->table) < 0 ||
            wc_kafka_format_txn(&txn, s->txn) < 0)
                goto out;
        r = wc_kafka_format_envelope(out, &(struct wc_str){src.data, src.len},
                                     &(struct wc_str){txn.data, txn.len}, s, op,
                                     before, after, now_ms);
out:
        wc_buf_free(&src);
        wc_buf_free(&txn);
        return r;
}

int wc_kafka_format_topic(struct wc_buf *out, const char *tmpl,
                          const char *prefix, const char *database,
                          const struct walcast_signal *s)
{
        struct wc_topic_values v = {0};

        v.v[WC_TOPIC_PREFIX] =
            (struct wc_str){prefix, prefix ? strlen(prefix) : 0};
        v.v[WC_TOPIC_DATABASE] =
            (struct wc_str){database, database ? strlen(database) : 0};
        v.v[WC_TOPIC_SCHEMA] =
            (struct wc_str){s->schema, s->schema ? strlen(s->schema) : 0};
        v.v[WC_TOPIC_NAMESPACE] = (struct wc_str){s->ns, s->ns_len};
        v.v[WC_TOPIC_TENANT] = (struct wc_str){s->tenant, s->tenant_len};
        v.v[WC_TOPIC_TABLE] =
            (struct wc_str){s->table, s->table ? strlen(s->table) : 0};
        return wc_topic_expand(tmpl, &v, out);
}
