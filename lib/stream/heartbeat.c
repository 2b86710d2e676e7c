/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "stream/heartbeat.h"
#include "stream/stream.h"

enum hb_state {
        HB_IDLE,       /* no beat running (connected or not) */
        HB_CONNECTING, /* PQconnectPoll() until OK */
        HB_SENDING,    /* PQflush() until the query is out */
        HB_WAITING,    /* reading results */
};

struct wc_heartbeat {
        char *dsn;
        char *query;
        PGconn *conn;
        enum hb_state state;
        short events;
        char error[512]; /* the first error result of the running beat */
};

static void ignore_notice(void *arg, const char *message)
{
        (void)arg;
        (void)message;
}

struct wc_heartbeat *wc_heartbeat_new(const char *dsn, const char *query)
{
        struct wc_heartbeat *hb = calloc(1, sizeof(*hb));

        if (!hb)
                return NULL;
        hb->dsn = strdup(dsn);
        hb->query = strdup(query);
        if (!hb->dsn || !hb->query) {
                wc_heartbeat_free(hb);
                return NULL;
        }
        return hb;
}

static void disconnect(struct wc_heartbeat *hb)
{
        PQfinish(hb->conn);
        hb->conn = NULL;
        hb->state = HB_IDLE;
}

void wc_heartbeat_free(struct wc_heartbeat *hb)
{
        if (!hb)
                return;
        disconnect(hb);
        free(hb->dsn);
        free(hb->query);
        free(hb);
}

static int failed(struct wc_heartbeat *hb, char *errbuf, size_t errlen,
                  const char *what, const char *msg)
{
        wc_errorf(errbuf, errlen, "heartbeat: %s: %s", what, msg);
        disconnect(hb);
        return -EIO;
}

static int send_query(struct wc_heartbeat *hb, char *errbuf, size_t errlen)
{
        hb->error[0] = '\0';
        if (PQsetnonblocking(hb->conn, 1) < 0 ||
            !PQsendQuery(hb->conn, hb->query))
                return failed(hb, errbuf, errlen, "sending the action query",
                              wc_pq_error_line(hb->conn));
        hb->state = HB_SENDING;
        hb->events = POLLOUT;
        return 0;
}

int wc_heartbeat_begin(struct wc_heartbeat *hb, char *errbuf, size_t errlen)
{
        /* the stream's keepalive defaults, then the DSN */
        const char *keys[8], *values[8];
        int n;

        if (hb->state != HB_IDLE)
                return -EALREADY;
        if (hb->conn && PQstatus(hb->conn) != CONNECTION_OK)
                disconnect(hb);
        if (hb->conn)
                return send_query(hb, errbuf, errlen);
        n = wc_stream_keepalive_defaults(hb->dsn, keys, values, 5);
        if (n < 0)
                n = 0;
        keys[n] = "dbname";
        values[n] = hb->dsn;
        keys[n + 1] = "fallback_application_name";
        values[n + 1] = "walcast-heartbeat";
        keys[n + 2] = values[n + 2] = NULL;
        hb->conn = PQconnectStartParams(keys, values, 1);
        if (!hb->conn || PQstatus(hb->conn) == CONNECTION_BAD)
                return failed(hb, errbuf, errlen, "connecting",
                              wc_pq_error_line(hb->conn));
        PQsetNoticeProcessor(hb->conn, ignore_notice, NULL);
        hb->state = HB_CONNECTING;
        hb->events = POLLOUT; /* what PQconnectStart() leaves to poll */
        return 0;
}

int wc_heartbeat_pollfd(const struct wc_heartbeat *hb, short *ret_events)
{
        if (hb->state == HB_IDLE || !hb->conn)
                return -1;
        *ret_events = hb->events;
        return PQsocket(hb->conn);
}

/* Reads what arrived; 1 when the last result is in. */
static int read_results(struct wc_heartbeat *hb, char *errbuf, size_t errlen)
{
        PGresult *res;

        if (!PQconsumeInput(hb->conn))
                return failed(hb, errbuf, errlen, "reading the result",
                              wc_pq_error_line(hb->conn));
        while (!PQisBusy(hb->conn)) {
                res = PQgetResult(hb->conn);
                if (!res) {
                        hb->state = HB_IDLE;
                        if (hb->error[0]) {
                                wc_errorf(errbuf, errlen,
                                          "heartbeat: the action query "
                                          "failed: %s",
                                          hb->error);
                                return -EIO;
                        }
                        return 1;
                }
                if (PQresultStatus(res) != PGRES_COMMAND_OK &&
                    PQresultStatus(res) != PGRES_TUPLES_OK && !hb->error[0]) {
                        const char *m = PQresultErrorMessage(res);
                        size_t n = strcspn(m, "\n");
                        wc_errorf(hb->error, sizeof(hb->error), "%.*s", (int)n,
                                  m);
                }
                PQclear(res);
        }
        hb->events = POLLIN;
        return 0;
}

int wc_heartbeat_step(struct wc_heartbeat *hb, char *errbuf, size_t errlen)
{
        int r;

        switch (hb->state) {
        case HB_IDLE:
                return 1;
        case HB_CONNECTING:
                switch (PQconnectPoll(hb->conn)) {
                case PGRES_POLLING_READING:
                        hb->events = POLLIN;
                        return 0;
                case PGRES_POLLING_WRITING:
                        hb->events = POLLOUT;
                        return 0;
                case PGRES_POLLING_OK:
                        r = send_query(hb, errbuf, errlen);
                        return r < 0 ? r : 0;
                default:
                        return failed(hb, errbuf, errlen, "connecting",
                                      wc_pq_error_line(hb->conn));
                }
        case HB_SENDING:
                r = PQflush(hb->conn);
                if (r < 0)
                        return failed(hb, errbuf, errlen,
                                      "sending the action query",
                                      wc_pq_error_line(hb->conn));
                if (r == 1)
                        return 0;
                hb->state = HB_WAITING;
                hb->events = POLLIN;
                /* the answer may be there already */
                return read_results(hb, errbuf, errlen);
        case HB_WAITING:
                return read_results(hb, errbuf, errlen);
        }
        return -EINVAL;
}

void wc_heartbeat_abort(struct wc_heartbeat *hb)
{
        disconnect(hb);
}

bool wc_heartbeat_busy(const struct wc_heartbeat *hb)
{
        return hb->state != HB_IDLE;
}
