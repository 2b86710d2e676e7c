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

static const struct wc_txn_view txn = {
    .xid = 728,
    .commit_lsn = 0x15478F0,
    .end_lsn = 0x1547920,
    .commit_time = "2026-11-25T13:48:23.648945Z",
};

static struct wc_change base(enum wc_op op)
{
        return (struct wc_change){
            .op = op,
            .lsn = 0x1547700,
            .schema = "town6-govikon",
            .schema_len = 13,
            .table = "t",
            .table_len = 1,
            .pk = {pk, 1},
        };
}

static void expect_line(const struct wc_change *c, const struct wc_txn_view *t,
                        const char *want)
{
        struct wc_buf b;

        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_str(&b, "prefix:"), 0);
        assert_int_equal(wc_format_change(&b, c, t), 0);
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
        struct wc_change c;
        (void)state;

        c = base(WC_OP_INSERT);
        c.columns = (struct walcast_columns){row, 3};
        expect_line(&c, &txn,
                    "{\"op\":\"insert\",\"schema\":\"town6-govikon\","
                    "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                    ",\"columns\":" ROW ",\"pk\":" PK "}\n");

        c = base(WC_OP_UPDATE);
        c.columns = (struct walcast_columns){row, 3};
        c.identity = (struct walcast_columns){key, 1};
        expect_line(&c, &txn,
                    "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                    "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                    ",\"columns\":" ROW ",\"identity\":" KEY ",\"pk\":" PK
                    "}\n");

        /* an update without identity leaves the key out */
        c.identity = (struct walcast_columns){NULL, 0};
        expect_line(&c, &txn,
                    "{\"op\":\"update\",\"schema\":\"town6-govikon\","
                    "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                    ",\"columns\":" ROW ",\"pk\":" PK "}\n");

        c = base(WC_OP_DELETE);
        c.identity = (struct walcast_columns){key, 1};
        expect_line(&c, &txn,
                    "{\"op\":\"delete\",\"schema\":\"town6-govikon\","
                    "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN
                    ",\"identity\":" KEY ",\"pk\":" PK "}\n");

        c = base(WC_OP_TRUNCATE);
        expect_line(&c, &txn,
                    "{\"op\":\"truncate\",\"schema\":\"town6-govikon\","
                    "\"table\":\"t\",\"lsn\":\"0/1547700\"," TXN "}\n");

        c = (struct wc_change){.op = WC_OP_MESSAGE,
                               .lsn = 0x1547F68,
                               .transactional = false,
                               .prefix = "walcast",
                               .prefix_len = 7,
                               .content = {"\"hi\"", 4}};
        expect_line(&c, NULL,
                    "{\"op\":\"message\",\"lsn\":\"0/1547F68\","
                    "\"transactional\":false,\"prefix\":\"walcast\","
                    "\"content\":\"hi\"}\n");
        c.transactional = true;
        expect_line(&c, &txn,
                    "{\"op\":\"message\",\"lsn\":\"0/1547F68\"," TXN
                    ",\"transactional\":true,\"prefix\":\"walcast\","
                    "\"content\":\"hi\"}\n");
}

static void escapes_names(void **state)
{
        static const struct walcast_column odd[] = {
            COL("we\"ird\\", "text", 25, "1"),
        };
        struct wc_change c = base(WC_OP_INSERT);
        (void)state;

        c.schema = "sch\xc3\xa9ma";
        c.schema_len = 7;
        c.table = "ta\"ble\n";
        c.table_len = 7;
        c.columns = (struct walcast_columns){odd, 1};
        c.pk = (struct walcast_columns){NULL, 0};
        expect_line(&c, &txn,
                    "{\"op\":\"insert\",\"schema\":\"sch\xc3\xa9ma\","
                    "\"table\":\"ta\\\"ble\\n\",\"lsn\":\"0/1547700\"," TXN
                    ",\"columns\":[{\"name\":\"we\\\"ird\\\\\",\"type\":"
                    "\"text\",\"typeoid\":25,\"value\":1}],\"pk\":[]}\n");
}

static void begin_and_commit_have_no_line(void **state)
{
        struct wc_buf b;
        struct wc_change c = {.op = WC_OP_BEGIN};
        (void)state;

        wc_buf_init(&b);
        assert_int_equal(wc_format_change(&b, &c, &txn), -EINVAL);
        c.op = WC_OP_COMMIT;
        assert_int_equal(wc_format_change(&b, &c, &txn), -EINVAL);
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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(formats_each_op),
            cmocka_unit_test(escapes_names),
            cmocka_unit_test(begin_and_commit_have_no_line),
            cmocka_unit_test(appends_syncs_and_repairs),
            cmocka_unit_test(open_errors_name_the_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
