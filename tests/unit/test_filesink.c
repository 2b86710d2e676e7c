/* SPDX-License-Identifier: MIT */
/* The JSON-lines format of the file sink, and the sink's file handling. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "sinks/file/filesink.h"

/* fsync() as the sink calls it: the directories it syncs are recorded
 * (the sink is linked statically, so this one replaces libc's) */
static ino_t synced_dirs[16];
static size_t nsynced_dirs;

int fsync(int fd)
{
        struct stat st;

        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) &&
            nsynced_dirs < sizeof(synced_dirs) / sizeof(synced_dirs[0]))
                synced_dirs[nsynced_dirs++] = st.st_ino;
        return (int)syscall(SYS_fsync, fd);
}

static bool dir_was_synced(const char *dir)
{
        struct stat st;

        assert_int_equal(stat(dir, &st), 0);
        for (size_t i = 0; i < nsynced_dirs; i++)
                if (synced_dirs[i] == st.st_ino)
                        return true;
        return false;
}

#define COL(n, t, oid, v)                                                      \
        {                                                                      \
                .name = n, .name_len = sizeof(n) - 1, .type = t,               \
                .type_len = sizeof(t) - 1, .type_oid = oid, .value = v,        \
                .value_len = sizeof(v) - 1                                     \
        }

static const struct walcast_column row[] = {
    COL("id", "bigint", 20, "42"),
    COL("title", "text", 25, "\"a \\\"b\\\"\\n\""),
    COL("gone", "text", 0, "null"),
};
static const struct walcast_column key[] = {COL("id", "bigint", 20, "41")};
static const struct walcast_column pk[] = {COL("id", "bigint", 20, "")};

static const struct walcast_txn txn = {
    .id = 1,
    .xid = 728,
    .commit_lsn = 0x15478F0,
    .end_lsn = 0x1547920,
    .commit_time_us = 1795614503648945,
};
#define WHEN "2026-11-25T13:48:23.648945Z"

static struct walcast_signal base(uint32_t kind)
{
        return (struct walcast_signal){
            .size = sizeof(struct walcast_signal),
            .kind = kind,
            .lsn = 0x1547700,
            .schema = "town6-govikon",
            .table = "t",
            .txn = &txn,
            .pk = {pk, 1},
        };
}

static void expect_line(const struct walcast_signal *s, const char *want)
{
        struct wc_buf b;
        char when[WC_TIME_STRLEN];

        /* the formatted time the sink passes is the transaction's */
        if (s->txn)
                assert_string_equal(
                    wc_time_format(s->txn->commit_time_us, when), WHEN);
        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_str(&b, "prefix:"), 0);
        assert_int_equal(wc_format_signal(&b, s, s->txn ? when : NULL), 0);
        assert_string_equal(b.data + 7, want);
        wc_buf_free(&b);
}

#define TXN                                                                    \
        "\"xid\":728,\"commit_lsn\":\"0/15478F0\",\"end_lsn\":\"0/1547920\","  \
        "\"commit_time\":\"2026-11-25T13:48:23.648945Z\""
#define ROW                                                                    \
        "[{\"name\":\"id\",\"type\":\"bigint\",\"typeoid\":20,\"value\":42},"  \
        "{\"name\":\"title\",\"type\":\"text\",\"typeoid\":25,"                \
        "\"value\":\"a \\\"b\\\"\\n\"},"                                       \
        "{\"name\":\"gone\",\"type\":\"text\",\"value\":null}]"
#define KEY                                                                    \
        "[{\"name\":\"id\",\"type\":\"bigint\",\"typeoid\":20,\"value\":41}]"
#define PK "[{\"name\":\"id\",\"type\":\"bigint\",\"typeoid\":20}]"

static void formats_each_op(void **state)
{
        struct walcast_signal c;
        (void)state;

        c = base(WALCAST_SIG_INSERT);
        c.columns = (struct walcast_columns){row, 3};
        expect_line(&c, "{\"op\":\"insert\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"pk\":" PK "}\n");

        c = base(WALCAST_SIG_UPDATE);
        c.columns = (struct walcast_columns){row, 3};
        c.identity = (struct walcast_columns){key, 1};
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        "}\n");

        /* unchanged TOASTed columns walcastd completed are named (ABI
         * 1.3); a host of an older ABI has no such field */
        c.completed = (struct walcast_columns){row + 2, 1};
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        ",\"completed\":[\"gone\"]}\n");
        c.size = (uint32_t)offsetof(struct walcast_signal, completed);
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        "}\n");
        c.size = sizeof(c);
        c.completed = (struct walcast_columns){NULL, 0};

        /* the ones the decoder left out and nothing completed (pgoutput
         * names them), after completed: both, as a host may one day */
        c.missing = (struct walcast_columns){row + 1, 2};
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        ",\"missing\":[\"title\",\"gone\"]}\n");
        c.completed = (struct walcast_columns){row + 2, 1};
        c.missing = (struct walcast_columns){row + 1, 1};
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        ",\"completed\":[\"gone\"],\"missing\":[\"title\"]}\n");
        c.completed = (struct walcast_columns){NULL, 0};
        c.missing = (struct walcast_columns){NULL, 0};

        /* an update without identity leaves the key out */
        c.identity = (struct walcast_columns){NULL, 0};
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"pk\":" PK "}\n");

        c = base(WALCAST_SIG_DELETE);
        c.identity = (struct walcast_columns){key, 1};
        expect_line(&c, "{\"op\":\"delete\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"identity\":" KEY ",\"pk\":" PK "}\n");

        c = base(WALCAST_SIG_TRUNCATE);
        expect_line(&c, "{\"op\":\"truncate\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN "}\n");

        c = (struct walcast_signal){.size = sizeof(c),
                                    .kind = WALCAST_SIG_MESSAGE,
                                    .lsn = 0x1547F68,
                                    .transactional = 0,
                                    .prefix = "walcast",
                                    .content = "\"hi\"",
                                    .content_len = 4};
        expect_line(&c, "{\"op\":\"message\",\"lsn\":\"0/1547F68\","
                        "\"transactional\":false,\"prefix\":\"walcast\","
                        "\"content\":\"hi\"}\n");
        c.transactional = 1;
        c.txn = &txn;
        expect_line(&c, "{\"op\":\"message\",\"lsn\":\"0/1547F68\"," TXN
                        ",\"transactional\":true,\"prefix\":\"walcast\","
                        "\"content\":\"hi\"}\n");
        /* bytes that are not text arrive as their base64, and go under a
         * key of their own */
        c.content = "\"Qf9C\"";
        c.content_len = 6;
        c.content_flags = WALCAST_CONTENT_BASE64;
        expect_line(&c, "{\"op\":\"message\",\"lsn\":\"0/1547F68\"," TXN
                        ",\"transactional\":true,\"prefix\":\"walcast\","
                        "\"content_base64\":\"Qf9C\"}\n");
        /* a plugin-side signal of ABI 1.1 has no flags: content as ever */
        c.size = offsetof(struct walcast_signal, content_flags);
        expect_line(&c, "{\"op\":\"message\",\"lsn\":\"0/1547F68\"," TXN
                        ",\"transactional\":true,\"prefix\":\"walcast\","
                        "\"content\":\"Qf9C\"}\n");
}

static void escapes_names(void **state)
{
        static const struct walcast_column odd[] = {
            COL("we\"ird\\", "text", 25, "1"),
        };
        struct walcast_signal c = base(WALCAST_SIG_INSERT);
        (void)state;

        c.schema = "sch\xc3\xa9ma";
        c.table = "ta\"ble\n";
        c.columns = (struct walcast_columns){odd, 1};
        c.pk = (struct walcast_columns){NULL, 0};
        expect_line(&c, "{\"op\":\"insert\",\"schema\":\"sch\xc3\xa9ma\","
                        "\"table\":\"ta\\\"ble\\n\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":[{\"name\":\"we\\\"ird\\\\\",\"type\":"
                        "\"text\",\"typeoid\":25,\"value\":1}],\"pk\":[]}\n");
}

/* Names are escaped by the sink's own writer, eight bytes at a time where
 * it can: it must write what wc_json_append_string() writes, wherever in
 * the name the byte to escape is. */
static void names_escape_like_json(void **state)
{
        static const char specials[] = {'"',  '\\',   '\n', '\x01',
                                        0x1f, '\x7f', 'a',  (char)0xc3};
        char name[48];
        (void)state;

        for (size_t len = 1; len < 40; len++) {
                for (size_t pos = 0; pos < len; pos++) {
                        for (size_t k = 0; k < sizeof(specials); k++) {
                                struct walcast_column col = {.name = name,
                                                             .name_len =
                                                                 (uint32_t)len,
                                                             .type = "t",
                                                             .type_len = 1,
                                                             .value = "1",
                                                             .value_len = 1};
                                struct walcast_signal c =
                                    base(WALCAST_SIG_INSERT);
                                struct wc_buf got, want;

                                memset(name, 'n', len);
                                name[pos] = specials[k];
                                name[len] = '\0';
                                c.schema = name;
                                c.txn = NULL;
                                c.columns = (struct walcast_columns){&col, 1};
                                c.pk = (struct walcast_columns){NULL, 0};
                                wc_buf_init(&got);
                                wc_buf_init(&want);
                                assert_int_equal(
                                    wc_format_signal(&got, &c, NULL), 0);
                                assert_int_equal(
                                    wc_buf_append_str(&want,
                                                      "{\"op\":\"insert\","
                                                      "\"schema\":"),
                                    0);
                                assert_int_equal(
                                    wc_json_append_string(&want, name, len), 0);
                                assert_int_equal(
                                    wc_buf_append_str(&want,
                                                      ",\"table\":\"t\","
                                                      "\"lsn\":\"0/1547700\","
                                                      "\"columns\":[{"
                                                      "\"name\":"),
                                    0);
                                assert_int_equal(
                                    wc_json_append_string(&want, name, len), 0);
                                assert_int_equal(
                                    wc_buf_append_str(&want, ",\"type\":\"t\","
                                                             "\"value\":1}],"
                                                             "\"pk\":[]}\n"),
                                    0);
                                assert_string_equal(got.data, want.data);
                                wc_buf_free(&got);
                                wc_buf_free(&want);
                        }
                }
        }
}

/* Formatting a transaction's part once and reusing it for each line gives
 * the same lines; a line fails whole, leaving the buffer as it was. */
static void txn_part_once(void **state)
{
        struct walcast_signal c = base(WALCAST_SIG_INSERT);
        struct wc_buf part, a, b;
        (void)state;

        c.columns = (struct walcast_columns){row, 3};
        wc_buf_init(&part);
        wc_buf_init(&a);
        wc_buf_init(&b);
        assert_int_equal(wc_format_txn(&part, &txn, WHEN), 0);
        assert_string_equal(part.data, "," TXN);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(wc_format_line(&a, &c, part.data, part.len),
                                 0);
                assert_int_equal(wc_format_signal(&b, &c, WHEN), 0);
        }
        assert_string_equal(a.data, b.data);
        c.kind = WALCAST_SIG_COMMIT;
        assert_int_equal(wc_format_line(&a, &c, part.data, part.len), -EINVAL);
        assert_int_equal(a.len, b.len);
        wc_buf_free(&part);
        wc_buf_free(&a);
        wc_buf_free(&b);
}

/* The lists' text as wal2json sent it (ABI 1.1) is copied when the signal
 * has it: the line is the same. */
static void lists_text_copied(void **state)
{
        static const char row_json[] = ROW, key_json[] = KEY, pk_json[] = PK;
        struct walcast_signal c = base(WALCAST_SIG_UPDATE);
        (void)state;

        c.columns = (struct walcast_columns){row, 3};
        c.identity = (struct walcast_columns){key, 1};
        c.columns_json = row_json;
        c.columns_json_len = sizeof(row_json) - 1;
        c.identity_json = key_json;
        c.identity_json_len = sizeof(key_json) - 1;
        c.pk_json = pk_json;
        c.pk_json_len = sizeof(pk_json) - 1;
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        "}\n");
        /* the text is what is written, not the columns (here a marker) */
        c.columns_json = "[\"as sent\"]";
        c.columns_json_len = 11;
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":[\"as sent\"],\"identity\":" KEY
                        ",\"pk\":" PK "}\n");
        /* a signal of ABI 1.0 has no such fields: never read */
        c.size = offsetof(struct walcast_signal, columns_json);
        expect_line(&c, "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                        "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                        ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                        "}\n");
}

static void other_signals_have_no_line(void **state)
{
        static const uint32_t kinds[] = {WALCAST_SIG_BEGIN, WALCAST_SIG_COMMIT,
                                         WALCAST_SIG_BULK_DELETE, 99};
        struct wc_buf b;
        (void)state;

        wc_buf_init(&b);
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                struct walcast_signal c = base(kinds[i]);
                assert_int_equal(wc_format_signal(&b, &c, WHEN), -EINVAL);
        }
        assert_int_equal(b.len, 0);
        wc_buf_free(&b);
}

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "rb");
        static char buf[1 << 16];
        size_t n;

        assert_non_null(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

static void appends_syncs_and_repairs(void **state)
{
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        char path[64], err[256];
        struct wc_filesink *fs;
        int fd;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);

        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_non_null(fs);
        assert_int_equal(
            wc_filesink_write(fs, "{\"a\":1}\n", 8, err, sizeof(err)), 0);
        /* buffered until the sync */
        assert_int_equal(wc_filesink_pending(fs), 8);
        assert_string_equal(slurp(path), "");
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_pending(fs), 0);
        assert_string_equal(slurp(path), "{\"a\":1}\n");
        wc_filesink_close(fs);

        /* a crash left half a line: it is cut, complete lines stay */
        fd = open(path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "{\"b\":2}\n{\"c\":", 13), 13);
        close(fd);
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_non_null(fs);
        assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n");
        assert_int_equal(
            wc_filesink_write(fs, "{\"d\":4}\n", 8, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
        wc_filesink_close(fs);

        /* a file of one partial line becomes empty */
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, "{\"x\"", 4), 4);
        close(fd);
        fs = wc_filesink_open(path, false, err, sizeof(err));
        assert_non_null(fs);
        assert_string_equal(slurp(path), "");
        wc_filesink_close(fs);

        /* large writes go out in chunks without waiting for a sync */
        fs = wc_filesink_open(path, false, err, sizeof(err));
        char line[1000];
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (int i = 0; i < 1000; i++)
                assert_int_equal(
                    wc_filesink_write(fs, line, sizeof(line), err, sizeof(err)),
                    0);
        assert_true(wc_filesink_pending(fs) < 300 * 1024);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 1000 * 1000);
        wc_filesink_close(fs);
        wc_filesink_close(NULL);

        unlink(path);
        rmdir(dir);
}

/* Lines as the sink writes them (only the keys the scan reads). */
#define TXN_A1                                                                 \
        "{\"op\":\"insert\",\"lsn\":\"0/10\",\"xid\":7,\"end_lsn\":\"0/"       \
        "100\",\"v\":1}\n"
#define TXN_A2                                                                 \
        "{\"op\":\"insert\",\"lsn\":\"0/20\",\"xid\":7,\"end_lsn\":\"0/"       \
        "100\",\"v\":2,\"last\":true}\n"
#define TXN_B1                                                                 \
        "{\"op\":\"insert\",\"lsn\":\"0/110\",\"xid\":8,\"end_lsn\":\"0/"      \
        "200\",\"v\":3}\n"
#define TXN_B2                                                                 \
        "{\"op\":\"insert\",\"lsn\":\"0/120\",\"xid\":8,\"end_lsn\":\"0/"      \
        "200\",\"v\":4}\n"
#define MSG                                                                    \
        "{\"op\":\"message\",\"lsn\":\"0/"                                     \
        "1F0\",\"transactional\":false,\"prefix\":\"p\",\"content\":\"c\","    \
        "\"last\":true}\n"

static void write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

/* The last line of each transaction is marked; at open the file is cut
 * back to its last marked line and gives that transaction's end. */
static void whole_transactions(void **state)
{
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        char path[64], err[256], line[1000];
        struct wc_filesink *fs;
        struct stat st;
        char *text;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);

        /* a whole transaction, then two lines of one that did not commit
         * and half a line: all of the second goes */
        write_file(path, TXN_A1 TXN_A2 TXN_B1 TXN_B2 "{\"op\":\"ins");
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_non_null(fs);
        assert_string_equal(slurp(path), TXN_A1 TXN_A2);
        assert_true(wc_filesink_found(fs) == 0x100);

        /* the sink marks the last line at the commit, nothing else */
        wc_filesink_txn_begin(fs);
        assert_int_equal(
            wc_filesink_write(fs, TXN_B1, strlen(TXN_B1), err, sizeof(err)), 0);
        assert_int_equal(
            wc_filesink_write(fs, TXN_B2, strlen(TXN_B2), err, sizeof(err)), 0);
        /* a sync while it is open leaves its last line queued */
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(slurp(path), TXN_A1 TXN_A2 TXN_B1);
        assert_int_equal(wc_filesink_txn_end(fs, true), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(
            slurp(path), TXN_A1 TXN_A2 TXN_B1
            "{\"op\":\"insert\",\"lsn\":\"0/120\",\"xid\":8,\"end_lsn\":"
            "\"0/200\",\"v\":4,\"last\":true}\n");
        wc_filesink_close(fs);
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_true(wc_filesink_found(fs) == 0x200);

        /* a transaction that never committed, partly written out (more
         * than a chunk): rolled back, from the file too */
        wc_filesink_txn_begin(fs);
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (int i = 0; i < 300; i++)
                assert_int_equal(
                    wc_filesink_write(fs, line, sizeof(line), err, sizeof(err)),
                    0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size > 200 * 1000);
        assert_int_equal(wc_filesink_rollback(fs, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_pending(fs), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        text = slurp(path);
        assert_int_equal(strlen(text),
                         strlen(TXN_A1 TXN_A2 TXN_B1 TXN_B2) + 12);
        /* a message outside a transaction is whole by itself: its
         * position is just past its lsn */
        wc_filesink_txn_begin(fs);
        assert_int_equal(
            wc_filesink_write(fs, MSG, strlen(MSG), err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_txn_end(fs, false), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        wc_filesink_close(fs);
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_true(wc_filesink_found(fs) == 0x1F1);
        wc_filesink_close(fs);

        /* a file without any mark (an older walcast's): only a partial
         * line goes, and it gives no position */
        write_file(path, TXN_A1 TXN_B1 "{\"op\"");
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_string_equal(slurp(path), TXN_A1 TXN_B1);
        assert_true(wc_filesink_found(fs) == 0);
        wc_filesink_close(fs);
        /* ... even when it is known to be written with marks, if its lines
         * are of several transactions (someone put another file there) */
        fs = wc_filesink_open_marked(path, true, true, err, sizeof(err));
        assert_string_equal(slurp(path), TXN_A1 TXN_B1);
        wc_filesink_close(fs);
        /* known to be written with marks and one transaction: its first,
         * incomplete, goes */
        write_file(path, TXN_B1 TXN_B2 "{\"op\"");
        fs = wc_filesink_open_marked(path, true, true, err, sizeof(err));
        assert_string_equal(slurp(path), "");
        assert_true(wc_filesink_found(fs) == 0);
        wc_filesink_close(fs);

        unlink(path);
        rmdir(dir);
}

static void open_errors_name_the_file(void **state)
{
        char err[256];
        (void)state;

        assert_null(wc_filesink_open("/nonexistent-dir/x.jsonl", true, err,
                                     sizeof(err)));
        assert_non_null(strstr(err, "\"/nonexistent-dir/x.jsonl\""));
        assert_non_null(strstr(err, "No such file or directory"));
}

static void creating_syncs_the_directory(void **state)
{
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        char path[64], err[256];
        struct wc_filesink *fs;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);
        /* without fsync nothing is synced */
        nsynced_dirs = 0;
        fs = wc_filesink_open(path, false, err, sizeof(err));
        assert_non_null(fs);
        wc_filesink_close(fs);
        assert_false(dir_was_synced(dir));
        unlink(path);

        /* the new file's name is durable before any line is acknowledged */
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_non_null(fs);
        assert_true(dir_was_synced(dir));
        wc_filesink_close(fs);
        unlink(path);
        rmdir(dir);
}

static void deleted_file_is_followed(void **state)
{
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        char path[64], err[256], line[1000];
        struct wc_filesink *fs;
        struct stat st;
        char *text;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);
        fs = wc_filesink_open(path, true, err, sizeof(err));
        assert_non_null(fs);
        assert_int_equal(
            wc_filesink_write(fs, "{\"a\":1}\n", 8, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);

        /* more than a chunk goes into the file, then it is deleted, then
         * one more line: every byte since the last sync must end up in
         * the file at the path before the sync says 0 */
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (int i = 0; i < 300; i++)
                assert_int_equal(
                    wc_filesink_write(fs, line, sizeof(line), err, sizeof(err)),
                    0);
        assert_true(wc_filesink_pending(fs) < 300 * 1000);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(
            wc_filesink_write(fs, "{\"b\":2}\n", 8, err, sizeof(err)), 0);
        nsynced_dirs = 0;
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_true(dir_was_synced(dir));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 300 * 1000 + 8);
        text = slurp(path);
        assert_memory_equal(text, line, sizeof(line));
        assert_null(strstr(text, "\"a\""));

        /* and the sink goes on in the new file */
        assert_int_equal(
            wc_filesink_write(fs, "{\"c\":3}\n", 8, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 300 * 1000 + 16);

        /* deleted with nothing written since the last sync: a new empty
         * file, and later lines go there */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(slurp(path), "");
        assert_int_equal(
            wc_filesink_write(fs, "{\"d\":4}\n", 8, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(slurp(path), "{\"d\":4}\n");

        /* deleted with its directory: an error, nothing acknowledged, and
         * once the directory is back the lines are there */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(
            wc_filesink_write(fs, "{\"e\":5}\n", 8, err, sizeof(err)), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, path));
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(wc_filesink_sync(fs, err, sizeof(err)), 0);
        assert_string_equal(slurp(path), "{\"e\":5}\n");
        wc_filesink_close(fs);
        unlink(path);
        rmdir(dir);
}

/* Opens a sink on "-" with `fd` as standard output, writes `lines`, syncs
 * and closes it; returns the sync's result (or the open's -1). */
static int through_stdout(int fd, const char *lines, char *err, size_t errlen)
{
        struct wc_filesink *fs;
        int saved, r = -1;

        fflush(stdout);
        saved = dup(STDOUT_FILENO);
        assert_true(saved >= 0);
        assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
        fs = wc_filesink_open("-", true, err, errlen);
        if (fs) {
                r = wc_filesink_write(fs, lines, strlen(lines), err, errlen);
                if (r == 0)
                        r = wc_filesink_sync(fs, err, errlen);
                wc_filesink_close(fs);
        }
        assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
        close(saved);
        return r;
}

static void stdout_file_is_appended_to(void **state)
{
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        char path[64], err[256];
        int fd;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);

        /* `walcastd >> file`: a write-only, appending descriptor of a file
         * whose last line is someone else's and not ended */
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_int_equal(write(fd, "previous\n{\"cut", 14), 14);
        close(fd);
        fd = open(path, O_WRONLY | O_APPEND);
        assert_int_equal(through_stdout(fd, "{\"a\":1}\n", err, sizeof(err)),
                         0);
        close(fd);
        assert_string_equal(slurp(path), "previous\n{\"cut\n{\"a\":1}\n");

        /* again: complete lines stay as they are, nothing is added */
        fd = open(path, O_WRONLY | O_APPEND);
        assert_int_equal(through_stdout(fd, "{\"b\":2}\n", err, sizeof(err)),
                         0);
        close(fd);
        assert_string_equal(slurp(path),
                            "previous\n{\"cut\n{\"a\":1}\n{\"b\":2}\n");

        /* a descriptor positioned at the start (`1<> file`) writes over
         * nothing */
        fd = open(path, O_WRONLY);
        assert_int_equal(through_stdout(fd, "{\"c\":3}\n", err, sizeof(err)),
                         0);
        close(fd);
        assert_string_equal(
            slurp(path), "previous\n{\"cut\n{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");

        /* a deleted file on stdout: nothing is acknowledged */
        fd = open(path, O_WRONLY | O_APPEND);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(through_stdout(fd, "{\"d\":4}\n", err, sizeof(err)),
                         -ENOENT);
        close(fd);
        assert_non_null(strstr(err, "standard output"));
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(formats_each_op),
            cmocka_unit_test(escapes_names),
            cmocka_unit_test(names_escape_like_json),
            cmocka_unit_test(txn_part_once),
            cmocka_unit_test(lists_text_copied),
            cmocka_unit_test(other_signals_have_no_line),
            cmocka_unit_test(appends_syncs_and_repairs),
            cmocka_unit_test(whole_transactions),
            cmocka_unit_test(open_errors_name_the_file),
            cmocka_unit_test(creating_syncs_the_directory),
            cmocka_unit_test(deleted_file_is_followed),
            cmocka_unit_test(stdout_file_is_appended_to),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
