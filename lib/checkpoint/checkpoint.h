/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint tracker: which WAL position may be confirmed to the server.
 *
 * Each committed transaction handed to the sinks is an entry with its end
 * LSN (wal2json's C "nextlsn") and the number of acknowledgements it still
 * needs (one per sink).  The confirmed position is the end LSN of the
 * newest transaction that it and every earlier one are fully acknowledged.
 * Entries are kept in commit order in a ring that grows as needed; the
 * caller bounds how many are in flight.
 */
#ifndef WALCAST_CHECKPOINT_H
#define WALCAST_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct wc_checkpoint;

/* `confirmed` is the position already confirmed (the slot's). */
struct wc_checkpoint *wc_checkpoint_new(wc_lsn confirmed);
void wc_checkpoint_free(struct wc_checkpoint *cp);

/*
 * Adds a transaction needing `acks` acknowledgements.  end_lsn 0 marks an
 * entry that must be acknowledged but moves no position (a
 * non-transactional message).  With acks 0 the entry completes at once.
 * 0 or -ENOMEM; *ret_id identifies the entry for wc_checkpoint_ack().
 */
int wc_checkpoint_add(struct wc_checkpoint *cp, wc_lsn end_lsn, unsigned acks,
                      uint64_t *ret_id);

/* The end LSN of entry id, added with 0 because its format says where a
 * transaction ends only at its commit (pgoutput).  Before the entry's
 * acknowledgements.  0 or -ENOENT. */
int wc_checkpoint_set_end(struct wc_checkpoint *cp, uint64_t id,
                          wc_lsn end_lsn);

/* One acknowledgement of entry id.  -ENOENT for an unknown or already
 * complete entry, -EINVAL when acknowledged more often than it needs. */
int wc_checkpoint_ack(struct wc_checkpoint *cp, uint64_t id);

/*
 * The load of entry id: changes and bytes handed to the sinks, counted
 * until the entry is fully acknowledged (limits.max_in_flight_*).  Sets,
 * not adds; an entry already complete ignores it.  0 or -ENOENT.
 */
int wc_checkpoint_set_load(struct wc_checkpoint *cp, uint64_t id,
                           uint64_t changes, uint64_t bytes);
/* The load of every entry not yet fully acknowledged. */
void wc_checkpoint_load(const struct wc_checkpoint *cp, uint64_t *ret_changes,
                        uint64_t *ret_bytes);

/* Nothing is in flight and the stream is between transactions: the
 * position may follow the server's WAL end (keepalive walEnd). */
void wc_checkpoint_idle_advance(struct wc_checkpoint *cp, wc_lsn wal_end);

/* Forgets every entry in flight (the stream is replayed from the
 * confirmed position); their ids stay unknown to wc_checkpoint_ack(). */
void wc_checkpoint_reset(struct wc_checkpoint *cp);

wc_lsn wc_checkpoint_confirmed(const struct wc_checkpoint *cp);
/* Entries not yet fully acknowledged. */
size_t wc_checkpoint_in_flight(const struct wc_checkpoint *cp);

#endif
