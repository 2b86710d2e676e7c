/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "core/core.h"
#include "snapshot/copytext.h"

static int octal(char c)
{
        return c >= '0' && c <= '7' ? c - '0' : -1;
}

/* Unescapes the field at *p up to its tab or newline (end is the row's
 * newline), writing at out; the byte after the field's end is returned
 * through *ret_sep.  Its decoded length, or -1 for a lone backslash at
 * its end or a raw newline inside (two rows). */
static long field(char **p, char *end, char *out, char *ret_sep)
{
        char *in = *p, *o = out;

        while (in < end && *in != '\t') {
                char c = *in++;
                int d;

                if (c == '\n')
                        return -1; /* a raw newline ends a row */
                if (c != '\\') {
                        *o++ = c;
                        continue;
                }
                /* a backslash and the delimiter is the delimiter as data,
                 * as COPY FROM reads it */
                if (in == end || *in == '\n')
                        return -1;
                c = *in++;
                switch (c) {
                case 'b':
                        *o++ = '\b';
                        break;
                case 'f':
                        *o++ = '\f';
                        break;
                case 'n':
                        *o++ = '\n';
                        break;
                case 'r':
                        *o++ = '\r';
                        break;
                case 't':
                        *o++ = '\t';
                        break;
                case 'v':
                        *o++ = '\v';
                        break;
                case 'x':
                        d = in < end ? wc_hex_digit(*in) : -1;
                        if (d < 0) {
                                *o++ = 'x'; /* not a hex escape */
                                break;
                        }
                        in++;
                        if (in < end && wc_hex_digit(*in) >= 0)
                                d = d * 16 + wc_hex_digit(*in++);
                        *o++ = (char)d;
                        break;
                default:
                        d = octal(c);
                        if (d < 0) {
                                *o++ = c; /* \\ and any other byte */
                                break;
                        }
                        for (int i = 0; i < 2 && in < end && octal(*in) >= 0;
                             i++)
                                d = d * 8 + octal(*in++);
                        *o++ = (char)d;
                        break;
                }
        }
        *ret_sep = in < end ? *in : '\n';
        *p = in < end ? in + 1 : end;
        return o - out;
}

int wc_snap_copy_fields(char *line, size_t len, uint32_t nfields,
                        const char **texts, size_t *lens, bool *nulls)
{
        char *p = line, *end;
        uint32_t i;

        if (len == 0 || line[len - 1] != '\n')
                return -EBADMSG;
        end = line + len - 1;
        /* a raw newline only ends the row */
        if (memchr(line, '\n', len - 1))
                return -EBADMSG;
        for (i = 0; i < nfields; i++) {
                char *start = p, sep;
                long n;

                /* \N alone: NULL (an escaped N in a longer text is N) */
                if (end - p >= 2 && p[0] == '\\' && p[1] == 'N' &&
                    (p + 2 == end || p[2] == '\t')) {
                        sep = p + 2 == end ? '\n' : '\t';
                        p[0] = '\0';
                        p = p + 2 == end ? end : p + 3;
                        texts[i] = start;
                        lens[i] = 0;
                        nulls[i] = true;
                } else {
                        /* most fields have no escape: found with memchr,
                         * left where they are */
                        char *tab = memchr(p, '\t', (size_t)(end - p));
                        char *fend = tab ? tab : end;

                        if (!memchr(p, '\\', (size_t)(fend - p))) {
                                n = fend - p;
                                sep = tab ? '\t' : '\n';
                                p = tab ? tab + 1 : end;
                        } else {
                                n = field(&p, end, start, &sep);
                        }
                        if (n < 0)
                                return -EBADMSG;
                        start[n] = '\0';
                        texts[i] = start;
                        lens[i] = (size_t)n;
                        nulls[i] = false;
                }
                if (sep == '\n' && i + 1 < nfields)
                        return -EBADMSG;
                if (sep == '\t' && i + 1 == nfields)
                        return -EBADMSG;
        }
        return 0;
}
