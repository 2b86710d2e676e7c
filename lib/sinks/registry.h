/* SPDX-License-Identifier: MIT */
/*
 * The sink registry: every kind of sink walcast knows, by the name that
 * starts its block in the configuration's `sinks:` list.  A kind checks a
 * configured sink (the same check serves --check, reload and start) and
 * adds it to the plugin host; every sink is a plugin on the ABI of
 * <walcast/plugin.h>.  Adding a kind: a folder under lib/sinks/, its entry
 * in registry.c, its keys in the configuration, docs.
 */
#ifndef WALCAST_SINKS_REGISTRY_H
#define WALCAST_SINKS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

struct wc_plugin_host;

/* What a sink may need to know beyond its own block. */
struct wc_sink_env {
        const char *dsn;       /* source.dsn */
        const char *state_dir; /* absolute, or NULL */
};

struct wc_sink_kind {
        const char *name; /* "file", "kafka", "plugin" */
        /* keys rows by their identity (Kafka's message key), so tables
         * without one are worth a warning at start */
        bool needs_identity;
        /* conf is the kind's own struct (sinks/KIND/conf.h) */
        int (*check)(const void *conf, const struct wc_sink_env *env,
                     char *errbuf, size_t errlen);
        /* adds the sink as plugin `name`; conf is borrowed for the host's
         * lifetime */
        int (*add)(struct wc_plugin_host *h, const char *name, const void *conf,
                   const struct wc_sink_env *env, char *errbuf, size_t errlen);
};

/* The kind called name, or NULL. */
const struct wc_sink_kind *wc_sink_kind_find(const char *name);

/* The built-in kinds, one per folder. */
extern const struct wc_sink_kind wc_sink_kind_file;
extern const struct wc_sink_kind wc_sink_kind_kafka;
extern const struct wc_sink_kind wc_sink_kind_plugin;

#endif
