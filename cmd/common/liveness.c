/* SPDX-License-Identifier: MIT */
/* Is the server heard?  Keepalive requests, the receive timeout, and
 * systemd's watchdog. */
#include <errno.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/runner_int.h"
#include "stream/stream.h"

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

/* ---- liveness ---- */

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

/* When wc_runner_check_heard() has something to do next. */
int64_t wc_runner_liveness_due(const struct runner *rn)
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
int wc_runner_check_heard(struct runner *rn)
{
        int64_t now = now_ms(), quiet;
        char a[WC_LSN_STRLEN];
        int r;

        if (wc_runner_paused(rn))
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
                if (wc_pipeline_read_to(rn->pl) > rn->recv_timeout_at)
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
        rn->recv_timeout_at = wc_pipeline_read_to(rn->pl);
        return -ETIMEDOUT;
}

/*
 * WATCHDOG=1 at half of $WATCHDOG_USEC, only while the loop is healthy:
 * its status messages go out and the server is heard (check_heard: which
 * holds for an idle database too), or it is waiting out a backoff before
 * a replay that a sink, not the server, made necessary.  A hung loop, a
 * dead or silent connection, or a server that cannot be reached stops the
 * pings, and systemd restarts it.
 */
void wc_runner_watchdog(struct runner *rn)
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
