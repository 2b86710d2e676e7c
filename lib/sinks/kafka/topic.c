/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "sinks/kafka/topic.h"

static const char *const field_names[WC_TOPIC__COUNT] = {
    [WC_TOPIC_PREFIX] = "prefix", [WC_TOPIC_DATABASE] = "database",
    [WC_TOPIC_SCHEMA] = "schema", [WC_TOPIC_NAMESPACE] = "namespace",
    [WC_TOPIC_TENANT] = "tenant", [WC_TOPIC_TABLE] = "table",
};

#define CHARS_HINT "use letters, digits, \".\", \"_\" and \"-\""

bool wc_topic_char_valid(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool wc_topic_name_valid(const char *s, size_t len)
{
        if (len < 1 || len > WC_TOPIC_MAX)
                return false;
        /* Kafka refuses these two: they are directory names */
        if ((len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!wc_topic_char_valid(s[i]))
                        return false;
        return true;
}

/* The placeholder named s[0..len), or -1. */
static int field_lookup(const char *s, size_t len)
{
        for (int f = 0; f < WC_TOPIC__COUNT; f++)
                if (strlen(field_names[f]) == len &&
                    memcmp(field_names[f], s, len) == 0)
                        return f;
        return -1;
}

/*
 * The character at s for a message: a UTF-8 sequence as it is (it is
 * readable), anything else below 0x20 or 0x7f escaped so that it cannot
 * break a log line.
 */
static const char *char_describe(char buf[16], const char *s)
{
        unsigned char c = (unsigned char)*s;
        size_t n = 0;

        if (c == '"' || c == '\\') {
                snprintf(buf, 16, "\"\\%c\"", c);
                return buf;
        }
        if (c >= 0x20 && c < 0x7f) {
                snprintf(buf, 16, "\"%c\"", c);
                return buf;
        }
        if (c >= 0xc2 && c < 0xe0)
                n = 2;
        else if (c >= 0xe0 && c < 0xf0)
                n = 3;
        else if (c >= 0xf0 && c < 0xf5)
                n = 4;
        for (size_t i = 1; i < n; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80)
                        n = 0;
        if (n == 0)
                snprintf(buf, 16, "\"\\x%02x\"", c);
        else
                snprintf(buf, 16, "\"%.*s\"", (int)n, s);
        return buf;
}

int wc_topic_template_check(const char *tmpl, unsigned *ret_fields,
                            char *errbuf, size_t errlen)
{
        unsigned fields = 0;
        char what[16];

        for (const char *p = tmpl; *p; p++) {
                const char *close;
                int f;

                if (*p == '}') {
                        wc_errorf(errbuf, errlen,
                                  "\"}\" without \"{\" at character %zu of "
                                  "the topic template",
                                  (size_t)(p - tmpl) + 1);
                        return -EINVAL;
                }
                if (*p != '{') {
                        if (wc_topic_char_valid(*p))
                                continue;
                        wc_errorf(errbuf, errlen,
                                  "the topic template has %s at character "
                                  "%zu, which a Kafka topic name cannot "
                                  "have: " CHARS_HINT,
                                  char_describe(what, p),
                                  (size_t)(p - tmpl) + 1);
                        return -EINVAL;
                }
                close = strpbrk(p + 1, "{}");
                if (!close || *close != '}') {
                        wc_errorf(errbuf, errlen,
                                  "\"{\" without \"}\" at character %zu of "
                                  "the topic template",
                                  (size_t)(p - tmpl) + 1);
                        return -EINVAL;
                }
                f = field_lookup(p + 1, (size_t)(close - p - 1));
                if (f < 0) {
                        int n = (int)(close - p - 1);

                        wc_errorf(errbuf, errlen,
                                  "unknown placeholder \"{%.*s%s}\" in the "
                                  "topic template: use {prefix}, "
                                  "{database}, {schema}, {namespace}, "
                                  "{tenant} or {table}",
                                  n > 40 ? 40 : n, p + 1, n > 40 ? "..." : "");
                        return -EINVAL;
                }
                fields |= WC_TOPIC_BIT(f);
                p = close;
        }
        *ret_fields = fields;
        return 0;
}

int wc_topic_expand(const char *tmpl, const struct wc_topic_values *values,
                    struct wc_buf *out)
{
        const char *p = tmpl;

        while (*p) {
                const char *open = strchr(p, '{'), *close;
                int f;

                if (!open)
                        return wc_buf_append_str(out, p);
                if (open > p && wc_buf_append(out, p, (size_t)(open - p)) < 0)
                        return -ENOMEM;
                close = strchr(open, '}');
                if (!close)
                        return -EINVAL;
                f = field_lookup(open + 1, (size_t)(close - open - 1));
                if (f < 0)
                        return -EINVAL;
                if (values->v[f].len &&
                    wc_buf_append(out, values->v[f].ptr, values->v[f].len) < 0)
                        return -ENOMEM;
                p = close + 1;
        }
        return 0;
}

int wc_topic_prefix_check(const char *prefix, char *errbuf, size_t errlen)
{
        char what[16];

        for (const char *p = prefix; *p; p++) {
                if (wc_topic_char_valid(*p))
                        continue;
                wc_errorf(errbuf, errlen,
                          "the prefix has %s at character %zu, which a "
                          "Kafka topic name cannot have: " CHARS_HINT,
                          char_describe(what, p), (size_t)(p - prefix) + 1);
                return -EINVAL;
        }
        return 0;
}

int wc_topic_template_check_static(const char *tmpl, const char *prefix,
                                   char *errbuf, size_t errlen)
{
        struct wc_topic_values v = {0};
        struct wc_buf out;
        unsigned fields;
        int r;

        r = wc_topic_template_check(tmpl, &fields, errbuf, errlen);
        if (r < 0)
                return r;
        /* the dynamic placeholders left empty: what any change adds to */
        v.v[WC_TOPIC_PREFIX] = (struct wc_str){prefix, strlen(prefix)};
        wc_buf_init(&out);
        r = wc_topic_expand(tmpl, &v, &out);
        if (r < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto out;
        }
        if (out.len > WC_TOPIC_MAX) {
                wc_errorf(errbuf, errlen,
                          "the topic template makes names of at least %zu "
                          "characters: a Kafka topic name has at most %d",
                          out.len, WC_TOPIC_MAX);
                r = -EINVAL;
        } else if (!(fields & WC_TOPIC_DYNAMIC) &&
                   !wc_topic_name_valid(out.data ? out.data : "", out.len)) {
                wc_errorf(errbuf, errlen,
                          "the topic template makes \"%.*s\", which is not "
                          "a legal Kafka topic name: use 1 to %d of letters, "
                          "digits, \".\", \"_\" and \"-\", other than \".\" "
                          "and \"..\"",
                          (int)out.len, out.data ? out.data : "", WC_TOPIC_MAX);
                r = -EINVAL;
        }
out:
        wc_buf_free(&out);
        return r;
}
