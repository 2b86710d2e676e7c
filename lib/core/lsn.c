/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* One half of "HI/LO": 1 to 8 hex digits. */
static int parse_half(const char *s, size_t len, uint32_t *ret)
{
        uint32_t v = 0;

        if (len == 0 || len > 8)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                int h = hexval(s[i]);
                if (h < 0)
                        return -EINVAL;
                v = (v << 4) | (uint32_t)h;
        }
        *ret = v;
        return 0;
}

int wc_lsn_parse_n(const char *s, size_t len, wc_lsn *ret_lsn)
{
        const char *slash;
        uint32_t hi, lo;

        if (!s)
                return -EINVAL;
        slash = memchr(s, '/', len);
        if (!slash)
                return -EINVAL;
        if (parse_half(s, (size_t)(slash - s), &hi) < 0 ||
            parse_half(slash + 1, len - (size_t)(slash - s) - 1, &lo) < 0)
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

char *wc_lsn_format(wc_lsn lsn, char buf[WC_LSN_STRLEN])
{
        snprintf(buf, WC_LSN_STRLEN, "%X/%X", (unsigned)(lsn >> 32),
                 (unsigned)(lsn & 0xffffffffu));
        return buf;
}
