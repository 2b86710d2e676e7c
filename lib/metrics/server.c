/* SPDX-License-Identifier: MIT */
/*
 * The HTTP side of the metrics: libmicrohttpd on its own thread, three
 * read-only endpoints.  HTTP parsing is left to the library on purpose;
 * this file only maps paths to bodies.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>

#include "core/core.h"
#include "metrics/metrics.h"

/* A scraper or two and a health checker: a small cap keeps a misbehaving
 * client from holding many sockets in the daemon; the timeout frees
 * connections that went quiet. */
#define MAX_CONNECTIONS 16u
#define IDLE_TIMEOUT_S  10u
/* a scrape with every sink and schema is a few tens of KiB; start big
 * enough that the usual one needs no regrowth */
#define RENDER_RESERVE 16384

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT    "text/plain; charset=utf-8"

struct wc_metrics_server {
        struct MHD_Daemon *daemon;
        const struct wc_metrics *m;
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

static enum MHD_Result reply_metrics(struct wc_metrics_server *s,
                                     struct MHD_Connection *c)
{
        struct MHD_Response *resp;
        struct wc_buf b;

        wc_buf_init(&b);
        if (wc_buf_reserve(&b, RENDER_RESERVE) < 0 ||
            wc_metrics_render(s->m, now_us(), &b) < 0) {
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
        /* MHD_USE_AUTO: epoll rather than select, which fails once the
         * daemon's descriptors pass FD_SETSIZE */
        unsigned flags =
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

        /* ":port" means every address: one IPv6 socket that also takes
         * IPv4; a given IPv6 address gets a v6-only socket */
        if (ai->ai_family == AF_INET6)
                flags |= wildcard ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;

        s->why[0] = '\0';
        s->starter = pthread_self();
        atomic_store(&s->starting, true);
        /* the logger goes first so that no start message escapes it */
        s->daemon = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handle, s,
            MHD_OPTION_EXTERNAL_LOGGER, log_cb, s, MHD_OPTION_SOCK_ADDR,
            ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, MAX_CONNECTIONS,
            MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S, MHD_OPTION_END);
        atomic_store(&s->starting, false);
        return s->daemon ? 0 : -EADDRNOTAVAIL;
}

struct wc_metrics_server *wc_metrics_serve(const char *listen,
                                           const struct wc_metrics *m,
                                           char *errbuf, size_t errlen)
{
        struct addrinfo hints = {0}, *res = NULL;
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
        freeaddrinfo(res);
        return s;

err_free_server:
        free(s);
err_free_res:
        freeaddrinfo(res);
        return NULL;
}

void wc_metrics_server_stop(struct wc_metrics_server *s)
{
        if (!s)
                return;
        /* joins the server thread: no request runs after this returns */
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        free(s);
}
