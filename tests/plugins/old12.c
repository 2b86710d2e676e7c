/* SPDX-License-Identifier: MIT */
/*
 * A plugin built against the 1.2 header: its descriptor ends after
 * reopen, with no check function.  It loads on a 1.3 host as it is.  It
 * opens no descriptor.
 */
#include <walcast/plugin.h>

struct descriptor_1_2 {
        uint32_t abi_major;
        uint32_t size;
        uint32_t abi_minor;
        uint32_t reserved;
        const char *name;
        const char *version;
        walcast_init_fn init;
        walcast_close_fn close;
        walcast_reopen_fn reopen;
};

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        (void)ret_state;
        (void)errbuf;
        (void)errlen;
        host->log(self, WALCAST_LOG_INFO, "init");
        return WALCAST_OK;
}

static const struct descriptor_1_2 d = {
    .abi_major = WALCAST_ABI_MAJOR,
    .size = sizeof(struct descriptor_1_2),
    .abi_minor = 2,
    .name = "old12",
    .version = "0.1",
    .init = init,
};

WALCAST_EXPORT const struct walcast_plugin_descriptor *
walcast_plugin_entry(void);

const struct walcast_plugin_descriptor *walcast_plugin_entry(void)
{
        return (const struct walcast_plugin_descriptor *)(const void *)&d;
}
