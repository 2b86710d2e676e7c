/* SPDX-License-Identifier: MIT */
/*
 * The wal2json decoder: format-version 2, one message (one JSON object)
 * to one struct wc_change, behind the decoder interface (decoder.h).
 *
 * One known wal2json defect is decoded where it occurs: a type name that
 * format_type() quotes ("type":"other-tenant".st) is not escaped.  Such a
 * message is decoded from a corrected copy that the decoder owns, and its
 * values are views into that copy, valid as long as the change
 * (wal2json_repair.c).
 *
 * Errors name the position and quote the message as received:
 *   could not decode wal2json message at 0/1547700: "columns" is not an
 *   array: {"action":"I","xid":728,...
 */
#ifndef WALCAST_WAL2JSON_H
#define WALCAST_WAL2JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "decode/decoder.h"

extern const struct wc_decoder_ops wc_wal2json;

/* With on false, long strings are scanned 16 bytes at a time even where
 * the CPU has AVX2 (for tests, which compare the two).  d is a wal2json
 * decoder. */
void wc_wal2json_set_avx2(struct wc_decoder *d, bool on);

/* The ops' option lists and options() (wal2json_options.c). */
extern const char *const wc_wal2json_optional[];
extern const char *const wc_wal2json_optional_lost[];
int wc_wal2json_options(const struct wc_filter_config *f,
                        struct wc_decoder_options *ret);

/* The START_REPLICATION options walcast always sends wal2json: key,
 * value pairs, NULL-terminated (tests, docs). */
extern const char *const wc_wal2json_base_options[];

/*
 * wal2json options that make the server skip what the filter drops anyway:
 * "actions", "add-tables", "filter-tables".  Only what is certainly
 * excluded is pushed (new tenant schemas appear at any time, so globs and
 * namespaces stay on our side).  Each output buffer is left empty when
 * that option should not be sent.  0 or -ENOMEM.
 */
int wc_wal2json_pushdown(const struct wc_filter_config *f,
                         struct wc_buf *actions, struct wc_buf *add_tables,
                         struct wc_buf *filter_tables);

/*
 * Walks the message m[0..n) as JSON and writes to out a copy in which each
 * unescaped type name is a JSON string.  1 when it made one, 0 when there
 * was nothing to repair or the message is not wal2json's shape with that
 * defect (its error stands), -ENOMEM.
 */
int wc_wal2json_repair_types(const char *m, size_t n, struct wc_buf *out);

#endif
