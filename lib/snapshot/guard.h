/* SPDX-License-Identifier: MIT */
/*
 * The re-read guard of a watermark snapshot (docs/snapshots.md): a
 * transaction the stream read before a chunk's keys were taken from it,
 * but which the chunk's SELECT could not see (its commit record was
 * written; its backend had not yet left the proc array), leaves an older
 * version of a row in the chunk that nothing takes out.  Such a chunk is
 * "torn" and read again.
 *
 * The guard keeps the ids of the last transactions the stream read before
 * the running chunk took keys from it, and the SELECT's snapshot as
 * pg_current_snapshot() gave it.  Only recent ones can be torn: a
 * transaction leaves the proc array microseconds after its commit
 * record, and WC_SNAP_GUARD_RING transactions take far longer.
 * Pure: no I/O.
 */
#ifndef WALCAST_SNAPSHOT_GUARD_H
#define WALCAST_SNAPSHOT_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WC_SNAP_GUARD_RING 4096

struct wc_snap_guard {
        /* xids of the transactions the stream read, newest last, and how
         * many in all */
        uint32_t ring[WC_SNAP_GUARD_RING];
        uint64_t ring_count;
        /* the last ones read before the running chunk took keys from the
         * stream: however many the stream reads while the chunk runs,
         * these are the ones a torn chunk is checked against */
        uint32_t before[WC_SNAP_GUARD_RING];
        size_t nbefore;
        /* the chunk SELECT's snapshot: xmin, xmax, in progress */
        uint64_t xmin, xmax;
        uint64_t *xip;
        size_t nxip;
        bool have; /* a snapshot is known for the running chunk */
};

/* The stream read transaction xid (its begin). */
void wc_snap_guard_saw(struct wc_snap_guard *g, uint32_t xid);

/* The running chunk takes keys from the stream from now on. */
void wc_snap_guard_keys_from_now(struct wc_snap_guard *g);

/* The chunk SELECT's snapshot, as pg_snapshot's text "xmin:xmax:xip,...",
 * or NULL when the SELECT returned no row to carry it: then nothing it
 * read can be stale, and the chunk is never torn.  The previous chunk's
 * snapshot never stands in.  0, -EBADMSG (then no snapshot is known) or
 * -ENOMEM. */
int wc_snap_guard_set(struct wc_snap_guard *g, const char *text);

/* Did a transaction the stream read before keys_from stay invisible to
 * the chunk's SELECT? */
bool wc_snap_guard_torn(const struct wc_snap_guard *g);

void wc_snap_guard_free(struct wc_snap_guard *g);

#endif
