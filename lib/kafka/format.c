/* SPDX-License-Identifier: MIT */
/* The bytes of a Kafka message: key, envelope, topic.  Column values go
 * out as the JSON text wal2json sent, never decoded and re-encoded. */
#include <errno.h>
#include <string.h>

#include "core/core.h"
#include "core/topic.h"
#include "kafka/kafka.h"

static const struct walcast_column *find_column(const struct walcast_columns *l,
                                                const struct walcast_column *c)
{
        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == c->name_len &&
                    memcmp(l->items[i].name, c->name, c->name_len) == 0)
                        return &l->items[i];
        return NULL;
}

/* Undoes a partial append; wc_buf keeps its text NUL-terminated. */
static void truncate_to(struct wc_buf *out, size_t len)
{
        out->len = len;
        if (out->data)
                out->data[len] = '\0';
}

/* A column's value; a column without one (a key description) is null. */
static int append_value(struct wc_buf *out, const struct walcast_column *c)
{
        if (!c->value || c->value_len == 0)
                return wc_buf_append(out, "null", 4);
        return wc_buf_append(out, c->value, c->value_len);
}

int wc_kafka_format_key(struct wc_buf *out, const struct walcast_columns *pk,
                        const struct walcast_columns *row)
{
        size_t start = out->len;

        if (!pk || pk->count == 0 || !row)
                return -ENOENT;
        if (wc_buf_append_char(out, '{') < 0)
                goto err_nomem;
        for (uint32_t i = 0; i < pk->count; i++) {
                const struct walcast_column *c =
                    find_column(row, &pk->items[i]);

                if (!c || !c->value || c->value_len == 0) {
                        truncate_to(out, start);
                        return -ENOENT;
                }
                if ((i > 0 && wc_buf_append_char(out, ',') < 0) ||
                    wc_json_append_string(out, c->name, c->name_len) < 0 ||
                    wc_buf_append_char(out, ':') < 0 ||
                    append_value(out, c) < 0)
                        goto err_nomem;
        }
        if (wc_buf_append_char(out, '}') < 0)
                goto err_nomem;
        return 0;

err_nomem:
        truncate_to(out, start);
        return -ENOMEM;
}

int wc_kafka_format_row(struct wc_buf *out, const struct walcast_columns *cols)
{
        if (!cols)
                return wc_buf_append(out, "null", 4);
        if (wc_buf_append_char(out, '{') < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < cols->count; i++) {
                const struct walcast_column *c = &cols->items[i];

                if ((i > 0 && wc_buf_append_char(out, ',') < 0) ||
                    wc_json_append_string(out, c->name, c->name_len) < 0 ||
                    wc_buf_append_char(out, ':') < 0 ||
                    append_value(out, c) < 0)
                        return -ENOMEM;
        }
        return wc_buf_append_char(out, '}');
}

static int append_str_or_null(struct wc_buf *out, const char *s)
{
        if (!s)
                return wc_buf_append(out, "null", 4);
        return wc_json_append_string(out, s, strlen(s));
}

/* Floor division: a commit time before 1970 stays in its millisecond. */
static int64_t us_to_ms(int64_t us)
{
        return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}

static int append_int(struct wc_buf *out, int64_t v)
{
        if (v < 0 && wc_buf_append_char(out, '-') < 0)
                return -ENOMEM;
        return wc_buf_append_uint(out, v < 0 ? (uint64_t)0 - (uint64_t)v
                                             : (uint64_t)v);
}

int wc_kafka_format_value(struct wc_buf *out, const struct walcast_signal *s,
                          char op, const struct walcast_columns *before,
                          const struct walcast_columns *after,
                          const char *database, int64_t now_ms)
{
        const struct walcast_txn *t = s->txn;
        size_t start = out->len;
        int r = 0;

        r |= wc_buf_append_str(out, "{\"before\":");
        r |= wc_kafka_format_row(out, before);
        r |= wc_buf_append_str(out, ",\"after\":");
        r |= wc_kafka_format_row(out, after);
        r |= wc_buf_append_str(out,
                               ",\"source\":{\"connector\":\"walcast\","
                               "\"version\":\"" WALCAST_VERSION "\",\"db\":");
        r |= append_str_or_null(out, database);
        r |= wc_buf_append_str(out, ",\"schema\":");
        r |= append_str_or_null(out, s->schema);
        r |= wc_buf_append_str(out, ",\"table\":");
        r |= append_str_or_null(out, s->table);
        /* numbers, as Debezium's PostgreSQL connector has them */
        r |= wc_buf_append_str(out, ",\"lsn\":");
        r |= wc_buf_append_uint(out, s->lsn);
        r |= wc_buf_append_str(out, ",\"txId\":");
        if (t)
                r |= wc_buf_append_uint(out, t->xid);
        else
                r |= wc_buf_append(out, "null", 4);
        r |= wc_buf_append_str(out, ",\"ts_ms\":");
        if (t && t->commit_time_us)
                r |= append_int(out, us_to_ms(t->commit_time_us));
        else
                r |= wc_buf_append(out, "null", 4);
        r |= wc_buf_append_str(out, "},\"op\":\"");
        r |= wc_buf_append_char(out, op);
        r |= wc_buf_append_str(out, "\",\"ts_ms\":");
        r |= append_int(out, now_ms);
        /* wal2json left out unchanged TOASTed values and no old row had
         * them: say so, rather than let "after" pass for the whole row */
        if (s->size >=
                offsetof(struct walcast_signal, missing) + sizeof(s->missing) &&
            s->missing.count > 0) {
                r |= wc_buf_append_str(out, ",\"missing\":[");
                for (uint32_t i = 0; i < s->missing.count; i++) {
                        const struct walcast_column *c = &s->missing.items[i];

                        if (i > 0)
                                r |= wc_buf_append_char(out, ',');
                        r |= wc_json_append_string(out, c->name, c->name_len);
                }
                r |= wc_buf_append_char(out, ']');
        }
        r |= wc_buf_append_char(out, '}');
        if (r) {
                truncate_to(out, start);
                return -ENOMEM;
        }
        return 0;
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
