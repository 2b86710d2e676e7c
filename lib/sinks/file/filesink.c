/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sinks/file/filesink.h"

/* Writes happen in chunks of about this size. */
#define WRITE_CHUNK (256 * 1024)

/* How often one sync follows a path whose file is deleted under it before
 * it gives up (and the transactions are replayed). */
#define REOPEN_TRIES 3

struct wc_filesink {
        int fd;
        bool owns_fd;   /* false for stdout */
        bool regular;   /* a regular file */
        bool fsync;     /* fsync enabled */
        bool can_fsync; /* a regular file with fsync enabled */
        bool dirty;     /* written since the last fsync */
        off_t synced;   /* the file's size at the last sync */
        off_t end;      /* the file's size: what was written into it */
        off_t mark;     /* where the last whole transaction ends, queued
                         * bytes counted (end + out.len at its commit) */
        bool open_txn;  /* a transaction's lines are coming: its last line
                         * stays queued until its commit marks it */
        bool marked;    /* known to be written with marks (state dir) */
        wc_lsn found;   /* the position found in the file at open */
        struct wc_buf out;
        char path[4096];
};

/* How the last line of a transaction ends (docs/file-format.md). */
#define LAST_TAIL     ",\"last\":true}\n"
#define LAST_TAIL_LEN (sizeof(LAST_TAIL) - 1)
/* Backward scans read this much at a time. */
#define SCAN_BLOCK 65536

/* What a file holds, read from its end. */
struct scan {
        off_t whole; /* the end of its last whole transaction (marked) */
        off_t line;  /* the end of its last whole line */
        bool marked; /* a marked line was found */
        wc_lsn pos;  /* the position the marked line gives */
};

/* Where the line holding byte `at` starts: after the newline before. */
static int line_start(int fd, off_t at, off_t *ret)
{
        char buf[4096];

        while (at > 0) {
                off_t from =
                    at > (off_t)sizeof(buf) ? at - (off_t)sizeof(buf) : 0;
                ssize_t n = pread(fd, buf, (size_t)(at - from), from);
                if (n != at - from)
                        return n < 0 ? -errno : -EIO;
                for (ssize_t i = n - 1; i >= 0; i--) {
                        if (buf[i] == '\n') {
                                *ret = from + i + 1;
                                return 0;
                        }
                }
                at = from;
        }
        *ret = 0;
        return 0;
}

/* The LSN after key (",\"end_lsn\":\"") in p[0..n), or 0. */
static wc_lsn lsn_after(const char *p, size_t n, const char *key)
{
        const char *k = memmem(p, n, key, strlen(key));
        const char *q;

        if (!k)
                return 0;
        k += strlen(key);
        q = memchr(k, '"', n - (size_t)(k - p));
        wc_lsn lsn = 0;
        if (!q || wc_lsn_parse_n(k, (size_t)(q - k), &lsn) < 0)
                return 0;
        return lsn;
}

/*
 * The position a marked line gives: its transaction's end_lsn, or for a
 * message outside a transaction (no end_lsn) the position just past its
 * lsn.  Both keys come before any value of the line, and `,"` cannot
 * occur inside a JSON string, so the first match is the key.
 */
static int marked_position(int fd, off_t nl, wc_lsn *ret)
{
        char buf[4096];
        off_t start;
        ssize_t n;
        int r = line_start(fd, nl, &start);

        if (r < 0)
                return r;
        n = pread(fd, buf,
                  nl - start < (off_t)sizeof(buf) ? (size_t)(nl - start)
                                                  : sizeof(buf),
                  start);
        if (n < 0)
                return -errno;
        *ret = lsn_after(buf, (size_t)n, ",\"end_lsn\":\"");
        if (!*ret) {
                *ret = lsn_after(buf, (size_t)n, ",\"lsn\":\"");
                if (*ret)
                        *ret += 1;
        }
        return 0;
}

/* The end_lsn of the file's first line (0 when it has none). */
static wc_lsn first_line_end(int fd)
{
        char buf[4096];
        ssize_t n = pread(fd, buf, sizeof(buf), 0);
        const char *nl;

        if (n <= 0)
                return 0;
        nl = memchr(buf, '\n', (size_t)n);
        return lsn_after(buf, nl ? (size_t)(nl - buf) : (size_t)n,
                         ",\"end_lsn\":\"");
}

/* Reads the file backwards to its last marked line (or its start). */
static int scan_file(int fd, off_t size, struct scan *sc)
{
        char buf[SCAN_BLOCK];
        off_t end = size;
        bool seen_line = false;

        *sc = (struct scan){0};
        while (end > 0) {
                off_t from =
                    end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
                ssize_t n = pread(fd, buf, (size_t)(end - from), from);
                if (n != end - from)
                        return n < 0 ? -errno : -EIO;
                for (ssize_t i = n - 1; i >= 0; i--) {
                        off_t nl = from + i;
                        char tail[LAST_TAIL_LEN];
                        const char *t;

                        if (buf[i] != '\n')
                                continue;
                        if (!seen_line) {
                                sc->line = nl + 1;
                                seen_line = true;
                        }
                        if (nl + 1 < (off_t)LAST_TAIL_LEN)
                                continue;
                        if (i + 1 >= (ssize_t)LAST_TAIL_LEN) {
                                t = buf + i + 1 - LAST_TAIL_LEN;
                        } else {
                                if (pread(fd, tail, LAST_TAIL_LEN,
                                          nl + 1 - (off_t)LAST_TAIL_LEN) !=
                                    (ssize_t)LAST_TAIL_LEN)
                                        return -EIO;
                                t = tail;
                        }
                        if (memcmp(t, LAST_TAIL, LAST_TAIL_LEN) != 0)
                                continue;
                        sc->whole = nl + 1;
                        sc->marked = true;
                        return marked_position(fd, nl, &sc->pos);
                }
                end = from;
        }
        return 0;
}

/*
 * Opens (or creates) the file at fs->path for appending and cuts it back
 * to its last whole transaction (see the header): *ret_fd, *ret_st as it
 * is after that, and *ret_pos the position its last marked line gives (0
 * when it has none).  A file it creates has its directory synced (with
 * fsync enabled).
 */
static int open_path(const struct wc_filesink *fs, int *ret_fd,
                     struct stat *ret_st, wc_lsn *ret_pos, char *errbuf,
                     size_t errlen)
{
        struct scan sc = {0};
        const int flags = O_RDWR | O_APPEND | O_CLOEXEC;
        bool created = false;
        struct stat st;
        int fd, r;

        fd = open(fs->path, flags);
        if (fd < 0 && errno == ENOENT) {
                fd = open(fs->path, flags | O_CREAT | O_EXCL, 0640);
                created = fd >= 0;
                if (fd < 0 && errno == EEXIST) /* created meanwhile */
                        fd = open(fs->path, flags);
        }
        if (fd < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "could not open \"%s\": %s", fs->path,
                               strerror(errno));
        if (created && fs->fsync) {
                r = wc_sync_dir(fs->path);
                if (r < 0) {
                        wc_errorf(errbuf, errlen,
                                  "could not sync the directory of \"%s\": %s",
                                  fs->path, strerror(-r));
                        goto err_close;
                }
        }
        if (fstat(fd, &st) < 0)
                goto err_stat;
        if (S_ISREG(st.st_mode) && st.st_size > 0) {
                off_t keep;

                r = scan_file(fd, st.st_size, &sc);
                /* without any mark: a file of an older walcast (every
                 * line its own), unless it is known to be written with
                 * marks and all of it is one transaction: its first,
                 * incomplete */
                keep = sc.marked ? sc.whole : sc.line;
                if (r == 0 && !sc.marked && fs->marked && sc.line > 0) {
                        wc_lsn first = first_line_end(fd), last = 0;

                        r = marked_position(fd, sc.line - 1, &last);
                        if (r == 0 && first && first == last)
                                keep = 0;
                }
                if (r == 0 && keep < st.st_size && ftruncate(fd, keep) < 0)
                        r = -errno;
                if (r < 0) {
                        wc_errorf(errbuf, errlen,
                                  "could not cut \"%s\" back to its last "
                                  "whole transaction: %s",
                                  fs->path, strerror(-r));
                        goto err_close;
                }
                if (keep < st.st_size && fstat(fd, &st) < 0)
                        goto err_stat;
        }
        *ret_fd = fd;
        *ret_st = st;
        *ret_pos = sc.pos;
        return 0;

err_stat:
        r = wc_fail(errbuf, errlen, -errno, "could not stat \"%s\": %s",
                    fs->path, strerror(errno));
err_close:
        close(fd);
        return r;
}

/* The last byte of the regular file on stdout, through fd 1 or, when that
 * is write-only (`>>`), a reading descriptor of the same file.  -errno
 * when it cannot be read. */
static int stdout_last_byte(off_t size)
{
        char c;
        int fd, r;

        if (pread(STDOUT_FILENO, &c, 1, size - 1) == 1)
                return (unsigned char)c;
        fd = open("/proc/self/fd/1", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = pread(fd, &c, 1, size - 1) == 1 ? (unsigned char)c : -EIO;
        close(fd);
        return r;
}

/*
 * Standard output belongs to whoever started walcastd, and what is in it
 * may not be walcast's: never truncated, never written over.  A regular
 * file gets O_APPEND (so a descriptor opened without it cannot overwrite
 * what is there), and a last line that does not end in a newline is
 * ended before the first line of walcast.
 */
static int open_stdout(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        struct stat st;
        int fl, c;

        fs->fd = STDOUT_FILENO;
        if (fstat(fs->fd, &st) < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "could not stat standard output: %s",
                               strerror(errno));
        fs->regular = S_ISREG(st.st_mode);
        fs->can_fsync = fs->regular && fs->fsync;
        if (!fs->regular)
                return 0;
        fl = fcntl(fs->fd, F_GETFL);
        if (fl < 0 ||
            (!(fl & O_APPEND) && fcntl(fs->fd, F_SETFL, fl | O_APPEND) < 0))
                return wc_fail(errbuf, errlen, -errno,
                               "could not set standard output (a file) to "
                               "append: %s",
                               strerror(errno));
        fs->synced = st.st_size;
        fs->end = st.st_size;
        if (st.st_size == 0)
                return 0;
        c = stdout_last_byte(st.st_size);
        /* unreadable (write-only and not readable by walcastd's user):
         * nothing tells whether a line is open, and an empty line would
         * be added at every start, so none is */
        if (c >= 0 && c != '\n' && wc_buf_append(&fs->out, "\n", 1) < 0)
                return wc_fail(errbuf, errlen, -ENOMEM, "out of memory");
        return 0;
}

struct wc_filesink *wc_filesink_open(const char *path, bool fsync, char *errbuf,
                                     size_t errlen)
{
        return wc_filesink_open_marked(path, fsync, false, errbuf, errlen);
}

struct wc_filesink *wc_filesink_open_marked(const char *path, bool fsync,
                                            bool marked, char *errbuf,
                                            size_t errlen)
{
        struct wc_filesink *fs = calloc(1, sizeof(*fs));
        int r;

        if (!fs) {
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        wc_buf_init(&fs->out);
        snprintf(fs->path, sizeof(fs->path), "%s", path);
        fs->fsync = fsync;
        fs->marked = marked;
        if (strcmp(path, "-") == 0) {
                r = open_stdout(fs, errbuf, errlen);
        } else {
                struct stat st;

                r = open_path(fs, &fs->fd, &st, &fs->found, errbuf, errlen);
                if (r == 0) {
                        fs->owns_fd = true;
                        fs->regular = S_ISREG(st.st_mode);
                        fs->can_fsync = fs->regular && fsync;
                        fs->synced = st.st_size;
                        fs->end = st.st_size;
                }
        }
        fs->mark = fs->end + (off_t)fs->out.len;
        if (r < 0) {
                wc_buf_free(&fs->out);
                free(fs);
                return NULL;
        }
        return fs;
}

void wc_filesink_close(struct wc_filesink *fs)
{
        if (!fs)
                return;
        if (fs->owns_fd)
                close(fs->fd);
        wc_buf_free(&fs->out);
        free(fs);
}

/* What of the queue may go out: all of it, but the last line while a
 * transaction is open (its commit marks that line). */
static size_t writable(const struct wc_filesink *fs)
{
        const char *nl;

        if (!fs->open_txn || fs->out.len < 2)
                return fs->out.len;
        nl = memrchr(fs->out.data, '\n', fs->out.len - 1);
        return nl ? (size_t)(nl - fs->out.data) + 1 : 0;
}

static int write_out(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        size_t off = 0, len = writable(fs);

        while (off < len) {
                ssize_t n = write(fs->fd, fs->out.data + off, len - off);
                if (n < 0) {
                        int e = errno;
                        if (e == EINTR)
                                continue;
                        /* keep what was not written: nothing is lost */
                        memmove(fs->out.data, fs->out.data + off,
                                fs->out.len - off);
                        fs->out.len -= off;
                        fs->end += (off_t)off;
                        wc_errorf(errbuf, errlen,
                                  "could not write to \"%s\": %s", fs->path,
                                  strerror(e));
                        return -e;
                }
                off += (size_t)n;
                fs->dirty = true;
        }
        /* the open transaction's last line stays */
        if (off < fs->out.len)
                memmove(fs->out.data, fs->out.data + off, fs->out.len - off);
        fs->out.len -= off;
        fs->end += (off_t)off;
        return 0;
}

int wc_filesink_write(struct wc_filesink *fs, const char *p, size_t n,
                      char *errbuf, size_t errlen)
{
        int r = wc_buf_append(&fs->out, p, n);

        if (r < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                return r;
        }
        return wc_filesink_queued(fs, errbuf, errlen);
}

struct wc_buf *wc_filesink_queue(struct wc_filesink *fs)
{
        return &fs->out;
}

int wc_filesink_queued(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        if (fs->out.len >= WRITE_CHUNK)
                return write_out(fs, errbuf, errlen);
        return 0;
}

/* Copies bytes [from, to) of `src` to the end of `dst`. */
static int copy_range(const char *path, int src, int dst, off_t from, off_t to,
                      char *errbuf, size_t errlen)
{
        char buf[65536];

        while (from < to) {
                size_t want = to - from > (off_t)sizeof(buf)
                                  ? sizeof(buf)
                                  : (size_t)(to - from);
                ssize_t n = pread(src, buf, want, from);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return wc_fail(errbuf, errlen, n < 0 ? -errno : -EIO,
                                       "could not read back what was written "
                                       "to the deleted \"%s\": %s",
                                       path,
                                       n < 0 ? strerror(errno) : "short read");
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(dst, buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return wc_fail(errbuf, errlen, -errno,
                                               "could not write to \"%s\": %s",
                                               path, strerror(errno));
                        off += w;
                }
                from += n;
        }
        return 0;
}

/*
 * A file deleted while open (st_nlink 0) takes what is written into an
 * inode nobody can reach.  What was written since the last sync (nothing
 * of it acknowledged) is copied from there to a new file at the path,
 * which is synced before anything is acknowledged; the new file is the
 * sink's file from then on.  What was acknowledged before went with the
 * deleted file.  On failure the sink keeps the deleted file and tries
 * again at the next sync (the transactions are replayed meanwhile).
 */
static int follow_deleted(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        for (int tries = 0;; tries++) {
                struct stat old, st;
                char why[512];
                int fd, r;

                if (fstat(fs->fd, &old) < 0)
                        return wc_fail(errbuf, errlen, -errno,
                                       "could not stat \"%s\": %s", fs->path,
                                       strerror(errno));
                if (old.st_nlink > 0) {
                        fs->synced = old.st_size;
                        return 0;
                }
                /* what the new file gets: bytes [synced, end) */
                old.st_size = fs->end;
                if (!fs->owns_fd)
                        return wc_fail(
                            errbuf, errlen, -ENOENT,
                            "standard output is a file that was deleted "
                            "while walcastd wrote to it: what is written "
                            "there is lost, so nothing is acknowledged; "
                            "restart walcastd with its standard output on a "
                            "file that exists");
                if (tries == REOPEN_TRIES)
                        return wc_fail(errbuf, errlen, -ENOENT,
                                       "\"%s\" was deleted %d times while "
                                       "walcastd wrote to it",
                                       fs->path, REOPEN_TRIES);
                wc_lsn ignored;

                r = open_path(fs, &fd, &st, &ignored, why, sizeof(why));
                if (r < 0)
                        return wc_fail(errbuf, errlen, r,
                                       "\"%s\" was deleted while walcastd "
                                       "wrote to it, and it cannot be "
                                       "created again (%s): nothing written "
                                       "since is confirmed until it can",
                                       fs->path, why);
                if (!S_ISREG(st.st_mode)) {
                        close(fd);
                        return wc_fail(errbuf, errlen, -EINVAL,
                                       "\"%s\" was deleted while walcastd "
                                       "wrote to it, and what is there now "
                                       "is not a regular file",
                                       fs->path);
                }
                r = copy_range(fs->path, fs->fd, fd, fs->synced, old.st_size,
                               errbuf, errlen);
                if (r == 0 && fs->fsync && fdatasync(fd) < 0)
                        r = wc_fail(errbuf, errlen, -errno,
                                    "could not fsync \"%s\": %s", fs->path,
                                    strerror(errno));
                if (r < 0) {
                        /* no half copy stays for the next try to repeat */
                        (void)ftruncate(fd, st.st_size);
                        close(fd);
                        return r;
                }
                close(fs->fd);
                fs->fd = fd;
                /* the same bytes after the new file's own */
                fs->end += st.st_size - fs->synced;
                fs->mark += st.st_size - fs->synced;
                fs->synced = st.st_size;
        }
}

int wc_filesink_sync(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        int r = write_out(fs, errbuf, errlen);

        if (r < 0)
                return r;
        if (fs->can_fsync && fs->dirty) {
                if (fdatasync(fs->fd) < 0) {
                        r = -errno;
                        wc_errorf(errbuf, errlen, "could not fsync \"%s\": %s",
                                  fs->path, strerror(errno));
                        return r;
                }
        }
        fs->dirty = false;
        /* checked after the data is down: a deletion before this point
         * shows here, one after it takes acknowledged data only */
        if (fs->regular) {
                r = follow_deleted(fs, errbuf, errlen);
                if (r < 0) {
                        fs->dirty = true; /* sync again after a fix */
                        return r;
                }
        }
        return 0;
}

size_t wc_filesink_pending(const struct wc_filesink *fs)
{
        return fs->out.len;
}

const char *wc_filesink_path(const struct wc_filesink *fs)
{
        return fs->path;
}

wc_lsn wc_filesink_found(const struct wc_filesink *fs)
{
        return fs->found;
}

void wc_filesink_txn_begin(struct wc_filesink *fs)
{
        fs->open_txn = true;
}

int wc_filesink_txn_end(struct wc_filesink *fs, bool wrote)
{
        if (wrote && fs->open_txn) {
                /* the last line, still queued: "...}\n" becomes
                 * "...,\"last\":true}\n" */
                int r = wc_buf_reserve(&fs->out, LAST_TAIL_LEN);
                if (r < 0)
                        return r;
                if (fs->out.len < 2 || fs->out.data[fs->out.len - 1] != '\n')
                        return -EINVAL;
                fs->out.len -= 2;
                memcpy(fs->out.data + fs->out.len, LAST_TAIL, LAST_TAIL_LEN);
                fs->out.len += LAST_TAIL_LEN;
                fs->out.data[fs->out.len] = '\0';
        }
        fs->open_txn = false;
        fs->mark = fs->end + (off_t)fs->out.len;
        return 0;
}

int wc_filesink_rollback(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        fs->open_txn = false;
        if (fs->mark >= fs->end) {
                fs->out.len = (size_t)(fs->mark - fs->end);
                return 0;
        }
        fs->out.len = 0;
        /* a pipe keeps what it got, and standard output is never cut:
         * at least once */
        if (!fs->regular || !fs->owns_fd)
                return 0;
        if (ftruncate(fs->fd, fs->mark) < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "could not cut \"%s\" back to its last whole "
                               "transaction: %s",
                               fs->path, strerror(errno));
        fs->end = fs->mark;
        if (fs->synced > fs->end)
                fs->synced = fs->end;
        return 0;
}
