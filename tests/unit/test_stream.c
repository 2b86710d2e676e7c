/* SPDX-License-Identifier: MIT */
/* The replication connection's pure parts: the TCP keepalive defaults a
 * DSN gets unless it sets them itself. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream/stream.h"

/* The defaults added to dsn, as "key=value key=value". */
static const char *added(const char *dsn)
{
        static char out[512];
        const char *keys[8], *vals[8];
        size_t o = 0;
        int n;

        n = wc_stream_keepalive_defaults(dsn, keys, vals, 8);
        if (n < 0)
                return NULL;
        out[0] = '\0';
        for (int i = 0; i < n; i++)
                o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s=%s",
                                      i ? " " : "", keys[i], vals[i]);
        return out;
}

#define ALL                                                                    \
        "keepalives=1 keepalives_idle=30 keepalives_interval=10 "              \
        "keepalives_count=3 tcp_user_timeout=60000"

static void keepalive_defaults(void **state)
{
        const char *keys[8], *vals[8];
        (void)state;

        /* none set: all of them, key=value or URI */
        assert_string_equal(added("host=127.0.0.1 dbname=app user=walcast"),
                            ALL);
        assert_string_equal(added("postgresql://walcast@db.example/app"), ALL);
        assert_string_equal(
            added("postgres://db.example:5433/app?sslmode=require"), ALL);
        assert_string_equal(added(""), ALL);
        /* what the DSN sets is its own */
        assert_string_equal(added("host=db keepalives_idle=5"),
                            "keepalives=1 keepalives_interval=10 "
                            "keepalives_count=3 tcp_user_timeout=60000");
        assert_string_equal(added("host=db keepalives=0"),
                            "keepalives_idle=30 keepalives_interval=10 "
                            "keepalives_count=3 tcp_user_timeout=60000");
        assert_string_equal(
            added("postgresql://db/app?keepalives_count=9&tcp_user_timeout=0"),
            "keepalives=1 keepalives_idle=30 keepalives_interval=10");
        assert_string_equal(added("host=db keepalives=1 keepalives_idle=1 "
                                  "keepalives_interval=1 keepalives_count=1 "
                                  "tcp_user_timeout=1"),
                            "");
        /* a value that merely mentions a keyword sets nothing */
        assert_string_equal(
            added("host=db application_name='keepalives_idle=5'"), ALL);
        /* a service file may set them: left to it */
        assert_string_equal(added("service=app"), "");
        assert_string_equal(added("postgresql:///app?service=app"), "");
        assert_int_equal(setenv("PGSERVICE", "app", 1), 0);
        assert_string_equal(added("host=db"), "");
        assert_int_equal(unsetenv("PGSERVICE"), 0);
        assert_string_equal(added("host=db"), ALL);
        /* not a DSN (walcast takes no bare database name) */
        assert_null(added("app"));
        assert_null(added("host='unterminated"));
        assert_null(added("postgresql://db/app?nosuchkeyword=1"));
        /* no more than max */
        assert_int_equal(wc_stream_keepalive_defaults("host=db", keys, vals, 2),
                         2);
        assert_string_equal(keys[0], "keepalives");
        assert_string_equal(keys[1], "keepalives_idle");
        assert_int_equal(wc_stream_keepalive_defaults("host=db", keys, vals, 0),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(keepalive_defaults),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
