/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "core/settings.h"
#include "host/host.h"
#include "sinks/kafka/conf.h"
#include "sinks/kafka/kafka.h"
#include "sinks/kafka/kind.h"
#include "sinks/kafka/topic.h"
#include "sinks/kafka/txn.h"
#include "sinks/registry.h"

/* The template's syntax, where it is written (sinks/kafka/topic.h). */
static int convert_topic(struct wc_settings *s, const struct wc_key *k,
                         const char *path, const char *text,
                         const struct wc_node *at, void *field)
{
        char msg[256];
        unsigned fields;

        (void)k;
        if (!text[0])
                return wc_settings_fail(s, at, "empty value for \"%s\"", path);
        if (wc_topic_template_check(text, &fields, msg, sizeof(msg)) < 0)
                return wc_settings_fail(s, at, "%s", msg);
        return wc_settings_set_string(s, field, text);
}

static const struct wc_key kafka_keys[] = {
    WC_SINK_COMMON_KEYS,
    {WC_KEY(WC_KEY_SCALAR, "topic", "{prefix}.{schema}.{table}",
            offsetof(struct wc_kafka_sink_config, topic),
            "topic name template"),
     .convert = convert_topic},
    {WC_KEY(WC_KEY_STRING, "prefix", "walcast",
            offsetof(struct wc_kafka_sink_config, prefix),
            "what {prefix} stands for in the topic template")},
    {WC_KEY(WC_KEY_BOOL, "tombstones", "true",
            offsetof(struct wc_kafka_sink_config, tombstones),
            "send a null-value message after each delete, for compaction")},
    {WC_KEY(WC_KEY_KV, "properties", NULL,
            offsetof(struct wc_kafka_sink_config, properties),
            "librdkafka settings, passed as they are"),
     .count_offset = offsetof(struct wc_kafka_sink_config, nproperties)},
    /* exactly once (sinks/kafka/txn.h) */
    {WC_KEY(WC_KEY_BOOL, "exactly_once", "false",
            offsetof(struct wc_kafka_sink_config, exactly_once),
            "Kafka transactions, the position in {prefix}.offsets: each "
            "change once for read_committed consumers")},
    {WC_KEY(WC_KEY_STRING, "transactional_id", NULL,
            offsetof(struct wc_kafka_sink_config, transactional_id),
            "exactly_once: the producer's transactional.id; default "
            "walcast-<system identifier>-<database>-<slot>")},
    {WC_KEY(WC_KEY_UINT32, "exactly_once_batch_transactions", "1000",
            offsetof(struct wc_kafka_sink_config, eos_batch_txns),
            "exactly_once: PostgreSQL transactions per Kafka transaction, at "
            "most"),
     .min = 1, .max = 1000000},
    {WC_KEY(WC_KEY_SIZE, "exactly_once_batch_bytes", "16MB",
            offsetof(struct wc_kafka_sink_config, eos_batch_bytes),
            "exactly_once: message bytes per Kafka transaction before it is "
            "committed (a PostgreSQL transaction is never split)"),
     .min = 1024, .max = (uint64_t)1 << 34},
    {WC_KEY(WC_KEY_DURATION, "exactly_once_batch_interval", "100ms",
            offsetof(struct wc_kafka_sink_config, eos_batch_ms),
            "exactly_once: how long a Kafka transaction stays open, at most"),
     .min = 1, .max = 60000},
    {.name = NULL},
};

_Static_assert(sizeof(kafka_keys) / sizeof(kafka_keys[0]) <= 32,
               "too many keys");

/*
 * The topic template and the prefix together: what they make must be able
 * to be a legal topic, and when no placeholder depends on a change, must
 * be one.  Errors point at the key that can fix them.
 */
static int kafka_check_block(struct wc_settings *s, const char *path,
                             const struct wc_node *key,
                             const struct wc_node *map, void *base)
{
        const struct wc_kafka_sink_config *k = base;
        const struct wc_node *topic = wc_node_get(map, "topic");
        const struct wc_node *prefix = wc_node_get(map, "prefix");
        char msg[256], in[WC_WHERE_LEN];
        unsigned fields = 0;
        bool brokers = false;

        for (size_t i = 0; i < k->nproperties; i++)
                if (strcmp(k->properties[i].key, "bootstrap.servers") == 0 ||
                    strcmp(k->properties[i].key, "metadata.broker.list") == 0)
                        brokers = k->properties[i].value[0] != '\0';
        /* librdkafka would start and wait for brokers forever */
        if (!brokers)
                return wc_settings_fail(
                    s, key,
                    "missing \"properties.bootstrap.servers\" %s: "
                    "name at least one broker, as "
                    "\"host:port[,host:port...]\"",
                    wc_where_in(in, path));
        /* the template's syntax was checked when it was read */
        if (wc_topic_template_check(k->topic, &fields, msg, sizeof(msg)) < 0)
                return wc_settings_fail(s, topic ? topic : key, "%s", msg);
        if ((fields & WC_TOPIC_BIT(WC_TOPIC_PREFIX)) &&
            wc_topic_prefix_check(k->prefix, msg, sizeof(msg)) < 0)
                return wc_settings_fail(s, prefix ? prefix : key, "%s", msg);
        if (wc_topic_template_check_static(k->topic, k->prefix, msg,
                                           sizeof(msg)) < 0)
                return wc_settings_fail(s, topic ? topic : key, "%s", msg);
        return 0;
}

static void kafka_free(void *conf);

static int kafka_parse(struct wc_settings *s, const char *path,
                       const struct wc_node *key, const struct wc_node *block,
                       void **ret_conf)
{
        struct wc_kafka_sink_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return wc_settings_fail_oom(s);
        r = wc_settings_read(s, kafka_keys, path, key, block, c);
        if (r < 0) {
                kafka_free(c);
                return r;
        }
        r = kafka_check_block(s, path, key, block, c);
        if (r < 0) {
                kafka_free(c);
                return r;
        }
        *ret_conf = c;
        return 0;
}

static void kafka_free(void *conf)
{
        struct wc_kafka_sink_config *k = conf;

        if (!k)
                return;
        wc_sink_common_free(&k->common);
        free(k->topic);
        free(k->prefix);
        wc_kv_free(k->properties, k->nproperties);
        free(k->transactional_id);
        free(k);
}

static char *kafka_default_name(const void *conf)
{
        (void)conf;
        return strdup("kafka");
}

/* What libpq would connect to, without connecting: the dsn's dbname, or
 * the defaults libpq applies in its place. */
int wc_kafka_database_of(const char *dsn, char **ret, char *errbuf,
                         size_t errlen)
{
        PQconninfoOption *opts;
        const char *db = NULL, *user = NULL;
        char *msg = NULL, *dup;
        struct passwd *pw;

        opts = PQconninfoParse(dsn, &msg);
        if (!opts) {
                /* msg never holds the password: it describes syntax */
                wc_errorf(errbuf, errlen, "invalid source.dsn: %s",
                          msg ? msg : "out of memory");
                PQfreemem(msg);
                return -EINVAL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (o->val && o->val[0] && strcmp(o->keyword, "dbname") == 0)
                        db = o->val;
                else if (o->val && o->val[0] && strcmp(o->keyword, "user") == 0)
                        user = o->val;
        }
        /* cmd/ may read the environment; libpq reads the same variables */
        if (!db)
                db = getenv("PGDATABASE");
        if (!db || !db[0])
                db = user;
        if (!db || !db[0])
                db = getenv("PGUSER");
        if ((!db || !db[0]) && (pw = getpwuid(geteuid())))
                db = pw->pw_name;
        dup = strdup(db ? db : "");
        PQconninfoFree(opts);
        if (!dup) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        *ret = dup;
        return 0;
}

static int kafka_add(struct wc_plugin_host *h, const char *name,
                     const void *conf, const struct wc_sink_env *env,
                     char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *k = conf;
        char *database = NULL;
        uint64_t sysid = 0;
        int r = wc_kafka_database_of(env->dsn, &database, errbuf, errlen);

        if (r < 0)
                return r;
        /* the slot's identity names the offsets record (and the default
         * transactional.id) */
        if (k->exactly_once && (r = wc_kafka_system_identifier(
                                    env->dsn, &sysid, errbuf, errlen)) < 0) {
                free(database);
                return r;
        }
        r = wc_plugin_host_add(h, name,
                               wc_kafka_plugin(&(struct wc_kafka_start){
                                   k, database, sysid, env->slot}),
                               &k->common.filter, NULL, 0, errbuf, errlen);
        /* forget the settings should the host have failed before init */
        (void)wc_kafka_plugin(NULL);
        free(database);
        return r;
}

static int kafka_check(const void *conf, const struct wc_sink_env *env,
                       char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *k = conf;

        (void)env;
        return wc_kafka_check_properties(k->properties, k->nproperties, errbuf,
                                         errlen);
}

const struct wc_sink_kind wc_sink_kind_kafka = {
    .name = "kafka",
    .parse = kafka_parse,
    .free = kafka_free,
    .default_name = kafka_default_name,
    .needs_identity = true,
    .check = kafka_check,
    .add = kafka_add,
};
