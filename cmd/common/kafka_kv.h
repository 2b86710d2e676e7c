/* SPDX-License-Identifier: MIT */
/*
 * A kafka sink's configuration as the key/value pairs its plugin reads
 * (lib/kafka/kafka.h lists them), so that the built-in sink reads its
 * settings through host->config_get like any plugin.
 */
#ifndef WALCAST_CMD_KAFKA_KV_H
#define WALCAST_CMD_KAFKA_KV_H

#include <stddef.h>

struct wc_kafka_sink_config;
struct wc_kv;
struct wc_plugin_host;

/* Pairs owned by whoever holds them: free with wc_sink_kv_free. */
struct wc_sink_kv {
        struct wc_kv *kv;
        size_t n;
};

/*
 * Builds the pairs of k; "database" is the dbname of dsn, with libpq's
 * defaults when it names none (PGDATABASE, the user, PGUSER, the login
 * name).  0 or a negative errno with errbuf set; *ret written only on
 * success.
 */
int wc_kafka_sink_kv(const struct wc_kafka_sink_config *k, const char *dsn,
                     struct wc_sink_kv *ret, char *errbuf, size_t errlen);

/* Accepts a zeroed or half-built struct. */
void wc_sink_kv_free(struct wc_sink_kv *s);

/*
 * Adds the Kafka sink k to the host as plugin `name`.  The plugin reads
 * its pairs during init only, so they are freed here; k's schema list is
 * borrowed for the host's lifetime.  0 or a negative errno with errbuf
 * set.
 */
int wc_kafka_sink_add(struct wc_plugin_host *h, const char *name,
                      const struct wc_kafka_sink_config *k, const char *dsn,
                      char *errbuf, size_t errlen);

/* Checks k's librdkafka properties as wc_kafka_sink_add() would set them,
 * without making a producer (wc_kafka_check_properties). */
int wc_kafka_sink_check(const struct wc_kafka_sink_config *k, const char *dsn,
                        char *errbuf, size_t errlen);

#endif
