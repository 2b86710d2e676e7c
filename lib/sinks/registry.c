/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "sinks/registry.h"

/* One line per kind. */
static const struct wc_sink_kind *const kinds[] = {
    &wc_sink_kind_file,
    &wc_sink_kind_plugin,
    &wc_sink_kind_kafka,
};

const struct wc_sink_kind *wc_sink_kind_find(const char *name)
{
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (strcmp(kinds[i]->name, name) == 0)
                        return kinds[i];
        return NULL;
}

const struct wc_sink_kind *wc_sink_kind_at(size_t i)
{
        return i < sizeof(kinds) / sizeof(kinds[0]) ? kinds[i] : NULL;
}
