/* SPDX-License-Identifier: MIT */
/*
 * pgoutput decoder (pgoutput.h): PostgreSQL's logical replication
 * protocol, text values, protocol versions 1 and 2 without streaming.
 *
 * Every read is bounds-checked: a message that ends early, names a table
 * no Relation described, or holds text that is not UTF-8 or a value that
 * is not its type's text is refused with -EBADMSG, never skipped.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/json_scan.h"
#include "decode/pgoutput.h"

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US 946684800000000LL
/* A commit time in microseconds since 2000 to the Unix epoch; false for
 * one that does not fit (no server writes it: the message is damaged,
 * and the change goes on without a time). */
static bool unix_time(uint64_t pg_us, int64_t *ret)
{
        if (!__builtin_add_overflow((int64_t)pg_us, PG_EPOCH_US, ret))
                return true;
        *ret = 0;
        return false;
}

/* Bytes of the message shown in an error, in hex. */
#define EXCERPT_BYTES 24

/* The JSON kind a column's values take, from its type OID alone (as
 * wal2json decides: a domain over a number is a string). */
enum kind { KIND_STRING, KIND_NUMBER, KIND_BOOL, KIND_BYTEA };

struct pcol {
        char *name;
        uint32_t name_len;
        uint32_t type_oid;
        int32_t typmod;
        char *type;
        uint32_t type_len;
        bool key; /* part of the replica identity */
        enum kind kind;
        /* its canonical JSON entry up to the value, in rel->canon:
         * {"name":"id","type":"bigint","typeoid":20,"value": */
        uint32_t prefix_at, prefix_len;
};

struct rel {
        uint32_t oid;
        char *schema, *table;
        size_t schema_len, table_len;
        char ident; /* 'd', 'n', 'f', 'i' */
        uint32_t ncols;
        struct pcol *cols;
        /* the primary key, in table order; looked up at the first change
         * when the replica identity does not give it */
        bool pk_known;
        struct walcast_column *pk;
        uint32_t npk;
        /* names and types need no JSON escapes: the lists' canonical text
         * (struct walcast_signal's columns_json) is made from prefixes */
        bool plain;
        struct wc_buf canon;
        struct wc_buf pk_json;
};

struct type_entry {
        uint32_t oid;
        int32_t typmod;
        char *name;
        uint32_t len;
};

/* A column list being built: value offsets into d->vals until the
 * message is done (the buffer may move while it grows). */
struct vec {
        struct walcast_column *items;
        size_t *off;   /* SIZE_MAX: value is not in d->vals */
        uint32_t *col; /* its index in the relation */
        uint32_t n, cap;
};

struct pgoutput {
        struct wc_decoder base; /* first: a struct wc_decoder * is one */
        struct wc_change change;
        struct wc_pgoutput_catalog cat;
        bool have_cat;

        /* relations by OID: open addressing, power-of-two capacity */
        struct rel **rels;
        size_t nrels, caprels;

        struct type_entry *types;
        size_t ntypes, captypes;

        struct vec cols, ident, missing;
        bool *ident_has; /* per relation column: identity carries it */
        uint32_t cap_has;
        struct wc_buf vals; /* JSON text of values the message lacks */
        struct wc_buf tmp;  /* catalog answers */
        struct wc_buf json; /* the lists' canonical text */

        /* the open transaction */
        bool in_txn;
        uint32_t xid;
        wc_lsn next_end; /* wc_pgoutput_set_txn_end() */

        /* a Truncate's other tables, for next() */
        const unsigned char *trunc_next;
        uint32_t trunc_left;
        wc_lsn trunc_at;

        /* the message being decoded, for errors */
        const unsigned char *msg;
        size_t len;
        wc_lsn at;
        char *errbuf;
        size_t errlen;
};

/* A reader over the message. */
struct rd {
        const unsigned char *p, *end;
};

static const char s_null[] = "null", s_true[] = "true", s_false[] = "false",
                  s_nan[] = "\"NaN\"", s_inf[] = "\"Infinity\"",
                  s_ninf[] = "\"-Infinity\"";

static int fail(struct pgoutput *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct pgoutput *d, int err, const char *fmt, ...)
{
        char what[320], lsn[WC_LSN_STRLEN], ex[EXCERPT_BYTES * 3 + 8];
        size_t n = d->len < EXCERPT_BYTES ? d->len : EXCERPT_BYTES, o = 0;
        va_list ap;

        if (!d->errbuf || d->errlen == 0)
                return err;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        for (size_t i = 0; i < n; i++)
                o += (size_t)snprintf(ex + o, sizeof(ex) - o, "%s%02x",
                                      i ? " " : "", d->msg[i]);
        if (d->len > n)
                snprintf(ex + o, sizeof(ex) - o, " ...");
        if (n == 0)
                snprintf(ex, sizeof(ex), "(empty)");
        snprintf(d->errbuf, d->errlen,
                 "could not decode pgoutput message at %s: %s: %s",
                 wc_lsn_format(d->at, lsn), what, ex);
        return err;
}

static int truncated(struct pgoutput *d, const char *what)
{
        return fail(d, -EBADMSG, "message ends inside %s", what);
}

static int nomem(struct pgoutput *d)
{
        return fail(d, -ENOMEM, "out of memory");
}

/* ---- reading ---- */

static inline bool rd_has(const struct rd *r, size_t n)
{
        return (size_t)(r->end - r->p) >= n;
}

static inline uint8_t get8(struct rd *r)
{
        return *r->p++;
}

static inline uint16_t get16(struct rd *r)
{
        uint16_t v = (uint16_t)(r->p[0] << 8 | r->p[1]);

        r->p += 2;
        return v;
}

static inline uint32_t get32(struct rd *r)
{
        uint32_t v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 |
                     (uint32_t)r->p[2] << 8 | (uint32_t)r->p[3];

        r->p += 4;
        return v;
}

static inline uint64_t get64(struct rd *r)
{
        uint64_t hi = get32(r);

        return hi << 32 | get32(r);
}

/* Is s[0..n) UTF-8?  ASCII eight bytes at a time. */
static bool utf8_ok(const unsigned char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                if (n - i >= 8) {
                        uint64_t x;

                        memcpy(&x, s + i, 8);
                        if (!(x & 0x8080808080808080ull)) {
                                i += 8;
                                continue;
                        }
                }
                if (s[i] < 0x80) {
                        i++;
                        continue;
                }
                size_t k = wc_jscan_utf8_seq(s + i, n - i);

                if (k == 0)
                        return false;
                i += k;
        }
        return true;
}

/* A NUL-terminated string in the message: a view of it (NUL-terminated
 * there), UTF-8 checked. */
static int get_string(struct pgoutput *d, struct rd *r, const char *what,
                      const char **ret, size_t *ret_len)
{
        const unsigned char *z = memchr(r->p, '\0', (size_t)(r->end - r->p));
        size_t n;

        if (!z)
                return truncated(d, what);
        n = (size_t)(z - r->p);
        if (!utf8_ok(r->p, n))
                return fail(d, -EBADMSG, "invalid UTF-8 in %s", what);
        *ret = (const char *)r->p;
        *ret_len = n;
        r->p = z + 1;
        return 0;
}

static char *dup_n(const char *s, size_t n)
{
        char *p = malloc(n + 1);

        if (p) {
                memcpy(p, s, n);
                p[n] = '\0';
        }
        return p;
}

/* ---- relations and types ---- */

static void rel_free(struct rel *rel)
{
        if (!rel)
                return;
        for (uint32_t i = 0; i < rel->ncols; i++) {
                free(rel->cols[i].name);
                free(rel->cols[i].type);
        }
        free(rel->cols);
        free(rel->pk);
        wc_buf_free(&rel->canon);
        wc_buf_free(&rel->pk_json);
        free(rel->schema);
        free(rel->table);
        free(rel);
}

static size_t rel_slot(const struct pgoutput *d, uint32_t oid)
{
        size_t mask = d->caprels - 1;
        size_t i = (oid * 2654435761u) & mask;

        while (d->rels[i] && d->rels[i]->oid != oid)
                i = (i + 1) & mask;
        return i;
}

static struct rel *rel_find(const struct pgoutput *d, uint32_t oid)
{
        if (!d->caprels)
                return NULL;
        return d->rels[rel_slot(d, oid)];
}

/* Stores rel, replacing (and freeing) the one of its OID. */
static int rel_put(struct pgoutput *d, struct rel *rel)
{
        size_t i;

        if ((d->nrels + 1) * 2 > d->caprels) {
                size_t cap = d->caprels ? d->caprels * 2 : 64;
                struct rel **old = d->rels;
                size_t oldcap = d->caprels;

                d->rels = calloc(cap, sizeof(*d->rels));
                if (!d->rels) {
                        d->rels = old;
                        return -ENOMEM;
                }
                d->caprels = cap;
                for (size_t k = 0; k < oldcap; k++)
                        if (old[k])
                                d->rels[rel_slot(d, old[k]->oid)] = old[k];
                free(old);
        }
        i = rel_slot(d, rel->oid);
        if (d->rels[i])
                rel_free(d->rels[i]);
        else
                d->nrels++;
        d->rels[i] = rel;
        return 0;
}

static enum kind kind_of(uint32_t oid)
{
        switch (oid) {
        case 20:   /* bigint */
        case 21:   /* smallint */
        case 23:   /* integer */
        case 26:   /* oid */
        case 700:  /* real */
        case 701:  /* double precision */
        case 1700: /* numeric */
                return KIND_NUMBER;
        case 16:
                return KIND_BOOL;
        case 17:
                return KIND_BYTEA;
        default:
                return KIND_STRING;
        }
}

/* The type's name: built in, remembered, or from the catalog. */
static int type_name(struct pgoutput *d, uint32_t oid, int32_t typmod,
                     char **ret, uint32_t *ret_len)
{
        char buf[128], err[256];
        int n, r;

        n = wc_pgoutput_builtin_type(oid, typmod, buf, sizeof(buf));
        if (n > 0) {
                *ret = dup_n(buf, (size_t)n);
                *ret_len = (uint32_t)n;
                return *ret ? 0 : nomem(d);
        }
        for (size_t i = 0; i < d->ntypes; i++)
                if (d->types[i].oid == oid && d->types[i].typmod == typmod) {
                        *ret = dup_n(d->types[i].name, d->types[i].len);
                        *ret_len = d->types[i].len;
                        return *ret ? 0 : nomem(d);
                }
        if (!d->have_cat || !d->cat.type_name)
                return fail(d, -EBADMSG,
                            "type OID %u is not a built-in type and there is "
                            "no catalog to look it up in",
                            oid);
        wc_buf_reset(&d->tmp);
        err[0] = '\0';
        r = d->cat.type_name(d->cat.ud, oid, typmod, &d->tmp, err, sizeof(err));
        if (r < 0)
                return fail(d, r, "could not look up the name of type %u: %s",
                            oid, err);
        if (d->tmp.len == 0 || d->tmp.len > UINT32_MAX ||
            memchr(d->tmp.data, '\0', d->tmp.len))
                return fail(d, -EBADMSG, "the catalog has no name for type %u",
                            oid);
        if (d->ntypes == d->captypes) {
                size_t cap = d->captypes ? d->captypes * 2 : 16;
                struct type_entry *t = realloc(d->types, cap * sizeof(*t));

                if (!t)
                        return nomem(d);
                d->types = t;
                d->captypes = cap;
        }
        struct type_entry *t = &d->types[d->ntypes];

        t->name = dup_n(d->tmp.data, d->tmp.len);
        if (!t->name)
                return nomem(d);
        t->oid = oid;
        t->typmod = typmod;
        t->len = (uint32_t)d->tmp.len;
        d->ntypes++;
        *ret = dup_n(t->name, t->len);
        *ret_len = t->len;
        return *ret ? 0 : nomem(d);
}

/* 'Y': a type that is not built in, before the first relation using it
 * (and again after it changed): forget what was looked up of it. */
static int decode_type(struct pgoutput *d, struct rd *r)
{
        const char *ns = NULL, *name = NULL;
        size_t nl = 0, ml = 0;
        uint32_t oid;
        int e;

        if (!rd_has(r, 4))
                return truncated(d, "a Type message");
        oid = get32(r);
        e = get_string(d, r, "the type's schema", &ns, &nl);
        if (e == 0)
                e = get_string(d, r, "the type's name", &name, &ml);
        if (e < 0)
                return e;
        for (size_t i = 0; i < d->ntypes;) {
                if (d->types[i].oid == oid) {
                        free(d->types[i].name);
                        d->types[i] = d->types[--d->ntypes];
                } else {
                        i++;
                }
        }
        return 0;
}

static int rel_canon(struct rel *rel);

/* 'R': a table's description; replaces the one of its OID. */
static int decode_relation(struct pgoutput *d, struct rd *r)
{
        struct rel *rel;
        const char *s = NULL;
        size_t n = 0;
        int e;

        if (!rd_has(r, 4))
                return truncated(d, "a Relation message");
        rel = calloc(1, sizeof(*rel));
        if (!rel)
                return nomem(d);
        rel->oid = get32(r);
        e = get_string(d, r, "the relation's schema", &s, &n);
        if (e < 0)
                goto fail;
        /* pgoutput sends pg_catalog as "" */
        if (n == 0) {
                s = "pg_catalog";
                n = strlen(s);
        }
        rel->schema = dup_n(s, n);
        rel->schema_len = n;
        e = get_string(d, r, "the relation's name", &s, &n);
        if (e < 0)
                goto fail;
        if (n == 0) {
                e = fail(d, -EBADMSG, "the relation's name is empty");
                goto fail;
        }
        rel->table = dup_n(s, n);
        rel->table_len = n;
        if (!rel->schema || !rel->table) {
                e = nomem(d);
                goto fail;
        }
        if (!rd_has(r, 3)) {
                e = truncated(d, "a Relation message");
                goto fail;
        }
        rel->ident = (char)get8(r);
        if (!strchr("dnfi", rel->ident) || rel->ident == '\0') {
                e = fail(d, -EBADMSG, "unknown replica identity 0x%02x",
                         (unsigned char)rel->ident);
                goto fail;
        }
        n = get16(r);
        if (n > 1664) { /* MaxTupleAttributeNumber */
                e = fail(d, -EBADMSG, "%zu columns", n);
                goto fail;
        }
        rel->cols = calloc(n ? n : 1, sizeof(*rel->cols));
        if (!rel->cols) {
                e = nomem(d);
                goto fail;
        }
        for (size_t i = 0; i < n; i++) {
                struct pcol *c = &rel->cols[i];
                uint8_t flags;
                const char *name = NULL;
                size_t nl = 0;

                if (!rd_has(r, 1)) {
                        e = truncated(d, "a column description");
                        goto fail;
                }
                flags = get8(r);
                if (flags & ~1u) {
                        e = fail(d, -EBADMSG, "unknown column flags 0x%02x",
                                 flags);
                        goto fail;
                }
                e = get_string(d, r, "a column's name", &name, &nl);
                if (e < 0)
                        goto fail;
                if (nl == 0) {
                        e = fail(d, -EBADMSG, "a column's name is empty");
                        goto fail;
                }
                if (!rd_has(r, 8)) {
                        e = truncated(d, "a column description");
                        goto fail;
                }
                c->name = dup_n(name, nl);
                rel->ncols = (uint32_t)i + 1;
                if (!c->name) {
                        e = nomem(d);
                        goto fail;
                }
                c->name_len = (uint32_t)nl;
                c->key = flags & 1u;
                c->type_oid = get32(r);
                c->typmod = (int32_t)get32(r);
                c->kind = kind_of(c->type_oid);
        }
        if (r->p != r->end) {
                e = fail(d, -EBADMSG, "unexpected data after the columns");
                goto fail;
        }
        for (uint32_t i = 0; i < rel->ncols; i++) {
                struct pcol *c = &rel->cols[i];

                e = type_name(d, c->type_oid, c->typmod, &c->type,
                              &c->type_len);
                if (e < 0)
                        goto fail;
        }
        if (rel->ncols > d->cap_has) {
                bool *h = realloc(d->ident_has, rel->ncols * sizeof(*h));

                if (!h) {
                        e = nomem(d);
                        goto fail;
                }
                d->ident_has = h;
                d->cap_has = rel->ncols;
        }
        if (rel_canon(rel) < 0 || rel_put(d, rel) < 0) {
                e = nomem(d);
                goto fail;
        }
        return 0;
fail:
        rel_free(rel);
        return e;
}

/* Each column's canonical entry up to its value, when every name and type
 * needs no JSON escape (else rel->plain stays false and the lists have no
 * text). */
static int rel_canon(struct rel *rel)
{
        for (uint32_t i = 0; i < rel->ncols; i++) {
                struct pcol *c = &rel->cols[i];
                size_t at = rel->canon.len;
                int r = wc_json_append_column(&rel->canon, c->name, c->name_len,
                                              c->type, c->type_len, c->type_oid,
                                              true);

                if (r == -EINVAL) {
                        wc_buf_reset(&rel->canon);
                        return 0;
                }
                if (r < 0)
                        return r;
                c->prefix_at = (uint32_t)at;
                c->prefix_len = (uint32_t)(rel->canon.len - at);
        }
        rel->plain = true;
        return 0;
}

/* The primary key's canonical text, once it is known. */
static int rel_pk_json(struct rel *rel)
{
        wc_buf_reset(&rel->pk_json);
        return wc_json_append_key_list(&rel->pk_json, rel->pk, rel->npk);
}

/* The canonical text of a list of v's values (after vec_fix()), into
 * d->json, which has the room (lists_json()). */
static struct wc_str list_json(struct pgoutput *d, const struct rel *rel,
                               const struct vec *v)
{
        char *o = d->json.data + d->json.len, *start = o;

        *o++ = '[';
        for (uint32_t i = 0; i < v->n; i++) {
                const struct pcol *c = &rel->cols[v->col[i]];

                if (i)
                        *o++ = ',';
                memcpy(o, rel->canon.data + c->prefix_at, c->prefix_len);
                o += c->prefix_len;
                memcpy(o, v->items[i].value, v->items[i].value_len);
                o += v->items[i].value_len;
                *o++ = '}';
        }
        *o++ = ']';
        d->json.len += (size_t)(o - start);
        return (struct wc_str){start, (size_t)(o - start)};
}

static int lists_json(struct pgoutput *d, const struct rel *rel)
{
        struct wc_change *ch = &d->change;
        const struct vec *vs[2] = {&d->cols, &d->ident};
        size_t need = 0;

        if (!rel->plain)
                return 0;
        for (int k = 0; k < 2; k++) {
                need += 2;
                for (uint32_t i = 0; i < vs[k]->n; i++)
                        need += rel->cols[vs[k]->col[i]].prefix_len +
                                vs[k]->items[i].value_len + 2;
        }
        wc_buf_reset(&d->json);
        if (wc_buf_reserve(&d->json, need) < 0)
                return nomem(d);
        if (ch->op != WC_OP_DELETE)
                ch->columns_json = list_json(d, rel, &d->cols);
        if (ch->op != WC_OP_INSERT)
                ch->identity_json = list_json(d, rel, &d->ident);
        ch->pk_json = (struct wc_str){rel->pk_json.data, rel->pk_json.len};
        return 0;
}

/* The primary key of rel, in table order: the replica identity's columns
 * when it is the default one, else from the catalog. */
static int rel_pk(struct pgoutput *d, struct rel *rel)
{
        uint32_t n = 0;
        char err[256];
        int e;

        if (rel->pk_known)
                return 0;
        free(rel->pk);
        rel->pk = calloc(rel->ncols ? rel->ncols : 1, sizeof(*rel->pk));
        if (!rel->pk)
                return nomem(d);
        if (rel->ident == 'd') {
                for (uint32_t i = 0; i < rel->ncols; i++)
                        if (rel->cols[i].key)
                                rel->pk[n++] = (struct walcast_column){
                                    .name = rel->cols[i].name,
                                    .name_len = rel->cols[i].name_len,
                                    .type_oid = rel->cols[i].type_oid,
                                    .type = rel->cols[i].type,
                                    .type_len = rel->cols[i].type_len,
                                };
                rel->npk = n;
                rel->pk_known = true;
                return rel->plain && rel_pk_json(rel) < 0 ? nomem(d) : 0;
        }
        if (!d->have_cat || !d->cat.primary_key)
                return fail(d, -EBADMSG,
                            "no catalog to look up the primary key of "
                            "\"%s\".\"%s\"",
                            rel->schema, rel->table);
        wc_buf_reset(&d->tmp);
        err[0] = '\0';
        e = d->cat.primary_key(d->cat.ud, rel->oid, &d->tmp, err, sizeof(err));
        if (e < 0)
                return fail(d, e,
                            "could not look up the primary key of "
                            "\"%s\".\"%s\": %s",
                            rel->schema, rel->table, err);
        for (uint32_t i = 0; i < rel->ncols; i++) {
                const struct pcol *c = &rel->cols[i];

                for (size_t at = 0; at < d->tmp.len;) {
                        const char *nm = d->tmp.data + at;
                        size_t l = strnlen(nm, d->tmp.len - at);

                        if (l == c->name_len && memcmp(nm, c->name, l) == 0) {
                                rel->pk[n++] = (struct walcast_column){
                                    .name = c->name,
                                    .name_len = c->name_len,
                                    .type_oid = c->type_oid,
                                    .type = c->type,
                                    .type_len = c->type_len,
                                };
                                break;
                        }
                        at += l + 1;
                }
        }
        rel->npk = n;
        rel->pk_known = true;
        return rel->plain && rel_pk_json(rel) < 0 ? nomem(d) : 0;
}

/* ---- values ---- */

static int vec_push(struct pgoutput *d, struct vec *v,
                    const struct walcast_column *c, size_t off, uint32_t col)
{
        if (v->n == v->cap) {
                uint32_t cap = v->cap ? v->cap * 2 : 32;
                struct walcast_column *it =
                    realloc(v->items, cap * sizeof(*it));
                size_t *o;

                if (!it)
                        return nomem(d);
                v->items = it;
                o = realloc(v->off, cap * sizeof(*o));
                if (!o)
                        return nomem(d);
                v->off = o;
                uint32_t *ci = realloc(v->col, cap * sizeof(*ci));

                if (!ci)
                        return nomem(d);
                v->col = ci;
                v->cap = cap;
        }
        v->items[v->n] = *c;
        v->off[v->n] = off;
        v->col[v->n] = col;
        v->n++;
        return 0;
}

/* Points the values kept in d->vals at it, now that it moves no more. */
static void vec_fix(struct pgoutput *d, struct vec *v,
                    struct walcast_columns *ret)
{
        for (uint32_t i = 0; i < v->n; i++)
                if (v->off[i] != SIZE_MAX)
                        v->items[i].value = d->vals.data + v->off[i];
        ret->items = v->items;
        ret->count = v->n;
}

/* Is s[0..n) a JSON number? */
static bool json_number(const char *s, size_t n)
{
        size_t i = 0;

        if (i < n && s[i] == '-')
                i++;
        if (i >= n)
                return false;
        if (s[i] == '0') {
                i++;
        } else if (s[i] >= '1' && s[i] <= '9') {
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
        } else {
                return false;
        }
        if (i < n && s[i] == '.') {
                size_t k = ++i;

                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == k)
                        return false;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                size_t k;

                i++;
                if (i < n && (s[i] == '+' || s[i] == '-'))
                        i++;
                k = i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
                if (i == k)
                        return false;
        }
        return i == n;
}

#define IS_LIT(s, n, lit) ((n) == sizeof(lit) - 1 && !memcmp(s, lit, n))

/*
 * The JSON text of a value of column c whose text is s[0..n): into col,
 * as a view of the message or at *ret_off in d->vals.
 */
static int value(struct pgoutput *d, const struct pcol *c, const char *s,
                 size_t n, struct walcast_column *col, size_t *ret_off)
{
        char *o;

        *ret_off = SIZE_MAX;
        switch (c->kind) {
        case KIND_NUMBER:
                if (json_number(s, n)) {
                        col->value = s; /* zero-copy */
                        col->value_len = (uint32_t)n;
                        return 0;
                }
                if (IS_LIT(s, n, "NaN")) {
                        col->value = s_nan;
                        col->value_len = sizeof(s_nan) - 1;
                } else if (IS_LIT(s, n, "Infinity")) {
                        col->value = s_inf;
                        col->value_len = sizeof(s_inf) - 1;
                } else if (IS_LIT(s, n, "-Infinity")) {
                        col->value = s_ninf;
                        col->value_len = sizeof(s_ninf) - 1;
                } else {
                        return fail(d, -EBADMSG,
                                    "value of column \"%s\" (%s) is not a "
                                    "number",
                                    c->name, c->type);
                }
                return 0;
        case KIND_BOOL:
                if (IS_LIT(s, n, "t")) {
                        col->value = s_true;
                        col->value_len = 4;
                } else if (IS_LIT(s, n, "f")) {
                        col->value = s_false;
                        col->value_len = 5;
                } else {
                        return fail(d, -EBADMSG,
                                    "value of column \"%s\" is not a boolean",
                                    c->name);
                }
                return 0;
        case KIND_BYTEA:
                /* bytea_output is pinned to hex: \x then digits; sent
                 * without the \x, as wal2json does */
                if (n < 2 || s[0] != '\\' || s[1] != 'x')
                        return fail(d, -EBADMSG,
                                    "value of column \"%s\" (bytea) is not "
                                    "in hex format",
                                    c->name);
                for (size_t i = 2; i < n; i++)
                        if (!((s[i] >= '0' && s[i] <= '9') ||
                              (s[i] >= 'a' && s[i] <= 'f')))
                                return fail(d, -EBADMSG,
                                            "value of column \"%s\" (bytea) "
                                            "is not in hex format",
                                            c->name);
                if (wc_buf_reserve(&d->vals, n) < 0)
                        return nomem(d);
                *ret_off = d->vals.len;
                o = d->vals.data + d->vals.len;
                *o++ = '"';
                memcpy(o, s + 2, n - 2);
                o += n - 2;
                *o++ = '"';
                col->value_len = (uint32_t)n;
                d->vals.len += n;
                return 0;
        default:
                if (!utf8_ok((const unsigned char *)s, n))
                        return fail(
                            d, -EBADMSG,
                            "invalid UTF-8 in the value of column \"%s\"",
                            c->name);
                if (wc_buf_reserve(&d->vals, WC_JSON_STRING_MAX(n)) < 0)
                        return nomem(d);
                *ret_off = d->vals.len;
                o = wc_json_put_string(d->vals.data + d->vals.len, s, n);
                col->value_len = (uint32_t)(o - (d->vals.data + d->vals.len));
                d->vals.len += col->value_len;
                return 0;
        }
}

/* Which columns of a tuple go into the list. */
enum take { TAKE_ALL, TAKE_KEY };

/*
 * TupleData of rel into v: every column (TAKE_ALL) or the replica
 * identity's (TAKE_KEY).  An unchanged TOASTed value ('u') is left out
 * and, when u is not NULL, its column index is pushed there (as an item
 * whose value_len is the index).  had[i] is set for the columns taken.
 */
static int tuple(struct pgoutput *d, struct rd *r, const struct rel *rel,
                 enum take take, struct vec *v, struct vec *u, bool *had)
{
        uint32_t n;

        if (!rd_has(r, 2))
                return truncated(d, "a tuple");
        n = get16(r);
        if (n != rel->ncols)
                return fail(d, -EBADMSG,
                            "a tuple of \"%s\".\"%s\" has %u columns, its "
                            "Relation message %u",
                            rel->schema, rel->table, n, rel->ncols);
        for (uint32_t i = 0; i < n; i++) {
                const struct pcol *c = &rel->cols[i];
                struct walcast_column col = {
                    .name = c->name,
                    .name_len = c->name_len,
                    .type_oid = c->type_oid,
                    .type = c->type,
                    .type_len = c->type_len,
                };
                bool want = take == TAKE_ALL || c->key;
                size_t off = SIZE_MAX;
                uint32_t len;
                uint8_t k;
                int e;

                if (!rd_has(r, 1))
                        return truncated(d, "a tuple");
                k = get8(r);
                switch (k) {
                case 'n':
                        col.value = s_null;
                        col.value_len = 4;
                        break;
                case 'u':
                        if (u && want) {
                                col.value_len = i;
                                e = vec_push(d, u, &col, SIZE_MAX, i);
                                if (e < 0)
                                        return e;
                        }
                        continue;
                case 't':
                        if (!rd_has(r, 4))
                                return truncated(d, "a value");
                        len = get32(r);
                        if (!rd_has(r, len))
                                return truncated(d, "a value");
                        if (want) {
                                e = value(d, c, (const char *)r->p, len, &col,
                                          &off);
                                if (e < 0)
                                        return e;
                        }
                        r->p += len;
                        break;
                case 'b':
                        return fail(d, -EBADMSG,
                                    "binary value in column \"%s\" (walcast "
                                    "asks for text)",
                                    c->name);
                default:
                        return fail(d, -EBADMSG,
                                    "unknown value kind 0x%02x in column "
                                    "\"%s\"",
                                    k, c->name);
                }
                if (!want)
                        continue;
                if (had)
                        had[i] = true;
                e = vec_push(d, v, &col, off, i);
                if (e < 0)
                        return e;
        }
        return 0;
}

/* The relation a change names. */
static int change_rel(struct pgoutput *d, struct rd *r, struct rel **ret)
{
        uint32_t oid;

        if (!rd_has(r, 4))
                return truncated(d, "a change");
        oid = get32(r);
        *ret = rel_find(d, oid);
        if (!*ret)
                return fail(d, -EBADMSG,
                            "unknown relation OID %u (no Relation message "
                            "described it)",
                            oid);
        return 0;
}

static void set_rel(struct wc_change *ch, const struct rel *rel)
{
        ch->schema = rel->schema;
        ch->schema_len = rel->schema_len;
        ch->table = rel->table;
        ch->table_len = rel->table_len;
}

/* 'I', 'U', 'D'. */
static int decode_row(struct pgoutput *d, struct rd *r, uint8_t type)
{
        struct wc_change *ch = &d->change;
        struct rel *rel = NULL;
        bool old = false, key_only = false;
        uint8_t k;
        int e;

        e = change_rel(d, r, &rel);
        if (e < 0)
                return e;
        e = rel_pk(d, rel);
        if (e < 0)
                return e;
        ch->op = type == 'I'   ? WC_OP_INSERT
                 : type == 'U' ? WC_OP_UPDATE
                               : WC_OP_DELETE;
        set_rel(ch, rel);
        ch->pk = (struct walcast_columns){rel->pk, rel->npk};
        if (rel->ncols)
                memset(d->ident_has, 0, rel->ncols * sizeof(*d->ident_has));
        if (!rd_has(r, 1))
                return truncated(d, "a change");
        k = get8(r);
        if (type != 'I' && (k == 'K' || k == 'O')) {
                /* the old key, or the old row under REPLICA IDENTITY
                 * FULL: the identity */
                old = true;
                key_only = k == 'K';
                e = tuple(d, r, rel, key_only ? TAKE_KEY : TAKE_ALL, &d->ident,
                          NULL, d->ident_has);
                if (e < 0)
                        return e;
                if (type == 'U') {
                        if (!rd_has(r, 1))
                                return truncated(d, "an update");
                        k = get8(r);
                }
        }
        if (type == 'D') {
                if (!old)
                        return fail(d, -EBADMSG,
                                    "a delete without 'K' or 'O' tuple");
        } else {
                if (k != 'N')
                        return fail(d, -EBADMSG,
                                    "expected 'N' (new tuple), not 0x%02x", k);
                e = tuple(d, r, rel, TAKE_ALL, &d->cols,
                          type == 'U' ? &d->missing : NULL, NULL);
                if (e < 0)
                        return e;
        }
        if (r->p != r->end)
                return fail(d, -EBADMSG, "unexpected data after the tuple");
        if (type == 'U' && !old && rel->ident != 'n' && rel->ident != 'f') {
                /* the key did not change: it is in the new row (wal2json
                 * sends it as the identity of every update) */
                for (uint32_t i = 0; i < rel->ncols; i++) {
                        if (!rel->cols[i].key)
                                continue;
                        /* d->cols: the new row without its 'u' columns */
                        for (uint32_t m = 0; m < d->cols.n; m++)
                                if (d->cols.items[m].name ==
                                    rel->cols[i].name) {
                                        e = vec_push(d, &d->ident,
                                                     &d->cols.items[m],
                                                     d->cols.off[m], i);
                                        if (e < 0)
                                                return e;
                                        d->ident_has[i] = true;
                                        break;
                                }
                }
        }
        /* missing: what neither list carries (the bus completes the
         * others from the identity) */
        uint32_t keep = 0;

        for (uint32_t i = 0; i < d->missing.n; i++) {
                struct walcast_column c = d->missing.items[i];
                uint32_t at = c.value_len;

                if (d->ident_has[at])
                        continue;
                c.value_len = 0;
                c.value = NULL;
                d->missing.items[keep] = c;
                d->missing.off[keep++] = SIZE_MAX;
        }
        d->missing.n = keep;
        vec_fix(d, &d->cols, &ch->columns);
        vec_fix(d, &d->ident, &ch->identity);
        vec_fix(d, &d->missing, &ch->missing);
        e = lists_json(d, rel);
        if (e < 0)
                return e;
        ch->lsn = d->at;
        if (d->in_txn) {
                ch->has_xid = true;
                ch->xid = d->xid;
        }
        return 0;
}

/* 'T': the first table here, the others from next(). */
static int decode_truncate(struct pgoutput *d, struct rd *r)
{
        struct wc_change *ch = &d->change;
        struct rel *rel = NULL;
        uint32_t n;

        if (!rd_has(r, 5))
                return truncated(d, "a Truncate message");
        n = get32(r);
        (void)get8(r); /* CASCADE, RESTART IDENTITY: each table says it */
        if (n == 0)
                return fail(d, -EBADMSG, "a Truncate of no table");
        if ((size_t)(r->end - r->p) != (size_t)n * 4)
                return fail(d, -EBADMSG,
                            "a Truncate of %u tables has %zu bytes of OIDs", n,
                            (size_t)(r->end - r->p));
        /* every table must be known before any is handed on */
        for (uint32_t i = 0; i < n; i++) {
                struct rd q = {r->p + 4 * (size_t)i, r->end};
                int e = change_rel(d, &q, &rel);

                if (e < 0)
                        return e;
        }
        (void)change_rel(d, r, &rel);
        ch->op = WC_OP_TRUNCATE;
        set_rel(ch, rel);
        ch->lsn = d->at;
        if (d->in_txn) {
                ch->has_xid = true;
                ch->xid = d->xid;
        }
        d->trunc_next = r->p;
        d->trunc_left = n - 1;
        d->trunc_at = d->at;
        return 0;
}

/* 'M': pg_logical_emit_message(). */
static int decode_message(struct pgoutput *d, struct rd *r)
{
        struct wc_change *ch = &d->change;
        const char *prefix = NULL;
        size_t plen = 0;
        uint32_t n;
        uint8_t flags;
        char *o;
        int e;

        if (!rd_has(r, 9))
                return truncated(d, "a Message message");
        flags = get8(r);
        if (flags & ~1u)
                return fail(d, -EBADMSG, "unknown message flags 0x%02x", flags);
        ch->op = WC_OP_MESSAGE;
        ch->transactional = flags & 1u;
        ch->lsn = get64(r);
        e = get_string(d, r, "the message's prefix", &prefix, &plen);
        if (e < 0)
                return e;
        ch->prefix = prefix; /* NUL-terminated in the message */
        ch->prefix_len = plen;
        if (!rd_has(r, 4))
                return truncated(d, "a Message message");
        n = get32(r);
        if ((size_t)(r->end - r->p) != n)
                return fail(d, -EBADMSG,
                            "the content's length %u is not what the "
                            "message holds (%zu bytes)",
                            n, (size_t)(r->end - r->p));
        wc_buf_reset(&d->vals);
        if (utf8_ok(r->p, n)) {
                if (wc_buf_reserve(&d->vals, WC_JSON_STRING_MAX(n)) < 0)
                        return nomem(d);
                o = wc_json_put_string(d->vals.data, (const char *)r->p, n);
        } else {
                /* bytes JSON cannot carry: their base64 */
                if (wc_buf_reserve(&d->vals, WC_BASE64_LEN(n) + 2) < 0)
                        return nomem(d);
                o = d->vals.data;
                *o++ = '"';
                o = wc_base64_put(o, r->p, n);
                *o++ = '"';
                ch->content_base64 = true;
        }
        ch->content.ptr = d->vals.data;
        ch->content.len = (size_t)(o - d->vals.data);
        if (ch->transactional && d->in_txn) {
                ch->has_xid = true;
                ch->xid = d->xid;
        }
        return 0;
}

static int decode_one(struct pgoutput *d, const unsigned char *msg, size_t len,
                      const struct wc_change **ret_change)
{
        struct wc_change *ch = &d->change;
        struct rd r = {msg, msg + len};
        uint8_t type;
        int e;

        if (len == 0)
                return fail(d, -EBADMSG, "empty message");
        type = get8(&r);
        *ret_change = ch;
        switch (type) {
        case 'B':
                if (!rd_has(&r, 20) || r.end - r.p != 20)
                        return fail(d, -EBADMSG, "a Begin message of %zu bytes",
                                    len);
                ch->op = WC_OP_BEGIN;
                ch->commit_lsn = get64(&r);
                /* pgoutput says where the transaction ends only at its
                 * Commit: known here when the stream held it until then */
                ch->end_lsn = d->next_end;
                d->next_end = WC_LSN_INVALID;
                ch->has_time = unix_time(get64(&r), &ch->time_us);
                ch->has_xid = true;
                ch->xid = get32(&r);
                d->in_txn = true;
                d->xid = ch->xid;
                return 0;
        case 'C':
                if (r.end - r.p != 25)
                        return fail(d, -EBADMSG,
                                    "a Commit message of %zu bytes", len);
                (void)get8(&r); /* flags, unused */
                ch->op = WC_OP_COMMIT;
                ch->commit_lsn = get64(&r);
                ch->end_lsn = get64(&r);
                ch->has_time = unix_time(get64(&r), &ch->time_us);
                if (d->in_txn) {
                        ch->has_xid = true;
                        ch->xid = d->xid;
                }
                d->in_txn = false;
                return 0;
        case 'O': {
                const char *name = NULL;
                size_t n = 0;

                if (!rd_has(&r, 8))
                        return truncated(d, "an Origin message");
                (void)get64(&r);
                e = get_string(d, &r, "the origin's name", &name, &n);
                if (e < 0)
                        return e;
                if (r.p != r.end)
                        return fail(d, -EBADMSG,
                                    "unexpected data after the origin");
                *ret_change = NULL;
                return 0;
        }
        case 'R':
                e = decode_relation(d, &r);
                *ret_change = NULL;
                return e;
        case 'Y':
                e = decode_type(d, &r);
                if (e == 0 && r.p != r.end)
                        e = fail(d, -EBADMSG, "unexpected data after the type");
                *ret_change = NULL;
                return e;
        case 'I':
        case 'U':
        case 'D':
                return decode_row(d, &r, type);
        case 'T':
                return decode_truncate(d, &r);
        case 'M':
                return decode_message(d, &r);
        default:
                return fail(d, -EBADMSG,
                            "unknown message type 0x%02x (streaming and "
                            "two-phase are not asked for)",
                            type);
        }
}

static void reset(struct pgoutput *d)
{
        memset(&d->change, 0, sizeof(d->change));
        d->cols.n = d->ident.n = d->missing.n = 0;
        d->trunc_left = 0;
        wc_buf_reset(&d->vals);
}

static int pgoutput_decode(struct wc_decoder *dec, char *msg, size_t len,
                           wc_lsn at, const struct wc_change **ret_change,
                           char *errbuf, size_t errlen)
{
        struct pgoutput *d = (struct pgoutput *)dec;
        int e;

        reset(d);
        d->msg = (const unsigned char *)msg;
        d->len = msg ? len : 0;
        d->at = at;
        d->errbuf = errbuf;
        d->errlen = errlen;
        if (!msg)
                return fail(d, -EBADMSG, "empty message");
        if (len > INT32_MAX)
                return fail(d, -EBADMSG, "message of %zu bytes is too large",
                            len);
        e = decode_one(d, (const unsigned char *)msg, len, ret_change);
        if (e < 0) {
                reset(d);
                *ret_change = NULL;
        }
        return e;
}

static int pgoutput_next(struct wc_decoder *dec,
                         const struct wc_change **ret_change)
{
        struct pgoutput *d = (struct pgoutput *)dec;
        struct rd r;
        struct rel *rel = NULL;

        if (d->trunc_left == 0)
                return 0;
        r = (struct rd){d->trunc_next, d->trunc_next + 4};
        d->errbuf = NULL;
        d->errlen = 0;
        if (change_rel(d, &r, &rel) < 0) /* checked at decode */
                return 0;
        d->trunc_next += 4;
        d->trunc_left--;
        set_rel(&d->change, rel);
        d->change.lsn = d->trunc_at;
        *ret_change = &d->change;
        return 1;
}

static int pgoutput_relation(struct wc_decoder *dec, char *msg, size_t len,
                             const struct wc_change **ret_change)
{
        struct pgoutput *d = (struct pgoutput *)dec;
        struct rd r = {(const unsigned char *)msg,
                       (const unsigned char *)msg + len};
        struct rel *rel = NULL;
        uint8_t type;

        d->errbuf = NULL;
        d->errlen = 0;
        reset(d);
        if (!msg || len < 5)
                return -EBADMSG;
        type = get8(&r);
        if (!strchr("IUD", type) || type == '\0')
                return -EBADMSG;
        if (change_rel(d, &r, &rel) < 0)
                return -EBADMSG;
        d->change.op = type == 'I'   ? WC_OP_INSERT
                       : type == 'U' ? WC_OP_UPDATE
                                     : WC_OP_DELETE;
        set_rel(&d->change, rel);
        *ret_change = &d->change;
        return 0;
}

void wc_pgoutput_set_txn_end(struct wc_decoder *dec, wc_lsn end_lsn)
{
        ((struct pgoutput *)dec)->next_end = end_lsn;
}

void wc_pgoutput_set_catalog(struct wc_decoder *dec,
                             const struct wc_pgoutput_catalog *cat)
{
        struct pgoutput *d = (struct pgoutput *)dec;

        d->have_cat = cat != NULL;
        if (cat)
                d->cat = *cat;
}

static struct wc_decoder *pgoutput_create(void)
{
        struct pgoutput *d = calloc(1, sizeof(*d));

        return d ? &d->base : NULL;
}

static void pgoutput_destroy(struct wc_decoder *dec)
{
        struct pgoutput *d = (struct pgoutput *)dec;

        if (!d)
                return;
        for (size_t i = 0; i < d->caprels; i++)
                rel_free(d->rels[i]);
        free(d->rels);
        for (size_t i = 0; i < d->ntypes; i++)
                free(d->types[i].name);
        free(d->types);
        struct vec *v[] = {&d->cols, &d->ident, &d->missing};

        for (size_t i = 0; i < 3; i++) {
                free(v[i]->items);
                free(v[i]->off);
                free(v[i]->col);
        }
        free(d->ident_has);
        wc_buf_free(&d->vals);
        wc_buf_free(&d->tmp);
        wc_buf_free(&d->json);
        free(d);
}

/* Nothing depends on the filter: pgoutput has no pushdown (the
 * publication decides what the server sends), and the options that depend
 * on the server and the publication come from
 * wc_pgoutput_start_options(). */
static int pgoutput_options(const struct wc_filter_config *f,
                            struct wc_decoder_options *ret)
{
        (void)f;
        (void)ret;
        return 0;
}

int wc_pgoutput_start_options(const char *publication, int server_version,
                              struct wc_decoder_options *ret)
{
        struct wc_buf q;
        int r;

        if (!publication || !*publication)
                return -EINVAL;
        wc_buf_init(&q);
        /* an identifier in double quotes, quotes doubled */
        r = wc_buf_append_char(&q, '"');
        for (const char *p = publication; !r && *p; p++)
                r = *p == '"' ? wc_buf_append(&q, "\"\"", 2)
                              : wc_buf_append_char(&q, *p);
        if (!r)
                r = wc_buf_append_char(&q, '"');
        if (!r)
                r = wc_decoder_options_add(ret, "proto_version",
                                           server_version >= 140000 ? "2" : "1",
                                           1);
        if (!r)
                r = wc_decoder_options_add(ret, "publication_names", q.data,
                                           q.len);
        if (!r && server_version >= 140000)
                r = wc_decoder_options_add(ret, "messages", "true", 4);
        wc_buf_free(&q);
        return r;
}

const struct wc_decoder_ops wc_pgoutput = {
    .name = "pgoutput",
    .plugin = "pgoutput",
    .optional = NULL,
    .optional_lost = NULL,
    .options = pgoutput_options,
    .create = pgoutput_create,
    .destroy = pgoutput_destroy,
    .decode = pgoutput_decode,
    .relation = pgoutput_relation,
    .next = pgoutput_next,
};
