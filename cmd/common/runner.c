/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/runner.h"
#include "config/config.h"
#include "decode/decode.h"
#include "filesink/filesink.h"
#include "route/route.h"
#include "stream/stream.h"

/* Messages handled before the loop looks at signals and timers again. */
#define BATCH_MESSAGES 4096
/* Written changes are synced and acknowledged at least this often while
 * data flows (bounds commit-to-acknowledge latency), and before every
 * status message. */
#define SYNC_INTERVAL_MS 20
#define STOP_TIMEOUT_MS  5000

struct runner {
        const struct wc_run_opts *o;
        const struct wc_config *cfg;
        const char *slot;
        struct wc_stream *stream;
        struct wc_decoder *dec;
        struct wc_route *route;
        struct wc_checkpoint *cp;
        struct wc_filesink **sinks;
        size_t nsinks;
        struct wc_buf line;

        bool in_txn;
        struct wc_txn_view txn;
        /* checkpoint entries written to the sinks but not yet synced */
        uint64_t *unsynced;
        size_t nunsynced, capunsynced;
        wc_lsn keepalive_end; /* walEnd of the last keepalive */
        wc_lsn sent_flush;    /* last flush position sent */

        int sigfd;
        bool stop;
        bool status_now;
        bool want_write; /* libpq has output queued */
        long changes;
        int64_t next_status_ms;
        int64_t last_sync_ms;
        char err[1024];
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* wal2json drops the UPDATE and DELETE of a table without primary key or
 * replica identity and says so only in a WARNING: make it loud. */
static void on_notice(void *userdata, const char *severity, const char *msg)
{
        static const char marker[] = "no tuple identifier for ";
        const char *p = strstr(msg, marker);
        (void)userdata;

        if (p) {
                const char *in = strstr(p, " in table ");
                int oplen = in ? (int)(in - p - (int)strlen(marker)) : 0;
                const char *table = in ? in + strlen(" in table ") : "?";
                log_warning("wal2json skipped %s %.*s on table %s: it has no "
                            "primary key or replica identity, so this change "
                            "is lost; add a primary key or run ALTER TABLE %s "
                            "REPLICA IDENTITY FULL",
                            oplen > 0 && strchr("AEIOU", p[strlen(marker)])
                                ? "an"
                                : "a",
                            oplen, p + strlen(marker), table, table);
                return;
        }
        if (strcmp(severity, "WARNING") == 0 || strcmp(severity, "ERROR") == 0)
                log_warning("server %s: %s", severity, msg);
        else
                log_debug("server %s: %s", severity, msg);
}

static int push_unsynced(struct runner *rn, uint64_t id)
{
        if (rn->nunsynced == rn->capunsynced) {
                size_t cap = rn->capunsynced ? rn->capunsynced * 2 : 256;
                uint64_t *p = realloc(rn->unsynced, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                rn->unsynced = p;
                rn->capunsynced = cap;
        }
        rn->unsynced[rn->nunsynced++] = id;
        return 0;
}

/* Adds a checkpoint entry that every sink acknowledges at its next sync. */
static int track(struct runner *rn, wc_lsn end_lsn)
{
        uint64_t id;
        int r = wc_checkpoint_add(rn->cp, end_lsn, (unsigned)rn->nsinks, &id);

        if (r == 0)
                r = push_unsynced(rn, id);
        if (r < 0)
                log_error("out of memory tracking transactions");
        return r;
}

/* Makes everything written durable, then acknowledges it. */
static int sync_sinks(struct runner *rn)
{
        int r;

        for (size_t i = 0; i < rn->nsinks; i++) {
                r = wc_filesink_sync(rn->sinks[i], rn->err, sizeof(rn->err));
                if (r == -EPIPE && rn->o->tail) {
                        rn->stop = true; /* `walcast tail | head` */
                        return 0;
                }
                if (r < 0) {
                        log_error("file sink: %s", rn->err);
                        return r;
                }
        }
        for (size_t i = 0; i < rn->nunsynced; i++)
                for (size_t s = 0; s < rn->nsinks; s++)
                        (void)wc_checkpoint_ack(rn->cp, rn->unsynced[i]);
        rn->nunsynced = 0;
        if (!rn->in_txn)
                wc_checkpoint_idle_advance(rn->cp, rn->keepalive_end);
        rn->last_sync_ms = now_ms();
        return 0;
}

static int send_status(struct runner *rn)
{
        wc_lsn flush =
            rn->o->tail ? WC_LSN_INVALID : wc_checkpoint_confirmed(rn->cp);
        char a[WC_LSN_STRLEN];
        int r;

        r = wc_stream_send_status(rn->stream, flush, rn->err, sizeof(rn->err));
        if (r == 0)
                r = wc_stream_flush(rn->stream, rn->err, sizeof(rn->err));
        if (r < 0) {
                log_error("%s", rn->err);
                return r;
        }
        rn->want_write = r == 1;
        if (flush != rn->sent_flush)
                log_debug("confirmed %s", wc_lsn_format(flush, a));
        rn->sent_flush = flush;
        rn->status_now = false;
        rn->next_status_ms =
            now_ms() + (int64_t)rn->cfg->source.status_interval_ms;
        return 0;
}

static int write_change(struct runner *rn, const struct wc_change *c)
{
        const struct wc_txn_view *txn =
            rn->in_txn && (c->op != WC_OP_MESSAGE || c->transactional)
                ? &rn->txn
                : NULL;
        int r;

        wc_buf_reset(&rn->line);
        r = wc_format_change(&rn->line, c, txn);
        if (r < 0) {
                log_error("could not format a change: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < rn->nsinks; i++) {
                r = wc_filesink_write(rn->sinks[i], rn->line.data, rn->line.len,
                                      rn->err, sizeof(rn->err));
                if (r == -EPIPE && rn->o->tail) {
                        rn->stop = true;
                        return 0;
                }
                if (r < 0) {
                        log_error("file sink: %s", rn->err);
                        return r;
                }
        }
        rn->changes++;
        if (rn->o->limit > 0 && rn->changes >= rn->o->limit)
                rn->stop = true;
        /* a message outside a transaction is acknowledged on its own but
         * moves no position (see checkpoint.h) */
        if (!txn && !rn->o->tail)
                return track(rn, WC_LSN_INVALID);
        return 0;
}

static int handle_xlogdata(struct runner *rn, struct wc_stream_msg *m)
{
        const struct wc_change *c;
        int r;

        r = wc_decoder_decode(rn->dec, m->data, m->len, m->data_start, &c,
                              rn->err, sizeof(rn->err));
        if (r < 0) {
                /* never skip a change: stop before confirming past it */
                log_error("%s", rn->err);
                return r;
        }
        switch (c->op) {
        case WC_OP_BEGIN:
                rn->in_txn = true;
                rn->txn.xid = c->xid;
                rn->txn.commit_lsn = c->commit_lsn;
                rn->txn.end_lsn = c->end_lsn;
                if (c->has_time)
                        wc_time_format(c->time_us, rn->txn.commit_time);
                else
                        rn->txn.commit_time[0] = '\0';
                return 0;
        case WC_OP_COMMIT:
                rn->in_txn = false;
                return rn->o->tail ? 0 : track(rn, c->end_lsn);
        default:
                if (!wc_route_match(rn->route, c))
                        return 0;
                return write_change(rn, c);
        }
}

/* Reads what the socket holds, up to a batch.  0 or <0 (fatal). */
static int read_batch(struct runner *rn)
{
        struct wc_stream_msg m;
        int r;

        for (int i = 0; i < BATCH_MESSAGES && !rn->stop; i++) {
                r = wc_stream_read(rn->stream, &m, rn->err, sizeof(rn->err));
                if (r == 0)
                        return 0;
                if (r < 0) {
                        log_error("%s", rn->err);
                        return r;
                }
                if (m.kind == WC_MSG_KEEPALIVE) {
                        if (m.wal_end > rn->keepalive_end)
                                rn->keepalive_end = m.wal_end;
                        if (m.reply_requested)
                                rn->status_now = true;
                        continue;
                }
                r = handle_xlogdata(rn, &m);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int open_sinks(struct runner *rn)
{
        const struct wc_config *cfg = rn->cfg;
        size_t n = rn->o->tail ? 1 : cfg->nsinks;

        rn->sinks = calloc(n ? n : 1, sizeof(*rn->sinks));
        if (!rn->sinks)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *path =
                    rn->o->tail ? "-" : cfg->sinks[i].u.file.path;
                bool fsync = rn->o->tail ? false : cfg->sinks[i].u.file.fsync;

                rn->sinks[i] =
                    wc_filesink_open(path, fsync, rn->err, sizeof(rn->err));
                if (!rn->sinks[i]) {
                        log_error("file sink: %s", rn->err);
                        return -EIO;
                }
                rn->nsinks++;
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

static void read_signals(struct runner *rn)
{
        struct signalfd_siginfo si;

        while (read(rn->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        log_info("SIGHUP: reload is not supported yet, "
                                 "restart walcastd to apply a new "
                                 "configuration");
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

/* Everything from the slot check to the end of the stream. */
static int stream_loop(struct runner *rn)
{
        char lsn[WC_LSN_STRLEN];
        int r;

        rn->next_status_ms =
            now_ms() + (int64_t)rn->cfg->source.status_interval_ms;
        rn->last_sync_ms = now_ms();
        while (!rn->stop) {
                struct pollfd pfd[2] = {
                    {.fd = wc_stream_fd(rn->stream),
                     .events = POLLIN | (rn->want_write ? POLLOUT : 0)},
                    {.fd = rn->sigfd, .events = POLLIN},
                };
                int64_t now = now_ms();
                int64_t timeout = rn->next_status_ms - now;

                if (rn->nunsynced) {
                        int64_t s = rn->last_sync_ms + SYNC_INTERVAL_MS - now;
                        if (s < timeout)
                                timeout = s;
                }
                if (timeout < 0)
                        timeout = 0;
                if (poll(pfd, 2, (int)timeout) < 0 && errno != EINTR) {
                        log_error("poll: %s", strerror(errno));
                        return -errno;
                }
                if (pfd[1].revents & POLLIN)
                        read_signals(rn);
                if (rn->want_write) {
                        r = wc_stream_flush(rn->stream, rn->err,
                                            sizeof(rn->err));
                        if (r < 0) {
                                log_error("%s", rn->err);
                                return r;
                        }
                        rn->want_write = r == 1;
                }
                r = read_batch(rn);
                if (r < 0)
                        return r;
                now = now_ms();
                if (rn->nunsynced || rn->status_now ||
                    now >= rn->next_status_ms) {
                        if (rn->status_now || now >= rn->next_status_ms ||
                            now - rn->last_sync_ms >= SYNC_INTERVAL_MS) {
                                r = sync_sinks(rn);
                                if (r < 0)
                                        return r;
                        }
                }
                if (rn->status_now || now >= rn->next_status_ms) {
                        r = send_status(rn);
                        if (r < 0)
                                return r;
                }
        }

        /* a clean stop: make everything durable, confirm it, end the copy */
        r = sync_sinks(rn);
        if (r < 0)
                return r;
        r = send_status(rn);
        if (r < 0)
                return r;
        r = wc_stream_stop(rn->stream, STOP_TIMEOUT_MS, rn->err,
                           sizeof(rn->err));
        if (r < 0)
                log_warning("%s", rn->err);
        if (!rn->o->tail)
                log_info("stopped; confirmed position %s",
                         wc_lsn_format(wc_checkpoint_confirmed(rn->cp), lsn));
        return 0;
}

static int start_stream(struct runner *rn)
{
        const struct wc_stream_info *info;
        struct wc_stream_config sc = {
            .dsn = rn->cfg->source.dsn,
            .slot = rn->slot,
            .create_slot = rn->o->tail ? false : rn->cfg->source.create_slot,
            .temporary = rn->o->temporary,
        };
        struct wc_buf actions, add_tables, filter_tables;
        const char *extra[7];
        size_t n = 0;
        char lsn[WC_LSN_STRLEN];
        int r;

        wc_stream_set_notice_handler(rn->stream, on_notice, rn);
        r = wc_stream_open(rn->stream, &sc, rn->err, sizeof(rn->err));
        if (r < 0) {
                log_error("%s", rn->err);
                return r;
        }
        info = wc_stream_get_info(rn->stream);
        log_info("connected to %s: system %s, timeline %u, database \"%s\"",
                 wc_stream_server(rn->stream), info->system_id, info->timeline,
                 info->dbname);
        if (info->slot_created && !rn->o->temporary)
                log_notice("created replication slot \"%s\"", rn->slot);

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
        if (r < 0) {
                log_error("%s", rn->err);
                return r;
        }
        if (!info->numeric_as_string)
                log_warning("wal2json on %s does not know the option "
                            "numeric-data-types-as-string: numeric NaN and "
                            "Infinity values arrive as null; upgrade wal2json "
                            "(2.6 or later) to keep them",
                            wc_stream_server(rn->stream));
        rn->cp = wc_checkpoint_new(info->slot_confirmed);
        if (!rn->cp)
                return -ENOMEM;
        log_info("streaming changes from %sslot \"%s\" at %s%s",
                 rn->o->temporary ? "temporary " : "", rn->slot,
                 wc_lsn_format(info->slot_confirmed, lsn),
                 rn->o->tail && !rn->o->temporary
                     ? " (peeking: no position is confirmed)"
                     : "");
        return 0;
}

int wc_run(const struct wc_run_opts *o)
{
        struct runner rn = {.o = o, .cfg = o->cfg, .sigfd = -1};
        int r;

        rn.slot = o->slot ? o->slot : o->cfg->source.slot;
        wc_buf_init(&rn.line);
        r = setup_signals(&rn);
        if (r < 0) {
                log_error("could not set up signal handling: %s", strerror(-r));
                goto out;
        }
        rn.stream = wc_stream_new();
        rn.dec = wc_decoder_new();
        rn.route = wc_route_new(&o->cfg->filter);
        if (!rn.stream || !rn.dec || !rn.route) {
                log_error("out of memory");
                r = -ENOMEM;
                goto out;
        }
        r = open_sinks(&rn);
        if (r < 0)
                goto out;
        r = start_stream(&rn);
        if (r < 0)
                goto out;
        r = stream_loop(&rn);
out:
        for (size_t i = 0; i < rn.nsinks; i++)
                wc_filesink_close(rn.sinks[i]);
        free(rn.sinks);
        free(rn.unsynced);
        wc_checkpoint_free(rn.cp);
        wc_route_free(rn.route);
        wc_decoder_free(rn.dec);
        wc_stream_free(rn.stream);
        wc_buf_free(&rn.line);
        if (rn.sigfd >= 0)
                close(rn.sigfd);
        return r < 0 ? wc_exit_code_for(r) : WC_EXIT_OK;
}
