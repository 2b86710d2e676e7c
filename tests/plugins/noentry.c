/* SPDX-License-Identifier: MIT */
/* A shared object that forgot WALCAST_PLUGIN_DEFINE: it exports a
 * function, but not the entry symbol. */
#include <walcast/plugin.h>

WALCAST_EXPORT int walcast_plugin_entry_point(void);

int walcast_plugin_entry_point(void)
{
        return 42;
}
