/* SPDX-License-Identifier: MIT */
/*
 * The plugin host: the plugins it refuses (each with a message naming the
 * file and saying what is wrong), and a good plugin's life: init with its
 * config, handlers fed by the bus, acknowledgements at the commit or later
 * through a watched descriptor, reopen, close.  Then the built-in file
 * sink through the host.
 *
 * The plugins come from tests/plugins (WC_TEST_PLUGIN_DIR); each test
 * copies the ones it loads into a fresh directory of mode 0755 under it,
 * since the host refuses code in directories others can write to (and
 * under them: /tmp is no place for the test directory).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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

#include "bus/bus.h"
#include "config/config.h"
#include "core/core.h"
#include "sinks/file/filesink.h"
#include "core/filter.h"
#include "host/host.h"

/* ---- what the host reported ---- */

struct logline {
        char *plugin;
        int level;
        char *msg;
};

struct ackrec {
        char *plugin;
        uint64_t txn;
        int32_t status;
};

static struct logline *logs;
static size_t nlogs, caplogs;
static struct ackrec acks[64];
static size_t nacks;

static void on_log(void *ud, const char *plugin, enum wc_log_level level,
                   const char *msg)
{
        assert_ptr_equal(ud, &nlogs);
        if (nlogs == caplogs) {
                caplogs = caplogs ? caplogs * 2 : 64;
                logs = realloc(logs, caplogs * sizeof(*logs));
                assert_non_null(logs);
        }
        logs[nlogs].plugin = strdup(plugin);
        logs[nlogs].level = level;
        logs[nlogs].msg = strdup(msg);
        assert_non_null(logs[nlogs].plugin);
        assert_non_null(logs[nlogs].msg);
        nlogs++;
}

static void on_ack(void *ud, const char *plugin, uint64_t txn_id,
                   int32_t status)
{
        assert_ptr_equal(ud, &nlogs);
        assert_true(nacks < 64);
        acks[nacks].plugin = strdup(plugin);
        assert_non_null(acks[nacks].plugin);
        acks[nacks].txn = txn_id;
        acks[nacks].status = status;
        nacks++;
}

static const struct wc_plugin_host_ops ops = {
    .log = on_log, .ack = on_ack, .ud = &nlogs};

static void clear_reports(void)
{
        for (size_t i = 0; i < nlogs; i++) {
                free(logs[i].plugin);
                free(logs[i].msg);
        }
        nlogs = 0;
        for (size_t i = 0; i < nacks; i++)
                free(acks[i].plugin);
        nacks = 0;
}

/* How many log lines of plugin are exactly msg. */
static size_t logged(const char *plugin, const char *msg)
{
        size_t n = 0;

        for (size_t i = 0; i < nlogs; i++)
                if (strcmp(logs[i].plugin, plugin) == 0 &&
                    strcmp(logs[i].msg, msg) == 0)
                        n++;
        return n;
}

/* The first log line of plugin starting with prefix, or NULL. */
static const char *logged_prefix(const char *plugin, const char *prefix)
{
        for (size_t i = 0; i < nlogs; i++)
                if (strcmp(logs[i].plugin, plugin) == 0 &&
                    strncmp(logs[i].msg, prefix, strlen(prefix)) == 0)
                        return logs[i].msg;
        return NULL;
}

/* How many log lines of plugin start with prefix. */
static size_t count_prefix(const char *plugin, const char *prefix)
{
        size_t n = 0;

        for (size_t i = 0; i < nlogs; i++)
                if (strcmp(logs[i].plugin, plugin) == 0 &&
                    strncmp(logs[i].msg, prefix, strlen(prefix)) == 0)
                        n++;
        return n;
}

/* ---- a fresh plugin directory per test ---- */

static char tmpdir[1024];

static const char *plugin_dir(void)
{
        const char *d = getenv("WC_TEST_PLUGIN_DIR");

        if (!d || !*d)
                fail_msg("WC_TEST_PLUGIN_DIR is not set (run through ctest)");
        return d;
}

/* The test directory lives in the build tree, not in $TMPDIR: the host
 * refuses code under a directory others can write to, such as /tmp.  So
 * the build tree must not be under one either. */
static int setup(void **state)
{
        char dir[1024];
        struct stat st;

        (void)state;
        snprintf(dir, sizeof(dir), "%s", plugin_dir());
        for (;;) {
                char *slash = strrchr(dir, '/');

                if (lstat(dir, &st) == 0 &&
                    ((st.st_uid != 0 && st.st_uid != geteuid()) ||
                     (st.st_mode & (S_IWGRP | S_IWOTH))))
                        fail_msg("the build tree is under \"%s\", which "
                                 "another user owns or can write to: the "
                                 "plugin host refuses plugins there, so "
                                 "these tests cannot run; build elsewhere",
                                 dir);
                if (!slash || slash == dir)
                        break;
                *slash = '\0';
        }
        snprintf(tmpdir, sizeof(tmpdir), "%s/wc-test-plugin-XXXXXX",
                 plugin_dir());
        if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755) < 0)
                return -1;
        return 0;
}

/* Removes dir and what it holds (files, symlinks, directories). */
static int remove_tree(const char *dir)
{
        DIR *d;
        struct dirent *e;
        char p[4096];

        chmod(dir, 0755);
        d = opendir(dir);
        if (!d)
                return -1;
        while ((e = readdir(d))) {
                struct stat st;
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        remove_tree(p);
                else
                        unlink(p);
        }
        closedir(d);
        return rmdir(dir);
}

static int teardown(void **state)
{
        (void)state;
        clear_reports();
        free(logs);
        logs = NULL;
        caplogs = 0;
        return remove_tree(tmpdir);
}

static void copy_file(const char *src, const char *dst, mode_t mode)
{
        char buf[65536];
        int in = open(src, O_RDONLY | O_CLOEXEC), out;
        ssize_t n;

        if (in < 0)
                fail_msg("%s: %s (is tests/plugins built?)", src,
                         strerror(errno));
        out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(out >= 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                assert_int_equal(write(out, buf, (size_t)n), n);
        assert_int_equal(n, 0);
        /* not subject to the umask */
        assert_int_equal(fchmod(out, mode), 0);
        close(in);
        assert_int_equal(close(out), 0);
}

/* Copies a built test plugin into the test's directory as `as` with mode;
 * returns the new path (static buffer per slot). */
static const char *install(const char *name, const char *as, mode_t mode)
{
        static char paths[4][2048];
        static unsigned slot;
        char src[4096];
        char *dst = paths[slot++ % 4];

        snprintf(src, sizeof(src), "%s/%s", plugin_dir(), name);
        snprintf(dst, sizeof(paths[0]), "%s/%s", tmpdir, as);
        copy_file(src, dst, mode);
        return dst;
}

#define KV(k, v)                                                               \
        {                                                                      \
                (char *)(k), (char *)(v)                                       \
        }

/* Loads path into a new host and expects refusal r, with a message that
 * names `names` and contains each of the NULL-terminated fragments. */
static void expect_refused(const char *path, int want, const char *names, ...)
{
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";
        struct pollfd pfd[4];
        size_t count, nfds;
        va_list ap;
        const char *frag;
        int r;

        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        r = wc_plugin_host_load(h, path, NULL, NULL, 0, err, sizeof(err));
        count = wc_plugin_host_count(h);
        nfds = wc_plugin_host_pollfds(h, pfd, 4);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
        if (r != want)
                fail_msg("loading %s returned %d (%s), want %d", path, r,
                         r ? err : "loaded", want);
        if (!strstr(err, names))
                fail_msg("message \"%s\" does not name \"%s\"", err, names);
        va_start(ap, names);
        while ((frag = va_arg(ap, const char *)))
                if (!strstr(err, frag))
                        fail_msg("message \"%s\" lacks \"%s\"", err, frag);
        va_end(ap);
        /* nothing of it stays */
        assert_int_equal(count, 0);
        assert_int_equal(nfds, 0);
        assert_int_equal(nacks, 0);
}

/* ---- refusals ---- */

static void refuses_missing_file(void **state)
{
        char path[4200];

        (void)state;
        snprintf(path, sizeof(path), "%s/absent.so", tmpdir);
        expect_refused(path, -ENOENT, path, strerror(ENOENT), NULL);
}

static void refuses_text_file(void **state)
{
        const char *path = install("not_elf.so", "not_elf.so", 0755);

        (void)state;
        expect_refused(path, -ENOEXEC, path, "is not a shared object", NULL);
}

static void refuses_missing_entry_symbol(void **state)
{
        const char *path = install("noentry.so", "noentry.so", 0755);

        (void)state;
        expect_refused(path, -ENOEXEC, path,
                       "does not export " WALCAST_PLUGIN_ENTRY_SYMBOL,
                       "WALCAST_PLUGIN_DEFINE", NULL);
}

static void refuses_other_abi_major(void **state)
{
        const char *path = install("abi2.so", "abi2.so", 0755);

        (void)state;
        expect_refused(path, -EPROTO, path, "built for walcast plugin ABI 2",
                       "speaks ABI 1", NULL);
}

static void refuses_small_descriptor(void **state)
{
        const char *path = install("small.so", "small.so", 0755);
        char got[64], need[64];

        (void)state;
        /* small.so's descriptor ends after init */
        snprintf(got, sizeof(got), "descriptor of %zu bytes",
                 offsetof(struct walcast_plugin_descriptor, close));
        snprintf(need, sizeof(need), "at least %zu",
                 offsetof(struct walcast_plugin_descriptor, reopen) +
                     sizeof(walcast_reopen_fn));
        expect_refused(path, -EPROTO, path, got, need, NULL);
}

static void refuses_null_descriptor(void **state)
{
        const char *path = install("nulldesc.so", "nulldesc.so", 0755);

        (void)state;
        expect_refused(path, -ENOEXEC, path, "returned no descriptor", NULL);
}

static void refuses_missing_init(void **state)
{
        const char *path = install("noinit.so", "noinit.so", 0755);

        (void)state;
        expect_refused(path, -EPROTO, path, "has no init function", NULL);
}

static void refuses_failed_init(void **state)
{
        const char *path = install("initfail.so", "initfail.so", 0755);
        const char *good = install("good.so", "good.so", 0755);
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        struct wc_kv silent[] = {KV("fail", "silent")};
        struct walcast_txn txn = {.id = 3};
        struct wc_change c = {.op = WC_OP_INSERT,
                              .schema = "public",
                              .schema_len = 6,
                              .table = "t",
                              .table_len = 1};
        struct pollfd pfd[4];
        char err[1024] = "";

        (void)state;
        expect_refused(path, -EINVAL, path, "failed to start",
                       "cannot reach the audit service at 10.0.0.7:5140", NULL);

        /* init connected a handler and watched a descriptor before it
         * failed: the host forgets both (the plugin is unloaded) */
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        assert_int_equal(
            wc_plugin_host_load(h, path, NULL, NULL, 0, err, sizeof(err)),
            -EINVAL);
        assert_int_equal(wc_plugin_host_pollfds(h, pfd, 4), 0);
        assert_int_equal(wc_bus_dispatch(bus, &c, &txn, NULL), 0);
        assert_int_equal(wc_plugin_host_commit(h, &txn, NULL), 0);
        assert_int_equal(nacks, 0);

        /* an init that fails without a message */
        err[0] = '\0';
        assert_int_equal(
            wc_plugin_host_load(h, good, NULL, silent, 1, err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, good));
        assert_non_null(strstr(err, "failed to start"));
        assert_non_null(strstr(err, "its init returned an error"));
        assert_int_equal(wc_plugin_host_count(h), 0);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* Loads path alone and expects success. */
static void expect_loads(const char *path)
{
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";

        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, path, NULL, NULL, 0, err, sizeof(err)) != 0)
                fail_msg("%s: %s", path, err);
        assert_int_equal(wc_plugin_host_count(h), 1);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
        clear_reports();
}

static void refuses_writable_by_others(void **state)
{
        const char *path = install("good.so", "good.so", 0755);
        const char *gw = install("good.so", "group.so", 0775);
        const char *ow = install("good.so", "other.so", 0757);
        const char *ro = install("good.so", "readonly.so", 0555);

        (void)state;
        /* the same code loads when nobody else can change it */
        expect_loads(path);
        expect_loads(ro);
        expect_refused(gw, -EPERM, gw, "writable by group or others",
                       "chmod go-w", NULL);
        expect_refused(ow, -EPERM, ow, "writable by group or others", NULL);
        /* a file made group-writable after the fact */
        assert_int_equal(chmod(path, 0765), 0);
        expect_refused(path, -EPERM, path, "writable by group or others", NULL);
        assert_int_equal(chmod(path, 0755), 0);

        /* its directory */
        assert_int_equal(chmod(tmpdir, 0775), 0);
        expect_refused(path, -EPERM, path, "in directory", tmpdir,
                       "writable by group or others", NULL);
        assert_int_equal(chmod(tmpdir, 0757), 0);
        expect_refused(path, -EPERM, path, "in directory", tmpdir, NULL);
        assert_int_equal(chmod(tmpdir, 0755), 0);
        expect_loads(path);
}

/* A symlink in a safe directory does not make a plugin that lives in a
 * directory others can write to any safer: they can still replace it. */
static void refuses_symlink_to_writable_place(void **state)
{
        char sub[1100], target[1200], link[1200], safe[1100], ok[1200],
            okl[1200], gw[1200], gwl[1200];

        (void)state;
        snprintf(sub, sizeof(sub), "%s/shared", tmpdir);
        snprintf(safe, sizeof(safe), "%s/safe", tmpdir);
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(mkdir(safe, 0700), 0);
        assert_int_equal(chmod(safe, 0755), 0);
        snprintf(target, sizeof(target), "%s/good.so", sub);
        snprintf(ok, sizeof(ok), "%s/good.so", safe);
        snprintf(gw, sizeof(gw), "%s/gw.so", safe);
        snprintf(link, sizeof(link), "%s/link.so", tmpdir);
        snprintf(okl, sizeof(okl), "%s/ok-link.so", tmpdir);
        snprintf(gwl, sizeof(gwl), "%s/gw-link.so", tmpdir);
        {
                char src[4096];
                snprintf(src, sizeof(src), "%s/good.so", plugin_dir());
                copy_file(src, target, 0755);
                copy_file(src, ok, 0755);
                copy_file(src, gw, 0775);
        }
        assert_int_equal(symlink("shared/good.so", link), 0);
        assert_int_equal(symlink("safe/good.so", okl), 0);
        assert_int_equal(symlink("safe/gw.so", gwl), 0);

        /* a link to a safe file in a safe directory loads */
        expect_loads(okl);
        /* the link's target is group-writable */
        expect_refused(gwl, -EPERM, gwl, "writable by group or others", NULL);
        /* the target's directory is group-writable */
        assert_int_equal(chmod(sub, 0775), 0);
        expect_refused(link, -EPERM, link, "writable by group or others", NULL);
}

static void refuses_plugin_in_tmp(void **state)
{
        struct stat st;
        char path[256], src[4096], err[1024] = "";
        struct wc_bus *bus;
        struct wc_plugin_host *h;
        int r;

        (void)state;
        assert_int_equal(stat("/tmp", &st), 0);
        if (!(st.st_mode & S_IWOTH)) {
                /* nothing to show where /tmp is not world-writable */
                print_message("/tmp is not world-writable here, skipped\n");
                return;
        }
        snprintf(src, sizeof(src), "%s/good.so", plugin_dir());
        snprintf(path, sizeof(path), "/tmp/wc-test-plugin-%ld.so",
                 (long)getpid());
        unlink(path);
        copy_file(src, path, 0755);
        bus = wc_bus_new(100);
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        r = wc_plugin_host_load(h, path, NULL, NULL, 0, err, sizeof(err));
        unlink(path);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "directory \"/tmp\""));
        assert_non_null(strstr(err, "writable by group or others"));
}

static void refuses_relative_and_odd_paths(void **state)
{
        (void)state;
        expect_refused("good.so", -EINVAL, "\"good.so\"", "absolute path",
                       NULL);
        expect_refused("plugins/good.so", -EINVAL, "\"plugins/good.so\"",
                       "absolute path", NULL);
        expect_refused("", -EINVAL, "\"\"", "absolute path", NULL);
        /* a directory is no plugin */
        expect_refused(tmpdir, -EINVAL, tmpdir, "not a regular file", NULL);
}

/* ---- who owns the path, and whether what was checked is what runs ---- */

/* Not root, and not this process's user: a user walcastd must not trust. */
#define OTHER_UID 65534

static void need_root(void)
{
        if (geteuid() != 0)
                skip(); /* chown to another user needs root (CI runs as root) */
}

static void refuses_others_files_and_directories(void **state)
{
        char sub[1100], deep[1200], path[1300], msg[1400], src[4096];

        (void)state;
        need_root();
        snprintf(sub, sizeof(sub), "%s/a", tmpdir);
        snprintf(deep, sizeof(deep), "%s/b", sub);
        snprintf(path, sizeof(path), "%s/good.so", deep);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(mkdir(deep, 0755), 0);
        assert_int_equal(chmod(sub, 0755), 0);
        assert_int_equal(chmod(deep, 0755), 0);
        snprintf(src, sizeof(src), "%s/good.so", plugin_dir());
        copy_file(src, path, 0755);
        expect_loads(path);

        /* the file belongs to another user, mode 0755 all the same */
        assert_int_equal(chown(path, OTHER_UID, 0), 0);
        snprintf(msg, sizeof(msg), "is owned by uid %d", OTHER_UID);
        expect_refused(path, -EPERM, path, msg, "chown root", NULL);
        assert_int_equal(chown(path, 0, 0), 0);
        expect_loads(path);

        /* its directory belongs to another user */
        assert_int_equal(chown(deep, OTHER_UID, 0), 0);
        snprintf(msg, sizeof(msg),
                 "is in directory \"%s\", which is owned "
                 "by uid %d",
                 deep, OTHER_UID);
        expect_refused(path, -EPERM, path, msg, "chown root", NULL);
        assert_int_equal(chown(deep, 0, 0), 0);

        /* a directory two levels up: whoever can write there can rename
         * the directory below and put another in its place */
        assert_int_equal(chmod(sub, 0775), 0);
        snprintf(msg, sizeof(msg),
                 "is in directory \"%s\", which is "
                 "writable by group or others",
                 sub);
        expect_refused(path, -EPERM, path, msg, "chmod go-w", NULL);
        assert_int_equal(chmod(sub, 0757), 0);
        expect_refused(path, -EPERM, path, msg, NULL);
        assert_int_equal(chmod(sub, 0755), 0);
        assert_int_equal(chown(sub, OTHER_UID, OTHER_UID), 0);
        snprintf(msg, sizeof(msg),
                 "is in directory \"%s\", which is owned "
                 "by uid %d",
                 sub, OTHER_UID);
        expect_refused(path, -EPERM, path, msg, NULL);
        assert_int_equal(chown(sub, 0, 0), 0);

        /* sticky and world-writable, like /tmp: anyone can add a file or
         * a directory of their own there */
        assert_int_equal(chmod(sub, 01777), 0);
        snprintf(msg, sizeof(msg),
                 "is in directory \"%s\", which is "
                 "writable by group or others (a sticky directory",
                 sub);
        expect_refused(path, -EPERM, path, msg, "move the plugin", NULL);
        assert_int_equal(chmod(sub, 0755), 0);
        expect_loads(path);
}

/* A symlink is as safe as the directory that holds it: whoever can write
 * there can point it elsewhere. */
static void refuses_symlink_in_writable_directory(void **state)
{
        char safe[1100], open_dir[1100], target[1200], link[1200], msg[1400],
            src[4096];

        (void)state;
        snprintf(safe, sizeof(safe), "%s/safe", tmpdir);
        snprintf(open_dir, sizeof(open_dir), "%s/links", tmpdir);
        snprintf(target, sizeof(target), "%s/good.so", safe);
        snprintf(link, sizeof(link), "%s/good.so", open_dir);
        assert_int_equal(mkdir(safe, 0755), 0);
        assert_int_equal(mkdir(open_dir, 0755), 0);
        assert_int_equal(chmod(safe, 0755), 0);
        assert_int_equal(chmod(open_dir, 0755), 0);
        snprintf(src, sizeof(src), "%s/good.so", plugin_dir());
        copy_file(src, target, 0755);
        assert_int_equal(symlink("../safe/good.so", link), 0);
        expect_loads(link);

        assert_int_equal(chmod(open_dir, 0777), 0);
        snprintf(msg, sizeof(msg),
                 "is reached through a symlink in "
                 "directory \"%s\", which is writable by group or others",
                 open_dir);
        expect_refused(link, -EPERM, link, msg, NULL);
        assert_int_equal(chmod(open_dir, 0755), 0);
        expect_loads(link);

        if (geteuid() == 0) {
                assert_int_equal(chown(open_dir, OTHER_UID, 0), 0);
                snprintf(msg, sizeof(msg),
                         "is reached through a symlink in "
                         "directory \"%s\", which is owned by uid %d",
                         open_dir, OTHER_UID);
                expect_refused(link, -EPERM, link, msg, NULL);
                assert_int_equal(chown(open_dir, 0, 0), 0);
        }
        /* a symlink to a directory: the link's directory counts, the
         * target's too */
        {
                char dlink[1200], via[1300];
                snprintf(dlink, sizeof(dlink), "%s/dir", open_dir);
                snprintf(via, sizeof(via), "%s/good.so", dlink);
                assert_int_equal(symlink(safe, dlink), 0);
                expect_loads(via);
                assert_int_equal(chmod(open_dir, 0775), 0);
                expect_refused(via, -EPERM, via, "through a symlink", open_dir,
                               NULL);
                assert_int_equal(chmod(open_dir, 0755), 0);
                assert_int_equal(chmod(safe, 0775), 0);
                expect_refused(via, -EPERM, via, "is in directory", safe, NULL);
                assert_int_equal(chmod(safe, 0755), 0);
        }
}

/*
 * dlopen() as the host calls it, with a hook: when swap_src is set, the
 * file there is renamed over swap_dst just before the real dlopen() runs,
 * that is after the host checked the plugin.  The static library resolves
 * dlopen to this definition.
 */
static const char *swap_src, *swap_dst;

void *dlopen(const char *file, int mode)
{
        static void *(*real)(const char *, int);

        if (!real)
                *(void **)&real = dlsym(RTLD_NEXT, "dlopen");
        if (swap_src && !(mode & RTLD_NOLOAD)) {
                assert_int_equal(rename(swap_src, swap_dst), 0);
                swap_src = NULL;
        }
        return real(file, mode);
}

/* The file checked is the file loaded, whatever happens to its path. */
static void loads_what_it_checked(void **state)
{
        const char *path = install("good.so", "plugin.so", 0755);
        const char *other = install("initfail.so", "other.so", 0755);
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";
        int r;

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        swap_src = other;
        swap_dst = path;
        r = wc_plugin_host_load(h, path, NULL, NULL, 0, err, sizeof(err));
        /* the swap happened, between the checks and the loading */
        assert_null(swap_src);
        swap_dst = NULL;
        if (r != 0)
                fail_msg("the file that replaced %s after the checks was "
                         "loaded: %s",
                         path, err);
        assert_int_equal(wc_plugin_host_count(h), 1);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* Each plugin is its own file, also when the descriptor number that
 * loaded one plugin is used again for the next (checked.so and old12.so
 * open no descriptor of their own, so the next load gets the same one). */
static void loads_each_file_once_checked(void **state)
{
        const char *checked = install("checked.so", "checked.so", 0755);
        const char *initfail = install("initfail.so", "initfail.so", 0755);
        const char *old = install("old12.so", "old12.so", 0755);
        struct wc_kv cfg[] = {KV("need", "x")};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, checked, NULL, cfg, 1, err, sizeof(err)))
                fail_msg("%s", err);
        /* checked.so stays loaded: another file must not be taken for it */
        assert_int_equal(
            wc_plugin_host_load(h, initfail, NULL, NULL, 0, err, sizeof(err)),
            -EINVAL);
        assert_non_null(strstr(err, "cannot reach the audit service"));
        if (wc_plugin_host_load(h, old, NULL, NULL, 0, err, sizeof(err)))
                fail_msg("%s", err);
        assert_int_equal(logged(old, "init"), 1);
        if (wc_plugin_host_load(h, checked, NULL, cfg, 1, err, sizeof(err)))
                fail_msg("%s", err);
        assert_int_equal(logged(checked, "init need=x"), 2);
        assert_int_equal(wc_plugin_host_count(h), 3);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* ---- a plugin's own check of its config (ABI 1.3) ---- */

static void plugin_checks_its_config(void **state)
{
        const char *checked = install("checked.so", "checked.so", 0755);
        const char *old = install("old12.so", "old12.so", 0755);
        const char *good = install("good.so", "good.so", 0755);
        struct wc_kv cfg[] = {KV("need", "yes")};
        struct wc_kv other[] = {KV("nede", "yes")};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";

        (void)state;
        /* what --check and a reload run: the check, not init */
        assert_int_equal(wc_plugin_check(checked, other, 1, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, checked));
        assert_non_null(strstr(err, "refused its configuration: missing "
                                    "required config key \"need\""));
        assert_int_equal(wc_plugin_check(checked, NULL, 0, err, sizeof(err)),
                         -EINVAL);
        assert_int_equal(wc_plugin_check(checked, cfg, 1, err, sizeof(err)), 0);
        /* without a check entry: a 1.2 descriptor, and a 1.3 one with
         * check NULL */
        assert_int_equal(wc_plugin_check(old, NULL, 0, err, sizeof(err)), 0);
        assert_int_equal(wc_plugin_check(good, NULL, 0, err, sizeof(err)), 0);
        assert_int_equal(nlogs, 0); /* no init ran */

        /* at start: the check runs before init, and stops the plugin */
        expect_refused(checked, -EINVAL, checked, "refused its configuration",
                       "missing required config key \"need\"", NULL);
        assert_int_equal(logged(checked, "init need=(null)"), 0);
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, checked, NULL, cfg, 1, err, sizeof(err)))
                fail_msg("%s", err);
        assert_int_equal(logged(checked, "init need=yes"), 1);
        if (wc_plugin_host_load(h, old, NULL, NULL, 0, err, sizeof(err)))
                fail_msg("%s", err);
        assert_int_equal(logged(old, "init"), 1);
        assert_int_equal(wc_plugin_host_count(h), 2);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* ---- a good plugin ---- */

static void pump(struct wc_plugin_host *h, int timeout_ms)
{
        struct pollfd pfd[16];
        size_t n = wc_plugin_host_pollfds(h, pfd, 16);

        assert_true(n <= 16);
        assert_true(poll(pfd, n, timeout_ms) >= 0);
        wc_plugin_host_dispatch(h, pfd, n);
}

static int watched_fd(const char *plugin)
{
        const char *m = logged_prefix(plugin, "watching fd ");
        int fd;

        assert_non_null(m);
        assert_int_equal(sscanf(m, "watching fd %d", &fd), 1);
        return fd;
}

static void poke(int fd, uint64_t v)
{
        assert_int_equal(write(fd, &v, sizeof(v)), sizeof(v));
}

static const struct walcast_column row[] = {
    {.name = "id",
     .name_len = 2,
     .type = "bigint",
     .type_len = 6,
     .type_oid = 20,
     .value = "42",
     .value_len = 2},
};

static struct wc_change change(enum wc_op op, const char *schema,
                               const char *table, wc_lsn lsn)
{
        struct wc_change c = {.op = op, .lsn = lsn};

        c.schema = schema;
        c.schema_len = strlen(schema);
        c.table = table;
        c.table_len = strlen(table);
        if (op == WC_OP_INSERT || op == WC_OP_UPDATE)
                c.columns = (struct walcast_columns){row, 1};
        else
                c.identity = (struct walcast_columns){row, 1};
        return c;
}

static void send(struct wc_bus *bus, enum wc_op op, const char *schema,
                 const char *table, wc_lsn lsn, const struct walcast_txn *txn)
{
        struct wc_change c = change(op, schema, table, lsn);

        assert_int_equal(wc_bus_dispatch(bus, &c, txn, NULL), 0);
}

static void good_plugin_lifecycle(void **state)
{
        const char *a = install("good.so", "a.so", 0755);
        const char *b = install("good.so", "b.so", 0755);
        char *a_items[] = {"town6"};
        struct wc_filter_config a_filter = {.schemas_include = {a_items, 1},
                                            .ops = WC_OPS_DATA};
        struct wc_kv a_cfg[] = {
            KV("greeting", "hello"),
            KV("nested.key", "deep"),
            KV("list.0", "first"),
            KV("commit", "none"),
        };
        struct wc_kv b_cfg[] = {
            KV("sender", "org-*"),
            KV("table", "tickets"),
            KV("commit", "pending"),
        };
        struct walcast_txn t7 = {.id = 7, .xid = 700}, t8 = {.id = 8};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        struct pollfd pfd[8];
        char err[1024] = "", want[256];
        int b_fd;

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, a, &a_filter, a_cfg, 4, err, sizeof(err)) !=
            0)
                fail_msg("%s", err);
        if (wc_plugin_host_load(h, b, NULL, b_cfg, 3, err, sizeof(err)) != 0)
                fail_msg("%s", err);
        assert_int_equal(wc_plugin_host_count(h), 2);

        /* init saw the host and its flattened config; log lines carry the
         * plugin's name (its path) */
        snprintf(want, sizeof(want),
                 "host abi %u.%u size %zu; config greeting=hello "
                 "nested.key=deep list.0=first absent=(null)",
                 WALCAST_ABI_MAJOR, WALCAST_ABI_MINOR,
                 sizeof(struct walcast_host));
        assert_int_equal(logged(a, want), 1);
        snprintf(want, sizeof(want),
                 "host abi %u.%u size %zu; config greeting=(null) "
                 "nested.key=(null) list.0=(null) absent=(null)",
                 WALCAST_ABI_MAJOR, WALCAST_ABI_MINOR,
                 sizeof(struct walcast_host));
        assert_int_equal(logged(b, want), 1);
        for (size_t i = 0; i < nlogs; i++)
                assert_true(strcmp(logs[i].plugin, a) == 0 ||
                            strcmp(logs[i].plugin, b) == 0);
        assert_int_equal(logs[0].level, WALCAST_LOG_INFO);
        /* a bad kind and a second commit handler are refused */
        assert_int_equal(logged(a, "bad kind: refused"), 1);
        assert_int_equal(logged(b, "bad kind: refused"), 1);
        assert_int_equal(logged(b, "second commit handler: refused"), 1);
        assert_int_equal(logged(a, "second commit handler: refused"), 0);
        /* both watch their eventfd */
        assert_int_equal(wc_plugin_host_pollfds(h, pfd, 8), 2);
        b_fd = watched_fd(b);
        assert_true(pfd[0].fd == b_fd || pfd[1].fd == b_fd);
        assert_true(pfd[0].fd == watched_fd(a) || pfd[1].fd == watched_fd(a));
        assert_int_equal(pfd[0].events, POLLIN);
        clear_reports();

        /* handlers through the bus: a takes town6 (owner schemas), b
         * org-*.tickets (its sender and table) */
        assert_int_equal(wc_bus_begin(bus, &t7, NULL), 0);
        send(bus, WC_OP_INSERT, "town6-govikon", "tickets", 0x10, &t7);
        send(bus, WC_OP_INSERT, "org-acme", "tickets", 0x20, &t7);
        send(bus, WC_OP_INSERT, "org-acme", "users", 0x30, &t7);
        send(bus, WC_OP_INSERT, "public", "tickets", 0x40, &t7);
        send(bus, WC_OP_DELETE, "town6-bern", "users", 0x50, &t7);
        /* connect outside init was refused: no update handler */
        send(bus, WC_OP_UPDATE, "town6-bern", "users", 0x60, &t7);
        assert_int_equal(logged(a, "insert town6-govikon.tickets ns=town6 "
                                   "tenant=govikon lsn=16 txn=7 first=id:42"),
                         1);
        assert_int_equal(logged(a, "delete town6-bern.users ns=town6 "
                                   "tenant=bern lsn=80 txn=7 first=id:42"),
                         1);
        assert_int_equal(logged(b, "insert org-acme.tickets ns=org "
                                   "tenant=acme lsn=32 txn=7 first=id:42"),
                         1);
        assert_int_equal(logged(a, "late connect: refused"), 1);
        assert_int_equal(logged(b, "late connect: refused"), 1);
        assert_int_equal(count_prefix(a, "insert "), 1);
        assert_int_equal(count_prefix(b, "insert "), 1);
        assert_int_equal(count_prefix(a, "other "), 0);
        assert_int_equal(count_prefix(b, "delete "), 0);
        assert_int_equal(nacks, 0);

        /* the commit: a (no commit handler) acks at once, b answers
         * PENDING and acks when its descriptor fires */
        assert_int_equal(wc_plugin_host_commit(h, &t7, NULL), 0);
        assert_int_equal(logged(b, "commit txn=7"), 1);
        assert_int_equal(nacks, 1);
        assert_string_equal(acks[0].plugin, a);
        assert_int_equal(acks[0].txn, 7);
        assert_int_equal(acks[0].status, WALCAST_OK);
        pump(h, 0);
        assert_int_equal(nacks, 1);
        assert_int_equal(wc_plugin_host_commit(h, &t8, NULL), 0);
        assert_int_equal(nacks, 2);
        assert_string_equal(acks[1].plugin, a);
        assert_int_equal(acks[1].txn, 8);

        poke(b_fd, 1);
        pump(h, 1000);
        assert_int_equal(nacks, 4);
        assert_string_equal(acks[2].plugin, b);
        assert_int_equal(acks[2].txn, 7);
        assert_int_equal(acks[2].status, WALCAST_OK);
        assert_string_equal(acks[3].plugin, b);
        assert_int_equal(acks[3].txn, 8);
        assert_int_equal(acks[3].status, WALCAST_OK);
        assert_int_equal(logged(b, "ack txn=7 status=0: accepted"), 1);
        /* the descriptor was read: nothing more */
        pump(h, 0);
        assert_int_equal(nacks, 4);
        clear_reports();

        /* a failed delivery is acknowledged as such; a status that is
         * neither is refused */
        assert_int_equal(wc_plugin_host_commit(h, &t7, NULL), 0);
        assert_int_equal(nacks, 1);
        poke(b_fd, 3);
        pump(h, 1000);
        assert_int_equal(logged(b, "ack txn=7 status=7: refused"), 1);
        assert_int_equal(nacks, 1);
        poke(b_fd, 2);
        pump(h, 1000);
        assert_int_equal(logged(b, "ack txn=7 status=-1: accepted"), 1);
        assert_int_equal(nacks, 2);
        assert_string_equal(acks[1].plugin, b);
        assert_int_equal(acks[1].txn, 7);
        assert_int_equal(acks[1].status, WALCAST_ERROR);
        clear_reports();

        /* SIGHUP, then exit: reopen and close reach both */
        wc_plugin_host_reopen(h);
        assert_int_equal(logged(a, "reopen"), 1);
        assert_int_equal(logged(b, "reopen"), 1);
        assert_int_equal(nlogs, 2);
        assert_int_equal(logs[0].level, WALCAST_LOG_NOTICE);
        clear_reports();
        wc_plugin_host_free(h);
        assert_int_equal(nlogs, 2);
        /* in reverse order of loading */
        assert_string_equal(logs[0].plugin, b);
        assert_string_equal(logs[0].msg, "close");
        assert_string_equal(logs[1].plugin, a);
        assert_string_equal(logs[1].msg, "close");
        /* the bus no longer calls into them */
        clear_reports();
        send(bus, WC_OP_INSERT, "town6-govikon", "tickets", 0x70, &t7);
        assert_int_equal(nlogs, 0);
        wc_bus_free(bus);
}

/* A sink's filter is applied by the host: tables and operations it
 * leaves out never reach the plugin's handlers, begin and commit do. */
static void sink_filter_keeps_signals_away(void **state)
{
        const char *a = install("good.so", "a.so", 0755);
        char *ex[] = {"*.users"};
        struct wc_filter_config f = {.tables_exclude = {ex, 1},
                                     .ops = WC_OP_BIT(WC_OP_INSERT)};
        struct wc_kv cfg[] = {KV("commit", "none")};
        struct walcast_txn t7 = {.id = 7, .xid = 700};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char err[1024] = "";

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, a, &f, cfg, 1, err, sizeof(err)) != 0)
                fail_msg("%s", err);
        clear_reports();
        assert_int_equal(wc_bus_begin(bus, &t7, NULL), 0);
        send(bus, WC_OP_INSERT, "town6-govikon", "tickets", 0x10, &t7);
        send(bus, WC_OP_INSERT, "town6-govikon", "users", 0x20, &t7);
        send(bus, WC_OP_DELETE, "town6-govikon", "tickets", 0x30, &t7);
        assert_int_equal(logged(a, "insert town6-govikon.tickets ns=town6 "
                                   "tenant=govikon lsn=16 txn=7 first=id:42"),
                         1);
        assert_int_equal(count_prefix(a, "insert "), 1);
        assert_int_equal(count_prefix(a, "delete "), 0);
        assert_int_equal(wc_plugin_host_commit(h, &t7, NULL), 0);
        assert_int_equal(nacks, 1);
        assert_int_equal(acks[0].txn, 7);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

static void plugin_failures_reach_the_caller(void **state)
{
        const char *a = install("good.so", "a.so", 0755);
        const char *b = install("good.so", "b.so", 0755);
        struct wc_kv a_cfg[] = {KV("commit", "none"), KV("insert", "error")};
        struct wc_kv b_cfg[] = {KV("commit", "error")};
        struct walcast_txn t9 = {.id = 9};
        struct wc_change c = change(WC_OP_INSERT, "town6-bern", "t", 0x99);
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        struct wc_bus_error e;
        char err[1024] = "";

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_load(h, a, NULL, a_cfg, 2, err, sizeof(err)) != 0 ||
            wc_plugin_host_load(h, b, NULL, b_cfg, 1, err, sizeof(err)) != 0)
                fail_msg("%s", err);

        /* a's insert handler fails: b's insert handler is not called */
        memset(&e, 0, sizeof(e));
        assert_int_equal(wc_bus_dispatch(bus, &c, &t9, &e), -ECANCELED);
        assert_string_equal(wc_plugin_owner_name(e.owner), a);
        assert_int_equal(e.kind, WALCAST_SIG_INSERT);
        assert_int_equal(e.lsn, 0x99);
        assert_string_equal(e.schema, "town6-bern");
        assert_string_equal(e.table, "t");
        assert_int_equal(count_prefix(a, "insert "), 1);
        assert_int_equal(count_prefix(b, "insert "), 0);

        /* b's commit handler fails: nobody acknowledges */
        memset(&e, 0, sizeof(e));
        assert_int_equal(wc_plugin_host_commit(h, &t9, &e), -ECANCELED);
        assert_string_equal(wc_plugin_owner_name(e.owner), b);
        assert_int_equal(e.kind, WALCAST_SIG_COMMIT);
        assert_int_equal(logged(b, "commit txn=9"), 1);
        assert_int_equal(nacks, 0);
        assert_string_equal(wc_plugin_owner_name(NULL), "?");
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* ---- the file sink through the host ---- */

static char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "rb");
        char *s;
        long n;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        s = malloc((size_t)n + 1);
        assert_non_null(s);
        assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
        s[n] = '\0';
        fclose(f);
        *ret_len = (size_t)n;
        return s;
}

static size_t count_lines(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* Polls the host's descriptors until nacks reaches want (at most ~5s). */
static void pump_until_acked(struct wc_plugin_host *h, size_t want)
{
        for (int i = 0; i < 500 && nacks < want; i++)
                pump(h, 10);
        assert_int_equal(nacks, want);
}

static void file_sink_through_the_host(void **state)
{
        char path[4200], err[1024] = "";
        struct wc_kv cfg[2] = {KV("path", path), KV("fsync", "false")};
        struct wc_kv nopath[] = {KV("fsync", "false")};
        struct walcast_txn t5 = {.id = 5,
                                 .xid = 555,
                                 .commit_lsn = 0x16B3748,
                                 .end_lsn = 0x16B3778,
                                 .commit_time_us = 1795614503648945},
                           t6 = {.id = 6}, t7 = {.id = 7}, t8 = {.id = 8};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        struct pollfd pfd[4];
        char *text, *nl;
        size_t len;

        (void)state;
        snprintf(path, sizeof(path), "%s/out.jsonl", tmpdir);
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);

        /* its own refusal, under the name it was added with */
        assert_int_equal(wc_plugin_host_add(h, "file", wc_filesink_plugin(),
                                            NULL, nopath, 1, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "\"file\""));
        assert_non_null(strstr(err, "needs a path"));
        assert_int_equal(wc_plugin_host_count(h), 0);

        if (wc_plugin_host_add(h, "file", wc_filesink_plugin(), NULL, cfg, 2,
                               err, sizeof(err)) != 0)
                fail_msg("%s", err);
        assert_int_equal(wc_plugin_host_count(h), 1);
        assert_int_equal(wc_plugin_host_pollfds(h, pfd, 4), 1);

        assert_int_equal(wc_bus_begin(bus, &t5, NULL), 0);
        send(bus, WC_OP_INSERT, "town6-govikon", "tickets", 0x16B3700, &t5);
        send(bus, WC_OP_DELETE, "org-acme", "users", 0x16B3720, &t5);
        assert_int_equal(wc_plugin_host_commit(h, &t5, NULL), 0);
        /* not before its sync timer fired */
        assert_int_equal(nacks, 0);
        pump(h, 0);
        assert_int_equal(nacks, 0);
        pump_until_acked(h, 1);
        assert_string_equal(acks[0].plugin, "file");
        assert_int_equal(acks[0].txn, 5);
        assert_int_equal(acks[0].status, WALCAST_OK);

        /* acknowledged means written */
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), 2);
        assert_int_equal(text[len - 1], '\n');
        nl = strchr(text, '\n');
        *nl = '\0';
        assert_non_null(strstr(text, "{\"op\":\"insert\",\"schema\":\"town6-"
                                     "govikon\",\"table\":\"tickets\""));
        assert_non_null(strstr(text, "\"lsn\":\"0/16B3700\""));
        assert_non_null(strstr(text, "\"xid\":555"));
        assert_non_null(strstr(text, "\"commit_lsn\":\"0/16B3748\""));
        assert_non_null(strstr(text, "\"commit_time\":\"2026-11-25T13:48:23."
                                     "648945Z\""));
        assert_non_null(strstr(text, "\"value\":42"));
        assert_non_null(strstr(nl + 1, "{\"op\":\"delete\",\"schema\":\"org-"
                                       "acme\",\"table\":\"users\""));
        free(text);

        /* a transaction that wrote nothing is acknowledged at its commit */
        assert_int_equal(wc_plugin_host_commit(h, &t6, NULL), 0);
        assert_int_equal(nacks, 2);
        assert_int_equal(acks[1].txn, 6);

        /* one sync covers the commits of its window, in order */
        send(bus, WC_OP_INSERT, "public", "a", 0x16C0000, &t7);
        assert_int_equal(wc_plugin_host_commit(h, &t7, NULL), 0);
        send(bus, WC_OP_INSERT, "public", "b", 0x16C0100, &t8);
        assert_int_equal(wc_plugin_host_commit(h, &t8, NULL), 0);
        assert_int_equal(nacks, 2);
        pump_until_acked(h, 4);
        assert_int_equal(acks[2].txn, 7);
        assert_int_equal(acks[3].txn, 8);
        assert_string_equal(acks[3].plugin, "file");
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), 4);
        free(text);

        /* reopen is none of the file sink's business; close unwatches */
        wc_plugin_host_reopen(h);
        wc_plugin_host_free(h);
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), 4);
        free(text);
        wc_bus_free(bus);
}

/* The file sink keeps a position (ABI 1.4): a transaction that did not
 * commit leaves nothing, one it holds is passed over (by the host once
 * synced, by the sink itself before), and the position survives a
 * restart and a rotation through the state directory. */
static void file_sink_exactly_once_through_the_host(void **state)
{
        char path[4200], sdir[4200], rotated[4300], err[1024] = "";
        struct wc_kv cfg[3] = {KV("path", path), KV("fsync", "false"),
                               KV("state_dir", sdir)};
        struct walcast_txn ta = {.id = 1, .xid = 1, .end_lsn = 0x100},
                           tb = {.id = 2, .xid = 2, .end_lsn = 0x200},
                           tb2 = {.id = 3, .xid = 2, .end_lsn = 0x200},
                           tc = {.id = 4, .xid = 3, .end_lsn = 0x300},
                           tc2 = {.id = 5, .xid = 3, .end_lsn = 0x300};
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;
        char *text;
        size_t len;

        (void)state;
        snprintf(path, sizeof(path), "%s/eos.jsonl", tmpdir);
        snprintf(sdir, sizeof(sdir), "%s/state", tmpdir);
        snprintf(rotated, sizeof(rotated), "%s.1", path);
        assert_int_equal(mkdir(sdir, 0700), 0);
        clear_reports();
        h = wc_plugin_host_new(bus, &ops);
        if (wc_plugin_host_add(h, "file", wc_filesink_plugin(), NULL, cfg, 3,
                               err, sizeof(err)) != 0)
                fail_msg("%s", err);
        assert_true(wc_plugin_host_position(h, 0, NULL) == 0);

        /* ta never commits: tb's first change cuts its lines */
        assert_int_equal(wc_plugin_host_begin(h, ta.end_lsn, 0), 1);
        send(bus, WC_OP_INSERT, "public", "a", 0x10, &ta);
        assert_int_equal(wc_plugin_host_begin(h, tb.end_lsn, 0), 1);
        send(bus, WC_OP_INSERT, "public", "b", 0x110, &tb);
        assert_int_equal(wc_plugin_host_commit(h, &tb, NULL), 0);
        pump_until_acked(h, 1);
        assert_int_equal(acks[0].txn, 2);
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), 1);
        assert_non_null(strstr(text, "\"table\":\"b\""));
        assert_non_null(strstr(text, ",\"last\":true}\n"));
        free(text);
        /* reported once synced */
        assert_true(wc_plugin_host_position(h, 0, NULL) == 0x200);

        /* tb again (a replay): the host passes the sink over */
        assert_int_equal(wc_plugin_host_begin(h, tb2.end_lsn, 0), 0);
        send(bus, WC_OP_INSERT, "public", "b", 0x110, &tb2);
        assert_int_equal(wc_plugin_host_commit(h, &tb2, NULL), 0);

        /* tc, then tc again before its sync: the sink passes it over
         * itself, and acknowledges both once synced */
        assert_int_equal(wc_plugin_host_begin(h, tc.end_lsn, 0), 1);
        send(bus, WC_OP_INSERT, "public", "c", 0x210, &tc);
        assert_int_equal(wc_plugin_host_commit(h, &tc, NULL), 0);
        assert_int_equal(wc_plugin_host_begin(h, tc2.end_lsn, 0), 1);
        send(bus, WC_OP_INSERT, "public", "c", 0x210, &tc2);
        assert_int_equal(wc_plugin_host_commit(h, &tc2, NULL), 0);
        pump_until_acked(h, 3);
        assert_int_equal(acks[1].txn, 4);
        assert_int_equal(acks[2].txn, 5);
        assert_int_equal(acks[2].status, WALCAST_OK);
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), 2);
        free(text);
        wc_plugin_host_free(h);

        /* started again: the position from the file */
        h = wc_plugin_host_new(bus, &ops);
        if (wc_plugin_host_add(h, "file", wc_filesink_plugin(), NULL, cfg, 3,
                               err, sizeof(err)) != 0)
                fail_msg("%s", err);
        assert_true(wc_plugin_host_position(h, 0, NULL) == 0x300);
        wc_plugin_host_free(h);

        /* rotated: a new file, the position from the state directory */
        assert_int_equal(rename(path, rotated), 0);
        h = wc_plugin_host_new(bus, &ops);
        if (wc_plugin_host_add(h, "file", wc_filesink_plugin(), NULL, cfg, 3,
                               err, sizeof(err)) != 0)
                fail_msg("%s", err);
        assert_true(wc_plugin_host_position(h, 0, NULL) == 0x300);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

/* A plugin logging at a level outside syslog's 3..7 is reported at the
 * nearest one: the caller's logger takes enum wc_log_level as it is. */
static int32_t odd_levels_init(const struct walcast_host *host,
                               struct walcast_plugin *self, void **ret_state,
                               char *errbuf, size_t errlen)
{
        (void)errbuf;
        (void)errlen;
        *ret_state = NULL;
        host->log(self, 0, "too high");
        host->log(self, 99, "too low");
        host->log(self, WALCAST_LOG_NOTICE, "just right");
        return WALCAST_OK;
}

static void plugin_log_levels_clamped(void **state)
{
        static const struct walcast_plugin_descriptor d = {
            .abi_major = WALCAST_ABI_MAJOR,
            .size = sizeof(struct walcast_plugin_descriptor),
            .abi_minor = WALCAST_ABI_MINOR,
            .name = "odd",
            .version = "1",
            .init = odd_levels_init,
        };
        char err[1024] = "";
        struct wc_bus *bus = wc_bus_new(100);
        struct wc_plugin_host *h;

        (void)state;
        assert_non_null(bus);
        h = wc_plugin_host_new(bus, &ops);
        assert_non_null(h);
        if (wc_plugin_host_add(h, "odd", &d, NULL, NULL, 0, err, sizeof(err)) !=
            0)
                fail_msg("%s", err);
        assert_int_equal(nlogs, 3);
        assert_string_equal(logs[0].msg, "too high");
        assert_int_equal(logs[0].level, WC_LOG_ERR);
        assert_string_equal(logs[1].msg, "too low");
        assert_int_equal(logs[1].level, WC_LOG_DEBUG);
        assert_int_equal(logs[2].level, WC_LOG_NOTICE);
        wc_plugin_host_free(h);
        wc_bus_free(bus);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(refuses_missing_file, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_text_file, setup, teardown),
            cmocka_unit_test_setup_teardown(refuses_missing_entry_symbol, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_other_abi_major, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_small_descriptor, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_null_descriptor, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_missing_init, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_failed_init, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_writable_by_others, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_symlink_to_writable_place,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(refuses_plugin_in_tmp, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(refuses_relative_and_odd_paths,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(
                refuses_others_files_and_directories, setup, teardown),
            cmocka_unit_test_setup_teardown(
                refuses_symlink_in_writable_directory, setup, teardown),
            cmocka_unit_test_setup_teardown(loads_what_it_checked, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(loads_each_file_once_checked, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(plugin_checks_its_config, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(sink_filter_keeps_signals_away,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(good_plugin_lifecycle, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(plugin_failures_reach_the_caller,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(plugin_log_levels_clamped, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(
                file_sink_exactly_once_through_the_host, setup, teardown),
            cmocka_unit_test_setup_teardown(file_sink_through_the_host, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
