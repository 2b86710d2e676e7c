/* SPDX-License-Identifier: MIT */
/*
 * The streaming loop shared by walcastd and `walcast tail`: connect, check
 * or create the slot, START_REPLICATION, then one thread polling the
 * socket and a signalfd, decoding, filtering and writing changes, and
 * confirming what every sink has durably taken.
 */
#ifndef WALCAST_CMD_RUNNER_H
#define WALCAST_CMD_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct wc_config;

/* Exit codes (docs/walcastd.8.md, EXIT STATUS; sysexits.h). */
#define WC_EXIT_OK          0
#define WC_EXIT_FAILURE     1
#define WC_EXIT_UNAVAILABLE 69 /* slot gone or invalidated */
#define WC_EXIT_CONFIG      78 /* bad configuration */

struct wc_run_opts {
        const struct wc_config *cfg;
        /* walcast tail: changes go to stdout and nothing is confirmed */
        bool tail;
        const char *slot; /* overrides cfg->source.slot */
        bool temporary;   /* create a TEMPORARY slot */
        long limit;       /* tail: stop after this many changes; 0 none */
        /* walcastd: the file SIGHUP reloads; NULL for no reload */
        const char *config_path;
        /* walcastd: where the slot's state file is; NULL: none */
        const char *state_dir;
        /* --endpos: stop cleanly once everything up to here is
         * acknowledged by every sink and confirmed to the server (tail:
         * printed); reading stops at the first transaction boundary at or
         * past it.  WC_LSN_INVALID: run until stopped. */
        wc_lsn endpos;
};

/* Runs until stopped by a signal, an error, the limit or the end
 * position; returns the process exit code and has logged why. */
int wc_run(const struct wc_run_opts *o);

/* The state directory: the config's state_dir, else the first directory
 * of $STATE_DIRECTORY (systemd's StateDirectory=), else NULL. */
const char *wc_state_dir(const struct wc_config *cfg, char *buf, size_t len);

/* The value of --endpos: 0, or -EINVAL (logged, naming the option) when
 * `arg` is not an LSN or is 0/0. */
int wc_endpos_parse(const char *arg, wc_lsn *ret_lsn);

/* Registers cfg's secrets with the logger (wc_log_add_dsn_secrets(),
 * and the sinks' own: a Kafka sink's sasl.password...) before anything
 * can quote them: at start and at every reload. */
void wc_add_config_secrets(const struct wc_config *cfg);

/*
 * What `--check` adds to the configuration loader's checks: every Kafka
 * sink's librdkafka properties as its producer would be configured, and
 * every plugin loaded and checked short of starting it (its init is not
 * called).  No server or broker is contacted.  0, or a negative errno with
 * "FILE:LINE:COL: message" in errbuf.
 */
int wc_check_sinks(const struct wc_config *cfg, char *errbuf, size_t errlen);

/* The exit code for a negative errno from lib/stream. */
int wc_exit_code_for(int err);

/* The output plugin and, for pgoutput, the publication (struct
 * wc_stream_config's fields) that cfg's source names. */
struct wc_stream_config;
void wc_source_stream_config(const struct wc_config *cfg,
                             struct wc_stream_config *sc);

#endif
