/* SPDX-License-Identifier: MIT */
/*
 * The plugin host: loads plugins (dlopen of an absolute path, or a
 * descriptor linked into walcast for the built-in sinks), checks their ABI,
 * runs their init with the host API of <walcast/plugin.h>, and routes what
 * they ask for — handlers to the signal bus, file descriptors to the
 * daemon's poll() loop, acknowledgements and log lines to the caller's
 * callbacks.
 *
 * Every loaded plugin is one sink for the checkpoint: it acknowledges each
 * transaction once — at once when it has no commit handler or its commit
 * handler returns WALCAST_OK, later through host->ack() after
 * WALCAST_PENDING — or never, when the position it reported says that it
 * holds the transaction already (wc_plugin_host_begin()).
 */
#ifndef WALCAST_HOST_H
#define WALCAST_HOST_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "core/core.h"

struct wc_bus;
struct wc_bus_error;
struct wc_kv;
struct wc_filter_config;
struct wc_plugin_host;

struct wc_plugin_host_ops {
        /* a plugin's log line (lib/ does not log: the caller does) */
        void (*log)(void *ud, const char *plugin, enum wc_log_level level,
                    const char *msg);
        /* one plugin's acknowledgement of txn_id: WALCAST_OK or
         * WALCAST_ERROR */
        void (*ack)(void *ud, const char *plugin, uint64_t txn_id,
                    int32_t status);
        void *ud;
};

/* Borrows bus and ops for the host's lifetime. */
struct wc_plugin_host *wc_plugin_host_new(struct wc_bus *bus,
                                          const struct wc_plugin_host_ops *ops);
/* Closes every plugin (close callbacks, then dlclose). */
void wc_plugin_host_free(struct wc_plugin_host *h);

/*
 * Checks the shared object at path as wc_plugin_host_load() would, short
 * of starting it: loaded (its constructors run), its check function (ABI
 * 1.3) run on config, then unloaded; its init is not called.  For
 * `walcastd --check` and reloads.  0 or a negative errno with errbuf set.
 */
int wc_plugin_check(const char *path, const struct wc_kv *config,
                    size_t nconfig, char *errbuf, size_t errlen);

/*
 * Loads the shared object at path (absolute).  Refused, with a message
 * naming the file: missing, owned by someone but root or walcastd's user
 * or writable by group or others (the file, a directory on its resolved
 * path, or one holding a symlink on the way), not a shared object, no
 * entry symbol, another ABI major, a descriptor too small, its check or
 * its init failed (with the plugin's message).
 * filter (NULL: everything) is the sink's own filter: the plugin is never
 * called for a table or an operation it leaves out.  filter and config
 * are borrowed for the host's lifetime.
 * 0 or a negative errno.
 */
int wc_plugin_host_load(struct wc_plugin_host *h, const char *path,
                        const struct wc_filter_config *filter,
                        const struct wc_kv *config, size_t nconfig,
                        char *errbuf, size_t errlen);

/* Adds a plugin linked into walcast; name appears in messages.  filter
 * and config as for wc_plugin_host_load(). */
int wc_plugin_host_add(struct wc_plugin_host *h, const char *name,
                       const struct walcast_plugin_descriptor *d,
                       const struct wc_filter_config *filter,
                       const struct wc_kv *config, size_t nconfig, char *errbuf,
                       size_t errlen);

/* Renames the plugin added last (a loaded one is named by its path):
 * what its messages and acknowledgements are reported under from now
 * on.  0, -ENOENT or -ENOMEM. */
int wc_plugin_host_name_last(struct wc_plugin_host *h, const char *name);

size_t wc_plugin_host_count(const struct wc_plugin_host *h);

/* The name of a bus owner (a plugin), for messages. */
const char *wc_plugin_owner_name(const void *owner);

/*
 * A transaction ending at end_lsn begins (or a message outside one, at
 * lsn, with end_lsn 0): every plugin whose position (host->position, ABI
 * 1.4) shows that it holds it already is passed over until the next
 * begin — none of its handlers is called, and it acknowledges nothing.
 * Returns how many plugins do get it: the acknowledgements to wait for.
 */
unsigned wc_plugin_host_begin(struct wc_plugin_host *h, wc_lsn end_lsn,
                              wc_lsn lsn);

/* The position the i-th plugin reported (0: none), and its name. */
wc_lsn wc_plugin_host_position(const struct wc_plugin_host *h, size_t i,
                               const char **ret_name);

/*
 * The commit of txn: the commit handlers run (through the bus) and every
 * plugin that is done with txn acknowledges it through ops->ack.
 * 0, or -ECANCELED when a handler failed (*ret_err says where).
 */
int wc_plugin_host_commit(struct wc_plugin_host *h,
                          const struct walcast_txn *txn,
                          struct wc_bus_error *ret_err);

/* The watched descriptors, for poll(): fills up to max, returns how many
 * there are. */
size_t wc_plugin_host_pollfds(const struct wc_plugin_host *h,
                              struct pollfd *pfds, size_t max);
/* Calls the callbacks of the descriptors poll() found ready. */
void wc_plugin_host_dispatch(struct wc_plugin_host *h,
                             const struct pollfd *pfds, size_t n);

/* Has any plugin asked to stop reading the stream (host->throttle)? */
bool wc_plugin_host_throttled(const struct wc_plugin_host *h);

/* SIGHUP: every plugin's reopen. */
void wc_plugin_host_reopen(struct wc_plugin_host *h);

#endif
