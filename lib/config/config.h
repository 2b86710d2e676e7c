/* SPDX-License-Identifier: MIT */
/*
 * Configuration: one YAML file read into an immutable struct wc_config.
 *
 * Every error names file:line:column.  ${NAME} in any scalar expands an
 * environment variable (an unset one is an error; "$$" is a literal "$").
 * A reload builds a new struct and swaps it; nothing here is ever modified
 * after wc_config_load() returns.
 */
#ifndef WALCAST_CONFIG_H
#define WALCAST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/filter.h"
#include "core/kv.h"
#include "core/pattern.h"
#include "core/settings.h"

/* A sink of the `sinks:` list.  Its block is read by its kind in the sink
 * registry (sinks/registry.h) into the kind's own struct (sinks/KIND/conf.h:
 * struct wc_file_sink_config, ...), which the kind checks and starts. */
struct wc_sink_config {
        const char *kind;      /* "file", "plugin", "kafka": static text */
        unsigned line, column; /* where the sink was defined */
        /* what logs and the metrics' sink label call it, distinct among
         * the sinks: `name:`, else "file:PATH", the plugin's path or
         * "kafka", else (when two would be the same) "file#N", "plugin#N"
         * or "kafka#N" with N its place in the list from 1 */
        char *name;
        void *conf; /* the kind's struct; its `name:` (or NULL) first */
};

enum wc_log_format {
        WC_LOG_FORMAT_TEXT = 0,
        WC_LOG_FORMAT_JSON = 1,
};

/* What walcastd does when the slot it had confirmed positions on is gone,
 * was recreated, or the server is another one (docs/reliability.md). */
enum wc_slot_lost {
        WC_SLOT_LOST_FAIL = 0,     /* exit 69 and wait for an operator */
        WC_SLOT_LOST_RECREATE = 1, /* accept the loss, go on (logged) */
};

/* The output plugin, and the decoder of its format (docs/configuration.md,
 * "Choosing a decoder"). */
enum wc_decoder_kind {
        WC_DECODER_WAL2JSON = 0,
        WC_DECODER_PGOUTPUT = 1,
};

struct wc_config {
        char *path;
        struct {
                char *dsn;
                char *slot;
                bool create_slot;               /* default true */
                uint64_t status_interval_ms;    /* default 10000 */
                enum wc_slot_lost on_slot_lost; /* default fail */
                enum wc_decoder_kind decoder;   /* default wal2json */
                /* pgoutput: the publication; NULL: the slot's name */
                char *publication;
                bool create_publication; /* default true */
        } source;
        /* the slot's state file lives here (absolute); NULL: the caller
         * picks ($STATE_DIRECTORY under systemd) or there is none */
        char *state_dir;
        /* how long a stop waits for the sinks to acknowledge; default 10 s */
        uint64_t shutdown_timeout_ms;
        struct wc_filter_config filter;
        struct {
                /* max keys in one bulk_delete signal: 1 to 1000000,
                 * default 1000 */
                uint32_t bulk_delete_batch;
        } signals;
        struct {
                uint64_t interval_ms; /* 0 (default): no heartbeat */
                /* run on an ordinary connection every interval; default:
                 * emit a non-transactional logical message with `prefix` */
                char *action_query;
                char *prefix; /* default "walcast.heartbeat" */
                bool deliver; /* pass heartbeat messages to sinks; false */
        } heartbeat;
        struct {
                /* reading pauses while acknowledged-pending transactions
                 * hold more than these (the open one is never held back) */
                uint32_t max_in_flight_changes; /* default 100000 */
                uint64_t max_in_flight_bytes;   /* default 64 MiB */
        } limits;
        struct {
                bool initial;        /* snapshot when the slot is created */
                uint32_t chunk_size; /* rows per chunk; default 10000 */
                /* connections reading tables at once; default 1 */
                uint32_t workers;
                /* keyless: whole (true) or refuse (default) */
                int keyless_whole;
        } snapshot;
        struct wc_sink_config *sinks;
        size_t nsinks;
        struct {
                enum wc_log_level level;   /* default info */
                enum wc_log_format format; /* default text */
        } log;
        struct {
                char *listen; /* NULL: no metrics endpoint */
        } metrics;
};

/*
 * Loads and validates path.  Returns NULL on failure with errbuf holding
 * "FILE:LINE:COLUMN: message" (or "FILE: message" when there is no
 * position, e.g. the file cannot be opened).
 */
struct wc_config *wc_config_load(const char *path, char *errbuf, size_t errlen);

/* Same, from a YAML text in memory; `name` stands for the file name in
 * errors.  Used by tests and the fuzzer. */
struct wc_config *wc_config_load_string(const char *name, const char *text,
                                        size_t len, char *errbuf,
                                        size_t errlen);

void wc_config_free(struct wc_config *c);

/* wc_duration_parse() and wc_size_parse() are in core/settings.h. */

/* Slot names: [a-z0-9_]{1,63}. */
bool wc_slot_name_valid(const char *s);

#endif
