/* SPDX-License-Identifier: MIT */
/*
 * The signal bus: sender and table filters, owner schemas, the fields of
 * each signal, handler order, bulk_delete coalescing, errors, commit
 * results and the per-table cache.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bus/bus.h"
#include "core/filter.h"
#include "config/config.h"

/* ---- what the handlers saw ---- */

struct call {
        const char *tag;
        uint32_t kind;
        uint32_t size;
        char *schema, *table, *ns, *tenant, *prefix, *content;
        uint32_t ns_len, tenant_len, content_len, transactional;
        uint64_t lsn;
        const struct walcast_txn *txn;
        uint64_t txn_id;
        char *columns, *identity, *pk, *keys;
        char *completed; /* ABI 1.3 */
        uint32_t nkeys;
        /* ABI 1.1: the lists' text as sent (borrowed: compared by
         * pointer) */
        const char *columns_json, *identity_json, *pk_json;
        uint32_t columns_json_len, identity_json_len, pk_json_len;
};

static struct call *calls;
static size_t ncalls, capcalls;

/* A handler's identity and what it answers. */
struct hd {
        const char *tag;
        int32_t ret;
};

static char *dup_n(const char *s, size_t n)
{
        char *d;

        if (!s)
                return NULL;
        d = malloc(n + 1);
        assert_non_null(d);
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

static char *dup_s(const char *s)
{
        return s ? dup_n(s, strlen(s)) : NULL;
}

/* "name:type:oid=value;" per column; names and types must be
 * NUL-terminated at their length. */
static void put_cols(struct wc_buf *b, const struct walcast_columns *cols)
{
        for (uint32_t i = 0; i < cols->count; i++) {
                const struct walcast_column *c = &cols->items[i];
                assert_int_equal(strlen(c->name), c->name_len);
                assert_int_equal(strlen(c->type), c->type_len);
                assert_int_equal(wc_buf_append(b, c->name, c->name_len), 0);
                assert_int_equal(wc_buf_append_char(b, ':'), 0);
                assert_int_equal(wc_buf_append(b, c->type, c->type_len), 0);
                assert_int_equal(wc_buf_printf(b, ":%u=", c->type_oid), 0);
                if (c->value_len)
                        assert_int_equal(
                            wc_buf_append(b, c->value, c->value_len), 0);
                assert_int_equal(wc_buf_append_char(b, ';'), 0);
        }
}

static char *cols_text(const struct walcast_columns *cols)
{
        struct wc_buf b;
        char *s;

        wc_buf_init(&b);
        assert_int_equal(wc_buf_append_str(&b, ""), 0);
        put_cols(&b, cols);
        s = dup_n(b.data, b.len);
        wc_buf_free(&b);
        return s;
}

static int32_t rec(void *userdata, const struct walcast_signal *s)
{
        const struct hd *h = userdata;
        struct call *c;

        if (ncalls == capcalls) {
                capcalls = capcalls ? capcalls * 2 : 256;
                calls = realloc(calls, capcalls * sizeof(*calls));
                assert_non_null(calls);
        }
        c = &calls[ncalls++];
        memset(c, 0, sizeof(*c));
        c->tag = h->tag;
        c->kind = s->kind;
        c->size = s->size;
        c->schema = dup_s(s->schema);
        c->table = dup_s(s->table);
        c->ns = dup_n(s->ns, s->ns_len);
        c->ns_len = s->ns_len;
        c->tenant = dup_n(s->tenant, s->tenant_len);
        c->tenant_len = s->tenant_len;
        c->lsn = s->lsn;
        c->txn = s->txn;
        c->txn_id = s->txn ? s->txn->id : 0;
        c->columns = cols_text(&s->columns);
        c->identity = cols_text(&s->identity);
        c->pk = cols_text(&s->pk);
        assert_true(WALCAST_HAS_FIELD(s, struct walcast_signal, completed));
        c->completed = cols_text(&s->completed);
        c->prefix = dup_s(s->prefix);
        c->content = dup_n(s->content, s->content_len);
        c->content_len = s->content_len;
        c->transactional = s->transactional;
        c->nkeys = s->nkeys;
        c->columns_json = s->columns_json;
        c->columns_json_len = s->columns_json_len;
        c->identity_json = s->identity_json;
        c->identity_json_len = s->identity_json_len;
        c->pk_json = s->pk_json;
        c->pk_json_len = s->pk_json_len;
        if (s->kind == WALCAST_SIG_BULK_DELETE) {
                struct wc_buf b;
                assert_non_null(s->keys);
                wc_buf_init(&b);
                assert_int_equal(wc_buf_append_str(&b, ""), 0);
                for (uint32_t i = 0; i < s->nkeys; i++) {
                        put_cols(&b, &s->keys[i]);
                        assert_int_equal(wc_buf_append_char(&b, '|'), 0);
                }
                c->keys = dup_n(b.data, b.len);
                wc_buf_free(&b);
        }
        return h->ret;
}

static void clear_calls(void)
{
        for (size_t i = 0; i < ncalls; i++) {
                struct call *c = &calls[i];
                free(c->schema);
                free(c->table);
                free(c->ns);
                free(c->tenant);
                free(c->prefix);
                free(c->content);
                free(c->columns);
                free(c->identity);
                free(c->pk);
                free(c->completed);
                free(c->keys);
        }
        ncalls = 0;
}

static int teardown(void **state)
{
        (void)state;
        clear_calls();
        free(calls);
        calls = NULL;
        capcalls = 0;
        return 0;
}

/* The handlers called since the last clear, as "tag tag ...", a bulk
 * signal as "tag/nkeys"; then clears. */
static char trace_buf[8192];

static const char *trace(void)
{
        size_t off = 0;

        trace_buf[0] = '\0';
        for (size_t i = 0; i < ncalls; i++) {
                int n;
                if (calls[i].kind == WALCAST_SIG_BULK_DELETE)
                        n = snprintf(trace_buf + off, sizeof(trace_buf) - off,
                                     "%s%s/%u", i ? " " : "", calls[i].tag,
                                     calls[i].nkeys);
                else
                        n = snprintf(trace_buf + off, sizeof(trace_buf) - off,
                                     "%s%s", i ? " " : "", calls[i].tag);
                assert_true(n > 0 && (size_t)n < sizeof(trace_buf) - off);
                off += (size_t)n;
        }
        clear_calls();
        return trace_buf;
}

/* ---- building changes ---- */

#define COL(n, t, oid, v)                                                      \
        {                                                                      \
                .name = n, .name_len = sizeof(n) - 1, .type = t,               \
                .type_len = sizeof(t) - 1, .type_oid = oid, .value = v,        \
                .value_len = sizeof(v) - 1                                     \
        }

static const struct walcast_column new_row[] = {
    COL("id", "bigint", 20, "42"),
    COL("title", "text", 25, "\"printer \\\"B\\\" jams\""),
    COL("closed", "boolean", 16, "null"),
};
static const struct walcast_column old_key[] = {COL("id", "bigint", 20, "41")};
static const struct walcast_column pk_desc[] = {COL("id", "bigint", 20, "")};
/* the composite primary key of the rows delete_row() builds */
static const struct walcast_column pk2_desc[] = {COL("id", "bigint", 20, ""),
                                                 COL("region", "text", 25, "")};

static struct wc_change change(enum wc_op op, const char *schema,
                               const char *table, wc_lsn lsn)
{
        struct wc_change c = {.op = op, .lsn = lsn};

        if (schema) {
                c.schema = schema;
                c.schema_len = strlen(schema);
                c.table = table;
                c.table_len = strlen(table);
        }
        if (op == WC_OP_INSERT || op == WC_OP_UPDATE)
                c.columns = (struct walcast_columns){new_row, 3};
        if (op == WC_OP_UPDATE || op == WC_OP_DELETE)
                c.identity = (struct walcast_columns){old_key, 1};
        if (op != WC_OP_TRUNCATE && op != WC_OP_MESSAGE)
                c.pk = (struct walcast_columns){pk_desc, 1};
        return c;
}

static void send(struct wc_bus *b, enum wc_op op, const char *schema,
                 const char *table, wc_lsn lsn, const struct walcast_txn *txn)
{
        struct wc_change c = change(op, schema, table, lsn);

        assert_int_equal(wc_bus_dispatch(b, &c, txn, NULL), 0);
}

static void on(struct wc_bus *b, uint32_t kind, const char *sender,
               const char *table, struct hd *h, void *owner,
               const struct wc_filter_config *owner_filter)
{
        assert_int_equal(
            wc_bus_connect(b, kind, sender, table, rec, h, owner, owner_filter),
            0);
}

static struct walcast_txn txn1 = {.id = 1,
                                  .xid = 900,
                                  .commit_lsn = 0x1000F0,
                                  .end_lsn = 0x100120,
                                  .commit_time_us = 1795614503648945};
static struct walcast_txn txn2 = {.id = 2,
                                  .xid = 901,
                                  .commit_lsn = 0x2000F0,
                                  .end_lsn = 0x200120,
                                  .commit_time_us = 1795614503700000};

static int owner_a, owner_b, owner_c;

struct result {
        void *owner;
        int32_t r;
};
static struct result results[16];
static size_t nresults;

static void on_result(void *ud, void *owner, int32_t r)
{
        assert_ptr_equal(ud, &nresults);
        assert_true(nresults < 16);
        results[nresults++] = (struct result){owner, r};
}

static void commit(struct wc_bus *b, const struct walcast_txn *txn)
{
        nresults = 0;
        assert_int_equal(wc_bus_commit(b, txn, on_result, &nresults, NULL), 0);
}

/* ---- sender and table filters ---- */

static void sender_filters(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd any = {"any", WALCAST_OK}, star = {"star", WALCAST_OK},
                  exact = {"exact", WALCAST_OK}, ns = {"ns", WALCAST_OK},
                  glob = {"glob", WALCAST_OK}, pub = {"public", WALCAST_OK},
                  nsglob = {"nsglob", WALCAST_OK};

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &any, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "*", NULL, &star, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "town6-govikon", NULL, &exact, &owner_a,
           NULL);
        on(b, WALCAST_SIG_INSERT, "town6", NULL, &ns, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "org-*", NULL, &glob, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "public", NULL, &pub, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "town6-*", NULL, &nsglob, &owner_a, NULL);

        send(b, WC_OP_INSERT, "town6-govikon", "tickets", 1, &txn1);
        assert_string_equal(trace(), "any star exact ns nsglob");
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 2, &txn1);
        assert_string_equal(trace(), "any star ns nsglob");
        send(b, WC_OP_INSERT, "town66-x", "tickets", 3, &txn1);
        assert_string_equal(trace(), "any star");
        send(b, WC_OP_INSERT, "org-acme", "tickets", 4, &txn1);
        assert_string_equal(trace(), "any star glob");
        send(b, WC_OP_INSERT, "public", "tickets", 5, &txn1);
        assert_string_equal(trace(), "any star public");
        /* the namespace's own schema, and a prefix that is no namespace */
        send(b, WC_OP_INSERT, "town6", "tickets", 6, &txn1);
        assert_string_equal(trace(), "any star ns");
        send(b, WC_OP_INSERT, "town", "tickets", 7, &txn1);
        assert_string_equal(trace(), "any star");
        send(b, WC_OP_INSERT, "org", "tickets", 8, &txn1);
        assert_string_equal(trace(), "any star");
        /* other kinds do not reach insert handlers */
        send(b, WC_OP_UPDATE, "town6-govikon", "tickets", 9, &txn1);
        send(b, WC_OP_DELETE, "town6-govikon", "tickets", 10, &txn1);
        send(b, WC_OP_TRUNCATE, "town6-govikon", "tickets", 11, &txn1);
        commit(b, &txn1);
        assert_string_equal(trace(), "");
        wc_bus_free(b);
}

static void table_filters(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd name = {"name", WALCAST_OK}, any_schema = {"dot", WALCAST_OK},
                  full = {"full", WALCAST_OK}, glob = {"glob", WALCAST_OK},
                  fullglob = {"fullglob", WALCAST_OK},
                  star = {"star", WALCAST_OK}, both = {"both", WALCAST_OK};

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_UPDATE, NULL, "tickets", &name, &owner_a, NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, "*.tickets", &any_schema, &owner_a,
           NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, "town6-bern.tickets", &full, &owner_a,
           NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, "tick*", &glob, &owner_a, NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, "town6-*.t?ckets", &fullglob, &owner_a,
           NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, "*", &star, &owner_a, NULL);
        on(b, WALCAST_SIG_UPDATE, "town6", "tickets", &both, &owner_a, NULL);

        send(b, WC_OP_UPDATE, "town6-bern", "tickets", 1, &txn1);
        assert_string_equal(trace(), "name dot full glob fullglob star both");
        send(b, WC_OP_UPDATE, "town6-govikon", "tickets", 2, &txn1);
        assert_string_equal(trace(), "name dot glob fullglob star both");
        send(b, WC_OP_UPDATE, "town6-govikon", "users", 3, &txn1);
        assert_string_equal(trace(), "star");
        send(b, WC_OP_UPDATE, "org-acme", "ticketsx", 4, &txn1);
        assert_string_equal(trace(), "glob star");
        send(b, WC_OP_UPDATE, "org-acme", "tickets", 5, &txn1);
        assert_string_equal(trace(), "name dot glob star");
        send(b, WC_OP_UPDATE, "public", "tickets", 6, &txn1);
        assert_string_equal(trace(), "name dot glob star");
        /* "town6-bern.tickets" is no prefix match */
        send(b, WC_OP_UPDATE, "town6-bernx", "tickets", 7, &txn1);
        assert_string_equal(trace(), "name dot glob fullglob star both");
        send(b, WC_OP_UPDATE, "town6-ber", "tickets", 8, &txn1);
        assert_string_equal(trace(), "name dot glob fullglob star both");
        send(b, WC_OP_UPDATE, "town6-bern", "ticket", 9, &txn1);
        assert_string_equal(trace(), "glob star");
        wc_bus_free(b);
}

static void owner_schemas_narrow(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        char *a_items[] = {"org-*", "public"};
        struct wc_filter_config a_list = {.schemas_include = {a_items, 2}};
        char *c_items[] = {"town6"};
        struct wc_filter_config c_list = {.schemas_include = {c_items, 1}};
        struct wc_filter_config empty = {.ops = WC_OPS_DATA};
        struct hd a_any = {"a_any", WALCAST_OK},
                  a_town = {"a_town", WALCAST_OK},
                  a_org = {"a_org", WALCAST_OK}, b_any = {"b_any", WALCAST_OK},
                  c_any = {"c_any", WALCAST_OK}, e_any = {"e_any", WALCAST_OK},
                  a_msg = {"a_msg", WALCAST_OK}, a_begin = {"a_begin", 0},
                  a_commit = {"a_commit", WALCAST_OK};
        struct wc_change m = change(WC_OP_MESSAGE, NULL, NULL, 9);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &a_any, &owner_a, &a_list);
        on(b, WALCAST_SIG_INSERT, "town6", NULL, &a_town, &owner_a, &a_list);
        on(b, WALCAST_SIG_INSERT, "org-acme", NULL, &a_org, &owner_a, &a_list);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &b_any, &owner_b, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &c_any, &owner_c, &c_list);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &e_any, &owner_c, &empty);
        /* begin, commit and message have no schema: owner schemas and
         * sender/table filters do not keep them away */
        on(b, WALCAST_SIG_MESSAGE, "town6", "nothing", &a_msg, &owner_a,
           &a_list);
        on(b, WALCAST_SIG_BEGIN, "town6", NULL, &a_begin, &owner_a, &a_list);
        on(b, WALCAST_SIG_COMMIT, "town6", NULL, &a_commit, &owner_a, &a_list);

        assert_int_equal(wc_bus_begin(b, &txn1, NULL), 0);
        assert_string_equal(trace(), "a_begin");
        send(b, WC_OP_INSERT, "town6-govikon", "tickets", 1, &txn1);
        assert_string_equal(trace(), "b_any c_any e_any");
        send(b, WC_OP_INSERT, "org-acme", "tickets", 2, &txn1);
        assert_string_equal(trace(), "a_any a_org b_any e_any");
        send(b, WC_OP_INSERT, "org-other", "tickets", 3, &txn1);
        assert_string_equal(trace(), "a_any b_any e_any");
        send(b, WC_OP_INSERT, "public", "tickets", 4, &txn1);
        assert_string_equal(trace(), "a_any b_any e_any");
        send(b, WC_OP_INSERT, "town66-x", "tickets", 5, &txn1);
        assert_string_equal(trace(), "b_any e_any");
        m.transactional = true;
        m.prefix = "audit";
        m.prefix_len = 5;
        m.content = (struct wc_str){"\"hi\"", 4};
        assert_int_equal(wc_bus_dispatch(b, &m, &txn1, NULL), 0);
        assert_string_equal(trace(), "a_msg");
        commit(b, &txn1);
        assert_string_equal(trace(), "a_commit");
        assert_int_equal(nresults, 1);
        assert_ptr_equal(results[0].owner, &owner_a);
        assert_int_equal(results[0].r, WALCAST_OK);
        wc_bus_free(b);
}

/* ---- every kind, with its fields ---- */

static void expect_change_fields(const struct call *c,
                                 const struct wc_change *ch,
                                 const struct walcast_txn *txn, const char *ns,
                                 const char *tenant)
{
        char *want;

        assert_int_equal(c->size, sizeof(struct walcast_signal));
        assert_string_equal(c->schema, ch->schema);
        assert_string_equal(c->table, ch->table);
        assert_string_equal(c->ns, ns);
        assert_int_equal(c->ns_len, strlen(ns));
        assert_string_equal(c->tenant, tenant);
        assert_int_equal(c->tenant_len, strlen(tenant));
        assert_int_equal(c->lsn, ch->lsn);
        assert_ptr_equal(c->txn, txn);
        want = cols_text(&ch->columns);
        assert_string_equal(c->columns, want);
        free(want);
        want = cols_text(&ch->identity);
        assert_string_equal(c->identity, want);
        free(want);
        want = cols_text(&ch->pk);
        assert_string_equal(c->pk, want);
        free(want);
        assert_null(c->prefix);
        assert_int_equal(c->nkeys, 0);
}

static void each_kind_and_its_fields(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd h[WALCAST_SIG__COUNT] = {
            {"begin", WALCAST_OK},   {"insert", WALCAST_OK},
            {"update", WALCAST_OK},  {"delete", WALCAST_OK},
            {"bulk", WALCAST_OK},    {"truncate", WALCAST_OK},
            {"message", WALCAST_OK}, {"commit", WALCAST_OK},
        };
        struct wc_change ins =
            change(WC_OP_INSERT, "town6-govikon", "tickets", 0x100010);
        struct wc_change upd =
            change(WC_OP_UPDATE, "town6-govikon", "tickets", 0x100020);
        struct wc_change del =
            change(WC_OP_DELETE, "public", "users", 0x100030);
        struct wc_change tru =
            change(WC_OP_TRUNCATE, "org-acme", "tickets", 0x100040);
        struct wc_change msg = change(WC_OP_MESSAGE, NULL, NULL, 0x100050);
        struct wc_change msg2 = change(WC_OP_MESSAGE, NULL, NULL, 0x300000);

        (void)state;
        assert_non_null(b);
        for (uint32_t k = 0; k < WALCAST_SIG__COUNT; k++)
                on(b, k, NULL, NULL, &h[k], &owner_a, NULL);

        assert_int_equal(wc_bus_begin(b, &txn1, NULL), 0);
        assert_string_equal(calls[0].tag, "begin");
        assert_int_equal(calls[0].kind, WALCAST_SIG_BEGIN);
        assert_int_equal(calls[0].size, sizeof(struct walcast_signal));
        assert_ptr_equal(calls[0].txn, &txn1);
        assert_null(calls[0].schema);
        assert_null(calls[0].table);
        assert_int_equal(calls[0].ns_len, 0);
        assert_int_equal(calls[0].tenant_len, 0);
        assert_string_equal(trace(), "begin");

        assert_int_equal(wc_bus_dispatch(b, &ins, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].kind, WALCAST_SIG_INSERT);
        expect_change_fields(&calls[0], &ins, &txn1, "town6", "govikon");
        assert_string_equal(calls[0].columns,
                            "id:bigint:20=42;title:text:25=\"printer "
                            "\\\"B\\\" jams\";closed:boolean:16=null;");
        assert_string_equal(calls[0].identity, "");
        assert_string_equal(calls[0].pk, "id:bigint:20=;");
        assert_string_equal(trace(), "insert");

        assert_int_equal(wc_bus_dispatch(b, &upd, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].kind, WALCAST_SIG_UPDATE);
        expect_change_fields(&calls[0], &upd, &txn1, "town6", "govikon");
        assert_string_equal(calls[0].identity, "id:bigint:20=41;");
        assert_string_equal(trace(), "update");

        /* a schema without '-' is its own namespace, tenant empty */
        assert_int_equal(wc_bus_dispatch(b, &del, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].kind, WALCAST_SIG_DELETE);
        expect_change_fields(&calls[0], &del, &txn1, "public", "");
        assert_string_equal(calls[0].columns, "");
        assert_string_equal(trace(), "delete");

        /* the truncate ends the delete run: the bulk signal comes first */
        assert_int_equal(wc_bus_dispatch(b, &tru, &txn1, NULL), 0);
        assert_int_equal(ncalls, 2);
        assert_int_equal(calls[0].kind, WALCAST_SIG_BULK_DELETE);
        assert_string_equal(calls[0].schema, "public");
        assert_string_equal(calls[0].table, "users");
        assert_int_equal(calls[0].lsn, 0x100030);
        assert_int_equal(calls[0].nkeys, 1);
        assert_string_equal(calls[0].keys, "id:bigint:20=41;|");
        assert_int_equal(calls[1].kind, WALCAST_SIG_TRUNCATE);
        expect_change_fields(&calls[1], &tru, &txn1, "org", "acme");
        assert_string_equal(trace(), "bulk/1 truncate");

        msg.transactional = true;
        msg.prefix = "audit";
        msg.prefix_len = 5;
        msg.content = (struct wc_str){"\"{\\\"a\\\":1}\"xyz", 11};
        assert_int_equal(wc_bus_dispatch(b, &msg, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].kind, WALCAST_SIG_MESSAGE);
        assert_int_equal(calls[0].lsn, 0x100050);
        assert_ptr_equal(calls[0].txn, &txn1);
        assert_int_equal(calls[0].transactional, 1);
        assert_string_equal(calls[0].prefix, "audit");
        assert_int_equal(calls[0].content_len, 11);
        assert_string_equal(calls[0].content, "\"{\\\"a\\\":1}\"");
        assert_null(calls[0].schema);
        assert_int_equal(calls[0].ns_len, 0);
        assert_string_equal(trace(), "message");

        assert_int_equal(wc_bus_commit(b, &txn1, on_result, &nresults, NULL),
                         0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].kind, WALCAST_SIG_COMMIT);
        assert_ptr_equal(calls[0].txn, &txn1);
        assert_int_equal(calls[0].txn_id, 1);
        assert_null(calls[0].schema);
        assert_string_equal(trace(), "commit");

        /* a message outside a transaction */
        msg2.transactional = false;
        msg2.prefix = "ping";
        msg2.prefix_len = 4;
        msg2.content = (struct wc_str){"\"\"", 2};
        assert_int_equal(wc_bus_dispatch(b, &msg2, NULL, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_null(calls[0].txn);
        assert_int_equal(calls[0].transactional, 0);
        assert_string_equal(calls[0].prefix, "ping");
        assert_string_equal(calls[0].content, "\"\"");
        assert_int_equal(calls[0].lsn, 0x300000);
        assert_string_equal(trace(), "message");
        wc_bus_free(b);
}

static size_t count_char(const char *s, char ch);

/* The decoder's text of the lists reaches handlers as it is, except for a
 * new row the bus completed from the old row: that text no longer says
 * what the row holds. */
static void lists_text_passed_on(void **state)
{
        static const struct walcast_column new2[] = {
            COL("id", "bigint", 20, "42"),
            COL("title", "text", 25, "\"new\""),
        };
        static const struct walcast_column full[] = {
            COL("id", "bigint", 20, "42"),
            COL("title", "text", 25, "\"old\""),
            COL("body", "text", 25, "\"long text\""),
        };
        static const char cols_json[] = "[cols]", ident_json[] = "[ident]",
                          pk_json[] = "[pk]";
        struct wc_bus *b = wc_bus_new(100);
        struct hd upd = {"U", WALCAST_OK}, del = {"D", WALCAST_OK};
        struct wc_change c =
            change(WC_OP_UPDATE, "town6-govikon", "docs", 0x700);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_UPDATE, NULL, NULL, &upd, &owner_a, NULL);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);

        /* the row as it came: every text passed on */
        c.columns = (struct walcast_columns){new2, 2};
        c.identity = (struct walcast_columns){new2, 1};
        c.columns_json = (struct wc_str){cols_json, 6};
        c.identity_json = (struct wc_str){ident_json, 7};
        c.pk_json = (struct wc_str){pk_json, 4};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_true(calls[0].size >=
                    offsetof(struct walcast_signal, reserved2));
        assert_ptr_equal(calls[0].columns_json, cols_json);
        assert_int_equal(calls[0].columns_json_len, 6);
        assert_ptr_equal(calls[0].identity_json, ident_json);
        assert_int_equal(calls[0].identity_json_len, 7);
        assert_ptr_equal(calls[0].pk_json, pk_json);
        assert_int_equal(calls[0].pk_json_len, 4);
        assert_string_equal(trace(), "U");

        /* completed from the old row: the new row's text is gone */
        c.identity = (struct walcast_columns){full, 3};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_int_equal(count_char(calls[0].columns, ';'), 3);
        assert_null(calls[0].columns_json);
        assert_int_equal(calls[0].columns_json_len, 0);
        assert_ptr_equal(calls[0].identity_json, ident_json);
        assert_ptr_equal(calls[0].pk_json, pk_json);
        assert_string_equal(trace(), "U");

        /* none sent, none passed on */
        c = change(WC_OP_DELETE, "town6-govikon", "docs", 0x800);
        c.identity = (struct walcast_columns){full, 3};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_null(calls[0].columns_json);
        assert_null(calls[0].identity_json);
        assert_null(calls[0].pk_json);
        assert_string_equal(trace(), "D");
        wc_bus_free(b);
}

static size_t count_char(const char *s, char ch)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == ch;
        return n;
}

/* wal2json leaves unchanged TOASTed values out of an update's new row;
 * under REPLICA IDENTITY FULL the old row supplies them. */
static void update_completed_from_old_row(void **state)
{
        static const struct walcast_column new2[] = {
            COL("id", "bigint", 20, "42"),
            COL("title", "text", 25, "\"new\""),
        };
        static const struct walcast_column full[] = {
            COL("id", "bigint", 20, "42"),
            COL("title", "text", 25, "\"old\""),
            COL("body", "text", 25, "\"long text\""),
            COL("n", "integer", 23, "7"),
        };
        static const struct walcast_column wide[] = {
            COL("id", "bigint", 20, "42"), COL("a", "text", 25, "\"a\""),
            COL("b", "text", 25, "\"b\""), COL("c", "text", 25, "\"c\""),
            COL("d", "text", 25, "\"d\""), COL("e", "text", 25, "null"),
        };
        struct wc_bus *b = wc_bus_new(100);
        struct hd upd = {"U", WALCAST_OK}, del = {"D", WALCAST_OK};
        struct wc_change c =
            change(WC_OP_UPDATE, "town6-govikon", "docs", 0x700);
        char *before_cols, *before_ident;

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_UPDATE, NULL, NULL, &upd, &owner_a, NULL);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);

        /* FULL: body and n come from the old row, title stays new */
        c.columns = (struct walcast_columns){new2, 2};
        c.identity = (struct walcast_columns){full, 4};
        before_cols = cols_text(&c.columns);
        before_ident = cols_text(&c.identity);
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_int_equal(count_char(calls[0].columns, ';'), 4);
        assert_non_null(strstr(calls[0].columns, "id:bigint:20=42;"));
        assert_non_null(strstr(calls[0].columns, "title:text:25=\"new\";"));
        assert_null(strstr(calls[0].columns, "\"old\""));
        assert_non_null(
            strstr(calls[0].columns, "body:text:25=\"long text\";"));
        assert_non_null(strstr(calls[0].columns, "n:integer:23=7;"));
        assert_string_equal(calls[0].identity, before_ident);
        /* the borrowed change is left alone */
        {
                char *after = cols_text(&c.columns);
                assert_string_equal(after, before_cols);
                free(after);
                after = cols_text(&c.identity);
                assert_string_equal(after, before_ident);
                free(after);
        }
        free(before_cols);
        free(before_ident);
        assert_string_equal(trace(), "U");

        /* a wider one after it (the bus's own row grows) */
        c.columns = (struct walcast_columns){new2, 1};
        c.identity = (struct walcast_columns){wide, 6};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_int_equal(count_char(calls[0].columns, ';'), 6);
        assert_non_null(strstr(calls[0].columns, "e:text:25=null;"));
        assert_non_null(strstr(calls[0].columns, "a:text:25=\"a\";"));
        assert_string_equal(trace(), "U");

        /* nothing missing: the row as it came */
        c.columns = (struct walcast_columns){full, 4};
        c.identity = (struct walcast_columns){full, 4};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(calls[0].columns, calls[0].identity);
        assert_string_equal(trace(), "U");

        /* DEFAULT: the key alone supplies nothing; absent stays absent */
        c.columns = (struct walcast_columns){new2, 2};
        c.identity = (struct walcast_columns){new2, 1};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(calls[0].columns,
                            "id:bigint:20=42;title:text:25=\"new\";");
        assert_string_equal(calls[0].identity, "id:bigint:20=42;");
        assert_string_equal(trace(), "U");

        /* a delete under FULL carries the old row as identity only */
        c = change(WC_OP_DELETE, "town6-govikon", "docs", 0x800);
        c.identity = (struct walcast_columns){full, 4};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(calls[0].columns, "");
        assert_int_equal(count_char(calls[0].identity, ';'), 4);
        assert_string_equal(trace(), "D");
        wc_bus_free(b);
}

/*
 * Issue 22 item 2: a column the identity carries and the new row lacks is
 * an unchanged TOASTed value, completed whatever the replica identity and
 * the column counts, in table order, and named in `completed`.  r1 (a, t)
 * and r2 (a, t, c) with t TOASTed, after UPDATE ... SET a = 2, as wal2json
 * writes them under USING INDEX on (a, t) and under FULL.
 */
static void update_completed_whatever_identity(void **state)
{
        static const struct walcast_column r1_new[] = {
            COL("a", "integer", 23, "2")};
        static const struct walcast_column r1_old[] = {
            COL("a", "integer", 23, "1"), COL("t", "text", 25, "\"BIG\"")};
        static const struct walcast_column r2_new[] = {
            COL("a", "integer", 23, "2"), COL("c", "integer", 23, "null")};
        static const struct walcast_column r2_index[] = {
            COL("a", "integer", 23, "1"), COL("t", "text", 25, "\"BIG\"")};
        static const struct walcast_column r2_full[] = {
            COL("a", "integer", 23, "1"), COL("t", "text", 25, "\"BIG\""),
            COL("c", "integer", 23, "null")};
        /* DEFAULT: id is the key, big TOASTed and unchanged */
        static const struct walcast_column d_new[] = {
            COL("id", "integer", 23, "1"), COL("small", "text", 25, "\"b\"")};
        static const struct walcast_column d_key[] = {
            COL("id", "integer", 23, "1")};
        static const char t_done[] = "t:text:25=\"BIG\";";
        struct wc_bus *b = wc_bus_new(100);
        struct hd upd = {"U", WALCAST_OK};
        struct wc_change c = change(WC_OP_UPDATE, "public", "r1", 0x700);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_UPDATE, NULL, NULL, &upd, &owner_a, NULL);

        /* r1, USING INDEX and FULL alike: a new, t completed */
        c.columns = (struct walcast_columns){r1_new, 1};
        c.identity = (struct walcast_columns){r1_old, 2};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_int_equal(ncalls, 1);
        assert_string_equal(calls[0].columns,
                            "a:integer:23=2;t:text:25=\"BIG\";");
        assert_string_equal(calls[0].completed, t_done);
        assert_string_equal(trace(), "U");

        /* r2 under USING INDEX (a, t): as many identity columns as new
         * ones, t is completed all the same, before c (table order) */
        c = change(WC_OP_UPDATE, "public", "r2", 0x800);
        c.columns = (struct walcast_columns){r2_new, 2};
        c.identity = (struct walcast_columns){r2_index, 2};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(
            calls[0].columns,
            "a:integer:23=2;t:text:25=\"BIG\";c:integer:23=null;");
        assert_string_equal(calls[0].completed, t_done);
        assert_null(calls[0].columns_json);
        assert_string_equal(trace(), "U");

        /* r2 under FULL: the identity's order is the table's */
        c.identity = (struct walcast_columns){r2_full, 3};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(
            calls[0].columns,
            "a:integer:23=2;t:text:25=\"BIG\";c:integer:23=null;");
        assert_string_equal(calls[0].completed, t_done);
        assert_string_equal(trace(), "U");

        /* DEFAULT: the key supplies nothing, big stays absent and nothing
         * says it is (wal2json does not) */
        c = change(WC_OP_UPDATE, "public", "d", 0x900);
        c.columns = (struct walcast_columns){d_new, 2};
        c.identity = (struct walcast_columns){d_key, 1};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(calls[0].columns,
                            "id:integer:23=1;small:text:25=\"b\";");
        assert_string_equal(calls[0].completed, "");
        assert_string_equal(trace(), "U");

        /* an insert or delete never has completed columns */
        c = change(WC_OP_DELETE, "public", "r2", 0xa00);
        c.identity = (struct walcast_columns){r2_index, 2};
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &upd, &owner_a, NULL);
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        assert_string_equal(calls[0].completed, "");
        assert_string_equal(trace(), "U");
        wc_bus_free(b);
}

/* A bulk_delete key under USING INDEX on columns without the primary key
 * is the identity, never an empty key. */
static void bulk_key_index_without_pk(void **state)
{
        static const struct walcast_column ident[] = {
            COL("email", "text", 25, "\"a@b\""),
            COL("tenant", "integer", 23, "3")};
        static const struct walcast_column pk[] = {
            {.name = "id", .name_len = 2, .type = "integer", .type_len = 7}};
        struct wc_bus *b = wc_bus_new(100);
        struct hd h = {"h", WALCAST_OK};
        struct wc_change c = change(WC_OP_DELETE, "public", "u", 0x100);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_BULK_DELETE, NULL, NULL, &h, &owner_a, NULL);
        c.identity = (struct walcast_columns){ident, 2};
        c.pk = (struct walcast_columns){pk, 1};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), 0);
        commit(b, &txn1);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].nkeys, 1);
        assert_non_null(strstr(calls[0].keys, "email"));
        assert_non_null(strstr(calls[0].keys, "tenant"));
        trace();
        wc_bus_free(b);
}

static void bad_arguments(void **state)
{
        struct wc_bus *b = wc_bus_new(0); /* 0: batches of 1 */
        struct hd h = {"h", WALCAST_OK};
        struct wc_change c = change(WC_OP_BEGIN, "public", "t", 1);

        (void)state;
        assert_non_null(b);
        assert_int_equal(wc_bus_connect(b, WALCAST_SIG__COUNT, NULL, NULL, rec,
                                        &h, &owner_a, NULL),
                         -EINVAL);
        assert_int_equal(wc_bus_connect(b, WALCAST_SIG_INSERT, NULL, NULL, NULL,
                                        &h, &owner_a, NULL),
                         -EINVAL);
        assert_int_equal(wc_bus_owner_has(b, &owner_a, WALCAST_SIG_INSERT), 0);
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), -EINVAL);
        c.op = WC_OP_COMMIT;
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), -EINVAL);

        /* bulk_batch 0 behaves as 1: every delete is its own bulk signal */
        on(b, WALCAST_SIG_BULK_DELETE, NULL, NULL, &h, &owner_a, NULL);
        send(b, WC_OP_DELETE, "public", "t", 1, &txn1);
        send(b, WC_OP_DELETE, "public", "t", 2, &txn1);
        assert_string_equal(trace(), "h/1 h/1");
        commit(b, &txn1);
        assert_string_equal(trace(), "");
        wc_bus_free(b);
}

/* ---- order, cache invalidation, disconnect ---- */

static void order_and_late_connect(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd h1 = {"h1", WALCAST_OK}, h2 = {"h2", WALCAST_OK},
                  h3 = {"h3", WALCAST_OK}, h4 = {"h4", WALCAST_OK},
                  h5 = {"h5", WALCAST_OK}, d1 = {"d1", WALCAST_OK};

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, "town6", NULL, &h1, &owner_a, NULL);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &d1, &owner_b, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, "tickets", &h2, &owner_b, NULL);
        on(b, WALCAST_SIG_INSERT, "town6-bern", NULL, &h3, &owner_a, NULL);

        send(b, WC_OP_INSERT, "town6-bern", "tickets", 1, &txn1);
        assert_string_equal(trace(), "h1 h2 h3");
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 2, &txn1);
        assert_string_equal(trace(), "h1 h2 h3");

        /* the cached handler lists learn about new handlers */
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &h4, &owner_c, NULL);
        on(b, WALCAST_SIG_INSERT, "town6", "tick*", &h5, &owner_a, NULL);
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 3, &txn1);
        assert_string_equal(trace(), "h1 h2 h3 h4 h5");
        send(b, WC_OP_INSERT, "org-acme", "tickets", 4, &txn1);
        assert_string_equal(trace(), "h2 h4");

        assert_int_equal(wc_bus_owner_has(b, &owner_a, WALCAST_SIG_INSERT), 1);
        assert_int_equal(wc_bus_owner_has(b, &owner_a, WALCAST_SIG_DELETE), 0);
        assert_int_equal(wc_bus_owner_has(b, &owner_b, WALCAST_SIG_DELETE), 1);

        /* ... and forget disconnected ones */
        wc_bus_disconnect_owner(b, &owner_a);
        assert_int_equal(wc_bus_owner_has(b, &owner_a, WALCAST_SIG_INSERT), 0);
        assert_int_equal(wc_bus_owner_has(b, &owner_b, WALCAST_SIG_INSERT), 1);
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 5, &txn1);
        assert_string_equal(trace(), "h2 h4");
        send(b, WC_OP_DELETE, "town6-bern", "tickets", 6, &txn1);
        assert_string_equal(trace(), "d1");
        wc_bus_disconnect_owner(b, &owner_b);
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 7, &txn1);
        send(b, WC_OP_DELETE, "town6-bern", "tickets", 8, &txn1);
        assert_string_equal(trace(), "h4");
        /* an owner without handlers: nothing changes */
        wc_bus_disconnect_owner(b, &owner_a);
        send(b, WC_OP_INSERT, "town6-bern", "tickets", 9, &txn1);
        assert_string_equal(trace(), "h4");
        wc_bus_free(b);
}

/* An owner's filter is the whole of a sink's filter: schemas and tables,
 * included and excluded, decided once per table. */
static void owner_filter_tables(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        char *si[] = {"town6"}, *se[] = {"town6-archive"};
        char *ti[] = {"tickets", "*.people"}, *te[] = {"town6-bern.people"};
        struct wc_filter_config f = {.schemas_include = {si, 1},
                                     .schemas_exclude = {se, 1},
                                     .tables_include = {ti, 2},
                                     .tables_exclude = {te, 1},
                                     .ops = WC_OPS_DATA};
        struct hd a = {"a", WALCAST_OK}, all = {"all", WALCAST_OK};

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &a, &owner_a, &f);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &all, &owner_b, NULL);
        assert_int_equal(wc_bus_begin(b, &txn1, NULL), 0);
        send(b, WC_OP_INSERT, "town6-govikon", "tickets", 1, &txn1);
        assert_string_equal(trace(), "a all");
        send(b, WC_OP_INSERT, "town6-govikon", "people", 2, &txn1);
        assert_string_equal(trace(), "a all");
        send(b, WC_OP_INSERT, "town6-govikon", "orders", 3, &txn1);
        assert_string_equal(trace(), "all");
        send(b, WC_OP_INSERT, "town6-bern", "people", 4, &txn1);
        assert_string_equal(trace(), "all");
        send(b, WC_OP_INSERT, "town6-archive", "tickets", 5, &txn1);
        assert_string_equal(trace(), "all");
        send(b, WC_OP_INSERT, "org-acme", "tickets", 6, &txn1);
        assert_string_equal(trace(), "all");
        /* the second time from the cached route */
        send(b, WC_OP_INSERT, "town6-govikon", "orders", 7, &txn1);
        assert_string_equal(trace(), "all");
        send(b, WC_OP_INSERT, "town6-govikon", "tickets", 8, &txn1);
        assert_string_equal(trace(), "a all");
        wc_bus_free(b);
}

static void many_tables(void **state)
{
        static const char *const schemas[] = {"town6-govikon", "town6-bern",
                                              "org-acme", "public", "town66-x"};
        struct wc_bus *b = wc_bus_new(100);
        char *p_items[] = {"public"};
        struct wc_filter_config p_list = {.schemas_include = {p_items, 1}};
        struct hd g = {"g", WALCAST_OK}, n = {"n", WALCAST_OK},
                  e = {"e", WALCAST_OK}, o = {"o", WALCAST_OK},
                  l = {"l", WALCAST_OK};
        const unsigned ntables = 1500;

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, NULL, "t1*", &g, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "town6", NULL, &n, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, "org-acme.t42", &e, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &o, &owner_b, &p_list);

        for (int pass = 0; pass < 3; pass++) {
                if (pass == 2)
                        on(b, WALCAST_SIG_INSERT, "town66", "t7*", &l, &owner_c,
                           NULL);
                for (unsigned i = 0; i < ntables; i++) {
                        const char *schema = schemas[i % 5];
                        char table[32], want[32] = "";
                        snprintf(table, sizeof(table), "t%u", i);
                        send(b, WC_OP_INSERT, schema, table, i + 1, &txn1);
                        if (strncmp(table, "t1", 2) == 0)
                                strcat(want, " g");
                        if (strncmp(schema, "town6-", 6) == 0)
                                strcat(want, " n");
                        if (strcmp(schema, "org-acme") == 0 &&
                            strcmp(table, "t42") == 0)
                                strcat(want, " e");
                        if (strcmp(schema, "public") == 0)
                                strcat(want, " o");
                        if (pass == 2 && strcmp(schema, "town66-x") == 0 &&
                            table[1] == '7')
                                strcat(want, " l");
                        if (ncalls)
                                assert_string_equal(calls[0].table, table);
                        assert_string_equal(trace(), want[0] ? want + 1 : "");
                }
        }
        wc_bus_free(b);
}

/* ---- bulk_delete ---- */

/* An identity built in a heap buffer that the test scribbles over and
 * frees right after the dispatch. */
struct heapkey {
        char *text;
        struct walcast_column *cols;
        struct walcast_columns key;
        char *expect; /* cols_text() of it */
};

static void heapkey_make(struct heapkey *k, unsigned id)
{
        char *p;
        int n;

        k->text = malloc(128);
        k->cols = calloc(2, sizeof(*k->cols));
        assert_non_null(k->text);
        assert_non_null(k->cols);
        p = k->text;
        memcpy(p, "id\0bigint", 10);
        k->cols[0] = (struct walcast_column){.name = p,
                                             .name_len = 2,
                                             .type = p + 3,
                                             .type_len = 6,
                                             .type_oid = 20};
        p += 10;
        n = sprintf(p, "%u", id);
        k->cols[0].value = p;
        k->cols[0].value_len = (uint32_t)n;
        p += n; /* values are not NUL-terminated: the next name follows */
        memcpy(p, "region\0text", 12);
        k->cols[1] = (struct walcast_column){.name = p,
                                             .name_len = 6,
                                             .type = p + 7,
                                             .type_len = 4,
                                             .type_oid = 25};
        p += 12;
        n = sprintf(p, "\"r%u\"", id % 7);
        k->cols[1].value = p;
        k->cols[1].value_len = (uint32_t)n;
        k->key = (struct walcast_columns){k->cols, 2};
        k->expect = cols_text(&k->key);
}

static void heapkey_destroy(struct heapkey *k)
{
        memset(k->text, '#', 128);
        memset(k->cols, 0x5a, 2 * sizeof(*k->cols));
        free(k->text);
        free(k->cols);
        free(k->expect);
}

/* Dispatches a delete whose identity lives in a heap buffer, then destroys
 * that buffer; appends the identity's text to want. */
static int delete_row(struct wc_bus *b, const char *schema, const char *table,
                      wc_lsn lsn, const struct walcast_txn *txn, unsigned id,
                      struct wc_buf *want, struct wc_bus_error *err)
{
        struct heapkey k;
        struct wc_change c = change(WC_OP_DELETE, schema, table, lsn);
        int r;

        heapkey_make(&k, id);
        c.identity = k.key;
        c.pk = (struct walcast_columns){pk2_desc, 2};
        r = wc_bus_dispatch(b, &c, txn, err);
        if (want) {
                assert_int_equal(wc_buf_append_str(want, k.expect), 0);
                assert_int_equal(wc_buf_append_char(want, '|'), 0);
        }
        heapkey_destroy(&k);
        return r;
}

/* Under REPLICA IDENTITY FULL a delete's identity is the whole old row;
 * a bulk_delete carries only its primary-key columns, while the per-row
 * delete signal keeps the whole row. */
static void bulk_keys_are_primary_keys(void **state)
{
        static const struct walcast_column full_row[] = {
            COL("id", "bigint", 20, "7"), COL("title", "text", 25, "\"t\""),
            COL("region", "text", 25, "\"r\"")};
        struct wc_bus *b = wc_bus_new(10);
        struct hd del = {"del", WALCAST_OK}, bulk = {"bulk", WALCAST_OK};
        struct walcast_txn txn = {.id = 1};
        struct wc_change c =
            change(WC_OP_DELETE, "town6-bern", "tickets", 0x100);
        (void)state;

        assert_non_null(b);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, NULL, NULL, &bulk, &owner_b, NULL);
        clear_calls();
        c.identity = (struct walcast_columns){full_row, 3};
        assert_int_equal(wc_bus_dispatch(b, &c, &txn, NULL), 0);
        nresults = 0;
        assert_int_equal(wc_bus_commit(b, &txn, on_result, &nresults, NULL), 0);
        assert_int_equal(ncalls, 2);
        assert_string_equal(calls[0].identity, "id:bigint:20=7;title:text:25="
                                               "\"t\";region:text:25=\"r\";");
        assert_string_equal(calls[1].keys, "id:bigint:20=7;|");
        wc_bus_free(b);
}

static void coalesce(unsigned n, unsigned batch)
{
        struct wc_bus *b = wc_bus_new(batch);
        struct hd del = {"del", WALCAST_OK}, bulk1 = {"bulk1", WALCAST_OK},
                  bulk2 = {"bulk2", WALCAST_OK}, com = {"commit", WALCAST_OK};
        struct wc_buf want, got;
        unsigned nbulk = (n + batch - 1) / batch, seen_rows = 0, seen_bulk = 0;

        assert_non_null(b);
        on(b, WALCAST_SIG_DELETE, "town6", "tickets", &del, &owner_a, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, NULL, "*.tickets", &bulk1, &owner_b,
           NULL);
        on(b, WALCAST_SIG_COMMIT, NULL, NULL, &com, &owner_b, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, "town6-bern", NULL, &bulk2, &owner_c,
           NULL);
        wc_buf_init(&want);
        wc_buf_init(&got);
        assert_int_equal(wc_buf_append_str(&want, ""), 0);
        assert_int_equal(wc_buf_append_str(&got, ""), 0);

        for (unsigned i = 0; i < n; i++)
                assert_int_equal(delete_row(b, "town6-bern", "tickets",
                                            0x5000 + 0x10 * i, &txn1, 1000 + i,
                                            &want, NULL),
                                 0);
        commit(b, &txn1);
        assert_int_equal(nresults, 1);

        /* rows to the delete handler, batches after the row that fills
         * them (the last one before the commit handler), each to both bulk
         * handlers in connection order */
        for (size_t i = 0; i < ncalls; i++) {
                const struct call *c = &calls[i];
                if (c->kind == WALCAST_SIG_DELETE) {
                        assert_string_equal(c->tag, "del");
                        assert_int_equal(c->lsn, 0x5000 + 0x10 * seen_rows);
                        assert_ptr_equal(c->txn, &txn1);
                        seen_rows++;
                        continue;
                }
                if (c->kind == WALCAST_SIG_COMMIT) {
                        assert_int_equal(i, ncalls - 1);
                        continue;
                }
                assert_int_equal(c->kind, WALCAST_SIG_BULK_DELETE);
                assert_string_equal(c->tag,
                                    seen_bulk % 2 == 0 ? "bulk1" : "bulk2");
                if (seen_bulk % 2 == 0) {
                        unsigned first = seen_bulk / 2 * batch;
                        unsigned size = n - first < batch ? n - first : batch;
                        assert_int_equal(c->nkeys, size);
                        /* after its last row, or at the commit */
                        assert_int_equal(seen_rows, first + size);
                        assert_int_equal(c->lsn, 0x5000 + 0x10 * first);
                        assert_ptr_equal(c->txn, &txn1);
                        assert_string_equal(c->schema, "town6-bern");
                        assert_string_equal(c->table, "tickets");
                        assert_string_equal(c->ns, "town6");
                        assert_string_equal(c->tenant, "bern");
                        assert_int_equal(c->ns_len, 5);
                        assert_int_equal(c->tenant_len, 4);
                        assert_string_equal(c->columns, "");
                        assert_string_equal(c->identity, "");
                        assert_int_equal(wc_buf_append_str(&got, c->keys), 0);
                } else {
                        /* the same signal */
                        assert_int_equal(c->nkeys, calls[i - 1].nkeys);
                        assert_string_equal(c->keys, calls[i - 1].keys);
                        assert_int_equal(c->lsn, calls[i - 1].lsn);
                }
                seen_bulk++;
        }
        assert_int_equal(seen_rows, n);
        assert_int_equal(seen_bulk, 2 * nbulk);
        assert_string_equal(got.data, want.data);

        /* the delete handler got each row's identity once */
        {
                size_t off = 0, row = 0;
                for (size_t i = 0; i < ncalls; i++) {
                        size_t len;
                        if (calls[i].kind != WALCAST_SIG_DELETE)
                                continue;
                        len = strlen(calls[i].identity);
                        assert_true(off + len < want.len);
                        assert_memory_equal(want.data + off, calls[i].identity,
                                            len);
                        assert_int_equal(want.data[off + len], '|');
                        off += len + 1;
                        row++;
                }
                assert_int_equal(row, n);
                assert_int_equal(off, want.len);
        }
        clear_calls();
        wc_buf_free(&want);
        wc_buf_free(&got);
        wc_bus_free(b);
}

static void bulk_batches(void **state)
{
        static const unsigned ns[] = {1, 2, 3, 4, 7, 9, 10, 1000};
        static const unsigned batches[] = {1, 3, 4, 10, 1000};

        (void)state;
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
                for (size_t j = 0; j < sizeof(batches) / sizeof(batches[0]);
                     j++)
                        coalesce(ns[i], batches[j]);
        coalesce(2500, 1000);
}

static void bulk_run_ends(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd del = {"D", WALCAST_OK}, bulk = {"K", WALCAST_OK},
                  ins = {"I", WALCAST_OK}, tru = {"T", WALCAST_OK},
                  msg = {"M", WALCAST_OK}, com = {"C", WALCAST_OK},
                  upd = {"U", WALCAST_OK};
        struct wc_change m = change(WC_OP_MESSAGE, NULL, NULL, 50);
        struct wc_buf want;

        (void)state;
        assert_non_null(b);
        wc_buf_init(&want);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, NULL, NULL, &bulk, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &ins, &owner_a, NULL);
        on(b, WALCAST_SIG_UPDATE, NULL, NULL, &upd, &owner_a, NULL);
        on(b, WALCAST_SIG_TRUNCATE, NULL, NULL, &tru, &owner_a, NULL);
        on(b, WALCAST_SIG_MESSAGE, NULL, NULL, &msg, &owner_a, NULL);
        on(b, WALCAST_SIG_COMMIT, NULL, NULL, &com, &owner_a, NULL);

        /* another table, also one of the same name in another schema */
        assert_int_equal(
            delete_row(b, "town6-bern", "a", 1, &txn1, 1, NULL, NULL), 0);
        assert_int_equal(
            delete_row(b, "town6-bern", "a", 2, &txn1, 2, NULL, NULL), 0);
        assert_int_equal(
            delete_row(b, "town6-bern", "b", 3, &txn1, 3, NULL, NULL), 0);
        assert_string_equal(trace(), "D D K/2 D");
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 4, &txn1, 4, NULL, NULL), 0);
        assert_int_equal(ncalls, 2);
        assert_string_equal(calls[0].schema, "town6-bern");
        assert_string_equal(calls[0].table, "b");
        assert_string_equal(calls[0].keys, "id:bigint:20=3;region:text:25="
                                           "\"r3\";|");
        assert_int_equal(calls[0].lsn, 3);
        assert_string_equal(trace(), "K/1 D");

        /* another kind on the same table */
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 5, &txn1, 5, NULL, NULL), 0);
        assert_string_equal(trace(), "D");
        send(b, WC_OP_INSERT, "town6-govikon", "b", 6, &txn1);
        assert_string_equal(trace(), "K/2 I");
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 7, &txn1, 7, NULL, NULL), 0);
        send(b, WC_OP_UPDATE, "town6-govikon", "b", 8, &txn1);
        assert_string_equal(trace(), "D K/1 U");
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 9, &txn1, 9, NULL, NULL), 0);
        send(b, WC_OP_TRUNCATE, "town6-govikon", "b", 10, &txn1);
        assert_string_equal(trace(), "D K/1 T");
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 11, &txn1, 11, NULL, NULL), 0);
        m.transactional = true;
        m.prefix = "p";
        m.prefix_len = 1;
        m.content = (struct wc_str){"\"x\"", 3};
        assert_int_equal(wc_bus_dispatch(b, &m, &txn1, NULL), 0);
        assert_string_equal(trace(), "D K/1 M");

        /* the commit: the bulk signal before the commit handlers */
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 12, &txn1, 12, NULL, NULL), 0);
        assert_int_equal(
            delete_row(b, "town6-govikon", "b", 13, &txn1, 13, NULL, NULL), 0);
        commit(b, &txn1);
        assert_int_equal(calls[2].lsn, 12);
        assert_ptr_equal(calls[2].txn, &txn1);
        assert_string_equal(trace(), "D D K/2 C");
        commit(b, &txn1);
        assert_string_equal(trace(), "C");

        /* another transaction, without a commit in between */
        assert_int_equal(wc_buf_append_str(&want, ""), 0);
        assert_int_equal(
            delete_row(b, "org-acme", "t", 20, &txn1, 20, &want, NULL), 0);
        assert_int_equal(
            delete_row(b, "org-acme", "t", 21, &txn1, 21, &want, NULL), 0);
        assert_int_equal(
            delete_row(b, "org-acme", "t", 22, &txn2, 22, NULL, NULL), 0);
        assert_int_equal(ncalls, 4);
        assert_int_equal(calls[2].kind, WALCAST_SIG_BULK_DELETE);
        assert_ptr_equal(calls[2].txn, &txn1);
        assert_int_equal(calls[2].txn_id, 1);
        assert_int_equal(calls[2].lsn, 20);
        assert_string_equal(calls[2].keys, want.data);
        assert_ptr_equal(calls[3].txn, &txn2);
        assert_string_equal(trace(), "D D K/2 D");
        commit(b, &txn2);
        assert_int_equal(calls[0].txn_id, 2);
        assert_int_equal(calls[0].lsn, 22);
        assert_string_equal(trace(), "K/1 C");

        /* the same transaction struct with another id: another
         * transaction too */
        {
                struct walcast_txn t = txn1;
                assert_int_equal(
                    delete_row(b, "org-acme", "t", 30, &t, 30, NULL, NULL), 0);
                t.id = 3;
                assert_int_equal(
                    delete_row(b, "org-acme", "t", 31, &t, 31, NULL, NULL), 0);
                assert_int_equal(ncalls, 3);
                assert_int_equal(calls[1].kind, WALCAST_SIG_BULK_DELETE);
                assert_int_equal(calls[1].nkeys, 1);
                assert_int_equal(calls[1].lsn, 30);
                assert_string_equal(trace(), "D K/1 D");
                commit(b, &t);
                assert_int_equal(calls[0].lsn, 31);
                assert_string_equal(trace(), "K/1 C");
        }
        wc_buf_free(&want);
        wc_bus_free(b);
}

static void bulk_only_when_wanted(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd del = {"D", WALCAST_OK}, other = {"O", WALCAST_OK},
                  only = {"B", WALCAST_OK}, late = {"L", WALCAST_OK};
        struct wc_buf want;

        (void)state;
        assert_non_null(b);
        wc_buf_init(&want);
        assert_int_equal(wc_buf_append_str(&want, ""), 0);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);
        /* a bulk handler of another table, and of another schema */
        on(b, WALCAST_SIG_BULK_DELETE, NULL, "other", &other, &owner_b, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, "org", "tickets", &only, &owner_b, NULL);

        /* nobody wants the batch of town6-bern.tickets: nothing is kept,
         * so a bulk handler connected before the commit gets nothing */
        for (unsigned i = 0; i < 5; i++)
                assert_int_equal(delete_row(b, "town6-bern", "tickets", 1 + i,
                                            &txn1, i, NULL, NULL),
                                 0);
        assert_string_equal(trace(), "D D D D D");
        on(b, WALCAST_SIG_BULK_DELETE, NULL, "tickets", &late, &owner_c, NULL);
        commit(b, &txn1);
        assert_string_equal(trace(), "");
        wc_bus_disconnect_owner(b, &owner_c);

        assert_int_equal(
            delete_row(b, "town6-bern", "other", 10, &txn1, 10, &want, NULL),
            0);
        assert_string_equal(trace(), "D");
        commit(b, &txn1);
        assert_int_equal(ncalls, 1);
        assert_string_equal(calls[0].keys, want.data);
        assert_string_equal(trace(), "O/1");

        /* a bulk handler without a delete handler for that table */
        wc_bus_disconnect_owner(b, &owner_a);
        wc_buf_reset(&want);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(delete_row(b, "org-acme", "tickets", 20 + i,
                                            &txn1, 20 + i, &want, NULL),
                                 0);
        assert_string_equal(trace(), "");
        commit(b, &txn1);
        assert_int_equal(ncalls, 1);
        assert_string_equal(calls[0].keys, want.data);
        assert_string_equal(trace(), "B/3");
        wc_buf_free(&want);
        wc_bus_free(b);
}

static void bulk_reset_drops_the_run(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd bulk = {"K", WALCAST_OK};
        struct wc_buf want;

        (void)state;
        assert_non_null(b);
        wc_buf_init(&want);
        assert_int_equal(wc_buf_append_str(&want, ""), 0);
        on(b, WALCAST_SIG_BULK_DELETE, NULL, NULL, &bulk, &owner_a, NULL);
        for (unsigned i = 0; i < 4; i++)
                assert_int_equal(
                    delete_row(b, "public", "t", 1 + i, &txn1, i, NULL, NULL),
                    0);
        wc_bus_reset(b);
        commit(b, &txn1);
        assert_string_equal(trace(), "");

        /* the replay: only what comes after the reset */
        for (unsigned i = 0; i < 2; i++)
                assert_int_equal(delete_row(b, "public", "t", 1 + i, &txn1,
                                            100 + i, &want, NULL),
                                 0);
        wc_bus_reset(b);
        wc_buf_reset(&want);
        assert_int_equal(
            delete_row(b, "public", "t", 3, &txn1, 200, &want, NULL), 0);
        assert_int_equal(
            delete_row(b, "public", "t", 4, &txn1, 201, &want, NULL), 0);
        commit(b, &txn1);
        assert_int_equal(ncalls, 1);
        assert_int_equal(calls[0].lsn, 3);
        assert_string_equal(calls[0].keys, want.data);
        assert_string_equal(trace(), "K/2");

        /* a reset without a pending run is harmless */
        wc_bus_reset(b);
        commit(b, &txn1);
        assert_string_equal(trace(), "");
        wc_buf_free(&want);
        wc_bus_free(b);
}

/* ---- failures and commit results ---- */

static void handler_error_stops_dispatch(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd ok1 = {"ok1", WALCAST_OK}, bad = {"bad", WALCAST_ERROR},
                  ok2 = {"ok2", WALCAST_OK};
        struct wc_bus_error err;
        struct wc_change c =
            change(WC_OP_INSERT, "town6-govikon", "tickets", 0xABCDEF);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &ok1, &owner_a, NULL);
        on(b, WALCAST_SIG_INSERT, "town6", NULL, &bad, &owner_b, NULL);
        on(b, WALCAST_SIG_INSERT, NULL, NULL, &ok2, &owner_c, NULL);

        memset(&err, 0, sizeof(err));
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, &err), -ECANCELED);
        assert_ptr_equal(err.owner, &owner_b);
        assert_int_equal(err.kind, WALCAST_SIG_INSERT);
        assert_int_equal(err.lsn, 0xABCDEF);
        assert_string_equal(err.schema, "town6-govikon");
        assert_string_equal(err.table, "tickets");
        assert_string_equal(trace(), "ok1 bad");
        /* a NULL error pointer is allowed */
        assert_int_equal(wc_bus_dispatch(b, &c, &txn1, NULL), -ECANCELED);
        assert_string_equal(trace(), "ok1 bad");
        /* where bad does not listen, all is well */
        send(b, WC_OP_INSERT, "org-acme", "tickets", 1, &txn1);
        assert_string_equal(trace(), "ok1 ok2");
        wc_bus_free(b);
}

static void failures_of_other_kinds(void **state)
{
        struct wc_bus *b = wc_bus_new(2);
        struct hd begin_bad = {"begin_bad", WALCAST_ERROR},
                  msg_bad = {"msg_bad", WALCAST_ERROR},
                  bulk_bad = {"bulk_bad", WALCAST_ERROR},
                  com = {"commit", WALCAST_OK}, del = {"del", WALCAST_OK};
        struct wc_bus_error err;
        struct wc_change m = change(WC_OP_MESSAGE, NULL, NULL, 77);

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_BEGIN, NULL, NULL, &begin_bad, &owner_a, NULL);
        on(b, WALCAST_SIG_MESSAGE, NULL, NULL, &msg_bad, &owner_b, NULL);
        on(b, WALCAST_SIG_DELETE, NULL, NULL, &del, &owner_a, NULL);
        on(b, WALCAST_SIG_BULK_DELETE, "org", NULL, &bulk_bad, &owner_c, NULL);
        on(b, WALCAST_SIG_COMMIT, NULL, NULL, &com, &owner_a, NULL);

        memset(&err, 0, sizeof(err));
        assert_int_equal(wc_bus_begin(b, &txn1, &err), -ECANCELED);
        assert_ptr_equal(err.owner, &owner_a);
        assert_int_equal(err.kind, WALCAST_SIG_BEGIN);
        assert_string_equal(err.schema, "");
        assert_string_equal(trace(), "begin_bad");

        memset(&err, 0, sizeof(err));
        m.prefix = "p";
        m.prefix_len = 1;
        m.content = (struct wc_str){"\"x\"", 3};
        assert_int_equal(wc_bus_dispatch(b, &m, NULL, &err), -ECANCELED);
        assert_ptr_equal(err.owner, &owner_b);
        assert_int_equal(err.kind, WALCAST_SIG_MESSAGE);
        assert_int_equal(err.lsn, 77);
        assert_string_equal(trace(), "msg_bad");

        /* a failed bulk_delete at the commit: the commit handlers do not
         * run */
        memset(&err, 0, sizeof(err));
        assert_int_equal(
            delete_row(b, "org-acme", "t", 0x900, &txn1, 1, NULL, NULL), 0);
        nresults = 0;
        assert_int_equal(wc_bus_commit(b, &txn1, on_result, &nresults, &err),
                         -ECANCELED);
        assert_int_equal(nresults, 0);
        assert_ptr_equal(err.owner, &owner_c);
        assert_int_equal(err.kind, WALCAST_SIG_BULK_DELETE);
        assert_int_equal(err.lsn, 0x900);
        assert_string_equal(err.schema, "org-acme");
        assert_string_equal(err.table, "t");
        assert_string_equal(trace(), "del bulk_bad/1");

        /* a full batch fails inside the dispatch of its last row */
        memset(&err, 0, sizeof(err));
        assert_int_equal(
            delete_row(b, "org-acme", "t", 0xA00, &txn1, 2, NULL, NULL), 0);
        assert_int_equal(
            delete_row(b, "org-acme", "t", 0xA10, &txn1, 3, NULL, &err),
            -ECANCELED);
        assert_ptr_equal(err.owner, &owner_c);
        assert_int_equal(err.kind, WALCAST_SIG_BULK_DELETE);
        assert_int_equal(err.lsn, 0xA00);
        assert_string_equal(trace(), "del del bulk_bad/2");
        wc_bus_free(b);
}

static void commit_results(void **state)
{
        struct wc_bus *b = wc_bus_new(100);
        struct hd c1 = {"c1", WALCAST_OK}, c2 = {"c2", WALCAST_PENDING},
                  c3 = {"c3", WALCAST_OK};
        struct wc_bus_error err;

        (void)state;
        assert_non_null(b);
        on(b, WALCAST_SIG_COMMIT, NULL, NULL, &c1, &owner_a, NULL);
        on(b, WALCAST_SIG_COMMIT, "org", "x", &c2, &owner_b, NULL);
        on(b, WALCAST_SIG_COMMIT, NULL, NULL, &c3, &owner_c, NULL);

        commit(b, &txn2);
        assert_int_equal(ncalls, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_ptr_equal(calls[i].txn, &txn2);
                assert_int_equal(calls[i].txn_id, 2);
        }
        assert_string_equal(trace(), "c1 c2 c3");
        assert_int_equal(nresults, 3);
        assert_ptr_equal(results[0].owner, &owner_a);
        assert_int_equal(results[0].r, WALCAST_OK);
        assert_ptr_equal(results[1].owner, &owner_b);
        assert_int_equal(results[1].r, WALCAST_PENDING);
        assert_ptr_equal(results[2].owner, &owner_c);
        assert_int_equal(results[2].r, WALCAST_OK);

        /* an error stops the commit: later handlers neither run nor report */
        c2.ret = WALCAST_ERROR;
        nresults = 0;
        memset(&err, 0, sizeof(err));
        assert_int_equal(wc_bus_commit(b, &txn2, on_result, &nresults, &err),
                         -ECANCELED);
        assert_string_equal(trace(), "c1 c2");
        assert_int_equal(nresults, 1);
        assert_ptr_equal(results[0].owner, &owner_a);
        assert_ptr_equal(err.owner, &owner_b);
        assert_int_equal(err.kind, WALCAST_SIG_COMMIT);
        assert_string_equal(err.schema, "");
        assert_string_equal(err.table, "");

        /* no commit handlers: no results */
        wc_bus_disconnect_owner(b, &owner_a);
        wc_bus_disconnect_owner(b, &owner_b);
        wc_bus_disconnect_owner(b, &owner_c);
        commit(b, &txn2);
        assert_int_equal(nresults, 0);
        assert_string_equal(trace(), "");
        wc_bus_free(b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(sender_filters, teardown),
            cmocka_unit_test_teardown(table_filters, teardown),
            cmocka_unit_test_teardown(owner_schemas_narrow, teardown),
            cmocka_unit_test_teardown(owner_filter_tables, teardown),
            cmocka_unit_test_teardown(each_kind_and_its_fields, teardown),
            cmocka_unit_test_teardown(update_completed_from_old_row, teardown),
            cmocka_unit_test_teardown(update_completed_whatever_identity,
                                      teardown),
            cmocka_unit_test_teardown(bulk_key_index_without_pk, teardown),
            cmocka_unit_test_teardown(lists_text_passed_on, teardown),
            cmocka_unit_test_teardown(bad_arguments, teardown),
            cmocka_unit_test_teardown(order_and_late_connect, teardown),
            cmocka_unit_test_teardown(many_tables, teardown),
            cmocka_unit_test_teardown(bulk_batches, teardown),
            cmocka_unit_test_teardown(bulk_keys_are_primary_keys, teardown),
            cmocka_unit_test_teardown(bulk_run_ends, teardown),
            cmocka_unit_test_teardown(bulk_only_when_wanted, teardown),
            cmocka_unit_test_teardown(bulk_reset_drops_the_run, teardown),
            cmocka_unit_test_teardown(handler_error_stops_dispatch, teardown),
            cmocka_unit_test_teardown(failures_of_other_kinds, teardown),
            cmocka_unit_test_teardown(commit_results, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
