/* SPDX-License-Identifier: MIT */
/*
 * The heartbeat: a query run now and then on an ordinary (not replication)
 * connection to the source database, e.g.
 *   SELECT pg_logical_emit_message(false, 'walcast.heartbeat', now()::text)
 * so that the slot sees WAL of its own database, and its position moves,
 * even when the database's tables see no writes.
 *
 * Everything is non-blocking: connecting, sending and reading the result
 * are steps the caller drives from its poll() loop.
 */
#ifndef WALCAST_HEARTBEAT_H
#define WALCAST_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>

struct wc_heartbeat;

/* dsn: libpq conninfo or URI (used as it is, without replication=). */
struct wc_heartbeat *wc_heartbeat_new(const char *dsn, const char *query);
void wc_heartbeat_free(struct wc_heartbeat *hb);

/* Starts one beat, connecting first when there is no connection.
 * 0, -EALREADY while a beat is running, or <0 with a message. */
int wc_heartbeat_begin(struct wc_heartbeat *hb, char *errbuf, size_t errlen);

/* While a beat runs: the socket and the poll() events it waits for; -1
 * when idle. */
int wc_heartbeat_pollfd(const struct wc_heartbeat *hb, short *ret_events);

/* Advances a running beat (call when its socket is ready): 1 it
 * completed, 0 still running, <0 it failed (message; the connection is
 * closed and the next beat connects again). */
int wc_heartbeat_step(struct wc_heartbeat *hb, char *errbuf, size_t errlen);

/* Gives up a running beat and its connection (e.g. it took too long). */
void wc_heartbeat_abort(struct wc_heartbeat *hb);

bool wc_heartbeat_busy(const struct wc_heartbeat *hb);

#endif
