/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/state.h"
#include "common/kafka_kv.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/runner.h"
#include "config/config.h"
#include "decode/decode.h"
#include "filesink/filesink.h"
#include "kafka/kafka.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "route/route.h"
#include "stream/catalog.h"
#include "stream/heartbeat.h"
#include "stream/stream.h"

/* Messages handled before the loop looks at signals and timers again. */
#define BATCH_MESSAGES 4096
/* How long a stop waits for the server to end the copy. */
#define STOP_STREAM_MS 5000
/* Replays after a failure wait 1 s, 2 s, 4 s ... up to this. */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_PLUGIN_FDS 64
/* A wake-up that brought less than this lets the socket fill for a
 * millisecond before the next read: a few large reads instead of many
 * small ones cost the client and the walsender less (docs/performance.md). */
#define BATCH_BYTES 65536
/* While reading waits, the server's keepalive requests go unread: a
 * status message at least this often answers them anyway, whatever
 * status_interval says (wal_sender_timeout may be as short as 2 s). */
#define PAUSED_STATUS_MS 1000
#define HOLDOFF_MS       1
/* The receive timeout when the server's wal_sender_timeout is 0 or not
 * known, the least it can be, and how many times a run of receive
 * timeouts doubles it (a server decoding a long transaction whose
 * changes are all filtered out says nothing meanwhile: the next attempt
 * waits longer).  docs/reliability.md, "A silent server". */
#define RECV_TIMEOUT_DEFAULT_MS 60000
#define RECV_TIMEOUT_MIN_MS     2000
#define RECV_TIMEOUT_DOUBLINGS  4
/* An answer to a reply request takes a round trip; this long without
 * one, the server is not heard (not ready, no watchdog) */
#define REPLY_GRACE_MS 5000

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
        struct wc_route *route;
        struct wc_bus *bus;
        struct wc_plugin_host *host;
        struct wc_checkpoint *cp;
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

        /* why wal2json skipped a change, per table (stream/catalog.h) */
        struct wc_catalog *catalog;

        /* the slot's state file (checkpoint/state.h); path "" for none */
        char state_path[4200];
        struct wc_slot_state saved;
        bool have_saved;
        bool state_failing; /* the last write failed (logged once) */

        enum state state;
        bool in_txn;
        bool finishing; /* stopping: reading on to the open one's commit */
        struct walcast_txn txn;
        uint64_t txn_changes, txn_bytes; /* the open transaction's load */
        bool limited; /* reading waits for the limits (logged at debug) */
        wc_lsn keepalive_end; /* walEnd of the last keepalive */
        /* where the WAL before --endpos ends at the latest: the start of
         * the page when the end position points past its header */
        wc_lsn endpos_floor;
        wc_lsn sent_flush; /* last flush position sent */
        /* the stream is read up to here: the end of the last transaction
         * read, or the position it started at */
        wc_lsn read_to;

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
        char err[1024];
};

/* The main loop is the metrics' only writer: a relaxed add is enough. */
#define COUNT(field, n)                                                        \
        atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define SET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *wc_state_dir(const struct wc_config *cfg, char *buf, size_t len)
{
        const char *env = getenv("STATE_DIRECTORY");
        size_t n;

        if (cfg->state_dir)
                return cfg->state_dir;
        if (!env || env[0] != '/')
                return NULL;
        n = strcspn(env, ":");
        if (n >= len)
                return NULL;
        memcpy(buf, env, n);
        buf[n] = '\0';
        return buf;
}

int wc_endpos_parse(const char *arg, wc_lsn *ret_lsn)
{
        wc_lsn lsn;

        if (wc_lsn_parse(arg, &lsn) < 0 || lsn == WC_LSN_INVALID) {
                log_error("--endpos wants a WAL position after 0/0 such as "
                          "0/16B3748, not \"%s\"",
                          arg);
                return -EINVAL;
        }
        *ret_lsn = lsn;
        return 0;
}

int wc_exit_code_for(int err)
{
        switch (err) {
        case -ENOENT:
        case -ESTALE:
                return WC_EXIT_UNAVAILABLE;
        case -EEXIST:
                return WC_EXIT_CONFIG;
        default:
                return WC_EXIT_FAILURE;
        }
}

static const char *signal_name(uint32_t kind)
{
        static const char *const names[WALCAST_SIG__COUNT] = {
            "begin",       "insert",   "update",  "delete",
            "bulk_delete", "truncate", "message", "commit",
        };
        return kind < WALCAST_SIG__COUNT ? names[kind] : "?";
}

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

/* ---- what the plugin host reports ---- */

static void plugin_log(void *ud, const char *plugin, int level, const char *msg)
{
        (void)ud;
        if (level < WC_LOG_ERR)
                level = WC_LOG_ERR;
        if (level > WC_LOG_DEBUG)
                level = WC_LOG_DEBUG;
        wc_log((enum wc_log_level)level, "plugin \"%s\": %s", plugin, msg);
}

static void request_replay(struct runner *rn)
{
        rn->replay = true;
        /* nothing to replay into: a debugging tool just stops */
        if (rn->o->tail)
                rn->stop = true;
}

/* walcast_lag_seconds is 0 while this holds (metrics.h). */
static void note_caught_up(struct runner *rn)
{
        SET(rn->m->caught_up, rn->state == ST_STREAMING && rn->stream &&
                                  !rn->unheard && !rn->in_txn && rn->cp &&
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
        if (status != WALCAST_OK) {
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
        /* an id from before a replay is unknown now: nothing to do */
        (void)wc_checkpoint_ack(rn->cp, txn_id);
        note_caught_up(rn);
}

static void handler_failed(struct runner *rn, const struct wc_bus_error *e)
{
        char lsn[WC_LSN_STRLEN];

        rn->failures++;
        if (rn->failures == 1 || e->lsn != rn->failed_at)
                log_error("plugin \"%s\" failed on %s%s%s%s%s%s at %s: not "
                          "confirming past it; replaying from the last "
                          "confirmed position",
                          wc_plugin_owner_name(e->owner), signal_name(e->kind),
                          e->schema[0] ? " of \"" : "", e->schema,
                          e->schema[0] ? "\".\"" : "",
                          e->schema[0] ? e->table : "",
                          e->schema[0] ? "\"" : "", wc_lsn_format(e->lsn, lsn));
        else
                log_notice("plugin \"%s\" failed again at %s (%u times in a "
                           "row); still retrying",
                           wc_plugin_owner_name(e->owner),
                           wc_lsn_format(e->lsn, lsn), rn->failures);
        rn->failed_at = e->lsn;
        request_replay(rn);
}

/*
 * limits.max_in_flight_*: committed transactions the sinks have not yet
 * acknowledged hold at most this much.  The open transaction does not
 * count: its commit must be read before it can be acknowledged, so holding
 * it back could never end (the sinks' own throttle bounds it).
 */
static bool over_limits(struct runner *rn)
{
        uint64_t changes, bytes;
        bool over;

        if (!rn->cp)
                return false;
        wc_checkpoint_load(rn->cp, &changes, &bytes);
        over = changes >= rn->cfg->limits.max_in_flight_changes ||
               bytes >= rn->cfg->limits.max_in_flight_bytes;
        if (over != rn->limited)
                log_debug("%s: %llu changes, %llu bytes waiting for the "
                          "sinks' acknowledgement",
                          over ? "reading paused" : "reading resumed",
                          (unsigned long long)changes,
                          (unsigned long long)bytes);
        rn->limited = over;
        return over;
}

/* --endpos: everything up to the end position has been read, up to a
 * transaction boundary; what follows is for the next run. */
static bool read_to_endpos(const struct runner *rn)
{
        wc_lsn end = rn->o->endpos;

        return end && !rn->in_txn &&
               (rn->read_to >= end || rn->keepalive_end >= end);
}

/* Reading waits while a sink is behind, while too much waits for the
 * sinks, while a reload waits for the transactions in flight to be
 * acknowledged, and once the end position is read. */
static bool paused(struct runner *rn)
{
        return wc_plugin_host_throttled(rn->host) || over_limits(rn) ||
               (rn->next_cfg && !rn->in_txn) || read_to_endpos(rn);
}

/* ---- the state file ---- */

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

/* ---- the stream ---- */

/* With nothing in flight and no transaction open, everything the server
 * sent before its last keepalive is done. */
static void advance_idle(struct runner *rn)
{
        if (!rn->in_txn && !rn->replay)
                wc_checkpoint_idle_advance(rn->cp, rn->keepalive_end);
}

/* --endpos: every sink has acknowledged everything up to the end
 * position (the server may not have been told yet). */
static bool endpos_acked(struct runner *rn)
{
        if (!rn->o->endpos || rn->in_txn || rn->replay)
                return false;
        advance_idle(rn);
        return wc_checkpoint_confirmed(rn->cp) >= rn->o->endpos;
}

static int send_status(struct runner *rn)
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
        SET(rn->m->paused, paused(rn));
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
        note_caught_up(rn);
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

/*
 * A transaction is tracked from its begin, whose "nextlsn" already names
 * the position its commit ends at; the id is what plugins acknowledge.
 * Every sink acknowledges through the commit path, so a message outside a
 * transaction gets a commit of its own (xid 0, end_lsn 0: it moves no
 * position).
 */
static int track(struct runner *rn, wc_lsn end_lsn)
{
        int r = wc_checkpoint_add(rn->cp, end_lsn,
                                  (unsigned)wc_plugin_host_count(rn->host),
                                  &rn->txn.id);

        if (r < 0)
                wc_errorf(rn->err, sizeof(rn->err),
                          "out of memory tracking transactions");
        return r;
}

static int commit(struct runner *rn)
{
        struct wc_bus_error e;
        int r;

        /* before the sinks see the commit: they may acknowledge at once */
        (void)wc_checkpoint_set_load(rn->cp, rn->txn.id, rn->txn_changes,
                                     rn->txn_bytes);
        r = wc_plugin_host_commit(rn->host, &rn->txn, &e);

        COUNT(rn->m->transactions, 1);
        if (rn->txn.commit_time_us)
                SET(rn->m->last_commit_time_us, rn->txn.commit_time_us);
        note_caught_up(rn);
        if (r == -ECANCELED) {
                handler_failed(rn, &e);
                return 0;
        }
        if (r < 0)
                wc_errorf(rn->err, sizeof(rn->err), "commit dispatch: %s",
                          strerror(-r));
        return r;
}

/* A logical message with the heartbeat prefix. */
static bool is_heartbeat(const struct runner *rn, const struct wc_change *c)
{
        const char *p = rn->cfg->heartbeat.prefix;

        return c->op == WC_OP_MESSAGE && p && c->prefix &&
               c->prefix_len == strlen(p) &&
               memcmp(c->prefix, p, c->prefix_len) == 0;
}

static int handle_xlogdata(struct runner *rn, struct wc_stream_msg *m)
{
        const struct wc_change *c;
        struct wc_bus_error e;
        bool outside;
        int r;

        r = wc_decoder_decode(rn->dec, m->data, m->len, m->data_start, &c,
                              rn->err, sizeof(rn->err));
        /* a table the filter drops cannot stop the others: what it is
         * about is read before its columns */
        if (r == -EBADMSG &&
            wc_decoder_relation(rn->dec, m->data, m->len, &c) == 0 &&
            !wc_route_match(rn->route, c)) {
                wc_log(WC_LOG_DEBUG, "skipped a change of a filtered table: %s",
                       rn->err);
                return 0;
        }
        if (r < 0) /* never skip a change: stop before confirming past it */
                return r;
        switch (c->op) {
        case WC_OP_BEGIN:
                rn->in_txn = true;
                rn->txn = (struct walcast_txn){
                    .xid = c->xid,
                    .commit_lsn = c->commit_lsn,
                    .end_lsn = c->end_lsn,
                    .commit_time_us = c->has_time ? c->time_us : 0,
                };
                rn->txn_changes = 0;
                rn->txn_bytes = m->len;
                SET(rn->m->caught_up, 0);
                r = track(rn, c->end_lsn);
                if (r < 0)
                        return r;
                r = wc_bus_begin(rn->bus, &rn->txn, &e);
                break;
        case WC_OP_COMMIT:
                rn->in_txn = false;
                rn->read_to = rn->txn.end_lsn;
                return commit(rn);
        default:
                if (!wc_route_match(rn->route, c))
                        return 0;
                if (!rn->cfg->heartbeat.deliver && is_heartbeat(rn, c))
                        return 0;
                outside = c->op == WC_OP_MESSAGE && !c->transactional;
                if (outside) {
                        rn->txn = (struct walcast_txn){0};
                        rn->txn_changes = 0;
                        rn->txn_bytes = 0;
                        r = track(rn, WC_LSN_INVALID);
                        if (r < 0)
                                return r;
                }
                r = wc_bus_dispatch(rn->bus, c, outside ? NULL : &rn->txn, &e);
                if (r == 0) {
                        rn->txn_changes++;
                        rn->txn_bytes += m->len;
                        rn->changes++;
                        COUNT(rn->m->changes[c->op], 1);
                        if (c->schema)
                                wc_metrics_count_schema(rn->m, c->schema,
                                                        c->schema_len);
                        if (rn->o->limit > 0 && rn->changes >= rn->o->limit)
                                rn->stop = true;
                        if (outside)
                                return commit(rn);
                }
                break;
        }
        if (r == -ECANCELED) {
                handler_failed(rn, &e);
                return 0;
        }
        if (r < 0)
                wc_errorf(rn->err, sizeof(rn->err), "signal dispatch: %s",
                          strerror(-r));
        return r;
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
                        (!rn->stop || (rn->finishing && rn->in_txn));
             i++) {
                if (paused(rn))
                        return 0;
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
                r = handle_xlogdata(rn, &m);
                if (r < 0)
                        return r;
        }
        /* the batch is full: more may wait in libpq's buffer */
        rn->read_pending = (!rn->stop || rn->finishing) && !rn->replay;
        return 0;
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

        wc_stream_free(rn->stream);
        rn->stream = wc_stream_new();
        if (!rn->stream)
                return -ENOMEM;
        wc_stream_set_notice_handler(rn->stream, on_notice, rn);
        return wc_stream_open(rn->stream, &sc, rn->err, sizeof(rn->err));
}

/* Refuses to go on where changes may have been lost (exit 69), saying how
 * to accept it. */
static int refuse_slot(struct runner *rn, const char *why)
{
        wc_errorf(rn->err, sizeof(rn->err),
                  "%s. walcastd will not go on from there by itself: to accept "
                  "this and continue from the slot as it is now, run `walcast "
                  "slot create --force -c %s`, or set source.on_slot_lost: "
                  "recreate",
                  why, rn->o->config_path ? rn->o->config_path : "CONFIG");
        return -ESTALE;
}

/*
 * Opens the stream, holding the slot to what the state file recorded: a
 * slot that vanished, was recreated or moved, or a server that is another
 * one, is refused (or, with on_slot_lost: recreate, accepted with a
 * warning); an invalidated slot likewise.  Then records the slot.
 */
static int open_checked(struct runner *rn)
{
        const struct wc_stream_info *info;
        bool guarded = rn->have_saved && !rn->o->tail;
        bool accept = rn->cfg->source.on_slot_lost == WC_SLOT_LOST_RECREATE &&
                      !rn->o->tail;
        /* a reconnect: this process streamed from the slot already */
        bool had_slot = rn->cp != NULL && !rn->o->temporary;
        bool create = !rn->o->tail && rn->cfg->source.create_slot;
        struct wc_slot_state st = {0};
        enum wc_slot_verdict v = WC_SLOT_FIRST;
        char why[1024], err[1024];
        int r;

        /* never a new slot in place of one changes were confirmed on,
         * unless that is accepted */
        r = open_stream(rn, create && ((!guarded && !had_slot) || accept));
        if (r == -ESTALE && accept) {
                log_warning("%s; source.on_slot_lost is recreate: dropping "
                            "and recreating the slot",
                            rn->err);
                r = wc_stream_slot_drop(rn->stream, rn->slot, rn->err,
                                        sizeof(rn->err));
                if (r == 0)
                        r = open_stream(rn, create);
                v = WC_SLOT_VANISHED;
        }
        /* a state file of another slot or database, or from the future,
         * holds the slot to nothing: refused whatever on_slot_lost says */
        if (guarded && (r == 0 || r == -ENOENT)) {
                info = wc_stream_get_info(rn->stream);
                struct wc_state_expect x = {
                    .slot = rn->slot,
                    .system_id = info->system_id,
                    .database = info->dbname,
                    .server_lsn = info->xlogpos > info->slot_confirmed
                                      ? info->xlogpos
                                      : info->slot_confirmed,
                };
                int m = wc_state_match(&rn->saved, rn->state_path, &x, rn->err,
                                       sizeof(rn->err));
                if (m < 0)
                        return m;
        }
        if (r == -ENOENT && guarded) {
                info = wc_stream_get_info(rn->stream);
                (void)wc_state_check(&rn->saved, info->system_id, false, 0, why,
                                     sizeof(why));
                return refuse_slot(rn, why);
        }
        if (r == -ENOENT && had_slot && create) {
                char a[WC_LSN_STRLEN];

                wc_errorf(why, sizeof(why),
                          "replication slot \"%s\" has vanished while "
                          "walcastd was running: it had confirmed changes up "
                          "to %s on it, and whatever was committed after that "
                          "and before a new slot is created will not be "
                          "delivered",
                          rn->slot,
                          wc_lsn_format(wc_checkpoint_confirmed(rn->cp), a));
                return refuse_slot(rn, why);
        }
        if (r < 0)
                return r;
        info = wc_stream_get_info(rn->stream);
        if (had_slot && !guarded && info->slot_created) {
                char a[WC_LSN_STRLEN];

                log_warning("replication slot \"%s\" had vanished while "
                            "walcastd was running; source.on_slot_lost is "
                            "recreate: created it again, changes committed "
                            "after %s and before now are not delivered",
                            rn->slot,
                            wc_lsn_format(wc_checkpoint_confirmed(rn->cp), a));
        }
        if (guarded && info->slot_created)
                v = wc_state_check(&rn->saved, info->system_id, false, 0, why,
                                   sizeof(why));
        else if (guarded)
                v = wc_state_check(&rn->saved, info->system_id, true,
                                   info->slot_confirmed, why, sizeof(why));
        if (v != WC_SLOT_FIRST && v != WC_SLOT_SAME) {
                if (!accept)
                        return refuse_slot(rn, why);
                if (guarded)
                        log_warning("%s; source.on_slot_lost is recreate: "
                                    "going on from the slot as it is now",
                                    why);
        }
        if (!rn->state_path[0] || rn->o->tail)
                return 0;

        /* the slot as it is now is the one to hold on to */
        snprintf(st.system_id, sizeof(st.system_id), "%s", info->system_id);
        st.timeline = info->timeline;
        snprintf(st.database, sizeof(st.database), "%s", info->dbname);
        snprintf(st.slot, sizeof(st.slot), "%s", rn->slot);
        st.confirmed = info->slot_confirmed;
        if (v == WC_SLOT_SAME && rn->saved.confirmed > st.confirmed)
                st.confirmed = rn->saved.confirmed; /* a status was lost */
        if (v == WC_SLOT_SAME && rn->saved.timeline != st.timeline)
                log_notice("the server's timeline is %u, it was %u when "
                           "walcast last confirmed a position",
                           st.timeline, rn->saved.timeline);
        if (v == WC_SLOT_SAME && memcmp(&st, &rn->saved, sizeof(st)) == 0)
                return 0;
        if (wc_state_write(rn->state_path, &st, err, sizeof(err)) < 0) {
                wc_errorf(rn->err, sizeof(rn->err),
                          "%s; state_dir must be a writable directory: "
                          "walcast records there which slot it confirms "
                          "positions on",
                          err);
                return -EEXIST; /* exit 78: a configuration matter */
        }
        if (v == WC_SLOT_FIRST)
                log_info("recording the slot's position in %s", rn->state_path);
        rn->saved = st;
        rn->have_saved = true;
        return 0;
}

static int start_stream(struct runner *rn)
{
        const struct wc_stream_info *info;
        struct wc_buf actions, add_tables, filter_tables;
        const char *extra[7];
        size_t n = 0;
        char lsn[WC_LSN_STRLEN];
        bool quiet = rn->failures > 1 || rn->start_failures > 0;
        int r;

        r = open_checked(rn);
        if (r < 0)
                return r;
        info = wc_stream_get_info(rn->stream);
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

        wc_buf_init(&actions);
        wc_buf_init(&add_tables);
        wc_buf_init(&filter_tables);
        r = wc_route_pushdown(&rn->cfg->filter, &actions, &add_tables,
                              &filter_tables);
        if (r == 0 && actions.len) {
                extra[n++] = "actions";
                extra[n++] = actions.data;
        }
        if (r == 0 && add_tables.len) {
                extra[n++] = "add-tables";
                extra[n++] = add_tables.data;
        }
        if (r == 0 && filter_tables.len) {
                extra[n++] = "filter-tables";
                extra[n++] = filter_tables.data;
        }
        extra[n] = NULL;
        if (r == 0)
                r = wc_stream_start(rn->stream, WC_LSN_INVALID, extra, rn->err,
                                    sizeof(rn->err));
        else
                snprintf(rn->err, sizeof(rn->err), "out of memory");
        wc_buf_free(&actions);
        wc_buf_free(&add_tables);
        wc_buf_free(&filter_tables);
        if (r < 0)
                return r;
        if (!rn->cp && info->encoding[0] && strcmp(info->encoding, "UTF8"))
                log_warning("database \"%s\" on %s has server_encoding %s: "
                            "wal2json passes its text on unconverted, and "
                            "walcastd stops at the first change whose text "
                            "is not UTF-8 (docs/reliability.md); walcast "
                            "needs a UTF8 database",
                            info->dbname, wc_stream_server(rn->stream),
                            info->encoding);
        if (!info->numeric_as_string && !rn->cp)
                log_warning("wal2json on %s does not know the option "
                            "numeric-data-types-as-string: NaN and "
                            "Infinity in real, double precision and numeric "
                            "columns arrive as null; upgrade wal2json (2.6 "
                            "or later) to keep them",
                            wc_stream_server(rn->stream));
        if (!rn->cp) {
                rn->cp = wc_checkpoint_new(info->slot_confirmed);
                if (!rn->cp)
                        return -ENOMEM;
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
        rn->read_to = wc_checkpoint_confirmed(rn->cp);
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
static void drop_stream(struct runner *rn)
{
        if (rn->stream && rn->state == ST_STREAMING)
                (void)send_status(rn); /* best effort */
        wc_stream_free(rn->stream);
        rn->stream = NULL;
        SET(rn->m->streaming, 0);
        SET(rn->m->caught_up, 0);
        wc_checkpoint_reset(rn->cp);
        wc_bus_reset(rn->bus);
        rn->in_txn = false;
        rn->keepalive_end = WC_LSN_INVALID;
        rn->want_write = false;
}

/* The tests shorten the backoff with WALCAST_BACKOFF_MIN_MS and
 * WALCAST_BACKOFF_MAX_MS (hidden: milliseconds, 1 to 3600000; anything
 * else keeps the default). */
static int backoff_env(const char *name, int dflt)
{
        const char *s = getenv(name);
        char *end;
        long v;

        if (!s || !*s)
                return dflt;
        errno = 0;
        v = strtol(s, &end, 10);
        return errno || *end || v < 1 || v > 3600000 ? dflt : (int)v;
}

/* Waits 1 s, 2 s, 4 s ... (capped, with jitter) before the next start. */
static void schedule_retry(struct runner *rn)
{
        int min = backoff_env("WALCAST_BACKOFF_MIN_MS", BACKOFF_MIN_MS);
        int max = backoff_env("WALCAST_BACKOFF_MAX_MS", BACKOFF_MAX_MS);
        char lsn[WC_LSN_STRLEN];
        int jitter;

        COUNT(rn->m->replays, 1);
        rn->replay = false;
        rn->backoff_ms = rn->backoff_ms ? rn->backoff_ms * 2 : min;
        if (rn->backoff_ms > max)
                rn->backoff_ms = max;
        /* +-20 %, so that many daemons do not retry in step */
        jitter = rn->backoff_ms / 5;
        rn->retry_at_ms = now_ms() + rn->backoff_ms - jitter +
                          (jitter ? rand() % (2 * jitter + 1) : 0);
        rn->state = ST_BACKOFF;
        /* once per outage, not once per retry */
        wc_log(rn->start_failures || rn->failures > 1 ? WC_LOG_DEBUG
                                                      : WC_LOG_INFO,
               "%s from %s in %d ms", rn->cp ? "replaying" : "starting",
               rn->cp ? wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn)
                      : "the slot's position",
               (int)(rn->retry_at_ms - now_ms()));
}

/* A (re)start failed with a transient error: say so once per kind of
 * error, and try again after the backoff. */
static void start_failed(struct runner *rn, int r)
{
        char scrubbed[1024];

        if (r != rn->start_error)
                log_error("%s; %s", rn->err,
                          r == -EBUSY ? "waiting for it to be released, "
                                        "retrying with backoff"
                                      : "retrying with backoff");
        else
                log_debug("%s", rn->err);
        rn->start_error = r;
        rn->server_lost = true;
        wc_stream_free(rn->stream);
        rn->stream = NULL;
        schedule_retry(rn);
        rn->start_failures++;
        if (r == -EBUSY)
                wc_notify("STATUS=waiting for slot %s: %s", rn->slot,
                          wc_log_scrub(rn->err, scrubbed, sizeof(scrubbed)));
}

/* A (re)start succeeded. */
static void started(struct runner *rn)
{
        if (rn->start_failures)
                log_notice("streaming again after %u failed attempt%s",
                           rn->start_failures,
                           rn->start_failures == 1 ? "" : "s");
        rn->start_error = 0;
        rn->start_failures = 0;
}

/* Errors after a replay that waiting can cure: retry; others end the
 * run. */
static bool transient(int r)
{
        return r == -EHOSTUNREACH || r == -EPIPE || r == -ECONNRESET ||
               r == -EBUSY || r == -EIO || r == -ETIMEDOUT;
}

static bool same_str(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "") == 0;
}

/*
 * SIGHUP: read and check the configuration again.  A bad one is refused
 * and the one in force stays; a good one waits for a transaction boundary
 * with nothing in flight, where apply_reload() swaps it in.
 */
static void request_reload(struct runner *rn)
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
                wc_log_add_dsn_secrets(cfg->source.dsn);
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
static void reload_overdue(struct runner *rn)
{
        char lsn[WC_LSN_STRLEN];

        if (!rn->next_cfg || rn->in_txn || rn->state != ST_STREAMING ||
            wc_checkpoint_in_flight(rn->cp) == 0 || now_ms() < rn->reload_by_ms)
                return;
        log_warning("reload: %zu transactions were not acknowledged within "
                    "shutdown_timeout; reloading all the same: they are read "
                    "again from %s and go to the new sinks",
                    wc_checkpoint_in_flight(rn->cp),
                    wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        drop_stream(rn);
        rn->state = ST_BACKOFF;
        rn->retry_at_ms = now_ms();
}

static int load_plugins(struct runner *rn);

/* A signal bus and plugin host with the sinks of rn->cfg.  0, or <0 with
 * nothing left behind (the sinks' error is logged). */
static int start_sinks(struct runner *rn)
{
        int r;

        rn->bus = wc_bus_new(rn->cfg->signals.bulk_delete_batch);
        rn->host = rn->bus ? wc_plugin_host_new(rn->bus, &rn->ops) : NULL;
        r = rn->host ? load_plugins(rn) : -ENOMEM;
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
 * what wal2json is asked to skip restarts the stream from the confirmed
 * position with the new options: the running stream has skipped what the
 * new filter may want.
 */
static void apply_reload(struct runner *rn)
{
        const struct wc_config *old_cfg = rn->cfg;
        struct wc_route *route;
        struct wc_config *cfg = rn->next_cfg;
        char lsn[WC_LSN_STRLEN];
        int same = wc_route_pushdown_same(&old_cfg->filter, &cfg->filter);

        rn->next_cfg = NULL;
        route = wc_route_new(&cfg->filter);
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
                wc_route_free(route);
                rn->cfg = old_cfg;
                wc_config_free(cfg);
                if (start_sinks(rn) < 0) {
                        log_error("reload failed, and the sinks of the "
                                  "configuration in force did not start "
                                  "again either: stopping");
                        rn->fatal = -EIO;
                        return;
                }
                log_error("reload failed; the sinks of the configuration "
                          "in force started again, and it stays");
                wc_notify("READY=1\nSTATUS=reload failed");
                return;
        }
        wc_route_free(rn->route);
        rn->route = route;
        /* old_cfg is o->cfg or the last reload's */
        wc_config_free(rn->reloaded);
        rn->reloaded = cfg;
        log_info("reloaded %s", rn->o->config_path);
        wc_notify("READY=1");
        if (same == 1 || rn->state != ST_STREAMING)
                return;
        /* no keepalive of the old stream may move the position on */
        log_info("reload: the changes wal2json is asked to skip differ; "
                 "streaming again from %s with the new filter",
                 wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        drop_stream(rn);
        rn->state = ST_BACKOFF;
        rn->retry_at_ms = now_ms();
}

static void read_signals(struct runner *rn)
{
        struct signalfd_siginfo si;

        while (read(rn->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        if (rn->o->tail || !rn->o->config_path) {
                                wc_plugin_host_reopen(rn->host);
                                continue;
                        }
                        request_reload(rn);
                        continue;
                }
                if (rn->stop) {
                        /* a second signal: stop now; only acknowledged
                         * positions were ever confirmed */
                        log_notice("stopping at once");
                        _exit(WC_EXIT_OK);
                }
                log_info("received SIG%s: stopping",
                         sigabbrev_np((int)si.ssi_signo));
                rn->stop = true;
        }
}

/* ---- the heartbeat ---- */

/* The outcome of a beat: a failure is logged once until a beat works. */
static void heartbeat_done(struct runner *rn, int r, const char *err)
{
        if (r < 0) {
                if (!rn->heartbeat_failing)
                        log_warning("%s; trying again at every "
                                    "heartbeat.interval",
                                    err);
                else
                        log_debug("%s", err);
                rn->heartbeat_failing = true;
                return;
        }
        if (rn->heartbeat_failing)
                log_notice("heartbeat: the action query works again");
        else
                log_debug("heartbeat: done");
        rn->heartbeat_failing = false;
}

/* The default action: a non-transactional logical message, which is WAL
 * of this database that the slot decodes and walcast does not pass on. */
static int default_heartbeat_query(const char *prefix, struct wc_buf *b)
{
        int r = wc_buf_append_str(b, "SELECT pg_logical_emit_message(false, '");

        for (const char *p = prefix; *p && r == 0; p++)
                r = *p == '\'' ? wc_buf_append_str(b, "''")
                               : wc_buf_append(b, p, 1);
        if (r == 0)
                r = wc_buf_append_str(b, "', now()::text)");
        return r;
}

/* Starts a beat when one is due; one still running then has taken too
 * long and is given up. */
static void heartbeat_tick(struct runner *rn)
{
        char err[1024];
        int r;

        if (!rn->hb || now_ms() < rn->next_heartbeat_ms)
                return;
        rn->next_heartbeat_ms =
            now_ms() + (int64_t)rn->o->cfg->heartbeat.interval_ms;
        if (wc_heartbeat_busy(rn->hb)) {
                wc_heartbeat_abort(rn->hb);
                heartbeat_done(rn, -ETIMEDOUT,
                               "heartbeat: the action query did not finish "
                               "within heartbeat.interval");
        }
        r = wc_heartbeat_begin(rn->hb, err, sizeof(err));
        if (r < 0)
                heartbeat_done(rn, r, err);
}

static void heartbeat_step(struct runner *rn)
{
        char err[1024];
        int r = wc_heartbeat_step(rn->hb, err, sizeof(err));

        if (r != 0)
                heartbeat_done(rn, r < 0 ? r : 0, err);
}

/* One poll() over the signalfd, the plugins' descriptors, a running
 * heartbeat's connection and, when `with_stream`, the replication
 * socket. */
static int poll_once(struct runner *rn, int64_t deadline, bool with_stream)
{
        struct pollfd pfd[3 + MAX_PLUGIN_FDS];
        size_t nplug, base = with_stream ? 2 : 1;
        int64_t timeout = deadline - now_ms();
        int hb_fd = -1;
        short hb_events = 0;

        pfd[0] = (struct pollfd){.fd = rn->sigfd, .events = POLLIN};
        if (with_stream)
                pfd[1] =
                    (struct pollfd){.fd = wc_stream_fd(rn->stream),
                                    /* not while paused: unread input would wake
                                     * poll() at once, again and again */
                                    .events = (paused(rn) ? 0 : POLLIN) |
                                              (rn->want_write ? POLLOUT : 0)};
        if (rn->hb)
                hb_fd = wc_heartbeat_pollfd(rn->hb, &hb_events);
        if (hb_fd >= 0)
                pfd[base++] = (struct pollfd){.fd = hb_fd, .events = hb_events};
        nplug = wc_plugin_host_pollfds(rn->host, pfd + base, MAX_PLUGIN_FDS);
        if (nplug > MAX_PLUGIN_FDS)
                nplug = MAX_PLUGIN_FDS;
        if (timeout < 0)
                timeout = 0;
        if (poll(pfd, base + nplug, (int)timeout) < 0 && errno != EINTR) {
                log_error("poll: %s", strerror(errno));
                return -errno;
        }
        if (pfd[0].revents & POLLIN)
                read_signals(rn);
        if (hb_fd >= 0 && pfd[base - 1].revents)
                heartbeat_step(rn);
        wc_plugin_host_dispatch(rn->host, pfd + base, nplug);
        return 0;
}

/* When the next status message is due: every status_interval, at least
 * every PAUSED_STATUS_MS while nothing is read, and at once when one is
 * owed. */
static int64_t status_due(struct runner *rn, bool reading)
{
        int64_t soon = rn->status_ok_ms + PAUSED_STATUS_MS;

        if (rn->status_now)
                return now_ms();
        if (reading && !paused(rn))
                return rn->next_status_ms;
        return soon < rn->next_status_ms ? soon : rn->next_status_ms;
}

/* ---- liveness ---- */

/* How long the server may say nothing before the stream is given up. */
static int64_t recv_timeout_ms(const struct runner *rn)
{
        int64_t t = rn->sender_timeout_ms > 0 ? rn->sender_timeout_ms
                                              : RECV_TIMEOUT_DEFAULT_MS;
        unsigned k = rn->recv_timeouts < RECV_TIMEOUT_DOUBLINGS
                         ? rn->recv_timeouts
                         : RECV_TIMEOUT_DOUBLINGS;

        if (t < RECV_TIMEOUT_MIN_MS)
                t = RECV_TIMEOUT_MIN_MS;
        return t << k;
}

/* Past this much silence, a reply is asked for; past this plus the
 * grace, the server is not heard. */
static int64_t ask_after_ms(const struct runner *rn)
{
        return recv_timeout_ms(rn) / 2;
}

static int64_t unheard_after_ms(const struct runner *rn)
{
        int64_t half = recv_timeout_ms(rn) / 2;

        return half + (half < REPLY_GRACE_MS ? half : REPLY_GRACE_MS);
}

/* The last time the server was heard, or reading began again after a
 * pause (while the socket is not read, nothing can be heard). */
static int64_t last_heard(const struct runner *rn)
{
        int64_t h = wc_stream_heard_ms(rn->stream);

        return h > rn->listen_from_ms ? h : rn->listen_from_ms;
}

/* When check_heard() has something to do next. */
static int64_t liveness_due(const struct runner *rn)
{
        int64_t h = last_heard(rn);

        if (!rn->reply_asked)
                return h + ask_after_ms(rn);
        if (!rn->unheard)
                return h + unheard_after_ms(rn);
        return h + recv_timeout_ms(rn);
}

/*
 * The server sends a keepalive at the latest when half its
 * wal_sender_timeout passed without word from walcast, and answers a
 * status message that asks for one at once.  Silence for half the receive
 * timeout asks for one; no answer within REPLY_GRACE_MS makes the server
 * unheard (walcast_streaming 0, /readyz not ready, no WATCHDOG=1); silence
 * for the whole receive timeout gives the stream up (-ETIMEDOUT, which
 * reconnects and replays from the confirmed position).
 */
static int check_heard(struct runner *rn)
{
        int64_t now = now_ms(), quiet;
        char a[WC_LSN_STRLEN];
        int r;

        if (paused(rn))
                rn->listen_from_ms = now;
        quiet = now - last_heard(rn);
        if (quiet < ask_after_ms(rn)) {
                if (rn->unheard)
                        log_notice("%s is heard again",
                                   wc_stream_server(rn->stream));
                rn->reply_asked = false;
                rn->unheard = false;
                rn->server_lost = false;
                SET(rn->m->streaming, 1);
                /* a commit read: whatever made the server silent is over */
                if (rn->read_to > rn->recv_timeout_at)
                        rn->recv_timeouts = 0;
                return 0;
        }
        if (!rn->reply_asked) {
                log_debug("nothing from %s for %lld ms: asking for a "
                          "keepalive",
                          wc_stream_server(rn->stream), (long long)quiet);
                r = wc_stream_request_reply(rn->stream, rn->sent_flush, rn->err,
                                            sizeof(rn->err));
                if (r == 0)
                        r = wc_stream_flush(rn->stream, rn->err,
                                            sizeof(rn->err));
                if (r < 0)
                        return r;
                rn->want_write = r == 1;
                rn->reply_asked = true;
        }
        if (quiet >= unheard_after_ms(rn) && !rn->unheard) {
                log_warning("nothing from %s for %lld ms, not even an answer "
                            "to a keepalive request: not ready; reconnecting "
                            "after %lld ms of silence",
                            wc_stream_server(rn->stream), (long long)quiet,
                            (long long)recv_timeout_ms(rn));
                rn->unheard = true;
                SET(rn->m->streaming, 0);
                SET(rn->m->caught_up, 0);
        }
        if (quiet < recv_timeout_ms(rn))
                return 0;
        wc_errorf(rn->err, sizeof(rn->err),
                  "nothing heard from %s for %lld ms (the receive timeout, "
                  "from the server's wal_sender_timeout): reconnecting and "
                  "reading again from %s",
                  wc_stream_server(rn->stream), (long long)quiet,
                  wc_lsn_format(wc_checkpoint_confirmed(rn->cp), a));
        if (rn->recv_timeouts < RECV_TIMEOUT_DOUBLINGS)
                rn->recv_timeouts++;
        rn->recv_timeout_at = rn->read_to;
        return -ETIMEDOUT;
}

static int stream_step(struct runner *rn)
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
        r = check_heard(rn);
        if (r < 0)
                return r;
        /* a trickle: let more arrive before reading again */
        rn->holdoff =
            rn->batch_bytes > 0 && rn->batch_bytes < BATCH_BYTES && !paused(rn);
        /* the end position is acknowledged: tell the server now, not at
         * the next status_interval, and stop */
        at_end = endpos_acked(rn);
        if (at_end || rn->status_now || now_ms() >= status_due(rn, true))
                r = send_status(rn);
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

/*
 * WATCHDOG=1 at half of $WATCHDOG_USEC, only while the loop is healthy:
 * its status messages go out and the server is heard (check_heard: which
 * holds for an idle database too), or it is waiting out a backoff before
 * a replay that a sink, not the server, made necessary.  A hung loop, a
 * dead or silent connection, or a server that cannot be reached stops the
 * pings, and systemd restarts it.
 */
static void watchdog(struct runner *rn)
{
        int64_t every = wc_notify_watchdog_ms(), now = now_ms();
        int64_t fresh = 2 * (int64_t)rn->cfg->source.status_interval_ms + 1000;

        if (!every || now < rn->next_watchdog_ms)
                return;
        /* a connection that is up but silent (a network path that drops
         * packets) is no health */
        if ((rn->state == ST_BACKOFF && !rn->server_lost) ||
            (rn->state == ST_STREAMING && !rn->unheard &&
             now - rn->status_ok_ms <= fresh))
                wc_notify("WATCHDOG=1");
        rn->next_watchdog_ms = now + every;
}

static int loop(struct runner *rn)
{
        int r;

        while (!rn->stop) {
                bool with_stream = rn->state == ST_STREAMING;
                int64_t deadline =
                    with_stream ? status_due(rn, true) : rn->retry_at_ms;

                if (rn->next_watchdog_ms && rn->next_watchdog_ms < deadline)
                        deadline = rn->next_watchdog_ms;
                if (rn->hb && rn->next_heartbeat_ms < deadline)
                        deadline = rn->next_heartbeat_ms;
                /* at a boundary, the reload waits no longer than this;
                 * inside a transaction the reading goes on to one */
                if (rn->next_cfg && !rn->in_txn && rn->reload_by_ms < deadline)
                        deadline = rn->reload_by_ms;
                if (with_stream && liveness_due(rn) < deadline)
                        deadline = liveness_due(rn);
                if (with_stream && rn->read_pending && !paused(rn))
                        deadline = now_ms();
                if (with_stream && rn->holdoff) {
                        with_stream = false;
                        rn->holdoff = false;
                        if (now_ms() + HOLDOFF_MS < deadline)
                                deadline = now_ms() + HOLDOFF_MS;
                }
                r = poll_once(rn, deadline, with_stream);
                if (r < 0)
                        return r;
                if (rn->stop)
                        break;
                /* a sink that cannot deliver makes walcastd not ready */
                SET(rn->m->sinks_ready, wc_kafka_sinks_down() == 0);
                watchdog(rn);
                heartbeat_tick(rn);
                reload_overdue(rn);
                /* no checkpoint yet: the first start waits (a busy
                 * slot), and nothing was ever in flight */
                if (rn->next_cfg && !rn->in_txn &&
                    (!rn->cp || wc_checkpoint_in_flight(rn->cp) == 0))
                        apply_reload(rn);
                if (rn->fatal)
                        return rn->fatal;
                if (rn->state == ST_STREAMING && !rn->replay) {
                        r = stream_step(rn);
                        if (r < 0)
                                log_error("%s", rn->err);
                        if (r < 0 && transient(r) && !rn->o->tail) {
                                rn->replay = true;
                                rn->server_lost = true;
                        } else if (r < 0)
                                return r;
                }
                if (rn->replay && rn->state == ST_STREAMING) {
                        drop_stream(rn);
                        schedule_retry(rn);
                }
                if (rn->state == ST_BACKOFF && now_ms() >= rn->retry_at_ms) {
                        r = start_stream(rn);
                        if (r < 0 && !transient(r)) {
                                log_error("%s", rn->err);
                                return r;
                        }
                        if (r < 0) {
                                start_failed(rn, r);
                        } else {
                                started(rn);
                                COUNT(rn->m->reconnects, 1);
                        }
                }
        }
        return 0;
}

/* After the error that names it. */
static void log_undecodable(void)
{
        log_error("stopping before that message: nothing past it is "
                  "confirmed, and every start stops there again until the "
                  "message can be read (docs/reliability.md, \"A message "
                  "that does not decode\")");
}

/*
 * A stop that came inside a transaction reads on to its commit, within the
 * shutdown deadline, so that a routine stop repeats nothing at the next
 * start.  Reading keeps to the limits and the sinks' backpressure as
 * always, and ends exactly at the commit (read_batch).  Not for tail,
 * whose Ctrl-C and --limit stop where they are.  A failure is logged and
 * ends the reading: what is in flight is sent again at the next start.
 * One that is not the connection's (a message that does not decode) is
 * returned, for the exit status the main loop would have given it.
 */
static int finish_txn(struct runner *rn, int64_t deadline)
{
        int r = 0;

        if (!rn->in_txn || rn->o->tail || rn->replay)
                return 0;
        log_info("reading transaction %u to its commit before stopping",
                 rn->txn.xid);
        rn->finishing = true;
        while (rn->in_txn && !rn->replay && now_ms() < deadline) {
                int64_t due = status_due(rn, true);
                int64_t until = due < deadline ? due : deadline;

                if (rn->read_pending && !paused(rn))
                        until = now_ms();
                r = poll_once(rn, until, true);
                if (r == 0)
                        r = stream_step(rn);
                if (r < 0) {
                        log_error("%s", rn->err);
                        if (r == -EBADMSG)
                                log_undecodable();
                        break;
                }
        }
        rn->finishing = false;
        return r < 0 && !transient(r) ? r : 0;
}

/* A clean stop: let the sinks acknowledge what they have, confirm it, end
 * the copy.  read_on: first read on to the open transaction's commit. */
static int finish(struct runner *rn, bool read_on)
{
        int64_t deadline = now_ms() + (int64_t)rn->cfg->shutdown_timeout_ms;
        char lsn[WC_LSN_STRLEN];
        size_t open;
        int failed, r;

        wc_notify("STOPPING=1");
        if (rn->state != ST_STREAMING)
                return 0;
        failed = read_on ? finish_txn(rn, deadline) : 0;
        /* The transaction still being read is tracked from its begin, but
         * its commit will not come from a stream no longer read: nothing
         * can acknowledge it, so it is not waited for.  It is read again
         * from the confirmed position at the next start. */
        open = rn->in_txn ? 1 : 0;
        /* (after a message that does not decode, its error said more) */
        if (open && !rn->o->tail && read_on && !failed)
                log_notice("stopping without the commit of transaction %u "
                           "(%llu changes given to the sinks): it is read "
                           "whole again at the next start",
                           rn->txn.xid, (unsigned long long)rn->txn_changes);
        /* tail confirms nothing: its stdout sink writes out at close */
        while (!rn->o->tail && wc_checkpoint_in_flight(rn->cp) > open &&
               !rn->replay && now_ms() < deadline) {
                int64_t due = status_due(rn, false);
                int64_t until = due < deadline ? due : deadline;

                r = poll_once(rn, until, false);
                if (r < 0)
                        return r;
                /* a long drain still answers for the connection, so
                 * wal_sender_timeout does not end it meanwhile */
                if (now_ms() >= due && send_status(rn) < 0)
                        break;
        }
        if (wc_checkpoint_in_flight(rn->cp) > open && !rn->o->tail)
                log_warning("%zu transactions were not acknowledged within "
                            "shutdown_timeout; they will be sent again at the "
                            "next start",
                            wc_checkpoint_in_flight(rn->cp) - open);
        r = send_status(rn);
        if (r < 0) {
                log_error("%s", rn->err);
                return r;
        }
        r = wc_stream_stop(rn->stream, STOP_STREAM_MS, rn->err,
                           sizeof(rn->err));
        if (r < 0)
                log_warning("%s", rn->err);
        if (!rn->o->tail)
                log_info("stopped; confirmed position %s",
                         wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        return failed;
}

/* Whether directories a and b are the same path, give or take a
 * trailing '/'. */
static bool same_dir(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);

        while (la > 1 && a[la - 1] == '/')
                la--;
        while (lb > 1 && b[lb - 1] == '/')
                lb--;
        return la == lb && memcmp(a, b, la) == 0;
}

/*
 * What a file sink's start would find out about its path: the file, or
 * the directory to create it in, can be written to.  "-" is stdout.  The
 * state directory may be missing: systemd creates it (StateDirectory=)
 * when it starts walcastd, after an operator's check.
 */
static int check_file_sink(const char *path, const char *state_dir,
                           char *errbuf, size_t errlen)
{
        const char *slash = strrchr(path, '/');
        char dir[4096];
        struct stat st;
        int e;

        if (strcmp(path, "-") == 0)
                return 0;
        if (stat(path, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                        return wc_fail(errbuf, errlen, -EISDIR,
                                       "file sink \"%s\" is a directory: "
                                       "name a file in it",
                                       path);
                if (access(path, W_OK) == 0)
                        return 0;
                e = errno;
                return wc_fail(errbuf, errlen, -e,
                               "file sink \"%s\" is not writable by walcast "
                               "(uid %u): %s; fix its owner or mode (chown, "
                               "chmod u+w)",
                               path, (unsigned)geteuid(), strerror(e));
        }
        e = errno;
        if (e != ENOENT)
                return wc_fail(errbuf, errlen, -e, "file sink \"%s\": %s", path,
                               strerror(e));
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else
                snprintf(dir, sizeof(dir), "%.*s",
                         slash == path ? 1 : (int)(slash - path), path);
        if (stat(dir, &st) < 0 && errno == ENOENT && state_dir &&
            same_dir(dir, state_dir))
                return 0;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return wc_fail(errbuf, errlen, -ENOENT,
                               "file sink \"%s\": directory \"%s\" does not "
                               "exist: create it, or correct the path",
                               path, dir);
        if (access(dir, W_OK | X_OK) == 0)
                return 0;
        e = errno;
        return wc_fail(errbuf, errlen, -e,
                       "file sink \"%s\": directory \"%s\" is not writable "
                       "by walcast (uid %u): %s; fix its owner or mode (chown, "
                       "chmod), or choose another directory",
                       path, dir, (unsigned)geteuid(), strerror(e));
}

int wc_check_sinks(const struct wc_config *cfg, char *errbuf, size_t errlen)
{
        char err[2048], sd[4096];
        const char *state_dir = wc_state_dir(cfg, sd, sizeof(sd));

        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                int r = 0;

                if (s->type == WC_SINK_FILE)
                        r = check_file_sink(s->u.file.path, state_dir, err,
                                            sizeof(err));
                else if (s->type == WC_SINK_KAFKA)
                        r = wc_kafka_sink_check(&s->u.kafka, cfg->source.dsn,
                                                err, sizeof(err));
                else if (s->type == WC_SINK_PLUGIN)
                        r = wc_plugin_check(
                            s->u.plugin.path, s->u.plugin.config,
                            s->u.plugin.nconfig, err, sizeof(err));
                if (r < 0) {
                        wc_errorf(errbuf, errlen, "%s:%u:%u: %s", cfg->path,
                                  s->line, s->column, err);
                        return r;
                }
        }
        return 0;
}

static bool identity_included(void *ud, const char *schema, const char *table)
{
        struct wc_change c = {.op = WC_OP_DELETE,
                              .schema = schema,
                              .schema_len = strlen(schema),
                              .table = table,
                              .table_len = strlen(table)};
        struct runner *rn = ud;

        if (wc_route_match(rn->route, &c))
                return true;
        c.op = WC_OP_UPDATE;
        return wc_route_match(rn->route, &c);
}

static void identity_report(void *ud, int level, const char *msg)
{
        (void)ud;
        wc_log(level, "%s", msg);
}

/* At start: say which included tables wal2json cannot identify rows of,
 * and what the sinks do instead (stream/catalog.h). */
static void check_identities(struct runner *rn)
{
        bool kafka = false;
        char err[1024];

        for (size_t i = 0; i < rn->cfg->nsinks; i++)
                kafka = kafka || rn->cfg->sinks[i].type == WC_SINK_KAFKA;
        if (wc_catalog_identity_report(rn->cfg->source.dsn, kafka, 20,
                                       identity_included, identity_report, rn,
                                       err, sizeof(err)) < 0)
                log_notice("could not check the replica identity of the "
                           "included tables: %s",
                           err);
}

static int load_plugins(struct runner *rn)
{
        const struct wc_config *cfg = rn->cfg;
        int r;

        if (rn->o->tail) {
                rn->tail_kv[0] = (struct wc_kv){"path", "-"};
                rn->tail_kv[1] = (struct wc_kv){"fsync", "false"};
                r = wc_plugin_host_add(rn->host, "stdout", wc_filesink_plugin(),
                                       NULL, rn->tail_kv, 2, rn->err,
                                       sizeof(rn->err));
                if (r < 0)
                        log_error("%s", rn->err);
                return r;
        }
        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                if (s->type == WC_SINK_FILE) {
                        struct wc_kv kv[2] = {
                            {"path", s->u.file.path},
                            {"fsync", s->u.file.fsync ? "true" : "false"},
                        };
                        /* the file sink reads its config during init only */
                        r = wc_plugin_host_add(rn->host, s->name,
                                               wc_filesink_plugin(), NULL, kv,
                                               2, rn->err, sizeof(rn->err));
                } else if (s->type == WC_SINK_KAFKA) {
                        r = wc_kafka_sink_add(rn->host, s->name, &s->u.kafka,
                                              cfg->source.dsn, rn->err,
                                              sizeof(rn->err));
                } else {
                        const struct wc_plugin_sink_config *p = &s->u.plugin;
                        r = wc_plugin_host_load(rn->host, p->path, &p->schemas,
                                                p->config, p->nconfig, rn->err,
                                                sizeof(rn->err));
                        if (r == 0 && strcmp(s->name, p->path) != 0)
                                r = wc_plugin_host_name_last(rn->host, s->name);
                }
                /* a series from the start, before any acknowledgement */
                if (r == 0)
                        (void)wc_metrics_add_sink(rn->m, s->name);
                if (r < 0) {
                        log_error("%s:%u:%u: %s", cfg->path, s->line, s->column,
                                  rn->err);
                        return -EEXIST; /* exit 78: a configuration matter */
                }
        }
        return 0;
}

static int setup_signals(struct runner *rn)
{
        sigset_t mask;

        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        rn->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return rn->sigfd < 0 ? -errno : 0;
}

int wc_run(const struct wc_run_opts *o)
{
        struct runner rn = {.o = o, .cfg = o->cfg, .sigfd = -1};
        int r;

        rn.ops = (struct wc_plugin_host_ops){
            .log = plugin_log, .ack = plugin_ack, .ud = &rn};
        wc_notify_init();

        rn.slot = o->slot ? o->slot : o->cfg->source.slot;
        srand((unsigned)(time(NULL) ^ getpid()));
        r = setup_signals(&rn);
        if (r < 0) {
                log_error("could not set up signal handling: %s", strerror(-r));
                goto out;
        }
        rn.m = calloc(1, sizeof(*rn.m));
        if (!rn.m) {
                r = -ENOMEM;
                goto out;
        }
        wc_metrics_init(rn.m);
        /* after the signals are blocked: its thread inherits the mask */
        if (o->cfg->metrics.listen && !o->tail) {
                rn.metrics_server = wc_metrics_serve(
                    o->cfg->metrics.listen, rn.m, rn.err, sizeof(rn.err));
                if (!rn.metrics_server) {
                        log_error("%s", rn.err);
                        r = -EEXIST; /* exit 78: a configuration matter */
                        goto out;
                }
                log_info("metrics on http://%s/metrics",
                         o->cfg->metrics.listen);
        }
        rn.dec = wc_decoder_new();
        rn.route = wc_route_new(&o->cfg->filter);
        rn.bus = wc_bus_new(o->cfg->signals.bulk_delete_batch);
        rn.host = rn.bus ? wc_plugin_host_new(rn.bus, &rn.ops) : NULL;
        if (!rn.dec || !rn.route || !rn.bus || !rn.host) {
                log_error("out of memory");
                r = -ENOMEM;
                goto out;
        }
        r = load_plugins(&rn);
        if (r < 0)
                goto out;
        SET(rn.m->sinks_ready, 1);
        if (o->state_dir && !o->tail) {
                r = wc_state_path(o->state_dir, rn.slot, rn.state_path,
                                  sizeof(rn.state_path));
                if (r == 0)
                        r = wc_state_read(rn.state_path, &rn.saved, rn.err,
                                          sizeof(rn.err));
                if (r == -ENAMETOOLONG) {
                        log_error("state_dir is too long: %s", o->state_dir);
                        r = -EEXIST; /* exit 78: a configuration matter */
                        goto out;
                }
                if (r < 0) {
                        log_error("%s", rn.err);
                        r = -ESTALE; /* exit 69: an operator must look */
                        goto out;
                }
                rn.have_saved = r == 1;
        } else if (!o->tail) {
                log_notice("no state_dir (nor $STATE_DIRECTORY): walcastd "
                           "cannot tell a recreated or vanished slot from a "
                           "new one; set state_dir to have it checked");
        }
        if (o->cfg->heartbeat.interval_ms && !o->tail) {
                struct wc_buf q;

                wc_buf_init(&q);
                r = o->cfg->heartbeat.action_query
                        ? wc_buf_append_str(&q, o->cfg->heartbeat.action_query)
                        : default_heartbeat_query(o->cfg->heartbeat.prefix, &q);
                rn.hb = r == 0 ? wc_heartbeat_new(o->cfg->source.dsn, q.data)
                               : NULL;
                wc_buf_free(&q);
                if (!rn.hb) {
                        log_error("out of memory");
                        r = -ENOMEM;
                        goto out;
                }
                rn.next_heartbeat_ms =
                    now_ms() + (int64_t)o->cfg->heartbeat.interval_ms;
        }
        r = start_stream(&rn);
        if (r == -EBUSY && !o->tail) {
                /* another walcastd (or what is left of one) has the slot:
                 * wait for it as a restart would */
                start_failed(&rn, r);
                r = 0;
        } else if (r < 0) {
                log_error("%s", rn.err);
                goto out;
        }
        if (!o->tail)
                check_identities(&rn);
        /* the slot streams (or is waited for) and every sink started */
        rn.status_ok_ms = now_ms();
        rn.next_watchdog_ms = wc_notify_watchdog_ms() ? now_ms() : 0;
        wc_notify("READY=1\nSTATUS=streaming slot %s", rn.slot);
        r = loop(&rn);
        if (r == 0) {
                r = finish(&rn, true);
        } else if (r == -EBADMSG) {
                /* A message that does not decode (or a replication message
                 * that does not parse) stops the reading before it, but
                 * the stream is sound: what the sinks acknowledged up to
                 * there is confirmed, so that the next start repeats
                 * nothing before it.  The exit status stays 1. */
                log_undecodable();
                (void)finish(&rn, false);
        }
out:
        /* plugins close before the stream, which their acks refer to */
        wc_plugin_host_free(rn.host);
        wc_bus_free(rn.bus);
        wc_checkpoint_free(rn.cp);
        wc_route_free(rn.route);
        wc_decoder_free(rn.dec);
        wc_stream_free(rn.stream);
        wc_heartbeat_free(rn.hb);
        wc_catalog_free(rn.catalog);
        wc_config_free(rn.next_cfg);
        wc_config_free(rn.reloaded);
        /* the server reads the metrics: it stops before they go */
        wc_metrics_server_stop(rn.metrics_server);
        free(rn.m);
        if (rn.sigfd >= 0)
                close(rn.sigfd);
        return r < 0 ? wc_exit_code_for(r) : WC_EXIT_OK;
}
