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
        int r = wc_kafka_database_of(env->dsn, &database, errbuf, errlen);

        if (r < 0)
                return r;
        r = wc_plugin_host_add(
            h, name, wc_kafka_plugin(&(struct wc_kafka_start){k, database}),
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
