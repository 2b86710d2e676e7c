/* SPDX-License-Identifier: MIT */
/*
 * value_format: debezium: every column type the decoder's tests cover
 * (tests/data/wal2json/types.jsonl, hostile_types.jsonl), converted as
 * Debezium's PostgreSQL connector documents it, and the key and envelope
 * with their JsonConverter schemas.
 *
 * The expected values are written from Debezium's documentation,
 * "Debezium connector for PostgreSQL", section "Data type mappings":
 *   - table "Mappings for PostgreSQL basic types" (BOOLEAN, BIT, integer
 *     types, OID as INT64, REAL/DOUBLE, character types, TIMESTAMPTZ as
 *     io.debezium.time.ZonedTimestamp, INTERVAL as
 *     io.debezium.time.MicroDuration with 365.25 / 12.0 days a month,
 *     BYTEA as BYTES, JSON/JSONB as io.debezium.data.Json, UUID as
 *     io.debezium.data.Uuid, INET and ranges as STRING, arrays as ARRAY);
 *   - "Mapping when time.precision.mode is adaptive" (DATE as
 *     io.debezium.time.Date days, TIME(1-3) io.debezium.time.Time ms,
 *     TIME(4-6) io.debezium.time.MicroTime, TIMESTAMP(1-3)
 *     io.debezium.time.Timestamp, TIMESTAMP(4-6) MicroTimestamp) and
 *     "... is connect" (org.apache.kafka.connect.data.Date/Time/Timestamp);
 *   - "Decimal types" (precise: org.apache.kafka.connect.data.Decimal with
 *     the "scale" parameter; NUMERIC without a scale as the struct
 *     io.debezium.data.VariableScaleDecimal; double; string; MONEY with
 *     money.fraction.digits 2);
 *   - "HSTORE type" (hstore.handling.mode json: io.debezium.data.Json).
 * Byte values are base64 in JsonConverter's JSON; the Decimal's bytes are
 * the unscaled value's two's complement, big-endian (the expected base64
 * below was worked out from the number, e.g. 31416 = 0x7AB8 = "erg=").
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "sinks/kafka/debezium.h"

static const struct wc_dbz_options adaptive = {0};
static const struct wc_dbz_options connect = {.time = WC_DBZ_TIME_CONNECT};
static const struct wc_dbz_options as_string = {.decimal =
                                                    WC_DBZ_DECIMAL_STRING};
static const struct wc_dbz_options as_double = {.decimal =
                                                    WC_DBZ_DECIMAL_DOUBLE};

/* The payload of one value, and its field schema. */
static void check(const struct wc_dbz_options *o, uint32_t oid,
                  const char *type, const char *json, const char *payload,
                  const char *schema)
{
        struct wc_dbz_type t;
        struct wc_buf b;

        wc_buf_init(&b);
        wc_dbz_type_of(oid, type, strlen(type), o, &t);
        assert_int_equal(wc_dbz_append_value(&b, &t, json, strlen(json)), 0);
        if (strcmp(b.data, payload) != 0)
                fail_msg("%s %s: got %s, want %s", type, json, b.data, payload);
        if (schema) {
                wc_buf_reset(&b);
                assert_int_equal(wc_dbz_append_field_schema(
                                     &b, &t, type, strlen(type), "c", 1, true),
                                 0);
                if (strcmp(b.data, schema) != 0)
                        fail_msg("%s schema: got %s, want %s", type, b.data,
                                 schema);
        }
        wc_buf_free(&b);
}

#define F(type_and_more) "{\"type\":" type_and_more ",\"field\":\"c\"}"

/* ---- basic types (table "Mappings for PostgreSQL basic types") ---- */

static void test_integers_and_floats(void **state)
{
        (void)state;
        check(&adaptive, 21, "smallint", "-32768", "-32768",
              F("\"int16\",\"optional\":true"));
        check(&adaptive, 23, "integer", "2147483647", "2147483647",
              F("\"int32\",\"optional\":true"));
        check(&adaptive, 20, "bigint", "-9223372036854775808",
              "-9223372036854775808", F("\"int64\",\"optional\":true"));
        /* OID: INT64 (unsigned 32 bits) */
        check(&adaptive, 26, "oid", "4294967295", "4294967295",
              F("\"int64\",\"optional\":true"));
        check(&adaptive, 700, "real", "1.5", "1.5",
              F("\"float\",\"optional\":true"));
        check(&adaptive, 701, "double precision", "-2.5e-300", "-2.5e-300",
              F("\"double\",\"optional\":true"));
        check(&adaptive, 701, "double precision", "1e+308", "1e+308", NULL);
        /* wal2json 2.6's numeric-data-types-as-string: the same numbers */
        check(&adaptive, 23, "integer", "\"42\"", "42", NULL);
        /* the special values as Jackson writes a double's */
        check(&adaptive, 701, "double precision", "\"Infinity\"",
              "\"Infinity\"", NULL);
        check(&adaptive, 700, "real", "\"-Infinity\"", "\"-Infinity\"", NULL);
        check(&adaptive, 701, "double precision", "\"NaN\"", "\"NaN\"", NULL);
        /* wal2json 2.5 writes them as null: null */
        check(&adaptive, 701, "double precision", "null", "null", NULL);
}

static void test_boolean_and_bits(void **state)
{
        (void)state;
        check(&adaptive, 16, "boolean", "true", "true",
              F("\"boolean\",\"optional\":true"));
        check(&adaptive, 16, "boolean", "false", "false", NULL);
        /* BIT(1): BOOLEAN */
        check(&adaptive, 1560, "bit(1)", "\"1\"", "true",
              F("\"boolean\",\"optional\":true"));
        check(&adaptive, 1560, "bit(1)", "\"0\"", "false", NULL);
        /* BIT(>1), BIT VARYING: io.debezium.data.Bits, little-endian
         * bytes, as many as the set bits need; "length" the declared
         * size (2^31-1 for a varbit without one) */
        check(&adaptive, 1560, "bit(5)", "\"10110\"", "\"Fg==\"",
              F("\"bytes\",\"optional\":true,\"name\":\"io.debezium.data."
                "Bits\",\"version\":1,\"parameters\":{\"length\":\"5\"}"));
        check(&adaptive, 1562, "bit varying(10)", "\"1000000000\"", "\"AAI=\"",
              NULL);
        check(&adaptive, 1562, "bit varying", "\"0000000100000001\"",
              "\"AQE=\"",
              F("\"bytes\",\"optional\":true,\"name\":\"io.debezium.data."
                "Bits\",\"version\":1,\"parameters\":{\"length\":"
                "\"2147483647\"}"));
        check(&adaptive, 1560, "bit(8)", "\"00000000\"", "\"\"", NULL);
}

static void test_strings(void **state)
{
        (void)state;
        check(&adaptive, 25, "text", "\"plain\"", "\"plain\"",
              F("\"string\",\"optional\":true"));
        check(&adaptive, 1043, "character varying(20)", "\"varchar\"",
              "\"varchar\"", F("\"string\",\"optional\":true"));
        check(&adaptive, 1042, "character(5)", "\"ab   \"", "\"ab   \"",
              F("\"string\",\"optional\":true"));
        check(&adaptive, 25, "text", "\"tab\\there \\\"q\\\" \\u0001\"",
              "\"tab\\there \\\"q\\\" \\u0001\"", NULL);
        check(&adaptive, 869, "inet", "\"192.168.0.1/24\"",
              "\"192.168.0.1/24\"", F("\"string\",\"optional\":true"));
        check(&adaptive, 3904, "int4range", "\"[1,5)\"", "\"[1,5)\"",
              F("\"string\",\"optional\":true"));
        check(&adaptive, 2950, "uuid",
              "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"",
              "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Uuid\",\"version\":1"));
        check(&adaptive, 114, "json",
              "\"{\\\"k\\\": [1, 2.5, \\\"x\\\\\\\"y\\\"], \\\"n\\\": null}\"",
              "\"{\\\"k\\\": [1, 2.5, \\\"x\\\\\\\"y\\\"], \\\"n\\\": null}\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Json\",\"version\":1"));
        check(&adaptive, 3802, "jsonb", "\"[]\"", "\"[]\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Json\",\"version\":1"));
        check(&adaptive, 142, "xml", "\"<a/>\"", "\"<a/>\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Xml\",\"version\":1"));
        /* hstore.handling.mode json; an extension type, known by name */
        check(&adaptive, 16500, "public.hstore", "\"\\\"a\\\"=>\\\"1\\\"\"",
              "\"\\\"a\\\"=>\\\"1\\\"\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Json\",\"version\":1"));
        check(&adaptive, 16600, "public.ltree", "\"a.b\"", "\"a.b\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Ltree\",\"version\":1"));
}

static void test_bytea(void **state)
{
        (void)state;
        /* binary.handling.mode bytes: base64 in JSON */
        check(&adaptive, 17, "bytea", "\"deadbeef00\"", "\"3q2+7wA=\"",
              F("\"bytes\",\"optional\":true"));
        check(&adaptive, 17, "bytea", "\"\"", "\"\"", NULL);
}

/* ---- decimals ("Decimal types") ---- */

static void test_numeric_precise(void **state)
{
        (void)state;
        /* NUMERIC(12,4): Decimal, scale 4; 3.1416 is 31416 unscaled */
        check(&adaptive, 1700, "numeric(12,4)", "3.1416", "\"erg=\"",
              F("\"bytes\",\"optional\":true,\"name\":\"org.apache.kafka."
                "connect.data.Decimal\",\"version\":1,\"parameters\":{"
                "\"scale\":\"4\",\"connect.decimal.precision\":\"12\"}"));
        /* numeric(5,2) 3.50: 350 = 0x015E */
        check(&adaptive, 1700, "numeric(5,2)", "3.50", "\"AV4=\"", NULL);
        /* as a string (wal2json 2.6), and negative: -123.45 is -12345 */
        check(&adaptive, 1700, "numeric(10,2)", "\"-123.45\"", "\"z8c=\"",
              NULL);
        /* two's complement edges: 1.28 -> 128 needs a sign byte */
        check(&adaptive, 1700, "numeric(5,2)", "1.28", "\"AIA=\"", NULL);
        check(&adaptive, 1700, "numeric(5,2)", "-1.28", "\"gA==\"", NULL);
        check(&adaptive, 1700, "numeric(5,2)", "-0.01", "\"/w==\"", NULL);
        check(&adaptive, 1700, "numeric(5,2)", "0.00", "\"AA==\"", NULL);
        check(&adaptive, 1700, "numeric(5,0)", "-0", "\"AA==\"", NULL);
        /* fewer fraction digits than the scale: padded */
        check(&adaptive, 1700, "numeric(5,2)", "2.5", "\"APo=\"", NULL);
        /* NUMERIC without a scale: VariableScaleDecimal {scale, value} */
        check(&adaptive, 1700, "numeric", "12345678901234567890.123456789",
              "{\"scale\":9,\"value\":\"J+QbMka+ybFuOYEV\"}",
              F("\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":"
                "false,\"field\":\"scale\"},{\"type\":\"bytes\",\"optional\":"
                "false,\"field\":\"value\"}],\"optional\":true,\"name\":"
                "\"io.debezium.data.VariableScaleDecimal\",\"version\":1,"
                "\"doc\":\"Variable scaled decimal\""));
        check(&adaptive, 1700, "numeric", "-0.5",
              "{\"scale\":1,\"value\":\"+w==\"}", NULL);
        /* NaN has no Decimal: null, as Debezium in precise mode */
        check(&adaptive, 1700, "numeric", "\"NaN\"", "null", NULL);
        check(&adaptive, 1700, "numeric(5,2)", "\"Infinity\"", "null", NULL);
}

static void test_numeric_string_double(void **state)
{
        (void)state;
        check(&as_string, 1700, "numeric(12,4)", "3.1416", "\"3.1416\"",
              F("\"string\",\"optional\":true"));
        check(&as_string, 1700, "numeric", "\"NaN\"", "\"NaN\"", NULL);
        check(&as_string, 1700, "numeric", "12345678901234567890.123456789",
              "\"12345678901234567890.123456789\"", NULL);
        check(&as_double, 1700, "numeric(12,4)", "3.1416", "3.1416",
              F("\"double\",\"optional\":true"));
        check(&as_double, 1700, "numeric", "\"NaN\"", "\"NaN\"", NULL);
        check(&as_double, 1700, "numeric", "12345678901234567890.123456789",
              "1.2345678901234567e+19", NULL);
}

static void test_money(void **state)
{
        (void)state;
        /* money.fraction.digits 2: Decimal scale 2; $12.34 is 1234 */
        check(&adaptive, 790, "money", "\"$12.34\"", "\"BNI=\"",
              F("\"bytes\",\"optional\":true,\"name\":\"org.apache.kafka."
                "connect.data.Decimal\",\"version\":1,\"parameters\":{"
                "\"scale\":\"2\"}"));
        check(&adaptive, 790, "money", "\"-$0.50\"", "\"zg==\"", NULL);
        check(&as_string, 790, "money", "\"$1,234.56\"", "\"1234.56\"",
              F("\"string\",\"optional\":true"));
        check(&as_double, 790, "money", "\"$12.34\"", "12.34",
              F("\"double\",\"optional\":true"));
}

/* ---- time ("time.precision.mode") ---- */

static void test_time_adaptive(void **state)
{
        (void)state;
        /* DATE: days since the epoch */
        check(&adaptive, 1082, "date", "\"2026-12-31\"", "20818",
              F("\"int32\",\"optional\":true,\"name\":"
                "\"io.debezium.time.Date\",\"version\":1"));
        check(&adaptive, 1082, "date", "\"1970-01-01\"", "0", NULL);
        check(&adaptive, 1082, "date", "\"1969-12-31\"", "-1", NULL);
        /* 44 BC is the proleptic year -43 */
        check(&adaptive, 1082, "date", "\"0044-03-15 BC\"", "-735160", NULL);
        /* TIME without precision is TIME(6): MicroTime */
        check(&adaptive, 1083, "time without time zone", "\"23:59:59.999999\"",
              "86399999999",
              F("\"int64\",\"optional\":true,\"name\":"
                "\"io.debezium.time.MicroTime\",\"version\":1"));
        check(&adaptive, 1083, "time without time zone", "\"24:00:00\"",
              "86400000000", NULL);
        /* TIME(3): Time, milliseconds */
        check(&adaptive, 1083, "time(3) without time zone", "\"00:00:01.5\"",
              "1500",
              F("\"int32\",\"optional\":true,\"name\":"
                "\"io.debezium.time.Time\",\"version\":1"));
        /* TIMESTAMP(6): MicroTimestamp */
        check(&adaptive, 1114, "timestamp without time zone",
              "\"2026-01-02 03:04:05.678901\"", "1767323045678901",
              F("\"int64\",\"optional\":true,\"name\":"
                "\"io.debezium.time.MicroTimestamp\",\"version\":1"));
        check(&adaptive, 1114, "timestamp without time zone",
              "\"1969-12-31 23:59:59.999999\"", "-1", NULL);
        /* TIMESTAMP(3): Timestamp, milliseconds */
        check(&adaptive, 1114, "timestamp(3) without time zone",
              "\"2026-01-02 03:04:05.678\"", "1767323045678",
              F("\"int64\",\"optional\":true,\"name\":"
                "\"io.debezium.time.Timestamp\",\"version\":1"));
        /* infinity: PgJDBC's DATE_POSITIVE_INFINITY, as Debezium */
        check(&adaptive, 1114, "timestamp without time zone", "\"infinity\"",
              "9223372036825200000", NULL);
        check(&adaptive, 1114, "timestamp without time zone", "\"-infinity\"",
              "-9223372036832400000", NULL);
        /* TIMESTAMPTZ: ZonedTimestamp, ISO-8601 in UTC, the fraction
         * without trailing zeros */
        check(&adaptive, 1184, "timestamp with time zone",
              "\"2026-01-02 01:04:05.678901+00\"",
              "\"2026-01-02T01:04:05.678901Z\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.time.ZonedTimestamp\",\"version\":1"));
        check(&adaptive, 1184, "timestamp with time zone",
              "\"2026-01-02 06:34:05.5+05:30\"", "\"2026-01-02T01:04:05.5Z\"",
              NULL);
        check(&adaptive, 1184, "timestamp with time zone",
              "\"2026-01-02 01:04:05+00\"", "\"2026-01-02T01:04:05Z\"", NULL);
        /* TIMETZ: ZonedTime in UTC */
        check(&adaptive, 1266, "time with time zone", "\"10:15:30.25+02\"",
              "\"08:15:30.25Z\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.time.ZonedTime\",\"version\":1"));
        /* INTERVAL: MicroDuration, months of 365.25 / 12 days:
         * (14 * 30.4375 + 3) days + 04:05:06 = 37091106 s */
        check(&adaptive, 1186, "interval", "\"1 year 2 mons 3 days 04:05:06\"",
              "37091106000000",
              F("\"int64\",\"optional\":true,\"name\":"
                "\"io.debezium.time.MicroDuration\",\"version\":1"));
        check(&adaptive, 1186, "interval", "\"-1 days +02:03:00\"",
              "-79020000000", NULL);
        check(&adaptive, 1186, "interval", "\"-04:05:06.5\"", "-14706500000",
              NULL);
        check(&adaptive, 1186, "interval", "\"1 mon\"", "2629800000000", NULL);
        check(&adaptive, 1186, "interval", "\"00:00:00\"", "0", NULL);
}

static void test_time_connect(void **state)
{
        (void)state;
        check(&connect, 1082, "date", "\"2026-12-31\"", "20818",
              F("\"int32\",\"optional\":true,\"name\":"
                "\"org.apache.kafka.connect.data.Date\",\"version\":1"));
        /* milliseconds, whatever the precision */
        check(&connect, 1083, "time without time zone", "\"23:59:59.999999\"",
              "86399999",
              F("\"int32\",\"optional\":true,\"name\":"
                "\"org.apache.kafka.connect.data.Time\",\"version\":1"));
        check(&connect, 1114, "timestamp without time zone",
              "\"2026-01-02 03:04:05.678901\"", "1767323045678",
              F("\"int64\",\"optional\":true,\"name\":"
                "\"org.apache.kafka.connect.data.Timestamp\",\"version\":1"));
        /* timestamptz and interval do not depend on the mode */
        check(&connect, 1184, "timestamp with time zone",
              "\"2026-01-02 01:04:05.678901+00\"",
              "\"2026-01-02T01:04:05.678901Z\"", NULL);
}

/* ---- arrays ---- */

static void test_arrays(void **state)
{
        (void)state;
        check(&adaptive, 1007, "integer[]", "\"{1,2,NULL,4}\"", "[1,2,null,4]",
              F("\"array\",\"items\":{\"type\":\"int32\",\"optional\":true},"
                "\"optional\":true"));
        check(&adaptive, 1009, "text[]",
              "\"{\\\"a b\\\",\\\"c\\\\\\\"d\\\",NULL}\"",
              "[\"a b\",\"c\\\"d\",null]",
              F("\"array\",\"items\":{\"type\":\"string\",\"optional\":true},"
                "\"optional\":true"));
        check(&adaptive, 1015, "character varying(10)[]", "\"{c,d}\"",
              "[\"c\",\"d\"]", NULL);
        check(&adaptive, 1007, "integer[]", "\"{}\"", "[]", NULL);
        /* multidimensional: flattened, Debezium has no nested arrays */
        check(&adaptive, 1007, "integer[]", "\"{{1,2},{3,4}}\"", "[1,2,3,4]",
              NULL);
        check(&adaptive, 1000, "boolean[]", "\"{t,f}\"", "[true,false]", NULL);
        check(&adaptive, 1182, "date[]", "\"{1970-01-02}\"", "[1]",
              F("\"array\",\"items\":{\"type\":\"int32\",\"optional\":true,"
                "\"name\":\"io.debezium.time.Date\",\"version\":1},"
                "\"optional\":true"));
        check(&adaptive, 1231, "numeric(5,2)[]", "\"{1.28,-0.01}\"",
              "[\"AIA=\",\"/w==\"]", NULL);
        check(&adaptive, 1185, "timestamp with time zone[]",
              "\"{\\\"2026-01-02 01:04:05+00\\\"}\"",
              "[\"2026-01-02T01:04:05Z\"]", NULL);
        check(&adaptive, 2951, "uuid[]",
              "\"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}\"",
              "[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"]", NULL);
        check(&adaptive, 1001, "bytea[]", "\"{\\\"\\\\\\\\xdead\\\"}\"",
              "[\"3q0=\"]", NULL);
        /* an array Debezium does not convert (interval[]): its text */
        check(&adaptive, 1187, "interval[]", "\"{\\\"1 day\\\"}\"",
              "\"{\\\"1 day\\\"}\"",
              F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
                "\"parameters\":{\"walcast.type\":\"interval[]\"}"));
}

/* ---- what walcast does not convert ---- */

static void test_unconverted(void **state)
{
        (void)state;
        /* an enum (hostile_types.jsonl): its label, as walcast.data.Text
         * with the type's name; never dropped */
        check(&adaptive, 16414, "public.pst", "\"p\"", "\"p\"",
              F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
                "\"parameters\":{\"walcast.type\":\"public.pst\"}"));
        check(
            &adaptive, 16390, "\"other-tenant\".st", "\"b\"", "\"b\"",
            F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
              "\"parameters\":{\"walcast.type\":\"\\\"other-tenant\\\".st\"}"));
        /* a domain over numeric: its base type's text */
        check(&adaptive, 16418, "public.dnum", "\"2.50\"", "\"2.50\"", NULL);
        /* a domain over integer printed bare by an older wal2json */
        check(&adaptive, 16420, "public.positive", "5", "\"5\"", NULL);
        /* hostile_types.jsonl: type names with quotes, backslashes, dots
         * and spaces, escaped in the parameter; arrays of enums and
         * composites as their text */
        check(&adaptive, 16433, "\"back\\slash\".\"q\"\"uo\\te\"", "\"x\"",
              "\"x\"",
              F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
                "\"parameters\":{\"walcast.type\":"
                "\"\\\"back\\\\slash\\\".\\\"q\\\"\\\"uo\\\\te\\\"\"}"));
        check(&adaptive, 16435, "\"sp ace\".\"an enum\"[]",
              "\"{one,\\\"two words\\\"}\"", "\"{one,\\\"two words\\\"}\"",
              F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
                "\"parameters\":{\"walcast.type\":"
                "\"\\\"sp ace\\\".\\\"an enum\\\"[]\"}"));
        check(&adaptive, 16451, "\"sp ace\".\"com p\"[]", "\"{\\\"(a,x)\\\"}\"",
              "\"{\\\"(a,x)\\\"}\"", NULL);
        /* an unknown OID (0) */
        check(&adaptive, 0, "x", "\"v\"", "\"v\"", NULL);
}

/* Enums with their labels from the catalog (the sink's start): Debezium's
 * io.debezium.data.Enum, "allowed" the labels in order; an enum type the
 * catalog did not have at start stays walcast.data.Text. */
static void test_enum(void **state)
{
        static const struct wc_dbz_enum enums[] = {
            {16390, "a,b"},
            {16414, "new,open,done"},
            {20001, "x"},
        };
        const struct wc_dbz_options with = {.enums = enums, .nenums = 3};
        const struct wc_dbz_options connect_with = {
            .time = WC_DBZ_TIME_CONNECT, .enums = enums, .nenums = 3};

        (void)state;
        check(&with, 16414, "\"town6-govikon\".status", "\"open\"", "\"open\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{"
                "\"allowed\":\"new,open,done\"}"));
        check(&connect_with, 16390, "public.ab", "\"b\"", "\"b\"",
              F("\"string\",\"optional\":true,\"name\":"
                "\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{"
                "\"allowed\":\"a,b\"}"));
        check(&with, 20001, "public.x", "null", "null", NULL);
        /* not among them: as before */
        check(&with, 16415, "public.pst", "\"p\"", "\"p\"",
              F("\"string\",\"optional\":true,\"name\":\"walcast.data.Text\","
                "\"parameters\":{\"walcast.type\":\"public.pst\"}"));
        /* a built-in type is never looked up */
        check(&with, 23, "integer", "5", "5", NULL);
        /* a type known to be no enum (labels NULL): as before too */
        {
                static const struct wc_dbz_enum no[] = {{16415, NULL}};
                const struct wc_dbz_options o = {.enums = no, .nenums = 1};

                check(&o, 16415, "public.pst", "\"p\"", "\"p\"",
                      F("\"string\",\"optional\":true,\"name\":"
                        "\"walcast.data.Text\",\"parameters\":{"
                        "\"walcast.type\":\"public.pst\"}"));
        }
}

/* Labels that change (ALTER TYPE ... ADD VALUE, a type learnt after the
 * table's first change) reach a table's kept schema, memo and key when
 * enums_gen changes with them, and only then. */
static void test_enum_generation(void **state)
{
        static const struct walcast_column items[] = {
            {.name = "id",
             .name_len = 2,
             .type = "public.st",
             .type_len = 9,
             .type_oid = 16414,
             .value = "\"open\"",
             .value_len = 6},
        };
        const struct walcast_columns r = {items, 1};
        const struct wc_dbz_table t = {"app", "db", "public", "st"};
        struct wc_dbz_enum e = {16414, "new,open"};
        struct wc_dbz_options o = {.schemas = true, .enums = &e, .nenums = 1};
        struct wc_dbz_cache c = {0};
        struct walcast_signal sig = {
            .size = sizeof(sig), .schema = "public", .table = "st"};
        struct wc_buf v, k;
        struct wc_str a;

        (void)state;
        wc_buf_init(&v);
        wc_buf_init(&k);
        assert_int_equal(wc_dbz_cached_schema(&c, &t, NULL, &r, &r, &o, &a), 0);
        assert_non_null(strstr(a.ptr, "\"allowed\":\"new,open\""));
        assert_int_equal(wc_dbz_format_key_cached(&k, &c, &t, &r, &r, &o), 0);
        assert_non_null(strstr(k.data, "\"allowed\":\"new,open\""));
        /* new labels, the same generation: what was kept stays */
        e.labels = "new,open,done";
        assert_int_equal(wc_dbz_cached_schema(&c, &t, NULL, &r, &r, &o, &a), 0);
        assert_non_null(strstr(a.ptr, "\"allowed\":\"new,open\""));
        /* a new generation: made again, everywhere */
        o.enums_gen = 1;
        assert_int_equal(wc_dbz_cached_schema(&c, &t, NULL, &r, &r, &o, &a), 0);
        assert_non_null(strstr(a.ptr, "\"allowed\":\"new,open,done\""));
        wc_buf_reset(&k);
        assert_int_equal(wc_dbz_format_key_cached(&k, &c, &t, &r, &r, &o), 0);
        assert_non_null(strstr(k.data, "\"allowed\":\"new,open,done\""));
        assert_int_equal(wc_dbz_format_value_cached(&v, &c, &a, &t, &sig, 'c',
                                                    NULL, &r, NULL, 0, &o),
                         0);
        assert_non_null(strstr(v.data, "\"allowed\":\"new,open,done\""));
        assert_non_null(strstr(v.data, "\"after\":{\"id\":\"open\"}"));
        /* a type now known to be no enum: text */
        e.labels = NULL;
        o.enums_gen = 2;
        assert_int_equal(wc_dbz_cached_schema(&c, &t, NULL, &r, &r, &o, &a), 0);
        assert_null(strstr(a.ptr, "new,open"));
        assert_non_null(strstr(a.ptr, "walcast.data.Text"));
        wc_buf_free(&v);
        wc_buf_free(&k);
        wc_dbz_cache_free(&c);
}

/* ---- keys and envelopes ---- */

#define COL(n, t, oid, v)                                                      \
        {                                                                      \
                .name = n, .name_len = sizeof(n) - 1, .type = t,               \
                .type_len = sizeof(t) - 1, .type_oid = oid, .value = v,        \
                .value_len = sizeof(v) - 1                                     \
        }

static const struct walcast_column row_items[] = {
    COL("id", "integer", 23, "1"),
    COL("price", "numeric(12,4)", 1700, "3.1416"),
    COL("at", "timestamp with time zone", 1184, "\"2026-01-02 01:04:05+00\""),
};
static const struct walcast_columns row = {row_items, 3};
static const struct walcast_column pk_items[] = {
    {.name = "id",
     .name_len = 2,
     .type = "integer",
     .type_len = 7,
     .type_oid = 23},
};
static const struct walcast_columns pk = {pk_items, 1};
static const struct walcast_txn txn = {
    .id = 7,
    .xid = 728,
    .commit_lsn = 22313200,
    .commit_time_us = 1795614503648945,
};
static const struct wc_dbz_table tb = {"app", "app", "town6-govikon",
                                       "tickets"};

static void test_key(void **state)
{
        struct wc_dbz_options o = {.schemas = true};
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_format_key(&b, &tb, &pk, &row, &o), 0);
        assert_string_equal(
            b.data, "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
                    "\"int32\",\"optional\":false,\"field\":\"id\"}],"
                    "\"optional\":false,\"name\":\"app.town6-govikon.tickets."
                    "Key\"},\"payload\":{\"id\":1}}");
        wc_buf_reset(&b);
        o.schemas = false;
        assert_int_equal(wc_dbz_format_key(&b, &tb, &pk, &row, &o), 0);
        assert_string_equal(b.data, "{\"id\":1}");
        /* no primary key, or no value for it: a null key */
        assert_int_equal(wc_dbz_format_key(&b, &tb, NULL, &row, &o), -ENOENT);
        assert_int_equal(
            wc_dbz_format_key(&b, &tb, &pk,
                              &(struct walcast_columns){row_items + 1, 2}, &o),
            -ENOENT);
        wc_buf_free(&b);
}

#define PAYLOAD_SOURCE                                                         \
        "\"source\":{\"version\":\"" WALCAST_VERSION "\",\"connector\":"       \
        "\"postgresql\",\"name\":\"app\",\"ts_ms\":1795614503648,"             \
        "\"snapshot\":\"false\",\"db\":\"app\",\"sequence\":null,"             \
        "\"ts_us\":1795614503648945,\"ts_ns\":1795614503648945000,"            \
        "\"schema\":\"town6-govikon\",\"table\":\"tickets\",\"txId\":728,"     \
        "\"lsn\":22312704,\"xmin\":null,\"origin\":null,\"origin_lsn\":null}"

static void test_envelope_payload(void **state)
{
        struct wc_dbz_options o = {0};
        struct walcast_signal s = {.size = sizeof(s),
                                   .kind = WALCAST_SIG_INSERT,
                                   .schema = "town6-govikon",
                                   .table = "tickets",
                                   .lsn = 22312704,
                                   .txn = &txn};
        struct wc_dbz_txblock tx = {728, 22313200, 3, 2};
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_format_value(&b, &tb, &s, 'c', NULL, &row, &pk,
                                             NULL, 1795614503661123, &o),
                         0);
        assert_string_equal(
            b.data,
            "{\"before\":null,\"after\":{\"id\":1,\"price\":\"erg=\",\"at\":"
            "\"2026-01-02T01:04:05Z\"}," PAYLOAD_SOURCE ",\"op\":\"c\","
            "\"ts_ms\":1795614503661,\"ts_us\":1795614503661123,"
            "\"ts_ns\":1795614503661123000,\"transaction\":null}");
        /* a delete under the default identity: before is the key */
        wc_buf_reset(&b);
        s.kind = WALCAST_SIG_DELETE;
        assert_int_equal(
            wc_dbz_format_value(&b, &tb, &s, 'd',
                                &(struct walcast_columns){row_items, 1}, NULL,
                                &pk, &tx, 1795614503661123, &o),
            0);
        assert_string_equal(
            b.data,
            "{\"before\":{\"id\":1},\"after\":null," PAYLOAD_SOURCE
            ",\"op\":\"d\",\"ts_ms\":1795614503661,\"ts_us\":1795614503661123,"
            "\"ts_ns\":1795614503661123000,\"transaction\":{\"id\":"
            "\"728:22313200\",\"total_order\":3,\"data_collection_order\":2}}");
        wc_buf_free(&b);
}

/* The columns' conversions kept between changes: the same bytes as
 * worked out anew, also when a column's type changes at its position,
 * when a row has fewer or more columns, and for a type name too long to
 * keep. */
static void test_type_memo(void **state)
{
        static const char long_type[] =
            "\"a very long schema name indeed\".\"and a long type name\"";
        struct wc_dbz_options o = {0};
        struct walcast_signal s = {.size = sizeof(s),
                                   .kind = WALCAST_SIG_UPDATE,
                                   .schema = "town6-govikon",
                                   .table = "tickets",
                                   .lsn = 22312704,
                                   .txn = &txn};
        struct walcast_column items[4] = {row_items[0], row_items[1],
                                          row_items[2], row_items[0]};
        struct wc_dbz_cache c = {0};
        struct wc_str none = {NULL, 0};
        struct wc_buf want, got;

        (void)state;
        wc_buf_init(&want);
        wc_buf_init(&got);
        items[3].name = "extra";
        items[3].name_len = 5;
        items[3].type = long_type;
        items[3].type_len = sizeof(long_type) - 1;
        items[3].type_oid = 16500;
        items[3].value = "\"v\"";
        items[3].value_len = 3;
        for (int round = 0; round < 6; round++) {
                struct walcast_columns after = {items, round == 4 ? 4 : 3};
                struct walcast_columns before = {items, round == 5 ? 1 : 3};

                if (round == 2) {
                        /* numeric(12,4) becomes numeric(12,2) */
                        items[1].type = "numeric(12,2)";
                        items[1].value = "3.14";
                        items[1].value_len = 4;
                }
                if (round == 3) {
                        /* integer becomes bigint */
                        items[0].type = "bigint";
                        items[0].type_len = 6;
                        items[0].type_oid = 20;
                }
                wc_buf_reset(&want);
                wc_buf_reset(&got);
                assert_int_equal(wc_dbz_format_value_with(
                                     &want, &none, &tb, &s, 'u', &before,
                                     &after, NULL, 1795614503661123, &o),
                                 0);
                assert_int_equal(wc_dbz_format_value_cached(
                                     &got, &c, &none, &tb, &s, 'u', &before,
                                     &after, NULL, 1795614503661123, &o),
                                 0);
                assert_string_equal(got.data, want.data);
        }
        assert_non_null(strstr(got.data, "\"price\":\"ATo=\""));
        wc_dbz_cache_free(&c);
        wc_buf_free(&want);
        wc_buf_free(&got);
}

#define VALUE_STRUCT                                                           \
        "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":"   \
        "false,\"field\":\"id\"},{\"type\":\"bytes\",\"optional\":true,"       \
        "\"name\":\"org.apache.kafka.connect.data.Decimal\",\"version\":1,"    \
        "\"parameters\":{\"scale\":\"4\",\"connect.decimal.precision\":"       \
        "\"12\"},\"field\":\"price\"},{\"type\":\"string\",\"optional\":true," \
        "\"name\":\"io.debezium.time.ZonedTimestamp\",\"version\":1,"          \
        "\"field\":\"at\"}],\"optional\":true,\"name\":"                       \
        "\"app.town6-govikon.tickets.Value\",\"field\":"

/* The Envelope schema as Debezium's PostgreSQL connector defines it
 * (documentation, "Change event values": before and after of the Value
 * struct, source io.debezium.connector.postgresql.Source, op, ts_ms,
 * transaction block event.block). */
static void test_envelope_schema(void **state)
{
        struct wc_dbz_options o = {.schemas = true};
        struct walcast_signal s = {.size = sizeof(s),
                                   .kind = WALCAST_SIG_INSERT,
                                   .schema = "town6-govikon",
                                   .table = "tickets",
                                   .lsn = 22312704,
                                   .txn = &txn};
        struct wc_buf b;
        const char *want =
            "{\"schema\":{\"type\":\"struct\",\"fields\":[" VALUE_STRUCT
            "\"before\"}," VALUE_STRUCT "\"after\"},"
            "{\"type\":\"struct\",\"fields\":["
            "{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},"
            "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},"
            "{\"type\":\"string\",\"optional\":true,\"name\":"
            "\"io.debezium.data.Enum\",\"version\":1,\"parameters\":{"
            "\"allowed\":\"true,first,first_in_data_collection,"
            "last_in_data_collection,last,false,incremental\"},"
            "\"default\":\"false\",\"field\":\"snapshot\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},"
            "{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"schema\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"table\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"txId\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"lsn\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"xmin\"},"
            "{\"type\":\"string\",\"optional\":true,\"field\":\"origin\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"origin_lsn\"}],"
            "\"optional\":false,\"name\":"
            "\"io.debezium.connector.postgresql.Source\",\"version\":1,"
            "\"field\":\"source\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},"
            "{\"type\":\"struct\",\"fields\":["
            "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
            "{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},"
            "{\"type\":\"int64\",\"optional\":false,\"field\":"
            "\"data_collection_order\"}],\"optional\":true,\"name\":"
            "\"event.block\",\"version\":1,\"field\":\"transaction\"}],"
            "\"optional\":false,\"name\":"
            "\"app.town6-govikon.tickets.Envelope\",\"version\":2},"
            "\"payload\":{\"before\":null,\"after\":{\"id\":1,\"price\":"
            "\"erg=\",\"at\":\"2026-01-02T01:04:05Z\"}," PAYLOAD_SOURCE
            ",\"op\":\"c\",\"ts_ms\":1795614503661,\"ts_us\":1795614503661123,"
            "\"ts_ns\":1795614503661123000,\"transaction\":null}}";

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_format_value(&b, &tb, &s, 'c', NULL, &row, &pk,
                                             NULL, 1795614503661123, &o),
                         0);
        assert_string_equal(b.data, want);
        wc_buf_free(&b);
}

/* before's columns that after lacks (an unchanged TOASTed value under
 * REPLICA IDENTITY FULL) are in the Value struct too */
static void test_value_struct_union(void **state)
{
        struct wc_dbz_options o = {.schemas = true};
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_append_envelope_schema(
                             &b, &tb, &row,
                             &(struct walcast_columns){row_items, 1}, &pk, &o),
                         0);
        assert_non_null(
            strstr(b.data,
                   "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\","
                   "\"optional\":false,\"field\":\"id\"},{\"type\":\"bytes\""));
        assert_non_null(strstr(b.data, "\"field\":\"at\"}],\"optional\":true,"
                                       "\"name\":\"app.town6-govikon.tickets."
                                       "Value\",\"field\":\"after\"}"));
        wc_buf_free(&b);
}

/* The cache gives what wc_dbz_append_envelope_schema makes, for each
 * set of columns, and makes it again only for new ones. */
static void test_schema_cache(void **state)
{
        struct wc_dbz_options o = {.schemas = true};
        struct wc_dbz_cache c = {0};
        const struct walcast_columns key_only = {row_items, 1};
        struct wc_str a, b, a2;
        struct wc_buf want;

        (void)state;
        wc_buf_init(&want);
        assert_int_equal(wc_dbz_cached_schema(&c, &tb, NULL, &row, &pk, &o, &a),
                         0);
        assert_int_equal(
            wc_dbz_append_envelope_schema(&want, &tb, NULL, &row, &pk, &o), 0);
        assert_int_equal(a.len, want.len);
        assert_memory_equal(a.ptr, want.data, want.len);
        /* a delete's: the table's, the insert's */
        assert_int_equal(
            wc_dbz_cached_schema(&c, &tb, &key_only, NULL, &pk, &o, &b), 0);
        assert_ptr_equal(a.ptr, b.ptr);
        /* a truncate's too */
        assert_int_equal(wc_dbz_cached_schema(&c, &tb, NULL, NULL, &pk, &o, &b),
                         0);
        assert_ptr_equal(a.ptr, b.ptr);
        /* an update with the old row (REPLICA IDENTITY FULL): its own */
        assert_int_equal(
            wc_dbz_cached_schema(&c, &tb, &key_only, &row, &pk, &o, &b), 0);
        assert_ptr_not_equal(a.ptr, b.ptr);
        /* the insert's again: kept */
        assert_int_equal(
            wc_dbz_cached_schema(&c, &tb, NULL, &row, &pk, &o, &a2), 0);
        assert_ptr_equal(a.ptr, a2.ptr);
        /* a delete of a column the kept rows do not have: its own */
        {
                struct walcast_column gone = row_items[0];

                gone.name = "gone";
                gone.name_len = 4;
                assert_int_equal(
                    wc_dbz_cached_schema(&c, &tb,
                                         &(struct walcast_columns){&gone, 1},
                                         NULL, &pk, &o, &b),
                    0);
                assert_non_null(strstr(b.ptr, "\"field\":\"gone\""));
                assert_null(strstr(b.ptr, "\"field\":\"price\""));
        }
        /* a column's type changed: made again */
        {
                struct walcast_column items[3] = {row_items[0], row_items[1],
                                                  row_items[2]};

                items[1].type = "numeric(12,2)";
                items[1].type_len = 13;
                assert_int_equal(
                    wc_dbz_cached_schema(&c, &tb, NULL,
                                         &(struct walcast_columns){items, 3},
                                         &pk, &o, &a2),
                    0);
                assert_non_null(strstr(a2.ptr, "\"scale\":\"2\""));
        }
        /* the key, kept: the same bytes as made anew */
        for (int i = 0; i < 2; i++) {
                wc_buf_reset(&want);
                assert_int_equal(
                    wc_dbz_format_key_cached(&want, &c, &tb, &pk, &row, &o), 0);
                assert_string_equal(
                    want.data,
                    "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
                    "\"int32\",\"optional\":false,\"field\":\"id\"}],"
                    "\"optional\":false,\"name\":\"app.town6-govikon.tickets."
                    "Key\"},\"payload\":{\"id\":1}}");
        }
        {
                struct walcast_column items[3] = {row_items[0], row_items[1],
                                                  row_items[2]};

                items[0].type = "bigint";
                items[0].type_len = 6;
                items[0].type_oid = 20;
                wc_buf_reset(&want);
                assert_int_equal(wc_dbz_format_key_cached(
                                     &want, &c, &tb, &pk,
                                     &(struct walcast_columns){items, 3}, &o),
                                 0);
                assert_non_null(strstr(want.data, "{\"type\":\"int64\","));
        }
        wc_dbz_cache_free(&c);
        wc_buf_free(&want);
}

/* Transaction metadata: Debezium's documentation, "Transaction
 * metadata": a BEGIN and an END record keyed by the transaction id, END
 * with event_count and data_collections; TransactionMetadataKey and
 * TransactionMetadataValue schemas. */
static void test_txn_records(void **state)
{
        struct wc_dbz_options o = {0};
        const struct wc_dbz_collection colls[] = {
            {"town6-govikon.tickets", 21, 2},
            {"public.\"q\"", 10, 1},
        };
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_format_txn_key(&b, 571, 53195832, &o), 0);
        assert_string_equal(b.data, "{\"id\":\"571:53195832\"}");
        wc_buf_reset(&b);
        assert_int_equal(wc_dbz_format_txn_value(&b, false, 571, 53195832,
                                                 1580390884335, 0, NULL, 0, &o),
                         0);
        assert_string_equal(b.data,
                            "{\"status\":\"BEGIN\",\"id\":\"571:53195832\","
                            "\"event_count\":null,\"data_collections\":null,"
                            "\"ts_ms\":1580390884335}");
        wc_buf_reset(&b);
        assert_int_equal(wc_dbz_format_txn_value(&b, true, 571, 53195832,
                                                 1580390884335, 3, colls, 2,
                                                 &o),
                         0);
        assert_string_equal(b.data,
                            "{\"status\":\"END\",\"id\":\"571:53195832\","
                            "\"event_count\":3,\"data_collections\":[{"
                            "\"data_collection\":\"town6-govikon.tickets\","
                            "\"event_count\":2},{\"data_collection\":"
                            "\"public.\\\"q\\\"\",\"event_count\":1}],"
                            "\"ts_ms\":1580390884335}");
        o.schemas = true;
        wc_buf_reset(&b);
        assert_int_equal(wc_dbz_format_txn_key(&b, 571, 53195832, &o), 0);
        assert_string_equal(
            b.data,
            "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
            "\"string\",\"optional\":false,\"field\":\"id\"}],"
            "\"optional\":false,\"name\":\"io.debezium.connector.common."
            "TransactionMetadataKey\",\"version\":1},\"payload\":{\"id\":"
            "\"571:53195832\"}}");
        wc_buf_reset(&b);
        assert_int_equal(wc_dbz_format_txn_value(&b, true, 571, 53195832,
                                                 1580390884335, 1, colls, 1,
                                                 &o),
                         0);
        assert_string_equal(
            b.data,
            "{\"schema\":{\"type\":\"struct\",\"fields\":["
            "{\"type\":\"string\",\"optional\":false,\"field\":\"status\"},"
            "{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},"
            "{\"type\":\"int64\",\"optional\":true,\"field\":"
            "\"event_count\"},{\"type\":\"array\",\"items\":{\"type\":"
            "\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":"
            "false,\"field\":\"data_collection\"},{\"type\":\"int64\","
            "\"optional\":false,\"field\":\"event_count\"}],\"optional\":"
            "true,\"name\":\"event.collection\",\"version\":1},"
            "\"optional\":true,\"field\":\"data_collections\"},"
            "{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"}],"
            "\"optional\":false,\"name\":\"io.debezium.connector.common."
            "TransactionMetadataValue\",\"version\":1},\"payload\":{"
            "\"status\":\"END\",\"id\":\"571:53195832\",\"event_count\":1,"
            "\"data_collections\":[{\"data_collection\":"
            "\"town6-govikon.tickets\",\"event_count\":2}],"
            "\"ts_ms\":1580390884335}}");
        wc_buf_free(&b);
}

/* Logical messages: Debezium's documentation, "Logical decoding message
 * events": op "m", key {"prefix"}, value message {prefix, content} with
 * the content's bytes (base64 in JSON). */
static void test_message(void **state)
{
        struct wc_dbz_options o = {0};
        struct walcast_signal s = {.size = sizeof(s),
                                   .kind = WALCAST_SIG_MESSAGE,
                                   .lsn = 22312704,
                                   .txn = &txn,
                                   .transactional = 1,
                                   .prefix = "audit",
                                   .content = "\"a\\nb\"",
                                   .content_len = 6};
        struct wc_buf b;

        (void)state;
        wc_buf_init(&b);
        assert_int_equal(wc_dbz_format_message_key(&b, &s, &o), 0);
        assert_string_equal(b.data, "{\"prefix\":\"audit\"}");
        wc_buf_reset(&b);
        assert_int_equal(
            wc_dbz_format_message_value(&b, &tb, &s, 1795614503661123, &o), 0);
        assert_string_equal(
            b.data,
            "{\"op\":\"m\",\"ts_ms\":1795614503648,\"source\":{\"version\":"
            "\"" WALCAST_VERSION "\",\"connector\":\"postgresql\",\"name\":"
            "\"app\",\"ts_ms\":1795614503648,\"snapshot\":\"false\",\"db\":"
            "\"app\",\"sequence\":null,\"ts_us\":1795614503648945,\"ts_ns\":"
            "1795614503648945000,\"schema\":\"\",\"table\":\"\",\"txId\":728,"
            "\"lsn\":22312704,\"xmin\":null,\"origin\":null,\"origin_lsn\":"
            "null},\"transaction\":null,\"message\":{\"prefix\":\"audit\","
            "\"content\":\"YQpi\"}}");
        /* outside a transaction: now; content in base64 already */
        s.txn = NULL;
        s.transactional = 0;
        s.content = "\"/w==\"";
        s.content_len = 6;
        s.content_flags = WALCAST_CONTENT_BASE64;
        wc_buf_reset(&b);
        assert_int_equal(
            wc_dbz_format_message_value(&b, &tb, &s, 1795614503661123, &o), 0);
        assert_non_null(
            strstr(b.data, "{\"op\":\"m\",\"ts_ms\":1795614503661,"));
        assert_non_null(strstr(b.data, "\"txId\":null,"));
        assert_non_null(strstr(b.data, "\"content\":\"/w==\"}}"));
        /* with schemas: MessageKey, MessageValue */
        o.schemas = true;
        wc_buf_reset(&b);
        assert_int_equal(wc_dbz_format_message_key(&b, &s, &o), 0);
        assert_string_equal(
            b.data, "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
                    "\"string\",\"optional\":true,\"field\":\"prefix\"}],"
                    "\"optional\":false,\"name\":\"io.debezium.connector."
                    "postgresql.MessageKey\",\"version\":1},\"payload\":{"
                    "\"prefix\":\"audit\"}}");
        wc_buf_reset(&b);
        assert_int_equal(
            wc_dbz_format_message_value(&b, &tb, &s, 1795614503661123, &o), 0);
        assert_non_null(strstr(
            b.data, "{\"type\":\"bytes\",\"optional\":true,\"field\":"
                    "\"content\"}],\"optional\":false,\"name\":\"io.debezium."
                    "connector.postgresql.Message\",\"version\":1,\"field\":"
                    "\"message\"}],\"optional\":false,\"name\":\"io.debezium."
                    "connector.postgresql.MessageValue\",\"version\":1},"
                    "\"payload\":{\"op\":\"m\","));
        wc_buf_free(&b);
}

/* Heartbeats: Debezium's ServerNameKey and Heartbeat records. */
static void test_heartbeat(void **state)
{
        struct wc_dbz_options o = {0};
        struct wc_buf k, v;

        (void)state;
        wc_buf_init(&k);
        wc_buf_init(&v);
        assert_int_equal(
            wc_dbz_format_heartbeat(&k, &v, "app", 1795614503661, &o), 0);
        assert_string_equal(k.data, "{\"serverName\":\"app\"}");
        assert_string_equal(v.data, "{\"ts_ms\":1795614503661}");
        o.schemas = true;
        wc_buf_reset(&k);
        wc_buf_reset(&v);
        assert_int_equal(
            wc_dbz_format_heartbeat(&k, &v, "app", 1795614503661, &o), 0);
        assert_string_equal(
            k.data,
            "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
            "\"string\",\"optional\":false,\"field\":\"serverName\"}],"
            "\"optional\":false,\"name\":\"io.debezium.connector.common."
            "ServerNameKey\",\"version\":1},\"payload\":{\"serverName\":"
            "\"app\"}}");
        assert_string_equal(
            v.data,
            "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":"
            "\"int64\",\"optional\":false,\"field\":\"ts_ms\"}],"
            "\"optional\":false,\"name\":\"io.debezium.connector.common."
            "Heartbeat\",\"version\":1},\"payload\":{\"ts_ms\":"
            "1795614503661}}");
        wc_buf_free(&k);
        wc_buf_free(&v);
}

static void test_options(void **state)
{
        enum wc_dbz_decimal d;
        enum wc_dbz_time t;

        (void)state;
        assert_int_equal(wc_dbz_parse_decimal("string", &d), 0);
        assert_int_equal(d, WC_DBZ_DECIMAL_STRING);
        assert_int_equal(wc_dbz_parse_decimal("double", &d), 0);
        assert_int_equal(d, WC_DBZ_DECIMAL_DOUBLE);
        assert_int_equal(wc_dbz_parse_decimal(NULL, &d), 0);
        assert_int_equal(d, WC_DBZ_DECIMAL_PRECISE);
        assert_int_equal(wc_dbz_parse_decimal("exact", &d), -EINVAL);
        assert_int_equal(wc_dbz_parse_time("connect", &t), 0);
        assert_int_equal(t, WC_DBZ_TIME_CONNECT);
        assert_int_equal(wc_dbz_parse_time("adaptive_time_microseconds", &t),
                         -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_integers_and_floats),
            cmocka_unit_test(test_boolean_and_bits),
            cmocka_unit_test(test_strings),
            cmocka_unit_test(test_bytea),
            cmocka_unit_test(test_numeric_precise),
            cmocka_unit_test(test_numeric_string_double),
            cmocka_unit_test(test_money),
            cmocka_unit_test(test_time_adaptive),
            cmocka_unit_test(test_time_connect),
            cmocka_unit_test(test_arrays),
            cmocka_unit_test(test_unconverted),
            cmocka_unit_test(test_enum),
            cmocka_unit_test(test_enum_generation),
            cmocka_unit_test(test_type_memo),
            cmocka_unit_test(test_key),
            cmocka_unit_test(test_envelope_payload),
            cmocka_unit_test(test_envelope_schema),
            cmocka_unit_test(test_value_struct_union),
            cmocka_unit_test(test_schema_cache),
            cmocka_unit_test(test_txn_records),
            cmocka_unit_test(test_message),
            cmocka_unit_test(test_heartbeat),
            cmocka_unit_test(test_options),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
