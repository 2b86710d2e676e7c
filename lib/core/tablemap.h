/* SPDX-License-Identifier: MIT */
/*
 * A hash map keyed by (schema, table), for per-table caches: the filter's
 * decisions, the signal bus's handler lists.  When it holds max_entries it
 * empties itself before the next insertion: a cache refills at the cost of
 * recomputing entries, so memory stays bounded however many tables exist.
 */
#ifndef WALCAST_TABLEMAP_H
#define WALCAST_TABLEMAP_H

#include <stddef.h>

struct wc_tablemap;

/* free_value (may be NULL) releases values the map drops. */
struct wc_tablemap *wc_tablemap_new(size_t max_entries,
                                    void (*free_value)(void *value));
void wc_tablemap_free(struct wc_tablemap *m);

/* The value for schema.table, or NULL. */
void *wc_tablemap_get(const struct wc_tablemap *m, const char *schema,
                      size_t slen, const char *table, size_t tlen);

/* Adds an entry that must not exist yet; takes ownership of value (also on
 * failure, when it is freed).  0 or -ENOMEM. */
int wc_tablemap_put(struct wc_tablemap *m, const char *schema, size_t slen,
                    const char *table, size_t tlen, void *value);

void wc_tablemap_clear(struct wc_tablemap *m);
size_t wc_tablemap_count(const struct wc_tablemap *m);

#endif
