/* SPDX-License-Identifier: MIT */
/*
 * The signal bus: handlers connected to one signal kind with a sender
 * filter (one schema, a namespace, a glob, or any) and optionally a table
 * pattern, and the dispatch of changes to them.
 *
 * For each schema.table the bus computes once which handlers want which
 * signal and caches the lists, so a change costs one lookup.  Consecutive
 * deletes of one table within one transaction are also coalesced into
 * bulk_delete signals of up to `bulk_batch` keys for the handlers that
 * connected to bulk_delete; handlers connected to delete get every row as
 * it comes.
 *
 * begin, commit and message signals have no schema: they reach every
 * handler of their kind whose owner subscribed (sender and table filters
 * do not apply to them).
 *
 * Everything handed to handlers is borrowed for the call.
 */
#ifndef WALCAST_BUS_H
#define WALCAST_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "core/core.h"

struct wc_bus;
struct wc_filter_config;

/* Where a handler failed. */
struct wc_bus_error {
        void *owner;
        uint32_t kind;
        wc_lsn lsn;
        char schema[128];
        char table[128];
};

struct wc_bus *wc_bus_new(uint32_t bulk_batch);
void wc_bus_free(struct wc_bus *b);

/*
 * Connects fn.  owner identifies the plugin (reported on failure);
 * owner_filter (borrowed, may be NULL) narrows the tables that reach any
 * of its handlers.  sender NULL or "*" means any schema, table NULL any table.
 * 0, -EINVAL (bad kind) or -ENOMEM.
 */
int wc_bus_connect(struct wc_bus *b, uint32_t kind, const char *sender,
                   const char *table, walcast_handler_fn fn, void *userdata,
                   void *owner, const struct wc_filter_config *owner_filter);

/* Removes every handler of owner (a plugin that failed to start). */
void wc_bus_disconnect_owner(struct wc_bus *b, void *owner);

/* Does owner have a handler of this kind? */
int wc_bus_owner_has(const struct wc_bus *b, void *owner, uint32_t kind);

/*
 * Dispatches an insert, update, delete, truncate or message.  txn is NULL
 * outside a transaction.  A change of another kind or table first ends a
 * pending bulk_delete run.  0; -ECANCELED when a handler failed (*ret_err
 * says where); -ENOMEM.
 */
int wc_bus_dispatch(struct wc_bus *b, const struct wc_change *c,
                    const struct walcast_txn *txn,
                    struct wc_bus_error *ret_err);

/* A signal of one table without a row (snapshot_begin, snapshot_end):
 * schema, table and lsn from c, to the handlers of kind for that table.
 * 0, -ECANCELED (*ret_err), -EINVAL, -ENOMEM. */
int wc_bus_table_signal(struct wc_bus *b, uint32_t kind,
                        const struct wc_change *c,
                        const struct walcast_txn *txn,
                        struct wc_bus_error *ret_err);

/* begin: to every begin handler. */
int wc_bus_begin(struct wc_bus *b, const struct walcast_txn *txn,
                 struct wc_bus_error *ret_err);

/*
 * commit: ends a pending bulk_delete run, then calls every commit handler
 * and reports each result (WALCAST_OK, WALCAST_PENDING, WALCAST_ERROR) with
 * its owner through result().  0 or -ECANCELED / -ENOMEM.
 */
int wc_bus_commit(struct wc_bus *b, const struct walcast_txn *txn,
                  void (*result)(void *ud, void *owner, int32_t r), void *ud,
                  struct wc_bus_error *ret_err);

/*
 * Until called again, no handler of an owner for which skipped(owner) is
 * true is called (a sink that already holds the transaction: its
 * position, see host.h); NULL calls every handler.  The predicate is
 * asked for each handler it could apply to, so NULL is the fast path.
 */
void wc_bus_skip(struct wc_bus *b, bool (*skipped)(const void *owner));

/* Forgets a pending bulk_delete run (the stream is being replayed). */
void wc_bus_reset(struct wc_bus *b);

#endif
