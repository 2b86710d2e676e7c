/* SPDX-License-Identifier: MIT */
/*
 * Watermark snapshots (docs/snapshots.md): the rows that exist before the
 * stream, read beside it in primary-key chunks on an ordinary connection.
 *
 * Per chunk: a low watermark, a non-transactional logical message with
 * the prefix WC_SNAPSHOT_PREFIX, written into the WAL; the chunk read in
 * its own short transaction (COPY (SELECT ... WHERE (key) > (last) ORDER
 * BY key LIMIT chunk_size) TO STDOUT, parsed in place); a high watermark;
 * and while the stream goes to it, the table's next chunk the same way
 * (read ahead: it takes keys from the stream once this one is delivered).  The
 * stream (the pipeline) opens the chunk's window at the low watermark, removes
 * from the chunk every key a change of the table touches inside the window, and
 * at the high watermark delivers the rows left as read changes, as a
 * transaction of their own whose end is the high watermark's position.  A
 * chunk's progress (the last key read) is kept until that position is
 * confirmed.
 *
 * Everything is non-blocking: the connection is a step the caller drives
 * from its poll() loop, as the heartbeat's (stream/heartbeat.h).
 */
#ifndef WALCAST_SNAPSHOT_H
#define WALCAST_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "snapshot/chunk.h"

struct wc_snapshot;

/* snapshot.workers at most */
#define WC_SNAPSHOT_MAX_WORKERS 16

struct wc_snapshot_config {
        const char *dsn;
        /* the settings the replication connection pins (the same output
         * text), as libpq's "options" */
        const char *options;
        size_t chunk_size;
        /* connections reading different tables at once (0: 1) */
        unsigned workers;
        /* the stream writes numbers as JSON strings */
        bool numbers_as_strings;
        /* snapshot.keyless: whole: a table without a primary key is read
         * in one pass (else refused) */
        bool keyless_whole;
        /* whether a table is included (filters, namespaces); NULL all */
        bool (*include)(void *ud, const char *schema, const char *table);
        void *ud;
        /* for tests: the n-th high watermark a running chunk reaches is
         * judged torn, once, as if its read had missed a transaction the
         * stream read (0: never) */
        uint64_t test_torn_at;
};

/* Chunks read again because the stream read a transaction their read
 * did not see (docs/snapshots.md), since the start. */
uint64_t wc_snapshot_rereads(const struct wc_snapshot *s);

/* Copies what c points to.  NULL when out of memory. */
struct wc_snapshot *wc_snapshot_new(const struct wc_snapshot_config *c);
void wc_snapshot_free(struct wc_snapshot *s);

/* Snapshot every included table (the initial snapshot).  0 or -ENOMEM. */
int wc_snapshot_start_all(struct wc_snapshot *s);

/* Is a snapshot running (tables left, or a chunk not yet delivered)? */
bool wc_snapshot_running(const struct wc_snapshot *s);

/* The workers: connections 0 to n - 1, each reading its own table. */
size_t wc_snapshot_workers(const struct wc_snapshot *s);

/* Has worker i work to start and no connection for it (the caller steps
 * it, after a wait when its last step failed)? */
bool wc_snapshot_needs_step(const struct wc_snapshot *s, size_t i);

/* While worker i's connection has work: its socket and poll() events;
 * -1 when it waits for nothing (idle, or for the stream to reach a
 * watermark). */
int wc_snapshot_pollfd(const struct wc_snapshot *s, size_t i,
                       short *ret_events);

/*
 * Advances worker i's connection (call when its socket is ready, or when
 * it needs a step).  0, or <0 with a message: the connection is closed
 * and the chunk is read again at the next step (the caller waits a while
 * before that).  A table that cannot be read (no primary key) is -EINVAL
 * with the message naming it, and is skipped.
 */
int wc_snapshot_step(struct wc_snapshot *s, size_t i, char *errbuf,
                     size_t errlen);

/* ---- the pipeline's side ---- */

/* A logical message with the snapshot prefix? */
bool wc_snapshot_is_message(const struct wc_change *c);

/*
 * A snapshot message the stream read: a watermark of the running chunk
 * opens or closes its window; a request queues its tables, a cancel gives
 * every table up (each request or cancel is taken once, by its id: a
 * replay of the stream reads it again); anything else (an old run's
 * watermark, a chunk abandoned) is nothing.  1 when the chunk's rows are
 * to be delivered now (wc_snapshot_row(), then wc_snapshot_delivered());
 * 2 when a request or cancel changed the plan (save the progress before
 * the stream is confirmed past it).
 */
int wc_snapshot_message(struct wc_snapshot *s, const struct wc_change *c);

/* Request and cancel payloads, written into the WAL by `walcast
 * snapshot`: {"request":"<hex id>","tables":"<hex schema>.<hex table>,..."}
 * and {"cancel":"<hex id>"}.  0 or -ENOMEM. */
int wc_snapshot_request_format(struct wc_buf *b, uint64_t id,
                               const char *const *schemas,
                               const char *const *tables, size_t n);
int wc_snapshot_cancel_format(struct wc_buf *b, uint64_t id);

/* What a request could not do (a table the filter drops), once; NULL when
 * nothing. */
const char *wc_snapshot_take_notice(struct wc_snapshot *s);

/* The stream read the begin of transaction xid: a chunk whose SELECT did
 * not see a transaction read before its keys were taken is read again. */
void wc_snapshot_saw_txn(struct wc_snapshot *s, uint32_t xid);

/* A change the stream read: from the previous chunk's delivery (or the
 * table's first chunk) to this chunk's high watermark, it removes its keys
 * from the chunk.  0 or -ENOMEM. */
int wc_snapshot_observe(struct wc_snapshot *s, const struct wc_change *c);

/* The chunk's rows to deliver (the chunk whose high watermark
 * wc_snapshot_message() returned 1 for): i from 0 while it returns >= 0;
 * 1 for a row to skip, -ENOENT past the end. */
int wc_snapshot_row(struct wc_snapshot *s, size_t i, struct wc_change *ret);

/* Is the chunk to deliver its table's first, and its last?  Its table as
 * a change without a row (wc_snap_chunk_table()). */
void wc_snapshot_chunk_edges(const struct wc_snapshot *s, bool *ret_first,
                             bool *ret_last, struct wc_change *ret_table);

/* The rows went out in a transaction ending at end_lsn: the chunk's
 * progress is confirmed with it. */
void wc_snapshot_delivered(struct wc_snapshot *s, wc_lsn end_lsn);

/* The confirmed position moved: progress up to it is durable. */
void wc_snapshot_confirmed(struct wc_snapshot *s, wc_lsn confirmed);

/* The stream is replayed from the confirmed position: what was delivered
 * and not confirmed is read again. */
void wc_snapshot_reset(struct wc_snapshot *s);

/* ---- durable progress ---- */

/*
 * The confirmed progress as text (each table done, queued, or the last
 * key of it delivered and confirmed, and its rows so far), and back: a
 * snapshot loaded resumes each table after its key, with new watermarks.
 * Load: 0, or -EINVAL for a text that is not one.
 */
int wc_snapshot_save_text(const struct wc_snapshot *s, struct wc_buf *out);
int wc_snapshot_load_text(struct wc_snapshot *s, const char *text, size_t len);

/* The same in a file (written atomically and synced; never through a
 * symbolic link).  Load: 1, 0 when there is no file, <0 with a message;
 * save: 0 or <0 with a message. */
int wc_snapshot_save(const struct wc_snapshot *s, const char *path,
                     char *errbuf, size_t errlen);
int wc_snapshot_load(struct wc_snapshot *s, const char *path, char *errbuf,
                     size_t errlen);

/* Did the confirmed progress move since the last call? */
bool wc_snapshot_take_changed(struct wc_snapshot *s);

/* Table i (0 to tables - 1) of the progress: its names, the rows
 * delivered of it, and its state: "done", "reading" or "queued". */
void wc_snapshot_table_at(const struct wc_snapshot *s, size_t i,
                          const char **ret_schema, const char **ret_table,
                          uint64_t *ret_rows, const char **ret_state);

/* Rows delivered so far, tables done and to do. */
void wc_snapshot_progress(const struct wc_snapshot *s, uint64_t *ret_rows,
                          size_t *ret_tables_done, size_t *ret_tables);

#endif
