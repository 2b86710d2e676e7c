/* SPDX-License-Identifier: MIT */
/* The sinks of a configuration: checked (--check, reload) and started. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/runner_int.h"
#include "sinks/file/filesink.h"
#include "sinks/registry.h"

static void env_log(int level, const char *msg)
{
        wc_log((enum wc_log_level)level, "%s", msg);
}

void wc_add_config_secrets(const struct wc_config *cfg)
{
        wc_log_add_dsn_secrets(cfg->source.dsn);
        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                const struct wc_sink_kind *k = wc_sink_kind_find(s->kind);

                if (k && k->secrets)
                        k->secrets(s->conf, wc_log_add_secret_value);
        }
}

int wc_check_sinks(const struct wc_config *cfg, char *errbuf, size_t errlen)
{
        char err[2048], sd[4096];
        struct wc_sink_env env = {
            .dsn = cfg->source.dsn,
            .state_dir = wc_state_dir(cfg, sd, sizeof(sd)),
            .filter = &cfg->filter,
            .log = env_log,
            .slot = cfg->source.slot,
        };

        for (size_t i = 0; i < cfg->nsinks; i++) {
                const struct wc_sink_config *s = &cfg->sinks[i];
                const struct wc_sink_kind *k = wc_sink_kind_find(s->kind);
                int r = -ENOENT;

                if (!k)
                        snprintf(err, sizeof(err),
                                 "no sink of kind \"%s\" in this walcast",
                                 s->kind);
                else
                        r = k->check(s->conf, &env, err, sizeof(err));
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
        char sd[4096];
        struct wc_sink_env env = {
            .dsn = cfg->source.dsn,
            .state_dir = wc_state_dir(cfg, sd, sizeof(sd)),
            .filter = &cfg->filter,
            .log = env_log,
            .slot = rn->slot,
        };
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
                const struct wc_sink_kind *k = wc_sink_kind_find(s->kind);

                r = -ENOENT;
                if (!k)
                        snprintf(rn->err, sizeof(rn->err),
                                 "no sink of kind \"%s\" in this walcast",
                                 s->kind);
                else
                        r = k->add(rn->host, s->name, s->conf, &env, rn->err,
                                   sizeof(rn->err));
                /* a series from the start, before any acknowledgement */
                if (r == 0)
                        (void)wc_metrics_add_sink(rn->m, s->name);
                if (r < 0) {
                        log_error("%s:%u:%u: %s", cfg->path, s->line, s->column,
                                  rn->err);
                        /* Kafka not answering may pass: exit 1, which
                         * systemd's Restart= tries again (as for
                         * PostgreSQL); another walcastd active: exit 69;
                         * anything else is the configuration's: exit 78 */
                        return r == -EIO || r == -ESTALE ? r : -EEXIST;
                }
        }
        return 0;
}
