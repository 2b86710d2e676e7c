/* SPDX-License-Identifier: MIT */
/* walcast: the operator tool. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/guard.h"
#include "checkpoint/state.h"
#include "common/log.h"
#include "common/runner.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "demo.h"
#include "snapshot.h"
#include "stream/stream.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: walcast check -c FILE\n"
                "       walcast slot status|create|drop -c FILE [--force]\n"
                "       walcast tail -c FILE [--slot NAME] [--limit N] "
                "[--endpos LSN]\n"
                "       walcast snapshot -c FILE PATTERN...\n"
                "       walcast snapshot status|cancel -c FILE\n"
                "       walcast demo [--keep] [--port N] "
                "[--sink file|plugin|kafka] [--bootstrap HOST:PORT]\n"
                "       walcast --version\n"
                "\n"
                "  check        validate the configuration (exit 0, or 78)\n"
                "  slot status  show the slot: plugin, active PID, positions, "
                "retained WAL\n"
                "  slot create  create the slot (wal2json); --force accepts "
                "a slot that\n"
                "               vanished, was recreated or invalidated, or "
                "another server,\n"
                "               and goes on from the slot as it is now\n"
                "  slot drop    drop the slot and its state file; its "
                "position is lost\n"
                "  tail         print changes as JSON lines, from a "
                "temporary slot, or\n"
                "               peek at --slot NAME without confirming "
                "anything;\n"
                "               --endpos LSN stops once the changes up to "
                "LSN are printed\n"
                "  snapshot     ask walcastd to read the tables PATTERN names "
                "(TABLE or\n"
                "               SCHEMA.TABLE, globs allowed) beside the "
                "stream; status\n"
                "               shows the progress, cancel gives every "
                "table left up\n"
                "  demo         run walcastd on a throwaway PostgreSQL while a "
                "short workload\n"
                "               runs, print the changes, then stop and "
                "remove everything;\n"
                "               --keep leaves the server running for your "
                "own statements\n");
}

struct args {
        const char *config;
        const char *slot;
        long limit;
        wc_lsn endpos;
        bool force;
};

/* Parses the options after the command words. */
static int parse_args(int argc, char **argv, struct args *a)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"slot", required_argument, NULL, 's'},
            {"limit", required_argument, NULL, 'n'},
            {"endpos", required_argument, NULL, 'E'},
            {"force", no_argument, NULL, 'f'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        char *end;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "c:E:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        a->config = optarg;
                        break;
                case 's':
                        a->slot = optarg;
                        break;
                case 'n':
                        errno = 0;
                        a->limit = strtol(optarg, &end, 10);
                        if (errno || *end || a->limit <= 0) {
                                log_error("--limit wants a positive number, "
                                          "not \"%s\"",
                                          optarg);
                                return -EINVAL;
                        }
                        break;
                case 'E':
                        if (wc_endpos_parse(optarg, &a->endpos) < 0)
                                return -EINVAL;
                        break;
                case 'f':
                        a->force = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(WC_EXIT_OK);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind != argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return -EINVAL;
        }
        if (!a->config) {
                log_error("missing -c FILE");
                return -EINVAL;
        }
        if (a->slot && !wc_slot_name_valid(a->slot)) {
                log_error("invalid slot name \"%s\": use 1 to 63 characters "
                          "of a-z, 0-9 and _",
                          a->slot);
                return -EINVAL;
        }
        return 0;
}

static struct wc_config *load(const char *path)
{
        char err[1024];
        struct wc_config *cfg = wc_config_load(path, err, sizeof(err));

        if (!cfg) {
                log_error("%s", err);
        } else {
                wc_log_set_level(cfg->log.level);
                /* before anything can quote a piece of it */
                wc_add_config_secrets(cfg);
        }
        return cfg;
}

/* Records the slot as it is now in the state file, as walcastd does at
 * its first start. */
static int record_slot(struct wc_stream *s, const char *slot, const char *path,
                       char *err, size_t errlen)
{
        const struct wc_stream_info *info = wc_stream_get_info(s);
        struct wc_slot_status st;
        struct wc_guard_server srv;
        int r = wc_stream_slot_status(s, slot, &st, err, errlen);

        if (r < 0)
                return r;
        srv = (struct wc_guard_server){.system_id = info->system_id,
                                       .timeline = info->timeline,
                                       .database = info->dbname};
        return wc_guard_record(path, slot, &srv, st.confirmed_flush, err,
                               errlen);
}

/*
 * slot create: a new slot, refused where walcast had confirmed positions
 * on a slot of that name that is gone (changes since may be lost) unless
 * --force.  With --force an existing slot is accepted as it is (an
 * invalidated one is dropped and created anew) and the state file then
 * records it.
 */
static int slot_create(struct wc_stream *s, const struct wc_config *cfg,
                       const char *slot, bool force, const char *path,
                       char *err, size_t errlen)
{
        struct wc_stream_config sc = {.slot = slot};
        struct wc_slot_status st;
        struct wc_slot_state saved;
        char why[1024], a[WC_LSN_STRLEN];
        int have = 0, r;

        if (path) {
                have = wc_state_read(path, &saved, err, errlen);
                if (have < 0 && !force)
                        return -ESTALE;
                if (have < 0)
                        have = 0; /* --force replaces a damaged file */
        }
        r = wc_stream_slot_status(s, slot, &st, err, errlen);
        if (r < 0)
                return r;
        if (st.exists && !force) {
                wc_errorf(err, errlen,
                          "replication slot \"%s\" already exists on %s: "
                          "walcastd uses it as it is; to accept it after a "
                          "refusal (exit 69), use --force",
                          slot, wc_stream_server(s));
                return -EALREADY; /* exit 1 */
        }
        if (!st.exists && have && !force) {
                wc_state_check(&saved, wc_stream_get_info(s)->system_id, false,
                               0, why, sizeof(why));
                wc_errorf(err, errlen,
                          "%s. A new slot starts at the server's current "
                          "position; to accept that, use --force",
                          why);
                return -ESTALE;
        }
        if (st.exists && strcmp(st.wal_status, "lost") == 0) {
                r = wc_stream_slot_drop(s, slot, err, errlen);
                if (r < 0)
                        return r;
                printf("dropped the invalidated replication slot \"%s\"\n",
                       slot);
                st.exists = false;
        }
        wc_source_stream_config(cfg, &sc);
        if (!st.exists) {
                /* pgoutput: the publication first, older than the slot */
                r = wc_stream_publication(s, &sc, err, errlen);
                if (r < 0)
                        return r;
                if (wc_stream_get_info(s)->publication_created)
                        printf("created publication \"%s\"\n", sc.publication);
                r = wc_stream_slot_create(s, slot, sc.plugin, false, err,
                                          errlen);
                if (r < 0)
                        return r;
                printf("created replication slot \"%s\"\n", slot);
        } else {
                printf("kept replication slot \"%s\" at %s\n", slot,
                       wc_lsn_format(st.confirmed_flush, a));
        }
        if (!path) {
                if (force)
                        printf("no state_dir (nor $STATE_DIRECTORY): no state "
                               "file to update\n");
                return 0;
        }
        r = record_slot(s, slot, path, err, errlen);
        if (r == 0)
                printf("recorded it in %s\n", path);
        return r;
}

/* The files beside the slot's DIR/SLOT.state: a snapshot's progress and
 * the mark of an owed initial snapshot (docs/snapshots.md).  They belong
 * to the slot; a new slot of the same name must not inherit them. */
static int remove_slot_files(const char *state_path, char *err, size_t errlen)
{
        static const char *const suffixes[] = {".snapshot", ".snapshot-owed"};
        char path[4300];
        int r = wc_state_remove(state_path, err, errlen);

        for (size_t i = 0; i < 2 && r == 0; i++)
                if (wc_state_sibling(state_path, suffixes[i], path,
                                     sizeof(path)) == 0)
                        r = wc_state_remove(path, err, errlen);
        return r;
}

static int cmd_slot(const char *verb, const struct wc_config *cfg,
                    const char *slot, bool force)
{
        struct wc_stream *s = wc_stream_new();
        struct wc_slot_status st;
        struct wc_slot_state saved;
        char err[1024], a[WC_LSN_STRLEN], b[WC_LSN_STRLEN], sd[4096],
            path[4200];
        const char *dir = wc_state_dir(cfg, sd, sizeof(sd));
        int r;

        if (!s) {
                log_error("out of memory");
                return WC_EXIT_FAILURE;
        }
        if (dir && wc_state_path(dir, slot, path, sizeof(path)) < 0) {
                log_error("state_dir is too long");
                wc_stream_free(s);
                return WC_EXIT_CONFIG;
        }
        r = wc_stream_connect(s, cfg->source.dsn, err, sizeof(err));
        if (r < 0)
                goto out;
        if (strcmp(verb, "create") == 0) {
                r = slot_create(s, cfg, slot, force, dir ? path : NULL, err,
                                sizeof(err));
                goto out;
        }
        if (strcmp(verb, "drop") == 0) {
                r = wc_stream_slot_drop(s, slot, err, sizeof(err));
                if (r == 0)
                        printf("dropped replication slot \"%s\"\n", slot);
                if (r == 0 && dir)
                        r = remove_slot_files(path, err, sizeof(err));
                goto out;
        }
        r = wc_stream_slot_status(s, slot, &st, err, sizeof(err));
        if (r < 0)
                goto out;
        if (!st.exists) {
                snprintf(err, sizeof(err),
                         "replication slot \"%s\" does not exist on %s", slot,
                         wc_stream_server(s));
                r = -ENOENT;
                goto out;
        }
        printf("slot: %s\n", slot);
        printf("plugin: %s\n", st.plugin);
        printf("database: %s\n", st.database);
        if (st.active_pid)
                printf("active_pid: %d\n", st.active_pid);
        else
                printf("active_pid: -\n");
        printf("confirmed_flush_lsn: %s\n",
               wc_lsn_format(st.confirmed_flush, a));
        printf("restart_lsn: %s\n", wc_lsn_format(st.restart_lsn, b));
        printf("retained_wal_bytes: %llu\n",
               (unsigned long long)(st.current_wal > st.restart_lsn
                                        ? st.current_wal - st.restart_lsn
                                        : 0));
        printf("wal_status: %s\n", st.wal_status[0] ? st.wal_status : "-");
        if (dir && wc_state_read(path, &saved, err, sizeof(err)) == 1)
                printf("state_confirmed_lsn: %s\n",
                       wc_lsn_format(saved.confirmed, a));
        wc_print_snapshot_status(cfg, slot, NULL);
out:
        if (r < 0)
                log_error("%s", err);
        wc_stream_free(s);
        return r < 0 ? wc_exit_code_for(r) : WC_EXIT_OK;
}

int main(int argc, char **argv)
{
        struct args a = {0};
        struct wc_config *cfg;
        const char *cmd, *verb = NULL;
        char tmpslot[64];
        int code, shift = 1;

        wc_log_setup("walcast", WC_LOG_STYLE_PROGRAM, WC_LOG_INFO);
        if (argc < 2) {
                usage(stderr);
                return WC_EXIT_CONFIG;
        }
        cmd = argv[1];
        if (strcmp(cmd, "--version") == 0) {
                printf("walcast %s\n", WALCAST_VERSION);
                return WC_EXIT_OK;
        }
        if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
                usage(stdout);
                return WC_EXIT_OK;
        }
        if (strcmp(cmd, "demo") == 0)
                return wc_demo_main(argc - 1, argv + 1);
        if (strcmp(cmd, "snapshot") == 0)
                return wc_cmd_snapshot(argc - 1, argv + 1);
        if (strcmp(cmd, "slot") == 0) {
                if (argc < 3 ||
                    (strcmp(argv[2], "status") && strcmp(argv[2], "create") &&
                     strcmp(argv[2], "drop"))) {
                        log_error("slot wants status, create or drop");
                        return WC_EXIT_CONFIG;
                }
                verb = argv[2];
                shift = 2;
        } else if (strcmp(cmd, "check") && strcmp(cmd, "tail")) {
                log_error("unknown command \"%s\"", cmd);
                usage(stderr);
                return WC_EXIT_CONFIG;
        }
        if (parse_args(argc - shift, argv + shift, &a) < 0)
                return WC_EXIT_CONFIG;
        cfg = load(a.config);
        if (!cfg)
                return WC_EXIT_CONFIG;

        if (strcmp(cmd, "check") == 0) {
                char err[2048];

                if (wc_check_sinks(cfg, err, sizeof(err)) < 0) {
                        log_error("%s", err);
                        code = WC_EXIT_CONFIG;
                } else {
                        printf("%s: configuration is valid\n", a.config);
                        code = WC_EXIT_OK;
                }
        } else if (verb) {
                code = cmd_slot(verb, cfg, a.slot ? a.slot : cfg->source.slot,
                                a.force);
        } else {
                struct wc_run_opts o = {.cfg = cfg,
                                        .tail = true,
                                        .limit = a.limit,
                                        .endpos = a.endpos};
                if (a.slot) {
                        o.slot = a.slot;
                } else {
                        snprintf(tmpslot, sizeof(tmpslot), "walcast_tail_%ld",
                                 (long)getpid());
                        o.slot = tmpslot;
                        o.temporary = true;
                }
                code = wc_run(&o);
        }
        wc_config_free(cfg);
        return code;
}
