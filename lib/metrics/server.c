/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of the metrics: libmicrohttpd driven by a thread of ours,
 * three read-only endpoints.  HTTP parsing is left to the library on
 * purpose; this file maps paths to bodies and keeps slow clients from
 * holding the endpoints: each connection gets a deadline for its request,
 * and a client address or everyone together past their share of
 * connections loses its oldest one instead of locking out the next.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <microhttpd.h>

#include "core/core.h"
#include "metrics/metrics.h"

/*
 * A scraper or two and a health checker.  MHD's own connection timeout is
 * one of idleness, which a client sending a byte a second never reaches:
 * REQUEST_TIMEOUT_MS bounds the whole time from a connection's start (or
 * its previous answer) to the end of the next answer.  Past PER_CLIENT
 * connections from one address, or TOTAL in all, a new connection closes
 * the oldest of that address (or of all) rather than waiting behind it,
 * so a health checker is answered at once while someone holds sockets
 * open.  MHD's own limits, higher, are only a backstop for bursts (it
 * accepts up to 11 connections in one turn before we see them).
 * docs/configuration.md (metrics) states these numbers.
 */
#define REQUEST_TIMEOUT_MS 5000
#define PER_CLIENT         8u
#define TOTAL              32u
#define MHD_PER_CLIENT     (PER_CLIENT + 16u)
#define MHD_TOTAL          (TOTAL + 32u)
/* the longest our thread sleeps without looking at deadlines */
#define TICK_MS 250
/* a scrape with every sink and schema is a few tens of KiB; start big
 * enough that the usual one needs no regrowth */
#define RENDER_RESERVE 16384

/* why we closed a connection: walcast_metrics_connections_closed_total's
 * reason label */
enum close_reason {
        CLOSE_DEADLINE,     /* no answer within REQUEST_TIMEOUT_MS */
        CLOSE_CLIENT_LIMIT, /* the oldest of an address past PER_CLIENT */
        CLOSE_TOTAL_LIMIT,  /* the oldest of all past TOTAL */
        CLOSE__COUNT,
};

static const char *const close_reasons[CLOSE__COUNT] = {
    "deadline", "client_limit", "total_limit"};

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT    "text/plain; charset=utf-8"

/* One open connection, known from MHD's connection notifications.  Only
 * the server thread touches the list (and MHD_stop_daemon() after that
 * thread has ended). */
struct conn {
        struct conn *prev, *next;
        int fd;
        /* the client's address, IPv4 as IPv4-mapped IPv6 */
        unsigned char addr[16];
        int64_t since_ms; /* opened, or last answered */
        bool closing;     /* shut down by us; MHD closes it next turn */
};

struct wc_metrics_server {
        struct MHD_Daemon *daemon;
        const struct wc_metrics *m;
        pthread_t thread;
        bool thread_started;
        int stop_fd;  /* eventfd: the thread ends when it is written */
        int epoll_fd; /* MHD's, ready when MHD has something to do */
        struct conn *head, *tail;
        unsigned nconns;
        /* connections we closed, by reason; the server thread alone
         * closes them and renders the count */
        uint64_t closed[CLOSE__COUNT];
        /*
         * MHD explains a failed start (bind errors above all) only through
         * its logger.  The logger keeps the first message it gets on the
         * thread that is starting the daemon, while starting; everything
         * else, including anything the server thread says later, is
         * dropped: a library does not log.
         */
        pthread_t starter;
        atomic_bool starting;
        char why[256];
};

/* MHD hands over its own printf formats */
__attribute__((format(printf, 2, 0))) static void
log_cb(void *cls, const char *fmt, va_list ap)
{
        struct wc_metrics_server *s = cls;
        size_t n;

        if (!atomic_load(&s->starting) ||
            !pthread_equal(pthread_self(), s->starter) || s->why[0])
                return;
        vsnprintf(s->why, sizeof(s->why), fmt, ap);
        n = strlen(s->why);
        while (n > 0 && (s->why[n - 1] == '\n' || s->why[n - 1] == '.'))
                s->why[--n] = '\0';
        /* our messages are lowercase; "IPv6" and the like stay as they are */
        if (n > 1 && s->why[0] >= 'A' && s->why[0] <= 'Z' && s->why[1] >= 'a' &&
            s->why[1] <= 'z')
                s->why[0] = (char)(s->why[0] - 'A' + 'a');
}

/* ---- requests ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             struct MHD_Response *resp, const char *type)
{
        enum MHD_Result ret;

        if (!resp)
                return MHD_NO; /* MHD closes the connection */
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type) !=
            MHD_YES) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        ret = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status,
                                  const char *body)
{
        /* the bodies are string literals: MHD may keep pointing at them */
        return reply(c, status,
                     MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                     MHD_RESPMEM_PERSISTENT),
                     CT_TEXT);
}

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The endpoint's own counter, after the pipeline's (docs/walcastd.8.md). */
static int render_closed(const struct wc_metrics_server *s, struct wc_buf *b)
{
        static const char family[] =
            "# HELP walcast_metrics_connections_closed_total Connections "
            "to this endpoint it closed: a request not answered in time "
            "(a slow or idle client), or the oldest of a client address or "
            "of all past their share.\n"
            "# TYPE walcast_metrics_connections_closed_total counter\n";
        char line[128];
        int r = wc_buf_append(b, family, sizeof(family) - 1);

        for (int i = 0; i < CLOSE__COUNT && r == 0; i++) {
                int n = snprintf(line, sizeof(line),
                                 "walcast_metrics_connections_closed_total{"
                                 "reason=\"%s\"} %llu\n",
                                 close_reasons[i],
                                 (unsigned long long)s->closed[i]);

                r = wc_buf_append(b, line, (size_t)n);
        }
        return r;
}

static enum MHD_Result reply_metrics(struct wc_metrics_server *s,
                                     struct MHD_Connection *c)
{
        struct MHD_Response *resp;
        struct wc_buf b;

        wc_buf_init(&b);
        if (wc_buf_reserve(&b, RENDER_RESERVE) < 0 ||
            wc_metrics_render(s->m, now_us(), &b) < 0 ||
            render_closed(s, &b) < 0) {
                wc_buf_free(&b);
                return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                  "out of memory\n");
        }
        /* takes ownership of b.data: MHD free()s it with the response */
        resp = MHD_create_response_from_buffer(b.len, b.data,
                                               MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                wc_buf_free(&b);
                return MHD_NO;
        }
        return reply(c, MHD_HTTP_OK, resp, CT_METRICS);
}

static enum MHD_Result reply_ready(struct wc_metrics_server *s,
                                   struct MHD_Connection *c)
{
        int streaming =
            atomic_load_explicit(&s->m->streaming, memory_order_relaxed) != 0;
        int sinks_ready =
            atomic_load_explicit(&s->m->sinks_ready, memory_order_relaxed) != 0;
        char body[64];
        int n;

        if (streaming && sinks_ready)
                return reply_text(c, MHD_HTTP_OK, "ready\n");
        /* say which half is missing: that is what an operator asks next */
        n = snprintf(body, sizeof(body),
                     "not ready: streaming=%d sinks_ready=%d\n", streaming,
                     sinks_ready);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                     MHD_create_response_from_buffer((size_t)n, body,
                                                     MHD_RESPMEM_MUST_COPY),
                     CT_TEXT);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
        struct wc_metrics_server *s = cls;

        /* HEAD is GET without the body, which MHD drops by itself */
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
                struct MHD_Response *resp = MHD_create_response_from_buffer(
                    strlen("method not allowed\n"),
                    (void *)"method not allowed\n", MHD_RESPMEM_PERSISTENT);

                if (resp && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                                    "GET, HEAD") != MHD_YES) {
                        MHD_destroy_response(resp);
                        return MHD_NO;
                }
                return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp, CT_TEXT);
        }
        if (strcmp(url, "/metrics") == 0)
                return reply_metrics(s, c);
        if (strcmp(url, "/healthz") == 0)
                return reply_text(c, MHD_HTTP_OK, "ok\n");
        if (strcmp(url, "/readyz") == 0)
                return reply_ready(s, c);
        return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- connections: deadlines and shares ---- */

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ends c's connection: MHD sees the end of its stream on its next turn
 * and closes it, with the usual notifications.  The fd is MHD's and still
 * open: MHD closes it only after telling us (MHD_CONNECTION_NOTIFY_CLOSED),
 * on this same thread. */
static void conn_close(struct wc_metrics_server *s, struct conn *c,
                       enum close_reason why)
{
        if (c->closing)
                return;
        c->closing = true;
        s->closed[why]++;
        s->nconns--;
        shutdown(c->fd, SHUT_RDWR);
}

/* The open connection, other than self, that has waited longest for its
 * request, among those from addr (or all when addr is NULL). */
static struct conn *oldest(struct wc_metrics_server *s, const struct conn *self,
                           const unsigned char *addr)
{
        struct conn *best = NULL;

        for (struct conn *c = s->head; c; c = c->next) {
                if (c == self || c->closing)
                        continue;
                if (addr && memcmp(c->addr, addr, sizeof(c->addr)) != 0)
                        continue;
                if (!best || c->since_ms < best->since_ms)
                        best = c;
        }
        return best;
}

static void conn_address(struct MHD_Connection *mc, unsigned char out[16])
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;

        memset(out, 0, 16);
        if (sa && sa->sa_family == AF_INET6) {
                memcpy(
                    out,
                    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                    16);
        } else if (sa && sa->sa_family == AF_INET) {
                out[10] = out[11] = 0xff;
                memcpy(
                    out + 12,
                    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                    4);
        }
}

static void on_connection(void *cls, struct MHD_Connection *mc,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode what)
{
        struct wc_metrics_server *s = cls;
        struct conn *c = *socket_context, *victim;
        const union MHD_ConnectionInfo *ci;
        unsigned same = 0;

        if (what == MHD_CONNECTION_NOTIFY_CLOSED) {
                if (!c)
                        return;
                if (!c->closing)
                        s->nconns--;
                if (c->prev)
                        c->prev->next = c->next;
                else
                        s->head = c->next;
                if (c->next)
                        c->next->prev = c->prev;
                else
                        s->tail = c->prev;
                free(c);
                *socket_context = NULL;
                return;
        }
        if (what != MHD_CONNECTION_NOTIFY_STARTED)
                return;
        ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof(*c));
        if (!c || !ci) {
                /* untracked, it has MHD's idle timeout and limits only */
                free(c);
                return;
        }
        c->fd = ci->connect_fd;
        conn_address(mc, c->addr);
        c->since_ms = mono_ms();
        c->prev = s->tail;
        if (s->tail)
                s->tail->next = c;
        else
                s->head = c;
        s->tail = c;
        s->nconns++;
        *socket_context = c;

        for (struct conn *o = s->head; o; o = o->next)
                if (!o->closing && memcmp(o->addr, c->addr, 16) == 0)
                        same++;
        if (same > PER_CLIENT && (victim = oldest(s, c, c->addr)))
                conn_close(s, victim, CLOSE_CLIENT_LIMIT);
        if (s->nconns > TOTAL && (victim = oldest(s, c, NULL)))
                conn_close(s, victim, CLOSE_TOTAL_LIMIT);
}

/* A request answered: the connection's next one gets a fresh deadline. */
static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        struct conn *c = ci ? ci->socket_context : NULL;

        (void)cls;
        (void)req_cls;
        (void)why;
        if (c)
                c->since_ms = mono_ms();
}

/* Closes what is past its deadline; returns the ms to the next one. */
static int64_t close_overdue(struct wc_metrics_server *s, int64_t now)
{
        int64_t next = TICK_MS;

        for (struct conn *c = s->head; c; c = c->next) {
                int64_t left = c->since_ms + REQUEST_TIMEOUT_MS - now;

                if (c->closing)
                        continue;
                if (left <= 0)
                        conn_close(s, c, CLOSE_DEADLINE);
                else if (left < next)
                        next = left;
        }
        return next;
}

static void *serve_thread(void *arg)
{
        struct wc_metrics_server *s = arg;
        struct pollfd fds[2] = {
            {.fd = s->epoll_fd, .events = POLLIN},
            {.fd = s->stop_fd, .events = POLLIN},
        };

        for (;;) {
                MHD_UNSIGNED_LONG_LONG mhd_ms;
                int64_t wait = close_overdue(s, mono_ms());

                if (MHD_get_timeout(s->daemon, &mhd_ms) == MHD_YES &&
                    mhd_ms < (MHD_UNSIGNED_LONG_LONG)wait)
                        wait = (int64_t)mhd_ms;
                if (poll(fds, 2, (int)wait) < 0 && errno != EINTR)
                        break;
                if (fds[1].revents)
                        break;
                MHD_run(s->daemon);
        }
        return NULL;
}

/* ---- the listen address ---- */

/*
 * Splits "host:port", "[v6]:port" or ":port".  host gets "" for ":port"
 * (every address), port the digits for getaddrinfo; *ret_bracketed says
 * the host was an IPv6 literal.
 */
static int parse_listen(const char *listen, char *host, size_t hostlen,
                        char port[6], unsigned *ret_port, bool *ret_bracketed,
                        char *errbuf, size_t errlen)
{
        const char *colon, *p;
        bool bracketed = false;
        size_t hl, pl;
        unsigned long v = 0;

        if (listen[0] == '[') {
                const char *close = strchr(listen, ']');

                if (!close || close[1] != ':' || close == listen + 1)
                        goto err_form;
                bracketed = true;
                hl = (size_t)(close - listen - 1);
                if (hl >= hostlen)
                        goto err_form;
                memcpy(host, listen + 1, hl);
                colon = close + 1;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        goto err_form;
                hl = (size_t)(colon - listen);
                if (memchr(listen, ':', hl)) {
                        wc_errorf(errbuf, errlen,
                                  "invalid metrics listen address \"%s\": "
                                  "an IPv6 address needs brackets, as in "
                                  "[::1]:9187",
                                  listen);
                        return -EINVAL;
                }
                if (hl >= hostlen)
                        goto err_form;
                memcpy(host, listen, hl);
        }
        host[hl] = '\0';

        p = colon + 1;
        pl = strlen(p);
        if (pl == 0 || pl > 5 || strspn(p, "0123456789") != pl)
                goto err_port;
        for (size_t i = 0; i < pl; i++)
                v = v * 10 + (unsigned long)(p[i] - '0');
        /* port 0 would bind somewhere nobody can be told about */
        if (v == 0 || v > 65535)
                goto err_port;
        memcpy(port, p, pl + 1);
        *ret_port = (unsigned)v;
        *ret_bracketed = bracketed;
        return 0;

err_port:
        wc_errorf(errbuf, errlen,
                  "invalid metrics listen address \"%s\": port must be a "
                  "number from 1 to 65535",
                  listen);
        return -EINVAL;
err_form:
        wc_errorf(errbuf, errlen,
                  "invalid metrics listen address \"%s\": expected "
                  "host:port, [ipv6]:port or :port",
                  listen);
        return -EINVAL;
}

/* 0 or -EADDRNOTAVAIL with s->why saying what MHD said. */
static int start_on(struct wc_metrics_server *s, const struct addrinfo *ai,
                    unsigned port, bool wildcard)
{
        /* our thread runs MHD (serve_thread), so that it can close
         * connections between MHD's turns; epoll rather than select,
         * which fails once the daemon's descriptors pass FD_SETSIZE */
        unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

        /* ":port" means every address: one IPv6 socket that also takes
         * IPv4; a given IPv6 address gets a v6-only socket */
        if (ai->ai_family == AF_INET6)
                flags |= wildcard ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;

        s->why[0] = '\0';
        s->starter = pthread_self();
        atomic_store(&s->starting, true);
        /* the logger goes first so that no start message escapes it;
         * MHD's idle timeout a second past our deadline, a backstop, so
         * that every slow or idle client is ours to close, and counted */
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handle, s,
            MHD_OPTION_EXTERNAL_LOGGER, log_cb, s, MHD_OPTION_SOCK_ADDR,
            ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, MHD_TOTAL,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, MHD_PER_CLIENT,
            MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)(REQUEST_TIMEOUT_MS / 1000 + 1),
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
        atomic_store(&s->starting, false);
        return s->daemon ? 0 : -EADDRNOTAVAIL;
}

struct wc_metrics_server *wc_metrics_serve(const char *listen,
                                           const struct wc_metrics *m,
                                           char *errbuf, size_t errlen)
{
        struct addrinfo hints = {0}, *res = NULL;
        const union MHD_DaemonInfo *di;
        struct wc_metrics_server *s;
        char host[256], port[6], first_why[sizeof(s->why)] = "";
        bool bracketed, wildcard;
        unsigned portnum;
        int r;

        if (!listen || !m) {
                wc_errorf(errbuf, errlen, "no metrics listen address");
                return NULL;
        }
        if (parse_listen(listen, host, sizeof(host), port, &portnum, &bracketed,
                         errbuf, errlen) < 0)
                return NULL;
        wildcard = host[0] == '\0';

        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        hints.ai_flags = AI_NUMERICSERV | (wildcard ? AI_PASSIVE : 0) |
                         (bracketed ? AI_NUMERICHOST : 0);
        hints.ai_family = bracketed ? AF_INET6 : AF_UNSPEC;
        r = getaddrinfo(wildcard ? NULL : host, port, &hints, &res);
        if (r != 0) {
                wc_errorf(errbuf, errlen,
                          "could not resolve metrics listen address \"%s\": "
                          "%s",
                          listen,
                          r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return NULL;
        }

        s = calloc(1, sizeof(*s));
        if (!s) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_free_res;
        }
        s->m = m;
        atomic_init(&s->starting, false);
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->stop_fd < 0) {
                wc_errorf(errbuf, errlen, "could not serve metrics: %s",
                          strerror(errno));
                goto err_free_server;
        }

        /* Every address the name gave, in order, until one binds; for
         * ":port" the IPv6 wildcard first (it takes IPv4 too), then IPv4
         * for hosts without IPv6. */
        for (int pass = 0; pass < (wildcard ? 2 : 1) && !s->daemon; pass++) {
                for (const struct addrinfo *ai = res; ai && !s->daemon;
                     ai = ai->ai_next) {
                        if (ai->ai_family != AF_INET &&
                            ai->ai_family != AF_INET6)
                                continue;
                        if (wildcard &&
                            ai->ai_family != (pass == 0 ? AF_INET6 : AF_INET))
                                continue;
                        if (start_on(s, ai, portnum, wildcard) < 0 &&
                            !first_why[0])
                                /* the preferred address's reason is the
                                 * one worth reporting */
                                memcpy(first_why, s->why, sizeof(first_why));
                }
        }
        if (!s->daemon) {
                wc_errorf(errbuf, errlen,
                          "could not serve metrics on \"%s\": %s", listen,
                          first_why[0] ? first_why : "libmicrohttpd failed");
                goto err_free_server;
        }
        di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!di || di->epoll_fd < 0) {
                wc_errorf(errbuf, errlen,
                          "could not serve metrics on \"%s\": libmicrohttpd "
                          "has no epoll descriptor",
                          listen);
                goto err_stop_daemon;
        }
        s->epoll_fd = di->epoll_fd;
        r = pthread_create(&s->thread, NULL, serve_thread, s);
        if (r != 0) {
                wc_errorf(errbuf, errlen,
                          "could not serve metrics on \"%s\": no thread: %s",
                          listen, strerror(r));
                goto err_stop_daemon;
        }
        s->thread_started = true;
        freeaddrinfo(res);
        return s;

err_stop_daemon:
        MHD_stop_daemon(s->daemon);
err_free_server:
        if (s->stop_fd >= 0)
                close(s->stop_fd);
        free(s);
err_free_res:
        freeaddrinfo(res);
        return NULL;
}

void wc_metrics_server_stop(struct wc_metrics_server *s)
{
        if (!s)
                return;
        /* no request runs after this returns */
        if (s->thread_started) {
                uint64_t one = 1;

                /* cannot fail: one write does not fill an eventfd */
                (void)!write(s->stop_fd, &one, sizeof(one));
                pthread_join(s->thread, NULL);
        }
        /* closes what is still open, through on_connection() */
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        if (s->stop_fd >= 0)
                close(s->stop_fd);
        free(s);
}
