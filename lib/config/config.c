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
#include "core/settings.h"
#include "sinks/registry.h"
#include "config/config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Deeper than anything the schema has; bounds the recursion of the tree
 * code whatever the input. */
#define MAX_DEPTH 64
/* A configuration is a few kilobytes; this only stops a wrong path (a log,
 * a device) from being read into memory. */
#define MAX_FILE_SIZE (16u << 20)

static int convert_dsn(struct wc_settings *st, const struct wc_key *k,
                       const char *path, const char *text,
                       const struct wc_node *at, void *field);
static int convert_slot(struct wc_settings *st, const struct wc_key *k,
                        const char *path, const char *text,
                        const struct wc_node *at, void *field);
static int load_sinks(struct wc_settings *st, const char *path,
                      const struct wc_node *key, const struct wc_node *seq,
                      void *base);

static const struct wc_key_value slot_lost_values[] = {
    {"fail", WC_SLOT_LOST_FAIL},
    {"recreate", WC_SLOT_LOST_RECREATE},
    {NULL, 0},
};

static const struct wc_key_value decoder_values[] = {
    {"wal2json", WC_DECODER_WAL2JSON},
    {"pgoutput", WC_DECODER_PGOUTPUT},
    {NULL, 0},
};

static const struct wc_key_value keyless_values[] = {
    {"refuse", 0},
    {"whole", 1},
    {NULL, 0},
};

static const struct wc_key_value log_level_values[] = {
    {"err", WC_LOG_ERR},       {"warning", WC_LOG_WARNING},
    {"notice", WC_LOG_NOTICE}, {"info", WC_LOG_INFO},
    {"debug", WC_LOG_DEBUG},   {NULL, 0},
};

static const struct wc_key_value log_format_values[] = {
    {"text", WC_LOG_FORMAT_TEXT},
    {"json", WC_LOG_FORMAT_JSON},
    {NULL, 0},
};

/* WC_KEY_ENUM writes an int */
_Static_assert(sizeof(enum wc_slot_lost) == sizeof(int) &&
                   sizeof(enum wc_log_level) == sizeof(int) &&
                   sizeof(enum wc_log_format) == sizeof(int),
               "enums are ints");

/*
 * The schema.  Offsets are into struct wc_config.  A sink's block is its
 * kind's: each kind declares and reads its own keys (sinks/registry.h).
 */

static const struct wc_key source_keys[] = {
    {WC_KEY(WC_KEY_SCALAR, "dsn", NULL, offsetof(struct wc_config, source.dsn),
            "libpq connection string of the database to read"),
     .required = true, .convert = convert_dsn},
    {WC_KEY(WC_KEY_SCALAR, "slot", NULL,
            offsetof(struct wc_config, source.slot),
            "logical replication slot"),
     .required = true, .convert = convert_slot},
    {WC_KEY(WC_KEY_BOOL, "create_slot", "true",
            offsetof(struct wc_config, source.create_slot),
            "create the slot when it does not exist")},
    {WC_KEY(WC_KEY_DURATION, "status_interval", "10s",
            offsetof(struct wc_config, source.status_interval_ms),
            "interval between standby status updates to the server"),
     .min = 100, .max = 3600 * 1000},
    {WC_KEY(WC_KEY_ENUM, "on_slot_lost", "fail",
            offsetof(struct wc_config, source.on_slot_lost),
            "fail (exit 69) or recreate when the slot walcast confirmed "
            "positions on is gone, was recreated, or the server changed"),
     .noun = "on_slot_lost", .values = slot_lost_values},
    {WC_KEY(WC_KEY_ENUM, "decoder", "wal2json",
            offsetof(struct wc_config, source.decoder),
            "the output plugin and its decoder: wal2json or pgoutput"),
     .noun = "decoder", .values = decoder_values},
    {WC_KEY(WC_KEY_STRING, "publication", NULL,
            offsetof(struct wc_config, source.publication),
            "pgoutput: the publication to read; default: the slot's name")},
    {WC_KEY(WC_KEY_BOOL, "create_publication", "true",
            offsetof(struct wc_config, source.create_publication),
            "pgoutput: create the publication when it does not exist")},
    {.name = NULL},
};

static const struct wc_key heartbeat_keys[] = {
    {WC_KEY(WC_KEY_DURATION, "interval", NULL,
            offsetof(struct wc_config, heartbeat.interval_ms),
            "how often to run the heartbeat action; unset: no heartbeat"),
     .min = 1000, .max = 24 * 3600 * 1000},
    {WC_KEY(WC_KEY_STRING, "action_query", NULL,
            offsetof(struct wc_config, heartbeat.action_query),
            "SQL run on an ordinary connection at each heartbeat; default: "
            "emit a logical message with the heartbeat prefix")},
    {WC_KEY(WC_KEY_STRING, "prefix", "walcast.heartbeat",
            offsetof(struct wc_config, heartbeat.prefix),
            "logical messages with this prefix are heartbeats")},
    {WC_KEY(WC_KEY_BOOL, "deliver", "false",
            offsetof(struct wc_config, heartbeat.deliver),
            "pass heartbeat messages to the sinks")},
    {.name = NULL},
};

static const struct wc_key snapshot_keys[] = {
    {WC_KEY(WC_KEY_BOOL, "initial", "false",
            offsetof(struct wc_config, snapshot.initial),
            "read every included table's rows when walcastd creates the "
            "slot")},
    {WC_KEY(WC_KEY_UINT32, "chunk_size", "10000",
            offsetof(struct wc_config, snapshot.chunk_size),
            "rows read between one pair of watermarks"),
     .min = 1, .max = 1000000},
    {WC_KEY(WC_KEY_UINT32, "workers", "1",
            offsetof(struct wc_config, snapshot.workers),
            "connections reading different tables at once"),
     .min = 1, .max = 16},
    {WC_KEY(WC_KEY_ENUM, "keyless", "refuse",
            offsetof(struct wc_config, snapshot.keyless_whole),
            "a table without a primary key: refuse it, or read it whole in "
            "one pass"),
     .noun = "snapshot.keyless", .values = keyless_values},
    {.name = NULL},
};

static const struct wc_key limits_keys[] = {
    {WC_KEY(WC_KEY_UINT32, "max_in_flight_changes", "100000",
            offsetof(struct wc_config, limits.max_in_flight_changes),
            "changes sent to the sinks and not yet acknowledged before reading "
            "pauses"),
     .min = 1, .max = 1000000000},
    {WC_KEY(WC_KEY_SIZE, "max_in_flight_bytes", "64MB",
            offsetof(struct wc_config, limits.max_in_flight_bytes),
            "bytes of the plugin's messages sent to the sinks and not yet "
            "acknowledged before reading pauses"),
     .min = 1024, .max = (uint64_t)1 << 40},
    {.name = NULL},
};

static const struct wc_key schemas_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "include", NULL,
            offsetof(struct wc_config, filter.schemas_include),
            "schemas to read; empty: every schema")},
    {WC_KEY(WC_KEY_PATTERNS, "exclude", NULL,
            offsetof(struct wc_config, filter.schemas_exclude),
            "schemas to skip even when included")},
    {.name = NULL},
};

static const struct wc_key tables_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "include", NULL,
            offsetof(struct wc_config, filter.tables_include),
            "tables to read; empty: every table")},
    {WC_KEY(WC_KEY_PATTERNS, "exclude", NULL,
            offsetof(struct wc_config, filter.tables_exclude),
            "tables to skip even when included")},
    {.name = NULL},
};

static const struct wc_key filter_keys[] = {
    {WC_KEY(WC_KEY_SECTION, "schemas", NULL, 0, "schema filter"),
     .section = schemas_keys},
    {WC_KEY(WC_KEY_SECTION, "tables", NULL, 0, "table filter"),
     .section = tables_keys},
    {WC_KEY(WC_KEY_OPS, "ops", NULL, offsetof(struct wc_config, filter.ops),
            "operations to pass on; default all five")},
    {.name = NULL},
};

static const struct wc_key signals_keys[] = {
    {WC_KEY(WC_KEY_UINT32, "bulk_delete_batch", "1000",
            offsetof(struct wc_config, signals.bulk_delete_batch),
            "max keys in one bulk_delete signal"),
     .min = 1, .max = 1000000},
    {.name = NULL},
};

static const struct wc_key log_keys[] = {
    {WC_KEY(WC_KEY_ENUM, "level", "info", offsetof(struct wc_config, log.level),
            "most verbose level logged"),
     .noun = "log level", .values = log_level_values},
    {WC_KEY(WC_KEY_ENUM, "format", "text",
            offsetof(struct wc_config, log.format),
            "text (sd-daemon <N> prefixes) or json (one object per line)"),
     .noun = "log format", .values = log_format_values},
    {.name = NULL},
};

static const struct wc_key metrics_keys[] = {
    {WC_KEY(WC_KEY_STRING, "listen", NULL,
            offsetof(struct wc_config, metrics.listen),
            "address of the Prometheus and health endpoint, e.g. "
            "127.0.0.1:9187; unset: off")},
    {.name = NULL},
};

static const struct wc_key root_keys[] = {
    {WC_KEY(WC_KEY_SECTION, "source", NULL, 0, "the database and its slot"),
     .required = true, .section = source_keys},
    {WC_KEY(WC_KEY_SECTION, "filter", NULL, 0, "what to pass on"),
     .section = filter_keys},
    {WC_KEY(WC_KEY_SECTION, "signals", NULL, 0, "how changes become signals"),
     .section = signals_keys},
    {WC_KEY(WC_KEY_SECTION, "heartbeat", NULL, 0,
            "keeping an idle slot moving"),
     .section = heartbeat_keys},
    {WC_KEY(WC_KEY_SECTION, "limits", NULL, 0, "bounds on what is in flight"),
     .section = limits_keys},
    {WC_KEY(WC_KEY_SECTION, "snapshot", NULL, 0,
            "the rows that exist before the stream (docs/snapshots.md)"),
     .section = snapshot_keys},
    {WC_KEY(WC_KEY_ABS_PATH, "state_dir", NULL,
            offsetof(struct wc_config, state_dir),
            "directory of the slot's state file; default $STATE_DIRECTORY")},
    {WC_KEY(WC_KEY_DURATION, "shutdown_timeout", "10s",
            offsetof(struct wc_config, shutdown_timeout_ms),
            "how long a stop waits for the sinks to acknowledge"),
     .max = 3600 * 1000},
    {WC_KEY(WC_KEY_CUSTOM, "sinks", NULL, 0, "where changes go"),
     .required = true, .load = load_sinks},
    {WC_KEY(WC_KEY_SECTION, "log", NULL, 0, "logging"), .section = log_keys},
    {WC_KEY(WC_KEY_SECTION, "metrics", NULL, 0, "metrics and health over HTTP"),
     .section = metrics_keys},
    {.name = NULL},
};

_Static_assert(ARRAY_SIZE(root_keys) <= 32, "too many keys for the seen mask");
_Static_assert(ARRAY_SIZE(source_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(filter_keys) <= 32, "too many keys");
_Static_assert(ARRAY_SIZE(signals_keys) <= 32, "too many keys");

/* ---- the tree ---- */

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

static int fail_yaml(struct wc_settings *st, const yaml_parser_t *p,
                     const char *text, size_t len)
{
        const char *problem = p->problem ? p->problem : "invalid YAML";
        unsigned line, column;

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return wc_settings_fail_oom(st);
        case YAML_READER_ERROR:
                offset_position(text, len, p->problem_offset, &line, &column);
                if (p->problem_value != -1)
                        return wc_settings_fail_at(st, line, column,
                                                   "%s (#x%x)", problem,
                                                   (unsigned)p->problem_value);
                return wc_settings_fail_at(st, line, column, "%s", problem);
        default:
                break;
        }
        line = (unsigned)p->problem_mark.line + 1;
        column = (unsigned)p->problem_mark.column + 1;
        if (p->context)
                return wc_settings_fail_at(
                    st, line, column, "%s (%s at %u:%u)", problem, p->context,
                    (unsigned)p->context_mark.line + 1,
                    (unsigned)p->context_mark.column + 1);
        return wc_settings_fail_at(st, line, column, "%s", problem);
}

/* Adds the node an event opens to the tree; *cur is the open collection. */
static int tree_add(struct wc_settings *st, const yaml_event_t *ev,
                    struct wc_node **root, struct wc_node **cur,
                    unsigned *depth)
{
        unsigned line = (unsigned)ev->start_mark.line + 1;
        unsigned column = (unsigned)ev->start_mark.column + 1;
        struct wc_node *n;

        if (ev->type != YAML_SCALAR_EVENT && *depth >= MAX_DEPTH)
                return wc_settings_fail_at(st, line, column,
                                           "nesting deeper than %d levels",
                                           MAX_DEPTH);
        if (ev->type == YAML_SCALAR_EVENT &&
            memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
                return wc_settings_fail_at(st, line, column,
                                           "a scalar contains a NUL character");

        n = calloc(1, sizeof(*n));
        if (!n)
                return wc_settings_fail_oom(st);
        n->line = line;
        n->column = column;
        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                n->kind = WC_NODE_SCALAR;
                n->text = strndup((const char *)ev->data.scalar.value,
                                  ev->data.scalar.length);
                if (!n->text)
                        goto err_free_node;
                n->null = scalar_is_null(ev);
                break;
        case YAML_MAPPING_START_EVENT:
                n->kind = WC_NODE_MAPPING;
                break;
        default:
                n->kind = WC_NODE_SEQUENCE;
                break;
        }

        if (!*cur)
                *root = n;
        else if (wc_node_append(*cur, n) < 0)
                goto err_free_node;
        if (n->kind != WC_NODE_SCALAR) {
                n->parent = *cur;
                *cur = n;
                (*depth)++;
        }
        return 0;

err_free_node:
        wc_node_free(n);
        return wc_settings_fail_oom(st);
}

/* Parses text into a tree; *ret_root is NULL for a stream without a
 * document. */
static int tree_build(struct wc_settings *st, const char *text, size_t len,
                      struct wc_node **ret_root)
{
        yaml_parser_t parser;
        yaml_event_t ev;
        struct wc_node *root = NULL, *cur = NULL;
        unsigned depth = 0, ndocs = 0;
        char q[WC_QUOTE_MAX], star[WC_QUOTE_MAX];
        bool done = false;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return wc_settings_fail_oom(st);
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

        while (!done) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        r = fail_yaml(st, &parser, text, len);
                        goto err_free_tree;
                }
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++ndocs > 1)
                                r = wc_settings_fail_at(
                                    st, (unsigned)ev.start_mark.line + 1,
                                    (unsigned)ev.start_mark.column + 1,
                                    "more than one document in the "
                                    "configuration");
                        break;
                case YAML_ALIAS_EVENT:
                        /* refusing aliases keeps every value where it is
                         * written, and rules out exponential expansion */
                        snprintf(star, sizeof(star), "*%s",
                                 (const char *)ev.data.alias.anchor);
                        r = wc_settings_fail_at(
                            st, (unsigned)ev.start_mark.line + 1,
                            (unsigned)ev.start_mark.column + 1,
                            "alias %s is not supported: write the "
                            "value out instead",
                            wc_quote(q, star));
                        break;
                case YAML_SCALAR_EVENT:
                case YAML_MAPPING_START_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                        r = tree_add(st, &ev, &root, &cur, &depth);
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
        wc_node_free(root);
        yaml_parser_delete(&parser);
        return r;
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

/* What libpq would refuse at the first connection, after --check said
 * yes; never quoted: it may hold a password. */
static int convert_dsn(struct wc_settings *st, const struct wc_key *k,
                       const char *path, const char *text,
                       const struct wc_node *at, void *field)
{
        char reason[256];

        (void)k;
        if (!text[0])
                return wc_settings_fail(st, at, "empty value for \"%s\"", path);
        if (dsn_check(text, reason, sizeof(reason)) < 0)
                return wc_settings_fail(st, at,
                                        "\"%s\" is not a connection string "
                                        "libpq can read: %s; write key=value "
                                        "pairs (a value with spaces in single "
                                        "quotes) or a postgresql:// URI",
                                        path, reason);
        return wc_settings_set_string(st, field, text);
}

static int convert_slot(struct wc_settings *st, const struct wc_key *k,
                        const char *path, const char *text,
                        const struct wc_node *at, void *field)
{
        char q[WC_QUOTE_MAX];

        (void)k;
        (void)path;
        if (!wc_slot_name_valid(text))
                return wc_settings_fail(st, at,
                                        "invalid slot name %s: use 1 to 63 "
                                        "characters of a-z, 0-9 and _",
                                        wc_quote(q, text));
        return wc_settings_set_string(st, field, text);
}

/* A sink: one key, its kind, whose block the kind reads itself. */
static int load_sink(struct wc_settings *st, const char *path,
                     const struct wc_node *item, struct wc_sink_config *sink)
{
        const struct wc_sink_kind *t;
        const struct wc_node *key, *val;
        char q[WC_QUOTE_MAX], types[128] = "", type_path[WC_PATH_LEN];

        if (item->kind != WC_NODE_MAPPING)
                return wc_settings_fail_type(st, item, "a mapping", path);
        if (item->nkids != 2)
                return wc_settings_fail(st, item,
                                        "expected exactly one key naming the "
                                        "sink type in \"%s\", found %zu",
                                        path, item->nkids / 2);
        key = item->kids[0];
        val = item->kids[1];
        if (key->kind != WC_NODE_SCALAR)
                return wc_settings_fail(st, key,
                                        "expected a string key in \"%s\", "
                                        "found %s",
                                        path, wc_node_kind_name(key));
        t = wc_sink_kind_find(key->text);
        if (!t) {
                for (size_t i = 0; wc_sink_kind_at(i); i++) {
                        if (i > 0)
                                strncat(types, ", ",
                                        sizeof(types) - strlen(types) - 1);
                        strncat(types, wc_sink_kind_at(i)->name,
                                sizeof(types) - strlen(types) - 1);
                }
                return wc_settings_fail(st, key,
                                        "unknown sink type %s in \"%s\": "
                                        "use %s",
                                        wc_quote(q, key->text), path, types);
        }

        sink->kind = t->name;
        sink->line = item->line;
        sink->column = item->column;
        wc_path_format(type_path, "%s.%s", path, t->name);
        return t->parse(st, type_path, key, val, &sink->conf);
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
                *ret = wc_sink_kind_find(s->kind)->default_name(s->conf);
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
static int name_sinks(struct wc_settings *st, const char *path,
                      const struct wc_node *seq, struct wc_config *c)
{
        char q[WC_QUOTE_MAX];
        size_t at;

        for (size_t i = 0; i < c->nsinks; i++) {
                const char *given = given_name(&c->sinks[i]);
                const struct wc_node *n;

                if (!given)
                        continue;
                n = wc_node_get(seq->kids[i]->kids[1], "name");
                for (const char *p = given; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                return wc_settings_fail(
                                    st, n,
                                    "the name of %s[%zu] has a "
                                    "control character: use "
                                    "printable text",
                                    path, i);
                if (strlen(given) >= 100)
                        return wc_settings_fail(
                            st, n,
                            "the name of %s[%zu] is longer than 99 "
                            "bytes",
                            path, i);
                if (name_taken(c, c->nsinks, given, &at))
                        return wc_settings_fail(
                            st, n,
                            "sinks %zu and %zu are both named %s: "
                            "give each sink a name of its own",
                            at + 1, i + 1, wc_quote(q, given));
                c->sinks[i].name = strdup(given);
                if (!c->sinks[i].name)
                        return wc_settings_fail_oom(st);
        }
        for (size_t i = 0; i < c->nsinks; i++) {
                struct wc_sink_config *s = &c->sinks[i];
                bool clash = false;
                char *mine;

                if (s->name)
                        continue;
                if (default_sink_name(s, i, false, &mine) < 0)
                        return wc_settings_fail_oom(st);
                clash = name_taken(c, c->nsinks, mine, &at);
                for (size_t j = 0; j < c->nsinks && !clash; j++) {
                        char *other;

                        if (j == i || given_name(&c->sinks[j]))
                                continue;
                        if (default_sink_name(&c->sinks[j], j, false, &other) <
                            0) {
                                free(mine);
                                return wc_settings_fail_oom(st);
                        }
                        clash = strcmp(mine, other) == 0;
                        free(other);
                }
                if (clash) {
                        free(mine);
                        if (default_sink_name(s, i, true, &mine) < 0)
                                return wc_settings_fail_oom(st);
                        if (name_taken(c, c->nsinks, mine, &at)) {
                                free(mine);
                                return wc_settings_fail(
                                    st, seq->kids[i],
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
                        return wc_settings_fail(
                            st, seq->kids[i],
                            "sinks %zu and %zu are both called %s: "
                            "give one a name with name:",
                            at + 1, i + 1, wc_quote(q, c->sinks[i].name));
        return 0;
}

static int load_sinks(struct wc_settings *st, const char *path,
                      const struct wc_node *key, const struct wc_node *seq,
                      void *base)
{
        struct wc_config *c = base;
        char item_path[WC_PATH_LEN];
        int r;

        if ((seq->kind == WC_NODE_SCALAR && seq->null) ||
            (seq->kind == WC_NODE_SEQUENCE && seq->nkids == 0))
                return wc_settings_fail(
                    st, key, "\"%s\" is empty: list at least one sink", path);
        if (seq->kind != WC_NODE_SEQUENCE)
                return wc_settings_fail_type(st, seq, "a sequence", path);
        c->sinks = calloc(seq->nkids, sizeof(*c->sinks));
        if (!c->sinks)
                return wc_settings_fail_oom(st);
        /* zeroed entries free as nothing, so the count can be set now */
        c->nsinks = seq->nkids;
        for (size_t i = 0; i < seq->nkids; i++) {
                wc_path_format(item_path, "%s[%zu]", path, i);
                r = load_sink(st, item_path, seq->kids[i], &c->sinks[i]);
                if (r < 0)
                        return r;
        }
        return name_sinks(st, path, seq, c);
}

/* ---- public ---- */

struct wc_config *wc_config_load_string(const char *name, const char *text,
                                        size_t len, char *errbuf, size_t errlen)
{
        struct wc_settings st = {
            .name = name ? name : "<config>",
            .errbuf = errbuf,
            .errlen = errlen,
        };
        struct wc_node *root = NULL;
        struct wc_config *c = NULL;

        wc_buf_init(&st.scratch);
        if (tree_build(&st, text ? text : "", text ? len : 0, &root) < 0)
                goto err_free_scratch;
        if (!root || (root->kind == WC_NODE_SCALAR && root->null)) {
                wc_settings_fail(&st, NULL, "the configuration is empty");
                goto err_free_tree;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                wc_settings_fail_oom(&st);
                goto err_free_tree;
        }
        c->path = strdup(st.name);
        if (!c->path) {
                wc_settings_fail_oom(&st);
                goto err_free_config;
        }
        if (wc_settings_defaults(&st, root_keys, c) < 0)
                goto err_free_config;
        if (wc_settings_walk(&st, root_keys, "", root, root, c) < 0)
                goto err_free_config;

        wc_node_free(root);
        wc_buf_free(&st.scratch);
        return c;

err_free_config:
        wc_config_free(c);
err_free_tree:
        wc_node_free(root);
err_free_scratch:
        wc_buf_free(&st.scratch);
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
static int open_regular(struct wc_settings *st, const char *path)
{
        struct stat sb;
        char msg[256];
        int fd;

        if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
                goto err_kind;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                wc_settings_fail(st, NULL, "could not open: %s",
                                 strerror_r(errno, msg, sizeof(msg)));
                return -1;
        }
        if (fstat(fd, &sb) < 0) {
                wc_settings_fail(st, NULL, "could not stat: %s",
                                 strerror_r(errno, msg, sizeof(msg)));
                close(fd);
                return -1;
        }
        if (S_ISREG(sb.st_mode))
                return fd;
        close(fd);
err_kind:
        wc_settings_fail(
            st, NULL,
            "the configuration is %s, not a regular file: give -c the path "
            "of a YAML file",
            file_kind(sb.st_mode));
        return -1;
}

struct wc_config *wc_config_load(const char *path, char *errbuf, size_t errlen)
{
        struct wc_settings st = {
            .name = path, .errbuf = errbuf, .errlen = errlen};
        struct wc_config *c = NULL;
        struct wc_buf text;
        char msg[256];
        int fd;

        wc_buf_init(&text);
        fd = open_regular(&st, path);
        if (fd < 0)
                return NULL;
        /* read until EOF rather than trusting st_size: the file may grow
         * while it is read */
        for (;;) {
                ssize_t n;

                if (wc_buf_reserve(&text, 65536) < 0) {
                        wc_settings_fail_oom(&st);
                        goto err_free_text;
                }
                n = read(fd, text.data + text.len, text.cap - text.len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        wc_settings_fail(&st, NULL, "could not read: %s",
                                         strerror_r(errno, msg, sizeof(msg)));
                        goto err_free_text;
                }
                if (n == 0)
                        break;
                text.len += (size_t)n;
                if (text.len > MAX_FILE_SIZE) {
                        wc_settings_fail(&st, NULL,
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

static void sink_free(struct wc_sink_config *s)
{
        free(s->name);
        if (!s->conf)
                return;
        wc_sink_kind_find(s->kind)->free(s->conf);
}

void wc_config_free(struct wc_config *c)
{
        if (!c)
                return;
        free(c->path);
        free(c->source.dsn);
        free(c->source.slot);
        free(c->source.publication);
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
