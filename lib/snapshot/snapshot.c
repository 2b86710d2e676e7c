/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "snapshot/copytext.h"
#include "snapshot/guard.h"
#include "snapshot/snapshot.h"
#include "stream/stream.h"

enum conn_state {
        C_NONE,       /* no connection */
        C_CONNECTING, /* PQconnectPoll() until OK */
        C_READY,      /* connected, a query to send (or none) */
        C_SENDING,    /* PQflush() until the query is out */
        C_WAITING,    /* reading its results */
};

/* What the snapshot does next. */
enum phase {
        P_IDLE,     /* nothing to do */
        P_LIST,     /* list the included tables */
        P_DESCRIBE, /* the table's columns and key */
        P_LOW,      /* write the low watermark and read the chunk */
        P_HIGH,     /* write the high watermark */
        P_WAIT,     /* the stream has to reach the high watermark */
        /* the same for the next chunk of the table, read ahead while the
         * running one waits in P_WAIT */
        P_AHEAD_LOW,
        P_AHEAD_HIGH,
        P_AHEAD_DONE, /* both wait for the stream */
};

/* The running chunk waits for the stream to reach its high watermark,
 * whatever the connection does meanwhile. */
static bool waiting(enum phase p)
{
        return p == P_WAIT || p == P_AHEAD_LOW || p == P_AHEAD_HIGH ||
               p == P_AHEAD_DONE;
}

/* The connection has nothing to do. */
static bool idle(enum phase p)
{
        return p == P_IDLE || p == P_WAIT || p == P_AHEAD_DONE;
}

/* A table of the snapshot: what is confirmed of it (durable), and what
 * this run delivered of it. */
struct table {
        char *schema, *table;
        /* confirmed: done, or the last key of it delivered (NUL-separated
         * output texts; none before its first chunk) and its rows */
        bool done;
        bool has_key;
        struct wc_buf key;
        uint64_t rows;
        /* this run: a worker reads it; its last chunk was delivered; the
         * rows delivered */
        bool taken;
        bool finished;
        uint64_t lrows;
};

/* Where a worker is in its table: the last key delivered, and the rows
 * delivered of the table. */
struct progress {
        size_t table;
        struct wc_buf key;
        bool has_key;
        uint64_t rows;
};

/* A chunk delivered, not yet confirmed: its table's progress after it. */
struct pending {
        wc_lsn end;
        struct progress at;
        bool done; /* the table's last chunk */
};

/* A chunk read: its number (in its watermarks), its rows, the last key
 * it read, the snapshot its read returned. */
struct rd {
        uint64_t chunk;
        bool window; /* its low watermark was read */
        struct wc_snap_chunk *k;
        size_t rows; /* rows the read returned */
        struct wc_buf next;
        struct wc_buf snap; /* the read's pg_current_snapshot() */
        bool have_snap;
};

#define NO_TABLE SIZE_MAX

/* The name of the read's snapshot in its result. */
#define SNAPSHOT_COLUMN "walcast_snapshot"

/* One connection (snapshot.workers of them), reading one table at a time
 * with its own chunks and watermarks. */
struct worker {
        struct wc_snapshot *s;
        PGconn *conn;
        enum conn_state cs;
        short events;
        enum phase phase; /* P_IDLE: no table */
        /* the phase whose query is on the connection: the stream may
         * reach a high watermark before its statement's result is read,
         * and the snapshot moves on meanwhile */
        enum phase sent;
        /* the transactions the stream read against the chunk read's
         * snapshot */
        struct wc_snap_guard guard;
        char error[512]; /* the first error result of the running query */
        PGresult *res;   /* the last result of the running query */
        bool copying;    /* the chunk's COPY is sending rows */
        /* a row's fields, for the chunk */
        const char **texts;
        size_t *lens;
        bool *nulls;
        uint32_t nfields;
        /* the running chunk, and the next one of its table read ahead
         * while the stream goes to the running one's high watermark */
        struct rd c, a;
        bool no_ahead; /* reading ahead failed: not for this chunk */
        /* the running chunk's high watermark goes first in the query that
         * reads ahead (one round trip, the server never idle between) */
        bool high_first;
        struct progress cur; /* its table (NO_TABLE none), delivered */
        struct wc_buf scratch;
};

struct wc_snapshot {
        char *dsn, *options;
        size_t chunk_size;
        bool numbers_as_strings;
        bool keyless_whole;
        bool (*include)(void *ud, const char *schema, const char *table);
        void *ud;

        struct worker *w;
        size_t nw;
        struct worker *deliver; /* whose chunk the stream delivers */
        bool listing;           /* the included tables are to be listed */

        struct table *tables;
        size_t ntables;

        uint64_t id;  /* this process's watermarks */
        uint64_t seq; /* the last chunk number given */
        uint64_t rereads;
        uint64_t test_torn_at, highs; /* wc_snapshot_config.test_torn_at */
        bool changed; /* the confirmed progress moved since the last save */
        /* ids of the requests taken (a replay of the stream reads them
         * again) */
        uint64_t *requests;
        size_t nrequests;
        char notice[512];     /* for the caller's log: a request refused */
        struct pending *pend; /* delivered, not yet confirmed */
        size_t npend, cappend;
        struct wc_buf scratch;
};

static void progress_free(struct progress *p)
{
        wc_buf_free(&p->key);
}

static int progress_copy(struct progress *to, const struct progress *from)
{
        to->table = from->table;
        to->has_key = from->has_key;
        to->rows = from->rows;
        wc_buf_reset(&to->key);
        return from->key.len
                   ? wc_buf_append(&to->key, from->key.data, from->key.len)
                   : 0;
}

static uint64_t random_id(void)
{
        struct timespec ts;
        uint64_t x;

        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
            ((uint64_t)getpid() << 32);
        /* splitmix64 */
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

/* ---- hex, for names and keys in the progress file and requests ---- */

static int put_hex(struct wc_buf *b, const char *p, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        int r = wc_buf_reserve(b, 2 * n);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                b->data[b->len++] = hex[(unsigned char)p[i] >> 4];
                b->data[b->len++] = hex[(unsigned char)p[i] & 15];
        }
        b->data[b->len] = '\0';
        return 0;
}

/* Decodes n hex digits into a new NUL-terminated string (*ret_len bytes). */
static char *get_hex(const char *p, size_t n, size_t *ret_len)
{
        char *out;

        if (n % 2)
                return NULL;
        out = malloc(n / 2 + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 2) {
                int hi = wc_hex_digit(p[i]), lo = wc_hex_digit(p[i + 1]);
                if (hi < 0 || lo < 0) {
                        free(out);
                        return NULL;
                }
                out[i / 2] = (char)(hi << 4 | lo);
        }
        out[n / 2] = '\0';
        if (ret_len)
                *ret_len = n / 2;
        return out;
}

struct wc_snapshot *wc_snapshot_new(const struct wc_snapshot_config *c)
{
        struct wc_snapshot *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->dsn = strdup(c->dsn);
        s->options = strdup(c->options ? c->options : "");
        s->nw = c->workers ? c->workers : 1;
        s->w = calloc(s->nw, sizeof(*s->w));
        if (!s->dsn || !s->options || !s->w) {
                free(s->w);
                free(s->dsn);
                free(s->options);
                free(s);
                return NULL;
        }
        for (size_t i = 0; i < s->nw; i++) {
                s->w[i].s = s;
                s->w[i].cur.table = NO_TABLE;
        }
        s->chunk_size = c->chunk_size ? c->chunk_size : 10000;
        s->numbers_as_strings = c->numbers_as_strings;
        s->keyless_whole = c->keyless_whole;
        s->include = c->include;
        s->ud = c->ud;
        s->id = random_id();
        s->test_torn_at = c->test_torn_at;
        return s;
}

static void disconnect(struct worker *w)
{
        w->copying = false;
        PQclear(w->res);
        w->res = NULL;
        PQfinish(w->conn);
        w->conn = NULL;
        w->cs = C_NONE;
}

static void free_tables(struct wc_snapshot *s)
{
        free(s->requests);
        s->requests = NULL;
        s->nrequests = 0;
        for (size_t i = 0; i < s->ntables; i++) {
                free(s->tables[i].schema);
                free(s->tables[i].table);
                wc_buf_free(&s->tables[i].key);
        }
        free(s->tables);
        s->tables = NULL;
        s->ntables = 0;
}

static void clear_pending(struct wc_snapshot *s)
{
        for (size_t i = 0; i < s->npend; i++)
                progress_free(&s->pend[i].at);
        s->npend = 0;
}

static void rd_free(struct rd *d)
{
        wc_snap_chunk_free(d->k);
        wc_buf_free(&d->next);
        wc_buf_free(&d->snap);
        *d = (struct rd){0};
}

/* Empties a chunk read, keeping its buffers. */
static void rd_clear(struct rd *d)
{
        if (d->k)
                wc_snap_chunk_clear(d->k);
        d->window = false;
        d->rows = 0;
        d->have_snap = false;
        wc_buf_reset(&d->next);
}

/* No chunk of the table any more (or of no table). */
static void drop_chunks(struct worker *w)
{
        rd_free(&w->c);
        rd_free(&w->a);
        w->no_ahead = false;
        w->high_first = false;
}

/* The worker gives its table up (it stays as the snapshot has it). */
static void worker_stop(struct worker *w)
{
        disconnect(w);
        drop_chunks(w);
        w->phase = P_IDLE;
        w->sent = P_IDLE;
        w->cur.table = NO_TABLE;
        w->cur.has_key = false;
        wc_buf_reset(&w->cur.key);
        w->cur.rows = 0;
}

void wc_snapshot_free(struct wc_snapshot *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->nw; i++) {
                struct worker *w = &s->w[i];

                worker_stop(w);
                wc_snap_guard_free(&w->guard);
                progress_free(&w->cur);
                wc_buf_free(&w->scratch);
                free(w->texts);
                free(w->lens);
                free(w->nulls);
        }
        free(s->w);
        free_tables(s);
        clear_pending(s);
        free(s->pend);
        wc_buf_free(&s->scratch);
        free(s->dsn);
        free(s->options);
        free(s);
}

/* Idle workers take the next tables nobody reads, from their confirmed
 * key on; the first worker lists the tables first when that is owed. */
static void assign(struct wc_snapshot *s)
{
        size_t next = 0;

        if (s->listing) {
                if (s->w[0].phase == P_IDLE)
                        s->w[0].phase = P_LIST;
                return;
        }
        for (size_t i = 0; i < s->nw; i++) {
                struct worker *w = &s->w[i];
                struct table *t;

                if (w->phase != P_IDLE)
                        continue;
                while (next < s->ntables &&
                       (s->tables[next].taken || s->tables[next].finished))
                        next++;
                if (next == s->ntables)
                        return;
                t = &s->tables[next];
                t->taken = true;
                w->cur.table = next;
                w->cur.has_key = t->has_key;
                w->cur.rows = t->lrows;
                wc_buf_reset(&w->cur.key);
                if (t->has_key &&
                    wc_buf_append(&w->cur.key, t->key.data, t->key.len) < 0) {
                        /* read it from its start: rows twice, none lost */
                        w->cur.has_key = false;
                }
                w->phase = P_DESCRIBE;
        }
}

/* Every worker stops; the tables are as confirmed. */
static void restart_tables(struct wc_snapshot *s)
{
        for (size_t i = 0; i < s->nw; i++)
                worker_stop(&s->w[i]);
        s->deliver = NULL;
        clear_pending(s);
        for (size_t i = 0; i < s->ntables; i++) {
                struct table *t = &s->tables[i];

                t->taken = false;
                t->finished = t->done;
                t->lrows = t->rows;
        }
}

int wc_snapshot_start_all(struct wc_snapshot *s)
{
        restart_tables(s);
        free_tables(s);
        s->listing = true;
        s->changed = true;
        assign(s);
        return 0;
}

bool wc_snapshot_running(const struct wc_snapshot *s)
{
        if (s->listing || s->npend)
                return true;
        for (size_t i = 0; i < s->ntables; i++)
                if (!s->tables[i].finished)
                        return true;
        return false;
}

/* ---- the connection ---- */

static int failed(struct worker *w, char *errbuf, size_t errlen,
                  const char *what, const char *msg)
{
        wc_errorf(errbuf, errlen, "snapshot: %s: %s", what, msg);
        disconnect(w);
        return -EIO;
}

static void ignore_notice(void *arg, const char *message)
{
        (void)arg;
        (void)message;
}

static int connect_start(struct worker *w, char *errbuf, size_t errlen)
{
        struct wc_snapshot *s = w->s;
        const char *keys[12], *values[12];
        PQconninfoOption *parsed;
        char *options = NULL;
        const char *user_options = "";
        int n;

        parsed = PQconninfoParse(s->dsn, NULL);
        if (!parsed)
                return failed(w, errbuf, errlen, "connecting",
                              "source.dsn is not a valid connection string");
        for (PQconninfoOption *o = parsed; o->keyword; o++)
                if (strcmp(o->keyword, "options") == 0 && o->val)
                        user_options = o->val;
        /* the DSN's own options, then the stream's pinned settings */
        if (asprintf(&options, "%s%s%s -c synchronous_commit=on", user_options,
                     *user_options ? " " : "", s->options) < 0)
                options = NULL;
        PQconninfoFree(parsed);
        if (!options)
                return failed(w, errbuf, errlen, "connecting", "out of memory");
        n = wc_stream_keepalive_defaults(s->dsn, keys, values, 5);
        if (n < 0)
                n = 0;
        keys[n] = "dbname";
        values[n] = s->dsn;
        keys[n + 1] = "fallback_application_name";
        values[n + 1] = "walcast-snapshot";
        keys[n + 2] = "options";
        values[n + 2] = options;
        keys[n + 3] = values[n + 3] = NULL;
        w->conn = PQconnectStartParams(keys, values, 1);
        free(options);
        if (!w->conn || PQstatus(w->conn) == CONNECTION_BAD)
                return failed(w, errbuf, errlen, "connecting",
                              wc_pq_error_line(w->conn));
        PQsetNoticeProcessor(w->conn, ignore_notice, NULL);
        w->cs = C_CONNECTING;
        w->events = POLLOUT;
        return 0;
}

size_t wc_snapshot_workers(const struct wc_snapshot *s)
{
        return s->nw;
}

bool wc_snapshot_needs_step(const struct wc_snapshot *s, size_t i)
{
        return i < s->nw && !idle(s->w[i].phase) && !s->w[i].conn;
}

int wc_snapshot_pollfd(const struct wc_snapshot *s, size_t i, short *ret_events)
{
        const struct worker *w;

        if (i >= s->nw || idle(s->w[i].phase))
                return -1;
        w = &s->w[i];
        if (!w->conn || w->cs == C_READY) {
                /* work to start: a socket that is writable wakes the loop
                 * at once (no connection: the caller steps on its own) */
                if (!w->conn)
                        return -1;
                *ret_events = POLLOUT;
                return PQsocket(w->conn);
        }
        *ret_events = w->events;
        return PQsocket(w->conn);
}

/* Sends sql, with its n parameters (none: as a simple query, which may
 * hold several statements). */
static int send_sql(struct worker *w, const char *sql, int n,
                    const char *const *params, char *errbuf, size_t errlen)
{
        w->error[0] = '\0';
        PQclear(w->res);
        w->res = NULL;
        if (PQsetnonblocking(w->conn, 1) < 0 ||
            !(n ? PQsendQueryParams(w->conn, sql, n, NULL, params, NULL, NULL,
                                    0)
                : PQsendQuery(w->conn, sql)))
                return failed(w, errbuf, errlen, "sending a query",
                              wc_pq_error_line(w->conn));
        w->cs = C_SENDING;
        w->events = POLLOUT;
        return 0;
}

static const char list_sql[] =
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
    "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
    "ORDER BY 1, 2";

/* Columns in table order; the position of each in the primary key. */
static const char describe_sql[] =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "a.atttypid, coalesce((SELECT k.ord FROM pg_catalog.pg_index i, "
    "unnest(i.indkey) WITH ORDINALITY k(att, ord) WHERE i.indrelid = c.oid "
    "AND i.indisprimary AND k.att = a.attnum), 0) "
    "FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
    "AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum";

/* text quoted by libpq as an identifier or a literal, appended */
static int append_quoted(struct wc_buf *b, char *q)
{
        int r;

        if (!q)
                return -ENOMEM;
        r = wc_buf_append_str(b, q);
        PQfreemem(q);
        return r;
}

static int append_ident(struct worker *w, struct wc_buf *b, const char *name)
{
        return append_quoted(b,
                             PQescapeIdentifier(w->conn, name, strlen(name)));
}

static int append_literal(struct worker *w, struct wc_buf *b, const char *text)
{
        return append_quoted(b, PQescapeLiteral(w->conn, text, strlen(text)));
}

/*
 * "SELECT pg_logical_emit_message(...)" of a watermark, appended.  The
 * stream reads only flushed WAL, and a non-transactional message alone is
 * flushed by the WAL writer, up to wal_writer_delay later: a high
 * watermark's statement takes a transaction id, so that its commit
 * flushes the WAL (synchronous_commit is on for this connection).  The
 * empty transaction is not decoded.
 */
static int append_mark(struct worker *w, struct wc_buf *q, uint64_t chunk,
                       bool high)
{
        struct wc_snap_mark m = {.id = w->s->id, .chunk = chunk, .high = high};
        struct wc_buf mark;
        int r;

        wc_buf_init(&mark);
        r = wc_snap_mark_format(&mark, &m);
        if (r == 0)
                r = wc_buf_append_str(
                    q, "SELECT pg_catalog.pg_logical_emit_message("
                       "false, '" WC_SNAPSHOT_PREFIX "', ");
        if (r == 0)
                r = append_literal(w, q, mark.data);
        if (r == 0)
                r = wc_buf_append_str(q, high ? "), pg_catalog.txid_current()"
                                              : ")");
        wc_buf_free(&mark);
        return r;
}

/* The high watermark of chunk, alone. */
static int send_high(struct worker *w, uint64_t chunk, char *errbuf,
                     size_t errlen)
{
        wc_buf_reset(&w->scratch);
        if (append_mark(w, &w->scratch, chunk, true) < 0)
                return failed(w, errbuf, errlen, "a watermark",
                              "out of memory");
        return send_sql(w, w->scratch.data, 0, NULL, errbuf, errlen);
}

/*
 * The chunk's low watermark and its read in one query (after the running
 * chunk's high watermark when high_chunk is not 0): the watermark, then
 * in a repeatable-read transaction its snapshot and COPY (SELECT cols FROM
 * ONLY t WHERE (key) > (last key) ORDER BY key LIMIT n) TO STDOUT, in
 * text form.  COPY takes no parameters: the last key's output texts are
 * quoted literals, of unknown type as parameters without a type are, so
 * each is read by its column's type.  d the chunk read, after the key
 * from (NUL-separated texts; NULL for the table's first).
 */
static int send_read(struct worker *w, struct rd *d, const char *from,
                     uint64_t high_chunk, char *errbuf, size_t errlen)
{
        struct wc_snapshot *s = w->s;
        const struct table *t = &s->tables[w->cur.table];
        uint32_t ncols, nkeys = wc_snap_chunk_nkeys(d->k);
        const struct wc_snap_col *cols = wc_snap_chunk_cols(d->k, &ncols);
        struct wc_buf *q = &w->scratch;
        int r = 0;

        /* a read cut by a lost connection starts again */
        wc_snap_chunk_clear_rows(d->k);
        d->rows = 0;
        d->have_snap = false;
        wc_buf_reset(&d->next);
        if (w->nfields < ncols) {
                free(w->texts);
                free(w->lens);
                free(w->nulls);
                w->texts = calloc(ncols, sizeof(*w->texts));
                w->lens = calloc(ncols, sizeof(*w->lens));
                w->nulls = calloc(ncols, sizeof(*w->nulls));
                w->nfields = w->texts && w->lens && w->nulls ? ncols : 0;
                if (!w->nfields)
                        return failed(w, errbuf, errlen, "reading",
                                      "out of memory");
        }
        wc_buf_reset(q);
        /*
         * One round trip, each part a transaction of its own:
         * - the running chunk's high watermark, when it goes with this
         *   read, whose commit flushes it (append_mark()), so
         *   that the stream reaches it while this chunk is read;
         * - the low watermark;
         * - the read, repeatable read: its snapshot is taken by its first
         *   statement, after the low watermark is in the WAL, and returned
         *   once (the guard's), then the rows under the same snapshot.
         */
        if (high_chunk) {
                r = wc_buf_append_str(q, "BEGIN; ");
                if (r == 0)
                        r = append_mark(w, q, high_chunk, true);
                if (r == 0)
                        r = wc_buf_append_str(q, "; COMMIT; ");
        }
        if (r == 0)
                r = wc_buf_append_str(q, "BEGIN; ");
        if (r == 0)
                r = append_mark(w, q, d->chunk, false);
        if (r == 0)
                r = wc_buf_append_str(
                    q, "; COMMIT; BEGIN ISOLATION LEVEL REPEATABLE READ, "
                       "READ ONLY; SELECT pg_catalog.pg_current_snapshot()"
                       "::text AS " SNAPSHOT_COLUMN "; COPY (SELECT ");
        for (uint32_t i = 0; i < ncols && r == 0; i++) {
                if (i)
                        r = wc_buf_append_char(q, ',');
                if (r == 0)
                        r = append_ident(w, q, cols[i].name);
        }
        if (r == 0)
                r = wc_buf_append_str(q, " FROM ONLY ");
        if (r == 0)
                r = append_ident(w, q, t->schema);
        if (r == 0)
                r = wc_buf_append_char(q, '.');
        if (r == 0)
                r = append_ident(w, q, t->table);
        if (r == 0 && from) {
                const char *p = from;

                r = wc_buf_append_str(q, " WHERE (");
                for (uint32_t i = 0; i < nkeys && r == 0; i++) {
                        if (i)
                                r = wc_buf_append_char(q, ',');
                        if (r == 0)
                                r = append_ident(
                                    w, q,
                                    cols[wc_snap_chunk_key_col(d->k, i)].name);
                }
                if (r == 0)
                        r = wc_buf_append_str(q, ") > (");
                for (uint32_t i = 0; i < nkeys && r == 0; i++) {
                        if (i)
                                r = wc_buf_append_char(q, ',');
                        if (r == 0)
                                r = append_literal(w, q, p);
                        p += strlen(p) + 1;
                }
                if (r == 0)
                        r = wc_buf_append_char(q, ')');
        }
        if (r == 0 && nkeys)
                r = wc_buf_append_str(q, " ORDER BY ");
        for (uint32_t i = 0; i < nkeys && r == 0; i++) {
                if (i)
                        r = wc_buf_append_char(q, ',');
                if (r == 0)
                        r = append_ident(
                            w, q, cols[wc_snap_chunk_key_col(d->k, i)].name);
        }
        /* a table without a key (keyless: whole) is read in one pass */
        if (r == 0 && nkeys)
                r = wc_buf_printf(q, " LIMIT %zu", s->chunk_size);
        if (r == 0)
                r = wc_buf_append_str(q, ") TO STDOUT; COMMIT");
        if (r < 0)
                return failed(w, errbuf, errlen, "reading", "out of memory");
        return send_sql(w, q->data, 0, NULL, errbuf, errlen);
}

static int send_phase(struct worker *w, char *errbuf, size_t errlen)
{
        struct wc_snapshot *s = w->s;
        const char *params[2];

        w->sent = w->phase;
        switch (w->phase) {
        case P_LIST:
                return send_sql(w, list_sql, 0, NULL, errbuf, errlen);
        case P_DESCRIBE:
                params[0] = s->tables[w->cur.table].schema;
                params[1] = s->tables[w->cur.table].table;
                return send_sql(w, describe_sql, 2, params, errbuf, errlen);
        case P_LOW:
                w->c.window = false;
                return send_read(w, &w->c,
                                 w->cur.has_key ? w->cur.key.data : NULL, 0,
                                 errbuf, errlen);
        case P_HIGH:
                return send_high(w, w->c.chunk, errbuf, errlen);
        case P_AHEAD_LOW:
                /* after the last key the running chunk read */
                return send_read(w, &w->a, w->c.next.data,
                                 w->high_first ? w->c.chunk : 0, errbuf,
                                 errlen);
        case P_AHEAD_HIGH:
                return send_high(w, w->a.chunk, errbuf, errlen);
        default:
                return 0;
        }
}

/* ---- the results ---- */

static int add_table(struct wc_snapshot *s, const char *schema,
                     const char *table)
{
        struct table *t = realloc(s->tables, (s->ntables + 1) * sizeof(*t));

        if (!t)
                return -ENOMEM;
        s->tables = t;
        t[s->ntables] =
            (struct table){.schema = strdup(schema), .table = strdup(table)};
        if (!t[s->ntables].schema || !t[s->ntables].table) {
                free(t[s->ntables].schema);
                free(t[s->ntables].table);
                return -ENOMEM;
        }
        s->ntables++;
        return 0;
}

static bool request_known(const struct wc_snapshot *s, uint64_t id)
{
        for (size_t i = 0; i < s->nrequests; i++)
                if (s->requests[i] == id)
                        return true;
        return false;
}

static int remember_request(struct wc_snapshot *s, uint64_t id)
{
        uint64_t *r;

        if (request_known(s, id))
                return 0;
        r = realloc(s->requests, (s->nrequests + 1) * sizeof(*r));
        if (!r)
                return -ENOMEM;
        s->requests = r;
        r[s->nrequests++] = id;
        return 0;
}

/* The worker's table is finished in this run (its last chunk delivered,
 * or it cannot be read: then done at once, nothing is owed of it); the
 * worker takes the next one, on the same connection. */
static void next_table(struct worker *w, bool skipped)
{
        struct wc_snapshot *s = w->s;

        if (w->cur.table < s->ntables) {
                struct table *t = &s->tables[w->cur.table];

                t->finished = true;
                t->lrows = w->cur.rows;
                if (skipped) {
                        t->done = true;
                        s->changed = true;
                }
        }
        drop_chunks(w);
        w->phase = P_IDLE;
        w->cur.table = NO_TABLE;
        w->cur.has_key = false;
        wc_buf_reset(&w->cur.key);
        w->cur.rows = 0;
        assign(s);
}

static int got_list(struct worker *w, PGresult *res)
{
        struct wc_snapshot *s = w->s;

        for (int i = 0; i < PQntuples(res); i++) {
                const char *schema = PQgetvalue(res, i, 0);
                const char *table = PQgetvalue(res, i, 1);

                if (s->include && !s->include(s->ud, schema, table))
                        continue;
                if (add_table(s, schema, table) < 0)
                        return -ENOMEM;
        }
        s->listing = false;
        w->phase = P_IDLE;
        s->changed = true; /* the list is part of the progress */
        assign(s);
        return 0;
}

static int got_describe(struct worker *w, PGresult *res, char *errbuf,
                        size_t errlen)
{
        struct wc_snapshot *s = w->s;
        const struct table *t = &s->tables[w->cur.table];
        int n = PQntuples(res), err = 0, aerr;
        struct wc_snap_col *cols = calloc(n ? (size_t)n : 1, sizeof(*cols));

        if (!cols)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                cols[i].name = PQgetvalue(res, i, 0);
                cols[i].type = PQgetvalue(res, i, 1);
                cols[i].type_oid =
                    (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
                cols[i].key_pos =
                    (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10);
        }
        drop_chunks(w);
        w->c.k = n ? wc_snap_chunk_new(t->schema, t->table, cols, (uint32_t)n,
                                       s->keyless_whole, &err)
                   : NULL;
        /* the buffer of the chunk read ahead (none: nothing is read
         * ahead) */
        if (w->c.k && wc_snap_chunk_nkeys(w->c.k))
                w->a.k = wc_snap_chunk_new(t->schema, t->table, cols,
                                           (uint32_t)n, false, &aerr);
        free(cols);
        if (!n || err == -EINVAL) {
                wc_errorf(errbuf, errlen,
                          n ? "snapshot: table \"%s\".\"%s\" has no primary "
                              "key: it cannot be read in chunks; skipped "
                              "(add a primary key and request it again, or "
                              "set snapshot.keyless: whole)"
                            : "snapshot: table \"%s\".\"%s\" does not exist; "
                              "skipped",
                          t->schema, t->table);
                next_table(w, true);
                return -EINVAL;
        }
        if (!w->c.k)
                return -ENOMEM;
        w->c.chunk = ++s->seq;
        w->phase = P_LOW;
        wc_snap_guard_keys_from_now(&w->guard);
        return 0;
}

/* The chunk whose read is on the connection: none when the snapshot
 * left it (a high watermark the stream already delivered, a cancelled
 * request): its results are dropped. */
static struct rd *reading(struct worker *w)
{
        if (w->sent == P_LOW && w->phase == P_LOW && w->c.k)
                return &w->c;
        if (w->sent == P_AHEAD_LOW && w->phase == P_AHEAD_LOW && w->a.k)
                return &w->a;
        return NULL;
}

/* The snapshot a chunk's rows were read under, for the guard: none
 * without a row (nothing stale can be delivered). */
static const char *read_snapshot(const struct rd *d)
{
        return d->have_snap && d->rows ? d->snap.data : NULL;
}

/* The read's snapshot, before its rows. */
static int got_snapshot(struct worker *w, const PGresult *res)
{
        struct rd *d = reading(w);

        if (!d)
                return 0;
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
                return -EBADMSG;
        wc_buf_reset(&d->snap);
        if (wc_buf_append(&d->snap, PQgetvalue(res, 0, 0),
                          (size_t)PQgetlength(res, 0, 0) + 1) < 0)
                return -ENOMEM;
        d->have_snap = true;
        return 0;
}

/* One row of the chunk's COPY: parsed in place, rendered into the chunk;
 * its key kept as the last one read. */
static int copy_row(struct worker *w, struct rd *d, char *line, size_t len)
{
        struct wc_snapshot *s = w->s;
        uint32_t ncols, nkeys = wc_snap_chunk_nkeys(d->k);
        int r;

        (void)wc_snap_chunk_cols(d->k, &ncols);
        if (w->nfields < ncols || !d->have_snap)
                return -EBADMSG;
        r = wc_snap_copy_fields(line, len, ncols, w->texts, w->lens, w->nulls);
        if (r < 0)
                return r;
        r = wc_snap_chunk_add_row(d->k, w->texts, w->lens, w->nulls,
                                  s->numbers_as_strings);
        if (r < 0)
                return r;
        d->rows++;
        wc_buf_reset(&d->next);
        for (uint32_t i = 0; i < nkeys && r == 0; i++) {
                uint32_t col = wc_snap_chunk_key_col(d->k, i);

                r = wc_buf_append(&d->next, w->texts[col], w->lens[col] + 1);
        }
        return r;
}

/* The next chunk of the running one's table can be read ahead: not
 * after its table's last chunk (the next table is described once the
 * running one is delivered) nor after reading ahead failed for it. */
static bool can_read_ahead(const struct worker *w)
{
        return w->a.k && !w->no_ahead && w->c.k &&
               wc_snap_chunk_nkeys(w->c.k) && w->c.rows >= w->s->chunk_size;
}

/* The next chunk is read ahead, from where the running one ends. */
static void read_ahead(struct worker *w)
{
        rd_clear(&w->a);
        w->a.chunk = ++w->s->seq;
        w->phase = P_AHEAD_LOW;
}

/* The chunk's COPY ended: its snapshot for the guard (none for a read
 * without a row: there is nothing stale to deliver).  Its high
 * watermark is written next, in the same query as the next chunk's read
 * when there is one (start_ahead() says why that may be read now). */
static int got_read(struct worker *w)
{
        int r = wc_snap_guard_set(&w->guard, read_snapshot(&w->c));

        if (r < 0)
                return r;
        if (can_read_ahead(w)) {
                read_ahead(w);
                w->high_first = true;
        } else {
                w->phase = P_HIGH;
        }
        return 0;
}

/*
 * The running chunk's high watermark is written (or goes first in the
 * same query): while the stream goes to it, the next chunk of the same
 * table is read ahead, with watermarks of its own that follow the running
 * one's in the WAL.  It takes keys from the stream once the running chunk
 * is delivered, as it would have if it had been read then: the stream
 * reaches its low watermark only after that, and what it read before is
 * checked against its snapshot by the guard then (docs/snapshots.md).
 */
static void start_ahead(struct worker *w)
{
        w->phase = P_WAIT;
        if (can_read_ahead(w))
                read_ahead(w);
}

/* The chunk read ahead is given up (the running one is read again, or
 * reading ahead failed): its rows go, its watermarks are nobody's; the
 * running chunk's high watermark, if it went with it, is written (the
 * stream read it, or the COPY after it failed). */
static void drop_ahead(struct worker *w)
{
        rd_clear(&w->a);
        w->a.chunk = 0;
        w->high_first = false;
}

static int got_result(struct worker *w, char *errbuf, size_t errlen)
{
        PGresult *res = w->res;
        int r = 0;

        w->res = NULL;
        w->cs = C_READY;
        /* the result of a phase the snapshot has left (a high watermark
         * the stream already delivered, a cancelled request): done */
        switch (w->sent != w->phase ? P_IDLE : w->phase) {
        case P_LIST:
                r = got_list(w, res);
                break;
        case P_DESCRIBE:
                r = got_describe(w, res, errbuf, errlen);
                break;
        case P_LOW:
                r = got_read(w);
                break;
        case P_HIGH:
                start_ahead(w);
                break;
        case P_AHEAD_LOW:
                /* its snapshot goes to the guard once it runs */
                w->high_first = false;
                w->phase = P_AHEAD_HIGH;
                break;
        case P_AHEAD_HIGH:
                w->phase = P_AHEAD_DONE;
                break;
        default:
                break;
        }
        PQclear(res);
        if (r == -ENOMEM)
                wc_errorf(errbuf, errlen, "snapshot: out of memory");
        else if (r == -EBADMSG)
                wc_errorf(errbuf, errlen,
                          "snapshot: the chunk's columns changed while it "
                          "was read; reading it again");
        if (r == -EBADMSG) {
                w->phase = P_DESCRIBE;
                drop_chunks(w);
        }
        return r;
}

/* The rows of the chunk's COPY that arrived, each parsed in the buffer
 * libpq gives it in: 1 when the COPY ended, 0 when more are to come. */
static int copy_rows(struct worker *w, char *errbuf, size_t errlen)
{
        for (;;) {
                char *line = NULL;
                int n = PQgetCopyData(w->conn, &line, 1), r = 0;
                struct rd *d;

                if (n == 0)
                        return 0;
                if (n == -1) {
                        w->copying = false;
                        return 1;
                }
                if (n < 0)
                        return failed(w, errbuf, errlen, "reading a chunk",
                                      wc_pq_error_line(w->conn));
                /* rows of a read the snapshot has left: dropped */
                d = reading(w);
                if (d)
                        r = copy_row(w, d, line, (size_t)n);
                PQfreemem(line);
                if (r < 0 && w->phase == P_AHEAD_LOW) {
                        /* the running chunk goes on; the next one is read
                         * once it is delivered */
                        drop_ahead(w);
                        w->no_ahead = true;
                        w->phase = P_WAIT;
                        return failed(w, errbuf, errlen, "reading ahead",
                                      r == -EBADMSG ? "a row is not one of the "
                                                      "table's columns"
                                                    : "out of memory");
                }
                if (r == -EBADMSG) {
                        w->phase = P_DESCRIBE;
                        drop_chunks(w);
                        return failed(w, errbuf, errlen, "reading a chunk",
                                      "a row is not one of the table's "
                                      "columns (they changed while it was "
                                      "read); reading it again");
                }
                if (r < 0)
                        return failed(w, errbuf, errlen, "reading a chunk",
                                      "out of memory");
        }
}

/* Reads what arrived; a complete query hands its result on. */
static int read_results(struct worker *w, char *errbuf, size_t errlen)
{
        PGresult *res;
        int r;

        if (!PQconsumeInput(w->conn))
                return failed(w, errbuf, errlen, "reading a result",
                              wc_pq_error_line(w->conn));
        for (;;) {
                if (w->copying) {
                        r = copy_rows(w, errbuf, errlen);
                        if (r <= 0) {
                                if (r == 0)
                                        w->events = POLLIN;
                                return r;
                        }
                }
                if (PQisBusy(w->conn))
                        break;
                res = PQgetResult(w->conn);
                if (!res) {
                        if (w->error[0]) {
                                wc_errorf(errbuf, errlen, "snapshot: %s",
                                          w->error);
                                disconnect(w);
                                return -EIO;
                        }
                        r = got_result(w, errbuf, errlen);
                        /* the next statement goes at once: above all the
                         * chunk read ahead, which the server produces
                         * while the stream delivers the running one */
                        if (r == 0 && w->cs == C_READY && !idle(w->phase))
                                r = send_phase(w, errbuf, errlen);
                        return r;
                }
                if (PQresultStatus(res) == PGRES_COPY_OUT) {
                        PQclear(res);
                        w->copying = true;
                        continue;
                }
                if (PQresultStatus(res) != PGRES_COMMAND_OK &&
                    PQresultStatus(res) != PGRES_TUPLES_OK) {
                        if (!w->error[0]) {
                                const char *m = PQresultErrorMessage(res);
                                wc_errorf(w->error, sizeof(w->error), "%.*s",
                                          (int)strcspn(m, "\n"), m);
                        }
                        PQclear(res);
                        continue;
                }
                if (PQresultStatus(res) == PGRES_TUPLES_OK &&
                    PQnfields(res) == 1 &&
                    strcmp(PQfname(res, 0), SNAPSHOT_COLUMN) == 0) {
                        r = got_snapshot(w, res);
                        if (r < 0) {
                                PQclear(res);
                                return failed(
                                    w, errbuf, errlen, "reading a chunk",
                                    r == -ENOMEM ? "out of memory"
                                                 : "no snapshot came back");
                        }
                }
                PQclear(w->res);
                w->res = res;
        }
        w->events = POLLIN;
        return 0;
}

int wc_snapshot_step(struct wc_snapshot *s, size_t i, char *errbuf,
                     size_t errlen)
{
        struct worker *w;
        int r;

        if (i >= s->nw)
                return 0;
        w = &s->w[i];

        if (idle(w->phase))
                return 0;
        switch (w->cs) {
        case C_NONE:
                return connect_start(w, errbuf, errlen);
        case C_CONNECTING:
                switch (PQconnectPoll(w->conn)) {
                case PGRES_POLLING_READING:
                        w->events = POLLIN;
                        return 0;
                case PGRES_POLLING_WRITING:
                        w->events = POLLOUT;
                        return 0;
                case PGRES_POLLING_OK:
                        w->cs = C_READY;
                        return send_phase(w, errbuf, errlen);
                default:
                        return failed(w, errbuf, errlen, "connecting",
                                      wc_pq_error_line(w->conn));
                }
        case C_READY:
                return send_phase(w, errbuf, errlen);
        case C_SENDING:
                r = PQflush(w->conn);
                if (r < 0)
                        return failed(w, errbuf, errlen, "sending a query",
                                      wc_pq_error_line(w->conn));
                if (r == 1)
                        return 0;
                w->cs = C_WAITING;
                w->events = POLLIN;
                return read_results(w, errbuf, errlen);
        case C_WAITING:
                return read_results(w, errbuf, errlen);
        }
        return -EINVAL;
}

/* ---- the pipeline's side ---- */

bool wc_snapshot_is_message(const struct wc_change *c)
{
        return c->op == WC_OP_MESSAGE && c->prefix &&
               c->prefix_len == sizeof(WC_SNAPSHOT_PREFIX) - 1 &&
               memcmp(c->prefix, WC_SNAPSHOT_PREFIX, c->prefix_len) == 0;
}

int wc_snapshot_request_format(struct wc_buf *b, uint64_t id,
                               const char *const *schemas,
                               const char *const *tables, size_t n)
{
        int r = wc_buf_printf(
            b, "{\"request\":\"%016" PRIx64 "\",\"tables\":\"", id);

        for (size_t i = 0; i < n && r == 0; i++) {
                if (i)
                        r = wc_buf_append_char(b, ',');
                if (r == 0)
                        r = put_hex(b, schemas[i], strlen(schemas[i]));
                if (r == 0)
                        r = wc_buf_append_char(b, '.');
                if (r == 0)
                        r = put_hex(b, tables[i], strlen(tables[i]));
        }
        return r ? r : wc_buf_append_str(b, "\"}");
}

int wc_snapshot_cancel_format(struct wc_buf *b, uint64_t id)
{
        return wc_buf_printf(b, "{\"cancel\":\"%016" PRIx64 "\"}", id);
}

/* Gives everything up: the tables left, the chunks being read. */
static void cancel(struct wc_snapshot *s)
{
        restart_tables(s);
        free_tables(s);
        s->listing = false;
        s->changed = true;
}

/* A request: its tables join the queue (the ones the filter drops are
 * named in the notice). */
static int take_request(struct wc_snapshot *s, uint64_t id, const char *list,
                        size_t len)
{
        size_t refused = 0;
        int r;

        if (request_known(s, id))
                return 0;
        /* nothing left of an earlier snapshot: start afresh (every
         * worker is idle) */
        if (!wc_snapshot_running(s))
                free_tables(s);
        r = remember_request(s, id);
        s->notice[0] = '\0';
        for (size_t at = 0; at < len && r == 0;) {
                const char *item = list + at;
                const char *comma = memchr(item, ',', len - at);
                size_t il = comma ? (size_t)(comma - item) : len - at;
                const char *dot = memchr(item, '.', il);
                char *schema = NULL, *table = NULL;

                at += il + 1;
                if (dot) {
                        schema = get_hex(item, (size_t)(dot - item), NULL);
                        table = get_hex(dot + 1, (size_t)(item + il - dot - 1),
                                        NULL);
                }
                if (!schema || !table || !*schema || !*table)
                        r = -EINVAL;
                else if (s->include && !s->include(s->ud, schema, table)) {
                        if (!refused++)
                                wc_errorf(s->notice, sizeof(s->notice),
                                          "snapshot: request %016" PRIx64
                                          ": table \"%s\".\"%s\" is not "
                                          "included by the filter; not read",
                                          id, schema, table);
                } else {
                        r = add_table(s, schema, table);
                }
                free(schema);
                free(table);
        }
        if (r < 0)
                return r;
        assign(s);
        s->changed = true;
        return 0;
}

int wc_snapshot_message(struct wc_snapshot *s, const struct wc_change *c)
{
        struct worker *w = NULL;
        struct wc_snap_mark m;
        char *text;
        size_t len;
        uint64_t id;
        int end = 0;

        if (!s || c->content_base64 || c->content.len < 2 ||
            c->content.ptr[0] != '"')
                return 0;
        wc_buf_reset(&s->scratch);
        if (wc_buf_append(&s->scratch, c->content.ptr + 1, c->content.len - 1) <
                0 ||
            wc_json_unescape_inplace(s->scratch.data, c->content.len - 2,
                                     &len) < 0)
                return 0;
        text = s->scratch.data;
        if (sscanf(text, "{\"cancel\":\"%16" SCNx64 "\"}%n", &id, &end) == 1 &&
            (size_t)end == len) {
                if (request_known(s, id))
                        return 0;
                cancel(s);
                (void)remember_request(s, id);
                return 2;
        }
        if (sscanf(text, "{\"request\":\"%16" SCNx64 "\",\"tables\":\"%n", &id,
                   &end) == 1 &&
            end > 0 && len >= (size_t)end + 2 &&
            memcmp(text + len - 2, "\"}", 2) == 0) {
                if (request_known(s, id))
                        return 0;
                return take_request(s, id, text + end, len - (size_t)end - 2) <
                               0
                           ? 0
                           : 2;
        }
        if (wc_snap_mark_parse(text, len, &m) < 0)
                return 0;
        if (m.id != s->id)
                return 0;
        /* the worker whose running chunk it is */
        for (size_t i = 0; i < s->nw && !w; i++)
                if (s->w[i].c.k && s->w[i].c.chunk == m.chunk)
                        w = &s->w[i];
        if (!w)
                return 0;
        if (!m.high) {
                if (w->phase == P_LOW || w->phase == P_HIGH ||
                    waiting(w->phase))
                        w->c.window = true;
                return 0;
        }
        /* P_HIGH: the stream was faster than the statement's result */
        if (!w->c.window || (!waiting(w->phase) && w->phase != P_HIGH))
                return 0;
        if (wc_snap_guard_torn(&w->guard) ||
            (s->test_torn_at && ++s->highs == s->test_torn_at)) {
                /* read the chunk again, with new watermarks; the keys
                 * taken so far stay (dropping a row is always safe); the
                 * chunk read ahead goes too, its rows would come first */
                drop_ahead(w);
                wc_snap_chunk_clear_rows(w->c.k);
                w->c.window = false;
                w->c.chunk = ++s->seq;
                w->phase = P_LOW;
                s->rereads++;
                return 0;
        }
        s->deliver = w;
        return 1;
}

uint64_t wc_snapshot_rereads(const struct wc_snapshot *s)
{
        return s->rereads;
}

const char *wc_snapshot_take_notice(struct wc_snapshot *s)
{
        static char out[512];

        if (!s->notice[0])
                return NULL;
        memcpy(out, s->notice, sizeof(out));
        s->notice[0] = '\0';
        return out;
}

/*
 * The keys are taken from the stream from the moment the chunk's table is
 * known (its first chunk) or the previous chunk was delivered, not only
 * from the low watermark on: a transaction whose commit record precedes
 * the low watermark can still be invisible to the chunk's SELECT (a
 * backend writes its commit record before it leaves the proc array), and
 * its change must then stand too.  Taking a key out of a chunk is always
 * safe: the streamed change for it is in the output, and the last one
 * for a key is the newest.
 */
void wc_snapshot_saw_txn(struct wc_snapshot *s, uint32_t xid)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->nw; i++)
                wc_snap_guard_saw(&s->w[i].guard, xid);
}

int wc_snapshot_observe(struct wc_snapshot *s, const struct wc_change *c)
{
        int r = 0;

        if (!s)
                return 0;
        for (size_t i = 0; i < s->nw && r == 0; i++) {
                struct worker *w = &s->w[i];

                if (w->c.k && (w->phase == P_LOW || w->phase == P_HIGH ||
                               waiting(w->phase)))
                        r = wc_snap_chunk_observe(w->c.k, c);
        }
        return r;
}

int wc_snapshot_row(struct wc_snapshot *s, size_t i, struct wc_change *ret)
{
        struct worker *w = s->deliver;

        if (!w || !w->c.k || i >= wc_snap_chunk_rows(w->c.k))
                return -ENOENT;
        return wc_snap_chunk_row(w->c.k, i, ret);
}

void wc_snapshot_chunk_edges(const struct wc_snapshot *s, bool *ret_first,
                             bool *ret_last, struct wc_change *ret_table)
{
        const struct worker *w = s->deliver;

        wc_snap_chunk_table(w->c.k, ret_table);
        *ret_first = !w->cur.has_key;
        *ret_last = w->c.rows < s->chunk_size || !wc_snap_chunk_nkeys(w->c.k);
}

/* The running chunk was delivered: the one read ahead runs, from where
 * its reading is, and takes keys from the stream from now on. */
static void promote(struct worker *w)
{
        struct wc_snapshot *s = w->s;
        struct rd t = w->c;
        enum phase to;

        w->c = w->a;
        w->a = t;
        rd_clear(&w->a);
        w->a.chunk = 0;
        w->high_first = false; /* the stream read it */
        switch (w->phase) {
        case P_AHEAD_LOW:
                to = P_LOW;
                break;
        case P_AHEAD_HIGH:
                to = P_HIGH;
                break;
        default:
                to = P_WAIT;
                break;
        }
        /* the statement on the connection is the promoted chunk's now */
        if (w->sent == w->phase)
                w->sent = to;
        w->phase = to;
        w->c.window = false;
        wc_snap_guard_keys_from_now(&w->guard);
        if (to != P_HIGH && to != P_WAIT)
                return; /* its read sets the guard's snapshot when done */
        if (wc_snap_guard_set(&w->guard, read_snapshot(&w->c)) < 0) {
                /* cannot be checked: read again */
                wc_snap_chunk_clear_rows(w->c.k);
                w->c.chunk = ++s->seq;
                w->phase = P_LOW;
                return;
        }
        if (to == P_WAIT)
                start_ahead(w);
}

/* The progress of a table after a chunk, confirmed with end. */
static void add_pending(struct wc_snapshot *s, wc_lsn end,
                        const struct progress *at, bool done)
{
        struct pending *p;

        if (s->npend == s->cappend) {
                size_t cap = s->cappend ? s->cappend * 2 : 8;
                p = realloc(s->pend, cap * sizeof(*p));
                if (!p)
                        return; /* kept unconfirmed: read again at worst */
                s->pend = p;
                s->cappend = cap;
        }
        p = &s->pend[s->npend];
        *p = (struct pending){.end = end, .done = done};
        if (progress_copy(&p->at, at) == 0)
                s->npend++;
        else
                progress_free(&p->at);
}

void wc_snapshot_delivered(struct wc_snapshot *s, wc_lsn end_lsn)
{
        struct worker *w = s->deliver;
        bool last;

        s->deliver = NULL;
        if (!w || !w->c.k)
                return;
        w->c.window = false;
        w->cur.rows += wc_snap_chunk_rows_left(w->c.k);
        wc_snap_chunk_clear(w->c.k);
        if (w->c.rows && w->c.next.len) {
                wc_buf_reset(&w->cur.key);
                (void)wc_buf_append(&w->cur.key, w->c.next.data, w->c.next.len);
                w->cur.has_key = true;
        }
        if (w->cur.table < s->ntables)
                s->tables[w->cur.table].lrows = w->cur.rows;
        last = w->c.rows < s->chunk_size || !wc_snap_chunk_nkeys(w->c.k);
        add_pending(s, end_lsn, &w->cur, last);
        w->no_ahead = false;
        if (last) {
                next_table(w, false);
        } else if (w->phase == P_AHEAD_LOW || w->phase == P_AHEAD_HIGH ||
                   w->phase == P_AHEAD_DONE) {
                promote(w);
        } else {
                w->c.chunk = ++s->seq;
                w->phase = P_LOW;
                wc_snap_guard_keys_from_now(&w->guard);
        }
}

void wc_snapshot_confirmed(struct wc_snapshot *s, wc_lsn confirmed)
{
        size_t n = 0;

        while (n < s->npend && s->pend[n].end <= confirmed) {
                const struct pending *p = &s->pend[n];
                struct table *t =
                    p->at.table < s->ntables ? &s->tables[p->at.table] : NULL;

                if (t) {
                        t->rows = p->at.rows;
                        t->done = p->done;
                        t->has_key = p->at.has_key;
                        wc_buf_reset(&t->key);
                        if (p->at.has_key &&
                            wc_buf_append(&t->key, p->at.key.data,
                                          p->at.key.len) < 0)
                                t->has_key = false; /* from the start */
                }
                n++;
        }
        if (!n)
                return;
        s->changed = true;
        for (size_t i = 0; i < n; i++)
                progress_free(&s->pend[i].at);
        memmove(s->pend, s->pend + n, (s->npend - n) * sizeof(*s->pend));
        s->npend -= n;
}

void wc_snapshot_reset(struct wc_snapshot *s)
{
        if (!wc_snapshot_running(s))
                return;
        /* what was delivered and not confirmed is read again, in chunks
         * with new watermarks; a listing owed is listed again */
        restart_tables(s);
        assign(s);
}

void wc_snapshot_table_at(const struct wc_snapshot *s, size_t i,
                          const char **ret_schema, const char **ret_table,
                          uint64_t *ret_rows, const char **ret_state)
{
        const struct table *t = &s->tables[i];

        *ret_schema = t->schema;
        *ret_table = t->table;
        *ret_rows = t->lrows;
        *ret_state = t->finished              ? "done"
                     : t->taken || t->has_key ? "reading"
                                              : "queued";
}

void wc_snapshot_progress(const struct wc_snapshot *s, uint64_t *ret_rows,
                          size_t *ret_tables_done, size_t *ret_tables)
{
        *ret_rows = 0;
        *ret_tables_done = 0;
        for (size_t i = 0; i < s->ntables; i++) {
                *ret_rows += s->tables[i].lrows;
                *ret_tables_done += s->tables[i].finished;
        }
        *ret_tables = s->ntables;
}

/* ---- durable progress ---- */

bool wc_snapshot_take_changed(struct wc_snapshot *s)
{
        bool c = s->changed;

        s->changed = false;
        return c;
}

/*
 * One line a table, in the order they are read:
 *   table=<hex schema>.<hex table> <rows confirmed> done|queued
 *   table=<hex schema>.<hex table> <rows confirmed> at <hex key>
 * the key the last confirmed chunk of it ended with (its NUL-ended
 * output texts); then the requests taken, and list=pending while the
 * tables of snapshot.initial are still to be listed.
 */
int wc_snapshot_save_text(const struct wc_snapshot *s, struct wc_buf *out)
{
        int r = wc_buf_append_str(out, "# walcast snapshot progress "
                                       "(docs/snapshots.md); written by "
                                       "walcastd\n");

        for (size_t i = 0; i < s->ntables && r == 0; i++) {
                const struct table *t = &s->tables[i];

                r = wc_buf_append_str(out, "table=");
                if (r == 0)
                        r = put_hex(out, t->schema, strlen(t->schema));
                if (r == 0)
                        r = wc_buf_append_char(out, '.');
                if (r == 0)
                        r = put_hex(out, t->table, strlen(t->table));
                if (r == 0)
                        r = wc_buf_printf(out, " %" PRIu64 " %s", t->rows,
                                          t->done      ? "done"
                                          : t->has_key ? "at "
                                                       : "queued");
                if (r == 0 && !t->done && t->has_key)
                        r = put_hex(out, t->key.data, t->key.len);
                if (r == 0)
                        r = wc_buf_append_char(out, '\n');
        }
        for (size_t i = 0; i < s->nrequests && r == 0; i++)
                r = wc_buf_printf(out, "request=%016" PRIx64 "\n",
                                  s->requests[i]);
        if (r == 0 && s->listing)
                r = wc_buf_append_str(out, "list=pending\n");
        return r;
}

/* "<rows> done|queued|at <hex key>" of a table line. */
static int load_state(struct table *t, const char *p, const char *end)
{
        char *e;
        size_t kl;
        char *key;

        if (p == end || *p < '0' || *p > '9')
                return -EINVAL;
        t->rows = strtoull(p, &e, 10);
        if (e >= end || *e != ' ')
                return -EINVAL;
        p = e + 1;
        if ((size_t)(end - p) == 4 && memcmp(p, "done", 4) == 0) {
                t->done = true;
                return 0;
        }
        if ((size_t)(end - p) == 6 && memcmp(p, "queued", 6) == 0)
                return 0;
        if (end - p < 4 || memcmp(p, "at ", 3) != 0)
                return -EINVAL;
        key = get_hex(p + 3, (size_t)(end - p - 3), &kl);
        if (!key)
                return -EINVAL;
        /* NUL-ended texts */
        if (kl == 0 || key[kl - 1] != '\0') {
                free(key);
                return -EINVAL;
        }
        t->has_key = true;
        wc_buf_reset(&t->key);
        if (wc_buf_append(&t->key, key, kl) < 0) {
                free(key);
                return -ENOMEM;
        }
        free(key);
        return 0;
}

int wc_snapshot_load_text(struct wc_snapshot *s, const char *text, size_t len)
{
        bool list = false;
        int r = 0;

        wc_snapshot_start_all(s);
        s->listing = false;
        for (size_t pos = 0; pos < len && r == 0;) {
                const char *line = text + pos;
                const char *nl = memchr(line, '\n', len - pos);
                size_t ll = nl ? (size_t)(nl - line) : len - pos;
                char *v = NULL, *w = NULL, *end;

                pos += ll + 1;
                if (ll == 0 || line[0] == '#')
                        continue;
                if (ll > 6 && memcmp(line, "table=", 6) == 0) {
                        const char *dot = memchr(line + 6, '.', ll - 6);
                        const char *sp = memchr(line + 6, ' ', ll - 6);
                        if (!dot || !sp || sp < dot)
                                r = -EINVAL;
                        else {
                                v = get_hex(line + 6, (size_t)(dot - line - 6),
                                            NULL);
                                w = get_hex(dot + 1, (size_t)(sp - dot - 1),
                                            NULL);
                                r = v && w && *v && *w ? add_table(s, v, w)
                                                       : -EINVAL;
                        }
                        if (r == 0)
                                r = load_state(&s->tables[s->ntables - 1],
                                               sp + 1, line + ll);
                } else if (ll == 8 + 16 && memcmp(line, "request=", 8) == 0) {
                        uint64_t id = strtoull(line + 8, &end, 16);
                        r = end == line + ll ? remember_request(s, id)
                                             : -EINVAL;
                } else if (ll == 12 && memcmp(line, "list=pending", 12) == 0) {
                        list = true;
                } else {
                        r = -EINVAL;
                }
                free(v);
                free(w);
        }
        if (r < 0) {
                free_tables(s);
                return r == -ENOMEM ? r : -EINVAL;
        }
        s->listing = list;
        /* this run starts from what is confirmed */
        restart_tables(s);
        assign(s);
        return 0;
}

int wc_snapshot_save(const struct wc_snapshot *s, const char *path,
                     char *errbuf, size_t errlen)
{
        char tmp[4200];
        struct wc_buf b;
        int fd, r;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return wc_fail(errbuf, errlen, -ENAMETOOLONG,
                               "snapshot progress file name too long: %s",
                               path);
        wc_buf_init(&b);
        r = wc_snapshot_save_text(s, &b);
        if (r < 0) {
                wc_buf_free(&b);
                return wc_fail(errbuf, errlen, r, "out of memory");
        }
        if (unlink(tmp) < 0 && errno != ENOENT) {
                r = -errno;
                wc_buf_free(&b);
                return wc_fail(errbuf, errlen, r,
                               "cannot remove %s: %s; check that the state "
                               "directory is writable",
                               tmp, strerror(-r));
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0640);
        if (fd < 0) {
                r = -errno;
                wc_buf_free(&b);
                return wc_fail(errbuf, errlen, r,
                               "cannot write the snapshot progress %s: %s; "
                               "check that the state directory exists and is "
                               "writable",
                               tmp, strerror(-r));
        }
        r = write(fd, b.data, b.len) == (ssize_t)b.len
                ? 0
                : (errno ? -errno : -EIO);
        wc_buf_free(&b);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r == 0)
                r = wc_sync_dir(path);
        if (r < 0) {
                (void)unlink(tmp);
                return wc_fail(errbuf, errlen, r,
                               "cannot write the snapshot progress %s: %s",
                               path, strerror(-r));
        }
        return 0;
}

int wc_snapshot_load(struct wc_snapshot *s, const char *path, char *errbuf,
                     size_t errlen)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        struct wc_buf b;
        struct stat sb;
        char chunk[4096];
        ssize_t n;
        int r;

        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "cannot open the snapshot progress %s: %s", path,
                               strerror(errno));
        if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
                close(fd);
                return wc_fail(errbuf, errlen, -EINVAL,
                               "the snapshot progress %s is not a regular "
                               "file: remove it",
                               path);
        }
        wc_buf_init(&b);
        r = 0;
        while (r == 0 && (n = read(fd, chunk, sizeof(chunk))) > 0)
                r = wc_buf_append(&b, chunk, (size_t)n);
        close(fd);
        if (r == 0)
                r = wc_snapshot_load_text(s, b.data ? b.data : "", b.len);
        wc_buf_free(&b);
        if (r < 0)
                return wc_fail(errbuf, errlen, r,
                               "the snapshot progress %s is damaged: remove "
                               "it to give the snapshot up, or restore it",
                               path);
        return 1;
}
