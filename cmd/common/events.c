/* SPDX-License-Identifier: MIT */
/* What the plugin host and the pipeline report: counted, logged, and a
 * failing sink turned into a replay. */
#include <string.h>

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/runner_int.h"

static const char *signal_name(uint32_t kind)
{
        static const char *const names[WALCAST_SIG__COUNT] = {
            "begin",       "insert",         "update",       "delete",
            "bulk_delete", "truncate",       "message",      "commit",
            "read",        "snapshot_begin", "snapshot_end",
        };
        return kind < WALCAST_SIG__COUNT ? names[kind] : "?";
}

/* ---- what the plugin host reports ---- */

static void plugin_log(void *ud, const char *plugin, enum wc_log_level level,
                       const char *msg)
{
        (void)ud;
        wc_log(level, "plugin \"%s\": %s", plugin, msg);
}

static void request_replay(struct runner *rn)
{
        rn->replay = true;
        /* nothing to replay into: a debugging tool just stops */
        if (rn->o->tail)
                rn->stop = true;
}

/* walcast_lag_seconds is 0 while this holds (metrics.h). */
void wc_runner_note_caught_up(struct runner *rn)
{
        SET(rn->m->caught_up, rn->state == ST_STREAMING && rn->stream &&
                                  !rn->unheard && !wc_runner_in_txn(rn) &&
                                  rn->cp &&
                                  wc_checkpoint_in_flight(rn->cp) == 0);
}

static void plugin_ack(void *ud, const char *plugin, uint64_t txn_id,
                       int32_t status)
{
        struct runner *rn = ud;
        int i = wc_metrics_add_sink(rn->m, plugin);

        if (i >= 0) {
                if (status == WALCAST_OK)
                        COUNT(rn->m->sinks[i].acks, 1);
                else
                        COUNT(rn->m->sinks[i].errors, 1);
        }
        wc_pipeline_ack(rn->pl, plugin, txn_id, status);
        if (status == WALCAST_OK)
                wc_runner_note_caught_up(rn);
}

/* ---- what the pipeline reports ---- */

static void sink_failed(void *ud, const char *plugin,
                        const struct wc_bus_error *e)
{
        struct runner *rn = ud;
        char lsn[WC_LSN_STRLEN];

        if (!e) {
                /* once per failed attempt; said in full the first time */
                if (!rn->replay && !rn->o->tail) {
                        if (++rn->failures == 1)
                                log_error("plugin \"%s\" could not deliver "
                                          "a transaction: replaying from the "
                                          "last confirmed position",
                                          plugin);
                        else
                                log_notice("plugin \"%s\" could not deliver "
                                           "again (%u times in a row); still "
                                           "retrying",
                                           plugin, rn->failures);
                }
                request_replay(rn);
                return;
        }
        rn->failures++;
        if (rn->failures == 1 || e->lsn != rn->failed_at)
                log_error("plugin \"%s\" failed on %s%s%s%s%s%s at %s: not "
                          "confirming past it; replaying from the last "
                          "confirmed position",
                          plugin, signal_name(e->kind),
                          e->schema[0] ? " of \"" : "", e->schema,
                          e->schema[0] ? "\".\"" : "",
                          e->schema[0] ? e->table : "",
                          e->schema[0] ? "\"" : "", wc_lsn_format(e->lsn, lsn));
        else
                log_notice("plugin \"%s\" failed again at %s (%u times in a "
                           "row); still retrying",
                           plugin, wc_lsn_format(e->lsn, lsn), rn->failures);
        rn->failed_at = e->lsn;
        request_replay(rn);
}

static void txn_begun(void *ud, const struct walcast_txn *txn)
{
        struct runner *rn = ud;

        (void)txn;
        SET(rn->m->caught_up, 0);
}

static void change_delivered(void *ud, const struct wc_change *c)
{
        struct runner *rn = ud;

        rn->changes++;
        COUNT(rn->m->changes[c->op], 1);
        if (c->schema)
                wc_metrics_count_schema(rn->m, c->schema, c->schema_len);
        if (rn->o->limit > 0 && rn->changes >= rn->o->limit)
                rn->stop = true;
}

static void txn_committed(void *ud, const struct walcast_txn *txn)
{
        struct runner *rn = ud;

        COUNT(rn->m->transactions, 1);
        if (txn->commit_time_us)
                SET(rn->m->last_commit_time_us, txn->commit_time_us);
        wc_runner_note_caught_up(rn);
}

static void pipeline_debug(void *ud, const char *msg)
{
        (void)ud;
        log_debug("%s", msg);
}

static void snapshot_planned(void *ud)
{
        wc_runner_snapshot_planned(ud);
}

static const struct wc_pipeline_ops pipeline_ops = {
    .begin = txn_begun,
    .change = change_delivered,
    .commit = txn_committed,
    .failed = sink_failed,
    .debug = pipeline_debug,
    .snapshot = snapshot_planned,
};

/* The pipeline works with the filter, sinks, checkpoint and limits in
 * force. */
void wc_runner_configure_pipeline(struct runner *rn)
{
        struct wc_pipeline_config c = {
            .decoder = rn->dec,
            .route = rn->route,
            .bus = rn->bus,
            .host = rn->host,
            .checkpoint = rn->cp,
            .heartbeat_prefix = rn->cfg->heartbeat.prefix,
            .deliver_heartbeats = rn->cfg->heartbeat.deliver,
            .max_in_flight_changes = rn->cfg->limits.max_in_flight_changes,
            .max_in_flight_bytes = rn->cfg->limits.max_in_flight_bytes,
            .snapshot = rn->snap,
        };

        wc_pipeline_configure(rn->pl, &c);
}

/* The callbacks the plugin host and the pipeline report through. */
void wc_runner_init_ops(struct runner *rn)
{
        rn->ops = (struct wc_plugin_host_ops){
            .log = plugin_log, .ack = plugin_ack, .ud = rn};
        rn->pl_ops = pipeline_ops;
        rn->pl_ops.ud = rn;
}
