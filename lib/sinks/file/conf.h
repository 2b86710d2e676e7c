/* SPDX-License-Identifier: MIT */
/* A file sink's configuration (docs/configuration.md). */
#ifndef WALCAST_SINKS_FILE_CONF_H
#define WALCAST_SINKS_FILE_CONF_H

#include <stdbool.h>

#include "sinks/registry.h"

struct wc_file_sink_config {
        struct wc_sink_common common; /* name and filter: first */
        char *path;                   /* "-" is stdout */
        bool fsync; /* default true; ignored for stdout, pipes, ttys */
};

#endif
