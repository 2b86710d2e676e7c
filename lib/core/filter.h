/* SPDX-License-Identifier: MIT */
/*
 * Filters: which changes walcast passes on.  What of that the server can
 * be told to skip is the decoder's (decode/decoder.h: options).
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

#endif
