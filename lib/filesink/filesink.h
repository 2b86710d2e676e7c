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
 * may be acknowledged.
 */
#ifndef WALCAST_FILESINK_H
#define WALCAST_FILESINK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

/* What a change's transaction adds to its line. */
struct wc_txn_view {
        uint32_t xid;
        wc_lsn commit_lsn;
        wc_lsn end_lsn;
        char commit_time[WC_TIME_STRLEN]; /* RFC 3339 UTC */
};

/*
 * Appends the JSON line (with its '\n') for c to out.  txn is NULL for a
 * change outside a transaction (a non-transactional message).  0 or
 * -ENOMEM; -EINVAL for begin/commit, which have no line.
 */
int wc_format_change(struct wc_buf *out, const struct wc_change *c,
                     const struct wc_txn_view *txn);

struct wc_filesink;

/*
 * Opens path for appending ("-" is stdout).  A last line left incomplete
 * by a crash is cut off: it belongs to a transaction that was never
 * acknowledged, so it will be replayed.  NULL on failure with errbuf set.
 */
struct wc_filesink *wc_filesink_open(const char *path, bool fsync, char *errbuf,
                                     size_t errlen);
/* Flushes nothing: call wc_filesink_sync() first to keep the data. */
void wc_filesink_close(struct wc_filesink *fs);

/* Queues bytes (whole lines).  0 or a negative errno with errbuf set. */
int wc_filesink_write(struct wc_filesink *fs, const char *p, size_t n,
                      char *errbuf, size_t errlen);

/* Writes out what is queued and fsyncs when anything was written since
 * the last sync.  -EPIPE when stdout's reader went away. */
int wc_filesink_sync(struct wc_filesink *fs, char *errbuf, size_t errlen);

/* Bytes queued and not yet written. */
size_t wc_filesink_pending(const struct wc_filesink *fs);

const char *wc_filesink_path(const struct wc_filesink *fs);

#endif
