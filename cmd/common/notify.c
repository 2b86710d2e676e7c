/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/notify.h"

static struct sockaddr_un addr;
static socklen_t addrlen;
static int64_t watchdog_ms;

void wc_notify_init(void)
{
        const char *path = getenv("NOTIFY_SOCKET");
        const char *wd = getenv("WATCHDOG_USEC");
        const char *wd_pid = getenv("WATCHDOG_PID");
        size_t n;

        addrlen = 0;
        if (path && (path[0] == '/' || path[0] == '@') &&
            (n = strlen(path)) < sizeof(addr.sun_path)) {
                memset(&addr, 0, sizeof(addr));
                addr.sun_family = AF_UNIX;
                memcpy(addr.sun_path, path, n);
                /* '@' names a socket in the abstract namespace */
                if (path[0] == '@')
                        addr.sun_path[0] = '\0';
                addrlen =
                    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        }
        watchdog_ms = 0;
        /* the watchdog is ours only when no other pid is named */
        if (wd && (!wd_pid || atol(wd_pid) == (long)getpid())) {
                long long us = atoll(wd);
                if (us > 0)
                        watchdog_ms = us / 2000;
                if (us > 0 && watchdog_ms == 0)
                        watchdog_ms = 1;
        }
}

int wc_notify(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        int fd, r = 0;

        if (!addrlen)
                return 0;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
                   (const struct sockaddr *)&addr, addrlen) < 0)
                r = -errno;
        close(fd);
        return r;
}

int64_t wc_notify_watchdog_ms(void)
{
        return watchdog_ms;
}
