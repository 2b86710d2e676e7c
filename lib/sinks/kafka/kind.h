/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink as a kind of the sink registry (wc_sink_kind_kafka,
 * sinks/registry.h): its keys, its check and its start.  It hands its
 * block, parsed once, to the plugin (sinks/kafka/kafka.h) as it is.
 */
#ifndef WALCAST_SINKS_KAFKA_KIND_H
#define WALCAST_SINKS_KAFKA_KIND_H

#include <stddef.h>

/* Checks an outbox topic template: the table template's rules, with
 * {aggregatetype} besides its placeholders.  0 or -EINVAL/-ENOMEM with
 * errbuf set. */
int wc_kafka_outbox_topic_check(const char *tmpl, char *errbuf, size_t errlen);

/*
 * What {database} and source.db stand for: the dbname of dsn, with libpq's
 * defaults when it names none (PGDATABASE, the user, PGUSER, the login
 * name).  0 or a negative errno with errbuf set; *ret (to free) written
 * only on success.
 */
int wc_kafka_database_of(const char *dsn, char **ret, char *errbuf,
                         size_t errlen);

#endif
