/* SPDX-License-Identifier: MIT */
/*
 * One row of COPY's text format (COPY ... TO STDOUT, the default
 * delimiter and null string), split and unescaped in place: the fields
 * are separated by a tab, the row ends with a newline, \N alone is SQL
 * NULL, and a backslash escapes the next byte: \b \f \n \r \t \v, \\,
 * one to three octal digits (\7, \101), \x with one or two hex digits
 * (\x41), anything else stands for itself (a tab too: data, not a
 * delimiter).  What comes out is the value's output text, as a PGresult
 * would hold it.  Pure: no I/O.
 */
#ifndef WALCAST_SNAPSHOT_COPYTEXT_H
#define WALCAST_SNAPSHOT_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * line[0..len) one row, its final newline included, as PQgetCopyData()
 * gives it.  Decodes the nfields fields in place: texts[i] points into
 * line, NUL-terminated, lens[i] bytes (a \0 escape can make a NUL
 * inside), nulls[i] for \N.  0, or -EBADMSG for a row that is not one of
 * nfields fields (a row cut before its newline, more than one row, a
 * backslash at the end of a field, too many or too few fields).
 */
int wc_snap_copy_fields(char *line, size_t len, uint32_t nfields,
                        const char **texts, size_t *lens, bool *nulls);

#endif
