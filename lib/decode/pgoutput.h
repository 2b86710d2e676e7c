/* SPDX-License-Identifier: MIT */
/*
 * The pgoutput decoder: PostgreSQL's own logical replication protocol
 * (text values, protocol 1 or 2 without streaming), one message to one
 * struct wc_change behind the decoder interface (decoder.h), with the
 * same names, types and JSON kinds of values as the wal2json decoder.
 *
 * pgoutput is binary and stateful: a Relation ('R') message describes a
 * table (by OID) before its first change in a session and again after
 * any DDL, and later changes name the table by OID only.  The decoder
 * keeps those descriptions, replacing one when a new Relation arrives.
 * Relation, Type and Origin messages carry no change: decode() returns 0
 * with *ret_change NULL.  A Truncate of several tables is one change per
 * table: the first from decode(), the others from wc_decoder_next().
 *
 * What the protocol does not say is asked of a catalog the caller hands
 * in (struct wc_pgoutput_catalog), on an ordinary connection, once per
 * type and per table: the names of types that are not built in (built-in
 * ones are named without a query), and a table's primary key where the
 * replica identity is not it (FULL, USING INDEX, NOTHING).  The decoder
 * itself does no I/O.
 *
 * Values are views into the message where their text is their JSON (the
 * number types), and JSON strings the decoder writes otherwise:
 *   smallint, integer, bigint, oid, real, double precision, numeric:
 *       bare, as sent; NaN, Infinity and -Infinity as the JSON strings
 *       "NaN", "Infinity", "-Infinity" (JSON has no such numbers)
 *   boolean: true / false
 *   bytea: the hex digits without \x, as a string
 *   anything else: its text as a JSON string; SQL NULL: null
 * A column whose value is an unchanged TOASTed one ('u') is left out of
 * the row and named in `missing` (unless the identity carries it: the
 * bus completes it from there).  The change's `lsn` is the position the
 * server sends the message at (XLogData's dataStart: the change's own).
 *
 * Errors name the position and show the start of the message in hex:
 *   could not decode pgoutput message at 0/1547700: unknown relation
 *   OID 16390: 49 00 00 40 06 4e ...
 */
#ifndef WALCAST_PGOUTPUT_H
#define WALCAST_PGOUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "decode/decoder.h"

extern const struct wc_decoder_ops wc_pgoutput;

/*
 * Catalog lookups for the decoder.  Each returns 0, or a negative errno
 * with errbuf set (the decode fails with it: the change is not skipped).
 */
struct wc_pgoutput_catalog {
        void *ud;
        /* format_type(oid, typmod) with an empty search_path, appended to
         * out (no NUL). */
        int (*type_name)(void *ud, uint32_t oid, int32_t typmod,
                         struct wc_buf *out, char *errbuf, size_t errlen);
        /* The names of relation relid's primary-key columns, each followed
         * by a NUL, appended to out; nothing when it has none. */
        int (*primary_key)(void *ud, uint32_t relid, struct wc_buf *out,
                           char *errbuf, size_t errlen);
};

/* Hands the decoder d (a pgoutput one) its catalog, copied; NULL for none
 * (then a type that is not built in, or a primary key the replica
 * identity does not give, is an error). */
void wc_pgoutput_set_catalog(struct wc_decoder *d,
                             const struct wc_pgoutput_catalog *cat);

/*
 * format_type(oid, typmod) for a built-in type, without a query: its
 * length, written NUL-terminated into out; 0 when oid is not one this
 * table knows (ask the catalog), -ENOSPC when out is too small.
 */
int wc_pgoutput_builtin_type(uint32_t oid, int32_t typmod, char *out,
                             size_t outlen);

/*
 * pgoutput says where a transaction ends (the end of its commit record:
 * the position walcast confirms, and each change's `end_lsn`) only in its
 * Commit.  The stream holds a transaction's messages until then
 * (struct wc_pgoutput_hold), tells the decoder with this, and hands the
 * messages on: the Begin decoded next carries end_lsn.
 */
void wc_pgoutput_set_txn_end(struct wc_decoder *d, wc_lsn end_lsn);

/*
 * A transaction's messages held until its Commit: in memory up to
 * `memory` bytes, in an unlinked temporary file after that.
 *
 * wc_pgoutput_hold_add() takes each message as read (msg is copied):
 * 0, hand it on now (outside a transaction); 1, held; 2, it is the Commit
 * that ends the held transaction (held too), *ret_end its end LSN: call
 * wc_pgoutput_set_txn_end(), then hand on each message
 * wc_pgoutput_hold_next() gives (1 each, 0 at the end; valid until the
 * next call), the Commit last; replaying is true until then, and no
 * message is to be added meanwhile.  A negative errno on failure.
 * wc_pgoutput_hold_reset() forgets what is held (the stream is started again).
 */
struct wc_pgoutput_hold;
struct wc_pgoutput_hold *wc_pgoutput_hold_new(size_t memory);
void wc_pgoutput_hold_free(struct wc_pgoutput_hold *h);
void wc_pgoutput_hold_reset(struct wc_pgoutput_hold *h);
/* Is a transaction held (its Begin taken, its Commit not yet)? */
bool wc_pgoutput_hold_holding(const struct wc_pgoutput_hold *h);
bool wc_pgoutput_hold_replaying(const struct wc_pgoutput_hold *h);
int wc_pgoutput_hold_add(struct wc_pgoutput_hold *h, const char *msg,
                         size_t len, wc_lsn at, wc_lsn *ret_end);
int wc_pgoutput_hold_next(struct wc_pgoutput_hold *h, char **ret_msg,
                          size_t *ret_len, wc_lsn *ret_at);

/*
 * The START_REPLICATION options for a server of server_version
 * (PQserverVersion(): 150004): proto_version 1 before 14, 2 from 14 (no
 * streaming of transactions in progress), publication_names with the
 * publication quoted as an identifier, messages 'true' from 14.
 * 0, -ENOMEM or -EINVAL (an empty publication).
 */
int wc_pgoutput_start_options(const char *publication, int server_version,
                              struct wc_decoder_options *ret);

#endif
