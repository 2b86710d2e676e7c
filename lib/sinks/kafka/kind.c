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
#include "sinks/kafka/debezium.h"
#include "sinks/kafka/kafka.h"
#include "sinks/kafka/kind.h"
#include "sinks/kafka/topic.h"
#include "sinks/kafka/txn.h"
#include "sinks/registry.h"
#include "stream/catalog.h"

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

static const struct wc_key_value format_values[] = {
    {"walcast", WC_KAFKA_FORMAT_WALCAST},
    {"debezium", WC_KAFKA_FORMAT_DEBEZIUM},
    {NULL, 0},
};

static const struct wc_key_value decimal_values[] = {
    {"precise", WC_DBZ_DECIMAL_PRECISE},
    {"string", WC_DBZ_DECIMAL_STRING},
    {"double", WC_DBZ_DECIMAL_DOUBLE},
    {NULL, 0},
};

static const struct wc_key_value time_values[] = {
    {"adaptive", WC_DBZ_TIME_ADAPTIVE},
    {"connect", WC_DBZ_TIME_CONNECT},
    {NULL, 0},
};

/* A topic of the sink's own: a legal name as it is, no template. */
static int convert_own_topic(struct wc_settings *s, const struct wc_key *k,
                             const char *path, const char *text,
                             const struct wc_node *at, void *field)
{
        (void)k;
        if (!wc_topic_name_valid(text, strlen(text)))
                return wc_settings_fail(
                    s, at,
                    "\"%s\" for \"%s\" is not a legal Kafka topic name: use "
                    "1 to %d of letters, digits, \".\", \"_\" and \"-\"",
                    text, path, WC_TOPIC_MAX);
        return wc_settings_set_string(s, field, text);
}

static const struct wc_key column_rule_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "tables", NULL,
            offsetof(struct wc_kafka_column_rule, tables),
            "tables the rule applies to: table or schema.table, globs"),
     .required = true},
    {WC_KEY(WC_KEY_PATTERNS, "exclude", NULL,
            offsetof(struct wc_kafka_column_rule, exclude),
            "columns left out of every row")},
    {WC_KEY(WC_KEY_PATTERNS, "mask", NULL,
            offsetof(struct wc_kafka_column_rule, mask),
            "columns whose values become a salted SHA-256 digest")},
    {WC_KEY(WC_KEY_PATTERNS, "key_columns", NULL,
            offsetof(struct wc_kafka_column_rule, key_columns),
            "columns that key the messages instead of the primary key")},
    {.name = NULL},
};

/* `columns:`, a sequence of rules. */
static int load_column_rules(struct wc_settings *s, const char *path,
                             const struct wc_node *key,
                             const struct wc_node *seq, void *base)
{
        struct wc_kafka_sink_config *k = base;
        char item_path[WC_PATH_LEN];

        (void)key;
        if (seq->kind == WC_NODE_SCALAR && seq->null)
                return 0;
        if (seq->kind != WC_NODE_SEQUENCE)
                return wc_settings_fail_type(s, seq, "a sequence", path);
        k->column_rules =
            calloc(seq->nkids ? seq->nkids : 1, sizeof(*k->column_rules));
        if (!k->column_rules)
                return wc_settings_fail_oom(s);
        for (size_t i = 0; i < seq->nkids; i++) {
                const struct wc_node *item = seq->kids[i];
                struct wc_kafka_column_rule *r = &k->column_rules[i];
                int rc;

                wc_path_format(item_path, "%s[%zu]", path, i);
                k->ncolumn_rules = i + 1;
                if (item->kind != WC_NODE_MAPPING)
                        return wc_settings_fail_type(s, item, "a mapping",
                                                     item_path);
                rc = wc_settings_read(s, column_rule_keys, item_path, item,
                                      item, r);
                if (rc < 0)
                        return rc;
                /* a key column left out would key by nothing */
                for (size_t j = 0; j < r->key_columns.count; j++)
                        for (size_t x = 0; x < r->exclude.count; x++)
                                if (strcmp(r->key_columns.items[j],
                                           r->exclude.items[x]) == 0)
                                        return wc_settings_fail(
                                            s, wc_node_get(item, "exclude"),
                                            "\"%s\" is a key column in "
                                            "\"%s\": it cannot be excluded",
                                            r->key_columns.items[j], item_path);
        }
        return 0;
}

/* The outbox topic template: {aggregatetype} and the table's
 * placeholders.  Checked as a table template with {table} in its place
 * (both come from the data). */
int wc_kafka_outbox_topic_check(const char *tmpl, char *errbuf, size_t errlen)
{
        struct wc_buf b;
        const char *p = tmpl, *q;
        unsigned fields;
        int r;

        wc_buf_init(&b);
        while ((q = strstr(p, "{aggregatetype}")) != NULL) {
                if (wc_buf_append(&b, p, (size_t)(q - p)) < 0 ||
                    wc_buf_append_str(&b, "{table}") < 0)
                        goto oom;
                p = q + strlen("{aggregatetype}");
        }
        if (wc_buf_append_str(&b, p) < 0)
                goto oom;
        r = wc_topic_template_check(b.data, &fields, errbuf, errlen);
        wc_buf_free(&b);
        return r;
oom:
        wc_buf_free(&b);
        wc_errorf(errbuf, errlen, "out of memory");
        return -ENOMEM;
}

static int convert_outbox_topic(struct wc_settings *s, const struct wc_key *k,
                                const char *path, const char *text,
                                const struct wc_node *at, void *field)
{
        char msg[256];

        (void)k;
        if (!text[0])
                return wc_settings_fail(s, at, "empty value for \"%s\"", path);
        if (wc_kafka_outbox_topic_check(text, msg, sizeof(msg)) < 0) {
                /* the placeholders an outbox template has */
                char *o = strstr(msg, " or {table}");

                if (o)
                        return wc_settings_fail(
                            s, at, "%.*s, {table} or {aggregatetype}%s",
                            (int)(o - msg), msg, o + strlen(" or {table}"));
                return wc_settings_fail(s, at, "%s", msg);
        }
        return wc_settings_set_string(s, field, text);
}

static const struct wc_key outbox_column_keys[] = {
    {WC_KEY(WC_KEY_STRING, "id", "id",
            offsetof(struct wc_kafka_sink_config, outbox.id),
            "the event id column: the header \"id\"")},
    {WC_KEY(WC_KEY_STRING, "aggregatetype", "aggregatetype",
            offsetof(struct wc_kafka_sink_config, outbox.aggregatetype),
            "the column the topic is made from")},
    {WC_KEY(WC_KEY_STRING, "aggregateid", "aggregateid",
            offsetof(struct wc_kafka_sink_config, outbox.aggregateid),
            "the column that keys the event")},
    {WC_KEY(WC_KEY_STRING, "type", "type",
            offsetof(struct wc_kafka_sink_config, outbox.type),
            "the event type column")},
    {WC_KEY(WC_KEY_STRING, "payload", "payload",
            offsetof(struct wc_kafka_sink_config, outbox.payload),
            "the column that is the message's value")},
    {.name = NULL},
};

static const struct wc_key outbox_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "tables", NULL,
            offsetof(struct wc_kafka_sink_config, outbox.tables),
            "the outbox tables: table or schema.table, globs"),
     .required = true},
    {WC_KEY(WC_KEY_SCALAR, "topic", "outbox.event.{aggregatetype}",
            offsetof(struct wc_kafka_sink_config, outbox.topic),
            "topic template: {aggregatetype} and the table placeholders"),
     .convert = convert_outbox_topic},
    {WC_KEY(WC_KEY_SECTION, "columns", NULL, 0, "the outbox's column names"),
     .section = outbox_column_keys},
    {WC_KEY(WC_KEY_PATTERNS, "headers", NULL,
            offsetof(struct wc_kafka_sink_config, outbox.headers),
            "columns sent as headers of each event")},
    {.name = NULL},
};

static const struct wc_key topic_creation_keys[] = {
    {WC_KEY(WC_KEY_UINT32, "partitions", NULL,
            offsetof(struct wc_kafka_sink_config, topic_creation.partitions),
            "partitions of a created topic; unset: the brokers' default"),
     .min = 1, .max = 1000000},
    {WC_KEY(WC_KEY_UINT32, "replication_factor", NULL,
            offsetof(struct wc_kafka_sink_config,
                     topic_creation.replication_factor),
            "replicas of a created topic; unset: the brokers' default"),
     .min = 1, .max = 1000},
    {WC_KEY(WC_KEY_KV, "config", NULL,
            offsetof(struct wc_kafka_sink_config, topic_creation.config),
            "topic settings of a created topic (cleanup.policy, ...)"),
     .count_offset =
         offsetof(struct wc_kafka_sink_config, topic_creation.nconfig)},
    {WC_KEY(WC_KEY_DURATION, "timeout", "10s",
            offsetof(struct wc_kafka_sink_config, topic_creation.timeout_ms),
            "how long creating a topic may take"),
     .min = 100, .max = 120000},
    {.name = NULL},
};

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
    {WC_KEY(WC_KEY_ENUM, "value_format", "walcast",
            offsetof(struct wc_kafka_sink_config, value_format),
            "walcast (PostgreSQL's text) or debezium (typed, as Debezium's "
            "PostgreSQL connector)"),
     .noun = "value_format", .values = format_values},
    {WC_KEY(WC_KEY_ENUM, "decimal_handling", "precise",
            offsetof(struct wc_kafka_sink_config, decimal_handling),
            "debezium: numeric as precise (Decimal bytes), string or double"),
     .noun = "decimal_handling", .values = decimal_values},
    {WC_KEY(WC_KEY_ENUM, "time_precision", "adaptive",
            offsetof(struct wc_kafka_sink_config, time_precision),
            "debezium: dates and times as adaptive (io.debezium.time) or "
            "connect (Kafka Connect's)"),
     .noun = "time_precision", .values = time_values},
    {WC_KEY(WC_KEY_BOOL, "schemas_enable", "false",
            offsetof(struct wc_kafka_sink_config, schemas_enable),
            "debezium: keys and values in JsonConverter's "
            "{\"schema\",\"payload\"} form")},
    {WC_KEY(WC_KEY_SCALAR, "transactions_topic", NULL,
            offsetof(struct wc_kafka_sink_config, transactions_topic),
            "a BEGIN and an END record per transaction; unset: none"),
     .convert = convert_own_topic},
    {WC_KEY(WC_KEY_SCALAR, "messages_topic", NULL,
            offsetof(struct wc_kafka_sink_config, messages_topic),
            "logical messages (op m); unset: not published"),
     .convert = convert_own_topic},
    {WC_KEY(WC_KEY_SCALAR, "heartbeat_topic", NULL,
            offsetof(struct wc_kafka_sink_config, heartbeat_topic),
            "heartbeats (with heartbeat.deliver: true); unset: none"),
     .convert = convert_own_topic},
    {WC_KEY(WC_KEY_STRING, "heartbeat_prefix", "walcast.heartbeat",
            offsetof(struct wc_kafka_sink_config, heartbeat_prefix),
            "the prefix of the heartbeat messages: heartbeat.prefix")},
    {WC_KEY(WC_KEY_SECTION, "topic_creation", NULL, 0,
            "create missing topics before their first message"),
     .section = topic_creation_keys},
    {WC_KEY(WC_KEY_SECTION, "outbox", NULL, 0,
            "outbox tables: their inserts routed as events"),
     .section = outbox_keys},
    {WC_KEY(WC_KEY_CUSTOM, "columns", NULL, 0,
            "column rules per table: exclude, mask, key_columns"),
     .load = load_column_rules},
    {WC_KEY(WC_KEY_STRING, "mask_salt", NULL,
            offsetof(struct wc_kafka_sink_config, mask_salt),
            "the salt of columns.mask's digests; ${NAME} reads it from the "
            "environment")},
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
        /* options of the debezium format only: not silently ignored */
        if (k->value_format != WC_KAFKA_FORMAT_DEBEZIUM) {
                static const char *const dbz_only[] = {
                    "decimal_handling", "time_precision", "schemas_enable"};

                for (size_t i = 0; i < 3; i++) {
                        const struct wc_node *n = wc_node_get(map, dbz_only[i]);

                        if (n)
                                return wc_settings_fail(
                                    s, n,
                                    "\"%s\" applies to value_format: "
                                    "debezium only %s: set value_format: "
                                    "debezium, or remove it",
                                    dbz_only[i], wc_where_in(in, path));
                }
        }
        /* the host connects no operation the sink's ops leave out */
        if ((k->messages_topic || k->heartbeat_topic) &&
            !(k->common.filter.ops & WC_OP_BIT(WC_OP_MESSAGE)))
                return wc_settings_fail(
                    s, wc_node_get(map, "ops"),
                    "\"%s\" is set %s but \"ops\" leaves out message: add "
                    "message to ops",
                    k->messages_topic ? "messages_topic" : "heartbeat_topic",
                    wc_where_in(in, path));
        /* a digest without a salt is a lookup table away from the value */
        for (size_t i = 0; i < k->ncolumn_rules; i++)
                if (k->column_rules[i].mask.count && !k->mask_salt)
                        return wc_settings_fail(
                            s, wc_node_get(map, "columns"),
                            "\"columns\" masks columns %s but "
                            "\"mask_salt\" is not set: set it, e.g. "
                            "mask_salt: ${WALCAST_MASK_SALT}",
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

/* A reload checks the new sinks before it lets those in force go, then
 * starts them: what the check read of the catalog (the tables and, for
 * debezium, the enum types) serves the start, so that a reload reads
 * the catalog once. */
struct wc_kafka_checked {
        bool valid;
        struct wc_catalog_tables t;
};

static void kafka_free(void *conf);

static int kafka_parse(struct wc_settings *s, const char *path,
                       const struct wc_node *key, const struct wc_node *block,
                       void **ret_conf)
{
        struct wc_kafka_sink_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c || !(c->checked = calloc(1, sizeof(*c->checked)))) {
                free(c);
                return wc_settings_fail_oom(s);
        }
        r = wc_settings_read(s, kafka_keys, path, key, block, c);
        if (r < 0) {
                kafka_free(c);
                return r;
        }
        c->topic_creation.enabled = block && block->kind == WC_NODE_MAPPING &&
                                    wc_node_get(block, "topic_creation");
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
        if (k->checked)
                wc_catalog_tables_free(&k->checked->t);
        free(k->checked);
        free(k->topic);
        free(k->prefix);
        free(k->transactions_topic);
        free(k->messages_topic);
        free(k->heartbeat_topic);
        free(k->heartbeat_prefix);
        for (size_t i = 0; i < k->ncolumn_rules; i++)
                wc_kafka_column_rule_free(&k->column_rules[i]);
        free(k->column_rules);
        free(k->mask_salt);
        wc_pattern_list_free(&k->outbox.tables);
        free(k->outbox.topic);
        free(k->outbox.id);
        free(k->outbox.aggregatetype);
        free(k->outbox.aggregateid);
        free(k->outbox.type);
        free(k->outbox.payload);
        wc_pattern_list_free(&k->outbox.headers);
        wc_kv_free(k->topic_creation.config, k->topic_creation.nconfig);
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

/* What the sink takes: the global filter's tables and its own. */
struct takes {
        const struct wc_filter_config *global, *own;
};

static bool sink_takes(void *ud, const char *schema, const char *table)
{
        const struct takes *t = ud;

        return (!t->global || wc_filter_table_pass(t->global, schema, table)) &&
               wc_filter_table_pass(t->own, schema, table);
}

/*
 * The tables the sink takes as the catalog has them now, when its column
 * rules (checked here) or, at start, its debezium enums need them: 1 with
 * *t loaded, 0 when nothing was needed or the database could not be
 * reached (said: the stream's own connection reports an unreachable
 * server, and the rules are checked again at each table's first change),
 * or a negative errno with errbuf set.
 */
static int sink_catalog(const struct wc_kafka_sink_config *k, const char *name,
                        const struct wc_sink_env *env, bool starting,
                        struct wc_catalog_tables *t, char *errbuf,
                        size_t errlen)
{
        /* an enum's labels are in its schema only */
        bool enums = starting && k->value_format == WC_KAFKA_FORMAT_DEBEZIUM &&
                     k->schemas_enable;
        struct takes takes = {env->filter, &k->common.filter};
        char err[1024], msg[1536];
        int r;

        if ((!k->ncolumn_rules && !enums) || !env->dsn)
                return 0;
        r = wc_catalog_tables_load(env->dsn, sink_takes, &takes, t, err,
                                   sizeof(err));
        if (r == -ENOMEM) {
                wc_errorf(errbuf, errlen, "%s", err);
                return r;
        }
        if (r < 0) {
                snprintf(msg, sizeof(msg),
                         "sink \"%s\": could not look up its tables in the "
                         "catalog (%s)%s%s",
                         name, err,
                         k->ncolumn_rules
                             ? "; its column rules are checked as each "
                               "table's first change arrives"
                             : "",
                         enums ? "; enum types are looked up as changes "
                                 "meet them"
                               : "");
                if (env->log)
                        env->log(5, msg);
                return 0;
        }
        r = wc_kafka_rules_check(k->column_rules, k->ncolumn_rules, t, name,
                                 env->log, errbuf, errlen);
        if (r < 0) {
                wc_catalog_tables_free(t);
                return r;
        }
        return 1;
}

static void *catalog_open(const char *dsn)
{
        return wc_catalog_new(dsn);
}

static void catalog_close(void *conn)
{
        wc_catalog_free(conn);
}

/* A debezium sink's enum lookups (sinks/kafka/enums.h), on a connection
 * of its own */
static const struct wc_kafka_catalog kafka_catalog = {
    .open = catalog_open,
    .enum_labels = wc_catalog_enum_labels,
    .close = catalog_close,
};

static int kafka_add(struct wc_plugin_host *h, const char *name,
                     const void *conf, const struct wc_sink_env *env,
                     char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *k = conf;
        struct wc_catalog_tables t = {0};
        struct wc_dbz_enum *enums = NULL;
        char *database = NULL;
        uint64_t sysid = 0;
        int r = wc_kafka_database_of(env->dsn, &database, errbuf, errlen);

        if (r < 0)
                return r;
        if (k->checked && k->checked->valid) {
                /* rules checked, notices said, by the reload's check */
                t = k->checked->t;
                *k->checked = (struct wc_kafka_checked){0};
        } else {
                r = sink_catalog(k, name, env, true, &t, errbuf, errlen);
        }
        if (r < 0)
                goto out;
        if (t.nenums && !(enums = calloc(t.nenums, sizeof(*enums)))) {
                wc_errorf(errbuf, errlen, "out of memory");
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < t.nenums; i++)
                enums[i] =
                    (struct wc_dbz_enum){t.enums[i].oid, t.enums[i].labels};
        /* the slot's identity names the offsets record (and the default
         * transactional.id) */
        if (k->exactly_once && (r = wc_kafka_system_identifier(
                                    env->dsn, &sysid, errbuf, errlen)) < 0)
                goto out;
        r = wc_plugin_host_add(h, name,
                               wc_kafka_plugin(&(struct wc_kafka_start){
                                   .conf = k,
                                   .database = database,
                                   .enums = enums,
                                   .nenums = enums ? t.nenums : 0,
                                   .dsn = env->dsn,
                                   .catalog = &kafka_catalog,
                                   .system_identifier = sysid,
                                   .slot = env->slot}),
                               &k->common.filter, NULL, 0, errbuf, errlen);
        /* forget the settings should the host have failed before init */
        (void)wc_kafka_plugin(NULL);
        if (r < 0 && wc_kafka_start_error())
                r = wc_kafka_start_error();
out:
        free(enums);
        wc_catalog_tables_free(&t);
        free(database);
        return r;
}

static int kafka_check(const void *conf, const struct wc_sink_env *env,
                       char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *k = conf;
        struct wc_catalog_tables t = {0};
        const char *name = k->common.name ? k->common.name : "kafka";
        char msg[1024];
        int r = wc_kafka_check_properties(k->properties, k->nproperties, msg,
                                          sizeof(msg));

        if (r < 0) {
                /* the sink, as a start names it */
                wc_errorf(errbuf, errlen, "sink \"%s\": %s", name, msg);
                return r;
        }
        r = sink_catalog(k, name, env, false, &t, errbuf, errlen);
        if (r == 1 && k->checked) {
                /* the tables and the enum types, whatever the format
                 * (one query): kept for kafka_add */
                wc_catalog_tables_free(&k->checked->t);
                k->checked->t = t;
                k->checked->valid = true;
                return 0;
        }
        wc_catalog_tables_free(&t);
        return r < 0 ? r : 0;
}

/* librdkafka's properties whose value is a secret (the ones it redacts
 * from its own configuration dumps), and any other "...password" or
 * "...secret" */
static bool secret_property(const char *key)
{
        static const char *const keys[] = {"ssl.key.pem",
                                           "sasl.oauthbearer.config"};
        const char *last = strrchr(key, '.');

        last = last ? last + 1 : key;
        if (strcasestr(last, "password") || strcasestr(last, "secret"))
                return true;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (strcmp(key, keys[i]) == 0)
                        return true;
        return false;
}

static void kafka_secrets(const void *conf, void (*add)(const char *value))
{
        const struct wc_kafka_sink_config *k = conf;

        for (size_t i = 0; i < k->nproperties; i++)
                if (secret_property(k->properties[i].key))
                        add(k->properties[i].value);
        /* a digest is a lookup table away from the value without it */
        if (k->mask_salt)
                add(k->mask_salt);
}

const struct wc_sink_kind wc_sink_kind_kafka = {
    .name = "kafka",
    .parse = kafka_parse,
    .free = kafka_free,
    .default_name = kafka_default_name,
    .needs_identity = true,
    .check = kafka_check,
    .add = kafka_add,
    .secrets = kafka_secrets,
};
