/* SPDX-License-Identifier: MIT */
/* A plugin whose descriptor has no init function. */
#include <stddef.h>

#include <walcast/plugin.h>

WALCAST_PLUGIN_DEFINE("noinit", "0.1", NULL, NULL, NULL);
