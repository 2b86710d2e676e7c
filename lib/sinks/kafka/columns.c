/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/kafka/columns.h"
#include "sinks/kafka/sha256.h"
#include "stream/catalog.h"

const struct wc_kafka_column_rule *
wc_kafka_rule_for(const struct wc_kafka_column_rule *rules, size_t n,
                  const char *schema, const char *table)
{
        for (size_t i = 0; i < n; i++)
                if (wc_pattern_list_table_match(&rules[i].tables, schema,
                                                table))
                        return &rules[i];
        return NULL;
}

/* A column name against a list of names or globs. */
static bool listed(const struct wc_pattern_list *l, const char *name,
                   size_t len)
{
        for (size_t i = 0; i < l->count; i++) {
                const char *p = l->items[i];

                if (strlen(p) == len && memcmp(p, name, len) == 0)
                        return true;
                if (wc_pattern_has_glob(p) && name[len] == '\0' &&
                    fnmatch(p, name, 0) == 0)
                        return true;
        }
        return false;
}

static int room(struct wc_kafka_rule_out *o, size_t n)
{
        if (n <= o->cap)
                return 0;
        void *p = realloc(o->items, n * sizeof(*o->items));

        if (!p)
                return -ENOMEM;
        o->items = p;
        o->cap = n;
        return 0;
}

/* The value's text: a string's content (unescaped), else the token. */
static void digest(const char *salt, const char *v, size_t n, char out[66])
{
        struct wc_sha256 c;
        char stack[256], *tmp = NULL;

        wc_sha256_init(&c);
        if (salt)
                wc_sha256_update(&c, salt, strlen(salt));
        if (n >= 2 && v[0] == '"') {
                size_t len;

                tmp = n <= sizeof(stack) ? stack : malloc(n);
                if (tmp) {
                        memcpy(tmp, v + 1, n - 1);
                        if (wc_json_unescape_inplace(tmp, n - 2, &len) == 0)
                                wc_sha256_update(&c, tmp, len);
                        else
                                wc_sha256_update(&c, v + 1, n - 2);
                } else {
                        wc_sha256_update(&c, v + 1, n - 2);
                }
                if (tmp && tmp != stack)
                        free(tmp);
        } else {
                wc_sha256_update(&c, v, n);
        }
        out[0] = '"';
        wc_sha256_hex(&c, out + 1);
        out[65] = '"';
}

int wc_kafka_rule_apply(const struct wc_kafka_column_rule *r, const char *salt,
                        const struct walcast_columns *in,
                        struct wc_kafka_rule_out *o,
                        struct walcast_columns *ret)
{
        uint32_t k = 0;
        size_t nmask = 0;

        if (room(o, in->count ? in->count : 1) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < in->count; i++)
                if (listed(&r->mask, in->items[i].name, in->items[i].name_len))
                        nmask++;
        /* reserved at once: the values point into it */
        wc_buf_reset(&o->masked);
        if (wc_buf_reserve(&o->masked, nmask * 66 + 1) < 0)
                return -ENOMEM;
        for (uint32_t i = 0; i < in->count; i++) {
                const struct walcast_column *c = &in->items[i];

                if (listed(&r->exclude, c->name, c->name_len))
                        continue;
                o->items[k] = *c;
                if (listed(&r->mask, c->name, c->name_len)) {
                        struct walcast_column *m = &o->items[k];

                        m->type = "text";
                        m->type_len = 4;
                        m->type_oid = 25;
                        if (c->value && c->value_len &&
                            !(c->value_len == 4 &&
                              memcmp(c->value, "null", 4) == 0)) {
                                char *d = o->masked.data + o->masked.len;

                                digest(salt, c->value, c->value_len, d);
                                o->masked.len += 66;
                                m->value = d;
                                m->value_len = 66;
                        }
                }
                k++;
        }
        *ret = (struct walcast_columns){o->items, k};
        return 0;
}

int wc_kafka_rule_key(const struct wc_kafka_column_rule *r,
                      struct wc_kafka_rule_out *o, struct walcast_columns *ret)
{
        if (r->key_columns.count == 0)
                return 0;
        if (room(o, r->key_columns.count) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < r->key_columns.count; i++)
                o->items[i] = (struct walcast_column){
                    .name = r->key_columns.items[i],
                    .name_len = (uint32_t)strlen(r->key_columns.items[i]),
                    .type = "",
                };
        *ret =
            (struct walcast_columns){o->items, (uint32_t)r->key_columns.count};
        return 0;
}

const char *wc_kafka_rule_excluded_key(const struct wc_kafka_column_rule *r,
                                       const struct walcast_columns *pk)
{
        for (uint32_t i = 0; pk && i < pk->count; i++)
                if (listed(&r->exclude, pk->items[i].name,
                           pk->items[i].name_len))
                        return pk->items[i].name;
        return NULL;
}

static int copy_list(const struct wc_pattern_list *from,
                     struct wc_pattern_list *to)
{
        to->items = calloc(from->count ? from->count : 1, sizeof(char *));
        if (!to->items)
                return -ENOMEM;
        for (size_t i = 0; i < from->count; i++) {
                to->items[i] = strdup(from->items[i]);
                if (!to->items[i])
                        return -ENOMEM;
                to->count = i + 1;
        }
        return 0;
}

int wc_kafka_column_rules_copy(const struct wc_kafka_column_rule *rules,
                               size_t n, struct wc_kafka_column_rule **ret)
{
        struct wc_kafka_column_rule *c = calloc(n ? n : 1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (copy_list(&rules[i].tables, &c[i].tables) < 0 ||
                    copy_list(&rules[i].exclude, &c[i].exclude) < 0 ||
                    copy_list(&rules[i].mask, &c[i].mask) < 0 ||
                    copy_list(&rules[i].key_columns, &c[i].key_columns) < 0) {
                        for (size_t j = 0; j <= i; j++)
                                wc_kafka_column_rule_free(&c[j]);
                        free(c);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

void wc_kafka_rule_out_free(struct wc_kafka_rule_out *o)
{
        free(o->items);
        o->items = NULL;
        o->cap = 0;
        wc_buf_free(&o->masked);
}

void wc_kafka_column_rule_free(struct wc_kafka_column_rule *r)
{
        wc_pattern_list_free(&r->tables);
        wc_pattern_list_free(&r->exclude);
        wc_pattern_list_free(&r->mask);
        wc_pattern_list_free(&r->key_columns);
}

/* s as a quoted SQL identifier, cut to fit (names in messages). */
static const char *quoted(char *out, size_t outlen, const char *s)
{
        size_t o = 0;

        out[o++] = '"';
        for (; *s && o + 3 < outlen; s++) {
                if (*s == '"')
                        out[o++] = '"';
                out[o++] = (unsigned char)*s < 0x20 ? '?' : *s;
        }
        out[o++] = '"';
        out[o] = '\0';
        return out;
}

static const struct wc_catalog_column *
column_named(const struct wc_catalog_table *tb, const char *name)
{
        for (size_t i = 0; i < tb->ncols; i++)
                if (strcmp(tb->cols[i].name, name) == 0)
                        return &tb->cols[i];
        return NULL;
}

/* The patterns of l joined for a message: "a", "b". */
static void joined(char *out, size_t outlen, const struct wc_pattern_list *l)
{
        size_t o = 0;

        out[0] = '\0';
        for (size_t i = 0; i < l->count && o + 1 < outlen; i++)
                o += (size_t)snprintf(out + o, outlen - o, "%s\"%s\"",
                                      i ? ", " : "", l->items[i]);
}

int wc_kafka_rules_check(const struct wc_kafka_column_rule *rules, size_t n,
                         const struct wc_catalog_tables *t, const char *sink,
                         void (*warn)(int level, const char *msg), char *errbuf,
                         size_t errlen)
{
        char sq[160], tq[160], pats[256], msg[768];
        bool *used = calloc(n ? n : 1, sizeof(bool));

        if (!used) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < t->ntables; i++) {
                const struct wc_catalog_table *tb = &t->tables[i];
                const struct wc_kafka_column_rule *r =
                    wc_kafka_rule_for(rules, n, tb->schema, tb->table);

                if (!r)
                        continue;
                used[r - rules] = true;
                quoted(sq, sizeof(sq), tb->schema);
                quoted(tq, sizeof(tq), tb->table);
                joined(pats, sizeof(pats), &r->tables);
                for (size_t k = 0; k < r->key_columns.count; k++) {
                        const char *c = r->key_columns.items[k];

                        if (!column_named(tb, c)) {
                                wc_errorf(errbuf, errlen,
                                          "sink \"%s\": table %s.%s has no "
                                          "column \"%s\", which the column "
                                          "rule for tables %s names in "
                                          "key_columns; correct key_columns "
                                          "or the rule's tables",
                                          sink, sq, tq, c, pats);
                                free(used);
                                return -EINVAL;
                        }
                        if (listed(&r->exclude, c, strlen(c))) {
                                wc_errorf(errbuf, errlen,
                                          "sink \"%s\": the column rule for "
                                          "tables %s excludes column \"%s\" "
                                          "of table %s.%s, which its "
                                          "key_columns name to key the "
                                          "messages; leave the column in",
                                          sink, pats, c, sq, tq);
                                free(used);
                                return -EINVAL;
                        }
                }
                if (r->key_columns.count)
                        continue;
                for (size_t k = 0; k < tb->ncols; k++) {
                        const struct wc_catalog_column *c = &tb->cols[k];

                        if (!c->pk ||
                            !listed(&r->exclude, c->name, strlen(c->name)))
                                continue;
                        wc_errorf(errbuf, errlen,
                                  "sink \"%s\": the column rule for tables %s "
                                  "excludes column \"%s\" of table %s.%s, "
                                  "part of its primary key, which keys the "
                                  "messages; leave the column in, or name "
                                  "key_columns",
                                  sink, pats, c->name, sq, tq);
                        free(used);
                        return -EINVAL;
                }
        }
        for (size_t i = 0; i < n && warn; i++) {
                if (used[i])
                        continue;
                joined(pats, sizeof(pats), &rules[i].tables);
                snprintf(msg, sizeof(msg),
                         "sink \"%s\": the column rule for tables %s matches "
                         "no table the sink takes now; it applies to such "
                         "tables when they are created",
                         sink, pats);
                warn(4, msg);
        }
        free(used);
        return 0;
}
