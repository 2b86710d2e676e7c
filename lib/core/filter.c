/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/pattern.h"
#include "core/tablemap.h"
#include "core/filter.h"

/* Enough for tens of thousands of tenant tables; when full the cache
 * empties itself, which costs a few pattern matches per table again. */
#define CACHE_MAX 65536u

/* Cached decisions, non-NULL so that NULL means "not cached". */
#define PASS ((void *)2)
#define DROP ((void *)1)

struct wc_route {
        const struct wc_filter_config *f;
        struct wc_tablemap *cache;
};

static bool any_schema(const struct wc_pattern_list *l, const char *schema)
{
        for (size_t i = 0; i < l->count; i++)
                if (wc_pattern_schema_match(l->items[i], schema))
                        return true;
        return false;
}

static bool any_table(const struct wc_pattern_list *l, const char *schema,
                      const char *table)
{
        for (size_t i = 0; i < l->count; i++)
                if (wc_pattern_table_match(l->items[i], schema, table))
                        return true;
        return false;
}

static bool decide(const struct wc_filter_config *f, const char *schema,
                   const char *table)
{
        if (f->schemas_include.count &&
            !any_schema(&f->schemas_include, schema))
                return false;
        if (any_schema(&f->schemas_exclude, schema))
                return false;
        if (f->tables_include.count &&
            !any_table(&f->tables_include, schema, table))
                return false;
        return !any_table(&f->tables_exclude, schema, table);
}

struct wc_route *wc_route_new(const struct wc_filter_config *f)
{
        struct wc_route *r = calloc(1, sizeof(*r));

        if (!r)
                return NULL;
        r->f = f;
        r->cache = wc_tablemap_new(CACHE_MAX, NULL);
        if (!r->cache) {
                free(r);
                return NULL;
        }
        return r;
}

void wc_route_free(struct wc_route *r)
{
        if (!r)
                return;
        wc_tablemap_free(r->cache);
        free(r);
}

bool wc_route_match(struct wc_route *r, const struct wc_change *c)
{
        void *cached;
        bool pass;

        if (c->op == WC_OP_BEGIN || c->op == WC_OP_COMMIT)
                return true;
        if (!(r->f->ops & WC_OP_BIT(c->op)))
                return false;
        if (c->op == WC_OP_MESSAGE)
                return true;

        cached = wc_tablemap_get(r->cache, c->schema, c->schema_len, c->table,
                                 c->table_len);
        if (cached)
                return cached == PASS;
        pass = decide(r->f, c->schema, c->table);
        /* failing to cache only costs speed */
        (void)wc_tablemap_put(r->cache, c->schema, c->schema_len, c->table,
                              c->table_len, pass ? PASS : DROP);
        return pass;
}
