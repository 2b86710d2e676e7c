/* SPDX-License-Identifier: MIT */
/* The sinks of a configuration: checked (--check, reload) and started. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kafka_kv.h"
#include "common/log.h"
#include "common/runner_int.h"
#include "sinks/file/filesink.h"
#include "sinks/kafka/kafka.h"

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

int wc_check_sinks(const struct wc_config *cfg, char *errbuf, size_t errlen)
{
        char err[2048], sd[4096];
        const char *state_dir = wc_state_dir(cfg, sd, sizeof(sd));

        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                int r = 0;

                if (s->type == WC_SINK_FILE)
                        r = check_file_sink(s->u.file.path, state_dir, err,
                                            sizeof(err));
                else if (s->type == WC_SINK_KAFKA)
                        r = wc_kafka_sink_check(&s->u.kafka, cfg->source.dsn,
                                                err, sizeof(err));
                else if (s->type == WC_SINK_PLUGIN)
                        r = wc_plugin_check(
                            s->u.plugin.path, s->u.plugin.config,
                            s->u.plugin.nconfig, err, sizeof(err));
                if (r < 0) {
                        wc_errorf(errbuf, errlen, "%s:%u:%u: %s", cfg->path,
                                  s->line, s->column, err);
                        return r;
                }
        }
        return 0;
}

int wc_runner_load_plugins(struct runner *rn)
{
        const struct wc_config *cfg = rn->cfg;
        int r;

        if (rn->o->tail) {
                rn->tail_kv[0] = (struct wc_kv){"path", "-"};
                rn->tail_kv[1] = (struct wc_kv){"fsync", "false"};
                r = wc_plugin_host_add(rn->host, "stdout", wc_filesink_plugin(),
                                       NULL, rn->tail_kv, 2, rn->err,
                                       sizeof(rn->err));
                if (r < 0)
                        log_error("%s", rn->err);
                return r;
        }
        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                if (s->type == WC_SINK_FILE) {
                        struct wc_kv kv[2] = {
                            {"path", s->u.file.path},
                            {"fsync", s->u.file.fsync ? "true" : "false"},
                        };
                        /* the file sink reads its config during init only */
                        r = wc_plugin_host_add(rn->host, s->name,
                                               wc_filesink_plugin(), NULL, kv,
                                               2, rn->err, sizeof(rn->err));
                } else if (s->type == WC_SINK_KAFKA) {
                        r = wc_kafka_sink_add(rn->host, s->name, &s->u.kafka,
                                              cfg->source.dsn, rn->err,
                                              sizeof(rn->err));
                } else {
                        const struct wc_plugin_sink_config *p = &s->u.plugin;
                        r = wc_plugin_host_load(rn->host, p->path, &p->schemas,
                                                p->config, p->nconfig, rn->err,
                                                sizeof(rn->err));
                        if (r == 0 && strcmp(s->name, p->path) != 0)
                                r = wc_plugin_host_name_last(rn->host, s->name);
                }
                /* a series from the start, before any acknowledgement */
                if (r == 0)
                        (void)wc_metrics_add_sink(rn->m, s->name);
                if (r < 0) {
                        log_error("%s:%u:%u: %s", cfg->path, s->line, s->column,
                                  rn->err);
                        return -EEXIST; /* exit 78: a configuration matter */
                }
        }
        return 0;
}
