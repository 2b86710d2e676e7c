/* SPDX-License-Identifier: MIT */
/* The file sink as a kind of the sink registry: its keys, its check and
 * its start. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/kv.h"
#include "core/settings.h"
#include "host/host.h"
#include "sinks/file/conf.h"
#include "sinks/file/filesink.h"
#include "sinks/registry.h"

static const struct wc_key file_keys[] = {
    WC_SINK_COMMON_KEYS,
    {WC_KEY(WC_KEY_STRING, "path", NULL,
            offsetof(struct wc_file_sink_config, path),
            "file to append JSON lines to; \"-\" is stdout"),
     .required = true},
    {WC_KEY(WC_KEY_BOOL, "fsync", "true",
            offsetof(struct wc_file_sink_config, fsync),
            "fsync before acknowledging changes")},
    {.name = NULL},
};

_Static_assert(sizeof(file_keys) / sizeof(file_keys[0]) <= 32, "too many keys");

static void file_free(void *conf);

static int file_parse(struct wc_settings *s, const char *path,
                      const struct wc_node *key, const struct wc_node *block,
                      void **ret_conf)
{
        struct wc_file_sink_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return wc_settings_fail_oom(s);
        r = wc_settings_read(s, file_keys, path, key, block, c);
        if (r < 0) {
                file_free(c);
                return r;
        }
        *ret_conf = c;
        return 0;
}

static void file_free(void *conf)
{
        struct wc_file_sink_config *f = conf;

        if (!f)
                return;
        wc_sink_common_free(&f->common);
        free(f->path);
        free(f);
}

static char *file_default_name(const void *conf)
{
        const struct wc_file_sink_config *f = conf;
        char *n;

        return asprintf(&n, "file:%s", f->path) < 0 ? NULL : n;
}

/* Whether directories a and b are the same path, give or take a
 * trailing '/'. */
static bool same_dir(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);

        while (la > 1 && a[la - 1] == '/')
                la--;
        while (lb > 1 && b[lb - 1] == '/')
                lb--;
        return la == lb && memcmp(a, b, la) == 0;
}

/*
 * What a file sink's start would find out about its path: the file, or
 * the directory to create it in, can be written to.  "-" is stdout.  The
 * state directory may be missing: systemd creates it (StateDirectory=)
 * when it starts walcastd, after an operator's check.
 */
static int check_file_sink(const char *path, const char *state_dir,
                           char *errbuf, size_t errlen)
{
        const char *slash = strrchr(path, '/');
        char dir[4096];
        struct stat st;
        int e;

        if (strcmp(path, "-") == 0)
                return 0;
        if (stat(path, &st) == 0) {
                if (S_ISDIR(st.st_mode))
                        return wc_fail(errbuf, errlen, -EISDIR,
                                       "file sink \"%s\" is a directory: "
                                       "name a file in it",
                                       path);
                if (access(path, W_OK) == 0)
                        return 0;
                e = errno;
                return wc_fail(errbuf, errlen, -e,
                               "file sink \"%s\" is not writable by walcast "
                               "(uid %u): %s; fix its owner or mode (chown, "
                               "chmod u+w)",
                               path, (unsigned)geteuid(), strerror(e));
        }
        e = errno;
        if (e != ENOENT)
                return wc_fail(errbuf, errlen, -e, "file sink \"%s\": %s", path,
                               strerror(e));
        if (!slash)
                snprintf(dir, sizeof(dir), ".");
        else
                snprintf(dir, sizeof(dir), "%.*s",
                         slash == path ? 1 : (int)(slash - path), path);
        if (stat(dir, &st) < 0 && errno == ENOENT && state_dir &&
            same_dir(dir, state_dir))
                return 0;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return wc_fail(errbuf, errlen, -ENOENT,
                               "file sink \"%s\": directory \"%s\" does not "
                               "exist: create it, or correct the path",
                               path, dir);
        if (access(dir, W_OK | X_OK) == 0)
                return 0;
        e = errno;
        return wc_fail(errbuf, errlen, -e,
                       "file sink \"%s\": directory \"%s\" is not writable "
                       "by walcast (uid %u): %s; fix its owner or mode (chown, "
                       "chmod), or choose another directory",
                       path, dir, (unsigned)geteuid(), strerror(e));
}

static int file_check(const void *conf, const struct wc_sink_env *env,
                      char *errbuf, size_t errlen)
{
        const struct wc_file_sink_config *f = conf;

        return check_file_sink(f->path, env->state_dir, errbuf, errlen);
}

static int file_add(struct wc_plugin_host *h, const char *name,
                    const void *conf, const struct wc_sink_env *env,
                    char *errbuf, size_t errlen)
{
        const struct wc_file_sink_config *f = conf;
        struct wc_kv kv[3] = {
            {"path", f->path},
            {"fsync", f->fsync ? "true" : "false"},
            /* its position across rotated files */
            {"state_dir", env->state_dir ? (char *)env->state_dir : ""},
        };

        /* the file sink reads its config during init only */
        return wc_plugin_host_add(h, name, wc_filesink_plugin(),
                                  &f->common.filter, kv, 3, errbuf, errlen);
}

const struct wc_sink_kind wc_sink_kind_file = {
    .name = "file",
    .parse = file_parse,
    .free = file_free,
    .default_name = file_default_name,
    .check = file_check,
    .add = file_add,
};
