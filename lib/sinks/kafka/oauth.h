/* SPDX-License-Identifier: MIT */
/*
 * SASL OAUTHBEARER with librdkafka's builtin unsecured JWT
 * (enable.sasl.oauthbearer.unsecure.jwt: true), checked before a producer
 * is made of it.
 *
 * librdkafka reads sasl.oauthbearer.config only when it makes the first
 * token, on the producer's own threads, and says what it cannot read in
 * an error event; before 2.2.0 it then crashes: its token handler has no
 * queue for the renewal it schedules (10 s after a failure, at 80 % of
 * lifeSeconds after a success), and rdk:main locks that queue's NULL
 * mutex (within a second when an extension is refused: that failure goes
 * unnoticed).  So the value is read here as librdkafka will read it (as
 * rd_kafka_conf_get() returns it: left-trimmed), and with
 * a librdkafka older than 2.2.0 the unsecured JWT is refused altogether.
 * The messages never quote the value (a secret, sinks/kafka/kind.c).
 */
#ifndef WALCAST_SINKS_KAFKA_OAUTH_H
#define WALCAST_SINKS_KAFKA_OAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* The first librdkafka (rd_kafka_version()) whose unsecured-JWT token
 * renewal does not crash. */
#define WC_KAFKA_UJWT_FIXED 0x02020000

/* sasl.oauthbearer.config as librdkafka's unsecured-JWT handler reads it:
 * 0, or -EINVAL with errbuf saying which entry and what is wrong with it
 * (without its value). */
int wc_kafka_ujwt_config_check(const char *cfg, char *errbuf, size_t errlen);

/* What librdkafka's settings say, as rd_kafka_conf_get() returns them. */
struct wc_kafka_oauth_settings {
        const char *protocol;   /* security.protocol */
        const char *mechanisms; /* sasl.mechanisms */
        bool unsecure_jwt;      /* enable.sasl.oauthbearer.unsecure.jwt */
        const char *config;     /* sasl.oauthbearer.config, NULL: unset */
        const char *method;     /* sasl.oauthbearer.method */
};

/* 0 when librdkafka's builtin unsecured-JWT handler does not run with
 * these settings, or runs and can make a token without crashing a
 * librdkafka of this version (rd_kafka_version(), its text for the
 * message); -EINVAL with errbuf naming the property and what to do. */
int wc_kafka_oauth_check(const struct wc_kafka_oauth_settings *s, int version,
                         const char *version_str, char *errbuf, size_t errlen);

/* wc_kafka_oauth_check() on a configuration, with the librdkafka that
 * runs. */
int wc_kafka_oauth_check_conf(const rd_kafka_conf_t *conf, char *errbuf,
                              size_t errlen);

#endif
