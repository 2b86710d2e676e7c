/* SPDX-License-Identifier: MIT */
/*
 * A plugin with a check function (ABI 1.3): config key "need" is
 * required.  Its check also tries what a check may not do (connect,
 * watch_fd), and fails if the host lets it.  init fails unless the check
 * ran first.  It opens no descriptor.
 */
#include <stdio.h>

#include <walcast/plugin.h>

static int checks_run;

static int32_t on_insert(void *userdata, const struct walcast_signal *s)
{
        (void)userdata;
        (void)s;
        return WALCAST_OK;
}

static void on_fd(void *userdata, int fd, uint32_t revents)
{
        (void)userdata;
        (void)fd;
        (void)revents;
}

static int32_t check(const struct walcast_host *host,
                     struct walcast_plugin *self, char *errbuf, size_t errlen)
{
        checks_run++;
        if (host->connect(self, WALCAST_SIG_INSERT, NULL, NULL, on_insert,
                          NULL) == WALCAST_OK) {
                snprintf(errbuf, errlen, "connect was allowed in check");
                return WALCAST_ERROR;
        }
        if (host->watch_fd(self, 0, 1, on_fd, NULL) == WALCAST_OK) {
                snprintf(errbuf, errlen, "watch_fd was allowed in check");
                return WALCAST_ERROR;
        }
        if (!host->config_get(self, "need")) {
                snprintf(errbuf, errlen,
                         "missing required config key \"need\"");
                return WALCAST_ERROR;
        }
        return WALCAST_OK;
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        (void)ret_state;
        if (!checks_run) {
                snprintf(errbuf, errlen, "init ran before check");
                return WALCAST_ERROR;
        }
        host->log(self, WALCAST_LOG_INFO, "init need=%s",
                  host->config_get(self, "need"));
        return WALCAST_OK;
}

WALCAST_PLUGIN_DEFINE_CHECKED("checked", "1.0", init, NULL, NULL, check);
