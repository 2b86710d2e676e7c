/* SPDX-License-Identifier: MIT */
/*
 * A kafka sink's configuration as the key/value pairs its plugin reads
 * (sinks/kafka/kafka.h lists them), so that the built-in sink reads its
 * settings through host->config_get like any plugin.
 */
#ifndef WALCAST_SINKS_KAFKA_KIND_H
#define WALCAST_SINKS_KAFKA_KIND_H

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

/* The sink's check and start: wc_sink_kind_kafka (sinks/registry.h). */

#endif
