/* SPDX-License-Identifier: MIT */
/*
 * The pgoutput decoder: messages recorded from PostgreSQL 15
 * (tests/data/pgoutput/recorded.txt, README.md there) decoded in order,
 * with the catalog answers recorded alongside; hand-written and cut
 * messages refused with the position; the built-in type names; the
 * START_REPLICATION options.
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

#include "decode/decoder.h"
#include "decode/pgoutput.h"

#define MAX_MSGS  256
#define MAX_TYPES 64

struct rec {
        size_t n;
        wc_lsn at[MAX_MSGS];
        unsigned char *msg[MAX_MSGS];
        size_t len[MAX_MSGS];
        size_t ntypes, npks;
        uint32_t type_oid[MAX_TYPES];
        char *type_name[MAX_TYPES];
        uint32_t pk_oid[MAX_TYPES];
        char *pk_names[MAX_TYPES]; /* space-separated */
        unsigned lookups;          /* catalog calls */
};

static struct rec R;

static int hexval(int c)
{
        return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void load(void)
{
        const char *dir = getenv("WC_TEST_DATA");
        char path[512], line[300000];
        FILE *f;

        if (R.n)
                return;
        snprintf(path, sizeof(path), "%s/pgoutput/recorded.txt",
                 dir ? dir : "tests/data");
        f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                size_t l = strlen(line);
                char *sp;

                while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                        line[--l] = '\0';
                if (strncmp(line, "type ", 5) == 0) {
                        R.type_oid[R.ntypes] =
                            (uint32_t)strtoul(line + 5, &sp, 10);
                        R.type_name[R.ntypes++] = strdup(sp + 1);
                } else if (strncmp(line, "pk ", 3) == 0) {
                        R.pk_oid[R.npks] = (uint32_t)strtoul(line + 3, &sp, 10);
                        R.pk_names[R.npks++] = strdup(sp + 1);
                } else if (strncmp(line, "msg ", 4) == 0) {
                        char *hex;
                        size_t n;

                        sp = strchr(line + 4, ' ');
                        assert_non_null(sp);
                        *sp = '\0';
                        assert_int_equal(wc_lsn_parse(line + 4, &R.at[R.n]), 0);
                        hex = sp + 1;
                        n = strlen(hex) / 2;
                        R.msg[R.n] = malloc(n ? n : 1);
                        for (size_t i = 0; i < n; i++)
                                R.msg[R.n][i] =
                                    (unsigned char)(hexval(hex[2 * i]) << 4 |
                                                    hexval(hex[2 * i + 1]));
                        R.len[R.n++] = n;
                }
        }
        fclose(f);
        assert_true(R.n > 40);
}

static int cat_type(void *ud, uint32_t oid, int32_t typmod, struct wc_buf *out,
                    char *errbuf, size_t errlen)
{
        struct rec *r = ud;

        (void)typmod;
        r->lookups++;
        for (size_t i = 0; i < r->ntypes; i++)
                if (r->type_oid[i] == oid)
                        return wc_buf_append_str(out, r->type_name[i]);
        snprintf(errbuf, errlen, "no type %u", oid);
        return -ENOENT;
}

static int cat_pk(void *ud, uint32_t relid, struct wc_buf *out, char *errbuf,
                  size_t errlen)
{
        struct rec *r = ud;

        (void)errbuf;
        (void)errlen;
        r->lookups++;
        for (size_t i = 0; i < r->npks; i++)
                if (r->pk_oid[i] == relid) {
                        for (const char *p = r->pk_names[i]; *p; p++)
                                if (wc_buf_append_char(out,
                                                       *p == ' ' ? '\0' : *p))
                                        return -ENOMEM;
                        return wc_buf_append_char(out, '\0');
                }
        return 0;
}

static struct wc_decoder *new_dec(void)
{
        struct wc_decoder *d = wc_decoder_new(&wc_pgoutput);
        struct wc_pgoutput_catalog cat = {&R, cat_type, cat_pk};

        assert_non_null(d);
        wc_pgoutput_set_catalog(d, &cat);
        return d;
}

/* Decodes message i (a copy of it, exact size) into ch. */
static int dec(struct wc_decoder *d, size_t i, unsigned char **copy,
               const struct wc_change **ch, char *err, size_t errlen)
{
        *copy = malloc(R.len[i] ? R.len[i] : 1);
        memcpy(*copy, R.msg[i], R.len[i]);
        return wc_decoder_decode(d, (char *)*copy, R.len[i], R.at[i], ch, err,
                                 errlen);
}

static const struct walcast_column *col(const struct walcast_columns *l,
                                        const char *name)
{
        for (uint32_t i = 0; i < l->count; i++)
                if (strcmp(l->items[i].name, name) == 0)
                        return &l->items[i];
        return NULL;
}

static void check_col(const struct walcast_columns *l, const char *name,
                      const char *type, const char *value)
{
        const struct walcast_column *c = col(l, name);

        if (!c)
                fail_msg("no column \"%s\"", name);
        assert_string_equal(c->type, type);
        assert_int_equal(c->type_len, strlen(type));
        assert_int_equal(c->name_len, strlen(name));
        if (value) {
                if (c->value_len != strlen(value) ||
                    memcmp(c->value, value, c->value_len) != 0)
                        fail_msg("column \"%s\": %.*s, expected %s", name,
                                 (int)c->value_len, c->value, value);
        }
}

static void json_is(struct wc_str j, const char *want)
{
        if (!j.ptr || j.len != strlen(want) || memcmp(j.ptr, want, j.len))
                fail_msg("%.*s, expected %s", (int)j.len,
                         j.ptr ? j.ptr : "(null)", want);
}

/* Every recorded message decodes in order, and what they say is right. */
static void test_recorded(void **state)
{
        struct wc_decoder *d;
        char err[512];
        int inserts = 0, updates = 0, deletes = 0, truncs = 0, msgs = 0;
        int begins = 0, commits = 0, quoted = 0;
        wc_lsn begin_commit = 0;

        (void)state;
        load();
        d = new_dec();
        for (size_t i = 0; i < R.n; i++) {
                const struct wc_change *ch = NULL;
                unsigned char *copy;
                int r;

                err[0] = '\0';
                r = dec(d, i, &copy, &ch, err, sizeof(err));
                if (r != 0)
                        fail_msg("message %zu: %d %s", i, r, err);
                /* never modified */
                assert_memory_equal(copy, R.msg[i], R.len[i]);
                if (!ch) {
                        assert_true(strchr("RYO", R.msg[i][0]) != NULL);
                        free(copy);
                        continue;
                }
                switch (ch->op) {
                case WC_OP_BEGIN:
                        begins++;
                        assert_true(ch->has_xid && ch->has_time);
                        assert_int_equal(ch->end_lsn, 0);
                        assert_true(ch->commit_lsn > 0);
                        /* 2026, after the Unix epoch's 2000 shift */
                        assert_true(ch->time_us > 1700000000000000LL);
                        begin_commit = ch->commit_lsn;
                        break;
                case WC_OP_COMMIT:
                        commits++;
                        assert_int_equal(ch->commit_lsn, begin_commit);
                        assert_true(ch->end_lsn > ch->commit_lsn);
                        /* the walsender sends a Commit at its end */
                        assert_int_equal(ch->end_lsn, R.at[i]);
                        break;
                case WC_OP_INSERT:
                        inserts++;
                        assert_int_equal(ch->lsn, R.at[i]);
                        if (inserts == 1) {
                                const struct walcast_columns *c = &ch->columns;

                                assert_string_equal(ch->schema,
                                                    "town6-govikon");
                                assert_string_equal(ch->table, "tickets");
                                assert_int_equal(c->count, 16);
                                check_col(c, "id", "bigint", "1");
                                check_col(c, "title", "character varying(20)",
                                          "\"first\"");
                                check_col(c, "price", "numeric(10,2)", "12.50");
                                check_col(c, "st", "\"town6-govikon\".status",
                                          "\"open\"");
                                check_col(c, "at", "timestamp with time zone",
                                          "\"2026-11-25 13:48:23.57043+00\"");
                                check_col(c, "ok", "boolean", "true");
                                check_col(c, "b", "bytea", "\"dead\"");
                                check_col(c, "r", "real", "\"NaN\"");
                                check_col(c, "d", "double precision",
                                          "\"-Infinity\"");
                                check_col(c, "n", "numeric", "\"Infinity\"");
                                check_col(c, "tags", "text[]",
                                          "\"{a,\\\"b c\\\"}\"");
                                check_col(c, "doc", "jsonb",
                                          "\"{\\\"k\\\": [1, "
                                          "\\\"x\\\\ny\\\"]}\"");
                                check_col(c, "p", "public.positive", "\"5\"");
                                check_col(c, "c", "character(3)", "\"ab \"");
                                check_col(c, "u", "uuid", NULL);
                                assert_int_equal(col(c, "id")->type_oid, 20);
                                assert_int_equal(ch->pk.count, 1);
                                assert_string_equal(ch->pk.items[0].name, "id");
                                assert_null(ch->pk.items[0].value);
                                assert_int_equal(ch->identity.count, 0);
                                assert_int_equal(ch->missing.count, 0);
                                /* a type name with quotes: no text */
                                assert_null(ch->columns_json.ptr);
                                /* a number is a view of the message */
                                assert_true(
                                    (unsigned char *)col(c, "id")->value >=
                                        copy &&
                                    (unsigned char *)col(c, "id")->value <
                                        copy + R.len[i]);
                        } else if (inserts == 2) {
                                check_col(&ch->columns, "title",
                                          "character varying(20)",
                                          "\"tab\\there \\\"q\\\" \\\\ "
                                          "é\"");
                                check_col(&ch->columns, "big", "text", "null");
                        }
                        if (strcmp(ch->table, "Quoted \"T\"") == 0) {
                                quoted++;
                                assert_string_equal(ch->schema, "public");
                                check_col(&ch->columns, "Id", "integer", NULL);
                                /* the Relation after ALTER TABLE replaced
                                 * the first */
                                assert_int_equal(ch->columns.count,
                                                 quoted == 1 ? 2 : 3);
                                if (quoted == 2)
                                        check_col(&ch->columns, "extra",
                                                  "integer", "3");
                        }
                        break;
                case WC_OP_UPDATE:
                        updates++;
                        if (updates == 1) {
                                /* the unchanged TOASTed "big": missing */
                                assert_string_equal(ch->table, "tickets");
                                assert_null(col(&ch->columns, "big"));
                                assert_int_equal(ch->columns.count, 15);
                                assert_int_equal(ch->missing.count, 1);
                                assert_string_equal(ch->missing.items[0].name,
                                                    "big");
                                assert_string_equal(ch->missing.items[0].type,
                                                    "text");
                                /* the key did not change: from the row */
                                assert_int_equal(ch->identity.count, 1);
                                check_col(&ch->identity, "id", "bigint", "1");
                        } else if (updates == 2) {
                                /* the key changed: 'K' */
                                assert_int_equal(ch->identity.count, 1);
                                check_col(&ch->identity, "id", "bigint", "2");
                                check_col(&ch->columns, "id", "bigint", "3");
                        } else if (updates == 3) {
                                /* FULL: the old row, TOASTed value
                                 * included; the new row lacks it, and the
                                 * identity carries it: not missing */
                                assert_string_equal(ch->table, "full_t");
                                assert_int_equal(ch->identity.count, 3);
                                assert_int_equal(ch->columns.count, 2);
                                assert_null(col(&ch->columns, "t"));
                                assert_non_null(col(&ch->identity, "t"));
                                assert_int_equal(ch->missing.count, 0);
                                assert_int_equal(ch->pk.count, 0);
                                check_col(&ch->columns, "c", "integer", "8");
                        } else if (updates == 4) {
                                /* USING INDEX (b): identity b from the
                                 * row, primary key a from the catalog */
                                assert_string_equal(ch->table, "idx_t");
                                assert_int_equal(ch->identity.count, 1);
                                check_col(&ch->identity, "b", "integer", "10");
                                assert_int_equal(ch->pk.count, 1);
                                assert_string_equal(ch->pk.items[0].name, "a");
                                /* plain names and types: the lists'
                                 * canonical text, for sinks to copy */
                                json_is(ch->identity_json,
                                        "[{\"name\":\"b\",\"type\":"
                                        "\"integer\",\"typeoid\":23,"
                                        "\"value\":10}]");
                                json_is(ch->pk_json,
                                        "[{\"name\":\"a\",\"type\":"
                                        "\"integer\",\"typeoid\":23}]");
                                json_is(ch->columns_json,
                                        "[{\"name\":\"a\",\"type\":"
                                        "\"integer\",\"typeoid\":23,"
                                        "\"value\":1},{\"name\":\"b\","
                                        "\"type\":\"integer\",\"typeoid\":"
                                        "23,\"value\":10},{\"name\":\"v\","
                                        "\"type\":\"text\",\"typeoid\":25,"
                                        "\"value\":\"w\"}]");
                        } else if (updates == 5) {
                                check_col(&ch->identity, "b", "integer", "10");
                                check_col(&ch->columns, "b", "integer", "11");
                        }
                        break;
                case WC_OP_DELETE:
                        deletes++;
                        assert_int_equal(ch->columns.count, 0);
                        if (deletes == 1) {
                                assert_int_equal(ch->identity.count, 1);
                                check_col(&ch->identity, "id", "bigint", "3");
                        } else if (deletes == 2) {
                                assert_int_equal(ch->identity.count, 3);
                        } else {
                                assert_int_equal(ch->identity.count, 1);
                                check_col(&ch->identity, "b", "integer", "11");
                        }
                        break;
                case WC_OP_TRUNCATE: {
                        const struct wc_change *n2 = NULL;

                        truncs++;
                        assert_string_equal(ch->table, "full_t");
                        assert_int_equal(ch->lsn, R.at[i]);
                        assert_int_equal(wc_decoder_next(d, &n2), 1);
                        assert_int_equal(n2->op, WC_OP_TRUNCATE);
                        assert_string_equal(n2->table, "idx_t");
                        assert_string_equal(n2->schema, "public");
                        assert_int_equal(n2->lsn, R.at[i]);
                        assert_int_equal(wc_decoder_next(d, &n2), 0);
                        break;
                }
                case WC_OP_MESSAGE:
                        msgs++;
                        assert_string_equal(ch->prefix, "walcast");
                        if (ch->transactional) {
                                assert_int_equal(ch->content.len, 4);
                                assert_memory_equal(ch->content.ptr, "\"tx\"",
                                                    4);
                                assert_false(ch->content_base64);
                        } else {
                                /* 00 ff is not UTF-8: base64 */
                                assert_true(ch->content_base64);
                                assert_int_equal(ch->content.len, 6);
                                assert_memory_equal(ch->content.ptr, "\"AP8=\"",
                                                    6);
                        }
                        break;
                default:
                        fail_msg("op %d", ch->op);
                }
                if (ch->op != WC_OP_TRUNCATE)
                        assert_int_equal(wc_decoder_next(d, &ch), 0);
                free(copy);
        }
        assert_int_equal(begins, commits);
        assert_int_equal(begins, 16);
        assert_int_equal(inserts, 6);
        assert_int_equal(updates, 5);
        assert_int_equal(deletes, 3);
        assert_int_equal(truncs, 1);
        assert_int_equal(msgs, 2);
        assert_int_equal(quoted, 2);
        wc_decoder_free(d);
}

/* Catalog lookups are remembered: a second decoder of the same stream asks
 * as often as the first, and the first does not ask again when the same
 * Relation comes back. */
static void test_catalog_cached(void **state)
{
        struct wc_decoder *d;
        char err[512];
        unsigned first;

        (void)state;
        load();
        d = new_dec();
        R.lookups = 0;
        for (size_t i = 0; i < R.n; i++) {
                const struct wc_change *ch;
                unsigned char *copy;

                assert_int_equal(dec(d, i, &copy, &ch, err, sizeof(err)), 0);
                free(copy);
        }
        first = R.lookups;
        assert_true(first > 0);
        for (size_t i = 0; i < R.n; i++) {
                const struct wc_change *ch;
                unsigned char *copy;

                if (R.msg[i][0] != 'R')
                        continue;
                assert_int_equal(dec(d, i, &copy, &ch, err, sizeof(err)), 0);
                free(copy);
        }
        /* primary keys are asked again for replaced relations only on
         * their next change; type names never */
        assert_int_equal(R.lookups, first);
        wc_decoder_free(d);
}

/* Every message cut short, or with a byte more, is refused with the
 * position, and the decoder goes on with the next one. */
static void test_cut(void **state)
{
        struct wc_decoder *d;
        char err[512], at[WC_LSN_STRLEN + 8];

        (void)state;
        load();
        d = new_dec();
        for (size_t i = 0; i < R.n; i++) {
                const struct wc_change *ch;
                unsigned char *copy;

                for (size_t cut = 0; cut < R.len[i]; cut++) {
                        unsigned char *m = malloc(cut ? cut : 1);
                        int r;

                        memcpy(m, R.msg[i], cut);
                        err[0] = '\0';
                        r = wc_decoder_decode(d, (char *)m, cut, R.at[i], &ch,
                                              err, sizeof(err));
                        if (r != -EBADMSG)
                                fail_msg("message %zu cut at %zu: %d", i, cut,
                                         r);
                        snprintf(at, sizeof(at), "at %s:", "");
                        wc_lsn_format(R.at[i], at + 3);
                        if (!strstr(err, at) ||
                            !strstr(err, "could not decode pgoutput"))
                                fail_msg("%s", err);
                        free(m);
                }
                /* one byte more */
                {
                        unsigned char *m = malloc(R.len[i] + 1);
                        int r;

                        memcpy(m, R.msg[i], R.len[i]);
                        m[R.len[i]] = 0;
                        r = wc_decoder_decode(d, (char *)m, R.len[i] + 1,
                                              R.at[i], &ch, err, sizeof(err));
                        /* a Message's content length and every other
                         * message's end are checked */
                        if (r != -EBADMSG)
                                fail_msg("message %zu with a byte more: %d", i,
                                         r);
                        free(m);
                }
                assert_int_equal(dec(d, i, &copy, &ch, err, sizeof(err)), 0);
                free(copy);
        }
        wc_decoder_free(d);
}

static int decode_bytes(struct wc_decoder *d, const char *m, size_t n,
                        const struct wc_change **ch, char *err, size_t errlen)
{
        char *c = malloc(n ? n : 1);
        int r;

        memcpy(c, m, n);
        r = wc_decoder_decode(d, c, n, 0x1547700, ch, err, errlen);
        /* the change may point into c: the callers only look at r */
        free(c);
        return r;
}

#define DEC(d, lit, ch, err)                                                   \
        decode_bytes(d, lit, sizeof(lit) - 1, ch, err, sizeof(err))

static void test_handwritten(void **state)
{
        struct wc_decoder *d = wc_decoder_new(&wc_pgoutput);
        const struct wc_change *ch = NULL;
        char err[512];

        (void)state;
        /* a change of a table no Relation described */
        assert_int_equal(DEC(d, "I\x00\x00\x40\x06N\x00\x00", &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "unknown relation OID 16390"));
        assert_non_null(strstr(err, "at 0/1547700"));
        assert_non_null(strstr(err, "49 00 00 40 06"));
        /* a relation: public.t (a integer key, v text, n numeric, b bool) */
#define REL                                                                    \
        "R\x00\x00\x40\x06public\0t\0d\x00\x04"                                \
        "\x01"                                                                 \
        "a\0\x00\x00\x00\x17\xff\xff\xff\xff"                                  \
        "\x00"                                                                 \
        "v\0\x00\x00\x00\x19\xff\xff\xff\xff"                                  \
        "\x00"                                                                 \
        "n\0\x00\x00\x06\xa4\xff\xff\xff\xff"                                  \
        "\x00"                                                                 \
        "b\0\x00\x00\x00\x10\xff\xff\xff\xff"
        assert_int_equal(DEC(d, REL, &ch, err), 0);
        assert_null(ch);
        /* no catalog: built-in types only, and the default identity */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "t\x00\x00\x00\x01"
                             "1"
                             "n"
                             "t\x00\x00\x00\x04"
                             "-1e5"
                             "t\x00\x00\x00\x01"
                             "f",
                             &ch, err),
                         0);
        assert_int_equal(ch->columns.count, 4);
        assert_int_equal(ch->columns.items[1].value_len, 4);
        assert_memory_equal(ch->columns.items[1].value, "null", 4);
        assert_memory_equal(ch->columns.items[3].value, "false", 5);
        /* a number that is not one */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "t\x00\x00\x00\x01"
                             "1"
                             "n"
                             "t\x00\x00\x00\x02"
                             "1x"
                             "n",
                             &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "\"n\" (numeric) is not a number"));
        /* text that is not UTF-8 */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "t\x00\x00\x00\x01"
                             "1"
                             "t\x00\x00\x00\x02"
                             "\xc3\x28"
                             "n"
                             "n",
                             &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "invalid UTF-8"));
        /* a boolean that is not */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "n"
                             "n"
                             "n"
                             "t\x00\x00\x00\x01"
                             "x",
                             &ch, err),
                         -EBADMSG);
        /* binary values are not asked for */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "b\x00\x00\x00\x01"
                             "1"
                             "n"
                             "n"
                             "n",
                             &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "binary value"));
        /* a tuple with a column count other than the relation's */
        assert_int_equal(DEC(d, "I\x00\x00\x40\x06N\x00\x01n", &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "has 1 columns"));
        /* a value longer than the message */
        assert_int_equal(DEC(d,
                             "I\x00\x00\x40\x06N\x00\x04"
                             "t\x7f\xff\xff\xff"
                             "1",
                             &ch, err),
                         -EBADMSG);
        /* streaming and two-phase messages are not asked for */
        assert_int_equal(DEC(d, "S\x00\x00\x00\x01\x01", &ch, err), -EBADMSG);
        assert_non_null(strstr(err, "unknown message type 0x53"));
        /* a delete needs its old key */
        assert_int_equal(DEC(d, "D\x00\x00\x40\x06N\x00\x04nnnn", &ch, err),
                         -EBADMSG);
        /* a relation whose replica identity is unknown */
        assert_int_equal(
            DEC(d, "R\x00\x00\x40\x07public\0u\0x\x00\x00", &ch, err),
            -EBADMSG);
        /* a type that is not built in, without a catalog */
        assert_int_equal(DEC(d,
                             "R\x00\x00\x40\x08public\0u\0d\x00\x01"
                             "\x00"
                             "e\0\x00\x00\x40\x00\xff\xff\xff\xff",
                             &ch, err),
                         -EBADMSG);
        assert_non_null(strstr(err, "type OID 16384"));
        /* the relation decoded before the error is still known: a filter
         * can be asked about a change that failed */
        assert_int_equal(
            wc_decoder_relation(d, (char *)"I\x00\x00\x40\x06N", 6, &ch), 0);
        assert_string_equal(ch->table, "t");
        assert_int_equal(ch->op, WC_OP_INSERT);
        /* a commit time past int64 once moved to the Unix epoch (the
         * fuzzer's find): the transaction goes on without a time */
        assert_int_equal(DEC(d,
                             "B\x00\x00\x00\x00\x01\x00\x00\x10"
                             "\x7f\xff\xbb\xdd\xf6\x11\x6f\xa8"
                             "\x00\x00\x02\x00",
                             &ch, err),
                         0);
        assert_int_equal(ch->op, WC_OP_BEGIN);
        assert_false(ch->has_time);
        assert_int_equal(ch->xid, 512);
        assert_int_equal(DEC(d,
                             "C\x00"
                             "\x00\x00\x00\x00\x01\x00\x00\x10"
                             "\x00\x00\x00\x00\x01\x00\x00\x40"
                             "\x7f\xff\xff\xff\xff\xff\xff\xff",
                             &ch, err),
                         0);
        assert_false(ch->has_time);
        assert_int_equal(ch->end_lsn, 0x1000040);
        /* and one in range has it */
        assert_int_equal(DEC(d,
                             "B\x00\x00\x00\x00\x01\x00\x00\x10"
                             "\x00\x00\x00\x00\x00\x00\x00\x01"
                             "\x00\x00\x02\x01",
                             &ch, err),
                         0);
        assert_true(ch->has_time);
        assert_int_equal(ch->time_us, 946684800000001LL);
        /* errbuf NULL is fine */
        assert_int_equal(decode_bytes(d, "Z", 1, &ch, NULL, 0), -EBADMSG);
        assert_int_equal(decode_bytes(d, "", 0, &ch, err, sizeof(err)),
                         -EBADMSG);
        wc_decoder_free(d);
}

static void type_is(uint32_t oid, int32_t typmod, const char *want)
{
        char out[128];
        int n = wc_pgoutput_builtin_type(oid, typmod, out, sizeof(out));

        if (!want) {
                assert_int_equal(n, 0);
                return;
        }
        if (n <= 0)
                fail_msg("type %u(%d): %d", oid, typmod, n);
        assert_string_equal(out, want);
        assert_int_equal((size_t)n, strlen(want));
}

static void test_builtin_types(void **state)
{
        char small[4];

        (void)state;
        type_is(23, -1, "integer");
        type_is(1043, 24, "character varying(20)");
        type_is(1043, -1, "character varying");
        type_is(1042, 7, "character(3)");
        type_is(1042, -1, "bpchar");
        type_is(1700, (10 << 16 | 2) + 4, "numeric(10,2)");
        type_is(1700, -1, "numeric");
        type_is(1700, (5 << 16 | (0x7ff & -2)) + 4, "numeric(5,-2)");
        type_is(1231, (5 << 16 | 2) + 4, "numeric(5,2)[]");
        type_is(1184, -1, "timestamp with time zone");
        type_is(1184, 3, "timestamp(3) with time zone");
        type_is(1114, 0, "timestamp(0) without time zone");
        type_is(1083, -1, "time without time zone");
        type_is(1007, -1, "integer[]");
        type_is(701, -1, "double precision");
        type_is(18, -1, "\"char\"");
        type_is(1560, 4, "bit(4)");
        type_is(1562, -1, "bit varying");
        /* intervals with fields, and every other type: the catalog */
        type_is(1186, -1, NULL);
        type_is(16386, -1, NULL);
        type_is(23, 5, NULL);
        assert_int_equal(wc_pgoutput_builtin_type(701, -1, small, 4), -ENOSPC);
}

static void test_start_options(void **state)
{
        struct wc_decoder_options o;

        (void)state;
        wc_decoder_options_init(&o);
        assert_int_equal(wc_pgoutput_start_options("pub", 130010, &o), 0);
        assert_int_equal(o.n, 2);
        assert_string_equal(o.kv[0], "proto_version");
        assert_string_equal(o.kv[1], "1");
        assert_string_equal(o.kv[2], "publication_names");
        assert_string_equal(o.kv[3], "\"pub\"");
        assert_null(o.kv[4]);
        wc_decoder_options_free(&o);
        assert_int_equal(wc_pgoutput_start_options("a\"b", 150004, &o), 0);
        assert_int_equal(o.n, 3);
        assert_string_equal(o.kv[1], "2");
        assert_string_equal(o.kv[3], "\"a\"\"b\"");
        assert_string_equal(o.kv[4], "messages");
        assert_string_equal(o.kv[5], "true");
        wc_decoder_options_free(&o);
        assert_int_equal(wc_pgoutput_start_options("", 150004, &o), -EINVAL);
        wc_decoder_options_free(&o);
        /* no pushdown: any two filters start the same */
        assert_int_equal(wc_decoder_options_same(&wc_pgoutput, NULL, NULL), 1);
}

/* Held until the Commit, in memory and then in a file, and handed back in
 * order; the decoder's next Begin then knows where it ends. */
static void test_hold(void **state)
{
        struct wc_decoder *d;
        char err[512];

        (void)state;
        load();
        for (size_t memory = 64; memory <= (1u << 20); memory <<= 14) {
                struct wc_pgoutput_hold *h = wc_pgoutput_hold_new(memory);
                size_t i = 0, commits = 0;

                assert_non_null(h);
                d = new_dec();
                while (i < R.n) {
                        wc_lsn end = 0, at;
                        const struct wc_change *ch;
                        size_t first = i, k = i, len;
                        char *m;
                        int r = wc_pgoutput_hold_add(h, (char *)R.msg[i],
                                                     R.len[i], R.at[i], &end);

                        i++;
                        if (r == 0) { /* outside a transaction */
                                assert_int_equal(R.msg[first][0], 'M');
                                continue;
                        }
                        assert_int_equal(r, 1);
                        assert_int_equal(R.msg[first][0], 'B');
                        while ((r = wc_pgoutput_hold_add(h, (char *)R.msg[i],
                                                         R.len[i], R.at[i],
                                                         &end)) == 1)
                                i++;
                        assert_int_equal(r, 2);
                        assert_int_equal(R.msg[i][0], 'C');
                        assert_int_equal(end, R.at[i]);
                        wc_pgoutput_set_txn_end(d, end);
                        while ((r = wc_pgoutput_hold_next(h, &m, &len, &at)) ==
                               1) {
                                assert_int_equal(len, R.len[k]);
                                assert_memory_equal(m, R.msg[k], len);
                                assert_int_equal(at, R.at[k]);
                                assert_int_equal(wc_decoder_decode(d, m, len,
                                                                   at, &ch, err,
                                                                   sizeof(err)),
                                                 0);
                                if (k == first) {
                                        assert_int_equal(ch->op, WC_OP_BEGIN);
                                        assert_int_equal(ch->end_lsn, end);
                                }
                                k++;
                        }
                        assert_int_equal(r, 0);
                        /* the Commit last */
                        assert_int_equal(k, i + 1);
                        commits++;
                        i++;
                }
                assert_int_equal(commits, 16);
                wc_pgoutput_hold_free(h);
                wc_decoder_free(d);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_recorded),
            cmocka_unit_test(test_catalog_cached),
            cmocka_unit_test(test_cut),
            cmocka_unit_test(test_handwritten),
            cmocka_unit_test(test_builtin_types),
            cmocka_unit_test(test_start_options),
            cmocka_unit_test(test_hold),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);

        for (size_t i = 0; i < R.n; i++)
                free(R.msg[i]);
        for (size_t i = 0; i < R.ntypes; i++)
                free(R.type_name[i]);
        for (size_t i = 0; i < R.npks; i++)
                free(R.pk_names[i]);
        return r;
}
