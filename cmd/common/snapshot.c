/* SPDX-License-Identifier: MIT */
/* Snapshots (docs/snapshots.md): the reading connection beside the
 * stream, driven from the loop; the watermarks are the pipeline's. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/state.h"
#include "common/log.h"
#include "common/runner_int.h"
#include "core/filter.h"
#include "decode/decoder.h"
#include "snapshot/snapshot.h"
#include "stream/stream.h"

/* After a failed step, the next one waits this long. */
#define SNAPSHOT_RETRY_MS 1000
/* The confirmed progress is written at most this often (a crash reads
 * again what was confirmed since: twice, never lost). */
#define SNAPSHOT_SAVE_MS 100

static bool include_table(void *ud, const char *schema, const char *table)
{
        const struct runner *rn = ud;

        return wc_filter_table_pass(&rn->cfg->filter, schema, table);
}

/* Does the stream write numbers as JSON strings?  When the decoder asked
 * for it (an optional option) and the server knew the option. */
static bool numbers_as_strings(const struct runner *rn, unsigned refused)
{
        const struct wc_decoder_ops *dec = wc_decoder_default;

        for (unsigned i = 0; dec->optional && dec->optional[2 * i]; i++)
                if (strcmp(dec->optional[2 * i],
                           "numeric-data-types-as-string") == 0)
                        return !(refused & 1u << i) &&
                               strcmp(dec->optional[2 * i + 1], "1") == 0;
        return false;
}

/* DIR/SLOT.snapshot beside the slot's DIR/SLOT.state; "" without a
 * state directory (the progress is then kept in memory only). */
static void progress_path(struct runner *rn)
{
        size_t n = strlen(rn->state_path);

        rn->snap_path[0] = '\0';
        if (n > 6 && strcmp(rn->state_path + n - 6, ".state") == 0 &&
            n - 6 + sizeof(".snapshot") <= sizeof(rn->snap_path)) {
                memcpy(rn->snap_path, rn->state_path, n - 6);
                memcpy(rn->snap_path + n - 6, ".snapshot", sizeof(".snapshot"));
        }
}

/* The confirmed progress to the state directory; a failure is logged once
 * until a write works (the snapshot goes on: at worst a restart reads
 * chunks again). */
static void save(struct runner *rn)
{
        char err[1024];
        int r;

        if (!rn->snap_path[0])
                return;
        r = wc_snapshot_running(rn->snap)
                ? wc_snapshot_save(rn->snap, rn->snap_path, err, sizeof(err))
                : wc_state_remove(rn->snap_path, err, sizeof(err));
        if (r < 0 && !rn->snap_save_failing)
                log_warning("%s", err);
        rn->snap_save_failing = r < 0;
}

int wc_runner_snapshot_start(struct runner *rn, bool slot_created,
                             unsigned optional_refused)
{
        char err[1024];
        int r;

        struct wc_snapshot_config c = {
            .dsn = rn->cfg->source.dsn,
            .options = wc_stream_pinned_settings(),
            .chunk_size = rn->cfg->snapshot.chunk_size,
            .workers = rn->cfg->snapshot.workers,
            .numbers_as_strings = numbers_as_strings(rn, optional_refused),
            .keyless_whole = rn->cfg->snapshot.keyless_whole,
            .include = include_table,
            .ud = rn,
        };

        if (rn->snap)
                return 0;
        progress_path(rn);
        rn->snap = wc_snapshot_new(&c);
        if (!rn->snap) {
                log_error("out of memory");
                return -ENOMEM;
        }
        if (slot_created && rn->cfg->snapshot.initial) {
                (void)wc_snapshot_start_all(rn->snap);
                log_notice("snapshot: reading every included table beside "
                           "the stream, %u rows a chunk, %u %s at once "
                           "(snapshot.initial)",
                           rn->cfg->snapshot.chunk_size,
                           rn->cfg->snapshot.workers,
                           rn->cfg->snapshot.workers == 1 ? "table" : "tables");
                /* durable before anything else: a crash must not forget
                 * that the slot's first rows are owed */
                save(rn);
        } else if (!slot_created && rn->snap_path[0]) {
                r = wc_snapshot_load(rn->snap, rn->snap_path, err, sizeof(err));
                if (r < 0) {
                        log_error("%s", err);
                        return -ESTALE;
                }
                if (r == 1 && wc_snapshot_running(rn->snap)) {
                        uint64_t rows;
                        size_t done, tables;

                        wc_snapshot_progress(rn->snap, &rows, &done, &tables);
                        log_notice("snapshot: resuming after the last "
                                   "confirmed chunk: %zu of %zu tables done, "
                                   "%llu rows",
                                   done, tables, (unsigned long long)rows);
                }
        }
        if (!wc_snapshot_running(rn->snap) && rn->snap_path[0])
                (void)wc_state_remove(rn->snap_path, err, sizeof(err));
        (void)wc_snapshot_take_changed(rn->snap);
        rn->snap_was_running = wc_snapshot_running(rn->snap);
        /* always there: a request may come through the stream */
        wc_runner_configure_pipeline(rn);
        return 0;
}

static void step(struct runner *rn, size_t worker)
{
        char err[1024];
        int r = wc_snapshot_step(rn->snap, worker, err, sizeof(err));

        if (r == -EINVAL) {
                log_error("%s", err);
                return;
        }
        if (r < 0) {
                log_warning("%s; trying again in %d ms", err,
                            SNAPSHOT_RETRY_MS);
                rn->snap_retry_ms = now_ms() + SNAPSHOT_RETRY_MS;
        }
}

void wc_runner_snapshot_planned(struct runner *rn)
{
        const char *notice = wc_snapshot_take_notice(rn->snap);
        uint64_t rows;
        size_t done, tables;

        if (notice)
                log_error("%s", notice);
        (void)wc_snapshot_take_changed(rn->snap);
        save(rn);
        wc_snapshot_progress(rn->snap, &rows, &done, &tables);
        if (wc_snapshot_running(rn->snap)) {
                log_notice("snapshot: requested; %zu tables to read",
                           tables - done);
                rn->snap_was_running = true;
        } else {
                log_notice("snapshot: cancelled");
                rn->snap_was_running = false;
        }
}

void wc_runner_snapshot_step(struct runner *rn, size_t worker)
{
        if (rn->snap)
                step(rn, worker);
}

/* Does a worker need a connection? */
static bool needs_step(const struct runner *rn)
{
        for (size_t i = 0; i < wc_snapshot_workers(rn->snap); i++)
                if (wc_snapshot_needs_step(rn->snap, i))
                        return true;
        return false;
}

int64_t wc_runner_snapshot_due(const struct runner *rn)
{
        if (!rn->snap || !needs_step(rn))
                return INT64_MAX;
        return rn->snap_retry_ms;
}

void wc_runner_snapshot_tick(struct runner *rn)
{
        uint64_t rows;
        size_t done, tables;

        if (!rn->snap)
                return;
        if (rn->cp)
                wc_snapshot_confirmed(rn->snap,
                                      wc_checkpoint_confirmed(rn->cp));
        /* chunks confirmed: a restart resumes after them */
        if (wc_snapshot_running(rn->snap) &&
            now_ms() >= rn->snap_saved_ms + SNAPSHOT_SAVE_MS &&
            wc_snapshot_take_changed(rn->snap)) {
                save(rn);
                rn->snap_saved_ms = now_ms();
        }
        /* no connection yet (or any more): start it when due */
        for (size_t i = 0; i < wc_snapshot_workers(rn->snap); i++)
                if (wc_snapshot_needs_step(rn->snap, i) &&
                    now_ms() >= rn->snap_retry_ms)
                        step(rn, i);
        if (rn->snap_was_running && !wc_snapshot_running(rn->snap)) {
                wc_snapshot_progress(rn->snap, &rows, &done, &tables);
                log_notice("snapshot: done, %llu rows of %zu tables "
                           "delivered and confirmed",
                           (unsigned long long)rows, tables);
                rn->snap_was_running = false;
                save(rn);
        }
}
