/* SPDX-License-Identifier: MIT */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/pattern.h"

bool wc_pattern_has_glob(const char *p)
{
        return strpbrk(p, "*?[") != NULL;
}

bool wc_pattern_schema_match(const char *pattern, const char *schema)
{
        struct wc_str ns, tenant;

        if (wc_pattern_has_glob(pattern))
                return fnmatch(pattern, schema, 0) == 0;
        if (strcmp(pattern, schema) == 0)
                return true;
        wc_schema_split(schema, strlen(schema), &ns, &tenant);
        return tenant.len > 0 && strlen(pattern) == ns.len &&
               memcmp(pattern, ns.ptr, ns.len) == 0;
}

bool wc_pattern_table_match(const char *pattern, const char *schema,
                            const char *table)
{
        const char *dot = strchr(pattern, '.');
        size_t slen;

        if (!dot) {
                if (wc_pattern_has_glob(pattern))
                        return fnmatch(pattern, table, 0) == 0;
                return strcmp(pattern, table) == 0;
        }
        if (!wc_pattern_has_glob(pattern)) {
                slen = strlen(schema);
                return strncmp(pattern, schema, slen) == 0 &&
                       pattern[slen] == '.' &&
                       strcmp(pattern + slen + 1, table) == 0;
        }
        {
                size_t sl = strlen(schema), tl = strlen(table);
                size_t n = sl + tl + 2;
                char stack[256];
                char *full = n <= sizeof(stack) ? stack : malloc(n);
                bool m;

                if (!full)
                        return false;
                memcpy(full, schema, sl);
                full[sl] = '.';
                memcpy(full + sl + 1, table, tl + 1);
                m = fnmatch(pattern, full, 0) == 0;
                if (full != stack)
                        free(full);
                return m;
        }
}

bool wc_pattern_list_schema_match(const struct wc_pattern_list *l,
                                  const char *schema)
{
        for (size_t i = 0; i < l->count; i++)
                if (wc_pattern_schema_match(l->items[i], schema))
                        return true;
        return false;
}

bool wc_pattern_list_table_match(const struct wc_pattern_list *l,
                                 const char *schema, const char *table)
{
        for (size_t i = 0; i < l->count; i++)
                if (wc_pattern_table_match(l->items[i], schema, table))
                        return true;
        return false;
}

void wc_pattern_list_free(struct wc_pattern_list *l)
{
        for (size_t i = 0; i < l->count; i++)
                free(l->items[i]);
        free(l->items);
        l->items = NULL;
        l->count = 0;
}
