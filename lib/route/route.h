/* SPDX-License-Identifier: MIT */
/*
 * Filters: which changes walcast passes on, and what of that the server
 * can be told to skip.
 *
 * Patterns are those of core/pattern.h.  A change passes when its schema
 * and table are included (an empty include list includes everything) and
 * not excluded, and its op is selected.
 *
 * Decisions are cached per schema.table so the steady state costs one hash
 * lookup per change.
 */
#ifndef WALCAST_ROUTE_H
#define WALCAST_ROUTE_H

#include <stdbool.h>

#include "core/core.h"

struct wc_filter_config;
struct wc_route;

/* Borrows f for the router's lifetime. */
struct wc_route *wc_route_new(const struct wc_filter_config *f);
void wc_route_free(struct wc_route *r);

/* Does the change pass?  Begin and commit always pass. */
bool wc_route_match(struct wc_route *r, const struct wc_change *c);

/*
 * wal2json options that make the server skip what the filter drops anyway:
 * "actions", "add-tables", "filter-tables".  Only what is certainly
 * excluded is pushed (new tenant schemas appear at any time, so globs and
 * namespaces stay on our side).  Each output buffer is left empty when
 * that option should not be sent.  0 or -ENOMEM.
 */
int wc_route_pushdown(const struct wc_filter_config *f, struct wc_buf *actions,
                      struct wc_buf *add_tables, struct wc_buf *filter_tables);

/*
 * Would a and b push the same options down to wal2json?  A stream started
 * with a's options skips what b may want (or passes what b drops), so a
 * reload from a to b restarts the stream when they differ.  1 same, 0
 * different, -ENOMEM.
 */
int wc_route_pushdown_same(const struct wc_filter_config *a,
                           const struct wc_filter_config *b);

#endif
