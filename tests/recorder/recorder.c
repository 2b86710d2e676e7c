/* SPDX-License-Identifier: MIT */
/*
 * recorder: a test plugin that appends one JSON line per signal it gets,
 * so integration tests can see exactly what walcastd delivered to a
 * plugin.  Built against <walcast/plugin.h> alone.
 *
 * config:
 *   out         file to append to (required; absolute path advised)
 *   sender      sender filter passed to host->connect (default: any)
 *   table       table filter passed to host->connect (default: every table)
 *   kinds       comma list of signal names to connect (default: all)
 *   fail_every  N: every Nth call of a data handler (everything but begin
 *               and commit) returns WALCAST_ERROR.  The count runs over
 *               the instance's whole life, so the replayed call succeeds.
 *   pending     "true": commit returns WALCAST_PENDING; a timerfd watched
 *               through host->watch_fd acknowledges a few ms later.
 *   fail_commit_every
 *               N: the commit of a transaction whose xid is a multiple of
 *               N returns WALCAST_ERROR (a sink that could not take a
 *               transaction whole), once per transaction: its replay
 *               succeeds.  About one transaction in N fails.  (Counting
 *               calls instead would fail the same transaction again and
 *               again when every replay restarts at the same position.)
 *   stall_at_commit, stall_seconds
 *               with pending: from the Nth commit on, hold every
 *               acknowledgement for S seconds (a sink whose server is
 *               stuck) and call host->throttle(self, 1) meanwhile; then
 *               acknowledge what waited and throttle(self, 0).  Once per
 *               instance.
 *   position    "true" (not with pending): a sink that keeps a position
 *               (ABI 1.4): at init it reports the end_lsn of the last
 *               commit line in `out` that did not fail, and after each
 *               commit line it writes, that commit's end_lsn, so walcastd
 *               hands it each transaction once.  Lines of a transaction
 *               whose commit line is missing do not count (the sink drops
 *               a transaction it did not get whole: it gets it again).
 *   spare_fds   N: open N descriptors that never become ready and watch
 *               them through host->watch_fd before the pending timer, so
 *               the timer is the N+1st descriptor the plugin watches (a
 *               sink with a pool of connections).
 *
 * Lines (keys absent when they do not apply):
 *   {"kind":"insert","call":7,"schema":"town6-govikon","table":"t",
 *    "ns":"town6","tenant":"govikon","lsn":"0/1A2B","xid":734,
 *    "commit_lsn":"0/1B00","end_lsn":"0/1B30","key":[1],
 *    "columns":{"id":1,"title":"x"}}
 *   update adds "old_key" (identity values) when the old key is known;
 *   delete: "key" holds the identity values; bulk_delete: "keys":[[1],[2]]
 *   and "nkeys"; message: "prefix", "content", "transactional";
 *   begin/commit: "xid", "txn_id", "commit_lsn", "end_lsn", and
 *   "replay":true when walcastd marks the transaction as one it handed
 *   out before (ABI 1.4); a commit
 *   answered WALCAST_PENDING has "pending":true and is followed later by
 *   {"kind":"ack","txn_id":N,"status":0}.
 *   A call that returned WALCAST_ERROR has "failed":true.
 *   A stall writes {"kind":"stall","seconds":S} when it starts and
 *   {"kind":"unstall","held":N} when it ends.
 * Values are copied as the JSON text walcastd passed, never re-encoded.
 * Each line goes out with one write(2) on an O_APPEND descriptor before
 * the handler returns, so a test can read the file while walcastd runs.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <walcast/plugin.h>

/* How long a pending commit waits for its acknowledgement. */
#define ACK_DELAY_NS (3 * 1000 * 1000L)

static const char *const kind_names[WALCAST_SIG__COUNT] = {
    [WALCAST_SIG_BEGIN] = "begin",
    [WALCAST_SIG_INSERT] = "insert",
    [WALCAST_SIG_UPDATE] = "update",
    [WALCAST_SIG_DELETE] = "delete",
    [WALCAST_SIG_BULK_DELETE] = "bulk_delete",
    [WALCAST_SIG_TRUNCATE] = "truncate",
    [WALCAST_SIG_MESSAGE] = "message",
    [WALCAST_SIG_COMMIT] = "commit",
    [WALCAST_SIG_READ] = "read",
    [WALCAST_SIG_SNAPSHOT_BEGIN] = "snapshot_begin",
    [WALCAST_SIG_SNAPSHOT_END] = "snapshot_end",
};

struct buf {
        char *p;
        size_t len;
        size_t cap;
        bool nomem;
};

struct recorder {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        char *path;
        int fd;
        uint64_t fail_every; /* 0: never fail */
        uint64_t calls;      /* data handler calls over the instance's life */
        bool pending;
        bool position;              /* reports its position (ABI 1.4) */
        uint64_t fail_commit_every; /* 0: never fail a commit */
        uint64_t commits;           /* commit handler calls */
        uint32_t *failed_xids;      /* commits failed once already */
        size_t nfailed, capfailed;
        uint64_t stall_at; /* 0: never stall */
        uint64_t stall_seconds;
        bool stalled; /* acknowledgements held, throttling */
        bool stall_done;
        int stall_fd;
        bool stall_watched;
        int *spare; /* spare_fds descriptors, all watched */
        uint64_t nspare;
        int timer_fd;
        bool timer_watched;
        bool timer_armed;
        uint64_t *acks; /* txn ids answered WALCAST_PENDING */
        size_t nacks;
        size_t capacks;
        struct buf line;
};

/* ---- a growing line buffer ---- */

static void put(struct buf *b, const char *s, size_t n)
{
        if (b->nomem)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                char *p;

                while (cap < b->len + n + 1)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (!p) {
                        b->nomem = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
        put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(struct buf *b, const char *fmt, ...)
{
        char tmp[128];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof(tmp)) {
                b->nomem = true;
                return;
        }
        put(b, tmp, (size_t)n);
}

/* A JSON string for n bytes of s (NULL: null). */
static void put_str(struct buf *b, const char *s, size_t n)
{
        static const char hex[] = "0123456789abcdef";
        size_t i, start = 0;

        if (!s) {
                puts_(b, "null");
                return;
        }
        put(b, "\"", 1);
        for (i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[6];

                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                put(b, s + start, i - start);
                start = i + 1;
                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char)c;
                        put(b, esc, 2);
                } else {
                        esc[0] = '\\';
                        esc[1] = 'u';
                        esc[2] = '0';
                        esc[3] = '0';
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 15];
                        put(b, esc, 6);
                }
        }
        put(b, s + start, n - start);
        put(b, "\"", 1);
}

static void put_cstr(struct buf *b, const char *s)
{
        put_str(b, s, s ? strlen(s) : 0);
}

/* A value as the JSON text walcastd passed; null when there is none. */
static void put_value(struct buf *b, const struct walcast_column *c)
{
        if (!c->value || c->value_len == 0)
                puts_(b, "null");
        else
                put(b, c->value, c->value_len);
}

static void put_lsn(struct buf *b, const char *key, uint64_t lsn)
{
        putf(b, ",\"%s\":\"%" PRIX32 "/%" PRIX32 "\"", key,
             (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

/* [v1, v2, ...]: the values of cols, in order. */
static void put_values(struct buf *b, const struct walcast_columns *cols)
{
        put(b, "[", 1);
        for (uint32_t i = 0; i < cols->count; i++) {
                if (i)
                        put(b, ",", 1);
                put_value(b, &cols->items[i]);
        }
        put(b, "]", 1);
}

static const struct walcast_column *find_column(const struct walcast_columns *c,
                                                const struct walcast_column *k)
{
        for (uint32_t i = 0; i < c->count; i++)
                if (c->items[i].name_len == k->name_len &&
                    memcmp(c->items[i].name, k->name, k->name_len) == 0)
                        return &c->items[i];
        return NULL;
}

/* The primary key's values, looked up by name in the new row. */
static void put_pk_values(struct buf *b, const struct walcast_signal *s)
{
        put(b, "[", 1);
        for (uint32_t i = 0; i < s->pk.count; i++) {
                const struct walcast_column *c =
                    find_column(&s->columns, &s->pk.items[i]);

                if (i)
                        put(b, ",", 1);
                if (c)
                        put_value(b, c);
                else
                        puts_(b, "null");
        }
        put(b, "]", 1);
}

static const struct walcast_host *the_host;

static void put_txn(struct buf *b, const struct walcast_txn *t)
{
        if (!t)
                return;
        putf(b, ",\"xid\":%" PRIu32 ",\"txn_id\":%" PRIu64, t->xid, t->id);
        put_lsn(b, "commit_lsn", t->commit_lsn);
        put_lsn(b, "end_lsn", t->end_lsn);
        /* the flags exist from ABI 1.4 on */
        if (the_host && the_host->abi_minor >= 4 &&
            (t->flags & WALCAST_TXN_REPLAY))
                puts_(b, ",\"replay\":true");
}

/* ---- output ---- */

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Ends the line being built and writes it out. */
static int emit(struct recorder *r)
{
        int e;

        put(&r->line, "}\n", 2);
        if (r->line.nomem) {
                r->host->log(r->self, WALCAST_LOG_ERR, "out of memory");
                r->line.len = 0;
                r->line.nomem = false;
                return WALCAST_ERROR;
        }
        e = write_all(r->fd, r->line.p, r->line.len);
        r->line.len = 0;
        if (e < 0) {
                r->host->log(r->self, WALCAST_LOG_ERR, "write %s: %s", r->path,
                             strerror(-e));
                return WALCAST_ERROR;
        }
        return WALCAST_OK;
}

/* ---- handlers ---- */

static int32_t on_data(void *userdata, const struct walcast_signal *s)
{
        struct recorder *r = userdata;
        struct buf *b = &r->line;
        bool fail;

        r->calls++;
        fail = r->fail_every && r->calls % r->fail_every == 0;

        b->len = 0;
        puts_(b, "{\"kind\":");
        put_cstr(b, s->kind < WALCAST_SIG__COUNT ? kind_names[s->kind]
                                                 : "unknown");
        putf(b, ",\"call\":%" PRIu64, r->calls);
        if (s->kind != WALCAST_SIG_MESSAGE) {
                puts_(b, ",\"schema\":");
                put_cstr(b, s->schema);
                puts_(b, ",\"table\":");
                put_cstr(b, s->table);
                puts_(b, ",\"ns\":");
                put_str(b, s->ns, s->ns_len);
                puts_(b, ",\"tenant\":");
                put_str(b, s->tenant, s->tenant_len);
        }
        put_lsn(b, "lsn", s->lsn);
        put_txn(b, s->txn);

        switch (s->kind) {
        case WALCAST_SIG_INSERT:
        case WALCAST_SIG_UPDATE:
                puts_(b, ",\"key\":");
                put_pk_values(b, s);
                if (s->kind == WALCAST_SIG_UPDATE && s->identity.count) {
                        puts_(b, ",\"old_key\":");
                        put_values(b, &s->identity);
                }
                puts_(b, ",\"columns\":{");
                for (uint32_t i = 0; i < s->columns.count; i++) {
                        const struct walcast_column *c = &s->columns.items[i];

                        if (i)
                                put(b, ",", 1);
                        put_str(b, c->name, c->name_len);
                        put(b, ":", 1);
                        put_value(b, c);
                }
                put(b, "}", 1);
                if (s->missing.count) {
                        puts_(b, ",\"missing\":[");
                        for (uint32_t i = 0; i < s->missing.count; i++) {
                                if (i)
                                        put(b, ",", 1);
                                put_str(b, s->missing.items[i].name,
                                        s->missing.items[i].name_len);
                        }
                        put(b, "]", 1);
                }
                break;
        case WALCAST_SIG_DELETE:
                puts_(b, ",\"key\":");
                put_values(b, &s->identity);
                break;
        case WALCAST_SIG_BULK_DELETE:
                putf(b, ",\"nkeys\":%" PRIu32 ",\"keys\":[", s->nkeys);
                for (uint32_t i = 0; i < s->nkeys; i++) {
                        if (i)
                                put(b, ",", 1);
                        put_values(b, &s->keys[i]);
                }
                put(b, "]", 1);
                break;
        case WALCAST_SIG_MESSAGE:
                puts_(b, ",\"prefix\":");
                put_cstr(b, s->prefix);
                puts_(b, WALCAST_HAS_FIELD(s, struct walcast_signal,
                                           content_flags) &&
                                 (s->content_flags & WALCAST_CONTENT_BASE64)
                             ? ",\"content_base64\":"
                             : ",\"content\":");
                if (s->content)
                        put(b, s->content, s->content_len);
                else
                        puts_(b, "null");
                puts_(b, s->transactional ? ",\"transactional\":true"
                                          : ",\"transactional\":false");
                break;
        default:
                break;
        }
        if (fail)
                puts_(b, ",\"failed\":true");
        if (emit(r) != WALCAST_OK || fail)
                return WALCAST_ERROR;
        return WALCAST_OK;
}

static int32_t on_begin(void *userdata, const struct walcast_signal *s)
{
        struct recorder *r = userdata;

        r->line.len = 0;
        puts_(&r->line, "{\"kind\":\"begin\"");
        put_txn(&r->line, s->txn);
        return emit(r);
}

static int arm_timer(struct recorder *r)
{
        struct itimerspec its = {{0, 0}, {0, ACK_DELAY_NS}};

        if (r->timer_armed)
                return 0;
        if (timerfd_settime(r->timer_fd, 0, &its, NULL) < 0)
                return -errno;
        r->timer_armed = true;
        return 0;
}

static void on_timer(void *userdata, int fd, uint32_t revents);

/* Whether the commit of xid fails: a multiple of fail_commit_every that
 * has not failed before. */
static bool fail_commit(struct recorder *r, uint32_t xid)
{
        if (!r->fail_commit_every || xid % r->fail_commit_every != 0)
                return false;
        for (size_t i = 0; i < r->nfailed; i++)
                if (r->failed_xids[i] == xid)
                        return false;
        if (r->nfailed == r->capfailed) {
                size_t cap = r->capfailed ? r->capfailed * 2 : 64;
                uint32_t *p = realloc(r->failed_xids, cap * sizeof(*p));

                if (!p)
                        return false;
                r->failed_xids = p;
                r->capfailed = cap;
        }
        r->failed_xids[r->nfailed++] = xid;
        return true;
}

/* A stall begins: hold the acknowledgements, stop walcastd reading, and
 * end it stall_seconds later. */
static int start_stall(struct recorder *r)
{
        struct itimerspec its = {{0, 0}, {(time_t)r->stall_seconds, 0}};
        size_t len = r->line.len;
        char *saved;

        if (timerfd_settime(r->stall_fd, 0, &its, NULL) < 0)
                return -errno;
        r->stalled = true;
        r->stall_done = true;
        r->host->throttle(r->self, 1);
        r->host->log(r->self, WALCAST_LOG_INFO,
                     "stalling: acknowledgements held for %" PRIu64 " s",
                     r->stall_seconds);
        /* the commit line being built waits while the stall line goes */
        saved = malloc(len ? len : 1);
        if (!saved)
                return -ENOMEM;
        memcpy(saved, r->line.p, len);
        r->line.len = 0;
        putf(&r->line, "{\"kind\":\"stall\",\"seconds\":%" PRIu64,
             r->stall_seconds);
        (void)emit(r);
        r->line.len = 0;
        put(&r->line, saved, len);
        free(saved);
        return 0;
}

/* The stall is over: acknowledge what waited, read again. */
static void on_stall_end(void *userdata, int fd, uint32_t revents)
{
        struct recorder *r = userdata;
        uint64_t expirations;
        size_t held = r->nacks;

        (void)revents;
        if (read(fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
                return;
        r->stalled = false;
        r->line.len = 0;
        putf(&r->line, "{\"kind\":\"unstall\",\"held\":%zu", held);
        (void)emit(r);
        r->host->log(r->self, WALCAST_LOG_INFO,
                     "stall over: acknowledging %zu transactions", held);
        r->host->throttle(r->self, 0);
        /* revents 0: acknowledge now, whether or not the timer fired */
        on_timer(r, r->timer_fd, 0);
}

static int32_t on_commit(void *userdata, const struct walcast_signal *s)
{
        struct recorder *r = userdata;
        int e;

        r->commits++;
        r->line.len = 0;
        puts_(&r->line, "{\"kind\":\"commit\"");
        put_txn(&r->line, s->txn);
        if (s->txn && fail_commit(r, s->txn->xid)) {
                puts_(&r->line, ",\"failed\":true");
                (void)emit(r);
                return WALCAST_ERROR;
        }
        if (!r->pending || !s->txn) {
                uint64_t end = s->txn ? s->txn->end_lsn : 0;

                if (emit(r) != WALCAST_OK)
                        return WALCAST_ERROR;
                if (r->position && end)
                        r->host->position(r->self, end);
                return WALCAST_OK;
        }
        if (r->stall_at && !r->stall_done && r->commits >= r->stall_at) {
                e = start_stall(r);
                if (e < 0) {
                        r->host->log(r->self, WALCAST_LOG_ERR,
                                     "timerfd_settime: %s", strerror(-e));
                        r->line.len = 0;
                        return WALCAST_ERROR;
                }
        }

        puts_(&r->line, ",\"pending\":true");
        if (r->nacks == r->capacks) {
                size_t cap = r->capacks ? r->capacks * 2 : 64;
                uint64_t *p = realloc(r->acks, cap * sizeof(*p));

                if (!p) {
                        r->host->log(r->self, WALCAST_LOG_ERR, "out of memory");
                        r->line.len = 0;
                        return WALCAST_ERROR;
                }
                r->acks = p;
                r->capacks = cap;
        }
        e = arm_timer(r);
        if (e < 0) {
                r->host->log(r->self, WALCAST_LOG_ERR, "timerfd_settime: %s",
                             strerror(-e));
                r->line.len = 0;
                return WALCAST_ERROR;
        }
        if (emit(r) != WALCAST_OK)
                return WALCAST_ERROR;
        r->acks[r->nacks++] = s->txn->id;
        return WALCAST_PENDING;
}

/* The timer fired: acknowledge every commit answered pending so far
 * (unless a stall holds them). */
static void on_timer(void *userdata, int fd, uint32_t revents)
{
        struct recorder *r = userdata;
        uint64_t expirations;
        size_t n;

        if (read(fd, &expirations, sizeof(expirations)) < 0 &&
            errno == EAGAIN && revents != 0)
                return;
        r->timer_armed = false;
        if (r->stalled)
                return;
        /* ack may make walcastd call us again: take the list first */
        n = r->nacks;
        r->nacks = 0;
        for (size_t i = 0; i < n; i++) {
                int32_t st = r->host->ack(r->self, r->acks[i], WALCAST_OK);

                r->line.len = 0;
                putf(&r->line,
                     "{\"kind\":\"ack\",\"txn_id\":%" PRIu64 ",\"status\":%d",
                     r->acks[i], (int)st);
                (void)emit(r);
        }
}

/* ---- life cycle ---- */

/* The end_lsn of the last commit line of the file at path that did not
 * fail; 0 when there is none. */
static uint64_t last_position(const char *path)
{
        FILE *f = fopen(path, "r");
        char line[65536];
        uint64_t pos = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                const char *e = strstr(line, ",\"end_lsn\":\"");
                unsigned hi, lo;

                if (strncmp(line, "{\"kind\":\"commit\"", 16) != 0 || !e ||
                    strstr(line, "\"failed\":true") || !strchr(line, '\n'))
                        continue;
                if (sscanf(e + 12, "%X/%X", &hi, &lo) == 2)
                        pos = (uint64_t)hi << 32 | lo;
        }
        fclose(f);
        return pos;
}

static void on_spare(void *userdata, int fd, uint32_t revents)
{
        (void)userdata;
        (void)fd;
        (void)revents;
}

static void rec_close(void *state)
{
        struct recorder *r = state;

        if (!r)
                return;
        for (uint64_t i = 0; i < r->nspare; i++) {
                r->host->unwatch_fd(r->self, r->spare[i]);
                close(r->spare[i]);
        }
        free(r->spare);
        if (r->timer_watched)
                r->host->unwatch_fd(r->self, r->timer_fd);
        if (r->stall_watched)
                r->host->unwatch_fd(r->self, r->stall_fd);
        if (r->stall_fd >= 0)
                close(r->stall_fd);
        if (r->timer_fd >= 0)
                close(r->timer_fd);
        if (r->fd >= 0)
                close(r->fd);
        free(r->acks);
        free(r->failed_xids);
        free(r->line.p);
        free(r->path);
        free(r);
}

/* An optional positive integer option; 0 when absent.  -1 names a bad
 * value in errbuf. */
static int parse_count(const struct walcast_host *host,
                       struct walcast_plugin *self, const char *key,
                       uint64_t *ret, char *errbuf, size_t errlen)
{
        const char *v = host->config_get(self, key);
        char *end;

        *ret = 0;
        if (!v || !*v)
                return 0;
        errno = 0;
        *ret = strtoull(v, &end, 10);
        if (errno || *end || *ret == 0) {
                snprintf(errbuf, errlen,
                         "\"%s\" must be a positive integer, not \"%s\"", key,
                         v);
                return -1;
        }
        return 0;
}

/* Parses kinds ("insert,delete") into a mask; -1 names a bad entry. */
static int parse_kinds(const char *s, unsigned *mask, char *errbuf,
                       size_t errlen)
{
        *mask = 0;
        while (*s) {
                size_t n = strcspn(s, ",");
                size_t a = 0, z = n;
                int k;

                while (a < z && s[a] == ' ')
                        a++;
                while (z > a && s[z - 1] == ' ')
                        z--;
                for (k = 0; k < WALCAST_SIG__COUNT; k++)
                        if (strlen(kind_names[k]) == z - a &&
                            memcmp(kind_names[k], s + a, z - a) == 0)
                                break;
                if (k == WALCAST_SIG__COUNT) {
                        snprintf(errbuf, errlen,
                                 "unknown signal \"%.*s\" in \"kinds\"",
                                 (int)(z - a), s + a);
                        return -1;
                }
                *mask |= 1u << k;
                s += n;
                if (*s == ',')
                        s++;
        }
        return 0;
}

static int32_t rec_init(const struct walcast_host *host,
                        struct walcast_plugin *self, void **ret_state,
                        char *errbuf, size_t errlen)
{
        struct recorder *r;
        const char *out, *sender, *table, *v;
        unsigned mask = (1u << WALCAST_SIG__COUNT) - 1;
        uint64_t spare = 0;

        out = host->config_get(self, "out");
        if (!out || !*out) {
                snprintf(errbuf, errlen, "missing required config key \"out\"");
                return WALCAST_ERROR;
        }
        sender = host->config_get(self, "sender");
        if (sender && !*sender)
                sender = NULL;
        table = host->config_get(self, "table");
        if (table && !*table)
                table = NULL;
        v = host->config_get(self, "kinds");
        if (v && parse_kinds(v, &mask, errbuf, errlen) < 0)
                return WALCAST_ERROR;

        r = calloc(1, sizeof(*r));
        if (!r) {
                snprintf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        r->host = host;
        r->self = self;
        the_host = host;
        r->fd = -1;
        r->timer_fd = -1;
        r->stall_fd = -1;

        v = host->config_get(self, "fail_every");
        if (v && *v) {
                char *end;

                errno = 0;
                r->fail_every = strtoull(v, &end, 10);
                if (errno || *end || r->fail_every == 0) {
                        snprintf(errbuf, errlen,
                                 "\"fail_every\" must be a positive "
                                 "integer, not \"%s\"",
                                 v);
                        goto fail;
                }
        }
        if (parse_count(host, self, "fail_commit_every", &r->fail_commit_every,
                        errbuf, errlen) < 0 ||
            parse_count(host, self, "stall_at_commit", &r->stall_at, errbuf,
                        errlen) < 0 ||
            parse_count(host, self, "stall_seconds", &r->stall_seconds, errbuf,
                        errlen) < 0 ||
            parse_count(host, self, "spare_fds", &spare, errbuf, errlen) < 0)
                goto fail;
        v = host->config_get(self, "pending");
        if (v && strcmp(v, "true") == 0) {
                r->pending = true;
        } else if (v && *v && strcmp(v, "false") != 0) {
                snprintf(errbuf, errlen,
                         "\"pending\" must be true or false, not \"%s\"", v);
                goto fail;
        }

        v = host->config_get(self, "position");
        r->position = v && strcmp(v, "true") == 0;
        if (r->position &&
            (r->pending || host->abi_minor < 4 ||
             !WALCAST_HAS_FIELD(host, struct walcast_host, position))) {
                snprintf(errbuf, errlen,
                         "\"position\" needs \"pending\": false and a host "
                         "of ABI 1.4 or later");
                goto fail;
        }
        if (r->stall_at && (!r->pending || !r->stall_seconds)) {
                snprintf(errbuf, errlen,
                         "\"stall_at_commit\" needs \"pending\": true and "
                         "\"stall_seconds\"");
                goto fail;
        }
        r->path = strdup(out);
        if (!r->path) {
                snprintf(errbuf, errlen, "out of memory");
                goto fail;
        }
        r->fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->fd < 0) {
                snprintf(errbuf, errlen, "open %s: %s", out, strerror(errno));
                goto fail;
        }
        if (spare) {
                r->spare = calloc(spare, sizeof(*r->spare));
                if (!r->spare) {
                        snprintf(errbuf, errlen, "out of memory");
                        goto fail;
                }
        }
        for (; r->nspare < spare; r->nspare++) {
                /* an eventfd whose counter stays 0 is never readable */
                int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

                if (fd < 0) {
                        snprintf(errbuf, errlen, "eventfd: %s",
                                 strerror(errno));
                        goto fail;
                }
                if (host->watch_fd(self, fd, POLLIN, on_spare, r) !=
                    WALCAST_OK) {
                        close(fd);
                        snprintf(errbuf, errlen, "watch_fd failed");
                        goto fail;
                }
                r->spare[r->nspare] = fd;
        }
        if (r->pending) {
                r->timer_fd =
                    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                if (r->timer_fd < 0) {
                        snprintf(errbuf, errlen, "timerfd_create: %s",
                                 strerror(errno));
                        goto fail;
                }
                if (host->watch_fd(self, r->timer_fd, POLLIN, on_timer, r) !=
                    WALCAST_OK) {
                        snprintf(errbuf, errlen, "watch_fd failed");
                        goto fail;
                }
                r->timer_watched = true;
        }
        if (r->stall_at) {
                r->stall_fd =
                    timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                if (r->stall_fd < 0) {
                        snprintf(errbuf, errlen, "timerfd_create: %s",
                                 strerror(errno));
                        goto fail;
                }
                if (host->watch_fd(self, r->stall_fd, POLLIN, on_stall_end,
                                   r) != WALCAST_OK) {
                        snprintf(errbuf, errlen, "watch_fd failed");
                        goto fail;
                }
                r->stall_watched = true;
        }

        for (int k = 0; k < WALCAST_SIG__COUNT; k++) {
                walcast_handler_fn fn = on_data;

                if (!(mask & (1u << k)))
                        continue;
                if (k == WALCAST_SIG_BEGIN)
                        fn = on_begin;
                else if (k == WALCAST_SIG_COMMIT)
                        fn = on_commit;
                if (host->connect(self, (uint32_t)k, sender, table, fn, r) !=
                    WALCAST_OK) {
                        snprintf(errbuf, errlen,
                                 "connect %s (sender %s, table %s) failed",
                                 kind_names[k], sender ? sender : "*",
                                 table ? table : "*");
                        goto fail;
                }
        }
        if (r->position) {
                uint64_t pos = last_position(out);

                host->position(self, pos);
                host->log(self, WALCAST_LOG_INFO,
                          "position %" PRIX32 "/%" PRIX32 " from %s",
                          (uint32_t)(pos >> 32), (uint32_t)pos, out);
        }
        host->log(self, WALCAST_LOG_INFO,
                  "recording to %s (sender %s, table %s, fail_every %" PRIu64
                  ", pending %s)",
                  out, sender ? sender : "*", table ? table : "*",
                  r->fail_every, r->pending ? "true" : "false");
        *ret_state = r;
        return WALCAST_OK;
fail:
        rec_close(r);
        return WALCAST_ERROR;
}

WALCAST_PLUGIN_DEFINE("recorder", "1.0", rec_init, rec_close, NULL);
