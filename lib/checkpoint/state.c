/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/state.h"

#define STATE_MAX 4096 /* a larger file is not ours */

int wc_state_path(const char *dir, const char *slot, char *buf, size_t len)
{
        int n =
            snprintf(buf, len, "%s%s%s.state", dir,
                     dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", slot);

        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int wc_state_sibling(const char *state_path, const char *suffix, char *buf,
                     size_t len)
{
        size_t n = strlen(state_path), s = strlen(suffix);

        if (len)
                buf[0] = '\0';
        if (n <= 6 || strcmp(state_path + n - 6, ".state") != 0)
                return -EINVAL;
        if (n - 6 + s >= len)
                return -ENAMETOOLONG;
        memcpy(buf, state_path, n - 6);
        memcpy(buf + n - 6, suffix, s + 1);
        return 0;
}

static int copy_field(char *dst, size_t cap, const char *v, size_t len)
{
        if (len == 0 || len >= cap)
                return -EINVAL;
        memcpy(dst, v, len);
        dst[len] = '\0';
        return 0;
}

static int parse_uint32(const char *v, size_t len, uint32_t *ret)
{
        uint64_t n = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (v[i] < '0' || v[i] > '9')
                        return -EINVAL;
                n = n * 10 + (uint64_t)(v[i] - '0');
        }
        if (n > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t)n;
        return 0;
}

/* One "key=value" line into st; *seen gets the key's bit. */
static int parse_line(const char *line, size_t len, struct wc_slot_state *st,
                      unsigned *seen)
{
        const char *eq = memchr(line, '=', len);
        size_t klen, vlen;
        const char *v;

        if (!eq)
                return -EINVAL;
        klen = (size_t)(eq - line);
        v = eq + 1;
        vlen = len - klen - 1;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
        if (KEY_IS("system_id")) {
                *seen |= 1;
                for (size_t i = 0; i < vlen; i++)
                        if (v[i] < '0' || v[i] > '9')
                                return -EINVAL;
                return copy_field(st->system_id, sizeof(st->system_id), v,
                                  vlen);
        }
        if (KEY_IS("timeline")) {
                *seen |= 2;
                return parse_uint32(v, vlen, &st->timeline);
        }
        if (KEY_IS("database")) {
                *seen |= 4;
                return copy_field(st->database, sizeof(st->database), v, vlen);
        }
        if (KEY_IS("slot")) {
                *seen |= 8;
                return copy_field(st->slot, sizeof(st->slot), v, vlen);
        }
        if (KEY_IS("confirmed_lsn")) {
                *seen |= 16;
                return wc_lsn_parse_n(v, vlen, &st->confirmed);
        }
#undef KEY_IS
        return 0; /* a key of a later version: ignored */
}

int wc_state_read(const char *path, struct wc_slot_state *ret, char *errbuf,
                  size_t errlen)
{
        char text[STATE_MAX + 1];
        struct wc_slot_state st = {0};
        unsigned seen = 0, lineno = 0;
        ssize_t n;
        size_t len = 0;
        struct stat sb;
        /* never through a symbolic link: whoever can write state_dir could
         * point one anywhere; never blocking on a FIFO */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0 && errno == ELOOP)
                return wc_fail(errbuf, errlen, -ELOOP,
                               "the state file %s is a symbolic link, which "
                               "walcast does not follow: replace it with the "
                               "file it points to, or accept the slot as it "
                               "is with `walcast slot create --force`",
                               path);
        if (fd < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "cannot open the state file %s: %s", path,
                               strerror(errno));
        if (fstat(fd, &sb) < 0) {
                int e = errno;
                close(fd);
                return wc_fail(errbuf, errlen, -e,
                               "cannot stat the state file %s: %s", path,
                               strerror(e));
        }
        if (!S_ISREG(sb.st_mode)) {
                close(fd);
                return wc_fail(errbuf, errlen, -EINVAL,
                               "the state file %s is not a regular file: "
                               "remove it, or accept the slot as it is with "
                               "`walcast slot create --force`",
                               path);
        }
        while ((n = read(fd, text + len, sizeof(text) - len)) > 0)
                len += (size_t)n;
        if (n < 0) {
                int e = errno;
                close(fd);
                return wc_fail(errbuf, errlen, -e,
                               "cannot read the state file %s: %s", path,
                               strerror(e));
        }
        close(fd);
        if (len > STATE_MAX)
                return wc_fail(errbuf, errlen, -EINVAL,
                               "the state file %s is larger than %d bytes: it "
                               "is not a walcast state file",
                               path, STATE_MAX);
        for (size_t at = 0; at < len;) {
                const char *line = text + at;
                const char *nl = memchr(line, '\n', len - at);
                size_t ll = nl ? (size_t)(nl - line) : len - at;

                at += ll + 1;
                lineno++;
                if (ll == 0 || line[0] == '#')
                        continue;
                if (parse_line(line, ll, &st, &seen) < 0)
                        return wc_fail(
                            errbuf, errlen, -EINVAL,
                            "the state file %s is damaged at line %u "
                            "(\"%.*s\"): restore it, or accept the "
                            "slot as it is with `walcast slot create "
                            "--force`",
                            path, lineno, (int)(ll > 60 ? 60 : ll), line);
        }
        if (seen != 31)
                return wc_fail(errbuf, errlen, -EINVAL,
                               "the state file %s is incomplete (it needs "
                               "system_id, timeline, database, slot and "
                               "confirmed_lsn): restore it, or accept the slot "
                               "as it is with `walcast slot create --force`",
                               path);
        *ret = st;
        return 1;
}

int wc_state_write(const char *path, const struct wc_slot_state *st,
                   char *errbuf, size_t errlen)
{
        char tmp[4200], lsn[WC_LSN_STRLEN], text[512];
        int fd, n, r;

        n = snprintf(text, sizeof(text),
                     "# walcast slot state (docs/reliability.md); written by "
                     "walcastd\n"
                     "system_id=%s\ntimeline=%u\ndatabase=%s\nslot=%s\n"
                     "confirmed_lsn=%s\n",
                     st->system_id, st->timeline, st->database, st->slot,
                     wc_lsn_format(st->confirmed, lsn));
        if (n < 0 || (size_t)n >= sizeof(text))
                return wc_fail(errbuf, errlen, -EINVAL, "state too long");
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return wc_fail(errbuf, errlen, -ENAMETOOLONG,
                               "state file name too long: %s", path);
        /* a temporary left by a crash is removed (a symbolic link put
         * there is removed, not followed), and the new one must be a new
         * file: O_EXCL fails on anything created in between */
        if (unlink(tmp) < 0 && errno != ENOENT)
                return wc_fail(errbuf, errlen, -errno,
                               "cannot remove the stale temporary state file "
                               "%s: %s; check that the state directory is "
                               "writable",
                               tmp, strerror(errno));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0640);
        if (fd < 0 && errno == EEXIST)
                return wc_fail(errbuf, errlen, -EEXIST,
                               "cannot write the state file %s: %s appeared "
                               "again right after it was removed; is another "
                               "walcastd writing the state of slot \"%s\" in "
                               "this state directory?",
                               path, tmp, st->slot);
        if (fd < 0)
                return wc_fail(errbuf, errlen, -errno,
                               "cannot write the state file %s: %s; check that "
                               "the state directory exists and is writable",
                               tmp, strerror(errno));
        r = write(fd, text, (size_t)n) == n ? 0 : (errno ? -errno : -EIO);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlink(tmp);
                return wc_fail(errbuf, errlen, r,
                               "cannot write the state file %s: %s", path,
                               strerror(-r));
        }
        r = wc_sync_dir(path);
        if (r < 0)
                return wc_fail(errbuf, errlen, r,
                               "cannot sync the directory of the state file "
                               "%s: %s",
                               path, strerror(-r));
        return 0;
}

int wc_state_remove(const char *path, char *errbuf, size_t errlen)
{
        if (unlink(path) < 0 && errno != ENOENT)
                return wc_fail(errbuf, errlen, -errno,
                               "cannot remove the state file %s: %s", path,
                               strerror(errno));
        return 0;
}

enum wc_slot_verdict wc_state_check(const struct wc_slot_state *saved,
                                    const char *system_id, bool slot_exists,
                                    wc_lsn slot_confirmed, char *errbuf,
                                    size_t errlen)
{
        char a[WC_LSN_STRLEN], b[WC_LSN_STRLEN];

        if (!saved)
                return WC_SLOT_FIRST;
        wc_lsn_format(saved->confirmed, a);
        if (strcmp(saved->system_id, system_id) != 0) {
                wc_errorf(errbuf, errlen,
                          "the server is another one: its system identifier "
                          "is %s, but walcast confirmed changes up to %s of "
                          "slot \"%s\" on system %s; changes may have been "
                          "lost",
                          system_id, a, saved->slot, saved->system_id);
                return WC_SLOT_OTHER_SERVER;
        }
        if (!slot_exists) {
                wc_errorf(errbuf, errlen,
                          "replication slot \"%s\" has vanished: walcast had "
                          "confirmed changes up to %s on it, and whatever "
                          "was committed after that and before a new slot "
                          "is created will not be delivered",
                          saved->slot, a);
                return WC_SLOT_VANISHED;
        }
        if (slot_confirmed > saved->confirmed) {
                wc_errorf(errbuf, errlen,
                          "replication slot \"%s\" is at %s, past the %s "
                          "walcast confirmed: it was recreated, or advanced "
                          "by another client, and the changes in between "
                          "may have been lost",
                          saved->slot, wc_lsn_format(slot_confirmed, b), a);
                return WC_SLOT_MOVED;
        }
        return WC_SLOT_SAME;
}

int wc_state_match(const struct wc_slot_state *saved, const char *path,
                   const struct wc_state_expect *x, char *errbuf, size_t errlen)
{
        char a[WC_LSN_STRLEN], b[WC_LSN_STRLEN];

        /* another server's file: wc_state_check() says so */
        if (!saved || strcmp(saved->system_id, x->system_id) != 0)
                return 0;
        if (strcmp(saved->slot, x->slot) != 0)
                return wc_fail(errbuf, errlen, -ESTALE,
                               "the state file %s records slot \"%s\", not "
                               "\"%s\": it is another slot's state file "
                               "(copied, renamed or edited), so it says "
                               "nothing about this one; restore the state "
                               "file of slot \"%s\", or accept the slot as it "
                               "is with `walcast slot create --force`",
                               path, saved->slot, x->slot, x->slot);
        if (strcmp(saved->database, x->database) != 0)
                return wc_fail(errbuf, errlen, -EEXIST,
                               "the state file %s records slot \"%s\" of "
                               "database \"%s\", but source.dsn connects to "
                               "database \"%s\" of the same server: fix "
                               "dbname in source.dsn; to follow database "
                               "\"%s\" from now on instead, accept the slot "
                               "as it is with `walcast slot create --force`",
                               path, saved->slot, saved->database, x->database,
                               x->database);
        if (saved->confirmed > x->server_lsn)
                return wc_fail(
                    errbuf, errlen, -ESTALE,
                    "the state file %s records the confirmed position %s, "
                    "beyond the server's current WAL position %s: no "
                    "position from the future was ever confirmed, so the "
                    "file is damaged, or the server went back in time (a "
                    "restored backup keeps its system identifier) and the "
                    "sinks may hold changes the database no longer has; "
                    "check the sinks, then accept the slot as it is with "
                    "`walcast slot create --force`",
                    path, wc_lsn_format(saved->confirmed, a),
                    wc_lsn_format(x->server_lsn, b));
        return 0;
}
