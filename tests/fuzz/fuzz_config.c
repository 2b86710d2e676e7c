/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration loader.  Besides not crashing or
 * leaking, it checks what the loader promises: an accepted configuration
 * satisfies every rule of the schema, and a refusal comes with a one-line
 * message that starts with the file name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "config/config.h"
#include "sinks/file/conf.h"
#include "sinks/kafka/conf.h"
#include "sinks/plugin/conf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "fuzz.yaml"

/* Variables the seeds and mutations can reach with ${...}. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        setenv("WC_FUZZ_DURATION", "250ms", 1);
        setenv("WC_FUZZ_SLOT", "fuzz_slot", 1);
        setenv("WC_FUZZ_EMPTY", "", 1);
        setenv("WC_FUZZ_DOLLAR", "${WC_FUZZ_SLOT}$$", 1);
        unsetenv("WC_FUZZ_UNSET");
        /* the one valid-plugins.yaml uses, so that seed loads */
        setenv("WALCAST_TEST_AUDIT_DIR", "/var/log/walcast", 1);
        return 0;
}

static void check_patterns(const struct wc_pattern_list *l)
{
        if (l->count > 0 && !l->items)
                abort();
        for (size_t i = 0; i < l->count; i++)
                if (!l->items[i] || !l->items[i][0])
                        abort();
}

/* The loader's promises for a plugin's flattened config: at most 1024
 * pairs of at most 1024-byte keys, every key non-empty and unique. */
static void check_kv(const struct wc_plugin_sink_config *p)
{
        if (p->nconfig > 1024 || (p->nconfig > 0 && !p->config) ||
            (p->nconfig == 0 && p->config))
                abort();
        for (size_t i = 0; i < p->nconfig; i++) {
                const char *key = p->config[i].key;

                if (!key || !key[0] || strlen(key) > 1024 ||
                    !p->config[i].value)
                        abort();
                /* n^2 is fine at the sizes a fuzzer reaches */
                for (size_t j = 0; j < i; j++)
                        if (strcmp(p->config[j].key, key) == 0)
                                abort();
        }
}

static void check_sink(const struct wc_sink_config *s)
{
        const struct wc_sink_common *common;

        if (s->line == 0 || s->column == 0 || !s->kind || !s->conf)
                abort();
        /* every kind's struct starts with its name and filter */
        common = s->conf;
        check_patterns(&common->filter.schemas_include);
        check_patterns(&common->filter.schemas_exclude);
        check_patterns(&common->filter.tables_include);
        check_patterns(&common->filter.tables_exclude);
        if (strcmp(s->kind, "file") == 0) {
                const struct wc_file_sink_config *f = s->conf;

                if (!f->path || !f->path[0])
                        abort();
        } else if (strcmp(s->kind, "plugin") == 0) {
                const struct wc_plugin_sink_config *p = s->conf;

                if (!p->path || p->path[0] != '/')
                        abort();
                check_kv(p);
        } else if (strcmp(s->kind, "kafka") == 0) {
                const struct wc_kafka_sink_config *k = s->conf;

                /* the template and prefix passed their checks; a broker
                 * list is required */
                if (!k->topic || !k->topic[0] || !k->prefix)
                        abort();
                for (size_t i = 0; i < k->nproperties; i++)
                        if (!k->properties[i].key || !k->properties[i].value)
                                abort();
        } else {
                abort();
        }
}

static void check_config(const struct wc_config *c)
{
        if (strcmp(c->path, NAME) != 0)
                abort();
        if (!c->source.dsn || !c->source.dsn[0])
                abort();
        if (!wc_slot_name_valid(c->source.slot))
                abort();
        if (c->source.status_interval_ms < 100 ||
            c->source.status_interval_ms > 3600 * 1000)
                abort();
        check_patterns(&c->filter.schemas_include);
        check_patterns(&c->filter.schemas_exclude);
        check_patterns(&c->filter.tables_include);
        check_patterns(&c->filter.tables_exclude);
        if (c->filter.ops == 0 || (c->filter.ops & ~WC_OPS_DATA))
                abort();
        if (c->signals.bulk_delete_batch < 1 ||
            c->signals.bulk_delete_batch > 1000000)
                abort();
        if (c->nsinks == 0 || !c->sinks)
                abort();
        for (size_t i = 0; i < c->nsinks; i++)
                check_sink(&c->sinks[i]);
        if (c->log.level < WC_LOG_ERR || c->log.level > WC_LOG_DEBUG)
                abort();
}

static void check_error(const char *errbuf)
{
        if (strncmp(errbuf, NAME ":", strlen(NAME ":")) != 0)
                abort();
        for (const char *p = errbuf; *p; p++)
                if ((unsigned char)*p < 0x20)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char errbuf[512] = "";
        struct wc_config *c;

        c = wc_config_load_string(NAME, (const char *)data, size, errbuf,
                                  sizeof(errbuf));
        if (c)
                check_config(c);
        else
                check_error(errbuf);
        wc_config_free(c);
        return 0;
}
