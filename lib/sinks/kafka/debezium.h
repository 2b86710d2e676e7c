/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink's `value_format: debezium`: keys and values as Debezium's
 * PostgreSQL connector writes them with Kafka's JsonConverter, columns
 * converted from PostgreSQL's text to Debezium's types (docs/kafka.md,
 * "The debezium format", has the table).
 *
 * Type information comes from the column itself: its type OID, and the
 * type modifier in the name format_type() printed (numeric(12,4),
 * timestamp(3) without time zone, bit(8)).  A type that walcast cannot
 * convert goes out as its text, a string whose schema is named
 * "walcast.data.Text" with the PostgreSQL type name as the parameter
 * "walcast.type": never dropped.
 *
 * Pure code: no I/O, no state beyond what the caller passes.
 */
#ifndef WALCAST_SINKS_KAFKA_DEBEZIUM_H
#define WALCAST_SINKS_KAFKA_DEBEZIUM_H

#include <stdbool.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "core/core.h"

/* decimal.handling.mode */
enum wc_dbz_decimal {
        WC_DBZ_DECIMAL_PRECISE = 0, /* Kafka Connect Decimal: base64 bytes */
        WC_DBZ_DECIMAL_STRING,
        WC_DBZ_DECIMAL_DOUBLE,
};

/* time.precision.mode */
enum wc_dbz_time {
        WC_DBZ_TIME_ADAPTIVE = 0, /* io.debezium.time.*, by precision */
        WC_DBZ_TIME_CONNECT,      /* Kafka Connect's Date, Time, Timestamp */
};

/* An enum type: its labels in order, joined with "," (Debezium's
 * "allowed"); NULL: a type known to be no enum. */
struct wc_dbz_enum {
        uint32_t oid;
        const char *labels;
};

/* In v[0..n), sorted by oid: the index of the first entry whose oid is
 * not below oid (n when none is). */
size_t wc_dbz_enum_lower_bound(const struct wc_dbz_enum *v, size_t n,
                               uint32_t oid);

struct wc_dbz_options {
        enum wc_dbz_decimal decimal;
        enum wc_dbz_time time;
        bool schemas; /* {"schema":..,"payload":..}, else the payload */
        /* the enum types known, by oid (sinks/kafka/enums.h); a type
         * not among them, or with labels NULL, goes out as
         * walcast.data.Text */
        const struct wc_dbz_enum *enums;
        size_t nenums;
        /* changes whenever enums[] does: a struct wc_dbz_cache made under
         * another value is made again */
        uint64_t enums_gen;
};

/* What a column converts to.  Arrays: kind WC_DBZ_ARRAY, elem the
 * elements' kind (they share scale, precision and length). */
enum wc_dbz_kind {
        WC_DBZ_TEXT = 0, /* unconverted: walcast.data.Text */
        WC_DBZ_BOOLEAN,
        WC_DBZ_INT16,
        WC_DBZ_INT32,
        WC_DBZ_INT64,
        WC_DBZ_FLOAT32,
        WC_DBZ_FLOAT64,
        WC_DBZ_STRING, /* text types, inet, ranges...: a plain string */
        WC_DBZ_BYTES,  /* bytea */
        WC_DBZ_JSON,   /* json, jsonb, hstore: io.debezium.data.Json */
        WC_DBZ_XML,
        WC_DBZ_UUID,
        WC_DBZ_LTREE,
        WC_DBZ_ZONED_TIMESTAMP, /* timestamptz */
        WC_DBZ_ZONED_TIME,      /* timetz */
        WC_DBZ_DATE,            /* io.debezium.time.Date, days */
        WC_DBZ_TIME,            /* io.debezium.time.Time, ms */
        WC_DBZ_MICRO_TIME,
        WC_DBZ_TIMESTAMP, /* io.debezium.time.Timestamp, ms */
        WC_DBZ_MICRO_TIMESTAMP,
        WC_DBZ_CONNECT_DATE, /* org.apache.kafka.connect.data.Date */
        WC_DBZ_CONNECT_TIME,
        WC_DBZ_CONNECT_TIMESTAMP,
        WC_DBZ_MICRO_DURATION, /* interval */
        WC_DBZ_DECIMAL,        /* fixed scale: Decimal */
        WC_DBZ_VARIABLE_DECIMAL,
        WC_DBZ_DECIMAL_AS_STRING,
        WC_DBZ_DECIMAL_AS_DOUBLE,
        WC_DBZ_MONEY, /* Decimal of scale 2 (or string, double) */
        WC_DBZ_BITS,  /* bit(n > 1), varbit: io.debezium.data.Bits */
        WC_DBZ_BIT1,  /* bit(1): boolean */
        WC_DBZ_ARRAY,
        WC_DBZ_ENUM, /* io.debezium.data.Enum, labels from the catalog */
        WC_DBZ__COUNT
};

struct wc_dbz_type {
        uint8_t kind;        /* enum wc_dbz_kind */
        uint8_t elem;        /* arrays: the elements' kind */
        uint8_t decimal;     /* money: enum wc_dbz_decimal */
        int32_t precision;   /* numeric(p,s): p; -1 when none */
        int32_t scale;       /* numeric(p,s): s; money: 2 */
        int32_t length;      /* bit(n): n; varbit without one: INT32_MAX */
        const char *allowed; /* an enum's labels (o->enums) */
};

/* The conversion of a column of type (oid, name) under o. */
void wc_dbz_type_of(uint32_t oid, const char *name, size_t name_len,
                    const struct wc_dbz_options *o, struct wc_dbz_type *ret);

/*
 * Appends the payload of one value: json[0..len) is the column's value as
 * the decoder gives it (struct walcast_column: numbers bare or quoted,
 * strings quoted, "null"; len 0 is null too).  A value that does not
 * read as its type (none that PostgreSQL prints with walcast's session
 * settings) is written as null.  0 or -ENOMEM.
 */
int wc_dbz_append_value(struct wc_buf *out, const struct wc_dbz_type *t,
                        const char *json, size_t len);

/*
 * Appends the JsonConverter schema of a field of type t:
 *   {"type":"int32","optional":true,"field":"id"}
 * pgtype (the column's type name) is the parameter "walcast.type" of an
 * unconverted one.  0 or -ENOMEM.
 */
int wc_dbz_append_field_schema(struct wc_buf *out, const struct wc_dbz_type *t,
                               const char *pgtype, size_t pgtype_len,
                               const char *name, size_t name_len,
                               bool optional);

/* What every message of a table shares. */
struct wc_dbz_table {
        const char *prefix; /* topic.prefix: source.name, schema names */
        const char *db;
        const char *schema;
        const char *table;
};

/*
 * Appends the key: the primary-key columns pk with their values from row,
 * as a struct "<prefix>.<schema>.<table>.Key" (with o->schemas, the
 * {"schema":..,"payload":..} form).  -ENOENT when there is no key (pk
 * empty, or a key column without a value in row: the message then has a
 * null key), -ENOMEM.
 */
int wc_dbz_format_key(struct wc_buf *out, const struct wc_dbz_table *tb,
                      const struct walcast_columns *pk,
                      const struct walcast_columns *row,
                      const struct wc_dbz_options *o);

/* The envelope's transaction block (transactions_topic). */
struct wc_dbz_txblock {
        uint32_t xid;
        uint64_t commit_lsn; /* with xid, the id: "xid:commit_lsn" */
        uint64_t total_order;
        uint64_t data_collection_order;
};

/*
 * Appends the value envelope of a change: before, after, source,
 * transaction (null when tx is NULL), op ('c', 'u', 'd', 't'), ts_ms,
 * ts_us, ts_ns; the Value struct holds the columns of after, then those
 * of before that after lacks; pk's columns are its required fields.
 * s->txn gives source.txId and source.ts_ms.  With o->schemas the
 * JsonConverter form with the Envelope schema.  0 or -ENOMEM.
 */
int wc_dbz_format_value(struct wc_buf *out, const struct wc_dbz_table *tb,
                        const struct walcast_signal *s, char op,
                        const struct walcast_columns *before,
                        const struct walcast_columns *after,
                        const struct walcast_columns *pk,
                        const struct wc_dbz_txblock *tx, int64_t now_us,
                        const struct wc_dbz_options *o);

/*
 * The parts of wc_dbz_format_value, for a sink that keeps the schema of a
 * table's envelope between changes: wc_dbz_append_envelope_schema appends
 * the Envelope schema alone (what wc_dbz_format_value writes after
 * {"schema":), and wc_dbz_format_value_with appends the value with that
 * schema text, or with none when o->schemas is off.
 */
int wc_dbz_append_envelope_schema(struct wc_buf *out,
                                  const struct wc_dbz_table *tb,
                                  const struct walcast_columns *before,
                                  const struct walcast_columns *after,
                                  const struct walcast_columns *pk,
                                  const struct wc_dbz_options *o);
int wc_dbz_format_value_with(struct wc_buf *out, const struct wc_str *schema,
                             const struct wc_dbz_table *tb,
                             const struct walcast_signal *s, char op,
                             const struct walcast_columns *before,
                             const struct walcast_columns *after,
                             const struct wc_dbz_txblock *tx, int64_t now_us,
                             const struct wc_dbz_options *o);

/*
 * The Envelope schemas of one table, kept between its changes: making one
 * costs more than the rest of a message, and a table's columns seldom
 * change.  A change without a new row (delete, truncate) takes the schema
 * of the last one with a new row that has all its columns, so that the
 * Value struct is the table's, as Debezium's; two are kept.  Zeroed is
 * empty.
 */
/* A column's conversion as the last change had it at that position. */
struct wc_dbz_memo {
        uint32_t oid;
        uint32_t name_len; /* of the type's name; 0: empty slot */
        char name[56];     /* the type's name (longer: not kept) */
        struct wc_dbz_type t;
};

struct wc_dbz_cache {
        struct wc_buf sig[2];              /* what each schema was made from */
        struct wc_buf schema[2];           /* wc_dbz_append_envelope_schema */
        struct wc_buf scratch;             /* the signature being made */
        struct wc_buf key_sig, key_schema; /* the Key struct's */
        unsigned next;                     /* the slot to replace */
        /* the columns' conversions by position, worked out again only
         * for a column whose type OID or name differs there */
        struct wc_dbz_memo *memo;
        size_t nmemo;
        uint64_t enums_gen; /* the wc_dbz_options.enums_gen it was made in */
};

/* wc_dbz_format_value_with, the columns' conversions kept in c (NULL:
 * worked out for each column). */
int wc_dbz_format_value_cached(struct wc_buf *out, struct wc_dbz_cache *c,
                               const struct wc_str *schema,
                               const struct wc_dbz_table *tb,
                               const struct walcast_signal *s, char op,
                               const struct walcast_columns *before,
                               const struct walcast_columns *after,
                               const struct wc_dbz_txblock *tx, int64_t now_us,
                               const struct wc_dbz_options *o);

/* The Envelope schema for these columns, from the cache or made and
 * kept; *ret stays valid until the next call.  0 or -ENOMEM. */
int wc_dbz_cached_schema(struct wc_dbz_cache *c, const struct wc_dbz_table *tb,
                         const struct walcast_columns *before,
                         const struct walcast_columns *after,
                         const struct walcast_columns *pk,
                         const struct wc_dbz_options *o, struct wc_str *ret);
void wc_dbz_cache_free(struct wc_dbz_cache *c);

/* wc_dbz_format_key with the Key schema kept in c. */
int wc_dbz_format_key_cached(struct wc_buf *out, struct wc_dbz_cache *c,
                             const struct wc_dbz_table *tb,
                             const struct walcast_columns *pk,
                             const struct walcast_columns *row,
                             const struct wc_dbz_options *o);

/*
 * Transaction metadata (transactions_topic): the key {"id":"xid:lsn"}
 * and the BEGIN or END record, as Debezium's TransactionMetadataKey and
 * TransactionMetadataValue.  END carries event_count and, per table
 * ("schema.table"), its count; BEGIN has them null.  With o->schemas the
 * JsonConverter form.  0 or -ENOMEM.
 */
struct wc_dbz_collection {
        const char *name; /* "schema.table" */
        size_t len;
        uint64_t count;
};
int wc_dbz_format_txn_key(struct wc_buf *out, uint32_t xid, uint64_t commit_lsn,
                          const struct wc_dbz_options *o);
int wc_dbz_format_txn_value(struct wc_buf *out, bool end, uint32_t xid,
                            uint64_t commit_lsn, int64_t ts_ms,
                            uint64_t event_count,
                            const struct wc_dbz_collection *colls, size_t n,
                            const struct wc_dbz_options *o);

/*
 * A logical message (messages_topic), Debezium's op "m" record: key
 * {"prefix":..}; value op, ts_ms (the commit time, or now outside a
 * transaction), source (schema and table empty), transaction, message
 * {prefix, content}, the content's bytes in base64.  MessageKey and
 * MessageValue schemas with o->schemas.  0 or -ENOMEM.
 */
int wc_dbz_format_message_key(struct wc_buf *out,
                              const struct walcast_signal *s,
                              const struct wc_dbz_options *o);
int wc_dbz_format_message_value(struct wc_buf *out,
                                const struct wc_dbz_table *tb,
                                const struct walcast_signal *s, int64_t now_us,
                                const struct wc_dbz_options *o);

/* A heartbeat (heartbeat_topic), as Debezium's: key {"serverName":
 * prefix}, value {"ts_ms":..}.  0 or -ENOMEM. */
int wc_dbz_format_heartbeat(struct wc_buf *key, struct wc_buf *value,
                            const char *prefix, int64_t ts_ms,
                            const struct wc_dbz_options *o);

/* v in decimal with its sign: at most WC_UINT_MAX_DIGITS + 1 bytes. */
char *wc_dbz_put_int(char *p, int64_t v);

/* Parses the option values; 0 or -EINVAL. */
int wc_dbz_parse_decimal(const char *s, enum wc_dbz_decimal *ret);
int wc_dbz_parse_time(const char *s, enum wc_dbz_time *ret);

#endif
