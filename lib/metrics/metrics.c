/* SPDX-License-Identifier: MIT */
/*
 * The counters and their Prometheus text rendering.  The writer is the
 * main loop alone, so increments below are a relaxed load and store (no
 * locked read-modify-write); readers on the HTTP thread see each value
 * whole, and a scrape is allowed to mix values from slightly different
 * moments.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "metrics/metrics.h"

#define OTHER_SCHEMA "_other"

/*
 * The writer's one-entry cache for wc_metrics_count_schema.  It lives here
 * rather than in struct wc_metrics because only the writer thread touches
 * it; it is a hint, always checked against the schema before use, and it
 * also remembers a schema that went to "_other" so that, once the table is
 * full, a run of changes in an uncounted schema does not scan the whole
 * table for every change.
 */
static _Thread_local struct {
        const struct wc_metrics *m;
        bool other; /* the cached schema counts under "_other" */
        size_t idx; /* else its entry */
        size_t len;
        char name[WC_METRICS_NAME_MAX];
} last;

/* Single writer: no other thread adds to the same counter, so a plain
 * load and store is enough and avoids a locked instruction. */
static void bump(atomic_uint_fast64_t *c, uint64_t n)
{
        uint_fast64_t v = atomic_load_explicit(c, memory_order_relaxed);

        atomic_store_explicit(c, v + n, memory_order_relaxed);
}

void wc_metrics_init(struct wc_metrics *m)
{
        for (size_t i = 0; i < WC_OP__COUNT; i++)
                atomic_init(&m->changes[i], 0);
        atomic_init(&m->transactions, 0);
        atomic_init(&m->bytes_received, 0);
        atomic_init(&m->confirmed_lsn, 0);
        atomic_init(&m->server_wal_end, 0);
        atomic_init(&m->last_commit_time_us, 0);
        atomic_init(&m->in_flight, 0);
        atomic_init(&m->in_flight_changes, 0);
        atomic_init(&m->in_flight_bytes, 0);
        atomic_init(&m->paused, 0);
        atomic_init(&m->replays, 0);
        atomic_init(&m->reconnects, 0);
        atomic_init(&m->streaming, 0);
        atomic_init(&m->sinks_ready, 0);
        atomic_init(&m->caught_up, 0);
        for (size_t i = 0; i < WC_METRICS_MAX_SINKS; i++) {
                memset(m->sinks[i].name, 0, sizeof(m->sinks[i].name));
                atomic_init(&m->sinks[i].acks, 0);
                atomic_init(&m->sinks[i].errors, 0);
        }
        atomic_init(&m->nsinks, 0);
        for (size_t i = 0; i < WC_METRICS_MAX_SCHEMAS; i++) {
                memset(m->schemas[i].name, 0, sizeof(m->schemas[i].name));
                atomic_init(&m->schemas[i].changes, 0);
        }
        atomic_init(&m->nschemas, 0);
        atomic_init(&m->other_schema_changes, 0);
        /* a struct re-initialised at the same address must not inherit a
         * cached "_other" verdict */
        if (last.m == m)
                last.m = NULL;
}

/* Copies at most WC_METRICS_NAME_MAX - 1 bytes without splitting a UTF-8
 * sequence, so a truncated label value is still valid UTF-8. */
static void copy_name(char dst[WC_METRICS_NAME_MAX], const char *src)
{
        size_t n = strlen(src);

        if (n >= WC_METRICS_NAME_MAX) {
                n = WC_METRICS_NAME_MAX - 1;
                while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
                        n--;
        }
        memcpy(dst, src, n);
        dst[n] = '\0';
}

int wc_metrics_add_sink(struct wc_metrics *m, const char *name)
{
        size_t n = atomic_load_explicit(&m->nsinks, memory_order_relaxed);
        char tmp[WC_METRICS_NAME_MAX];

        if (!name || !*name)
                return -EINVAL;
        copy_name(tmp, name);
        /* A reload closes and re-opens the sinks: the same name gets its
         * old entry back, so its counters keep counting instead of
         * restarting, and reloads cannot exhaust the table. */
        for (size_t i = 0; i < n; i++)
                if (strcmp(m->sinks[i].name, tmp) == 0)
                        return (int)i;
        if (n >= WC_METRICS_MAX_SINKS)
                return -ENOSPC;
        memcpy(m->sinks[n].name, tmp, sizeof(tmp));
        atomic_store_explicit(&m->sinks[n].acks, 0, memory_order_relaxed);
        atomic_store_explicit(&m->sinks[n].errors, 0, memory_order_relaxed);
        /* publishes the name: readers load nsinks with acquire */
        atomic_store_explicit(&m->nsinks, n + 1, memory_order_release);
        return (int)n;
}

static bool name_is(const char *entry, const char *s, size_t len)
{
        return memcmp(entry, s, len) == 0 && entry[len] == '\0';
}

static void remember(const struct wc_metrics *m, const char *schema, size_t len,
                     bool other, size_t idx)
{
        last.m = m;
        last.other = other;
        last.idx = idx;
        last.len = len;
        memcpy(last.name, schema, len);
        last.name[len] = '\0';
}

void wc_metrics_count_schema(struct wc_metrics *m, const char *schema,
                             size_t len)
{
        size_t n = atomic_load_explicit(&m->nschemas, memory_order_relaxed);

        /* a name that cannot be a label of its own: too long for an
         * entry, empty, with a NUL inside, or the overflow label itself
         * (a real schema "_other" would otherwise be rendered twice) */
        if (len == 0 || len >= WC_METRICS_NAME_MAX ||
            memchr(schema, '\0', len) ||
            (len == sizeof(OTHER_SCHEMA) - 1 &&
             memcmp(schema, OTHER_SCHEMA, len) == 0)) {
                bump(&m->other_schema_changes, 1);
                return;
        }

        if (last.m == m && last.len == len &&
            memcmp(last.name, schema, len) == 0) {
                /* the table only grows and a full one stays full, so an
                 * "_other" verdict holds while the table is full */
                if (last.other && n == WC_METRICS_MAX_SCHEMAS) {
                        bump(&m->other_schema_changes, 1);
                        return;
                }
                if (!last.other && last.idx < n &&
                    name_is(m->schemas[last.idx].name, schema, len)) {
                        bump(&m->schemas[last.idx].changes, 1);
                        return;
                }
        }

        for (size_t i = 0; i < n; i++) {
                if (name_is(m->schemas[i].name, schema, len)) {
                        remember(m, schema, len, false, i);
                        bump(&m->schemas[i].changes, 1);
                        return;
                }
        }

        if (n >= WC_METRICS_MAX_SCHEMAS) {
                remember(m, schema, len, true, 0);
                bump(&m->other_schema_changes, 1);
                return;
        }
        memcpy(m->schemas[n].name, schema, len);
        m->schemas[n].name[len] = '\0';
        atomic_store_explicit(&m->schemas[n].changes, 1, memory_order_relaxed);
        /* publishes the name: readers load nschemas with acquire */
        atomic_store_explicit(&m->nschemas, n + 1, memory_order_release);
        remember(m, schema, len, false, n);
}

/* ---- rendering ---- */

/* The first error sticks and makes every later write a no-op, so the
 * rendering reads as a list of lines rather than a ladder of checks. */
struct out {
        struct wc_buf *b;
        int r;
};

static void put(struct out *o, const char *s)
{
        if (o->r == 0)
                o->r = wc_buf_append_str(o->b, s);
}

static void put_uint(struct out *o, uint64_t v)
{
        if (o->r == 0)
                o->r = wc_buf_append_uint(o->b, v);
}

/* The text format escapes exactly these three in label values. */
static void put_label_value(struct out *o, const char *s)
{
        const char *run = s;

        for (; *s; s++) {
                const char *esc;

                switch (*s) {
                case '\\':
                        esc = "\\\\";
                        break;
                case '"':
                        esc = "\\\"";
                        break;
                case '\n':
                        esc = "\\n";
                        break;
                default:
                        continue;
                }
                if (o->r == 0)
                        o->r = wc_buf_append(o->b, run, (size_t)(s - run));
                put(o, esc);
                run = s + 1;
        }
        if (o->r == 0)
                o->r = wc_buf_append(o->b, run, (size_t)(s - run));
}

static void put_family(struct out *o, const char *name, const char *type,
                       const char *help)
{
        put(o, "# HELP ");
        put(o, name);
        put(o, " ");
        put(o, help);
        put(o, "\n# TYPE ");
        put(o, name);
        put(o, " ");
        put(o, type);
        put(o, "\n");
}

/* One sample; label may be NULL for a metric without labels. */
static void put_sample(struct out *o, const char *name, const char *label,
                       const char *value, uint64_t v)
{
        put(o, name);
        if (label) {
                put(o, "{");
                put(o, label);
                put(o, "=\"");
                put_label_value(o, value);
                put(o, "\"}");
        }
        put(o, " ");
        put_uint(o, v);
        put(o, "\n");
}

static void put_single(struct out *o, const char *name, const char *type,
                       const char *help, uint64_t v)
{
        put_family(o, name, type, help);
        put_sample(o, name, NULL, NULL, v);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static const enum wc_op data_ops[] = {
    WC_OP_INSERT, WC_OP_UPDATE, WC_OP_DELETE, WC_OP_TRUNCATE, WC_OP_MESSAGE,
};

int wc_metrics_render(const struct wc_metrics *m, int64_t now_us,
                      struct wc_buf *out)
{
        struct out o = {.b = out, .r = 0};
        size_t start = out->len;
        uint64_t confirmed, wal_end, lag_us = 0;
        int64_t commit_us;
        int streaming, ready;
        size_t n;

        put_family(&o, "walcast_changes_total", "counter",
                   "Changes received, by operation.");
        for (size_t i = 0; i < sizeof(data_ops) / sizeof(data_ops[0]); i++)
                put_sample(&o, "walcast_changes_total", "op",
                           wc_op_name(data_ops[i]),
                           LOAD(m->changes[data_ops[i]]));
        put_single(&o, "walcast_transactions_total", "counter",
                   "Transactions received.", LOAD(m->transactions));
        put_single(&o, "walcast_received_bytes_total", "counter",
                   "Bytes of WAL data received from the server.",
                   LOAD(m->bytes_received));

        confirmed = LOAD(m->confirmed_lsn);
        wal_end = LOAD(m->server_wal_end);
        put_single(&o, "walcast_confirmed_lsn", "gauge",
                   "Last LSN confirmed to the server, as a number.", confirmed);
        put_single(&o, "walcast_server_wal_end_lsn", "gauge",
                   "Server WAL end last reported, as a number.", wal_end);
        /* the two loads are not one snapshot: the confirmed LSN may have
         * moved past a stale WAL end, which is no lag, not a huge one */
        put_single(&o, "walcast_lag_bytes", "gauge",
                   "Server WAL end minus the confirmed LSN.",
                   wal_end > confirmed ? wal_end - confirmed : 0);

        commit_us = LOAD(m->last_commit_time_us);
        /* an idle database is no lag, however old its last commit */
        if (commit_us != 0 && now_us > commit_us && !LOAD(m->caught_up))
                lag_us = (uint64_t)now_us - (uint64_t)commit_us;
        put_family(&o, "walcast_lag_seconds", "gauge",
                   "Time since the commit of the last transaction received; "
                   "0 while everything received is delivered.");
        /* integer arithmetic: exact microseconds, no locale, no rounding */
        put(&o, "walcast_lag_seconds ");
        put_uint(&o, lag_us / 1000000);
        if (o.r == 0)
                o.r =
                    wc_buf_printf(out, ".%06u\n", (unsigned)(lag_us % 1000000));

        put_single(&o, "walcast_in_flight_transactions", "gauge",
                   "Transactions received but not yet acknowledged by "
                   "every sink.",
                   LOAD(m->in_flight));
        put_single(&o, "walcast_in_flight_changes", "gauge",
                   "Changes of committed transactions not yet acknowledged "
                   "by every sink (limits.max_in_flight_changes).",
                   LOAD(m->in_flight_changes));
        put_single(&o, "walcast_in_flight_bytes", "gauge",
                   "Bytes of those changes (limits.max_in_flight_bytes).",
                   LOAD(m->in_flight_bytes));
        put_single(
            &o, "walcast_paused", "gauge",
            "1 while reading waits for the sinks (backpressure).",
            (uint64_t)atomic_load_explicit(&m->paused, memory_order_relaxed));

        n = atomic_load_explicit(&m->nsinks, memory_order_acquire);
        put_family(&o, "walcast_sink_acks_total", "counter",
                   "Acknowledgements received from each sink.");
        for (size_t i = 0; i < n; i++)
                put_sample(&o, "walcast_sink_acks_total", "sink",
                           m->sinks[i].name, LOAD(m->sinks[i].acks));
        put_family(&o, "walcast_sink_errors_total", "counter",
                   "Errors reported by each sink.");
        for (size_t i = 0; i < n; i++)
                put_sample(&o, "walcast_sink_errors_total", "sink",
                           m->sinks[i].name, LOAD(m->sinks[i].errors));

        put_single(&o, "walcast_replays_total", "counter",
                   "Times changes were replayed to the sinks.",
                   LOAD(m->replays));
        put_single(&o, "walcast_reconnects_total", "counter",
                   "Reconnections to the server.", LOAD(m->reconnects));
        put_single(&o, "walcast_snapshot_chunks_reread_total", "counter",
                   "Snapshot chunks read again: the stream read a "
                   "transaction their read did not see.",
                   LOAD(m->snapshot_rereads));

        streaming = LOAD(m->streaming) != 0;
        ready = streaming && LOAD(m->sinks_ready) != 0;
        put_single(&o, "walcast_streaming", "gauge",
                   "1 while replication is streaming and the server is "
                   "heard.",
                   (uint64_t)streaming);
        put_single(&o, "walcast_ready", "gauge",
                   "1 while streaming and every sink is ready to deliver.",
                   (uint64_t)ready);

        n = atomic_load_explicit(&m->nschemas, memory_order_acquire);
        put_family(&o, "walcast_schema_changes_total", "counter",
                   "Changes received, by schema; schemas past the cap "
                   "count under \"_other\".");
        for (size_t i = 0; i < n; i++)
                put_sample(&o, "walcast_schema_changes_total", "schema",
                           m->schemas[i].name, LOAD(m->schemas[i].changes));
        put_sample(&o, "walcast_schema_changes_total", "schema", OTHER_SCHEMA,
                   LOAD(m->other_schema_changes));

        if (o.r < 0) {
                /* leave out as it was: no half a scrape */
                out->len = start;
                if (out->data)
                        out->data[start] = '\0';
        }
        return o.r;
}
