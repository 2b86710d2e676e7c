/* SPDX-License-Identifier: MIT */
/* A plugin built for a future ABI major version. */
#include <walcast/plugin.h>

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        return WALCAST_OK;
}

WALCAST_EXPORT const struct walcast_plugin_descriptor *
walcast_plugin_entry(void);

const struct walcast_plugin_descriptor *walcast_plugin_entry(void)
{
        static const struct walcast_plugin_descriptor d = {
            .abi_major = 2,
            .size = sizeof(struct walcast_plugin_descriptor),
            .abi_minor = 0,
            .name = "abi2",
            .version = "2.0",
            .init = init,
        };
        return &d;
}
