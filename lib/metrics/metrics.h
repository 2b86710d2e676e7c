/* SPDX-License-Identifier: MIT */
/*
 * Metrics: counters the main loop updates and an HTTP endpoint that serves
 * them in the Prometheus text format, with /healthz and /readyz.
 *
 * The main loop is the only writer; the HTTP server runs on its own thread
 * and only reads.  Every field is a relaxed atomic, so the hot path takes
 * no lock and pays an uncontended store.  Per-sink and per-schema entries
 * are appended, never removed: an entry is filled in before the count that
 * makes it visible is published (release), and readers load the count
 * (acquire) first.
 */
#ifndef WALCAST_METRICS_H
#define WALCAST_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define WC_METRICS_MAX_SINKS 64
/* Per-schema change counts stop growing here; the rest is counted under
 * schema="_other", so a database with 100,000 tenants cannot blow up the
 * scrape. */
#define WC_METRICS_MAX_SCHEMAS 256
#define WC_METRICS_NAME_MAX    128

struct wc_metrics_sink {
        char name[WC_METRICS_NAME_MAX];
        atomic_uint_fast64_t acks;
        atomic_uint_fast64_t errors;
};

struct wc_metrics_schema {
        char name[WC_METRICS_NAME_MAX];
        atomic_uint_fast64_t changes;
};

struct wc_metrics {
        atomic_uint_fast64_t changes[WC_OP__COUNT]; /* by enum wc_op */
        atomic_uint_fast64_t transactions;
        atomic_uint_fast64_t bytes_received;
        atomic_uint_fast64_t confirmed_lsn;
        atomic_uint_fast64_t server_wal_end;
        atomic_int_fast64_t last_commit_time_us; /* Unix epoch, 0 = none */
        atomic_uint_fast64_t in_flight;          /* transactions */
        /* committed, not yet acknowledged: what limits.* bound */
        atomic_uint_fast64_t in_flight_changes;
        atomic_uint_fast64_t in_flight_bytes;
        atomic_int paused; /* 1 while reading waits for the sinks */
        atomic_uint_fast64_t replays;
        atomic_uint_fast64_t reconnects;
        /* 1 while START_REPLICATION is active and the server is heard */
        atomic_int streaming;
        /* 1 while every sink started and none knows it cannot deliver
         * (a Kafka sink with every broker down) */
        atomic_int sinks_ready;
        /* 1 while streaming with nothing in flight and no transaction
         * open: everything the server sent is delivered, so there is no
         * lag in seconds, however long ago the last commit was */
        atomic_int caught_up;
        /* snapshot chunks read again (wc_snapshot_rereads()) */
        atomic_uint_fast64_t snapshot_rereads;

        struct wc_metrics_sink sinks[WC_METRICS_MAX_SINKS];
        atomic_size_t nsinks;
        struct wc_metrics_schema schemas[WC_METRICS_MAX_SCHEMAS];
        atomic_size_t nschemas;
        atomic_uint_fast64_t other_schema_changes;
};

/* Zeroes m. */
void wc_metrics_init(struct wc_metrics *m);

/* Registers a sink (main thread, at start); returns its index or -ENOSPC. */
int wc_metrics_add_sink(struct wc_metrics *m, const char *name);

/* Counts a change of schema (main thread).  Finding the entry is a short
 * linear scan from a one-entry cache: changes come in runs per schema. */
void wc_metrics_count_schema(struct wc_metrics *m, const char *schema,
                             size_t len);

/* Renders the Prometheus text format into out (any thread).  now_us is
 * the current Unix time, for the lag in seconds: the time since the last
 * commit received, 0 while caught up.  0 or -ENOMEM. */
int wc_metrics_render(const struct wc_metrics *m, int64_t now_us,
                      struct wc_buf *out);

struct wc_metrics_server;

/*
 * Serves /metrics, /healthz (200 while the process runs) and /readyz (200
 * when streaming and every sink is ready, else 503) on listen
 * ("127.0.0.1:9187", "[::1]:9187", ":9187" for all addresses).  The server
 * runs on its own thread.  NULL on failure with errbuf set.
 */
struct wc_metrics_server *wc_metrics_serve(const char *listen,
                                           const struct wc_metrics *m,
                                           char *errbuf, size_t errlen);
void wc_metrics_server_stop(struct wc_metrics_server *s);

#endif
