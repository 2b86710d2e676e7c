/* SPDX-License-Identifier: MIT */
/* A plugin loaded with dlopen, as a kind of the sink registry. */
#include <string.h>

#include "host/host.h"
#include "sinks/plugin/conf.h"
#include "sinks/registry.h"

static int plugin_check(const void *conf, const struct wc_sink_env *env,
                        char *errbuf, size_t errlen)
{
        const struct wc_plugin_sink_config *p = conf;

        (void)env;
        return wc_plugin_check(p->path, p->config, p->nconfig, errbuf, errlen);
}

static int plugin_add(struct wc_plugin_host *h, const char *name,
                      const void *conf, const struct wc_sink_env *env,
                      char *errbuf, size_t errlen)
{
        const struct wc_plugin_sink_config *p = conf;
        int r;

        (void)env;
        r = wc_plugin_host_load(h, p->path, &p->schemas, p->config, p->nconfig,
                                errbuf, errlen);
        /* a loaded plugin is named by its path until it is renamed */
        if (r == 0 && strcmp(name, p->path) != 0)
                r = wc_plugin_host_name_last(h, name);
        return r;
}

const struct wc_sink_kind wc_sink_kind_plugin = {
    .name = "plugin",
    .check = plugin_check,
    .add = plugin_add,
};
