/* SPDX-License-Identifier: MIT */
/* Logging: secrets redacted, sd-daemon priorities, repeats counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "common/runner.h"
#include "config/config.h"

static void redacted(const char *in, const char *want)
{
        char out[512];

        wc_log_redact(in, out, sizeof(out));
        assert_string_equal(out, want);
}

static void redacts_passwords(void **state)
{
        (void)state;
        redacted("host=db password=s3cret dbname=app",
                 "host=db password=*** dbname=app");
        redacted("password = 's3 cr\\'et' user=x", "password=*** user=x");
        redacted("PASSWORD=abc", "password=***");
        redacted("postgresql://walcast:s3cret@db:5432/app",
                 "postgresql://walcast:***@db:5432/app");
        redacted("postgres://db:5432/app?password=s3cret&sslmode=require",
                 "postgres://db:5432/app?password=***&sslmode=require");
        /* what is not a secret stays */
        redacted("could not connect to 127.0.0.1:5432: server unreachable",
                 "could not connect to 127.0.0.1:5432: server unreachable");
        redacted("postgresql://db:5432/app", "postgresql://db:5432/app");
        redacted("the passwordless role", "the passwordless role");
        /* a small buffer is cut, never overrun */
        char small[8];
        wc_log_redact("password=secret", small, sizeof(small));
        assert_true(strlen(small) < sizeof(small));
        assert_null(strstr(small, "secret"));
}

/* Runs fn with stderr going to a file; returns what it wrote. */
static char *capture(void (*fn)(void))
{
        static char buf[8192];
        char path[] = "/tmp/wc-log-XXXXXX";
        int fd = mkstemp(path), saved = dup(STDERR_FILENO);
        FILE *f;
        size_t n;

        assert_true(fd >= 0 && saved >= 0);
        fflush(stderr);
        dup2(fd, STDERR_FILENO);
        fn();
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        f = fdopen(fd, "r");
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        unlink(path);
        return buf;
}

static void log_some(void)
{
        wc_log_setup("walcastd", WC_LOG_STYLE_SD_DAEMON, WC_LOG_INFO);
        log_info("connected to %s", "db:5432");
        log_debug("not shown at info");
        log_warning("dsn host=db password=hunter2");
        for (int i = 0; i < 5; i++)
                log_error("connection to %s lost", "db:5432");
        log_notice("back");
}

static void priorities_redaction_repeats(void **state)
{
        const char *out;
        (void)state;

        out = capture(log_some);
        assert_string_equal(out, "<6>connected to db:5432\n"
                                 "<4>dsn host=db password=***\n"
                                 "<3>connection to db:5432 lost\n"
                                 "<3>(the previous message repeated 4 more "
                                 "times)\n"
                                 "<5>back\n");
}

static void program_style(void)
{
        wc_log_setup("walcast", WC_LOG_STYLE_PROGRAM, WC_LOG_INFO);
        log_error("missing -c FILE");
        log_info("streaming");
}

static void cli_style(void **state)
{
        (void)state;
        assert_string_equal(capture(program_style),
                            "walcast: error: missing -c FILE\n"
                            "walcast: streaming\n");
}

static void json_lines(void)
{
        wc_log_setup("walcastd", WC_LOG_STYLE_SD_DAEMON, WC_LOG_INFO);
        wc_log_set_json(true);
        log_warning("table \"a\".\"b\"\tgone password=x");
        wc_log_set_json(false);
}

static void json_format(void **state)
{
        (void)state;
        assert_string_equal(capture(json_lines),
                            "{\"priority\":4,\"level\":\"warning\","
                            "\"program\":\"walcastd\",\"message\":"
                            "\"table \\\"a\\\".\\\"b\\\"\\\\tgone "
                            "password=***\"}\n");
}

static void escaped(const char *in, const char *want)
{
        char out[512];

        wc_log_escape(in, out, sizeof(out));
        assert_string_equal(out, want);
}

/* Nothing a name can hold ends a line or forges one: control characters,
 * DEL, bytes that are not UTF-8, and the code points some readers take
 * for a line break or use to reorder a line are escaped. */
static void escapes_what_breaks_a_line(void **state)
{
        char small[8];
        (void)state;

        escaped("x\n<0>FORGED", "x\\n<0>FORGED");
        escaped("a\rb\tc", "a\\rb\\tc");
        escaped("bell\a esc\033[31m nul-less\x01 del\x7f",
                "bell\\x07 esc\\x1b[31m nul-less\\x01 del\\x7f");
        /* not UTF-8: a stray continuation, a lead byte cut short, an
         * overlong '/', a surrogate, past U+10FFFF */
        escaped("a\xff"
                "b",
                "a\\xff"
                "b");
        escaped("cut \xc3", "cut \\xc3");
        escaped("\xc0\xaf", "\\xc0\\xaf");
        escaped("\xed\xa0\x80", "\\xed\\xa0\\x80");
        escaped("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
        /* UTF-8 stays as it is */
        escaped("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x98",
                "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x90\x98");
        /* NEL, LINE SEPARATOR, RIGHT-TO-LEFT OVERRIDE */
        escaped("a\xc2\x85"
                "b\xe2\x80\xa8"
                "c\xe2\x80\xae"
                "d",
                "a\\u0085b\\u2028c\\u202ed");
        /* libpq's final newline is the end of the line, not an escape */
        escaped("connection refused\n", "connection refused");
        escaped("two\n\tlines\n", "two\\n\\tlines");
        /* what is printable stays, backslashes included */
        escaped("C:\\dir \"q\" <3>", "C:\\dir \"q\" <3>");
        /* a small buffer: cut before an escape, never inside one */
        assert_int_equal(wc_log_escape("abcd\n", small, 6), 4);
        assert_int_equal(wc_log_escape("abcd\nx", small, sizeof(small)), 7);
        assert_string_equal(small, "abcd\\nx");
        assert_int_equal(wc_log_escape("abcdef\nx", small, sizeof(small)), 6);
        assert_string_equal(small, "abcdef");
}

static void log_forged(void)
{
        wc_log_setup("walcastd", WC_LOG_STYLE_SD_DAEMON, WC_LOG_INFO);
        log_warning("wal2json skipped a DELETE on table %s",
                    "public.\"x\n<0>FORGED emergency\r\n<2>crit\"");
        log_info("plugin \"%s\": %s", "p\n<3>", "bad \xff byte");
}

static void no_forged_lines(void **state)
{
        (void)state;
        assert_string_equal(
            capture(log_forged),
            "<4>wal2json skipped a DELETE on table public.\"x\\n<0>FORGED "
            "emergency\\r\\n<2>crit\"\n"
            "<6>plugin \"p\\n<3>\": bad \\xff byte\n");
}

static void json_forged(void)
{
        wc_log_setup("walcastd", WC_LOG_STYLE_SD_DAEMON, WC_LOG_INFO);
        wc_log_set_json(true);
        log_warning("table %s", "\"x\n<0>\x1b\x7f\xc3(\xe2\x80\xa8\"");
        wc_log_set_json(false);
}

/* The JSON format carries the text the text format shows: valid UTF-8,
 * one line, nothing for a collector to split on. */
static void json_escaping_complete(void **state)
{
        (void)state;
        assert_string_equal(capture(json_forged),
                            "{\"priority\":4,\"level\":\"warning\",\"program\":"
                            "\"walcastd\",\"message\":\"table \\\"x\\\\n<0>"
                            "\\\\x1b\\\\x7f\\\\xc3(\\\\u2028\\\"\"}\n");
}

static void dsn_redacted(const char *dsn, const char *in, const char *want)
{
        char out[512];

        wc_log_forget_secrets();
        wc_log_add_dsn_secrets(dsn);
        wc_log_redact(in, out, sizeof(out));
        wc_log_forget_secrets();
        assert_string_equal(out, want);
}

/* What libpq says about a connection string it reads otherwise than its
 * author meant quotes pieces of the password. */
static void redacts_dsn_secrets(void **state)
{
        (void)state;
        /* an unquoted password with a space: libpq's "password" is "abc",
         * and it complains about "def" */
        dsn_redacted("host=db password=abc def port=5432",
                     "missing \"=\" after \"def\" in connection info string",
                     "missing \"=\" after \"***\" in connection info string");
        dsn_redacted("host=db password=abc def=ghi",
                     "invalid connection option \"def\"",
                     "invalid connection option \"***\"");
        dsn_redacted("host=db password=s3cr3t hunter2 dbname=app",
                     "the password was s3cr3t hunter2, or hunter2",
                     "the password was ***, or ***");
        dsn_redacted("password = 'a \\'secret\\' phrase' host=db",
                     "quoted \"secret\" in it", "quoted \"***\" in it");
        /* a URI whose password holds a '/': libpq takes "u:pa" for
         * host:port and "ss@db:5432/app" for the database */
        dsn_redacted("postgresql://u:pa/ss@db:5432/app",
                     "invalid integer value \"pa\" for connection option "
                     "\"port\"",
                     "invalid integer value \"***\" for connection option "
                     "\"port\"");
        dsn_redacted("postgresql://u:pa/ss@db:5432/app",
                     "FATAL:  database \"ss@db:5432/app\" does not exist",
                     "FATAL:  database \"***@db:5432/app\" does not exist");
        dsn_redacted("postgres://walcast:long/secret/pw@db/app",
                     "could not translate host name \"walcast\" to address; "
                     "dbname secret/pw@db/app",
                     "could not translate host name \"walcast\" to address; "
                     "dbname ***/pw@db/app");
        /* percent-encoded: either form */
        dsn_redacted("postgresql://u:p%40ss%2Fw0rd@db/app",
                     "token \"p%40ss%2Fw0rd\" or p@ss/w0rd",
                     "token \"***\" or ***");
        /* the key's passphrase, in a query */
        dsn_redacted(
            "postgresql://db/app?sslpassword=k3y/phrase&sslmode=require",
            "invalid percent-encoded token: \"k3y/phrase\"",
            "invalid percent-encoded token: \"***\"");
        dsn_redacted("host=db sslpassword=topsecret",
                     "could not decrypt with topsecret",
                     "could not decrypt with ***");
        /* short pieces are not replaced in other words */
        dsn_redacted("postgresql://u:pa/ss@db:5432/app",
                     "connection to server at \"127.0.0.1\", port 1 failed: "
                     "pass, ss",
                     "connection to server at \"127.0.0.1\", port 1 failed: "
                     "pass, ss");
        dsn_redacted("host=db port=5432 dbname=app", "dbname \"app\" on db",
                     "dbname \"app\" on db");
        /* an '@' in the query is no user info */
        dsn_redacted("postgresql://db:5432/app?options=-c%20x@y",
                     "could not connect to db:5432, options -c x@y",
                     "could not connect to db:5432, options -c x@y");
}

static void log_secrets(void)
{
        wc_log_setup("walcast", WC_LOG_STYLE_PROGRAM, WC_LOG_INFO);
        wc_log_add_dsn_secrets("host=db password=abc def");
        log_error("invalid source.dsn: missing \"=\" after \"def\" in "
                  "connection info string");
        log_error("failed for abc def\n");
        wc_log_forget_secrets();
}

static void logged_without_secrets(void **state)
{
        (void)state;
        assert_string_equal(capture(log_secrets),
                            "walcast: error: invalid source.dsn: missing "
                            "\"=\" after \"***\" in connection info string\n"
                            "walcast: error: failed for ***\n");
}

static void config_redacted(const char *yaml, const char *in, const char *want)
{
        char err[512], out[512];
        struct wc_config *cfg = wc_config_load_string(
            "walcast.yaml", yaml, strlen(yaml), err, sizeof(err));

        if (!cfg)
                fail_msg("%s", err);
        wc_log_forget_secrets();
        wc_add_config_secrets(cfg);
        wc_log_redact(in, out, sizeof(out));
        wc_log_forget_secrets();
        wc_config_free(cfg);
        assert_string_equal(out, want);
}

#define PLUGIN_YAML(config)                                                    \
        "source: {dsn: \"host=db\", slot: s}\n"                                \
        "sinks:\n"                                                             \
        "  - plugin:\n"                                                        \
        "      path: /usr/lib/walcast/plugins/x.so\n"                          \
        "      config:\n" config

/* A plugin's config values under keys that name a secret are kept out of
 * the log; numbers, booleans, short values and other keys' values stay. */
static void redacts_plugin_secrets(void **state)
{
        (void)state;
        config_redacted(PLUGIN_YAML("        api_token: Tk-77aa\n"
                                    "        db: { password: Dbpw-x1 }\n"
                                    "        clientSecret: Cs-3q\n"
                                    "        token_ttl: 3600\n"
                                    "        use_token: true\n"
                                    "        api_key: abc\n"
                                    "        namespace: town6-a\n"),
                        "sent Tk-77aa, Dbpw-x1, Cs-3q; 3600 true abc town6-a",
                        "sent ***, ***, ***; 3600 true abc town6-a");
}

#define KAFKA_YAML(props)                                                      \
        "source: {dsn: \"host=db password=pgpw1234\", slot: s}\n"              \
        "sinks:\n"                                                             \
        "  - kafka:\n"                                                         \
        "      properties:\n"                                                  \
        "        bootstrap.servers: \"127.0.0.1:9092\"\n" props

/* A Kafka sink's secret properties are kept out of the log as the DSN's
 * password is, at start and at reload (both register the configuration's
 * secrets); what is no secret stays. */
static void redacts_kafka_secrets(void **state)
{
        (void)state;
        config_redacted(KAFKA_YAML("        sasl.username: walcast\n"
                                   "        sasl.password: Kpw-9xz\n"),
                        "walcast logged in with Kpw-9xz, pgpw1234",
                        "walcast logged in with ***, ***");
        config_redacted(KAFKA_YAML("        ssl.key.password: \"two words\"\n"
                                   "        ssl.keystore.password: ks-pass\n"),
                        "bad phrase \"two words\" or \"words\"; ks-pass",
                        "bad phrase \"***\" or \"***\"; ***");
        config_redacted(
            KAFKA_YAML("        sasl.oauthbearer.client.secret: cl-s3cret\n"
                       "        sasl.oauthbearer.config: \"principal=bob "
                       "extension_k=ext-s3cret\"\n"),
            "secret cl-s3cret; Unrecognized sasl.oauthbearer.config "
            "beginning at: extension_k=ext-s3cret",
            "secret ***; Unrecognized sasl.oauthbearer.config "
            "beginning at: ***");
        /* a PEM key: its lines, not its armour */
        config_redacted(KAFKA_YAML("        ssl.key.pem: |\n"
                                   "          -----BEGIN PRIVATE KEY-----\n"
                                   "          MIIEvQIBADANBgkqhkiG9w0B\n"
                                   "          -----END PRIVATE KEY-----\n"),
                        "key MIIEvQIBADANBgkqhkiG9w0B is a PRIVATE KEY",
                        "key *** is a PRIVATE KEY");
        /* a masking salt: a digest is a lookup table away without it */
        config_redacted(KAFKA_YAML("      mask_salt: salt-4242\n"
                                   "      columns:\n"
                                   "        - tables: [\"*\"]\n"
                                   "          mask: [email]\n"),
                        "salt-4242", "***");
        /* a principal is no secret: only what follows it */
        config_redacted(
            KAFKA_YAML("        sasl.oauthbearer.config: \"principal=walcast "
                       "bogus=b0gus-s3cret\"\n"),
            "walcastd started; beginning at: bogus=b0gus-s3cret",
            "walcastd started; beginning at: ***");
        /* no secret: the brokers, the user name */
        config_redacted(KAFKA_YAML("        sasl.username: bob-the-user\n"),
                        "127.0.0.1:9092 as bob-the-user",
                        "127.0.0.1:9092 as bob-the-user");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(redacts_passwords),
            cmocka_unit_test(priorities_redaction_repeats),
            cmocka_unit_test(cli_style),
            cmocka_unit_test(json_format),
            cmocka_unit_test(escapes_what_breaks_a_line),
            cmocka_unit_test(no_forged_lines),
            cmocka_unit_test(json_escaping_complete),
            cmocka_unit_test(redacts_dsn_secrets),
            cmocka_unit_test(logged_without_secrets),
            cmocka_unit_test(redacts_kafka_secrets),
            cmocka_unit_test(redacts_plugin_secrets),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
