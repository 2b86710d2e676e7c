/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "core/core.h"

/* Hex digit values; 0 for every other byte too (told apart from '0'). */
static const signed char hexval[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,
    ['6'] = 6,  ['7'] = 7,  ['8'] = 8,  ['9'] = 9,  ['A'] = 10, ['B'] = 11,
    ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15, ['a'] = 10, ['b'] = 11,
    ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};

/*
 * One half of "HI/LO": 1 to 8 hex digits from s[i], up to `stop` or the
 * end; returns the index after the digits, or 0 when there are none, too
 * many, or another byte.
 */
static size_t parse_half(const char *s, size_t len, size_t i, char stop,
                         uint32_t *ret)
{
        size_t start = i;
        uint32_t v = 0;

        for (; i < len && s[i] != stop; i++) {
                unsigned char c = (unsigned char)s[i];
                int h = hexval[c];

                if ((h == 0 && c != '0') || i - start == 8)
                        return 0;
                v = (v << 4) | (uint32_t)h;
        }
        if (i == start)
                return 0;
        *ret = v;
        return i;
}

int wc_lsn_parse_n(const char *s, size_t len, wc_lsn *ret_lsn)
{
        uint32_t hi = 0, lo = 0;
        size_t i;

        if (!s)
                return -EINVAL;
        i = parse_half(s, len, 0, '/', &hi);
        if (i == 0 || i == len)
                return -EINVAL;
        i = parse_half(s, len, i + 1, '\0', &lo);
        if (i != len)
                return -EINVAL;
        *ret_lsn = ((wc_lsn)hi << 32) | lo;
        return 0;
}

int wc_lsn_parse(const char *s, wc_lsn *ret_lsn)
{
        if (!s)
                return -EINVAL;
        return wc_lsn_parse_n(s, strlen(s), ret_lsn);
}

/* Uppercase hex of v without leading zeros ("0" for 0); returns the
 * length written. */
static size_t put_hex32(char *out, uint32_t v)
{
        static const char digits[] = "0123456789ABCDEF";
        size_t n = v ? (size_t)(35 - __builtin_clz(v)) / 4 : 1;

        for (size_t i = n; i-- > 0; v >>= 4)
                out[i] = digits[v & 0xf];
        return n;
}

size_t wc_lsn_format_len(wc_lsn lsn, char buf[WC_LSN_STRLEN])
{
        size_t n = put_hex32(buf, (uint32_t)(lsn >> 32));

        buf[n++] = '/';
        n += put_hex32(buf + n, (uint32_t)lsn);
        buf[n] = '\0';
        return n;
}

/* "%X/%X", by hand: snprintf cost a thousand instructions a call. */
char *wc_lsn_format(wc_lsn lsn, char buf[WC_LSN_STRLEN])
{
        wc_lsn_format_len(lsn, buf);
        return buf;
}

wc_lsn wc_lsn_page_floor(wc_lsn lsn, uint32_t block_size, uint64_t segment_size)
{
        /* a segment's first page has the long header */
        uint64_t in_seg, in_page;

        if (!block_size || !segment_size)
                return lsn;
        in_seg = lsn % segment_size;
        if (in_seg <= WC_WAL_LONG_HEADER)
                return lsn - in_seg;
        in_page = lsn % block_size;
        if (in_page <= WC_WAL_SHORT_HEADER)
                return lsn - in_page;
        return lsn;
}
