/* SPDX-License-Identifier: MIT */
/* What every sink's block holds: its name and its filter. */
#include <stddef.h>
#include <stdlib.h>

#include "core/pattern.h"
#include "core/settings.h"
#include "sinks/registry.h"

#define FIELD(f) offsetof(struct wc_sink_common, filter.f)

static const struct wc_key schemas_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "include", NULL, FIELD(schemas_include),
            "schemas this sink takes; empty: every schema")},
    {WC_KEY(WC_KEY_PATTERNS, "exclude", NULL, FIELD(schemas_exclude),
            "schemas to skip even when included")},
    {.name = NULL},
};

static const struct wc_key tables_keys[] = {
    {WC_KEY(WC_KEY_PATTERNS, "include", NULL, FIELD(tables_include),
            "tables this sink takes; empty: every table")},
    {WC_KEY(WC_KEY_PATTERNS, "exclude", NULL, FIELD(tables_exclude),
            "tables to skip even when included")},
    {.name = NULL},
};

/* `schemas:` or `tables:`: a list is the include list, a mapping has
 * include and exclude. */
static int load_filter(struct wc_settings *s, const struct wc_key *keys,
                       const char *path, const struct wc_node *key,
                       const struct wc_node *val, void *base)
{
        if (val->kind == WC_NODE_SEQUENCE)
                return wc_settings_load(s, &keys[0], path, key, val, base);
        if (val->kind == WC_NODE_SCALAR && !val->null)
                return wc_settings_fail_type(s, val, "a sequence or a mapping",
                                             path);
        return wc_settings_walk(s, keys, path, key, val, base);
}

int wc_sink_schemas_load(struct wc_settings *s, const char *path,
                         const struct wc_node *key, const struct wc_node *val,
                         void *base)
{
        return load_filter(s, schemas_keys, path, key, val, base);
}

int wc_sink_tables_load(struct wc_settings *s, const char *path,
                        const struct wc_node *key, const struct wc_node *val,
                        void *base)
{
        return load_filter(s, tables_keys, path, key, val, base);
}

void wc_sink_common_free(struct wc_sink_common *c)
{
        if (!c)
                return;
        free(c->name);
        wc_filter_config_free(&c->filter);
}
