/* SPDX-License-Identifier: MIT */
/* The Kafka sink's configuration (docs/kafka.md).  topic and prefix were
 * checked as far as the configuration alone decides (sinks/kafka/topic.h). */
#ifndef WALCAST_SINKS_KAFKA_CONF_H
#define WALCAST_SINKS_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/filter.h"
#include "core/kv.h"
#include "sinks/registry.h"

struct wc_kafka_sink_config {
        struct wc_sink_common common; /* name and filter: first */
        char *topic;     /* template; default "{prefix}.{schema}.{table}" */
        char *prefix;    /* default "walcast" */
        bool tombstones; /* a null-value message after each delete; true */
        /* librdkafka properties, flattened like a plugin's config, values
         * as written: they go to rd_kafka_conf_set() untouched */
        struct wc_kv *properties;
        size_t nproperties;
        /* exactly once (sinks/kafka/txn.h, docs/kafka.md): a transactional
         * producer, one Kafka transaction per batch */
        bool exactly_once;
        char *transactional_id; /* NULL: derived (wc_kafka_txn_id) */
        uint32_t eos_batch_txns;
        uint64_t eos_batch_bytes;
        uint64_t eos_batch_ms;
};

#endif
