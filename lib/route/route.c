/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/pattern.h"
#include "core/tablemap.h"
#include "route/route.h"

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

/* Names wal2json's table lists take without escaping. */
static bool plain_name(const char *s, size_t len)
{
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (strchr(".,'\\* \t?[", s[i]))
                        return false;
        return true;
}

static int list_add(struct wc_buf *b, const char *schema, size_t slen,
                    const char *table, size_t tlen)
{
        int r = 0;

        if (b->len)
                r = wc_buf_append_char(b, ',');
        if (!r)
                r = wc_buf_append(b, schema, slen);
        if (!r)
                r = wc_buf_append_char(b, '.');
        if (!r)
                r = wc_buf_append(b, table, tlen);
        return r;
}

/* A component wal2json's table lists take as it is: a plain name, or "*"
 * for any. */
static bool list_component(const char *s, size_t len)
{
        return (len == 1 && s[0] == '*') || plain_name(s, len);
}

/* A "schema.table" pattern wal2json can take, split; false otherwise. */
static bool literal_table(const char *p, size_t *ret_slen)
{
        const char *dot = strchr(p, '.');

        if (!dot || !list_component(p, (size_t)(dot - p)) ||
            !list_component(dot + 1, strlen(dot + 1)))
                return false;
        *ret_slen = (size_t)(dot - p);
        return true;
}

int wc_route_pushdown(const struct wc_filter_config *f, struct wc_buf *actions,
                      struct wc_buf *add_tables, struct wc_buf *filter_tables)
{
        static const enum wc_op data_ops[] = {WC_OP_INSERT, WC_OP_UPDATE,
                                              WC_OP_DELETE, WC_OP_TRUNCATE};
        unsigned want = 0, all = 0;
        size_t slen;
        int r = 0;

        wc_buf_reset(actions);
        wc_buf_reset(add_tables);
        wc_buf_reset(filter_tables);

        for (size_t i = 0; i < 4; i++) {
                all |= WC_OP_BIT(data_ops[i]);
                want |= f->ops & WC_OP_BIT(data_ops[i]);
        }
        if (want && want != all) {
                for (size_t i = 0; i < 4 && !r; i++) {
                        if (!(want & WC_OP_BIT(data_ops[i])))
                                continue;
                        if (actions->len)
                                r = wc_buf_append_char(actions, ',');
                        if (!r)
                                r = wc_buf_append_str(actions,
                                                      wc_op_name(data_ops[i]));
                }
        }

        /* add-tables closes the set of tables: only when every include is
         * a literal schema.table. */
        for (size_t i = 0; i < f->tables_include.count && !r; i++) {
                const char *p = f->tables_include.items[i];
                if (!literal_table(p, &slen)) {
                        wc_buf_reset(add_tables);
                        break;
                }
                r = list_add(add_tables, p, slen, p + slen + 1,
                             strlen(p + slen + 1));
        }

        for (size_t i = 0; i < f->tables_exclude.count && !r; i++) {
                const char *p = f->tables_exclude.items[i];
                if (literal_table(p, &slen))
                        r = list_add(filter_tables, p, slen, p + slen + 1,
                                     strlen(p + slen + 1));
                else if (!strchr(p, '.') && plain_name(p, strlen(p)))
                        r = list_add(filter_tables, "*", 1, p, strlen(p));
        }
        for (size_t i = 0; i < f->schemas_exclude.count && !r; i++) {
                const char *p = f->schemas_exclude.items[i];
                if (plain_name(p, strlen(p)))
                        r = list_add(filter_tables, p, strlen(p), "*", 1);
        }
        return r;
}

int wc_route_pushdown_same(const struct wc_filter_config *a,
                           const struct wc_filter_config *b)
{
        struct wc_buf x[3], y[3];
        int r;

        for (size_t i = 0; i < 3; i++) {
                wc_buf_init(&x[i]);
                wc_buf_init(&y[i]);
        }
        r = wc_route_pushdown(a, &x[0], &x[1], &x[2]);
        if (r == 0)
                r = wc_route_pushdown(b, &y[0], &y[1], &y[2]);
        for (size_t i = 0; i < 3 && r == 0; i++)
                if (x[i].len != y[i].len ||
                    (x[i].len && memcmp(x[i].data, y[i].data, x[i].len)))
                        r = -1;
        for (size_t i = 0; i < 3; i++) {
                wc_buf_free(&x[i]);
                wc_buf_free(&y[i]);
        }
        return r == 0 ? 1 : r == -1 ? 0 : r;
}
