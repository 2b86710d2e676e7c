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
#include <unistd.h>

#include <poll.h>

#include <cmocka.h>

#include "filesink/filesink.h"

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

static void open_errors_name_the_file(void **state)
{
        char err[256];
        (void)state;

        assert_null(wc_filesink_open("/nonexistent-dir/x.jsonl", true, err,
                                     sizeof(err)));
        assert_non_null(strstr(err, "\"/nonexistent-dir/x.jsonl\""));
        assert_non_null(strstr(err, "No such file or directory"));
}

/* ---- the plugin, with a host of its own ---- */

static struct fake {
        const char *path, *fsync;
        walcast_handler_fn on[WALCAST_SIG__COUNT];
        void *ud[WALCAST_SIG__COUNT];
        struct {
                int fd;
                walcast_fd_fn fn;
                void *ud;
        } watch[4];
        size_t nwatch;
        uint64_t acked[16];
        int32_t status[16];
        size_t nacks;
} fake;

static void fake_log(struct walcast_plugin *self, int32_t level,
                     const char *fmt, ...)
{
        (void)self;
        (void)level;
        (void)fmt;
}

static int32_t fake_connect(struct walcast_plugin *self, uint32_t kind,
                            const char *sender, const char *table,
                            walcast_handler_fn fn, void *userdata)
{
        (void)self;
        (void)sender;
        (void)table;
        assert_true(kind < WALCAST_SIG__COUNT);
        fake.on[kind] = fn;
        fake.ud[kind] = userdata;
        return WALCAST_OK;
}

static const char *fake_config_get(struct walcast_plugin *self, const char *k)
{
        (void)self;
        if (strcmp(k, "path") == 0)
                return fake.path;
        if (strcmp(k, "fsync") == 0)
                return fake.fsync;
        return NULL;
}

static int32_t fake_ack(struct walcast_plugin *self, uint64_t txn_id,
                        int32_t status)
{
        (void)self;
        assert_true(fake.nacks < 16);
        fake.acked[fake.nacks] = txn_id;
        fake.status[fake.nacks++] = status;
        return WALCAST_OK;
}

static int32_t fake_watch(struct walcast_plugin *self, int fd, uint32_t events,
                          walcast_fd_fn fn, void *userdata)
{
        (void)self;
        (void)events;
        assert_true(fake.nwatch < 4);
        fake.watch[fake.nwatch].fd = fd;
        fake.watch[fake.nwatch].fn = fn;
        fake.watch[fake.nwatch++].ud = userdata;
        return WALCAST_OK;
}

static int32_t fake_unwatch(struct walcast_plugin *self, int fd)
{
        (void)self;
        for (size_t i = 0; i < fake.nwatch; i++)
                if (fake.watch[i].fd == fd)
                        fake.watch[i] = fake.watch[--fake.nwatch];
        return WALCAST_OK;
}

static const struct walcast_host fake_host = {
    .abi_major = WALCAST_ABI_MAJOR,
    .abi_minor = WALCAST_ABI_MINOR,
    .size = sizeof(struct walcast_host),
    .log = fake_log,
    .connect = fake_connect,
    .config_get = fake_config_get,
    .ack = fake_ack,
    .watch_fd = fake_watch,
    .unwatch_fd = fake_unwatch,
};

/* The loop's part: waits for a watched fd and calls its callback once. */
static void pump_once(void)
{
        struct pollfd pfd[4];

        for (size_t i = 0; i < fake.nwatch; i++)
                pfd[i] =
                    (struct pollfd){.fd = fake.watch[i].fd, .events = POLLIN};
        assert_true(poll(pfd, fake.nwatch, 5000) > 0);
        for (size_t i = 0; i < fake.nwatch; i++)
                if (pfd[i].revents & POLLIN) {
                        fake.watch[i].fn(fake.watch[i].ud, pfd[i].fd, POLLIN);
                        return;
                }
}

static struct walcast_txn txn_n(uint64_t id)
{
        struct walcast_txn t = txn;

        t.id = id;
        return t;
}

static int32_t change_and_commit(const struct walcast_txn *t)
{
        struct walcast_signal c = base(WALCAST_SIG_INSERT);
        struct walcast_signal k = {
            .size = sizeof(k), .kind = WALCAST_SIG_COMMIT, .txn = t};

        c.txn = t;
        c.columns = (struct walcast_columns){row, 3};
        assert_int_equal(
            fake.on[WALCAST_SIG_INSERT](fake.ud[WALCAST_SIG_INSERT], &c),
            WALCAST_OK);
        return fake.on[WALCAST_SIG_COMMIT](fake.ud[WALCAST_SIG_COMMIT], &k);
}

/* An fsynced file: the commit's lines are written at once and its
 * fdatasync runs on a helper thread; commits that arrive meanwhile wait
 * for the next sync, which starts when the first returns. */
static void plugin_syncs_off_the_loop(void **state)
{
        const struct walcast_plugin_descriptor *d = wc_filesink_plugin();
        char dir[] = "/tmp/wc-filesink-XXXXXX";
        struct walcast_txn t1 = txn_n(1), t2 = txn_n(2), t3 = txn_n(3),
                           t4 = txn_n(4);
        struct walcast_signal empty = {
            .size = sizeof(empty), .kind = WALCAST_SIG_COMMIT, .txn = &t4};
        char path[64], err[256];
        void *st = NULL;
        (void)state;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/out.jsonl", dir);
        memset(&fake, 0, sizeof(fake));
        fake.path = path;
        assert_int_equal(d->init(&fake_host, NULL, &st, err, sizeof(err)),
                         WALCAST_OK);
        /* the sync timer and the helper's eventfd */
        assert_int_equal(fake.nwatch, 2);

        assert_int_equal(change_and_commit(&t1), WALCAST_PENDING);
        /* written before the sync was asked for */
        assert_non_null(strstr(slurp(path), "\"op\":\"insert\""));
        /* t2 and t3 come while t1's sync may be in flight */
        assert_int_equal(change_and_commit(&t2), WALCAST_PENDING);
        assert_int_equal(change_and_commit(&t3), WALCAST_PENDING);
        while (fake.nacks < 3)
                pump_once();
        assert_int_equal(fake.acked[0], 1);
        assert_int_equal(fake.status[0], WALCAST_OK);
        /* one sync for both, after t1's */
        assert_int_equal(fake.acked[1], 2);
        assert_int_equal(fake.acked[2], 3);
        assert_int_equal(fake.status[2], WALCAST_OK);
        {
                const char *text = slurp(path);
                size_t lines = 0;

                for (; *text; text++)
                        lines += *text == '\n';
                assert_int_equal(lines, 3);
        }
        /* a transaction without lines is acknowledged at its commit */
        assert_int_equal(
            fake.on[WALCAST_SIG_COMMIT](fake.ud[WALCAST_SIG_COMMIT], &empty),
            WALCAST_OK);
        assert_int_equal(fake.nacks, 3);

        /* closing with a sync in flight waits for it */
        assert_int_equal(change_and_commit(&t1), WALCAST_PENDING);
        d->close(st);
        assert_int_equal(fake.nwatch, 0);
        unlink(path);
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
            cmocka_unit_test(open_errors_name_the_file),
            cmocka_unit_test(plugin_syncs_off_the_loop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
