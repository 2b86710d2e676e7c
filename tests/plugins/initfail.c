/* SPDX-License-Identifier: MIT */
/*
 * A plugin whose init fails with its own message, after it connected a
 * handler and watched a descriptor: the host must drop both, since the
 * plugin is unloaded.
 */
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include <walcast/plugin.h>

static int32_t on_insert(void *userdata, const struct walcast_signal *s)
{
        return WALCAST_OK;
}

static void on_fd(void *userdata, int fd, uint32_t revents)
{
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        int fds[2];

        host->connect(self, WALCAST_SIG_INSERT, NULL, NULL, on_insert, NULL);
        host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_insert, NULL);
        if (pipe(fds) == 0) {
                host->watch_fd(self, fds[0], POLLIN, on_fd, NULL);
                close(fds[0]);
                close(fds[1]);
        }
        snprintf(errbuf, errlen, "cannot reach the audit service at %s",
                 "10.0.0.7:5140");
        return WALCAST_ERROR;
}

WALCAST_PLUGIN_DEFINE("initfail", "0.1", init, NULL, NULL);
