/* SPDX-License-Identifier: MIT */
/*
 * Schema and table patterns, shared by the filters, plugin subscriptions
 * and signal handlers.
 *
 * A schema pattern is an fnmatch(3) glob when it has *, ? or [; otherwise
 * it matches the schema of that name and, as a namespace, every schema
 * "NAME-<tenant>" (a schema splits at its first '-').  A table pattern
 * containing '.' matches "schema.table", otherwise the table name alone.
 */
#ifndef WALCAST_PATTERN_H
#define WALCAST_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

/* A list of patterns; whoever built it owns the strings and the array. */
struct wc_pattern_list {
        char **items;
        size_t count;
};

bool wc_pattern_has_glob(const char *pattern);
bool wc_pattern_schema_match(const char *pattern, const char *schema);
bool wc_pattern_table_match(const char *pattern, const char *schema,
                            const char *table);

/* Does any pattern of l match?  False for an empty list. */
bool wc_pattern_list_schema_match(const struct wc_pattern_list *l,
                                  const char *schema);
bool wc_pattern_list_table_match(const struct wc_pattern_list *l,
                                 const char *schema, const char *table);

/* Frees the patterns and the array, and empties l. */
void wc_pattern_list_free(struct wc_pattern_list *l);

#endif
