/* SPDX-License-Identifier: MIT */
/* heartbeat.interval: the action query, run beside the stream. */
#include <errno.h>

#include "common/log.h"
#include "common/runner_int.h"
#include "stream/heartbeat.h"

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
void wc_runner_heartbeat_tick(struct runner *rn)
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

/* ---- the heartbeat ---- */

void wc_runner_heartbeat_step(struct runner *rn)
{
        char err[1024];
        int r = wc_heartbeat_step(rn->hb, err, sizeof(err));

        if (r != 0)
                heartbeat_done(rn, r < 0 ? r : 0, err);
}

/* The heartbeat's connection, its first beat one interval from now.  0
 * or <0 (logged). */
int wc_runner_heartbeat_start(struct runner *rn)
{
        const struct wc_config *cfg = rn->o->cfg;
        struct wc_buf q;
        int r;

        wc_buf_init(&q);
        r = cfg->heartbeat.action_query
                ? wc_buf_append_str(&q, cfg->heartbeat.action_query)
                : default_heartbeat_query(cfg->heartbeat.prefix, &q);
        rn->hb = r == 0 ? wc_heartbeat_new(cfg->source.dsn, q.data) : NULL;
        wc_buf_free(&q);
        if (!rn->hb) {
                log_error("out of memory");
                return -ENOMEM;
        }
        rn->next_heartbeat_ms = now_ms() + (int64_t)cfg->heartbeat.interval_ms;
        return 0;
}
