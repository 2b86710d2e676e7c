/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "stream/publication.h"

/* The first line of the server's message for res. */
static void message(PGconn *conn, const PGresult *res, char *out, size_t len)
{
        const char *m =
            res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        size_t n;

        snprintf(out, len, "%s", m ? m : PQerrorMessage(conn));
        n = strcspn(out, "\n");
        out[n] = '\0';
}

static int exists(PGconn *conn, const char *name, bool *ret, char *errbuf,
                  size_t errlen)
{
        /* a replication connection takes the simple protocol only */
        char *lit = PQescapeLiteral(conn, name, strlen(name));
        struct wc_buf sql;
        char msg[512];
        PGresult *res;

        wc_buf_init(&sql);
        if (!lit || wc_buf_printf(&sql,
                                  "SELECT 1 FROM pg_catalog.pg_publication "
                                  "WHERE pubname = %s",
                                  lit) < 0) {
                PQfreemem(lit);
                wc_buf_free(&sql);
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        }
        PQfreemem(lit);
        res = PQexec(conn, sql.data);
        wc_buf_free(&sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                message(conn, res, msg, sizeof(msg));
                PQclear(res);
                return wc_fail(errbuf, errlen, -EIO,
                               "could not look up publication \"%s\": %s", name,
                               msg);
        }
        *ret = PQntuples(res) > 0;
        PQclear(res);
        return 0;
}

int wc_publication_ensure(PGconn *conn, const char *name, bool create,
                          const char *const *schemas, size_t nschemas,
                          bool *ret_created, char *errbuf, size_t errlen)
{
        bool in_schemas =
            schemas && schemas[0] && PQserverVersion(conn) >= 150000;
        struct wc_buf sql;
        char msg[512];
        const char *state;
        PGresult *res = NULL;
        char *id = NULL;
        bool found = false;
        int r;

        *ret_created = false;
        r = exists(conn, name, &found, errbuf, errlen);
        if (r < 0 || found)
                return r;
        if (!create)
                return wc_fail(
                    errbuf, errlen, -ENOENT,
                    "publication \"%s\" does not exist and "
                    "source.create_publication is false: create it before "
                    "the slot (CREATE PUBLICATION ... FOR ALL TABLES, or "
                    "FOR TABLES IN SCHEMA ...), or set create_publication: "
                    "true",
                    name);
        wc_buf_init(&sql);
        id = PQescapeIdentifier(conn, name, strlen(name));
        r = id ? wc_buf_printf(&sql, "CREATE PUBLICATION %s FOR %s", id,
                               in_schemas ? "TABLES IN SCHEMA " : "ALL TABLES")
               : -ENOMEM;
        PQfreemem(id);
        for (size_t i = 0; in_schemas && !r && i < nschemas; i++) {
                id = PQescapeIdentifier(conn, schemas[i], strlen(schemas[i]));
                r = id ? wc_buf_printf(&sql, "%s%s", i ? ", " : "", id)
                       : -ENOMEM;
                PQfreemem(id);
        }
        if (r < 0) {
                wc_buf_free(&sql);
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        }
        res = PQexec(conn, sql.data);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                *ret_created = true;
                r = 0;
                goto out;
        }
        message(conn, res, msg, sizeof(msg));
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42710") == 0) {
                r = 0; /* created meanwhile by someone else */
        } else if (state && strcmp(state, "42501") == 0) {
                r = wc_fail(errbuf, errlen, -EPERM,
                            "could not create publication \"%s\" (%s): %s: "
                            "create it as a superuser before the slot, or "
                            "give this role the privilege",
                            name, sql.data, msg);
        } else {
                r = wc_fail(errbuf, errlen, -EIO,
                            "could not create publication \"%s\" (%s): %s",
                            name, sql.data, msg);
        }
out:
        PQclear(res);
        wc_buf_free(&sql);
        return r;
}
