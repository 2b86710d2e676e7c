/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "stream/publication.h"
#include "stream/stream.h"

/* Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
#define PG_EPOCH_OFFSET_US (946684800LL * 1000000LL)

struct wc_stream {
        PGconn *conn;
        char *copybuf; /* last buffer from PQgetCopyData */
        struct wc_stream_info info;
        char server[300];
        char slot[64];
        char plugin[64]; /* the output plugin, for slots and messages */
        bool streaming;
        bool temporary;   /* the slot is TEMPORARY */
        int64_t heard_ms; /* monotonic: the last message from the server */
        wc_stream_notice_fn notice_fn;
        void *notice_userdata;
};

/* libpq's messages span lines ("...failed: FATAL:  ...\n\tIs the server
 * running"); a log line wants one line without the trailing newline. */
static void one_line(const char *in, char *out, size_t outlen)
{
        size_t j = 0;
        bool space = false;

        for (size_t i = 0; in && in[i] && j + 1 < outlen; i++) {
                char c = in[i];
                if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
                        space = j > 0;
                        continue;
                }
                if (space && j + 2 < outlen)
                        out[j++] = ' ';
                space = false;
                out[j++] = c;
        }
        out[j] = '\0';
}

static void notice_receiver(void *arg, const PGresult *res)
{
        struct wc_stream *s = arg;
        const char *sev, *msg;

        if (!s->notice_fn)
                return;
        sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        s->notice_fn(s->notice_userdata, sev ? sev : "NOTICE", msg ? msg : "");
}

struct wc_stream *wc_stream_new(void)
{
        return calloc(1, sizeof(struct wc_stream));
}

void wc_stream_free(struct wc_stream *s)
{
        if (!s)
                return;
        if (s->copybuf)
                PQfreemem(s->copybuf);
        PQfinish(s->conn);
        free(s);
}

void wc_stream_set_notice_handler(struct wc_stream *s, wc_stream_notice_fn fn,
                                  void *userdata)
{
        s->notice_fn = fn;
        s->notice_userdata = userdata;
}

const struct wc_stream_info *wc_stream_get_info(const struct wc_stream *s)
{
        return &s->info;
}

void wc_stream_wal_sizes(struct wc_stream *s, uint32_t *ret_block,
                         uint64_t *ret_segment)
{
        PGresult *res;

        *ret_block = 0;
        *ret_segment = 0;
        res = PQexec(s->conn,
                     "SELECT name, setting, unit FROM pg_catalog.pg_settings "
                     "WHERE name IN ('wal_block_size', 'wal_segment_size')");

        for (int i = 0; PQresultStatus(res) == PGRES_TUPLES_OK &&
                        i < PQntuples(res) && PQnfields(res) == 3;
             i++) {
                const char *unit = PQgetvalue(res, i, 2);
                char *end = NULL;
                unsigned long long v =
                    strtoull(PQgetvalue(res, i, 1), &end, 10);

                /* bytes since PostgreSQL 11, 8 kB pages before */
                if (!end || *end || !v)
                        continue;
                if (strcmp(unit, "8kB") == 0)
                        v *= 8192;
                else if (*unit && strcmp(unit, "B") != 0)
                        continue;
                if (strcmp(PQgetvalue(res, i, 0), "wal_block_size") == 0)
                        *ret_block = (uint32_t)v;
                else
                        *ret_segment = v;
        }
        PQclear(res);
}

int wc_stream_fd(const struct wc_stream *s)
{
        return s->conn ? PQsocket(s->conn) : -1;
}

const char *wc_stream_server(const struct wc_stream *s)
{
        return s->server;
}

int64_t wc_pg_time_from_unix(int64_t unix_us)
{
        return unix_us - PG_EPOCH_OFFSET_US;
}

static bool contains(const char *hay, const char *needle)
{
        return hay && strstr(hay, needle) != NULL;
}

/*
 * Turns a server error into the errno and message an operator can act on.
 * `what` says what walcast was doing ("could not create replication slot
 * \"walcast\"").
 */
static int server_error(struct wc_stream *s, const PGresult *res,
                        const char *what, char *errbuf, size_t errlen)
{
        char msg[1024], file[128];
        const char *primary = NULL, *state = NULL;
        const char *plugin = s->plugin[0] ? s->plugin : "the output plugin";

        if (res) {
                primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        }
        one_line(primary ? primary : PQerrorMessage(s->conn), msg, sizeof(msg));

        if (contains(msg, "may not be used as an output plugin"))
                return wc_fail(errbuf, errlen, -ENOPKG,
                               "%s: the server does not allow %s as an "
                               "output plugin (%s): add it to the superuser "
                               "setting output_plugin_libraries in "
                               "postgresql.conf, e.g. output_plugin_libraries "
                               "= 'pgoutput, test_decoding, %s', and "
                               "reload the server",
                               what, plugin, msg, plugin);
        snprintf(file, sizeof(file), "could not access file \"%s\"", plugin);
        if (contains(msg, file) ||
            (contains(msg, "could not load library") && contains(msg, plugin)))
                return wc_fail(errbuf, errlen, -ENOPKG,
                               "%s: %s is not installed on the server "
                               "(%s): install its package there, e.g. "
                               "postgresql-15-%s on Debian",
                               what, plugin, msg, plugin);
        if (contains(msg, "wal_level"))
                return wc_fail(errbuf, errlen, -ENOTSUP,
                               "%s: %s: set wal_level = logical in "
                               "postgresql.conf and restart the server",
                               what, msg);
        if (contains(msg, "is active for PID"))
                return wc_fail(errbuf, errlen, -EBUSY,
                               "%s: %s: another walcastd or client is reading "
                               "this slot; stop it or use another slot",
                               what, msg);
        if (contains(msg, "publication \"") && contains(msg, "does not exist"))
                return wc_fail(
                    errbuf, errlen, -ENOENT,
                    "%s: %s: pgoutput reads a publication as it was at each "
                    "change's position, so one created (or dropped) after "
                    "the slot's position is missing for the changes before "
                    "it; create the publication before the slot (drop the "
                    "slot and let walcast create both, after taking a new "
                    "snapshot of the data)",
                    what, msg);
        if (state && strcmp(state, "42704") == 0)
                return wc_fail(errbuf, errlen, -ENOENT, "%s: %s", what, msg);
        if (contains(msg, "can no longer get changes") ||
            contains(msg, "has been invalidated"))
                return wc_fail(errbuf, errlen, -ESTALE,
                               "%s: the slot was invalidated (%s): the server "
                               "removed WAL it still needed, so changes were "
                               "lost; recreate the slot with "
                               "`walcast slot drop` and `walcast slot create` "
                               "after taking a new snapshot of the data",
                               what, msg);
        if (PQstatus(s->conn) == CONNECTION_BAD)
                return wc_fail(errbuf, errlen, -EPIPE,
                               "%s: connection to %s lost: %s", what, s->server,
                               msg);
        return wc_fail(errbuf, errlen, -EIO, "%s: %s", what, msg);
}

/* Runs a command that must succeed with `expect`; *ret_res owned by the
 * caller on success. */
static int run(struct wc_stream *s, const char *sql, ExecStatusType expect,
               const char *what, PGresult **ret_res, char *errbuf,
               size_t errlen)
{
        PGresult *res = PQexec(s->conn, sql);
        int r;

        if (PQresultStatus(res) != expect) {
                r = server_error(s, res, what, errbuf, errlen);
                PQclear(res);
                return r;
        }
        if (ret_res)
                *ret_res = res;
        else
                PQclear(res);
        return 0;
}

static int classify_connect_error(struct wc_stream *s, char *errbuf,
                                  size_t errlen)
{
        char msg[1024];
        const char *user = PQuser(s->conn);

        one_line(PQerrorMessage(s->conn), msg, sizeof(msg));
        if (contains(msg, "authentication failed") ||
            contains(msg, "password is required") ||
            contains(msg, "no password supplied") ||
            contains(msg, "no pg_hba.conf entry"))
                return wc_fail(errbuf, errlen, -EACCES,
                               "could not connect to %s: authentication failed "
                               "for role \"%s\": %s",
                               s->server, user ? user : "", msg);
        if (contains(msg, "replication role") ||
            contains(msg, "permission denied to start WAL sender"))
                return wc_fail(errbuf, errlen, -EPERM,
                               "could not connect to %s: role \"%s\" lacks the "
                               "REPLICATION attribute (%s): run ALTER ROLE "
                               "\"%s\" REPLICATION as a superuser",
                               s->server, user ? user : "", msg,
                               user ? user : "");
        if (contains(msg, "Connection refused") ||
            contains(msg, "could not connect") ||
            contains(msg, "timeout expired") ||
            contains(msg, "could not translate host name") ||
            contains(msg, "No route to host") ||
            contains(msg, "Network is unreachable") ||
            contains(msg, "No such file or directory") ||
            contains(msg, "the database system is starting up") ||
            contains(msg, "the database system is shutting down"))
                return wc_fail(
                    errbuf, errlen, -EHOSTUNREACH,
                    "could not connect to %s: server unreachable: %s",
                    s->server, msg);
        return wc_fail(errbuf, errlen, -EIO, "could not connect to %s: %s",
                       s->server, msg);
}

/*
 * Every setting that shapes the text the output plugin writes, pinned on the
 * replication connection: options sent at connection start override the
 * server's, the database's and the role's (ALTER DATABASE/ROLE ... SET).
 * DateStyle ISO is also the only timestamp format the decoder reads, and
 * an empty search_path makes format_type() qualify every type outside
 * pg_catalog with its schema, so that tenants' same-named types differ
 * (README.md, "Server settings"; docs/file-format.md).
 */
static const char pinned_settings[] =
    "-c datestyle=ISO -c intervalstyle=postgres -c timezone=UTC "
    "-c extra_float_digits=3 -c bytea_output=hex -c lc_monetary=C "
    "-c search_path= -c quote_all_identifiers=off";

const char *wc_stream_pinned_settings(void)
{
        return pinned_settings;
}

/* TCP keepalives and a bound on unacknowledged data, for a network path
 * that drops packets without a word: the connection fails within about
 * a minute instead of the system's two hours (keepalives) or fifteen
 * minutes (retransmissions). */
static const char *const keepalive_defaults[][2] = {
    {"keepalives", "1"},           {"keepalives_idle", "30"},
    {"keepalives_interval", "10"}, {"keepalives_count", "3"},
    {"tcp_user_timeout", "60000"},
};

#define KEEPALIVE_DEFAULTS                                                     \
        (sizeof(keepalive_defaults) / sizeof(keepalive_defaults[0]))

/* Does this libpq know the connection keyword? */
static bool libpq_knows(const PQconninfoOption *defaults, const char *key)
{
        for (const PQconninfoOption *o = defaults; o && o->keyword; o++)
                if (strcmp(o->keyword, key) == 0)
                        return true;
        return false;
}

int wc_stream_keepalive_defaults(const char *dsn, const char **keys,
                                 const char **vals, size_t max)
{
        PQconninfoOption *parsed, *known;
        bool set[KEEPALIVE_DEFAULTS] = {false};
        bool service = false;
        size_t n = 0;

        parsed = PQconninfoParse(dsn, NULL);
        if (!parsed)
                return -EINVAL;
        for (PQconninfoOption *o = parsed; o->keyword; o++) {
                if (!o->val)
                        continue;
                if (strcmp(o->keyword, "service") == 0)
                        service = true;
                for (size_t i = 0; i < KEEPALIVE_DEFAULTS; i++)
                        if (strcmp(o->keyword, keepalive_defaults[i][0]) == 0)
                                set[i] = true;
        }
        PQconninfoFree(parsed);
        /* a service file's own settings apply only where none are given:
         * leave them to it (PGSERVICE names one too) */
        if (service || (getenv("PGSERVICE") && *getenv("PGSERVICE")))
                return 0;
        known = PQconndefaults();
        for (size_t i = 0; i < KEEPALIVE_DEFAULTS && n < max; i++) {
                if (set[i] || !libpq_knows(known, keepalive_defaults[i][0]))
                        continue;
                keys[n] = keepalive_defaults[i][0];
                vals[n] = keepalive_defaults[i][1];
                n++;
        }
        PQconninfoFree(known);
        return (int)n;
}

int wc_stream_connect(struct wc_stream *s, const char *dsn, char *errbuf,
                      size_t errlen)
{
        /* Later entries override earlier ones: the keepalive defaults and
         * connect_timeout are defaults the DSN may change,
         * replication=database is not, and the options carry the DSN's
         * own and then the pinned settings. */
        static const char *const fixed_keys[] = {
            "connect_timeout", "dbname", "replication",
            "fallback_application_name", "options"};
        const char *keys[KEEPALIVE_DEFAULTS + 6], *vals[KEEPALIVE_DEFAULTS + 6];
        PQconninfoOption *parsed;
        char *errmsg = NULL, *options = NULL;
        PGresult *res = NULL;
        const char *enc;
        const char *host, *port, *user_options = "";
        size_t nk;
        int r;

        if (s->conn)
                return wc_fail(errbuf, errlen, -EALREADY, "already connected");
        parsed = PQconninfoParse(dsn, &errmsg);
        if (!parsed) {
                r = wc_fail(errbuf, errlen, -EINVAL,
                            "source.dsn is not a valid connection string: %s",
                            errmsg ? errmsg : "out of memory");
                PQfreemem(errmsg);
                return r;
        }
        for (PQconninfoOption *o = parsed; o->keyword; o++)
                if (strcmp(o->keyword, "options") == 0 && o->val)
                        user_options = o->val;
        r = asprintf(&options, "%s%s%s", user_options, *user_options ? " " : "",
                     pinned_settings);
        PQconninfoFree(parsed);
        if (r < 0)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        r = wc_stream_keepalive_defaults(dsn, keys, vals, KEEPALIVE_DEFAULTS);
        nk = r > 0 ? (size_t)r : 0;
        for (size_t i = 0; i < 5; i++)
                keys[nk + i] = fixed_keys[i];
        vals[nk] = "10";
        vals[nk + 1] = dsn;
        vals[nk + 2] = "database";
        vals[nk + 3] = "walcast";
        vals[nk + 4] = options;
        keys[nk + 5] = vals[nk + 5] = NULL;
        s->conn = PQconnectdbParams(keys, vals, 1);
        free(options);
        if (!s->conn)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        host = PQhost(s->conn);
        port = PQport(s->conn);
        snprintf(s->server, sizeof(s->server), "%s%s%s",
                 host && *host ? host : "the server", port && *port ? ":" : "",
                 port && *port ? port : "");
        if (PQstatus(s->conn) != CONNECTION_OK)
                return classify_connect_error(s, errbuf, errlen);
        PQsetNoticeReceiver(s->conn, notice_receiver, s);

        r = run(s, "IDENTIFY_SYSTEM", PGRES_TUPLES_OK, "IDENTIFY_SYSTEM failed",
                &res, errbuf, errlen);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1 || PQnfields(res) < 4) {
                PQclear(res);
                return wc_fail(
                    errbuf, errlen, -EIO,
                    "IDENTIFY_SYSTEM on %s returned an unexpected "
                    "result: is this a PostgreSQL 10 or later server?",
                    s->server);
        }
        snprintf(s->info.system_id, sizeof(s->info.system_id), "%s",
                 PQgetvalue(res, 0, 0));
        s->info.timeline = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        (void)wc_lsn_parse(PQgetvalue(res, 0, 2), &s->info.xlogpos);
        if (PQgetisnull(res, 0, 3)) {
                PQclear(res);
                return wc_fail(errbuf, errlen, -EIO,
                               "the connection to %s has no database: add "
                               "dbname= to source.dsn",
                               s->server);
        }
        snprintf(s->info.dbname, sizeof(s->info.dbname), "%s",
                 PQgetvalue(res, 0, 3));
        PQclear(res);
        enc = PQparameterStatus(s->conn, "server_encoding");
        snprintf(s->info.encoding, sizeof(s->info.encoding), "%s",
                 enc ? enc : "");

        r = run(s, "SHOW wal_level", PGRES_TUPLES_OK,
                "could not read wal_level", &res, errbuf, errlen);
        if (r < 0)
                return r;
        if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "logical")) {
                r = wc_fail(errbuf, errlen, -ENOTSUP,
                            "wal_level is \"%s\" on %s, logical decoding needs "
                            "\"logical\": set wal_level = logical in "
                            "postgresql.conf and restart the server",
                            PQgetvalue(res, 0, 0), s->server);
        }
        PQclear(res);
        return r;
}

static void copy_field(char *dst, size_t n, const PGresult *res, int col)
{
        snprintf(dst, n, "%s",
                 PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

int wc_stream_slot_status(struct wc_stream *s, const char *slot,
                          struct wc_slot_status *ret_status, char *errbuf,
                          size_t errlen)
{
        struct wc_slot_status st = {0};
        char *lit, *sql;
        PGresult *res = NULL;
        int r;

        lit = PQescapeLiteral(s->conn, slot, strlen(slot));
        if (!lit)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        /* A walsender in database mode runs plain SQL too. */
        r = asprintf(&sql,
                     "SELECT plugin, slot_type, database, active_pid, "
                     "temporary, confirmed_flush_lsn, restart_lsn, "
                     "wal_status, pg_current_wal_lsn() "
                     "FROM pg_catalog.pg_replication_slots "
                     "WHERE slot_name = %s",
                     lit);
        PQfreemem(lit);
        if (r < 0)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        r = run(s, sql, PGRES_TUPLES_OK,
                "could not look up the replication slot", &res, errbuf, errlen);
        free(sql);
        if (r < 0)
                return r;
        if (PQntuples(res) == 1) {
                st.exists = true;
                copy_field(st.plugin, sizeof(st.plugin), res, 0);
                copy_field(st.slot_type, sizeof(st.slot_type), res, 1);
                copy_field(st.database, sizeof(st.database), res, 2);
                st.active_pid =
                    PQgetisnull(res, 0, 3) ? 0 : atoi(PQgetvalue(res, 0, 3));
                st.temporary = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
                (void)wc_lsn_parse(PQgetvalue(res, 0, 5), &st.confirmed_flush);
                (void)wc_lsn_parse(PQgetvalue(res, 0, 6), &st.restart_lsn);
                copy_field(st.wal_status, sizeof(st.wal_status), res, 7);
                (void)wc_lsn_parse(PQgetvalue(res, 0, 8), &st.current_wal);
        }
        PQclear(res);
        *ret_status = st;
        return 0;
}

int wc_stream_slot_create(struct wc_stream *s, const char *slot,
                          const char *plugin, bool temporary, char *errbuf,
                          size_t errlen)
{
        char sql[256], what[160];

        if (plugin != s->plugin)
                snprintf(s->plugin, sizeof(s->plugin), "%s", plugin);
        snprintf(sql, sizeof(sql),
                 "CREATE_REPLICATION_SLOT \"%s\" %sLOGICAL %s "
                 "NOEXPORT_SNAPSHOT",
                 slot, temporary ? "TEMPORARY " : "", s->plugin);
        snprintf(what, sizeof(what), "could not create replication slot \"%s\"",
                 slot);
        return run(s, sql, PGRES_TUPLES_OK, what, NULL, errbuf, errlen);
}

int wc_stream_slot_drop(struct wc_stream *s, const char *slot, char *errbuf,
                        size_t errlen)
{
        char sql[128], what[160];

        snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT \"%s\"", slot);
        snprintf(what, sizeof(what), "could not drop replication slot \"%s\"",
                 slot);
        return run(s, sql, PGRES_COMMAND_OK, what, NULL, errbuf, errlen);
}

/* Is an existing slot one walcast can read? */
static int check_slot(struct wc_stream *s, const char *slot,
                      const struct wc_slot_status *st, char *errbuf,
                      size_t errlen)
{
        if (strcmp(st->slot_type, "logical") != 0)
                return wc_fail(
                    errbuf, errlen, -EEXIST,
                    "replication slot \"%s\" is a %s slot, walcast "
                    "needs a logical one: choose another source.slot",
                    slot, st->slot_type);
        if (strcmp(st->plugin, s->plugin) != 0)
                return wc_fail(errbuf, errlen, -EEXIST,
                               "replication slot \"%s\" uses the output plugin "
                               "\"%s\", walcast is set to read %s "
                               "(source.decoder): set source.decoder to the "
                               "slot's plugin, or choose another source.slot",
                               slot, st->plugin, s->plugin);
        if (strcmp(st->database, s->info.dbname) != 0)
                return wc_fail(
                    errbuf, errlen, -EEXIST,
                    "replication slot \"%s\" belongs to database "
                    "\"%s\", not \"%s\": fix dbname in source.dsn or "
                    "choose another source.slot",
                    slot, st->database, s->info.dbname);
        if (strcmp(st->wal_status, "lost") == 0)
                return wc_fail(
                    errbuf, errlen, -ESTALE,
                    "replication slot \"%s\" was invalidated "
                    "(wal_status lost): the server removed WAL it "
                    "still needed, so changes were lost; drop and "
                    "recreate the slot (walcast slot drop, walcast "
                    "slot create) after taking a new snapshot of the "
                    "data",
                    slot);
        if (st->active_pid != 0)
                return wc_fail(errbuf, errlen, -EBUSY,
                               "replication slot \"%s\" is active for PID %d: "
                               "another walcastd or client is reading it; stop "
                               "it or use another slot",
                               slot, st->active_pid);
        return 0;
}

int wc_stream_publication(struct wc_stream *s,
                          const struct wc_stream_config *cfg, char *errbuf,
                          size_t errlen)
{
        s->info.server_version = PQserverVersion(s->conn);
        if (!cfg->publication)
                return 0;
        return wc_publication_ensure(
            s->conn, cfg->publication, cfg->create_publication,
            cfg->publication_schemas, cfg->n_publication_schemas,
            &s->info.publication_created, errbuf, errlen);
}

int wc_stream_open(struct wc_stream *s, const struct wc_stream_config *cfg,
                   char *errbuf, size_t errlen)
{
        struct wc_slot_status st;
        int r;

        snprintf(s->slot, sizeof(s->slot), "%s", cfg->slot);
        snprintf(s->plugin, sizeof(s->plugin), "%s", cfg->plugin);
        s->temporary = cfg->temporary;
        r = wc_stream_connect(s, cfg->dsn, errbuf, errlen);
        if (r < 0)
                return r;
        /* before the slot: pgoutput needs it older than the slot */
        r = wc_stream_publication(s, cfg, errbuf, errlen);
        if (r < 0)
                return r;
        r = wc_stream_slot_status(s, cfg->slot, &st, errbuf, errlen);
        if (r < 0)
                return r;
        if (st.exists) {
                r = check_slot(s, cfg->slot, &st, errbuf, errlen);
                if (r < 0)
                        return r;
                s->info.slot_confirmed = st.confirmed_flush;
                return 0;
        }
        if (!cfg->create_slot && !cfg->temporary)
                return wc_fail(
                    errbuf, errlen, -ENOENT,
                    "replication slot \"%s\" does not exist on %s and "
                    "source.create_slot is false: create it with "
                    "`walcast slot create`, or set create_slot: true",
                    cfg->slot, s->server);
        r = wc_stream_slot_create(s, cfg->slot, cfg->plugin, cfg->temporary,
                                  errbuf, errlen);
        if (r < 0)
                return r;
        s->info.slot_created = true;
        r = wc_stream_slot_status(s, cfg->slot, &st, errbuf, errlen);
        if (r < 0)
                return r;
        s->info.slot_confirmed = st.confirmed_flush;
        return 0;
}

/* Appends `"key" 'value'` to the option list of START_REPLICATION. */
static int append_option(struct wc_buf *sql, const char *k, const char *v)
{
        int r = 0;

        if (sql->data[sql->len - 1] != '(')
                r = wc_buf_append_str(sql, ", ");
        if (!r)
                r = wc_buf_printf(sql, "\"%s\" '", k);
        for (const char *q = v; *q && !r; q++)
                r = *q == '\'' ? wc_buf_append_str(sql, "''")
                               : wc_buf_append_char(sql, *q);
        if (!r)
                r = wc_buf_append_char(sql, '\'');
        return r;
}

/* START_REPLICATION with `options` and the pairs of `optional` whose bit
 * in `refused` is clear. */
static int start_once(struct wc_stream *s, wc_lsn start,
                      const char *const *options, const char *const *optional,
                      unsigned refused, char *errbuf, size_t errlen)
{
        char lsn[WC_LSN_STRLEN], what[160];
        struct wc_buf sql;
        PGresult *res;
        int r;

        wc_buf_init(&sql);
        r = wc_buf_printf(&sql, "START_REPLICATION SLOT \"%s\" LOGICAL %s (",
                          s->slot, wc_lsn_format(start, lsn));
        for (size_t i = 0; options && options[i] && !r; i += 2)
                r = append_option(&sql, options[i], options[i + 1]);
        for (size_t i = 0; optional && optional[i] && !r; i += 2)
                if (!(refused & 1u << (i / 2)))
                        r = append_option(&sql, optional[i], optional[i + 1]);
        if (!r)
                r = wc_buf_append_char(&sql, ')');
        if (r < 0) {
                r = wc_fail(errbuf, errlen, r, "out of memory");
                goto err_free_sql;
        }

        res = PQexec(s->conn, sql.data);
        if (PQresultStatus(res) != PGRES_COPY_BOTH) {
                snprintf(what, sizeof(what),
                         "could not start replication on slot \"%s\"", s->slot);
                r = server_error(s, res, what, errbuf, errlen);
        }
        PQclear(res);
err_free_sql:
        wc_buf_free(&sql);
        return r;
}

static int64_t mono_ms(void);

/* The optional pair the server's error names and that was sent, or -1. */
static int refused_option(const char *const *optional, unsigned refused,
                          const char *errbuf)
{
        for (size_t i = 0; optional && optional[i] && i / 2 < 32; i += 2)
                if (!(refused & 1u << (i / 2)) && strstr(errbuf, optional[i]))
                        return (int)(i / 2);
        return -1;
}

int wc_stream_start(struct wc_stream *s, wc_lsn start,
                    const char *const *options, const char *const *optional,
                    char *errbuf, size_t errlen)
{
        unsigned refused = 0;
        int r, k;

        r = start_once(s, start, options, optional, refused, errbuf, errlen);
        while (r == -EIO &&
               (k = refused_option(optional, refused, errbuf)) >= 0) {
                /* An older plugin: the caller warns about what is lost.
                 * The failed command dropped a temporary slot with it. */
                refused |= 1u << k;
                r = 0;
                if (s->temporary)
                        r = wc_stream_slot_create(s, s->slot, s->plugin, true,
                                                  errbuf, errlen);
                if (r == 0)
                        r = start_once(s, start, options, optional, refused,
                                       errbuf, errlen);
        }
        s->info.optional_refused = refused;
        if (r < 0)
                return r;
        if (PQsetnonblocking(s->conn, 1) != 0)
                return wc_fail(errbuf, errlen, -EIO,
                               "could not make the connection non-blocking");
        s->streaming = true;
        s->heard_ms = mono_ms();
        return 0;
}

static uint64_t be64(const char *p)
{
        const unsigned char *u = (const unsigned char *)p;
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = (v << 8) | u[i];
        return v;
}

static void put_be64(char *p, uint64_t v)
{
        for (int i = 7; i >= 0; i--) {
                p[i] = (char)(v & 0xff);
                v >>= 8;
        }
}

/* The copy ended: collect the final result to say why. */
static int stream_ended(struct wc_stream *s, char *errbuf, size_t errlen)
{
        PGresult *res;
        int r = wc_fail(errbuf, errlen, -ECONNRESET,
                        "the server ended the replication stream");

        s->streaming = false;
        while ((res = PQgetResult(s->conn)) != NULL) {
                if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
                        char what[160];
                        snprintf(what, sizeof(what),
                                 "replication on slot \"%s\" stopped", s->slot);
                        r = server_error(s, res, what, errbuf, errlen);
                        if (r == -EIO)
                                r = -ECONNRESET;
                }
                PQclear(res);
        }
        return r;
}

int wc_stream_read(struct wc_stream *s, struct wc_stream_msg *ret_msg,
                   char *errbuf, size_t errlen)
{
        char msg[512];
        char *buf = NULL;
        int n;

        if (s->copybuf) {
                PQfreemem(s->copybuf);
                s->copybuf = NULL;
        }
        n = PQgetCopyData(s->conn, &buf, 1);
        if (n == 0) {
                if (!PQconsumeInput(s->conn)) {
                        one_line(PQerrorMessage(s->conn), msg, sizeof(msg));
                        return wc_fail(errbuf, errlen, -EPIPE,
                                       "connection to %s lost: %s", s->server,
                                       msg);
                }
                n = PQgetCopyData(s->conn, &buf, 1);
                if (n == 0)
                        return 0;
                /* heard now; the messages libpq holds already were heard
                 * when they were read, so the clock is read once a read
                 * of the socket, not once a message */
                s->heard_ms = mono_ms();
        }
        if (n == -1)
                return stream_ended(s, errbuf, errlen);
        if (n < 0) {
                one_line(PQerrorMessage(s->conn), msg, sizeof(msg));
                return wc_fail(errbuf, errlen, -EPIPE,
                               "connection to %s lost: %s", s->server, msg);
        }
        s->copybuf = buf;

        switch (buf[0]) {
        case 'w':
                if (n < 25)
                        break;
                *ret_msg = (struct wc_stream_msg){
                    .kind = WC_MSG_XLOGDATA,
                    .data_start = be64(buf + 1),
                    .wal_end = be64(buf + 9),
                    .send_time = (int64_t)be64(buf + 17),
                    .data = buf + 25,
                    .len = (size_t)n - 25,
                };
                return 1;
        case 'k':
                if (n < 18)
                        break;
                *ret_msg = (struct wc_stream_msg){
                    .kind = WC_MSG_KEEPALIVE,
                    .wal_end = be64(buf + 1),
                    .send_time = (int64_t)be64(buf + 9),
                    .reply_requested = buf[17] != 0,
                };
                return 1;
        default:
                return wc_fail(errbuf, errlen, -EBADMSG,
                               "unexpected replication message type 0x%02x "
                               "(%d bytes) from %s",
                               (unsigned char)buf[0], n, s->server);
        }
        return wc_fail(errbuf, errlen, -EBADMSG,
                       "truncated replication message '%c' (%d bytes) from %s",
                       buf[0], n, s->server);
}

static int send_status(struct wc_stream *s, wc_lsn flush, bool reply,
                       char *errbuf, size_t errlen);

int wc_stream_send_status(struct wc_stream *s, wc_lsn flush, char *errbuf,
                          size_t errlen)
{
        return send_status(s, flush, false, errbuf, errlen);
}

int wc_stream_request_reply(struct wc_stream *s, wc_lsn flush, char *errbuf,
                            size_t errlen)
{
        return send_status(s, flush, true, errbuf, errlen);
}

int64_t wc_stream_heard_ms(const struct wc_stream *s)
{
        return s->heard_ms;
}

int64_t wc_stream_sender_timeout_ms(struct wc_stream *s)
{
        PGresult *res = PQexec(s->conn, "SELECT setting, unit FROM "
                                        "pg_catalog.pg_settings WHERE name = "
                                        "'wal_sender_timeout'");
        int64_t ms = -1;

        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            PQnfields(res) == 2 && strcmp(PQgetvalue(res, 0, 1), "ms") == 0) {
                char *end = NULL;
                long long v = strtoll(PQgetvalue(res, 0, 0), &end, 10);

                if (end && !*end && v >= 0)
                        ms = v;
        }
        PQclear(res);
        return ms;
}

static int send_status(struct wc_stream *s, wc_lsn flush, bool reply,
                       char *errbuf, size_t errlen)
{
        char msg[34];
        struct timespec ts;
        int64_t now;
        char err[512];

        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
        msg[0] = 'r';
        put_be64(msg + 1, flush);  /* written */
        put_be64(msg + 9, flush);  /* flushed */
        put_be64(msg + 17, flush); /* applied */
        put_be64(msg + 25, (uint64_t)wc_pg_time_from_unix(now));
        msg[33] = reply ? 1 : 0; /* the server answers with a keepalive */
        if (PQputCopyData(s->conn, msg, sizeof(msg)) != 1) {
                one_line(PQerrorMessage(s->conn), err, sizeof(err));
                return wc_fail(errbuf, errlen, -EPIPE,
                               "could not send status to %s: %s", s->server,
                               err);
        }
        return 0;
}

int wc_stream_flush(struct wc_stream *s, char *errbuf, size_t errlen)
{
        char err[512];
        int r = PQflush(s->conn);

        if (r < 0) {
                one_line(PQerrorMessage(s->conn), err, sizeof(err));
                return wc_fail(errbuf, errlen, -EPIPE,
                               "could not send to %s: %s", s->server, err);
        }
        return r;
}

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wc_stream_stop(struct wc_stream *s, int timeout_ms, char *errbuf,
                   size_t errlen)
{
        int64_t deadline = mono_ms() + timeout_ms;
        char err[512];
        PGresult *res;

        if (!s->streaming)
                return 0;
        if (PQputCopyEnd(s->conn, NULL) != 1) {
                one_line(PQerrorMessage(s->conn), err, sizeof(err));
                return wc_fail(errbuf, errlen, -EPIPE,
                               "could not end the copy with %s: %s", s->server,
                               err);
        }
        for (;;) {
                struct pollfd pfd = {.fd = PQsocket(s->conn)};
                char *buf = NULL;
                int64_t left = deadline - mono_ms();
                int f = PQflush(s->conn);
                int n;

                if (f < 0)
                        break;
                n = PQgetCopyData(s->conn, &buf, 1);
                if (buf)
                        PQfreemem(buf); /* not confirmed: replayed later */
                if (n > 0)
                        continue;
                if (n < 0)
                        break;
                if (left <= 0)
                        return wc_fail(errbuf, errlen, -ETIMEDOUT,
                                       "the server did not end the stream "
                                       "within %d ms",
                                       timeout_ms);
                pfd.events = POLLIN | (f == 1 ? POLLOUT : 0);
                if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
                        break;
                if (!PQconsumeInput(s->conn))
                        break;
        }
        while ((res = PQgetResult(s->conn)) != NULL)
                PQclear(res);
        s->streaming = false;
        return 0;
}

const char *wc_pq_error_line(const struct pg_conn *conn)
{
        static char msg[512];
        const char *m = conn ? PQerrorMessage(conn) : "out of memory";
        size_t n = 0;

        for (; *m && n < sizeof(msg) - 1; m++)
                msg[n++] = *m == '\n' ? ' ' : *m;
        while (n > 0 && msg[n - 1] == ' ')
                n--;
        msg[n] = '\0';
        return n ? msg : "unknown error";
}
