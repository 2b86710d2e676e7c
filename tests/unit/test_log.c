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
                            "\"table \\\"a\\\".\\\"b\\\"\\tgone "
                            "password=***\"}\n");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(redacts_passwords),
            cmocka_unit_test(priorities_redaction_repeats),
            cmocka_unit_test(cli_style),
            cmocka_unit_test(json_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
