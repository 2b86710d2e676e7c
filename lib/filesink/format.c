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

static int append_txn(struct wc_buf *b, const struct walcast_txn *t,
                      const char *commit_time)
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
                r = wc_buf_append_str(b, commit_time);
        if (!r)
                r = wc_buf_append_char(b, '"');
        return r;
}

static const char *op_name(uint32_t kind)
{
        switch (kind) {
        case WALCAST_SIG_INSERT:
                return "insert";
        case WALCAST_SIG_UPDATE:
                return "update";
        case WALCAST_SIG_DELETE:
                return "delete";
        case WALCAST_SIG_TRUNCATE:
                return "truncate";
        case WALCAST_SIG_MESSAGE:
                return "message";
        default:
                return NULL;
        }
}

int wc_format_signal(struct wc_buf *out, const struct walcast_signal *s,
                     const char *commit_time)
{
        const char *op = op_name(s->kind);
        size_t start = out->len;
        bool msg = s->kind == WALCAST_SIG_MESSAGE;
        int r;

        if (!op)
                return -EINVAL;
        r = LIT(out, "{\"op\":\"");
        if (!r)
                r = wc_buf_append_str(out, op);
        if (!r)
                r = wc_buf_append_char(out, '"');
        if (!r && !msg) {
                r = LIT(out, ",\"schema\":");
                if (!r)
                        r = wc_json_append_string(out, s->schema,
                                                  strlen(s->schema));
                if (!r)
                        r = LIT(out, ",\"table\":");
                if (!r)
                        r = wc_json_append_string(out, s->table,
                                                  strlen(s->table));
        }
        if (!r)
                r = append_lsn(out, ",\"lsn\":", 7, s->lsn);
        if (!r && s->txn)
                r = append_txn(out, s->txn, commit_time ? commit_time : "");
        if (!r &&
            (s->kind == WALCAST_SIG_INSERT || s->kind == WALCAST_SIG_UPDATE))
                r = append_columns(out, ",\"columns\":[", 12, &s->columns,
                                   true);
        if (!r && (s->kind == WALCAST_SIG_DELETE ||
                   (s->kind == WALCAST_SIG_UPDATE && s->identity.count)))
                r = append_columns(out, ",\"identity\":[", 13, &s->identity,
                                   true);
        if (!r && s->kind != WALCAST_SIG_TRUNCATE && !msg)
                r = append_columns(out, ",\"pk\":[", 7, &s->pk, false);
        if (!r && msg) {
                r = wc_buf_append_str(out, s->transactional
                                               ? ",\"transactional\":true"
                                               : ",\"transactional\":false");
                if (!r)
                        r = LIT(out, ",\"prefix\":");
                if (!r)
                        r = wc_json_append_string(out, s->prefix,
                                                  strlen(s->prefix));
                if (!r)
                        r = LIT(out, ",\"content\":");
                if (!r)
                        r = wc_buf_append(out, s->content, s->content_len);
        }
        if (!r)
                r = wc_buf_append_str(out, "}\n");
        if (r)
                out->len = start;
        return r;
}
