/* SPDX-License-Identifier: MIT */
/*
 * jsonl: an audit log of every signal as one JSON object per line.
 *
 *     sinks:
 *       - plugin:
 *           path: /usr/local/lib/walcast/plugins/jsonl.so
 *           config: { file: /var/log/walcast/audit.jsonl, fsync: true }
 *
 * Lines are buffered.  A commit is not acknowledged at once: its handler
 * returns WALCAST_PENDING and a timer ~10 ms later writes the buffer out,
 * fsyncs once and acknowledges every transaction committed meanwhile, so
 * one fsync covers many commits.  When a write or fsync fails, those
 * transactions are acknowledged as failed and walcastd replays them; the
 * file never keeps a partial line (see drop_partial_line).
 *
 * Built against <walcast/plugin.h> alone, like any third-party plugin.
 * docs/plugins.md documents the configuration and the line format.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <walcast/plugin.h>

/* How long commits wait to share one write and fsync.  Short enough to
 * stay far below any confirmation interval, long enough to batch a busy
 * stream. */
#define FLUSH_DELAY_NS (10 * 1000 * 1000L)
/* Write out early past this, so a huge transaction does not grow the
 * buffer without bound (the data is acknowledged at its commit anyway). */
#define FLUSH_THRESHOLD (256 * 1024)

struct jsonl {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        char *path;
        bool do_fsync;
        int fd;          /* -1 after a failed reopen: retried at write */
        bool fd_regular; /* fsync and truncation only make sense then */
        int timer_fd;
        bool timer_watched;
        bool timer_armed;
        /* between a begin and its commit: a commit without a begin is
         * walcastd acknowledging a message sent outside a transaction */
        bool in_txn;
        /* Set by put() when memory ran out: the line being built is
         * incomplete and must not be kept. */
        bool nomem;

        char *buf;
        size_t len;
        size_t cap;

        uint64_t *pending; /* ids of commits answered WALCAST_PENDING */
        size_t npending;
        size_t cappending;
        /* The first nfailed of them lost their lines to an error: they
         * are acknowledged as failed.  Later ones were buffered after the
         * error and may still be written. */
        size_t nfailed;
};

static const char *const signal_names[WALCAST_SIG__COUNT] = {
    [WALCAST_SIG_BEGIN] = "begin",
    [WALCAST_SIG_INSERT] = "insert",
    [WALCAST_SIG_UPDATE] = "update",
    [WALCAST_SIG_DELETE] = "delete",
    [WALCAST_SIG_BULK_DELETE] = "bulk_delete",
    [WALCAST_SIG_TRUNCATE] = "truncate",
    [WALCAST_SIG_MESSAGE] = "message",
    [WALCAST_SIG_COMMIT] = "commit",
    [WALCAST_SIG_READ] = "read",
    [WALCAST_SIG_SNAPSHOT_BEGIN] = "snapshot_begin",
    [WALCAST_SIG_SNAPSHOT_END] = "snapshot_end",
};

/* ---- building lines ----------------------------------------------------
 * The put_* functions never fail: running out of memory sets j->nomem,
 * and the handler checks it once per line instead of after every call. */

static void put(struct jsonl *j, const char *s, size_t n)
{
        if (j->nomem)
                return;
        if (n > j->cap - j->len) {
                size_t cap = j->cap ? j->cap : 64 * 1024;
                char *p;

                while (n > cap - j->len) {
                        if (cap > SIZE_MAX / 2) {
                                j->nomem = true;
                                return;
                        }
                        cap *= 2;
                }
                p = realloc(j->buf, cap);
                if (!p) {
                        j->nomem = true;
                        return;
                }
                j->buf = p;
                j->cap = cap;
        }
        memcpy(j->buf + j->len, s, n);
        j->len += n;
}

static void put_str(struct jsonl *j, const char *s)
{
        put(j, s, strlen(s));
}

/* Names come from the catalog and may hold any character, so they are
 * escaped; non-ASCII UTF-8 passes through, as JSON allows. */
static void put_json_string(struct jsonl *j, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        size_t run = 0;

        put(j, "\"", 1);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[6] = {'\\', 0, '0', '0', 0, 0};
                size_t esclen = 2;

                switch (c) {
                case '"':
                case '\\':
                        esc[1] = (char)c;
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                default:
                        if (c >= 0x20)
                                continue;
                        esc[1] = 'u';
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 0xf];
                        esclen = 6;
                }
                put(j, s + run, i - run);
                put(j, esc, esclen);
                run = i + 1;
        }
        put(j, s + run, n - run);
        put(j, "\"", 1);
}

/* Text the host hands over as JSON already (column values, message
 * content) is copied as it is; an empty one would break the line. */
static void put_raw_json(struct jsonl *j, const char *s, size_t n)
{
        if (s && n)
                put(j, s, n);
        else
                put_str(j, "null");
}

static void put_lsn(struct jsonl *j, const char *key, uint64_t lsn)
{
        char tmp[64];

        snprintf(tmp, sizeof(tmp), "\"%" PRIX32 "/%" PRIX32 "\"",
                 (uint32_t)(lsn >> 32), (uint32_t)lsn);
        put_str(j, key);
        put_str(j, tmp);
}

static void put_columns(struct jsonl *j, const struct walcast_columns *cols)
{
        put(j, "[", 1);
        for (uint32_t i = 0; i < cols->count; i++) {
                const struct walcast_column *c = &cols->items[i];

                put_str(j, i ? ",{\"name\":" : "{\"name\":");
                put_json_string(j, c->name, c->name_len);
                put_str(j, ",\"type\":");
                put_json_string(j, c->type, c->type_len);
                put_str(j, ",\"value\":");
                put_raw_json(j, c->value, c->value_len);
                put(j, "}", 1);
        }
        put(j, "]", 1);
}

static void put_names(struct jsonl *j, const struct walcast_columns *cols)
{
        put(j, "[", 1);
        for (uint32_t i = 0; i < cols->count; i++) {
                if (i)
                        put(j, ",", 1);
                put_json_string(j, cols->items[i].name,
                                cols->items[i].name_len);
        }
        put(j, "]", 1);
}

static void put_line(struct jsonl *j, const struct walcast_signal *sig)
{
        char tmp[64];

        put_str(j, "{\"signal\":\"");
        put_str(j, signal_names[sig->kind]);
        put(j, "\"", 1);
        if (sig->schema) {
                put_str(j, ",\"schema\":");
                put_json_string(j, sig->schema, strlen(sig->schema));
        }
        if (sig->table) {
                put_str(j, ",\"table\":");
                put_json_string(j, sig->table, strlen(sig->table));
        }
        /* begin and commit have no position of their own: the
         * transaction's positions follow */
        if (sig->kind != WALCAST_SIG_BEGIN && sig->kind != WALCAST_SIG_COMMIT)
                put_lsn(j, ",\"lsn\":", sig->lsn);
        if (sig->txn) {
                snprintf(tmp, sizeof(tmp), ",\"xid\":%" PRIu32, sig->txn->xid);
                put_str(j, tmp);
                put_lsn(j, ",\"commit_lsn\":", sig->txn->commit_lsn);
                put_lsn(j, ",\"end_lsn\":", sig->txn->end_lsn);
                snprintf(tmp, sizeof(tmp), ",\"commit_time_us\":%" PRId64,
                         sig->txn->commit_time_us);
                put_str(j, tmp);
        }

        switch (sig->kind) {
        case WALCAST_SIG_INSERT:
        case WALCAST_SIG_READ: /* a snapshot's row (ABI 1.5) */
                put_str(j, ",\"columns\":");
                put_columns(j, &sig->columns);
                break;
        case WALCAST_SIG_UPDATE:
                put_str(j, ",\"columns\":");
                put_columns(j, &sig->columns);
                /* the old key comes only when it changed (or under
                 * REPLICA IDENTITY FULL) */
                if (sig->identity.count) {
                        put_str(j, ",\"identity\":");
                        put_columns(j, &sig->identity);
                }
                /* an audit must not pass an absent value off as unchanged
                 * silently: say which columns wal2json left out */
                if (sig->missing.count) {
                        put_str(j, ",\"missing\":");
                        put_names(j, &sig->missing);
                }
                break;
        case WALCAST_SIG_DELETE:
                put_str(j, ",\"identity\":");
                put_columns(j, &sig->identity);
                break;
        case WALCAST_SIG_BULK_DELETE:
                put_str(j, ",\"keys\":[");
                for (uint32_t i = 0; i < sig->nkeys; i++) {
                        if (i)
                                put(j, ",", 1);
                        put_columns(j, &sig->keys[i]);
                }
                put(j, "]", 1);
                break;
        case WALCAST_SIG_MESSAGE:
                put_str(j, ",\"prefix\":");
                if (sig->prefix)
                        put_json_string(j, sig->prefix, strlen(sig->prefix));
                else
                        put_str(j, "null");
                /* bytes that are not text arrive as their base64 (ABI
                 * 1.2): under a key of their own */
                put_str(j, WALCAST_HAS_FIELD(sig, struct walcast_signal,
                                             content_flags) &&
                                   (sig->content_flags & WALCAST_CONTENT_BASE64)
                               ? ",\"content_base64\":"
                               : ",\"content\":");
                put_raw_json(j, sig->content, sig->content_len);
                put_str(j, sig->transactional ? ",\"transactional\":true"
                                              : ",\"transactional\":false");
                break;
        default:
                break;
        }
        put(j, "}\n", 2);
}

/* ---- the file ---------------------------------------------------------- */

/*
 * A crash can leave the last line half written.  That line's transaction
 * was never acknowledged (acks follow the fsync), so walcastd replays it:
 * cut the fragment off rather than glue the replayed line onto it.
 */
static int drop_partial_line(struct jsonl *j, int fd, off_t size)
{
        char chunk[4096];
        off_t end = size;

        if (size == 0)
                return 0;
        while (end > 0) {
                size_t n =
                    end < (off_t)sizeof(chunk) ? (size_t)end : sizeof(chunk);
                ssize_t got = pread(fd, chunk, n, end - (off_t)n);

                if (got < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if ((size_t)got != n)
                        return -EIO; /* shrank under us */
                if (end == size && chunk[n - 1] == '\n')
                        return 0; /* the usual case: a clean end */
                while (n > 0 && chunk[n - 1] != '\n')
                        n--;
                end -= (off_t)(got - (ssize_t)n);
                if (n > 0)
                        break;
        }
        if (ftruncate(fd, end) < 0)
                return -errno;
        j->host->log(j->self, WALCAST_LOG_WARNING,
                     "dropped an incomplete last line (%lld bytes) from "
                     "\"%s\": it will be replayed",
                     (long long)(size - end), j->path);
        return 0;
}

/* A newly created file survives a crash only once its directory entry is
 * on disk too. */
static int sync_dir(const char *path)
{
        const char *slash = strrchr(path, '/');
        char *dir;
        int fd, r = 0;

        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t)(slash - path));
        if (!dir)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                r = -errno;
        if (fd >= 0)
                close(fd);
        free(dir);
        return r;
}

/* Opens j->path for appending into j->fd.  0 or a negative errno. */
static int open_file(struct jsonl *j)
{
        struct stat st;
        int fd, r;

        /* O_APPEND: lines land at the end even if logrotate's copytruncate
         * shortened the file; read access for drop_partial_line */
        fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto err_close;
        }
        j->fd_regular = S_ISREG(st.st_mode);
        if (j->fd_regular) {
                r = drop_partial_line(j, fd, st.st_size);
                if (r < 0)
                        goto err_close;
                if (j->do_fsync) {
                        r = sync_dir(j->path);
                        if (r < 0)
                                goto err_close;
                }
        }
        j->fd = fd;
        return 0;

err_close:
        close(fd);
        return r;
}

/* Writes the buffer out (no fsync).  0 or a negative errno, with what
 * failed in *ret_what; on failure the file is cut back to where this write
 * began, so no partial line stays, and the buffer is kept for the caller
 * to drop. */
static int write_out(struct jsonl *j, const char **ret_what)
{
        struct stat st;
        off_t start = -1;
        size_t done = 0;
        int r;

        if (j->len == 0)
                return 0;
        if (j->fd < 0) {
                r = open_file(j);
                if (r < 0) {
                        *ret_what = "open";
                        return r;
                }
        }
        if (j->fd_regular && fstat(j->fd, &st) == 0)
                start = st.st_size;
        while (done < j->len) {
                ssize_t n = write(j->fd, j->buf + done, j->len - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        *ret_what = "write";
                        goto err_truncate;
                }
                done += (size_t)n;
        }
        j->len = 0;
        return 0;

err_truncate:
        /* best effort: the error that matters is the write's */
        if (start >= 0 && done > 0 && ftruncate(j->fd, start) < 0)
                j->host->log(j->self, WALCAST_LOG_WARNING,
                             "could not remove a partial write from \"%s\": "
                             "%s",
                             j->path, strerror(errno));
        return r;
}

/* Writes out and, if configured, fsyncs.  0 or a negative errno. */
static int flush(struct jsonl *j, const char **ret_what)
{
        int r = write_out(j, ret_what);

        if (r < 0)
                return r;
        /* no file (a reopen failed) and nothing written since: what came
         * before went to the old file, synced when it was closed */
        if (j->fd < 0)
                return 0;
        if (j->do_fsync && j->fd_regular && fsync(j->fd) < 0) {
                *ret_what = "fsync";
                return -errno;
        }
        return 0;
}

/* ---- acknowledgements -------------------------------------------------- */

static void arm_timer(struct jsonl *j)
{
        struct itimerspec its = {{0, 0}, {0, FLUSH_DELAY_NS}};

        if (j->timer_armed)
                return;
        if (timerfd_settime(j->timer_fd, 0, &its, NULL) == 0)
                j->timer_armed = true;
}

/*
 * Something could not be written: everything buffered is dropped, and
 * every transaction committed but not yet acknowledged is failed so that
 * walcastd replays it.  The acks go out from the timer rather than from
 * here, because this may run inside a handler.
 */
static void fail(struct jsonl *j, const char *what, int err)
{
        j->host->log(j->self, WALCAST_LOG_ERR, "could not %s \"%s\": %s", what,
                     j->path, strerror(-err));
        j->len = 0;
        j->nfailed = j->npending;
        if (j->npending)
                arm_timer(j);
}

static void on_timer(void *userdata, int fd, uint32_t revents)
{
        struct jsonl *j = userdata;
        uint64_t expirations;
        const char *what = NULL;
        int r;

        (void)revents;
        /* Clears the readiness.  Whatever it returns, go on: flushing a
         * little early is harmless, never acknowledging is not. */
        if (read(fd, &expirations, sizeof(expirations)) < 0)
                expirations = 0;
        j->timer_armed = false;
        r = flush(j, &what);
        if (r < 0)
                fail(j, what, r);
        for (size_t i = 0; i < j->npending; i++) {
                int32_t status = i < j->nfailed ? WALCAST_ERROR : WALCAST_OK;

                if (j->host->ack(j->self, j->pending[i], status) != WALCAST_OK)
                        j->host->log(j->self, WALCAST_LOG_WARNING,
                                     "walcastd refused the acknowledgement "
                                     "of transaction %" PRIu64,
                                     j->pending[i]);
        }
        j->npending = 0;
        j->nfailed = 0;
}

/* ---- handlers ---------------------------------------------------------- */

static int32_t remember(struct jsonl *j, uint64_t txn_id)
{
        if (j->npending == j->cappending) {
                size_t cap = j->cappending ? 2 * j->cappending : 64;
                uint64_t *p = realloc(j->pending, cap * sizeof(*p));

                if (!p)
                        return WALCAST_ERROR;
                j->pending = p;
                j->cappending = cap;
        }
        j->pending[j->npending++] = txn_id;
        return WALCAST_OK;
}

/* Writes out and syncs at once, for the rare signal nothing acknowledges
 * later. */
static int32_t flush_now(struct jsonl *j)
{
        const char *what = NULL;
        int r = flush(j, &what);

        if (r < 0) {
                fail(j, what, r);
                return WALCAST_ERROR;
        }
        return WALCAST_OK;
}

/* One handler for every kind: the line says which it was. */
static int32_t on_signal(void *userdata, const struct walcast_signal *sig)
{
        struct jsonl *j = userdata;
        size_t line_start = j->len;

        if (sig->kind >= WALCAST_SIG__COUNT)
                return WALCAST_OK; /* a later minor's kind: not ours */

        if (sig->kind == WALCAST_SIG_BEGIN)
                j->in_txn = true;
        else if (sig->kind == WALCAST_SIG_MESSAGE && !sig->txn)
                j->in_txn = false; /* never inside a transaction */
        /* a commit line closes a begin line; the commit walcastd sends
         * after a message outside a transaction has none */
        if (sig->kind != WALCAST_SIG_COMMIT || j->in_txn)
                put_line(j, sig);
        if (j->nomem) {
                /* drop the incomplete line; walcastd replays it */
                j->nomem = false;
                j->len = line_start;
                j->host->log(j->self, WALCAST_LOG_ERR,
                             "out of memory buffering a line for \"%s\"",
                             j->path);
                return WALCAST_ERROR;
        }

        if (sig->kind == WALCAST_SIG_COMMIT && sig->txn) {
                j->in_txn = false;
                if (remember(j, sig->txn->id) != WALCAST_OK) {
                        j->len = line_start;
                        return WALCAST_ERROR;
                }
                arm_timer(j);
                if (!j->timer_armed) {
                        /* no timer: give up batching rather than never
                         * acknowledging */
                        j->npending--;
                        return flush_now(j);
                }
                return WALCAST_PENDING;
        }
        /* outside a transaction, the ABI promises no commit that could
         * acknowledge the message later: OK must mean it is on disk */
        if (sig->kind == WALCAST_SIG_MESSAGE && !sig->txn)
                return flush_now(j);
        if (j->len >= FLUSH_THRESHOLD) {
                const char *what = NULL;
                int r = write_out(j, &what);

                if (r < 0) {
                        fail(j, what, r);
                        return WALCAST_ERROR;
                }
        }
        return WALCAST_OK;
}

/* ---- lifecycle --------------------------------------------------------- */

static void jsonl_close(void *state)
{
        struct jsonl *j = state;
        const char *what = NULL;
        int r;

        if (!j)
                return;
        if (j->fd >= 0 || j->len) {
                r = flush(j, &what);
                if (r < 0)
                        j->host->log(j->self, WALCAST_LOG_ERR,
                                     "could not %s \"%s\": %s", what, j->path,
                                     strerror(-r));
        }
        if (j->timer_watched)
                j->host->unwatch_fd(j->self, j->timer_fd);
        if (j->timer_fd >= 0)
                close(j->timer_fd);
        if (j->fd >= 0)
                close(j->fd);
        free(j->pending);
        free(j->buf);
        free(j->path);
        free(j);
}

/* SIGHUP: logrotate moved the file away; write what we have to the old
 * one, make it durable, and continue in a new file at the same path. */
static void jsonl_reopen(void *state)
{
        struct jsonl *j = state;
        const char *what = NULL;
        int r;

        r = flush(j, &what);
        if (r < 0)
                fail(j, what, r);
        if (j->fd >= 0) {
                close(j->fd);
                j->fd = -1;
        }
        r = open_file(j);
        if (r < 0)
                /* not fatal yet: the next write tries again, and fails
                 * the transactions if it cannot either */
                j->host->log(j->self, WALCAST_LOG_ERR,
                             "could not reopen \"%s\": %s", j->path,
                             strerror(-r));
}

/* The config alone: `walcastd --check`, reloads and the start call it
 * (ABI 1.3), and init too, for older hosts that do not. */
static int32_t jsonl_check(const struct walcast_host *host,
                           struct walcast_plugin *self, char *errbuf,
                           size_t errlen)
{
        const char *file = host->config_get(self, "file");
        const char *fsync_value = host->config_get(self, "fsync");

        if (!file || !*file) {
                snprintf(errbuf, errlen,
                         "missing required config key \"file\"");
                return WALCAST_ERROR;
        }
        if (fsync_value && strcmp(fsync_value, "true") != 0 &&
            strcmp(fsync_value, "false") != 0) {
                snprintf(errbuf, errlen,
                         "invalid value \"%s\" for config key \"fsync\": use "
                         "true or false",
                         fsync_value);
                return WALCAST_ERROR;
        }
        return WALCAST_OK;
}

static int32_t jsonl_init(const struct walcast_host *host,
                          struct walcast_plugin *self, void **ret_state,
                          char *errbuf, size_t errlen)
{
        const char *file = host->config_get(self, "file");
        const char *fsync_value = host->config_get(self, "fsync");
        struct jsonl *j;
        int r;

        if (jsonl_check(host, self, errbuf, errlen) != WALCAST_OK)
                return WALCAST_ERROR;

        j = calloc(1, sizeof(*j));
        if (!j)
                goto err_nomem;
        j->host = host;
        j->self = self;
        j->fd = -1;
        j->timer_fd = -1;
        j->do_fsync = !fsync_value || strcmp(fsync_value, "true") == 0;
        j->path = strdup(file);
        if (!j->path)
                goto err_nomem;

        r = open_file(j);
        if (r < 0) {
                snprintf(errbuf, errlen, "could not open \"%s\": %s", file,
                         strerror(-r));
                goto err_free;
        }
        j->timer_fd =
            timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (j->timer_fd < 0) {
                snprintf(errbuf, errlen, "could not create a timer: %s",
                         strerror(errno));
                goto err_free;
        }
        if (host->watch_fd(self, j->timer_fd, POLLIN, on_timer, j) !=
            WALCAST_OK) {
                snprintf(errbuf, errlen, "could not watch the timer");
                goto err_free;
        }
        j->timer_watched = true;

        /* sender NULL: every schema the sink's `schemas:` lets through */
        for (uint32_t kind = 0; kind < WALCAST_SIG__COUNT; kind++) {
                /* a snapshot's signals exist since ABI 1.5 */
                if (kind >= WALCAST_SIG_READ &&
                    (host->abi_major != 1 || host->abi_minor < 5))
                        continue;
                if (host->connect(self, kind, NULL, NULL, on_signal, j) !=
                    WALCAST_OK) {
                        snprintf(errbuf, errlen,
                                 "could not connect to the %s signal",
                                 signal_names[kind]);
                        goto err_free;
                }
        }

        *ret_state = j;
        return WALCAST_OK;

err_nomem:
        snprintf(errbuf, errlen, "out of memory");
err_free:
        jsonl_close(j);
        return WALCAST_ERROR;
}

WALCAST_PLUGIN_DEFINE_CHECKED("jsonl", "1.0", jsonl_init, jsonl_close,
                              jsonl_reopen, jsonl_check);
