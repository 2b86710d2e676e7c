/* SPDX-License-Identifier: MIT */
/*
 * Kafka topic names from templates: "{prefix}.{schema}.{table}".
 *
 * Placeholders are {prefix}, {database}, {schema}, {namespace}, {tenant}
 * and {table}; namespace and tenant are the schema split at its first '-'
 * (core.h).  Everything else in a template is literal text.  A topic name
 * is legal when it has 1 to 249 characters of [A-Za-z0-9._-] and is not
 * "." or ".." (what Kafka itself accepts); a template is checked once when
 * the configuration is read, and a name it makes is checked before use,
 * never repaired: a mangled name would merge or scatter tables silently.
 */
#ifndef WALCAST_TOPIC_H
#define WALCAST_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

#define WC_TOPIC_MAX 249

enum wc_topic_field {
        WC_TOPIC_PREFIX = 0,
        WC_TOPIC_DATABASE,
        WC_TOPIC_SCHEMA,
        WC_TOPIC_NAMESPACE,
        WC_TOPIC_TENANT,
        WC_TOPIC_TABLE,
        WC_TOPIC__COUNT,
};

#define WC_TOPIC_BIT(f) (1u << (f))
/* Placeholders whose value is known only from a change (or, for
 * {database}, only once the connection string is read). */
#define WC_TOPIC_DYNAMIC                                                       \
        (WC_TOPIC_BIT(WC_TOPIC_DATABASE) | WC_TOPIC_BIT(WC_TOPIC_SCHEMA) |     \
         WC_TOPIC_BIT(WC_TOPIC_NAMESPACE) | WC_TOPIC_BIT(WC_TOPIC_TENANT) |    \
         WC_TOPIC_BIT(WC_TOPIC_TABLE))

/* The values of a template's placeholders, borrowed. */
struct wc_topic_values {
        struct wc_str v[WC_TOPIC__COUNT];
};

/* May this character appear in a topic name? */
bool wc_topic_char_valid(char c);

/* Is s[0..len) a legal topic name? */
bool wc_topic_name_valid(const char *s, size_t len);

/*
 * Checks the syntax of a template: each '{' opens a known placeholder,
 * closed by '}', and the literal text holds only characters a topic may
 * have.  On success *ret_fields has a WC_TOPIC_BIT() for every placeholder
 * used.  0 or -EINVAL with a message in errbuf.
 */
int wc_topic_template_check(const char *tmpl, unsigned *ret_fields,
                            char *errbuf, size_t errlen);

/*
 * Appends the template with its placeholders replaced by values to out.
 * The result is not checked (wc_topic_name_valid does that).  0, -ENOMEM,
 * or -EINVAL for a template wc_topic_template_check refuses.
 */
int wc_topic_expand(const char *tmpl, const struct wc_topic_values *values,
                    struct wc_buf *out);

/* A prefix must be made of characters a topic may have (it may be
 * empty).  0 or -EINVAL with a message in errbuf. */
int wc_topic_prefix_check(const char *prefix, char *errbuf, size_t errlen);

/*
 * What can be told about a template before any change is seen, given a
 * prefix that wc_topic_prefix_check accepts: the literal text with the
 * prefix must not be longer than a topic may be, and a template without
 * dynamic placeholders must make a legal name.  0 or -EINVAL with a
 * message in errbuf.
 */
int wc_topic_template_check_static(const char *tmpl, const char *prefix,
                                   char *errbuf, size_t errlen);

#endif
