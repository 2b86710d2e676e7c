/* SPDX-License-Identifier: MIT */
/*
 * SASL OAUTHBEARER with librdkafka's unsecured JWT: sasl.oauthbearer.config
 * read as librdkafka reads it (its rules from rdkafka_sasl_oauthbearer.c,
 * written out as cases), the librdkafka versions whose token renewal
 * crashes, and the check on a real librdkafka configuration.  No message
 * quotes the value: it is a secret.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/kv.h"
#include "sinks/kafka/kafka.h"
#include "sinks/kafka/oauth.h"

static void test_config_good(void **state)
{
        static const char *const good[] = {
            "principal=walcast",
            "  principal=walcast  ",
            ("principalClaimName=azp principal=admin scopeClaimName=roles "
             "scope=role1,role2 lifeSeconds=600"),
            "principal=a extension_traceId=123 extension_b=x\"y",
            /* an extension without '=': an empty value */
            "principal=a extension_flag",
            "principal=a lifeSeconds=2147483647",
            "principal=a lifeSeconds=+5",
        };
        char err[1024];

        (void)state;
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                err[0] = '\0';
                if (wc_kafka_ujwt_config_check(good[i], err, sizeof(err)) != 0)
                        fail_msg("refused %s: %s", good[i], err);
        }
}

static void test_config_bad(void **state)
{
        static const struct {
                const char *cfg, *err;
        } bad[] = {
            {"", "it is empty"},
            {"   ", "it has no principal= entry"},
            {"principal=walcast bogus=Sx1secret",
             "entry 2 is not one librdkafka knows"},
            {"principal=Sx1secret Principal=b",
             "entry 2 is not one librdkafka knows"},
            {"principal=Sx1secret principal=b",
             "entry 2 is a second principal= entry"},
            {"principal= scope=Sx1secret", "entry 1, principal=, has no value"},
            {"principal=a scope=", "entry 2, scope=, has no value"},
            {"principal=a lifeSeconds=10m", "entry 2, lifeSeconds=, is not a "
                                            "whole number"},
            {"principal=a lifeSeconds=0", "entry 2, lifeSeconds=, is not 1 to "
                                          "2147483647"},
            {"principal=a lifeSeconds=-5", "is not 1 to 2147483647"},
            {"principal=a lifeSeconds=2147483648", "is not 1 to 2147483647"},
            {"principal=a lifeSeconds=99999999999999999999999",
             "is not 1 to 2147483647"},
            {"scope=Sx1secret", "it has no principal= entry"},
            {"principal=Sx1\"secret", "its principal= entry holds a '\"'"},
            {"principal=a scope=\"Sx1secret\"", "its scope= entry holds a "
                                                "'\"'"},
            {"principal=a principalClaimName=x\"",
             "its principalClaimName= entry holds a '\"'"},
            {"principal=a extension_=Sx1secret",
             "entry 2, extension_, has no key"},
            {"principal=a extension_auth=Sx1secret",
             "entry 2, an extension, is \"auth\", a key SASL reserves"},
            {"principal=a extension_tr4ce=Sx1secret",
             "entry 2, an extension, has a key with other characters than "
             "letters"},
            /* the key runs to the '=', spaces and all */
            {"principal=a extension_a b=Sx1secret",
             "entry 2, an extension, has a key with other characters"},
            {"extension_a principal=Sx1secret", "it has no principal= entry"},
            {"principal=a extension_k=Sx1secret\x01",
             "entry 2, an extension, has a value with a character other"},
            {"principal=a extension_k=Sx1secret\xc3\xa9", "has a value with"},
            /* librdkafka's order: what it cannot read, then the principal
             * and the quotes, then the extensions */
            {"extension_auth=v principal=Sx1\"secret",
             "its principal= entry holds a '\"'"},
            {"extension_auth=v scope=Sx1secret", "it has no principal= entry"},
            {"principal=a extension_auth=v bogus", "entry 3 is not one "
                                                   "librdkafka knows"},
        };
        char err[1024];

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                if (wc_kafka_ujwt_config_check(bad[i].cfg, err, sizeof(err)) !=
                    -EINVAL)
                        fail_msg("accepted %s", bad[i].cfg);
                if (!strstr(err, bad[i].err))
                        fail_msg("for %s: %s, not %s", bad[i].cfg, err,
                                 bad[i].err);
                /* the property and what to write, never the value */
                assert_non_null(strstr(err, "Kafka property "
                                            "\"sasl.oauthbearer.config\": "));
                assert_non_null(strstr(err, "write space-separated entries"));
                if (strstr(err, "Sx1") || strstr(err, "secret"))
                        fail_msg("the value shows: %s", err);
        }
        assert_int_equal(wc_kafka_ujwt_config_check(NULL, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "it is empty"));
}

static void test_when_it_applies(void **state)
{
        struct wc_kafka_oauth_settings s = {"SASL_PLAINTEXT", "OAUTHBEARER",
                                            true, "principal=a bogus=Sx1",
                                            NULL};
        const int v202 = 0x020002ff, v220 = 0x020200ff;
        char err[1024] = "";

        (void)state;
        /* the builtin handler does not run: nothing to refuse */
        s.unsecure_jwt = false;
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), 0);
        s.unsecure_jwt = true;
        s.mechanisms = "PLAIN";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), 0);
        s.mechanisms = "OAUTHBEARER";
        s.protocol = "plaintext";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), 0);
        s.protocol = "ssl";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), 0);
        s.protocol = "sasl_plaintext";
        s.method = "OIDC";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), 0);
        s.method = "default";

        /* it runs: an unreadable value is said first, whatever the
         * version */
        s.protocol = "sasl_ssl";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v220, "2.2.0", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "\"sasl.oauthbearer.config\": "));
        s.protocol = "SASL_PLAINTEXT";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "entry 2 is not one librdkafka knows"));
        s.config = NULL;
        assert_int_equal(
            wc_kafka_oauth_check(&s, v220, "2.2.0", err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "it is empty"));

        /* a good value: before 2.2.0 the renewal crashes all the same */
        s.config = "principal=walcast lifeSeconds=60";
        assert_int_equal(
            wc_kafka_oauth_check(&s, v220, "2.2.0", err, sizeof(err)), 0);
        assert_int_equal(wc_kafka_oauth_check(&s, 0x020200ff + 0x100, "2.2.1",
                                              err, sizeof(err)),
                         0);
        assert_int_equal(wc_kafka_oauth_check(&s, 0x020200ff - 0x10000, "2.1.1",
                                              err, sizeof(err)),
                         -EINVAL);
        assert_int_equal(
            wc_kafka_oauth_check(&s, v202, "2.0.2", err, sizeof(err)), -EINVAL);
        assert_string_equal(
            err, "Kafka property \"enable.sasl.oauthbearer.unsecure.jwt\": "
                 "librdkafka 2.0.2 crashes when it renews an unsecured JWT "
                 "(at 80 % of lifeSeconds, by default after 48 minutes): run "
                 "walcast with librdkafka 2.2.0 or later, or authenticate "
                 "otherwise (sasl.mechanisms: SCRAM-SHA-512, or "
                 "sasl.oauthbearer.method: oidc where librdkafka has it)");
}

/* The settings as librdkafka holds them: aliases, case, booleans. */
static void test_properties(void **state)
{
        struct wc_kv base[] = {
            {"bootstrap.servers", "127.0.0.1:9"},
            {"security.protocol", "SASL_PLAINTEXT"},
            {"sasl.mechanism", "OAUTHBEARER"},
            {"enable.sasl.oauthbearer.unsecure.jwt", "true"},
            {"sasl.oauthbearer.config", "principal=walcast bogus=Sx1secret"},
        };
        char err[1024] = "";
        bool old = rd_kafka_version() < WC_KAFKA_UJWT_FIXED;

        (void)state;
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "\"sasl.oauthbearer.config\": "));
        assert_non_null(strstr(err, "entry 2 is not one librdkafka knows"));
        assert_null(strstr(err, "Sx1"));

        /* unset: librdkafka would say it is empty */
        assert_int_equal(wc_kafka_check_properties(base, 4, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "it is empty"));

        /* a good value: refused by a librdkafka whose renewal crashes */
        base[4].value = "principal=walcast";
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         old ? -EINVAL : 0);
        if (old)
                assert_non_null(
                    strstr(err, "\"enable.sasl.oauthbearer.unsecure.jwt\": "
                                "librdkafka "));

        /* the handler off, or no SASL: the value is librdkafka's affair */
        base[4].value = "bogus";
        base[3].value = "false";
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         0);
        base[3].value = "true";
        base[1].value = "plaintext";
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         0);
        base[1].value = "sasl_ssl";
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         -EINVAL);
        base[2].value = "SCRAM-SHA-512";
        assert_int_equal(wc_kafka_check_properties(base, 5, err, sizeof(err)),
                         0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_config_good),
            cmocka_unit_test(test_config_bad),
            cmocka_unit_test(test_when_it_applies),
            cmocka_unit_test(test_properties),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
