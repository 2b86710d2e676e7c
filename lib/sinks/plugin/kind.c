/* SPDX-License-Identifier: MIT */
/* A plugin loaded with dlopen, as a kind of the sink registry. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/kv.h"
#include "core/pattern.h"
#include "core/settings.h"

#include "host/host.h"
#include "sinks/plugin/conf.h"
#include "sinks/registry.h"

static const struct wc_key plugin_keys[] = {
    WC_SINK_COMMON_KEYS,
    {WC_KEY(WC_KEY_ABS_PATH, "path", NULL,
            offsetof(struct wc_plugin_sink_config, path),
            "the plugin's shared object"),
     .required = true},
    {WC_KEY(WC_KEY_KV, "config", NULL,
            offsetof(struct wc_plugin_sink_config, config),
            "settings for the plugin, which alone reads them"),
     .count_offset = offsetof(struct wc_plugin_sink_config, nconfig)},
    {.name = NULL},
};

_Static_assert(sizeof(plugin_keys) / sizeof(plugin_keys[0]) <= 32,
               "too many keys");

static void plugin_free(void *conf);

static int plugin_parse(struct wc_settings *s, const char *path,
                        const struct wc_node *key, const struct wc_node *block,
                        void **ret_conf)
{
        struct wc_plugin_sink_config *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return wc_settings_fail_oom(s);
        r = wc_settings_read(s, plugin_keys, path, key, block, c);
        if (r < 0) {
                plugin_free(c);
                return r;
        }
        *ret_conf = c;
        return 0;
}

static void plugin_free(void *conf)
{
        struct wc_plugin_sink_config *p = conf;

        if (!p)
                return;
        wc_sink_common_free(&p->common);
        free(p->path);
        wc_kv_free(p->config, p->nconfig);
        free(p);
}

static char *plugin_default_name(const void *conf)
{
        const struct wc_plugin_sink_config *p = conf;

        return strdup(p->path);
}

static int plugin_check(const void *conf, const struct wc_sink_env *env,
                        char *errbuf, size_t errlen)
{
        const struct wc_plugin_sink_config *p = conf;

        (void)env;
        return wc_plugin_check(p->path, p->config, p->nconfig, errbuf, errlen);
}

static int plugin_add(struct wc_plugin_host *h, const char *name,
                      const void *conf, const struct wc_sink_env *env,
                      char *errbuf, size_t errlen)
{
        const struct wc_plugin_sink_config *p = conf;
        int r;

        (void)env;
        r = wc_plugin_host_load(h, p->path, &p->common.filter, p->config,
                                p->nconfig, errbuf, errlen);
        /* a loaded plugin is named by its path until it is renamed */
        if (r == 0 && strcmp(name, p->path) != 0)
                r = wc_plugin_host_name_last(h, name);
        return r;
}

/* A plugin's config key that names a secret, by the words in it (the
 * plugin alone knows its keys): "token", "api_key", "db.password",
 * "clientSecret", "credentials.0", "tls.private_key". */
static bool secret_key(const char *key)
{
        static const char *const words[] = {
            "password",   "passwd",      "secret",      "token",
            "credential", "private_key", "private-key", "privatekey",
            "api_key",    "api-key",     "apikey",
        };

        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strcasestr(key, words[i]))
                        return true;
        return false;
}

/* A value of such a key that is no secret, and that the log would lose
 * everywhere if it were one: shorter than 4 bytes, a number, a boolean
 * ("token_ttl: 3600", "use_token: true"). */
static bool plain_value(const char *v)
{
        static const char *const words[] = {"true", "false", "yes",
                                            "no",   "on",    "off"};

        if (strlen(v) < 4 || strspn(v, "0123456789.-+") == strlen(v))
                return true;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strcasecmp(v, words[i]) == 0)
                        return true;
        return false;
}

static void plugin_secrets(const void *conf, void (*add)(const char *value))
{
        const struct wc_plugin_sink_config *p = conf;

        for (size_t i = 0; i < p->nconfig; i++)
                if (secret_key(p->config[i].key) && p->config[i].value &&
                    !plain_value(p->config[i].value))
                        add(p->config[i].value);
}

const struct wc_sink_kind wc_sink_kind_plugin = {
    .name = "plugin",
    .parse = plugin_parse,
    .free = plugin_free,
    .default_name = plugin_default_name,
    .check = plugin_check,
    .add = plugin_add,
    .secrets = plugin_secrets,
};
