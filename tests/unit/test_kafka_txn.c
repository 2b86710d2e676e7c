/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink's exactly-once mode, its pure part: the transactional id
 * of a slot and the offsets topic's record, made and read back; its keys
 * as the configuration reads them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/core.h"
#include "sinks/kafka/conf.h"
#include "sinks/kafka/txn.h"

static void test_txn_id(void **state)
{
        char id[64];

        (void)state;
        assert_int_equal(wc_kafka_txn_id(id, sizeof(id), 7401234567890123456u,
                                         "app", "walcast"),
                         0);
        assert_string_equal(id, "walcast-7401234567890123456-app-walcast");
        /* another slot, database or server: another id */
        assert_int_equal(wc_kafka_txn_id(id, sizeof(id), 1, "app", "s2"), 0);
        assert_string_equal(id, "walcast-1-app-s2");
        /* never cut short: two slots would share it */
        assert_int_equal(wc_kafka_txn_id(id, 16, 1, "app", "a_long_slot"),
                         -ENAMETOOLONG);
        assert_int_equal(wc_kafka_txn_id(id, 21, 1, "app", "abcdefg"),
                         -ENAMETOOLONG);
        assert_int_equal(wc_kafka_txn_id(id, 22, 1, "app", "abcdefg"), 0);
        assert_string_equal(id, "walcast-1-app-abcdefg");
}

static void test_offsets_key(void **state)
{
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_kafka_offsets_key(&b, 42, "app", "s\"1"), 0);
        assert_int_equal(wc_buf_append(&b, "", 1), 0);
        assert_string_equal(b.data,
                            "{\"system_identifier\":\"42\","
                            "\"database\":\"app\",\"slot\":\"s\\\"1\"}");
        wc_buf_free(&b);
}

static void test_offsets_value(void **state)
{
        struct wc_buf b;
        uint64_t lsn = 1;
        char err[128];

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_kafka_offsets_value(&b, 0x16B3748), 0);
        assert_int_equal(wc_buf_append(&b, "", 1), 0);
        assert_string_equal(b.data, "{\"end_lsn\":23803720,\"end_lsn_text\":"
                                    "\"0/16B3748\"}");
        assert_int_equal(
            wc_kafka_offsets_parse(b.data, b.len - 1, &lsn, err, sizeof(err)),
            0);
        assert_int_equal(lsn, 0x16B3748);
        wc_buf_reset(&b);
        assert_int_equal(wc_kafka_offsets_value(&b, UINT64_MAX - 1), 0);
        assert_int_equal(
            wc_kafka_offsets_parse(b.data, b.len, &lsn, err, sizeof(err)), 0);
        assert_true(lsn == UINT64_MAX - 1);
        wc_buf_free(&b);
}

static void test_offsets_parse_refuses(void **state)
{
        static const char *const bad[] = {
            "",
            "{}",
            "{\"end_lsn\":}",
            "{\"end_lsn\":-1}",
            "{\"end_lsn\":12",
            "{\"end_lsn\":12x}",
            "{\"end_lsn\":\"12\"}",
            "{\"lsn\":12}",
            "{\"end_lsn\":99999999999999999999}",
            " {\"end_lsn\":12}",
        };
        uint64_t lsn = 7;
        char err[128];

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                assert_int_equal(wc_kafka_offsets_parse(bad[i], strlen(bad[i]),
                                                        &lsn, err, sizeof(err)),
                                 -EINVAL);
                assert_int_equal(lsn, 7);
                assert_non_null(strstr(err, "end_lsn"));
        }
        assert_int_equal(
            wc_kafka_offsets_parse(NULL, 0, &lsn, err, sizeof(err)), -EINVAL);
        /* a record from a later walcast with more fields */
        assert_int_equal(wc_kafka_offsets_parse("{\"end_lsn\":5,\"x\":1}", 19,
                                                &lsn, err, sizeof(err)),
                         0);
        assert_int_equal(lsn, 5);
}

static void test_fenced_codes(void **state)
{
        (void)state;
        assert_true(wc_kafka_eos_is_fenced(RD_KAFKA_RESP_ERR__FENCED));
        assert_true(wc_kafka_eos_is_fenced(RD_KAFKA_RESP_ERR_PRODUCER_FENCED));
        assert_true(
            wc_kafka_eos_is_fenced(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH));
        assert_false(wc_kafka_eos_is_fenced(RD_KAFKA_RESP_ERR__TRANSPORT));
        assert_false(wc_kafka_eos_is_fenced(RD_KAFKA_RESP_ERR_NO_ERROR));
}

static struct wc_kafka_sink_config *
kafka_block(const char *keys, struct wc_config **ret, char *err, size_t errlen)
{
        char text[1024];
        struct wc_config *c;

        snprintf(text, sizeof(text),
                 "source:\n  dsn: dbname=app\n  slot: walcast\n"
                 "sinks:\n  - kafka:\n%s"
                 "      properties:\n"
                 "        bootstrap.servers: 127.0.0.1:1\n",
                 keys);
        c = wc_config_load_string("walcast.yaml", text, strlen(text), err,
                                  errlen);
        *ret = c;
        return c ? c->sinks[0].conf : NULL;
}

static void test_keys(void **state)
{
        struct wc_config *c;
        struct wc_kafka_sink_config *k;
        char err[1024];

        (void)state;
        /* the defaults: off, a derived id, 1000 / 16MB / 100ms */
        k = kafka_block("", &c, err, sizeof(err));
        assert_non_null(k);
        assert_false(k->exactly_once);
        assert_null(k->transactional_id);
        assert_int_equal(k->eos_batch_txns, 1000);
        assert_true(k->eos_batch_bytes == 16u << 20);
        assert_int_equal(k->eos_batch_ms, 100);
        wc_config_free(c);

        k = kafka_block("      exactly_once: true\n"
                        "      transactional_id: app-cdc\n"
                        "      exactly_once_batch_transactions: 50\n"
                        "      exactly_once_batch_bytes: 1MB\n"
                        "      exactly_once_batch_interval: 2s\n",
                        &c, err, sizeof(err));
        assert_non_null(k);
        assert_true(k->exactly_once);
        assert_string_equal(k->transactional_id, "app-cdc");
        assert_int_equal(k->eos_batch_txns, 50);
        assert_true(k->eos_batch_bytes == 1u << 20);
        assert_int_equal(k->eos_batch_ms, 2000);
        wc_config_free(c);

        /* out of bounds: refused with the key's position */
        assert_null(kafka_block("      exactly_once_batch_transactions: 0\n",
                                &c, err, sizeof(err)));
        assert_non_null(strstr(err, "walcast.yaml:6:"));
        assert_non_null(strstr(err, "exactly_once_batch_transactions"));
        assert_null(kafka_block("      exactly_once_batch_interval: 61s\n", &c,
                                err, sizeof(err)));
        assert_non_null(strstr(err, "exactly_once_batch_interval"));
        assert_null(kafka_block("      exactly_once: yes please\n", &c, err,
                                sizeof(err)));
        assert_string_equal(err, "walcast.yaml:6:21: invalid boolean \"yes "
                                 "please\": use true or false");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_txn_id),
            cmocka_unit_test(test_offsets_key),
            cmocka_unit_test(test_offsets_value),
            cmocka_unit_test(test_offsets_parse_refuses),
            cmocka_unit_test(test_fenced_codes),
            cmocka_unit_test(test_keys),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
