/* SPDX-License-Identifier: MIT */
/*
 * holdacks: a sink that holds its acknowledgements, for the integration
 * test of limits.max_in_flight_* (tests/integration/test_limits.py).
 *
 * Every commit returns WALCAST_PENDING.  Every 20 ms (a timerfd watched
 * through host->watch_fd) it looks for the file named by the config key
 * "release": while it does not exist, nothing is acknowledged; once it
 * does, every held transaction is acknowledged and later ones at the next
 * tick.  It counts the changes it received in the file "count" (rewritten
 * at each tick), so a test can see how far walcastd read.  It never calls
 * host->throttle: what stops walcastd is its own limit.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <walcast/plugin.h>

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        const char *release;
        const char *count;
        int tfd;
        uint64_t *held;
        size_t nheld, cap;
        unsigned long changes, written;
};

static int32_t on_change(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;

        (void)s;
        st->changes++;
        return WALCAST_OK;
}

static int32_t on_commit(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;

        if (!s->txn)
                return WALCAST_ERROR;
        if (st->nheld == st->cap) {
                size_t cap = st->cap ? st->cap * 2 : 64;
                uint64_t *h = realloc(st->held, cap * sizeof(*h));
                if (!h)
                        return WALCAST_ERROR;
                st->held = h;
                st->cap = cap;
        }
        st->held[st->nheld++] = s->txn->id;
        return WALCAST_PENDING;
}

static void write_count(struct state *st)
{
        char tmp[4200];
        FILE *f;

        if (st->written == st->changes)
                return;
        snprintf(tmp, sizeof(tmp), "%s.tmp", st->count);
        f = fopen(tmp, "w");
        if (!f)
                return;
        fprintf(f, "%lu\n", st->changes);
        if (fclose(f) == 0 && rename(tmp, st->count) == 0)
                st->written = st->changes;
}

static void on_tick(void *userdata, int fd, uint32_t revents)
{
        struct state *st = userdata;
        uint64_t n;

        (void)revents;
        if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
                return;
        write_count(st);
        if (access(st->release, F_OK) != 0)
                return;
        for (size_t i = 0; i < st->nheld; i++)
                st->host->ack(st->self, st->held[i], WALCAST_OK);
        st->nheld = 0;
}

static void hold_close(void *state)
{
        struct state *st = state;

        if (!st)
                return;
        if (st->tfd >= 0) {
                st->host->unwatch_fd(st->self, st->tfd);
                close(st->tfd);
        }
        free(st->held);
        free(st);
}

static int32_t hold_init(const struct walcast_host *host,
                         struct walcast_plugin *self, void **ret_state,
                         char *errbuf, size_t errlen)
{
        static const uint32_t kinds[] = {
            WALCAST_SIG_INSERT, WALCAST_SIG_UPDATE, WALCAST_SIG_DELETE,
            WALCAST_SIG_TRUNCATE, WALCAST_SIG_MESSAGE};
        struct itimerspec its = {.it_interval = {0, 20 * 1000 * 1000},
                                 .it_value = {0, 20 * 1000 * 1000}};
        struct state *st = calloc(1, sizeof(*st));

        if (!st) {
                snprintf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        st->host = host;
        st->self = self;
        st->tfd = -1;
        st->release = host->config_get(self, "release");
        st->count = host->config_get(self, "count");
        if (!st->release || !st->count) {
                snprintf(errbuf, errlen,
                         "\"release\" and \"count\" are "
                         "required");
                goto fail;
        }
        st->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (st->tfd < 0 || timerfd_settime(st->tfd, 0, &its, NULL) < 0 ||
            host->watch_fd(self, st->tfd, POLLIN, on_tick, st) != WALCAST_OK) {
                snprintf(errbuf, errlen, "timerfd: %s", strerror(errno));
                goto fail;
        }
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                if (host->connect(self, kinds[i], NULL, NULL, on_change, st) !=
                    WALCAST_OK)
                        goto fail_connect;
        if (host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_commit,
                          st) != WALCAST_OK)
                goto fail_connect;
        *ret_state = st;
        return WALCAST_OK;
fail_connect:
        snprintf(errbuf, errlen, "connect failed");
fail:
        hold_close(st);
        return WALCAST_ERROR;
}

WALCAST_PLUGIN_DEFINE("holdacks", "1.0", hold_init, hold_close, NULL);
