/* SPDX-License-Identifier: MIT */
/* A dlopen plugin sink's configuration (docs/plugins.md). */
#ifndef WALCAST_SINKS_PLUGIN_CONF_H
#define WALCAST_SINKS_PLUGIN_CONF_H

#include <stddef.h>

#include "core/kv.h"
#include "sinks/registry.h"
#include "core/pattern.h"

struct wc_plugin_sink_config {
        struct wc_sink_common common; /* name and filter: first */
        char *path;                   /* absolute path of the shared object */
        struct wc_kv *config;         /* the `config:` block (core/kv.h) */
        size_t nconfig;
};

#endif
