/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink: one message per change, to a topic per table made from
 * a template, keyed by the primary key, valued with a Debezium-style JSON
 * envelope (docs/kafka.md has the format).
 *
 * It is a plugin linked into walcast, written against <walcast/plugin.h>
 * like any other: delivery reports of librdkafka's idempotent producer
 * arrive through the main queue's event descriptor inside walcastd's
 * poll() loop, and a transaction is acknowledged once every message of it
 * is delivered.  A full producer queue turns on host->throttle until it
 * drains.
 *
 * The formatting functions below are the pure part, separate so that the
 * tests can check the bytes that go to Kafka.
 */
#ifndef WALCAST_KAFKA_H
#define WALCAST_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <walcast/plugin.h>

#include "core/core.h"

#include "sinks/kafka/enums.h"

struct wc_kafka_sink_config;
struct wc_dbz_enum;
struct wc_kv;

/* The catalog connection a sink opens for its enum lookups (its kind
 * gives stream/catalog.h's: the sink itself uses lib/core/ alone). */
struct wc_kafka_catalog {
        void *(*open)(const char *dsn); /* NULL: out of memory */
        wc_kafka_enum_lookup_fn enum_labels;
        void (*close)(void *conn);
};

/* What a Kafka sink starts with: its block as its kind read it
 * (sinks/kafka/conf.h, checked there), and what {database} and source.db
 * stand for. */
struct wc_kafka_start {
        const struct wc_kafka_sink_config *conf;
        const char *database;
        /* the enum types of the included tables, by oid (copied) */
        const struct wc_dbz_enum *enums;
        size_t nenums;
        /* value_format debezium: the source DSN, on which the enum types
         * met after start are looked up through catalog (both NULL: none
         * are) */
        const char *dsn;
        const struct wc_kafka_catalog *catalog;
        /* exactly_once: the server's system identifier and the slot */
        uint64_t system_identifier;
        const char *slot;
};

/*
 * The Kafka sink as a plugin linked into walcast, to start with s: the
 * next init (which the host calls at once, wc_plugin_host_add) takes s and
 * copies what it keeps.  The sink reads nothing through host->config_get:
 * its block is parsed once, by its kind (sinks/kafka/kind.c).  s NULL: a
 * descriptor whose init refuses to start.
 */
const struct walcast_plugin_descriptor *
wc_kafka_plugin(const struct wc_kafka_start *s);

/* How many Kafka sinks of this process have every broker down now
 * (librdkafka's "all brokers down" until a delivery succeeds): they cannot
 * deliver, so walcastd is not ready. */
int wc_kafka_sinks_down(void);

/* 0, or why walcastd must stop: an exactly-once sink was fenced (-ESTALE:
 * another walcastd has its transactional id, exit 69) or its producer hit
 * a fatal error (-EIO).  The sink logged it. */
int wc_kafka_sinks_stop(void);

/* Why the last Kafka sink that failed to start failed, when its
 * configuration was not the cause: -EIO, Kafka did not answer (an
 * exactly_once sink reads its position at start), or -ESTALE, another
 * walcastd has its transactional id; else 0. */
int wc_kafka_start_error(void);

/*
 * Checks a sink's librdkafka properties (name, value as written) as init
 * would set them (walcast's defaults, then props), without making a
 * producer or reaching a broker: an unknown property or a value librdkafka
 * refuses is an error naming it.  For `walcastd --check`.  0 or -EINVAL
 * with errbuf set.
 */
int wc_kafka_check_properties(const struct wc_kv *props, size_t n, char *errbuf,
                              size_t errlen);

/*
 * The producer configuration the sink starts from: walcast's defaults,
 * then props.  Also bench/kafka_floor's, so that it measures librdkafka as
 * the sink sets it up.  NULL with errbuf set.
 */
rd_kafka_conf_t *wc_kafka_new_conf(const struct wc_kv *props, size_t n,
                                   char *errbuf, size_t errlen);

/*
 * Appends the message key: the columns named by pk, with their values
 * from row (the new row for insert and update, the identity for delete),
 * as a JSON object in pk order: {"id":42}.  Values are the JSON text
 * wal2json sent.  -ENOENT when pk is empty (no key: the message has a null
 * key) or a key column is not in row (nothing is invented); -ENOMEM.
 */
int wc_kafka_format_key(struct wc_buf *out, const struct walcast_columns *pk,
                        const struct walcast_columns *row);

/* Appends columns as a JSON object {"name":value,...}, or null when cols
 * is NULL. */
int wc_kafka_format_row(struct wc_buf *out, const struct walcast_columns *cols);

/*
 * Appends the value envelope of a change:
 *   {"before":..,"after":..,"source":{"connector":"walcast","version":..,
 *    "db":..,"schema":..,"table":..,"lsn":..,"txId":..,"ts_ms":..},
 *    "op":..,"ts_ms":..}
 * op is 'c', 'u', 'd' or 't'; before and after may be NULL (JSON null);
 * database may be NULL (null).  s->txn gives txId and the commit time
 * (source.ts_ms); now_ms is the time walcast handled the change.  When
 * s->missing is not empty (an update without unchanged TOASTed values),
 * "missing" lists those column names; when an update's s->completed is
 * not empty (ABI 1.3: unchanged TOASTed values walcastd filled in from
 * the identity), "completed" lists theirs.  0 or -ENOMEM.
 */
int wc_kafka_format_value(struct wc_buf *out, const struct walcast_signal *s,
                          char op, const struct walcast_columns *before,
                          const struct walcast_columns *after,
                          const char *database, int64_t now_ms);

/*
 * The envelope in three parts, for the sink's hot path: what is the same
 * for every change of a table and of a transaction is formatted once.
 *
 * wc_kafka_format_source appends
 *   ,"source":{"connector":"walcast","version":..,"db":..,"schema":..,
 *   "table":..,"lsn":
 * (database, schema, table may be NULL: null).  wc_kafka_format_txn
 * appends
 *   ,"txId":..,"ts_ms":..},"op":"
 * from t (NULL: both null).  wc_kafka_format_envelope appends the whole
 * value from those two and the change, the same bytes as
 * wc_kafka_format_value.  0 or -ENOMEM; nothing is appended on failure.
 */
int wc_kafka_format_source(struct wc_buf *out, const char *database,
                           const char *schema, const char *table);
int wc_kafka_format_txn(struct wc_buf *out, const struct walcast_txn *t);
int wc_kafka_format_envelope(struct wc_buf *out, const struct wc_str *source,
                             const struct wc_str *txn,
                             const struct walcast_signal *s, char op,
                             const struct walcast_columns *before,
                             const struct walcast_columns *after,
                             int64_t now_ms);

/*
 * The same envelope from text made beforehand: what a table, a
 * transaction and a change share with other messages is formatted once.
 * lsn (s->lsn in decimal) is also the walcast.lsn header; ts_ms is the
 * time walcast handled the change (wc_kafka_put_int).  0 or -ENOMEM.
 */
struct wc_kafka_parts {
        struct wc_str source; /* wc_kafka_format_source */
        struct wc_str txn;    /* wc_kafka_format_txn */
        struct wc_str lsn;
        struct wc_str ts_ms;
        /* the transaction block (transactions_topic), or empty: none */
        struct wc_str txblock;
};
int wc_kafka_format_envelope_parts(struct wc_buf *out,
                                   const struct wc_kafka_parts *parts,
                                   const struct walcast_signal *s, char op,
                                   const struct walcast_columns *before,
                                   const struct walcast_columns *after);

/* v in decimal with its sign: at most WC_UINT_MAX_DIGITS bytes. */
char *wc_kafka_put_int(char *p, int64_t v);

/*
 * Appends the topic of s's table: tmpl with {prefix}, {database},
 * {schema}, {namespace}, {tenant} and {table} filled in.  The name is not
 * checked (wc_topic_name_valid).  0, -ENOMEM or -EINVAL (a template the
 * configuration would refuse).
 */
int wc_kafka_format_topic(struct wc_buf *out, const char *tmpl,
                          const char *prefix, const char *database,
                          const struct walcast_signal *s);

#endif
