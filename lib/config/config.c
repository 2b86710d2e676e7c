/* SPDX-License-Identifier: MIT */
/*
 * The YAML loader.  libyaml's event parser feeds a small tree first, so
 * that aliases are refused before anything could be expanded, and so that a
 * missing key can be reported at the key that opened its section.  The tree
 * is then walked against tables that describe every key, and converted into
 * struct wc_config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <yaml.h>

#include "core/core.h"
#include "sinks/file/conf.h"
#include "sinks/kafka/conf.h"
#include "sinks/kafka/topic.h"
#include "sinks/plugin/conf.h"
#include "config/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Deeper than anything the schema has; bounds the recursion of the tree
 * code whatever the input. */
#define MAX_DEPTH 64
/* A configuration is a few kilobytes; this only stops a wrong path (a log,
 * a device) from being read into memory. */
#define MAX_FILE_SIZE (16u << 20)
/* Key paths ("sinks[2].file.path") are built from the tables and indices,
 * so this is ample; a cut would only shorten a message. */
#define PATH_LEN 128
/* Room for a quoted value in a message; longer values are cut. */
#define QUOTE_MAX 80
/* Room for 'in "PATH"': a whole path, never cut mid-quote. */
#define WHERE_LEN (PATH_LEN + 8)
/* A plugin's config block is a handful of settings; the caps keep a wrong
 * or hostile file from making the flattened copy much larger than the file
 * itself (every nested value repeats the keys above it). */
#define KV_MAX     1024
#define KV_KEY_MAX 1024

enum node_kind {
        NODE_SCALAR,
        NODE_MAPPING,
        NODE_SEQUENCE,
};

struct node {
        enum node_kind kind;
        unsigned line, column; /* 1-based */
        struct node *parent;   /* only while the tree is built */
        char *text;            /* scalar, as written: not expanded */
        bool null;             /* plain "", "~" or "null": no value */
        struct node **kids;    /* mapping: key, value, ...; sequence: items */
        size_t nkids;
        size_t cap;
};

struct loader {
        const char *name;
        char *errbuf;
        size_t errlen;
        struct wc_buf scratch; /* the expanded text of one scalar */
};

enum key_type {
        KEY_STRING, /* a non-empty string */
        KEY_SLOT,
        KEY_BOOL,
        KEY_DURATION,
        KEY_LOG_LEVEL,
        KEY_LOG_FORMAT,
        KEY_OPS,
        KEY_PATTERNS,
        KEY_UINT32, /* a decimal integer from .min to .max */
        KEY_SIZE,   /* bytes with a unit, from .min to .max */
        KEY_SLOT_LOST,
        KEY_KEYLESS, /* refuse or whole: a bool, true for whole */
        KEY_ABS_PATH, /* a string starting with "/" */
        KEY_SECTION,  /* a mapping described by .section */
        KEY_SINKS,
        KEY_KV,    /* any mapping, flattened into wc_kv pairs */
        KEY_TOPIC, /* a Kafka topic template (sinks/kafka/topic.h) */
        KEY_DSN,   /* a libpq connection string libpq can parse */
};

struct key_desc {
        enum key_type type;
        const char *name;
        const char *def; /* the default as it would be written, or NULL */
        size_t offset;   /* of the field in the struct the table fills */
        const char *description;
        bool required;
        const struct key_desc *section;
        uint64_t min, max;   /* KEY_DURATION (ms), KEY_UINT32 */
        size_t count_offset; /* KEY_KV: of the pair count */
};

struct sink_type_desc {
        const char *name;
        const struct key_desc *keys;
        size_t size; /* of the type's struct, struct wc_sink_config.conf */
        /* the sink's name without `name:` (not numbered), or NULL */
        char *(*default_name)(const void *conf);
        void (*free)(void *conf); /* what the struct holds */
        /* checks that span keys, after they are read; may be NULL.  key
         * is the sink type's key, map its mapping. */
        int (*check)(struct loader *ld, const char *path,
                     const struct node *key, const struct node *map,
                     void *base);
};

/*
 * The schema.  Offsets are into struct wc_config for everything under the
 * root, and into the sink type's own struct for sink keys.  The ops default
 * is not a scalar and is set by apply_defaults() itself.
 */
#define KEY(t, n, d, off, desc)                                                \
        .type = (t), .name = (n), .def = (d), .offset = (off),                 \
        .description = (desc)

static const struct key_desc source_keys[] = {
    {KEY(KEY_DSN, "dsn", NULL, offsetof(struct wc_config, source.dsn),
         "libpq connection string of the database to read"),
     .required = true},
    {KEY(KEY_SLOT, "slot", NULL, offsetof(struct wc_config, source.slot),
         "logical replication slot"),
     .required = true},
    {KEY(KEY_BOOL, "create_slot", "true",
         offsetof(struct wc_config, source.create_slot),
         "create the slot when it does not exist")},
    {KEY(KEY_DURATION, "status_interval", "10s",
         offsetof(struct wc_config, source.status_interval_ms),
         "interval between standby status updates to the server"),
     .min = 100, .max = 3600 * 1000},
    {KEY(KEY_SLOT_LOST, "on_slot_lost", "fail",
         offsetof(struct wc_config, source.on_slot_lost),
         "fail (exit 69) or recreate when the slot walcast confirmed "
         "positions on is gone, was recreated, or the server changed")},
    {.name = NULL},
};

static const struct key_desc heartbeat_keys[] = {
    {KEY(KEY_DURATION, "interval", NULL,
         offsetof(struct wc_config, heartbeat.interval_ms),
         "how often to run the heartbeat action; unset: no heartbeat"),
     .min = 1000, .max = 24 * 3600 * 1000},
    {KEY(KEY_STRING, "action_query", NULL,
         offsetof(struct wc_config, heartbeat.action_query),
         "SQL run on an ordinary connection at each heartbeat; default: "
         "emit a logical message with the heartbeat prefix")},
    {KEY(KEY_STRING, "prefix", "walcast.heartbeat",
         offsetof(struct wc_config, heartbeat.prefix),
         "logical messages with this prefix are heartbeats")},
    {KEY(KEY_BOOL, "deliver", "false",
         offsetof(struct wc_config, heartbeat.deliver),
         "pass heartbeat messages to the sinks")},
    {.name = NULL},
};

static const struct key_desc snapshot_keys[] = {
    {KEY(KEY_BOOL, "initial", "false",
         offsetof(struct wc_config, snapshot.initial),
         "read every included table's rows when walcastd creates the slot")},
    {KEY(KEY_UINT32, "chunk_size", "10000",
         offsetof(struct wc_config, snapshot.chunk_size),
         "rows read between one pair of watermarks"),
     .min = 1, .max = 1000000},
    {KEY(KEY_KEYLESS, "keyless", "refuse",
         offsetof(struct wc_config, snapshot.keyless_whole),
         "a table without a primary key: refuse it, or read it whole in "
         "one pass")},
    {.name = NULL},
};

static const struct key_desc limits_keys[] = {
    {KEY(KEY_UINT32, "max_in_flight_changes", "100000",
         offsetof(struct wc_config, limits.max_in_flight_changes),
         "changes sent to the sinks and not yet acknowledged before reading "
         "pauses"),
     .min = 1, .max = 1000000000},
    {KEY(KEY_SIZE, "max_in_flight_bytes", "64MB",
         offsetof(struct wc_config, limits.max_in_flight_bytes),
         "bytes of wal2json JSON sent to the sinks and not yet "
         "acknowledged before reading pauses"),
     .min = 1024, .max = (uint64_t)1 << 40},
    {.name = NULL},
};

static const struct key_desc schemas_keys[] = {
    {KEY(KEY_PATTERNS, "include", NULL,
         offsetof(struct wc_config, filter.schemas_include),
         "schemas to read; empty: every schema")},
    {KEY(KEY_PATTERNS, "exclude", NULL,
         offsetof(struct wc_config, filter.schemas_exclude),
         "schemas to skip even when included")},
    {.name = NULL},
};

static const struct key_desc tables_keys[] = {
    {KEY(KEY_PATTERNS, "include", NULL,
         offsetof(struct wc_config, filter.tables_include),
         "tables to read; empty: every table")},
    {KEY(KEY_PATTERNS, "exclude", NULL,
         offsetof(struct wc_config, filter.tables_exclude),
         "tables to skip even when included")},
    {.name = NULL},
};

static const struct key_desc filter_keys[] = {
    {KEY(KEY_SECTION, "schemas", NULL, 0, "schema filter"),
     .section = schemas_keys},
    {KEY(KEY_SECTION, "tables", NULL, 0, "table filter"),
     .section = tables_keys},
    {KEY(KEY_OPS, "ops", NULL, offsetof(struct wc_config, filter.ops),
         "operations to pass on; default all five")},
    {.name = NULL},
};

static const struct key_desc signals_keys[] = {
    {KEY(KEY_UINT32, "bulk_delete_batch", "1000",
         offsetof(struct wc_config, signals.bulk_delete_batch),
         "max keys in one bulk_delete signal"),
     .min = 1, .max = 1000000},
    {.name = NULL},
};

static const struct key_desc log_keys[] = {
    {KEY(KEY_LOG_LEVEL, "level", "info", offsetof(struct wc_config, log.level),
         "most verbose level logged")},
    {KEY(KEY_LOG_FORMAT, "format", "text",
         offsetof(struct wc_config, log.format),
         "text (sd-daemon <N> prefixes) or json (one object per line)")},
    {.name = NULL},
};

static const struct key_desc metrics_keys[] = {
    {KEY(KEY_STRING, "listen", NULL, offsetof(struct wc_config, metrics.listen),
         "address of the Prometheus and health endpoint, e.g. "
         "127.0.0.1:9187; unset: off")},
    {.name = NULL},
};

static const struct key_desc root_keys[] = {
    {KEY(KEY_SECTION, "source", NULL, 0, "the database and its slot"),
     .required = true, .section = source_keys},
    {KEY(KEY_SECTION, "filter", NULL, 0, "what to pass on"),
     .section = filter_keys},
    {KEY(KEY_SECTION, "signals", NULL, 0, "how changes become signals"),
     .section = signals_keys},
    {KEY(KEY_SECTION, "heartbeat", NULL, 0, "keeping an idle slot moving"),
     .section = heartbeat_keys},
    {KEY(KEY_SECTION, "limits", NULL, 0, "bounds on what is in flight"),
     .section = limits_keys},
    {KEY(KEY_SECTION, "snapshot", NULL, 0, "the rows that exist before the "
                                           "stream (docs/snapshots.md)"),
     .section = snapshot_keys},
    {KEY(KEY_ABS_PATH, "state_dir", NULL, offsetof(struct wc_config, state_dir),
         "directory of the slot's state file; default $STATE_DIRECTORY")},
    {KEY(KEY_DURATION, "shutdown_timeout", "10s",
         offsetof(struct wc_config, shutdown_timeout_ms),
         "how long a stop waits for the sinks to acknowledge"),
     .max = 3600 * 1000},
    {KEY(KEY_SINKS, "sinks", NULL, 0, "where changes go"), .required = true},
    {KEY(KEY_SECTION, "log", NULL, 0, "logging"), .section = log_keys},
    {KEY(KEY_SECTION, "metrics", NULL, 0, "metrics and health over HTTP"),
     .section = metrics_keys},
    {.name = NULL},
};

static const struct key_desc file_keys[] = {
    {KEY(KEY_STRING, "name", NULL, offsetof(struct wc_file_sink_config, name),
         "what logs and metrics call this sink; default from its kind")},
    {KEY(KEY_STRING, "path", NULL, offsetof(struct wc_file_sink_config, path),
         "file to append JSON lines to; \"-\" is stdout"),
     .required = true},
    {KEY(KEY_BOOL, "fsync", "true", offsetof(struct wc_file_sink_config, fsync),
         "fsync before acknowledging changes")},
    {.name = NULL},
};

static const struct key_desc plugin_keys[] = {
    {KEY(KEY_STRING, "name", NULL, offsetof(struct wc_plugin_sink_config, name),
         "what logs and metrics call this sink; default from its kind")},
    {KEY(KEY_ABS_PATH, "path", NULL,
         offsetof(struct wc_plugin_sink_config, path),
         "the plugin's shared object"),
     .required = true},
    {KEY(KEY_PATTERNS, "schemas", NULL,
         offsetof(struct wc_plugin_sink_config, schemas),
         "schemas the plugin receives; empty: every schema")},
    {KEY(KEY_KV, "config", NULL, offsetof(struct wc_plugin_sink_config, config),
         "settings for the plugin, which alone reads them"),
     .count_offset = offsetof(struct wc_plugin_sink_config, nconfig)},
    {.name = NULL},
};

/* A Kafka sink's own filter: the shapes of the global one. */
static const struct key_desc kafka_schemas_keys[] = {
    {KEY(KEY_PATTERNS, "include", NULL,
         offsetof(struct wc_kafka_sink_config, filter.schemas_include),
         "schemas this sink publishes; empty: every schema")},
    {KEY(KEY_PATTERNS, "exclude", NULL,
         offsetof(struct wc_kafka_sink_config, filter.schemas_exclude),
         "schemas to skip even when included")},
    {.name = NULL},
};

static const struct key_desc kafka_tables_keys[] = {
    {KEY(KEY_PATTERNS, "include", NULL,
         offsetof(struct wc_kafka_sink_config, filter.tables_include),
         "tables this sink publishes; empty: every table")},
    {KEY(KEY_PATTERNS, "exclude", NULL,
         offsetof(struct wc_kafka_sink_config, filter.tables_exclude),
         "tables to skip even when included")},
    {.name = NULL},
};

static const struct key_desc kafka_keys[] = {
    {KEY(KEY_STRING, "name", NULL, offsetof(struct wc_kafka_sink_config, name),
         "what logs and metrics call this sink; default from its kind")},
    {KEY(KEY_TOPIC, "topic", "{prefix}.{schema}.{table}",
         offsetof(struct wc_kafka_sink_config, topic), "topic name template")},
    {KEY(KEY_STRING, "prefix", "walcast",
         offsetof(struct wc_kafka_sink_config, prefix),
         "what {prefix} stands for in the topic template")},
    {KEY(KEY_BOOL, "tombstones", "true",
         offsetof(struct wc_kafka_sink_config, tombstones),
         "send a null-value message after each delete, for compaction")},
    {KEY(KEY_KV, "properties", NULL,
         offsetof(struct wc_kafka_sink_config, properties),
         "librdkafka settings, passed as they are"),
     .count_offset = offsetof(struct wc_kafka_sink_config, nproperties)},
    {KEY(KEY_SECTION, "schemas", NULL, 0, "this sink's schema filter"),
     .section = kafka_schemas_keys},
    {KEY(KEY_SECTION, "tables", NULL, 0, "this sink's table filter"),
     .section = kafka_tables_keys},
    {KEY(KEY_OPS, "ops", NULL,
         offsetof(struct wc_kafka_sink_config, filter.ops),
         "operations this sink publishes; default all")},
    {.name = NULL},
};

static int kafka_check(struct loader *ld, const char *path,
                       const struct node *key, const struct node *map,
                       void *base);

static char *file_default_name(const void *conf);
static char *plugin_default_name(const void *conf);
static char *kafka_default_name(const void *conf);
static void file_free(void *conf);
static void plugin_free(void *conf);
static void kafka_free(void *conf);

static const struct sink_type_desc sink_types[] = {
    {"file", file_keys, sizeof(struct wc_file_sink_config), file_default_name,
     file_free, NULL},
    {"plugin", plugin_keys, sizeof(struct wc_plugin_sink_config),
     plugin_default_name, plugin_free, NULL},
    {"kafka", kafka_keys, sizeof(struct wc_kafka_sink_config),
     kafka_default_name, kafka_free, kafka_check},
};

/* Duplicate keys are found with a bit per table row. */
/* `name` is read through the first member of any sink's struct */
_Static_assert(offsetof(struct wc_file_sink_config, name) == 0 &&
                   offsetof(struct wc_plugin_sink_config, name) == 0 &&
                   offsetof(struct wc_kafka_sink_config, name) == 0,
               "name first in every sink type");
_Static_assert(ARRAY_SIZE(root_keys) <= 32, "too many keys for the seen mask");
_Static_assert(ARRAY_SIZE(source_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(filter_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(file_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(signals_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(plugin_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(kafka_keys) <= 32, "too many keys");

static const struct {
        const char *name;
        enum wc_log_level level;
} log_levels[] = {
    {"err", WC_LOG_ERR},       {"warning", WC_LOG_WARNING},
    {"notice", WC_LOG_NOTICE}, {"info", WC_LOG_INFO},
    {"debug", WC_LOG_DEBUG},
};

/* ---- errors ---- */

static int vfail_at(struct loader *ld, unsigned line, unsigned column,
                    const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vfail_at(struct loader *ld, unsigned line, unsigned column,
                    const char *fmt, va_list ap)
{
        int n;

        if (!ld->errbuf || ld->errlen == 0)
                return -EINVAL;
        if (line > 0)
                n = snprintf(ld->errbuf, ld->errlen, "%s:%u:%u: ", ld->name,
                             line, column);
        else
                n = snprintf(ld->errbuf, ld->errlen, "%s: ", ld->name);
        if (n < 0 || (size_t)n >= ld->errlen)
                return -EINVAL;
        vsnprintf(ld->errbuf + n, ld->errlen - (size_t)n, fmt, ap);
        return -EINVAL;
}

static int fail_at(struct loader *ld, unsigned line, unsigned column,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail_at(struct loader *ld, unsigned line, unsigned column,
                   const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail_at(ld, line, column, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* at may be NULL: the error then has no position (defaults, whole file). */
static int fail(struct loader *ld, const struct node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct loader *ld, const struct node *at, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail_at(ld, at ? at->line : 0, at ? at->column : 0, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static int fail_oom(struct loader *ld)
{
        fail(ld, NULL, "out of memory");
        return -ENOMEM;
}

/* Drops a UTF-8 sequence cut short at the end of buf[start..len), so that
 * a shortened value stays valid UTF-8. */
static size_t utf8_cut(const char *buf, size_t start, size_t len)
{
        size_t end = len, cont = 0, need;
        unsigned char lead;

        while (end > start && cont < 3 &&
               ((unsigned char)buf[end - 1] & 0xc0) == 0x80) {
                end--;
                cont++;
        }
        if (end <= start || ((unsigned char)buf[end - 1] & 0xc0) != 0xc0)
                return len;
        lead = (unsigned char)buf[end - 1];
        need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
        return cont < need ? end - 1 : len;
}

/*
 * Appends s to buf at o for a message: control characters escaped so that
 * a value cannot break a log line, and cut with "..." before it passes
 * room, so that a huge value cannot push out the rest of the message.
 * Returns the new length; the caller adds what follows and the NUL.
 */
static size_t escape_append(char *buf, size_t o, size_t room, const char *s,
                            size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t start = o;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];

                /* room for the longest escape and "..." */
                if (o + 4 + 3 > room) {
                        o = utf8_cut(buf, start, o);
                        memcpy(buf + o, "...", 3);
                        return o + 3;
                }
                if (ch == '"' || ch == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char)ch;
                } else if (ch < 0x20 || ch == 0x7f) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[ch >> 4];
                        buf[o++] = hex[ch & 0xf];
                } else {
                        buf[o++] = (char)ch;
                }
        }
        return o;
}

/* s as a double-quoted string for a message, escaped and cut. */
static const char *quote_n(char buf[QUOTE_MAX], const char *s, size_t len)
{
        size_t o;

        buf[0] = '"';
        /* keep 2 for the closing quote and the NUL */
        o = escape_append(buf, 1, QUOTE_MAX - 2, s, len);
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

static const char *quote(char buf[QUOTE_MAX], const char *s)
{
        return quote_n(buf, s, strlen(s));
}

static const char *kind_name(const struct node *n)
{
        switch (n->kind) {
        case NODE_MAPPING:
                return "a mapping";
        case NODE_SEQUENCE:
                return "a sequence";
        case NODE_SCALAR:
                break;
        }
        return n->null ? "an empty value" : "a scalar";
}

/* "in "source"", or "at the top level" for the root. */
static const char *where_in(char buf[WHERE_LEN], const char *path)
{
        if (!path[0])
                return "at the top level";
        snprintf(buf, WHERE_LEN, "in \"%s\"", path);
        return buf;
}

static int fail_type(struct loader *ld, const struct node *at,
                     const char *expected, const char *path)
{
        if (!path[0])
                return fail(ld, at, "expected %s at the top level, found %s",
                            expected, kind_name(at));
        return fail(ld, at, "expected %s for \"%s\", found %s", expected, path,
                    kind_name(at));
}

/* ---- the tree ---- */

static void path_format(char buf[PATH_LEN], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void path_format(char buf[PATH_LEN], const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, PATH_LEN, fmt, ap);
        va_end(ap);
}

/* parent "." key, for the free-form keys of a plugin's config: they are
 * written by the user, so they are escaped like a quoted value. */
static void path_key(char buf[PATH_LEN], const char *parent, const char *key)
{
        size_t o = strnlen(parent, PATH_LEN - 1);

        memcpy(buf, parent, o);
        /* a parent that was cut already stays as it is */
        if (o + 1 + 4 + 3 < PATH_LEN) {
                buf[o++] = '.';
                o = escape_append(buf, o, PATH_LEN - 1, key, strlen(key));
        }
        buf[o] = '\0';
}

static void node_free(struct node *n)
{
        if (!n)
                return;
        for (size_t i = 0; i < n->nkids; i++)
                node_free(n->kids[i]);
        free(n->kids);
        free(n->text);
        free(n);
}

static int node_append(struct node *parent, struct node *kid)
{
        if (parent->nkids == parent->cap) {
                size_t cap = parent->cap ? parent->cap * 2 : 4;
                struct node **kids =
                    reallocarray(parent->kids, cap, sizeof(*kids));

                if (!kids)
                        return -ENOMEM;
                parent->kids = kids;
                parent->cap = cap;
        }
        parent->kids[parent->nkids++] = kid;
        return 0;
}

static bool scalar_is_null(const yaml_event_t *ev)
{
        const char *v = (const char *)ev->data.scalar.value;

        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
               strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Line and column of a byte offset, for reader errors, which libyaml
 * reports without a mark. */
static void offset_position(const char *text, size_t len, size_t offset,
                            unsigned *ret_line, unsigned *ret_column)
{
        unsigned line = 1, column = 1;

        if (offset > len)
                offset = len;
        for (size_t i = 0; i < offset; i++) {
                if (text[i] == '\n') {
                        line++;
                        column = 1;
                } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
                        column++;
                }
        }
        *ret_line = line;
        *ret_column = column;
}

static int fail_yaml(struct loader *ld, const yaml_parser_t *p,
                     const char *text, size_t len)
{
        const char *problem = p->problem ? p->problem : "invalid YAML";
        unsigned line, column;

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return fail_oom(ld);
        case YAML_READER_ERROR:
                offset_position(text, len, p->problem_offset, &line, &column);
                if (p->problem_value != -1)
                        return fail_at(ld, line, column, "%s (#x%x)", problem,
                                       (unsigned)p->problem_value);
                return fail_at(ld, line, column, "%s", problem);
        default:
                break;
        }
        line = (unsigned)p->problem_mark.line + 1;
        column = (unsigned)p->problem_mark.column + 1;
        if (p->context)
                return fail_at(ld, line, column, "%s (%s at %u:%u)", problem,
                               p->context, (unsigned)p->context_mark.line + 1,
                               (unsigned)p->context_mark.column + 1);
        return fail_at(ld, line, column, "%s", problem);
}

/* Adds the node an event opens to the tree; *cur is the open collection. */
static int tree_add(struct loader *ld, const yaml_event_t *ev,
                    struct node **root, struct node **cur, unsigned *depth)
{
        unsigned line = (unsigned)ev->start_mark.line + 1;
        unsigned column = (unsigned)ev->start_mark.column + 1;
        struct node *n;

        if (ev->type != YAML_SCALAR_EVENT && *depth >= MAX_DEPTH)
                return fail_at(ld, line, column,
                               "nesting deeper than %d levels", MAX_DEPTH);
        if (ev->type == YAML_SCALAR_EVENT &&
            memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
                return fail_at(ld, line, column,
                               "a scalar contains a NUL character");

        n = calloc(1, sizeof(*n));
        if (!n)
                return fail_oom(ld);
        n->line = line;
        n->column = column;
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                n->kind = NODE_SCALAR;
                n->text = strndup((const char *)ev->data.scalar.value,
                                  ev->data.scalar.length);
                if (!n->text)
                        goto err_free_node;
                n->null = scalar_is_null(ev);
                break;
        case YAML_MAPPING_START_EVENT:
                n->kind = NODE_MAPPING;
                break;
        default:
                n->kind = NODE_SEQUENCE;
                break;
        }

        if (!*cur)
                *root = n;
        else if (node_append(*cur, n) < 0)
                goto err_free_node;
        if (n->kind != NODE_SCALAR) {
                n->parent = *cur;
                *cur = n;
                (*depth)++;
        }
        return 0;

err_free_node:
        node_free(n);
        return fail_oom(ld);
}

/* Parses text into a tree; *ret_root is NULL for a stream without a
 * document. */
static int tree_build(struct loader *ld, const char *text, size_t len,
                      struct node **ret_root)
{
        yaml_parser_t parser;
        yaml_event_t ev;
        struct node *root = NULL, *cur = NULL;
        unsigned depth = 0, ndocs = 0;
        char q[QUOTE_MAX], star[QUOTE_MAX];
        bool done = false;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return fail_oom(ld);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

        while (!done) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        r = fail_yaml(ld, &parser, text, len);
                        goto err_free_tree;
                }
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++ndocs > 1)
                                r = fail_at(ld,
                                            (unsigned)ev.start_mark.line + 1,
                                            (unsigned)ev.start_mark.column + 1,
                                            "more than one document in the "
                                            "configuration");
                        break;
                case YAML_ALIAS_EVENT:
                        /* refusing aliases keeps every value where it is
                         * written, and rules out exponential expansion */
                        snprintf(star, sizeof(star), "*%s",
                                 (const char *)ev.data.alias.anchor);
                        r = fail_at(ld, (unsigned)ev.start_mark.line + 1,
                                    (unsigned)ev.start_mark.column + 1,
                                    "alias %s is not supported: write the "
                                    "value out instead",
                                    quote(q, star));
                        break;
                case YAML_SCALAR_EVENT:
                case YAML_MAPPING_START_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                        r = tree_add(ld, &ev, &root, &cur, &depth);
                        break;
                case YAML_MAPPING_END_EVENT:
                case YAML_SEQUENCE_END_EVENT:
                        cur = cur->parent;
                        depth--;
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        goto err_free_tree;
        }
        yaml_parser_delete(&parser);
        *ret_root = root;
        return 0;

err_free_tree:
        node_free(root);
        yaml_parser_delete(&parser);
        return r;
}

/* ---- scalars ---- */

static bool env_name_valid(const char *s, size_t len)
{
        if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                        return false;
        }
        return true;
}

/*
 * Expands ${NAME} and $$ in a scalar.  *ret_text is n->text itself or the
 * loader's scratch buffer, valid until the next call.
 */
static int expand(struct loader *ld, const struct node *n, const char *path,
                  const char **ret_text)
{
        struct wc_buf *b = &ld->scratch;
        const char *s = n->text;
        char q[QUOTE_MAX];

        if (!strchr(s, '$')) {
                *ret_text = s;
                return 0;
        }
        wc_buf_reset(b);
        for (;;) {
                const char *dollar = strchr(s, '$'), *name, *end, *value;
                char *var;

                if (!dollar) {
                        if (wc_buf_append_str(b, s) < 0)
                                return fail_oom(ld);
                        break;
                }
                if (wc_buf_append(b, s, (size_t)(dollar - s)) < 0)
                        return fail_oom(ld);
                if (dollar[1] != '{') {
                        /* "$$" is one "$"; any other "$" is itself */
                        if (wc_buf_append_char(b, '$') < 0)
                                return fail_oom(ld);
                        s = dollar + (dollar[1] == '$' ? 2 : 1);
                        continue;
                }
                name = dollar + 2;
                end = strchr(name, '}');
                if (!end)
                        return fail(ld, n,
                                    "missing \"}\" after \"${\" in \"%s\"",
                                    path);
                if (!env_name_valid(name, (size_t)(end - name)))
                        return fail(ld, n,
                                    "invalid environment variable name %s in "
                                    "\"%s\"",
                                    quote_n(q, name, (size_t)(end - name)),
                                    path);
                var = strndup(name, (size_t)(end - name));
                if (!var)
                        return fail_oom(ld);
                value = getenv(var);
                if (!value) {
                        fail(ld, n, "environment variable %s is not set",
                             quote(q, var));
                        free(var);
                        return -EINVAL;
                }
                free(var);
                if (wc_buf_append_str(b, value) < 0)
                        return fail_oom(ld);
                s = end + 1;
        }
        /* an empty result still needs a buffer holding the NUL */
        if (wc_buf_append(b, "", 0) < 0)
                return fail_oom(ld);
        *ret_text = b->data;
        return 0;
}

/* What a scalar key wants, for type errors. */
static const char *type_noun(enum key_type t)
{
        switch (t) {
        case KEY_BOOL:
                return "a boolean";
        case KEY_DURATION:
                return "a duration";
        case KEY_UINT32:
                return "an integer";
        case KEY_SIZE:
                return "a size";
        default:
                return "a string";
        }
}

/* Formats a duration with its largest exact unit, for messages. */
static const char *duration_format(char buf[32], uint64_t ms)
{
        static const struct {
                const char *unit;
                uint64_t ms;
        } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};

        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (ms != 0 && ms % units[i].ms == 0) {
                        snprintf(buf, 32, "%llu%s",
                                 (unsigned long long)(ms / units[i].ms),
                                 units[i].unit);
                        return buf;
                }
        }
        snprintf(buf, 32, "%llums", (unsigned long long)ms);
        return buf;
}

/* A plain decimal number: digits only, no sign, no spaces, no exponent.
 * Leading zeros are decimal, never octal.  0 or -EINVAL (also when the
 * number exceeds max). */
static int uint_parse(const char *s, uint64_t max, uint64_t *ret_n)
{
        uint64_t n = 0;

        if (!(*s >= '0' && *s <= '9'))
                return -EINVAL;
        for (; *s; s++) {
                if (!(*s >= '0' && *s <= '9'))
                        return -EINVAL;
                n = n * 10 + (uint64_t)(*s - '0');
                /* max is at most UINT32_MAX, so this cannot wrap */
                if (n > max)
                        return -EINVAL;
        }
        *ret_n = n;
        return 0;
}

static int set_string(struct loader *ld, char **field, const char *text)
{
        char *dup = strdup(text);

        if (!dup)
                return fail_oom(ld);
        free(*field);
        *field = dup;
        return 0;
}

/* ---- connection strings ---- */

/* Spans of a connection string that hold a secret, as [start, end). */
struct spans {
        size_t start[16], end[16];
        size_t n;
};

static bool secret_keyword(const char *k, size_t len)
{
        return (len == 8 && strncmp(k, "password", 8) == 0) ||
               (len == 11 && strncmp(k, "sslpassword", 11) == 0);
}

static void spans_add(struct spans *sp, size_t start, size_t end)
{
        if (sp->n < 16 && end > start) {
                sp->start[sp->n] = start;
                sp->end[sp->n] = end;
                sp->n++;
        }
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
               c == '\v';
}

/* Whether s[i..] starts a "keyword =" pair. */
static bool at_pair(const char *s, size_t i)
{
        size_t j = i;

        while (s[j] && !is_space(s[j]) && s[j] != '=')
                j++;
        if (j == i)
                return false;
        while (is_space(s[j]))
                j++;
        return s[j] == '=';
}

/*
 * Where a secret may be in dsn, generously: a password's value up to the
 * next "keyword =" (so that "password=abc def", which libpq reads as a
 * password "abc" and a keyword "def", hides both words), a URI's user
 * password up to its last '@', and password query parameters.
 */
static void secret_spans(const char *dsn, struct spans *sp)
{
        size_t i = 0, len = strlen(dsn);

        sp->n = 0;
        if (strncmp(dsn, "postgresql://", 13) == 0 ||
            strncmp(dsn, "postgres://", 11) == 0) {
                const char *auth = strstr(dsn, "://") + 3;
                const char *at = strrchr(auth, '@');
                const char *colon = strchr(auth, ':');
                const char *q = strchr(auth, '?');

                if (at && colon && colon < at)
                        spans_add(sp, (size_t)(colon + 1 - dsn),
                                  (size_t)(at - dsn));
                for (; q && *q; q = strchr(q, '&')) {
                        const char *k = q + 1, *eq = strchr(k, '='),
                                   *amp = strchr(k, '&');
                        q = k;
                        if (!eq || (amp && amp < eq))
                                continue;
                        if (secret_keyword(k, (size_t)(eq - k)))
                                spans_add(sp, (size_t)(eq + 1 - dsn),
                                          amp ? (size_t)(amp - dsn) : len);
                }
                return;
        }
        while (i < len) {
                size_t k, klen, v;
                bool quoted;

                while (is_space(dsn[i]))
                        i++;
                k = i;
                while (dsn[i] && !is_space(dsn[i]) && dsn[i] != '=')
                        i++;
                klen = i - k;
                while (is_space(dsn[i]))
                        i++;
                if (dsn[i] != '=')
                        return; /* what follows is not understood */
                i++;
                while (is_space(dsn[i]))
                        i++;
                v = i;
                quoted = dsn[i] == '\'';
                if (quoted)
                        i++;
                while (dsn[i]) {
                        if (dsn[i] == '\\' && dsn[i + 1]) {
                                i += 2;
                                continue;
                        }
                        if (quoted ? dsn[i] == '\'' : is_space(dsn[i]))
                                break;
                        i++;
                }
                if (quoted && dsn[i])
                        i++;
                if (secret_keyword(dsn + k, klen)) {
                        size_t end = i;
                        /* up to the next pair, or the end */
                        while (dsn[end] &&
                               !(is_space(dsn[end - 1]) &&
                                 !is_space(dsn[end]) && at_pair(dsn, end)))
                                end++;
                        while (end > i && is_space(dsn[end - 1]))
                                end--;
                        spans_add(sp, v, end);
                        i = end;
                }
        }
}

/* Whether s[0..n) touches a secret: found in dsn only where it overlaps a
 * span, or holding a span's text. */
static bool touches_secret(const char *dsn, const struct spans *sp,
                           const char *s, size_t n)
{
        bool found = false;

        if (n == 0)
                return false; /* "": nothing to show */
        for (size_t i = 0; i < sp->n; i++) {
                size_t slen = sp->end[i] - sp->start[i];
                if (slen <= n && memmem(s, n, dsn + sp->start[i], slen))
                        return true;
        }
        for (const char *p = dsn; (p = memmem(p, strlen(p), s, n)); p++) {
                size_t at = (size_t)(p - dsn);
                found = true;
                for (size_t i = 0; i < sp->n; i++)
                        if (at < sp->end[i] && at + n > sp->start[i])
                                return true;
        }
        /* not in the string as written: a decoded value, maybe secret */
        return !found;
}

/*
 * libpq's reason for refusing dsn, without any secret: each quoted part
 * of its message that touches a secret becomes "***" (one of "=]:/" is
 * libpq's own text).  If a secret word still shows (a message worded
 * otherwise), the reason is dropped.
 */
static void dsn_reason(const char *dsn, const char *msg, char *out,
                       size_t outlen)
{
        static const char hex[] = "0123456789abcdef";
        char raw[256];
        struct spans sp;
        size_t o = 0, len = strlen(msg);

        secret_spans(dsn, &sp);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
                len--;
        for (size_t i = 0; i < len && o + 8 < sizeof(raw);) {
                const char *close;
                size_t n;

                if (msg[i] != '"' ||
                    !(close = memchr(msg + i + 1, '"', len - i - 1))) {
                        raw[o++] = msg[i++];
                        continue;
                }
                n = (size_t)(close - (msg + i + 1));
                if ((n == 1 && strchr("=]:/", msg[i + 1])) ||
                    !touches_secret(dsn, &sp, msg + i + 1, n)) {
                        n = n + 2 < sizeof(raw) - o - 1 ? n + 2
                                                        : sizeof(raw) - o - 1;
                        memcpy(raw + o, msg + i, n);
                        o += n;
                } else {
                        memcpy(raw + o, "\"***\"", 5);
                        o += 5;
                }
                i = (size_t)(close + 1 - msg);
        }
        raw[o] = '\0';
        for (size_t i = 0; i < sp.n; i++) {
                size_t a = sp.start[i];
                while (a < sp.end[i]) {
                        size_t b = a;
                        while (b < sp.end[i] && !is_space(dsn[b]))
                                b++;
                        if (b - a >= 2 && memmem(raw, o, dsn + a, b - a)) {
                                snprintf(out, outlen,
                                         "(libpq's message is not shown: it "
                                         "quotes a secret)");
                                return;
                        }
                        a = b + 1;
                }
        }
        /* what libpq quotes may hold control characters: they cannot
         * break the log line */
        len = 0;
        for (size_t i = 0; i < o && len + 5 < outlen; i++) {
                unsigned char ch = (unsigned char)raw[i];

                if (ch < 0x20 || ch == 0x7f) {
                        out[len++] = '\\';
                        out[len++] = 'x';
                        out[len++] = hex[ch >> 4];
                        out[len++] = hex[ch & 0xf];
                } else {
                        out[len++] = (char)ch;
                }
        }
        if (outlen)
                out[len] = '\0';
}

/* Whether libpq can parse dsn; its reason, without secrets, when not. */
static int dsn_check(const char *dsn, char *reason, size_t len)
{
        char *msg = NULL;
        PQconninfoOption *opts = PQconninfoParse(dsn, &msg);

        if (opts) {
                PQconninfoFree(opts);
                return 0;
        }
        if (msg)
                dsn_reason(dsn, msg, reason, len);
        else
                snprintf(reason, len, "out of memory");
        PQfreemem(msg);
        return -EINVAL;
}

/* Converts the text of a scalar key into its field; at is NULL for a
 * default. */
static int convert_scalar(struct loader *ld, const struct key_desc *k,
                          const char *path, const char *text,
                          const struct node *at, void *field)
{
        char q[QUOTE_MAX], lo[32], hi[32];
        uint64_t ms, n;

        switch (k->type) {
        case KEY_STRING:
                if (!text[0])
                        return fail(ld, at, "empty value for \"%s\"", path);
                return set_string(ld, field, text);
        case KEY_DSN: {
                char reason[256];

                if (!text[0])
                        return fail(ld, at, "empty value for \"%s\"", path);
                /* what libpq would refuse at the first connection, after
                 * --check said yes; never quoted: it may hold a password */
                if (dsn_check(text, reason, sizeof(reason)) < 0)
                        return fail(ld, at,
                                    "\"%s\" is not a connection string "
                                    "libpq can read: %s; write key=value "
                                    "pairs (a value with spaces in single "
                                    "quotes) or a postgresql:// URI",
                                    path, reason);
                return set_string(ld, field, text);
        }
        case KEY_TOPIC: {
                char msg[256];
                unsigned fields;

                if (!text[0])
                        return fail(ld, at, "empty value for \"%s\"", path);
                if (wc_topic_template_check(text, &fields, msg, sizeof(msg)) <
                    0)
                        return fail(ld, at, "%s", msg);
                return set_string(ld, field, text);
        }
        case KEY_ABS_PATH:
                if (!text[0])
                        return fail(ld, at, "empty value for \"%s\"", path);
                /* walcastd runs with / as its working directory under
                 * systemd, and dlopen() searches the library path for a
                 * name without "/": neither is what a relative path means */
                if (text[0] != '/')
                        return fail(ld, at,
                                    "relative path %s for \"%s\": use an "
                                    "absolute path",
                                    quote(q, text), path);
                return set_string(ld, field, text);
        case KEY_UINT32:
                if (uint_parse(text, k->max, &n) < 0 || n < k->min)
                        return fail(ld, at,
                                    "invalid %s %s: use a number from %llu "
                                    "to %llu",
                                    k->name, quote(q, text),
                                    (unsigned long long)k->min,
                                    (unsigned long long)k->max);
                *(uint32_t *)field = (uint32_t)n;
                return 0;
        case KEY_SLOT:
                if (!wc_slot_name_valid(text))
                        return fail(ld, at,
                                    "invalid slot name %s: use 1 to 63 "
                                    "characters of a-z, 0-9 and _",
                                    quote(q, text));
                return set_string(ld, field, text);
        case KEY_BOOL:
                /* only these two: "no" stays a string, not false */
                if (strcmp(text, "true") == 0)
                        *(bool *)field = true;
                else if (strcmp(text, "false") == 0)
                        *(bool *)field = false;
                else
                        return fail(ld, at,
                                    "invalid boolean %s: use true or false",
                                    quote(q, text));
                return 0;
        case KEY_DURATION:
                if (wc_duration_parse(text, &ms) < 0)
                        return fail(ld, at,
                                    "invalid duration %s: use a number with "
                                    "a unit: 500ms, 10s, 5m, 1h",
                                    quote(q, text));
                if (ms < k->min || ms > k->max)
                        return fail(ld, at,
                                    "%s %s is out of range: use %s to %s",
                                    k->name, quote(q, text),
                                    duration_format(lo, k->min),
                                    duration_format(hi, k->max));
                *(uint64_t *)field = ms;
                return 0;
        case KEY_SIZE:
                if (wc_size_parse(text, &n) < 0)
                        return fail(ld, at,
                                    "invalid size %s: use a number with a "
                                    "unit: 512kB, 64MB, 1GB",
                                    quote(q, text));
                if (n < k->min || n > k->max)
                        return fail(ld, at,
                                    "%s %s is out of range: use %llukB to "
                                    "%lluGB",
                                    k->name, quote(q, text),
                                    (unsigned long long)(k->min >> 10),
                                    (unsigned long long)(k->max >> 30));
                *(uint64_t *)field = n;
                return 0;
        case KEY_SLOT_LOST:
                if (strcmp(text, "fail") == 0 ||
                    strcmp(text, "recreate") == 0) {
                        *(enum wc_slot_lost *)field =
                            text[0] == 'f' ? WC_SLOT_LOST_FAIL
                                           : WC_SLOT_LOST_RECREATE;
                        return 0;
                }
                return fail(ld, at,
                            "invalid on_slot_lost %s: use fail or recreate",
                            quote(q, text));
        case KEY_KEYLESS:
                if (strcmp(text, "refuse") == 0 ||
                    strcmp(text, "whole") == 0) {
                        *(bool *)field = text[0] == 'w';
                        return 0;
                }
                return fail(ld, at,
                            "invalid snapshot.keyless %s: use refuse or whole",
                            quote(q, text));
        case KEY_LOG_LEVEL:
                for (size_t i = 0; i < ARRAY_SIZE(log_levels); i++) {
                        if (strcmp(text, log_levels[i].name) == 0) {
                                *(enum wc_log_level *)field =
                                    log_levels[i].level;
                                return 0;
                        }
                }
                return fail(ld, at,
                            "invalid log level %s: use err, warning, notice, "
                            "info or debug",
                            quote(q, text));
        case KEY_LOG_FORMAT:
                if (strcmp(text, "text") == 0 || strcmp(text, "json") == 0) {
                        *(enum wc_log_format *)field = text[0] == 'j'
                                                           ? WC_LOG_FORMAT_JSON
                                                           : WC_LOG_FORMAT_TEXT;
                        return 0;
                }
                return fail(ld, at, "invalid log format %s: use text or json",
                            quote(q, text));
        default:
                return fail(ld, at, "\"%s\" is not a scalar key", path);
        }
}

/* The expanded text of a scalar where a string is expected, or an error
 * naming path. */
static int scalar_text(struct loader *ld, const struct node *n,
                       const struct node *key, enum key_type type,
                       const char *path, const char **ret_text)
{
        if (n->kind == NODE_SCALAR && n->null)
                return fail(ld, key ? key : n, "missing value for \"%s\"",
                            path);
        if (n->kind != NODE_SCALAR)
                return fail_type(ld, n, type_noun(type), path);
        return expand(ld, n, path, ret_text);
}

/* ---- sections ---- */

static int walk_section(struct loader *ld, const struct key_desc *keys,
                        const char *path, const struct node *where,
                        const struct node *map, void *base);

/*
 * Patterns are pushed down to wal2json as they are (add-tables,
 * filter-tables), which fails at START_REPLICATION, after the slot was
 * created, on control characters: refused here, where the file says where.
 */
static int pattern_check(struct loader *ld, const struct node *item,
                         const char *path, const char *text)
{
        char q[QUOTE_MAX];

        for (const char *p = text; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch < 0x20 || ch == 0x7f)
                        return fail(ld, item,
                                    "control character \\x%02x in pattern %s "
                                    "in \"%s\": schema and table patterns "
                                    "cannot hold control characters; remove "
                                    "it",
                                    ch, quote(q, text), path);
        }
        return 0;
}

static int load_patterns(struct loader *ld, const char *path,
                         const struct node *seq, struct wc_pattern_list *l)
{
        char item_path[PATH_LEN];
        const char *text;
        int r;

        if (seq->kind == NODE_SCALAR && seq->null)
                return 0;
        if (seq->kind != NODE_SEQUENCE)
                return fail_type(ld, seq, "a sequence", path);
        if (seq->nkids == 0)
                return 0;
        l->items = calloc(seq->nkids, sizeof(*l->items));
        if (!l->items)
                return fail_oom(ld);
        for (size_t i = 0; i < seq->nkids; i++) {
                const struct node *item = seq->kids[i];

                path_format(item_path, "%s[%zu]", path, i);
                r = scalar_text(ld, item, NULL, KEY_STRING, item_path, &text);
                if (r < 0)
                        return r;
                if (!text[0])
                        return fail(ld, item, "empty pattern in \"%s\"", path);
                r = pattern_check(ld, item, path, text);
                if (r < 0)
                        return r;
                l->items[i] = strdup(text);
                if (!l->items[i])
                        return fail_oom(ld);
                l->count++;
        }
        return 0;
}

static int load_ops(struct loader *ld, const char *path, const struct node *key,
                    const struct node *seq, unsigned *ret_ops)
{
        char item_path[PATH_LEN], q[QUOTE_MAX];
        unsigned ops = 0;
        const char *text;
        enum wc_op op;
        int r;

        if (seq->kind == NODE_SEQUENCE && seq->nkids == 0)
                return fail(ld, key,
                            "\"%s\" is empty: list one or more of insert, "
                            "update, delete, truncate and message",
                            path);
        if (seq->kind == NODE_SCALAR && seq->null)
                return fail(ld, key, "missing value for \"%s\"", path);
        if (seq->kind != NODE_SEQUENCE)
                return fail_type(ld, seq, "a sequence", path);
        for (size_t i = 0; i < seq->nkids; i++) {
                const struct node *item = seq->kids[i];

                path_format(item_path, "%s[%zu]", path, i);
                r = scalar_text(ld, item, NULL, KEY_STRING, item_path, &text);
                if (r < 0)
                        return r;
                /* begin and commit are not row operations one can filter */
                if (wc_op_parse(text, &op) < 0 ||
                    !(WC_OP_BIT(op) & WC_OPS_DATA))
                        return fail(ld, item,
                                    "invalid op %s: use insert, update, "
                                    "delete, truncate or message",
                                    quote(q, text));
                if (ops & WC_OP_BIT(op))
                        return fail(ld, item, "duplicate op %s in \"%s\"",
                                    quote(q, text), path);
                ops |= WC_OP_BIT(op);
        }
        *ret_ops = ops;
        return 0;
}

/* ---- a plugin's config block ---- */

struct name_ref {
        const char *name;
        size_t index; /* in document order */
};

static int name_ref_cmp(const void *a, const void *b)
{
        const struct name_ref *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Sorts refs and finds the earliest (in document order) name that repeats
 * one before it, so that the message points where a reader expects it.
 * Sorting keeps a mapping with many keys from costing n^2 compares.
 */
static bool find_duplicate(struct name_ref *refs, size_t n, size_t *ret_index)
{
        size_t best = SIZE_MAX;

        if (n < 2)
                return false;
        qsort(refs, n, sizeof(*refs), name_ref_cmp);
        for (size_t i = 1; i < n; i++)
                if (refs[i].index < best &&
                    strcmp(refs[i - 1].name, refs[i].name) == 0)
                        best = refs[i].index;
        if (best == SIZE_MAX)
                return false;
        *ret_index = best;
        return true;
}

struct kv_reader {
        struct loader *ld;
        const char *path;         /* of the whole block, for its limits */
        struct wc_kv *kv;         /* the pairs so far, in document order */
        const struct node **from; /* where each pair was written */
        size_t n, cap;
        struct wc_buf key; /* flattened key of the node being read */
};

static int kv_read(struct kv_reader *x, const struct node *at,
                   const struct node *n, const char *path);

/* Adds the pair for scalar n under the current key; at is its position. */
static int kv_add(struct kv_reader *x, const struct node *at,
                  const struct node *n, const char *path)
{
        const char *text = "";
        struct wc_kv *kv;
        int r;

        if (x->n == KV_MAX)
                return fail(x->ld, at, "more than %d values in \"%s\"", KV_MAX,
                            x->path);
        /* the plugin sees no YAML types: a null is just no text */
        if (!n->null) {
                r = expand(x->ld, n, path, &text);
                if (r < 0)
                        return r;
        }
        if (x->n == x->cap) {
                size_t cap = x->cap ? x->cap * 2 : 8;
                const struct node **from;

                kv = reallocarray(x->kv, cap, sizeof(*kv));
                if (!kv)
                        return fail_oom(x->ld);
                x->kv = kv;
                from = reallocarray(x->from, cap, sizeof(*from));
                if (!from)
                        return fail_oom(x->ld);
                x->from = from;
                x->cap = cap;
        }
        kv = &x->kv[x->n];
        kv->key = strndup(x->key.data, x->key.len);
        kv->value = strdup(text);
        if (!kv->key || !kv->value) {
                free(kv->key);
                free(kv->value);
                return fail_oom(x->ld);
        }
        x->from[x->n++] = at;
        return 0;
}

static int kv_read_mapping(struct kv_reader *x, const struct node *map,
                           const char *path)
{
        size_t nkeys = map->nkids / 2, prefix = x->key.len, dup;
        char q[QUOTE_MAX], in[WHERE_LEN], key_path[PATH_LEN];
        struct name_ref *refs;
        int r;

        for (size_t i = 0; i < nkeys; i++) {
                const struct node *key = map->kids[2 * i];

                if (key->kind != NODE_SCALAR)
                        return fail(x->ld, key,
                                    "expected a string key %s, found %s",
                                    where_in(in, path), kind_name(key));
                /* "a..b" or a trailing "." could not be told apart */
                if (key->null || !key->text[0])
                        return fail(x->ld, key, "empty key %s",
                                    where_in(in, path));
        }
        refs = calloc(nkeys ? nkeys : 1, sizeof(*refs));
        if (!refs)
                return fail_oom(x->ld);
        for (size_t i = 0; i < nkeys; i++)
                refs[i] = (struct name_ref){map->kids[2 * i]->text, i};
        if (find_duplicate(refs, nkeys, &dup)) {
                const struct node *key = map->kids[2 * dup];

                free(refs);
                return fail(x->ld, key, "duplicate key %s %s",
                            quote(q, key->text), where_in(in, path));
        }
        free(refs);

        for (size_t i = 0; i < nkeys; i++) {
                const struct node *key = map->kids[2 * i];

                /* keys are never expanded, as everywhere else */
                if ((prefix > 0 && wc_buf_append_char(&x->key, '.') < 0) ||
                    wc_buf_append_str(&x->key, key->text) < 0)
                        return fail_oom(x->ld);
                if (x->key.len > KV_KEY_MAX)
                        return fail(x->ld, key,
                                    "key %s %s is longer than %d bytes with "
                                    "the keys above it",
                                    quote(q, key->text), where_in(in, path),
                                    KV_KEY_MAX);
                path_key(key_path, path, key->text);
                r = kv_read(x, key, map->kids[2 * i + 1], key_path);
                if (r < 0)
                        return r;
                x->key.len = prefix;
        }
        return 0;
}

/* at is where n's pair is reported: the key above a mapping value, or the
 * item itself in a sequence. */
static int kv_read(struct kv_reader *x, const struct node *at,
                   const struct node *n, const char *path)
{
        size_t prefix = x->key.len;
        char item_path[PATH_LEN];
        int r;

        switch (n->kind) {
        case NODE_SCALAR:
                return kv_add(x, at, n, path);
        case NODE_MAPPING:
                return kv_read_mapping(x, n, path);
        case NODE_SEQUENCE:
                break;
        }
        for (size_t i = 0; i < n->nkids; i++) {
                if (wc_buf_printf(&x->key, ".%zu", i) < 0)
                        return fail_oom(x->ld);
                path_format(item_path, "%s[%zu]", path, i);
                r = kv_read(x, n->kids[i], n->kids[i], item_path);
                if (r < 0)
                        return r;
                x->key.len = prefix;
        }
        return 0;
}

/*
 * Flattens a plugin's free-form config mapping into key/value pairs.  Only
 * the plugin knows its keys, so none is unknown here; but two pairs with
 * one flattened key ("a.b: 1" next to "a: {b: 2}") are refused, since the
 * plugin could only ever see one of them.
 */
static int load_kv(struct loader *ld, const struct key_desc *k,
                   const char *path, const struct node *map, void *base)
{
        struct kv_reader x = {.ld = ld, .path = path};
        struct name_ref *refs = NULL;
        char q[QUOTE_MAX];
        size_t dup;
        int r;

        if (map->kind == NODE_SCALAR && map->null)
                return 0;
        if (map->kind != NODE_MAPPING)
                return fail_type(ld, map, "a mapping", path);
        wc_buf_init(&x.key);
        r = kv_read_mapping(&x, map, path);
        if (r < 0)
                goto err_free_pairs;

        refs = calloc(x.n ? x.n : 1, sizeof(*refs));
        if (!refs) {
                r = fail_oom(ld);
                goto err_free_pairs;
        }
        for (size_t i = 0; i < x.n; i++)
                refs[i] = (struct name_ref){x.kv[i].key, i};
        if (find_duplicate(refs, x.n, &dup)) {
                r = fail(ld, x.from[dup],
                         "duplicate key %s in \"%s\" once flattened: a \".\" "
                         "in a key reads as nesting",
                         quote(q, x.kv[dup].key), path);
                goto err_free_refs;
        }
        free(refs);
        free(x.from);
        wc_buf_free(&x.key);
        /* takes ownership of the pairs */
        *(struct wc_kv **)((char *)base + k->offset) = x.kv;
        *(size_t *)((char *)base + k->count_offset) = x.n;
        return 0;

err_free_refs:
        free(refs);
err_free_pairs:
        wc_kv_free(x.kv, x.n);
        free(x.from);
        wc_buf_free(&x.key);
        return r;
}

static int apply_defaults(struct loader *ld, const struct key_desc *keys,
                          void *base)
{
        int r;

        for (const struct key_desc *k = keys; k->name; k++) {
                void *field = (char *)base + k->offset;

                if (k->type == KEY_SECTION) {
                        r = apply_defaults(ld, k->section, base);
                } else if (k->type == KEY_OPS) {
                        *(unsigned *)field = WC_OPS_DATA;
                        r = 0;
                } else if (k->def) {
                        r = convert_scalar(ld, k, k->name, k->def, NULL, field);
                } else {
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static int load_sink(struct loader *ld, const char *path,
                     const struct node *item, struct wc_sink_config *sink)
{
        const struct sink_type_desc *t = NULL;
        const struct node *key, *val;
        char q[QUOTE_MAX], types[128] = "", type_path[PATH_LEN];
        void *base;
        int r;

        if (item->kind != NODE_MAPPING)
                return fail_type(ld, item, "a mapping", path);
        if (item->nkids != 2)
                return fail(ld, item,
                            "expected exactly one key naming the sink type "
                            "in \"%s\", found %zu",
                            path, item->nkids / 2);
        key = item->kids[0];
        val = item->kids[1];
        if (key->kind != NODE_SCALAR)
                return fail(ld, key,
                            "expected a string key in \"%s\", found %s", path,
                            kind_name(key));
        for (size_t i = 0; i < ARRAY_SIZE(sink_types); i++)
                if (strcmp(key->text, sink_types[i].name) == 0)
                        t = &sink_types[i];
        if (!t) {
                for (size_t i = 0; i < ARRAY_SIZE(sink_types); i++) {
                        if (i > 0)
                                strncat(types, ", ",
                                        sizeof(types) - strlen(types) - 1);
                        strncat(types, sink_types[i].name,
                                sizeof(types) - strlen(types) - 1);
                }
                return fail(ld, key, "unknown sink type %s in \"%s\": use %s",
                            quote(q, key->text), path, types);
        }

        sink->kind = t->name;
        sink->line = item->line;
        sink->column = item->column;
        base = sink->conf = calloc(1, t->size);
        if (!base)
                return fail_oom(ld);
        path_format(type_path, "%s.%s", path, t->name);
        r = apply_defaults(ld, t->keys, base);
        if (r < 0)
                return r;
        r = walk_section(ld, t->keys, type_path, key, val, base);
        if (r < 0 || !t->check)
                return r;
        return t->check(ld, type_path, key, val, base);
}

/* The value node of key name in a mapping, or NULL. */
static const struct node *mapping_get(const struct node *map, const char *name)
{
        if (map->kind != NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i + 1 < map->nkids; i += 2)
                if (map->kids[i]->kind == NODE_SCALAR &&
                    strcmp(map->kids[i]->text, name) == 0)
                        return map->kids[i + 1];
        return NULL;
}

/*
 * The topic template and the prefix together: what they make must be able
 * to be a legal topic, and when no placeholder depends on a change, must
 * be one.  Errors point at the key that can fix them.
 */
static int kafka_check(struct loader *ld, const char *path,
                       const struct node *key, const struct node *map,
                       void *base)
{
        const struct wc_kafka_sink_config *k = base;
        const struct node *topic = mapping_get(map, "topic");
        const struct node *prefix = mapping_get(map, "prefix");
        char msg[256], in[WHERE_LEN];
        unsigned fields = 0;
        bool brokers = false;

        for (size_t i = 0; i < k->nproperties; i++)
                if (strcmp(k->properties[i].key, "bootstrap.servers") == 0 ||
                    strcmp(k->properties[i].key, "metadata.broker.list") == 0)
                        brokers = k->properties[i].value[0] != '\0';
        /* librdkafka would start and wait for brokers forever */
        if (!brokers)
                return fail(ld, key,
                            "missing \"properties.bootstrap.servers\" %s: "
                            "name at least one broker, as "
                            "\"host:port[,host:port...]\"",
                            where_in(in, path));
        /* the template's syntax was checked when it was read */
        if (wc_topic_template_check(k->topic, &fields, msg, sizeof(msg)) < 0)
                return fail(ld, topic ? topic : key, "%s", msg);
        if ((fields & WC_TOPIC_BIT(WC_TOPIC_PREFIX)) &&
            wc_topic_prefix_check(k->prefix, msg, sizeof(msg)) < 0)
                return fail(ld, prefix ? prefix : key, "%s", msg);
        if (wc_topic_template_check_static(k->topic, k->prefix, msg,
                                           sizeof(msg)) < 0)
                return fail(ld, topic ? topic : key, "%s", msg);
        return 0;
}

/* The name a sink has without `name:`. */
static const struct sink_type_desc *sink_type(const struct wc_sink_config *s)
{
        for (size_t i = 0; i < ARRAY_SIZE(sink_types); i++)
                if (s->kind == sink_types[i].name)
                        return &sink_types[i];
        return NULL;
}

static char *file_default_name(const void *conf)
{
        const struct wc_file_sink_config *f = conf;
        char *n;

        return asprintf(&n, "file:%s", f->path) < 0 ? NULL : n;
}

static char *plugin_default_name(const void *conf)
{
        const struct wc_plugin_sink_config *p = conf;

        return strdup(p->path);
}

static char *kafka_default_name(const void *conf)
{
        (void)conf;
        return strdup("kafka");
}

/* The `name:` a sink was given, or NULL. */
static const char *given_name(const struct wc_sink_config *s)
{
        return s->conf ? *(char *const *)s->conf : NULL;
}

static int default_sink_name(const struct wc_sink_config *s, size_t i,
                             bool numbered, char **ret)
{
        int n = 0;

        if (numbered)
                n = asprintf(ret, "%s#%zu", s->kind, i + 1);
        else
                *ret = sink_type(s)->default_name(s->conf);
        return n < 0 || !*ret ? -ENOMEM : 0;
}

static bool name_taken(const struct wc_config *c, size_t upto, const char *name,
                       size_t *ret_at)
{
        for (size_t j = 0; j < upto; j++)
                if (c->sinks[j].name && strcmp(c->sinks[j].name, name) == 0) {
                        *ret_at = j;
                        return true;
                }
        return false;
}

/*
 * Gives every sink its name: its `name:` (unique, printable), else its
 * default, numbered when two defaults (or a default and a `name:`) would
 * be the same, so that two sinks of one kind are two metric series.
 */
static int name_sinks(struct loader *ld, const char *path,
                      const struct node *seq, struct wc_config *c)
{
        char q[QUOTE_MAX];
        size_t at;

        for (size_t i = 0; i < c->nsinks; i++) {
                const char *given = given_name(&c->sinks[i]);
                const struct node *n;

                if (!given)
                        continue;
                n = mapping_get(seq->kids[i]->kids[1], "name");
                for (const char *p = given; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                return fail(ld, n,
                                            "the name of %s[%zu] has a "
                                            "control character: use "
                                            "printable text",
                                            path, i);
                if (strlen(given) >= 100)
                        return fail(ld, n,
                                    "the name of %s[%zu] is longer than 99 "
                                    "bytes",
                                    path, i);
                if (name_taken(c, c->nsinks, given, &at))
                        return fail(ld, n,
                                    "sinks %zu and %zu are both named %s: "
                                    "give each sink a name of its own",
                                    at + 1, i + 1, quote(q, given));
                c->sinks[i].name = strdup(given);
                if (!c->sinks[i].name)
                        return fail_oom(ld);
        }
        for (size_t i = 0; i < c->nsinks; i++) {
                struct wc_sink_config *s = &c->sinks[i];
                bool clash = false;
                char *mine;

                if (s->name)
                        continue;
                if (default_sink_name(s, i, false, &mine) < 0)
                        return fail_oom(ld);
                clash = name_taken(c, c->nsinks, mine, &at);
                for (size_t j = 0; j < c->nsinks && !clash; j++) {
                        char *other;

                        if (j == i || given_name(&c->sinks[j]))
                                continue;
                        if (default_sink_name(&c->sinks[j], j, false, &other) <
                            0) {
                                free(mine);
                                return fail_oom(ld);
                        }
                        clash = strcmp(mine, other) == 0;
                        free(other);
                }
                if (clash) {
                        free(mine);
                        if (default_sink_name(s, i, true, &mine) < 0)
                                return fail_oom(ld);
                        if (name_taken(c, c->nsinks, mine, &at)) {
                                free(mine);
                                return fail(ld, seq->kids[i],
                                            "%s[%zu] has no name of its own "
                                            "(its default is taken): give it "
                                            "one with name:",
                                            path, i);
                        }
                }
                s->name = mine;
        }
        /* a path that reads like a numbered default ("kafka#2") */
        for (size_t i = 1; i < c->nsinks; i++)
                if (name_taken(c, i, c->sinks[i].name, &at))
                        return fail(ld, seq->kids[i],
                                    "sinks %zu and %zu are both called %s: "
                                    "give one a name with name:",
                                    at + 1, i + 1, quote(q, c->sinks[i].name));
        return 0;
}

static int load_sinks(struct loader *ld, const char *path,
                      const struct node *key, const struct node *seq,
                      struct wc_config *c)
{
        char item_path[PATH_LEN];
        int r;

        if ((seq->kind == NODE_SCALAR && seq->null) ||
            (seq->kind == NODE_SEQUENCE && seq->nkids == 0))
                return fail(ld, key, "\"%s\" is empty: list at least one sink",
                            path);
        if (seq->kind != NODE_SEQUENCE)
                return fail_type(ld, seq, "a sequence", path);
        c->sinks = calloc(seq->nkids, sizeof(*c->sinks));
        if (!c->sinks)
                return fail_oom(ld);
        /* zeroed entries free as nothing, so the count can be set now */
        c->nsinks = seq->nkids;
        for (size_t i = 0; i < seq->nkids; i++) {
                path_format(item_path, "%s[%zu]", path, i);
                r = load_sink(ld, item_path, seq->kids[i], &c->sinks[i]);
                if (r < 0)
                        return r;
        }
        return name_sinks(ld, path, seq, c);
}

static int load_key(struct loader *ld, const struct key_desc *k,
                    const char *path, const struct node *key,
                    const struct node *val, void *base)
{
        void *field = (char *)base + k->offset;
        const char *text;
        int r;

        switch (k->type) {
        case KEY_SECTION:
                return walk_section(ld, k->section, path, key, val, base);
        case KEY_SINKS:
                return load_sinks(ld, path, key, val, base);
        case KEY_PATTERNS:
                return load_patterns(ld, path, val, field);
        case KEY_OPS:
                return load_ops(ld, path, key, val, field);
        case KEY_KV:
                return load_kv(ld, k, path, val, base);
        default:
                r = scalar_text(ld, val, key, k->type, path, &text);
                if (r < 0)
                        return r;
                return convert_scalar(ld, k, path, text, val, field);
        }
}

/*
 * Reads the mapping map into base following keys.  where is the node a
 * missing key is reported at: the key that opened the section, or the root.
 * An empty value stands for an empty mapping, so that "log:" with every
 * line under it commented out means the defaults.
 */
static int walk_section(struct loader *ld, const struct key_desc *keys,
                        const char *path, const struct node *where,
                        const struct node *map, void *base)
{
        char q[QUOTE_MAX], in[WHERE_LEN], key_path[PATH_LEN];
        uint32_t seen = 0;
        int r;

        if (!(map->kind == NODE_MAPPING ||
              (map->kind == NODE_SCALAR && map->null)))
                return fail_type(ld, map, "a mapping", path);

        for (size_t i = 0; i + 1 < map->nkids; i += 2) {
                const struct node *key = map->kids[i], *val = map->kids[i + 1];
                const struct key_desc *k;
                uint32_t bit;

                if (key->kind != NODE_SCALAR)
                        return fail(ld, key,
                                    "expected a string key %s, found %s",
                                    where_in(in, path), kind_name(key));
                for (k = keys; k->name; k++)
                        if (strcmp(k->name, key->text) == 0)
                                break;
                if (!k->name)
                        return fail(ld, key, "unknown key %s %s",
                                    quote(q, key->text), where_in(in, path));
                bit = 1u << (k - keys);
                if (seen & bit)
                        return fail(ld, key, "duplicate key %s %s",
                                    quote(q, key->text), where_in(in, path));
                seen |= bit;

                if (path[0])
                        path_format(key_path, "%s.%s", path, k->name);
                else
                        path_format(key_path, "%s", k->name);
                r = load_key(ld, k, key_path, key, val, base);
                if (r < 0)
                        return r;
        }

        for (const struct key_desc *k = keys; k->name; k++)
                if (k->required && !(seen & (1u << (k - keys))))
                        return fail(ld, where, "missing required key \"%s\" %s",
                                    k->name, where_in(in, path));
        return 0;
}

/* ---- public ---- */

struct wc_config *wc_config_load_string(const char *name, const char *text,
                                        size_t len, char *errbuf, size_t errlen)
{
        struct loader ld = {
            .name = name ? name : "<config>",
            .errbuf = errbuf,
            .errlen = errlen,
        };
        struct node *root = NULL;
        struct wc_config *c = NULL;

        wc_buf_init(&ld.scratch);
        if (tree_build(&ld, text ? text : "", text ? len : 0, &root) < 0)
                goto err_free_scratch;
        if (!root || (root->kind == NODE_SCALAR && root->null)) {
                fail(&ld, NULL, "the configuration is empty");
                goto err_free_tree;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                fail_oom(&ld);
                goto err_free_tree;
        }
        c->path = strdup(ld.name);
        if (!c->path) {
                fail_oom(&ld);
                goto err_free_config;
        }
        if (apply_defaults(&ld, root_keys, c) < 0)
                goto err_free_config;
        if (walk_section(&ld, root_keys, "", root, root, c) < 0)
                goto err_free_config;

        node_free(root);
        wc_buf_free(&ld.scratch);
        return c;

err_free_config:
        wc_config_free(c);
err_free_tree:
        node_free(root);
err_free_scratch:
        wc_buf_free(&ld.scratch);
        return NULL;
}

static const char *file_kind(mode_t mode)
{
        if (S_ISDIR(mode))
                return "a directory";
        if (S_ISFIFO(mode))
                return "a FIFO (named pipe)";
        if (S_ISCHR(mode))
                return "a character device";
        if (S_ISBLK(mode))
                return "a block device";
        if (S_ISSOCK(mode))
                return "a socket";
        return "not a regular file";
}

/*
 * Opens the configuration for reading, refusing anything but a regular
 * file without blocking: reading a FIFO or a device (a mistyped path,
 * /dev/stdin) waits for a writer forever, at --check and at a reload
 * alike.  stat() keeps a device from being opened at all; O_NONBLOCK and
 * fstat() cover a path swapped in between.
 */
static int open_regular(struct loader *ld, const char *path)
{
        struct stat st;
        char msg[256];
        int fd;

        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
                goto err_kind;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                fail(ld, NULL, "could not open: %s",
                     strerror_r(errno, msg, sizeof(msg)));
                return -1;
        }
        if (fstat(fd, &st) < 0) {
                fail(ld, NULL, "could not stat: %s",
                     strerror_r(errno, msg, sizeof(msg)));
                close(fd);
                return -1;
        }
        if (S_ISREG(st.st_mode))
                return fd;
        close(fd);
err_kind:
        fail(ld, NULL,
             "the configuration is %s, not a regular file: give -c the path "
             "of a YAML file",
             file_kind(st.st_mode));
        return -1;
}

struct wc_config *wc_config_load(const char *path, char *errbuf, size_t errlen)
{
        struct loader ld = {.name = path, .errbuf = errbuf, .errlen = errlen};
        struct wc_config *c = NULL;
        struct wc_buf text;
        char msg[256];
        int fd;

        wc_buf_init(&text);
        fd = open_regular(&ld, path);
        if (fd < 0)
                return NULL;
        /* read until EOF rather than trusting st_size: the file may grow
         * while it is read */
        for (;;) {
                ssize_t n;

                if (wc_buf_reserve(&text, 65536) < 0) {
                        fail_oom(&ld);
                        goto err_free_text;
                }
                n = read(fd, text.data + text.len, text.cap - text.len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        fail(&ld, NULL, "could not read: %s",
                             strerror_r(errno, msg, sizeof(msg)));
                        goto err_free_text;
                }
                if (n == 0)
                        break;
                text.len += (size_t)n;
                if (text.len > MAX_FILE_SIZE) {
                        fail(&ld, NULL,
                             "the configuration is larger than %u "
                             "MiB",
                             MAX_FILE_SIZE >> 20);
                        goto err_free_text;
                }
        }
        c = wc_config_load_string(path, text.data, text.len, errbuf, errlen);

err_free_text:
        wc_buf_free(&text);
        close(fd);
        return c;
}

static void file_free(void *conf)
{
        struct wc_file_sink_config *f = conf;

        free(f->path);
}

static void plugin_free(void *conf)
{
        struct wc_plugin_sink_config *p = conf;

        free(p->path);
        wc_pattern_list_free(&p->schemas);
        wc_kv_free(p->config, p->nconfig);
}

static void kafka_free(void *conf)
{
        struct wc_kafka_sink_config *k = conf;

        free(k->topic);
        free(k->prefix);
        wc_kv_free(k->properties, k->nproperties);
        wc_filter_config_free(&k->filter);
}

static void sink_free(struct wc_sink_config *s)
{
        free(s->name);
        if (!s->conf)
                return;
        free(*(char **)s->conf); /* `name:`, first in every kind's struct */
        sink_type(s)->free(s->conf);
        free(s->conf);
}

void wc_config_free(struct wc_config *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->source.dsn);
        free(c->source.slot);
        free(c->metrics.listen);
        free(c->state_dir);
        free(c->heartbeat.action_query);
        free(c->heartbeat.prefix);
        wc_filter_config_free(&c->filter);
        for (size_t i = 0; i < c->nsinks; i++)
                sink_free(&c->sinks[i]);
        free(c->sinks);
        free(c);
}

/* The leading decimal number of s ("10" of "10s"); *ret_unit is what
 * follows.  0 or -EINVAL (no digits, or too large for 64 bits). */
static int leading_number(const char *s, uint64_t *ret_n, const char **ret_unit)
{
        uint64_t n = 0;
        const char *p;

        if (!s || !(*s >= '0' && *s <= '9'))
                return -EINVAL;
        for (p = s; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned)(*p - '0');

                if (n > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                n = n * 10 + d;
        }
        *ret_n = n;
        *ret_unit = p;
        return 0;
}

int wc_duration_parse(const char *s, uint64_t *ret_ms)
{
        static const struct {
                const char *unit;
                uint64_t ms;
        } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
        uint64_t n;
        const char *p;

        if (leading_number(s, &n, &p) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(p, units[i].unit) == 0) {
                        if (n > UINT64_MAX / units[i].ms)
                                return -EINVAL;
                        *ret_ms = n * units[i].ms;
                        return 0;
                }
        }
        return -EINVAL;
}

int wc_size_parse(const char *s, uint64_t *ret_bytes)
{
        static const struct {
                const char *unit;
                unsigned shift;
        } units[] = {{"B", 0}, {"kB", 10}, {"MB", 20}, {"GB", 30}, {"TB", 40}};
        uint64_t n;
        const char *p;

        if (leading_number(s, &n, &p) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(p, units[i].unit) == 0) {
                        if (n > UINT64_MAX >> units[i].shift)
                                return -EINVAL;
                        *ret_bytes = n << units[i].shift;
                        return 0;
                }
        }
        return -EINVAL;
}

bool wc_slot_name_valid(const char *s)
{
        size_t len;

        if (!s)
                return false;
        len = strlen(s);
        if (len < 1 || len > 63)
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                      ch == '_'))
                        return false;
        }
        return true;
}
