/* SPDX-License-Identifier: MIT */
/* Base64 (RFC 4648, the standard alphabet, padded). */
#include "core.h"

char *wc_base64_put(char *o, const unsigned char *p, size_t n)
{
        static const char abc[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t i = 0;

        for (; n - i >= 3; i += 3) {
                uint32_t v =
                    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

                *o++ = abc[v >> 18];
                *o++ = abc[v >> 12 & 63];
                *o++ = abc[v >> 6 & 63];
                *o++ = abc[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)p[i] << 16;

                *o++ = abc[v >> 18];
                *o++ = abc[v >> 12 & 63];
                *o++ = '=';
                *o++ = '=';
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

                *o++ = abc[v >> 18];
                *o++ = abc[v >> 12 & 63];
                *o++ = abc[v >> 6 & 63];
                *o++ = '=';
        }
        return o;
}
