/* SPDX-License-Identifier: MIT */
/*
 * Short catalog lookups about tables' replica identity, on an ordinary
 * (non-replication) connection with the source DSN: what wal2json can say
 * about a table's old rows decides whether its updates and deletes are
 * decoded at all, and what a Kafka sink can key them by.
 *
 * Every lookup opens its own connection, bounded in time (connect_timeout
 * and statement_timeout of CATALOG_TIMEOUT_S seconds), and closes it.  The
 * catalog says how a table is now, not when a change was written.
 */
#ifndef WALCAST_CATALOG_H
#define WALCAST_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* What the catalog says of a table's replica identity. */
enum wc_ident {
        WC_IDENT_UNKNOWN = 0,   /* the lookup failed */
        WC_IDENT_NO_TABLE,      /* no such table (any more) */
        WC_IDENT_NO_PK,         /* DEFAULT, and no primary key */
        WC_IDENT_NOTHING,       /* REPLICA IDENTITY NOTHING */
        WC_IDENT_INDEX_DROPPED, /* USING INDEX, and no index is it now */
        /* USING INDEX on an index without every primary-key column: rows
         * are identified, but not by their primary key */
        WC_IDENT_INDEX_NO_PK,
        WC_IDENT_OK, /* DEFAULT with a primary key, FULL, or an index with
                      * every key column (or a table without key) */
};

/*
 * Why wal2json had no identity for an update or delete of "schema"."table"
 * (wal2json's WARNING quotes it so: `"s"."t"`), looked up once per table
 * and remembered.  Writes into out a sentence naming the cause and the
 * remedy; when the lookup fails, one naming the possible causes and why
 * it failed.  Owns its cache; wc_catalog_free accepts NULL.
 */
struct wc_catalog;
struct wc_catalog *wc_catalog_new(const char *dsn);
void wc_catalog_free(struct wc_catalog *c);
void wc_catalog_why_unidentified(struct wc_catalog *c, const char *quoted,
                                 char *out, size_t outlen);

/*
 * The pgoutput decoder's lookups (decode/pgoutput.h, struct
 * wc_pgoutput_catalog; ud is the struct wc_catalog), on one ordinary
 * connection the catalog keeps open, with an empty search_path:
 * format_type(oid, typmod), and a table's primary-key column names each
 * followed by a NUL.  0 or a negative errno with errbuf set.
 */
int wc_catalog_type_name(void *ud, uint32_t oid, int32_t typmod,
                         struct wc_buf *out, char *errbuf, size_t errlen);
int wc_catalog_primary_key(void *ud, uint32_t relid, struct wc_buf *out,
                           char *errbuf, size_t errlen);

/*
 * The Kafka sink's enum lookups (Debezium's "allowed" of a type met after
 * start), on the same kept connection: for each of oids[0..n) that the
 * catalog has, found(ud, oid, labels) with the enum's labels in sort order
 * joined with "," ("" for an enum without any), or NULL when the type is
 * no enum.  A type the catalog no longer has is not reported.  found
 * returning non-zero stops with that.  0 or a negative errno with errbuf
 * set (-EHOSTUNREACH: no connection).
 */
int wc_catalog_enum_labels(void *ud, const uint32_t *oids, size_t n,
                           int (*found)(void *ud, uint32_t oid,
                                        const char *labels),
                           void *found_ud, char *errbuf, size_t errlen);

/* The replica identity of schema.table.  0 with *ret_ident set, or a
 * negative errno with errbuf set (WC_IDENT_UNKNOWN). */
int wc_catalog_identity(const char *dsn, const char *schema, const char *table,
                        enum wc_ident *ret_ident, char *errbuf, size_t errlen);

/*
 * At start: every ordinary table that included() accepts and whose
 * identity is not WC_IDENT_OK, reported as a sentence through report()
 * at a syslog level (warning: changes are lost; notice: what the sinks do
 * instead), at most `max` tables and then one line for the rest.  kafka:
 * a Kafka sink is configured (its keys are what USING INDEX changes).
 * 0, or a negative errno with errbuf set.
 */
typedef bool (*wc_catalog_included_fn)(void *ud, const char *schema,
                                       const char *table);
typedef void (*wc_catalog_report_fn)(void *ud, int level, const char *msg);
int wc_catalog_identity_report(const char *dsn, bool kafka, size_t max,
                               wc_catalog_included_fn included,
                               wc_catalog_report_fn report, void *ud,
                               char *errbuf, size_t errlen);

/* The sentence for one table (both of the above use it). */
void wc_catalog_explain(enum wc_ident ident, const char *schema,
                        const char *table, bool kafka, char *out,
                        size_t outlen);

/*
 * The columns of the ordinary and partitioned tables that included()
 * accepts, for rules checked at start (a Kafka sink's column rules) and
 * the labels of the enum types those columns have (Debezium's
 * io.debezium.data.Enum).  One query on one bounded connection; the
 * server returns every user table's columns and included() picks.
 */
struct wc_catalog_column {
        char *name;
        uint32_t type_oid;
        bool pk; /* part of the primary key */
};

struct wc_catalog_table {
        char *schema, *table;
        struct wc_catalog_column *cols; /* in attnum order */
        size_t ncols;
};

/* An enum type: its labels in sort order, joined with ",". */
struct wc_catalog_enum {
        uint32_t oid;
        char *labels;
};

struct wc_catalog_tables {
        struct wc_catalog_table *tables; /* by schema, table */
        size_t ntables;
        struct wc_catalog_enum *enums; /* by oid */
        size_t nenums;
};

/* 0 with *ret filled, or a negative errno with errbuf set (-EIO: the
 * server could not be reached or the query failed). */
int wc_catalog_tables_load(const char *dsn, wc_catalog_included_fn included,
                           void *ud, struct wc_catalog_tables *ret,
                           char *errbuf, size_t errlen);
void wc_catalog_tables_free(struct wc_catalog_tables *t);

#endif
