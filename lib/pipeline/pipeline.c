/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "decode/decoder.h"
#include "pipeline/pipeline.h"
#include "host/host.h"
#include "core/filter.h"
#include "snapshot/snapshot.h"

struct wc_pipeline {
        struct wc_pipeline_config c;
        const struct wc_pipeline_ops *ops;
        bool in_txn;
        struct walcast_txn txn;
        uint64_t txn_changes, txn_bytes; /* the open transaction's load */
        bool limited; /* reading waits for the limits (said at debug) */
        /* the stream is read up to here: the end of the last transaction
         * read, or the position it started at */
        wc_lsn read_to;
        /* the newest end read, and up to where a transaction read again
         * was handed to the sinks before (WALCAST_TXN_REPLAY) */
        wc_lsn high, replay_to;
};

static const struct wc_pipeline_ops no_ops;

struct wc_pipeline *wc_pipeline_new(const struct wc_pipeline_config *c,
                                    const struct wc_pipeline_ops *ops)
{
        struct wc_pipeline *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->c = *c;
        p->ops = ops ? ops : &no_ops;
        return p;
}

void wc_pipeline_free(struct wc_pipeline *p)
{
        free(p);
}

void wc_pipeline_configure(struct wc_pipeline *p,
                           const struct wc_pipeline_config *c)
{
        p->c = *c;
}

static void debug(struct wc_pipeline *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void debug(struct wc_pipeline *p, const char *fmt, ...)
{
        char msg[1536];
        va_list ap;

        if (!p->ops->debug)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        p->ops->debug(p->ops->ud, msg);
}

static void failed(struct wc_pipeline *p, const char *sink,
                   const struct wc_bus_error *where)
{
        if (p->ops->failed)
                p->ops->failed(p->ops->ud, sink, where);
}

void wc_pipeline_ack(struct wc_pipeline *p, const char *sink, uint64_t txn_id,
                     int32_t status)
{
        if (status != WALCAST_OK) {
                failed(p, sink, NULL);
                return;
        }
        /* an id from before a replay is unknown now: nothing to do */
        if (p->c.checkpoint)
                (void)wc_checkpoint_ack(p->c.checkpoint, txn_id);
}

/*
 * limits.max_in_flight_*: committed transactions the sinks have not yet
 * acknowledged hold at most this much.  The open transaction does not
 * count: its commit must be read before it can be acknowledged, so holding
 * it back could never end (the sinks' own throttle bounds it).
 */
static bool over_limits(struct wc_pipeline *p)
{
        uint64_t changes, bytes;
        bool over;

        if (!p->c.checkpoint)
                return false;
        wc_checkpoint_load(p->c.checkpoint, &changes, &bytes);
        over = changes >= p->c.max_in_flight_changes ||
               bytes >= p->c.max_in_flight_bytes;
        if (over != p->limited)
                debug(p,
                      "%s: %llu changes, %llu bytes waiting for the "
                      "sinks' acknowledgement",
                      over ? "reading paused" : "reading resumed",
                      (unsigned long long)changes, (unsigned long long)bytes);
        p->limited = over;
        return over;
}

bool wc_pipeline_paused(struct wc_pipeline *p)
{
        return wc_plugin_host_throttled(p->c.host) || over_limits(p);
}

bool wc_pipeline_in_txn(const struct wc_pipeline *p)
{
        return p->in_txn;
}

const struct walcast_txn *wc_pipeline_txn(const struct wc_pipeline *p,
                                          uint64_t *ret_changes)
{
        if (ret_changes)
                *ret_changes = p->txn_changes;
        return &p->txn;
}

wc_lsn wc_pipeline_read_to(const struct wc_pipeline *p)
{
        return p->read_to;
}

void wc_pipeline_reset(struct wc_pipeline *p)
{
        wc_checkpoint_reset(p->c.checkpoint);
        wc_bus_reset(p->c.bus);
        p->in_txn = false;
        if (p->c.snapshot)
                wc_snapshot_reset(p->c.snapshot);
}

void wc_pipeline_restart(struct wc_pipeline *p, wc_lsn from)
{
        p->read_to = from;
        if (p->high > p->replay_to)
                p->replay_to = p->high;
}

/*
 * A transaction is tracked from its begin, whose "nextlsn" already names
 * the position its commit ends at; the id is what plugins acknowledge.
 * Every sink acknowledges through the commit path, so a message outside a
 * transaction gets a commit of its own (xid 0, end_lsn 0: it moves no
 * position).
 */
static int track(struct wc_pipeline *p, wc_lsn end_lsn, wc_lsn lsn,
                 char *errbuf, size_t errlen)
{
        /* a sink whose position says it holds it already is passed over
         * and counts as having acknowledged it */
        unsigned acks = wc_plugin_host_begin(p->c.host, end_lsn, lsn);
        int r = wc_checkpoint_add(p->c.checkpoint, end_lsn, acks, &p->txn.id);

        if (r < 0)
                wc_errorf(errbuf, errlen,
                          "out of memory tracking transactions");
        return r;
}

static int commit(struct wc_pipeline *p, char *errbuf, size_t errlen)
{
        struct wc_bus_error e;
        int r;

        /* before the sinks see the commit: they may acknowledge at once */
        (void)wc_checkpoint_set_load(p->c.checkpoint, p->txn.id, p->txn_changes,
                                     p->txn_bytes);
        r = wc_plugin_host_commit(p->c.host, &p->txn, &e);

        if (p->ops->commit)
                p->ops->commit(p->ops->ud, &p->txn);
        if (r == -ECANCELED) {
                failed(p, wc_plugin_owner_name(e.owner), &e);
                return 0;
        }
        if (r < 0)
                wc_errorf(errbuf, errlen, "commit dispatch: %s", strerror(-r));
        return r;
}

/* A logical message with the heartbeat prefix. */
static bool is_heartbeat(const struct wc_pipeline *p, const struct wc_change *c)
{
        const char *h = p->c.heartbeat_prefix;

        return c->op == WC_OP_MESSAGE && h && c->prefix &&
               c->prefix_len == strlen(h) &&
               memcmp(c->prefix, h, c->prefix_len) == 0;
}

/*
 * A snapshot chunk's high watermark: the rows the stream did not touch
 * between its watermarks go out as read changes, in key order, as a
 * transaction of their own that ends at the watermark's position.
 */
static int deliver_chunk(struct wc_pipeline *p, const struct wc_change *mark,
                         char *errbuf, size_t errlen)
{
        struct wc_snapshot *s = p->c.snapshot;
        struct wc_bus_error e;
        struct wc_change row, table;
        struct timespec now;
        bool first, last;
        size_t last_row = SIZE_MAX;
        int r, r2;

        /* no commit time from the server: when the rows are delivered */
        clock_gettime(CLOCK_REALTIME, &now);
        p->txn = (struct walcast_txn){
            .commit_lsn = mark->lsn,
            .end_lsn = mark->lsn,
            .commit_time_us =
                (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000,
        };
        p->txn_changes = 0;
        p->txn_bytes = 0;
        if (p->ops->begin)
                p->ops->begin(p->ops->ud, &p->txn);
        r = track(p, mark->lsn, 0, errbuf, errlen);
        if (r < 0)
                return r;
        r = wc_bus_begin(p->c.bus, &p->txn, &e);
        wc_snapshot_chunk_edges(s, &first, &last, &table);
        table.lsn = mark->lsn;
        /* the last row left, for the table's last chunk */
        for (size_t i = 0; last && (r2 = wc_snapshot_row(s, i, &row)) >= 0; i++)
                if (r2 == 0)
                        last_row = i;
        if (r == 0 && first)
                r = wc_bus_table_signal(p->c.bus, WALCAST_SIG_SNAPSHOT_BEGIN,
                                        &table, &p->txn, &e);
        for (size_t i = 0; r == 0; i++) {
                r = wc_snapshot_row(s, i, &row);
                if (r == -ENOENT) {
                        r = 0;
                        break;
                }
                if (r == 1) {
                        r = 0;
                        continue;
                }
                row.lsn = mark->lsn;
                row.snapshot_last = last && i == last_row;
                r = wc_bus_dispatch(p->c.bus, &row, &p->txn, &e);
                if (r == 0) {
                        p->txn_changes++;
                        /* limits.max_in_flight_bytes: the values' text,
                         * about what the stream's message would be */
                        for (uint32_t j = 0; j < row.columns.count; j++)
                                p->txn_bytes += row.columns.items[j].value_len +
                                                row.columns.items[j].name_len +
                                                32;
                        if (p->ops->change)
                                p->ops->change(p->ops->ud, &row);
                }
        }
        if (r == 0 && last)
                r = wc_bus_table_signal(p->c.bus, WALCAST_SIG_SNAPSHOT_END,
                                        &table, &p->txn, &e);
        wc_snapshot_delivered(s, mark->lsn);
        p->read_to = mark->lsn;
        if (r == -ECANCELED) {
                failed(p, wc_plugin_owner_name(e.owner), &e);
                return 0;
        }
        if (r < 0) {
                wc_errorf(errbuf, errlen, "signal dispatch: %s", strerror(-r));
                return r;
        }
        return commit(p, errbuf, errlen);
}

/* Watermarks and requests: never passed on, whatever the filter says; a
 * change inside a chunk's window takes its keys out of the chunk.  1 when
 * c is done with. */
static int snapshot_side(struct wc_pipeline *p, const struct wc_change *c,
                         char *errbuf, size_t errlen)
{
        int r;

        if (wc_snapshot_is_message(c)) {
                r = p->c.snapshot ? wc_snapshot_message(p->c.snapshot, c) : 0;
                if (r == 1) {
                        r = deliver_chunk(p, c, errbuf, errlen);
                        return r < 0 ? r : 1;
                }
                if (r == 2 && p->ops->snapshot)
                        p->ops->snapshot(p->ops->ud);
                return 1;
        }
        if (p->c.snapshot && wc_snapshot_observe(p->c.snapshot, c) < 0)
                return wc_fail(errbuf, errlen, -ENOMEM,
                               "out of memory for a snapshot chunk's keys");
        return 0;
}

/* One change of a message of len bytes. */
static int handle(struct wc_pipeline *p, const struct wc_change *c, size_t len,
                  char *errbuf, size_t errlen)
{
        struct wc_bus_error e;
        bool outside;
        int r;

        switch (c->op) {
        case WC_OP_BEGIN:
                p->in_txn = true;
                p->txn = (struct walcast_txn){
                    .xid = c->xid,
                    .commit_lsn = c->commit_lsn,
                    .end_lsn = c->end_lsn,
                    .commit_time_us = c->has_time ? c->time_us : 0,
                    .flags =
                        c->end_lsn <= p->replay_to ? WALCAST_TXN_REPLAY : 0,
                };
                if (c->end_lsn > p->high)
                        p->high = c->end_lsn;
                p->txn_changes = 0;
                p->txn_bytes = len;
                wc_snapshot_saw_txn(p->c.snapshot, c->xid);
                if (p->ops->begin)
                        p->ops->begin(p->ops->ud, &p->txn);
                r = track(p, c->end_lsn, 0, errbuf, errlen);
                if (r < 0)
                        return r;
                r = wc_bus_begin(p->c.bus, &p->txn, &e);
                break;
        case WC_OP_COMMIT:
                p->in_txn = false;
                /* a format that says where a transaction ends only at its
                 * commit (pgoutput) */
                if (!p->txn.end_lsn && c->end_lsn) {
                        p->txn.end_lsn = c->end_lsn;
                        wc_checkpoint_set_end(p->c.checkpoint, p->txn.id,
                                              c->end_lsn);
                }
                p->read_to = p->txn.end_lsn;
                return commit(p, errbuf, errlen);
        default:
                r = snapshot_side(p, c, errbuf, errlen);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (!wc_filter_match(p->c.route, c))
                        return 0;
                if (!p->c.deliver_heartbeats && is_heartbeat(p, c))
                        return 0;
                outside = c->op == WC_OP_MESSAGE && !c->transactional;
                if (outside) {
                        p->txn = (struct walcast_txn){0};
                        p->txn_changes = 0;
                        p->txn_bytes = 0;
                        r = track(p, WC_LSN_INVALID, c->lsn, errbuf, errlen);
                        if (r < 0)
                                return r;
                }
                r = wc_bus_dispatch(p->c.bus, c, outside ? NULL : &p->txn, &e);
                if (r == 0) {
                        p->txn_changes++;
                        p->txn_bytes += len;
                        if (p->ops->change)
                                p->ops->change(p->ops->ud, c);
                        if (outside)
                                return commit(p, errbuf, errlen);
                }
                break;
        }
        if (r == -ECANCELED) {
                failed(p, wc_plugin_owner_name(e.owner), &e);
                return 0;
        }
        if (r < 0)
                wc_errorf(errbuf, errlen, "signal dispatch: %s", strerror(-r));
        return r;
}

int wc_pipeline_message(struct wc_pipeline *p, char *data, size_t len,
                        wc_lsn data_start, char *errbuf, size_t errlen)
{
        const struct wc_change *c;
        int r;

        r = wc_decoder_decode(p->c.decoder, data, len, data_start, &c, errbuf,
                              errlen);
        /* a table the filter drops cannot stop the others: what it is
         * about is read before its columns */
        if (r == -EBADMSG &&
            wc_decoder_relation(p->c.decoder, data, len, &c) == 0 &&
            !wc_filter_match(p->c.route, c)) {
                debug(p, "skipped a change of a filtered table: %s", errbuf);
                return 0;
        }
        if (r < 0) /* never skip a change: stop before confirming past it */
                return r;
        if (!c) /* a message that carries no change (pgoutput's Relation) */
                return 0;
        /* a message may hold several (pgoutput's Truncate) */
        do
                r = handle(p, c, len, errbuf, errlen);
        while (r == 0 && wc_decoder_next(p->c.decoder, &c) == 1);
        return r;
}
