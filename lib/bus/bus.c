/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "core/filter.h"
#include "core/pattern.h"
#include "core/tablemap.h"

#define KINDS WALCAST_SIG__COUNT
/* Handler lists for this many tables stay cached. */
#define CACHE_MAX 65536u

struct handler {
        uint32_t kind;
        char *sender; /* NULL: any */
        char *table;  /* NULL: any */
        walcast_handler_fn fn;
        void *userdata;
        void *owner;
        const struct wc_filter_config *owner_filter;
};

/* Which handlers want which signal for one schema.table. */
struct table_route {
        uint32_t count[KINDS];
        struct handler **list[KINDS];
        struct handler *storage[]; /* list[k] point into it */
};

/* One key column of a pending bulk_delete, as offsets into the arena. */
struct key_column {
        size_t name, type, value;
        uint32_t name_len, type_len, value_len, type_oid;
};

struct bulk {
        bool active;
        struct wc_buf schema, table;
        const struct walcast_txn *txn;
        uint64_t txn_id;
        wc_lsn first_lsn;
        struct wc_buf arena;
        struct key_column *cols;
        size_t ncols, capcols;
        uint32_t *key_ncols; /* columns per key */
        size_t nkeys, capkeys;
        /* built at flush */
        struct walcast_column *out_cols;
        struct walcast_columns *out_keys;
        size_t cap_out_cols, cap_out_keys;
};

struct wc_bus {
        /* an update's new row completed from its old row */
        struct walcast_column *merged;
        /* the columns of merged that came from the old row */
        struct walcast_column *completed;
        size_t capmerged;
        struct handler **handlers;
        size_t nhandlers, caphandlers;
        struct wc_tablemap *routes;
        uint32_t bulk_batch;
        struct bulk bulk;
        /* while set, the handlers of owners it names are passed over */
        bool (*skipped)(const void *owner);
};

struct wc_bus *wc_bus_new(uint32_t bulk_batch)
{
        struct wc_bus *b = calloc(1, sizeof(*b));

        if (!b)
                return NULL;
        b->routes = wc_tablemap_new(CACHE_MAX, free);
        if (!b->routes) {
                free(b);
                return NULL;
        }
        b->bulk_batch = bulk_batch ? bulk_batch : 1;
        wc_buf_init(&b->bulk.schema);
        wc_buf_init(&b->bulk.table);
        wc_buf_init(&b->bulk.arena);
        return b;
}

void wc_bus_free(struct wc_bus *b)
{
        if (!b)
                return;
        for (size_t i = 0; i < b->nhandlers; i++) {
                free(b->handlers[i]->sender);
                free(b->handlers[i]->table);
                free(b->handlers[i]);
        }
        free(b->handlers);
        wc_tablemap_free(b->routes);
        wc_buf_free(&b->bulk.schema);
        wc_buf_free(&b->bulk.table);
        wc_buf_free(&b->bulk.arena);
        free(b->bulk.cols);
        free(b->bulk.key_ncols);
        free(b->bulk.out_cols);
        free(b->bulk.out_keys);
        free(b->merged);
        free(b->completed);
        free(b);
}

int wc_bus_connect(struct wc_bus *b, uint32_t kind, const char *sender,
                   const char *table, walcast_handler_fn fn, void *userdata,
                   void *owner, const struct wc_filter_config *owner_filter)
{
        struct handler *h;

        if (kind >= KINDS || !fn)
                return -EINVAL;
        if (b->nhandlers == b->caphandlers) {
                size_t cap = b->caphandlers ? b->caphandlers * 2 : 16;
                struct handler **p = realloc(b->handlers, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                b->handlers = p;
                b->caphandlers = cap;
        }
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->kind = kind;
        h->fn = fn;
        h->userdata = userdata;
        h->owner = owner;
        h->owner_filter = owner_filter;
        if (sender && strcmp(sender, "*") != 0 && !(h->sender = strdup(sender)))
                goto err_free;
        if (table && strcmp(table, "*") != 0 && !(h->table = strdup(table)))
                goto err_free;
        b->handlers[b->nhandlers++] = h;
        /* cached routes do not know the new handler */
        wc_tablemap_clear(b->routes);
        return 0;

err_free:
        free(h->sender);
        free(h);
        return -ENOMEM;
}

void wc_bus_disconnect_owner(struct wc_bus *b, void *owner)
{
        size_t j = 0;

        for (size_t i = 0; i < b->nhandlers; i++) {
                struct handler *h = b->handlers[i];
                if (h->owner != owner) {
                        b->handlers[j++] = h;
                        continue;
                }
                free(h->sender);
                free(h->table);
                free(h);
        }
        b->nhandlers = j;
        wc_tablemap_clear(b->routes);
}

int wc_bus_owner_has(const struct wc_bus *b, void *owner, uint32_t kind)
{
        for (size_t i = 0; i < b->nhandlers; i++)
                if (b->handlers[i]->owner == owner &&
                    b->handlers[i]->kind == kind)
                        return 1;
        return 0;
}

static bool wants(const struct handler *h, const char *schema,
                  const char *table)
{
        if (h->owner_filter &&
            !wc_filter_table_pass(h->owner_filter, schema, table))
                return false;
        if (h->sender && !wc_pattern_schema_match(h->sender, schema))
                return false;
        return !h->table || wc_pattern_table_match(h->table, schema, table);
}

static struct table_route *build_route(struct wc_bus *b, const char *schema,
                                       const char *table)
{
        uint32_t count[KINDS] = {0};
        size_t total = 0;
        struct table_route *rt;
        struct handler **p;

        for (size_t i = 0; i < b->nhandlers; i++) {
                const struct handler *h = b->handlers[i];
                if (h->kind == WALCAST_SIG_BEGIN ||
                    h->kind == WALCAST_SIG_COMMIT ||
                    h->kind == WALCAST_SIG_MESSAGE)
                        continue;
                if (wants(h, schema, table)) {
                        count[h->kind]++;
                        total++;
                }
        }
        rt = calloc(1, sizeof(*rt) + total * sizeof(rt->storage[0]));
        if (!rt)
                return NULL;
        p = rt->storage;
        for (uint32_t k = 0; k < KINDS; k++) {
                rt->list[k] = p;
                p += count[k];
        }
        for (size_t i = 0; i < b->nhandlers; i++) {
                struct handler *h = b->handlers[i];
                if (count[h->kind] && rt->count[h->kind] < count[h->kind] &&
                    h->kind != WALCAST_SIG_BEGIN &&
                    h->kind != WALCAST_SIG_COMMIT &&
                    h->kind != WALCAST_SIG_MESSAGE && wants(h, schema, table))
                        rt->list[h->kind][rt->count[h->kind]++] = h;
        }
        return rt;
}

/* The cached route of schema.table, built on first sight. */
static const struct table_route *route_of(struct wc_bus *b, const char *schema,
                                          size_t slen, const char *table,
                                          size_t tlen)
{
        struct table_route *rt;

        rt = wc_tablemap_get(b->routes, schema, slen, table, tlen);
        if (rt)
                return rt;
        rt = build_route(b, schema, table);
        if (!rt)
                return NULL;
        if (wc_tablemap_put(b->routes, schema, slen, table, tlen, rt) < 0)
                return NULL; /* freed by the map */
        return rt;
}

static void set_error(struct wc_bus_error *e, const struct handler *h,
                      const struct walcast_signal *sig)
{
        if (!e)
                return;
        e->owner = h->owner;
        e->kind = sig->kind;
        e->lsn = sig->lsn;
        snprintf(e->schema, sizeof(e->schema), "%s",
                 sig->schema ? sig->schema : "");
        snprintf(e->table, sizeof(e->table), "%s",
                 sig->table ? sig->table : "");
}

static int call_all(const struct wc_bus *b, struct handler *const *list,
                    uint32_t n, const struct walcast_signal *sig,
                    struct wc_bus_error *ret_err)
{
        for (uint32_t i = 0; i < n; i++) {
                if (b->skipped && b->skipped(list[i]->owner))
                        continue;
                if (list[i]->fn(list[i]->userdata, sig) != WALCAST_OK) {
                        set_error(ret_err, list[i], sig);
                        return -ECANCELED;
                }
        }
        return 0;
}

/* begin, commit and message handlers: every one of the kind. */
static int call_kind(struct wc_bus *b, const struct walcast_signal *sig,
                     struct wc_bus_error *ret_err)
{
        for (size_t i = 0; i < b->nhandlers; i++) {
                struct handler *h = b->handlers[i];
                if (h->kind != sig->kind ||
                    (b->skipped && b->skipped(h->owner)))
                        continue;
                if (h->fn(h->userdata, sig) != WALCAST_OK) {
                        set_error(ret_err, h, sig);
                        return -ECANCELED;
                }
        }
        return 0;
}

static void fill_signal(struct walcast_signal *sig, uint32_t kind,
                        const struct wc_change *c,
                        const struct walcast_txn *txn)
{
        struct wc_str ns = {0}, tenant = {0};

        memset(sig, 0, sizeof(*sig));
        sig->size = sizeof(*sig);
        sig->kind = kind;
        sig->lsn = c->lsn;
        sig->txn = txn;
        if (c->schema) {
                wc_schema_split(c->schema, c->schema_len, &ns, &tenant);
                sig->schema = c->schema;
                sig->table = c->table;
                sig->ns = ns.ptr;
                sig->ns_len = (uint32_t)ns.len;
                sig->tenant = tenant.ptr;
                sig->tenant_len = (uint32_t)tenant.len;
        }
        if (c->op == WC_OP_READ)
                sig->snapshot = WALCAST_SNAPSHOT_ROW |
                                (c->snapshot_last ? WALCAST_SNAPSHOT_LAST : 0);
        sig->columns = c->columns;
        sig->identity = c->identity;
        sig->pk = c->pk;
        sig->missing = c->missing;
        sig->columns_json = c->columns_json.ptr;
        sig->columns_json_len = (uint32_t)c->columns_json.len;
        sig->identity_json = c->identity_json.ptr;
        sig->identity_json_len = (uint32_t)c->identity_json.len;
        sig->pk_json = c->pk_json.ptr;
        sig->pk_json_len = (uint32_t)c->pk_json.len;
        if (c->op == WC_OP_MESSAGE) {
                sig->transactional = c->transactional;
                sig->prefix = c->prefix;
                sig->content = c->content.ptr;
                sig->content_len = (uint32_t)c->content.len;
                sig->content_flags =
                    c->content_base64 ? WALCAST_CONTENT_BASE64 : 0;
        }
}

/* Is a column of c's name in l? */
static bool has_column(const struct walcast_columns *l,
                       const struct walcast_column *c)
{
        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == c->name_len &&
                    memcmp(l->items[i].name, c->name, c->name_len) == 0)
                        return true;
        return false;
}

/* ---- bulk_delete ---- */

static int bulk_start(struct bulk *k, const struct wc_change *c,
                      const struct walcast_txn *txn)
{
        int r;

        wc_buf_reset(&k->schema);
        wc_buf_reset(&k->table);
        wc_buf_reset(&k->arena);
        k->ncols = k->nkeys = 0;
        r = wc_buf_append(&k->schema, c->schema, c->schema_len);
        if (!r)
                r = wc_buf_append(&k->table, c->table, c->table_len);
        if (r < 0)
                return r;
        k->active = true;
        k->txn = txn;
        k->txn_id = txn ? txn->id : 0;
        k->first_lsn = c->lsn;
        return 0;
}

static bool bulk_same_run(const struct bulk *k, const struct wc_change *c,
                          const struct walcast_txn *txn)
{
        return k->active && c->op == WC_OP_DELETE && k->txn == txn &&
               (txn ? txn->id : 0) == k->txn_id &&
               k->schema.len == c->schema_len && k->table.len == c->table_len &&
               memcmp(k->schema.data, c->schema, c->schema_len) == 0 &&
               memcmp(k->table.data, c->table, c->table_len) == 0;
}

/* Appends s with its NUL to the arena; *ret_off is where it starts. */
static int arena_put(struct wc_buf *a, const char *s, size_t n, size_t *ret_off)
{
        size_t off = a->len;
        int r = wc_buf_append(a, s, n);

        if (r == 0)
                r = wc_buf_append_char(a, '\0');
        if (r == 0)
                *ret_off = off;
        return r;
}

static int bulk_add(struct bulk *k, const struct walcast_columns *identity,
                    const struct walcast_columns *pk)
{
        /* the primary key: under REPLICA IDENTITY FULL the identity is the
         * whole old row, of which only the key columns are kept; under
         * USING INDEX an index without every key column is all the WAL
         * holds, and is the key (never an empty one) */
        bool pk_only = pk->count > 0 && identity->count > pk->count;
        const struct walcast_columns *key = identity;
        int r = 0;

        for (uint32_t i = 0; i < pk->count && pk_only; i++)
                pk_only = has_column(identity, &pk->items[i]);

        if (k->nkeys == k->capkeys) {
                size_t cap = k->capkeys ? k->capkeys * 2 : 64;
                uint32_t *p = realloc(k->key_ncols, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                k->key_ncols = p;
                k->capkeys = cap;
        }
        if (k->ncols + key->count > k->capcols) {
                size_t cap = k->capcols ? k->capcols : 64;
                struct key_column *p;
                while (cap < k->ncols + key->count)
                        cap *= 2;
                p = realloc(k->cols, cap * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                k->cols = p;
                k->capcols = cap;
        }
        uint32_t n = 0;
        for (uint32_t i = 0; i < key->count && !r; i++) {
                const struct walcast_column *c = &key->items[i];
                struct key_column *kc = &k->cols[k->ncols + n];

                if (pk_only && !has_column(pk, c))
                        continue;
                n++;
                kc->name_len = c->name_len;
                kc->type_len = c->type_len;
                kc->value_len = c->value_len;
                kc->type_oid = c->type_oid;
                r = arena_put(&k->arena, c->name, c->name_len, &kc->name);
                if (!r)
                        r = arena_put(&k->arena, c->type, c->type_len,
                                      &kc->type);
                if (!r)
                        r = arena_put(&k->arena, c->value, c->value_len,
                                      &kc->value);
        }
        if (r < 0)
                return r;
        k->ncols += n;
        k->key_ncols[k->nkeys++] = n;
        return 0;
}

/* Builds the key arrays from the arena, now that it no longer moves. */
static int bulk_build(struct bulk *k)
{
        size_t col = 0;

        if (k->ncols > k->cap_out_cols) {
                struct walcast_column *p =
                    realloc(k->out_cols, k->ncols * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                k->out_cols = p;
                k->cap_out_cols = k->ncols;
        }
        if (k->nkeys > k->cap_out_keys) {
                struct walcast_columns *p =
                    realloc(k->out_keys, k->nkeys * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                k->out_keys = p;
                k->cap_out_keys = k->nkeys;
        }
        for (size_t i = 0; i < k->ncols; i++) {
                const struct key_column *kc = &k->cols[i];
                k->out_cols[i] = (struct walcast_column){
                    .name = k->arena.data + kc->name,
                    .name_len = kc->name_len,
                    .type_oid = kc->type_oid,
                    .type = k->arena.data + kc->type,
                    .type_len = kc->type_len,
                    .value_len = kc->value_len,
                    .value = k->arena.data + kc->value,
                };
        }
        for (size_t i = 0; i < k->nkeys; i++) {
                k->out_keys[i] = (struct walcast_columns){k->out_cols + col,
                                                          k->key_ncols[i]};
                col += k->key_ncols[i];
        }
        return 0;
}

/* Emits the pending run as one bulk_delete signal. */
static int bulk_flush(struct wc_bus *b, struct wc_bus_error *ret_err)
{
        struct bulk *k = &b->bulk;
        const struct table_route *rt;
        struct walcast_signal sig;
        struct wc_change c = {0};
        int r;

        if (!k->active)
                return 0;
        k->active = false;
        if (k->nkeys == 0)
                return 0;
        r = bulk_build(k);
        if (r < 0)
                return r;
        c.op = WC_OP_DELETE;
        c.lsn = k->first_lsn;
        c.schema = k->schema.data;
        c.schema_len = k->schema.len;
        c.table = k->table.data;
        c.table_len = k->table.len;
        rt = route_of(b, c.schema, c.schema_len, c.table, c.table_len);
        if (!rt)
                return -ENOMEM;
        fill_signal(&sig, WALCAST_SIG_BULK_DELETE, &c, k->txn);
        sig.keys = k->out_keys;
        sig.nkeys = (uint32_t)k->nkeys;
        k->nkeys = k->ncols = 0;
        return call_all(b, rt->list[WALCAST_SIG_BULK_DELETE],
                        rt->count[WALCAST_SIG_BULK_DELETE], &sig, ret_err);
}

void wc_bus_skip(struct wc_bus *b, bool (*skipped)(const void *owner))
{
        b->skipped = skipped;
}

void wc_bus_reset(struct wc_bus *b)
{
        b->bulk.active = false;
        b->bulk.nkeys = b->bulk.ncols = 0;
}

/*
 * wal2json leaves an unchanged TOASTed value out of an update's new row,
 * and writes the identity it sends (the key, the index's columns, or the
 * whole old row under REPLICA IDENTITY FULL) with the values of the key or
 * old row.  A column the identity carries and the new row lacks can only
 * be such a value, and its old value is its new value: it is filled in,
 * whatever the replica identity and the counts, and named in
 * sig->completed.  A column neither list has stays absent (never
 * invented).
 *
 * wal2json writes both lists in table (attnum) order, so the identity's
 * order places each completed column after the new-row columns that
 * precede it in the identity: under FULL, where the identity is the whole
 * row, that is the table's order exactly.  Under USING INDEX a completed
 * column goes right after the identity column before it (first when
 * there is none); where the table has columns outside the index between
 * the two, the WAL does not say which side of them it belongs on.
 */
static int complete_update(struct wc_bus *b, struct walcast_signal *sig)
{
        const struct walcast_columns *nc = &sig->columns, *id = &sig->identity;
        uint32_t n = 0, nd = 0, next = 0;
        bool any = false;

        for (uint32_t i = 0; i < id->count && !any; i++)
                any = !has_column(nc, &id->items[i]);
        if (!any)
                return 0;
        if (nc->count + id->count > b->capmerged) {
                size_t cap = nc->count + id->count;
                struct walcast_column *p = realloc(b->merged, cap * sizeof(*p));
                struct walcast_column *q;
                if (!p)
                        return -ENOMEM;
                b->merged = p;
                q = realloc(b->completed, cap * sizeof(*q));
                if (!q)
                        return -ENOMEM;
                b->completed = q;
                b->capmerged = cap;
        }
        for (uint32_t i = 0; i < id->count; i++) {
                const struct walcast_column *c = &id->items[i];
                uint32_t at = next;

                while (at < nc->count &&
                       !(nc->items[at].name_len == c->name_len &&
                         memcmp(nc->items[at].name, c->name, c->name_len) == 0))
                        at++;
                if (at < nc->count) {
                        /* in both: the new row up to it, in its order */
                        while (next <= at)
                                b->merged[n++] = nc->items[next++];
                } else if (!has_column(nc, c)) {
                        b->merged[n++] = *c;
                        b->completed[nd++] = *c;
                }
        }
        while (next < nc->count)
                b->merged[n++] = nc->items[next++];
        sig->columns = (struct walcast_columns){b->merged, n};
        sig->completed = (struct walcast_columns){b->completed, nd};
        /* the text sent is no longer the row handed on */
        sig->columns_json = NULL;
        sig->columns_json_len = 0;
        return 0;
}

static uint32_t kind_of(enum wc_op op)
{
        switch (op) {
        case WC_OP_INSERT:
                return WALCAST_SIG_INSERT;
        case WC_OP_UPDATE:
                return WALCAST_SIG_UPDATE;
        case WC_OP_DELETE:
                return WALCAST_SIG_DELETE;
        case WC_OP_TRUNCATE:
                return WALCAST_SIG_TRUNCATE;
        case WC_OP_MESSAGE:
                return WALCAST_SIG_MESSAGE;
        case WC_OP_READ:
                return WALCAST_SIG_READ;
        default:
                return KINDS;
        }
}

int wc_bus_dispatch(struct wc_bus *b, const struct wc_change *c,
                    const struct walcast_txn *txn, struct wc_bus_error *ret_err)
{
        uint32_t kind = kind_of(c->op);
        const struct table_route *rt;
        struct walcast_signal sig;
        int r;

        if (kind == KINDS)
                return -EINVAL;
        if (b->bulk.active && !bulk_same_run(&b->bulk, c, txn)) {
                r = bulk_flush(b, ret_err);
                if (r < 0)
                        return r;
        }
        fill_signal(&sig, kind, c, txn);
        if (kind == WALCAST_SIG_MESSAGE)
                return call_kind(b, &sig, ret_err);
        if (kind == WALCAST_SIG_UPDATE) {
                r = complete_update(b, &sig);
                if (r < 0)
                        return r;
        }

        rt = route_of(b, c->schema, c->schema_len, c->table, c->table_len);
        if (!rt)
                return -ENOMEM;
        r = call_all(b, rt->list[kind], rt->count[kind], &sig, ret_err);
        if (r < 0 || kind != WALCAST_SIG_DELETE ||
            rt->count[WALCAST_SIG_BULK_DELETE] == 0)
                return r;

        if (!b->bulk.active) {
                r = bulk_start(&b->bulk, c, txn);
                if (r < 0)
                        return r;
        }
        r = bulk_add(&b->bulk, &c->identity, &c->pk);
        if (r < 0)
                return r;
        /* a full batch goes out; the next delete starts another */
        if (b->bulk.nkeys >= b->bulk_batch)
                r = bulk_flush(b, ret_err);
        return r;
}

int wc_bus_table_signal(struct wc_bus *b, uint32_t kind,
                        const struct wc_change *c,
                        const struct walcast_txn *txn,
                        struct wc_bus_error *ret_err)
{
        const struct table_route *rt;
        struct walcast_signal sig;
        int r;

        if (kind >= KINDS || !c->schema)
                return -EINVAL;
        if (b->bulk.active) {
                r = bulk_flush(b, ret_err);
                if (r < 0)
                        return r;
        }
        fill_signal(&sig, kind, c, txn);
        sig.columns = (struct walcast_columns){0};
        sig.pk = (struct walcast_columns){0};
        sig.snapshot = 0;
        rt = route_of(b, c->schema, c->schema_len, c->table, c->table_len);
        if (!rt)
                return -ENOMEM;
        return call_all(b, rt->list[kind], rt->count[kind], &sig, ret_err);
}

int wc_bus_begin(struct wc_bus *b, const struct walcast_txn *txn,
                 struct wc_bus_error *ret_err)
{
        struct walcast_signal sig = {
            .size = sizeof(sig), .kind = WALCAST_SIG_BEGIN, .txn = txn};

        return call_kind(b, &sig, ret_err);
}

int wc_bus_commit(struct wc_bus *b, const struct walcast_txn *txn,
                  void (*result)(void *ud, void *owner, int32_t r), void *ud,
                  struct wc_bus_error *ret_err)
{
        struct walcast_signal sig = {.size = sizeof(sig),
                                     .kind = WALCAST_SIG_COMMIT,
                                     .lsn = txn->commit_lsn,
                                     .txn = txn};
        int r = bulk_flush(b, ret_err);

        if (r < 0)
                return r;
        for (size_t i = 0; i < b->nhandlers; i++) {
                struct handler *h = b->handlers[i];
                int32_t hr;
                if (h->kind != WALCAST_SIG_COMMIT ||
                    (b->skipped && b->skipped(h->owner)))
                        continue;
                hr = h->fn(h->userdata, &sig);
                if (hr != WALCAST_OK && hr != WALCAST_PENDING) {
                        set_error(ret_err, h, &sig);
                        return -ECANCELED;
                }
                result(ud, h->owner, hr);
        }
        return 0;
}
