/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "core/tablemap.h"
#include "stream/catalog.h"

/* Seconds a lookup may take to connect, and again to run. */
#define CATALOG_TIMEOUT_S "3"
/* Tables whose cause is remembered; beyond that, looked up again. */
#define CACHE_MAX 4096u

/* The columns both queries end with, and what they mean. */
#define IDENT_COLUMNS                                                          \
        "c.relreplident::text, "                                               \
        "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = "      \
        "c.oid AND i.indisprimary), "                                          \
        "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = "      \
        "c.oid AND i.indisreplident), "                                        \
        "EXISTS (SELECT 1 FROM pg_catalog.pg_index p, pg_catalog.pg_index r "  \
        "WHERE p.indrelid = c.oid AND p.indisprimary AND r.indrelid = c.oid "  \
        "AND r.indisreplident AND NOT (p.indkey::int2[] <@ "                   \
        "r.indkey::int2[])) "

static const char one_sql[] =
    "SELECT " IDENT_COLUMNS
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind "
    "IN ('r', 'p')";

/* Only what may not be WC_IDENT_OK: every FULL table and every DEFAULT one
 * with a key is left out by the server. */
static const char scan_sql[] =
    "SELECT " IDENT_COLUMNS ", n.nspname, c.relname "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
    "('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' AND "
    "(c.relreplident IN ('n', 'i') OR (c.relreplident = 'd' AND NOT EXISTS "
    "(SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND "
    "i.indisprimary))) ORDER BY n.nspname, c.relname";

struct wc_catalog {
        char *dsn;
        struct wc_tablemap *seen; /* schema.table -> its sentence */
        PGconn *conn;             /* the pgoutput lookups', kept open */
};

/* An ordinary connection with the source DSN, bounded in time: the DSN's
 * own connect_timeout and replication are overridden, its options kept. */
static PGconn *connect_db(const char *dsn, char *errbuf, size_t errlen)
{
        const char *keys[] = {"dbname",      "connect_timeout",
                              "replication", "fallback_application_name",
                              "options",     NULL};
        const char *vals[] = {
            dsn, CATALOG_TIMEOUT_S, "false", "walcast-catalog", NULL, NULL};
        PQconninfoOption *parsed;
        const char *user_options = "";
        char *errmsg = NULL, *options = NULL;
        PGconn *conn;

        parsed = PQconninfoParse(dsn, &errmsg);
        if (!parsed) {
                wc_errorf(errbuf, errlen, "invalid source.dsn: %s",
                          errmsg ? errmsg : "out of memory");
                PQfreemem(errmsg);
                return NULL;
        }
        for (PQconninfoOption *o = parsed; o->keyword; o++)
                if (strcmp(o->keyword, "options") == 0 && o->val)
                        user_options = o->val;
        if (asprintf(&options, "%s%s-c statement_timeout=%s000", user_options,
                     *user_options ? " " : "", CATALOG_TIMEOUT_S) < 0) {
                PQconninfoFree(parsed);
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        PQconninfoFree(parsed);
        vals[4] = options;
        conn = PQconnectdbParams(keys, vals, 1);
        free(options);
        if (!conn) {
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        if (PQstatus(conn) != CONNECTION_OK) {
                const char *m = PQerrorMessage(conn);
                size_t n = strlen(m);

                while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
                        n--;
                wc_errorf(errbuf, errlen, "could not connect: %.*s", (int)n, m);
                PQfinish(conn);
                return NULL;
        }
        return conn;
}

static bool is_true(const char *v)
{
        return v && v[0] == 't';
}

/* The identity of one row of either query (columns 0 to 3). */
static enum wc_ident classify(const PGresult *res, int row)
{
        const char *ri = PQgetvalue(res, row, 0);
        bool has_pk = is_true(PQgetvalue(res, row, 1));
        bool has_index = is_true(PQgetvalue(res, row, 2));
        bool index_lacks_pk = is_true(PQgetvalue(res, row, 3));

        switch (ri[0]) {
        case 'n':
                return WC_IDENT_NOTHING;
        case 'd':
                return has_pk ? WC_IDENT_OK : WC_IDENT_NO_PK;
        case 'i':
                if (!has_index)
                        return WC_IDENT_INDEX_DROPPED;
                return has_pk && index_lacks_pk ? WC_IDENT_INDEX_NO_PK
                                                : WC_IDENT_OK;
        default:
                return WC_IDENT_OK;
        }
}

static void query_failed(PGconn *conn, const PGresult *res, char *errbuf,
                         size_t errlen)
{
        const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        size_t n = strlen(m);

        while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
                n--;
        wc_errorf(errbuf, errlen, "catalog query failed: %.*s", (int)n, m);
}

int wc_catalog_identity(const char *dsn, const char *schema, const char *table,
                        enum wc_ident *ret_ident, char *errbuf, size_t errlen)
{
        const char *params[] = {schema, table};
        PGconn *conn = connect_db(dsn, errbuf, errlen);
        PGresult *res;
        int r = 0;

        if (!conn)
                return -EIO;
        res = PQexecParams(conn, one_sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                query_failed(conn, res, errbuf, errlen);
                r = -EIO;
        } else {
                *ret_ident =
                    PQntuples(res) == 0 ? WC_IDENT_NO_TABLE : classify(res, 0);
        }
        PQclear(res);
        PQfinish(conn);
        return r;
}

/* s as a quoted SQL identifier, cut to fit. */
static const char *quote_ident(char *out, size_t outlen, const char *s)
{
        size_t o = 0;

        if (outlen < 3)
                return "";
        out[o++] = '"';
        for (; *s && o + 3 < outlen; s++) {
                if (*s == '"')
                        out[o++] = '"';
                out[o++] = *s;
        }
        out[o++] = '"';
        out[o] = '\0';
        return out;
}

void wc_catalog_explain(enum wc_ident ident, const char *schema,
                        const char *table, bool kafka, char *out, size_t outlen)
{
        char sq[300], tq[300], name[620];

        snprintf(name, sizeof(name), "%s.%s",
                 quote_ident(sq, sizeof(sq), schema),
                 quote_ident(tq, sizeof(tq), table));
        switch (ident) {
        case WC_IDENT_NO_PK:
                wc_errorf(out, outlen,
                          "table %s has no primary key (and REPLICA IDENTITY "
                          "DEFAULT): wal2json cannot identify its rows, so "
                          "its updates and deletes are lost; add a primary "
                          "key or run ALTER TABLE %s REPLICA IDENTITY FULL",
                          name, name);
                break;
        case WC_IDENT_NOTHING:
                wc_errorf(out, outlen,
                          "table %s has REPLICA IDENTITY NOTHING: wal2json "
                          "cannot identify its rows, so its updates and "
                          "deletes are lost; run ALTER TABLE %s REPLICA "
                          "IDENTITY DEFAULT (with a primary key) or FULL",
                          name, name);
                break;
        case WC_IDENT_INDEX_DROPPED:
                wc_errorf(out, outlen,
                          "table %s has REPLICA IDENTITY USING INDEX, but that "
                          "index was dropped: wal2json cannot identify its "
                          "rows, so its updates and deletes are lost; run "
                          "ALTER TABLE %s REPLICA IDENTITY DEFAULT (with a "
                          "primary key), FULL, or USING INDEX on a unique "
                          "index",
                          name, name);
                break;
        case WC_IDENT_INDEX_NO_PK:
                if (kafka)
                        wc_errorf(
                            out, outlen,
                            "table %s has REPLICA IDENTITY USING INDEX on an "
                            "index without its primary key: the Kafka sink "
                            "keys its deletes by the index's columns (header "
                            "walcast.key: identity, no tombstone) and cannot "
                            "remove the old key when an update changes the "
                            "primary key, so a compacted topic keeps it; run "
                            "ALTER TABLE %s REPLICA IDENTITY DEFAULT or FULL "
                            "for a compacted topic",
                            name, name);
                else
                        wc_errorf(out, outlen,
                                  "table %s has REPLICA IDENTITY USING INDEX "
                                  "on an index without its primary key: its "
                                  "deletes and key-changing updates carry "
                                  "the index's columns as identity, not the "
                                  "primary key",
                                  name);
                break;
        case WC_IDENT_NO_TABLE:
                wc_errorf(out, outlen,
                          "table %s no longer exists; it had no primary key, "
                          "REPLICA IDENTITY NOTHING, or a dropped replica "
                          "identity index",
                          name);
                break;
        case WC_IDENT_OK:
                wc_errorf(out, outlen,
                          "table %s has a replica identity now, but had none "
                          "wal2json could use when the change was written "
                          "(no primary key, REPLICA IDENTITY NOTHING, or a "
                          "dropped replica identity index)",
                          name);
                break;
        default:
                wc_errorf(out, outlen,
                          "table %s has no primary key, has REPLICA IDENTITY "
                          "NOTHING, or its replica identity index was "
                          "dropped, so its updates and deletes are lost; add "
                          "a primary key or run ALTER TABLE %s REPLICA "
                          "IDENTITY FULL",
                          name, name);
                break;
        }
}

struct wc_catalog *wc_catalog_new(const char *dsn)
{
        struct wc_catalog *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->dsn = strdup(dsn ? dsn : "");
        c->seen = wc_tablemap_new(CACHE_MAX, free);
        if (!c->dsn || !c->seen) {
                wc_catalog_free(c);
                return NULL;
        }
        return c;
}

void wc_catalog_free(struct wc_catalog *c)
{
        if (!c)
                return;
        free(c->dsn);
        wc_tablemap_free(c->seen);
        if (c->conn)
                PQfinish(c->conn);
        free(c);
}

/* One-row, one-column query on the kept connection (made, with an empty
 * search_path, when there is none or it broke); *ret_res is the caller's. */
static int lookup(struct wc_catalog *c, const char *sql, int n,
                  const char *const *params, PGresult **ret_res, char *errbuf,
                  size_t errlen)
{
        PGresult *res;

        if (c->conn && PQstatus(c->conn) != CONNECTION_OK) {
                PQfinish(c->conn);
                c->conn = NULL;
        }
        if (!c->conn) {
                c->conn = connect_db(c->dsn, errbuf, errlen);
                if (!c->conn)
                        return -EHOSTUNREACH;
                /* format_type() then qualifies every type outside
                 * pg_catalog, as on the replication connection */
                res = PQexec(c->conn, "SELECT pg_catalog.set_config("
                                      "'search_path', '', false)");
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        query_failed(c->conn, res, errbuf, errlen);
                        PQclear(res);
                        PQfinish(c->conn);
                        c->conn = NULL;
                        return -EIO;
                }
                PQclear(res);
        }
        res = PQexecParams(c->conn, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                query_failed(c->conn, res, errbuf, errlen);
                PQclear(res);
                return -EIO;
        }
        *ret_res = res;
        return 0;
}

int wc_catalog_type_name(void *ud, uint32_t oid, int32_t typmod,
                         struct wc_buf *out, char *errbuf, size_t errlen)
{
        char o[16], t[16];
        const char *params[] = {o, t};
        PGresult *res = NULL;
        int r;

        snprintf(o, sizeof(o), "%u", oid);
        snprintf(t, sizeof(t), "%d", typmod);
        r = lookup(ud, "SELECT pg_catalog.format_type($1::oid, $2::int4)", 2,
                   params, &res, errbuf, errlen);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
                r = wc_fail(errbuf, errlen, -ENOENT, "no type %u", oid);
        else
                r = wc_buf_append_str(out, PQgetvalue(res, 0, 0));
        PQclear(res);
        return r;
}

int wc_catalog_primary_key(void *ud, uint32_t relid, struct wc_buf *out,
                           char *errbuf, size_t errlen)
{
        char o[16];
        const char *params[] = {o};
        PGresult *res = NULL;
        int r = 0;

        snprintf(o, sizeof(o), "%u", relid);
        r = lookup(ud,
                   "SELECT a.attname FROM pg_catalog.pg_index i "
                   "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid "
                   "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = $1::oid "
                   "AND i.indisprimary ORDER BY a.attnum",
                   1, params, &res, errbuf, errlen);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res) && r == 0; i++)
                r = wc_buf_append(out, PQgetvalue(res, i, 0),
                                  strlen(PQgetvalue(res, i, 0)) + 1);
        PQclear(res);
        return r;
}

/* The labels of the enum type t, in their order, joined by commas (NULL
 * for an enum without labels): what Debezium's "allowed" lists. */
#define ENUM_LABELS_SQL                                                        \
        "(SELECT string_agg(e.enumlabel::text, ',' ORDER BY "                  \
        "e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = "      \
        "t.oid)"

static const char enum_sql[] =
    "SELECT t.oid::int8, CASE WHEN t.typtype = 'e' THEN "
    "coalesce(" ENUM_LABELS_SQL ", '') END FROM pg_catalog.pg_type t "
    "WHERE t.oid = ANY ($1::pg_catalog.oid[])";

int wc_catalog_enum_labels(void *ud, const uint32_t *oids, size_t n,
                           int (*found)(void *ud, uint32_t oid,
                                        const char *labels),
                           void *found_ud, char *errbuf, size_t errlen)
{
        struct wc_buf arr;
        const char *params[1];
        PGresult *res = NULL;
        int r = 0;

        wc_buf_init(&arr);
        for (size_t i = 0; i < n && r == 0; i++) {
                char o[16];

                snprintf(o, sizeof(o), "%u", oids[i]);
                r = wc_buf_append_str(&arr, i ? "," : "{");
                if (r == 0)
                        r = wc_buf_append_str(&arr, o);
        }
        if (r == 0)
                r = wc_buf_append_str(&arr, n ? "}" : "{}");
        if (r == 0)
                r = wc_buf_append_char(&arr, '\0');
        if (r < 0) {
                wc_buf_free(&arr);
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        }
        params[0] = arr.data;
        /* a connection the server closed since (a restart) is found
         * broken by the query: once more on a new one */
        for (int tries = 0; tries < 2; tries++) {
                struct wc_catalog *c = ud;

                r = lookup(ud, enum_sql, 1, params, &res, errbuf, errlen);
                if (r != -EIO || !c->conn || PQstatus(c->conn) == CONNECTION_OK)
                        break;
        }
        wc_buf_free(&arr);
        if (r < 0)
                return r;
        for (int i = 0; i < PQntuples(res) && r == 0; i++)
                r = found(found_ud,
                          (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10),
                          PQgetisnull(res, i, 1) ? NULL
                                                 : PQgetvalue(res, i, 1));
        PQclear(res);
        return r;
}

/* Splits wal2json's "schema"."table" (names as they are, not escaped);
 * false when it is not of that form. */
static bool split_quoted(const char *q, char *schema, size_t slen, char *table,
                         size_t tlen)
{
        size_t n = strlen(q);
        const char *dot;

        if (n < 5 || q[0] != '"' || q[n - 1] != '"')
                return false;
        dot = strstr(q + 1, "\".\"");
        if (!dot || (size_t)(dot - q - 1) >= slen ||
            (size_t)(q + n - 1 - (dot + 3)) >= tlen)
                return false;
        memcpy(schema, q + 1, (size_t)(dot - q - 1));
        schema[dot - q - 1] = '\0';
        memcpy(table, dot + 3, (size_t)(q + n - 1 - (dot + 3)));
        table[q + n - 1 - (dot + 3)] = '\0';
        return true;
}

void wc_catalog_why_unidentified(struct wc_catalog *c, const char *quoted,
                                 char *out, size_t outlen)
{
        char schema[256], table[256], err[512], *s;
        enum wc_ident ident = WC_IDENT_UNKNOWN;

        if (!split_quoted(quoted, schema, sizeof(schema), table,
                          sizeof(table))) {
                wc_catalog_explain(WC_IDENT_UNKNOWN, quoted, "?", false, out,
                                   outlen);
                return;
        }
        s = c ? wc_tablemap_get(c->seen, schema, strlen(schema), table,
                                strlen(table))
              : NULL;
        if (s) {
                snprintf(out, outlen, "%s", s);
                return;
        }
        if (!c || wc_catalog_identity(c->dsn, schema, table, &ident, err,
                                      sizeof(err)) < 0) {
                size_t n;

                wc_catalog_explain(WC_IDENT_UNKNOWN, schema, table, false, out,
                                   outlen);
                n = strlen(out);
                if (c && n < outlen)
                        snprintf(out + n, outlen - n,
                                 " (looking it up in the catalog failed: %s)",
                                 err);
        } else {
                wc_catalog_explain(ident, schema, table, false, out, outlen);
        }
        /* once per table, whatever the answer: a failing lookup is not
         * tried again for every change */
        if (c && (s = strdup(out)) != NULL)
                (void)wc_tablemap_put(c->seen, schema, strlen(schema), table,
                                      strlen(table), s);
}

int wc_catalog_identity_report(const char *dsn, bool kafka, size_t max,
                               wc_catalog_included_fn included,
                               wc_catalog_report_fn report, void *ud,
                               char *errbuf, size_t errlen)
{
        PGconn *conn = connect_db(dsn, errbuf, errlen);
        PGresult *res;
        size_t shown = 0, more = 0;
        char msg[1536];
        int r = 0;

        if (!conn)
                return -EIO;
        res = PQexec(conn, scan_sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                query_failed(conn, res, errbuf, errlen);
                r = -EIO;
                goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
                const char *schema = PQgetvalue(res, i, 4);
                const char *table = PQgetvalue(res, i, 5);
                enum wc_ident ident = classify(res, i);

                if (ident == WC_IDENT_OK ||
                    (included && !included(ud, schema, table)))
                        continue;
                if (shown == max) {
                        more++;
                        continue;
                }
                shown++;
                wc_catalog_explain(ident, schema, table, kafka, msg,
                                   sizeof(msg));
                report(ud, ident == WC_IDENT_INDEX_NO_PK ? 5 : 4, msg);
        }
        if (more) {
                snprintf(msg, sizeof(msg),
                         "and %zu more table%s without a primary key or with "
                         "another replica identity than DEFAULT or FULL",
                         more, more == 1 ? "" : "s");
                report(ud, 4, msg);
        }
out:
        PQclear(res);
        PQfinish(conn);
        return r;
}

/* Every user table's columns, with their primary-key membership and, for
 * an enum, its labels in order (what Debezium's "allowed" lists). */
static const char columns_sql[] =
    "SELECT n.nspname, c.relname, a.attname, a.atttypid::int8, "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid "
    "AND i.indisprimary AND a.attnum = ANY (i.indkey::int2[])), "
    "CASE WHEN t.typtype = 'e' THEN " ENUM_LABELS_SQL " END "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
    "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND "
    "n.nspname !~ '^pg_' ORDER BY n.nspname, c.relname, a.attnum";

void wc_catalog_tables_free(struct wc_catalog_tables *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->ntables; i++) {
                struct wc_catalog_table *tb = &t->tables[i];

                for (size_t j = 0; j < tb->ncols; j++)
                        free(tb->cols[j].name);
                free(tb->cols);
                free(tb->schema);
                free(tb->table);
        }
        free(t->tables);
        for (size_t i = 0; i < t->nenums; i++)
                free(t->enums[i].labels);
        free(t->enums);
        memset(t, 0, sizeof(*t));
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
        void *np;
        size_t ncap;

        if (n < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 16;
        np = realloc(*p, ncap * size);
        if (!np)
                return -ENOMEM;
        *p = np;
        *cap = ncap;
        return 0;
}

static int add_enum(struct wc_catalog_tables *t, size_t *cap, uint32_t oid,
                    const char *labels)
{
        for (size_t i = 0; i < t->nenums; i++)
                if (t->enums[i].oid == oid)
                        return 0;
        if (grow((void **)&t->enums, cap, t->nenums, sizeof(*t->enums)) < 0)
                return -ENOMEM;
        t->enums[t->nenums].oid = oid;
        t->enums[t->nenums].labels = strdup(labels);
        if (!t->enums[t->nenums].labels)
                return -ENOMEM;
        t->nenums++;
        return 0;
}

static int cmp_enum(const void *a, const void *b)
{
        const struct wc_catalog_enum *x = a, *y = b;

        return x->oid < y->oid ? -1 : x->oid > y->oid;
}

int wc_catalog_tables_load(const char *dsn, wc_catalog_included_fn included,
                           void *ud, struct wc_catalog_tables *ret,
                           char *errbuf, size_t errlen)
{
        struct wc_catalog_tables t = {0};
        size_t tcap = 0, ecap = 0, ccap = 0;
        struct wc_catalog_table *cur = NULL;
        bool skip = false;
        PGconn *conn = connect_db(dsn, errbuf, errlen);
        PGresult *res;
        int r = 0;

        if (!conn)
                return -EIO;
        res = PQexec(conn, columns_sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                query_failed(conn, res, errbuf, errlen);
                r = -EIO;
                goto out;
        }
        for (int i = 0; i < PQntuples(res); i++) {
                const char *schema = PQgetvalue(res, i, 0);
                const char *table = PQgetvalue(res, i, 1);
                struct wc_catalog_column *col;

                if (!cur || strcmp(cur->schema, schema) != 0 ||
                    strcmp(cur->table, table) != 0) {
                        /* a table the previous rows were not of */
                        if (skip && i > 0 &&
                            strcmp(PQgetvalue(res, i - 1, 0), schema) == 0 &&
                            strcmp(PQgetvalue(res, i - 1, 1), table) == 0)
                                continue;
                        skip = included && !included(ud, schema, table);
                        if (skip)
                                continue;
                        r = grow((void **)&t.tables, &tcap, t.ntables,
                                 sizeof(*t.tables));
                        if (r < 0)
                                goto nomem;
                        cur = &t.tables[t.ntables++];
                        memset(cur, 0, sizeof(*cur));
                        ccap = 0;
                        cur->schema = strdup(schema);
                        cur->table = strdup(table);
                        if (!cur->schema || !cur->table)
                                goto nomem;
                }
                if (grow((void **)&cur->cols, &ccap, cur->ncols,
                         sizeof(*cur->cols)) < 0)
                        goto nomem;
                col = &cur->cols[cur->ncols];
                col->name = strdup(PQgetvalue(res, i, 2));
                if (!col->name)
                        goto nomem;
                cur->ncols++;
                col->type_oid =
                    (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10);
                col->pk = is_true(PQgetvalue(res, i, 4));
                if (!PQgetisnull(res, i, 5) &&
                    add_enum(&t, &ecap, col->type_oid, PQgetvalue(res, i, 5)) <
                        0)
                        goto nomem;
        }
        if (t.nenums)
                qsort(t.enums, t.nenums, sizeof(*t.enums), cmp_enum);
        *ret = t;
        goto out;
nomem:
        wc_errorf(errbuf, errlen, "out of memory");
        wc_catalog_tables_free(&t);
        r = -ENOMEM;
out:
        PQclear(res);
        PQfinish(conn);
        return r;
}
