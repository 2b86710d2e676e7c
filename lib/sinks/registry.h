/* SPDX-License-Identifier: MIT */
/*
 * The sink registry: every kind of sink walcast knows, by the name that
 * starts its block in the configuration's `sinks:` list.  A kind checks a
 * configured sink (the same check serves --check, reload and start) and
 * adds it to the plugin host; every sink is a plugin on the ABI of
 * <walcast/plugin.h>.  A kind reads its own configuration block: it
 * declares its keys as a table (core/settings.h) and parses the block the
 * configuration hands it, so `--check`, reload and start see one set of
 * errors.  Adding a kind: a folder under lib/sinks/, its entry in
 * registry.c, docs.
 */
#ifndef WALCAST_SINKS_REGISTRY_H
#define WALCAST_SINKS_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/filter.h"
#include "core/settings.h"

struct wc_node;
struct wc_plugin_host;
struct wc_settings;

/* What a sink may need to know beyond its own block. */
struct wc_sink_env {
        const char *dsn;       /* source.dsn */
        const char *state_dir; /* absolute, or NULL */
        /* the global filter (what reaches any sink), or NULL */
        const struct wc_filter_config *filter;
        /* what a check or start has to say besides its error (syslog
         * level: 4 warning, 5 notice); NULL: nothing is said */
        void (*log)(int level, const char *msg);
        const char *slot; /* the slot's name, or NULL */
};

struct wc_sink_kind {
        const char *name; /* "file", "kafka", "plugin" */
        /* keys rows by their identity (Kafka's message key), so tables
         * without one are worth a warning at start */
        bool needs_identity;
        /* Reads block, the value of key (`KIND:`) at path ("sinks[0].file"),
         * into a new struct of the kind's own (sinks/KIND/conf.h), its
         * `name:` (char *, or NULL) first.  Errors go through s with the
         * file's line:column.  *ret_conf written only on success. */
        int (*parse)(struct wc_settings *s, const char *path,
                     const struct wc_node *key, const struct wc_node *block,
                     void **ret_conf);
        /* frees what parse made; accepts NULL */
        void (*free)(void *conf);
        /* the sink's name without `name:` (not numbered); NULL: no memory */
        char *(*default_name)(const void *conf);
        /* conf is the kind's own struct (sinks/KIND/conf.h) */
        int (*check)(const void *conf, const struct wc_sink_env *env,
                     char *errbuf, size_t errlen);
        /* adds the sink as plugin `name`; conf is borrowed for the host's
         * lifetime */
        int (*add)(struct wc_plugin_host *h, const char *name, const void *conf,
                   const struct wc_sink_env *env, char *errbuf, size_t errlen);
        /* calls add with each value of conf that is a secret (a password,
         * a private key) so that no log line shows it, whoever quotes it;
         * NULL: the kind holds none */
        void (*secrets)(const void *conf, void (*add)(const char *value));
};

/* The kind called name, or NULL. */
const struct wc_sink_kind *wc_sink_kind_find(const char *name);

/* The i-th kind in the registry's order, NULL past the last. */
const struct wc_sink_kind *wc_sink_kind_at(size_t i);

/* What a kind's `name:` key is: the same in every kind, first in its
 * struct.  For the key tables of lib/sinks/KIND/kind.c. */
#define WC_SINK_NAME_DESCRIPTION                                               \
        "what logs and metrics call this sink; default from its kind"

/*
 * What every kind's block holds besides its own keys, first in every
 * kind's struct (sinks/KIND/conf.h): the sink's name and its filter, what
 * of the stream it takes (the global filter's shapes; `schemas:` and
 * `tables:` may also be a plain list, their `include`).  The plugin host
 * applies the filter: a sink is never called for a table or an operation
 * it filters out.  A kind's key table starts with WC_SINK_COMMON_KEYS.
 */
struct wc_sink_common {
        char *name; /* `name:`, or NULL */
        struct wc_filter_config filter;
};

int wc_sink_schemas_load(struct wc_settings *s, const char *path,
                         const struct wc_node *key, const struct wc_node *val,
                         void *base);
int wc_sink_tables_load(struct wc_settings *s, const char *path,
                        const struct wc_node *key, const struct wc_node *val,
                        void *base);

#define WC_SINK_COMMON_KEYS                                                    \
        {WC_KEY(WC_KEY_STRING, "name", NULL,                                   \
                offsetof(struct wc_sink_common, name),                         \
                WC_SINK_NAME_DESCRIPTION)},                                    \
            {WC_KEY(                                                           \
                 WC_KEY_CUSTOM, "schemas", NULL, 0,                            \
                 "schemas this sink takes: a list, or include and exclude"),   \
             .load = wc_sink_schemas_load},                                    \
            {WC_KEY(WC_KEY_CUSTOM, "tables", NULL, 0,                          \
                    "tables this sink takes: a list, or include and exclude"), \
             .load = wc_sink_tables_load},                                     \
        {                                                                      \
                WC_KEY(WC_KEY_OPS, "ops", NULL,                                \
                       offsetof(struct wc_sink_common, filter.ops),            \
                       "operations this sink takes")                           \
        }

/* Frees what WC_SINK_COMMON_KEYS read; accepts NULL. */
void wc_sink_common_free(struct wc_sink_common *c);

/* The built-in kinds, one per folder. */
extern const struct wc_sink_kind wc_sink_kind_file;
extern const struct wc_sink_kind wc_sink_kind_kafka;
extern const struct wc_sink_kind wc_sink_kind_plugin;

#endif
