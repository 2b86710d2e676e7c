/* SPDX-License-Identifier: MIT */
/*
 * What walcast asks wal2json for on START_REPLICATION: format-version 2
 * with everything a change needs, and the pushdown of the filter.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/filter.h"
#include "decode/wal2json.h"

const char *const wc_wal2json_base_options[] = {
    "format-version",
    "2",
    "include-transaction",
    "1",
    "include-xids",
    "1",
    "include-lsn",
    "1",
    "include-pk",
    "1",
    "include-timestamp",
    "1",
    "include-type-oids",
    "1",
    NULL,
};

/* Newer wal2json keeps NaN, Infinity and full precision this way; older
 * builds reject the option, and walcast then goes on without it. */
const char *const wc_wal2json_optional[] = {
    "numeric-data-types-as-string",
    "1",
    NULL,
};

const char *const wc_wal2json_optional_lost[] = {
    "NaN and Infinity in real, double precision and numeric columns "
    "arrive as null; upgrade wal2json (2.6 or later) to keep them",
};

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

int wc_wal2json_pushdown(const struct wc_filter_config *f,
                         struct wc_buf *actions, struct wc_buf *add_tables,
                         struct wc_buf *filter_tables)
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

int wc_wal2json_options(const struct wc_filter_config *f,
                        struct wc_decoder_options *ret)
{
        static const char *const names[] = {"actions", "add-tables",
                                            "filter-tables"};
        struct wc_buf lists[3];
        int r = 0;

        for (size_t i = 0; wc_wal2json_base_options[i] && !r; i += 2)
                r = wc_decoder_options_add(
                    ret, wc_wal2json_base_options[i],
                    wc_wal2json_base_options[i + 1],
                    strlen(wc_wal2json_base_options[i + 1]));
        if (r < 0 || !f)
                return r;
        for (size_t i = 0; i < 3; i++)
                wc_buf_init(&lists[i]);
        r = wc_wal2json_pushdown(f, &lists[0], &lists[1], &lists[2]);
        for (size_t i = 0; i < 3 && !r; i++)
                if (lists[i].len)
                        r = wc_decoder_options_add(ret, names[i], lists[i].data,
                                                   lists[i].len);
        for (size_t i = 0; i < 3; i++)
                wc_buf_free(&lists[i]);
        return r;
}
