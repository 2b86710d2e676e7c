/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "filesink/filesink.h"

/* Appends a string literal known to need no escaping. */
#define LIT(b, s) wc_buf_append((b), (s), sizeof(s) - 1)

static int append_lsn(struct wc_buf *b, const char *key, size_t keylen,
                      wc_lsn lsn)
{
        char tmp[WC_LSN_STRLEN];
        int r = wc_buf_append(b, key, keylen);

        if (!r)
                r = wc_buf_append_char(b, '"');
        if (!r)
                r = wc_buf_append_str(b, wc_lsn_format(lsn, tmp));
        if (!r)
                r = wc_buf_append_char(b, '"');
        return r;
}

static int append_columns(struct wc_buf *b, const char *key, size_t keylen,
                          const struct walcast_columns *l, bool values)
{
        int r = wc_buf_append(b, key, keylen);

        for (size_t i = 0; i < l->count && !r; i++) {
                const struct walcast_column *col = &l->items[i];
                r = wc_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
                if (!r)
                        r = wc_json_append_string(b, col->name, col->name_len);
                if (!r)
                        r = LIT(b, ",\"type\":");
                if (!r)
                        r = wc_json_append_string(b, col->type, col->type_len);
                if (!r && col->type_oid) {
                        r = LIT(b, ",\"typeoid\":");
                        if (!r)
                                r = wc_buf_append_uint(b, col->type_oid);
                }
                if (!r && values) {
                        r = LIT(b, ",\"value\":");
                        if (!r)
                                r = wc_buf_append(b, col->value,
                                                  col->value_len);
                }
                if (!r)
                        r = wc_buf_append_char(b, '}');
        }
        if (!r)
                r = wc_buf_append_char(b, ']');
        return r;
}

static int append_txn(struct wc_buf *b, const struct wc_txn_view *t)
{
        int r = LIT(b, ",\"xid\":");

        if (!r)
                r = wc_buf_append_uint(b, t->xid);
        if (!r)
                r = append_lsn(b, ",\"commit_lsn\":", 14, t->commit_lsn);
        if (!r)
                r = append_lsn(b, ",\"end_lsn\":", 11, t->end_lsn);
        if (!r)
                r = LIT(b, ",\"commit_time\":\"");
        if (!r)
                r = wc_buf_append_str(b, t->commit_time);
        if (!r)
                r = wc_buf_append_char(b, '"');
        return r;
}

int wc_format_change(struct wc_buf *out, const struct wc_change *c,
                     const struct wc_txn_view *txn)
{
        const char *op = wc_op_name(c->op);
        size_t start = out->len;
        int r;

        if (c->op == WC_OP_BEGIN || c->op == WC_OP_COMMIT || !op)
                return -EINVAL;
        r = LIT(out, "{\"op\":\"");
        if (!r)
                r = wc_buf_append_str(out, op);
        if (!r)
                r = wc_buf_append_char(out, '"');
        if (!r && c->op != WC_OP_MESSAGE) {
                r = LIT(out, ",\"schema\":");
                if (!r)
                        r = wc_json_append_string(out, c->schema,
                                                  c->schema_len);
                if (!r)
                        r = LIT(out, ",\"table\":");
                if (!r)
                        r = wc_json_append_string(out, c->table, c->table_len);
        }
        if (!r)
                r = append_lsn(out, ",\"lsn\":", 7, c->lsn);
        if (!r && txn)
                r = append_txn(out, txn);
        if (!r && (c->op == WC_OP_INSERT || c->op == WC_OP_UPDATE))
                r = append_columns(out, ",\"columns\":[", 12, &c->columns,
                                   true);
        if (!r && (c->op == WC_OP_DELETE ||
                   (c->op == WC_OP_UPDATE && c->identity.count)))
                r = append_columns(out, ",\"identity\":[", 13, &c->identity,
                                   true);
        if (!r && c->op != WC_OP_TRUNCATE && c->op != WC_OP_MESSAGE)
                r = append_columns(out, ",\"pk\":[", 7, &c->pk, false);
        if (!r && c->op == WC_OP_MESSAGE) {
                r = wc_buf_append_str(out, c->transactional
                                               ? ",\"transactional\":true"
                                               : ",\"transactional\":false");
                if (!r)
                        r = LIT(out, ",\"prefix\":");
                if (!r)
                        r = wc_json_append_string(out, c->prefix,
                                                  c->prefix_len);
                if (!r)
                        r = LIT(out, ",\"content\":");
                if (!r)
                        r = wc_buf_append(out, c->content.ptr, c->content.len);
        }
        if (!r)
                r = wc_buf_append_str(out, "}\n");
        if (r)
                out->len = start;
        return r;
}
