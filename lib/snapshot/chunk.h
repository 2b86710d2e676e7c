/* SPDX-License-Identifier: MIT */
/*
 * One chunk of a watermark snapshot, and the pure parts around it: the
 * rows read between a low and a high watermark, the keys the stream
 * touched in between, the values rendered as the stream renders them, and
 * the watermark messages' payloads.  No I/O: lib/snapshot/snapshot.c
 * reads the rows, the pipeline feeds the stream's changes.
 *
 * Values: a read row's columns are byte for byte what wal2json writes for
 * an insert of the same row, given the output text of each value from a
 * connection with the same session settings: SQL NULL is null; boolean
 * true or false; smallint, integer, bigint, oid, real, double precision
 * and numeric bare (NaN and +-Infinity null), or JSON strings when the
 * stream asked for numbers as strings; bytea the hex digits after its
 * "\x" as a JSON string; anything else a JSON string,
 * escaped as PostgreSQL's escape_json() does.  The type decides by its
 * own OID (a domain over integer is a string, as in the stream).
 */
#ifndef WALCAST_SNAPSHOT_CHUNK_H
#define WALCAST_SNAPSHOT_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "core/core.h"

/* The prefix of every snapshot message in the WAL (watermarks and
 * requests); never passed to sinks. */
#define WC_SNAPSHOT_PREFIX "walcast.snapshot"

/* Appends the JSON text of one value; text is the value's output text
 * (ignored when isnull).  0 or -ENOMEM. */
int wc_snap_render_value(struct wc_buf *b, uint32_t type_oid, const char *text,
                         size_t len, bool isnull, bool numbers_as_strings);

/* A column of the snapshot's table, in table order. */
struct wc_snap_col {
        char *name;
        char *type; /* format_type(atttypid, atttypmod) */
        uint32_t type_oid;
        uint32_t key_pos; /* 1-based position in the primary key, 0 none */
};

struct wc_snap_chunk;

/* A chunk of schema.table with these columns (copied).  NULL when out of
 * memory or when no column is in the key (-EINVAL through ret_err) unless
 * keyless: a table read whole, whose rows no streamed change can be
 * matched to (only a truncate empties it). */
struct wc_snap_chunk *wc_snap_chunk_new(const char *schema, const char *table,
                                        const struct wc_snap_col *cols,
                                        uint32_t ncols, bool keyless,
                                        int *ret_err);
void wc_snap_chunk_free(struct wc_snap_chunk *k);

/* Empties the rows and the keys seen, for the next chunk of the table. */
void wc_snap_chunk_clear(struct wc_snap_chunk *k);
/* Empties the rows alone (the chunk is read again). */
void wc_snap_chunk_clear_rows(struct wc_snap_chunk *k);

uint32_t wc_snap_chunk_nkeys(const struct wc_snap_chunk *k);
/* The i-th key column (key order): its index among the columns. */
uint32_t wc_snap_chunk_key_col(const struct wc_snap_chunk *k, uint32_t i);
const struct wc_snap_col *wc_snap_chunk_cols(const struct wc_snap_chunk *k,
                                             uint32_t *ret_n);

/* Adds a row read: texts[i]/lens[i] the output text of column i, nulls[i]
 * whether it is NULL.  0 or -ENOMEM. */
int wc_snap_chunk_add_row(struct wc_snap_chunk *k, const char *const *texts,
                          const size_t *lens, const bool *nulls,
                          bool numbers_as_strings);

/*
 * A change the stream read between the chunk's watermarks: one of the
 * chunk's table removes its key(s) from the chunk (an update both the old
 * and the new key, a truncate every row); any other is ignored.  0 or
 * -ENOMEM.
 */
int wc_snap_chunk_observe(struct wc_snap_chunk *k, const struct wc_change *c);

/* Rows read, and rows left after what the stream touched. */
size_t wc_snap_chunk_rows(const struct wc_snap_chunk *k);
size_t wc_snap_chunk_rows_left(const struct wc_snap_chunk *k);

/*
 * The rows left, in key (read) order, as read changes: *ret points into
 * the chunk until it is cleared, its columns_json (the list's canonical
 * text, when the names and types allow it) until the next call.  i from
 * 0 to wc_snap_chunk_rows() - 1; 0, or 1 for a row the stream touched
 * (skip it).
 */
int wc_snap_chunk_row(struct wc_snap_chunk *k, size_t i, struct wc_change *ret);

/* The chunk's table as a change without a row (schema, table, pk), for
 * the signals about the table. */
void wc_snap_chunk_table(const struct wc_snap_chunk *k, struct wc_change *ret);

/* Watermark payloads: {"id":"<hex>","chunk":N,"w":"low"|"high"}. */
struct wc_snap_mark {
        uint64_t id;
        uint64_t chunk;
        bool high;
};

int wc_snap_mark_format(struct wc_buf *b, const struct wc_snap_mark *m);
/* text[0..len) the decoded message content; 0 or -EINVAL (not a mark). */
int wc_snap_mark_parse(const char *text, size_t len, struct wc_snap_mark *ret);

#endif
