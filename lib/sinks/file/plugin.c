/* SPDX-License-Identifier: MIT */
/* The file sink on the plugin interface: only <walcast/plugin.h> and the
 * sink's own file handling are used here. */
#include <errno.h>
#include <fcntl.h>
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
        /* exactly once (a file, not stdout): the sink's position */
        bool exact;
        bool open;        /* lines of transaction txn_id (or of a message
                           * outside one) queued, its commit not yet seen */
        bool open_msg;    /* ... of a message outside a transaction */
        bool skipping;    /* transaction txn_id is in the file already */
        wc_lsn msg_lsn;   /* the open message's lsn */
        wc_lsn last_end;  /* the last whole transaction written or queued */
        char *state_path; /* its position across files (rotation) */
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
        /* lines not down yet wait for the next sync (the transactions
         * are replayed meanwhile, and passed over: see on_change) */
        if (status == WALCAST_OK)
                st->wrote = false;
        /* everything committed so far is down (the open transaction's
         * lines are not part of it) */
        if (status == WALCAST_OK && st->exact && st->last_end &&
            WALCAST_HAS_FIELD(st->host, struct walcast_host, position))
                st->host->position(st->self, st->last_end);
        for (size_t i = 0; i < st->npending; i++)
                st->host->ack(st->self, st->pending[i], status);
        st->npending = 0;
}

/* Lines queued for a transaction that never committed (walcastd replays
 * it whole): gone from the queue and the file (not from stdout). */
static int rollback(struct state *st)
{
        char err[512];

        if (!st->open)
                return 0;
        /* standard output keeps what it got (at least once): the lines
         * go out as they are, without a mark */
        if (!st->exact) {
                st->open = false;
                return wc_filesink_txn_end(st->fs, false);
        }
        /* still open when it fails: the next try cuts it again */
        if (wc_filesink_rollback(st->fs, err, sizeof(err)) < 0) {
                st->host->log(st->self, WALCAST_LOG_ERR, "%s", err);
                return -EIO;
        }
        st->open = false;
        return 0;
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

                /* another transaction: one still open never committed */
                if (rollback(st) < 0)
                        return WALCAST_ERROR;
                st->txn_valid = false;
                wc_buf_reset(&st->txn);
                if (wc_format_txn(
                        &st->txn, s->txn,
                        wc_time_format(s->txn->commit_time_us, when)) < 0)
                        return WALCAST_ERROR;
                st->txn_id = s->txn->id;
                st->txn_valid = true;
                /* written before a replay, not yet synced: walcastd's
                 * position for the sink is behind the file's */
                st->skipping = st->exact && s->txn->end_lsn &&
                               s->txn->end_lsn <= st->last_end;
        }
        if (!s->txn) {
                if (rollback(st) < 0)
                        return WALCAST_ERROR;
                st->txn_valid = false;
                st->skipping = st->exact && s->lsn < st->last_end;
                st->open_msg = true;
                st->msg_lsn = s->lsn;
        } else {
                st->open_msg = false;
        }
        if (st->skipping)
                return WALCAST_OK;
        if (!st->open) {
                wc_filesink_txn_begin(st->fs);
                st->open = true;
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
        bool mine = st->open &&
                    (st->open_msg ? s->txn->xid == 0 && !s->txn->end_lsn
                                  : st->txn_valid && st->txn_id == s->txn->id);
        wc_lsn end =
            st->open && st->open_msg ? st->msg_lsn + 1 : s->txn->end_lsn;

        /* lines of another transaction are still open: it never
         * committed; this one has no line here */
        if (!mine && rollback(st) < 0)
                return WALCAST_ERROR;
        if (mine) {
                if (wc_filesink_txn_end(st->fs, true) < 0)
                        return WALCAST_ERROR;
                st->open = false;
        }
        st->skipping = false;
        if (st->exact && end > st->last_end)
                st->last_end = end;
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

/* ---- the position across files: <state_dir>/file-<hash>.position ---- */

/* The position file of the sink writing path, in state_dir. */
static char *position_path(const char *state_dir, const char *path)
{
        uint64_t h = 14695981039346656037ull; /* FNV-1a */
        char *out;

        for (const char *p = path; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ull;
        if (asprintf(&out, "%s/file-%016llx.position", state_dir,
                     (unsigned long long)h) < 0)
                return NULL;
        return out;
}

/* The position recorded for path: 0 with *ret_known when the file is
 * there and names path, -ENOENT when there is none. */
static int load_position(const char *file, const char *path, wc_lsn *ret)
{
        char line[4200], want[4200];
        bool same = false;
        FILE *f = fopen(file, "re");

        *ret = 0;
        if (!f)
                return -errno;
        snprintf(want, sizeof(want), "path=%s\n", path);
        while (fgets(line, sizeof(line), f)) {
                if (strcmp(line, want) == 0)
                        same = true;
                else if (strncmp(line, "position=", 9) == 0) {
                        line[strcspn(line, "\n")] = '\0';
                        if (wc_lsn_parse(line + 9, ret) < 0)
                                *ret = 0;
                }
        }
        fclose(f);
        if (!same)
                *ret = 0;
        return same ? 0 : -ENOENT;
}

/* Replaces the position file atomically (temporary, fsync, rename, the
 * directory synced). */
static int save_position(const char *file, const char *path, wc_lsn pos,
                         char *errbuf, size_t errlen)
{
        char lsn[WC_LSN_STRLEN], *tmp = NULL;
        FILE *f;
        int fd, r = 0;

        if (asprintf(&tmp, "%s.tmp", file) < 0)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        /* a new file, never one put there (nor a link followed) */
        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0640);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f && fd >= 0)
                close(fd);
        if (!f) {
                r = wc_fail(errbuf, errlen, -errno,
                            "could not write the file sink's position to "
                            "\"%s\": %s",
                            tmp, strerror(errno));
                goto out;
        }
        fprintf(f,
                "# walcast file sink position (docs/file-format.md); "
                "written by walcastd\npath=%s\nposition=%s\n",
                path, wc_lsn_format(pos, lsn));
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                r = -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, file) < 0)
                r = -errno;
        if (r == 0)
                r = wc_sync_dir(file);
        if (r < 0) {
                (void)unlink(tmp);
                wc_errorf(errbuf, errlen,
                          "could not write the file sink's position to "
                          "\"%s\": %s",
                          file, strerror(-r));
        }
out:
        free(tmp);
        return r;
}

static void close_state(void *state)
{
        struct state *st = state;
        char err[512];

        if (!st)
                return;
        /* write out what is buffered, without a transaction that did not
         * commit; acknowledging is moot now, and what was not confirmed is
         * replayed at the next start (the file's position skips what it
         * holds) */
        if (st->fs && rollback(st) == 0) {
                if (wc_filesink_sync(st->fs, err, sizeof(err)) < 0)
                        st->host->log(st->self, WALCAST_LOG_WARNING, "%s", err);
                else if (st->state_path &&
                         save_position(st->state_path, wc_filesink_path(st->fs),
                                       st->last_end, err, sizeof(err)) < 0)
                        st->host->log(st->self, WALCAST_LOG_WARNING, "%s", err);
        }
        if (st->timer >= 0) {
                st->host->unwatch_fd(st->self, st->timer);
                close(st->timer);
        }
        wc_filesink_close(st->fs);
        wc_buf_free(&st->txn);
        free(st->pending);
        free(st->state_path);
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
        const char *state_dir = host->config_get(self, "state_dir");
        char err[512];
        wc_lsn saved = 0;
        bool known = false;
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
        st->exact = strcmp(path, "-") != 0;
        if (st->exact && state_dir && *state_dir) {
                st->state_path = position_path(state_dir, path);
                if (!st->state_path) {
                        snprintf(errbuf, errlen, "out of memory");
                        goto err_close;
                }
                known = load_position(st->state_path, path, &saved) == 0;
        }
        st->fs = wc_filesink_open_marked(
            path, !fsync || strcmp(fsync, "false") != 0, known, errbuf, errlen);
        if (!st->fs)
                goto err_close;
        if (st->exact) {
                /* the file's own, or the one kept across a rotation */
                st->last_end = wc_filesink_found(st->fs);
                if (saved > st->last_end)
                        st->last_end = saved;
                /* the path is written with marks from now on; the state
                 * directory's own check (walcastd's state file) says what
                 * is wrong with it, so this is no reason to refuse */
                if (st->state_path &&
                    save_position(st->state_path, path, st->last_end, err,
                                  sizeof(err)) < 0)
                        host->log(self, WALCAST_LOG_WARNING,
                                  "%s: the position is not kept across a "
                                  "rotation",
                                  err);
                if (st->last_end &&
                    WALCAST_HAS_FIELD(host, struct walcast_host, position))
                        host->position(self, st->last_end);
        }
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
