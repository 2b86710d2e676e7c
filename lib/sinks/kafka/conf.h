/* SPDX-License-Identifier: MIT */
/* The Kafka sink's configuration (docs/kafka.md).  topic and prefix were
 * checked as far as the configuration alone decides (sinks/kafka/topic.h). */
#ifndef WALCAST_SINKS_KAFKA_CONF_H
#define WALCAST_SINKS_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/filter.h"
#include "sinks/kafka/columns.h"
#include "core/kv.h"
#include "sinks/registry.h"

/* value_format */
enum wc_kafka_format {
        WC_KAFKA_FORMAT_WALCAST = 0,
        WC_KAFKA_FORMAT_DEBEZIUM,
};

/* `outbox:` (docs/kafka.md, "Outbox"): tables whose inserts are events */
struct wc_kafka_outbox {
        struct wc_pattern_list tables; /* empty: none */
        char *topic; /* template, with {aggregatetype} besides the others */
        /* the columns' names */
        char *id, *aggregatetype, *aggregateid, *type, *payload;
        struct wc_pattern_list headers; /* columns sent as headers */
};

/* `topic_creation:` (docs/kafka.md, "Topic creation") */
struct wc_kafka_topic_creation {
        bool enabled;                /* the block is there */
        uint32_t partitions;         /* 0: the brokers' default */
        uint32_t replication_factor; /* 0: the brokers' default */
        struct wc_kv *config;        /* topic settings, as written */
        size_t nconfig;
        uint64_t timeout_ms; /* how long a creation may take */
};

struct wc_kafka_sink_config {
        struct wc_sink_common common; /* name and filter: first */
        char *topic;     /* template; default "{prefix}.{schema}.{table}" */
        char *prefix;    /* default "walcast" */
        bool tombstones; /* a null-value message after each delete; true */
        /* librdkafka properties, flattened like a plugin's config, values
         * as written: they go to rd_kafka_conf_set() untouched */
        struct wc_kv *properties;
        size_t nproperties;
        /* value_format (enum wc_kafka_format); with debezium,
         * decimal_handling (enum wc_dbz_decimal), time_precision (enum
         * wc_dbz_time) and schemas_enable (JsonConverter's schemas) */
        int value_format;
        int decimal_handling;
        int time_precision;
        bool schemas_enable;
        /* the sink's own topics, NULL: off; checked as topic names */
        char *transactions_topic;
        char *messages_topic;
        char *heartbeat_topic;
        char *heartbeat_prefix; /* default "walcast.heartbeat" */
        /* `columns:` rules, the first matching a table applies */
        struct wc_kafka_column_rule *column_rules;
        size_t ncolumn_rules;
        char *mask_salt; /* for columns.mask */
        struct wc_kafka_outbox outbox;
        struct wc_kafka_topic_creation topic_creation;
        /* exactly once (sinks/kafka/txn.h, docs/kafka.md): a transactional
         * producer, one Kafka transaction per batch */
        bool exactly_once;
        char *transactional_id; /* NULL: derived (wc_kafka_txn_id) */
        uint32_t eos_batch_txns;
        uint64_t eos_batch_bytes;
        uint64_t eos_batch_ms;
        /* what a check read of the catalog, for the start that follows
         * it at a reload (sinks/kafka/kind.c); owned, made by parse */
        struct wc_kafka_checked *checked;
};

#endif
