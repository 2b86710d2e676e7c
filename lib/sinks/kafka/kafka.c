/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink on the plugin interface.
 *
 * Every data signal becomes one message (two for a delete with a
 * tombstone, three for an update that changes the key) produced with
 * rd_kafka_producev.  Each message carries its transaction's record as
 * opaque; the delivery report counts it down, and once the commit was
 * seen and nothing of the transaction is outstanding, the transaction is
 * acknowledged to the host.  Delivery reports, logs and errors all arrive
 * on librdkafka's main queue, whose event descriptor the host watches, so
 * every callback here runs on walcastd's thread.
 *
 * When the producer queue is full the message is kept in a FIFO of held
 * messages (with everything after it, to keep the order), the host is told
 * to stop reading the stream, and the FIFO is retried whenever delivery
 * reports have freed room.
 *
 * A change is keyed by its primary key.  Where the WAL does not hold it
 * (a delete under REPLICA IDENTITY USING INDEX on an index without it),
 * the change is keyed by what the WAL holds, the identity's columns, with
 * a walcast.key header saying so: a change is never refused for its key,
 * which would replay it forever and stall every sink.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "core/core.h"
#include "core/filter.h"
#include "core/pattern.h"
#include "core/tablemap.h"
#include "sinks/kafka/topic.h"
#include "sinks/kafka/kafka.h"

/* Per-table entries (filter decision, topic handle); when full the map
 * empties itself and entries are made again. */
#define TABLES_MAX 65536u
/* How long close waits for outstanding messages.  What does not make it
 * was never acknowledged, so it is sent again at the next start. */
#define CLOSE_FLUSH_MS 3000
/* Room for a key in a log line. */
#define LOG_KEY_MAX 200

struct txn_rec {
        uint64_t id;
        uint64_t outstanding; /* messages not yet reported delivered */
        bool committed;       /* commit returned WALCAST_PENDING */
        bool done;            /* acknowledged, or abandoned: no ack any more */
        struct txn_rec *prev, *next;
};

/* A message the producer queue had no room for, owned until produced. */
struct held {
        struct held *next;
        char *topic;
        char *key; /* NULL: null key */
        size_t key_len;
        char *value; /* NULL: tombstone */
        size_t value_len;
        rd_kafka_headers_t *headers;
        struct txn_rec *txn;
};

struct table_entry {
        bool pass; /* this sink's filter lets the table through */
        bool bad;  /* its topic name is illegal (already reported) */
        /* the WAL lacked the primary key of an old row (logged once) */
        bool warned_key;
        rd_kafka_topic_t *rkt;
        /* the envelope's source up to "lsn": (wc_kafka_format_source) */
        char *source;
        size_t source_len;
        /* the key, for the last-table shortcut: "schema\0table" */
        char *name;
        size_t slen, tlen;
};

/* What every message of one transaction shares, formatted at its first
 * message: the envelope's txId and source.ts_ms, the header values. */
struct txn_text {
        bool valid;
        uint64_t id;
        uint32_t xid;
        uint64_t commit_lsn;
        int64_t commit_time_us;
        struct wc_buf json; /* wc_kafka_format_txn */
        char commit_lsn_txt[24], xid_txt[12];
        size_t commit_lsn_len, xid_len;
};

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;

        /* config, copied: the host's strings are only read during init */
        char *topic_tmpl;
        char *prefix;
        char *database;
        bool tombstones;
        struct wc_filter_config filter; /* what of the stream it publishes */

        rd_kafka_conf_t *conf; /* a copy, to start a producer again */
        rd_kafka_t *rk;
        rd_kafka_queue_t *mainq;
        int pipe[2];

        struct wc_tablemap *tables;
        /* the entry of the last change's table: consecutive changes are
         * mostly of one table, and a compare is cheaper than a lookup.
         * Reset whenever the map may drop entries. */
        struct table_entry *last;
        struct txn_text txt;
        /* now_ms() of the last message and its text: a millisecond holds
         * dozens of changes */
        int64_t ts_ms;
        char ts_txt[WC_UINT_MAX_DIGITS];
        size_t ts_len;
        struct txn_rec *txns; /* every record not yet freed */
        struct txn_rec *cur;  /* the transaction being streamed */
        uint64_t in_producer; /* produced, delivery not reported yet */

        struct held *held, **held_tail;
        bool throttled;
        bool fatal; /* the producer hit a fatal error: start another */
        bool closing;
        bool all_down; /* every broker was down: say when one is back */
        /* the walcast.key header of the message being produced: NULL for
         * the primary key (no header), "identity" or "none" */
        const char *key_header;

        /* the last failure reported, so that a replay failing the same way
         * is not logged as a new error each time */
        rd_kafka_resp_err_t last_err;
        char last_err_topic[WC_TOPIC_MAX + 1];

        struct wc_buf key, key2, value, topic;
};

/* ---- small helpers ---- */

/* Kafka sinks of this process whose brokers are all down; only walcastd's
 * thread, which serves librdkafka's callbacks, touches it. */
static int sinks_down;

int wc_kafka_sinks_down(void)
{
        return sinks_down;
}

static void set_all_down(struct state *st, bool down)
{
        if (down != st->all_down)
                sinks_down += down ? 1 : -1;
        st->all_down = down;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* s for a log line: control characters escaped, cut at max bytes. */
static const char *printable(char *buf, size_t size, const char *s, size_t len,
                             size_t max)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        for (size_t i = 0; i < len && i < max && o + 5 < size; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f) {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 0xf];
                } else {
                        buf[o++] = (char)c;
                }
        }
        if (len > max && o + 4 < size) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

/* ---- transactions ---- */

static void txn_free(struct state *st, struct txn_rec *t)
{
        if (t->prev)
                t->prev->next = t->next;
        else
                st->txns = t->next;
        if (t->next)
                t->next->prev = t->prev;
        free(t);
}

/* Acknowledges t when it is complete, and frees it when nothing refers to
 * it any more. */
static void txn_settle(struct state *st, struct txn_rec *t)
{
        if (t->outstanding > 0)
                return;
        if (t->committed && !t->done) {
                t->done = true;
                if (!st->closing)
                        st->host->ack(st->self, t->id, WALCAST_OK);
                /* delivered again: the next failure is news */
                st->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        if (t->done && t != st->cur)
                txn_free(st, t);
}

/* The stream went back to the last confirmed position before t's commit
 * (a replay): its id is unknown to the host now, and it will be sent
 * again under a new one. */
static void txn_abandon(struct state *st, struct txn_rec *t)
{
        t->done = true;
        if (st->cur == t)
                st->cur = NULL;
        txn_settle(st, t);
}

/* The record of txn, made at its first message. */
static struct txn_rec *txn_get(struct state *st, const struct walcast_txn *txn)
{
        struct txn_rec *t;

        if (st->cur && st->cur->id == txn->id)
                return st->cur;
        if (st->cur)
                txn_abandon(st, st->cur);
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->id = txn->id;
        t->next = st->txns;
        if (st->txns)
                st->txns->prev = t;
        st->txns = t;
        st->cur = t;
        return t;
}

/* A message of t could not be delivered: the host replays from the last
 * confirmed position, so t is acknowledged as failed, once. */
static void txn_fail(struct state *st, struct txn_rec *t)
{
        if (t->done)
                return;
        t->done = true;
        if (!st->closing)
                st->host->ack(st->self, t->id, WALCAST_ERROR);
}

static void report_failure(struct state *st, rd_kafka_resp_err_t err,
                           const char *topic, const void *key, size_t key_len)
{
        char k[LOG_KEY_MAX + 8], tp[WC_TOPIC_MAX * 4 + 8];
        /* the broker's answer first, librdkafka's cached one on replays:
         * one failure */
        rd_kafka_resp_err_t kind = err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                                       ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                                       : err;
        /* the transactions after the first failure, and replays that fail
         * the same way, add nothing but lines; a purge is what follows
         * a fatal error, which is logged itself */
        bool again =
            (kind == st->last_err && strcmp(topic, st->last_err_topic) == 0) ||
            err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
            err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;

        st->host->log(
            st->self, again ? WALCAST_LOG_DEBUG : WALCAST_LOG_ERR,
            "could not deliver to topic \"%s\" the message with "
            "key %s: %s%s; not confirming past it, replaying",
            printable(tp, sizeof(tp), topic, strlen(topic), WC_TOPIC_MAX),
            key ? printable(k, sizeof(k), key, key_len, LOG_KEY_MAX) : "null",
            rd_kafka_err2str(err), again ? " (again)" : "");
        st->last_err = kind;
        snprintf(st->last_err_topic, sizeof(st->last_err_topic), "%s", topic);
}

/* ---- producing ---- */

static void held_free(struct held *h)
{
        if (!h)
                return;
        if (h->headers)
                rd_kafka_headers_destroy(h->headers);
        free(h->topic);
        free(h->key);
        free(h->value);
        free(h);
}

/*
 * The text of what s's transaction shares, made at its first message.
 * The host's ids are not reused for other transactions, but a replay
 * makes a new id for the same one: the fields are compared too.
 */
static const struct txn_text *txn_text(struct state *st,
                                       const struct walcast_txn *t)
{
        struct txn_text *x = &st->txt;

        if (x->valid && x->id == t->id && x->xid == t->xid &&
            x->commit_lsn == t->commit_lsn &&
            x->commit_time_us == t->commit_time_us)
                return x;
        x->valid = false;
        wc_buf_reset(&x->json);
        if (wc_kafka_format_txn(&x->json, t) < 0)
                return NULL;
        /* decimal, so that a consumer compares positions as numbers */
        x->commit_lsn_len =
            (size_t)(wc_put_uint(x->commit_lsn_txt, t->commit_lsn) -
                     x->commit_lsn_txt);
        x->xid_len = (size_t)(wc_put_uint(x->xid_txt, t->xid) - x->xid_txt);
        x->id = t->id;
        x->xid = t->xid;
        x->commit_lsn = t->commit_lsn;
        x->commit_time_us = t->commit_time_us;
        x->valid = true;
        return x;
}

static rd_kafka_headers_t *make_headers(const struct txn_text *x,
                                        const struct wc_str *lsn)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(3);

        if (!hdrs)
                return NULL;
        rd_kafka_header_add(hdrs, "walcast.lsn", 11, lsn->ptr,
                            (ssize_t)lsn->len);
        rd_kafka_header_add(hdrs, "walcast.commit_lsn", 18, x->commit_lsn_txt,
                            (ssize_t)x->commit_lsn_len);
        rd_kafka_header_add(hdrs, "walcast.xid", 11, x->xid_txt,
                            (ssize_t)x->xid_len);
        return hdrs;
}

static void set_throttle(struct state *st, bool on)
{
        if (st->throttled == on)
                return;
        st->throttled = on;
        st->host->throttle(st->self, on ? 1 : 0);
        /* debug: with Kafka slower than the database this flips often */
        st->host->log(st->self, WALCAST_LOG_DEBUG,
                      on ? "the producer queue is full: reading paused"
                         : "the producer queue has room: reading resumed");
}

/* Keeps a message the queue had no room for.  0 or -ENOMEM. */
static int hold(struct state *st, const char *topic, const void *key,
                size_t key_len, const void *value, size_t value_len,
                rd_kafka_headers_t *headers, struct txn_rec *t)
{
        struct held *h = calloc(1, sizeof(*h));

        if (!h)
                return -ENOMEM;
        h->topic = strdup(topic);
        h->key = key ? malloc(key_len ? key_len : 1) : NULL;
        h->value = value ? malloc(value_len ? value_len : 1) : NULL;
        if (!h->topic || (key && !h->key) || (value && !h->value)) {
                held_free(h);
                return -ENOMEM;
        }
        if (key)
                memcpy(h->key, key, key_len);
        if (value)
                memcpy(h->value, value, value_len);
        h->key_len = key_len;
        h->value_len = value_len;
        h->headers = headers; /* takes ownership */
        h->txn = t;
        *st->held_tail = h;
        st->held_tail = &h->next;
        set_throttle(st, true);
        return 0;
}

/*
 * Produces what is held, in order, until the queue is full again.  A
 * message the producer refuses for good fails its transaction.
 */
static void held_flush(struct state *st)
{
        while (st->held && !st->fatal) {
                struct held *h = st->held;
                rd_kafka_resp_err_t err;

                /* F_FREE: on success librdkafka owns the value and frees
                 * it; on failure it stays ours */
                err = rd_kafka_producev(
                    st->rk, RD_KAFKA_V_TOPIC(h->topic),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_KEY(h->key, h->key_len),
                    RD_KAFKA_V_VALUE(h->value, h->value_len),
                    RD_KAFKA_V_HEADERS(h->headers), RD_KAFKA_V_OPAQUE(h->txn),
                    RD_KAFKA_V_END);
                if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                st->held = h->next;
                if (!st->held)
                        st->held_tail = &st->held;
                if (err) {
                        report_failure(st, err, h->topic, h->key, h->key_len);
                        if (err == RD_KAFKA_RESP_ERR__FATAL)
                                st->fatal = true;
                        txn_fail(st, h->txn);
                        h->txn->outstanding--;
                        txn_settle(st, h->txn);
                } else {
                        st->in_producer++;
                        h->value = NULL;
                        h->headers = NULL;
                }
                held_free(h);
        }
        if (!st->held)
                set_throttle(st, false);
}

/*
 * One message for t.  key and value may be NULL (null key, tombstone).
 * 0, or -EIO when the producer refused it for good (reported), -ENOMEM.
 */
static int produce(struct state *st, const struct table_entry *e,
                   struct txn_rec *t, const struct txn_text *x,
                   const struct wc_str *lsn, const struct wc_buf *key,
                   const struct wc_buf *value)
{
        rd_kafka_headers_t *hdrs = make_headers(x, lsn);
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
        const char *topic = rd_kafka_topic_name(e->rkt);
        char why[256];

        if (!hdrs)
                return -ENOMEM;
        if (st->key_header)
                rd_kafka_header_add(hdrs, "walcast.key", 11, st->key_header,
                                    -1);
        /* nothing may overtake what is held */
        if (!st->held) {
                /* produceva: no varargs to walk for every message */
                rd_kafka_vu_t vu[] = {
                    {.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = e->rkt},
                    {.vtype = RD_KAFKA_VTYPE_MSGFLAGS,
                     .u.i = RD_KAFKA_MSG_F_COPY},
                    {.vtype = RD_KAFKA_VTYPE_KEY,
                     .u.mem = {key ? key->data : NULL, key ? key->len : 0}},
                    {.vtype = RD_KAFKA_VTYPE_VALUE,
                     .u.mem = {value ? value->data : NULL,
                               value ? value->len : 0}},
                    {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hdrs},
                    {.vtype = RD_KAFKA_VTYPE_OPAQUE, .u.ptr = t},
                };
                rd_kafka_error_t *error =
                    rd_kafka_produceva(st->rk, vu, sizeof(vu) / sizeof(vu[0]));

                err = RD_KAFKA_RESP_ERR_NO_ERROR;
                if (error) {
                        err = rd_kafka_error_code(error);
                        rd_kafka_error_destroy(error);
                }
                if (!err) {
                        t->outstanding++;
                        st->in_producer++;
                        return 0;
                }
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                if (hold(st, topic, key ? key->data : NULL, key ? key->len : 0,
                         value ? value->data : NULL, value ? value->len : 0,
                         hdrs, t) < 0) {
                        rd_kafka_headers_destroy(hdrs);
                        return -ENOMEM;
                }
                t->outstanding++;
                return 0;
        }
        rd_kafka_headers_destroy(hdrs);
        /* a producer in a fatal state refuses with the error that made it
         * fatal (an idempotent producer refused its id: "Cluster
         * authorization failed"), possibly before the error event is
         * served: the next change starts a new one either way */
        if (err == RD_KAFKA_RESP_ERR__FATAL ||
            rd_kafka_fatal_error(st->rk, why, sizeof(why)) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                st->fatal = true;
        report_failure(st, err, topic, key ? key->data : NULL,
                       key ? key->len : 0);
        return -EIO;
}

static int producer_restart(struct state *st);

/* ---- librdkafka's callbacks, all served on walcastd's thread ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        struct state *st = opaque;
        struct txn_rec *t = m->_private;

        (void)rk;
        st->in_producer--;
        if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__FATAL)
                        st->fatal = true;
                if (!t->done && !st->closing)
                        report_failure(st, m->err, rd_kafka_topic_name(m->rkt),
                                       m->key, m->key_len);
                txn_fail(st, t);
        } else if (st->all_down) {
                set_all_down(st, false);
                st->host->log(st->self, WALCAST_LOG_NOTICE,
                              "Kafka is reachable again: deliveries go on");
        }
        t->outstanding--;
        txn_settle(st, t);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        struct state *st = rd_kafka_opaque(rk);
        int32_t lvl;

        /* librdkafka says "error" for what it retries (a broker that is
         * down): failures that are ours are logged by this file */
        if (level <= 4)
                lvl = WALCAST_LOG_WARNING;
        else if (level == 5)
                lvl = WALCAST_LOG_NOTICE;
        else if (level == 6)
                lvl = WALCAST_LOG_INFO;
        else
                lvl = WALCAST_LOG_DEBUG;
        st->host->log(st->self, lvl, "librdkafka %s: %s", fac, buf);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        struct state *st = opaque;
        char why[512];

        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                rd_kafka_fatal_error(rk, why, sizeof(why));
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "the producer hit a fatal error: %s; starting "
                              "a new one and replaying",
                              why);
                st->fatal = true;
                return;
        }
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                char servers[1024];
                size_t n = sizeof(servers);

                if (rd_kafka_conf_get(st->conf, "bootstrap.servers", servers,
                                      &n) != RD_KAFKA_CONF_OK)
                        snprintf(servers, sizeof(servers), "(unknown)");
                set_all_down(st, true);
                st->host->log(st->self, WALCAST_LOG_WARNING,
                              "%s (bootstrap.servers %s): librdkafka keeps "
                              "trying; changes wait for delivery and are "
                              "confirmed to PostgreSQL only once delivered",
                              reason, servers);
                return;
        }
        /* the log callback said it already, at its level */
        st->host->log(st->self, WALCAST_LOG_DEBUG, "%s", reason);
}

/* Serves the main queue: delivery reports, logs, errors. */
static void serve(struct state *st)
{
        /* to the end: the wake-up is only written again for events that
         * arrive after this */
        while (rd_kafka_poll(st->rk, 0) > 0)
                ;
}

static void on_events(void *userdata, int fd, uint32_t revents)
{
        struct state *st = userdata;
        char buf[64];

        (void)revents;
        /* empty the pipe first: an event after the poll below writes a
         * new wake-up */
        while (read(fd, buf, sizeof(buf)) > 0)
                ;
        serve(st);
        if (st->fatal)
                (void)producer_restart(st); /* or at the next event */
        held_flush(st);
}

/* ---- the producer ---- */

static void producer_stop(struct state *st)
{
        st->last = NULL;
        if (st->tables)
                wc_tablemap_clear(st->tables); /* topic handles first */
        if (st->mainq) {
                rd_kafka_queue_io_event_enable(st->mainq, -1, NULL, 0);
                rd_kafka_queue_destroy(st->mainq);
                st->mainq = NULL;
        }
        if (st->rk) {
                rd_kafka_destroy(st->rk);
                st->rk = NULL;
        }
}

/* A producer from the saved configuration, its events on the pipe. */
static int producer_start(struct state *st, char *errbuf, size_t errlen)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_dup(st->conf);
        char err[512];

        if (!conf) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        /* takes ownership of conf on success */
        st->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!st->rk) {
                rd_kafka_conf_destroy(conf);
                wc_errorf(errbuf, errlen, "could not create the producer: %s",
                          err);
                return -EINVAL;
        }
        /* logs through the main queue too, so that they reach the host
         * on its thread */
        rd_kafka_set_log_queue(st->rk, NULL);
        st->mainq = rd_kafka_queue_get_main(st->rk);
        rd_kafka_queue_io_event_enable(st->mainq, st->pipe[1], "1", 1);
        /* librdkafka writes a wake-up only when the queue goes from empty
         * to not empty: events queued before this line (log lines, with
         * `debug` set) would hold it non-empty and silent for good */
        if (write(st->pipe[1], "1", 1) < 0 && errno != EAGAIN)
                return -errno;
        st->fatal = false;
        return 0;
}

/*
 * After a fatal error the producer refuses everything: what it still holds
 * fails (its transactions are replayed), and a new one takes over.
 * 0, or -EAGAIN while the old one still has reports to give.
 */
static int producer_restart(struct state *st)
{
        char err[512];

        rd_kafka_purge(st->rk, RD_KAFKA_PURGE_F_QUEUE |
                                   RD_KAFKA_PURGE_F_INFLIGHT |
                                   RD_KAFKA_PURGE_F_NON_BLOCKING);
        serve(st);
        if (st->in_producer > 0)
                return -EAGAIN;
        producer_stop(st);
        if (producer_start(st, err, sizeof(err)) < 0) {
                st->host->log(st->self, WALCAST_LOG_ERR, "%s", err);
                st->fatal = true;
                return -EAGAIN;
        }
        st->host->log(st->self, WALCAST_LOG_NOTICE, "started a new producer");
        held_flush(st);
        return 0;
}

/* ---- tables ---- */

static void table_entry_free(void *p)
{
        struct table_entry *e = p;

        if (!e)
                return;
        if (e->rkt)
                rd_kafka_topic_destroy(e->rkt);
        free(e->source);
        free(e->name);
        free(e);
}

/* The entry of s's table, made at first sight; NULL when out of memory or
 * the topic handle could not be made (logged). */
static struct table_entry *table_get(struct state *st,
                                     const struct walcast_signal *s)
{
        size_t slen = strlen(s->schema), tlen = strlen(s->table);
        struct table_entry *e = st->last;
        char tp[WC_TOPIC_MAX * 4 + 8], sq[256], tq[256];

        if (e && e->slen == slen && e->tlen == tlen &&
            memcmp(e->name, s->schema, slen) == 0 &&
            memcmp(e->name + slen + 1, s->table, tlen) == 0)
                return e;
        e = wc_tablemap_get(st->tables, s->schema, slen, s->table, tlen);
        if (e) {
                st->last = e;
                return e;
        }
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->name = malloc(slen + tlen + 2);
        if (!e->name) {
                free(e);
                return NULL;
        }
        memcpy(e->name, s->schema, slen + 1);
        memcpy(e->name + slen + 1, s->table, tlen + 1);
        e->slen = slen;
        e->tlen = tlen;
        e->pass = wc_filter_table_pass(&st->filter, s->schema, s->table);
        if (e->pass) {
                wc_buf_reset(&st->topic);
                /* wc_buf keeps its text NUL-terminated */
                if (wc_kafka_format_topic(&st->topic, st->topic_tmpl,
                                          st->prefix, st->database, s) < 0 ||
                    wc_buf_append(&st->topic, "", 0) < 0) {
                        table_entry_free(e);
                        return NULL;
                }
                if (!wc_topic_name_valid(st->topic.data, st->topic.len)) {
                        /* never a mangled name: it would merge or scatter
                         * tables without anyone noticing */
                        e->bad = true;
                        st->host->log(
                            st->self, WALCAST_LOG_ERR,
                            "table \"%s\".\"%s\" makes the topic name \"%s\", "
                            "which is not a legal Kafka topic name (1 to %d "
                            "of letters, digits, \".\", \"_\" and \"-\"): "
                            "not confirming past its changes; rename the "
                            "schema or table, change the topic template, or "
                            "leave the table out with this sink's filter",
                            printable(sq, sizeof(sq), s->schema, slen, 63),
                            printable(tq, sizeof(tq), s->table, tlen, 63),
                            printable(tp, sizeof(tp), st->topic.data,
                                      st->topic.len, WC_TOPIC_MAX + 16),
                            WC_TOPIC_MAX);
                } else {
                        e->rkt =
                            rd_kafka_topic_new(st->rk, st->topic.data, NULL);
                        if (!e->rkt) {
                                st->host->log(
                                    st->self, WALCAST_LOG_ERR,
                                    "could not use topic \"%s\": %s",
                                    st->topic.data,
                                    rd_kafka_err2str(rd_kafka_last_error()));
                                table_entry_free(e);
                                return NULL;
                        }
                }
                if (!e->bad) {
                        struct wc_buf src;

                        wc_buf_init(&src);
                        if (wc_kafka_format_source(&src, st->database,
                                                   s->schema, s->table) < 0) {
                                table_entry_free(e);
                                return NULL;
                        }
                        e->source = src.data; /* takes ownership */
                        e->source_len = src.len;
                }
        }
        /* a full map empties itself: no entry may be remembered */
        st->last = NULL;
        if (wc_tablemap_put(st->tables, s->schema, slen, s->table, tlen, e) < 0)
                return NULL; /* e is freed */
        st->last = e;
        return e;
}

/* ---- handlers ---- */

/* The table's entry when a message is to be sent, NULL otherwise (*ret
 * tells whether that is a failure). */
static struct table_entry *
begin_change(struct state *st, const struct walcast_signal *s, int32_t *ret)
{
        struct table_entry *e;

        *ret = WALCAST_OK;
        if (!s->txn || !s->schema || !s->table)
                return NULL;
        if (st->fatal && producer_restart(st) < 0) {
                *ret = WALCAST_ERROR;
                return NULL;
        }
        e = table_get(st, s);
        if (!e || e->bad)
                *ret = WALCAST_ERROR;
        if (!e || e->bad || !e->pass)
                return NULL;
        return e;
}

/*
 * The WAL does not hold the primary key of s's old row: under REPLICA
 * IDENTITY USING INDEX on an index without it, the identity is the
 * index's columns.  Said once per table: what the sink does instead
 * (docs/kafka.md, "Replica identity").
 */
static void warn_key(struct state *st, struct table_entry *e,
                     const struct walcast_signal *s)
{
        char sq[256], tq[256];

        if (e->warned_key)
                return;
        e->warned_key = true;
        st->host->log(
            st->self, WALCAST_LOG_WARNING,
            "table \"%s\".\"%s\": the WAL does not hold the primary key of "
            "its old rows (REPLICA IDENTITY USING INDEX on an index without "
            "it?): its deletes are keyed by the identity's columns, with "
            "header walcast.key: identity and no tombstone, and an update "
            "that changes the primary key cannot remove the old key from a "
            "compacted topic; run ALTER TABLE ... REPLICA IDENTITY DEFAULT "
            "or FULL for compaction",
            printable(sq, sizeof(sq), s->schema, strlen(s->schema), 63),
            printable(tq, sizeof(tq), s->table, strlen(s->table), 63));
}

/*
 * The key of a change whose key_row lacks a primary-key column: what the
 * WAL holds, never a stall.  The identity's columns as a JSON object
 * (header walcast.key: identity), or a null key when there is none
 * (walcast.key: none).
 */
static int fallback_key(struct state *st, struct table_entry *e,
                        const struct walcast_signal *s)
{
        warn_key(st, e, s);
        wc_buf_reset(&st->key);
        if (s->identity.count == 0) {
                st->key_header = "none";
                return 0;
        }
        st->key_header = "identity";
        return wc_kafka_format_row(&st->key, &s->identity);
}

/* The envelope's ts_ms: the time now, its text made again only when the
 * millisecond changed. */
static struct wc_str ts_text(struct state *st)
{
        int64_t now = now_ms();

        if (now != st->ts_ms || st->ts_len == 0) {
                st->ts_ms = now;
                st->ts_len =
                    (size_t)(wc_kafka_put_int(st->ts_txt, now) - st->ts_txt);
        }
        return (struct wc_str){st->ts_txt, st->ts_len};
}

/*
 * Formats and produces one message: key from row (a table without
 * primary key gets a null key), value the envelope (none: a tombstone).
 */
static int32_t send_change(struct state *st, struct table_entry *e,
                           const struct walcast_signal *s, char op,
                           const struct walcast_columns *key_row,
                           const struct walcast_columns *before,
                           const struct walcast_columns *after, bool tombstone)
{
        struct txn_rec *t = txn_get(st, s->txn);
        const struct txn_text *x = txn_text(st, s->txn);
        const struct wc_buf *key = NULL;
        char lsn[WC_UINT_MAX_DIGITS];
        struct wc_kafka_parts parts;
        int r;

        if (!t || !x)
                return WALCAST_ERROR;
        /* decimal, in the envelope and in a header */
        parts.lsn =
            (struct wc_str){lsn, (size_t)(wc_put_uint(lsn, s->lsn) - lsn)};
        wc_buf_reset(&st->key);
        st->key_header = NULL;
        if (key_row && s->pk.count > 0) {
                r = wc_kafka_format_key(&st->key, &s->pk, key_row);
                if (r == -ENOENT) {
                        /* no message had this key: nothing to tombstone */
                        r = fallback_key(st, e, s);
                        tombstone = false;
                }
                if (r < 0)
                        return WALCAST_ERROR;
                if (!st->key_header || s->identity.count > 0)
                        key = &st->key;
        }
        wc_buf_reset(&st->value);
        parts.source = (struct wc_str){e->source, e->source_len};
        parts.txn = (struct wc_str){x->json.data, x->json.len};
        parts.ts_ms = ts_text(st);
        if (wc_kafka_format_envelope_parts(&st->value, &parts, s, op, before,
                                           after) < 0)
                return WALCAST_ERROR;
        if (produce(st, e, t, x, &parts.lsn, key, &st->value) < 0)
                return WALCAST_ERROR;
        if (tombstone && produce(st, e, t, x, &parts.lsn, key, NULL) < 0)
                return WALCAST_ERROR;
        return WALCAST_OK;
}

static int32_t on_insert(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);

        if (!e)
                return ret;
        return send_change(st, e, s, 'c', &s->columns, NULL, &s->columns,
                           false);
}

/* A snapshot's row: an insert's key and shape, op "r". */
static int32_t on_read(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);

        if (!e)
                return ret;
        return send_change(st, e, s, 'r', &s->columns, NULL, &s->columns,
                           false);
}

static bool same(const struct wc_buf *a, const struct wc_buf *b)
{
        return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static int32_t on_update(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        const struct walcast_columns *before =
            s->identity.count ? &s->identity : NULL;
        const struct walcast_columns *key_row = &s->columns;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);
        int r;

        if (!e)
                return ret;
        /* the old row is there when the key changed, and always under
         * REPLICA IDENTITY FULL */
        if (s->pk.count > 0 && before) {
                wc_buf_reset(&st->key);
                wc_buf_reset(&st->key2);
                r = wc_kafka_format_key(&st->key, &s->pk, &s->columns);
                if (r == -ENOENT) {
                        /* the key is unchanged and TOASTed: the old row
                         * has it */
                        key_row = before;
                } else if (r < 0) {
                        return WALCAST_ERROR;
                } else if ((r = wc_kafka_format_key(&st->key2, &s->pk,
                                                    before)) == -ENOENT) {
                        /* the old key is not in the WAL: if it changed, it
                         * stays in a compacted topic */
                        warn_key(st, e, s);
                } else if (r == 0 && !same(&st->key, &st->key2)) {
                        /* a new key is a new row to a keyed consumer: the
                         * old key is deleted (and compacted away), the new
                         * one created, as Debezium does */
                        ret = send_change(st, e, s, 'd', before, before, NULL,
                                          st->tombstones);
                        if (ret != WALCAST_OK)
                                return ret;
                        return send_change(st, e, s, 'c', &s->columns, NULL,
                                           &s->columns, false);
                }
        }
        return send_change(st, e, s, 'u', key_row, before, &s->columns, false);
}

static int32_t on_delete(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);

        if (!e)
                return ret;
        return send_change(st, e, s, 'd', &s->identity, &s->identity, NULL,
                           st->tombstones);
}

static int32_t on_truncate(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);

        if (!e)
                return ret;
        return send_change(st, e, s, 't', NULL, NULL, NULL, false);
}

static int32_t on_begin(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;

        /* a transaction still open here lost its commit to a replay */
        if (st->cur && (!s->txn || st->cur->id != s->txn->id))
                txn_abandon(st, st->cur);
        return WALCAST_OK;
}

static int32_t on_commit(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        struct txn_rec *t = st->cur;

        if (!t || !s->txn || t->id != s->txn->id) {
                if (t)
                        txn_abandon(st, t);
                /* nothing of it went to Kafka: done, whatever came
                 * before (the host's checkpoint keeps the order) */
                return WALCAST_OK;
        }
        st->cur = NULL;
        if (t->done) {
                /* failed and acknowledged as such already */
                txn_settle(st, t);
                return WALCAST_PENDING;
        }
        if (t->outstanding == 0) {
                t->done = true;
                txn_settle(st, t);
                return WALCAST_OK;
        }
        t->committed = true;
        return WALCAST_PENDING;
}

/* ---- setup ---- */

/* Reads "KEY.0", "KEY.1", ... into l.  0 or -ENOMEM. */
static int read_patterns(const struct walcast_host *host,
                         struct walcast_plugin *self, const char *key,
                         struct wc_pattern_list *l)
{
        char k[128];
        size_t n = 0;

        for (;;) {
                snprintf(k, sizeof(k), "%s.%zu", key, n);
                if (!host->config_get(self, k))
                        break;
                n++;
        }
        if (n == 0)
                return 0;
        l->items = calloc(n, sizeof(*l->items));
        if (!l->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                snprintf(k, sizeof(k), "%s.%zu", key, i);
                l->items[i] = strdup(host->config_get(self, k));
                if (!l->items[i])
                        return -ENOMEM;
                l->count++;
        }
        return 0;
}

/* A copy of the value of key, or of def when there is none. */
static char *config_dup(const struct walcast_host *host,
                        struct walcast_plugin *self, const char *key,
                        const char *def)
{
        const char *v = host->config_get(self, key);

        return strdup(v ? v : def);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errbuf, size_t errlen)
{
        char err[512];

        if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
                wc_errorf(errbuf, errlen, "Kafka property \"%s\": %s", name,
                          err);
                return -EINVAL;
        }
        return 0;
}

/*
 * walcast's producer defaults, then the user's properties over them.
 * message.timeout.ms 0 (no limit): a message waits for a broker that is
 * down as long as it takes, holding the position instead of failing and
 * replaying in a loop; what cannot succeed (too large, not authorized,
 * no such topic) still fails at once.
 */
rd_kafka_conf_t *wc_kafka_new_conf(wc_kafka_get_fn get, void *ud, char *errbuf,
                                   size_t errlen)
{
        static const char *const defaults[][2] = {
            {"client.id", "walcast"},
            {"enable.idempotence", "true"},
            {"acks", "all"},
            /* batches of ~60 messages per partition at 50,000 changes/s:
             * librdkafka's per-batch work (request, lz4 context, delivery
             * report) amortized over more messages; costs up to 20 ms of
             * latency */
            {"linger.ms", "20"},
            /* ~5x fewer bytes for the brokers, the cheapest codec (zstd
             * costs a quarter to a third more CPU in all); none saves
             * 10-15 % of walcastd's instructions (bench/kafka.md) */
            {"compression.type", "lz4"},
            /* memory bounded whatever the row width: Java's
             * buffer.memory; a full queue throttles the stream */
            {"queue.buffering.max.kbytes", "32768"},
            {"queue.buffering.max.messages", "50000"},
            {"message.timeout.ms", "0"},
            /* the partition of a key as Java clients (and Kafka Connect)
             * choose it */
            {"partitioner", "murmur2_random"},
            {"log.connection.close", "false"},
        };
        const char *names = get(ud, "properties");
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char key[1100];

        if (!conf) {
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (conf_set(conf, defaults[i][0], defaults[i][1], errbuf,
                             errlen) < 0)
                        goto err_destroy;
        /* "properties" lists the names, one per line */
        for (const char *p = names ? names : ""; *p;) {
                size_t len = strcspn(p, "\n");
                const char *value;

                snprintf(key, sizeof(key), "properties.%.*s", (int)len, p);
                value = get(ud, key);
                if (!value) {
                        wc_errorf(errbuf, errlen,
                                  "Kafka property \"%.*s\" has no value",
                                  (int)len, p);
                        goto err_destroy;
                }
                if (strcmp(key, "properties.transactional.id") == 0) {
                        wc_errorf(errbuf, errlen,
                                  "Kafka property \"transactional.id\": "
                                  "walcast's producer is idempotent, not "
                                  "transactional; leave it out");
                        goto err_destroy;
                }
                if (conf_set(conf, key + strlen("properties."), value, errbuf,
                             errlen) < 0)
                        goto err_destroy;
                p += len;
                if (*p == '\n')
                        p++;
        }
        /* ours, whatever the properties said: callbacks only ever run on
         * walcastd's thread */
        if (conf_set(conf, "log.queue", "true", errbuf, errlen) < 0)
                goto err_destroy;
        return conf;

err_destroy:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

int wc_kafka_check_properties(wc_kafka_get_fn get, void *ud, char *errbuf,
                              size_t errlen)
{
        rd_kafka_conf_t *conf = wc_kafka_new_conf(get, ud, errbuf, errlen);

        if (!conf)
                return -EINVAL;
        rd_kafka_conf_destroy(conf);
        return 0;
}

struct host_get {
        const struct walcast_host *host;
        struct walcast_plugin *self;
};

static const char *host_get(void *ud, const char *key)
{
        struct host_get *g = ud;

        return g->host->config_get(g->self, key);
}

static void close_state(void *state)
{
        struct state *st = state;

        if (!st)
                return;
        if (st->rk) {
                /* acknowledging is moot now: what is not confirmed is sent
                 * again at the next start */
                st->closing = true;
                if (!st->fatal)
                        held_flush(st);
                rd_kafka_flush(st->rk, CLOSE_FLUSH_MS);
                serve(st);
        }
        set_all_down(st, false);
        producer_stop(st);
        wc_tablemap_free(st->tables);
        if (st->pipe[0] >= 0) {
                st->host->unwatch_fd(st->self, st->pipe[0]);
                close(st->pipe[0]);
        }
        if (st->pipe[1] >= 0)
                close(st->pipe[1]);
        while (st->held) {
                struct held *h = st->held;

                st->held = h->next;
                held_free(h);
        }
        while (st->txns)
                txn_free(st, st->txns);
        if (st->conf)
                rd_kafka_conf_destroy(st->conf);
        wc_filter_config_free(&st->filter);
        free(st->topic_tmpl);
        free(st->prefix);
        free(st->database);
        wc_buf_free(&st->key);
        wc_buf_free(&st->key2);
        wc_buf_free(&st->value);
        wc_buf_free(&st->topic);
        wc_buf_free(&st->txt.json);
        free(st);
}

static int32_t init(const struct walcast_host *host,
                    struct walcast_plugin *self, void **ret_state, char *errbuf,
                    size_t errlen)
{
        static const walcast_handler_fn handlers[WALCAST_SIG__COUNT] = {
            [WALCAST_SIG_INSERT] = on_insert,
            [WALCAST_SIG_UPDATE] = on_update,
            [WALCAST_SIG_DELETE] = on_delete,
            [WALCAST_SIG_TRUNCATE] = on_truncate,
            [WALCAST_SIG_READ] = on_read,
        };
        /* the op each handler publishes, for the ops this sink selects */
        static const enum wc_op op_of[WALCAST_SIG__COUNT] = {
            [WALCAST_SIG_INSERT] = WC_OP_INSERT,
            [WALCAST_SIG_UPDATE] = WC_OP_UPDATE,
            [WALCAST_SIG_DELETE] = WC_OP_DELETE,
            [WALCAST_SIG_TRUNCATE] = WC_OP_TRUNCATE,
            /* a snapshot's rows go where inserts go */
            [WALCAST_SIG_READ] = WC_OP_INSERT,
        };
        const char *tombstones = host->config_get(self, "tombstones");
        const char *ops = host->config_get(self, "ops");
        unsigned fields;
        struct state *st;

        /* throttle came with ABI 1.0's last member: a host without it
         * could not hold back a stream the queue cannot take */
        if (!WALCAST_HAS_FIELD(host, struct walcast_host, throttle) ||
            !host->throttle) {
                wc_errorf(errbuf, errlen, "the host cannot throttle");
                return WALCAST_ERROR;
        }
        st = calloc(1, sizeof(*st));
        if (!st) {
                wc_errorf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        st->host = host;
        st->self = self;
        st->pipe[0] = st->pipe[1] = -1;
        st->held_tail = &st->held;
        wc_buf_init(&st->key);
        wc_buf_init(&st->key2);
        wc_buf_init(&st->value);
        wc_buf_init(&st->topic);
        wc_buf_init(&st->txt.json);

        st->topic_tmpl =
            config_dup(host, self, "topic", "{prefix}.{schema}.{table}");
        st->prefix = config_dup(host, self, "prefix", "walcast");
        st->database = config_dup(host, self, "database", "");
        if (!st->topic_tmpl || !st->prefix || !st->database) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->tombstones = !tombstones || strcmp(tombstones, "false") != 0;
        if (wc_topic_template_check(st->topic_tmpl, &fields, errbuf, errlen) <
                0 ||
            ((fields & WC_TOPIC_BIT(WC_TOPIC_PREFIX)) &&
             wc_topic_prefix_check(st->prefix, errbuf, errlen) < 0) ||
            wc_topic_template_check_static(st->topic_tmpl, st->prefix, errbuf,
                                           errlen) < 0)
                goto err_close;
        if ((fields & WC_TOPIC_BIT(WC_TOPIC_DATABASE)) && !st->database[0]) {
                wc_errorf(errbuf, errlen,
                          "the topic template uses {database}, but the "
                          "database name is not known: name it with dbname "
                          "in source.dsn");
                goto err_close;
        }
        if (read_patterns(host, self, "schemas.include",
                          &st->filter.schemas_include) < 0 ||
            read_patterns(host, self, "schemas.exclude",
                          &st->filter.schemas_exclude) < 0 ||
            read_patterns(host, self, "tables.include",
                          &st->filter.tables_include) < 0 ||
            read_patterns(host, self, "tables.exclude",
                          &st->filter.tables_exclude) < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        /* "message" is accepted, so that the filter's shape is the
         * global one, but not published */
        if (wc_filter_ops_parse(ops ? ops : "insert,update,delete,truncate",
                                &st->filter.ops) < 0) {
                wc_errorf(errbuf, errlen, "invalid ops \"%s\"", ops);
                goto err_close;
        }

        st->tables = wc_tablemap_new(TABLES_MAX, table_entry_free);
        if (!st->tables) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->conf = wc_kafka_new_conf(host_get, &(struct host_get){host, self},
                                     errbuf, errlen);
        if (!st->conf)
                goto err_close;
        rd_kafka_conf_set_opaque(st->conf, st);
        rd_kafka_conf_set_dr_msg_cb(st->conf, on_delivery);
        rd_kafka_conf_set_log_cb(st->conf, on_log);
        rd_kafka_conf_set_error_cb(st->conf, on_error);

        if (pipe2(st->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
                wc_errorf(errbuf, errlen, "pipe: %s", strerror(errno));
                goto err_close;
        }
        if (producer_start(st, errbuf, errlen) < 0)
                goto err_close;
        if (host->watch_fd(self, st->pipe[0], POLLIN, on_events, st) !=
            WALCAST_OK) {
                wc_errorf(errbuf, errlen,
                          "could not watch the producer's events");
                goto err_close;
        }
        for (uint32_t k = 0; k < WALCAST_SIG__COUNT; k++)
                if (handlers[k] && (st->filter.ops & WC_OP_BIT(op_of[k])) &&
                    host->connect(self, k, NULL, NULL, handlers[k], st) !=
                        WALCAST_OK)
                        goto err_connect;
        if (host->connect(self, WALCAST_SIG_BEGIN, NULL, NULL, on_begin, st) !=
                WALCAST_OK ||
            host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_commit,
                          st) != WALCAST_OK)
                goto err_connect;
        *ret_state = st;
        return WALCAST_OK;

err_connect:
        wc_errorf(errbuf, errlen,
                  "could not connect the Kafka sink's handlers");
err_close:
        close_state(st);
        return WALCAST_ERROR;
}

const struct walcast_plugin_descriptor *wc_kafka_plugin(void)
{
        static const struct walcast_plugin_descriptor d = {
            .abi_major = WALCAST_ABI_MAJOR,
            .size = sizeof(struct walcast_plugin_descriptor),
            .abi_minor = WALCAST_ABI_MINOR,
            .name = "kafka",
            .version = WALCAST_VERSION,
            .init = init,
            .close = close_state,
        };
        return &d;
}
