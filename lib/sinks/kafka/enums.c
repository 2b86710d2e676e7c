/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "sinks/kafka/enums.h"

/* PostgreSQL's FirstNormalObjectId: below it, built-in types only */
#define FIRST_USER_OID 16384u

/* Room for a value to compare with labels (a label has at most 63 bytes;
 * a longer value is none of them). */
#define VALUE_MAX 256

static void say(struct wc_kafka_enums *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct wc_kafka_enums *e, int level, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        if (!e->log)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        e->log(e->log_ud, level, msg);
}

/* The index of oid in e->items, or -1 with *at where it would go. */
static long find(const struct wc_kafka_enums *e, uint32_t oid, size_t *at)
{
        size_t lo = wc_dbz_enum_lower_bound(e->items, e->n, oid);

        if (at)
                *at = lo;
        return lo < e->n && e->items[lo].oid == oid ? (long)lo : -1;
}

static void clear(struct wc_kafka_enums *e)
{
        for (size_t i = 0; i < e->n; i++)
                free((char *)e->items[i].labels);
        e->n = 0;
        e->gen++;
}

/* Sets oid's labels (a copy; NULL: no enum). */
static int set(struct wc_kafka_enums *e, uint32_t oid, const char *labels)
{
        char *copy = NULL;
        size_t at;
        long i = find(e, oid, &at);

        if (i >= 0) {
                const char *old = e->items[i].labels;

                if ((!old && !labels) ||
                    (old && labels && !strcmp(old, labels)))
                        return 0;
                if (labels && !(copy = strdup(labels)))
                        return -ENOMEM;
                free((char *)old);
                e->items[i].labels = copy;
                e->gen++;
                return 0;
        }
        if (e->n == e->cap) {
                size_t ncap = e->cap ? e->cap * 2 : 16;
                struct wc_dbz_enum *items =
                    realloc(e->items, ncap * sizeof(*items));
                int64_t *quiet;

                if (!items)
                        return -ENOMEM;
                e->items = items;
                quiet = realloc(e->quiet_ms, ncap * sizeof(*quiet));
                if (!quiet)
                        return -ENOMEM;
                e->quiet_ms = quiet;
                e->cap = ncap;
        }
        if (labels && !(copy = strdup(labels)))
                return -ENOMEM;
        memmove(e->items + at + 1, e->items + at,
                (e->n - at) * sizeof(*e->items));
        memmove(e->quiet_ms + at + 1, e->quiet_ms + at,
                (e->n - at) * sizeof(*e->quiet_ms));
        e->items[at] = (struct wc_dbz_enum){oid, copy};
        e->quiet_ms[at] = 0;
        e->n++;
        /* a type not known before converted as text until now */
        if (copy)
                e->gen++;
        return 0;
}

int wc_kafka_enums_seed(struct wc_kafka_enums *e,
                        const struct wc_dbz_enum *from, size_t n)
{
        for (size_t i = 0; i < n && e->n < WC_KAFKA_ENUMS_MAX; i++)
                if (from[i].labels && set(e, from[i].oid, from[i].labels) < 0)
                        return -ENOMEM;
        return 0;
}

bool wc_kafka_enum_has_label(const char *labels, const char *json, size_t len)
{
        char buf[VALUE_MAX];
        const char *v = json, *p;
        size_t n = len, llen;

        if (!labels)
                return false;
        if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                v++;
                n -= 2;
                if (memchr(v, '\\', n)) {
                        if (n > sizeof(buf))
                                return false;
                        memcpy(buf, v, n);
                        if (wc_json_unescape_inplace(buf, n, &n) < 0)
                                return false;
                        v = buf;
                }
        }
        llen = strlen(labels);
        for (p = labels; (size_t)(labels + llen - p) >= n;) {
                const char *hit = memmem(p, (size_t)(labels + llen - p), v, n);

                if (!hit)
                        return false;
                if ((hit == labels || hit[-1] == ',') &&
                    (hit + n == labels + llen || hit[n] == ','))
                        return true;
                p = hit + 1;
        }
        return false;
}

/* Adds oid to the lookup being made (once). */
static int want(struct wc_kafka_enums *e, uint32_t oid)
{
        for (size_t i = 0; i < e->nwant; i++)
                if (e->want[i] == oid)
                        return 0;
        if (e->nwant == e->wcap) {
                size_t ncap = e->wcap ? e->wcap * 2 : 16;
                uint32_t *w = realloc(e->want, ncap * sizeof(*w));
                bool *s;

                if (!w)
                        return -ENOMEM;
                e->want = w;
                s = realloc(e->seen, ncap * sizeof(*s));
                if (!s)
                        return -ENOMEM;
                e->seen = s;
                e->wcap = ncap;
        }
        e->want[e->nwant++] = oid;
        return 0;
}

static bool is_null(const struct walcast_column *c)
{
        return !c->value || c->value_len == 0 ||
               (c->value_len == 4 && memcmp(c->value, "null", 4) == 0);
}

/* The types of lists to look up into e->want. */
static int collect(struct wc_kafka_enums *e,
                   const struct walcast_columns *const *lists, size_t nlists,
                   int64_t now_ms)
{
        e->nwant = 0;
        for (size_t l = 0; l < nlists; l++) {
                for (uint32_t j = 0; lists[l] && j < lists[l]->count; j++) {
                        const struct walcast_column *c = &lists[l]->items[j];
                        long i;

                        if (c->type_oid < FIRST_USER_OID)
                                continue;
                        i = find(e, c->type_oid, NULL);
                        if (i >= 0 &&
                            (!e->items[i].labels || is_null(c) ||
                             wc_kafka_enum_has_label(e->items[i].labels,
                                                     c->value, c->value_len) ||
                             now_ms < e->quiet_ms[i]))
                                continue;
                        if (want(e, c->type_oid) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int found(void *ud, uint32_t oid, const char *labels)
{
        struct wc_kafka_enums *e = ud;

        for (size_t i = 0; i < e->nwant; i++)
                if (e->want[i] == oid) {
                        e->seen[i] = true;
                        return set(e, oid, labels);
                }
        return 0; /* not asked for */
}

static bool wanted(const struct wc_kafka_enums *e, uint32_t oid)
{
        for (size_t i = 0; i < e->nwant; i++)
                if (e->want[i] == oid)
                        return true;
        return false;
}

/* After a lookup: a type that still lacks a value of lists (renamed
 * again, or the type dropped, since the change was written) is not looked
 * up again for WC_KAFKA_ENUM_REFRESH_MS, not at every change. */
static void quiet(struct wc_kafka_enums *e,
                  const struct walcast_columns *const *lists, size_t nlists,
                  int64_t now_ms)
{
        for (size_t l = 0; l < nlists; l++) {
                for (uint32_t j = 0; lists[l] && j < lists[l]->count; j++) {
                        const struct walcast_column *c = &lists[l]->items[j];
                        long i;

                        if (c->type_oid < FIRST_USER_OID || is_null(c) ||
                            !wanted(e, c->type_oid))
                                continue;
                        i = find(e, c->type_oid, NULL);
                        if (i >= 0 && e->items[i].labels &&
                            !wc_kafka_enum_has_label(e->items[i].labels,
                                                     c->value, c->value_len))
                                e->quiet_ms[i] =
                                    now_ms + WC_KAFKA_ENUM_REFRESH_MS;
                }
        }
}

int wc_kafka_enums_resolve(struct wc_kafka_enums *e,
                           const struct walcast_columns *const *lists,
                           size_t nlists, int64_t (*clock_ms)(void))
{
        int64_t now_ms;
        char err[512];
        int r;

        /* most changes have no column of a type of their own */
        for (size_t l = 0; l < nlists; l++)
                for (uint32_t j = 0; lists[l] && j < lists[l]->count; j++)
                        if (lists[l]->items[j].type_oid >= FIRST_USER_OID)
                                goto some;
        return 0;
some:
        now_ms = clock_ms();
        if (collect(e, lists, nlists, now_ms) < 0)
                return -ENOMEM;
        if (!e->nwant || !e->lookup || (e->failing && now_ms < e->retry_ms))
                return 0;
        if (e->n + e->nwant > WC_KAFKA_ENUMS_MAX) {
                /* a tenant with types by the thousand: start over */
                clear(e);
                if (collect(e, lists, nlists, now_ms) < 0)
                        return -ENOMEM;
        }
        memset(e->seen, 0, e->nwant * sizeof(*e->seen));
        err[0] = '\0';
        r = e->lookup(e->lookup_ud, e->want, e->nwant, found, e, err,
                      sizeof(err));
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (!e->failing)
                        say(e, WALCAST_LOG_WARNING,
                            "could not look up enum types in the catalog "
                            "(%s): columns of enum types created since start "
                            "go out as walcast.data.Text, and labels added "
                            "since are missing from \"allowed\", until it "
                            "answers (tried again every %d s)",
                            err, WC_KAFKA_ENUM_RETRY_MS / 1000);
                e->failing = true;
                e->retry_ms = now_ms + WC_KAFKA_ENUM_RETRY_MS;
                return 0;
        }
        if (e->failing)
                say(e, WALCAST_LOG_NOTICE,
                    "enum types are looked up in the catalog again");
        e->failing = false;
        for (size_t i = 0; i < e->nwant; i++) {
                long k;

                if (e->seen[i])
                        continue;
                /* dropped since the change was written; a type known
                 * keeps its last labels */
                k = find(e, e->want[i], NULL);
                if (k >= 0)
                        continue;
                if (set(e, e->want[i], NULL) < 0)
                        return -ENOMEM;
                if (e->gone < WC_KAFKA_ENUM_GONE_LOGGED) {
                        e->gone++;
                        say(e, WALCAST_LOG_NOTICE,
                            "type %u is no longer in the catalog (dropped "
                            "since the change was written): its columns go "
                            "out as walcast.data.Text%s",
                            e->want[i],
                            e->gone == WC_KAFKA_ENUM_GONE_LOGGED
                                ? "; further such types are not logged"
                                : "");
                }
        }
        quiet(e, lists, nlists, now_ms);
        return 0;
}

void wc_kafka_enums_free(struct wc_kafka_enums *e)
{
        if (!e)
                return;
        clear(e);
        free(e->items);
        free(e->quiet_ms);
        free(e->want);
        free(e->seen);
        e->items = NULL;
        e->quiet_ms = NULL;
        e->want = NULL;
        e->seen = NULL;
        e->cap = e->wcap = e->nwant = 0;
}
