/* SPDX-License-Identifier: MIT */
/* The file sink on the plugin interface: only <walcast/plugin.h> and the
 * sink's own file handling are used here. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "sinks/file/filesink.h"

/* How long a commit may wait for the sync that acknowledges it: one
 * fdatasync then covers every commit of that window. */
#define SYNC_DELAY_MS 10

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        struct wc_filesink *fs;
        bool wrote; /* lines since the last sync */
        uint64_t *pending;
        size_t npending, cappending;
        int timer;
        bool armed;
        /* the part of a line every change of transaction txn_id shares,
         * formatted at its first change */
        uint64_t txn_id;
        bool txn_valid;
        struct wc_buf txn;
};

static void sync_and_ack(struct state *st)
{
        char err[512];
        int32_t status = WALCAST_OK;
        int r = wc_filesink_sync(st->fs, err, sizeof(err));

        if (r < 0) {
                /* a reader of stdout that went away is no data error */
                st->host->log(st->self,
                              r == -EPIPE ? WALCAST_LOG_DEBUG : WALCAST_LOG_ERR,
                              "%s", err);
                status = WALCAST_ERROR;
        }
        st->wrote = false;
        for (size_t i = 0; i < st->npending; i++)
                st->host->ack(st->self, st->pending[i], status);
        st->npending = 0;
}

static void on_timer(void *userdata, int fd, uint32_t revents)
{
        struct state *st = userdata;
        uint64_t n;

        (void)revents;
        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                return;
        st->armed = false;
        sync_and_ack(st);
}

static int32_t on_change(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        char err[512];

        if (s->txn && (!st->txn_valid || st->txn_id != s->txn->id)) {
                char when[WC_TIME_STRLEN];

                st->txn_valid = false;
                wc_buf_reset(&st->txn);
                if (wc_format_txn(
                        &st->txn, s->txn,
                        wc_time_format(s->txn->commit_time_us, when)) < 0)
                        return WALCAST_ERROR;
                st->txn_id = s->txn->id;
                st->txn_valid = true;
        }
        /* straight into the sink's queue: no copy of the line */
        if (wc_format_line(wc_filesink_queue(st->fs), s, st->txn.data,
                           st->txn.len) < 0)
                return WALCAST_ERROR;
        if (wc_filesink_queued(st->fs, err, sizeof(err)) < 0) {
                st->host->log(st->self, WALCAST_LOG_ERR, "%s", err);
                return WALCAST_ERROR;
        }
        st->wrote = true;
        return WALCAST_OK;
}

static int32_t on_commit(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        struct itimerspec its = {.it_value = {0, SYNC_DELAY_MS * 1000000L}};

        /* nothing of this transaction is waiting for a sync */
        if (!st->wrote && st->npending == 0)
                return WALCAST_OK;
        if (st->npending == st->cappending) {
                size_t cap = st->cappending ? st->cappending * 2 : 64;
                uint64_t *p = realloc(st->pending, cap * sizeof(*p));
                if (!p)
                        return WALCAST_ERROR;
                st->pending = p;
                st->cappending = cap;
        }
        st->pending[st->npending++] = s->txn->id;
        if (!st->armed) {
                if (timerfd_settime(st->timer, 0, &its, NULL) < 0)
                        return WALCAST_ERROR;
                st->armed = true;
        }
        return WALCAST_PENDING;
}

static void close_state(void *state)
{
        struct state *st = state;
        char err[512];

        if (!st)
                return;
        /* write out what is buffered; acknowledging is moot now, and what
         * was not confirmed is replayed at the next start anyway */
        if (st->fs && wc_filesink_sync(st->fs, err, sizeof(err)) < 0)
                st->host->log(st->self, WALCAST_LOG_WARNING, "%s", err);
        if (st->timer >= 0) {
                st->host->unwatch_fd(st->self, st->timer);
                close(st->timer);
        }
        wc_filesink_close(st->fs);
        wc_buf_free(&st->txn);
        free(st->pending);
        free(st);
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        static const uint32_t kinds[] = {
            WALCAST_SIG_INSERT,   WALCAST_SIG_UPDATE,  WALCAST_SIG_DELETE,
            WALCAST_SIG_TRUNCATE, WALCAST_SIG_MESSAGE, WALCAST_SIG_READ,
        };
        const char *path = host->config_get(self, "path");
        const char *fsync = host->config_get(self, "fsync");
        struct state *st;

        if (!path || !*path) {
                snprintf(errbuf, errlen, "the file sink needs a path");
                return WALCAST_ERROR;
        }
        st = calloc(1, sizeof(*st));
        if (!st) {
                snprintf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        st->host = host;
        st->self = self;
        st->timer = -1;
        wc_buf_init(&st->txn);
        st->fs = wc_filesink_open(path, !fsync || strcmp(fsync, "false") != 0,
                                  errbuf, errlen);
        if (!st->fs)
                goto err_close;
        st->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (st->timer < 0) {
                snprintf(errbuf, errlen, "timerfd_create: %s", strerror(errno));
                goto err_close;
        }
        if (host->watch_fd(self, st->timer, POLLIN, on_timer, st) !=
            WALCAST_OK) {
                snprintf(errbuf, errlen, "could not watch the sync timer");
                goto err_close;
        }
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (host->connect(self, kinds[i], NULL, NULL, on_change, st) !=
                    WALCAST_OK)
                        goto err_connect;
        if (host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_commit,
                          st) != WALCAST_OK)
                goto err_connect;
        *ret_state = st;
        return WALCAST_OK;

err_connect:
        snprintf(errbuf, errlen, "could not connect the file sink's handlers");
err_close:
        close_state(st);
        return WALCAST_ERROR;
}

const struct walcast_plugin_descriptor *wc_filesink_plugin(void)
{
        static const struct walcast_plugin_descriptor d = {
            .abi_major = WALCAST_ABI_MAJOR,
            .size = sizeof(struct walcast_plugin_descriptor),
            .abi_minor = WALCAST_ABI_MINOR,
            .name = "file",
            .version = WALCAST_VERSION,
            .init = init,
            .close = close_state,
        };
        return &d;
}
