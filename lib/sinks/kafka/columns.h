/* SPDX-License-Identifier: MIT */
/*
 * Column rules of a Kafka sink (docs/kafka.md, "Column rules"): per table
 * pattern, columns left out of every row, columns whose values are
 * replaced by a salted SHA-256 digest, and the columns that key the
 * messages instead of the primary key.  Pure: the rows a rule makes from
 * the decoder's.
 */
#ifndef WALCAST_SINKS_KAFKA_COLUMNS_H
#define WALCAST_SINKS_KAFKA_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>

#include <walcast/plugin.h>

#include "core/core.h"
#include "core/pattern.h"

struct wc_kafka_column_rule {
        struct wc_pattern_list tables; /* "table" or "schema.table", globs */
        struct wc_pattern_list exclude;
        struct wc_pattern_list mask;
        struct wc_pattern_list key_columns; /* empty: the primary key */
};

/* The first rule of rules[0..n) for the table, or NULL. */
const struct wc_kafka_column_rule *
wc_kafka_rule_for(const struct wc_kafka_column_rule *rules, size_t n,
                  const char *schema, const char *table);

/* The room wc_kafka_rule_apply may use for a list of n columns. */
struct wc_kafka_rule_out {
        struct walcast_column *items;
        size_t cap;
        struct wc_buf masked; /* the digests' text */
};

/*
 * out: in without the excluded columns and with the masked ones' values
 * replaced by the JSON string of the hex SHA-256 of salt followed by the
 * value's text (a string's content as PostgreSQL printed it, a number's
 * or boolean's token; null stays null), their type then "text".  *ret
 * points into o, valid until its next use.  0 or -ENOMEM.
 */
int wc_kafka_rule_apply(const struct wc_kafka_column_rule *r, const char *salt,
                        const struct walcast_columns *in,
                        struct wc_kafka_rule_out *o,
                        struct walcast_columns *ret);

/* The key columns of r as a key description (names only) in o; *ret
 * unchanged when r names none.  0 or -ENOMEM. */
int wc_kafka_rule_key(const struct wc_kafka_column_rule *r,
                      struct wc_kafka_rule_out *o, struct walcast_columns *ret);

/* The first of pk that r excludes, or NULL. */
const char *wc_kafka_rule_excluded_key(const struct wc_kafka_column_rule *r,
                                       const struct walcast_columns *pk);

struct wc_catalog_tables;

/*
 * rules[0..n) against the catalog's tables (those the sink takes): for
 * each table, the first rule that matches it may not name in key_columns
 * a column the table lacks, nor exclude a column of the message key (its
 * key_columns, else its primary key).  Masking a key column is allowed:
 * the key is then the digest.  The first violation is an error naming
 * sink, table and column (-EINVAL, errbuf set).  A rule matching none of
 * the tables is said through warn (it may be for tables created later).
 */
int wc_kafka_rules_check(const struct wc_kafka_column_rule *rules, size_t n,
                         const struct wc_catalog_tables *t, const char *sink,
                         void (*warn)(int level, const char *msg), char *errbuf,
                         size_t errlen);

/* A deep copy of rules[0..n) into *ret (n items).  0 or -ENOMEM. */
int wc_kafka_column_rules_copy(const struct wc_kafka_column_rule *rules,
                               size_t n, struct wc_kafka_column_rule **ret);

void wc_kafka_rule_out_free(struct wc_kafka_rule_out *o);
void wc_kafka_column_rule_free(struct wc_kafka_column_rule *r);

#endif
