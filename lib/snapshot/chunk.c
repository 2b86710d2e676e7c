/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "snapshot/chunk.h"

/* pg_type.h's OIDs of the types wal2json writes bare */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_OID     26
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_NUMERIC 1700

static bool is_number_type(uint32_t oid)
{
        switch (oid) {
        case OID_INT2:
        case OID_INT4:
        case OID_INT8:
        case OID_OID:
        case OID_FLOAT4:
        case OID_FLOAT8:
        case OID_NUMERIC:
                return true;
        default:
                return false;
        }
}

static bool starts_ci(const char *s, size_t len, const char *w)
{
        size_t n = strlen(w);

        return len >= n && strncasecmp(s, w, n) == 0;
}

int wc_snap_render_value(struct wc_buf *b, uint32_t type_oid, const char *text,
                         size_t len, bool isnull, bool numbers_as_strings)
{
        char *o;
        int r;

        if (isnull)
                return wc_buf_append(b, "null", 4);
        if (type_oid == OID_BOOL)
                return len == 1 && text[0] == 't'
                           ? wc_buf_append(b, "true", 4)
                           : wc_buf_append(b, "false", 5);
        if (is_number_type(type_oid) && !numbers_as_strings) {
                /* a digit or a minus sign and a digit: a number */
                if (len && ((text[0] >= '0' && text[0] <= '9') ||
                            (text[0] == '-' && len > 1 && text[1] >= '0' &&
                             text[1] <= '9')))
                        return wc_buf_append(b, text, len);
                if (starts_ci(text, len, "NaN") ||
                    starts_ci(text, len, "Infinity") ||
                    starts_ci(text, len, "-Infinity"))
                        return wc_buf_append(b, "null", 4);
                return wc_buf_append(b, text, len);
        }
        /* bytea: the hex digits after "\x" (bytea_output is pinned) */
        if (type_oid == OID_BYTEA && len >= 2) {
                text += 2;
                len -= 2;
        }
        r = wc_buf_reserve(b, WC_JSON_STRING_MAX(len));
        if (r < 0)
                return r;
        o = wc_json_put_string(b->data + b->len, text, len);
        b->len = (size_t)(o - b->data);
        return 0;
}

/* ---- a set of keys: the key columns' JSON values joined by NUL ---- */

struct keyset {
        struct wc_buf text; /* the keys, each followed by its NUL */
        size_t *slots;      /* offset + 1 into text, 0 empty */
        size_t cap, n;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
        uint64_t h = 1469598103934665603ull;

        for (size_t i = 0; i < n; i++) {
                h ^= (unsigned char)p[i];
                h *= 1099511628211ull;
        }
        return h;
}

static void keyset_free(struct keyset *s)
{
        wc_buf_free(&s->text);
        free(s->slots);
        *s = (struct keyset){0};
}

static void keyset_clear(struct keyset *s)
{
        wc_buf_reset(&s->text);
        if (s->slots)
                memset(s->slots, 0, s->cap * sizeof(*s->slots));
        s->n = 0;
}

/* Is key[0..len) in the set (the stored keys carry their length as the
 * run up to a separator of two NULs)? */
static size_t *keyset_slot(struct keyset *s, const char *key, size_t len)
{
        size_t i = (size_t)hash_bytes(key, len) & (s->cap - 1);

        for (;; i = (i + 1) & (s->cap - 1)) {
                size_t off;

                if (!s->slots[i])
                        return &s->slots[i];
                off = s->slots[i] - 1;
                if (memcmp(s->text.data + off, &len, sizeof(len)) == 0 &&
                    memcmp(s->text.data + off + sizeof(len), key, len) == 0)
                        return &s->slots[i];
        }
}

static bool keyset_has(struct keyset *s, const char *key, size_t len)
{
        return s->cap && *keyset_slot(s, key, len) != 0;
}

static int keyset_grow(struct keyset *s)
{
        size_t cap = s->cap ? s->cap * 2 : 64, *old = s->slots, ocap = s->cap;

        s->slots = calloc(cap, sizeof(*s->slots));
        if (!s->slots) {
                s->slots = old;
                return -ENOMEM;
        }
        s->cap = cap;
        for (size_t i = 0; i < ocap; i++) {
                size_t off, len;

                if (!old[i])
                        continue;
                off = old[i] - 1;
                memcpy(&len, s->text.data + off, sizeof(len));
                *keyset_slot(s, s->text.data + off + sizeof(len), len) = old[i];
        }
        free(old);
        return 0;
}

static int keyset_add(struct keyset *s, const char *key, size_t len)
{
        size_t *slot, off;
        int r;

        if ((s->n + 1) * 2 > s->cap) {
                r = keyset_grow(s);
                if (r < 0)
                        return r;
        }
        slot = keyset_slot(s, key, len);
        if (*slot)
                return 0;
        off = s->text.len;
        r = wc_buf_append(&s->text, &len, sizeof(len));
        if (r == 0)
                r = wc_buf_append(&s->text, key, len);
        if (r < 0) {
                s->text.len = off;
                return r;
        }
        *slot = off + 1;
        s->n++;
        return 0;
}

/* ---- the chunk ---- */

struct wc_snap_chunk {
        char *schema, *table;
        size_t schema_len, table_len;
        struct wc_snap_col *cols;
        uint32_t ncols;
        uint32_t *keys; /* key order -> column index */
        uint32_t nkeys;
        struct walcast_column *pk; /* the pk description, table order */
        uint32_t npk;

        struct wc_buf values; /* every row's rendered values */
        size_t *value_off;    /* per row and column: start in values */
        size_t *value_len;
        size_t nrows, caprows;
        struct walcast_column *row; /* the row handed out */
        /* the lists' canonical text (wc_change's columns_json, pk_json),
         * when no name or type needs an escape: each column's entry up
         * to its value, the key's list, the row handed out's list */
        bool plain;
        struct wc_buf canon;
        size_t *prefix_at, *prefix_len;
        struct wc_buf pk_json;
        struct wc_buf json;

        struct keyset seen; /* keys the stream touched */
        bool truncated;
        struct wc_buf scratch;
};

void wc_snap_chunk_free(struct wc_snap_chunk *k)
{
        if (!k)
                return;
        for (uint32_t i = 0; i < k->ncols; i++) {
                free(k->cols[i].name);
                free(k->cols[i].type);
        }
        free(k->cols);
        free(k->keys);
        free(k->pk);
        free(k->schema);
        free(k->table);
        wc_buf_free(&k->values);
        free(k->value_off);
        free(k->value_len);
        free(k->row);
        keyset_free(&k->seen);
        wc_buf_free(&k->scratch);
        wc_buf_free(&k->canon);
        free(k->prefix_at);
        free(k->prefix_len);
        wc_buf_free(&k->pk_json);
        wc_buf_free(&k->json);
        free(k);
}

/* The lists' canonical text, when every name and type allows it. */
static int chunk_canon(struct wc_snap_chunk *k)
{
        int r = 0;

        for (uint32_t i = 0; i < k->ncols; i++) {
                const struct walcast_column *c = &k->row[i];
                size_t at = k->canon.len;

                r = wc_json_append_column(&k->canon, c->name, c->name_len,
                                          c->type, c->type_len, c->type_oid,
                                          true);
                if (r == -EINVAL) {
                        wc_buf_reset(&k->canon);
                        return 0;
                }
                if (r < 0)
                        return r;
                k->prefix_at[i] = at;
                k->prefix_len[i] = k->canon.len - at;
        }
        r = wc_json_append_key_list(&k->pk_json, k->pk, k->npk);
        if (!r)
                k->plain = true;
        return r;
}

struct wc_snap_chunk *wc_snap_chunk_new(const char *schema, const char *table,
                                        const struct wc_snap_col *cols,
                                        uint32_t ncols, bool keyless,
                                        int *ret_err)
{
        struct wc_snap_chunk *k = calloc(1, sizeof(*k));
        uint32_t nkeys = 0;

        *ret_err = -ENOMEM;
        if (!k)
                return NULL;
        for (uint32_t i = 0; i < ncols; i++)
                if (cols[i].key_pos)
                        nkeys++;
        k->schema = strdup(schema);
        k->table = strdup(table);
        k->cols = calloc(ncols ? ncols : 1, sizeof(*k->cols));
        k->keys = calloc(nkeys ? nkeys : 1, sizeof(*k->keys));
        k->pk = calloc(nkeys ? nkeys : 1, sizeof(*k->pk));
        k->row = calloc(ncols ? ncols : 1, sizeof(*k->row));
        k->prefix_at = calloc(ncols ? ncols : 1, sizeof(*k->prefix_at));
        k->prefix_len = calloc(ncols ? ncols : 1, sizeof(*k->prefix_len));
        if (!k->schema || !k->table || !k->cols || !k->keys || !k->pk ||
            !k->row || !k->prefix_at || !k->prefix_len)
                goto fail;
        k->schema_len = strlen(k->schema);
        k->table_len = strlen(k->table);
        k->ncols = ncols;
        for (uint32_t i = 0; i < ncols; i++) {
                k->cols[i] = cols[i];
                k->cols[i].name = strdup(cols[i].name);
                k->cols[i].type = strdup(cols[i].type);
                if (!k->cols[i].name || !k->cols[i].type)
                        goto fail;
                if (cols[i].key_pos) {
                        if (cols[i].key_pos > nkeys ||
                            k->keys[cols[i].key_pos - 1]) {
                                *ret_err = -EINVAL;
                                goto fail;
                        }
                        /* stored + 1 until all are placed */
                        k->keys[cols[i].key_pos - 1] = i + 1;
                        k->pk[k->npk++] = (struct walcast_column){
                            .name = k->cols[i].name,
                            .name_len = (uint32_t)strlen(k->cols[i].name),
                            .type = k->cols[i].type,
                            .type_len = (uint32_t)strlen(k->cols[i].type),
                            .type_oid = k->cols[i].type_oid,
                        };
                }
                k->row[i] = (struct walcast_column){
                    .name = k->cols[i].name,
                    .name_len = (uint32_t)strlen(k->cols[i].name),
                    .type = k->cols[i].type,
                    .type_len = (uint32_t)strlen(k->cols[i].type),
                    .type_oid = k->cols[i].type_oid,
                };
        }
        if (nkeys == 0 && !keyless) {
                *ret_err = -EINVAL;
                goto fail;
        }
        for (uint32_t i = 0; i < nkeys; i++)
                k->keys[i]--;
        k->nkeys = nkeys;
        if (chunk_canon(k) < 0)
                goto fail;
        *ret_err = 0;
        return k;
fail:
        wc_snap_chunk_free(k);
        return NULL;
}

void wc_snap_chunk_clear(struct wc_snap_chunk *k)
{
        wc_buf_reset(&k->values);
        k->nrows = 0;
        keyset_clear(&k->seen);
        k->truncated = false;
}

void wc_snap_chunk_clear_rows(struct wc_snap_chunk *k)
{
        wc_buf_reset(&k->values);
        k->nrows = 0;
}

uint32_t wc_snap_chunk_nkeys(const struct wc_snap_chunk *k)
{
        return k->nkeys;
}

uint32_t wc_snap_chunk_key_col(const struct wc_snap_chunk *k, uint32_t i)
{
        return k->keys[i];
}

const struct wc_snap_col *wc_snap_chunk_cols(const struct wc_snap_chunk *k,
                                             uint32_t *ret_n)
{
        *ret_n = k->ncols;
        return k->cols;
}

int wc_snap_chunk_add_row(struct wc_snap_chunk *k, const char *const *texts,
                          const size_t *lens, const bool *nulls,
                          bool numbers_as_strings)
{
        size_t base;
        int r;

        if (k->nrows == k->caprows) {
                size_t cap = k->caprows ? k->caprows * 2 : 256;
                size_t *off =
                    realloc(k->value_off, cap * k->ncols * sizeof(*off));
                size_t *len;

                if (!off)
                        return -ENOMEM;
                k->value_off = off;
                len = realloc(k->value_len, cap * k->ncols * sizeof(*len));
                if (!len)
                        return -ENOMEM;
                k->value_len = len;
                k->caprows = cap;
        }
        base = k->nrows * k->ncols;
        for (uint32_t i = 0; i < k->ncols; i++) {
                size_t start = k->values.len;

                r = wc_snap_render_value(&k->values, k->cols[i].type_oid,
                                         texts[i], lens[i], nulls[i],
                                         numbers_as_strings);
                if (r < 0)
                        return r;
                k->value_off[base + i] = start;
                k->value_len[base + i] = k->values.len - start;
        }
        k->nrows++;
        return 0;
}

/* The key of row i into k->scratch. */
static int row_key(struct wc_snap_chunk *k, size_t i)
{
        int r = 0;

        wc_buf_reset(&k->scratch);
        for (uint32_t j = 0; j < k->nkeys && r == 0; j++) {
                size_t c = i * k->ncols + k->keys[j];

                r = wc_buf_append(&k->scratch, k->values.data + k->value_off[c],
                                  k->value_len[c]);
                if (r == 0)
                        r = wc_buf_append_char(&k->scratch, '\0');
        }
        return r;
}

/* The key of a streamed row into k->scratch: 1 when l lacks a key
 * column. */
static int list_key(struct wc_snap_chunk *k, const struct walcast_columns *l)
{
        int r = 0;

        wc_buf_reset(&k->scratch);
        for (uint32_t j = 0; j < k->nkeys && r == 0; j++) {
                const char *name = k->cols[k->keys[j]].name;
                const struct walcast_column *c = NULL;

                for (uint32_t i = 0; i < l->count && !c; i++)
                        if (strcmp(l->items[i].name, name) == 0)
                                c = &l->items[i];
                if (!c)
                        return 1;
                r = wc_buf_append(&k->scratch, c->value, c->value_len);
                if (r == 0)
                        r = wc_buf_append_char(&k->scratch, '\0');
        }
        return r;
}

static int see(struct wc_snap_chunk *k, const struct walcast_columns *l)
{
        int r = list_key(k, l);

        if (r == 1) /* no key in it: nothing can be matched, drop all */
                k->truncated = true;
        if (r != 0)
                return r < 0 ? r : 0;
        return keyset_add(&k->seen, k->scratch.data, k->scratch.len);
}

int wc_snap_chunk_observe(struct wc_snap_chunk *k, const struct wc_change *c)
{
        int r = 0;

        if (!c->schema || !c->table || c->schema_len != strlen(k->schema) ||
            c->table_len != strlen(k->table) ||
            memcmp(c->schema, k->schema, c->schema_len) != 0 ||
            memcmp(c->table, k->table, c->table_len) != 0)
                return 0;
        if (c->op != WC_OP_TRUNCATE && k->nkeys == 0)
                return 0; /* nothing to match a row by */
        switch (c->op) {
        case WC_OP_INSERT:
                return see(k, &c->columns);
        case WC_OP_UPDATE:
                r = see(k, &c->columns);
                if (r == 0 && c->identity.count)
                        r = see(k, &c->identity);
                return r;
        case WC_OP_DELETE:
                return see(k, &c->identity);
        case WC_OP_TRUNCATE:
                k->truncated = true;
                return 0;
        default:
                return 0;
        }
}

size_t wc_snap_chunk_rows(const struct wc_snap_chunk *k)
{
        return k->nrows;
}

static bool row_touched(struct wc_snap_chunk *k, size_t i)
{
        if (k->truncated)
                return true;
        if (!k->seen.n)
                return false;
        if (row_key(k, i) < 0)
                return true; /* cannot tell: the stream's change stands */
        return keyset_has(&k->seen, k->scratch.data, k->scratch.len);
}

size_t wc_snap_chunk_rows_left(const struct wc_snap_chunk *k)
{
        struct wc_snap_chunk *m = (struct wc_snap_chunk *)k;
        size_t n = 0;

        for (size_t i = 0; i < k->nrows; i++)
                n += !row_touched(m, i);
        return n;
}

/* The row's list in its canonical text, from the columns' entries; none
 * (the sinks format the list themselves) without room for it. */
static struct wc_str row_json(struct wc_snap_chunk *k)
{
        size_t need = 2;
        char *o;

        for (uint32_t j = 0; j < k->ncols; j++)
                need += k->prefix_len[j] + k->row[j].value_len + 2;
        wc_buf_reset(&k->json);
        if (wc_buf_reserve(&k->json, need) < 0)
                return (struct wc_str){NULL, 0};
        o = k->json.data;
        *o++ = '[';
        for (uint32_t j = 0; j < k->ncols; j++) {
                if (j)
                        *o++ = ',';
                memcpy(o, k->canon.data + k->prefix_at[j], k->prefix_len[j]);
                o += k->prefix_len[j];
                memcpy(o, k->row[j].value, k->row[j].value_len);
                o += k->row[j].value_len;
                *o++ = '}';
        }
        *o++ = ']';
        *o = '\0';
        k->json.len = (size_t)(o - k->json.data);
        return (struct wc_str){k->json.data, k->json.len};
}

int wc_snap_chunk_row(struct wc_snap_chunk *k, size_t i, struct wc_change *ret)
{
        if (row_touched(k, i))
                return 1;
        for (uint32_t j = 0; j < k->ncols; j++) {
                size_t c = i * k->ncols + j;

                k->row[j].value = k->values.data + k->value_off[c];
                k->row[j].value_len = (uint32_t)k->value_len[c];
        }
        *ret = (struct wc_change){
            .op = WC_OP_READ,
            .schema = k->schema,
            .schema_len = k->schema_len,
            .table = k->table,
            .table_len = k->table_len,
            .columns = {k->row, k->ncols},
            .pk = {k->pk, k->npk},
        };
        if (k->plain) {
                ret->columns_json = row_json(k);
                ret->pk_json = (struct wc_str){k->pk_json.data, k->pk_json.len};
        }
        return 0;
}

void wc_snap_chunk_table(const struct wc_snap_chunk *k, struct wc_change *ret)
{
        *ret = (struct wc_change){
            .op = WC_OP_READ,
            .schema = k->schema,
            .schema_len = k->schema_len,
            .table = k->table,
            .table_len = k->table_len,
            .pk = {k->pk, k->npk},
        };
}

/* ---- watermarks ---- */

int wc_snap_mark_format(struct wc_buf *b, const struct wc_snap_mark *m)
{
        return wc_buf_printf(
            b, "{\"id\":\"%016" PRIx64 "\",\"chunk\":%" PRIu64 ",\"w\":\"%s\"}",
            m->id, m->chunk, m->high ? "high" : "low");
}

int wc_snap_mark_parse(const char *text, size_t len, struct wc_snap_mark *ret)
{
        char buf[128], w[8];
        uint64_t id, chunk;
        int end = 0;

        if (len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, text, len);
        buf[len] = '\0';
        if (sscanf(buf,
                   "{\"id\":\"%16" SCNx64 "\",\"chunk\":%" SCNu64
                   ",\"w\":\"%4[a-z]\"}%n",
                   &id, &chunk, w, &end) != 3 ||
            (size_t)end != len)
                return -EINVAL;
        if (strcmp(w, "low") != 0 && strcmp(w, "high") != 0)
                return -EINVAL;
        *ret = (struct wc_snap_mark){
            .id = id, .chunk = chunk, .high = w[0] == 'h'};
        return 0;
}
