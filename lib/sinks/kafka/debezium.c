/* SPDX-License-Identifier: MIT */
/*
 * Keys and envelopes of `value_format: debezium`, and their schemas in
 * the form Kafka's JsonConverter writes with schemas.enable=true: a
 * schema's members in JsonConverter's order (type, fields or items,
 * optional, name, version, doc, parameters, default, field), struct
 * names "<prefix>.<schema>.<table>.Key", ".Value", ".Envelope", the
 * source struct io.debezium.connector.postgresql.Source.
 *
 * What walcast cannot know from the stream: whether a column is NOT
 * NULL.  Key columns are required fields, every other column optional.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/kafka/debezium.h"

/* appends n bytes: most fit in what the buffer has */
static inline int app(struct wc_buf *out, const char *s, size_t n)
{
        if (out->cap > out->len + n) {
                memcpy(out->data + out->len, s, n);
                out->len += n;
                out->data[out->len] = '\0';
                return 0;
        }
        return wc_buf_append(out, s, n);
}

#define LIT(out, s) app((out), (s), sizeof(s) - 1)

/* ---- field schemas ---- */

struct shape {
        const char *type;
        const char *name; /* semantic type, or NULL */
        bool versioned;   /* "version":1 */
};

static struct shape shape_of(uint8_t kind, uint8_t decimal)
{
        switch (kind) {
        case WC_DBZ_BOOLEAN:
        case WC_DBZ_BIT1:
                return (struct shape){"boolean", NULL, false};
        case WC_DBZ_INT16:
                return (struct shape){"int16", NULL, false};
        case WC_DBZ_INT32:
                return (struct shape){"int32", NULL, false};
        case WC_DBZ_INT64:
                return (struct shape){"int64", NULL, false};
        case WC_DBZ_FLOAT32:
                return (struct shape){"float", NULL, false};
        case WC_DBZ_FLOAT64:
        case WC_DBZ_DECIMAL_AS_DOUBLE:
                return (struct shape){"double", NULL, false};
        case WC_DBZ_STRING:
        case WC_DBZ_DECIMAL_AS_STRING:
                return (struct shape){"string", NULL, false};
        case WC_DBZ_BYTES:
                return (struct shape){"bytes", NULL, false};
        case WC_DBZ_JSON:
                return (struct shape){"string", "io.debezium.data.Json", true};
        case WC_DBZ_XML:
                return (struct shape){"string", "io.debezium.data.Xml", true};
        case WC_DBZ_UUID:
                return (struct shape){"string", "io.debezium.data.Uuid", true};
        case WC_DBZ_LTREE:
                return (struct shape){"string", "io.debezium.data.Ltree", true};
        case WC_DBZ_ZONED_TIMESTAMP:
                return (struct shape){"string",
                                      "io.debezium.time.ZonedTimestamp", true};
        case WC_DBZ_ZONED_TIME:
                return (struct shape){"string", "io.debezium.time.ZonedTime",
                                      true};
        case WC_DBZ_DATE:
                return (struct shape){"int32", "io.debezium.time.Date", true};
        case WC_DBZ_TIME:
                return (struct shape){"int32", "io.debezium.time.Time", true};
        case WC_DBZ_MICRO_TIME:
                return (struct shape){"int64", "io.debezium.time.MicroTime",
                                      true};
        case WC_DBZ_TIMESTAMP:
                return (struct shape){"int64", "io.debezium.time.Timestamp",
                                      true};
        case WC_DBZ_MICRO_TIMESTAMP:
                return (struct shape){"int64",
                                      "io.debezium.time.MicroTimestamp", true};
        case WC_DBZ_CONNECT_DATE:
                return (struct shape){
                    "int32", "org.apache.kafka.connect.data.Date", true};
        case WC_DBZ_CONNECT_TIME:
                return (struct shape){
                    "int32", "org.apache.kafka.connect.data.Time", true};
        case WC_DBZ_CONNECT_TIMESTAMP:
                return (struct shape){
                    "int64", "org.apache.kafka.connect.data.Timestamp", true};
        case WC_DBZ_MICRO_DURATION:
                return (struct shape){"int64", "io.debezium.time.MicroDuration",
                                      true};
        case WC_DBZ_DECIMAL:
                return (struct shape){
                    "bytes", "org.apache.kafka.connect.data.Decimal", true};
        case WC_DBZ_VARIABLE_DECIMAL:
                return (struct shape){
                    "struct", "io.debezium.data.VariableScaleDecimal", true};
        case WC_DBZ_MONEY:
                if (decimal == WC_DBZ_DECIMAL_STRING)
                        return (struct shape){"string", NULL, false};
                if (decimal == WC_DBZ_DECIMAL_DOUBLE)
                        return (struct shape){"double", NULL, false};
                return (struct shape){
                    "bytes", "org.apache.kafka.connect.data.Decimal", true};
        case WC_DBZ_BITS:
                return (struct shape){"bytes", "io.debezium.data.Bits", true};
        case WC_DBZ_ARRAY:
                return (struct shape){"array", NULL, false};
        case WC_DBZ_ENUM:
                return (struct shape){"string", "io.debezium.data.Enum", true};
        default:
                return (struct shape){"string", "walcast.data.Text", false};
        }
}

/* The schema of one value of kind, without "field"; closed with '}'
 * unless field is set (the caller adds it). */
static int put_schema(struct wc_buf *out, const struct wc_dbz_type *t,
                      uint8_t kind, const char *pgtype, size_t pgtype_len,
                      bool optional)
{
        struct shape sh = shape_of(kind, t->decimal);
        char num[32];

        if (LIT(out, "{\"type\":\"") < 0 ||
            wc_buf_append_str(out, sh.type) < 0 || LIT(out, "\"") < 0)
                return -ENOMEM;
        if (kind == WC_DBZ_ARRAY) {
                if (LIT(out, ",\"items\":") < 0 ||
                    put_schema(out, t, t->elem, pgtype, pgtype_len, true) < 0 ||
                    LIT(out, "}") < 0)
                        return -ENOMEM;
        } else if (kind == WC_DBZ_VARIABLE_DECIMAL) {
                if (LIT(out, ",\"fields\":[{\"type\":\"int32\",\"optional\":"
                             "false,\"field\":\"scale\"},{\"type\":\"bytes\","
                             "\"optional\":false,\"field\":\"value\"}]") < 0)
                        return -ENOMEM;
        }
        if (wc_buf_append_str(out, optional ? ",\"optional\":true"
                                            : ",\"optional\":false") < 0)
                return -ENOMEM;
        if (sh.name &&
            (LIT(out, ",\"name\":\"") < 0 ||
             wc_buf_append_str(out, sh.name) < 0 || LIT(out, "\"") < 0))
                return -ENOMEM;
        if (sh.versioned && LIT(out, ",\"version\":1") < 0)
                return -ENOMEM;
        switch (kind) {
        case WC_DBZ_VARIABLE_DECIMAL:
                if (LIT(out, ",\"doc\":\"Variable scaled decimal\"") < 0)
                        return -ENOMEM;
                break;
        case WC_DBZ_DECIMAL:
                snprintf(num, sizeof(num), "%d", t->scale);
                if (LIT(out, ",\"parameters\":{\"scale\":\"") < 0 ||
                    wc_buf_append_str(out, num) < 0 ||
                    LIT(out, "\",\"connect.decimal.precision\":\"") < 0)
                        return -ENOMEM;
                snprintf(num, sizeof(num), "%d", t->precision);
                if (wc_buf_append_str(out, num) < 0 || LIT(out, "\"}") < 0)
                        return -ENOMEM;
                break;
        case WC_DBZ_MONEY:
                if (t->decimal != WC_DBZ_DECIMAL_PRECISE)
                        break;
                snprintf(num, sizeof(num), "%d", t->scale);
                if (LIT(out, ",\"parameters\":{\"scale\":\"") < 0 ||
                    wc_buf_append_str(out, num) < 0 || LIT(out, "\"}") < 0)
                        return -ENOMEM;
                break;
        case WC_DBZ_BITS:
                snprintf(num, sizeof(num), "%d", t->length);
                if (LIT(out, ",\"parameters\":{\"length\":\"") < 0 ||
                    wc_buf_append_str(out, num) < 0 || LIT(out, "\"}") < 0)
                        return -ENOMEM;
                break;
        case WC_DBZ_ENUM:
                if (LIT(out, ",\"parameters\":{\"allowed\":") < 0 ||
                    wc_json_append_string(out, t->allowed ? t->allowed : "",
                                          t->allowed ? strlen(t->allowed) : 0) <
                        0 ||
                    LIT(out, "}") < 0)
                        return -ENOMEM;
                break;
        case WC_DBZ_TEXT:
                if (LIT(out, ",\"parameters\":{\"walcast.type\":") < 0 ||
                    wc_json_append_string(out, pgtype ? pgtype : "",
                                          pgtype ? pgtype_len : 0) < 0 ||
                    LIT(out, "}") < 0)
                        return -ENOMEM;
                break;
        default:
                break;
        }
        return 0;
}

int wc_dbz_append_field_schema(struct wc_buf *out, const struct wc_dbz_type *t,
                               const char *pgtype, size_t pgtype_len,
                               const char *name, size_t name_len, bool optional)
{
        if (put_schema(out, t, t->kind, pgtype, pgtype_len, optional) < 0 ||
            LIT(out, ",\"field\":") < 0 ||
            wc_json_append_string(out, name, name_len) < 0 || LIT(out, "}") < 0)
                return -ENOMEM;
        return 0;
}

/* ---- rows ---- */

static const struct walcast_column *find(const struct walcast_columns *l,
                                         const char *name, size_t len)
{
        if (!l)
                return NULL;
        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == len &&
                    memcmp(l->items[i].name, name, len) == 0)
                        return &l->items[i];
        return NULL;
}

static void type_of_col(const struct walcast_column *c,
                        const struct wc_dbz_options *o, struct wc_dbz_type *t)
{
        wc_dbz_type_of(c->type_oid, c->type, c->type ? c->type_len : 0, o, t);
}

/* Forgets what c made from enum labels that have changed since. */
static void cache_sync(struct wc_dbz_cache *c, const struct wc_dbz_options *o)
{
        if (!c || c->enums_gen == o->enums_gen)
                return;
        if (c->nmemo)
                memset(c->memo, 0, c->nmemo * sizeof(*c->memo));
        for (unsigned i = 0; i < 2; i++)
                wc_buf_reset(&c->sig[i]);
        wc_buf_reset(&c->key_sig);
        c->enums_gen = o->enums_gen;
}

/* type_of_col, from c's memo when the column at position i has the same
 * type as there last time (a table's columns seldom change). */
static void type_memo(struct wc_dbz_cache *c, uint32_t i,
                      const struct walcast_column *col,
                      const struct wc_dbz_options *o, struct wc_dbz_type *t)
{
        uint32_t len = col->type ? col->type_len : 0;
        struct wc_dbz_memo *m;

        if (c && i < c->nmemo) {
                m = &c->memo[i];
                if (m->name_len == len && len && m->oid == col->type_oid &&
                    memcmp(m->name, col->type, len) == 0) {
                        *t = m->t;
                        return;
                }
        }
        type_of_col(col, o, t);
        if (!c || len == 0 || len > sizeof(m->name))
                return;
        if (i >= c->nmemo) {
                size_t n = i + 8;
                void *p = realloc(c->memo, n * sizeof(*c->memo));

                if (!p)
                        return; /* only slower */
                c->memo = p;
                memset(c->memo + c->nmemo, 0,
                       (n - c->nmemo) * sizeof(*c->memo));
                c->nmemo = n;
        }
        m = &c->memo[i];
        m->oid = col->type_oid;
        m->name_len = len;
        memcpy(m->name, col->type, len);
        m->t = *t;
}

static int put_row(struct wc_buf *out, const struct walcast_columns *cols,
                   const struct wc_dbz_options *o, struct wc_dbz_cache *memo)
{
        if (!cols)
                return LIT(out, "null");
        if (LIT(out, "{") < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < cols->count; i++) {
                const struct walcast_column *c = &cols->items[i];
                struct wc_dbz_type t;

                type_memo(memo, i, c, o, &t);
                if ((i > 0 && LIT(out, ",") < 0) ||
                    wc_json_append_string(out, c->name, c->name_len) < 0 ||
                    LIT(out, ":") < 0 ||
                    wc_dbz_append_value(out, &t, c->value, c->value_len) < 0)
                        return -ENOMEM;
        }
        return LIT(out, "}");
}

/* s[0..n) JSON-escaped, without quotes */
static int put_body(struct wc_buf *out, const char *s, size_t n)
{
        char *p, *end;

        if (wc_buf_reserve(out, WC_JSON_STRING_MAX(n)) < 0)
                return -ENOMEM;
        p = out->data + out->len;
        end = wc_json_put_string(p, s, n);
        memmove(p, p + 1, (size_t)(end - p) - 2);
        out->len += (size_t)(end - p) - 2;
        out->data[out->len] = '\0';
        return 0;
}

static int put_body_str(struct wc_buf *out, const char *s)
{
        return s ? put_body(out, s, strlen(s)) : 0;
}

/* "<prefix>.<schema>.<table><suffix>" as a JSON string */
static int put_struct_name(struct wc_buf *out, const struct wc_dbz_table *tb,
                           const char *suffix)
{
        if (LIT(out, "\"") < 0 || put_body_str(out, tb->prefix) < 0 ||
            LIT(out, ".") < 0 || put_body_str(out, tb->schema) < 0 ||
            LIT(out, ".") < 0 || put_body_str(out, tb->table) < 0 ||
            wc_buf_append_str(out, suffix) < 0 || LIT(out, "\"") < 0)
                return -ENOMEM;
        return 0;
}

/* Every key column has a value in row. */
static bool key_complete(const struct walcast_columns *pk,
                         const struct walcast_columns *row)
{
        if (!pk || pk->count == 0 || !row)
                return false;
        for (uint32_t i = 0; i < pk->count; i++) {
                const struct walcast_column *c =
                    find(row, pk->items[i].name, pk->items[i].name_len);

                /* nothing is invented: no value, no key */
                if (!c || !c->value || c->value_len == 0)
                        return false;
        }
        return true;
}

/* The Key struct's schema. */
static int put_key_schema(struct wc_buf *out, const struct wc_dbz_table *tb,
                          const struct walcast_columns *pk,
                          const struct walcast_columns *row,
                          const struct wc_dbz_options *o)
{
        if (LIT(out, "{\"type\":\"struct\",\"fields\":[") < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < pk->count; i++) {
                const struct walcast_column *c =
                    find(row, pk->items[i].name, pk->items[i].name_len);
                struct wc_dbz_type t;

                type_of_col(c, o, &t);
                if ((i > 0 && LIT(out, ",") < 0) ||
                    wc_dbz_append_field_schema(out, &t, c->type, c->type_len,
                                               c->name, c->name_len, false) < 0)
                        return -ENOMEM;
        }
        if (LIT(out, "],\"optional\":false,\"name\":") < 0 ||
            put_struct_name(out, tb, ".Key") < 0 || LIT(out, "}") < 0)
                return -ENOMEM;
        return 0;
}

/* The key's payload, wrapped with schema when there is one. */
static int put_key(struct wc_buf *out, const struct wc_str *schema,
                   const struct walcast_columns *pk,
                   const struct walcast_columns *row,
                   const struct wc_dbz_options *o)
{
        if (schema && (LIT(out, "{\"schema\":") < 0 ||
                       app(out, schema->ptr, schema->len) < 0 ||
                       LIT(out, ",\"payload\":") < 0))
                return -ENOMEM;
        if (LIT(out, "{") < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < pk->count; i++) {
                const struct walcast_column *c =
                    find(row, pk->items[i].name, pk->items[i].name_len);
                struct wc_dbz_type t;

                type_of_col(c, o, &t);
                if ((i > 0 && LIT(out, ",") < 0) ||
                    wc_json_append_string(out, c->name, c->name_len) < 0 ||
                    LIT(out, ":") < 0 ||
                    wc_dbz_append_value(out, &t, c->value, c->value_len) < 0)
                        return -ENOMEM;
        }
        if (LIT(out, "}") < 0 || (schema && LIT(out, "}") < 0))
                return -ENOMEM;
        return 0;
}

int wc_dbz_format_key(struct wc_buf *out, const struct wc_dbz_table *tb,
                      const struct walcast_columns *pk,
                      const struct walcast_columns *row,
                      const struct wc_dbz_options *o)
{
        size_t start = out->len;
        struct wc_buf sch;
        int r = -ENOMEM;

        if (!key_complete(pk, row))
                return -ENOENT;
        wc_buf_init(&sch);
        if (o->schemas && put_key_schema(&sch, tb, pk, row, o) < 0)
                goto out;
        r = put_key(out,
                    o->schemas ? &(struct wc_str){sch.data, sch.len} : NULL, pk,
                    row, o);
out:
        if (r < 0)
                out->len = start;
        wc_buf_free(&sch);
        return r;
}

/* ---- the envelope ---- */

#define SOURCE_SCHEMA                                                          \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"      \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"         \
        "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"         \
        "{\"type\":\"string\",\"optional\":true,\"name\":"                     \
        "\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{"             \
        "\"allowed\":\"true,first,first_in_data_collection,"                   \
        "last_in_data_collection,last,false,incremental\"},"                   \
        "\"default\":\"false\",\"field\":\"snapshot\"},"                       \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"           \
        "{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},"      \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"          \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"          \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"       \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"table\"},"        \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"txId\"},"           \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"lsn\"},"            \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"xmin\"},"           \
        "{\"type\":\"string\",\"optional\":true,\"field\":\"origin\"},"        \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"origin_lsn\"}],"    \
        "\"optional\":false,\"name\":"                                         \
        "\"io.debezium.connector.postgresql.Source\",\"version\":1,"           \
        "\"field\":\"source\"}"

#define ENVELOPE_TAIL                                                          \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"           \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"          \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"          \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"          \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"           \
        "{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},"   \
        "{\"type\":\"int64\",\"optional\":false,\"field\":"                    \
        "\"data_collection_order\"}],\"optional\":true,\"name\":"              \
        "\"event.block\",\"version\":1,\"field\":\"transaction\"}],"           \
        "\"optional\":false,\"name\":"

/* A Value struct's field: required for a key column. */
static int put_value_field(struct wc_buf *out, const struct walcast_column *c,
                           const struct walcast_columns *pk,
                           const struct wc_dbz_options *o)
{
        struct wc_dbz_type t;

        type_of_col(c, o, &t);
        return wc_dbz_append_field_schema(out, &t, c->type, c->type_len,
                                          c->name, c->name_len,
                                          !find(pk, c->name, c->name_len));
}

/* The Value struct's schema up to "field": */
static int put_value_schema(struct wc_buf *out, const struct wc_dbz_table *tb,
                            const struct walcast_columns *before,
                            const struct walcast_columns *after,
                            const struct walcast_columns *pk,
                            const struct wc_dbz_options *o)
{
        bool first = true;

        if (LIT(out, "{\"type\":\"struct\",\"fields\":[") < 0)
                return -ENOMEM;
        for (uint32_t i = 0; after && i < after->count; i++, first = false)
                if ((!first && LIT(out, ",") < 0) ||
                    put_value_field(out, &after->items[i], pk, o) < 0)
                        return -ENOMEM;
        for (uint32_t i = 0; before && i < before->count; i++) {
                const struct walcast_column *c = &before->items[i];

                if (find(after, c->name, c->name_len))
                        continue;
                if ((!first && LIT(out, ",") < 0) ||
                    put_value_field(out, c, pk, o) < 0)
                        return -ENOMEM;
                first = false;
        }
        if (LIT(out, "],\"optional\":true,\"name\":") < 0 ||
            put_struct_name(out, tb, ".Value") < 0 ||
            LIT(out, ",\"field\":") < 0)
                return -ENOMEM;
        return 0;
}

int wc_dbz_append_envelope_schema(struct wc_buf *out,
                                  const struct wc_dbz_table *tb,
                                  const struct walcast_columns *before,
                                  const struct walcast_columns *after,
                                  const struct walcast_columns *pk,
                                  const struct wc_dbz_options *o)
{
        size_t start = out->len, vstart, vlen;

        if (LIT(out, "{\"type\":\"struct\",\"fields\":[") < 0)
                goto nomem;
        vstart = out->len;
        if (put_value_schema(out, tb, before, after, pk, o) < 0)
                goto nomem;
        vlen = out->len - vstart;
        if (LIT(out, "\"before\"},") < 0 || wc_buf_reserve(out, vlen) < 0)
                goto nomem;
        /* the same struct again, for after */
        memcpy(out->data + out->len, out->data + vstart, vlen);
        out->len += vlen;
        out->data[out->len] = '\0';
        if (LIT(out, "\"after\"},") < 0 || LIT(out, SOURCE_SCHEMA ",") < 0 ||
            LIT(out, ENVELOPE_TAIL) < 0 ||
            put_struct_name(out, tb, ".Envelope") < 0 ||
            LIT(out, ",\"version\":2}") < 0)
                goto nomem;
        return 0;
nomem:
        out->len = start;
        return -ENOMEM;
}

static int put_str_or_null(struct wc_buf *out, const char *s)
{
        if (!s)
                return LIT(out, "null");
        return wc_json_append_string(out, s, strlen(s));
}

/* Floor division: a time before 1970 stays in its millisecond. */
static int64_t fdiv(int64_t a, int64_t b)
{
        return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* lit, then v in decimal */
static int put_lit_int(struct wc_buf *out, const char *lit, int64_t v)
{
        size_t n = strlen(lit);
        char *p;

        if (wc_buf_reserve(out, n + WC_UINT_MAX_DIGITS + 2) < 0)
                return -ENOMEM;
        p = out->data + out->len;
        memcpy(p, lit, n);
        p = wc_dbz_put_int(p + n, v);
        out->len = (size_t)(p - out->data);
        out->data[out->len] = '\0';
        return 0;
}

/* The source struct: {"version":..,...,"origin_lsn":null} */
static int put_source(struct wc_buf *out, const struct wc_dbz_table *tb,
                      const struct walcast_signal *s, int64_t commit_us)
{
        if (LIT(out, "{\"version\":\"" WALCAST_VERSION
                     "\",\"connector\":\"postgresql\",\"name\":") < 0 ||
            put_str_or_null(out, tb->prefix) < 0 ||
            put_lit_int(out, ",\"ts_ms\":", fdiv(commit_us, 1000)) < 0 ||
            LIT(out, ",\"snapshot\":\"false\",\"db\":") < 0 ||
            put_str_or_null(out, tb->db) < 0 ||
            put_lit_int(out, ",\"sequence\":null,\"ts_us\":", commit_us) < 0 ||
            put_lit_int(out, ",\"ts_ns\":", commit_us * 1000) < 0 ||
            LIT(out, ",\"schema\":") < 0 ||
            put_str_or_null(out, tb->schema) < 0 ||
            LIT(out, ",\"table\":") < 0 || put_str_or_null(out, tb->table) < 0)
                return -ENOMEM;
        if (s->txn ? put_lit_int(out, ",\"txId\":", s->txn->xid) < 0
                   : LIT(out, ",\"txId\":null") < 0)
                return -ENOMEM;
        if (put_lit_int(out, ",\"lsn\":", (int64_t)s->lsn) < 0 ||
            LIT(out, ",\"xmin\":null,\"origin\":null,\"origin_lsn\":null}") < 0)
                return -ENOMEM;
        return 0;
}

static int put_txblock(struct wc_buf *out, const struct wc_dbz_txblock *tx)
{
        if (!tx)
                return LIT(out, "null");
        if (put_lit_int(out, "{\"id\":\"", tx->xid) < 0 ||
            put_lit_int(out, ":", (int64_t)tx->commit_lsn) < 0 ||
            put_lit_int(out, "\",\"total_order\":", (int64_t)tx->total_order) <
                0 ||
            put_lit_int(out, ",\"data_collection_order\":",
                        (int64_t)tx->data_collection_order) < 0 ||
            LIT(out, "}") < 0)
                return -ENOMEM;
        return 0;
}

int wc_dbz_format_value_with(struct wc_buf *out, const struct wc_str *schema,
                             const struct wc_dbz_table *tb,
                             const struct walcast_signal *s, char op,
                             const struct walcast_columns *before,
                             const struct walcast_columns *after,
                             const struct wc_dbz_txblock *tx, int64_t now_us,
                             const struct wc_dbz_options *o)
{
        return wc_dbz_format_value_cached(out, NULL, schema, tb, s, op, before,
                                          after, tx, now_us, o);
}

int wc_dbz_format_value_cached(struct wc_buf *out, struct wc_dbz_cache *c,
                               const struct wc_str *schema,
                               const struct wc_dbz_table *tb,
                               const struct walcast_signal *s, char op,
                               const struct walcast_columns *before,
                               const struct walcast_columns *after,
                               const struct wc_dbz_txblock *tx, int64_t now_us,
                               const struct wc_dbz_options *o)
{
        size_t start = out->len;
        int64_t commit_us =
            s->txn && s->txn->commit_time_us ? s->txn->commit_time_us : now_us;

        cache_sync(c, o);
        if (o->schemas && (LIT(out, "{\"schema\":") < 0 ||
                           wc_buf_append(out, schema->ptr, schema->len) < 0 ||
                           LIT(out, ",\"payload\":") < 0))
                goto nomem;
        if (LIT(out, "{\"before\":") < 0 || put_row(out, before, o, c) < 0 ||
            LIT(out, ",\"after\":") < 0 || put_row(out, after, o, c) < 0 ||
            LIT(out, ",\"source\":") < 0 ||
            put_source(out, tb, s, commit_us) < 0 ||
            LIT(out, ",\"op\":\"") < 0 || wc_buf_append_char(out, op) < 0 ||
            put_lit_int(out, "\",\"ts_ms\":", fdiv(now_us, 1000)) < 0 ||
            put_lit_int(out, ",\"ts_us\":", now_us) < 0 ||
            put_lit_int(out, ",\"ts_ns\":", now_us * 1000) < 0 ||
            LIT(out, ",\"transaction\":") < 0 || put_txblock(out, tx) < 0)
                goto nomem;
        if (LIT(out, "}") < 0 || (o->schemas && LIT(out, "}") < 0))
                goto nomem;
        return 0;
nomem:
        out->len = start;
        return -ENOMEM;
}

int wc_dbz_format_value(struct wc_buf *out, const struct wc_dbz_table *tb,
                        const struct walcast_signal *s, char op,
                        const struct walcast_columns *before,
                        const struct walcast_columns *after,
                        const struct walcast_columns *pk,
                        const struct wc_dbz_txblock *tx, int64_t now_us,
                        const struct wc_dbz_options *o)
{
        struct wc_buf sch;
        int r = -ENOMEM;

        wc_buf_init(&sch);
        if (o->schemas &&
            wc_dbz_append_envelope_schema(&sch, tb, before, after, pk, o) < 0)
                goto out;
        r = wc_dbz_format_value_with(out, &(struct wc_str){sch.data, sch.len},
                                     tb, s, op, before, after, tx, now_us, o);
out:
        wc_buf_free(&sch);
        return r;
}

/* ---- the schema cache ---- */

static int sig_cols(struct wc_buf *b, const struct walcast_columns *l,
                    const struct walcast_columns *pk, char tag)
{
        if (wc_buf_append_char(b, tag) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; l && i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];
                uint32_t h[3] = {c->name_len, c->type_oid,
                                 c->type ? c->type_len : 0};
                char key = find(pk, c->name, c->name_len) ? 'k' : 'v';

                if (wc_buf_append(b, h, sizeof(h)) < 0 ||
                    wc_buf_append(b, c->name, c->name_len) < 0 ||
                    wc_buf_append(b, c->type ? c->type : "", h[2]) < 0 ||
                    wc_buf_append_char(b, key) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The part of sig at *pp tagged tag lists exactly the columns of l. */
static bool sig_part_same(const char **pp, const char *end,
                          const struct walcast_columns *l,
                          const struct walcast_columns *pk, char tag)
{
        const char *p = *pp;

        if (p >= end || *p++ != tag)
                return false;
        for (uint32_t i = 0; l && i < l->count; i++) {
                const struct walcast_column *c = &l->items[i];
                uint32_t h[3];

                if (end - p < 12)
                        return false;
                memcpy(h, p, sizeof(h));
                if (h[0] != c->name_len || h[1] != c->type_oid ||
                    h[2] != (c->type ? c->type_len : 0) ||
                    (size_t)(end - p) < 12 + (size_t)h[0] + h[2] + 1 ||
                    memcmp(p + 12, c->name, h[0]) != 0 ||
                    memcmp(p + 12 + h[0], c->type ? c->type : "", h[2]) != 0 ||
                    p[12 + h[0] + h[2]] !=
                        (find(pk, c->name, c->name_len) ? 'k' : 'v'))
                        return false;
                p += 12 + h[0] + h[2] + 1;
        }
        *pp = p;
        return true;
}

/* sig was made from these lists (what sig_cols writes). */
static bool sig_same(const struct wc_buf *sig,
                     const struct walcast_columns *before,
                     const struct walcast_columns *after,
                     const struct walcast_columns *pk)
{
        const char *p = sig->data, *end;

        if (!sig->data || !sig->len)
                return false;
        end = sig->data + sig->len;
        return sig_part_same(&p, end, after, pk, after ? 'a' : 'A') &&
               sig_part_same(&p, end, before, pk, before ? 'b' : 'B') &&
               p == end;
}

/* sig (of a change with a new row) has column c in its new row, of the
 * same type. */
static bool sig_has(const struct wc_buf *sig, const struct walcast_column *c)
{
        const char *p = sig->data + 1, *end = sig->data + sig->len;
        uint32_t tl = c->type ? c->type_len : 0;

        while (p + 12 <= end && *p != 'b' && *p != 'B') {
                uint32_t h[3];

                memcpy(h, p, sizeof(h));
                if (h[0] == c->name_len && h[1] == c->type_oid && h[2] == tl &&
                    memcmp(p + 12, c->name, h[0]) == 0 &&
                    memcmp(p + 12 + h[0], c->type ? c->type : "", tl) == 0)
                        return true;
                p += 12 + h[0] + h[2] + 1;
        }
        return false;
}

/* A kept schema made from a new row holding every column of before:
 * Debezium's Value struct is the table's, whatever the change. */
static int row_slot(const struct wc_dbz_cache *c,
                    const struct walcast_columns *before)
{
        for (int slot = 0; slot < 2; slot++) {
                bool all = c->sig[slot].data && c->sig[slot].len > 0 &&
                           c->sig[slot].data[0] == 'a';

                for (uint32_t i = 0; all && before && i < before->count; i++)
                        all = sig_has(&c->sig[slot], &before->items[i]);
                if (all)
                        return slot;
        }
        return -1;
}

int wc_dbz_cached_schema(struct wc_dbz_cache *c, const struct wc_dbz_table *tb,
                         const struct walcast_columns *before,
                         const struct walcast_columns *after,
                         const struct walcast_columns *pk,
                         const struct wc_dbz_options *o, struct wc_str *ret)
{
        struct wc_buf *sig = &c->scratch, tmp;
        unsigned slot;
        int row;

        cache_sync(c, o);
        /* a delete's or truncate's columns are some of the row's */
        if (!after && (row = row_slot(c, before)) >= 0) {
                *ret = (struct wc_str){c->schema[row].data, c->schema[row].len};
                return 0;
        }
        for (slot = 0; slot < 2; slot++)
                if (sig_same(&c->sig[slot], before, after, pk))
                        break;
        if (slot == 2) {
                wc_buf_reset(sig);
                if (sig_cols(sig, after, pk, after ? 'a' : 'A') < 0 ||
                    sig_cols(sig, before, pk, before ? 'b' : 'B') < 0)
                        return -ENOMEM;
                slot = c->next;
                c->next ^= 1;
                wc_buf_reset(&c->schema[slot]);
                /* a failure leaves the slot matching nothing */
                wc_buf_reset(&c->sig[slot]);
                if (wc_dbz_append_envelope_schema(&c->schema[slot], tb, before,
                                                  after, pk, o) < 0)
                        return -ENOMEM;
                tmp = c->sig[slot];
                c->sig[slot] = *sig;
                *sig = tmp;
        }
        *ret = (struct wc_str){c->schema[slot].data, c->schema[slot].len};
        return 0;
}

int wc_dbz_format_key_cached(struct wc_buf *out, struct wc_dbz_cache *c,
                             const struct wc_dbz_table *tb,
                             const struct walcast_columns *pk,
                             const struct walcast_columns *row,
                             const struct wc_dbz_options *o)
{
        size_t start = out->len;
        const char *p;
        bool same;

        if (!o->schemas)
                return wc_dbz_format_key(out, tb, pk, row, o);
        cache_sync(c, o);
        if (!key_complete(pk, row))
                return -ENOENT;
        /* the key columns' names and types, as the row has them */
        p = c->key_sig.data;
        same = c->key_sig.len > 0 && *p++ == 'k';
        for (uint32_t i = 0; same && i < pk->count; i++) {
                const struct walcast_column *k =
                    find(row, pk->items[i].name, pk->items[i].name_len);
                const struct walcast_columns one = {k, 1};

                same = sig_part_same(&p, c->key_sig.data + c->key_sig.len, &one,
                                     pk, 'c');
        }
        if (!same || p != c->key_sig.data + c->key_sig.len) {
                wc_buf_reset(&c->key_sig);
                wc_buf_reset(&c->key_schema);
                if (wc_buf_append_char(&c->key_sig, 'k') < 0)
                        return -ENOMEM;
                for (uint32_t i = 0; i < pk->count; i++) {
                        const struct walcast_column *k =
                            find(row, pk->items[i].name, pk->items[i].name_len);

                        if (sig_cols(&c->key_sig,
                                     &(struct walcast_columns){k, 1}, pk,
                                     'c') < 0)
                                return -ENOMEM;
                }
                if (put_key_schema(&c->key_schema, tb, pk, row, o) < 0) {
                        wc_buf_reset(&c->key_sig);
                        return -ENOMEM;
                }
        }
        if (put_key(out,
                    &(struct wc_str){c->key_schema.data, c->key_schema.len}, pk,
                    row, o) < 0) {
                out->len = start;
                return -ENOMEM;
        }
        return 0;
}

void wc_dbz_cache_free(struct wc_dbz_cache *c)
{
        wc_buf_free(&c->key_sig);
        wc_buf_free(&c->key_schema);
        for (unsigned i = 0; i < 2; i++) {
                wc_buf_free(&c->sig[i]);
                wc_buf_free(&c->schema[i]);
        }
        wc_buf_free(&c->scratch);
        free(c->memo);
        c->memo = NULL;
        c->nmemo = 0;
}

/* ---- transaction metadata ---- */

#define TXN_KEY_SCHEMA                                                         \
        "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":"  \
        "false,\"field\":\"id\"}],\"optional\":false,\"name\":"                \
        "\"io.debezium.connector.common.TransactionMetadataKey\","             \
        "\"version\":1}"

#define TXN_VALUE_SCHEMA                                                       \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"status\"},"       \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"           \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"event_count\"},"    \
        "{\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":["      \
        "{\"type\":\"string\",\"optional\":false,\"field\":"                   \
        "\"data_collection\"},{\"type\":\"int64\",\"optional\":false,"         \
        "\"field\":\"event_count\"}],\"optional\":true,\"name\":"              \
        "\"event.collection\",\"version\":1},\"optional\":true,\"field\":"     \
        "\"data_collections\"},"                                               \
        "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"}],"        \
        "\"optional\":false,\"name\":"                                         \
        "\"io.debezium.connector.common.TransactionMetadataValue\","           \
        "\"version\":1}"

int wc_dbz_format_txn_key(struct wc_buf *out, uint32_t xid, uint64_t commit_lsn,
                          const struct wc_dbz_options *o)
{
        if (o->schemas &&
            LIT(out, "{\"schema\":" TXN_KEY_SCHEMA ",\"payload\":") < 0)
                return -ENOMEM;
        if (wc_buf_printf(out, "{\"id\":\"%u:%llu\"}", xid,
                          (unsigned long long)commit_lsn) < 0 ||
            (o->schemas && LIT(out, "}") < 0))
                return -ENOMEM;
        return 0;
}

int wc_dbz_format_txn_value(struct wc_buf *out, bool end, uint32_t xid,
                            uint64_t commit_lsn, int64_t ts_ms,
                            uint64_t event_count,
                            const struct wc_dbz_collection *colls, size_t n,
                            const struct wc_dbz_options *o)
{
        size_t start = out->len;

        if (o->schemas &&
            LIT(out, "{\"schema\":" TXN_VALUE_SCHEMA ",\"payload\":") < 0)
                goto nomem;
        if (wc_buf_printf(out, "{\"status\":\"%s\",\"id\":\"%u:%llu\"",
                          end ? "END" : "BEGIN", xid,
                          (unsigned long long)commit_lsn) < 0)
                goto nomem;
        if (!end) {
                if (LIT(out,
                        ",\"event_count\":null,\"data_collections\":null") < 0)
                        goto nomem;
        } else {
                if (wc_buf_printf(
                        out, ",\"event_count\":%llu,\"data_collections\":[",
                        (unsigned long long)event_count) < 0)
                        goto nomem;
                for (size_t i = 0; i < n; i++)
                        if ((i > 0 && LIT(out, ",") < 0) ||
                            LIT(out, "{\"data_collection\":") < 0 ||
                            wc_json_append_string(out, colls[i].name,
                                                  colls[i].len) < 0 ||
                            wc_buf_printf(out, ",\"event_count\":%llu}",
                                          (unsigned long long)colls[i].count) <
                                0)
                                goto nomem;
                if (LIT(out, "]") < 0)
                        goto nomem;
        }
        if (wc_buf_printf(out, ",\"ts_ms\":%lld}", (long long)ts_ms) < 0 ||
            (o->schemas && LIT(out, "}") < 0))
                goto nomem;
        return 0;
nomem:
        out->len = start;
        return -ENOMEM;
}

/* ---- logical messages and heartbeats ---- */

#define MESSAGE_KEY_SCHEMA                                                     \
        "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":"  \
        "true,\"field\":\"prefix\"}],\"optional\":false,\"name\":"             \
        "\"io.debezium.connector.postgresql.MessageKey\",\"version\":1}"

#define MESSAGE_VALUE_SCHEMA_HEAD                                              \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"           \
        "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"

#define MESSAGE_VALUE_SCHEMA_TAIL                                              \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"           \
        "{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},"   \
        "{\"type\":\"int64\",\"optional\":false,\"field\":"                    \
        "\"data_collection_order\"}],\"optional\":true,\"name\":"              \
        "\"event.block\",\"version\":1,\"field\":\"transaction\"},"            \
        "{\"type\":\"struct\",\"fields\":["                                    \
        "{\"type\":\"string\",\"optional\":true,\"field\":\"prefix\"},"        \
        "{\"type\":\"bytes\",\"optional\":true,\"field\":\"content\"}],"       \
        "\"optional\":false,\"name\":\"io.debezium.connector.postgresql."      \
        "Message\",\"version\":1,\"field\":\"message\"}],\"optional\":false,"  \
        "\"name\":\"io.debezium.connector.postgresql.MessageValue\","          \
        "\"version\":1}"

int wc_dbz_format_message_key(struct wc_buf *out,
                              const struct walcast_signal *s,
                              const struct wc_dbz_options *o)
{
        size_t start = out->len;

        if ((o->schemas &&
             LIT(out, "{\"schema\":" MESSAGE_KEY_SCHEMA ",\"payload\":") < 0) ||
            LIT(out, "{\"prefix\":") < 0 ||
            put_str_or_null(out, s->prefix) < 0 || LIT(out, "}") < 0 ||
            (o->schemas && LIT(out, "}") < 0)) {
                out->len = start;
                return -ENOMEM;
        }
        return 0;
}

/* The content's bytes as base64: from the JSON string of its text, or
 * as it is when the decoder gave base64 already. */
static int put_content(struct wc_buf *out, const struct walcast_signal *s)
{
        const char *c = s->content;
        size_t n = s->content_len;
        bool b64 = WALCAST_HAS_FIELD(s, struct walcast_signal, content_flags) &&
                   (s->content_flags & WALCAST_CONTENT_BASE64);
        char stack[256], *tmp;
        size_t len;
        int r;

        if (!c || n < 2 || c[0] != '"')
                return LIT(out, "null");
        if (b64)
                return wc_buf_append(out, c, n);
        tmp = n <= sizeof(stack) ? stack : malloc(n);
        if (!tmp)
                return -ENOMEM;
        memcpy(tmp, c + 1, n - 1);
        r = wc_json_unescape_inplace(tmp, n - 2, &len);
        if (r == 0) {
                r = wc_buf_reserve(out, WC_BASE64_LEN(len) + 3);
                if (r == 0) {
                        char *o = out->data + out->len;

                        *o++ = '"';
                        o = wc_base64_put(o, (const unsigned char *)tmp, len);
                        *o++ = '"';
                        out->len = (size_t)(o - out->data);
                        out->data[out->len] = '\0';
                }
        } else {
                r = LIT(out, "null");
        }
        if (tmp != stack)
                free(tmp);
        return r;
}

int wc_dbz_format_message_value(struct wc_buf *out,
                                const struct wc_dbz_table *tb,
                                const struct walcast_signal *s, int64_t now_us,
                                const struct wc_dbz_options *o)
{
        size_t start = out->len;
        int64_t ts_us =
            s->txn && s->txn->commit_time_us ? s->txn->commit_time_us : now_us;
        const struct wc_dbz_table mt = {tb->prefix, tb->db, "", ""};

        if (o->schemas &&
            LIT(out, "{\"schema\":" MESSAGE_VALUE_SCHEMA_HEAD SOURCE_SCHEMA
                     "," MESSAGE_VALUE_SCHEMA_TAIL ",\"payload\":") < 0)
                goto nomem;
        if (wc_buf_printf(out, "{\"op\":\"m\",\"ts_ms\":%lld,\"source\":",
                          (long long)fdiv(ts_us, 1000)) < 0 ||
            put_source(out, &mt, s, ts_us) < 0 ||
            LIT(out, ",\"transaction\":null,\"message\":{\"prefix\":") < 0 ||
            put_str_or_null(out, s->prefix) < 0 ||
            LIT(out, ",\"content\":") < 0 || put_content(out, s) < 0 ||
            LIT(out, "}}") < 0 || (o->schemas && LIT(out, "}") < 0))
                goto nomem;
        return 0;
nomem:
        out->len = start;
        return -ENOMEM;
}

int wc_dbz_format_heartbeat(struct wc_buf *key, struct wc_buf *value,
                            const char *prefix, int64_t ts_ms,
                            const struct wc_dbz_options *o)
{
        if ((o->schemas &&
             LIT(key, "{\"schema\":{\"type\":\"struct\",\"fields\":[{"
                      "\"type\":\"string\",\"optional\":false,\"field\":"
                      "\"serverName\"}],\"optional\":false,\"name\":"
                      "\"io.debezium.connector.common.ServerNameKey\","
                      "\"version\":1},\"payload\":") < 0) ||
            LIT(key, "{\"serverName\":") < 0 ||
            put_str_or_null(key, prefix) < 0 || LIT(key, "}") < 0 ||
            (o->schemas && LIT(key, "}") < 0))
                return -ENOMEM;
        if ((o->schemas &&
             LIT(value, "{\"schema\":{\"type\":\"struct\",\"fields\":[{"
                        "\"type\":\"int64\",\"optional\":false,\"field\":"
                        "\"ts_ms\"}],\"optional\":false,\"name\":"
                        "\"io.debezium.connector.common.Heartbeat\","
                        "\"version\":1},\"payload\":") < 0) ||
            wc_buf_printf(value, "{\"ts_ms\":%lld}", (long long)ts_ms) < 0 ||
            (o->schemas && LIT(value, "}") < 0))
                return -ENOMEM;
        return 0;
}
