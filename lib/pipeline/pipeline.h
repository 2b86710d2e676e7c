/* SPDX-License-Identifier: MIT */
/*
 * The pipeline: one replication message's way through walcast — decoded,
 * filtered, turned into signals for the sinks, and tracked by the
 * checkpoint until every sink acknowledged it — and the flow control that
 * holds the reading back while the sinks are behind.
 *
 * A transaction is tracked from its begin, whose "nextlsn" already names
 * the position its commit ends at; a message outside a transaction gets a
 * commit of its own (xid 0, end_lsn 0: it moves no position).  A sink
 * whose position (ABI 1.4) shows that it holds a transaction is passed
 * over and counts as having acknowledged it (wc_plugin_host_begin()); a
 * transaction read again after wc_pipeline_restart() that this pipeline
 * read before is marked WALCAST_TXN_REPLAY.  The confirmed position is
 * the checkpoint's (checkpoint/checkpoint.h).
 *
 * The pipeline decides nothing about the process: it reports what
 * happened through its ops (a change delivered, a transaction committed,
 * a sink that failed, which asks for a replay from the confirmed
 * position) and leaves logging, metrics and the replay to the caller.  It
 * never logs above debug (ops->debug).
 */
#ifndef WALCAST_PIPELINE_H
#define WALCAST_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "core/core.h"

struct wc_bus;
struct wc_bus_error;
struct wc_checkpoint;
struct wc_decoder;
struct wc_pipeline;
struct wc_plugin_host;
struct wc_filter;
struct wc_snapshot;

/* What the pipeline works with; everything is borrowed until the next
 * wc_pipeline_configure() or wc_pipeline_free(). */
struct wc_pipeline_config {
        struct wc_decoder *decoder;
        struct wc_filter *route;
        struct wc_bus *bus;
        struct wc_plugin_host *host; /* every plugin is one sink */
        /* NULL until the stream started first: nothing flows before */
        struct wc_checkpoint *checkpoint;
        /* heartbeat.prefix (NULL: none), and heartbeat.deliver: whether
         * its messages go to the sinks */
        const char *heartbeat_prefix;
        bool deliver_heartbeats;
        /* limits.max_in_flight_changes and _bytes */
        uint64_t max_in_flight_changes;
        uint64_t max_in_flight_bytes;
        /* the running snapshots (NULL: none); their watermarks are never
         * passed on, with or without it */
        struct wc_snapshot *snapshot;
};

/* What the pipeline reports; every callback may be NULL. */
struct wc_pipeline_ops {
        /* a begin was read (before its signal goes out) */
        void (*begin)(void *ud, const struct walcast_txn *txn);
        /* a change went to the sinks */
        void (*change)(void *ud, const struct wc_change *c);
        /* a commit went to the sinks (also the commit of its own that a
         * message outside a transaction gets) */
        void (*commit)(void *ud, const struct walcast_txn *txn);
        /* A sink failed: the stream must be replayed from the confirmed
         * position (nothing past it is confirmed meanwhile).  where is
         * the handler's failure, NULL for a failed acknowledgement. */
        void (*failed)(void *ud, const char *sink,
                       const struct wc_bus_error *where);
        /* a debug line */
        void (*debug)(void *ud, const char *msg);
        void *ud;
        /* a snapshot request or cancel changed the snapshot's plan: make
         * it durable before anything after it is confirmed */
        void (*snapshot)(void *ud);
};

/* Borrows ops for its lifetime.  NULL when out of memory. */
struct wc_pipeline *wc_pipeline_new(const struct wc_pipeline_config *c,
                                    const struct wc_pipeline_ops *ops);
void wc_pipeline_free(struct wc_pipeline *p);

/* Another filter, other sinks or limits (a reload, at a transaction
 * boundary), or the checkpoint once the stream started. */
void wc_pipeline_configure(struct wc_pipeline *p,
                           const struct wc_pipeline_config *c);

/*
 * One XLogData message: data[0..len) at WAL position data_start.  A
 * change of a table the filter drops is skipped, also when it does not
 * decode (what it is about is read before its columns); any other message
 * that does not decode is -EBADMSG, never skipped.  A handler's failure
 * is reported through ops->failed and is no error here.  0, or <0 with a
 * message in errbuf (-EBADMSG, -ENOMEM).
 */
int wc_pipeline_message(struct wc_pipeline *p, char *data, size_t len,
                        wc_lsn data_start, char *errbuf, size_t errlen);

/* A sink's acknowledgement of txn_id (struct wc_plugin_host_ops.ack):
 * WALCAST_OK counts for the checkpoint (an id from before a replay is
 * unknown now: nothing to do); anything else is reported through
 * ops->failed. */
void wc_pipeline_ack(struct wc_pipeline *p, const char *sink, uint64_t txn_id,
                     int32_t status);

/* Is a transaction open (its begin read, not its commit)? */
bool wc_pipeline_in_txn(const struct wc_pipeline *p);

/* The open (or last) transaction, and the changes it gave the sinks. */
const struct walcast_txn *wc_pipeline_txn(const struct wc_pipeline *p,
                                          uint64_t *ret_changes);

/* The stream is read up to here: the end of the last transaction read, or
 * the position given to wc_pipeline_restart(). */
wc_lsn wc_pipeline_read_to(const struct wc_pipeline *p);

/*
 * Must the reading wait?  While a sink asked for it (host->throttle), and
 * while committed transactions that the sinks have not acknowledged hold
 * limits.max_in_flight_* or more.  The open transaction does not count:
 * its commit must be read before it can be acknowledged.
 */
bool wc_pipeline_paused(struct wc_pipeline *p);

/* The stream is given up, to be read again from the confirmed position:
 * forgets what is in flight and the open transaction. */
void wc_pipeline_reset(struct wc_pipeline *p);

/* The stream (re)starts at `from`. */
void wc_pipeline_restart(struct wc_pipeline *p, wc_lsn from);

#endif
