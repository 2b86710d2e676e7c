/* SPDX-License-Identifier: MIT */
/* A plugin whose entry symbol returns no descriptor. */
#include <stddef.h>

#include <walcast/plugin.h>

WALCAST_EXPORT const struct walcast_plugin_descriptor *
walcast_plugin_entry(void);

const struct walcast_plugin_descriptor *walcast_plugin_entry(void)
{
        return NULL;
}
