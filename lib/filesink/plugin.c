/* SPDX-License-Identifier: MIT */
/*
 * The file sink on the plugin interface: only <walcast/plugin.h> and the
 * sink's own file handling are used here.
 *
 * A commit is acknowledged once its lines are durable.  For a file that
 * is fsynced, the lines are written out at once and the fdatasync() runs
 * on a helper thread, so that the loop goes on reading meanwhile; the
 * thread reports through an eventfd the loop watches.  One sync is in
 * flight at a time: the commits that arrive during it wait for the next,
 * which starts as soon as it returns, so an acknowledgement follows its
 * commit by about one or two fdatasyncs and one sync covers many commits.
 * Without fsync (a pipe, /dev/null, fsync: false) lines are written out at
 * most SYNC_DELAY_MS after a commit, one write() for many commits.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "filesink/filesink.h"

/* Without fsync, how long a commit may wait for the write that
 * acknowledges it: one write() then covers every commit of that window. */
#define SYNC_DELAY_MS 10

/* The helper thread that runs fdatasync(); shared with the loop under
 * mu. */
struct syncer {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        int fd;      /* the file */
        int efd;     /* eventfd: a sync returned */
        bool wanted; /* a sync is requested and not yet started */
        bool stop;
        int result; /* of the last sync: 0 or a negative errno */
};

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        struct wc_filesink *fs;
        bool wrote; /* lines since the last sync */
        uint64_t *pending;
        size_t npending, cappending;
        int timer;
        bool armed;
        /* fsynced files: the helper, and the transactions its sync in
         * flight acknowledges */
        struct syncer *syncer;
        bool in_flight;
        uint64_t *flight;
        size_t nflight, capflight;
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

static void *syncer_main(void *arg)
{
        struct syncer *sy = arg;
        uint64_t one = 1;

        pthread_mutex_lock(&sy->mu);
        for (;;) {
                int r;

                while (!sy->wanted && !sy->stop)
                        pthread_cond_wait(&sy->cond, &sy->mu);
                if (!sy->wanted)
                        break;
                sy->wanted = false;
                pthread_mutex_unlock(&sy->mu);
                r = fdatasync(sy->fd) < 0 ? -errno : 0;
                pthread_mutex_lock(&sy->mu);
                sy->result = r;
                /* an eventfd write fails only on overflow, which cannot
                 * happen with one sync in flight */
                (void)!write(sy->efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&sy->mu);
        return NULL;
}

static void syncer_free(struct syncer *sy)
{
        if (!sy)
                return;
        pthread_mutex_lock(&sy->mu);
        sy->stop = true;
        pthread_cond_signal(&sy->cond);
        pthread_mutex_unlock(&sy->mu);
        pthread_join(sy->thread, NULL);
        pthread_cond_destroy(&sy->cond);
        pthread_mutex_destroy(&sy->mu);
        close(sy->efd);
        free(sy);
}

static struct syncer *syncer_new(int fd, char *errbuf, size_t errlen)
{
        struct syncer *sy = calloc(1, sizeof(*sy));
        int r;

        if (!sy) {
                snprintf(errbuf, errlen, "out of memory");
                return NULL;
        }
        sy->fd = fd;
        sy->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (sy->efd < 0) {
                snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
                goto err_free;
        }
        pthread_mutex_init(&sy->mu, NULL);
        pthread_cond_init(&sy->cond, NULL);
        r = pthread_create(&sy->thread, NULL, syncer_main, sy);
        if (r != 0) {
                snprintf(errbuf, errlen, "could not start the sync thread: %s",
                         strerror(r));
                goto err_destroy;
        }
        return sy;

err_destroy:
        pthread_cond_destroy(&sy->cond);
        pthread_mutex_destroy(&sy->mu);
        close(sy->efd);
err_free:
        free(sy);
        return NULL;
}

static void ack_all(struct state *st, const uint64_t *ids, size_t n,
                    int32_t status)
{
        for (size_t i = 0; i < n; i++)
                st->host->ack(st->self, ids[i], status);
}

/*
 * Writes out the lines of the pending commits and hands their sync to the
 * helper; they are acknowledged when it returns (on_synced).  With nothing
 * written since the last sync began, they are durable already once that
 * one is done, so they simply wait for it, or are acknowledged at once.
 */
static void start_sync(struct state *st)
{
        char err[512];
        uint64_t *swap;
        size_t cap;
        int r = wc_filesink_flush(st->fs, err, sizeof(err));

        st->wrote = false;
        if (r < 0) {
                st->host->log(st->self, WALCAST_LOG_ERR, "%s", err);
                ack_all(st, st->pending, st->npending, WALCAST_ERROR);
                st->npending = 0;
                return;
        }
        if (!wc_filesink_take_dirty(st->fs)) {
                ack_all(st, st->pending, st->npending, WALCAST_OK);
                st->npending = 0;
                return;
        }
        /* the pending commits become the flight; the flight's array is
         * empty (acknowledged) and takes the place of pending */
        swap = st->flight;
        cap = st->capflight;
        st->flight = st->pending;
        st->capflight = st->cappending;
        st->nflight = st->npending;
        st->pending = swap;
        st->cappending = cap;
        st->npending = 0;
        st->in_flight = true;
        pthread_mutex_lock(&st->syncer->mu);
        st->syncer->wanted = true;
        pthread_cond_signal(&st->syncer->cond);
        pthread_mutex_unlock(&st->syncer->mu);
}

static void on_synced(void *userdata, int fd, uint32_t revents)
{
        struct state *st = userdata;
        int32_t status = WALCAST_OK;
        uint64_t n;
        int r;

        (void)revents;
        if (read(fd, &n, sizeof(n)) < 0)
                return; /* EAGAIN: not done yet */
        pthread_mutex_lock(&st->syncer->mu);
        r = st->syncer->result;
        pthread_mutex_unlock(&st->syncer->mu);
        if (r < 0) {
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "could not fsync \"%s\": %s",
                              wc_filesink_path(st->fs), strerror(-r));
                status = WALCAST_ERROR;
        }
        st->in_flight = false;
        ack_all(st, st->flight, st->nflight, status);
        st->nflight = 0;
        /* the commits that came meanwhile: their sync starts now */
        if (st->npending)
                start_sync(st);
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
        if (st->syncer) {
                if (!st->in_flight)
                        start_sync(st);
                return WALCAST_PENDING;
        }
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
        /* a sync in flight completes first */
        if (st->syncer) {
                st->host->unwatch_fd(st->self, st->syncer->efd);
                syncer_free(st->syncer);
        }
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
        free(st->flight);
        free(st);
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        static const uint32_t kinds[] = {
            WALCAST_SIG_INSERT,   WALCAST_SIG_UPDATE,  WALCAST_SIG_DELETE,
            WALCAST_SIG_TRUNCATE, WALCAST_SIG_MESSAGE,
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
        if (wc_filesink_can_fsync(st->fs)) {
                st->syncer = syncer_new(wc_filesink_fd(st->fs), errbuf, errlen);
                if (!st->syncer)
                        goto err_close;
                if (host->watch_fd(self, st->syncer->efd, POLLIN, on_synced,
                                   st) != WALCAST_OK) {
                        snprintf(errbuf, errlen,
                                 "could not watch the sync thread");
                        goto err_close;
                }
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
