/* SPDX-License-Identifier: MIT */
/*
 * What the runner's files share (runner.c: the loop and the process's
 * life; stream.c: the replication stream; liveness.c; heartbeat.c;
 * events.c: what the sinks and the pipeline report; reload.c: SIGHUP;
 * sinks.c: the sinks from the configuration).
 * Private to cmd/common.
 */
#ifndef WALCAST_CMD_RUNNER_INT_H
#define WALCAST_CMD_RUNNER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <walcast/plugin.h>

#include "checkpoint/state.h"
#include "common/runner.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "host/host.h"

enum state {
        ST_STREAMING,
        ST_BACKOFF, /* waiting to replay from the confirmed position */
};

struct runner {
        const struct wc_run_opts *o;
        const struct wc_config *cfg;
        const char *slot;
        struct wc_stream *stream;
        struct wc_decoder *dec;
        struct wc_filter *route;
        struct wc_bus *bus;
        struct wc_plugin_host *host;
        struct wc_checkpoint *cp;
        /* decode -> filter -> signals -> sinks -> tracking */
        struct wc_pipeline *pl;
        struct wc_pipeline_ops pl_ops;
        struct wc_kv tail_kv[2];
        struct wc_plugin_host_ops ops;
        /* configs read by reloads (owned); the stream keeps using the
         * source section of o->cfg, which needs a restart to change */
        struct wc_config *reloaded;
        struct wc_config *next_cfg; /* waits for a transaction boundary */
        int64_t reload_by_ms;       /* then for what is in flight, until this */
        struct wc_metrics *m;       /* read by the metrics thread */
        struct wc_metrics_server *metrics_server;
        struct wc_heartbeat *hb;
        int64_t next_heartbeat_ms;
        bool heartbeat_failing; /* its last beat failed (logged once) */

        /* the running snapshot (snapshot/snapshot.h), NULL none; its
         * next step after a failure not before snap_retry_ms */
        struct wc_snapshot *snap;
        int64_t snap_retry_ms;
        bool snap_was_running;
        uint64_t snap_rereads;  /* wc_snapshot_rereads() last counted */
        bool snap_save_failing; /* the last write failed (logged once) */
        int64_t snap_saved_ms;  /* when the progress was last written */
        char snap_path[4200];   /* its progress file; "" none */
        /* the initial snapshot owed to a slot this process or an earlier
         * one created (SLOT.snapshot-owed, wc_runner_snapshot_owe) */
        bool snap_owe_checked;  /* the file was looked for */
        bool snap_owed_before;  /* an earlier process left it */
        bool snap_owe_written;  /* this process wrote it */
        bool slot_created_here; /* an open of this process created it */

        /* why wal2json skipped a change, per table (stream/catalog.h) */
        struct wc_catalog *catalog;
        /* pgoutput: the transaction held until its commit */
        struct wc_pgoutput_hold *hold;

        /* the slot's state file (checkpoint/state.h); path "" for none */
        char state_path[4200];
        struct wc_slot_state saved;
        bool have_saved;
        bool state_failing; /* the last write failed (logged once) */

        enum state state;
        bool finishing; /* stopping: reading on to the open one's commit */
        wc_lsn keepalive_end; /* walEnd of the last keepalive */
        /* where the WAL before --endpos ends at the latest: the start of
         * the page when the end position points past its header */
        wc_lsn endpos_floor;
        wc_lsn sent_flush; /* last flush position sent */

        int sigfd;
        bool stop;
        bool replay; /* a sink failed: replay from the confirmed position */
        bool status_now;
        bool want_write; /* libpq has output queued */
        /* libpq may hold input that poll() will not report: read first */
        bool read_pending;
        size_t batch_bytes; /* read since the stream was last polled */
        bool holdoff;       /* next poll: leave the socket for HOLDOFF_MS */
        long changes;
        int64_t next_status_ms;
        int64_t retry_at_ms;
        int backoff_ms;
        unsigned failures; /* in a row, for the log */
        wc_lsn failed_at;
        int start_error; /* of the last failed (re)start, logged once */
        int fatal;       /* the loop ends with this error */
        /* liveness (check_heard): the server's wal_sender_timeout (-1
         * unknown), receive timeouts in a row without a commit read in
         * between, reading paused until (then nothing is heard, and
         * nothing is expected), a reply asked for, the server not heard */
        int64_t sender_timeout_ms;
        unsigned recv_timeouts;
        wc_lsn recv_timeout_at;
        int64_t listen_from_ms;
        bool reply_asked;
        bool unheard;
        bool server_lost; /* the stream ended for the server's part */
        unsigned start_failures;
        bool ready_sent;
        int64_t status_ok_ms; /* the last status message that went out */
        int64_t next_watchdog_ms;
        long changes_at_status;
        int64_t status_at_ms;
        /* poll()'s descriptors, grown as the plugins watch more */
        struct pollfd *pfd;
        size_t npfd;
        char err[1024];
};

/* The main loop is the metrics' only writer: a relaxed add is enough. */
#define COUNT(field, n)                                                        \
        atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define SET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)

static inline int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* runner.c: when the next status message is due (reading: the stream
 * is read). */
int64_t wc_runner_status_due(struct runner *rn, bool reading);

/* events.c: what the plugin host and the pipeline report (sets rn->ops
 * and rn->pl_ops); the pipeline handed what is in force (after each
 * change of it); walcast_caught_up brought up to date. */
void wc_runner_init_ops(struct runner *rn);
void wc_runner_configure_pipeline(struct runner *rn);
void wc_runner_note_caught_up(struct runner *rn);

/* stream.c: the replication stream.  Started (the slot held to the
 * state file), read and answered for one wake-up, sent a status
 * message, given up (what was not confirmed will be sent again); whether
 * reading waits; at start, the replica identities of included tables.
 * The ints are 0 or <0 with rn->err set. */
int wc_runner_start_stream(struct runner *rn);
/* A transaction is open on the stream: in the pipeline, or held until
 * its commit (pgoutput).  Nothing past its start may be confirmed. */
bool wc_runner_in_txn(const struct runner *rn);

/* The decoder source.decoder names; for pgoutput with its catalog lookups
 * on *catalog (made when NULL).  NULL when out of memory. */
struct wc_decoder *wc_runner_decoder_new(const struct wc_config *cfg,
                                         struct wc_catalog **catalog);
int wc_runner_stream_step(struct runner *rn);
int wc_runner_send_status(struct runner *rn);
void wc_runner_drop_stream(struct runner *rn);
bool wc_runner_paused(struct runner *rn);
void wc_runner_check_identities(struct runner *rn);

/* liveness.c: when check_heard has something to do next; is the server
 * heard (-ETIMEDOUT: given up); WATCHDOG=1 while healthy. */
int64_t wc_runner_liveness_due(const struct runner *rn);
int wc_runner_check_heard(struct runner *rn);
void wc_runner_watchdog(struct runner *rn);

/* heartbeat.c: its connection (0 or <0, logged); a beat when one is
 * due; its connection's progress. */
int wc_runner_heartbeat_start(struct runner *rn);
void wc_runner_heartbeat_tick(struct runner *rn);
void wc_runner_heartbeat_step(struct runner *rn);

/* snapshot.c: the initial snapshot when the slot was just created (0 or
 * <0, logged); the snapshot's connection when its socket is ready; its
 * next step and progress (every loop); when it wants the loop back. */
int wc_runner_snapshot_start(struct runner *rn, bool slot_created,
                             unsigned optional_refused);
/* Before an open that may create the slot (may_create): with
 * snapshot.initial and a state directory, records durably that the
 * initial snapshot is owed, so a crash between the slot's creation and
 * the snapshot's first progress file does not forget it.  0, or <0 with
 * rn->err set (the slot must not be created then). */
int wc_runner_snapshot_owe(struct runner *rn, bool may_create);
void wc_runner_snapshot_step(struct runner *rn, size_t worker);
void wc_runner_snapshot_tick(struct runner *rn);
int64_t wc_runner_snapshot_due(const struct runner *rn);
/* a request or cancel read from the stream: saved at once */
void wc_runner_snapshot_planned(struct runner *rn);

/* sinks.c: adds the sinks of rn->cfg (tail: stdout) to rn->host.  0, or
 * <0 with the error logged. */
int wc_runner_load_plugins(struct runner *rn);

/* reload.c: SIGHUP; the reload's wait past shutdown_timeout; the swap at
 * a transaction boundary with nothing in flight. */
void wc_runner_request_reload(struct runner *rn);
void wc_runner_reload_overdue(struct runner *rn);
void wc_runner_apply_reload(struct runner *rn);

#endif
