/* SPDX-License-Identifier: MIT */
/* walcastd: the daemon.  Runs in the foreground (systemd Type=notify). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/runner.h"
#include "config/config.h"
#include "malloc.h"

static void usage(FILE *f)
{
        fprintf(f, "usage: walcastd -c FILE [--endpos LSN] [--check]\n"
                   "       walcastd --version\n"
                   "\n"
                   "Streams committed changes of a PostgreSQL database from a "
                   "logical replication\nslot (wal2json) to the sinks in "
                   "FILE.\n"
                   "\n"
                   "  -c, --config FILE  the YAML configuration\n"
                   "  -E, --endpos LSN   stop cleanly (exit 0) once "
                   "everything up to LSN is\n"
                   "                     acknowledged by every sink and "
                   "confirmed to the server\n"
                   "      --check        validate the configuration and "
                   "exit (0, or 78 if invalid)\n"
                   "      --version      print the version and exit\n"
                   "  -h, --help         this text\n");
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"endpos", required_argument, NULL, 'E'},
            {"check", no_argument, NULL, 'C'},
            {"version", no_argument, NULL, 'V'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *path = NULL;
        bool check = false;
        wc_lsn endpos = WC_LSN_INVALID;
        struct wc_config *cfg;
        char err[1024], sd[4096], alloc[128];
        int c, code;

        wc_log_setup("walcastd", WC_LOG_STYLE_SD_DAEMON, WC_LOG_INFO);
        while ((c = getopt_long(argc, argv, "c:E:h", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'E':
                        if (wc_endpos_parse(optarg, &endpos) < 0)
                                return WC_EXIT_CONFIG;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'V':
                        printf("walcastd %s\n", WALCAST_VERSION);
                        return WC_EXIT_OK;
                case 'h':
                        usage(stdout);
                        return WC_EXIT_OK;
                default:
                        usage(stderr);
                        return WC_EXIT_CONFIG;
                }
        }
        if (!path || optind != argc) {
                usage(stderr);
                return WC_EXIT_CONFIG;
        }
        cfg = wc_config_load(path, err, sizeof(err));
        if (!cfg) {
                log_error("%s", err);
                return WC_EXIT_CONFIG;
        }
        /* before anything can quote a piece of it */
        wc_add_config_secrets(cfg);
        /* with --check, --endpos is only checked (above): a script can
         * check the exact command line it will run */
        if (check) {
                if (wc_check_sinks(cfg, err, sizeof(err)) < 0) {
                        log_error("%s", err);
                        wc_config_free(cfg);
                        return WC_EXIT_CONFIG;
                }
                printf("%s: configuration is valid\n", path);
                wc_config_free(cfg);
                return WC_EXIT_OK;
        }
        wc_log_set_level(cfg->log.level);
        wc_log_set_json(cfg->log.format == WC_LOG_FORMAT_JSON);
        wc_malloc_describe(alloc, sizeof(alloc));
        log_info("walcastd %s starting with %s (malloc: %s)", WALCAST_VERSION,
                 path, alloc);
        code = wc_run(&(struct wc_run_opts){
            .cfg = cfg,
            .config_path = path,
            .state_dir = wc_state_dir(cfg, sd, sizeof(sd)),
            .endpos = endpos});
        wc_config_free(cfg);
        return code;
}
