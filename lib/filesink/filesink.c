/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesink/filesink.h"

/* Writes happen in chunks of about this size. */
#define WRITE_CHUNK (256 * 1024)

struct wc_filesink {
        int fd;
        bool owns_fd;
        bool can_fsync; /* a regular file with fsync enabled */
        bool dirty;     /* written since the last fsync */
        struct wc_buf out;
        char path[4096];
};

/* Cuts a trailing partial line left by a crash; see the header. */
static int cut_partial_line(int fd, off_t size)
{
        char buf[4096];
        off_t end = size;

        while (end > 0) {
                off_t start =
                    end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
                ssize_t n = pread(fd, buf, (size_t)(end - start), start);
                if (n != end - start)
                        return n < 0 ? -errno : -EIO;
                for (ssize_t i = n - 1; i >= 0; i--) {
                        if (buf[i] == '\n') {
                                off_t keep = start + i + 1;
                                if (keep == size)
                                        return 0;
                                return ftruncate(fd, keep) < 0 ? -errno : 1;
                        }
                }
                end = start;
        }
        return ftruncate(fd, 0) < 0 ? -errno : 1;
}

struct wc_filesink *wc_filesink_open(const char *path, bool fsync, char *errbuf,
                                     size_t errlen)
{
        struct wc_filesink *fs = calloc(1, sizeof(*fs));
        struct stat st;
        int r;

        if (!fs) {
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        wc_buf_init(&fs->out);
        snprintf(fs->path, sizeof(fs->path), "%s", path);
        if (strcmp(path, "-") == 0) {
                fs->fd = STDOUT_FILENO;
        } else {
                fs->fd =
                    open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
                if (fs->fd < 0) {
                        wc_errorf(errbuf, errlen, "could not open \"%s\": %s",
                                  path, strerror(errno));
                        goto err_free;
                }
                fs->owns_fd = true;
        }
        if (fstat(fs->fd, &st) < 0) {
                wc_errorf(errbuf, errlen, "could not stat \"%s\": %s", path,
                          strerror(errno));
                goto err_close;
        }
        if (S_ISREG(st.st_mode)) {
                fs->can_fsync = fsync;
                if (st.st_size > 0) {
                        r = cut_partial_line(fs->fd, st.st_size);
                        if (r < 0) {
                                wc_errorf(errbuf, errlen,
                                          "could not repair the last line of "
                                          "\"%s\": %s",
                                          path, strerror(-r));
                                goto err_close;
                        }
                }
        }
        return fs;

err_close:
        if (fs->owns_fd)
                close(fs->fd);
err_free:
        free(fs);
        return NULL;
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

static int write_out(struct wc_filesink *fs, char *errbuf, size_t errlen)
{
        size_t off = 0;

        while (off < fs->out.len) {
                ssize_t n =
                    write(fs->fd, fs->out.data + off, fs->out.len - off);
                if (n < 0) {
                        int e = errno;
                        if (e == EINTR)
                                continue;
                        /* keep what was not written: nothing is lost */
                        memmove(fs->out.data, fs->out.data + off,
                                fs->out.len - off);
                        fs->out.len -= off;
                        wc_errorf(errbuf, errlen,
                                  "could not write to \"%s\": %s", fs->path,
                                  strerror(e));
                        return -e;
                }
                off += (size_t)n;
                fs->dirty = true;
        }
        fs->out.len = 0;
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
