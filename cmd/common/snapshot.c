/* SPDX-License-Identifier: MIT */
/* Snapshots (docs/snapshots.md): the reading connection beside the
 * stream, driven from the loop; the watermarks are the pipeline's. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        (void)wc_state_sibling(rn->state_path, ".snapshot", rn->snap_path,
                               sizeof(rn->snap_path));
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

/* DIR/SLOT.snapshot-owed beside DIR/SLOT.state; false without a state
 * directory. */
static bool owed_path(const struct runner *rn, char *buf, size_t len)
{
        return wc_state_sibling(rn->state_path, ".snapshot-owed", buf, len) ==
               0;
}

/* Writes the owed file (its being there is what counts), synced with its
 * directory.  0 or <0 with rn->err set. */
static int owe_write(struct runner *rn, const char *path)
{
        static const char text[] =
            "# walcast: the initial snapshot (snapshot.initial) is owed to "
            "the slot; removed once its progress file is written\n";
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                  0640);
        if (fd < 0) {
                r = -errno;
                wc_errorf(rn->err, sizeof(rn->err),
                          "cannot write %s: %s; check that the state "
                          "directory exists and is writable",
                          path, strerror(-r));
                return r;
        }
        if (write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
                r = errno ? -errno : -EIO;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0)
                r = wc_sync_dir(path);
        if (r < 0) {
                (void)unlink(path);
                wc_errorf(rn->err, sizeof(rn->err), "cannot write %s: %s", path,
                          strerror(-r));
        }
        return r;
}

int wc_runner_snapshot_owe(struct runner *rn, bool may_create)
{
        char path[4200];
        struct stat st;
        int r;

        if (rn->o->tail || rn->o->temporary ||
            !owed_path(rn, path, sizeof(path)))
                return 0;
        if (!rn->snap_owe_checked) {
                rn->snap_owe_checked = true;
                if (lstat(path, &st) == 0)
                        rn->snap_owed_before = true;
                else if (errno != ENOENT) {
                        r = -errno;
                        wc_errorf(rn->err, sizeof(rn->err),
                                  "cannot read %s: %s; check that the "
                                  "state directory is readable",
                                  path, strerror(-r));
                        rn->snap_owe_checked = false;
                        return r;
                }
        }
        if (!may_create || !rn->cfg->snapshot.initial || rn->snap_owed_before ||
            rn->snap_owe_written)
                return 0;
        r = owe_write(rn, path);
        if (r < 0)
                return r;
        rn->snap_owe_written = true;
        return 0;
}

/* The owed file goes once the snapshot's progress is on disk, or when no
 * snapshot is owed (the slot existed before this process). */
static void owe_done(struct runner *rn)
{
        char path[4200], err[1024];

        if (!owed_path(rn, path, sizeof(path)) ||
            (!rn->snap_owed_before && !rn->snap_owe_written))
                return;
        if (wc_state_remove(path, err, sizeof(err)) < 0) {
                log_warning("%s", err);
                return;
        }
        rn->snap_owed_before = false;
        rn->snap_owe_written = false;
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
        /* for tests of a torn read (the race it covers cannot be made
         * to happen on demand) */
        const char *torn_at = getenv("WALCAST_TEST_TORN");

        if (rn->snap)
                return 0;
        if (torn_at) {
                c.test_torn_at = strtoull(torn_at, NULL, 10);
                log_notice("WALCAST_TEST_TORN=%llu: that high watermark is "
                           "judged torn",
                           (unsigned long long)c.test_torn_at);
        }
        progress_path(rn);
        rn->snap = wc_snapshot_new(&c);
        if (!rn->snap) {
                log_error("out of memory");
                return -ENOMEM;
        }
        rn->snap_rereads = 0;
        /* created by this open, or by an earlier one of this process
         * that failed after it */
        slot_created = slot_created || rn->slot_created_here;
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
                } else if (rn->snap_owed_before && rn->cfg->snapshot.initial) {
                        /* an earlier start created the slot and stopped
                         * before the snapshot's progress was written */
                        (void)wc_snapshot_start_all(rn->snap);
                        log_notice("snapshot: reading every included table "
                                   "beside the stream, %u rows a chunk "
                                   "(snapshot.initial, owed since the start "
                                   "that created slot \"%s\" stopped)",
                                   rn->cfg->snapshot.chunk_size, rn->slot);
                        save(rn);
                } else if (rn->snap_owed_before) {
                        log_notice("snapshot.initial is off: the initial "
                                   "snapshot owed to slot \"%s\" is not "
                                   "read (walcast snapshot reads tables on "
                                   "request)",
                                   rn->slot);
                }
        }
        /* what is owed is in the progress file now (or nothing is) */
        if (!wc_snapshot_running(rn->snap) || !rn->snap_save_failing)
                owe_done(rn);
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
        uint64_t rows, rereads;
        size_t done, tables;

        if (!rn->snap)
                return;
        rereads = wc_snapshot_rereads(rn->snap);
        if (rereads > rn->snap_rereads) {
                log_debug("snapshot: %llu chunk(s) read again: the stream "
                          "read a transaction their read did not see",
                          (unsigned long long)(rereads - rn->snap_rereads));
                atomic_fetch_add_explicit(&rn->m->snapshot_rereads,
                                          rereads - rn->snap_rereads,
                                          memory_order_relaxed);
                rn->snap_rereads = rereads;
        }
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
