/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader: every accepted key and default, and every error
 * with its exact position and text.  Positions were worked out by hand from
 * the YAML below (1-based line and column), not copied from the output.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "config/config.h"
#include "sinks/file/conf.h"
#include "sinks/kafka/conf.h"
#include "sinks/plugin/conf.h"

/* A sink's own struct, as its kind reads it (sinks/KIND/conf.h). */
#define SINK_CONF(c, i, kind)                                                  \
        ((const struct wc_##kind##_sink_config *)(c)->sinks[i].conf)

/* A valid source section (lines 1-3) and sinks section (3 lines). */
#define SOURCE "source:\n  dsn: \"dbname=app\"\n  slot: walcast\n"
#define SINKS  "sinks:\n  - file:\n      path: out.jsonl\n"
/* A source and the opening of a plugin sink (lines 1-5); its keys follow
 * from line 6, at column 7. */
#define PLUGIN SOURCE "sinks:\n  - plugin:\n"

static char errbuf[512];

static struct wc_config *load(const char *text)
{
        errbuf[0] = '\0';
        return wc_config_load_string("walcast.yaml", text, strlen(text), errbuf,
                                     sizeof(errbuf));
}

/* A macro, so that a failure names the line of the case. */
#define assert_error(text, message)                                            \
        do {                                                                   \
                struct wc_config *c_ = load(text);                             \
                if (c_)                                                        \
                        wc_config_free(c_);                                    \
                assert_null(c_);                                               \
                assert_string_equal(errbuf, (message));                        \
        } while (0)

static char *data_path(const char *rel)
{
        const char *dir = getenv("WC_TEST_DATA");
        char *p;

        if (!dir)
                dir = "tests/data";
        assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
        return p;
}

static struct wc_config *load_data(const char *rel)
{
        char *p = data_path(rel);
        struct wc_config *c;

        errbuf[0] = '\0';
        c = wc_config_load(p, errbuf, sizeof(errbuf));
        free(p);
        return c;
}

/* The file name in messages is the path as given; keep only its last part
 * so that expectations do not depend on where the tree is. */
static const char *basename_error(void)
{
        const char *slash = strrchr(errbuf, '/');
        const char *colon = strchr(errbuf, ':');

        if (slash && (!colon || slash < colon))
                return slash + 1;
        return errbuf;
}

/* ---- wc_duration_parse ---- */

static void test_duration_parse(void **state)
{
        static const struct {
                const char *s;
                uint64_t ms;
        } good[] = {
            {"0ms", 0},
            {"500ms", 500},
            {"10s", 10000},
            {"5m", 300000},
            {"1h", 3600000},
            {"007s", 7000},
            {"18446744073709551615ms", UINT64_MAX},
            {"5124095576030h", 5124095576030ull * 3600000},
        };
        static const char *const bad[] = {
            "",
            "10",
            "ms",
            "s",
            "10x",
            "10S",
            "10 s",
            " 10s",
            "10s ",
            "+10s",
            "-10s",
            "1.5s",
            "1e3ms",
            "10sec",
            "10msx",
            "1h30m",
            "0x10s",
            "18446744073709551616ms", /* overflows while reading */
            "18446744073709551615s",  /* overflows in the unit */
            "5124095576031h",
            "99999999999999999999999h",
        };
        uint64_t ms;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                ms = 1;
                assert_int_equal(wc_duration_parse(good[i].s, &ms), 0);
                assert_true(ms == good[i].ms);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                ms = 42;
                assert_int_equal(wc_duration_parse(bad[i], &ms), -EINVAL);
                assert_true(ms == 42); /* untouched on failure */
        }
        assert_int_equal(wc_duration_parse(NULL, &ms), -EINVAL);
}

/* ---- wc_slot_name_valid ---- */

static void test_slot_name_valid(void **state)
{
        char name[80];

        (void)state;
        assert_true(wc_slot_name_valid("walcast"));
        assert_true(wc_slot_name_valid("a"));
        assert_true(wc_slot_name_valid("_"));
        assert_true(wc_slot_name_valid("0"));
        assert_true(wc_slot_name_valid("app_cdc_1"));
        memset(name, 'a', 63);
        name[63] = '\0';
        assert_true(wc_slot_name_valid(name));

        name[63] = 'a';
        name[64] = '\0';
        assert_false(wc_slot_name_valid(name));
        assert_false(wc_slot_name_valid(""));
        assert_false(wc_slot_name_valid(NULL));
        assert_false(wc_slot_name_valid("My_slot"));
        assert_false(wc_slot_name_valid("WALCAST"));
        assert_false(wc_slot_name_valid("my-slot"));
        assert_false(wc_slot_name_valid("my slot"));
        assert_false(wc_slot_name_valid("my.slot"));
        assert_false(wc_slot_name_valid("slot\n"));
        assert_false(wc_slot_name_valid("sl\xc3\xb6t"));
}

/* ---- accepted configurations ---- */

static void test_minimal_defaults(void **state)
{
        struct wc_config *c = load(SOURCE SINKS);

        (void)state;
        assert_non_null(c);
        assert_string_equal(c->path, "walcast.yaml");
        assert_string_equal(c->source.dsn, "dbname=app");
        assert_string_equal(c->source.slot, "walcast");
        assert_true(c->source.create_slot);
        assert_true(c->source.status_interval_ms == 10000);
        assert_int_equal(c->filter.schemas_include.count, 0);
        assert_null(c->filter.schemas_include.items);
        assert_int_equal(c->filter.schemas_exclude.count, 0);
        assert_int_equal(c->filter.tables_include.count, 0);
        assert_int_equal(c->filter.tables_exclude.count, 0);
        assert_int_equal(c->filter.ops, WC_OPS_DATA);
        assert_int_equal(c->nsinks, 1);
        assert_string_equal(c->sinks[0].kind, "file");
        assert_int_equal(c->sinks[0].line, 5);
        assert_int_equal(c->sinks[0].column, 5);
        assert_string_equal(SINK_CONF(c, 0, file)->path, "out.jsonl");
        assert_true(SINK_CONF(c, 0, file)->fsync);
        assert_int_equal(c->signals.bulk_delete_batch, 1000);
        assert_int_equal(c->log.level, WC_LOG_INFO);
        wc_config_free(c);
}

static void assert_list(const struct wc_pattern_list *l, size_t n, ...)
{
        va_list ap;

        assert_int_equal(l->count, n);
        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(l->items[i], va_arg(ap, const char *));
        va_end(ap);
}

static void test_full_file(void **state)
{
        struct wc_config *c = load_data("config/valid-full.yaml");

        (void)state;
        assert_non_null(c);
        assert_string_equal(basename_error(), "");
        assert_non_null(strstr(c->path, "config/valid-full.yaml"));
        assert_string_equal(
            c->source.dsn, "host=db.example port=5433 dbname=app user=walcast");
        assert_string_equal(c->source.slot, "app_cdc_1");
        assert_false(c->source.create_slot);
        assert_true(c->source.status_interval_ms == 250);
        assert_list(&c->filter.schemas_include, 3, "town6-*", "org-*",
                    "public");
        assert_list(&c->filter.schemas_exclude, 1, "*-archive");
        assert_list(&c->filter.tables_include, 2, "orders", "billing.invoices");
        assert_list(&c->filter.tables_exclude, 1, "*.upgrade_state");
        assert_int_equal(c->filter.ops, WC_OP_BIT(WC_OP_INSERT) |
                                            WC_OP_BIT(WC_OP_DELETE) |
                                            WC_OP_BIT(WC_OP_MESSAGE));
        assert_int_equal(c->nsinks, 2);
        assert_string_equal(c->sinks[0].kind, "file");
        assert_int_equal(c->sinks[0].line, 16);
        assert_int_equal(c->sinks[0].column, 5);
        assert_string_equal(SINK_CONF(c, 0, file)->path,
                            "/var/lib/walcast/changes.jsonl");
        assert_false(SINK_CONF(c, 0, file)->fsync);
        assert_string_equal(c->sinks[1].kind, "file");
        assert_int_equal(c->sinks[1].line, 19);
        assert_int_equal(c->sinks[1].column, 5);
        assert_string_equal(SINK_CONF(c, 1, file)->path, "-");
        assert_true(SINK_CONF(c, 1, file)->fsync);
        assert_int_equal(c->signals.bulk_delete_batch, 5);
        assert_int_equal(c->log.level, WC_LOG_DEBUG);
        wc_config_free(c);
}

static void test_minimal_file(void **state)
{
        struct wc_config *c = load_data("config/valid-minimal.yaml");

        (void)state;
        assert_non_null(c);
        assert_string_equal(c->source.slot, "walcast");
        assert_int_equal(c->nsinks, 1);
        assert_int_equal(c->sinks[0].line, 6);
        assert_int_equal(c->sinks[0].column, 5);
        wc_config_free(c);
}

static void test_flow_file(void **state)
{
        struct wc_config *c = load_data("config/valid-flow.yaml");

        (void)state;
        assert_non_null(c);
        assert_string_equal(c->source.dsn, "dbname=app");
        assert_string_equal(c->source.slot, "s1");
        assert_true(c->source.status_interval_ms == 3600000);
        assert_int_equal(c->filter.ops, WC_OP_BIT(WC_OP_TRUNCATE));
        assert_int_equal(c->nsinks, 1);
        /* a flow mapping starts at its brace */
        assert_int_equal(c->sinks[0].line, 2);
        assert_int_equal(c->sinks[0].column, 37);
        assert_string_equal(SINK_CONF(c, 0, file)->path, "out.jsonl");
        assert_true(SINK_CONF(c, 0, file)->fsync);
        assert_int_equal(c->log.level, WC_LOG_ERR);
        wc_config_free(c);
}

static void test_empty_sections_file(void **state)
{
        struct wc_config *c = load_data("config/valid-empty-sections.yaml");

        (void)state;
        assert_non_null(c);
        assert_int_equal(c->filter.schemas_include.count, 0);
        assert_int_equal(c->filter.ops, WC_OPS_DATA);
        assert_int_equal(c->log.level, WC_LOG_INFO);
        assert_string_equal(SINK_CONF(c, 0, file)->path, "-");
        wc_config_free(c);
}

/* The shipped example must stay loadable. */
static void test_example_config(void **state)
{
        struct wc_config *c = load_data("../../config/walcast.yaml");

        (void)state;
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_string_equal(c->source.slot, "walcast");
        assert_true(c->nsinks >= 1);
        assert_string_equal(c->sinks[0].kind, "file");
        assert_int_equal(c->signals.bulk_delete_batch, 1000);
        wc_config_free(c);
}

static void test_log_levels(void **state)
{
        static const struct {
                const char *name;
                enum wc_log_level level;
        } levels[] = {
            {"err", WC_LOG_ERR},       {"warning", WC_LOG_WARNING},
            {"notice", WC_LOG_NOTICE}, {"info", WC_LOG_INFO},
            {"debug", WC_LOG_DEBUG},
        };

        (void)state;
        for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
                char text[256];
                struct wc_config *c;

                snprintf(text, sizeof(text), SOURCE SINKS "log:\n  level: %s\n",
                         levels[i].name);
                c = load(text);
                assert_non_null(c);
                assert_int_equal(c->log.level, levels[i].level);
                wc_config_free(c);
        }
}

static void test_all_ops_and_order(void **state)
{
        struct wc_config *c = load(SOURCE SINKS "filter:\n  ops: [message, "
                                                "truncate, delete, update, "
                                                "insert]\n");

        (void)state;
        assert_non_null(c);
        assert_int_equal(c->filter.ops, WC_OPS_DATA);
        wc_config_free(c);
}

static void test_interval_bounds(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load(SOURCE "  status_interval: 100ms\n" SINKS);
        assert_non_null(c);
        assert_true(c->source.status_interval_ms == 100);
        wc_config_free(c);
        c = load(SOURCE "  status_interval: 3600s\n" SINKS);
        assert_non_null(c);
        assert_true(c->source.status_interval_ms == 3600000);
        wc_config_free(c);
        c = load(SOURCE "  status_interval: 60m\n" SINKS);
        assert_non_null(c);
        assert_true(c->source.status_interval_ms == 3600000);
        wc_config_free(c);
}

/* Quoting changes nothing for a value: "true" and true are one boolean. */
static void test_quoted_scalars(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load("source:\n  dsn: 'dbname=app'\n  slot: \"walcast\"\n"
                 "  create_slot: \"false\"\n  status_interval: '5m'\n" SINKS
                 "log: {level: \"notice\"}\n");
        assert_non_null(c);
        assert_string_equal(c->source.slot, "walcast");
        assert_false(c->source.create_slot);
        assert_true(c->source.status_interval_ms == 300000);
        assert_int_equal(c->log.level, WC_LOG_NOTICE);
        wc_config_free(c);
}

/* A quoted "null" is a string; only a plain one means no value. */
static void test_quoted_null_is_a_string(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load(SOURCE "sinks:\n  - file:\n      path: \"null\"\n"
                        "filter:\n  tables:\n    include: [\"~\"]\n");
        assert_non_null(c);
        assert_string_equal(SINK_CONF(c, 0, file)->path, "null");
        assert_list(&c->filter.tables_include, 1, "~");
        wc_config_free(c);

        /* an empty list is as good as none */
        c = load(SOURCE SINKS "filter:\n  schemas: {include: [], exclude: "
                              "~}\n");
        assert_non_null(c);
        assert_int_equal(c->filter.schemas_include.count, 0);
        assert_int_equal(c->filter.schemas_exclude.count, 0);
        wc_config_free(c);
}

/* Keys may come in any order; anchors without aliases are harmless. */
static void test_any_order_and_anchor(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load("log: {level: warning}\n" SINKS
                 "source:\n  slot: &s walcast\n  dsn: dbname=x\n");
        assert_non_null(c);
        assert_string_equal(c->source.slot, "walcast");
        assert_int_equal(c->log.level, WC_LOG_WARNING);
        assert_int_equal(c->sinks[0].line, 3);
        wc_config_free(c);
}

/* ---- environment ---- */

static void test_env_file(void **state)
{
        struct wc_config *c;

        (void)state;
        setenv("WALCAST_TEST_HOST", "db.internal", 1);
        setenv("WALCAST_TEST_SLOT", "from_env", 1);
        setenv("WALCAST_TEST_INTERVAL", "30s", 1);
        setenv("WALCAST_TEST_DIR", "/srv/cdc", 1);
        c = load_data("config/valid-env.yaml");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_string_equal(c->source.dsn,
                            "host=db.internal dbname=app password=pa$word");
        assert_string_equal(c->source.slot, "from_env");
        assert_true(c->source.status_interval_ms == 30000);
        assert_string_equal(SINK_CONF(c, 0, file)->path,
                            "/srv/cdc/changes.jsonl");
        wc_config_free(c);
        unsetenv("WALCAST_TEST_HOST");
        unsetenv("WALCAST_TEST_SLOT");
        unsetenv("WALCAST_TEST_INTERVAL");
        unsetenv("WALCAST_TEST_DIR");
}

static void test_env_expansion(void **state)
{
        struct wc_config *c;

        (void)state;
        setenv("WC_A", "x", 1);
        setenv("WC_B", "y", 1);
        setenv("WC_EMPTY", "", 1);
        setenv("WC_DOLLAR", "${WC_A}", 1);
        c = load("source:\n  dsn: \"dbname=${WC_A}${WC_B}-$$-$-$${WC_A}-"
                 "${WC_EMPTY}-${WC_DOLLAR}-a$b-$\"\n"
                 "  slot: walcast\n" SINKS
                 "filter:\n  schemas: {include: [\"${WC_A}-*\"]}\n"
                 "  ops: [\"${WC_EMPTY}insert\"]\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        /* "$$" is "$", a lone "$" is itself, values are not re-expanded */
        assert_string_equal(c->source.dsn,
                            "dbname=xy-$-$-${WC_A}--${WC_A}-a$b-$");
        assert_list(&c->filter.schemas_include, 1, "x-*");
        assert_int_equal(c->filter.ops, WC_OP_BIT(WC_OP_INSERT));
        wc_config_free(c);

        /* keys are never expanded */
        assert_error(SOURCE SINKS "${WC_A}: 1\n",
                     "walcast.yaml:7:1: unknown key \"${WC_A}\" at the top "
                     "level");
        /* expanding to nothing is an empty value, not a missing one */
        assert_error("source:\n  dsn: ${WC_EMPTY}\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: empty value for \"source.dsn\"");
        unsetenv("WC_A");
        unsetenv("WC_B");
        unsetenv("WC_EMPTY");
        unsetenv("WC_DOLLAR");
}

static void test_env_errors(void **state)
{
        struct wc_config *c;

        (void)state;
        unsetenv("WALCAST_TEST_UNSET");
        c = load_data("config/invalid-env-unset.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-env-unset.yaml:2:8: environment variable "
                            "\"WALCAST_TEST_UNSET\" is not set");

        assert_error(
            "source:\n  dsn: dbname=x\n  slot: ${WALCAST_TEST_UNSET}\n" SINKS,
            "walcast.yaml:3:9: environment variable "
            "\"WALCAST_TEST_UNSET\" is not set");
        assert_error("source:\n  dsn: \"a ${HOME\"\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: missing \"}\" after \"${\" in "
                     "\"source.dsn\"");
        assert_error("source:\n  dsn: \"a ${}\"\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: invalid environment variable name "
                     "\"\" in \"source.dsn\"");
        assert_error("source:\n  dsn: \"${A B}\"\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: invalid environment variable name "
                     "\"A B\" in \"source.dsn\"");
        assert_error("source:\n  dsn: \"${1A}\"\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: invalid environment variable name "
                     "\"1A\" in \"source.dsn\"");
        assert_error(SOURCE "  status_interval: ${WALCAST_TEST_UNSET}\n" SINKS,
                     "walcast.yaml:4:20: environment variable "
                     "\"WALCAST_TEST_UNSET\" is not set");
        assert_error(SOURCE SINKS
                     "filter:\n  ops: [\"${WALCAST_TEST_UNSET}\"]\n",
                     "walcast.yaml:8:9: environment variable "
                     "\"WALCAST_TEST_UNSET\" is not set");
        assert_error(
            SOURCE SINKS
            "filter:\n  tables:\n    exclude: [\"${WALCAST_TEST_UNSET}\"]\n",
            "walcast.yaml:9:15: environment variable "
            "\"WALCAST_TEST_UNSET\" is not set");

        /* expansion comes before conversion, so the value is checked */
        setenv("WC_BAD", "10", 1);
        assert_error(SOURCE "  status_interval: ${WC_BAD}\n" SINKS,
                     "walcast.yaml:4:20: invalid duration \"10\": use a "
                     "number with a unit: 500ms, 10s, 5m, 1h");
        unsetenv("WC_BAD");
}

/* ---- unknown keys, at every level ---- */

static void test_unknown_keys(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-unknown-key.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-unknown-key.yaml:4:3: unknown key "
                            "\"slots\" in \"source\"");

        assert_error(SOURCE SINKS "sources: {}\n",
                     "walcast.yaml:7:1: unknown key \"sources\" at the top "
                     "level");
        assert_error(SOURCE "  Slot: x\n" SINKS,
                     "walcast.yaml:4:3: unknown key \"Slot\" in \"source\"");
        assert_error(SOURCE SINKS "filter:\n  op: [insert]\n",
                     "walcast.yaml:8:3: unknown key \"op\" in \"filter\"");
        assert_error(SOURCE SINKS "filter:\n  schemas:\n    includes: [a]\n",
                     "walcast.yaml:9:5: unknown key \"includes\" in "
                     "\"filter.schemas\"");
        assert_error(SOURCE SINKS "filter:\n  tables: {exclude: [a], x: 1}\n",
                     "walcast.yaml:8:26: unknown key \"x\" in "
                     "\"filter.tables\"");
        assert_error(SOURCE SINKS "log:\n  levle: debug\n",
                     "walcast.yaml:8:3: unknown key \"levle\" in \"log\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n      sync: "
                            "true\n",
                     "walcast.yaml:7:7: unknown key \"sync\" in "
                     "\"sinks[0].file\"");
        assert_error(SOURCE "sinks:\n  - file: {path: a}\n  - kafak:\n"
                            "      topic: t\n",
                     "walcast.yaml:6:5: unknown sink type \"kafak\" in "
                     "\"sinks[1]\": use file, plugin, kafka");
        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batchh: 5\n",
                     "walcast.yaml:8:3: unknown key \"bulk_delete_batchh\" in "
                     "\"signals\"");
        assert_error(SOURCE SINKS "signals: {batch: 5}\n",
                     "walcast.yaml:7:11: unknown key \"batch\" in "
                     "\"signals\"");
        assert_error(PLUGIN "      pathh: /usr/lib/a.so\n",
                     "walcast.yaml:6:7: unknown key \"pathh\" in "
                     "\"sinks[0].plugin\"");
        assert_error(PLUGIN "      path: /a.so\n      file: /tmp/x\n",
                     "walcast.yaml:7:7: unknown key \"file\" in "
                     "\"sinks[0].plugin\"");
        assert_error(SOURCE SINKS "heartbeat:\n  intervall: 60s\n",
                     "walcast.yaml:8:3: unknown key \"intervall\" in "
                     "\"heartbeat\"");
        assert_error(SOURCE SINKS "limits: {max_changes: 5}\n",
                     "walcast.yaml:7:10: unknown key \"max_changes\" in "
                     "\"limits\"");
}

/* heartbeat, limits, state_dir, shutdown_timeout, source.on_slot_lost */
static void test_reliability_keys(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load(SOURCE SINKS);
        assert_non_null(c);
        assert_int_equal(c->heartbeat.interval_ms, 0);
        assert_null(c->heartbeat.action_query);
        assert_string_equal(c->heartbeat.prefix, "walcast.heartbeat");
        assert_false(c->heartbeat.deliver);
        assert_int_equal(c->limits.max_in_flight_changes, 100000);
        assert_int_equal(c->limits.max_in_flight_bytes, 64 << 20);
        assert_int_equal(c->shutdown_timeout_ms, 10000);
        assert_null(c->state_dir);
        assert_int_equal(c->source.on_slot_lost, WC_SLOT_LOST_FAIL);
        wc_config_free(c);

        c = load(SOURCE "  on_slot_lost: recreate\n" SINKS
                        "heartbeat:\n  interval: 1m\n"
                        "  action_query: \"UPDATE hb SET at = now()\"\n"
                        "  prefix: hb\n  deliver: true\n"
                        "limits:\n  max_in_flight_changes: 500\n"
                        "  max_in_flight_bytes: 512kB\n"
                        "state_dir: /var/lib/walcast\n"
                        "shutdown_timeout: 0s\n");
        assert_non_null(c);
        assert_int_equal(c->source.on_slot_lost, WC_SLOT_LOST_RECREATE);
        assert_int_equal(c->heartbeat.interval_ms, 60000);
        assert_string_equal(c->heartbeat.action_query,
                            "UPDATE hb SET at = now()");
        assert_string_equal(c->heartbeat.prefix, "hb");
        assert_true(c->heartbeat.deliver);
        assert_int_equal(c->limits.max_in_flight_changes, 500);
        assert_int_equal(c->limits.max_in_flight_bytes, 512 << 10);
        assert_string_equal(c->state_dir, "/var/lib/walcast");
        assert_int_equal(c->shutdown_timeout_ms, 0);
        wc_config_free(c);

        assert_error(SOURCE "  on_slot_lost: ignore\n" SINKS,
                     "walcast.yaml:4:17: invalid on_slot_lost \"ignore\": "
                     "use fail or recreate");
        assert_error(SOURCE SINKS "heartbeat: {interval: 500ms}\n",
                     "walcast.yaml:7:23: interval \"500ms\" is out of range: "
                     "use 1s to 24h");
        assert_error(SOURCE SINKS "limits: {max_in_flight_bytes: 64}\n",
                     "walcast.yaml:7:31: invalid size \"64\": use a number "
                     "with a unit: 512kB, 64MB, 1GB");
        assert_error(SOURCE SINKS "limits: {max_in_flight_bytes: 1B}\n",
                     "walcast.yaml:7:31: max_in_flight_bytes \"1B\" is out "
                     "of range: use 1kB to 1024GB");
        assert_error(SOURCE SINKS "limits: {max_in_flight_changes: 0}\n",
                     "walcast.yaml:7:33: invalid max_in_flight_changes \"0\": "
                     "use a number from 1 to 1000000000");
        assert_error(SOURCE SINKS "state_dir: var/lib/walcast\n",
                     "walcast.yaml:7:12: relative path \"var/lib/walcast\" "
                     "for \"state_dir\": use an absolute path");
        assert_error(SOURCE SINKS "heartbeat: {action_query: \"\"}\n",
                     "walcast.yaml:7:27: empty value for "
                     "\"heartbeat.action_query\"");
}

/* source.decoder, publication, create_publication */
static void test_decoder_keys(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load(SOURCE SINKS);
        assert_non_null(c);
        assert_int_equal(c->source.decoder, WC_DECODER_WAL2JSON);
        assert_null(c->source.publication);
        assert_true(c->source.create_publication);
        wc_config_free(c);

        c = load(SOURCE "  decoder: pgoutput\n  publication: \"my pub\"\n"
                        "  create_publication: false\n" SINKS);
        assert_non_null(c);
        assert_int_equal(c->source.decoder, WC_DECODER_PGOUTPUT);
        assert_string_equal(c->source.publication, "my pub");
        assert_false(c->source.create_publication);
        wc_config_free(c);

        assert_error(SOURCE "  decoder: test_decoding\n" SINKS,
                     "walcast.yaml:4:12: invalid decoder \"test_decoding\": "
                     "use wal2json or pgoutput");
        assert_error(SOURCE "  publication: \"\"\n" SINKS,
                     "walcast.yaml:4:16: empty value for "
                     "\"source.publication\"");
}

static void test_size_parse(void **state)
{
        static const char *const bad[] = {
            "", "64", "64mb", "1.5MB", "-1kB", "kB", "1 kB", "99999999999TB"};
        uint64_t n;

        (void)state;
        assert_int_equal(wc_size_parse("0B", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(wc_size_parse("3kB", &n), 0);
        assert_int_equal(n, 3072);
        assert_int_equal(wc_size_parse("64MB", &n), 0);
        assert_int_equal(n, 64ull << 20);
        assert_int_equal(wc_size_parse("2GB", &n), 0);
        assert_int_equal(n, 2ull << 30);
        assert_int_equal(wc_size_parse("1TB", &n), 0);
        assert_int_equal(n, 1ull << 40);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(wc_size_parse(bad[i], &n), -EINVAL);
}

/* A key that is not a scalar. */
static void test_non_scalar_keys(void **state)
{
        (void)state;
        assert_error("? [a]\n: b\n",
                     "walcast.yaml:1:3: expected a string key at the top "
                     "level, found a sequence");
        assert_error("source: {{a: 1}: 2}\n",
                     "walcast.yaml:1:10: expected a string key in "
                     "\"source\", found a mapping");
        assert_error(SOURCE "sinks:\n  - {[file]: {path: a}}\n",
                     "walcast.yaml:5:6: expected a string key in "
                     "\"sinks[0]\", found a sequence");
}

/* ---- wrong types, at every level ---- */

static void test_wrong_types(void **state)
{
        struct wc_config *c;

        (void)state;
        assert_error("- source\n",
                     "walcast.yaml:1:1: expected a mapping at the top level, "
                     "found a sequence");
        assert_error("source\n",
                     "walcast.yaml:1:1: expected a mapping at the top level, "
                     "found a scalar");
        assert_error("source: walcast\n" SINKS,
                     "walcast.yaml:1:9: expected a mapping for \"source\", "
                     "found a scalar");
        assert_error("source: [dsn, slot]\n" SINKS,
                     "walcast.yaml:1:9: expected a mapping for \"source\", "
                     "found a sequence");
        assert_error("source:\n  dsn: {host: x}\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: expected a string for \"source.dsn\", "
                     "found a mapping");
        assert_error("source:\n  dsn: dbname=x\n  slot: [walcast]\n" SINKS,
                     "walcast.yaml:3:9: expected a string for \"source.slot\", "
                     "found a sequence");
        assert_error(SOURCE "  create_slot: {}\n" SINKS,
                     "walcast.yaml:4:16: expected a boolean for "
                     "\"source.create_slot\", found a mapping");
        assert_error(SOURCE "  status_interval: [10s]\n" SINKS,
                     "walcast.yaml:4:20: expected a duration for "
                     "\"source.status_interval\", found a sequence");
        assert_error(SOURCE SINKS "filter: [insert]\n",
                     "walcast.yaml:7:9: expected a mapping for \"filter\", "
                     "found a sequence");
        assert_error(SOURCE SINKS "filter:\n  schemas: [a]\n",
                     "walcast.yaml:8:12: expected a mapping for "
                     "\"filter.schemas\", found a sequence");
        assert_error(SOURCE SINKS "filter:\n  tables: a\n",
                     "walcast.yaml:8:11: expected a mapping for "
                     "\"filter.tables\", found a scalar");
        assert_error(SOURCE SINKS "filter:\n  schemas:\n    include: \"a*\"\n",
                     "walcast.yaml:9:14: expected a sequence for "
                     "\"filter.schemas.include\", found a scalar");
        assert_error(SOURCE SINKS "filter:\n  tables:\n    exclude: {a: 1}\n",
                     "walcast.yaml:9:14: expected a sequence for "
                     "\"filter.tables.exclude\", found a mapping");
        assert_error(SOURCE SINKS "filter:\n  tables:\n    include: [a, [b]]\n",
                     "walcast.yaml:9:18: expected a string for "
                     "\"filter.tables.include[1]\", found a sequence");
        assert_error(SOURCE SINKS "filter:\n  tables:\n    include:\n"
                                  "      - a\n      -\n",
                     "walcast.yaml:11:8: missing value for "
                     "\"filter.tables.include[1]\"");
        assert_error(SOURCE SINKS "filter:\n  ops: insert\n",
                     "walcast.yaml:8:8: expected a sequence for "
                     "\"filter.ops\", found a scalar");
        assert_error(SOURCE SINKS "filter:\n  ops: [{insert: 1}]\n",
                     "walcast.yaml:8:9: expected a string for "
                     "\"filter.ops[0]\", found a mapping");
        assert_error(SOURCE SINKS "filter:\n  ops: [insert, ~]\n",
                     "walcast.yaml:8:17: missing value for "
                     "\"filter.ops[1]\"");
        assert_error(SOURCE "sinks:\n  file:\n    path: a\n",
                     "walcast.yaml:5:3: expected a sequence for \"sinks\", "
                     "found a mapping");
        assert_error(SOURCE "sinks: out.jsonl\n",
                     "walcast.yaml:4:8: expected a sequence for \"sinks\", "
                     "found a scalar");
        assert_error(SOURCE "sinks:\n  - file\n",
                     "walcast.yaml:5:5: expected a mapping for \"sinks[0]\", "
                     "found a scalar");
        assert_error(SOURCE "sinks:\n  - file: {path: a}\n  - [file]\n",
                     "walcast.yaml:6:5: expected a mapping for \"sinks[1]\", "
                     "found a sequence");
        assert_error(SOURCE "sinks:\n  - file: out.jsonl\n",
                     "walcast.yaml:5:11: expected a mapping for "
                     "\"sinks[0].file\", found a scalar");
        assert_error(SOURCE "sinks:\n  - file:\n      path: [a]\n",
                     "walcast.yaml:6:13: expected a string for "
                     "\"sinks[0].file.path\", found a sequence");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n"
                            "      fsync: [true]\n",
                     "walcast.yaml:7:14: expected a boolean for "
                     "\"sinks[0].file.fsync\", found a sequence");
        assert_error(SOURCE SINKS "log: debug\n",
                     "walcast.yaml:7:6: expected a mapping for \"log\", found "
                     "a scalar");
        assert_error(SOURCE SINKS "log:\n  level: [debug]\n",
                     "walcast.yaml:8:10: expected a string for \"log.level\", "
                     "found a sequence");

        c = load_data("config/invalid-filter-sequence.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-filter-sequence.yaml:4:9: expected a "
                            "mapping for \"filter\", found a sequence");
}

/* ---- missing and empty values ---- */

static void test_missing_values(void **state)
{
        (void)state;
        assert_error("source:\n  dsn:\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:3: missing value for \"source.dsn\"");
        assert_error("source:\n  dsn: dbname=x\n  slot: ~\n" SINKS,
                     "walcast.yaml:3:3: missing value for \"source.slot\"");
        assert_error(SOURCE "  create_slot: null\n" SINKS,
                     "walcast.yaml:4:3: missing value for "
                     "\"source.create_slot\"");
        assert_error(SOURCE "  status_interval: NULL\n" SINKS,
                     "walcast.yaml:4:3: missing value for "
                     "\"source.status_interval\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path:\n",
                     "walcast.yaml:6:7: missing value for "
                     "\"sinks[0].file.path\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n      fsync:\n",
                     "walcast.yaml:7:7: missing value for "
                     "\"sinks[0].file.fsync\"");
        assert_error(SOURCE SINKS "log:\n  level: Null\n",
                     "walcast.yaml:8:3: missing value for \"log.level\"");

        assert_error("source:\n  dsn: \"\"\n  slot: walcast\n" SINKS,
                     "walcast.yaml:2:8: empty value for \"source.dsn\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path: ''\n",
                     "walcast.yaml:6:13: empty value for "
                     "\"sinks[0].file.path\"");
        assert_error(SOURCE SINKS
                     "filter:\n  schemas:\n    include: [a, \"\"]\n",
                     "walcast.yaml:9:18: empty pattern in "
                     "\"filter.schemas.include\"");
}

static void test_missing_required_keys(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-missing-dsn.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-missing-dsn.yaml:1:1: missing required "
                            "key \"dsn\" in \"source\"");

        assert_error(SINKS,
                     "walcast.yaml:1:1: missing required key \"source\" at "
                     "the top level");
        assert_error("# comment\n\n" SINKS "log: {}\n",
                     "walcast.yaml:3:1: missing required key \"source\" at "
                     "the top level");
        assert_error(SOURCE,
                     "walcast.yaml:1:1: missing required key \"sinks\" at "
                     "the top level");
        assert_error(SINKS "source:\n  dsn: dbname=x\n",
                     "walcast.yaml:4:1: missing required key \"slot\" in "
                     "\"source\"");
        assert_error(SINKS "source:\n", "walcast.yaml:4:1: missing required "
                                        "key \"dsn\" in \"source\"");
        assert_error(SINKS "source: {}\n", "walcast.yaml:4:1: missing required "
                                           "key \"dsn\" in \"source\"");
        assert_error(SOURCE "sinks:\n  - file:\n      fsync: false\n",
                     "walcast.yaml:5:5: missing required key \"path\" in "
                     "\"sinks[0].file\"");
        assert_error(SOURCE "sinks:\n  - file:\n",
                     "walcast.yaml:5:5: missing required key \"path\" in "
                     "\"sinks[0].file\"");
}

/* ---- values ---- */

static void test_bad_booleans(void **state)
{
        static const char *const bad[] = {"yes",   "no", "on", "off", "True",
                                          "FALSE", "1",  "0",  "y"};
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-norway.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-norway.yaml:4:16: invalid boolean "
                            "\"yes\": use true or false");

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[256], msg[256];

                snprintf(text, sizeof(text),
                         SOURCE SINKS
                         "  - file:\n      path: b\n      fsync: %s\n",
                         bad[i]);
                snprintf(msg, sizeof(msg),
                         "walcast.yaml:9:14: invalid boolean \"%s\": use true "
                         "or false",
                         bad[i]);
                assert_error(text, msg);
        }
        assert_error(SOURCE "  create_slot: \"\"\n" SINKS,
                     "walcast.yaml:4:16: invalid boolean \"\": use true or "
                     "false");
}

static void test_bad_durations(void **state)
{
        static const char *const bad[] = {
            "10",  "10x",   "1.5s",
            "-1s", "10 s",  "ten",
            "10S", "1h30m", "99999999999999999999s"};
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-duration.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-duration.yaml:5:20: invalid duration "
                            "\"10\": use a number with a unit: 500ms, 10s, "
                            "5m, 1h");

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[256], msg[256];

                snprintf(text, sizeof(text),
                         SOURCE "  status_interval: \"%s\"\n" SINKS, bad[i]);
                snprintf(msg, sizeof(msg),
                         "walcast.yaml:4:20: invalid duration \"%s\": use a "
                         "number with a unit: 500ms, 10s, 5m, 1h",
                         bad[i]);
                assert_error(text, msg);
        }
        assert_error(SOURCE "  status_interval: 99ms\n" SINKS,
                     "walcast.yaml:4:20: status_interval \"99ms\" is out of "
                     "range: use 100ms to 1h");
        assert_error(SOURCE "  status_interval: 0s\n" SINKS,
                     "walcast.yaml:4:20: status_interval \"0s\" is out of "
                     "range: use 100ms to 1h");
        assert_error(SOURCE "  status_interval: 3600001ms\n" SINKS,
                     "walcast.yaml:4:20: status_interval \"3600001ms\" is "
                     "out of range: use 100ms to 1h");
        assert_error(SOURCE "  status_interval: 2h\n" SINKS,
                     "walcast.yaml:4:20: status_interval \"2h\" is out of "
                     "range: use 100ms to 1h");
}

static void test_bad_slot_names(void **state)
{
        static const char *const bad[] = {"My-Slot",  "WALCAST",
                                          "wal-cast", "wal cast",
                                          "wal.cast", "sl\xc3\xb6t"};
        char text[256], msg[256], long_name[65];
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-slot.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-slot.yaml:3:9: invalid slot name "
                            "\"My-Slot\": use 1 to 63 characters of a-z, 0-9 "
                            "and _");

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                snprintf(text, sizeof(text),
                         "source:\n  dsn: dbname=x\n  slot: \"%s\"\n" SINKS,
                         bad[i]);
                snprintf(msg, sizeof(msg),
                         "walcast.yaml:3:9: invalid slot name \"%s\": use 1 "
                         "to 63 characters of a-z, 0-9 and _",
                         bad[i]);
                assert_error(text, msg);
        }

        memset(long_name, 'a', 64);
        long_name[64] = '\0';
        snprintf(text, sizeof(text),
                 "source:\n  dsn: dbname=x\n  slot: %s\n" SINKS, long_name);
        snprintf(msg, sizeof(msg),
                 "walcast.yaml:3:9: invalid slot name \"%s\": use 1 to 63 "
                 "characters of a-z, 0-9 and _",
                 long_name);
        assert_error(text, msg);
        /* 63 is still fine */
        long_name[63] = '\0';
        snprintf(text, sizeof(text),
                 "source:\n  dsn: dbname=x\n  slot: %s\n" SINKS, long_name);
        c = load(text);
        assert_non_null(c);
        wc_config_free(c);

        assert_error("source:\n  dsn: dbname=x\n  slot: \"\"\n" SINKS,
                     "walcast.yaml:3:9: invalid slot name \"\": use 1 to 63 "
                     "characters of a-z, 0-9 and _");
        /* a plain 123 is a string of digits, which is a valid name */
        c = load("source:\n  dsn: dbname=x\n  slot: 123\n" SINKS);
        assert_non_null(c);
        assert_string_equal(c->source.slot, "123");
        wc_config_free(c);
}

static void test_bad_log_level(void **state)
{
        (void)state;
        assert_error(SOURCE SINKS "log:\n  level: verbose\n",
                     "walcast.yaml:8:10: invalid log level \"verbose\": use "
                     "err, warning, notice, info or debug");
        assert_error(SOURCE SINKS "log:\n  level: INFO\n",
                     "walcast.yaml:8:10: invalid log level \"INFO\": use "
                     "err, warning, notice, info or debug");
        assert_error(SOURCE SINKS "log:\n  level: error\n",
                     "walcast.yaml:8:10: invalid log level \"error\": use "
                     "err, warning, notice, info or debug");
}

static void test_log_format_and_metrics(void **state)
{
        struct wc_config *c;
        (void)state;

        c = load(SOURCE SINKS);
        assert_non_null(c);
        assert_int_equal(c->log.format, WC_LOG_FORMAT_TEXT);
        assert_null(c->metrics.listen);
        wc_config_free(c);

        c = load(SOURCE SINKS "log:\n  format: json\nmetrics:\n  listen: "
                              "\"127.0.0.1:9187\"\n");
        assert_non_null(c);
        assert_int_equal(c->log.format, WC_LOG_FORMAT_JSON);
        assert_string_equal(c->metrics.listen, "127.0.0.1:9187");
        wc_config_free(c);

        assert_error(SOURCE SINKS "log:\n  format: xml\n",
                     "walcast.yaml:8:11: invalid log format \"xml\": use text "
                     "or json");
        assert_error(SOURCE SINKS "metrics:\n  listen: \"\"\n",
                     "walcast.yaml:8:11: empty value for \"metrics.listen\"");
        assert_error(SOURCE SINKS "metrics:\n  port: 9187\n",
                     "walcast.yaml:8:3: unknown key \"port\" in \"metrics\"");
}

static void test_bad_ops(void **state)
{
        (void)state;
        assert_error(SOURCE SINKS "filter:\n  ops: [insert, begin]\n",
                     "walcast.yaml:8:17: invalid op \"begin\": use insert, "
                     "update, delete, truncate or message");
        assert_error(SOURCE SINKS "filter:\n  ops: [commit]\n",
                     "walcast.yaml:8:9: invalid op \"commit\": use insert, "
                     "update, delete, truncate or message");
        assert_error(SOURCE SINKS "filter:\n  ops: [select]\n",
                     "walcast.yaml:8:9: invalid op \"select\": use insert, "
                     "update, delete, truncate or message");
        assert_error(SOURCE SINKS "filter:\n  ops: [Insert]\n",
                     "walcast.yaml:8:9: invalid op \"Insert\": use insert, "
                     "update, delete, truncate or message");
        assert_error(SOURCE SINKS "filter:\n  ops:\n    - insert\n"
                                  "    - update\n    - insert\n",
                     "walcast.yaml:11:7: duplicate op \"insert\" in "
                     "\"filter.ops\"");
        assert_error(SOURCE SINKS "filter:\n  ops: []\n",
                     "walcast.yaml:8:3: \"filter.ops\" is empty: list one or "
                     "more of insert, update, delete, truncate and message");
        assert_error(SOURCE SINKS "filter:\n  ops:\n",
                     "walcast.yaml:8:3: missing value for \"filter.ops\"");
}

static void test_bad_sinks(void **state)
{
        (void)state;
        assert_error(SOURCE "sinks: []\n",
                     "walcast.yaml:4:1: \"sinks\" is empty: list at least one "
                     "sink");
        assert_error(SOURCE "sinks:\n",
                     "walcast.yaml:4:1: \"sinks\" is empty: list at least one "
                     "sink");
        assert_error(SOURCE "sinks:\n  -\n",
                     "walcast.yaml:5:4: expected a mapping for \"sinks[0]\", "
                     "found an empty value");
        assert_error(SOURCE "sinks:\n  - {}\n",
                     "walcast.yaml:5:5: expected exactly one key naming the "
                     "sink type in \"sinks[0]\", found 0");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n"
                            "    fsync: true\n",
                     "walcast.yaml:5:5: expected exactly one key naming the "
                     "sink type in \"sinks[0]\", found 2");
}

static void test_duplicate_keys(void **state)
{
        (void)state;
        assert_error(SOURCE SINKS "source: {}\n",
                     "walcast.yaml:7:1: duplicate key \"source\" at the top "
                     "level");
        assert_error(SOURCE "  slot: other\n" SINKS,
                     "walcast.yaml:4:3: duplicate key \"slot\" in \"source\"");
        assert_error(SOURCE SINKS "filter:\n  ops: [insert]\n  ops: [update]\n",
                     "walcast.yaml:9:3: duplicate key \"ops\" in \"filter\"");
        assert_error(SOURCE SINKS "filter: {schemas: {include: [a], include: "
                                  "[b]}}\n",
                     "walcast.yaml:7:34: duplicate key \"include\" in "
                     "\"filter.schemas\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n      path: "
                            "b\n",
                     "walcast.yaml:7:7: duplicate key \"path\" in "
                     "\"sinks[0].file\"");
        assert_error(SOURCE SINKS "log: {level: info, \"level\": debug}\n",
                     "walcast.yaml:7:20: duplicate key \"level\" in \"log\"");
}

/* ---- YAML-level errors ---- */

static void test_aliases(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-alias.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-alias.yaml:6:13: alias \"*dsn\" is not "
                            "supported: write the value out instead");
        assert_error("a: &a [x, x]\nb: &b [*a, *a]\n",
                     "walcast.yaml:2:8: alias \"*a\" is not supported: write "
                     "the value out instead");
        /* even where the key would be unknown: aliases never get that far */
        assert_error("base: &base {dsn: x}\nsource: *base\n",
                     "walcast.yaml:2:9: alias \"*base\" is not supported: "
                     "write the value out instead");
}

static void test_documents(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-two-documents.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-two-documents.yaml:7:1: more than one "
                            "document in the configuration");
        /* one explicit document is fine */
        c = load("---\n" SOURCE SINKS "...\n");
        assert_non_null(c);
        wc_config_free(c);
}

static void test_empty(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-empty.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-empty.yaml: the configuration is empty");
        assert_error("", "walcast.yaml: the configuration is empty");
        assert_error("\n\n   \n", "walcast.yaml: the configuration is empty");
        assert_error("# nothing here\n# source:\n",
                     "walcast.yaml: the configuration is empty");
        assert_error("---\n", "walcast.yaml: the configuration is empty");
        assert_error("~\n", "walcast.yaml: the configuration is empty");
        assert_error("null", "walcast.yaml: the configuration is empty");
        c = wc_config_load_string("walcast.yaml", NULL, 0, errbuf,
                                  sizeof(errbuf));
        assert_null(c);
        assert_string_equal(errbuf, "walcast.yaml: the configuration is empty");
}

static void test_syntax_errors(void **state)
{
        struct wc_config *c;

        (void)state;
        c = load_data("config/invalid-syntax.yaml");
        assert_null(c);
        assert_string_equal(basename_error(),
                            "invalid-syntax.yaml:4:1: found unexpected end of "
                            "stream (while scanning a quoted scalar at 2:8)");
        assert_error("source:\n  dsn: dbname=x\n slot: y\n",
                     "walcast.yaml:3:2: did not find expected key (while "
                     "parsing a block mapping at 1:1)");
        assert_error("source: [a, b\n",
                     "walcast.yaml:2:1: did not find expected ',' or ']' "
                     "(while parsing a flow sequence at 1:9)");
        assert_error("source: a: b\n",
                     "walcast.yaml:1:10: mapping values are not allowed in "
                     "this context");
        assert_error("source:\n\tdsn: dbname=x\n",
                     "walcast.yaml:2:1: found character that cannot start "
                     "any token (while scanning for the next token at 2:1)");
        assert_error("a: *\n",
                     "walcast.yaml:1:5: did not find expected alphabetic or "
                     "numeric character (while scanning an alias at 1:4)");
        /* reader errors carry an offset, turned into a position here */
        assert_error("source:\n  dsn: \"ab\xff\"\n",
                     "walcast.yaml:2:11: invalid leading UTF-8 octet (#xff)");
        assert_error("source:\n  dsn: \"\xc3",
                     "walcast.yaml:2:9: incomplete UTF-8 octet sequence");
        assert_error("source:\n  d\x01: x\n",
                     "walcast.yaml:2:4: control characters are not allowed "
                     "(#x1)");
}

static void test_nul_and_depth(void **state)
{
        static const char nul[] = "source:\n  dsn: \"a\\0b\"\n";
        char deep[200];

        (void)state;
        assert_error(nul, "walcast.yaml:2:8: a scalar contains a NUL "
                          "character");
        /* a NUL byte in the text itself is a reader error */
        {
                static const char raw[] = "source: a\0b\n";
                struct wc_config *c =
                    wc_config_load_string("walcast.yaml", raw, sizeof(raw) - 1,
                                          errbuf, sizeof(errbuf));

                assert_null(c);
                assert_string_equal(errbuf, "walcast.yaml:1:10: control "
                                            "characters are not allowed (#x0)");
        }

        memset(deep, '[', 100);
        deep[100] = '\0';
        assert_error(deep, "walcast.yaml:1:65: nesting deeper than 64 levels");
        memset(deep, 0, sizeof(deep));
        for (int i = 0; i < 64; i++)
                deep[i] = '[';
        for (int i = 0; i < 64; i++)
                deep[64 + i] = ']';
        /* 64 levels parse, and then fail the schema */
        assert_error(deep, "walcast.yaml:1:1: expected a mapping at the top "
                           "level, found a sequence");
}

/* Values in messages are escaped and cut, so they cannot break a log line
 * or push the position out of a small buffer. */
static void test_message_quoting(void **state)
{
        char text[512], name[201], expected[512];
        const char *oe;

        (void)state;
        assert_error(
            "source:\n  dsn: dbname=x\n  slot: \"a\\\"b\\\\c\\nd\\te\"\n" SINKS,
            "walcast.yaml:3:9: invalid slot name \"a\\\"b\\\\c\\x0ad"
            "\\x09e\": use 1 to 63 characters of a-z, 0-9 and _");
        memset(name, 'A', 200);
        name[200] = '\0';
        snprintf(text, sizeof(text),
                 "source:\n  dsn: dbname=x\n  slot: %s\n" SINKS, name);
        assert_error(text,
                     "walcast.yaml:3:9: invalid slot name \"AAAAAAAAAAAAAAAAA"
                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                     "...\": use 1 to 63 characters of a-z, 0-9 and _");
        /* a cut never splits a UTF-8 sequence */
        assert_error(
            "source:\n  dsn: dbname=x\n  slot: \"\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\"\n" SINKS,
            "walcast.yaml:3:9: invalid slot name \"\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6"
            "\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6\xc3\xb6...\": use 1 to "
            "63 characters of a-z, 0-9 and _");
        /* ...and keeps the last one when it is whole */
        oe = "\xc3\xb6";
        snprintf(text, sizeof(text), "source:\n  dsn: dbname=x\n  slot: \"a");
        for (int i = 0; i < 36; i++)
                strcat(text, oe);
        strcat(text, "\"\n" SINKS);
        snprintf(expected, sizeof(expected),
                 "walcast.yaml:3:9: invalid slot name \"a");
        for (int i = 0; i < 35; i++)
                strcat(expected, oe);
        strcat(expected, "...\": use 1 to 63 characters of a-z, 0-9 and _");
        assert_error(text, expected);
}

/* ---- signals ---- */

static void test_signals(void **state)
{
        static const struct {
                const char *text;
                uint32_t n;
        } good[] = {
            {"1", 1},
            {"1000000", 1000000},
            {"250", 250},
            {"\"500\"", 500},
            {"'7'", 7},
            /* leading zeros are decimal, never octal */
            {"0100", 100},
        };
        struct wc_config *c;

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char text[256];

                snprintf(text, sizeof(text),
                         SOURCE SINKS "signals:\n  bulk_delete_batch: %s\n",
                         good[i].text);
                c = load(text);
                assert_string_equal(errbuf, "");
                assert_non_null(c);
                assert_int_equal(c->signals.bulk_delete_batch, good[i].n);
                wc_config_free(c);
        }

        /* an empty section takes its defaults */
        c = load(SOURCE SINKS "signals:\n");
        assert_non_null(c);
        assert_int_equal(c->signals.bulk_delete_batch, 1000);
        wc_config_free(c);
        c = load(SOURCE SINKS "signals: {}\n");
        assert_non_null(c);
        assert_int_equal(c->signals.bulk_delete_batch, 1000);
        wc_config_free(c);

        setenv("WC_BATCH", "64", 1);
        c = load(SOURCE SINKS "signals:\n  bulk_delete_batch: ${WC_BATCH}\n");
        assert_non_null(c);
        assert_int_equal(c->signals.bulk_delete_batch, 64);
        wc_config_free(c);
        unsetenv("WC_BATCH");
}

static void test_bad_bulk_delete_batch(void **state)
{
        static const char *const bad[] = {
            "0",    "-1",    "abc", "1000001",    "1.5",
            "",     "+5",    " 5",  "5 ",         "1e3",
            "0x10", "1_000", "10k", "4294967296", "99999999999999999999999",
        };

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[256], msg[256];

                snprintf(text, sizeof(text),
                         SOURCE SINKS "signals:\n  bulk_delete_batch: \"%s\"\n",
                         bad[i]);
                snprintf(msg, sizeof(msg),
                         "walcast.yaml:8:22: invalid bulk_delete_batch \"%s\": "
                         "use a number from 1 to 1000000",
                         bad[i]);
                assert_error(text, msg);
        }
        /* unquoted, the same */
        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batch: -1\n",
                     "walcast.yaml:8:22: invalid bulk_delete_batch \"-1\": use "
                     "a number from 1 to 1000000");
        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batch: 1.5\n",
                     "walcast.yaml:8:22: invalid bulk_delete_batch \"1.5\": "
                     "use a number from 1 to 1000000");

        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batch: [1]\n",
                     "walcast.yaml:8:22: expected an integer for "
                     "\"signals.bulk_delete_batch\", found a sequence");
        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batch: {n: 1}\n",
                     "walcast.yaml:8:22: expected an integer for "
                     "\"signals.bulk_delete_batch\", found a mapping");
        assert_error(SOURCE SINKS "signals:\n  bulk_delete_batch:\n",
                     "walcast.yaml:8:3: missing value for "
                     "\"signals.bulk_delete_batch\"");
        assert_error(SOURCE SINKS "signals: [bulk_delete_batch]\n",
                     "walcast.yaml:7:10: expected a mapping for \"signals\", "
                     "found a sequence");
        assert_error(SOURCE SINKS "signals: 1000\n",
                     "walcast.yaml:7:10: expected a mapping for \"signals\", "
                     "found a scalar");
        assert_error(SOURCE SINKS "signals: {bulk_delete_batch: 1, "
                                  "bulk_delete_batch: 2}\n",
                     "walcast.yaml:7:33: duplicate key \"bulk_delete_batch\" "
                     "in \"signals\"");

        /* checked after expansion */
        setenv("WC_BATCH", "abc", 1);
        assert_error(SOURCE SINKS
                     "signals:\n  bulk_delete_batch: ${WC_BATCH}\n",
                     "walcast.yaml:8:22: invalid bulk_delete_batch \"abc\": "
                     "use a number from 1 to 1000000");
        unsetenv("WC_BATCH");
}

/* ---- plugin sinks ---- */

/* Asserts the flattened config of p: n key/value pairs, in order. */
static void assert_kv(const struct wc_plugin_sink_config *p, size_t n, ...)
{
        va_list ap;

        assert_int_equal(p->nconfig, n);
        if (n == 0)
                assert_null(p->config);
        va_start(ap, n);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(p->config[i].key, va_arg(ap, const char *));
                assert_string_equal(p->config[i].value,
                                    va_arg(ap, const char *));
        }
        va_end(ap);
}

/* Every kind takes the common per-sink filter, in the global filter's
 * shapes, and a plain list for the include list. */
static void test_sink_filters(void **state)
{
        const struct wc_sink_common *k;
        struct wc_config *c;

        (void)state;
        c = load(SOURCE "sinks:\n"
                        "  - file:\n"
                        "      path: out.jsonl\n"
                        "      tables: {exclude: [\"*.secret\"]}\n"
                        "      ops: [insert, delete]\n"
                        "  - plugin:\n"
                        "      path: /a.so\n"
                        "      schemas: {include: [town6], exclude: "
                        "[town6-archive]}\n"
                        "      tables: [tickets]\n"
                        "  - kafka:\n"
                        "      properties: {bootstrap.servers: x}\n"
                        "      schemas: [org-*]\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_int_equal(c->nsinks, 3);
        k = c->sinks[0].conf;
        assert_int_equal(k->filter.schemas_include.count, 0);
        assert_list(&k->filter.tables_exclude, 1, "*.secret");
        assert_int_equal(k->filter.ops,
                         WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_DELETE));
        k = c->sinks[1].conf;
        assert_list(&k->filter.schemas_include, 1, "town6");
        assert_list(&k->filter.schemas_exclude, 1, "town6-archive");
        assert_list(&k->filter.tables_include, 1, "tickets");
        assert_int_equal(k->filter.ops, WC_OPS_DATA);
        k = c->sinks[2].conf;
        assert_list(&k->filter.schemas_include, 1, "org-*");
        assert_int_equal(k->filter.tables_include.count, 0);
        /* the global filter is untouched by the sinks' */
        assert_int_equal(c->filter.tables_exclude.count, 0);
        assert_int_equal(c->filter.ops, WC_OPS_DATA);
        wc_config_free(c);

        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n"
                            "      tables: {include: [\"\"]}\n",
                     "walcast.yaml:7:26: empty pattern in "
                     "\"sinks[0].file.tables.include\"");
        assert_error(SOURCE "sinks:\n  - file:\n      path: a\n"
                            "      ops: [select]\n",
                     "walcast.yaml:7:13: invalid op \"select\": use insert, "
                     "update, delete, truncate or message");
}

static void test_plugins_file(void **state)
{
        const struct wc_plugin_sink_config *p;
        struct wc_config *c;

        (void)state;
        setenv("WALCAST_TEST_AUDIT_DIR", "/var/log/walcast", 1);
        c = load_data("config/valid-plugins.yaml");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_int_equal(c->signals.bulk_delete_batch, 250);
        assert_int_equal(c->nsinks, 3);

        assert_string_equal(c->sinks[0].kind, "plugin");
        assert_int_equal(c->sinks[0].line, 9);
        assert_int_equal(c->sinks[0].column, 5);
        p = SINK_CONF(c, 0, plugin);
        assert_string_equal(p->path, "/usr/lib/walcast/plugins/audit.so");
        assert_list(&p->common.filter.schemas_include, 2, "town6-*",
                    "org-acme");
        /* document order; empty collections give no pair */
        assert_kv(p, 8, "file", "/var/log/walcast/audit.jsonl", "nested.a", "1",
                  "nested.b.0", "x", "nested.b.1", "y", "empty", "",
                  "dotted.key", "kept", "list.0.name", "first", "list.1", "");

        assert_string_equal(c->sinks[1].kind, "file");
        assert_int_equal(c->sinks[1].line, 21);
        assert_int_equal(c->sinks[1].column, 5);
        assert_string_equal(SINK_CONF(c, 1, file)->path, "-");
        assert_true(SINK_CONF(c, 1, file)->fsync);

        assert_string_equal(c->sinks[2].kind, "plugin");
        assert_int_equal(c->sinks[2].line, 22);
        assert_int_equal(c->sinks[2].column, 5);
        p = SINK_CONF(c, 2, plugin);
        assert_string_equal(p->path, "/opt/walcast/count.so");
        assert_int_equal(p->common.filter.schemas_include.count, 0);
        assert_null(p->common.filter.schemas_include.items);
        assert_kv(p, 0);
        wc_config_free(c);
        unsetenv("WALCAST_TEST_AUDIT_DIR");
}

/* Scalars reach the plugin as text: no YAML typing, expansion applied. */
static void test_plugin_config_values(void **state)
{
        struct wc_config *c;

        (void)state;
        setenv("WC_X", "x", 1);
        setenv("WC_EMPTY", "", 1);
        c = load(PLUGIN "      path: /a.so\n      config:\n"
                        "        s: plain text\n"
                        "        q: \"double: quoted\"\n"
                        "        n: 1.50\n"
                        "        b: yes\n"
                        "        t: ~\n"
                        "        e:\n"
                        "        nul: null\n"
                        "        qnull: \"null\"\n"
                        "        em: {}\n"
                        "        es: []\n"
                        "        blk: |\n          line1\n          line2\n"
                        "        \"a.b\": dotted\n"
                        "        \"${WC_X}\": key\n"
                        "        v: \"${WC_X}-$$-${WC_EMPTY}\"\n"
                        "        deep: {l: [[a, b], {c: d}, [], {}, ~]}\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_kv(SINK_CONF(c, 0, plugin), 16, "s", "plain text", "q",
                  "double: quoted", "n", "1.50", "b", "yes", "t", "", "e", "",
                  "nul", "", "qnull", "null", "blk", "line1\nline2\n", "a.b",
                  "dotted", "${WC_X}", "key", "v", "x-$-", "deep.l.0.0", "a",
                  "deep.l.0.1", "b", "deep.l.1.c", "d", "deep.l.4", "");
        wc_config_free(c);
        unsetenv("WC_X");
        unsetenv("WC_EMPTY");

        /* no config, or an empty one: no pairs */
        c = load(PLUGIN "      path: /a.so\n      config:\n");
        assert_non_null(c);
        assert_kv(SINK_CONF(c, 0, plugin), 0);
        wc_config_free(c);
        c = load(PLUGIN "      path: /a.so\n      config: {}\n"
                        "      schemas:\n");
        assert_non_null(c);
        assert_kv(SINK_CONF(c, 0, plugin), 0);
        assert_int_equal(
            SINK_CONF(c, 0, plugin)->common.filter.schemas_include.count, 0);
        wc_config_free(c);
}

/* "k0000: v" ... one line each, after a plugin path and "config:". */
static char *plugin_with_keys(size_t n)
{
        size_t cap = 256 + n * 20, len;
        char *text = malloc(cap);

        assert_non_null(text);
        len = (size_t)snprintf(text, cap,
                               PLUGIN "      path: /a.so\n      config:\n");
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(text + len, cap - len,
                                        "        k%04zu: v\n", i);
        return text;
}

static void test_plugin_config_limits(void **state)
{
        char key[1100], text[2600], expected[512], *big;
        struct wc_config *c;

        (void)state;
        big = plugin_with_keys(1024);
        c = load(big);
        free(big);
        assert_non_null(c);
        assert_int_equal(SINK_CONF(c, 0, plugin)->nconfig, 1024);
        assert_string_equal(SINK_CONF(c, 0, plugin)->config[1023].key, "k1023");
        wc_config_free(c);

        big = plugin_with_keys(1025);
        assert_error(big, "walcast.yaml:1032:9: more than 1024 values in "
                          "\"sinks[0].plugin.config\"");
        free(big);

        /* a flattened key may be 1024 bytes long */
        memset(key, 'k', 1024);
        key[1024] = '\0';
        snprintf(text, sizeof(text),
                 PLUGIN "      path: /a.so\n      config: {%s: v}\n", key);
        c = load(text);
        assert_non_null(c);
        assert_string_equal(SINK_CONF(c, 0, plugin)->config[0].key, key);
        wc_config_free(c);

        /* ...not longer (YAML itself caps implicit keys at 1024
         * characters, so this one is explicit); long values in the message
         * are cut */
        key[1024] = 'k';
        key[1025] = '\0';
        snprintf(text, sizeof(text),
                 PLUGIN "      path: /a.so\n      config:\n        ? %s\n"
                        "        : v\n",
                 key);
        snprintf(expected, sizeof(expected),
                 "walcast.yaml:8:11: key \"%.71s...\" in "
                 "\"sinks[0].plugin.config\" is longer than 1024 bytes with "
                 "the keys above it",
                 key);
        assert_error(text, expected);

        /* counting the keys above it: 600 + "." + 500 */
        {
                char a[601], b[501];

                memset(a, 'a', 600);
                a[600] = '\0';
                memset(b, 'b', 500);
                b[500] = '\0';
                snprintf(text, sizeof(text),
                         PLUGIN "      path: /a.so\n      config: {%s: {%s: "
                                "1}}\n",
                         a, b);
                snprintf(expected, sizeof(expected),
                         "walcast.yaml:7:619: key \"%.71s...\" in "
                         "\"sinks[0].plugin.config.%.98s...\" is longer than "
                         "1024 bytes with the keys above it",
                         b, a);
                assert_error(text, expected);
        }
}

static void test_bad_plugins(void **state)
{
        static const char *const relative[] = {"audit.so", "./audit.so",
                                               "plugins/audit.so", "~/audit.so",
                                               "../lib/audit.so"};

        (void)state;
        /* path */
        assert_error(PLUGIN "      schemas: [a]\n",
                     "walcast.yaml:5:5: missing required key \"path\" in "
                     "\"sinks[0].plugin\"");
        assert_error(PLUGIN, "walcast.yaml:5:5: missing required key \"path\" "
                             "in \"sinks[0].plugin\"");
        for (size_t i = 0; i < sizeof(relative) / sizeof(relative[0]); i++) {
                char text[256], msg[256];

                snprintf(text, sizeof(text), PLUGIN "      path: %s\n",
                         relative[i]);
                snprintf(msg, sizeof(msg),
                         "walcast.yaml:6:13: relative path \"%s\" for "
                         "\"sinks[0].plugin.path\": use an absolute path",
                         relative[i]);
                assert_error(text, msg);
        }
        setenv("WC_REL", "audit.so", 1);
        assert_error(PLUGIN "      path: ${WC_REL}\n",
                     "walcast.yaml:6:13: relative path \"audit.so\" for "
                     "\"sinks[0].plugin.path\": use an absolute path");
        unsetenv("WC_REL");
        assert_error(PLUGIN "      path: [/a.so]\n",
                     "walcast.yaml:6:13: expected a string for "
                     "\"sinks[0].plugin.path\", found a sequence");
        assert_error(PLUGIN "      path: {so: /a.so}\n",
                     "walcast.yaml:6:13: expected a string for "
                     "\"sinks[0].plugin.path\", found a mapping");
        assert_error(PLUGIN "      path: ''\n",
                     "walcast.yaml:6:13: empty value for "
                     "\"sinks[0].plugin.path\"");
        assert_error(PLUGIN "      path:\n",
                     "walcast.yaml:6:7: missing value for "
                     "\"sinks[0].plugin.path\"");
        assert_error(PLUGIN "      path: /a.so\n      path: /b.so\n",
                     "walcast.yaml:7:7: duplicate key \"path\" in "
                     "\"sinks[0].plugin\"");
        assert_error(SOURCE "sinks:\n  - plugin: /a.so\n",
                     "walcast.yaml:5:13: expected a mapping for "
                     "\"sinks[0].plugin\", found a scalar");

        /* schemas */
        assert_error(PLUGIN "      path: /a.so\n      schemas: town6-*\n",
                     "walcast.yaml:7:16: expected a sequence or a mapping "
                     "for \"sinks[0].plugin.schemas\", found a scalar");
        assert_error(PLUGIN "      path: /a.so\n      schemas: {include: "
                            "[a], exclud: [b]}\n",
                     "walcast.yaml:7:31: unknown key \"exclud\" in "
                     "\"sinks[0].plugin.schemas\"");
        assert_error(PLUGIN "      path: /a.so\n      schemas: [a, \"\"]\n",
                     "walcast.yaml:7:20: empty pattern in "
                     "\"sinks[0].plugin.schemas\"");
        assert_error(PLUGIN "      path: /a.so\n      schemas: [a, [b]]\n",
                     "walcast.yaml:7:20: expected a string for "
                     "\"sinks[0].plugin.schemas[1]\", found a sequence");

        /* config: the block must be a mapping */
        assert_error(PLUGIN "      path: /a.so\n      config: [a, b]\n",
                     "walcast.yaml:7:15: expected a mapping for "
                     "\"sinks[0].plugin.config\", found a sequence");
        assert_error(PLUGIN "      path: /a.so\n      config:\n        - a\n",
                     "walcast.yaml:8:9: expected a mapping for "
                     "\"sinks[0].plugin.config\", found a sequence");
        assert_error(PLUGIN "      path: /a.so\n      config: file=x\n",
                     "walcast.yaml:7:15: expected a mapping for "
                     "\"sinks[0].plugin.config\", found a scalar");
}

/* Inside config any key goes, but the YAML rules still hold. */
static void test_bad_plugin_config(void **state)
{
        (void)state;
        assert_error(PLUGIN "      path: /a.so\n      config:\n"
                            "        file: a\n        file: b\n",
                     "walcast.yaml:9:9: duplicate key \"file\" in "
                     "\"sinks[0].plugin.config\"");
        assert_error(PLUGIN "      path: /a.so\n"
                            "      config: {n: {a: 1, b: 2, a: 3}}\n",
                     "walcast.yaml:7:32: duplicate key \"a\" in "
                     "\"sinks[0].plugin.config.n\"");
        /* the first repeat in the file, not in sorted order */
        assert_error(PLUGIN "      path: /a.so\n"
                            "      config: {b: 1, a: 1, b: 2, a: 2}\n",
                     "walcast.yaml:7:28: duplicate key \"b\" in "
                     "\"sinks[0].plugin.config\"");
        /* even when neither value would give a pair */
        assert_error(PLUGIN "      path: /a.so\n      config: {e: {}, e: []}\n",
                     "walcast.yaml:7:23: duplicate key \"e\" in "
                     "\"sinks[0].plugin.config\"");

        /* two spellings of one flattened key */
        assert_error(PLUGIN "      path: /a.so\n      config:\n"
                            "        a.b: 1\n        a: {b: 2}\n",
                     "walcast.yaml:9:13: duplicate key \"a.b\" in "
                     "\"sinks[0].plugin.config\" once flattened: a \".\" in a "
                     "key reads as nesting");
        assert_error(PLUGIN "      path: /a.so\n      config:\n"
                            "        list.0: y\n        list: [x]\n",
                     "walcast.yaml:9:16: duplicate key \"list.0\" in "
                     "\"sinks[0].plugin.config\" once flattened: a \".\" in a "
                     "key reads as nesting");

        assert_error(PLUGIN "      path: /a.so\n      config: {\"\": x}\n",
                     "walcast.yaml:7:16: empty key in "
                     "\"sinks[0].plugin.config\"");
        assert_error(PLUGIN "      path: /a.so\n      config: {a: {~: x}}\n",
                     "walcast.yaml:7:20: empty key in "
                     "\"sinks[0].plugin.config.a\"");
        assert_error(PLUGIN "      path: /a.so\n      config: {[a]: x}\n",
                     "walcast.yaml:7:16: expected a string key in "
                     "\"sinks[0].plugin.config\", found a sequence");
        assert_error(PLUGIN "      path: /a.so\n      config: {l: [{{a: 1}: "
                            "2}]}\n",
                     "walcast.yaml:7:21: expected a string key in "
                     "\"sinks[0].plugin.config.l[0]\", found a mapping");
        assert_error(PLUGIN "      path: /a.so\n      config: {a: &x 1, b: "
                            "*x}\n",
                     "walcast.yaml:7:28: alias \"*x\" is not supported: write "
                     "the value out instead");

        /* expansion, and its errors naming the value's place */
        unsetenv("WALCAST_TEST_UNSET");
        assert_error(PLUGIN "      path: /a.so\n"
                            "      config:\n        file: "
                            "${WALCAST_TEST_UNSET}\n",
                     "walcast.yaml:8:15: environment variable "
                     "\"WALCAST_TEST_UNSET\" is not set");
        assert_error(PLUGIN "      path: /a.so\n      config: {n: [\"${X\"]}\n",
                     "walcast.yaml:7:20: missing \"}\" after \"${\" in "
                     "\"sinks[0].plugin.config.n[0]\"");
        /* keys are the user's text: escaped in messages like values */
        assert_error(PLUGIN "      path: /a.so\n"
                            "      config: {\"a\\x01\\\"b\": \"${}\"}\n",
                     "walcast.yaml:7:28: invalid environment variable name "
                     "\"\" in \"sinks[0].plugin.config.a\\x01\\\"b\"");
}

/* ---- files and buffers ---- */

/* ---- kafka sinks ---- */

/* A source and the opening of a kafka sink (lines 1-5); its keys follow
 * from line 6, at column 7. */
#define KAFKA SOURCE "sinks:\n  - kafka:\n"
/* The one key a kafka sink needs, on line 6. */
#define BROKERS "      properties: {bootstrap.servers: \"127.0.0.1:9092\"}\n"

/* A kafka sink with the default template and a prefix of n "a". */
static struct wc_config *load_prefix(size_t n)
{
        char text[1024];
        int len =
            snprintf(text, sizeof(text), "%s      prefix: ", KAFKA BROKERS);

        assert_true(len > 0 && (size_t)len + n + 2 < sizeof(text));
        memset(text + len, 'a', n);
        memcpy(text + len + n, "\n", 2);
        return load(text);
}

static void test_kafka_defaults(void **state)
{
        const struct wc_kafka_sink_config *k;
        struct wc_config *c;

        (void)state;
        c = load(KAFKA BROKERS);
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_int_equal(c->nsinks, 1);
        assert_string_equal(c->sinks[0].kind, "kafka");
        assert_int_equal(c->sinks[0].line, 5);
        assert_int_equal(c->sinks[0].column, 5);
        k = SINK_CONF(c, 0, kafka);
        assert_string_equal(k->topic, "{prefix}.{schema}.{table}");
        assert_string_equal(k->prefix, "walcast");
        assert_true(k->tombstones);
        assert_int_equal(k->nproperties, 1);
        assert_string_equal(k->properties[0].key, "bootstrap.servers");
        assert_string_equal(k->properties[0].value, "127.0.0.1:9092");
        assert_int_equal(k->common.filter.schemas_include.count, 0);
        assert_int_equal(k->common.filter.schemas_exclude.count, 0);
        assert_int_equal(k->common.filter.tables_include.count, 0);
        assert_int_equal(k->common.filter.tables_exclude.count, 0);
        assert_int_equal(k->common.filter.ops, WC_OPS_DATA);
        wc_config_free(c);
}

static void test_kafka_values(void **state)
{
        static const char *const want[][2] = {
            {"bootstrap.servers", "a:1,b:2"},
            {"linger.ms", "20"},
            {"enable.idempotence", "true"},
            {"ssl.ca.location", "/etc/ssl/ca.pem"},
            {"sasl.password", "s3cret"},
        };
        const struct wc_kafka_sink_config *k;
        struct wc_config *c;

        (void)state;
        setenv("WALCAST_TEST_KAFKA_PW", "s3cret", 1);
        c = load(KAFKA "      topic: \"{namespace}.{tenant}_{table}\"\n"
                       "      prefix: app\n"
                       "      tombstones: false\n"
                       "      properties:\n"
                       "        bootstrap.servers: a:1,b:2\n"
                       "        linger.ms: 20\n"
                       "        enable.idempotence: true\n"
                       "        ssl: {ca: {location: /etc/ssl/ca.pem}}\n"
                       "        sasl.password: ${WALCAST_TEST_KAFKA_PW}\n"
                       "      schemas: {include: [town6], exclude: "
                       "[\"*-archive\"]}\n"
                       "      tables: {exclude: [\"*.audit\"]}\n"
                       "      ops: [insert, delete]\n");
        unsetenv("WALCAST_TEST_KAFKA_PW");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_string_equal(k->topic, "{namespace}.{tenant}_{table}");
        assert_string_equal(k->prefix, "app");
        assert_false(k->tombstones);
        assert_int_equal(k->nproperties, 5);
        for (size_t i = 0; i < 5; i++) {
                assert_string_equal(k->properties[i].key, want[i][0]);
                assert_string_equal(k->properties[i].value, want[i][1]);
        }
        assert_list(&k->common.filter.schemas_include, 1, "town6");
        assert_list(&k->common.filter.schemas_exclude, 1, "*-archive");
        assert_int_equal(k->common.filter.tables_include.count, 0);
        assert_list(&k->common.filter.tables_exclude, 1, "*.audit");
        assert_int_equal(k->common.filter.ops,
                         WC_OP_BIT(WC_OP_INSERT) | WC_OP_BIT(WC_OP_DELETE));
        /* the global filter is untouched by a sink's */
        assert_int_equal(c->filter.ops, WC_OPS_DATA);
        assert_int_equal(c->filter.schemas_include.count, 0);
        wc_config_free(c);

        /* a literal topic is fine; a prefix no template uses is not
         * checked */
        c = load(KAFKA BROKERS "      topic: all-changes_v1\n"
                               "      prefix: \"not used\"\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_string_equal(SINK_CONF(c, 0, kafka)->topic, "all-changes_v1");
        wc_config_free(c);

        /* 249 characters in all is the most */
        c = load_prefix(247);
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        wc_config_free(c);
}

#define PLACEHOLDERS                                                           \
        "use {prefix}, {database}, {schema}, {namespace}, {tenant} or "        \
        "{table}"
#define TOPIC_CHARS "use letters, digits, \".\", \"_\" and \"-\""

/* value_format and the sink's own topics (docs/kafka.md, "The debezium
 * format", "Transaction metadata"). */
static void test_kafka_debezium_keys(void **state)
{
        const struct wc_kafka_sink_config *k;
        struct wc_config *c;

        (void)state;
        c = load(KAFKA BROKERS);
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_int_equal(k->value_format, WC_KAFKA_FORMAT_WALCAST);
        assert_false(k->schemas_enable);
        assert_null(k->transactions_topic);
        assert_null(k->messages_topic);
        assert_null(k->heartbeat_topic);
        assert_string_equal(k->heartbeat_prefix, "walcast.heartbeat");
        wc_config_free(c);
        c = load(KAFKA BROKERS
                 "      value_format: debezium\n"
                 "      decimal_handling: string\n"
                 "      time_precision: connect\n"
                 "      schemas_enable: true\n"
                 "      transactions_topic: app.transaction\n"
                 "      messages_topic: app.message\n"
                 "      heartbeat_topic: __debezium-heartbeat.app\n"
                 "      heartbeat_prefix: hb\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_int_equal(k->value_format, WC_KAFKA_FORMAT_DEBEZIUM);
        assert_int_equal(k->decimal_handling, 1); /* WC_DBZ_DECIMAL_STRING */
        assert_int_equal(k->time_precision, 1);   /* WC_DBZ_TIME_CONNECT */
        assert_true(k->schemas_enable);
        assert_string_equal(k->transactions_topic, "app.transaction");
        assert_string_equal(k->messages_topic, "app.message");
        assert_string_equal(k->heartbeat_topic, "__debezium-heartbeat.app");
        assert_string_equal(k->heartbeat_prefix, "hb");
        wc_config_free(c);

        assert_error(KAFKA BROKERS "      value_format: avro\n",
                     "walcast.yaml:7:21: invalid value_format \"avro\": use "
                     "walcast or debezium");
        assert_error(KAFKA BROKERS "      value_format: debezium\n"
                                   "      decimal_handling: exact\n",
                     "walcast.yaml:8:25: invalid decimal_handling \"exact\": "
                     "use precise, string or double");
        assert_error(KAFKA BROKERS "      schemas_enable: true\n",
                     "walcast.yaml:7:23: \"schemas_enable\" applies to "
                     "value_format: debezium only in \"sinks[0].kafka\": set "
                     "value_format: debezium, or remove it");
        /* column rules */
        c = load(KAFKA BROKERS "      mask_salt: pepper\n"
                               "      columns:\n"
                               "        - tables: [\"*.users\"]\n"
                               "          exclude: [password_hash]\n"
                               "          mask: [email]\n"
                               "        - tables: [events]\n"
                               "          key_columns: [event_id]\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_int_equal(k->ncolumn_rules, 2);
        assert_list(&k->column_rules[0].tables, 1, "*.users");
        assert_list(&k->column_rules[0].exclude, 1, "password_hash");
        assert_list(&k->column_rules[0].mask, 1, "email");
        assert_list(&k->column_rules[1].key_columns, 1, "event_id");
        assert_string_equal(k->mask_salt, "pepper");
        wc_config_free(c);
        assert_error(KAFKA BROKERS "      columns:\n"
                                   "        - tables: [t]\n"
                                   "          mask: [email]\n",
                     "walcast.yaml:8:9: \"columns\" masks columns in "
                     "\"sinks[0].kafka\" but \"mask_salt\" is not set: set "
                     "it, e.g. mask_salt: ${WALCAST_MASK_SALT}");
        assert_error(KAFKA BROKERS "      columns:\n"
                                   "        - tables: [t]\n"
                                   "          key_columns: [a]\n"
                                   "          exclude: [b, a]\n",
                     "walcast.yaml:10:20: \"a\" is a key column in "
                     "\"sinks[0].kafka.columns[0]\": it cannot be excluded");
        assert_error(KAFKA BROKERS "      columns:\n"
                                   "        - exclude: [a]\n",
                     "walcast.yaml:8:11: missing required key \"tables\" in "
                     "\"sinks[0].kafka.columns[0]\"");
        /* outbox */
        c = load(KAFKA BROKERS);
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_int_equal(k->outbox.tables.count, 0);
        wc_config_free(c);
        c = load(KAFKA BROKERS "      outbox:\n"
                               "        tables: [\"*.outbox\"]\n"
                               "        headers: [type]\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_list(&k->outbox.tables, 1, "*.outbox");
        assert_string_equal(k->outbox.topic, "outbox.event.{aggregatetype}");
        assert_string_equal(k->outbox.aggregatetype, "aggregatetype");
        assert_string_equal(k->outbox.aggregateid, "aggregateid");
        assert_string_equal(k->outbox.payload, "payload");
        assert_string_equal(k->outbox.id, "id");
        assert_list(&k->outbox.headers, 1, "type");
        wc_config_free(c);
        c = load(KAFKA BROKERS "      outbox:\n"
                               "        tables: [\"*.outbox\"]\n"
                               "        topic: \"{tenant}.{aggregatetype}\"\n"
                               "        columns: {aggregatetype: kind}\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        assert_string_equal(SINK_CONF(c, 0, kafka)->outbox.aggregatetype,
                            "kind");
        wc_config_free(c);
        assert_error(KAFKA BROKERS "      outbox:\n"
                                   "        tables: [\"*.outbox\"]\n"
                                   "        topic: \"{aggregate}\"\n",
                     "walcast.yaml:9:16: unknown placeholder \"{aggregate}\" "
                     "in the topic template: use {prefix}, {database}, "
                     "{schema}, {namespace}, {tenant}, {table} or "
                     "{aggregatetype}");
        assert_error(KAFKA BROKERS "      outbox:\n"
                                   "        topic: x\n",
                     "walcast.yaml:7:7: missing required key \"tables\" in "
                     "\"sinks[0].kafka.outbox\"");
        /* topic creation: off unless the block is there */
        c = load(KAFKA BROKERS);
        assert_non_null(c);
        assert_false(SINK_CONF(c, 0, kafka)->topic_creation.enabled);
        wc_config_free(c);
        c = load(KAFKA BROKERS "      topic_creation:\n"
                               "        partitions: 6\n"
                               "        config: {cleanup.policy: compact}\n");
        assert_string_equal(errbuf, "");
        assert_non_null(c);
        k = SINK_CONF(c, 0, kafka);
        assert_true(k->topic_creation.enabled);
        assert_int_equal(k->topic_creation.partitions, 6);
        assert_int_equal(k->topic_creation.replication_factor, 0);
        assert_int_equal(k->topic_creation.nconfig, 1);
        assert_string_equal(k->topic_creation.config[0].key, "cleanup.policy");
        assert_string_equal(k->topic_creation.config[0].value, "compact");
        assert_int_equal(k->topic_creation.timeout_ms, 10000);
        wc_config_free(c);
        assert_error(KAFKA BROKERS "      messages_topic: m\n"
                                   "      ops: [insert]\n",
                     "walcast.yaml:8:12: \"messages_topic\" is set in "
                     "\"sinks[0].kafka\" but \"ops\" leaves out message: add "
                     "message to ops");
        assert_error(KAFKA BROKERS "      transactions_topic: \"a b\"\n",
                     "walcast.yaml:7:27: \"a b\" for "
                     "\"sinks[0].kafka.transactions_topic\" is not a legal "
                     "Kafka topic name: use 1 to 249 of letters, digits, "
                     "\".\", \"_\" and \"-\"");
}

static void test_bad_kafka(void **state)
{
        (void)state;
        assert_error(KAFKA "      topic: t\n",
                     "walcast.yaml:5:5: missing "
                     "\"properties.bootstrap.servers\" in \"sinks[0].kafka\": "
                     "name at least one broker, as "
                     "\"host:port[,host:port...]\"");
        assert_error(SOURCE "sinks:\n  - kafka:\n",
                     "walcast.yaml:5:5: missing "
                     "\"properties.bootstrap.servers\" in \"sinks[0].kafka\": "
                     "name at least one broker, as "
                     "\"host:port[,host:port...]\"");
        assert_error(KAFKA "      properties: {bootstrap.servers: \"\"}\n",
                     "walcast.yaml:5:5: missing "
                     "\"properties.bootstrap.servers\" in \"sinks[0].kafka\": "
                     "name at least one broker, as "
                     "\"host:port[,host:port...]\"");
        assert_error(KAFKA BROKERS "      topic: \"{prefix}.{tabel}\"\n",
                     "walcast.yaml:7:14: unknown placeholder \"{tabel}\" in "
                     "the topic template: " PLACEHOLDERS);
        assert_error(KAFKA BROKERS "      topic: \"{}\"\n",
                     "walcast.yaml:7:14: unknown placeholder \"{}\" in "
                     "the topic template: " PLACEHOLDERS);
        assert_error(KAFKA BROKERS "      topic: \"{Schema}.x\"\n",
                     "walcast.yaml:7:14: unknown placeholder \"{Schema}\" in "
                     "the topic template: " PLACEHOLDERS);
        assert_error(KAFKA BROKERS "      topic: \"{schema\"\n",
                     "walcast.yaml:7:14: \"{\" without \"}\" at character 1 "
                     "of the topic template");
        assert_error(KAFKA BROKERS "      topic: \"{sch{ema}\"\n",
                     "walcast.yaml:7:14: \"{\" without \"}\" at character 1 "
                     "of the topic template");
        assert_error(KAFKA BROKERS "      topic: \"x}\"\n",
                     "walcast.yaml:7:14: \"}\" without \"{\" at character 2 "
                     "of the topic template");
        assert_error(KAFKA BROKERS "      topic: \"a b.{table}\"\n",
                     "walcast.yaml:7:14: the topic template has \" \" at "
                     "character 2, which a Kafka topic name cannot have: "
                     "" TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      topic: \"{schema}/{table}\"\n",
                     "walcast.yaml:7:14: the topic template has \"/\" at "
                     "character 9, which a Kafka topic name cannot have: "
                     "" TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      topic: \"caf\xc3\xa9.{table}\"\n",
                     "walcast.yaml:7:14: the topic template has "
                     "\"\xc3\xa9\" at character 4, which a Kafka topic name "
                     "cannot have: " TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      topic: \"a\\tb\"\n",
                     "walcast.yaml:7:14: the topic template has \"\\x09\" at "
                     "character 2, which a Kafka topic name cannot have: "
                     "" TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      prefix: \"my app\"\n",
                     "walcast.yaml:7:15: the prefix has \" \" at character "
                     "3, which a Kafka topic name cannot have: " TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      prefix: \"a:b\"\n"
                                   "      topic: \"{prefix}-{table}\"\n",
                     "walcast.yaml:7:15: the prefix has \":\" at character "
                     "2, which a Kafka topic name cannot have: " TOPIC_CHARS);
        assert_error(KAFKA BROKERS "      topic: \"..\"\n",
                     "walcast.yaml:7:14: the topic template makes \"..\", "
                     "which is not a legal Kafka topic name: use 1 to 249 of "
                     "letters, digits, \".\", \"_\" and \"-\", other than "
                     "\".\" and \"..\"");
        assert_error(KAFKA BROKERS "      topic: \"{prefix}\"\n"
                                   "      prefix: \".\"\n",
                     "walcast.yaml:7:14: the topic template makes \".\", "
                     "which is not a legal Kafka topic name: use 1 to 249 of "
                     "letters, digits, \".\", \"_\" and \"-\", other than "
                     "\".\" and \"..\"");
        /* too long before any name: at the default template's sink */
        assert_null(load_prefix(248));
        assert_string_equal(errbuf,
                            "walcast.yaml:5:5: the topic template makes names "
                            "of at least 250 characters: a Kafka topic name "
                            "has at most 249");
        assert_error(KAFKA BROKERS "      topic: \"\"\n",
                     "walcast.yaml:7:14: empty value for "
                     "\"sinks[0].kafka.topic\"");
        assert_error(KAFKA BROKERS "      topic: [a]\n",
                     "walcast.yaml:7:14: expected a string for "
                     "\"sinks[0].kafka.topic\", found a sequence");
        assert_error(KAFKA "      properties: [bootstrap.servers]\n",
                     "walcast.yaml:6:19: expected a mapping for "
                     "\"sinks[0].kafka.properties\", found a sequence");
        assert_error(KAFKA BROKERS "      tombstones: yes\n",
                     "walcast.yaml:7:19: invalid boolean \"yes\": use true or "
                     "false");
        assert_error(KAFKA BROKERS "      ops: [insert, select]\n",
                     "walcast.yaml:7:21: invalid op \"select\": use insert, "
                     "update, delete, truncate or message");
        assert_error(KAFKA BROKERS "      schemas: town6\n",
                     "walcast.yaml:7:16: expected a sequence or a mapping "
                     "for \"sinks[0].kafka.schemas\", found a scalar");
        assert_error(KAFKA BROKERS "      tables: {include: [a], exclud: []}\n",
                     "walcast.yaml:7:30: unknown key \"exclud\" in "
                     "\"sinks[0].kafka.tables\"");
        assert_error(KAFKA BROKERS "      topc: x\n",
                     "walcast.yaml:7:7: unknown key \"topc\" in "
                     "\"sinks[0].kafka\"");
        assert_error(KAFKA BROKERS "      path: /x\n",
                     "walcast.yaml:7:7: unknown key \"path\" in "
                     "\"sinks[0].kafka\"");
}

static void test_unreadable(void **state)
{
        char *dir = data_path("config");
        char expected[1024];
        struct wc_config *c;

        (void)state;
        errbuf[0] = '\0';
        c = wc_config_load("/nonexistent/walcast.yaml", errbuf, sizeof(errbuf));
        assert_null(c);
        assert_string_equal(errbuf, "/nonexistent/walcast.yaml: could not "
                                    "open: No such file or directory");

        c = wc_config_load(dir, errbuf, sizeof(errbuf));
        assert_null(c);
        snprintf(expected, sizeof(expected),
                 "%s: the configuration is a directory, not a regular file: "
                 "give -c the path of a YAML file",
                 dir);
        assert_string_equal(errbuf, expected);
        free(dir);

        /* a device is refused without being read */
        c = wc_config_load("/dev/null", errbuf, sizeof(errbuf));
        assert_null(c);
        assert_string_equal(errbuf,
                            "/dev/null: the configuration is a character "
                            "device, not a regular file: give -c the path of "
                            "a YAML file");
}

/* A FIFO has no writer: reading it would block --check (and a reload)
 * forever.  It is refused at once; the alarm ends a test that blocks. */
static void test_fifo_refused(void **state)
{
        char dir[] = "/tmp/wc-config-XXXXXX", path[64], link[64];
        struct wc_config *c;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/walcast.yaml", dir);
        snprintf(link, sizeof(link), "%s/link.yaml", dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(symlink(path, link), 0);
        alarm(10);
        c = wc_config_load(path, errbuf, sizeof(errbuf));
        assert_null(c);
        assert_non_null(strstr(errbuf, path));
        assert_non_null(strstr(errbuf, "is a FIFO (named pipe), not a "
                                       "regular file"));
        /* through a symbolic link too */
        c = wc_config_load(link, errbuf, sizeof(errbuf));
        assert_null(c);
        assert_non_null(strstr(errbuf, "FIFO"));
        alarm(0);
        unlink(link);
        unlink(path);
        rmdir(dir);
}

static void test_small_error_buffers(void **state)
{
        char small[8];
        struct wc_config *c;

        (void)state;
        c = wc_config_load_string("walcast.yaml", "x: 1", 4, small,
                                  sizeof(small));
        assert_null(c);
        assert_string_equal(small, "walcast");
        c = wc_config_load_string("walcast.yaml", "x: 1", 4, NULL, 0);
        assert_null(c);
        c = wc_config_load("/nonexistent", NULL, 0);
        assert_null(c);
        small[0] = 'z';
        c = wc_config_load_string("walcast.yaml", "x: 1", 4, small, 0);
        assert_null(c);
        assert_int_equal(small[0], 'z');
        /* the text need not be NUL-terminated */
        c = wc_config_load_string("walcast.yaml", SOURCE SINKS "garbage",
                                  strlen(SOURCE SINKS), errbuf, sizeof(errbuf));
        assert_non_null(c);
        wc_config_free(c);
}

static void test_too_large(void **state)
{
        char path[] = "/tmp/walcast-test-XXXXXX";
        char expected[256];
        struct wc_config *c;
        int fd = mkstemp(path);

        (void)state;
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (16 << 20) + 1), 0);
        c = wc_config_load(path, errbuf, sizeof(errbuf));
        assert_null(c);
        snprintf(expected, sizeof(expected),
                 "%s: the configuration is larger than 16 MiB", path);
        assert_string_equal(errbuf, expected);
        close(fd);
        unlink(path);
}

/* A DSN libpq cannot parse fails at load, where the file says, with
 * libpq's reason and never a word of a password. */
static void test_dsn_unparseable(void **state)
{
        static const struct {
                const char *dsn;    /* as written in double quotes */
                const char *reason; /* libpq's, redacted */
                const char *secret[3];
        } cases[] = {
            /* libpq reads a password "abc" and a keyword "def" */
            {"host=h password=abc def",
             "missing \"=\" after \"***\" in connection info string",
             {"abc", "def"}},
            {"password=abc\\\\ def x port=5",
             "missing \"=\" after \"***\" in connection info string",
             {"abc", "def", "x"}},
            {"host=x password = 'a b' c",
             "missing \"=\" after \"***\" in connection info string",
             {"'a b'", "\"c\""}},
            {"dbname=app passwrd=secret",
             "invalid connection option \"passwrd\"",
             {"secret"}},
            {"host=h password='sesame",
             "unterminated quoted string in connection info string",
             {"sesame"}},
            {"dbname",
             "missing \"=\" after \"dbname\" in connection info "
             "string",
             {NULL}},
            /* what libpq quotes cannot break the log line */
            {"dbname=app \\e",
             "missing \"=\" after \"\\x1b\" in connection info string",
             {NULL}},
            {"postgresql://u:p%zzsecret@h/db",
             "invalid percent-encoded token: \"***\"",
             {"zzsecret"}},
            {"postgresql://u:pw@[::1/db",
             "end of string reached when looking for matching \"]\" in "
             "IPv6 host address in URI: \"***\"",
             {"pw@"}},
            {"postgresql://h/db?password=s3cr3t&x",
             "missing key/value separator \"=\" in URI query parameter: "
             "\"x\"",
             {"s3cr3t"}},
        };
        char text[512], want[1024];

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct wc_config *c;

                snprintf(text, sizeof(text),
                         "source:\n  dsn: \"%s\"\n  slot: walcast\n" SINKS,
                         cases[i].dsn);
                snprintf(want, sizeof(want),
                         "walcast.yaml:2:8: \"source.dsn\" is not a "
                         "connection string libpq can read: %s; write "
                         "key=value pairs (a value with spaces in single "
                         "quotes) or a postgresql:// URI",
                         cases[i].reason);
                c = load(text);
                if (c)
                        wc_config_free(c);
                assert_null(c);
                assert_string_equal(errbuf, want);
                for (size_t j = 0; j < 3 && cases[i].secret[j]; j++)
                        if (strstr(errbuf, cases[i].secret[j]))
                                fail_msg("\"%s\" shows \"%s\"", errbuf,
                                         cases[i].secret[j]);
        }
        /* what libpq reads is accepted as it is */
        {
                static const char *const good[] = {
                    "dbname=app",
                    "host=/run/postgresql dbname=app",
                    "host=h password='a b' dbname=app",
                    "postgresql://walcast:pw@127.0.0.1:5432/app",
                    "postgres:///app",
                };
                for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                        struct wc_config *c;
                        snprintf(
                            text, sizeof(text),
                            "source:\n  dsn: \"%s\"\n  slot: walcast\n" SINKS,
                            good[i]);
                        c = load(text);
                        if (!c)
                                fail_msg("%s: %s", good[i], errbuf);
                        assert_string_equal(c->source.dsn, good[i]);
                        wc_config_free(c);
                }
        }
}

/* Patterns are pushed down to wal2json unescaped: a control character
 * in one failed at START_REPLICATION, after the slot was created. */
static void test_pattern_control_characters(void **state)
{
        (void)state;
        assert_error(SOURCE SINKS
                     "filter:\n  tables:\n    include: [\"public.a\\nb\"]\n",
                     "walcast.yaml:9:15: control character \\x0a in pattern "
                     "\"public.a\\x0ab\" in \"filter.tables.include\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
        assert_error(SOURCE SINKS
                     "filter:\n  tables:\n    exclude: [ok, \"a\\tb\"]\n",
                     "walcast.yaml:9:19: control character \\x09 in pattern "
                     "\"a\\x09b\" in \"filter.tables.exclude\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
        assert_error(SOURCE SINKS
                     "filter:\n  schemas:\n    include: [\"x\\u007f\"]\n",
                     "walcast.yaml:9:15: control character \\x7f in pattern "
                     "\"x\\x7f\" in \"filter.schemas.include\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
        assert_error(SOURCE SINKS
                     "filter:\n  schemas:\n    exclude:\n      - \"\\r\"\n",
                     "walcast.yaml:10:9: control character \\x0d in pattern "
                     "\"\\x0d\" in \"filter.schemas.exclude\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
        /* a plugin's schemas and a Kafka sink's filter too */
        assert_error(PLUGIN
                     "      path: /x.so\n      schemas: [\"a\\u0001\"]\n",
                     "walcast.yaml:7:17: control character \\x01 in pattern "
                     "\"a\\x01\" in \"sinks[0].plugin.schemas\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
        assert_error(SOURCE "sinks:\n  - kafka:\n      tables:\n"
                            "        exclude: [\"t\\e\"]\n",
                     "walcast.yaml:7:19: control character \\x1b in pattern "
                     "\"t\\x1b\" in \"sinks[0].kafka.tables.exclude\": schema "
                     "and table patterns cannot hold control characters; "
                     "remove it");
}

static void test_free_null(void **state)
{
        (void)state;
        wc_config_free(NULL);
}

/* Every sink has a name of its own: the metrics' sink label and what
 * the log calls it.  Two sinks of one kind are two series. */
static void test_sink_names(void **state)
{
        struct wc_config *c;
        (void)state;

        c = load(SOURCE "sinks:\n"
                        "  - file: {path: /a.jsonl}\n"
                        "  - kafka: {properties: {bootstrap.servers: x}}\n"
                        "  - plugin: {path: /p.so}\n");
        assert_non_null(c);
        assert_string_equal(c->sinks[0].name, "file:/a.jsonl");
        assert_string_equal(c->sinks[1].name, "kafka");
        assert_string_equal(c->sinks[2].name, "/p.so");
        wc_config_free(c);

        /* two of a kind: numbered by their place in the list */
        c = load(SOURCE "sinks:\n"
                        "  - kafka: {properties: {bootstrap.servers: x}}\n"
                        "  - file: {path: /a.jsonl}\n"
                        "  - kafka: {properties: {bootstrap.servers: y}}\n"
                        "  - plugin: {path: /p.so}\n"
                        "  - plugin: {path: /p.so}\n");
        assert_non_null(c);
        assert_string_equal(c->sinks[0].name, "kafka#1");
        assert_string_equal(c->sinks[1].name, "file:/a.jsonl");
        assert_string_equal(c->sinks[2].name, "kafka#3");
        assert_string_equal(c->sinks[3].name, "plugin#4");
        assert_string_equal(c->sinks[4].name, "plugin#5");
        wc_config_free(c);

        /* name: wins; a default it takes is numbered */
        c = load(SOURCE "sinks:\n"
                        "  - kafka:\n"
                        "      name: orders\n"
                        "      properties: {bootstrap.servers: x}\n"
                        "  - kafka: {properties: {bootstrap.servers: y}}\n"
                        "  - file: {path: /a.jsonl, name: kafka}\n");
        assert_non_null(c);
        assert_string_equal(c->sinks[0].name, "orders");
        assert_string_equal(c->sinks[1].name, "kafka#2");
        assert_string_equal(c->sinks[2].name, "kafka");
        wc_config_free(c);

        assert_error(SOURCE "sinks:\n"
                            "  - file: {path: /a.jsonl, name: x}\n"
                            "  - file: {path: /b.jsonl, name: x}\n",
                     "walcast.yaml:6:34: sinks 1 and 2 are both named \"x\": "
                     "give each sink a name of its own");
        assert_error(SOURCE "sinks:\n"
                            "  - file: {path: /a.jsonl, name: \"a\\tb\"}\n",
                     "walcast.yaml:5:34: the name of sinks[0] has a control "
                     "character: use printable text");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_duration_parse),
            cmocka_unit_test(test_decoder_keys),
            cmocka_unit_test(test_dsn_unparseable),
            cmocka_unit_test(test_pattern_control_characters),
            cmocka_unit_test(test_slot_name_valid),
            cmocka_unit_test(test_minimal_defaults),
            cmocka_unit_test(test_full_file),
            cmocka_unit_test(test_minimal_file),
            cmocka_unit_test(test_flow_file),
            cmocka_unit_test(test_empty_sections_file),
            cmocka_unit_test(test_example_config),
            cmocka_unit_test(test_log_levels),
            cmocka_unit_test(test_all_ops_and_order),
            cmocka_unit_test(test_interval_bounds),
            cmocka_unit_test(test_quoted_scalars),
            cmocka_unit_test(test_quoted_null_is_a_string),
            cmocka_unit_test(test_any_order_and_anchor),
            cmocka_unit_test(test_env_file),
            cmocka_unit_test(test_env_expansion),
            cmocka_unit_test(test_env_errors),
            cmocka_unit_test(test_unknown_keys),
            cmocka_unit_test(test_reliability_keys),
            cmocka_unit_test(test_size_parse),
            cmocka_unit_test(test_non_scalar_keys),
            cmocka_unit_test(test_wrong_types),
            cmocka_unit_test(test_missing_values),
            cmocka_unit_test(test_missing_required_keys),
            cmocka_unit_test(test_bad_booleans),
            cmocka_unit_test(test_bad_durations),
            cmocka_unit_test(test_bad_slot_names),
            cmocka_unit_test(test_bad_log_level),
            cmocka_unit_test(test_sink_names),
            cmocka_unit_test(test_log_format_and_metrics),
            cmocka_unit_test(test_bad_ops),
            cmocka_unit_test(test_bad_sinks),
            cmocka_unit_test(test_duplicate_keys),
            cmocka_unit_test(test_aliases),
            cmocka_unit_test(test_documents),
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_syntax_errors),
            cmocka_unit_test(test_nul_and_depth),
            cmocka_unit_test(test_message_quoting),
            cmocka_unit_test(test_signals),
            cmocka_unit_test(test_bad_bulk_delete_batch),
            cmocka_unit_test(test_sink_filters),
            cmocka_unit_test(test_plugins_file),
            cmocka_unit_test(test_plugin_config_values),
            cmocka_unit_test(test_plugin_config_limits),
            cmocka_unit_test(test_bad_plugins),
            cmocka_unit_test(test_bad_plugin_config),
            cmocka_unit_test(test_kafka_defaults),
            cmocka_unit_test(test_kafka_values),
            cmocka_unit_test(test_bad_kafka),
            cmocka_unit_test(test_kafka_debezium_keys),
            cmocka_unit_test(test_unreadable),
            cmocka_unit_test(test_small_error_buffers),
            cmocka_unit_test(test_too_large),
            cmocka_unit_test(test_fifo_refused),
            cmocka_unit_test(test_free_null),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
