/* SPDX-License-Identifier: MIT */
/*
 * Key/value lists: a sink's or plugin's config block flattened to strings.
 * "file" for a top-level scalar, "a.b" for nested mappings, "list.0" for
 * list items.  Scalars keep their text (after ${NAME} expansion); an empty
 * value or null is "".
 *
 * A list is an array of struct wc_kv and its length; whoever built it owns
 * the strings and the array (wc_kv_free).
 */
#ifndef WALCAST_KV_H
#define WALCAST_KV_H

#include <stddef.h>

struct wc_kv {
        char *key;
        char *value;
};

/* The value of key among kv[0..n), or NULL. */
const char *wc_kv_get(const struct wc_kv *kv, size_t n, const char *key);

/* Frees the keys, the values and the array; kv may be NULL. */
void wc_kv_free(struct wc_kv *kv, size_t n);

#endif
