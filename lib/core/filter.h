/* SPDX-License-Identifier: MIT */
/*
 * Filters: which changes walcast passes on, and which of those each sink
 * takes.  One implementation for the stream's filter (`filter:` at the top
 * of the configuration) and every sink's own narrowing of it.  What of a
 * filter the server can be told to skip is the decoder's
 * (decode/decoder.h: options).
 *
 * Patterns are those of core/pattern.h.  A change passes when its schema
 * and table are included (an empty include list includes everything) and
 * not excluded, and its op is selected.
 */
#ifndef WALCAST_FILTER_H
#define WALCAST_FILTER_H

#include <stdbool.h>

#include "core/core.h"
#include "core/pattern.h"

/* The rules.  Whoever built them owns the lists (wc_filter_config_free). */
struct wc_filter_config {
        struct wc_pattern_list schemas_include; /* empty: every schema */
        struct wc_pattern_list schemas_exclude;
        struct wc_pattern_list tables_include; /* "table" or "schema.table" */
        struct wc_pattern_list tables_exclude;
        unsigned ops; /* WC_OP_BIT() mask; default WC_OPS_DATA */
};

/* Frees the pattern lists and empties them; ops stay. */
void wc_filter_config_free(struct wc_filter_config *f);

/* Do the schema and table rules let schema.table through?  Uncached: for
 * callers that remember the answer per table themselves. */
bool wc_filter_table_pass(const struct wc_filter_config *f, const char *schema,
                          const char *table);

/* "insert,update,truncate" -> a WC_OP_BIT() mask of data ops (insert,
 * update, delete, truncate, message); "" is no op.  0, or -EINVAL for
 * any other name or an empty item. */
int wc_filter_ops_parse(const char *list, unsigned *ret_ops);

/*
 * The rules with their decisions cached per schema.table, so that the
 * steady state costs one hash lookup per change.
 */
struct wc_filter;

/* Borrows f for the filter's lifetime; NULL when out of memory. */
struct wc_filter *wc_filter_new(const struct wc_filter_config *f);
void wc_filter_free(struct wc_filter *r);

/* Does the change pass?  Begin and commit always pass; a message passes
 * when ops selects messages. */
bool wc_filter_match(struct wc_filter *r, const struct wc_change *c);

#endif
