/* SPDX-License-Identifier: MIT */
/*
 * A well-behaved plugin for the plugin host's tests.  It says what it
 * sees through host->log, so the test reads its view from the log lines.
 *
 * Config keys: "sender", "table" (what its insert and delete handlers
 * connect to), "commit" ("none": no commit handler, "ok", "pending": acked
 * when the eventfd it watches is written to, "error"), "insert" ("error":
 * its insert handler fails), "fail" ("silent": init fails without a
 * message), "greeting", "nested.key", "list.0" (logged back).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <walcast/plugin.h>

#define MAX_PENDING 64

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        int efd;
        int fail_insert;
        int tried_late_connect;
        int32_t commit_result; /* -2: no commit handler */
        uint64_t pending[MAX_PENDING];
        size_t npending;
};

static const char *or_null(const char *s)
{
        return s ? s : "(null)";
}

static int32_t on_change(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        const char *what = s->kind == WALCAST_SIG_INSERT   ? "insert"
                           : s->kind == WALCAST_SIG_DELETE ? "delete"
                                                           : "other";
        const struct walcast_column *first =
            s->columns.count
                ? &s->columns.items[0]
                : (s->identity.count ? &s->identity.items[0] : NULL);

        st->host->log(st->self, WALCAST_LOG_INFO,
                      "%s %s.%s ns=%.*s tenant=%.*s lsn=%" PRIu64
                      " txn=%" PRIu64 " first=%s:%.*s",
                      what, s->schema, s->table, (int)s->ns_len, s->ns,
                      (int)s->tenant_len, s->tenant, s->lsn,
                      s->txn ? s->txn->id : 0, first ? first->name : "-",
                      first ? (int)first->value_len : 0,
                      first ? first->value : "");
        if (!st->tried_late_connect) {
                /* connecting is for init only */
                int32_t r = st->host->connect(st->self, WALCAST_SIG_UPDATE,
                                              NULL, NULL, on_change, st);
                st->tried_late_connect = 1;
                st->host->log(st->self, WALCAST_LOG_DEBUG, "late connect: %s",
                              r == WALCAST_OK ? "accepted" : "refused");
        }
        if (s->kind == WALCAST_SIG_INSERT && st->fail_insert)
                return WALCAST_ERROR;
        return WALCAST_OK;
}

static int32_t on_commit(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;

        st->host->log(st->self, WALCAST_LOG_INFO, "commit txn=%" PRIu64,
                      s->txn->id);
        if (st->commit_result == WALCAST_PENDING) {
                if (st->npending == MAX_PENDING)
                        return WALCAST_ERROR;
                st->pending[st->npending++] = s->txn->id;
        }
        return st->commit_result;
}

/* The eventfd's value decides: 1 acks OK, 2 acks ERROR, 3 tries an
 * invalid status. */
static void on_fd(void *userdata, int fd, uint32_t revents)
{
        struct state *st = userdata;
        uint64_t v = 0;
        int32_t status = WALCAST_OK;

        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
                return;
        if (v == 2)
                status = WALCAST_ERROR;
        else if (v == 3)
                status = 7;
        for (size_t i = 0; i < st->npending; i++) {
                int32_t r = st->host->ack(st->self, st->pending[i], status);
                st->host->log(st->self, WALCAST_LOG_INFO,
                              "ack txn=%" PRIu64 " status=%d: %s",
                              st->pending[i], (int)status,
                              r == WALCAST_OK ? "accepted" : "refused");
        }
        if (status != 7)
                st->npending = 0;
        (void)revents;
}

static void reopen(void *state)
{
        struct state *st = state;

        st->host->log(st->self, WALCAST_LOG_NOTICE, "reopen");
}

static void close_state(void *state)
{
        struct state *st = state;

        st->host->log(st->self, WALCAST_LOG_NOTICE, "close");
        if (st->efd >= 0) {
                st->host->unwatch_fd(st->self, st->efd);
                close(st->efd);
        }
        free(st);
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        const char *commit = host->config_get(self, "commit");
        const char *fail = host->config_get(self, "fail");
        const char *insert = host->config_get(self, "insert");
        const char *sender = host->config_get(self, "sender");
        const char *table = host->config_get(self, "table");
        struct state *st;
        int32_t r;

        if (fail && strcmp(fail, "silent") == 0)
                return WALCAST_ERROR;
        st = calloc(1, sizeof(*st));
        if (!st) {
                snprintf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        st->host = host;
        st->self = self;
        st->efd = -1;
        st->fail_insert = insert && strcmp(insert, "error") == 0;
        host->log(self, WALCAST_LOG_INFO,
                  "host abi %u.%u size %u; config greeting=%s nested.key=%s "
                  "list.0=%s absent=%s",
                  host->abi_major, host->abi_minor, host->size,
                  or_null(host->config_get(self, "greeting")),
                  or_null(host->config_get(self, "nested.key")),
                  or_null(host->config_get(self, "list.0")),
                  or_null(host->config_get(self, "absent")));

        if (host->connect(self, WALCAST_SIG_INSERT, sender, table, on_change,
                          st) != WALCAST_OK ||
            host->connect(self, WALCAST_SIG_DELETE, sender, table, on_change,
                          st) != WALCAST_OK) {
                snprintf(errbuf, errlen, "could not connect");
                goto err;
        }
        r = host->connect(self, WALCAST_SIG__COUNT + 3, NULL, NULL, on_change,
                          st);
        host->log(self, WALCAST_LOG_DEBUG, "bad kind: %s",
                  r == WALCAST_OK ? "accepted" : "refused");

        st->commit_result = -2;
        if (commit && strcmp(commit, "none") != 0) {
                if (strcmp(commit, "ok") == 0)
                        st->commit_result = WALCAST_OK;
                else if (strcmp(commit, "pending") == 0)
                        st->commit_result = WALCAST_PENDING;
                else
                        st->commit_result = WALCAST_ERROR;
                if (host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL,
                                  on_commit, st) != WALCAST_OK) {
                        snprintf(errbuf, errlen, "could not connect commit");
                        goto err;
                }
                r = host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL,
                                  on_commit, st);
                host->log(self, WALCAST_LOG_DEBUG, "second commit handler: %s",
                          r == WALCAST_OK ? "accepted" : "refused");
        }

        st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (st->efd < 0) {
                snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
                goto err;
        }
        if (host->watch_fd(self, st->efd, POLLIN, on_fd, st) != WALCAST_OK) {
                snprintf(errbuf, errlen, "could not watch");
                goto err;
        }
        host->log(self, WALCAST_LOG_DEBUG, "watching fd %d", st->efd);
        *ret_state = st;
        return WALCAST_OK;

err:
        if (st->efd >= 0)
                close(st->efd);
        free(st);
        return WALCAST_ERROR;
}

WALCAST_PLUGIN_DEFINE("good", "1.2.3", init, close_state, reopen);
