/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Nonzero when some byte of x is below n (n <= 0x80).  The borrow of the
 * lowest such byte always reaches its high bit, so a zero result is exact;
 * a nonzero one only says "look closer". */
static inline uint64_t has_less(uint64_t x, uint64_t n)
{
        return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, uint64_t c)
{
        return has_less(x ^ (ONES * c), 1);
}

static inline int must_escape(unsigned char c)
{
        return c < 0x20 || c == '"' || c == '\\';
}

/* Length of the prefix of s that can be copied as it is.  Text columns are
 * mostly plain, so eight bytes at a time pays off on long values. */
static size_t plain_span(const char *s, size_t len)
{
        size_t i = 0;

        while (len - i >= 8) {
                uint64_t x;

                memcpy(&x, s + i, 8);
                if (has_less(x, 0x20) | has_byte(x, '"') | has_byte(x, '\\'))
                        break;
                i += 8;
        }
        while (i < len && !must_escape((unsigned char)s[i]))
                i++;
        return i;
}

char *wc_json_put_escape(char *o, unsigned char c)
{
        static const char hex[] = "0123456789abcdef";

        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
                *o++ = (char)c;
                break;
        case '\n':
                *o++ = 'n';
                break;
        case '\t':
                *o++ = 't';
                break;
        case '\r':
                *o++ = 'r';
                break;
        case '\b':
                *o++ = 'b';
                break;
        case '\f':
                *o++ = 'f';
                break;
        default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 0xf];
                break;
        }
        return o;
}

/* Names and types are short: a test per byte, copying as it goes, costs
 * less than finding a plain run and calling memcpy for it.  Values (a
 * snapshot's text columns) are longer: eight bytes at a time. */
char *wc_json_put_string(char *o, const char *s, size_t n)
{
        size_t i = 0;

        *o++ = '"';
        while (n - i >= 32) {
                size_t run = plain_span(s + i, n - i);

                memcpy(o, s + i, run);
                o += run;
                i += run;
                if (i == n)
                        break;
                o = wc_json_put_escape(o, (unsigned char)s[i++]);
        }
        for (; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (must_escape(c))
                        o = wc_json_put_escape(o, c);
                else
                        *o++ = (char)c;
        }
        *o++ = '"';
        return o;
}

int wc_json_append_column(struct wc_buf *b, const char *name, size_t name_len,
                          const char *type, size_t type_len, uint32_t type_oid,
                          bool value)
{
        size_t start = b->len;
        char *o;
        int r;

        if (plain_span(name, name_len) != name_len ||
            plain_span(type, type_len) != type_len)
                return -EINVAL;
        if (name_len > SIZE_MAX / 2 - 64 || type_len > SIZE_MAX / 2 - 64)
                return -ENOMEM;
        r = wc_buf_reserve(b, name_len + type_len + 64);
        if (r < 0)
                return r;
        o = b->data + start;
        memcpy(o, "{\"name\":", 8);
        o = wc_json_put_string(o + 8, name, name_len);
        memcpy(o, ",\"type\":", 8);
        o = wc_json_put_string(o + 8, type, type_len);
        if (type_oid) {
                memcpy(o, ",\"typeoid\":", 11);
                o = wc_put_uint(o + 11, type_oid);
        }
        if (value) {
                memcpy(o, ",\"value\":", 9);
                o += 9;
        } else {
                *o++ = '}';
        }
        b->len = (size_t)(o - b->data);
        b->data[b->len] = '\0';
        return 0;
}

int wc_json_append_key_list(struct wc_buf *b, const struct walcast_column *cols,
                            uint32_t n)
{
        int r = wc_buf_append_char(b, '[');

        for (uint32_t i = 0; i < n && !r; i++) {
                if (i)
                        r = wc_buf_append_char(b, ',');
                if (!r)
                        r = wc_json_append_column(
                            b, cols[i].name, cols[i].name_len, cols[i].type,
                            cols[i].type_len, cols[i].type_oid, false);
        }
        return r ? r : wc_buf_append_char(b, ']');
}

int wc_json_append_string(struct wc_buf *b, const char *s, size_t len)
{
        size_t start = b->len;
        size_t i = 0;
        int r;

        if (len > SIZE_MAX - 2)
                return -ENOMEM;
        /* The common case, nothing to escape, needs exactly this much. */
        r = wc_buf_reserve(b, len + 2);
        if (r < 0)
                return r;
        b->data[b->len++] = '"';
        for (;;) {
                size_t run = plain_span(s + i, len - i);
                unsigned char c;
                char esc[WC_JSON_ESCAPE_MAX];
                size_t n;

                memcpy(b->data + b->len, s + i, run);
                b->len += run;
                i += run;
                if (i == len)
                        break;
                c = (unsigned char)s[i++];
                n = (size_t)(wc_json_put_escape(esc, c) - esc);
                /* Room for this escape, the rest unescaped and the quote. */
                r = wc_buf_reserve(b, n + (len - i) + 1);
                if (r < 0)
                        goto err_truncate;
                memcpy(b->data + b->len, esc, n);
                b->len += n;
        }
        b->data[b->len++] = '"';
        b->data[b->len] = '\0';
        return 0;

err_truncate:
        b->len = start;
        if (b->data)
                b->data[start] = '\0';
        return r;
}

static int hex4(const char *p, uint32_t *ret)
{
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];
                uint32_t h;

                if (c >= '0' && c <= '9')
                        h = (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        h = (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        h = (uint32_t)(c - 'A' + 10);
                else
                        return -EBADMSG;
                v = v << 4 | h;
        }
        *ret = v;
        return 0;
}

static size_t put_utf8(char *w, uint32_t cp)
{
        if (cp < 0x80) {
                w[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                w[0] = (char)(0xc0 | cp >> 6);
                w[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                w[0] = (char)(0xe0 | cp >> 12);
                w[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                w[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        w[0] = (char)(0xf0 | cp >> 18);
        w[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        w[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        w[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

int wc_json_unescape_inplace(char *s, size_t len, size_t *ret_len)
{
        char *bs = memchr(s, '\\', len);
        size_t r, w;

        if (!bs) {
                s[len] = '\0';
                *ret_len = len;
                return 0;
        }
        /* Every escape is at least as long as what it decodes to, so the
         * write position never passes the read position. */
        r = w = (size_t)(bs - s);
        while (r < len) {
                uint32_t cp, lo;
                char c = s[r];

                if (c != '\\') {
                        s[w++] = c;
                        r++;
                        continue;
                }
                if (len - r < 2)
                        return -EBADMSG;
                c = s[r + 1];
                r += 2;
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        s[w++] = c;
                        continue;
                case 'b':
                        s[w++] = '\b';
                        continue;
                case 'f':
                        s[w++] = '\f';
                        continue;
                case 'n':
                        s[w++] = '\n';
                        continue;
                case 'r':
                        s[w++] = '\r';
                        continue;
                case 't':
                        s[w++] = '\t';
                        continue;
                case 'u':
                        break;
                default:
                        return -EBADMSG;
                }
                if (len - r < 4 || hex4(s + r, &cp) < 0)
                        return -EBADMSG;
                r += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                        return -EBADMSG; /* low half without a high one */
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (len - r < 6 || s[r] != '\\' || s[r + 1] != 'u' ||
                            hex4(s + r + 2, &lo) < 0 || lo < 0xdc00 ||
                            lo > 0xdfff)
                                return -EBADMSG;
                        r += 6;
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                w += put_utf8(s + w, cp);
        }
        s[w] = '\0';
        *ret_len = w;
        return 0;
}
