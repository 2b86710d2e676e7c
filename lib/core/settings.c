/* SPDX-License-Identifier: MIT */
/* Settings: a block of nodes read against a table of keys (settings.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/kv.h"
#include "core/pattern.h"
#include "core/settings.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A plugin's config block is a handful of settings; the caps keep a wrong
 * or hostile file from making the flattened copy much larger than the file
 * itself (every nested value repeats the keys above it). */
#define KV_MAX     1024
#define KV_KEY_MAX 1024

static int vfail_at(struct wc_settings *st, unsigned line, unsigned column,
                    const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vfail_at(struct wc_settings *st, unsigned line, unsigned column,
                    const char *fmt, va_list ap)
{
        int n;

        if (!st->errbuf || st->errlen == 0)
                return -EINVAL;
        if (line > 0)
                n = snprintf(st->errbuf, st->errlen, "%s:%u:%u: ", st->name,
                             line, column);
        else
                n = snprintf(st->errbuf, st->errlen, "%s: ", st->name);
        if (n < 0 || (size_t)n >= st->errlen)
                return -EINVAL;
        vsnprintf(st->errbuf + n, st->errlen - (size_t)n, fmt, ap);
        return -EINVAL;
}

int wc_settings_fail_at(struct wc_settings *st, unsigned line, unsigned column,
                        const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail_at(st, line, column, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int wc_settings_fail(struct wc_settings *st, const struct wc_node *at,
                     const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vfail_at(st, at ? at->line : 0, at ? at->column : 0, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int wc_settings_fail_oom(struct wc_settings *st)
{
        wc_settings_fail(st, NULL, "out of memory");
        return -ENOMEM;
}

/* Drops a UTF-8 sequence cut short at the end of buf[start..len), so that
 * a shortened value stays valid UTF-8. */
static size_t utf8_cut(const char *buf, size_t start, size_t len)
{
        size_t end = len, cont = 0, need;
        unsigned char lead;

        while (end > start && cont < 3 &&
               ((unsigned char)buf[end - 1] & 0xc0) == 0x80) {
                end--;
                cont++;
        }
        if (end <= start || ((unsigned char)buf[end - 1] & 0xc0) != 0xc0)
                return len;
        lead = (unsigned char)buf[end - 1];
        need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
        return cont < need ? end - 1 : len;
}

/*
 * Appends s to buf at o for a message: control characters escaped so that
 * a value cannot break a log line, and cut with "..." before it passes
 * room, so that a huge value cannot push out the rest of the message.
 * Returns the new length; the caller adds what follows and the NUL.
 */
static size_t escape_append(char *buf, size_t o, size_t room, const char *s,
                            size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t start = o;

        for (size_t i = 0; i < len; i++) {
                unsigned char ch = (unsigned char)s[i];

                /* room for the longest escape and "..." */
                if (o + 4 + 3 > room) {
                        o = utf8_cut(buf, start, o);
                        memcpy(buf + o, "...", 3);
                        return o + 3;
                }
                if (ch == '"' || ch == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char)ch;
                } else if (ch < 0x20 || ch == 0x7f) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[ch >> 4];
                        buf[o++] = hex[ch & 0xf];
                } else {
                        buf[o++] = (char)ch;
                }
        }
        return o;
}

/* s as a double-quoted string for a message, escaped and cut. */
const char *wc_quote_n(char buf[WC_QUOTE_MAX], const char *s, size_t len)
{
        size_t o;

        buf[0] = '"';
        /* keep 2 for the closing quote and the NUL */
        o = escape_append(buf, 1, WC_QUOTE_MAX - 2, s, len);
        buf[o++] = '"';
        buf[o] = '\0';
        return buf;
}

const char *wc_quote(char buf[WC_QUOTE_MAX], const char *s)
{
        return wc_quote_n(buf, s, strlen(s));
}

const char *wc_node_kind_name(const struct wc_node *n)
{
        switch (n->kind) {
        case WC_NODE_MAPPING:
                return "a mapping";
        case WC_NODE_SEQUENCE:
                return "a sequence";
        case WC_NODE_SCALAR:
                break;
        }
        return n->null ? "an empty value" : "a scalar";
}

/* "in "source"", or "at the top level" for the root. */
const char *wc_where_in(char buf[WC_WHERE_LEN], const char *path)
{
        if (!path[0])
                return "at the top level";
        snprintf(buf, WC_WHERE_LEN, "in \"%s\"", path);
        return buf;
}

int wc_settings_fail_type(struct wc_settings *st, const struct wc_node *at,
                          const char *expected, const char *path)
{
        if (!path[0])
                return wc_settings_fail(
                    st, at, "expected %s at the top level, found %s", expected,
                    wc_node_kind_name(at));
        return wc_settings_fail(st, at, "expected %s for \"%s\", found %s",
                                expected, path, wc_node_kind_name(at));
}

/* ---- the tree ---- */

void wc_path_format(char buf[WC_PATH_LEN], const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, WC_PATH_LEN, fmt, ap);
        va_end(ap);
}

/* parent "." key, for the free-form keys of a plugin's config: they are
 * written by the user, so they are escaped like a quoted value. */
static void path_key(char buf[WC_PATH_LEN], const char *parent, const char *key)
{
        size_t o = strnlen(parent, WC_PATH_LEN - 1);

        memcpy(buf, parent, o);
        /* a parent that was cut already stays as it is */
        if (o + 1 + 4 + 3 < WC_PATH_LEN) {
                buf[o++] = '.';
                o = escape_append(buf, o, WC_PATH_LEN - 1, key, strlen(key));
        }
        buf[o] = '\0';
}

void wc_node_free(struct wc_node *n)
{
        if (!n)
                return;
        for (size_t i = 0; i < n->nkids; i++)
                wc_node_free(n->kids[i]);
        free(n->kids);
        free(n->text);
        free(n);
}

int wc_node_append(struct wc_node *parent, struct wc_node *kid)
{
        if (parent->nkids == parent->cap) {
                size_t cap = parent->cap ? parent->cap * 2 : 4;
                struct wc_node **kids =
                    reallocarray(parent->kids, cap, sizeof(*kids));

                if (!kids)
                        return -ENOMEM;
                parent->kids = kids;
                parent->cap = cap;
        }
        parent->kids[parent->nkids++] = kid;
        return 0;
}

/* ---- scalars ---- */

static bool env_name_valid(const char *s, size_t len)
{
        if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_'))
                        return false;
        }
        return true;
}

/*
 * Expands ${NAME} and $$ in a scalar.  *ret_text is n->text itself or the
 * loader's scratch buffer, valid until the next call.
 */
int wc_settings_expand(struct wc_settings *st, const struct wc_node *n,
                       const char *path, const char **ret_text)
{
        struct wc_buf *b = &st->scratch;
        const char *s = n->text;
        char q[WC_QUOTE_MAX];

        if (!strchr(s, '$')) {
                *ret_text = s;
                return 0;
        }
        wc_buf_reset(b);
        for (;;) {
                const char *dollar = strchr(s, '$'), *name, *end, *value;
                char *var;

                if (!dollar) {
                        if (wc_buf_append_str(b, s) < 0)
                                return wc_settings_fail_oom(st);
                        break;
                }
                if (wc_buf_append(b, s, (size_t)(dollar - s)) < 0)
                        return wc_settings_fail_oom(st);
                if (dollar[1] != '{') {
                        /* "$$" is one "$"; any other "$" is itself */
                        if (wc_buf_append_char(b, '$') < 0)
                                return wc_settings_fail_oom(st);
                        s = dollar + (dollar[1] == '$' ? 2 : 1);
                        continue;
                }
                name = dollar + 2;
                end = strchr(name, '}');
                if (!end)
                        return wc_settings_fail(
                            st, n, "missing \"}\" after \"${\" in \"%s\"",
                            path);
                if (!env_name_valid(name, (size_t)(end - name)))
                        return wc_settings_fail(
                            st, n,
                            "invalid environment variable name %s in "
                            "\"%s\"",
                            wc_quote_n(q, name, (size_t)(end - name)), path);
                var = strndup(name, (size_t)(end - name));
                if (!var)
                        return wc_settings_fail_oom(st);
                value = getenv(var);
                if (!value) {
                        wc_settings_fail(st, n,
                                         "environment variable %s is not set",
                                         wc_quote(q, var));
                        free(var);
                        return -EINVAL;
                }
                free(var);
                if (wc_buf_append_str(b, value) < 0)
                        return wc_settings_fail_oom(st);
                s = end + 1;
        }
        /* an empty result still needs a buffer holding the NUL */
        if (wc_buf_append(b, "", 0) < 0)
                return wc_settings_fail_oom(st);
        *ret_text = b->data;
        return 0;
}

/* What a scalar key wants, for type errors. */
static const char *type_noun(enum wc_key_type t)
{
        switch (t) {
        case WC_KEY_BOOL:
                return "a boolean";
        case WC_KEY_DURATION:
                return "a duration";
        case WC_KEY_UINT32:
                return "an integer";
        case WC_KEY_SIZE:
                return "a size";
        default:
                return "a string";
        }
}

/* Formats a duration with its largest exact unit, for messages. */
static const char *duration_format(char buf[32], uint64_t ms)
{
        static const struct {
                const char *unit;
                uint64_t ms;
        } units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};

        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (ms != 0 && ms % units[i].ms == 0) {
                        snprintf(buf, 32, "%llu%s",
                                 (unsigned long long)(ms / units[i].ms),
                                 units[i].unit);
                        return buf;
                }
        }
        snprintf(buf, 32, "%llums", (unsigned long long)ms);
        return buf;
}

/* A plain decimal number: digits only, no sign, no spaces, no exponent.
 * Leading zeros are decimal, never octal.  0 or -EINVAL (also when the
 * number exceeds max). */
static int uint_parse(const char *s, uint64_t max, uint64_t *ret_n)
{
        uint64_t n = 0;

        if (!(*s >= '0' && *s <= '9'))
                return -EINVAL;
        for (; *s; s++) {
                if (!(*s >= '0' && *s <= '9'))
                        return -EINVAL;
                n = n * 10 + (uint64_t)(*s - '0');
                /* max is at most UINT32_MAX, so this cannot wrap */
                if (n > max)
                        return -EINVAL;
        }
        *ret_n = n;
        return 0;
}

int wc_settings_set_string(struct wc_settings *st, char **field,
                           const char *text)
{
        char *dup = strdup(text);

        if (!dup)
                return wc_settings_fail_oom(st);
        free(*field);
        *field = dup;
        return 0;
}

/* "invalid log level "x": use err, warning, notice, info or debug" */
static int convert_enum(struct wc_settings *st, const struct wc_key *k,
                        const char *text, const struct wc_node *at, void *field)
{
        char q[WC_QUOTE_MAX], names[256];
        size_t n = 0, o = 0;

        for (const struct wc_key_value *v = k->values; v->name; v++) {
                if (strcmp(text, v->name) == 0) {
                        *(int *)field = v->value;
                        return 0;
                }
                n++;
        }
        names[0] = '\0';
        for (size_t i = 0; i < n && o < sizeof(names); i++)
                o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
                                      i == 0       ? ""
                                      : i + 1 == n ? " or "
                                                   : ", ",
                                      k->values[i].name);
        return wc_settings_fail(st, at, "invalid %s %s: use %s", k->noun,
                                wc_quote(q, text), names);
}

/* Converts the text of a scalar key into its field; at is NULL for a
 * default. */
static int convert_scalar(struct wc_settings *st, const struct wc_key *k,
                          const char *path, const char *text,
                          const struct wc_node *at, void *field)
{
        char q[WC_QUOTE_MAX], lo[32], hi[32];
        uint64_t ms, n;

        switch (k->type) {
        case WC_KEY_STRING:
                if (!text[0])
                        return wc_settings_fail(st, at,
                                                "empty value for \"%s\"", path);
                return wc_settings_set_string(st, field, text);
        case WC_KEY_ABS_PATH:
                if (!text[0])
                        return wc_settings_fail(st, at,
                                                "empty value for \"%s\"", path);
                /* walcastd runs with / as its working directory under
                 * systemd, and dlopen() searches the library path for a
                 * name without "/": neither is what a relative path means */
                if (text[0] != '/')
                        return wc_settings_fail(
                            st, at,
                            "relative path %s for \"%s\": use an "
                            "absolute path",
                            wc_quote(q, text), path);
                return wc_settings_set_string(st, field, text);
        case WC_KEY_UINT32:
                if (uint_parse(text, k->max, &n) < 0 || n < k->min)
                        return wc_settings_fail(
                            st, at,
                            "invalid %s %s: use a number from %llu "
                            "to %llu",
                            k->name, wc_quote(q, text),
                            (unsigned long long)k->min,
                            (unsigned long long)k->max);
                *(uint32_t *)field = (uint32_t)n;
                return 0;
        case WC_KEY_BOOL:
                /* only these two: "no" stays a string, not false */
                if (strcmp(text, "true") == 0)
                        *(bool *)field = true;
                else if (strcmp(text, "false") == 0)
                        *(bool *)field = false;
                else
                        return wc_settings_fail(
                            st, at, "invalid boolean %s: use true or false",
                            wc_quote(q, text));
                return 0;
        case WC_KEY_DURATION:
                if (wc_duration_parse(text, &ms) < 0)
                        return wc_settings_fail(
                            st, at,
                            "invalid duration %s: use a number with "
                            "a unit: 500ms, 10s, 5m, 1h",
                            wc_quote(q, text));
                if (ms < k->min || ms > k->max)
                        return wc_settings_fail(
                            st, at, "%s %s is out of range: use %s to %s",
                            k->name, wc_quote(q, text),
                            duration_format(lo, k->min),
                            duration_format(hi, k->max));
                *(uint64_t *)field = ms;
                return 0;
        case WC_KEY_SIZE:
                if (wc_size_parse(text, &n) < 0)
                        return wc_settings_fail(
                            st, at,
                            "invalid size %s: use a number with a "
                            "unit: 512kB, 64MB, 1GB",
                            wc_quote(q, text));
                if (n < k->min || n > k->max)
                        return wc_settings_fail(
                            st, at,
                            "%s %s is out of range: use %llukB to "
                            "%lluGB",
                            k->name, wc_quote(q, text),
                            (unsigned long long)(k->min >> 10),
                            (unsigned long long)(k->max >> 30));
                *(uint64_t *)field = n;
                return 0;
        case WC_KEY_ENUM:
                return convert_enum(st, k, text, at, field);
        case WC_KEY_SCALAR:
                return k->convert(st, k, path, text, at, field);
        default:
                return wc_settings_fail(st, at, "\"%s\" is not a scalar key",
                                        path);
        }
}

/* The expanded text of a scalar where a string is expected, or an error
 * naming path. */
static int scalar_text(struct wc_settings *st, const struct wc_node *n,
                       const struct wc_node *key, enum wc_key_type type,
                       const char *path, const char **ret_text)
{
        if (n->kind == WC_NODE_SCALAR && n->null)
                return wc_settings_fail(st, key ? key : n,
                                        "missing value for \"%s\"", path);
        if (n->kind != WC_NODE_SCALAR)
                return wc_settings_fail_type(st, n, type_noun(type), path);
        return wc_settings_expand(st, n, path, ret_text);
}

/* ---- sections ---- */

/*
 * Patterns are pushed down to wal2json as they are (add-tables,
 * filter-tables), which fails at START_REPLICATION, after the slot was
 * created, on control characters: refused here, where the file says where.
 */
static int pattern_check(struct wc_settings *st, const struct wc_node *item,
                         const char *path, const char *text)
{
        char q[WC_QUOTE_MAX];

        for (const char *p = text; *p; p++) {
                unsigned char ch = (unsigned char)*p;

                if (ch < 0x20 || ch == 0x7f)
                        return wc_settings_fail(
                            st, item,
                            "control character \\x%02x in pattern %s "
                            "in \"%s\": schema and table patterns "
                            "cannot hold control characters; remove "
                            "it",
                            ch, wc_quote(q, text), path);
        }
        return 0;
}

static int load_patterns(struct wc_settings *st, const char *path,
                         const struct wc_node *seq, struct wc_pattern_list *l)
{
        char item_path[WC_PATH_LEN];
        const char *text;
        int r;

        if (seq->kind == WC_NODE_SCALAR && seq->null)
                return 0;
        if (seq->kind != WC_NODE_SEQUENCE)
                return wc_settings_fail_type(st, seq, "a sequence", path);
        if (seq->nkids == 0)
                return 0;
        l->items = calloc(seq->nkids, sizeof(*l->items));
        if (!l->items)
                return wc_settings_fail_oom(st);
        for (size_t i = 0; i < seq->nkids; i++) {
                const struct wc_node *item = seq->kids[i];

                wc_path_format(item_path, "%s[%zu]", path, i);
                r = scalar_text(st, item, NULL, WC_KEY_STRING, item_path,
                                &text);
                if (r < 0)
                        return r;
                if (!text[0])
                        return wc_settings_fail(
                            st, item, "empty pattern in \"%s\"", path);
                r = pattern_check(st, item, path, text);
                if (r < 0)
                        return r;
                l->items[i] = strdup(text);
                if (!l->items[i])
                        return wc_settings_fail_oom(st);
                l->count++;
        }
        return 0;
}

static int load_ops(struct wc_settings *st, const char *path,
                    const struct wc_node *key, const struct wc_node *seq,
                    unsigned *ret_ops)
{
        char item_path[WC_PATH_LEN], q[WC_QUOTE_MAX];
        unsigned ops = 0;
        const char *text;
        enum wc_op op;
        int r;

        if (seq->kind == WC_NODE_SEQUENCE && seq->nkids == 0)
                return wc_settings_fail(
                    st, key,
                    "\"%s\" is empty: list one or more of insert, "
                    "update, delete, truncate and message",
                    path);
        if (seq->kind == WC_NODE_SCALAR && seq->null)
                return wc_settings_fail(st, key, "missing value for \"%s\"",
                                        path);
        if (seq->kind != WC_NODE_SEQUENCE)
                return wc_settings_fail_type(st, seq, "a sequence", path);
        for (size_t i = 0; i < seq->nkids; i++) {
                const struct wc_node *item = seq->kids[i];

                wc_path_format(item_path, "%s[%zu]", path, i);
                r = scalar_text(st, item, NULL, WC_KEY_STRING, item_path,
                                &text);
                if (r < 0)
                        return r;
                /* begin and commit are not row operations one can filter */
                if (wc_op_parse(text, &op) < 0 ||
                    !(WC_OP_BIT(op) & WC_OPS_DATA))
                        return wc_settings_fail(
                            st, item,
                            "invalid op %s: use insert, update, "
                            "delete, truncate or message",
                            wc_quote(q, text));
                if (ops & WC_OP_BIT(op))
                        return wc_settings_fail(st, item,
                                                "duplicate op %s in \"%s\"",
                                                wc_quote(q, text), path);
                ops |= WC_OP_BIT(op);
        }
        *ret_ops = ops;
        return 0;
}

/* ---- a plugin's config block ---- */

struct name_ref {
        const char *name;
        size_t index; /* in document order */
};

static int name_ref_cmp(const void *a, const void *b)
{
        const struct name_ref *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Sorts refs and finds the earliest (in document order) name that repeats
 * one before it, so that the message points where a reader expects it.
 * Sorting keeps a mapping with many keys from costing n^2 compares.
 */
static bool find_duplicate(struct name_ref *refs, size_t n, size_t *ret_index)
{
        size_t best = SIZE_MAX;

        if (n < 2)
                return false;
        qsort(refs, n, sizeof(*refs), name_ref_cmp);
        for (size_t i = 1; i < n; i++)
                if (refs[i].index < best &&
                    strcmp(refs[i - 1].name, refs[i].name) == 0)
                        best = refs[i].index;
        if (best == SIZE_MAX)
                return false;
        *ret_index = best;
        return true;
}

struct kv_reader {
        struct wc_settings *st;
        const char *path;            /* of the whole block, for its limits */
        struct wc_kv *kv;            /* the pairs so far, in document order */
        const struct wc_node **from; /* where each pair was written */
        size_t n, cap;
        struct wc_buf key; /* flattened key of the node being read */
};

static int kv_read(struct kv_reader *x, const struct wc_node *at,
                   const struct wc_node *n, const char *path);

/* Adds the pair for scalar n under the current key; at is its position. */
static int kv_add(struct kv_reader *x, const struct wc_node *at,
                  const struct wc_node *n, const char *path)
{
        const char *text = "";
        struct wc_kv *kv;
        int r;

        if (x->n == KV_MAX)
                return wc_settings_fail(x->st, at,
                                        "more than %d values in \"%s\"", KV_MAX,
                                        x->path);
        /* the plugin sees no YAML types: a null is just no text */
        if (!n->null) {
                r = wc_settings_expand(x->st, n, path, &text);
                if (r < 0)
                        return r;
        }
        if (x->n == x->cap) {
                size_t cap = x->cap ? x->cap * 2 : 8;
                const struct wc_node **from;

                kv = reallocarray(x->kv, cap, sizeof(*kv));
                if (!kv)
                        return wc_settings_fail_oom(x->st);
                x->kv = kv;
                from = reallocarray(x->from, cap, sizeof(*from));
                if (!from)
                        return wc_settings_fail_oom(x->st);
                x->from = from;
                x->cap = cap;
        }
        kv = &x->kv[x->n];
        kv->key = strndup(x->key.data, x->key.len);
        kv->value = strdup(text);
        if (!kv->key || !kv->value) {
                free(kv->key);
                free(kv->value);
                return wc_settings_fail_oom(x->st);
        }
        x->from[x->n++] = at;
        return 0;
}

static int kv_read_mapping(struct kv_reader *x, const struct wc_node *map,
                           const char *path)
{
        size_t nkeys = map->nkids / 2, prefix = x->key.len, dup;
        char q[WC_QUOTE_MAX], in[WC_WHERE_LEN], key_path[WC_PATH_LEN];
        struct name_ref *refs;
        int r;

        for (size_t i = 0; i < nkeys; i++) {
                const struct wc_node *key = map->kids[2 * i];

                if (key->kind != WC_NODE_SCALAR)
                        return wc_settings_fail(
                            x->st, key, "expected a string key %s, found %s",
                            wc_where_in(in, path), wc_node_kind_name(key));
                /* "a..b" or a trailing "." could not be told apart */
                if (key->null || !key->text[0])
                        return wc_settings_fail(x->st, key, "empty key %s",
                                                wc_where_in(in, path));
        }
        refs = calloc(nkeys ? nkeys : 1, sizeof(*refs));
        if (!refs)
                return wc_settings_fail_oom(x->st);
        for (size_t i = 0; i < nkeys; i++)
                refs[i] = (struct name_ref){map->kids[2 * i]->text, i};
        if (find_duplicate(refs, nkeys, &dup)) {
                const struct wc_node *key = map->kids[2 * dup];

                free(refs);
                return wc_settings_fail(x->st, key, "duplicate key %s %s",
                                        wc_quote(q, key->text),
                                        wc_where_in(in, path));
        }
        free(refs);

        for (size_t i = 0; i < nkeys; i++) {
                const struct wc_node *key = map->kids[2 * i];

                /* keys are never expanded, as everywhere else */
                if ((prefix > 0 && wc_buf_append_char(&x->key, '.') < 0) ||
                    wc_buf_append_str(&x->key, key->text) < 0)
                        return wc_settings_fail_oom(x->st);
                if (x->key.len > KV_KEY_MAX)
                        return wc_settings_fail(
                            x->st, key,
                            "key %s %s is longer than %d bytes with "
                            "the keys above it",
                            wc_quote(q, key->text), wc_where_in(in, path),
                            KV_KEY_MAX);
                path_key(key_path, path, key->text);
                r = kv_read(x, key, map->kids[2 * i + 1], key_path);
                if (r < 0)
                        return r;
                x->key.len = prefix;
        }
        return 0;
}

/* at is where n's pair is reported: the key above a mapping value, or the
 * item itself in a sequence. */
static int kv_read(struct kv_reader *x, const struct wc_node *at,
                   const struct wc_node *n, const char *path)
{
        size_t prefix = x->key.len;
        char item_path[WC_PATH_LEN];
        int r;

        switch (n->kind) {
        case WC_NODE_SCALAR:
                return kv_add(x, at, n, path);
        case WC_NODE_MAPPING:
                return kv_read_mapping(x, n, path);
        case WC_NODE_SEQUENCE:
                break;
        }
        for (size_t i = 0; i < n->nkids; i++) {
                if (wc_buf_printf(&x->key, ".%zu", i) < 0)
                        return wc_settings_fail_oom(x->st);
                wc_path_format(item_path, "%s[%zu]", path, i);
                r = kv_read(x, n->kids[i], n->kids[i], item_path);
                if (r < 0)
                        return r;
                x->key.len = prefix;
        }
        return 0;
}

/*
 * Flattens a plugin's free-form config mapping into key/value pairs.  Only
 * the plugin knows its keys, so none is unknown here; but two pairs with
 * one flattened key ("a.b: 1" next to "a: {b: 2}") are refused, since the
 * plugin could only ever see one of them.
 */
static int load_kv(struct wc_settings *st, const struct wc_key *k,
                   const char *path, const struct wc_node *map, void *base)
{
        struct kv_reader x = {.st = st, .path = path};
        struct name_ref *refs = NULL;
        char q[WC_QUOTE_MAX];
        size_t dup;
        int r;

        if (map->kind == WC_NODE_SCALAR && map->null)
                return 0;
        if (map->kind != WC_NODE_MAPPING)
                return wc_settings_fail_type(st, map, "a mapping", path);
        wc_buf_init(&x.key);
        r = kv_read_mapping(&x, map, path);
        if (r < 0)
                goto err_free_pairs;

        refs = calloc(x.n ? x.n : 1, sizeof(*refs));
        if (!refs) {
                r = wc_settings_fail_oom(st);
                goto err_free_pairs;
        }
        for (size_t i = 0; i < x.n; i++)
                refs[i] = (struct name_ref){x.kv[i].key, i};
        if (find_duplicate(refs, x.n, &dup)) {
                r = wc_settings_fail(
                    st, x.from[dup],
                    "duplicate key %s in \"%s\" once flattened: a \".\" "
                    "in a key reads as nesting",
                    wc_quote(q, x.kv[dup].key), path);
                goto err_free_refs;
        }
        free(refs);
        free(x.from);
        wc_buf_free(&x.key);
        /* takes ownership of the pairs */
        *(struct wc_kv **)((char *)base + k->offset) = x.kv;
        *(size_t *)((char *)base + k->count_offset) = x.n;
        return 0;

err_free_refs:
        free(refs);
err_free_pairs:
        wc_kv_free(x.kv, x.n);
        free(x.from);
        wc_buf_free(&x.key);
        return r;
}

int wc_settings_defaults(struct wc_settings *st, const struct wc_key *keys,
                         void *base)
{
        int r;

        for (const struct wc_key *k = keys; k->name; k++) {
                void *field = (char *)base + k->offset;

                if (k->type == WC_KEY_SECTION) {
                        r = wc_settings_defaults(st, k->section, base);
                } else if (k->type == WC_KEY_OPS) {
                        *(unsigned *)field = WC_OPS_DATA;
                        r = 0;
                } else if (k->def) {
                        r = convert_scalar(st, k, k->name, k->def, NULL, field);
                } else {
                        r = 0;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The value node of key name in a mapping, or NULL. */
const struct wc_node *wc_node_get(const struct wc_node *map, const char *name)
{
        if (map->kind != WC_NODE_MAPPING)
                return NULL;
        for (size_t i = 0; i + 1 < map->nkids; i += 2)
                if (map->kids[i]->kind == WC_NODE_SCALAR &&
                    strcmp(map->kids[i]->text, name) == 0)
                        return map->kids[i + 1];
        return NULL;
}

int wc_settings_load(struct wc_settings *st, const struct wc_key *k,
                     const char *path, const struct wc_node *key,
                     const struct wc_node *val, void *base)
{
        void *field = (char *)base + k->offset;
        const char *text;
        int r;

        switch (k->type) {
        case WC_KEY_SECTION:
                return wc_settings_walk(st, k->section, path, key, val, base);
        case WC_KEY_CUSTOM:
                return k->load(st, path, key, val, base);
        case WC_KEY_PATTERNS:
                return load_patterns(st, path, val, field);
        case WC_KEY_OPS:
                return load_ops(st, path, key, val, field);
        case WC_KEY_KV:
                return load_kv(st, k, path, val, base);
        default:
                r = scalar_text(st, val, key, k->type, path, &text);
                if (r < 0)
                        return r;
                return convert_scalar(st, k, path, text, val, field);
        }
}

/*
 * Reads the mapping map into base following keys.  where is the node a
 * missing key is reported at: the key that opened the section, or the root.
 * An empty value stands for an empty mapping, so that "log:" with every
 * line under it commented out means the defaults.
 */
int wc_settings_walk(struct wc_settings *st, const struct wc_key *keys,
                     const char *path, const struct wc_node *where,
                     const struct wc_node *map, void *base)
{
        char q[WC_QUOTE_MAX], in[WC_WHERE_LEN], key_path[WC_PATH_LEN];
        uint32_t seen = 0;
        int r;

        if (!(map->kind == WC_NODE_MAPPING ||
              (map->kind == WC_NODE_SCALAR && map->null)))
                return wc_settings_fail_type(st, map, "a mapping", path);

        for (size_t i = 0; i + 1 < map->nkids; i += 2) {
                const struct wc_node *key = map->kids[i],
                                     *val = map->kids[i + 1];
                const struct wc_key *k;
                uint32_t bit;

                if (key->kind != WC_NODE_SCALAR)
                        return wc_settings_fail(
                            st, key, "expected a string key %s, found %s",
                            wc_where_in(in, path), wc_node_kind_name(key));
                for (k = keys; k->name; k++)
                        if (strcmp(k->name, key->text) == 0)
                                break;
                if (!k->name)
                        return wc_settings_fail(st, key, "unknown key %s %s",
                                                wc_quote(q, key->text),
                                                wc_where_in(in, path));
                bit = 1u << (k - keys);
                if (seen & bit)
                        return wc_settings_fail(st, key, "duplicate key %s %s",
                                                wc_quote(q, key->text),
                                                wc_where_in(in, path));
                seen |= bit;

                if (path[0])
                        wc_path_format(key_path, "%s.%s", path, k->name);
                else
                        wc_path_format(key_path, "%s", k->name);
                r = wc_settings_load(st, k, key_path, key, val, base);
                if (r < 0)
                        return r;
        }

        for (const struct wc_key *k = keys; k->name; k++)
                if (k->required && !(seen & (1u << (k - keys))))
                        return wc_settings_fail(
                            st, where, "missing required key \"%s\" %s",
                            k->name, wc_where_in(in, path));
        return 0;
}

/* The leading decimal number of s ("10" of "10s"); *ret_unit is what
 * follows.  0 or -EINVAL (no digits, or too large for 64 bits). */
static int leading_number(const char *s, uint64_t *ret_n, const char **ret_unit)
{
        uint64_t n = 0;
        const char *p;

        if (!s || !(*s >= '0' && *s <= '9'))
                return -EINVAL;
        for (p = s; *p >= '0' && *p <= '9'; p++) {
                unsigned d = (unsigned)(*p - '0');

                if (n > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                n = n * 10 + d;
        }
        *ret_n = n;
        *ret_unit = p;
        return 0;
}

int wc_duration_parse(const char *s, uint64_t *ret_ms)
{
        static const struct {
                const char *unit;
                uint64_t ms;
        } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
        uint64_t n;
        const char *p;

        if (leading_number(s, &n, &p) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(p, units[i].unit) == 0) {
                        if (n > UINT64_MAX / units[i].ms)
                                return -EINVAL;
                        *ret_ms = n * units[i].ms;
                        return 0;
                }
        }
        return -EINVAL;
}

int wc_size_parse(const char *s, uint64_t *ret_bytes)
{
        static const struct {
                const char *unit;
                unsigned shift;
        } units[] = {{"B", 0}, {"kB", 10}, {"MB", 20}, {"GB", 30}, {"TB", 40}};
        uint64_t n;
        const char *p;

        if (leading_number(s, &n, &p) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (strcmp(p, units[i].unit) == 0) {
                        if (n > UINT64_MAX >> units[i].shift)
                                return -EINVAL;
                        *ret_bytes = n << units[i].shift;
                        return 0;
                }
        }
        return -EINVAL;
}

int wc_settings_read(struct wc_settings *st, const struct wc_key *keys,
                     const char *path, const struct wc_node *where,
                     const struct wc_node *map, void *base)
{
        int r = wc_settings_defaults(st, keys, base);

        if (r < 0)
                return r;
        return wc_settings_walk(st, keys, path, where, map, base);
}
