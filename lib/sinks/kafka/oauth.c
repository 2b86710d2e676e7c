/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "sinks/kafka/oauth.h"

/* What sasl.oauthbearer.config may hold, for every message about it. */
#define UJWT_HOW                                                               \
        "write space-separated entries: principal=NAME (required), "           \
        "principalClaimName=NAME, scope=A,B, scopeClaimName=NAME, "            \
        "lifeSeconds=N and extension_KEY=VALUE (KEY of letters only), "        \
        "without '\"' and each at most once"

static int ujwt_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ujwt_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        wc_errorf(errbuf, errlen,
                  "Kafka property \"sasl.oauthbearer.config\": librdkafka's "
                  "unsecured JWT (enable.sasl.oauthbearer.unsecure.jwt) "
                  "cannot be made of it: %s: " UJWT_HOW,
                  what);
        return -EINVAL;
}

/* The named entries, in the order librdkafka tries them. */
enum { PRINCIPAL_CLAIM, PRINCIPAL, SCOPE_CLAIM, SCOPE, LIFE, NNAMED };

static const char *const named[NNAMED] = {
    "principalClaimName=", "principal=", "scopeClaimName=", "scope=",
    "lifeSeconds=",
};

/* An extension librdkafka refuses when it sets the token. */
static const char *extension_fault(const char *k, size_t klen, const char *v,
                                   size_t vlen)
{
        if (klen == 4 && memcmp(k, "auth", 4) == 0)
                return "is \"auth\", a key SASL reserves";
        for (size_t i = 0; i < klen; i++)
                if (!((k[i] >= 'A' && k[i] <= 'Z') ||
                      (k[i] >= 'a' && k[i] <= 'z')))
                        return "has a key with other characters than "
                               "letters";
        for (size_t i = 0; i < vlen; i++) {
                unsigned char c = (unsigned char)v[i];

                if (!((c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t' ||
                      c == '\r' || c == '\n'))
                        return "has a value with a character other than "
                               "printable ASCII, tab, CR or LF";
        }
        return NULL;
}

/*
 * librdkafka (rdkafka_sasl_oauthbearer.c, 2.0 to 2.x) reads the value as
 * entries separated by single spaces; a named entry's value runs to the
 * next space, an extension's key to the next '=' (spaces and all), its
 * value to the next space.  It stops at the first entry it cannot read,
 * then wants a principal, no '"' in the claims, and extensions SASL
 * allows.  The first fault is the one said, as librdkafka would.
 */
int wc_kafka_ujwt_config_check(const char *cfg, char *errbuf, size_t errlen)
{
        const char *val[NNAMED] = {0}, *end[NNAMED] = {0};
        const char *ext_fault = NULL;
        unsigned entry = 0, ext_entry = 0;
        const char *p = cfg;

        if (!cfg || !cfg[0])
                return ujwt_fail(errbuf, errlen, "it is empty");
        while (*p) {
                const char *v, *e;
                size_t i;

                if (*p == ' ') {
                        p++;
                        continue;
                }
                entry++;
                for (i = 0; i < NNAMED; i++)
                        if (strncmp(p, named[i], strlen(named[i])) == 0)
                                break;
                if (i < NNAMED) {
                        v = p + strlen(named[i]);
                        e = v + strcspn(v, " ");
                        if (val[i])
                                return ujwt_fail(errbuf, errlen,
                                                 "entry %u is a second "
                                                 "%s entry",
                                                 entry, named[i]);
                        if (e == v)
                                return ujwt_fail(errbuf, errlen,
                                                 "entry %u, %s, has no value",
                                                 entry, named[i]);
                        val[i] = v;
                        end[i] = e;
                        if (i == LIFE) {
                                char *stop;
                                long long n;

                                errno = 0;
                                n = strtoll(v, &stop, 10);
                                if (stop != e)
                                        return ujwt_fail(
                                            errbuf, errlen,
                                            "entry %u, lifeSeconds=, is not "
                                            "a whole number",
                                            entry);
                                if (n <= 0 || n > INT_MAX)
                                        return ujwt_fail(
                                            errbuf, errlen,
                                            "entry %u, lifeSeconds=, is not "
                                            "1 to %d",
                                            entry, INT_MAX);
                        }
                        p = *e ? e + 1 : e;
                        continue;
                }
                if (strncmp(p, "extension_", strlen("extension_")) == 0) {
                        const char *k = p + strlen("extension_");
                        const char *ke = k + strcspn(k, "=");
                        const char *f;

                        if (ke == k)
                                return ujwt_fail(errbuf, errlen,
                                                 "entry %u, extension_, has "
                                                 "no key",
                                                 entry);
                        v = *ke ? ke + 1 : ke;
                        e = v + strcspn(v, " ");
                        f = extension_fault(k, (size_t)(ke - k), v,
                                            (size_t)(e - v));
                        /* refused when the token is set, after the rest */
                        if (f && !ext_fault) {
                                ext_fault = f;
                                ext_entry = entry;
                        }
                        p = *e ? e + 1 : e;
                        continue;
                }
                return ujwt_fail(errbuf, errlen,
                                 "entry %u is not one librdkafka knows", entry);
        }
        if (!val[PRINCIPAL])
                return ujwt_fail(errbuf, errlen, "it has no principal= entry");
        {
                static const int quoted[] = {PRINCIPAL, PRINCIPAL_CLAIM,
                                             SCOPE_CLAIM, SCOPE};

                for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]);
                     i++) {
                        int n = quoted[i];

                        if (val[n] &&
                            memchr(val[n], '"', (size_t)(end[n] - val[n])))
                                return ujwt_fail(errbuf, errlen,
                                                 "its %s entry holds a '\"'",
                                                 named[n]);
                }
        }
        if (ext_fault)
                return ujwt_fail(errbuf, errlen, "entry %u, an extension, %s",
                                 ext_entry, ext_fault);
        return 0;
}

int wc_kafka_oauth_check(const struct wc_kafka_oauth_settings *s, int version,
                         const char *version_str, char *errbuf, size_t errlen)
{
        int r;

        /* librdkafka's builtin handler runs for a SASL connection with
         * the OAUTHBEARER mechanism (its name compared exactly); with
         * sasl.oauthbearer.method: oidc as well, librdkafka refuses the
         * pair itself, in words of its own */
        if (!s->unsecure_jwt || !s->mechanisms || !s->protocol ||
            (s->method && strcasecmp(s->method, "oidc") == 0) ||
            strcmp(s->mechanisms, "OAUTHBEARER") != 0 ||
            (strcasecmp(s->protocol, "sasl_plaintext") != 0 &&
             strcasecmp(s->protocol, "sasl_ssl") != 0))
                return 0;
        r = wc_kafka_ujwt_config_check(s->config, errbuf, errlen);
        if (r < 0)
                return r;
        if (version < WC_KAFKA_UJWT_FIXED) {
                wc_errorf(errbuf, errlen,
                          "Kafka property "
                          "\"enable.sasl.oauthbearer.unsecure.jwt\": "
                          "librdkafka %s crashes when it renews an "
                          "unsecured JWT (at 80 %% of lifeSeconds, by "
                          "default after 48 minutes): run walcast with "
                          "librdkafka 2.2.0 or later, or authenticate "
                          "otherwise (sasl.mechanisms: SCRAM-SHA-512, or "
                          "sasl.oauthbearer.method: oidc where librdkafka "
                          "has it)",
                          version_str);
                return -EINVAL;
        }
        return 0;
}

/* A setting's text, malloc()ed; NULL when unknown or out of memory. */
static char *conf_text(const rd_kafka_conf_t *conf, const char *name)
{
        size_t n = 0;
        char *t;

        if (rd_kafka_conf_get(conf, name, NULL, &n) != RD_KAFKA_CONF_OK)
                return NULL;
        if (!(t = malloc(n + 1)))
                return NULL;
        if (rd_kafka_conf_get(conf, name, t, &n) != RD_KAFKA_CONF_OK) {
                free(t);
                return NULL;
        }
        t[n] = '\0';
        return t;
}

int wc_kafka_oauth_check_conf(const rd_kafka_conf_t *conf, char *errbuf,
                              size_t errlen)
{
        char *jwt = conf_text(conf, "enable.sasl.oauthbearer.unsecure.jwt");
        char *protocol = conf_text(conf, "security.protocol");
        char *mechanisms = conf_text(conf, "sasl.mechanisms");
        char *config = conf_text(conf, "sasl.oauthbearer.config");
        char *method = conf_text(conf, "sasl.oauthbearer.method");
        struct wc_kafka_oauth_settings s = {
            .protocol = protocol,
            .mechanisms = mechanisms,
            .unsecure_jwt = jwt && strcmp(jwt, "true") == 0,
            .config = config,
            .method = method,
        };
        int r = wc_kafka_oauth_check(&s, rd_kafka_version(),
                                     rd_kafka_version_str(), errbuf, errlen);

        free(jwt);
        free(protocol);
        free(mechanisms);
        free(config);
        free(method);
        return r;
}
