/* SPDX-License-Identifier: MIT */
/* A plugin whose descriptor is shorter than ABI 1.0's: it ends after
 * init, as if built against a header without close and reopen. */
#include <walcast/plugin.h>

struct short_descriptor {
        uint32_t abi_major;
        uint32_t size;
        uint32_t abi_minor;
        uint32_t reserved;
        const char *name;
        const char *version;
        walcast_init_fn init;
};

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        return WALCAST_OK;
}

static const struct short_descriptor d = {
    .abi_major = WALCAST_ABI_MAJOR,
    .size = sizeof(struct short_descriptor),
    .name = "small",
    .version = "0.1",
    .init = init,
};

WALCAST_EXPORT const struct walcast_plugin_descriptor *
walcast_plugin_entry(void);

const struct walcast_plugin_descriptor *walcast_plugin_entry(void)
{
        return (const struct walcast_plugin_descriptor *)(const void *)&d;
}
