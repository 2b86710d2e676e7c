/* SPDX-License-Identifier: MIT */
/*
 * Settings: a block of the configuration as a tree of nodes with their
 * line:column, and a table of keys that says what the block may hold.
 * wc_settings_read() checks a block against its table and fills a struct,
 * with the configuration's messages ("FILE:LINE:COLUMN: ..."): type
 * errors, unknown and duplicate keys, missing required keys, bounds, and
 * ${NAME} expanded from the environment in every scalar ("$$" is "$").
 *
 * The configuration (config/) reads the YAML file into nodes and its own
 * keys with this; each sink kind (sinks/registry.h) declares its keys and
 * reads its own block with it, so one table is the whole of a sink's keys.
 */
#ifndef WALCAST_CORE_SETTINGS_H
#define WALCAST_CORE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Key paths ("sinks[2].file.path") are built from the tables and indices,
 * so this is ample; a cut would only shorten a message. */
#define WC_PATH_LEN 128
/* Room for a quoted value in a message; longer values are cut. */
#define WC_QUOTE_MAX 80
/* Room for 'in "PATH"': a whole path, never cut mid-quote. */
#define WC_WHERE_LEN (WC_PATH_LEN + 8)

enum wc_node_kind {
        WC_NODE_SCALAR,
        WC_NODE_MAPPING,
        WC_NODE_SEQUENCE,
};

struct wc_node {
        enum wc_node_kind kind;
        unsigned line, column;  /* 1-based */
        struct wc_node *parent; /* only while the tree is built */
        char *text;             /* scalar, as written: not expanded */
        bool null;              /* plain "", "~" or "null": no value */
        struct wc_node **kids;  /* mapping: key, value, ...; sequence: items */
        size_t nkids;
        size_t cap;
};

/* Frees n and everything under it; accepts NULL. */
void wc_node_free(struct wc_node *n);

/* Appends kid (owned by parent from now on).  0 or -ENOMEM. */
int wc_node_append(struct wc_node *parent, struct wc_node *kid);

/* The value node of key name in a mapping, or NULL. */
const struct wc_node *wc_node_get(const struct wc_node *map, const char *name);

/* "a mapping", "a sequence", "a scalar" or "an empty value". */
const char *wc_node_kind_name(const struct wc_node *n);

/* Where the errors of one reading go.  name stands for the file. */
struct wc_settings {
        const char *name;
        char *errbuf;
        size_t errlen;
        struct wc_buf scratch; /* the expanded text of one scalar */
};

/* Each fills errbuf with "NAME:LINE:COLUMN: message" ("NAME: message"
 * when at is NULL) and returns -EINVAL (-ENOMEM for _oom). */
int wc_settings_fail(struct wc_settings *s, const struct wc_node *at,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int wc_settings_fail_at(struct wc_settings *s, unsigned line, unsigned column,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int wc_settings_fail_oom(struct wc_settings *s);
/* "expected EXPECTED for "PATH", found a mapping" */
int wc_settings_fail_type(struct wc_settings *s, const struct wc_node *at,
                          const char *expected, const char *path);

/* s double-quoted for a message: escaped, and cut with "..." if long. */
const char *wc_quote(char buf[WC_QUOTE_MAX], const char *s);
const char *wc_quote_n(char buf[WC_QUOTE_MAX], const char *s, size_t len);
/* 'in "PATH"', or "at the top level" for "". */
const char *wc_where_in(char buf[WC_WHERE_LEN], const char *path);
void wc_path_format(char buf[WC_PATH_LEN], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The text of scalar n with ${NAME} and $$ expanded; *ret_text is n->text
 * or s's scratch buffer, valid until the next call.  path names n. */
int wc_settings_expand(struct wc_settings *s, const struct wc_node *n,
                       const char *path, const char **ret_text);

/* Replaces *field with a copy of text. */
int wc_settings_set_string(struct wc_settings *s, char **field,
                           const char *text);

enum wc_key_type {
        WC_KEY_STRING,   /* char *, non-empty */
        WC_KEY_ABS_PATH, /* char *, starting with "/" */
        WC_KEY_BOOL,     /* bool: true or false only */
        WC_KEY_UINT32,   /* uint32_t, decimal, from .min to .max */
        WC_KEY_DURATION, /* uint64_t ms, "10s", from .min to .max */
        WC_KEY_SIZE,     /* uint64_t bytes, "64MB", from .min to .max */
        WC_KEY_ENUM,     /* int: one of .values, called .noun in errors */
        WC_KEY_SCALAR,   /* any scalar, turned into its field by .convert */
        WC_KEY_PATTERNS, /* struct wc_pattern_list: a sequence of patterns */
        WC_KEY_OPS,      /* unsigned WC_OP_BIT mask; default WC_OPS_DATA */
        WC_KEY_SECTION,  /* a mapping described by .section */
        WC_KEY_KV,       /* any mapping, flattened into struct wc_kv pairs */
        WC_KEY_CUSTOM,   /* any node, read by .load */
};

struct wc_key_value {
        const char *name;
        int value;
};

struct wc_key;

/* Turns text (expanded) into field; at is NULL for a default. */
typedef int (*wc_key_convert_fn)(struct wc_settings *s, const struct wc_key *k,
                                 const char *path, const char *text,
                                 const struct wc_node *at, void *field);
/* Reads val, the value of key (node) at path, into base. */
typedef int (*wc_key_load_fn)(struct wc_settings *s, const char *path,
                              const struct wc_node *key,
                              const struct wc_node *val, void *base);

struct wc_key {
        enum wc_key_type type;
        const char *name;
        const char *def; /* the default as it would be written, or NULL */
        size_t offset;   /* of the field in the struct the table fills */
        const char *description;
        bool required;
        const struct wc_key *section; /* WC_KEY_SECTION */
        uint64_t min, max;            /* WC_KEY_UINT32, _DURATION (ms), _SIZE */
        size_t count_offset; /* WC_KEY_KV: of the pair count (size_t) */
        const char *noun;    /* WC_KEY_ENUM: "log level" */
        const struct wc_key_value *values; /* WC_KEY_ENUM, ends with NULL */
        wc_key_convert_fn convert;         /* WC_KEY_SCALAR */
        wc_key_load_fn load;               /* WC_KEY_CUSTOM */
};

/* A table ends with {.name = NULL}; a table has at most 32 keys. */
#define WC_KEY(t, n, d, off, desc)                                             \
        .type = (t), .name = (n), .def = (d), .offset = (off),                 \
        .description = (desc)

/* Sets every default of keys (and of its sections) in base. */
int wc_settings_defaults(struct wc_settings *s, const struct wc_key *keys,
                         void *base);

/*
 * Reads the mapping map at path into base following keys.  where is the
 * node a missing key is reported at: the key that opened the block.  An
 * empty value stands for an empty mapping.  Call wc_settings_defaults()
 * first.  On failure base may hold part of what was read: free it as a
 * whole.
 */
int wc_settings_walk(struct wc_settings *s, const struct wc_key *keys,
                     const char *path, const struct wc_node *where,
                     const struct wc_node *map, void *base);

/* Reads val, the value of key (node) at path, into base as k says: what
 * wc_settings_walk() does for each key it finds. */
int wc_settings_load(struct wc_settings *s, const struct wc_key *k,
                     const char *path, const struct wc_node *key,
                     const struct wc_node *val, void *base);

/* Both: the defaults, then the block. */
int wc_settings_read(struct wc_settings *s, const struct wc_key *keys,
                     const char *path, const struct wc_node *where,
                     const struct wc_node *map, void *base);

/* Durations: "500ms", "10s", "5m", "1h"; a bare number is an error.
 * 0 or -EINVAL. */
int wc_duration_parse(const char *s, uint64_t *ret_ms);

/* Sizes: "512kB", "64MB", "1GB" (units of 1024 as in PostgreSQL), "100B";
 * a bare number is an error.  0 or -EINVAL. */
int wc_size_parse(const char *s, uint64_t *ret_bytes);

#endif
