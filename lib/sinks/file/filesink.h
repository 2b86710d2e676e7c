/* SPDX-License-Identifier: MIT */
/*
 * The file sink: decoded changes as JSON lines, to a file or stdout.
 *
 * One line per change, keys in a fixed order (docs/file-format.md):
 *   {"op":"insert","schema":..,"table":..,"lsn":..,"xid":..,
 *    "commit_lsn":..,"end_lsn":..,"commit_time":..,"columns":[..],
 *    "identity":[..],"pk":[..]}
 * Column values are copied as the JSON text wal2json sent.
 *
 * Lines are buffered; wc_filesink_sync() writes them out and fsyncs a
 * regular file, after which everything written before it is durable and
 * may be acknowledged.  As a plugin, the sink answers a commit with
 * WALCAST_PENDING and acknowledges all pending transactions after one
 * sync, at most SYNC_DELAY_MS later (one fsync covers many commits).
 */
#ifndef WALCAST_FILESINK_H
#define WALCAST_FILESINK_H

#include <stdbool.h>
#include <stddef.h>

#include <walcast/plugin.h>

#include "core/core.h"

/*
 * Appends the JSON line (with its '\n') for an insert, update, delete,
 * truncate or message signal.  commit_time is the transaction's commit
 * time as RFC 3339 (wc_time_format), used when s->txn is set.  0 or
 * -ENOMEM; -EINVAL for other kinds, which have no line.
 */
int wc_format_signal(struct wc_buf *out, const struct walcast_signal *s,
                     const char *commit_time);

/*
 * The same in two steps, for a sink that writes many changes of one
 * transaction: wc_format_txn() appends the part of the line every change
 * of transaction t shares (",\"xid\":..,..,\"commit_time\":\"..\""), and
 * wc_format_line() appends a line with txn[0..txn_len) as that part (left
 * out when s->txn is NULL).  0, -ENOMEM, or -EINVAL as above; on failure
 * out is as it was.
 */
int wc_format_txn(struct wc_buf *out, const struct walcast_txn *t,
                  const char *commit_time);
int wc_format_line(struct wc_buf *out, const struct walcast_signal *s,
                   const char *txn, size_t txn_len);

/* The file sink as a plugin linked into walcast, written against
 * <walcast/plugin.h> like any other.  Config keys: "path" (required; "-"
 * is stdout), "fsync" ("true"/"false", default true). */
const struct walcast_plugin_descriptor *wc_filesink_plugin(void);

struct wc_filesink;

/*
 * Opens path for appending ("-" is stdout).  A file it creates has its
 * directory synced too (with fsync).  The last line of each transaction
 * ends in ,"last":true} (docs/file-format.md): the file is cut back to
 * its last such line, so that a transaction left incomplete by a crash
 * (lines, or part of one) goes whole; it was never acknowledged and comes
 * again.  A file without any such line is one of an older walcast, of
 * which only a partial last line is cut, unless `marked` says that it is
 * written with marks (the state directory knows the path) and its lines
 * are of one transaction: then all of it is an incomplete first one.
 * wc_filesink_found() gives the position of the last whole transaction.
 * Standard output is never cut nor written over: a regular file there is
 * set to O_APPEND, and a last line without its newline gets one first.
 * NULL on failure with errbuf set.
 */
struct wc_filesink *wc_filesink_open(const char *path, bool fsync, char *errbuf,
                                     size_t errlen);
struct wc_filesink *wc_filesink_open_marked(const char *path, bool fsync,
                                            bool marked, char *errbuf,
                                            size_t errlen);

/* The end_lsn of the last whole transaction the file held at open (for a
 * message outside a transaction, its lsn + 1); 0 when none. */
wc_lsn wc_filesink_found(const struct wc_filesink *fs);

/*
 * A transaction's lines: wc_filesink_txn_begin() before the first (its
 * last line then stays queued), wc_filesink_txn_end() at its commit,
 * which marks the last line when `wrote` (lines were queued since the
 * begin).  wc_filesink_rollback() forgets the lines since the last
 * wc_filesink_txn_end(), also those written out (the file is cut back;
 * standard output and pipes keep them): a transaction that never
 * committed, which comes again whole.  0 or a negative errno.
 */
void wc_filesink_txn_begin(struct wc_filesink *fs);
int wc_filesink_txn_end(struct wc_filesink *fs, bool wrote);
int wc_filesink_rollback(struct wc_filesink *fs, char *errbuf, size_t errlen);
/* Flushes nothing: call wc_filesink_sync() first to keep the data. */
void wc_filesink_close(struct wc_filesink *fs);

/* Queues bytes (whole lines).  0 or a negative errno with errbuf set. */
int wc_filesink_write(struct wc_filesink *fs, const char *p, size_t n,
                      char *errbuf, size_t errlen);

/* The queue itself, to format lines straight into: append whole lines,
 * then call wc_filesink_queued(), which writes out a full chunk. */
struct wc_buf *wc_filesink_queue(struct wc_filesink *fs);
int wc_filesink_queued(struct wc_filesink *fs, char *errbuf, size_t errlen);

/* Writes out what is queued and fsyncs when anything was written since
 * the last sync.  A file deleted meanwhile is followed: what was written
 * into it since the last sync is copied to a new file at the path, so
 * that 0 means it is there.  -EPIPE when stdout's reader went away,
 * -ENOENT when stdout is a deleted file. */
int wc_filesink_sync(struct wc_filesink *fs, char *errbuf, size_t errlen);

/* Bytes queued and not yet written. */
size_t wc_filesink_pending(const struct wc_filesink *fs);

const char *wc_filesink_path(const struct wc_filesink *fs);

#endif
