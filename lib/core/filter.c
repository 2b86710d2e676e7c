/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/filter.h"
#include "core/pattern.h"
#include "core/tablemap.h"

/* Enough for tens of thousands of tenant tables; when full the cache
 * empties itself, which costs a few pattern matches per table again. */
#define CACHE_MAX 65536u

/* Cached decisions, non-NULL so that NULL means "not cached". */
#define PASS ((void *)2)
#define DROP ((void *)1)

struct wc_filter {
        const struct wc_filter_config *f;
        struct wc_tablemap *cache;
};

void wc_filter_config_free(struct wc_filter_config *f)
{
        wc_pattern_list_free(&f->schemas_include);
        wc_pattern_list_free(&f->schemas_exclude);
        wc_pattern_list_free(&f->tables_include);
        wc_pattern_list_free(&f->tables_exclude);
}

bool wc_filter_table_pass(const struct wc_filter_config *f, const char *schema,
                          const char *table)
{
        if (f->schemas_include.count &&
            !wc_pattern_list_schema_match(&f->schemas_include, schema))
                return false;
        if (wc_pattern_list_schema_match(&f->schemas_exclude, schema))
                return false;
        if (f->tables_include.count &&
            !wc_pattern_list_table_match(&f->tables_include, schema, table))
                return false;
        return !wc_pattern_list_table_match(&f->tables_exclude, schema, table);
}

int wc_filter_ops_parse(const char *list, unsigned *ret_ops)
{
        unsigned ops = 0;
        const char *p = list;

        while (*p) {
                size_t len = strcspn(p, ",");
                bool found = false;

                for (int op = 0; op < WC_OP__COUNT && !found; op++) {
                        const char *name = wc_op_name((enum wc_op)op);

                        /* begin and commit are no ops a filter selects */
                        if (!(WC_OP_BIT(op) & WC_OPS_DATA) ||
                            strlen(name) != len || memcmp(name, p, len) != 0)
                                continue;
                        ops |= WC_OP_BIT(op);
                        found = true;
                }
                if (!found)
                        return -EINVAL;
                p += len;
                if (*p == ',')
                        p++;
        }
        *ret_ops = ops;
        return 0;
}

struct wc_filter *wc_filter_new(const struct wc_filter_config *f)
{
        struct wc_filter *r = calloc(1, sizeof(*r));

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

void wc_filter_free(struct wc_filter *r)
{
        if (!r)
                return;
        wc_tablemap_free(r->cache);
        free(r);
}

bool wc_filter_match(struct wc_filter *r, const struct wc_change *c)
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
        pass = wc_filter_table_pass(r->f, c->schema, c->table);
        /* failing to cache only costs speed */
        (void)wc_tablemap_put(r->cache, c->schema, c->schema_len, c->table,
                              c->table_len, pass ? PASS : DROP);
        return pass;
}
