/* SPDX-License-Identifier: MIT */
/* SIGHUP: the configuration read again, checked, and swapped in at a
 * transaction boundary. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/runner_int.h"
#include "decode/decoder.h"
#include "pipeline/pipeline.h"
#include "core/filter.h"

static bool same_str(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * SIGHUP: read and check the configuration again.  A bad one is refused
 * and the one in force stays; a good one waits for a transaction boundary
 * with nothing in flight, where wc_runner_apply_reload() swaps it in.
 */
void wc_runner_request_reload(struct runner *rn)
{
        const struct wc_config *src = rn->o->cfg;
        struct timespec ts;
        struct wc_config *cfg;
        char scrubbed[1024];

        clock_gettime(CLOCK_MONOTONIC, &ts);
        wc_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
                  (unsigned long long)ts.tv_sec * 1000000ull +
                      (unsigned long long)ts.tv_nsec / 1000);
        cfg = wc_config_load(rn->o->config_path, rn->err, sizeof(rn->err));
        if (cfg)
                wc_add_config_secrets(cfg);
        /* what --check checks: a sink that could not start is refused
         * here, before the sinks in force are let go */
        if (cfg && wc_check_sinks(cfg, rn->err, sizeof(rn->err)) < 0) {
                wc_config_free(cfg);
                cfg = NULL;
        }
        if (!cfg) {
                log_error("reload refused, the configuration in force stays: "
                          "%s",
                          rn->err);
                /* STATUS= is one line without secrets, like a log line */
                wc_notify("READY=1\nSTATUS=reload refused: %s",
                          wc_log_scrub(rn->err, scrubbed, sizeof(scrubbed)));
                return;
        }
        if (!same_str(cfg->source.dsn, src->source.dsn))
                log_warning("reload: source.dsn changed; restart walcastd to "
                            "apply it");
        if (!same_str(cfg->source.slot, src->source.slot))
                log_warning("reload: source.slot changed; restart walcastd "
                            "to apply it");
        if (cfg->source.create_slot != src->source.create_slot)
                log_warning("reload: source.create_slot changed; restart "
                            "walcastd to apply it");
        if (cfg->source.decoder != src->source.decoder ||
            !same_str(cfg->source.publication, src->source.publication) ||
            cfg->source.create_publication != src->source.create_publication)
                log_warning("reload: source.decoder, publication or "
                            "create_publication changed; restart walcastd to "
                            "apply it");
        if (!same_str(cfg->state_dir, src->state_dir))
                log_warning("reload: state_dir changed; restart walcastd to "
                            "apply it");
        if (cfg->heartbeat.interval_ms != src->heartbeat.interval_ms ||
            !same_str(cfg->heartbeat.action_query, src->heartbeat.action_query))
                log_warning("reload: heartbeat.interval or action_query "
                            "changed; restart walcastd to apply it");
        if (!same_str(cfg->metrics.listen, src->metrics.listen))
                log_warning("reload: metrics.listen changed; restart walcastd "
                            "to apply it");
        wc_log_set_level(cfg->log.level);
        wc_log_set_json(cfg->log.format == WC_LOG_FORMAT_JSON);
        wc_config_free(rn->next_cfg);
        rn->next_cfg = cfg;
        rn->reload_by_ms = now_ms() + (int64_t)src->shutdown_timeout_ms;
        log_info("reloading %s at the next transaction boundary",
                 rn->o->config_path);
}

/*
 * A reload waits at a transaction boundary for the sinks to acknowledge
 * what they have, as a stop does, within shutdown_timeout.  Sinks that do
 * not (a broker that cannot be reached, often the very thing the new
 * configuration mends) would hold it for good: past the timeout the
 * stream is dropped as for a replay, so that nothing is in flight, the
 * new configuration applies, and what was not acknowledged is read again
 * from the confirmed position and goes to the new sinks.
 */
void wc_runner_reload_overdue(struct runner *rn)
{
        char lsn[WC_LSN_STRLEN];

        if (!rn->next_cfg || wc_pipeline_in_txn(rn->pl) ||
            rn->state != ST_STREAMING || wc_checkpoint_in_flight(rn->cp) == 0 ||
            now_ms() < rn->reload_by_ms)
                return;
        log_warning("reload: %zu transactions were not acknowledged within "
                    "shutdown_timeout; reloading all the same: they are read "
                    "again from %s and go to the new sinks",
                    wc_checkpoint_in_flight(rn->cp),
                    wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        wc_runner_drop_stream(rn);
        rn->state = ST_BACKOFF;
        rn->retry_at_ms = now_ms();
}

/* A signal bus and plugin host with the sinks of rn->cfg.  0, or <0 with
 * nothing left behind (the sinks' error is logged). */
static int start_sinks(struct runner *rn)
{
        int r;

        rn->bus = wc_bus_new(rn->cfg->signals.bulk_delete_batch);
        rn->host = rn->bus ? wc_plugin_host_new(rn->bus, &rn->ops) : NULL;
        r = rn->host ? wc_runner_load_plugins(rn) : -ENOMEM;
        if (r < 0) {
                wc_plugin_host_free(rn->host);
                wc_bus_free(rn->bus);
                rn->host = NULL;
                rn->bus = NULL;
        }
        return r;
}

/*
 * Swaps filters, signal bus and plugins for those of next_cfg.  Nothing
 * is in flight, so no acknowledgement can be lost.  The sinks in force
 * close first: a file sink writes out what it holds before the new one
 * opens (and repairs) the same file, and a plugin rebuilt at the same
 * path is loaded anew (dlopen() of a path still open returns the code
 * already loaded).  When the new sinks do not start, those of the
 * configuration in force start again; when even they do not, walcastd
 * stops (exit 1) rather than stream into no sink.  A reload that changes
 * what the output plugin is asked to skip restarts the stream from the
 * confirmed position with the new options: the running stream has skipped what
 * the new filter may want.
 */
void wc_runner_apply_reload(struct runner *rn)
{
        const struct wc_config *old_cfg = rn->cfg;
        struct wc_filter *route;
        struct wc_config *cfg = rn->next_cfg;
        char lsn[WC_LSN_STRLEN];
        int same = wc_decoder_options_same(rn->dec->ops, &old_cfg->filter,
                                           &cfg->filter);

        rn->next_cfg = NULL;
        route = wc_filter_new(&cfg->filter);
        if (!route) {
                wc_config_free(cfg);
                log_error("reload failed: out of memory; the configuration "
                          "in force stays");
                wc_notify("READY=1\nSTATUS=reload failed");
                return;
        }
        wc_plugin_host_free(rn->host);
        wc_bus_free(rn->bus);
        rn->cfg = cfg;
        if (start_sinks(rn) < 0) {
                wc_filter_free(route);
                rn->cfg = old_cfg;
                wc_config_free(cfg);
                if (start_sinks(rn) < 0) {
                        wc_runner_configure_pipeline(rn);
                        log_error("reload failed, and the sinks of the "
                                  "configuration in force did not start "
                                  "again either: stopping");
                        rn->fatal = -EIO;
                        return;
                }
                wc_runner_configure_pipeline(rn);
                log_error("reload failed; the sinks of the configuration "
                          "in force started again, and it stays");
                wc_notify("READY=1\nSTATUS=reload failed");
                return;
        }
        wc_filter_free(rn->route);
        rn->route = route;
        wc_runner_configure_pipeline(rn);
        /* old_cfg is o->cfg or the last reload's */
        wc_config_free(rn->reloaded);
        rn->reloaded = cfg;
        log_info("reloaded %s", rn->o->config_path);
        wc_notify("READY=1");
        if (same == 1 || rn->state != ST_STREAMING)
                return;
        /* no keepalive of the old stream may move the position on */
        log_info("reload: the changes %s is asked to skip differ; "
                 "streaming again from %s with the new filter",
                 rn->dec->ops->name,
                 wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        wc_runner_drop_stream(rn);
        rn->state = ST_BACKOFF;
        rn->retry_at_ms = now_ms();
}
