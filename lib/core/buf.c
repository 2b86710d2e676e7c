/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void wc_buf_init(struct wc_buf *b)
{
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
}

void wc_buf_free(struct wc_buf *b)
{
        if (!b)
                return;
        free(b->data);
        wc_buf_init(b);
}

int wc_buf_reserve(struct wc_buf *b, size_t n)
{
        size_t cap;
        char *p;

        if (b->cap - b->len > n)
                return 0;
        if (n > SIZE_MAX / 2 - b->len)
                return -ENOMEM;
        cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n)
                cap *= 2;
        p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

int wc_buf_append(struct wc_buf *b, const void *p, size_t n)
{
        int r = wc_buf_reserve(b, n);

        if (r < 0)
                return r;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int wc_buf_append_str(struct wc_buf *b, const char *s)
{
        return wc_buf_append(b, s, strlen(s));
}

int wc_buf_append_char(struct wc_buf *b, char c)
{
        return wc_buf_append(b, &c, 1);
}

int wc_buf_printf(struct wc_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n, r;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        r = wc_buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

/* two digits per division: LSNs, xids and timestamps are 10-16 digits */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

char *wc_put_uint(char *o, uint64_t v)
{
        char tmp[WC_UINT_MAX_DIGITS];
        size_t i = sizeof(tmp);

        while (v >= 100) {
                unsigned d = (unsigned)(v % 100) * 2;

                v /= 100;
                tmp[--i] = digit_pairs[d + 1];
                tmp[--i] = digit_pairs[d];
        }
        if (v >= 10) {
                tmp[--i] = digit_pairs[v * 2 + 1];
                tmp[--i] = digit_pairs[v * 2];
        } else {
                tmp[--i] = (char)('0' + v);
        }
        memcpy(o, tmp + i, sizeof(tmp) - i);
        return o + (sizeof(tmp) - i);
}

int wc_buf_append_uint(struct wc_buf *b, uint64_t v)
{
        char tmp[WC_UINT_MAX_DIGITS];

        return wc_buf_append(b, tmp, (size_t)(wc_put_uint(tmp, v) - tmp));
}

void wc_verrorf(char *errbuf, size_t errlen, const char *fmt, va_list ap)
{
        if (errbuf && errlen)
                vsnprintf(errbuf, errlen, fmt, ap);
}

void wc_errorf(char *errbuf, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        wc_verrorf(errbuf, errlen, fmt, ap);
        va_end(ap);
}

int wc_fail(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        wc_verrorf(errbuf, errlen, fmt, ap);
        va_end(ap);
        return err;
}
