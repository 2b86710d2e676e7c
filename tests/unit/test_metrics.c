/* SPDX-License-Identifier: MIT */
/*
 * Metrics: the exact text of a scrape, label escaping, the schema cap, sink
 * registration, the lag arithmetic, and the HTTP server (endpoints, status
 * codes, bad listen addresses, a scrape storm while the counters move).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "metrics/metrics.h"

#define NOW_US 1800000000000000ll /* any fixed Unix time */

static void set(atomic_uint_fast64_t *c, uint64_t v)
{
        atomic_store_explicit(c, v, memory_order_relaxed);
}

static void add(atomic_uint_fast64_t *c, uint64_t v)
{
        atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void count(struct wc_metrics *m, const char *schema)
{
        wc_metrics_count_schema(m, schema, strlen(schema));
}

/* Renders m into a string the caller frees. */
static char *render(const struct wc_metrics *m, int64_t now)
{
        struct wc_buf b;

        wc_buf_init(&b);
        assert_int_equal(wc_metrics_render(m, now, &b), 0);
        assert_non_null(b.data);
        return b.data;
}

/* The sample line that starts with prefix (name and labels plus a space),
 * or NULL. */
static const char *find_line(const char *text, const char *prefix)
{
        size_t n = strlen(prefix);
        const char *p = text;

        while (*p) {
                const char *nl = strchr(p, '\n');

                if (strncmp(p, prefix, n) == 0)
                        return p;
                if (!nl)
                        break;
                p = nl + 1;
        }
        return NULL;
}

static uint64_t sample(const char *text, const char *prefix)
{
        const char *line = find_line(text, prefix);

        assert_non_null(line);
        return strtoull(line + strlen(prefix), NULL, 10);
}

/* ---- rendering ---- */

static const char full_expected[] =
    "# HELP walcast_changes_total Changes received, by operation.\n"
    "# TYPE walcast_changes_total counter\n"
    "walcast_changes_total{op=\"insert\"} 10\n"
    "walcast_changes_total{op=\"update\"} 20\n"
    "walcast_changes_total{op=\"delete\"} 30\n"
    "walcast_changes_total{op=\"truncate\"} 4\n"
    "walcast_changes_total{op=\"message\"} 5\n"
    "# HELP walcast_transactions_total Transactions received.\n"
    "# TYPE walcast_transactions_total counter\n"
    "walcast_transactions_total 7\n"
    "# HELP walcast_received_bytes_total Bytes of WAL data received from "
    "the server.\n"
    "# TYPE walcast_received_bytes_total counter\n"
    "walcast_received_bytes_total 123456\n"
    "# HELP walcast_confirmed_lsn Last LSN confirmed to the server, as a "
    "number.\n"
    "# TYPE walcast_confirmed_lsn gauge\n"
    "walcast_confirmed_lsn 97500059720\n"
    "# HELP walcast_server_wal_end_lsn Server WAL end last reported, as a "
    "number.\n"
    "# TYPE walcast_server_wal_end_lsn gauge\n"
    "walcast_server_wal_end_lsn 97500060720\n"
    "# HELP walcast_lag_bytes Server WAL end minus the confirmed LSN.\n"
    "# TYPE walcast_lag_bytes gauge\n"
    "walcast_lag_bytes 1000\n"
    "# HELP walcast_lag_seconds Time since the commit of the last "
    "transaction received; 0 while everything received is delivered.\n"
    "# TYPE walcast_lag_seconds gauge\n"
    "walcast_lag_seconds 2.500000\n"
    "# HELP walcast_in_flight_transactions Transactions received but not "
    "yet acknowledged by every sink.\n"
    "# TYPE walcast_in_flight_transactions gauge\n"
    "walcast_in_flight_transactions 3\n"
    "# HELP walcast_in_flight_changes Changes of committed transactions not "
    "yet acknowledged by every sink (limits.max_in_flight_changes).\n"
    "# TYPE walcast_in_flight_changes gauge\n"
    "walcast_in_flight_changes 40\n"
    "# HELP walcast_in_flight_bytes Bytes of those changes "
    "(limits.max_in_flight_bytes).\n"
    "# TYPE walcast_in_flight_bytes gauge\n"
    "walcast_in_flight_bytes 4096\n"
    "# HELP walcast_paused 1 while reading waits for the sinks "
    "(backpressure).\n"
    "# TYPE walcast_paused gauge\n"
    "walcast_paused 1\n"
    "# HELP walcast_sink_acks_total Acknowledgements received from each "
    "sink.\n"
    "# TYPE walcast_sink_acks_total counter\n"
    "walcast_sink_acks_total{sink=\"kafka\"} 11\n"
    "walcast_sink_acks_total{sink=\"file\"} 12\n"
    "# HELP walcast_sink_errors_total Errors reported by each sink.\n"
    "# TYPE walcast_sink_errors_total counter\n"
    "walcast_sink_errors_total{sink=\"kafka\"} 1\n"
    "walcast_sink_errors_total{sink=\"file\"} 0\n"
    "# HELP walcast_replays_total Times changes were replayed to the "
    "sinks.\n"
    "# TYPE walcast_replays_total counter\n"
    "walcast_replays_total 2\n"
    "# HELP walcast_reconnects_total Reconnections to the server.\n"
    "# TYPE walcast_reconnects_total counter\n"
    "walcast_reconnects_total 1\n"
    "# HELP walcast_snapshot_chunks_reread_total Snapshot chunks read "
    "again: the stream read a transaction their read did not see.\n"
    "# TYPE walcast_snapshot_chunks_reread_total counter\n"
    "walcast_snapshot_chunks_reread_total 3\n"
    "# HELP walcast_streaming 1 while replication is streaming and the "
    "server is heard.\n"
    "# TYPE walcast_streaming gauge\n"
    "walcast_streaming 1\n"
    "# HELP walcast_ready 1 while streaming and every sink is ready to "
    "deliver.\n"
    "# TYPE walcast_ready gauge\n"
    "walcast_ready 1\n"
    "# HELP walcast_schema_changes_total Changes received, by schema; "
    "schemas past the cap count under \"_other\".\n"
    "# TYPE walcast_schema_changes_total counter\n"
    "walcast_schema_changes_total{schema=\"public\"} 3\n"
    "walcast_schema_changes_total{schema=\"tenant-a\"} 2\n"
    "walcast_schema_changes_total{schema=\"_other\"} 0\n";

static void fill(struct wc_metrics *m)
{
        wc_lsn lsn;

        wc_metrics_init(m);
        set(&m->changes[WC_OP_INSERT], 10);
        set(&m->changes[WC_OP_UPDATE], 20);
        set(&m->changes[WC_OP_DELETE], 30);
        set(&m->changes[WC_OP_TRUNCATE], 4);
        set(&m->changes[WC_OP_MESSAGE], 5);
        /* begin and commit are not changes: never rendered */
        set(&m->changes[WC_OP_BEGIN], 99);
        set(&m->changes[WC_OP_COMMIT], 99);
        set(&m->transactions, 7);
        set(&m->bytes_received, 123456);
        assert_int_equal(wc_lsn_parse("16/B374D848", &lsn), 0);
        set(&m->confirmed_lsn, lsn);
        set(&m->server_wal_end, lsn + 1000);
        atomic_store(&m->last_commit_time_us, NOW_US - 2500000);
        set(&m->in_flight, 3);
        set(&m->in_flight_changes, 40);
        set(&m->in_flight_bytes, 4096);
        atomic_store(&m->paused, 1);
        assert_int_equal(wc_metrics_add_sink(m, "kafka"), 0);
        assert_int_equal(wc_metrics_add_sink(m, "file"), 1);
        set(&m->sinks[0].acks, 11);
        set(&m->sinks[0].errors, 1);
        set(&m->sinks[1].acks, 12);
        set(&m->replays, 2);
        set(&m->reconnects, 1);
        set(&m->snapshot_rereads, 3);
        atomic_store(&m->streaming, 1);
        atomic_store(&m->sinks_ready, 1);
        count(m, "public");
        count(m, "tenant-a");
        count(m, "public");
        count(m, "tenant-a");
        count(m, "public");
}

static void test_render_full(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char *text;

        assert_non_null(m);
        fill(m);
        text = render(m, NOW_US);
        assert_string_equal(text, full_expected);
        free(text);
        free(m);
}

static void test_render_appends(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        struct wc_buf b;

        assert_non_null(m);
        fill(m);
        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_str(&b, "prefix\n"), 0);
        assert_int_equal(wc_metrics_render(m, NOW_US, &b), 0);
        assert_int_equal(strncmp(b.data, "prefix\n", 7), 0);
        assert_string_equal(b.data + 7, full_expected);
        wc_buf_free(&b);
        free(m);
}

static void test_render_empty(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char *text;

        assert_non_null(m);
        memset(m, 0xA5, sizeof(*m)); /* init must not rely on zeroed memory */
        wc_metrics_init(m);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 0.000000\n"));
        assert_non_null(strstr(text, "\nwalcast_lag_bytes 0\n"));
        assert_non_null(strstr(text, "\nwalcast_ready 0\n"));
        /* a family without samples still declares itself */
        assert_non_null(strstr(text, "# TYPE walcast_sink_acks_total counter\n"
                                     "# HELP walcast_sink_errors_total"));
        assert_non_null(strstr(text, "# TYPE walcast_schema_changes_total "
                                     "counter\nwalcast_schema_changes_total{"
                                     "schema=\"_other\"} 0\n"));
        free(text);
        free(m);
}

static void test_label_escaping(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char *text;

        assert_non_null(m);
        wc_metrics_init(m);
        assert_int_equal(wc_metrics_add_sink(m, "a\"b\\c\nd"), 0);
        count(m, "we\"ird\\sch\nema");
        count(m, "plain");
        text = render(m, NOW_US);
        assert_non_null(strstr(
            text, "\nwalcast_sink_acks_total{sink=\"a\\\"b\\\\c\\nd\"} 0\n"));
        assert_non_null(strstr(
            text, "\nwalcast_sink_errors_total{sink=\"a\\\"b\\\\c\\nd\"} 0\n"));
        assert_non_null(strstr(text, "\nwalcast_schema_changes_total{schema="
                                     "\"we\\\"ird\\\\sch\\nema\"} 1\n"));
        assert_non_null(strstr(
            text, "\nwalcast_schema_changes_total{schema=\"plain\"} 1\n"));
        /* no raw newline escaped into a sample: every line is a comment or
         * starts with a metric name */
        for (const char *p = text; *p; p = strchr(p, '\n') + 1)
                assert_true(strncmp(p, "# ", 2) == 0 ||
                            strncmp(p, "walcast_", 8) == 0);
        free(text);
        free(m);
}

/* ---- schemas ---- */

static void test_schema_cap(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char name[32], line[96], *text;

        assert_non_null(m);
        wc_metrics_init(m);
        for (int i = 0; i < WC_METRICS_MAX_SCHEMAS; i++) {
                snprintf(name, sizeof(name), "tenant_%03d", i);
                count(m, name);
        }
        assert_int_equal(atomic_load(&m->nschemas), WC_METRICS_MAX_SCHEMAS);
        assert_int_equal(atomic_load(&m->other_schema_changes), 0);

        /* the 257th distinct schema, twice in a run (the cached verdict)
         * and once more after another schema */
        count(m, "tenant_256");
        count(m, "tenant_256");
        count(m, "tenant_000");
        count(m, "tenant_256");
        count(m, "tenant_257");
        assert_int_equal(atomic_load(&m->nschemas), WC_METRICS_MAX_SCHEMAS);
        assert_int_equal(atomic_load(&m->other_schema_changes), 4);
        assert_int_equal(atomic_load(&m->schemas[0].changes), 2);

        /* known schemas keep counting, whatever order they come in */
        count(m, "tenant_255");
        count(m, "tenant_255");
        count(m, "tenant_128");
        assert_int_equal(atomic_load(&m->schemas[255].changes), 3);
        assert_int_equal(atomic_load(&m->schemas[128].changes), 2);

        text = render(m, NOW_US);
        assert_null(strstr(text, "tenant_256"));
        assert_null(strstr(text, "tenant_257"));
        assert_int_equal(
            sample(text, "walcast_schema_changes_total{schema=\"_other\"} "),
            4);
        for (int i = 0; i < WC_METRICS_MAX_SCHEMAS; i++) {
                snprintf(
                    line, sizeof(line),
                    "walcast_schema_changes_total{schema=\"tenant_%03d\"} ", i);
                assert_non_null(find_line(text, line));
        }
        free(text);

        /* a re-initialised struct starts over, cache included */
        wc_metrics_init(m);
        count(m, "tenant_256");
        assert_int_equal(atomic_load(&m->nschemas), 1);
        assert_string_equal(m->schemas[0].name, "tenant_256");
        assert_int_equal(atomic_load(&m->other_schema_changes), 0);
        free(m);
}

static void test_schema_unlabelable(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char longname[WC_METRICS_NAME_MAX + 10];

        assert_non_null(m);
        wc_metrics_init(m);
        memset(longname, 'x', sizeof(longname));
        /* too long for an entry, empty, the overflow label itself, a NUL
         * inside: all count, none gets an entry */
        wc_metrics_count_schema(m, longname, sizeof(longname));
        wc_metrics_count_schema(m, longname, WC_METRICS_NAME_MAX);
        wc_metrics_count_schema(m, "", 0);
        count(m, "_other");
        wc_metrics_count_schema(m, "a\0b", 3);
        assert_int_equal(atomic_load(&m->nschemas), 0);
        assert_int_equal(atomic_load(&m->other_schema_changes), 5);

        /* the longest name that fits does get one; len is what counts,
         * not a NUL after it */
        wc_metrics_count_schema(m, longname, WC_METRICS_NAME_MAX - 1);
        wc_metrics_count_schema(m, "public.extra", 6);
        assert_int_equal(atomic_load(&m->nschemas), 2);
        assert_int_equal(strlen(m->schemas[0].name), WC_METRICS_NAME_MAX - 1);
        assert_string_equal(m->schemas[1].name, "public");
        free(m);
}

/* ---- sinks ---- */

static void test_sinks(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char name[WC_METRICS_NAME_MAX + 8];

        assert_non_null(m);
        wc_metrics_init(m);
        assert_int_equal(wc_metrics_add_sink(m, ""), -EINVAL);
        assert_int_equal(wc_metrics_add_sink(m, "kafka"), 0);
        assert_int_equal(wc_metrics_add_sink(m, "file"), 1);
        /* a reload re-registers: same entry, counters continue */
        add(&m->sinks[0].acks, 5);
        assert_int_equal(wc_metrics_add_sink(m, "kafka"), 0);
        assert_int_equal(atomic_load(&m->sinks[0].acks), 5);
        assert_int_equal(atomic_load(&m->nsinks), 2);
        /* two sinks of one kind, named apart (config: "kafka#3"), are
         * two series */
        assert_int_equal(wc_metrics_add_sink(m, "kafka#3"), 2);
        add(&m->sinks[2].acks, 7);
        {
                char *text = render(m, NOW_US);

                assert_int_equal(
                    sample(text, "walcast_sink_acks_total{sink=\"kafka\"} "),
                    5);
                assert_int_equal(
                    sample(text, "walcast_sink_acks_total{sink=\"kafka#3\"} "),
                    7);
                free(text);
        }
        wc_metrics_init(m);
        assert_int_equal(wc_metrics_add_sink(m, "kafka"), 0);
        assert_int_equal(wc_metrics_add_sink(m, "file"), 1);

        for (int i = 2; i < WC_METRICS_MAX_SINKS; i++) {
                snprintf(name, sizeof(name), "sink%d", i);
                assert_int_equal(wc_metrics_add_sink(m, name), i);
        }
        assert_int_equal(wc_metrics_add_sink(m, "one too many"), -ENOSPC);
        /* a known name still answers when the table is full */
        assert_int_equal(wc_metrics_add_sink(m, "file"), 1);
        assert_int_equal(atomic_load(&m->nsinks), WC_METRICS_MAX_SINKS);

        /* a long name is cut without splitting a UTF-8 sequence: 126
         * ASCII bytes then "é" (2 bytes) leaves no room for the é */
        wc_metrics_init(m);
        memset(name, 'p', 126);
        memcpy(name + 126, "\xc3\xa9tail", 7);
        assert_int_equal(wc_metrics_add_sink(m, name), 0);
        assert_int_equal(strlen(m->sinks[0].name), 126);
        free(m);
}

/* ---- lag ---- */

static void test_lag(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        char *text;

        assert_non_null(m);
        wc_metrics_init(m);

        /* a confirmed LSN past a stale WAL end is no lag */
        set(&m->confirmed_lsn, 5000);
        set(&m->server_wal_end, 4000);
        text = render(m, NOW_US);
        assert_int_equal(sample(text, "walcast_lag_bytes "), 0);
        free(text);

        set(&m->server_wal_end, 5000 + ((uint64_t)1 << 40));
        text = render(m, NOW_US);
        assert_int_equal(sample(text, "walcast_lag_bytes "), (uint64_t)1 << 40);
        free(text);

        /* no commit seen yet */
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 0.000000\n"));
        free(text);

        /* microseconds are kept exactly */
        atomic_store(&m->last_commit_time_us, NOW_US - 3600000001ll);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 3600.000001\n"));
        free(text);

        atomic_store(&m->last_commit_time_us, NOW_US - 999999);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 0.999999\n"));
        free(text);

        /* caught up (nothing in flight, no transaction open): an idle
         * database's last commit an hour ago is no lag */
        atomic_store(&m->last_commit_time_us, NOW_US - 3600000000ll);
        atomic_store(&m->caught_up, 1);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 0.000000\n"));
        free(text);
        atomic_store(&m->caught_up, 0);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 3600.000000\n"));
        free(text);

        /* a commit stamped in our future (clock skew) is no lag */
        atomic_store(&m->last_commit_time_us, NOW_US + 5000000);
        text = render(m, NOW_US);
        assert_non_null(strstr(text, "\nwalcast_lag_seconds 0.000000\n"));
        free(text);

        /* ready needs both halves */
        atomic_store(&m->sinks_ready, 1);
        text = render(m, NOW_US);
        assert_int_equal(sample(text, "walcast_ready "), 0);
        assert_int_equal(sample(text, "walcast_streaming "), 0);
        free(text);
        atomic_store(&m->streaming, 1);
        text = render(m, NOW_US);
        assert_int_equal(sample(text, "walcast_ready "), 1);
        free(text);
        free(m);
}

/* ---- a tiny HTTP client ---- */

struct resp {
        int status;
        char *head; /* status line and headers */
        char *body;
        size_t body_len;
};

static void resp_free(struct resp *r)
{
        free(r->head);
        free(r->body);
}

/* A port that was free a moment ago: MHD wants a number, not 0. */
static unsigned free_port(void)
{
        struct sockaddr_in sin = {.sin_family = AF_INET};
        socklen_t len = sizeof(sin);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        unsigned port;

        assert_true(fd >= 0);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        port = ntohs(sin.sin_port);
        close(fd);
        return port;
}

static int http_connect(int family, unsigned port)
{
        struct timeval tv = {.tv_sec = 10};
        int fd = socket(family, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (family == AF_INET) {
                struct sockaddr_in sin = {.sin_family = AF_INET};

                sin.sin_port = htons((uint16_t)port);
                sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                assert_int_equal(
                    connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        } else {
                struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

                sin6.sin6_port = htons((uint16_t)port);
                sin6.sin6_addr = in6addr_loopback;
                assert_int_equal(
                    connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
        }
        return fd;
}

static struct resp http_family(int family, unsigned port, const char *method,
                               const char *path)
{
        struct resp r = {0};
        struct wc_buf in;
        char req[256], buf[4096];
        const char *sep;
        ssize_t n;
        int fd = http_connect(family, port);

        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                 "Content-Length: 0\r\n\r\n",
                 method, path);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        wc_buf_init(&in);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                assert_int_equal(wc_buf_append(&in, buf, (size_t)n), 0);
        assert_int_equal(n, 0); /* EOF, not a timeout */
        close(fd);

        assert_non_null(in.data);
        assert_int_equal(strncmp(in.data, "HTTP/1.1 ", 9), 0);
        r.status = atoi(in.data + 9);
        sep = strstr(in.data, "\r\n\r\n");
        assert_non_null(sep);
        r.head = strndup(in.data, (size_t)(sep - in.data) + 2);
        r.body_len = in.len - (size_t)(sep + 4 - in.data);
        r.body = strndup(sep + 4, r.body_len);
        assert_non_null(r.head);
        assert_non_null(r.body);
        wc_buf_free(&in);
        return r;
}

static struct resp http(unsigned port, const char *method, const char *path)
{
        return http_family(AF_INET, port, method, path);
}

static bool has_header(const struct resp *r, const char *line)
{
        char want[256];

        snprintf(want, sizeof(want), "\r\n%s\r\n", line);
        return strcasestr(r->head, want) != NULL;
}

/* Serves on "host:port" or fails the test with the reason. */
static struct wc_metrics_server *serve(const char *host, unsigned port,
                                       const struct wc_metrics *m)
{
        char listen[64], err[512] = "";
        struct wc_metrics_server *s;

        snprintf(listen, sizeof(listen), "%s:%u", host, port);
        s = wc_metrics_serve(listen, m, err, sizeof(err));
        if (!s)
                fail_msg("wc_metrics_serve(\"%s\"): %s", listen, err);
        return s;
}

/* ---- the server ---- */

static void test_server_endpoints(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        struct wc_metrics_server *s;
        unsigned port = free_port();
        struct resp r;
        char *expected;

        assert_non_null(m);
        fill(m);
        /* no commit time: the scrape is then exactly what render gives */
        atomic_store(&m->last_commit_time_us, 0);
        atomic_store(&m->streaming, 0);
        s = serve("127.0.0.1", port, m);

        r = http(port, "GET", "/metrics");
        assert_int_equal(r.status, 200);
        assert_true(has_header(
            &r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
        /* the pipeline's, then the endpoint's own: nothing closed yet */
        expected = render(m, NOW_US);
        assert_int_equal(strncmp(r.body, expected, strlen(expected)), 0);
        assert_string_equal(
            r.body + strlen(expected),
            "# HELP walcast_metrics_connections_closed_total Connections to "
            "this endpoint it closed: a request not answered in time (a slow "
            "or idle client), or the oldest of a client address or of all "
            "past their share.\n"
            "# TYPE walcast_metrics_connections_closed_total counter\n"
            "walcast_metrics_connections_closed_total{reason=\"deadline\"} 0\n"
            "walcast_metrics_connections_closed_total{reason=\"client_limit\"} "
            "0\n"
            "walcast_metrics_connections_closed_total{reason=\"total_limit\"} "
            "0\n");
        free(expected);
        resp_free(&r);

        r = http(port, "GET", "/healthz");
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "ok\n");
        resp_free(&r);

        r = http(port, "GET", "/readyz");
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body, "not ready: streaming=0 sinks_ready=1\n");
        resp_free(&r);

        atomic_store(&m->sinks_ready, 0);
        r = http(port, "GET", "/readyz");
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body, "not ready: streaming=0 sinks_ready=0\n");
        resp_free(&r);

        atomic_store(&m->streaming, 1);
        atomic_store(&m->sinks_ready, 1);
        r = http(port, "GET", "/readyz");
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "ready\n");
        resp_free(&r);

        r = http(port, "GET", "/nope");
        assert_int_equal(r.status, 404);
        resp_free(&r);

        r = http(port, "GET", "/metrics/");
        assert_int_equal(r.status, 404);
        resp_free(&r);

        /* the query string is not part of the path */
        r = http(port, "GET", "/healthz?verbose=1");
        assert_int_equal(r.status, 200);
        resp_free(&r);

        r = http(port, "POST", "/metrics");
        assert_int_equal(r.status, 405);
        assert_true(has_header(&r, "Allow: GET, HEAD"));
        resp_free(&r);

        r = http(port, "DELETE", "/healthz");
        assert_int_equal(r.status, 405);
        resp_free(&r);

        r = http(port, "HEAD", "/metrics");
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 0);
        resp_free(&r);

        /* the scrape follows the counters */
        add(&m->changes[WC_OP_INSERT], 32);
        r = http(port, "GET", "/metrics");
        assert_int_equal(
            sample(r.body, "walcast_changes_total{op=\"insert\"} "), 42);
        resp_free(&r);

        wc_metrics_server_stop(s);
        free(m);
}

static void test_server_ipv6(void **state)
{
        struct wc_metrics *m;
        struct wc_metrics_server *s;
        unsigned port;
        struct resp r;
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6};
        int fd = socket(AF_INET6, SOCK_STREAM, 0), bound;

        /* a host (or container) without IPv6 loopback */
        any6.sin6_addr = in6addr_loopback;
        bound =
            fd >= 0 && bind(fd, (struct sockaddr *)&any6, sizeof(any6)) == 0;
        if (fd >= 0)
                close(fd);
        if (!bound)
                skip();
        m = malloc(sizeof(*m));
        assert_non_null(m);
        wc_metrics_init(m);

        port = free_port();
        s = serve("[::1]", port, m);
        r = http_family(AF_INET6, port, "GET", "/healthz");
        assert_int_equal(r.status, 200);
        resp_free(&r);
        wc_metrics_server_stop(s);

        /* ":port" is every address, IPv4 included */
        port = free_port();
        s = serve("", port, m);
        r = http_family(AF_INET6, port, "GET", "/healthz");
        assert_int_equal(r.status, 200);
        resp_free(&r);
        r = http_family(AF_INET, port, "GET", "/healthz");
        assert_int_equal(r.status, 200);
        resp_free(&r);
        wc_metrics_server_stop(s);

        /* a name resolves */
        port = free_port();
        s = serve("localhost", port, m);
        wc_metrics_server_stop(s);
        free(m);
}

static void expect_refused(const struct wc_metrics *m, const char *listen,
                           const char *why)
{
        char err[512] = "";
        char quoted[128];

        assert_null(wc_metrics_serve(listen, m, err, sizeof(err)));
        snprintf(quoted, sizeof(quoted), "\"%s\"", listen);
        if (!strstr(err, quoted) || !strstr(err, why))
                fail_msg("listen \"%s\": got \"%s\", wanted %s and \"%s\"",
                         listen, err, quoted, why);
}

static void test_server_bad_listen(void **state)
{
        struct wc_metrics *m = malloc(sizeof(*m));
        struct wc_metrics_server *s;
        char taken[64];
        unsigned port;

        assert_non_null(m);
        wc_metrics_init(m);
        expect_refused(m, "nonsense", "expected host:port");
        expect_refused(m, "", "expected host:port");
        expect_refused(m, "[::1]9187", "expected host:port");
        expect_refused(m, "[]:9187", "expected host:port");
        expect_refused(m, "127.0.0.1:99999", "port must be");
        expect_refused(m, "127.0.0.1:0", "port must be");
        expect_refused(m, "127.0.0.1:", "port must be");
        expect_refused(m, "127.0.0.1:http", "port must be");
        expect_refused(m, "127.0.0.1:-1", "port must be");
        expect_refused(m, "::1:9187", "needs brackets");
        expect_refused(m, "[not-an-address]:9187", "could not resolve");

        /* the port is taken: MHD's reason reaches the message */
        port = free_port();
        s = serve("127.0.0.1", port, m);
        snprintf(taken, sizeof(taken), "127.0.0.1:%u", port);
        expect_refused(m, taken, "could not serve metrics");
        wc_metrics_server_stop(s);

        /* stop takes NULL */
        wc_metrics_server_stop(NULL);
        free(m);
}

/* ---- a scrape storm while the counters move ---- */

#define STORM_SCHEMAS 300 /* past the cap, so "_other" fills too */
#define STORM_SCRAPES 1000
#define STORM_SINKS   8

struct storm {
        struct wc_metrics *m;
        atomic_bool stop;
        atomic_uint scrapes;                /* done so far, paces the writer */
        bool writer_failed;                 /* read after join */
        char torn[WC_METRICS_NAME_MAX + 8]; /* the reader's finding */
        uint64_t renders;
};

/* The one writer, as the main loop is: counts, and registers sinks and
 * schemas while the server reads them.  New names are paced by the
 * scrapes, each at a random point of a scrape's length, so that
 * registrations (and the cap, reached near scrape 850) overlap renders
 * whatever the machine's speed. */
static void *writer(void *arg)
{
        struct storm *st = arg;
        struct wc_metrics *m = st->m;
        unsigned seed = 6, allowed = 0, nsinks = 0;
        uint64_t next_at = 0;
        char name[32];

        for (uint64_t i = 0; !atomic_load(&st->stop); i++) {
                unsigned done = atomic_load(&st->scrapes);
                unsigned target = done * STORM_SCHEMAS / STORM_SCRAPES;

                if (target >= STORM_SCHEMAS)
                        target = STORM_SCHEMAS - 1;
                if (allowed < target && i >= next_at) {
                        uint64_t per_scrape = i / (done + 1) + 1;

                        allowed++;
                        next_at = i + (uint64_t)rand_r(&seed) % per_scrape;
                }
                snprintf(name, sizeof(name), "tenant_%03u",
                         (unsigned)(i % (allowed + 1)));
                count(m, name);
                if (nsinks < STORM_SINKS && done >= nsinks * 100) {
                        snprintf(name, sizeof(name), "sink_%u", nsinks++);
                        if (wc_metrics_add_sink(m, name) < 0)
                                st->writer_failed = true;
                }
                add(&m->changes[WC_OP_INSERT], 1);
                add(&m->transactions, 1);
                add(&m->bytes_received, 100);
                if (nsinks > 0)
                        add(&m->sinks[i % nsinks].acks, 1);
                set(&m->confirmed_lsn, i);
                set(&m->server_wal_end, i + 7);
        }
        return NULL;
}

/* Counts the labels of the samples that start with prefix; -1 with the
 * label in bad when one is not "_other" or stem plus a number below limit,
 * i.e. not a name that was registered, whole.  No cmocka assertion: the
 * in-process reader calls it off the main thread. */
static int scan_labels(const char *text, const char *prefix, const char *stem,
                       unsigned limit, char *bad, size_t badlen)
{
        size_t pl = strlen(prefix), sl = strlen(stem);
        int n = 0;

        for (const char *p = find_line(text, prefix); p;
             p = find_line(p + 1, prefix)) {
                const char *v = p + pl, *end = strchr(v, '"');
                char *num_end;
                unsigned long k;

                if (!end)
                        end = v + strlen(v);
                n++;
                if (end - v == 6 && strncmp(v, "_other", 6) == 0)
                        continue;
                if (strncmp(v, stem, sl) == 0 &&
                    (k = strtoul(v + sl, &num_end, 10), num_end == end) &&
                    num_end > v + sl && k < limit)
                        continue;
                snprintf(bad, badlen, "%.*s", (int)(end - v), v);
                return -1;
        }
        return n;
}

/* All the label checks of one scrape; the number of schema samples or -1
 * with the offending label in bad. */
static int check_scrape(const char *text, char *bad, size_t badlen)
{
        int n = scan_labels(text, "walcast_schema_changes_total{schema=\"",
                            "tenant_", STORM_SCHEMAS, bad, badlen);

        if (n < 0)
                return -1;
        if (scan_labels(text, "walcast_sink_acks_total{sink=\"", "sink_",
                        STORM_SINKS, bad, badlen) < 0 ||
            scan_labels(text, "walcast_sink_errors_total{sink=\"", "sink_",
                        STORM_SINKS, bad, badlen) < 0)
                return -1;
        return n;
}

/* Renders in a tight loop next to the HTTP scrapes: many more reads than
 * the network allows, so a publication bug has more chances to show. */
static void *reader(void *arg)
{
        struct storm *st = arg;
        struct wc_buf b;

        wc_buf_init(&b);
        while (!atomic_load(&st->stop) && !st->torn[0]) {
                wc_buf_reset(&b);
                if (wc_metrics_render(st->m, NOW_US, &b) < 0) {
                        snprintf(st->torn, sizeof(st->torn), "render failed");
                        break;
                }
                if (check_scrape(b.data, st->torn, sizeof(st->torn)) < 0)
                        break;
                st->renders++;
        }
        wc_buf_free(&b);
        return NULL;
}

static void test_server_storm(void **state)
{
        struct storm st = {0};
        struct wc_metrics_server *s;
        uint64_t last_inserts = 0, last_txn = 0;
        unsigned port = free_port();
        pthread_t w, rd;
        char bad[WC_METRICS_NAME_MAX + 8];
        int nschema = 0;

        st.m = malloc(sizeof(*st.m));
        assert_non_null(st.m);
        wc_metrics_init(st.m);
        atomic_init(&st.stop, false);
        atomic_init(&st.scrapes, 0);
        s = serve("127.0.0.1", port, st.m);
        assert_int_equal(pthread_create(&w, NULL, writer, &st), 0);
        assert_int_equal(pthread_create(&rd, NULL, reader, &st), 0);

        for (int i = 0; i < STORM_SCRAPES; i++) {
                struct resp r = http(port, "GET", "/metrics");
                uint64_t inserts, txn;

                assert_int_equal(r.status, 200);
                nschema = check_scrape(r.body, bad, sizeof(bad));
                if (nschema < 0)
                        fail_msg("scrape %d: torn label \"%s\"", i, bad);
                assert_true(nschema >= 1 &&
                            nschema <= WC_METRICS_MAX_SCHEMAS + 1);
                /* counters never go backwards */
                inserts =
                    sample(r.body, "walcast_changes_total{op=\"insert\"} ");
                txn = sample(r.body, "walcast_transactions_total ");
                assert_true(inserts >= last_inserts);
                assert_true(txn >= last_txn);
                last_inserts = inserts;
                last_txn = txn;
                resp_free(&r);
                atomic_fetch_add(&st.scrapes, 1);
        }

        /* the writer reaches past the cap (it usually has already) */
        for (int i = 0;
             i < 10000 && atomic_load(&st.m->other_schema_changes) == 0; i++)
                usleep(1000);
        atomic_store(&st.stop, true);
        assert_int_equal(pthread_join(w, NULL), 0);
        assert_int_equal(pthread_join(rd, NULL), 0);
        wc_metrics_server_stop(s);
        if (st.torn[0])
                fail_msg("in-process render: torn label \"%s\"", st.torn);
        assert_false(st.writer_failed);
        assert_true(st.renders > 0);
        assert_int_equal(atomic_load(&st.m->nschemas), WC_METRICS_MAX_SCHEMAS);
        assert_true(atomic_load(&st.m->other_schema_changes) > 0);
        free(st.m);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_render_full),
            cmocka_unit_test(test_render_appends),
            cmocka_unit_test(test_render_empty),
            cmocka_unit_test(test_label_escaping),
            cmocka_unit_test(test_schema_cap),
            cmocka_unit_test(test_schema_unlabelable),
            cmocka_unit_test(test_sinks),
            cmocka_unit_test(test_lag),
            cmocka_unit_test(test_server_endpoints),
            cmocka_unit_test(test_server_ipv6),
            cmocka_unit_test(test_server_bad_listen),
            cmocka_unit_test(test_server_storm),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
