/* SPDX-License-Identifier: MIT */
/* Snapshots (docs/snapshots.md): the reading connection beside the
 * stream, driven from the loop; the watermarks are the pipeline's. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/runner_int.h"
#include "core/filter.h"
#include "decode/decoder.h"
#include "snapshot/snapshot.h"
#include "stream/stream.h"

/* After a failed step, the next one waits this long. */
#define SNAPSHOT_RETRY_MS 1000

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

int wc_runner_snapshot_start(struct runner *rn, bool slot_created,
                             unsigned optional_refused)
{
        struct wc_snapshot_config c = {
            .dsn = rn->cfg->source.dsn,
            .options = wc_stream_pinned_settings(),
            .chunk_size = rn->cfg->snapshot.chunk_size,
            .numbers_as_strings = numbers_as_strings(rn, optional_refused),
            .include = include_table,
            .ud = rn,
        };

        if (!slot_created || !rn->cfg->snapshot.initial || rn->o->tail ||
            rn->snap)
                return 0;
        rn->snap = wc_snapshot_new(&c);
        if (!rn->snap || wc_snapshot_start_all(rn->snap) < 0) {
                log_error("out of memory");
                return -ENOMEM;
        }
        log_notice("snapshot: reading every included table beside the "
                   "stream, %u rows a chunk (snapshot.initial)",
                   rn->cfg->snapshot.chunk_size);
        rn->snap_was_running = true;
        wc_runner_configure_pipeline(rn);
        return 0;
}

static void step(struct runner *rn)
{
        char err[1024];
        int r = wc_snapshot_step(rn->snap, err, sizeof(err));

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

void wc_runner_snapshot_step(struct runner *rn)
{
        if (rn->snap)
                step(rn);
}

int64_t wc_runner_snapshot_due(const struct runner *rn)
{
        if (!rn->snap || !wc_snapshot_needs_step(rn->snap))
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
        /* no connection yet (or any more): start it when due */
        if (wc_snapshot_needs_step(rn->snap) && now_ms() >= rn->snap_retry_ms)
                step(rn);
        if (rn->snap_was_running && !wc_snapshot_running(rn->snap)) {
                wc_snapshot_progress(rn->snap, &rows, &done, &tables);
                log_notice("snapshot: done, %llu rows of %zu tables "
                           "delivered and confirmed",
                           (unsigned long long)rows, tables);
                rn->snap_was_running = false;
        }
}
