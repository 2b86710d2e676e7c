/* SPDX-License-Identifier: MIT */
/*
 * The enum types a Kafka sink with `value_format: debezium` knows, for
 * the "allowed" of io.debezium.data.Enum (docs/kafka.md, "Enum types"):
 * those the catalog had at start, and those met since, looked up when a
 * change has a column of a type OID not known yet.  The labels of a known
 * enum are looked up again when a change has a value not among them
 * (ALTER TYPE ... ADD VALUE or RENAME VALUE); when that lookup does not
 * have the value either (renamed again or dropped since the change), the
 * type is not looked up again for WC_KAFKA_ENUM_REFRESH_MS.
 *
 * The lookups go through a function the sink gives (the catalog, on an
 * ordinary connection); this module decides when to call it and keeps
 * the answers.  A failed lookup is logged once, and no lookup is made for
 * WC_KAFKA_ENUM_RETRY_MS after it: the columns of types not known then go
 * out as walcast.data.Text, the stream goes on.  At most
 * WC_KAFKA_ENUMS_MAX types are kept; past that the cache empties itself.
 */
#ifndef WALCAST_SINKS_KAFKA_ENUMS_H
#define WALCAST_SINKS_KAFKA_ENUMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walcast/plugin.h>

#include "sinks/kafka/debezium.h"

#define WC_KAFKA_ENUMS_MAX       65536u
#define WC_KAFKA_ENUM_RETRY_MS   30000
#define WC_KAFKA_ENUM_REFRESH_MS 1000
/* Types the catalog no longer had that are logged, one line each. */
#define WC_KAFKA_ENUM_GONE_LOGGED 20u

/* Reports found(found_ud, oid, labels) for each of oids[0..n) the catalog
 * has (labels NULL: not an enum); 0 or a negative errno with errbuf set. */
typedef int (*wc_kafka_enum_found_fn)(void *ud, uint32_t oid,
                                      const char *labels);
typedef int (*wc_kafka_enum_lookup_fn)(void *ud, const uint32_t *oids, size_t n,
                                       wc_kafka_enum_found_fn found,
                                       void *found_ud, char *errbuf,
                                       size_t errlen);

struct wc_kafka_enums {
        /* by oid; labels NULL: no enum, or a type the catalog did not
         * have any more (what wc_dbz_options.enums takes) */
        struct wc_dbz_enum *items;
        /* items[i] is not looked up again for a value it lacks before
         * then (a lookup just said it lacks it) */
        int64_t *quiet_ms;
        size_t n, cap;
        /* changes with every change of items: the sink's per-table
         * conversions made before are stale (wc_dbz_options.enums_gen) */
        uint64_t gen;

        wc_kafka_enum_lookup_fn lookup; /* NULL: none (no lookups) */
        void *lookup_ud;
        void (*log)(void *ud, int level, const char *msg); /* syslog levels */
        void *log_ud;

        int64_t retry_ms; /* after a failure: no lookup before then */
        bool failing;     /* the failure was logged */
        unsigned gone;    /* vanished types logged */
        uint32_t *want;   /* the lookup being made */
        size_t nwant, wcap;
        bool *seen; /* the lookup's answers, by want's index */
};

/* Adds from[0..n) (sorted by oid, labels set), as the catalog had them at
 * start.  0 or -ENOMEM. */
int wc_kafka_enums_seed(struct wc_kafka_enums *e,
                        const struct wc_dbz_enum *from, size_t n);

/*
 * Before the columns of lists[0..nlists) (NULL lists skipped) are
 * converted: looks up, in one call, the types of OID 16384 and up not
 * known yet, and the known enums that a value is not a label of (when
 * not quiet after a lookup that lacked a value, quiet_ms).  now_ms() is a
 * monotonic clock in milliseconds, read only when a column has a type of
 * OID 16384 or up.  0, or -ENOMEM (the failure of a lookup is no error:
 * it is logged and the types stay unknown).
 */
int wc_kafka_enums_resolve(struct wc_kafka_enums *e,
                           const struct walcast_columns *const *lists,
                           size_t nlists, int64_t (*now_ms)(void));

/* Whether the JSON value json[0..len) (a string as the decoder gives it)
 * is one of labels ("a,b,c").  A label with a comma in it may make a
 * value that is a part of it count as a label. */
bool wc_kafka_enum_has_label(const char *labels, const char *json, size_t len);

void wc_kafka_enums_free(struct wc_kafka_enums *e);

#endif
