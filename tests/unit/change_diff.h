/* SPDX-License-Identifier: MIT */
/*
 * Compares two decodings of the same message, each pointing into its own
 * copy of it: the decoder's remembered column entries (a decoder that has
 * seen other messages) must give what a new decoder gives.  For the
 * decoder's unit test and its fuzz target.
 */
#ifndef WALCAST_TEST_CHANGE_DIFF_H
#define WALCAST_TEST_CHANGE_DIFF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decode/decoder.h"

/* The same string, or both absent. */
static inline int cd_same_str(const char *a, size_t alen, const char *b,
                              size_t blen)
{
        if (!a || !b)
                return !a && !b && alen == blen;
        return alen == blen && memcmp(a, b, alen) == 0 && a[alen] == '\0' &&
               b[blen] == '\0';
}

/* The same view into each message copy: same offset and length; or, in
 * the corrected copies a decoder makes of a message with wal2json's
 * unescaped type names, the same bytes. */
static inline int cd_same_view(const char *a, size_t alen, const char *abuf,
                               const char *b, size_t blen, const char *bbuf)
{
        if (!a || !b)
                return !a && !b && alen == blen;
        if ((uintptr_t)a - (uintptr_t)abuf == (uintptr_t)b - (uintptr_t)bbuf &&
            alen == blen)
                return 1;
        return alen == blen && memcmp(a, b, alen) == 0;
}

static inline int cd_same_cols(const struct walcast_columns *a,
                               const char *abuf,
                               const struct walcast_columns *b,
                               const char *bbuf)
{
        if (a->count != b->count)
                return 0;
        for (size_t i = 0; i < a->count; i++) {
                const struct walcast_column *x = &a->items[i];
                const struct walcast_column *y = &b->items[i];

                if (!cd_same_str(x->name, x->name_len, y->name, y->name_len) ||
                    !cd_same_str(x->type, x->type_len, y->type, y->type_len) ||
                    x->type_oid != y->type_oid ||
                    !cd_same_view(x->value, x->value_len, abuf, y->value,
                                  y->value_len, bbuf))
                        return 0;
        }
        return 1;
}

/* NULL when a (decoded from abuf) and b (from bbuf) are the same change,
 * else the name of the first field that differs. */
static inline const char *change_diff(const struct wc_change *a,
                                      const char *abuf,
                                      const struct wc_change *b,
                                      const char *bbuf)
{
        if (a->op != b->op)
                return "op";
        if (a->lsn != b->lsn || a->commit_lsn != b->commit_lsn ||
            a->end_lsn != b->end_lsn)
                return "positions";
        if (a->has_xid != b->has_xid || a->xid != b->xid)
                return "xid";
        if (a->has_time != b->has_time || a->time_us != b->time_us)
                return "time";
        if (!cd_same_str(a->schema, a->schema_len, b->schema, b->schema_len) ||
            !cd_same_str(a->table, a->table_len, b->table, b->table_len))
                return "relation";
        if (!cd_same_cols(&a->columns, abuf, &b->columns, bbuf))
                return "columns";
        if (!cd_same_cols(&a->identity, abuf, &b->identity, bbuf))
                return "identity";
        if (!cd_same_cols(&a->pk, abuf, &b->pk, bbuf))
                return "pk";
        if (a->transactional != b->transactional ||
            !cd_same_str(a->prefix, a->prefix_len, b->prefix, b->prefix_len) ||
            a->content_base64 != b->content_base64)
                return "message";
        /* base64 content is made by the decoder, not a view of the text */
        if (a->content_base64
                ? !cd_same_str(a->content.ptr, a->content.len, b->content.ptr,
                               b->content.len)
                : !cd_same_view(a->content.ptr, a->content.len, abuf,
                                b->content.ptr, b->content.len, bbuf))
                return "message content";
        if (!cd_same_view(a->columns_json.ptr, a->columns_json.len, abuf,
                          b->columns_json.ptr, b->columns_json.len, bbuf) ||
            !cd_same_view(a->identity_json.ptr, a->identity_json.len, abuf,
                          b->identity_json.ptr, b->identity_json.len, bbuf) ||
            !cd_same_view(a->pk_json.ptr, a->pk_json.len, abuf, b->pk_json.ptr,
                          b->pk_json.len, bbuf))
                return "lists' text";
        return NULL;
}

#endif
