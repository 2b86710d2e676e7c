/* SPDX-License-Identifier: MIT */
/* A dlopen plugin sink's configuration (docs/plugins.md). */
#ifndef WALCAST_SINKS_PLUGIN_CONF_H
#define WALCAST_SINKS_PLUGIN_CONF_H

#include <stddef.h>

#include "core/kv.h"
#include "core/pattern.h"

struct wc_plugin_sink_config {
        char *name; /* `name:`, or NULL; first in every sink's struct */
        char *path; /* absolute path of the shared object */
        /* schemas the plugin receives (exact names, globs, namespaces);
         * empty: every schema the global filter passes */
        struct wc_pattern_list schemas;
        struct wc_kv *config; /* the `config:` block (core/kv.h) */
        size_t nconfig;
};

#endif
