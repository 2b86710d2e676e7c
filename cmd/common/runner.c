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

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/state.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/runner.h"
#include "common/runner_int.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "decode/pgoutput.h"
#include "sinks/kafka/kafka.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "host/host.h"
#include "core/filter.h"
#include "stream/catalog.h"
#include "stream/heartbeat.h"
#include "stream/stream.h"
#include "snapshot/snapshot.h"

/* How long a stop waits for the server to end the copy. */
#define STOP_STREAM_MS 5000
/* Replays after a failure wait 1 s, 2 s, 4 s ... up to this. */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
/* While reading waits, the server's keepalive requests go unread: a
 * status message at least this often answers them anyway, whatever
 * status_interval says (wal_sender_timeout may be as short as 2 s). */
#define PAUSED_STATUS_MS 1000
#define HOLDOFF_MS       1

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

static void read_signals(struct runner *rn)
{
        struct signalfd_siginfo si;

        while (read(rn->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                        if (rn->o->tail || !rn->o->config_path) {
                                wc_plugin_host_reopen(rn->host);
                                continue;
                        }
                        wc_runner_request_reload(rn);
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

/* One poll() over the signalfd, the plugins' descriptors, a running
 * heartbeat's connection and, when `with_stream`, the replication
 * socket. */
static int poll_once(struct runner *rn, int64_t deadline, bool with_stream)
{
        size_t nplug, base = with_stream ? 2 : 1, hb_slot = 0;
        size_t nsnap = rn->snap ? wc_snapshot_workers(rn->snap) : 0;
        /* the slot of each snapshot worker's connection, 0 none */
        size_t snap_slot[WC_SNAPSHOT_MAX_WORKERS] = {0};
        int64_t timeout = deadline - now_ms();
        int hb_fd = -1;
        short hb_events = 0;
        struct pollfd *pfd;

        /* as many slots as the plugins watch descriptors, and ours (the
         * snapshot's workers too): a sink with a connection pool may
         * watch hundreds */
        nplug = wc_plugin_host_pollfds(rn->host, NULL, 0);
        if (3 + nsnap + nplug > rn->npfd) {
                size_t n = 3 + nsnap + nplug + nplug / 2 + 16;
                pfd = realloc(rn->pfd, n * sizeof(*pfd));
                if (!pfd) {
                        log_error("poll: out of memory for %zu descriptors",
                                  3 + nsnap + nplug);
                        return -ENOMEM;
                }
                rn->pfd = pfd;
                rn->npfd = n;
        }
        pfd = rn->pfd;
        pfd[0] = (struct pollfd){.fd = rn->sigfd, .events = POLLIN};
        if (with_stream)
                pfd[1] = (struct pollfd){
                    .fd = wc_stream_fd(rn->stream),
                    /* not while paused: unread input would wake
                     * poll() at once, again and again */
                    .events = (wc_runner_paused(rn) ? 0 : POLLIN) |
                              (rn->want_write ? POLLOUT : 0)};
        if (rn->hb)
                hb_fd = wc_heartbeat_pollfd(rn->hb, &hb_events);
        if (hb_fd >= 0) {
                hb_slot = base;
                pfd[base++] = (struct pollfd){.fd = hb_fd, .events = hb_events};
        }
        for (size_t i = 0; i < nsnap && i < WC_SNAPSHOT_MAX_WORKERS; i++) {
                short ev = 0;
                int fd = wc_snapshot_pollfd(rn->snap, i, &ev);

                if (fd < 0)
                        continue;
                snap_slot[i] = base;
                pfd[base++] = (struct pollfd){.fd = fd, .events = ev};
        }
        nplug = wc_plugin_host_pollfds(rn->host, pfd + base, rn->npfd - base);
        if (timeout < 0)
                timeout = 0;
        if (poll(pfd, base + nplug, (int)timeout) < 0 && errno != EINTR) {
                log_error("poll: %s", strerror(errno));
                return -errno;
        }
        if (pfd[0].revents & POLLIN)
                read_signals(rn);
        if (hb_fd >= 0 && pfd[hb_slot].revents)
                wc_runner_heartbeat_step(rn);
        for (size_t i = 0; i < nsnap && i < WC_SNAPSHOT_MAX_WORKERS; i++)
                if (snap_slot[i] && pfd[snap_slot[i]].revents)
                        wc_runner_snapshot_step(rn, i);
        wc_plugin_host_dispatch(rn->host, pfd + base, nplug);
        return 0;
}

/* When the next status message is due: every status_interval, at least
 * every PAUSED_STATUS_MS while nothing is read, and at once when one is
 * owed. */
int64_t wc_runner_status_due(struct runner *rn, bool reading)
{
        int64_t soon = rn->status_ok_ms + PAUSED_STATUS_MS;

        if (rn->status_now)
                return now_ms();
        if (reading && !wc_runner_paused(rn))
                return rn->next_status_ms;
        return soon < rn->next_status_ms ? soon : rn->next_status_ms;
}

static int loop(struct runner *rn)
{
        int r;

        while (!rn->stop) {
                bool with_stream = rn->state == ST_STREAMING;
                int64_t deadline = with_stream ? wc_runner_status_due(rn, true)
                                               : rn->retry_at_ms;

                if (rn->next_watchdog_ms && rn->next_watchdog_ms < deadline)
                        deadline = rn->next_watchdog_ms;
                if (rn->hb && rn->next_heartbeat_ms < deadline)
                        deadline = rn->next_heartbeat_ms;
                if (wc_runner_snapshot_due(rn) < deadline)
                        deadline = wc_runner_snapshot_due(rn);
                /* at a boundary, the reload waits no longer than this;
                 * inside a transaction the reading goes on to one */
                if (rn->next_cfg && !wc_pipeline_in_txn(rn->pl) &&
                    rn->reload_by_ms < deadline)
                        deadline = rn->reload_by_ms;
                if (with_stream && wc_runner_liveness_due(rn) < deadline)
                        deadline = wc_runner_liveness_due(rn);
                if (with_stream && rn->read_pending && !wc_runner_paused(rn))
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
                /* an exactly-once Kafka sink fenced by another walcastd */
                if (wc_kafka_sinks_stop() < 0)
                        return wc_kafka_sinks_stop();
                wc_runner_watchdog(rn);
                wc_runner_heartbeat_tick(rn);
                wc_runner_snapshot_tick(rn);
                wc_runner_reload_overdue(rn);
                /* no checkpoint yet: the first start waits (a busy
                 * slot), and nothing was ever in flight */
                if (rn->next_cfg && !wc_pipeline_in_txn(rn->pl) &&
                    (!rn->cp || wc_checkpoint_in_flight(rn->cp) == 0))
                        wc_runner_apply_reload(rn);
                if (rn->fatal)
                        return rn->fatal;
                if (rn->state == ST_STREAMING && !rn->replay) {
                        r = wc_runner_stream_step(rn);
                        if (r < 0)
                                log_error("%s", rn->err);
                        if (r < 0 && transient(r) && !rn->o->tail) {
                                rn->replay = true;
                                rn->server_lost = true;
                        } else if (r < 0)
                                return r;
                }
                if (rn->replay && rn->state == ST_STREAMING) {
                        wc_runner_drop_stream(rn);
                        schedule_retry(rn);
                }
                if (rn->state == ST_BACKOFF && now_ms() >= rn->retry_at_ms) {
                        r = wc_runner_start_stream(rn);
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

        if (!wc_runner_in_txn(rn) || rn->o->tail || rn->replay)
                return 0;
        log_info("reading transaction %u to its commit before stopping",
                 wc_pipeline_txn(rn->pl, NULL)->xid);
        rn->finishing = true;
        while (wc_runner_in_txn(rn) && !rn->replay && now_ms() < deadline) {
                int64_t due = wc_runner_status_due(rn, true);
                int64_t until = due < deadline ? due : deadline;

                if (rn->read_pending && !wc_runner_paused(rn))
                        until = now_ms();
                r = poll_once(rn, until, true);
                if (r == 0)
                        r = wc_runner_stream_step(rn);
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
        open = wc_pipeline_in_txn(rn->pl) ? 1 : 0;
        /* (after a message that does not decode, its error said more) */
        if (open && !rn->o->tail && read_on && !failed) {
                uint64_t changes;
                const struct walcast_txn *txn =
                    wc_pipeline_txn(rn->pl, &changes);

                log_notice("stopping without the commit of transaction %u "
                           "(%llu changes given to the sinks): it is read "
                           "whole again at the next start",
                           txn->xid, (unsigned long long)changes);
        }
        /* tail confirms nothing: its stdout sink writes out at close */
        while (!rn->o->tail && wc_checkpoint_in_flight(rn->cp) > open &&
               !rn->replay && now_ms() < deadline) {
                int64_t due = wc_runner_status_due(rn, false);
                int64_t until = due < deadline ? due : deadline;

                r = poll_once(rn, until, false);
                if (r < 0)
                        return r;
                /* a long drain still answers for the connection, so
                 * wal_sender_timeout does not end it meanwhile */
                if (now_ms() >= due && wc_runner_send_status(rn) < 0)
                        break;
        }
        if (wc_checkpoint_in_flight(rn->cp) > open && !rn->o->tail)
                log_warning("%zu transactions were not acknowledged within "
                            "shutdown_timeout; they will be sent again at the "
                            "next start",
                            wc_checkpoint_in_flight(rn->cp) - open);
        r = wc_runner_send_status(rn);
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

        wc_runner_init_ops(&rn);
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
        rn.dec = wc_runner_decoder_new(o->cfg, &rn.catalog);
        rn.route = wc_filter_new(&o->cfg->filter);
        rn.bus = wc_bus_new(o->cfg->signals.bulk_delete_batch);
        rn.host = rn.bus ? wc_plugin_host_new(rn.bus, &rn.ops) : NULL;
        rn.pl = wc_pipeline_new(&(struct wc_pipeline_config){0}, &rn.pl_ops);
        if (!rn.dec || !rn.route || !rn.bus || !rn.host || !rn.pl) {
                log_error("out of memory");
                r = -ENOMEM;
                goto out;
        }
        r = wc_runner_load_plugins(&rn);
        if (r < 0)
                goto out;
        wc_runner_configure_pipeline(&rn);
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
                r = wc_runner_heartbeat_start(&rn);
                if (r < 0)
                        goto out;
        }
        r = wc_runner_start_stream(&rn);
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
                wc_runner_check_identities(&rn);
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
        wc_pipeline_free(rn.pl);
        wc_snapshot_free(rn.snap);
        wc_checkpoint_free(rn.cp);
        wc_filter_free(rn.route);
        wc_decoder_free(rn.dec);
        wc_stream_free(rn.stream);
        wc_heartbeat_free(rn.hb);
        wc_catalog_free(rn.catalog);
        wc_pgoutput_hold_free(rn.hold);
        wc_config_free(rn.next_cfg);
        wc_config_free(rn.reloaded);
        /* the server reads the metrics: it stops before they go */
        wc_metrics_server_stop(rn.metrics_server);
        free(rn.m);
        free(rn.pfd);
        if (rn.sigfd >= 0)
                close(rn.sigfd);
        return r < 0 ? wc_exit_code_for(r) : WC_EXIT_OK;
}
