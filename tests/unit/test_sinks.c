/* SPDX-License-Identifier: MIT */
/*
 * The sink registry (lib/sinks/registry.h): every kind the configuration
 * accepts has its entry, and a kind's check is the one the operator sees.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "sinks/file/conf.h"
#include "sinks/kafka/conf.h"
#include "sinks/registry.h"

static const char every_kind[] =
    "source:\n"
    "  dsn: dbname=app\n"
    "  slot: walcast\n"
    "sinks:\n"
    "  - file:\n"
    "      path: /tmp\n"
    "  - plugin:\n"
    "      path: /nonexistent/walcast-test-plugin.so\n"
    "  - kafka:\n"
    "      properties:\n"
    "        bootstrap.servers: 127.0.0.1:1\n"
    "        no.such.property: x\n";

static struct wc_config *load_every_kind(void)
{
        char err[1024] = "";
        struct wc_config *c = wc_config_load_string(
            "walcast.yaml", every_kind, strlen(every_kind), err, sizeof(err));

        if (!c)
                fail_msg("%s", err);
        return c;
}

static void test_find(void **state)
{
        (void)state;
        assert_ptr_equal(wc_sink_kind_find("file"), &wc_sink_kind_file);
        assert_ptr_equal(wc_sink_kind_find("kafka"), &wc_sink_kind_kafka);
        assert_ptr_equal(wc_sink_kind_find("plugin"), &wc_sink_kind_plugin);
        assert_null(wc_sink_kind_find("webhook"));
        assert_null(wc_sink_kind_find(""));
        /* only Kafka keys its messages by the rows' identity */
        assert_true(wc_sink_kind_kafka.needs_identity);
        assert_false(wc_sink_kind_file.needs_identity);
        assert_false(wc_sink_kind_plugin.needs_identity);
}

/* Each sink the configuration reads is of a registered kind, and that
 * kind's check reads the block the configuration made. */
static void test_every_configured_kind_checks(void **state)
{
        struct wc_config *c = load_every_kind();
        struct wc_sink_env env = {.dsn = c->source.dsn};
        char err[1024];

        (void)state;
        assert_int_equal(c->nsinks, 3);
        for (size_t i = 0; i < c->nsinks; i++) {
                const struct wc_sink_kind *k =
                    wc_sink_kind_find(c->sinks[i].kind);

                assert_non_null(k);
                assert_non_null(k->check);
                assert_non_null(k->add);
                assert_non_null(c->sinks[i].conf);
        }
        /* a directory is no file to append to */
        assert_int_equal(
            wc_sink_kind_file.check(c->sinks[0].conf, &env, err, sizeof(err)),
            -EISDIR);
        assert_string_equal(err,
                            "file sink \"/tmp\" is a directory: name a file "
                            "in it");
        /* the plugin host refuses a missing shared object */
        assert_true(wc_sink_kind_plugin.check(c->sinks[1].conf, &env, err,
                                              sizeof(err)) < 0);
        assert_non_null(strstr(err, "/nonexistent/walcast-test-plugin.so"));
        /* librdkafka's own check of the properties */
        assert_true(wc_sink_kind_kafka.check(c->sinks[2].conf, &env, err,
                                             sizeof(err)) < 0);
        assert_non_null(strstr(err, "no.such.property"));
        wc_config_free(c);
}

/* A file sink's missing directory is named, and the state directory may
 * be missing (systemd creates it). */
static void test_file_check_state_dir(void **state)
{
        struct wc_file_sink_config f = {.path = "/nonexistent-wc/out.jsonl"};
        struct wc_sink_env env = {.dsn = "dbname=app"};
        char err[1024];

        (void)state;
        assert_int_equal(wc_sink_kind_file.check(&f, &env, err, sizeof(err)),
                         -ENOENT);
        assert_non_null(strstr(err, "directory \"/nonexistent-wc\" does not "
                                    "exist"));
        env.state_dir = "/nonexistent-wc/";
        assert_int_equal(wc_sink_kind_file.check(&f, &env, err, sizeof(err)),
                         0);
        f.path = "-";
        env.state_dir = NULL;
        assert_int_equal(wc_sink_kind_file.check(&f, &env, err, sizeof(err)),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_find),
            cmocka_unit_test(test_every_configured_kind_checks),
            cmocka_unit_test(test_file_check_state_dir),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
