/* SPDX-License-Identifier: MIT */
/*
 * Column values as Debezium's PostgreSQL connector converts them, from
 * the text PostgreSQL prints with the settings walcast pins on its
 * connection (DateStyle ISO, TimeZone UTC, IntervalStyle postgres,
 * bytea_output hex, lc_monetary C; docs/file-format.md).
 *
 * What each type becomes follows Debezium's documented mapping ("How
 * Debezium PostgreSQL connectors map data types"); the arithmetic of
 * io.debezium.time.MicroDuration (365.25 / 12 days a month) is done in
 * doubles in the same order, so that the numbers are the same.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/kafka/debezium.h"

/* ---- which conversion ---- */

static bool name_has(const char *name, size_t len, const char *lit)
{
        size_t n = strlen(lit);

        return len >= n && memcmp(name, lit, n) == 0;
}

/* The numbers in the first "(...)" of a type name: numeric(12,4) gives 2
 * of them, timestamp(3) without time zone 1, numeric none. */
static int typmods(const char *name, size_t len, int32_t mods[2])
{
        const char *p = memchr(name, '(', len), *end = name + len;
        int n = 0;

        if (!p)
                return 0;
        p++;
        while (p < end && n < 2) {
                long v = 0;

                if (*p < '0' || *p > '9')
                        return n;
                while (p < end && *p >= '0' && *p <= '9' && v < 100000000)
                        v = v * 10 + (*p++ - '0');
                mods[n++] = (int32_t)v;
                if (p < end && *p == ',')
                        p++;
                else
                        break;
        }
        return n;
}

/* The kind of a scalar type OID, adaptive; WC_DBZ_TEXT when unknown.
 * Time kinds are refined by precision and mode by the caller. */
static uint8_t scalar_kind(uint32_t oid)
{
        switch (oid) {
        case 16: /* bool */
                return WC_DBZ_BOOLEAN;
        case 17: /* bytea */
                return WC_DBZ_BYTES;
        case 18:   /* "char" */
        case 19:   /* name */
        case 25:   /* text */
        case 650:  /* cidr */
        case 774:  /* macaddr8 */
        case 829:  /* macaddr */
        case 869:  /* inet */
        case 1042: /* bpchar */
        case 1043: /* varchar */
        case 3904: /* int4range */
        case 3906: /* numrange */
        case 3908: /* tsrange */
        case 3910: /* tstzrange */
        case 3912: /* daterange */
        case 3926: /* int8range */
                return WC_DBZ_STRING;
        case 20: /* int8 */
        case 26: /* oid: unsigned 32 bits, INT64 in Debezium */
                return WC_DBZ_INT64;
        case 21:
                return WC_DBZ_INT16;
        case 23:
                return WC_DBZ_INT32;
        case 114:  /* json */
        case 3802: /* jsonb */
                return WC_DBZ_JSON;
        case 142:
                return WC_DBZ_XML;
        case 700:
                return WC_DBZ_FLOAT32;
        case 701:
                return WC_DBZ_FLOAT64;
        case 790:
                return WC_DBZ_MONEY;
        case 1082:
                return WC_DBZ_DATE;
        case 1083:
                return WC_DBZ_MICRO_TIME;
        case 1114:
                return WC_DBZ_MICRO_TIMESTAMP;
        case 1184:
                return WC_DBZ_ZONED_TIMESTAMP;
        case 1186:
                return WC_DBZ_MICRO_DURATION;
        case 1266:
                return WC_DBZ_ZONED_TIME;
        case 1560: /* bit */
        case 1562: /* varbit */
                return WC_DBZ_BITS;
        case 1700:
                return WC_DBZ_DECIMAL;
        case 2950:
                return WC_DBZ_UUID;
        default:
                return WC_DBZ_TEXT;
        }
}

/* The element type of the array types Debezium converts; 0 otherwise
 * (money[], interval[], varbit[], xml[], point[], name[] it does not). */
static uint32_t array_elem(uint32_t oid)
{
        switch (oid) {
        case 1000:
                return 16;
        case 1001:
                return 17;
        case 1002:
                return 18;
        case 1005:
                return 21;
        case 1007:
                return 23;
        case 1016:
                return 20;
        case 1028:
                return 26;
        case 1009:
                return 25;
        case 1014:
                return 1042;
        case 1015:
                return 1043;
        case 1041:
                return 869;
        case 651:
                return 650;
        case 1040:
                return 829;
        case 775:
                return 774;
        case 3905:
                return 3904;
        case 3907:
                return 3906;
        case 3909:
                return 3908;
        case 3911:
                return 3910;
        case 3913:
                return 3912;
        case 3927:
                return 3926;
        case 1021:
                return 700;
        case 1022:
                return 701;
        case 1231:
                return 1700;
        case 1182:
                return 1082;
        case 1183:
                return 1083;
        case 1115:
                return 1114;
        case 1185:
                return 1184;
        case 1270:
                return 1266;
        case 2951:
                return 2950;
        case 199:
                return 114;
        case 3807:
                return 3802;
        default:
                return 0;
        }
}

/* Refines a kind by the type's modifiers and the options. */
static uint8_t refine(uint8_t k, const int32_t *mods, int nmods,
                      const struct wc_dbz_options *o, struct wc_dbz_type *t)
{
        int32_t p = nmods > 0 ? mods[0] : 6;
        bool connect = o->time == WC_DBZ_TIME_CONNECT;

        switch (k) {
        case WC_DBZ_DATE:
                return connect ? WC_DBZ_CONNECT_DATE : WC_DBZ_DATE;
        case WC_DBZ_MICRO_TIME:
                if (connect)
                        return WC_DBZ_CONNECT_TIME;
                return p <= 3 ? WC_DBZ_TIME : WC_DBZ_MICRO_TIME;
        case WC_DBZ_MICRO_TIMESTAMP:
                if (connect)
                        return WC_DBZ_CONNECT_TIMESTAMP;
                return p <= 3 ? WC_DBZ_TIMESTAMP : WC_DBZ_MICRO_TIMESTAMP;
        case WC_DBZ_DECIMAL:
                if (o->decimal == WC_DBZ_DECIMAL_STRING)
                        return WC_DBZ_DECIMAL_AS_STRING;
                if (o->decimal == WC_DBZ_DECIMAL_DOUBLE)
                        return WC_DBZ_DECIMAL_AS_DOUBLE;
                if (nmods == 0)
                        return WC_DBZ_VARIABLE_DECIMAL;
                t->precision = mods[0];
                t->scale = nmods > 1 ? mods[1] : 0;
                return WC_DBZ_DECIMAL;
        case WC_DBZ_MONEY:
                /* money.fraction.digits: 2 */
                t->scale = 2;
                t->decimal = (uint8_t)o->decimal;
                return WC_DBZ_MONEY;
        case WC_DBZ_BITS:
                /* bit is bit(1); varbit without a length, unbounded */
                t->length = nmods > 0 ? mods[0] : t->length;
                return t->length == 1 ? WC_DBZ_BIT1 : WC_DBZ_BITS;
        default:
                return k;
        }
}

size_t wc_dbz_enum_lower_bound(const struct wc_dbz_enum *v, size_t n,
                               uint32_t oid)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (v[mid].oid < oid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

void wc_dbz_type_of(uint32_t oid, const char *name, size_t name_len,
                    const struct wc_dbz_options *o, struct wc_dbz_type *ret)
{
        int32_t mods[2] = {0, 0};
        int nmods = 0;
        uint32_t elem = array_elem(oid);
        uint8_t k;

        memset(ret, 0, sizeof(*ret));
        ret->precision = -1;
        ret->length = oid == 1560 ? 1 : INT32_MAX;
        if (name && (oid == 1700 || oid == 1231 || oid == 1083 || oid == 1183 ||
                     oid == 1114 || oid == 1115 || oid == 1560 || oid == 1562))
                nmods = typmods(name, name_len, mods);
        /* hstore and ltree are extensions: no fixed OID, known by name */
        if (oid >= 16384 && o && o->nenums) {
                size_t lo = wc_dbz_enum_lower_bound(o->enums, o->nenums, oid);

                if (lo < o->nenums && o->enums[lo].oid == oid &&
                    o->enums[lo].labels) {
                        ret->kind = WC_DBZ_ENUM;
                        ret->allowed = o->enums[lo].labels;
                        return;
                }
        }
        if (oid >= 16384 && name) {
                if (name_len == 13 && name_has(name, name_len, "public.hstore"))
                        oid = 0, ret->kind = WC_DBZ_JSON;
                else if (name_len == 12 &&
                         name_has(name, name_len, "public.ltree"))
                        oid = 0, ret->kind = WC_DBZ_LTREE;
                else if (name_len == 13 &&
                         name_has(name, name_len, "public.citext"))
                        oid = 0, ret->kind = WC_DBZ_STRING;
                if (oid == 0)
                        return;
        }
        if (elem) {
                k = refine(scalar_kind(elem), mods, nmods, o, ret);
                /* a varbit array: Debezium has no conversion */
                ret->kind = WC_DBZ_ARRAY;
                ret->elem = k;
                return;
        }
        ret->kind = refine(scalar_kind(oid), mods, nmods, o, ret);
}

int wc_dbz_parse_decimal(const char *s, enum wc_dbz_decimal *ret)
{
        if (!s || strcmp(s, "precise") == 0)
                *ret = WC_DBZ_DECIMAL_PRECISE;
        else if (strcmp(s, "string") == 0)
                *ret = WC_DBZ_DECIMAL_STRING;
        else if (strcmp(s, "double") == 0)
                *ret = WC_DBZ_DECIMAL_DOUBLE;
        else
                return -EINVAL;
        return 0;
}

int wc_dbz_parse_time(const char *s, enum wc_dbz_time *ret)
{
        if (!s || strcmp(s, "adaptive") == 0)
                *ret = WC_DBZ_TIME_ADAPTIVE;
        else if (strcmp(s, "connect") == 0)
                *ret = WC_DBZ_TIME_CONNECT;
        else
                return -EINVAL;
        return 0;
}

/* ---- reading PostgreSQL's text ---- */

/* A cursor over text. */
struct rd {
        const char *p, *end;
};

static bool rd_lit(struct rd *r, char c)
{
        if (r->p < r->end && *r->p == c) {
                r->p++;
                return true;
        }
        return false;
}

/* n to max digits as a number; false when none. */
static bool rd_num(struct rd *r, size_t max, int64_t *ret)
{
        int64_t v = 0;
        size_t n = 0;

        while (r->p < r->end && n < max && *r->p >= '0' && *r->p <= '9') {
                v = v * 10 + (*r->p++ - '0');
                n++;
        }
        *ret = v;
        return n > 0;
}

/* A fraction ".ffffff" as microseconds (digits past the sixth ignored);
 * 0 when there is none. */
static int64_t rd_frac_us(struct rd *r)
{
        int64_t us = 0;
        int n = 0;

        if (!rd_lit(r, '.'))
                return 0;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
                if (n < 6) {
                        us = us * 10 + (*r->p - '0');
                        n++;
                }
                r->p++;
        }
        while (n++ < 6)
                us *= 10;
        return us;
}

#define US_PER_SEC 1000000ll
#define US_PER_DAY 86400000000ll

/* As in core/time.c: days since 1970-01-01 in the proleptic Gregorian
 * calendar, and back. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        if (m <= 2)
                y--;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m, int *ret_d)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        *ret_d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *ret_m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *ret_y = yoe + era * 400 + (*ret_m <= 2);
}

/* " BC" at the end of r: moves end before it. */
static bool strip_bc(struct rd *r)
{
        if (r->end - r->p >= 3 && memcmp(r->end - 3, " BC", 3) == 0) {
                r->end -= 3;
                return true;
        }
        return false;
}

/* "YYYY-MM-DD" (more year digits allowed) as days since the epoch; year
 * made proleptic when bc (1 BC is year 0). */
static bool rd_date(struct rd *r, bool bc, int64_t *ret)
{
        int64_t y, m, d;

        if (!rd_num(r, 9, &y) || !rd_lit(r, '-') || !rd_num(r, 2, &m) ||
            !rd_lit(r, '-') || !rd_num(r, 2, &d) || m < 1 || m > 12 || d < 1 ||
            d > 31)
                return false;
        if (bc)
                y = 1 - y;
        *ret = days_from_civil(y, (int)m, (int)d);
        return true;
}

/* "HH:MM:SS[.ffffff]" as microseconds since midnight (24:00:00 allowed). */
static bool rd_time(struct rd *r, int64_t *ret)
{
        int64_t h, mi, s;

        if (!rd_num(r, 2, &h) || !rd_lit(r, ':') || !rd_num(r, 2, &mi) ||
            !rd_lit(r, ':') || !rd_num(r, 2, &s) || h > 24 || mi > 59 || s > 60)
                return false;
        *ret = ((h * 60 + mi) * 60 + s) * US_PER_SEC + rd_frac_us(r);
        return true;
}

/* "+HH[:MM[:SS]]" or "-..." as seconds east of UTC. */
static bool rd_offset(struct rd *r, int64_t *ret)
{
        int sign;
        int64_t h, m = 0, s = 0;

        if (rd_lit(r, '+'))
                sign = 1;
        else if (rd_lit(r, '-'))
                sign = -1;
        else
                return false;
        if (!rd_num(r, 2, &h))
                return false;
        if (rd_lit(r, ':') && !rd_num(r, 2, &m))
                return false;
        if (rd_lit(r, ':') && !rd_num(r, 2, &s))
                return false;
        *ret = sign * ((h * 60 + m) * 60 + s);
        return true;
}

/* A timestamp [with offset] as microseconds since the epoch, UTC. */
static bool rd_timestamp(struct rd *r, bool with_offset, int64_t *ret)
{
        bool bc = strip_bc(r);
        int64_t days, us, off = 0;

        if (!rd_date(r, bc, &days) || !rd_lit(r, ' ') || !rd_time(r, &us))
                return false;
        if (with_offset && !rd_offset(r, &off))
                return false;
        if (r->p != r->end)
                return false;
        *ret = days * US_PER_DAY + us - off * US_PER_SEC;
        return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
        return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* ---- writing ---- */

static int put_str(struct wc_buf *out, const char *s, size_t n)
{
        return wc_json_append_string(out, s, n);
}

static int put_int(struct wc_buf *out, int64_t v)
{
        char tmp[WC_UINT_MAX_DIGITS + 1];

        return wc_buf_append(out, tmp, (size_t)(wc_dbz_put_int(tmp, v) - tmp));
}

char *wc_dbz_put_int(char *p, int64_t v)
{
        if (v >= 0)
                return wc_put_uint(p, (uint64_t)v);
        *p++ = '-';
        return wc_put_uint(p, (uint64_t)0 - (uint64_t)v);
}

/* v in exactly n digits, zero-padded (v >= 0) */
static char *put_digits(char *o, int64_t v, int n)
{
        for (int i = n - 1; i >= 0; i--) {
                o[i] = (char)('0' + v % 10);
                v /= 10;
        }
        return o + n;
}

/* bytes as a JSON string of their base64: JsonConverter's BYTES */
static int put_base64(struct wc_buf *out, const unsigned char *p, size_t n)
{
        char *o;

        if (wc_buf_reserve(out, WC_BASE64_LEN(n) + 3) < 0)
                return -ENOMEM;
        o = out->data + out->len;
        *o++ = '"';
        o = wc_base64_put(o, p, n);
        *o++ = '"';
        out->len = (size_t)(o - out->data);
        out->data[out->len] = '\0';
        return 0;
}

/* ISO-8601 as java.time prints it: four-digit years, a sign beyond. */
static char *put_date_iso(char *o, int64_t days)
{
        int64_t y;
        int m, d;

        civil_from_days(days, &y, &m, &d);
        if (y > 9999) {
                *o++ = '+';
                o = wc_put_uint(o, (uint64_t)y);
        } else if (y < 0) {
                *o++ = '-';
                o = -y > 9999 ? wc_put_uint(o, (uint64_t)-y)
                              : put_digits(o, -y, 4);
        } else {
                o = put_digits(o, y, 4);
        }
        *o++ = '-';
        o = put_digits(o, m, 2);
        *o++ = '-';
        return put_digits(o, d, 2);
}

/* HH:MM:SS and the fraction without its trailing zeros, as
 * DateTimeFormatter.ISO_LOCAL_TIME prints it. */
static char *put_time_iso(char *o, int64_t us)
{
        int64_t s = us / US_PER_SEC, f = us % US_PER_SEC;

        o = put_digits(o, s / 3600, 2);
        *o++ = ':';
        o = put_digits(o, s / 60 % 60, 2);
        *o++ = ':';
        o = put_digits(o, s % 60, 2);
        if (f) {
                int n = 6;

                while (f % 10 == 0) {
                        f /= 10;
                        n--;
                }
                *o++ = '.';
                o = put_digits(o, f, n);
        }
        return o;
}

/* ---- numbers ---- */

/* The content of a JSON value: a bare token as it is, a string's body
 * (false when it has escapes: no number or date has them). */
static bool unquote(const char *json, size_t len, const char **ret,
                    size_t *ret_len)
{
        if (len >= 2 && json[0] == '"') {
                if (memchr(json + 1, '\\', len - 2))
                        return false;
                *ret = json + 1;
                *ret_len = len - 2;
                return true;
        }
        *ret = json;
        *ret_len = len;
        return true;
}

static bool is_special_float(const char *s, size_t n)
{
        return (n == 3 && memcmp(s, "NaN", 3) == 0) ||
               (n == 8 && memcmp(s, "Infinity", 8) == 0) ||
               (n == 9 && memcmp(s, "-Infinity", 9) == 0);
}

/* A JSON number: PostgreSQL's integers and floats print as one. */
static bool is_json_number(const char *s, size_t n)
{
        size_t i = 0;

        if (i < n && s[i] == '-')
                i++;
        if (i >= n || s[i] < '0' || s[i] > '9')
                return false;
        while (i < n &&
               ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' ||
                s[i] == 'E' || s[i] == '+' || s[i] == '-'))
                i++;
        return i == n;
}

/* An integer or float: the bare number; NaN and the infinities as the
 * strings Jackson writes for them. */
static int put_number(struct wc_buf *out, const char *s, size_t n)
{
        if (is_special_float(s, n))
                return put_str(out, s, n);
        if (!is_json_number(s, n))
                return wc_buf_append(out, "null", 4);
        return wc_buf_append(out, s, n);
}

/* A decimal's digits without the point, its sign and scale, from
 * "-123.4500" (or "1.5e3": not printed by PostgreSQL, refused). */
struct dec {
        bool neg;
        const char *ip, *fp; /* integer and fraction digits */
        size_t in, fn;
};

static bool parse_dec(const char *s, size_t n, struct dec *d)
{
        size_t i = 0;

        memset(d, 0, sizeof(*d));
        if (i < n && (s[i] == '-' || s[i] == '+'))
                d->neg = s[i++] == '-';
        d->ip = s + i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
        d->in = (size_t)(s + i - d->ip);
        if (i < n && s[i] == '.') {
                i++;
                d->fp = s + i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                        i++;
                d->fn = (size_t)(s + i - d->fp);
        }
        return i == n && d->in + d->fn > 0;
}

/*
 * The unscaled value of d at scale (fraction digits padded with zeros,
 * or cut when there are more) as java.math.BigInteger.toByteArray()
 * gives it: big-endian two's complement in the fewest bytes.  Appends
 * the base64 of that.
 */
static int put_unscaled(struct wc_buf *out, const struct dec *d, size_t scale)
{
        size_t ndig = d->in + scale, cap = ndig / 2 + 2, len = 1, start;
        unsigned char stack[64], *b = cap <= sizeof(stack) ? stack : NULL;
        int r;

        if (!b && !(b = malloc(cap)))
                return -ENOMEM;
        memset(b, 0, cap);
        /* b[cap-len..cap) holds the magnitude, big-endian */
        for (size_t i = 0; i < ndig; i++) {
                unsigned carry;

                if (i < d->in)
                        carry = (unsigned)(d->ip[i] - '0');
                else if (i - d->in < d->fn)
                        carry = (unsigned)(d->fp[i - d->in] - '0');
                else
                        carry = 0;
                for (size_t j = 0; j < len; j++) {
                        unsigned v = b[cap - 1 - j] * 10u + carry;

                        b[cap - 1 - j] = (unsigned char)v;
                        carry = v >> 8;
                }
                if (carry)
                        b[cap - 1 - len++] = (unsigned char)carry;
        }
        start = cap - len;
        if (d->neg) {
                bool zero = true;

                for (size_t j = start; j < cap; j++)
                        zero = zero && b[j] == 0;
                if (!zero) {
                        unsigned carry = 1;

                        /* one more byte for the sign */
                        start--;
                        for (size_t j = cap; j-- > start;) {
                                unsigned v = (unsigned char)~b[j] + carry;

                                b[j] = (unsigned char)v;
                                carry = v >> 8;
                        }
                        while (start + 1 < cap && b[start] == 0xff &&
                               (b[start + 1] & 0x80))
                                start++;
                        goto done;
                }
        }
        /* positive: room for a zero sign byte when the top bit is set */
        if (b[start] & 0x80)
                start--;
        while (start + 1 < cap && b[start] == 0 && !(b[start + 1] & 0x80))
                start++;
done:
        r = put_base64(out, b + start, cap - start);
        if (b != stack)
                free(b);
        return r;
}

/* A decimal as the shortest double text that reads back the same. */
static int put_double(struct wc_buf *out, const char *s, size_t n)
{
        char tmp[64], *end;
        double v;

        if (n >= sizeof(tmp) - 1) {
                char *copy = strndup(s, n);

                if (!copy)
                        return -ENOMEM;
                v = strtod(copy, &end);
                free(copy);
        } else {
                memcpy(tmp, s, n);
                tmp[n] = '\0';
                v = strtod(tmp, &end);
        }
        if (isnan(v))
                return put_str(out, "NaN", 3);
        if (isinf(v))
                return v > 0 ? put_str(out, "Infinity", 8)
                             : put_str(out, "-Infinity", 9);
        for (int prec = 15; prec <= 17; prec++) {
                int k = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);

                if (prec == 17 || strtod(tmp, NULL) == v) {
                        /* a JSON number needs a digit after a point */
                        return wc_buf_append(out, tmp, (size_t)k);
                }
        }
        return 0;
}

/* numeric in its mode; NaN and the infinities have no Decimal: null (as
 * Debezium), their text in string mode, a double's in double mode. */
static int put_decimal(struct wc_buf *out, const struct wc_dbz_type *t,
                       uint8_t kind, const char *s, size_t n)
{
        struct dec d;

        if (kind == WC_DBZ_DECIMAL_AS_STRING)
                return put_str(out, s, n);
        if (kind == WC_DBZ_DECIMAL_AS_DOUBLE) {
                if (is_special_float(s, n))
                        return put_str(out, s, n);
                if (!parse_dec(s, n, &d))
                        return wc_buf_append(out, "null", 4);
                return put_double(out, s, n);
        }
        if (!parse_dec(s, n, &d))
                return wc_buf_append(out, "null", 4);
        if (kind == WC_DBZ_DECIMAL)
                return put_unscaled(out, &d, (size_t)t->scale);
        /* VariableScaleDecimal: the value's own scale */
        if (wc_buf_append_str(out, "{\"scale\":") < 0 ||
            put_int(out, (int64_t)d.fn) < 0 ||
            wc_buf_append_str(out, ",\"value\":") < 0 ||
            put_unscaled(out, &d, d.fn) < 0 || wc_buf_append_char(out, '}') < 0)
                return -ENOMEM;
        return 0;
}

/* ---- intervals ---- */

/*
 * IntervalStyle postgres: "1 year 2 mons -3 days +04:05:06.5", any part
 * absent, as io.debezium.time.MicroDuration: months of 365.25 / 12 days,
 * computed in doubles as Debezium computes it.
 */
static bool interval_us(const char *s, size_t n, int64_t *ret)
{
        struct rd r = {s, s + n};
        int64_t years = 0, months = 0, days = 0, hours = 0, minutes = 0;
        double seconds = 0;

        while (r.p < r.end) {
                int sign = 1;
                int64_t v;
                const char *w;

                while (rd_lit(&r, ' '))
                        ;
                if (r.p >= r.end)
                        break;
                if (rd_lit(&r, '-'))
                        sign = -1;
                else
                        rd_lit(&r, '+');
                if (!rd_num(&r, 18, &v))
                        return false;
                if (rd_lit(&r, ':')) {
                        int64_t m, sec, frac;

                        if (!rd_num(&r, 2, &m) || !rd_lit(&r, ':') ||
                            !rd_num(&r, 2, &sec))
                                return false;
                        frac = rd_frac_us(&r);
                        hours = sign * v;
                        minutes = sign * m;
                        seconds = sign * ((double)sec + (double)frac / 1e6);
                        continue;
                }
                if (!rd_lit(&r, ' '))
                        return false;
                w = r.p;
                while (r.p < r.end && *r.p != ' ')
                        r.p++;
                if (name_has(w, (size_t)(r.p - w), "year"))
                        years = sign * v;
                else if (name_has(w, (size_t)(r.p - w), "mon"))
                        months = sign * v;
                else if (name_has(w, (size_t)(r.p - w), "day"))
                        days = sign * v;
                else
                        return false;
        }
        {
                double avg = 365.25 / 12.0;
                double nd =
                    (double)((int32_t)years * 12 + (int32_t)months) * avg +
                    (double)days;
                double ns =
                    (((nd * 24 + (double)hours) * 60) + (double)minutes) * 60 +
                    seconds;

                *ret = (int64_t)(ns * 1e6 + 0);
        }
        return true;
}

/* ---- one value ---- */

/* bytea's hex (with or without its "\x") as base64 */
static int put_bytea(struct wc_buf *out, const char *s, size_t n)
{
        unsigned char stack[256], *b;
        size_t len;
        int r;

        if (n >= 2 && s[0] == '\\' && s[1] == 'x')
                s += 2, n -= 2;
        if (n % 2)
                return wc_buf_append(out, "null", 4);
        len = n / 2;
        b = len <= sizeof(stack) ? stack : malloc(len);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                int hi = wc_hex_digit(s[2 * i]),
                    lo = wc_hex_digit(s[2 * i + 1]);

                if (hi < 0 || lo < 0) {
                        r = wc_buf_append(out, "null", 4);
                        goto out;
                }
                b[i] = (unsigned char)(hi << 4 | lo);
        }
        r = put_base64(out, b, len);
out:
        if (b != stack)
                free(b);
        return r;
}

/* A bit string as io.debezium.data.Bits: the last character is bit 0,
 * little-endian bytes, as many as the highest set bit needs. */
static int put_bits(struct wc_buf *out, const char *s, size_t n)
{
        unsigned char stack[256] = {0}, *b;
        size_t nbits = 0, len;
        int r;

        for (size_t i = 0; i < n; i++) {
                if (s[i] != '0' && s[i] != '1')
                        return wc_buf_append(out, "null", 4);
                if (s[i] == '1' && nbits == 0)
                        nbits = n - i;
        }
        len = (nbits + 7) / 8;
        b = len <= sizeof(stack) ? stack : malloc(len);
        if (!b)
                return -ENOMEM;
        memset(b, 0, len);
        for (size_t i = 0; i < n; i++) {
                size_t bit = n - 1 - i;

                if (s[i] == '1')
                        b[bit / 8] |= (unsigned char)(1u << (bit % 8));
        }
        r = put_base64(out, b, len);
        if (b != stack)
                free(b);
        return r;
}

/* money as lc_monetary C prints it: "$1,234.56", "-$0.50". */
static int put_money(struct wc_buf *out, const struct wc_dbz_type *t,
                     const char *s, size_t n)
{
        char stack[64], *c = n < sizeof(stack) ? stack : malloc(n + 1);
        size_t k = 0;
        struct dec d;
        int r;

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (s[i] != '$' && s[i] != ',')
                        c[k++] = s[i];
        c[k] = '\0';
        if (!parse_dec(c, k, &d))
                r = wc_buf_append(out, "null", 4);
        else if (t->decimal == WC_DBZ_DECIMAL_STRING)
                r = put_str(out, c, k);
        else if (t->decimal == WC_DBZ_DECIMAL_DOUBLE)
                r = put_double(out, c, k);
        else
                r = put_unscaled(out, &d, (size_t)t->scale);
        if (c != stack)
                free(c);
        return r;
}

#define DATE_POSITIVE_INFINITY 9223372036825200000ll
#define DATE_NEGATIVE_INFINITY (-9223372036832400000ll)

static bool is_lit(const char *s, size_t n, const char *lit)
{
        return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* One value of kind from its text s[0..n), unescaped. */
static int put_scalar(struct wc_buf *out, const struct wc_dbz_type *t,
                      uint8_t kind, const char *s, size_t n)
{
        struct rd r = {s, s + n};
        char tmp[64], *o = tmp;
        int64_t v, off;

        switch (kind) {
        case WC_DBZ_BOOLEAN:
                if (is_lit(s, n, "t") || is_lit(s, n, "true"))
                        return wc_buf_append(out, "true", 4);
                if (is_lit(s, n, "f") || is_lit(s, n, "false"))
                        return wc_buf_append(out, "false", 5);
                break;
        case WC_DBZ_INT16:
        case WC_DBZ_INT32:
        case WC_DBZ_INT64:
        case WC_DBZ_FLOAT32:
        case WC_DBZ_FLOAT64:
                return put_number(out, s, n);
        case WC_DBZ_BYTES:
                return put_bytea(out, s, n);
        case WC_DBZ_ZONED_TIMESTAMP:
                if (is_lit(s, n, "infinity") || is_lit(s, n, "-infinity"))
                        return put_str(out, s, n);
                if (!rd_timestamp(&r, true, &v))
                        break;
                o = put_date_iso(o, floor_div(v, US_PER_DAY));
                *o++ = 'T';
                o = put_time_iso(o, v - floor_div(v, US_PER_DAY) * US_PER_DAY);
                *o++ = 'Z';
                return put_str(out, tmp, (size_t)(o - tmp));
        case WC_DBZ_ZONED_TIME:
                if (!rd_time(&r, &v) || !rd_offset(&r, &off) || r.p != r.end)
                        break;
                v -= off * US_PER_SEC;
                v = v - floor_div(v, US_PER_DAY) * US_PER_DAY;
                o = put_time_iso(o, v);
                *o++ = 'Z';
                return put_str(out, tmp, (size_t)(o - tmp));
        case WC_DBZ_DATE:
        case WC_DBZ_CONNECT_DATE: {
                bool bc;

                if (is_lit(s, n, "infinity"))
                        return put_int(out, INT32_MAX);
                if (is_lit(s, n, "-infinity"))
                        return put_int(out, INT32_MIN);
                bc = strip_bc(&r);
                if (!rd_date(&r, bc, &v) || r.p != r.end)
                        break;
                return put_int(out, v);
        }
        case WC_DBZ_TIME:
        case WC_DBZ_MICRO_TIME:
        case WC_DBZ_CONNECT_TIME:
                if (!rd_time(&r, &v) || r.p != r.end)
                        break;
                return put_int(out, kind == WC_DBZ_MICRO_TIME ? v : v / 1000);
        case WC_DBZ_TIMESTAMP:
        case WC_DBZ_MICRO_TIMESTAMP:
        case WC_DBZ_CONNECT_TIMESTAMP:
                if (is_lit(s, n, "infinity"))
                        return put_int(out, DATE_POSITIVE_INFINITY);
                if (is_lit(s, n, "-infinity"))
                        return put_int(out, DATE_NEGATIVE_INFINITY);
                if (!rd_timestamp(&r, false, &v))
                        break;
                return put_int(out, kind == WC_DBZ_MICRO_TIMESTAMP
                                        ? v
                                        : floor_div(v, 1000));
        case WC_DBZ_MICRO_DURATION:
                if (!interval_us(s, n, &v))
                        break;
                return put_int(out, v);
        case WC_DBZ_DECIMAL:
        case WC_DBZ_VARIABLE_DECIMAL:
        case WC_DBZ_DECIMAL_AS_STRING:
        case WC_DBZ_DECIMAL_AS_DOUBLE:
                return put_decimal(out, t, kind, s, n);
        case WC_DBZ_MONEY:
                return put_money(out, t, s, n);
        case WC_DBZ_BITS:
                return put_bits(out, s, n);
        case WC_DBZ_BIT1:
                if (is_lit(s, n, "1"))
                        return wc_buf_append(out, "true", 4);
                if (is_lit(s, n, "0"))
                        return wc_buf_append(out, "false", 5);
                break;
        default: /* text, strings, json, xml, uuid, ltree */
                return put_str(out, s, n);
        }
        return wc_buf_append(out, "null", 4);
}

/*
 * An array from PostgreSQL's text "{1,2,NULL}", "{\"a b\",c}": a JSON
 * array of its elements converted.  A multidimensional array is
 * flattened in its text's order (Debezium has no nested arrays); one
 * that does not read is null.
 */
static int put_array(struct wc_buf *out, const struct wc_dbz_type *t, char *s,
                     size_t n)
{
        size_t i = 0, start = out->len;
        int depth = 0, count = 0;
        int r = -ENOMEM;

        if (n == 0 || s[0] != '{')
                goto bad;
        if (wc_buf_append_char(out, '[') < 0)
                goto out;
        while (i < n) {
                char c = s[i];

                if (c == '{') {
                        depth++;
                        i++;
                        continue;
                }
                if (c == '}') {
                        depth--;
                        i++;
                        if (depth == 0)
                                break;
                        continue;
                }
                if (c == ',' || c == ' ') {
                        i++;
                        continue;
                }
                if (depth <= 0)
                        goto bad;
                if (count++ > 0 && wc_buf_append_char(out, ',') < 0)
                        goto out;
                if (c == '"') {
                        /* unescaped in place: s is the caller's copy */
                        size_t b = i + 1, d = b;

                        for (i++; i < n && s[i] != '"'; i++) {
                                if (s[i] == '\\' && i + 1 < n)
                                        i++;
                                s[d++] = s[i];
                        }
                        if (i >= n)
                                goto bad;
                        i++;
                        if (put_scalar(out, t, t->elem, s + b, d - b) < 0)
                                goto out;
                } else {
                        size_t b = i;

                        while (i < n && s[i] != ',' && s[i] != '}')
                                i++;
                        if (i - b == 4 && memcmp(s + b, "NULL", 4) == 0) {
                                if (wc_buf_append(out, "null", 4) < 0)
                                        goto out;
                                continue;
                        }
                        if (put_scalar(out, t, t->elem, s + b, i - b) < 0)
                                goto out;
                }
        }
        if (depth != 0 || i != n)
                goto bad;
        r = wc_buf_append_char(out, ']');
        goto out;
bad:
        out->len = start;
        r = wc_buf_append(out, "null", 4);
out:
        return r;
}

int wc_dbz_append_value(struct wc_buf *out, const struct wc_dbz_type *t,
                        const char *json, size_t len)
{
        const char *s;
        size_t n;

        if (!json || len == 0 || (len == 4 && memcmp(json, "null", 4) == 0))
                return wc_buf_append(out, "null", 4);
        switch (t->kind) {
        case WC_DBZ_TEXT:
        case WC_DBZ_STRING:
        case WC_DBZ_ENUM:
        case WC_DBZ_JSON:
        case WC_DBZ_XML:
        case WC_DBZ_UUID:
        case WC_DBZ_LTREE:
        case WC_DBZ_DECIMAL_AS_STRING:
                /* a string already: as it is; a bare number or boolean
                 * (a domain's base type) as its text */
                if (json[0] == '"')
                        return wc_buf_append(out, json, len);
                return put_str(out, json, len);
        case WC_DBZ_BOOLEAN:
        case WC_DBZ_INT16:
        case WC_DBZ_INT32:
        case WC_DBZ_INT64:
        case WC_DBZ_FLOAT32:
        case WC_DBZ_FLOAT64:
                /* the common case: a bare number, copied */
                if (json[0] != '"')
                        return put_scalar(out, t, t->kind, json, len);
                break;
        case WC_DBZ_ARRAY: {
                char stack[256], *c;
                size_t cl;
                int r;

                if (json[0] != '"' || len < 2)
                        return wc_buf_append(out, "null", 4);
                c = len <= sizeof(stack) ? stack : malloc(len);
                if (!c)
                        return -ENOMEM;
                memcpy(c, json + 1, len - 1);
                if (wc_json_unescape_inplace(c, len - 2, &cl) < 0)
                        r = wc_buf_append(out, "null", 4);
                else
                        r = put_array(out, t, c, cl);
                if (c != stack)
                        free(c);
                return r;
        }
        default:
                break;
        }
        if (!unquote(json, len, &s, &n))
                return wc_buf_append(out, "null", 4);
        return put_scalar(out, t, t->kind, s, n);
}
