/* SPDX-License-Identifier: MIT */
/*
 * walcast snapshot: requests, status and cancel (docs/snapshots.md).  A
 * request is a logical message in the WAL that walcastd acts on when its
 * stream reaches it; the tables are resolved and checked here first.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "checkpoint/state.h"
#include "common/log.h"
#include "common/runner.h"
#include "config/config.h"
#include "core/filter.h"
#include "core/pattern.h"
#include "snapshot/snapshot.h"
#include "stream/stream.h"

#include "snapshot.h"

static const char tables_sql[] =
    "SELECT n.nspname, c.relname, EXISTS (SELECT 1 FROM pg_catalog.pg_index "
    "i WHERE i.indrelid = c.oid AND i.indisprimary) "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
    "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
    "ORDER BY 1, 2";

static PGconn *connect_db(const struct wc_config *cfg)
{
        const char *keys[] = {"dbname", "fallback_application_name", NULL};
        const char *vals[] = {cfg->source.dsn, "walcast-snapshot", NULL};
        PGconn *c = PQconnectdbParams(keys, vals, 1);

        if (!c || PQstatus(c) != CONNECTION_OK) {
                log_error("could not connect to the database of source.dsn: "
                          "%s",
                          c ? PQerrorMessage(c) : "out of memory");
                PQfinish(c);
                return NULL;
        }
        return c;
}

static uint64_t request_id(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return ((uint64_t)ts.tv_sec << 32 ^ (uint64_t)ts.tv_nsec << 8 ^
                (uint64_t)getpid()) |
               1;
}

/* Writes payload as a snapshot message; prints where.  0 or -EIO. */
static int emit(PGconn *c, const char *payload, const char *what)
{
        const char *params[1] = {payload};
        PGresult *res =
            PQexecParams(c,
                         "SELECT pg_catalog.pg_logical_emit_message(false, "
                         "'" WC_SNAPSHOT_PREFIX "', $1)::text",
                         1, NULL, params, NULL, NULL, 0);
        int r = 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                log_error("could not write the %s into the WAL: %s", what,
                          PQresultErrorMessage(res));
                r = -EIO;
        } else {
                printf("wrote the %s into the WAL at %s; walcastd acts on it "
                       "when its stream reaches it\n",
                       what, PQgetvalue(res, 0, 0));
        }
        PQclear(res);
        return r;
}

static double estimate(PGconn *c, const char *schema, const char *table)
{
        const char *params[2] = {schema, table};
        PGresult *res;
        double n = -1;

        if (!c)
                return -1;
        res = PQexecParams(c,
                           "SELECT c.reltuples FROM pg_catalog.pg_class c "
                           "JOIN pg_catalog.pg_namespace n ON n.oid = "
                           "c.relnamespace WHERE n.nspname = $1 AND "
                           "c.relname = $2",
                           2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
                n = strtod(PQgetvalue(res, 0, 0), NULL);
        PQclear(res);
        return n;
}

void wc_print_snapshot_status(const struct wc_config *cfg, const char *slot,
                              void *conn)
{
        struct wc_snapshot_config sc = {.dsn = cfg->source.dsn};
        struct wc_snapshot *s = wc_snapshot_new(&sc);
        char sd[4096], path[4200], err[1024];
        const char *dir = wc_state_dir(cfg, sd, sizeof(sd));
        uint64_t rows;
        size_t done, tables;
        int r;

        if (!s)
                return;
        if (!dir || wc_state_path(dir, slot, path, sizeof(path)) < 0) {
                printf("snapshot: - (no state_dir)\n");
                wc_snapshot_free(s);
                return;
        }
        strcpy(path + strlen(path) - strlen(".state"), ".snapshot");
        r = wc_snapshot_load(s, path, err, sizeof(err));
        if (r < 0) {
                log_error("%s", err);
        } else if (r == 0 || !wc_snapshot_running(s)) {
                printf("snapshot: none\n");
        } else {
                wc_snapshot_progress(s, &rows, &done, &tables);
                printf("snapshot: running, %zu of %zu tables done, %" PRIu64
                       " rows delivered and confirmed\n",
                       done, tables, rows);
                for (size_t i = 0; i < tables; i++) {
                        const char *schema, *table, *state;
                        uint64_t n;
                        double est;

                        wc_snapshot_table_at(s, i, &schema, &table, &n, &state);
                        est = estimate(conn, schema, table);
                        printf("snapshot_table: \"%s\".\"%s\" %s %" PRIu64
                               " rows",
                               schema, table, state, n);
                        if (est >= 0)
                                printf(" (of about %.0f)", est);
                        else if (conn)
                                printf(" (of an unknown number: the table "
                                       "was never analyzed)");
                        printf("\n");
                }
        }
        wc_snapshot_free(s);
}

/* The tables the patterns name, checked: 0, or <0 (logged). */
static int resolve(PGconn *c, const struct wc_config *cfg, char **pats,
                   int npat, struct wc_buf *payload, size_t *ret_n)
{
        PGresult *res = PQexec(c, tables_sql);
        const char **schemas = NULL, **tables = NULL;
        size_t n = 0;
        int r = 0;

        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                log_error("could not list the tables: %s",
                          PQresultErrorMessage(res));
                PQclear(res);
                return -EIO;
        }
        schemas = calloc((size_t)PQntuples(res) + 1, sizeof(*schemas));
        tables = calloc((size_t)PQntuples(res) + 1, sizeof(*tables));
        if (!schemas || !tables)
                r = -ENOMEM;
        for (int p = 0; p < npat && r == 0; p++) {
                size_t matched = 0, before = n;

                for (int i = 0; i < PQntuples(res) && r == 0; i++) {
                        const char *schema = PQgetvalue(res, i, 0);
                        const char *table = PQgetvalue(res, i, 1);
                        bool pk = PQgetvalue(res, i, 2)[0] == 't';
                        bool dup = false;

                        if (!wc_pattern_table_match(pats[p], schema, table))
                                continue;
                        matched++;
                        if (!wc_filter_table_pass(&cfg->filter, schema,
                                                  table)) {
                                if (wc_pattern_has_glob(pats[p]))
                                        continue;
                                log_error("table \"%s\".\"%s\" is not "
                                          "included by the filter of %s: "
                                          "walcastd does not stream it, so "
                                          "it does not snapshot it either",
                                          schema, table, cfg->path);
                                r = -EINVAL;
                                break;
                        }
                        if (!pk && !cfg->snapshot.keyless_whole) {
                                log_error("table \"%s\".\"%s\" has no "
                                          "primary key: it cannot be read "
                                          "in chunks; add one, or set "
                                          "snapshot.keyless: whole",
                                          schema, table);
                                r = -EINVAL;
                                break;
                        }
                        for (size_t j = 0; j < n && !dup; j++)
                                dup = strcmp(schemas[j], schema) == 0 &&
                                      strcmp(tables[j], table) == 0;
                        if (!dup) {
                                schemas[n] = schema;
                                tables[n++] = table;
                        }
                }
                if (r == 0 && !matched) {
                        log_error("no table matches \"%s\" in the database "
                                  "of source.dsn (a pattern is TABLE or "
                                  "SCHEMA.TABLE, globs allowed)",
                                  pats[p]);
                        r = -ENOENT;
                } else if (r == 0 && n == before && matched) {
                        log_error("every table \"%s\" matches is excluded "
                                  "by the filter of %s",
                                  pats[p], cfg->path);
                        r = -EINVAL;
                }
        }
        if (r == 0) {
                r = wc_snapshot_request_format(payload, request_id(), schemas,
                                               tables, n);
                for (size_t j = 0; j < n; j++)
                        printf("table: \"%s\".\"%s\"\n", schemas[j], tables[j]);
        }
        *ret_n = n;
        free(schemas);
        free(tables);
        PQclear(res);
        return r;
}

int wc_cmd_snapshot(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"slot", required_argument, NULL, 's'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL, *slot = NULL, *verb = NULL;
        struct wc_config *cfg;
        char err[1024];
        struct wc_buf payload;
        PGconn *c = NULL;
        size_t n = 0;
        int opt, r = 0;

        if (argc > 1 && (strcmp(argv[1], "status") == 0 ||
                         strcmp(argv[1], "cancel") == 0)) {
                verb = argv[1];
                argc--;
                argv++;
        }
        optind = 1;
        while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        config = optarg;
                        break;
                case 's':
                        slot = optarg;
                        break;
                case 'h':
                        printf("usage: walcast snapshot -c FILE PATTERN...\n"
                               "       walcast snapshot status|cancel -c "
                               "FILE\n");
                        return WC_EXIT_OK;
                default:
                        return WC_EXIT_CONFIG;
                }
        }
        if (!config) {
                log_error("missing -c FILE");
                return WC_EXIT_CONFIG;
        }
        if (verb && optind != argc) {
                log_error("unexpected argument \"%s\"", argv[optind]);
                return WC_EXIT_CONFIG;
        }
        if (!verb && optind == argc) {
                log_error("snapshot wants the tables to read: walcast "
                          "snapshot -c FILE PATTERN... (TABLE or "
                          "SCHEMA.TABLE, globs allowed)");
                return WC_EXIT_CONFIG;
        }
        cfg = wc_config_load(config, err, sizeof(err));
        if (!cfg) {
                log_error("%s", err);
                return WC_EXIT_CONFIG;
        }
        wc_add_config_secrets(cfg);
        if (!slot)
                slot = cfg->source.slot;
        c = connect_db(cfg);
        if (verb && strcmp(verb, "status") == 0) {
                wc_print_snapshot_status(cfg, slot, c);
                goto out;
        }
        if (!c) {
                r = -EIO;
                goto out;
        }
        wc_buf_init(&payload);
        if (verb) {
                r = wc_snapshot_cancel_format(&payload, request_id());
                if (r == 0)
                        r = emit(c, payload.data, "cancel");
        } else {
                r = resolve(c, cfg, argv + optind, argc - optind, &payload, &n);
                if (r == 0)
                        r = emit(c, payload.data, "snapshot request");
        }
        wc_buf_free(&payload);
out:
        PQfinish(c);
        wc_config_free(cfg);
        if (r == -ENOMEM)
                log_error("out of memory");
        return r == 0 ? WC_EXIT_OK : WC_EXIT_FAILURE;
}
