/* SPDX-License-Identifier: MIT */
/*
 * The decoder interface: what the stream and the runner know of an
 * output plugin's format.  A decoder names the output plugin its slot is
 * created with, the START_REPLICATION options it needs (fixed ones, and
 * those that let the server skip what the filter drops: pushdown), and
 * turns one message into one struct wc_change, zero-copy.
 *
 * A decoder does not modify the message (the buffer is writable for
 * historical reasons only).  Column values and the lists' JSON text are
 * views into it, so it must stay alive and unmodified for as long as the
 * returned change is used; names are decoded, NUL-terminated, into
 * storage the decoder owns.  The change, its column arrays and its names
 * are owned by the decoder and valid until the next call to
 * wc_decoder_decode(), wc_decoder_relation() or wc_decoder_free().
 *
 * Each decoder lives in this folder, in files named after its plugin, and
 * exports one struct wc_decoder_ops; one for a JSON format is written on
 * the JSON scanner (json_scan.h).
 */
#ifndef WALCAST_DECODER_H
#define WALCAST_DECODER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct wc_filter_config;
struct wc_decoder_ops;

/* One decoder instance; each decoder's own state starts with this. */
struct wc_decoder {
        const struct wc_decoder_ops *ops;
};

/* Most START_REPLICATION options a decoder sends. */
#define WC_DECODER_OPTIONS_MAX 24

/* START_REPLICATION options: key, value pairs, as wc_stream_start() takes
 * them.  Keys are static strings; values are copies the list owns. */
struct wc_decoder_options {
        const char *kv[2 * WC_DECODER_OPTIONS_MAX + 1]; /* ..., NULL */
        size_t n;                                       /* pairs */
        char *owned[WC_DECODER_OPTIONS_MAX];
        size_t n_owned;
};

struct wc_decoder_ops {
        const char *name;   /* the format, for messages */
        const char *plugin; /* the output plugin of the slot */
        /* Options an older plugin may not know, key, value pairs,
         * NULL-terminated: sent, and left out when the server refuses one
         * (wc_stream_start()); NULL for none. */
        const char *const *optional;
        /* For each optional pair, what is lost without it (a warning's
         * text, after "does not know the option ...: "). */
        const char *const *optional_lost;
        /* The options to start with for filter f (f may be NULL: no
         * filter): the fixed ones, then the pushdown.  Only what f
         * certainly drops may be pushed.  0 or -ENOMEM. */
        int (*options)(const struct wc_filter_config *f,
                       struct wc_decoder_options *ret);
        struct wc_decoder *(*create)(void);
        void (*destroy)(struct wc_decoder *d);
        int (*decode)(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen);
        /* NULL when the format cannot say (wc_decoder_relation()). */
        int (*relation)(struct wc_decoder *d, char *msg, size_t len,
                        const struct wc_change **ret_change);
        /* NULL when every message is at most one change
         * (wc_decoder_next()). */
        int (*next)(struct wc_decoder *d, const struct wc_change **ret_change);
};

/* The decoder walcast streams with (defined in that decoder's file). */
extern const struct wc_decoder_ops *const wc_decoder_default;

/* NULL on failure. */
struct wc_decoder *wc_decoder_new(const struct wc_decoder_ops *ops);
void wc_decoder_free(struct wc_decoder *d);

/*
 * Decodes msg[0..len).  `at` is the message's WAL position (the XLogData
 * dataStart): in error messages, and the change's position for a format
 * that does not carry one.  0 with *ret_change NULL for a message that
 * carries no change (pgoutput's Relation, Type, Origin).  On failure returns
 * -EBADMSG (malformed or unexpected input) or -ENOMEM and writes to errbuf a
 * message naming the position and a short excerpt of the message as received:
 *   could not decode <name> message at 0/1547700: "columns" is not an
 *   array: {"action":"I","xid":728,...
 */
int wc_decoder_decode(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen);

/*
 * What a message that wc_decoder_decode() refused is about, when the
 * format's order lets it say: an insert, update, delete or truncate whose
 * op, schema and table decode before its column lists.  Fills op, schema
 * and table of *ret_change (nothing else); -EBADMSG when the message does
 * not say that much.  For filters: a table nobody wants is skipped without
 * decoding its columns.
 */
int wc_decoder_relation(struct wc_decoder *d, char *msg, size_t len,
                        const struct wc_change **ret_change);

/*
 * The next change of the message wc_decoder_decode() decoded last, for a
 * message that holds several (pgoutput's Truncate of several tables): 1
 * with *ret_change set (valid like the first), 0 when there is none.
 */
int wc_decoder_next(struct wc_decoder *d, const struct wc_change **ret_change);

void wc_decoder_options_init(struct wc_decoder_options *o);
void wc_decoder_options_free(struct wc_decoder_options *o);
/* Appends key (a static string) and a copy of value[0..len).  0, -ENOMEM,
 * or -E2BIG when the list is full. */
int wc_decoder_options_add(struct wc_decoder_options *o, const char *key,
                           const char *value, size_t len);

/*
 * Would filters a and b start the stream with the same options?  A
 * stream started with a's options skips what b may want (or passes what
 * b drops), so a reload from a to b restarts the stream when they
 * differ.  1 same, 0 different, -ENOMEM (or -E2BIG).
 */
int wc_decoder_options_same(const struct wc_decoder_ops *ops,
                            const struct wc_filter_config *a,
                            const struct wc_filter_config *b);

#endif
