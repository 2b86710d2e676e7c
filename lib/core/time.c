/* SPDX-License-Identifier: MIT */
/*
 * Timestamps without libc time zones: wal2json prints commit times in the
 * walsender's TimeZone with an explicit offset, so plain calendar
 * arithmetic on the proleptic Gregorian calendar is all that is needed, and
 * the result cannot depend on the daemon's TZ environment.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

#define US_PER_SEC  1000000ll
#define SEC_PER_DAY 86400ll
/* 1970-01-01 counted from 0000-03-01, the start of the shifted calendar
 * below. */
#define EPOCH_SHIFT  719468ll
#define DAYS_PER_ERA 146097ll /* 400 Gregorian years */

/* Counting years from March puts the leap day last, so a month's first
 * day of the year is a linear function of the month. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        if (m <= 2)
                y--;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * DAYS_PER_ERA + doe - EPOCH_SHIFT;
}

static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m, int *ret_d)
{
        int64_t era, doe, yoe, doy, mp, y;
        int m;

        z += EPOCH_SHIFT;
        era = (z >= 0 ? z : z - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
        doe = z - era * DAYS_PER_ERA;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        m = (int)(mp < 10 ? mp + 3 : mp - 9);
        y = yoe + era * 400 + (m <= 2);
        *ret_y = y;
        *ret_m = m;
        *ret_d = (int)(doy - (153 * mp + 2) / 5 + 1);
}

static bool is_leap(int64_t y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
        static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                              31, 31, 30, 31, 30, 31};

        return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Exactly n decimal digits at *p; advances *p. */
static int digits(const char **p, const char *end, int n, int *ret)
{
        int v = 0;

        if (end - *p < n)
                return -EINVAL;
        for (int i = 0; i < n; i++) {
                char c = (*p)[i];

                if (c < '0' || c > '9')
                        return -EINVAL;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

static int expect(const char **p, const char *end, char c)
{
        if (*p >= end || **p != c)
                return -EINVAL;
        (*p)++;
        return 0;
}

/* PostgreSQL's largest UTC offset: a POSIX TimeZone such as 'UTC-167:59'
 * (hours up to a week less one) prints as "+167:59". */
#define MAX_OFFSET_HOURS 167

/* "+HH", "+HH:MM" or "+HH:MM:SS" (PostgreSQL prints seconds for historic
 * local mean time offsets, such as "-03:30:52" for America/St_Johns
 * before 1935), with three hour digits from 100 on ("+167"); also "Z" so
 * our own output parses. */
static int parse_offset(const char **p, const char *end, int64_t *ret_sec)
{
        int sign, hh, mm = 0, ss = 0;

        if (*p < end && **p == 'Z') {
                (*p)++;
                *ret_sec = 0;
                return 0;
        }
        if (*p >= end || (**p != '+' && **p != '-'))
                return -EINVAL;
        sign = **p == '-' ? -1 : 1;
        (*p)++;
        if (digits(p, end, 2, &hh) < 0)
                return -EINVAL;
        /* printed with %02d: a third digit only past 99 */
        if (*p < end && **p >= '0' && **p <= '9' && hh >= 10) {
                hh = hh * 10 + (**p - '0');
                (*p)++;
        }
        if (hh > MAX_OFFSET_HOURS)
                return -EINVAL;
        if (*p < end && **p == ':') {
                (*p)++;
                if (digits(p, end, 2, &mm) < 0 || mm > 59)
                        return -EINVAL;
                if (*p < end && **p == ':') {
                        (*p)++;
                        if (digits(p, end, 2, &ss) < 0 || ss > 59)
                                return -EINVAL;
                }
        }
        *ret_sec = sign * ((int64_t)hh * 3600 + mm * 60 + ss);
        return 0;
}

int wc_time_parse(const char *s, size_t len, int64_t *ret_us)
{
        const char *p = s, *end;
        int64_t year = 0, days, sec, off, us;
        int ydigits = 0, mon, day, hh, mm, ss, frac = 0, fdigits = 0;

        /* before any arithmetic: NULL + 0 is undefined too */
        if (!s)
                return -EINVAL;
        end = s + len;
        /* PostgreSQL pads years to four digits and prints more past 9999. */
        while (p < end && *p >= '0' && *p <= '9' && ydigits < 7) {
                year = year * 10 + (*p++ - '0');
                ydigits++;
        }
        if (ydigits < 4 || ydigits > 6 || year < 1)
                return -EINVAL;
        if (expect(&p, end, '-') < 0 || digits(&p, end, 2, &mon) < 0 ||
            expect(&p, end, '-') < 0 || digits(&p, end, 2, &day) < 0)
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
                return -EINVAL;
        if (p >= end || (*p != ' ' && *p != 'T'))
                return -EINVAL;
        p++;
        if (digits(&p, end, 2, &hh) < 0 || expect(&p, end, ':') < 0 ||
            digits(&p, end, 2, &mm) < 0 || expect(&p, end, ':') < 0 ||
            digits(&p, end, 2, &ss) < 0)
                return -EINVAL;
        if (hh > 23 || mm > 59 || ss > 59)
                return -EINVAL;
        if (p < end && *p == '.') {
                p++;
                while (p < end && *p >= '0' && *p <= '9') {
                        if (++fdigits > 6)
                                return -EINVAL;
                        frac = frac * 10 + (*p++ - '0');
                }
                if (fdigits == 0)
                        return -EINVAL;
                for (int i = fdigits; i < 6; i++)
                        frac *= 10;
        }
        if (parse_offset(&p, end, &off) < 0 || p != end)
                return -EINVAL;

        /* Six-digit years stay far from int64 limits in seconds, but not
         * in microseconds. */
        days = days_from_civil(year, mon, day);
        sec = days * SEC_PER_DAY + hh * 3600 + mm * 60 + ss - off;
        if (__builtin_mul_overflow(sec, US_PER_SEC, &us) ||
            __builtin_add_overflow(us, frac, &us))
                return -EINVAL;
        *ret_us = us;
        return 0;
}

static void put_digits(char *p, int64_t v, int n)
{
        for (int i = n - 1; i >= 0; i--) {
                p[i] = (char)('0' + v % 10);
                v /= 10;
        }
}

char *wc_time_format(int64_t us, char buf[WC_TIME_STRLEN])
{
        /* RFC 3339 has four-digit years only: clamp to what it can say
         * rather than print something a reader would misparse. */
        const int64_t min_us =
            days_from_civil(0, 1, 1) * SEC_PER_DAY * US_PER_SEC;
        const int64_t max_us =
            (days_from_civil(10000, 1, 1) * SEC_PER_DAY * US_PER_SEC) - 1;
        int64_t sec, frac, days, sod, y;
        int m, d;

        if (us < min_us)
                us = min_us;
        if (us > max_us)
                us = max_us;
        sec = us / US_PER_SEC;
        frac = us % US_PER_SEC;
        if (frac < 0) {
                frac += US_PER_SEC;
                sec--;
        }
        days = sec / SEC_PER_DAY;
        sod = sec % SEC_PER_DAY;
        if (sod < 0) {
                sod += SEC_PER_DAY;
                days--;
        }
        civil_from_days(days, &y, &m, &d);

        put_digits(buf, y, 4);
        buf[4] = '-';
        put_digits(buf + 5, m, 2);
        buf[7] = '-';
        put_digits(buf + 8, d, 2);
        buf[10] = 'T';
        put_digits(buf + 11, sod / 3600, 2);
        buf[13] = ':';
        put_digits(buf + 14, sod / 60 % 60, 2);
        buf[16] = ':';
        put_digits(buf + 17, sod % 60, 2);
        buf[19] = '.';
        put_digits(buf + 20, frac, 6);
        buf[26] = 'Z';
        buf[27] = '\0';
        return buf;
}
