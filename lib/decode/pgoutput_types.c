/* SPDX-License-Identifier: MIT */
/*
 * The names format_type() gives the built-in types, with their type
 * modifiers, so that the pgoutput decoder names a column's type without
 * asking the server: the same text wal2json writes (it calls
 * format_type_with_typemod()), e.g. `character varying(20)`,
 * `numeric(10,2)`, `timestamp(3) with time zone`, `integer[]`.  A type
 * that is not in this table (every type outside pg_catalog, and the rare
 * built-in ones) is looked up in the catalog.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "decode/pgoutput.h"

/* How a type's modifier is printed (format_type.c's cases). */
enum tm {
        TM_NONE,      /* no modifier: a modifier >= 0 goes to the catalog */
        TM_LEN,       /* name(typmod - 4): character varying, character */
        TM_BITS,      /* name(typmod): bit, bit varying */
        TM_NUMERIC,   /* numeric(p,s) */
        TM_PRECISION, /* time(p) ...: prefix(p)suffix */
};

struct builtin {
        uint32_t oid;
        uint32_t elem; /* an array's element type, 0 otherwise */
        enum tm tm;
        const char *name;   /* without a modifier */
        const char *prefix; /* TM_PRECISION, TM_LEN, TM_BITS: before "(" */
        const char *suffix; /* TM_PRECISION: after ")" */
};

/* Element types first; arrays name their element. */
static const struct builtin builtins[] = {
    {16, 0, TM_NONE, "boolean", NULL, NULL},
    {17, 0, TM_NONE, "bytea", NULL, NULL},
    {18, 0, TM_NONE, "\"char\"", NULL, NULL},
    {19, 0, TM_NONE, "name", NULL, NULL},
    {20, 0, TM_NONE, "bigint", NULL, NULL},
    {21, 0, TM_NONE, "smallint", NULL, NULL},
    {23, 0, TM_NONE, "integer", NULL, NULL},
    {25, 0, TM_NONE, "text", NULL, NULL},
    {26, 0, TM_NONE, "oid", NULL, NULL},
    {114, 0, TM_NONE, "json", NULL, NULL},
    {142, 0, TM_NONE, "xml", NULL, NULL},
    {600, 0, TM_NONE, "point", NULL, NULL},
    {650, 0, TM_NONE, "cidr", NULL, NULL},
    {700, 0, TM_NONE, "real", NULL, NULL},
    {701, 0, TM_NONE, "double precision", NULL, NULL},
    {774, 0, TM_NONE, "macaddr8", NULL, NULL},
    {790, 0, TM_NONE, "money", NULL, NULL},
    {829, 0, TM_NONE, "macaddr", NULL, NULL},
    {869, 0, TM_NONE, "inet", NULL, NULL},
    /* bpchar with no modifier is not "character" (that is char(1)) */
    {1042, 0, TM_LEN, "bpchar", "character", NULL},
    {1043, 0, TM_LEN, "character varying", "character varying", NULL},
    {1082, 0, TM_NONE, "date", NULL, NULL},
    {1083, 0, TM_PRECISION, "time without time zone", "time",
     " without time zone"},
    {1114, 0, TM_PRECISION, "timestamp without time zone", "timestamp",
     " without time zone"},
    {1184, 0, TM_PRECISION, "timestamp with time zone", "timestamp",
     " with time zone"},
    {1266, 0, TM_PRECISION, "time with time zone", "time", " with time zone"},
    {1560, 0, TM_BITS, "bit", "bit", NULL},
    {1562, 0, TM_BITS, "bit varying", "bit varying", NULL},
    {1700, 0, TM_NUMERIC, "numeric", NULL, NULL},
    {2950, 0, TM_NONE, "uuid", NULL, NULL},
    {3220, 0, TM_NONE, "pg_lsn", NULL, NULL},
    {3614, 0, TM_NONE, "tsvector", NULL, NULL},
    {3802, 0, TM_NONE, "jsonb", NULL, NULL},
    {5069, 0, TM_NONE, "xid8", NULL, NULL},
    /* arrays */
    {1000, 16, TM_NONE, NULL, NULL, NULL},
    {1001, 17, TM_NONE, NULL, NULL, NULL},
    {1002, 18, TM_NONE, NULL, NULL, NULL},
    {1003, 19, TM_NONE, NULL, NULL, NULL},
    {1005, 21, TM_NONE, NULL, NULL, NULL},
    {1007, 23, TM_NONE, NULL, NULL, NULL},
    {1009, 25, TM_NONE, NULL, NULL, NULL},
    {1014, 1042, TM_NONE, NULL, NULL, NULL},
    {1015, 1043, TM_NONE, NULL, NULL, NULL},
    {1016, 20, TM_NONE, NULL, NULL, NULL},
    {1021, 700, TM_NONE, NULL, NULL, NULL},
    {1022, 701, TM_NONE, NULL, NULL, NULL},
    {1028, 26, TM_NONE, NULL, NULL, NULL},
    {1041, 869, TM_NONE, NULL, NULL, NULL},
    {1115, 1114, TM_NONE, NULL, NULL, NULL},
    {1182, 1082, TM_NONE, NULL, NULL, NULL},
    {1183, 1083, TM_NONE, NULL, NULL, NULL},
    {1185, 1184, TM_NONE, NULL, NULL, NULL},
    {1231, 1700, TM_NONE, NULL, NULL, NULL},
    {199, 114, TM_NONE, NULL, NULL, NULL},
    {2951, 2950, TM_NONE, NULL, NULL, NULL},
    {3807, 3802, TM_NONE, NULL, NULL, NULL},
};

#define NBUILTINS (sizeof(builtins) / sizeof(builtins[0]))

static const struct builtin *find(uint32_t oid)
{
        for (size_t i = 0; i < NBUILTINS; i++)
                if (builtins[i].oid == oid)
                        return &builtins[i];
        return NULL;
}

/* The element's name with typmod into out; its length, 0 unknown, or
 * -ENOSPC. */
static int element(const struct builtin *b, int32_t typmod, char *out,
                   size_t outlen)
{
        int n;

        if (typmod < 0) {
                n = snprintf(out, outlen, "%s", b->name);
        } else {
                switch (b->tm) {
                case TM_LEN:
                        if (typmod < 4)
                                return 0;
                        n = snprintf(out, outlen, "%s(%d)", b->prefix,
                                     typmod - 4);
                        break;
                case TM_BITS:
                        n = snprintf(out, outlen, "%s(%d)", b->prefix, typmod);
                        break;
                case TM_NUMERIC: {
                        int32_t t = typmod - 4;
                        int p, s;

                        if (t < 0)
                                return 0;
                        p = (t >> 16) & 0xffff;
                        /* the scale is an 11-bit signed number (15+) */
                        s = ((t & 0x7ff) ^ 1024) - 1024;
                        n = snprintf(out, outlen, "numeric(%d,%d)", p, s);
                        break;
                }
                case TM_PRECISION:
                        if (typmod > 6)
                                return 0;
                        n = snprintf(out, outlen, "%s(%d)%s", b->prefix, typmod,
                                     b->suffix);
                        break;
                default:
                        /* a modifier on a type that prints none: ask */
                        return 0;
                }
        }
        if (n < 0 || (size_t)n >= outlen)
                return -ENOSPC;
        return n;
}

int wc_pgoutput_builtin_type(uint32_t oid, int32_t typmod, char *out,
                             size_t outlen)
{
        const struct builtin *b = find(oid);
        int n;

        if (!b || outlen == 0)
                return b ? -ENOSPC : 0;
        if (!b->elem)
                return element(b, typmod, out, outlen);
        /* an array: its element with the column's modifier, then [] */
        b = find(b->elem);
        if (!b)
                return 0;
        n = element(b, typmod, out, outlen);
        if (n <= 0)
                return n;
        if ((size_t)n + 3 > outlen)
                return -ENOSPC;
        memcpy(out + n, "[]", 3);
        return n + 2;
}
