/* SPDX-License-Identifier: MIT */
/* The confirmed position only moves over fully acknowledged prefixes. */
#include <errno.h>
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

#include "checkpoint/checkpoint.h"
#include "checkpoint/guard.h"
#include "checkpoint/state.h"

static void in_order_prefix(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(100);
        uint64_t a, b, c;
        (void)state;

        assert_non_null(cp);
        assert_int_equal(wc_checkpoint_add(cp, 200, 2, &a), 0);
        assert_int_equal(wc_checkpoint_add(cp, 300, 2, &b), 0);
        assert_int_equal(wc_checkpoint_add(cp, 400, 2, &c), 0);
        assert_int_equal(wc_checkpoint_in_flight(cp), 3);

        /* the later transactions are done, the first is not */
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, c), 0);
        assert_int_equal(wc_checkpoint_ack(cp, c), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 100);

        /* one sink of two is not enough */
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 400);
        assert_int_equal(wc_checkpoint_in_flight(cp), 0);

        /* done entries are gone */
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_int_equal(wc_checkpoint_ack(cp, 999), -ENOENT);
        wc_checkpoint_free(cp);
}

static void over_ack_is_an_error(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(0);
        uint64_t a, b;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 10, 1, &a), 0);
        assert_int_equal(wc_checkpoint_add(cp, 20, 1, &b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), -EINVAL);
        assert_true(wc_checkpoint_confirmed(cp) == 0);
        wc_checkpoint_free(cp);
}

static void zero_acks_and_positionless_entries(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(50);
        uint64_t a, m, b;
        (void)state;

        /* no sink wants it: complete at once */
        assert_int_equal(wc_checkpoint_add(cp, 60, 0, &a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 60);
        /* a message outside a transaction holds the position back while
         * pending but never moves it itself */
        assert_int_equal(wc_checkpoint_add(cp, 0, 1, &m), 0);
        assert_int_equal(wc_checkpoint_add(cp, 70, 1, &b), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 60);
        assert_int_equal(wc_checkpoint_ack(cp, m), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 70);
        /* the position never goes back */
        assert_int_equal(wc_checkpoint_add(cp, 65, 0, &a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 70);
        wc_checkpoint_free(cp);
}

/* Sinks that hold a transaction already (their position) are not asked
 * for it: it needs fewer acknowledgements, none when every sink holds
 * it, and still waits behind what came before it. */
static void skipped_by_sinks_counts_as_acknowledged(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(100);
        uint64_t a, b, c, d;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 110, 2, &a), 0); /* both */
        assert_int_equal(wc_checkpoint_add(cp, 120, 0, &b), 0); /* neither */
        assert_int_equal(wc_checkpoint_add(cp, 130, 1, &c), 0); /* one */
        assert_int_equal(wc_checkpoint_add(cp, 140, 0, &d), 0); /* neither */
        /* held behind 110 */
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        assert_int_equal(wc_checkpoint_in_flight(cp), 4);
        /* out of order: the later one first */
        assert_int_equal(wc_checkpoint_ack(cp, c), 0);
        assert_int_equal(wc_checkpoint_ack(cp, c), -EINVAL);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        /* everything: the skipped ones count as acknowledged */
        assert_true(wc_checkpoint_confirmed(cp) == 140);
        assert_int_equal(wc_checkpoint_in_flight(cp), 0);
        assert_int_equal(wc_checkpoint_ack(cp, b), -ENOENT);
        wc_checkpoint_free(cp);
}

static void idle_advance_only_when_empty(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(10);
        uint64_t a;
        (void)state;

        wc_checkpoint_idle_advance(cp, 20);
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        wc_checkpoint_idle_advance(cp, 15); /* never back */
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        assert_int_equal(wc_checkpoint_add(cp, 30, 1, &a), 0);
        wc_checkpoint_idle_advance(cp, 100);
        assert_true(wc_checkpoint_confirmed(cp) == 20);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 30);
        wc_checkpoint_idle_advance(cp, 100);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        wc_checkpoint_free(cp);
}

static void grows_past_ring_and_wraps(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(0);
        uint64_t ids[1000];
        (void)state;

        /* wrap the ring a few times with a small window */
        for (int round = 0; round < 50; round++) {
                uint64_t id;
                assert_int_equal(
                    wc_checkpoint_add(cp, 1 + (wc_lsn)round, 1, &id), 0);
                assert_int_equal(wc_checkpoint_ack(cp, id), 0);
        }
        assert_true(wc_checkpoint_confirmed(cp) == 50);
        /* then many in flight at once: the ring grows */
        for (int i = 0; i < 1000; i++)
                assert_int_equal(
                    wc_checkpoint_add(cp, 100 + (wc_lsn)i, 1, &ids[i]), 0);
        assert_int_equal(wc_checkpoint_in_flight(cp), 1000);
        for (int i = 999; i >= 1; i--)
                assert_int_equal(wc_checkpoint_ack(cp, ids[i]), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 50);
        assert_int_equal(wc_checkpoint_ack(cp, ids[0]), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 1099);
        wc_checkpoint_free(cp);
        wc_checkpoint_free(NULL);
}

static void reset_forgets_in_flight(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(10);
        uint64_t a, b;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 20, 1, &a), 0);
        wc_checkpoint_reset(cp);
        assert_int_equal(wc_checkpoint_in_flight(cp), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 10);
        /* a late acknowledgement of a forgotten entry moves nothing */
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_int_equal(wc_checkpoint_add(cp, 30, 1, &b), 0);
        assert_true(b != a);
        assert_int_equal(wc_checkpoint_ack(cp, a), -ENOENT);
        assert_true(wc_checkpoint_confirmed(cp) == 10);
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        assert_true(wc_checkpoint_confirmed(cp) == 30);
        wc_checkpoint_free(cp);
}

/* The load of limits.max_in_flight_*: counted while an entry waits. */
static void load_follows_acks(void **state)
{
        struct wc_checkpoint *cp = wc_checkpoint_new(100);
        uint64_t a, b, c, changes, bytes;
        (void)state;

        assert_int_equal(wc_checkpoint_add(cp, 200, 2, &a), 0);
        assert_int_equal(wc_checkpoint_add(cp, 300, 1, &b), 0);
        assert_int_equal(wc_checkpoint_set_load(cp, a, 10, 1000), 0);
        assert_int_equal(wc_checkpoint_set_load(cp, b, 5, 500), 0);
        /* set, not add */
        assert_int_equal(wc_checkpoint_set_load(cp, b, 6, 600), 0);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 16);
        assert_int_equal(bytes, 1600);

        /* b is done before a: its load goes although a holds the position */
        assert_int_equal(wc_checkpoint_ack(cp, b), 0);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 10);
        assert_int_equal(bytes, 1000);
        assert_true(wc_checkpoint_confirmed(cp) == 100);
        /* one of two acks: still held */
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 10);
        assert_int_equal(wc_checkpoint_ack(cp, a), 0);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 0);
        assert_int_equal(bytes, 0);
        assert_true(wc_checkpoint_confirmed(cp) == 300);

        /* a finished or unknown entry takes no load */
        assert_int_equal(wc_checkpoint_add(cp, 400, 0, &c), 0);
        assert_int_equal(wc_checkpoint_set_load(cp, c, 7, 7), -ENOENT);
        assert_int_equal(wc_checkpoint_set_load(cp, a, 7, 7), -ENOENT);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 0);

        /* a reset drops the load with the entries */
        assert_int_equal(wc_checkpoint_add(cp, 500, 1, &c), 0);
        assert_int_equal(wc_checkpoint_set_load(cp, c, 3, 30), 0);
        wc_checkpoint_reset(cp);
        wc_checkpoint_load(cp, &changes, &bytes);
        assert_int_equal(changes, 0);
        assert_int_equal(bytes, 0);
        wc_checkpoint_free(cp);
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
        (void)state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/wc-state-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
        char cmd[128];
        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void state_round_trip(void **state)
{
        struct wc_slot_state st = {.system_id = "7312345678901234567",
                                   .timeline = 3,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x100016B3748ull},
                             got;
        char path[256], err[512], tmp[300];
        struct stat sb;
        (void)state;

        assert_int_equal(wc_state_path(tmpdir, "walcast", path, sizeof(path)),
                         0);
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 0);
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        /* no temporary file is left behind */
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        assert_int_equal(stat(tmp, &sb), -1);
        memset(&got, 0xAA, sizeof(got));
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 1);
        assert_string_equal(got.system_id, st.system_id);
        assert_int_equal(got.timeline, 3);
        assert_string_equal(got.database, "app");
        assert_string_equal(got.slot, "walcast");
        assert_true(got.confirmed == st.confirmed);

        /* rewritten in place */
        st.confirmed += 8;
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 1);
        assert_true(got.confirmed == st.confirmed);

        assert_int_equal(wc_state_remove(path, err, sizeof(err)), 0);
        assert_int_equal(wc_state_remove(path, err, sizeof(err)), 0);
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 0);

        /* a trailing slash in the directory is fine */
        snprintf(tmp, sizeof(tmp), "%s/", tmpdir);
        assert_int_equal(wc_state_path(tmp, "s", path, sizeof(path)), 0);
        assert_null(strstr(path, "//"));
        assert_int_equal(wc_state_path(tmpdir, "s", path, 8), -ENAMETOOLONG);

        /* the slot's other files beside its state file */
        assert_int_equal(wc_state_sibling("/var/lib/w/s1.state", ".snapshot",
                                          tmp, sizeof(tmp)),
                         0);
        assert_string_equal(tmp, "/var/lib/w/s1.snapshot");
        assert_int_equal(wc_state_sibling("/d/s.state", ".snapshot-owed", tmp,
                                          sizeof("/d/s.snapshot-owed")),
                         0);
        assert_string_equal(tmp, "/d/s.snapshot-owed");
        assert_int_equal(wc_state_sibling("/d/s.state", ".snapshot-owed", tmp,
                                          sizeof("/d/s.snapshot-owed") - 1),
                         -ENAMETOOLONG);
        assert_string_equal(tmp, "");
        assert_int_equal(
            wc_state_sibling("/d/s.json", ".snapshot", tmp, sizeof(tmp)),
            -EINVAL);
        assert_int_equal(
            wc_state_sibling(".state", ".snapshot", tmp, sizeof(tmp)), -EINVAL);
}

static void state_damaged(void **state)
{
        static const char *const bad[] = {
            "system_id=1\ntimeline=1\ndatabase=a\nslot=s\n", /* no lsn */
            "system_id=x1\ntimeline=1\ndatabase=a\nslot=s\n"
            "confirmed_lsn=0/1\n",
            "system_id=1\ntimeline=-1\ndatabase=a\nslot=s\n"
            "confirmed_lsn=0/1\n",
            "system_id=1\ntimeline=1\ndatabase=a\nslot=s\n"
            "confirmed_lsn=zz\n",
            "system_id=1\ntimeline=1\ndatabase=\nslot=s\n"
            "confirmed_lsn=0/1\n",
            "garbage\n",
        };
        struct wc_slot_state got;
        char path[256], err[512];
        (void)state;

        snprintf(path, sizeof(path), "%s/bad.state", tmpdir);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                write_text(path, bad[i]);
                err[0] = '\0';
                assert_int_equal(wc_state_read(path, &got, err, sizeof(err)),
                                 -EINVAL);
                assert_non_null(strstr(err, path));
                assert_non_null(strstr(err, "walcast slot create --force"));
        }
        /* comments, blank lines and unknown keys are fine */
        write_text(path, "# x\n\nsystem_id=1\ntimeline=1\ndatabase=a\n"
                         "future=1\nslot=s\nconfirmed_lsn=0/10");
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 1);
        assert_true(got.confirmed == 0x10);
}

static void state_verdicts(void **state)
{
        struct wc_slot_state st = {.system_id = "111",
                                   .timeline = 1,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x5000};
        char err[512];
        (void)state;

        assert_int_equal(
            wc_state_check(NULL, "111", false, 0, err, sizeof(err)),
            WC_SLOT_FIRST);
        assert_int_equal(
            wc_state_check(&st, "111", true, 0x5000, err, sizeof(err)),
            WC_SLOT_SAME);
        /* behind what was confirmed: the last status did not reach it */
        assert_int_equal(
            wc_state_check(&st, "111", true, 0x4000, err, sizeof(err)),
            WC_SLOT_SAME);
        assert_int_equal(wc_state_check(&st, "111", false, 0, err, sizeof(err)),
                         WC_SLOT_VANISHED);
        assert_non_null(strstr(err, "has vanished"));
        assert_non_null(strstr(err, "0/5000"));
        assert_int_equal(
            wc_state_check(&st, "111", true, 0x5001, err, sizeof(err)),
            WC_SLOT_MOVED);
        assert_non_null(strstr(err, "0/5001"));
        assert_non_null(strstr(err, "may have been lost"));
        assert_int_equal(
            wc_state_check(&st, "222", true, 0x5000, err, sizeof(err)),
            WC_SLOT_OTHER_SERVER);
        assert_non_null(strstr(err, "222"));
        assert_non_null(strstr(err, "111"));
}

static void state_no_symlinks(void **state)
{
        struct wc_slot_state st = {.system_id = "111",
                                   .timeline = 1,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x5000},
                             got;
        char path[256], tmp[300], victim[256], err[512], buf[64];
        struct stat sb;
        FILE *f;
        (void)state;

        assert_int_equal(wc_state_path(tmpdir, "walcast", path, sizeof(path)),
                         0);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
        write_text(victim, "precious\n");

        /* a symbolic link where the temporary goes is not written
         * through, and does not become the state file */
        assert_int_equal(symlink(victim, tmp), 0);
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        f = fopen(victim, "r");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        assert_string_equal(buf, "precious\n");
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));
        assert_int_equal(lstat(tmp, &sb), -1);

        /* a stale temporary left by a crash is replaced */
        write_text(tmp, "half a sta");
        st.confirmed = 0x6000;
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), 1);
        assert_true(got.confirmed == 0x6000);

        /* a state file that is a symbolic link is refused, not followed */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(symlink(victim, path), 0);
        err[0] = '\0';
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), -ELOOP);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "symbolic link"));
        assert_non_null(strstr(err, "walcast slot create --force"));
        /* writing replaces the link, never its target */
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        assert_int_equal(lstat(path, &sb), 0);
        assert_true(S_ISREG(sb.st_mode));

        /* nor does a FIFO block the read */
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0);
        alarm(10);
        assert_int_equal(wc_state_read(path, &got, err, sizeof(err)), -EINVAL);
        alarm(0);
        assert_non_null(strstr(err, "not a regular file"));
        unlink(path);
}

static void state_match(void **state)
{
        struct wc_slot_state st = {.system_id = "111",
                                   .timeline = 1,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x5000};
        struct wc_state_expect x = {.slot = "walcast",
                                    .system_id = "111",
                                    .database = "app",
                                    .server_lsn = 0x5000};
        char err[1024];
        (void)state;

        assert_int_equal(wc_state_match(NULL, "s", &x, err, sizeof(err)), 0);
        assert_int_equal(wc_state_match(&st, "s", &x, err, sizeof(err)), 0);
        x.server_lsn = 0x9000;
        assert_int_equal(wc_state_match(&st, "s", &x, err, sizeof(err)), 0);

        /* another slot's file: damage, exit 69 */
        x.slot = "other";
        assert_int_equal(
            wc_state_match(&st, "/d/other.state", &x, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "/d/other.state"));
        assert_non_null(strstr(err, "records slot \"walcast\", not "
                                    "\"other\""));
        assert_non_null(strstr(err, "walcast slot create --force"));
        x.slot = "walcast";

        /* another database of the same server: configuration, exit 78 */
        x.database = "app2";
        assert_int_equal(wc_state_match(&st, "s", &x, err, sizeof(err)),
                         -EEXIST);
        assert_non_null(strstr(err, "database \"app\""));
        assert_non_null(strstr(err, "\"app2\""));
        assert_non_null(strstr(err, "source.dsn"));
        x.database = "app";

        /* a confirmed position from the future: damage, exit 69 */
        x.server_lsn = 0x4FFF;
        assert_int_equal(wc_state_match(&st, "s", &x, err, sizeof(err)),
                         -ESTALE);
        assert_non_null(strstr(err, "0/5000"));
        assert_non_null(strstr(err, "0/4FFF"));
        assert_non_null(strstr(err, "walcast slot create --force"));

        /* another server's file is wc_state_check()'s to report */
        x.system_id = "222";
        x.slot = "other";
        assert_int_equal(wc_state_match(&st, "s", &x, err, sizeof(err)), 0);
}

/* The slot guard: may a missing slot be created? */
static void guard_may_create(void **state)
{
        struct wc_slot_state st = {.system_id = "111", .confirmed = 0x5000};
        struct wc_guard g = {.slot = "walcast", .create = true};
        (void)state;

        assert_true(wc_guard_may_create(&g));
        g.create = false;
        assert_false(wc_guard_may_create(&g));
        g.create = true;
        /* never in place of one positions were confirmed on ... */
        g.saved = &st;
        assert_false(wc_guard_may_create(&g));
        g.saved = NULL;
        g.had_slot = true;
        assert_false(wc_guard_may_create(&g));
        /* ... unless that is accepted */
        g.accept = true;
        assert_true(wc_guard_may_create(&g));
        g.saved = &st;
        assert_true(wc_guard_may_create(&g));
}

static void guard_verdicts(void **state)
{
        struct wc_slot_state st = {.system_id = "111",
                                   .timeline = 1,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x5000};
        struct wc_guard g = {.slot = "walcast",
                             .config_path = "/etc/walcast/walcast.yaml",
                             .state_path = "/s/walcast.state",
                             .create = true};
        struct wc_guard_server srv = {.system_id = "111",
                                      .timeline = 1,
                                      .database = "app",
                                      .xlogpos = 0x9000,
                                      .slot_confirmed = 0x5000};
        enum wc_slot_verdict v = WC_SLOT_VANISHED;
        char err[2048];
        (void)state;

        /* nothing on record: a first start */
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)), 0);
        assert_int_equal(v, WC_SLOT_FIRST);
        /* another error is the open's, passed on with its message */
        strcpy(err, "the open's message");
        assert_int_equal(wc_guard_verdict(&g, -ECONNREFUSED, false, NULL, &v,
                                          err, sizeof(err)),
                         -ECONNREFUSED);
        assert_string_equal(err, "the open's message");

        /* the slot on record, where it was left */
        g.saved = &st;
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)), 0);
        assert_int_equal(v, WC_SLOT_SAME);

        /* moved past what walcast confirmed: refused, saying how to
         * accept it */
        srv.slot_confirmed = 0x6000;
        v = WC_SLOT_FIRST;
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_int_equal(v, WC_SLOT_FIRST); /* untouched */
        assert_non_null(strstr(err, "may have been lost"));
        assert_non_null(strstr(err, "walcast slot create --force -c "
                                    "/etc/walcast/walcast.yaml"));
        assert_non_null(strstr(err, "source.on_slot_lost: recreate"));
        /* on_slot_lost: recreate accepts it, with what happened to say */
        g.accept = true;
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)), 1);
        assert_int_equal(v, WC_SLOT_MOVED);
        assert_non_null(strstr(err, "may have been lost"));
        assert_null(strstr(err, "walcast slot create"));
        g.accept = false;
        srv.slot_confirmed = 0x5000;

        /* created anew in place of the one on record */
        srv.slot_created = true;
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "has vanished"));
        srv.slot_created = false;

        /* gone: refused */
        assert_int_equal(
            wc_guard_verdict(&g, -ENOENT, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "has vanished"));
        assert_non_null(strstr(err, "0/5000"));

        /* another slot's state file is refused whatever on_slot_lost
         * says */
        g.slot = "other";
        g.accept = true;
        assert_int_equal(
            wc_guard_verdict(&g, 0, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "/s/walcast.state"));
        g.slot = "walcast";
        g.accept = false;

        /* a reconnect finds the slot gone: nothing on record, but this
         * process had confirmed positions on it */
        g.saved = NULL;
        g.had_slot = true;
        g.confirmed = 0x7000;
        assert_int_equal(
            wc_guard_verdict(&g, -ENOENT, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "vanished while walcastd was running"));
        assert_non_null(strstr(err, "0/7000"));
        assert_non_null(strstr(err, "-c /etc/walcast/walcast.yaml"));
        /* without a config file to name */
        g.config_path = NULL;
        assert_int_equal(
            wc_guard_verdict(&g, -ENOENT, false, &srv, &v, err, sizeof(err)),
            -ESTALE);
        assert_non_null(strstr(err, "-c CONFIG"));

        /* dropped and created anew under on_slot_lost: recreate, nothing
         * on record: goes on without a warning of its own */
        g.accept = true;
        srv.slot_created = true;
        assert_int_equal(
            wc_guard_verdict(&g, 0, true, &srv, &v, err, sizeof(err)), 0);
        assert_int_equal(v, WC_SLOT_VANISHED);
}

static void guard_records(void **state)
{
        struct wc_slot_state st = {.system_id = "111",
                                   .timeline = 1,
                                   .database = "app",
                                   .slot = "walcast",
                                   .confirmed = 0x5000},
                             got, rec;
        struct wc_guard_server srv = {.system_id = "111",
                                      .timeline = 1,
                                      .database = "app",
                                      .xlogpos = 0x9000,
                                      .slot_confirmed = 0x4000};
        char path[256], err[1024];
        struct wc_guard g = {.slot = "walcast", .state_path = path};
        (void)state;

        assert_int_equal(wc_state_path(tmpdir, "walcast", path, sizeof(path)),
                         0);
        /* no state file: nothing to record */
        g.state_path = "";
        assert_int_equal(wc_guard_record_state(&g, &srv, WC_SLOT_FIRST, &got,
                                               err, sizeof(err)),
                         0);
        g.state_path = path;

        /* a first start records the slot as it is */
        assert_int_equal(wc_guard_record_state(&g, &srv, WC_SLOT_FIRST, &got,
                                               err, sizeof(err)),
                         1);
        assert_int_equal(wc_state_read(path, &rec, err, sizeof(err)), 1);
        assert_true(rec.confirmed == 0x4000);
        assert_string_equal(rec.slot, "walcast");
        assert_true(got.confirmed == 0x4000);

        /* the same slot, behind what was confirmed (a status was lost):
         * the position on record stays, and an unchanged record is not
         * written again */
        g.saved = &st;
        assert_int_equal(wc_state_write(path, &st, err, sizeof(err)), 0);
        assert_int_equal(wc_guard_record_state(&g, &srv, WC_SLOT_SAME, &got,
                                               err, sizeof(err)),
                         0);
        /* a new timeline is recorded */
        srv.timeline = 2;
        assert_int_equal(wc_guard_record_state(&g, &srv, WC_SLOT_SAME, &got,
                                               err, sizeof(err)),
                         1);
        assert_int_equal(wc_state_read(path, &rec, err, sizeof(err)), 1);
        assert_int_equal(rec.timeline, 2);
        assert_true(rec.confirmed == 0x5000);

        /* an unwritable directory is a configuration matter */
        snprintf(path, sizeof(path), "%s/missing/walcast.state", tmpdir);
        assert_int_equal(wc_guard_record_state(&g, &srv, WC_SLOT_MOVED, &got,
                                               err, sizeof(err)),
                         -EEXIST);
        assert_non_null(strstr(err, "state_dir must be a writable directory"));

        /* walcast slot create's record */
        assert_int_equal(wc_state_path(tmpdir, "s2", path, sizeof(path)), 0);
        assert_int_equal(
            wc_guard_record(path, "s2", &srv, 0x1234, err, sizeof(err)), 0);
        assert_int_equal(wc_state_read(path, &rec, err, sizeof(err)), 1);
        assert_string_equal(rec.slot, "s2");
        assert_string_equal(rec.system_id, "111");
        assert_string_equal(rec.database, "app");
        assert_true(rec.confirmed == 0x1234);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(in_order_prefix),
            cmocka_unit_test(over_ack_is_an_error),
            cmocka_unit_test(zero_acks_and_positionless_entries),
            cmocka_unit_test(skipped_by_sinks_counts_as_acknowledged),
            cmocka_unit_test(idle_advance_only_when_empty),
            cmocka_unit_test(grows_past_ring_and_wraps),
            cmocka_unit_test(reset_forgets_in_flight),
            cmocka_unit_test(load_follows_acks),
            cmocka_unit_test_setup_teardown(state_round_trip, make_tmpdir,
                                            remove_tmpdir),
            cmocka_unit_test_setup_teardown(state_damaged, make_tmpdir,
                                            remove_tmpdir),
            cmocka_unit_test(state_verdicts),
            cmocka_unit_test_setup_teardown(state_no_symlinks, make_tmpdir,
                                            remove_tmpdir),
            cmocka_unit_test(state_match),
            cmocka_unit_test(guard_may_create),
            cmocka_unit_test(guard_verdicts),
            cmocka_unit_test_setup_teardown(guard_records, make_tmpdir,
                                            remove_tmpdir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
