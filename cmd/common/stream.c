/* SPDX-License-Identifier: MIT */
/* The replication stream's side of the loop: start (the slot guard),
 * reading, status messages, and giving it up. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/guard.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/runner_int.h"
#include "host/host.h"
#include "decode/decoder.h"
#include "decode/pgoutput.h"
#include "decode/wal2json.h"
#include "core/filter.h"
#include "stream/catalog.h"
#include "sinks/registry.h"
#include "stream/stream.h"

/* Messages handled before the loop looks at signals and timers again. */
#define BATCH_MESSAGES 4096
/* A wake-up that brought less than this lets the socket fill for a
 * millisecond before the next read: a few large reads instead of many
 * small ones cost the client and the walsender less (docs/performance.md). */
#define BATCH_BYTES 65536

/* wal2json drops the UPDATE and DELETE of a table without primary key or
 * replica identity and says so only in a WARNING: make it loud, with the
 * cause the catalog gives (looked up once per table, bounded in time). */
static void on_notice(void *userdata, const char *severity, const char *msg)
{
        static const char marker[] = "no tuple identifier for ";
        struct runner *rn = userdata;
        const char *p = strstr(msg, marker);

        if (p) {
                const char *what = p + strlen(marker);
                const char *in = strstr(what, " in table ");
                int oplen = in ? (int)(in - what) : 0;
                const char *table = in ? in + strlen(" in table ") : "?";
                char why[1536];

                if (!rn->catalog)
                        rn->catalog = wc_catalog_new(rn->o->cfg->source.dsn);
                wc_catalog_why_unidentified(rn->catalog, table, why,
                                            sizeof(why));
                log_warning("wal2json skipped %s %.*s on table %s: %s",
                            oplen > 0 && strchr("AEIOU", what[0]) ? "an" : "a",
                            oplen, what, table, why);
                return;
        }
        if (strcmp(severity, "WARNING") == 0 || strcmp(severity, "ERROR") == 0)
                log_warning("server %s: %s", severity, msg);
        else
                log_debug("server %s: %s", severity, msg);
}

/* --endpos: everything up to the end position has been read, up to a
 * transaction boundary; what follows is for the next run. */
static bool read_to_endpos(const struct runner *rn)
{
        wc_lsn end = rn->o->endpos;

        return end && !wc_runner_in_txn(rn) &&
               (wc_pipeline_read_to(rn->pl) >= end || rn->keepalive_end >= end);
}

/* Reading waits while a sink is behind, while too much waits for the
 * sinks, while a reload waits for the transactions in flight to be
 * acknowledged, and once the end position is read. */
bool wc_runner_paused(struct runner *rn)
{
        return wc_pipeline_paused(rn->pl) ||
               (rn->next_cfg && !wc_pipeline_in_txn(rn->pl)) ||
               read_to_endpos(rn);
}

/* Records `flush` before it is sent.  Returns the position that may be
 * sent: `flush`, or the one on record when the file cannot be written
 * (then nothing new is confirmed until it can, and the log says so once). */
static wc_lsn record_position(struct runner *rn, wc_lsn flush)
{
        struct wc_slot_state st;
        char a[WC_LSN_STRLEN], err[1024];

        if (!rn->state_path[0] || !rn->have_saved ||
            flush <= rn->saved.confirmed)
                return flush;
        st = rn->saved;
        st.confirmed = flush;
        if (wc_state_write(rn->state_path, &st, err, sizeof(err)) < 0) {
                if (!rn->state_failing)
                        log_error("%s; not confirming past %s until it can "
                                  "be written (the server keeps the WAL)",
                                  err, wc_lsn_format(rn->saved.confirmed, a));
                rn->state_failing = true;
                return rn->saved.confirmed;
        }
        if (rn->state_failing)
                log_notice("the state file %s is written again",
                           rn->state_path);
        rn->state_failing = false;
        rn->saved = st;
        return flush;
}

/* With nothing in flight and no transaction open, everything the server
 * sent before its last keepalive is done. */
static void advance_idle(struct runner *rn)
{
        if (!wc_runner_in_txn(rn) && !rn->replay)
                wc_checkpoint_idle_advance(rn->cp, rn->keepalive_end);
}

/* --endpos: every sink has acknowledged everything up to the end
 * position (the server may not have been told yet). */
static bool endpos_acked(struct runner *rn)
{
        if (!rn->o->endpos || wc_runner_in_txn(rn) || rn->replay)
                return false;
        advance_idle(rn);
        return wc_checkpoint_confirmed(rn->cp) >= rn->o->endpos;
}

int wc_runner_send_status(struct runner *rn)
{
        uint64_t load_changes, load_bytes;
        wc_lsn flush;
        char a[WC_LSN_STRLEN];
        int r;

        advance_idle(rn);
        flush = rn->o->tail
                    ? WC_LSN_INVALID
                    : record_position(rn, wc_checkpoint_confirmed(rn->cp));
        /* here, not per message (a paused loop still sends status
         * messages), and before the server can see the position */
        wc_checkpoint_load(rn->cp, &load_changes, &load_bytes);
        SET(rn->m->in_flight_changes, load_changes);
        SET(rn->m->in_flight_bytes, load_bytes);
        SET(rn->m->paused, wc_runner_paused(rn));
        r = wc_stream_send_status(rn->stream, flush, rn->err, sizeof(rn->err));
        if (r == 0)
                r = wc_stream_flush(rn->stream, rn->err, sizeof(rn->err));
        if (r < 0)
                return r;
        rn->want_write = r == 1;
        if (flush != rn->sent_flush) {
                log_debug("confirmed %s", wc_lsn_format(flush, a));
                /* progress: the next failure starts its backoff afresh */
                if (rn->failures > 1)
                        log_notice("delivering again after %u failed "
                                   "attempts",
                                   rn->failures);
                rn->backoff_ms = 0;
                rn->failures = 0;
        }
        rn->sent_flush = flush;
        rn->status_now = false;
        SET(rn->m->confirmed_lsn,
            rn->o->tail ? wc_checkpoint_confirmed(rn->cp) : flush);
        SET(rn->m->in_flight, wc_checkpoint_in_flight(rn->cp));
        wc_runner_note_caught_up(rn);
        rn->status_ok_ms = now_ms();
        if (!rn->o->tail) {
                int64_t dt = rn->status_ok_ms - rn->status_at_ms;
                long rate = dt > 0
                                ? (long)((rn->changes - rn->changes_at_status) *
                                         1000 / dt)
                                : 0;
                wc_lsn end =
                    rn->keepalive_end > flush ? rn->keepalive_end : flush;
                wc_notify("STATUS=streaming slot %s: confirmed %s, lag %llu "
                          "bytes, %ld changes/s",
                          rn->slot, wc_lsn_format(flush, a),
                          (unsigned long long)(end - flush), rate);
                rn->changes_at_status = rn->changes;
                rn->status_at_ms = rn->status_ok_ms;
        }
        rn->next_status_ms =
            now_ms() + (int64_t)rn->cfg->source.status_interval_ms;
        return 0;
}

bool wc_runner_in_txn(const struct runner *rn)
{
        return wc_pipeline_in_txn(rn->pl) ||
               (rn->hold && (wc_pgoutput_hold_holding(rn->hold) ||
                             wc_pgoutput_hold_replaying(rn->hold)));
}

/* Hands on what is held, up to the end of its transaction or until
 * reading should pause (limits, a sink behind): the rest waits, as
 * unread messages would.  0 or <0 (fatal). */
static int feed_held(struct runner *rn)
{
        wc_lsn at;
        char *msg;
        size_t len;
        int r;

        while (!wc_runner_paused(rn) && !rn->replay) {
                r = wc_pgoutput_hold_next(rn->hold, &msg, &len, &at);
                if (r == 0)
                        return 0;
                if (r < 0) {
                        snprintf(rn->err, sizeof(rn->err),
                                 "could not read back a held transaction: %s",
                                 strerror(-r));
                        return r;
                }
                r = wc_pipeline_message(rn->pl, msg, len, at, rn->err,
                                        sizeof(rn->err));
                if (r < 0) {
                        wc_pgoutput_hold_reset(rn->hold);
                        return r;
                }
        }
        /* a sink failed: the stream is read again from the confirmed
         * position, held messages included */
        if (rn->replay)
                wc_pgoutput_hold_reset(rn->hold);
        else
                rn->read_pending = true;
        return 0;
}

/* pgoutput: a transaction is handed on at its Commit, when where it ends
 * is known (decode/pgoutput.h). */
static int held_message(struct runner *rn, struct wc_stream_msg *m)
{
        wc_lsn end = 0;
        int r;

        r = wc_pgoutput_hold_add(rn->hold, m->data, m->len, m->data_start,
                                 &end);
        if (r < 0) {
                snprintf(rn->err, sizeof(rn->err),
                         "could not hold a transaction until its commit: %s",
                         strerror(-r));
                return r;
        }
        if (r == 0)
                return wc_pipeline_message(rn->pl, m->data, m->len,
                                           m->data_start, rn->err,
                                           sizeof(rn->err));
        if (r == 2) {
                wc_pgoutput_set_txn_end(rn->dec, end);
                return feed_held(rn);
        }
        return 0;
}

/* Reads what the socket holds, up to a batch.  0 or <0 (fatal). */
static int read_batch(struct runner *rn)
{
        struct wc_stream_msg m;
        int r;

        rn->read_pending = false;
        /* stopping: on to the commit of the transaction being read
         * (finish_txn), and not a message further */
        for (int i = 0; i < BATCH_MESSAGES && !rn->replay &&
                        (!rn->stop || (rn->finishing && wc_runner_in_txn(rn)));
             i++) {
                if (wc_runner_paused(rn))
                        return 0;
                /* a transaction held until its commit goes first */
                if (rn->hold && wc_pgoutput_hold_replaying(rn->hold)) {
                        r = feed_held(rn);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = wc_stream_read(rn->stream, &m, rn->err, sizeof(rn->err));
                if (r <= 0)
                        return r;
                if (m.wal_end > atomic_load_explicit(&rn->m->server_wal_end,
                                                     memory_order_relaxed))
                        SET(rn->m->server_wal_end, m.wal_end);
                if (m.kind == WC_MSG_XLOGDATA)
                        COUNT(rn->m->bytes_received, m.len);
                rn->batch_bytes += m.len + 1;
                if (m.kind == WC_MSG_KEEPALIVE) {
                        if (m.wal_end > rn->keepalive_end)
                                rn->keepalive_end = m.wal_end;
                        /* an end position past a page header, and the
                         * WAL ends at that page's start: nothing lies
                         * between them, the end is reached (else this
                         * waits for the next record, as pg_recvlogical
                         * -E does) */
                        if (rn->o->endpos &&
                            rn->keepalive_end < rn->o->endpos &&
                            rn->keepalive_end >= rn->endpos_floor)
                                rn->keepalive_end = rn->o->endpos;
                        if (m.reply_requested)
                                rn->status_now = true;
                        continue;
                }
                r = rn->hold ? held_message(rn, &m)
                             : wc_pipeline_message(rn->pl, m.data, m.len,
                                                   m.data_start, rn->err,
                                                   sizeof(rn->err));
                if (r < 0)
                        return r;
        }
        /* the batch is full: more may wait in libpq's buffer */
        rn->read_pending = (!rn->stop || rn->finishing) && !rn->replay;
        return 0;
}

struct wc_decoder *wc_runner_decoder_new(const struct wc_config *cfg,
                                         struct wc_catalog **catalog)
{
        struct wc_decoder *d;

        if (cfg->source.decoder != WC_DECODER_PGOUTPUT)
                return wc_decoder_new(&wc_wal2json);
        /* pgoutput names types and keys by OID: the catalog says more */
        if (!*catalog)
                *catalog = wc_catalog_new(cfg->source.dsn);
        d = *catalog ? wc_decoder_new(&wc_pgoutput) : NULL;
        if (d)
                wc_pgoutput_set_catalog(d, &(struct wc_pgoutput_catalog){
                                               *catalog, wc_catalog_type_name,
                                               wc_catalog_primary_key});
        return d;
}

/* Bytes of a pgoutput transaction held in memory until its commit; more
 * go to a temporary file. */
#define PGOUTPUT_HOLD_MEMORY (16u << 20)

/* The schemas a new publication is for: source.filter's included schemas
 * when each is a literal name, else none (FOR ALL TABLES). */
static const char *const *publication_schemas(const struct wc_config *cfg)
{
        const struct wc_pattern_list *l = &cfg->filter.schemas_include;

        if (l->count == 0)
                return NULL;
        for (size_t i = 0; i < l->count; i++)
                if (wc_pattern_has_glob(l->items[i]))
                        return NULL;
        return (const char *const *)l->items;
}

void wc_source_stream_config(const struct wc_config *cfg,
                             struct wc_stream_config *sc)
{
        bool pg = cfg->source.decoder == WC_DECODER_PGOUTPUT;

        sc->plugin = pg ? wc_pgoutput.plugin : wc_wal2json.plugin;
        /* the configured slot's name, also for walcast tail's temporary
         * slot */
        sc->publication = !pg                       ? NULL
                          : cfg->source.publication ? cfg->source.publication
                                                    : cfg->source.slot;
        sc->create_publication = cfg->source.create_publication;
        sc->publication_schemas = publication_schemas(cfg);
        sc->n_publication_schemas =
            sc->publication_schemas ? cfg->filter.schemas_include.count : 0;
}

/* The tests stop walcastd as kill -9 would at a named point:
 * WALCAST_TEST_CRASH=slot-created right after the open created the slot,
 * =slot-recorded once the state file records it (hidden). */
static void test_crash(const char *point)
{
        const char *env = getenv("WALCAST_TEST_CRASH");

        if (env && strcmp(env, point) == 0) {
                log_notice("WALCAST_TEST_CRASH=%s: killing walcastd", point);
                (void)raise(SIGKILL);
        }
}

/* A new stream, connected, its slot checked (and created if `create`). */
static int open_stream(struct runner *rn, bool create)
{
        struct wc_stream_config sc = {
            .dsn = rn->o->cfg->source.dsn,
            .slot = rn->slot,
            .create_slot = create,
            .temporary = rn->o->temporary,
        };

        wc_source_stream_config(rn->o->cfg, &sc);
        wc_stream_free(rn->stream);
        rn->stream = wc_stream_new();
        if (!rn->stream)
                return -ENOMEM;
        wc_stream_set_notice_handler(rn->stream, on_notice, rn);
        return wc_stream_open(rn->stream, &sc, rn->err, sizeof(rn->err));
}

/*
 * Opens the stream, holding the slot to what the state file recorded
 * (checkpoint/guard.h): a slot that vanished, was recreated or moved, or
 * a server that is another one, is refused (or, with on_slot_lost:
 * recreate, accepted with a warning); an invalidated slot likewise.  Then
 * records the slot.
 */
static int open_checked(struct runner *rn)
{
        const struct wc_stream_info *info;
        bool guarded = rn->have_saved && !rn->o->tail;
        struct wc_guard g = {
            .slot = rn->slot,
            .config_path = rn->o->config_path,
            .state_path = rn->o->tail ? NULL : rn->state_path,
            .saved = guarded ? &rn->saved : NULL,
            .accept = rn->cfg->source.on_slot_lost == WC_SLOT_LOST_RECREATE &&
                      !rn->o->tail,
            .create = !rn->o->tail && rn->cfg->source.create_slot,
            /* a reconnect: this process streamed from the slot already */
            .had_slot = rn->cp != NULL && !rn->o->temporary,
            .confirmed = rn->cp ? wc_checkpoint_confirmed(rn->cp) : 0,
        };
        struct wc_guard_server srv = {0};
        struct wc_slot_state st;
        enum wc_slot_verdict v = WC_SLOT_FIRST;
        bool dropped = false;
        int r;

        /* a slot this process creates is owed its initial snapshot,
         * durably before it exists */
        if (!rn->cp) {
                r = wc_runner_snapshot_owe(rn, wc_guard_may_create(&g));
                if (r < 0)
                        return r;
        }
        r = open_stream(rn, wc_guard_may_create(&g));
        if (r == -ESTALE && g.accept) {
                log_warning("%s; source.on_slot_lost is recreate: dropping "
                            "and recreating the slot",
                            rn->err);
                r = wc_stream_slot_drop(rn->stream, rn->slot, rn->err,
                                        sizeof(rn->err));
                if (r == 0)
                        r = open_stream(rn, g.create);
                dropped = true;
        }
        if (!rn->stream)
                return r;
        info = wc_stream_get_info(rn->stream);
        if (info->slot_created && !rn->o->temporary) {
                rn->slot_created_here = true;
                test_crash("slot-created");
        }
        srv = (struct wc_guard_server){
            .system_id = info->system_id,
            .timeline = info->timeline,
            .database = info->dbname,
            .xlogpos = info->xlogpos,
            .slot_confirmed = info->slot_confirmed,
            .slot_created = info->slot_created,
        };
        r = wc_guard_verdict(&g, r, dropped, &srv, &v, rn->err,
                             sizeof(rn->err));
        if (r < 0)
                return r;
        if (g.had_slot && !guarded && info->slot_created) {
                char a[WC_LSN_STRLEN];

                log_warning("replication slot \"%s\" had vanished while "
                            "walcastd was running; source.on_slot_lost is "
                            "recreate: created it again, changes committed "
                            "after %s and before now are not delivered",
                            rn->slot, wc_lsn_format(g.confirmed, a));
        }
        if (r == 1)
                log_warning("%s; source.on_slot_lost is recreate: going on "
                            "from the slot as it is now",
                            rn->err);
        if (v == WC_SLOT_SAME && g.state_path && g.state_path[0] &&
            rn->saved.timeline != info->timeline)
                log_notice("the server's timeline is %u, it was %u when "
                           "walcast last confirmed a position",
                           info->timeline, rn->saved.timeline);
        r = wc_guard_record_state(&g, &srv, v, &st, rn->err, sizeof(rn->err));
        if (info->slot_created)
                test_crash("slot-recorded");
        if (r <= 0)
                return r;
        if (v == WC_SLOT_FIRST)
                log_info("recording the slot's position in %s", rn->state_path);
        rn->saved = st;
        rn->have_saved = true;
        return 0;
}

/*
 * The sinks' positions (ABI 1.4): what each holds is passed over.  One
 * beyond the server's WAL was never this server's (a file of another
 * server or of a restored one): going on would skip changes, so walcastd
 * stops (exit 69), as for a state file from the future.
 */
static int check_positions(struct runner *rn, wc_lsn xlogpos)
{
        char a[WC_LSN_STRLEN], b[WC_LSN_STRLEN];

        for (size_t i = 0; i < wc_plugin_host_count(rn->host); i++) {
                const char *name;
                wc_lsn pos = wc_plugin_host_position(rn->host, i, &name);

                /* a sink holding a message outside a transaction says
                 * so with the message's position + 1 (plugin.h), and that
                 * position is the record's end: the WAL's end, for the
                 * last record */
                if (pos > xlogpos + 1) {
                        snprintf(rn->err, sizeof(rn->err),
                                 "sink \"%s\" holds transactions up to %s, "
                                 "beyond the server's WAL (%s): it holds "
                                 "another server's changes; give it a new "
                                 "file (or clear its storage) to write this "
                                 "server's changes into",
                                 name, wc_lsn_format(pos, a),
                                 wc_lsn_format(xlogpos, b));
                        return -ESTALE;
                }
                if (pos && !rn->cp)
                        log_info("sink \"%s\" holds transactions up to %s: "
                                 "it gets only later ones",
                                 name, wc_lsn_format(pos, a));
        }
        return 0;
}

int wc_runner_start_stream(struct runner *rn)
{
        const struct wc_stream_info *info;
        const struct wc_decoder_ops *dec = rn->dec->ops;
        struct wc_stream_config sc = {0};
        struct wc_decoder_options opts;
        char lsn[WC_LSN_STRLEN];
        bool quiet = rn->failures > 1 || rn->start_failures > 0;
        int r;

        r = open_checked(rn);
        if (r < 0)
                return r;
        /* what was held is read again from the slot's position */
        if (!rn->hold && dec == &wc_pgoutput)
                rn->hold = wc_pgoutput_hold_new(PGOUTPUT_HOLD_MEMORY);
        if (rn->hold)
                wc_pgoutput_hold_reset(rn->hold);
        else if (dec == &wc_pgoutput)
                return -ENOMEM;
        info = wc_stream_get_info(rn->stream);
        r = check_positions(rn, info->xlogpos);
        if (r < 0)
                return r;
        /* a replay that is one of a series says it at debug level */
        wc_log(quiet ? WC_LOG_DEBUG : WC_LOG_INFO,
               "connected to %s: system %s, timeline %u, database \"%s\"",
               wc_stream_server(rn->stream), info->system_id, info->timeline,
               info->dbname);
        if (info->slot_created && !rn->o->temporary)
                log_notice("created replication slot \"%s\"", rn->slot);
        rn->endpos_floor = rn->o->endpos;
        if (rn->o->endpos) {
                uint32_t block;
                uint64_t segment;

                wc_stream_wal_sizes(rn->stream, &block, &segment);
                rn->endpos_floor =
                    wc_lsn_page_floor(rn->o->endpos, block, segment);
        }

        rn->sender_timeout_ms = wc_stream_sender_timeout_ms(rn->stream);

        /* the publication open_stream() made sure of (the start's
         * configuration, like the DSN and the slot) */
        wc_source_stream_config(rn->o->cfg, &sc);
        if (info->publication_created)
                log_notice("created publication \"%s\"", sc.publication);
        wc_decoder_options_init(&opts);
        r = dec->options(&rn->cfg->filter, &opts);
        if (r == 0 && dec == &wc_pgoutput)
                r = wc_pgoutput_start_options(sc.publication,
                                              info->server_version, &opts);
        if (r == 0)
                r = wc_stream_start(rn->stream, WC_LSN_INVALID, opts.kv,
                                    dec->optional, rn->err, sizeof(rn->err));
        else
                snprintf(rn->err, sizeof(rn->err), "out of memory");
        wc_decoder_options_free(&opts);
        if (r < 0)
                return r;
        if (!rn->cp && info->encoding[0] && strcmp(info->encoding, "UTF8"))
                log_warning("database \"%s\" on %s has server_encoding %s: "
                            "%s passes its text on unconverted, and "
                            "walcastd stops at the first change whose text "
                            "is not UTF-8 (docs/reliability.md); walcast "
                            "needs a UTF8 database",
                            info->dbname, wc_stream_server(rn->stream),
                            info->encoding, dec->name);
        for (unsigned i = 0; info->optional_refused >> i && !rn->cp; i++)
                if (info->optional_refused & 1u << i)
                        log_warning("%s on %s does not know the option %s: "
                                    "%s",
                                    dec->name, wc_stream_server(rn->stream),
                                    dec->optional[2 * i],
                                    dec->optional_lost[i]);
        if (!rn->cp) {
                rn->cp = wc_checkpoint_new(info->slot_confirmed);
                if (!rn->cp)
                        return -ENOMEM;
                wc_runner_configure_pipeline(rn);
                r = wc_runner_snapshot_start(rn, info->slot_created,
                                             info->optional_refused);
                if (r < 0)
                        return r;
                /* where the slot is: sending it again is no progress */
                rn->sent_flush = info->slot_confirmed;
                /* the metrics are right before the first status message */
                SET(rn->m->confirmed_lsn, info->slot_confirmed);
        }
        if (info->xlogpos >
            atomic_load_explicit(&rn->m->server_wal_end, memory_order_relaxed))
                SET(rn->m->server_wal_end, info->xlogpos);
        rn->state = ST_STREAMING;
        rn->reply_asked = false;
        rn->unheard = false;
        rn->listen_from_ms = 0;
        SET(rn->m->streaming, 1);
        rn->next_status_ms =
            now_ms() + (int64_t)rn->cfg->source.status_interval_ms;
        wc_pipeline_restart(rn->pl, wc_checkpoint_confirmed(rn->cp));
        /* what came with the reply to START_REPLICATION */
        rn->read_pending = true;
        /* the end position is passed already: stop without waiting */
        if (endpos_acked(rn))
                rn->status_now = true;
        wc_log(quiet ? WC_LOG_DEBUG : WC_LOG_INFO,
               "streaming changes from %sslot \"%s\" at %s%s",
               rn->o->temporary ? "temporary " : "", rn->slot,
               wc_lsn_format(info->slot_confirmed, lsn),
               rn->o->tail && !rn->o->temporary
                   ? " (peeking: no position is confirmed)"
                   : "");
        return 0;
}

/* Gives up the stream; what was not confirmed will be sent again. */
void wc_runner_drop_stream(struct runner *rn)
{
        if (rn->stream && rn->state == ST_STREAMING)
                (void)wc_runner_send_status(rn); /* best effort */
        wc_stream_free(rn->stream);
        rn->stream = NULL;
        SET(rn->m->streaming, 0);
        SET(rn->m->caught_up, 0);
        wc_pipeline_reset(rn->pl);
        rn->keepalive_end = WC_LSN_INVALID;
        rn->want_write = false;
}

int wc_runner_stream_step(struct runner *rn)
{
        wc_lsn end = rn->o->endpos;
        char a[WC_LSN_STRLEN], b[WC_LSN_STRLEN];
        bool at_end;
        int r;

        if (rn->want_write) {
                r = wc_stream_flush(rn->stream, rn->err, sizeof(rn->err));
                if (r < 0)
                        return r;
                rn->want_write = r == 1;
        }
        /* backpressure: a sink that is behind stops the reading, while
         * status messages keep the server from timing out */
        rn->batch_bytes = 0;
        r = read_batch(rn);
        if (r < 0)
                return r;
        r = wc_runner_check_heard(rn);
        if (r < 0)
                return r;
        /* a trickle: let more arrive before reading again */
        rn->holdoff = rn->batch_bytes > 0 && rn->batch_bytes < BATCH_BYTES &&
                      !wc_runner_paused(rn);
        /* the end position is acknowledged: tell the server now, not at
         * the next status_interval, and stop */
        at_end = endpos_acked(rn);
        if (at_end || rn->status_now ||
            now_ms() >= wc_runner_status_due(rn, true))
                r = wc_runner_send_status(rn);
        /* tail confirms nothing: what its sink has taken is as far as
         * it goes */
        if (r == 0 && at_end && (rn->o->tail || rn->sent_flush >= end)) {
                log_info("reached the end position %s (confirmed %s): "
                         "stopping",
                         wc_lsn_format(end, a),
                         wc_lsn_format(wc_checkpoint_confirmed(rn->cp), b));
                rn->stop = true;
        }
        return r;
}

static bool identity_included(void *ud, const char *schema, const char *table)
{
        struct wc_change c = {.op = WC_OP_DELETE,
                              .schema = schema,
                              .schema_len = strlen(schema),
                              .table = table,
                              .table_len = strlen(table)};
        struct runner *rn = ud;

        if (wc_filter_match(rn->route, &c))
                return true;
        c.op = WC_OP_UPDATE;
        return wc_filter_match(rn->route, &c);
}

static void identity_report(void *ud, int level, const char *msg)
{
        (void)ud;
        wc_log(level, "%s", msg);
}

/* At start: say which included tables wal2json cannot identify rows of,
 * and what the sinks do instead (stream/catalog.h). */
void wc_runner_check_identities(struct runner *rn)
{
        bool kafka = false;
        char err[1024];

        for (size_t i = 0; i < rn->cfg->nsinks; i++) {
                const struct wc_sink_kind *k =
                    wc_sink_kind_find(rn->cfg->sinks[i].kind);
                kafka = kafka || (k && k->needs_identity);
        }
        if (wc_catalog_identity_report(rn->cfg->source.dsn, kafka, 20,
                                       identity_included, identity_report, rn,
                                       err, sizeof(err)) < 0)
                log_notice("could not check the replica identity of the "
                           "included tables: %s",
                           err);
}
