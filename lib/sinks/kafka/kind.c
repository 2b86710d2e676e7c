/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "host/host.h"
#include "sinks/kafka/conf.h"
#include "sinks/kafka/kafka.h"
#include "sinks/kafka/kind.h"
#include "sinks/registry.h"

void wc_sink_kv_free(struct wc_sink_kv *s)
{
        if (!s)
                return;
        for (size_t i = 0; i < s->n; i++) {
                free(s->kv[i].key);
                free(s->kv[i].value);
        }
        free(s->kv);
        s->kv = NULL;
        s->n = 0;
}

static int add(struct wc_sink_kv *s, size_t *cap, const char *key,
               const char *value)
{
        struct wc_kv *kv;

        if (s->n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;

                kv = reallocarray(s->kv, c, sizeof(*kv));
                if (!kv)
                        return -ENOMEM;
                s->kv = kv;
                *cap = c;
        }
        kv = &s->kv[s->n];
        kv->key = strdup(key);
        kv->value = strdup(value);
        if (!kv->key || !kv->value) {
                free(kv->key);
                free(kv->value);
                return -ENOMEM;
        }
        s->n++;
        return 0;
}

static int add_list(struct wc_sink_kv *s, size_t *cap, const char *key,
                    const struct wc_pattern_list *l)
{
        char k[64];
        int r;

        for (size_t i = 0; i < l->count; i++) {
                snprintf(k, sizeof(k), "%s.%zu", key, i);
                r = add(s, cap, k, l->items[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What libpq would connect to, without connecting: the dsn's dbname, or
 * the defaults libpq applies in its place. */
static int database_of(const char *dsn, char **ret, char *errbuf, size_t errlen)
{
        PQconninfoOption *opts;
        const char *db = NULL, *user = NULL;
        char *msg = NULL, *dup;
        struct passwd *pw;

        opts = PQconninfoParse(dsn, &msg);
        if (!opts) {
                /* msg never holds the password: it describes syntax */
                wc_errorf(errbuf, errlen, "invalid source.dsn: %s",
                          msg ? msg : "out of memory");
                PQfreemem(msg);
                return -EINVAL;
        }
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (o->val && o->val[0] && strcmp(o->keyword, "dbname") == 0)
                        db = o->val;
                else if (o->val && o->val[0] && strcmp(o->keyword, "user") == 0)
                        user = o->val;
        }
        /* cmd/ may read the environment; libpq reads the same variables */
        if (!db)
                db = getenv("PGDATABASE");
        if (!db || !db[0])
                db = user;
        if (!db || !db[0])
                db = getenv("PGUSER");
        if ((!db || !db[0]) && (pw = getpwuid(geteuid())))
                db = pw->pw_name;
        dup = strdup(db ? db : "");
        PQconninfoFree(opts);
        if (!dup) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        *ret = dup;
        return 0;
}

static const char *ops_text(unsigned ops, char *buf, size_t size)
{
        static const enum wc_op all[] = {WC_OP_INSERT, WC_OP_UPDATE,
                                         WC_OP_DELETE, WC_OP_TRUNCATE,
                                         WC_OP_MESSAGE};
        size_t o = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                if (!(ops & WC_OP_BIT(all[i])))
                        continue;
                o += (size_t)snprintf(buf + o, size - o, "%s%s", o ? "," : "",
                                      wc_op_name(all[i]));
                if (o >= size)
                        break;
        }
        return buf;
}

int wc_kafka_sink_kv(const struct wc_kafka_sink_config *k, const char *dsn,
                     struct wc_sink_kv *ret, char *errbuf, size_t errlen)
{
        struct wc_sink_kv s = {0};
        struct wc_buf names;
        char *database = NULL, ops[64];
        size_t cap = 0;
        int r;

        wc_buf_init(&names);
        r = database_of(dsn, &database, errbuf, errlen);
        if (r < 0)
                return r;
        r = add(&s, &cap, "topic", k->topic);
        if (!r)
                r = add(&s, &cap, "prefix", k->prefix);
        if (!r)
                r = add(&s, &cap, "database", database);
        if (!r)
                r = add(&s, &cap, "tombstones",
                        k->tombstones ? "true" : "false");
        if (!r)
                r = add(&s, &cap, "ops",
                        ops_text(k->filter.ops, ops, sizeof(ops)));
        if (!r)
                r = add_list(&s, &cap, "schemas.include",
                             &k->filter.schemas_include);
        if (!r)
                r = add_list(&s, &cap, "schemas.exclude",
                             &k->filter.schemas_exclude);
        if (!r)
                r = add_list(&s, &cap, "tables.include",
                             &k->filter.tables_include);
        if (!r)
                r = add_list(&s, &cap, "tables.exclude",
                             &k->filter.tables_exclude);
        /* the plugin cannot list keys, so "properties" names them, one per
         * line, and "properties.NAME" holds each value */
        for (size_t i = 0; !r && i < k->nproperties; i++) {
                const struct wc_kv *p = &k->properties[i];

                if (strchr(p->key, '\n')) {
                        wc_errorf(errbuf, errlen,
                                  "Kafka property names have no line breaks");
                        r = -EINVAL;
                        goto err_free;
                }
                /* wc_buf keeps its text NUL-terminated */
                r = wc_buf_printf(&names, "%s%s", i ? "\n" : "", p->key);
                if (!r) {
                        char *key;

                        if (asprintf(&key, "properties.%s", p->key) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = add(&s, &cap, key, p->value);
                        free(key);
                }
        }
        if (!r)
                r = add(&s, &cap, "properties", names.data ? names.data : "");
        if (r < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_free;
        }
        free(database);
        wc_buf_free(&names);
        *ret = s;
        return 0;

err_free:
        free(database);
        wc_buf_free(&names);
        wc_sink_kv_free(&s);
        return r;
}

static int kafka_add(struct wc_plugin_host *h, const char *name,
                     const void *conf, const struct wc_sink_env *env,
                     char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *k = conf;
        struct wc_sink_kv kv;
        int r = wc_kafka_sink_kv(k, env->dsn, &kv, errbuf, errlen);

        if (r < 0)
                return r;
        /* the include list also keeps the bus from calling the sink for
         * other schemas at all */
        r = wc_plugin_host_add(h, name, wc_kafka_plugin(),
                               &k->filter.schemas_include, kv.kv, kv.n, errbuf,
                               errlen);
        wc_sink_kv_free(&kv);
        return r;
}

static const char *kv_get(void *ud, const char *key)
{
        const struct wc_sink_kv *s = ud;

        return wc_kv_get(s->kv, s->n, key);
}

static int kafka_check(const void *conf, const struct wc_sink_env *env,
                       char *errbuf, size_t errlen)
{
        struct wc_sink_kv kv;
        int r = wc_kafka_sink_kv(conf, env->dsn, &kv, errbuf, errlen);

        if (r < 0)
                return r;
        r = wc_kafka_check_properties(kv_get, &kv, errbuf, errlen);
        wc_sink_kv_free(&kv);
        return r;
}

const struct wc_sink_kind wc_sink_kind_kafka = {
    .name = "kafka",
    .needs_identity = true,
    .check = kafka_check,
    .add = kafka_add,
};
