/* SPDX-License-Identifier: MIT */
/*
 * wal2json format-version 2 decoder: one message (one JSON object) to one
 * struct wc_change, zero-copy.
 *
 * The decoder validates in one pass and does not modify the message
 * (the buffer is writable for historical reasons only).  Column values
 * and the lists' JSON text are views into it, so it must stay alive and
 * unmodified for as long as the returned change is used; names are
 * decoded, NUL-terminated, into storage the decoder owns.  The change,
 * its column arrays and its names are owned by the decoder and valid
 * until the next call to wc_decoder_decode(), wc_decoder_relation() or
 * wc_decoder_free().
 *
 * One known wal2json defect is decoded where it occurs: a type name that
 * format_type() quotes ("type":"other-tenant".st) is not escaped.  Such a
 * message is decoded from a corrected copy that the decoder owns, and its
 * values are views into that copy, valid as long as the change.
 */
#ifndef WALCAST_DECODE_H
#define WALCAST_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct wc_decoder;

struct wc_decoder *wc_decoder_new(void);
void wc_decoder_free(struct wc_decoder *d);

/*
 * Decodes msg[0..len).  `at` is the message's WAL position (the XLogData
 * dataStart), used only in error messages.  On failure returns -EBADMSG
 * (malformed or unexpected input) or -ENOMEM and writes to errbuf a message
 * naming the position and a short excerpt of the message as received:
 *   could not decode wal2json message at 0/1547700: "columns" is not an
 *   array: {"action":"I","xid":728,...
 */
int wc_decoder_decode(struct wc_decoder *d, char *msg, size_t len, wc_lsn at,
                      const struct wc_change **ret_change, char *errbuf,
                      size_t errlen);

/*
 * What a message that wc_decoder_decode() refused is about, when wal2json's
 * order lets it say: an insert, update, delete or truncate whose "action",
 * "schema" and "table" decode before its column lists.  Fills op, schema
 * and table of *ret_change (nothing else); -EBADMSG when the message does
 * not say that much.  For filters: a table nobody wants is skipped without
 * decoding its columns.
 */
int wc_decoder_relation(struct wc_decoder *d, char *msg, size_t len,
                        const struct wc_change **ret_change);

/* With on false, long strings are scanned 16 bytes at a time even where
 * the CPU has AVX2 (for tests, which compare the two). */
void wc_decoder_set_avx2(struct wc_decoder *d, bool on);

#endif
