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
#include <inttypes.h>
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
#include "core/kv.h"
#include "core/pattern.h"
#include "core/tablemap.h"
#include "sinks/kafka/columns.h"
#include "sinks/kafka/conf.h"
#include "sinks/kafka/debezium.h"
#include "sinks/kafka/enums.h"
#include "sinks/kafka/kafka.h"
#include "sinks/kafka/oauth.h"
#include "sinks/kafka/topic.h"
#include "sinks/kafka/txn.h"

/* Per-table entries (topic handle, source block); when full the map
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
        /* exactly_once: lost its commit to a replay; whether its first
         * message found it already in Kafka's transactions (skip), and how
         * many of its messages went to the producer */
        bool abandoned, eos_seen, eos_skip;
        uint64_t produced;
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
        bool bad; /* its topic name is illegal (already reported) */
        /* the WAL lacked the primary key of an old row (logged once) */
        bool warned_key;
        rd_kafka_topic_t *rkt;
        /* the envelope's source up to "lsn": (wc_kafka_format_source) */
        char *source;
        size_t source_len;
        /* the key, for the last-table shortcut: "schema\0table" */
        char *name;
        size_t slen, tlen;
        struct wc_dbz_cache dbz; /* value_format debezium, schemas */
        /* its column rule, or NULL; bad: it cannot be applied (said) */
        const struct wc_kafka_column_rule *rule;
        bool rule_bad;
        bool outbox;        /* an outbox table: its inserts are events */
        bool warned_outbox; /* an update or truncate of it was said */
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

/* The sink's own topics, besides the tables' */
enum { OWN_TXN = 0, OWN_MSG, OWN_HB, OWN__COUNT };

/* transactions_topic: what the END record of the transaction being
 * streamed says, counted as its changes go out */
struct txmeta {
        bool valid;
        bool begun; /* its BEGIN went out */
        uint64_t id;
        uint64_t total;
        struct wc_dbz_collection *colls; /* names owned */
        size_t ncolls, cap;
        size_t last; /* the last change's collection */
};

/* A message outside a transaction, produced at the commit the host sends
 * after it (the id to acknowledge is known only then). */
struct outside {
        bool set;
        int which; /* OWN_MSG or OWN_HB */
        uint64_t lsn;
        struct wc_buf key, value;
};

/* exactly_once: the PostgreSQL transactions of the open Kafka transaction,
 * acknowledged when it commits (sinks/kafka/txn.h) */
struct eos {
        bool on;
        bool committing; /* a commit runs: nothing is produced */
        bool abort_due;  /* a message failed: end the transaction soon */
        bool stopped;    /* fenced or fatal: walcastd stops */
        struct wc_kafka_eos *thr;
        /* ids[0, inflight) are in the committing transaction, the rest
         * in the next */
        uint64_t *ids;
        size_t n, cap, inflight;
        uint64_t end_lsn, inflight_end_lsn;
        /* the end of the last transaction sent into Kafka's open or
         * committing transaction, and of the last one committed */
        uint64_t produced_end, committed_end;
        bool silent; /* the abort asked for follows a replay: no acks */
        uint64_t bytes;
        int64_t opened_ms;
        uint32_t max_txns;
        uint64_t max_bytes, max_ms;
        char *topic;        /* {prefix}.offsets */
        struct wc_buf key;  /* wc_kafka_offsets_key */
        struct txn_rec rec; /* the offsets record's, never listed */
};

struct state {
        const struct walcast_host *host;
        struct walcast_plugin *self;

        /* config, copied: the host's strings are only read during init */
        char *topic_tmpl;
        char *prefix;
        char *database;
        bool tombstones;
        bool debezium; /* value_format: debezium */
        struct wc_dbz_options dbz;
        /* the enum types known (dbz.enums points into it), and the
         * catalog connection that looks up those met since start */
        struct wc_kafka_enums enums;
        const struct wc_kafka_catalog *catalog;
        void *catalog_conn;
        /* transactions_topic, messages_topic, heartbeat_topic (NULL:
         * off); their entries hold the topic handle only */
        char *own_name[OWN__COUNT];
        struct table_entry own[OWN__COUNT];
        char *heartbeat_prefix;
        struct txmeta tm;
        struct outside outside;
        char txblock[128]; /* the walcast envelope's transaction block */
        /* `columns:` rules (copied), and what applying one makes: the
         * new row, the old row, the key, the completed columns */
        struct wc_kafka_column_rule *rules;
        size_t nrules;
        char *mask_salt;
        struct wc_kafka_rule_out rout[4];
        /* outbox: (copied); its topics' handles by name */
        struct wc_kafka_outbox outbox;
        struct wc_tablemap *outbox_topics;
        /* headers the message being produced has besides walcast's */
        struct {
                const char *name;
                const char *value;
                size_t len;
        } xh[16];
        size_t nxh;
        struct wc_kafka_topic_creation tc; /* config copied */
        /* topic_creation: the topics created or found existing, asked
         * for once per name (not again for another table, a new
         * producer or a refilled table map) */
        struct wc_tablemap *topics_made;

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
        size_t held_bytes; /* keys and values of what is held */
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
        struct wc_buf value2; /* transaction records */
        struct eos eos;
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

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
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

static void eos_abandoned(struct state *st, struct txn_rec *t);

/* The stream went back to the last confirmed position before t's commit
 * (a replay): its id is unknown to the host now, and it will be sent
 * again under a new one. */
static void txn_abandon(struct state *st, struct txn_rec *t)
{
        t->done = true;
        t->abandoned = true;
        if (st->cur == t)
                st->cur = NULL;
        eos_abandoned(st, t);
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

/*
 * Reading pauses while messages are held: the producer queue is full.
 * While an exactly-once commit runs, messages are held because nothing may
 * be produced until it ends, not for lack of room: reading goes on until
 * EOS_HOLD_BYTES are held, so that the commit's round trips do not stall
 * the stream.
 */
#define EOS_HOLD_BYTES (8u << 20)

static void update_throttle(struct state *st)
{
        set_throttle(st, st->held && (!st->eos.committing ||
                                      st->held_bytes > EOS_HOLD_BYTES));
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
        st->held_bytes += key_len + value_len;
        update_throttle(st);
        return 0;
}

/*
 * Produces what is held, in order, until the queue is full again.  A
 * message the producer refuses for good fails its transaction.
 */
static void held_flush(struct state *st)
{
        while (st->held && !st->fatal && !st->eos.committing) {
                struct held *h = st->held;
                rd_kafka_resp_err_t err;

                if (st->eos.on && h->txn->abandoned) {
                        /* exactly_once: it comes again whole */
                        st->held_bytes -= h->key_len + h->value_len;
                        st->held = h->next;
                        if (!st->held)
                                st->held_tail = &st->held;
                        h->txn->outstanding--;
                        txn_settle(st, h->txn);
                        held_free(h);
                        continue;
                }

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
                st->held_bytes -= h->key_len + h->value_len;
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
                        h->txn->produced++;
                        st->eos.bytes += h->key_len + h->value_len;
                        h->value = NULL;
                        h->headers = NULL;
                }
                held_free(h);
        }
        update_throttle(st);
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
        for (size_t i = 0; i < st->nxh; i++)
                rd_kafka_header_add(hdrs, st->xh[i].name, -1, st->xh[i].value,
                                    (ssize_t)st->xh[i].len);
        /* nothing may overtake what is held, nor go into a committing
         * Kafka transaction */
        if (!st->held && !st->eos.committing) {
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
                        t->produced++;
                        st->in_producer++;
                        st->eos.bytes +=
                            (key ? key->len : 0) + (value ? value->len : 0);
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

/* ---- exactly once (sinks/kafka/txn.h) ---- */

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errbuf, size_t errlen);

/* Set when an exactly-once sink cannot go on: walcastd stops with it. */
static int stop_error;
/* why the last sink's init failed, when it was not its configuration */
static int start_error;

int wc_kafka_sinks_stop(void)
{
        return stop_error;
}

int wc_kafka_start_error(void)
{
        return start_error;
}

/* Fenced or fatal: said once, nothing is produced any more, and walcastd
 * stops (wc_kafka_sinks_stop).  Nothing is acknowledged: what the open
 * transaction held comes again after the next start. */
static void eos_fail(struct state *st, rd_kafka_resp_err_t err, const char *why)
{
        if (st->eos.stopped)
                return;
        st->eos.stopped = true;
        st->eos.committing = true;
        if (wc_kafka_eos_is_fenced(err)) {
                st->host->log(
                    st->self, WALCAST_LOG_ERR,
                    "the Kafka producer was fenced (%s): another walcastd "
                    "with the same transactional id is running: this one "
                    "is not the active one; stopping",
                    why);
                stop_error = -ESTALE; /* exit 69 */
        } else {
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "the transactional Kafka producer hit a fatal "
                              "error: %s; stopping (a new start begins with "
                              "a new producer)",
                              why);
                if (!stop_error)
                        stop_error = -EIO;
        }
}

static int eos_add(struct state *st, uint64_t id, uint64_t end_lsn)
{
        struct eos *e = &st->eos;

        if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 64;
                uint64_t *ids = realloc(e->ids, cap * sizeof(*ids));

                if (!ids)
                        return -ENOMEM;
                e->ids = ids;
                e->cap = cap;
        }
        if (e->n == e->inflight) {
                e->opened_ms = now_ms();
                wc_kafka_eos_arm(e->thr, true);
        }
        e->ids[e->n++] = id;
        e->end_lsn = end_lsn;
        return 0;
}

/*
 * Commits the open Kafka transaction when its batch is full or old enough
 * (or a message of it failed), between PostgreSQL transactions and with
 * nothing held back: the offsets record goes in last, then the thread
 * commits.
 */
static void eos_maybe_commit(struct state *st)
{
        struct eos *e = &st->eos;
        struct wc_buf *v = &st->value;
        rd_kafka_resp_err_t err;

        if (!e->on || e->committing || e->n == 0 || st->cur || st->held)
                return;
        if (!e->abort_due && e->n < e->max_txns && e->bytes < e->max_bytes &&
            now_ms() - e->opened_ms < (int64_t)e->max_ms)
                return;
        wc_buf_reset(v);
        if (wc_kafka_offsets_value(v, e->end_lsn) < 0)
                return; /* out of memory: at the next event */
        err = rd_kafka_producev(st->rk, RD_KAFKA_V_TOPIC(e->topic),
                                RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(e->key.data, e->key.len),
                                RD_KAFKA_V_VALUE(v->data, v->len),
                                RD_KAFKA_V_OPAQUE(&e->rec), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                return; /* at the next delivery report */
        if (err) {
                /* the batch would commit without its position */
                eos_fail(st, err, rd_kafka_err2str(err));
                return;
        }
        st->in_producer++;
        e->committing = true;
        e->inflight = e->n;
        e->inflight_end_lsn = e->end_lsn;
        wc_kafka_eos_commit(e->thr);
}

/*
 * A replay took the commit of t, some of whose messages are in Kafka's
 * open transaction: that transaction must not commit.  It is aborted;
 * the replay sends again everything since the confirmed position, and
 * what Kafka's transaction held is forgotten without acknowledgement (the
 * replay made those ids unknown to walcastd).  Until the abort is done
 * everything is held.
 */
static void eos_abandoned(struct state *st, struct txn_rec *t)
{
        struct eos *e = &st->eos;

        if (!e->on || e->stopped || t->produced == 0 || t->eos_skip)
                return;
        /* a commit runs only between transactions, with nothing of the
         * next produced: t's messages cannot be in it */
        if (e->committing)
                return;
        while (st->held) {
                struct held *h = st->held;

                st->held = h->next;
                h->txn->outstanding--;
                if (h->txn != t)
                        txn_settle(st, h->txn);
                held_free(h);
        }
        st->held_tail = &st->held;
        st->held_bytes = 0;
        update_throttle(st);
        e->n = e->inflight = 0;
        e->bytes = 0;
        e->abort_due = false;
        e->produced_end = e->committed_end;
        e->silent = true;
        e->committing = true;
        st->host->log(st->self, WALCAST_LOG_INFO,
                      "a replay cut a transaction short: aborting the open "
                      "Kafka transaction, the replay sends it again");
        wc_kafka_eos_abort(e->thr);
}

/* A message that was held never reaches Kafka: its transaction comes
 * again. */
static void eos_drop_held(struct state *st)
{
        while (st->held) {
                struct held *h = st->held;

                st->held = h->next;
                txn_fail(st, h->txn);
                h->txn->outstanding--;
                txn_settle(st, h->txn);
                held_free(h);
        }
        st->held_tail = &st->held;
        st->held_bytes = 0;
        update_throttle(st);
}

/* A fatal error librdkafka reported through a message: stop. */
static void eos_check_fatal(struct state *st)
{
        char why[512];
        rd_kafka_resp_err_t err;

        if (!st->fatal || st->eos.stopped)
                return;
        err = rd_kafka_fatal_error(st->rk, why, sizeof(why));
        eos_fail(st, err ? err : RD_KAFKA_RESP_ERR__FATAL,
                 err ? why : "fatal error");
}

/* The thread's news, and the batch's age. */
static void eos_events(struct state *st)
{
        struct eos *e = &st->eos;
        char why[512];
        size_t k;

        switch (wc_kafka_eos_poll(e->thr, why, sizeof(why))) {
        case WC_KAFKA_EOS_COMMITTED:
                k = e->inflight;
                e->committed_end = e->inflight_end_lsn;
                if (WALCAST_HAS_FIELD(st->host, struct walcast_host,
                                      position) &&
                    st->host->position)
                        st->host->position(st->self, e->inflight_end_lsn);
                for (size_t i = 0; i < k; i++)
                        st->host->ack(st->self, e->ids[i], WALCAST_OK);
                memmove(e->ids, e->ids + k, (e->n - k) * sizeof(*e->ids));
                e->n -= k;
                e->inflight = 0;
                e->bytes = 0;
                e->committing = false;
                if (e->n)
                        e->opened_ms = now_ms();
                st->last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
                held_flush(st);
                break;
        case WC_KAFKA_EOS_ABORTED:
                e->produced_end = e->committed_end;
                if (e->silent) {
                        /* after a replay (eos_abandoned) */
                        e->silent = false;
                        e->committing = false;
                        break;
                }
                /* everything since the last commit comes again */
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "could not commit the Kafka transaction: %s; "
                              "aborted it, not confirming past it, "
                              "replaying",
                              why);
                for (size_t i = 0; i < e->n; i++)
                        st->host->ack(st->self, e->ids[i], WALCAST_ERROR);
                e->n = e->inflight = 0;
                e->bytes = 0;
                e->abort_due = false;
                if (st->cur)
                        txn_fail(st, st->cur);
                e->committing = false;
                eos_drop_held(st);
                break;
        case WC_KAFKA_EOS_FENCED:
                eos_fail(st, RD_KAFKA_RESP_ERR__FENCED, why);
                return;
        case WC_KAFKA_EOS_FATAL:
                eos_fail(st, RD_KAFKA_RESP_ERR__FATAL, why);
                return;
        case WC_KAFKA_EOS_NONE:
                break;
        }
        eos_check_fatal(st);
        if (e->stopped)
                return;
        held_flush(st);
        eos_maybe_commit(st);
        wc_kafka_eos_arm(e->thr, e->n > 0);
}

/* A PostgreSQL transaction's commit: acknowledged with its Kafka
 * transaction's. */
static int32_t eos_on_commit(struct state *st, struct txn_rec *t,
                             uint64_t end_lsn)
{
        if (t->done) {
                /* failed and acknowledged as such already */
                txn_settle(st, t);
                return WALCAST_PENDING;
        }
        t->done = true; /* acknowledged by the batch, not by deliveries */
        if (eos_add(st, t->id, end_lsn) < 0) {
                txn_settle(st, t);
                return WALCAST_ERROR;
        }
        txn_settle(st, t);
        eos_maybe_commit(st);
        return WALCAST_PENDING;
}

static int eos_first_commit(struct state *st, uint64_t pos, char *errbuf,
                            size_t errlen)
{
        struct eos *e = &st->eos;
        struct wc_buf *v = &st->value;
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;

        wc_buf_reset(v);
        if (wc_kafka_offsets_value(v, pos) < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        err = rd_kafka_producev(st->rk, RD_KAFKA_V_TOPIC(e->topic),
                                RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(e->key.data, e->key.len),
                                RD_KAFKA_V_VALUE(v->data, v->len),
                                RD_KAFKA_V_OPAQUE(&e->rec), RD_KAFKA_V_END);
        if (err) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not write to topic \"%s\": %s",
                          e->topic, rd_kafka_err2str(err));
                return -EIO;
        }
        st->in_producer++;
        error = rd_kafka_commit_transaction(st->rk, WC_KAFKA_EOS_START_MS);
        if (!error)
                error = rd_kafka_begin_transaction(st->rk);
        if (error) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not commit a first Kafka "
                          "transaction to topic \"%s\": %s",
                          e->topic, rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                return -EIO;
        }
        return 0;
}

/*
 * exactly_once at init: a transactional producer (st->conf has its
 * transactional.id), its first transaction begun, the committed position
 * read back and reported, the thread started.  0 or <0 with errbuf set.
 */
static int eos_start(struct state *st, const struct wc_kafka_start *s,
                     char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *c = s->conf;
        struct eos *e = &st->eos;
        uint64_t pos = 0;
        int tick;
        int r;

        e->max_txns = c->eos_batch_txns ? c->eos_batch_txns : 1000;
        e->max_bytes = c->eos_batch_bytes ? c->eos_batch_bytes : 16u << 20;
        e->max_ms = c->eos_batch_ms ? c->eos_batch_ms : 100;
        wc_buf_init(&e->key);
        if (wc_kafka_offsets_key(&e->key, s->system_identifier, st->database,
                                 s->slot) < 0)
                return -ENOMEM;
        r = wc_kafka_eos_init(st->rk, WC_KAFKA_EOS_START_MS, errbuf, errlen);
        if (r < 0)
                return r;
        /* after init_transactions: a transaction the last process left
         * open is aborted, and read_committed reads past it */
        r = wc_kafka_offsets_read(c->properties, c->nproperties, e->topic,
                                  &e->key, WC_KAFKA_EOS_START_MS, &pos, errbuf,
                                  errlen);
        if (r < 0)
                return r;
        e->produced_end = e->committed_end = pos;
        if (pos && WALCAST_HAS_FIELD(st->host, struct walcast_host, position) &&
            st->host->position)
                st->host->position(st->self, pos);
        /* a first commit, of the position as it is: the offsets topic is
         * writable, and librdkafka's first commit, much slower than the
         * next ones, is paid before the stream starts */
        r = eos_first_commit(st, pos, errbuf, errlen);
        if (r < 0)
                return r;
        st->host->log(st->self, WALCAST_LOG_INFO,
                      "exactly once: Kafka holds everything up to end_lsn "
                      "%" PRIu64 " (topic \"%s\")",
                      pos, e->topic);
        tick = e->max_ms < 10 ? 10 : (e->max_ms > 1000 ? 1000 : (int)e->max_ms);
        e->thr = wc_kafka_eos_start(st->rk, st->pipe[1], tick);
        if (!e->thr) {
                wc_errorf(errbuf, errlen, "could not start a thread");
                return -ENOMEM;
        }
        return 0;
}

/*
 * The producer settings of exactly_once: its transactional.id, and
 * messages that wait no longer than the transaction may.  0 or -EINVAL.
 */
static int eos_conf(struct state *st, const struct wc_kafka_start *s,
                    char *errbuf, size_t errlen)
{
        const struct wc_kafka_sink_config *c = s->conf;
        char id[512], tt[32];
        size_t n = sizeof(tt);
        struct wc_buf topic;

        if (c->transactional_id)
                snprintf(id, sizeof(id), "%s", c->transactional_id);
        else if (wc_kafka_txn_id(id, sizeof(id), s->system_identifier,
                                 st->database, s->slot) < 0) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: the transactional id is too long; "
                          "set transactional_id");
                return -EINVAL;
        }
        if (conf_set(st->conf, "transactional.id", id, errbuf, errlen) < 0)
                return -EINVAL;
        if (rd_kafka_conf_get(st->conf, "transaction.timeout.ms", tt, &n) !=
                RD_KAFKA_CONF_OK ||
            conf_set(st->conf, "message.timeout.ms", tt, errbuf, errlen) < 0)
                return -EINVAL;
        wc_buf_init(&topic);
        if (wc_buf_printf(&topic, "%s.offsets", st->prefix) < 0) {
                wc_buf_free(&topic);
                return -ENOMEM;
        }
        if (!wc_topic_name_valid(topic.data, topic.len)) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: \"%s\" is not a legal Kafka topic "
                          "name for the offsets topic; shorten prefix",
                          topic.data);
                wc_buf_free(&topic);
                return -EINVAL;
        }
        st->eos.topic = topic.data;
        st->eos.on = true;
        return 0;
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
        if (t == &st->eos.rec) {
                /* its failure fails the commit, which says so */
                return;
        }
        if (m->err && st->eos.on && !t->abandoned &&
            m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
            m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
                st->eos.abort_due = true;
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

        if (err == RD_KAFKA_RESP_ERR__FATAL && st->eos.on) {
                eos_fail(st, rd_kafka_fatal_error(rk, why, sizeof(why)), why);
                return;
        }
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
        if (st->eos.on) {
                eos_events(st);
                return;
        }
        if (st->fatal)
                (void)producer_restart(st); /* or at the next event */
        held_flush(st);
}

/* ---- the producer ---- */

static void producer_stop(struct state *st)
{
        for (int i = 0; i < OWN__COUNT; i++)
                if (st->own[i].rkt) {
                        rd_kafka_topic_destroy(st->own[i].rkt);
                        st->own[i].rkt = NULL;
                }
        st->last = NULL;
        if (st->tables)
                wc_tablemap_clear(st->tables); /* topic handles first */
        if (st->outbox_topics)
                wc_tablemap_clear(st->outbox_topics);
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

/* ---- topic creation ---- */

/*
 * With topic_creation, creates topic (librdkafka's admin API) before its
 * first message: waits for the answer, up to topic_creation.timeout.  A
 * topic that exists is fine.  0, or -EIO when it could not be created
 * (logged, naming it: the change is not confirmed and comes again).
 */
static int create_topic(struct state *st, const char *topic)
{
        char err[512];
        rd_kafka_NewTopic_t *nt;
        rd_kafka_AdminOptions_t *o = NULL;
        rd_kafka_queue_t *q = NULL;
        rd_kafka_event_t *ev = NULL;
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR__TIMED_OUT;
        const char *why = "no answer";
        int r = -EIO;

        if (!st->tc.enabled ||
            wc_tablemap_get(st->topics_made, topic, strlen(topic), "", 0))
                return 0;
        nt = rd_kafka_NewTopic_new(
            topic, st->tc.partitions ? (int)st->tc.partitions : -1,
            st->tc.replication_factor ? (int)st->tc.replication_factor : -1,
            err, sizeof(err));
        if (!nt) {
                why = err;
                goto out;
        }
        for (size_t i = 0; i < st->tc.nconfig; i++)
                if (rd_kafka_NewTopic_set_config(nt, st->tc.config[i].key,
                                                 st->tc.config[i].value)) {
                        why = "a topic setting was refused";
                        goto out;
                }
        o = rd_kafka_AdminOptions_new(st->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
        q = rd_kafka_queue_new(st->rk);
        if (!o || !q ||
            rd_kafka_AdminOptions_set_request_timeout(o, (int)st->tc.timeout_ms,
                                                      err, sizeof(err)) ||
            rd_kafka_AdminOptions_set_operation_timeout(
                o, (int)st->tc.timeout_ms, err, sizeof(err))) {
                why = "out of memory";
                goto out;
        }
        rd_kafka_CreateTopics(st->rk, &nt, 1, o, q);
        ev = rd_kafka_queue_poll(q, (int)st->tc.timeout_ms + 2000);
        if (!ev)
                goto out;
        code = rd_kafka_event_error(ev);
        why = rd_kafka_event_error_string(ev);
        if (!code) {
                size_t n = 0;
                const rd_kafka_topic_result_t **tr =
                    rd_kafka_CreateTopics_result_topics(
                        rd_kafka_event_CreateTopics_result(ev), &n);

                code = n ? rd_kafka_topic_result_error(tr[0])
                         : RD_KAFKA_RESP_ERR__FAIL;
                why = n && rd_kafka_topic_result_error_string(tr[0])
                          ? rd_kafka_topic_result_error_string(tr[0])
                          : rd_kafka_err2str(code);
        }
        if (code == RD_KAFKA_RESP_ERR_NO_ERROR ||
            code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                if (!code)
                        st->host->log(st->self, WALCAST_LOG_NOTICE,
                                      "created topic \"%s\"", topic);
                r = 0;
                /* out of memory: only asked for again */
                (void)wc_tablemap_put(st->topics_made, topic, strlen(topic), "",
                                      0, &st->topics_made);
        }
out:
        if (r < 0)
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "could not create topic \"%s\": %s: not "
                              "confirming past its changes; create it, or "
                              "check topic_creation",
                              topic, why ? why : rd_kafka_err2str(code));
        if (ev)
                rd_kafka_event_destroy(ev);
        if (q)
                rd_kafka_queue_destroy(q);
        if (o)
                rd_kafka_AdminOptions_destroy(o);
        if (nt)
                rd_kafka_NewTopic_destroy(nt);
        return r;
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
        wc_dbz_cache_free(&e->dbz);
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
        e->rule = wc_kafka_rule_for(st->rules, st->nrules, s->schema, s->table);
        /* an outbox table has no topic of its own */
        e->outbox = st->outbox.tables.count &&
                    wc_pattern_list_table_match(&st->outbox.tables, s->schema,
                                                s->table);
        wc_buf_reset(&st->topic);
        /* wc_buf keeps its text NUL-terminated */
        if (wc_kafka_format_topic(&st->topic, st->topic_tmpl, st->prefix,
                                  st->database, s) < 0 ||
            wc_buf_append(&st->topic, "", 0) < 0) {
                table_entry_free(e);
                return NULL;
        }
        if (!e->outbox && !wc_topic_name_valid(st->topic.data, st->topic.len)) {
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
                    printable(tp, sizeof(tp), st->topic.data, st->topic.len,
                              WC_TOPIC_MAX + 16),
                    WC_TOPIC_MAX);
        } else if (!e->outbox) {
                if (create_topic(st, st->topic.data) < 0) {
                        table_entry_free(e);
                        return NULL;
                }
                e->rkt = rd_kafka_topic_new(st->rk, st->topic.data, NULL);
                if (!e->rkt) {
                        st->host->log(st->self, WALCAST_LOG_ERR,
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
                if (wc_kafka_format_source(&src, st->database, s->schema,
                                           s->table) < 0) {
                        table_entry_free(e);
                        return NULL;
                }
                e->source = src.data; /* takes ownership */
                e->source_len = src.len;
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
        if (st->eos.on)
                eos_check_fatal(st);
        if (st->eos.stopped) {
                *ret = WALCAST_ERROR;
                return NULL;
        }
        if (st->fatal && producer_restart(st) < 0) {
                *ret = WALCAST_ERROR;
                return NULL;
        }
        e = table_get(st, s);
        if (!e || e->bad)
                *ret = WALCAST_ERROR;
        return e && !e->bad ? e : NULL;
}

/* A column of l called name. */
static bool has_column(const struct walcast_columns *l, const char *name)
{
        size_t n = strlen(name);

        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == n &&
                    memcmp(l->items[i].name, name, n) == 0)
                        return true;
        return false;
}

/*
 * s as e's column rule makes it (docs/kafka.md, "Column rules"): columns
 * left out, masked, the key columns in place of the primary key.  A rule
 * that cannot apply (it excludes a primary-key column and names no key
 * columns, or names a key column the table does not have) refuses the
 * table's changes, said once: nothing is keyed by a guess.
 */
static int apply_rule(struct state *st, struct table_entry *e,
                      const struct walcast_signal *s,
                      struct walcast_signal *out)
{
        const struct wc_kafka_column_rule *r = e->rule;
        size_t n = s->size < sizeof(*out) ? s->size : sizeof(*out);
        char sq[256], tq[256];
        const char *bad;

        if (e->rule_bad)
                return -EINVAL;
        if (!r->key_columns.count &&
            (bad = wc_kafka_rule_excluded_key(r, &s->pk))) {
                e->rule_bad = true;
                st->host->log(
                    st->self, WALCAST_LOG_ERR,
                    "table \"%s\".\"%s\": the column rule excludes its "
                    "primary-key column \"%s\", which keys its messages: not "
                    "confirming past its changes; leave the column in, or "
                    "name key_columns",
                    printable(sq, sizeof(sq), s->schema, strlen(s->schema), 63),
                    printable(tq, sizeof(tq), s->table, strlen(s->table), 63),
                    bad);
                return -EINVAL;
        }
        if (s->kind == WALCAST_SIG_INSERT || s->kind == WALCAST_SIG_UPDATE)
                for (size_t i = 0; i < r->key_columns.count; i++)
                        if (!has_column(&s->columns, r->key_columns.items[i])) {
                                e->rule_bad = true;
                                st->host->log(
                                    st->self, WALCAST_LOG_ERR,
                                    "table \"%s\".\"%s\" has no column "
                                    "\"%s\", which its column rule names in "
                                    "key_columns: not confirming past its "
                                    "changes; correct key_columns",
                                    printable(sq, sizeof(sq), s->schema,
                                              strlen(s->schema), 63),
                                    printable(tq, sizeof(tq), s->table,
                                              strlen(s->table), 63),
                                    r->key_columns.items[i]);
                                return -EINVAL;
                        }
        memset(out, 0, sizeof(*out));
        memcpy(out, s, n);
        out->size = (uint32_t)n;
        if (wc_kafka_rule_apply(r, st->mask_salt, &s->columns, &st->rout[0],
                                &out->columns) < 0 ||
            wc_kafka_rule_apply(r, st->mask_salt, &s->identity, &st->rout[1],
                                &out->identity) < 0 ||
            wc_kafka_rule_key(r, &st->rout[2], &out->pk) < 0)
                return -ENOMEM;
        if (WALCAST_HAS_FIELD(out, struct walcast_signal, completed) &&
            wc_kafka_rule_apply(r, st->mask_salt, &s->completed, &st->rout[3],
                                &out->completed) < 0)
                return -ENOMEM;
        /* the decoder's text is not these lists any more */
        if (WALCAST_HAS_FIELD(out, struct walcast_signal, columns_json)) {
                out->columns_json = out->identity_json = out->pk_json = NULL;
                out->columns_json_len = out->identity_json_len = 0;
                out->pk_json_len = 0;
        }
        return 0;
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

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the sink's own topics ---- */

/* The entry of one of the sink's own topics, its handle made at first
 * use (and again after a new producer); NULL when it cannot be made
 * (logged). */
static struct table_entry *own_topic(struct state *st, int which)
{
        struct table_entry *e = &st->own[which];

        if (!e->rkt) {
                if (create_topic(st, st->own_name[which]) < 0)
                        return NULL;
                e->rkt = rd_kafka_topic_new(st->rk, st->own_name[which], NULL);
                if (!e->rkt) {
                        st->host->log(st->self, WALCAST_LOG_ERR,
                                      "could not use topic \"%s\": %s",
                                      st->own_name[which],
                                      rd_kafka_err2str(rd_kafka_last_error()));
                        return NULL;
                }
        }
        return e;
}

static void tm_reset(struct txmeta *m)
{
        for (size_t i = 0; i < m->ncolls; i++)
                free((char *)m->colls[i].name);
        m->ncolls = 0;
        m->last = 0;
        m->total = 0;
        m->begun = false;
        m->valid = false;
}

/* The transactions topic's key and a BEGIN or END record of t into
 * st->key2 and st->value2. */
static int tm_record(struct state *st, bool end, const struct walcast_txn *t)
{
        int64_t us = t->commit_time_us;

        wc_buf_reset(&st->key2);
        wc_buf_reset(&st->value2);
        if (wc_dbz_format_txn_key(&st->key2, t->xid, t->commit_lsn, &st->dbz) <
                0 ||
            wc_dbz_format_txn_value(&st->value2, end, t->xid, t->commit_lsn,
                                    us >= 0 ? us / 1000 : -((-us + 999) / 1000),
                                    st->tm.total, st->tm.colls, st->tm.ncolls,
                                    &st->dbz) < 0)
                return -ENOMEM;
        return 0;
}

static bool is_collection(const struct wc_dbz_collection *c, const char *schema,
                          size_t slen, const char *table, size_t tlen)
{
        return c->len == slen + 1 + tlen &&
               memcmp(c->name, schema, slen) == 0 && c->name[slen] == '.' &&
               memcmp(c->name + slen + 1, table, tlen) == 0;
}

/*
 * A change of s's transaction goes out: its BEGIN first when it is the
 * first, then the counts; *blk is the change's transaction block.
 */
static int tm_event(struct state *st, const struct walcast_signal *s,
                    struct txn_rec *t, const struct txn_text *x,
                    struct wc_dbz_txblock *blk)
{
        struct txmeta *m = &st->tm;
        size_t slen = strlen(s->schema), tlen = strlen(s->table), i;
        struct wc_dbz_collection *c;

        if (!m->valid || m->id != s->txn->id) {
                tm_reset(m);
                m->valid = true;
                m->id = s->txn->id;
        }
        if (!m->begun) {
                struct table_entry *e = own_topic(st, OWN_TXN);
                char lsn[WC_UINT_MAX_DIGITS];
                struct wc_str l = {lsn,
                                   (size_t)(wc_put_uint(lsn, s->lsn) - lsn)};

                if (!e || tm_record(st, false, s->txn) < 0 ||
                    produce(st, e, t, x, &l, &st->key2, &st->value2) < 0)
                        return -EIO;
                m->begun = true;
        }
        i = m->last;
        if (i >= m->ncolls ||
            !is_collection(&m->colls[i], s->schema, slen, s->table, tlen))
                for (i = 0; i < m->ncolls; i++)
                        if (is_collection(&m->colls[i], s->schema, slen,
                                          s->table, tlen))
                                break;
        if (i == m->ncolls) {
                char *name;

                if (m->ncolls == m->cap) {
                        size_t cap = m->cap ? m->cap * 2 : 8;
                        void *p = realloc(m->colls, cap * sizeof(*m->colls));

                        if (!p)
                                return -ENOMEM;
                        m->colls = p;
                        m->cap = cap;
                }
                name = malloc(slen + tlen + 2);
                if (!name)
                        return -ENOMEM;
                memcpy(name, s->schema, slen);
                name[slen] = '.';
                memcpy(name + slen + 1, s->table, tlen + 1);
                m->colls[m->ncolls++] =
                    (struct wc_dbz_collection){name, slen + 1 + tlen, 0};
        }
        m->last = i;
        c = &m->colls[i];
        c->count++;
        m->total++;
        *blk = (struct wc_dbz_txblock){s->txn->xid, s->txn->commit_lsn,
                                       m->total, c->count};
        return 0;
}

/* At s's commit: the END record, when a BEGIN went out. */
static int tm_end(struct state *st, const struct walcast_signal *s,
                  struct txn_rec *t)
{
        const struct txn_text *x;
        struct table_entry *e;
        char lsn[WC_UINT_MAX_DIGITS];
        struct wc_str l;
        int r = 0;

        if (!st->tm.valid || !st->tm.begun || st->tm.id != s->txn->id)
                goto out;
        x = txn_text(st, s->txn);
        e = own_topic(st, OWN_TXN);
        l = (struct wc_str){
            lsn, (size_t)(wc_put_uint(lsn, s->txn->commit_lsn) - lsn)};
        if (!x || !e || tm_record(st, true, s->txn) < 0 ||
            produce(st, e, t, x, &l, &st->key2, &st->value2) < 0)
                r = -EIO;
out:
        tm_reset(&st->tm);
        return r;
}

/* send_change for value_format: debezium (sinks/kafka/debezium.h). */
static int32_t send_change_dbz(struct state *st, struct table_entry *e,
                               const struct walcast_signal *s, char op,
                               const struct walcast_columns *key_row,
                               const struct walcast_columns *before,
                               const struct walcast_columns *after,
                               bool tombstone)
{
        struct txn_rec *t = txn_get(st, s->txn);
        const struct txn_text *x = txn_text(st, s->txn);
        const struct wc_dbz_table tb = {st->prefix, st->database, s->schema,
                                        s->table};
        const struct wc_buf *key = NULL;
        char lsn[WC_UINT_MAX_DIGITS];
        struct wc_str l, schema = {NULL, 0};
        struct wc_dbz_txblock blk;
        int r;

        if (!t || !x)
                return WALCAST_ERROR;
        /* the enum types of the columns, as the catalog has them now
         * when not known yet (sinks/kafka/enums.h); their labels are in
         * the schemas only */
        if (st->dbz.schemas) {
                if (wc_kafka_enums_resolve(
                        &st->enums,
                        (const struct walcast_columns *const[]){key_row, before,
                                                                after},
                        3, mono_ms) < 0)
                        return WALCAST_ERROR;
                st->dbz.enums = st->enums.items;
                st->dbz.nenums = st->enums.n;
                st->dbz.enums_gen = st->enums.gen;
        }
        l = (struct wc_str){lsn, (size_t)(wc_put_uint(lsn, s->lsn) - lsn)};
        wc_buf_reset(&st->key);
        st->key_header = NULL;
        if (key_row && s->pk.count > 0) {
                r = wc_dbz_format_key_cached(&st->key, &e->dbz, &tb, &s->pk,
                                             key_row, &st->dbz);
                if (r == -ENOENT) {
                        /* as fallback_key: what the WAL holds */
                        warn_key(st, e, s);
                        tombstone = false;
                        st->key_header = "none";
                        r = 0;
                        if (s->identity.count > 0) {
                                st->key_header = "identity";
                                r = wc_dbz_format_key(&st->key, &tb,
                                                      &s->identity,
                                                      &s->identity, &st->dbz);
                        }
                }
                if (r < 0)
                        return WALCAST_ERROR;
                if (!st->key_header || s->identity.count > 0)
                        key = &st->key;
        }
        if (st->own_name[OWN_TXN] && tm_event(st, s, t, x, &blk) < 0)
                return WALCAST_ERROR;
        wc_buf_reset(&st->value);
        if (st->dbz.schemas &&
            wc_dbz_cached_schema(&e->dbz, &tb, before, after, &s->pk, &st->dbz,
                                 &schema) < 0)
                return WALCAST_ERROR;
        if (wc_dbz_format_value_cached(
                &st->value, &e->dbz, &schema, &tb, s, op, before, after,
                st->own_name[OWN_TXN] ? &blk : NULL, now_us(), &st->dbz) < 0)
                return WALCAST_ERROR;
        if (produce(st, e, t, x, &l, key, &st->value) < 0)
                return WALCAST_ERROR;
        if (tombstone && produce(st, e, t, x, &l, key, NULL) < 0)
                return WALCAST_ERROR;
        return WALCAST_OK;
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

        if (st->debezium)
                return send_change_dbz(st, e, s, op, key_row, before, after,
                                       tombstone);
        if (!t || !x)
                return WALCAST_ERROR;
        /* exactly_once: a failed transaction comes again whole; none of
         * it may go into the next Kafka transaction */
        if (st->eos.on && t->done)
                return WALCAST_OK;
        /* exactly_once, after a replay: a transaction that Kafka's open
         * (or committing) transaction holds already is not sent again; it
         * is acknowledged with it */
        if (st->eos.on && !t->eos_seen) {
                t->eos_seen = true;
                t->eos_skip = s->txn->end_lsn <= st->eos.produced_end;
                if (!t->eos_skip)
                        st->eos.produced_end = s->txn->end_lsn;
        }
        if (st->eos.on && t->eos_skip)
                return WALCAST_OK;
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
        parts.txblock = (struct wc_str){NULL, 0};
        if (st->own_name[OWN_TXN]) {
                struct wc_dbz_txblock blk;
                int n;

                if (tm_event(st, s, t, x, &blk) < 0)
                        return WALCAST_ERROR;
                n = snprintf(st->txblock, sizeof(st->txblock),
                             "{\"id\":\"%u:%llu\",\"total_order\":%llu,"
                             "\"data_collection_order\":%llu}",
                             blk.xid, (unsigned long long)blk.commit_lsn,
                             (unsigned long long)blk.total_order,
                             (unsigned long long)blk.data_collection_order);
                parts.txblock = (struct wc_str){st->txblock, (size_t)n};
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

/* ---- outbox ---- */

static const struct walcast_column *
column_named(const struct walcast_columns *l, const char *name)
{
        size_t n = strlen(name);

        for (uint32_t i = 0; i < l->count; i++)
                if (l->items[i].name_len == n &&
                    memcmp(l->items[i].name, name, n) == 0)
                        return &l->items[i];
        return NULL;
}

/* A column's value as text: a string's content unescaped into b, a
 * number's or boolean's token; false for null or no value. */
static bool value_text(const struct walcast_column *c, struct wc_buf *b)
{
        size_t len;

        wc_buf_reset(b);
        if (!c || !c->value || c->value_len == 0 ||
            (c->value_len == 4 && memcmp(c->value, "null", 4) == 0))
                return false;
        if (c->value[0] != '"')
                return wc_buf_append(b, c->value, c->value_len) == 0;
        if (wc_buf_append(b, c->value + 1, c->value_len - 1) < 0 ||
            wc_json_unescape_inplace(b->data, c->value_len - 2, &len) < 0)
                return false;
        b->len = len;
        return true;
}

/* The topic of an outbox event: the template with {aggregatetype} and the
 * table's placeholders filled in, into st->topic. */
static int outbox_topic(struct state *st, const struct walcast_signal *s,
                        const char *agg, size_t agg_len)
{
        const char *p = st->outbox.topic, *q;
        struct wc_buf seg;
        int r = 0;

        wc_buf_init(&seg);
        wc_buf_reset(&st->topic);
        for (;;) {
                q = strstr(p, "{aggregatetype}");
                wc_buf_reset(&seg);
                if (wc_buf_append(&seg, p, q ? (size_t)(q - p) : strlen(p)) <
                        0 ||
                    wc_buf_append(&seg, "", 0) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (seg.len &&
                    (r = wc_kafka_format_topic(&st->topic, seg.data, st->prefix,
                                               st->database, s)) < 0)
                        break;
                if (!q)
                        break;
                if (wc_buf_append(&st->topic, agg, agg_len) < 0) {
                        r = -ENOMEM;
                        break;
                }
                p = q + strlen("{aggregatetype}");
        }
        wc_buf_free(&seg);
        if (r == 0 && wc_buf_append(&st->topic, "", 0) < 0)
                r = -ENOMEM;
        return r;
}

/* The handle of an outbox topic, made at its first event. */
static struct table_entry *outbox_entry(struct state *st, const char *topic,
                                        size_t len)
{
        struct table_entry *e =
            wc_tablemap_get(st->outbox_topics, topic, len, "", 0);

        if (e)
                return e;
        if (create_topic(st, topic) < 0)
                return NULL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->rkt = rd_kafka_topic_new(st->rk, topic, NULL);
        if (!e->rkt) {
                st->host->log(st->self, WALCAST_LOG_ERR,
                              "could not use topic \"%s\": %s", topic,
                              rd_kafka_err2str(rd_kafka_last_error()));
                free(e);
                return NULL;
        }
        if (wc_tablemap_put(st->outbox_topics, topic, len, "", 0, e) < 0)
                return NULL; /* e is freed */
        return e;
}

/*
 * An insert into an outbox table: one event, to the topic its
 * aggregatetype makes, keyed by its aggregateid, valued with its payload
 * (the JSON document itself for json and jsonb), with the id and the
 * chosen columns as headers.
 */
static int32_t outbox_insert(struct state *st, struct table_entry *te,
                             const struct walcast_signal *s)
{
        const struct wc_kafka_outbox *o = &st->outbox;
        const struct walcast_column *agg =
            column_named(&s->columns, o->aggregatetype);
        const struct walcast_column *aid =
            column_named(&s->columns, o->aggregateid);
        const struct walcast_column *pay =
            column_named(&s->columns, o->payload);
        const struct walcast_column *id = column_named(&s->columns, o->id);
        struct txn_rec *t = txn_get(st, s->txn);
        const struct txn_text *x = txn_text(st, s->txn);
        char lsn[WC_UINT_MAX_DIGITS], sq[256], tq[256],
            tp[WC_TOPIC_MAX * 4 + 8];
        struct wc_buf agg_text, hv[17];
        const struct wc_buf *key = NULL, *value = NULL;
        struct table_entry *e;
        struct wc_str l;
        int32_t ret = WALCAST_ERROR;
        size_t nh = 0;

        (void)te;
        if (!t || !x)
                return WALCAST_ERROR;
        wc_buf_init(&agg_text);
        for (size_t i = 0; i < 17; i++)
                wc_buf_init(&hv[i]);
        if (!value_text(agg, &agg_text)) {
                st->host->log(
                    st->self, WALCAST_LOG_ERR,
                    "outbox table \"%s\".\"%s\": the row has no "
                    "value in \"%s\", which makes the topic: not "
                    "confirming past it; set outbox.columns."
                    "aggregatetype, or fill the column",
                    printable(sq, sizeof(sq), s->schema, strlen(s->schema), 63),
                    printable(tq, sizeof(tq), s->table, strlen(s->table), 63),
                    o->aggregatetype);
                goto out;
        }
        if (outbox_topic(st, s, agg_text.data, agg_text.len) < 0)
                goto out;
        if (!wc_topic_name_valid(st->topic.data, st->topic.len - 1)) {
                st->host->log(
                    st->self, WALCAST_LOG_ERR,
                    "outbox table \"%s\".\"%s\": the event makes the topic "
                    "name \"%s\", which is not a legal Kafka topic name (1 to "
                    "%d of letters, digits, \".\", \"_\" and \"-\"): not "
                    "confirming past it; change the aggregatetype or the "
                    "outbox topic template",
                    printable(sq, sizeof(sq), s->schema, strlen(s->schema), 63),
                    printable(tq, sizeof(tq), s->table, strlen(s->table), 63),
                    printable(tp, sizeof(tp), st->topic.data, st->topic.len - 1,
                              WC_TOPIC_MAX + 16),
                    WC_TOPIC_MAX);
                goto out;
        }
        e = outbox_entry(st, st->topic.data, st->topic.len - 1);
        if (!e)
                goto out;
        /* the key: the aggregate id as JSON, as walcast's keys are */
        wc_buf_reset(&st->key);
        if (aid && aid->value && aid->value_len) {
                if (wc_buf_append(&st->key, aid->value, aid->value_len) < 0)
                        goto out;
                key = &st->key;
        }
        wc_buf_reset(&st->value);
        if (pay && pay->value && pay->value_len &&
            !(pay->value_len == 4 && memcmp(pay->value, "null", 4) == 0)) {
                bool json = pay->type_oid == 114 || pay->type_oid == 3802;

                if (json) {
                        if (!value_text(pay, &st->value))
                                goto out;
                } else if (wc_buf_append(&st->value, pay->value,
                                         pay->value_len) < 0) {
                        goto out;
                }
                value = &st->value;
        }
        st->nxh = 0;
        if (value_text(id, &hv[nh])) {
                st->xh[st->nxh++] =
                    (__typeof__(st->xh[0])){"id", hv[nh].data, hv[nh].len};
                nh++;
        }
        for (size_t i = 0; i < o->headers.count && st->nxh < 16; i++) {
                const struct walcast_column *c =
                    column_named(&s->columns, o->headers.items[i]);

                if (!value_text(c, &hv[nh]))
                        continue;
                st->xh[st->nxh++] = (__typeof__(st->xh[0])){
                    o->headers.items[i], hv[nh].data, hv[nh].len};
                nh++;
        }
        l = (struct wc_str){lsn, (size_t)(wc_put_uint(lsn, s->lsn) - lsn)};
        st->key_header = NULL;
        if (produce(st, e, t, x, &l, key, value) == 0)
                ret = WALCAST_OK;
        st->nxh = 0;
out:
        wc_buf_free(&agg_text);
        for (size_t i = 0; i < 17; i++)
                wc_buf_free(&hv[i]);
        return ret;
}

/* An update or truncate of an outbox table: not an event (Debezium's
 * router ignores them too), said once per table. */
static int32_t outbox_other(struct state *st, struct table_entry *e,
                            const struct walcast_signal *s, const char *what)
{
        char sq[256], tq[256];

        if (e->warned_outbox)
                return WALCAST_OK;
        e->warned_outbox = true;
        st->host->log(
            st->self, WALCAST_LOG_WARNING,
            "outbox table \"%s\".\"%s\": %s not published: an outbox's "
            "events are its inserts",
            printable(sq, sizeof(sq), s->schema, strlen(s->schema), 63),
            printable(tq, sizeof(tq), s->table, strlen(s->table), 63), what);
        return WALCAST_OK;
}

static int32_t on_insert(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);
        struct walcast_signal ruled;

        if (!e)
                return ret;
        if (e->outbox)
                return outbox_insert(st, e, s);
        if (e->rule) {
                if (apply_rule(st, e, s, &ruled) < 0)
                        return WALCAST_ERROR;
                s = &ruled;
        }
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
        const struct walcast_columns *before;
        const struct walcast_columns *key_row;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);
        struct walcast_signal ruled;
        int r;

        if (!e)
                return ret;
        if (e->outbox)
                return outbox_other(st, e, s, "updates are");
        if (e->rule) {
                if (apply_rule(st, e, s, &ruled) < 0)
                        return WALCAST_ERROR;
                s = &ruled;
        }
        before = s->identity.count ? &s->identity : NULL;
        key_row = &s->columns;
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
        struct walcast_signal ruled;

        if (!e)
                return ret;
        /* the outbox pattern deletes its rows right after inserting
         * them: nothing to publish */
        if (e->outbox)
                return WALCAST_OK;
        if (e->rule) {
                if (apply_rule(st, e, s, &ruled) < 0)
                        return WALCAST_ERROR;
                s = &ruled;
        }
        return send_change(st, e, s, 'd', &s->identity, &s->identity, NULL,
                           st->tombstones);
}

static int32_t on_truncate(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        int32_t ret;
        struct table_entry *e = begin_change(st, s, &ret);
        struct walcast_signal ruled;

        if (!e)
                return ret;
        if (e->outbox)
                return outbox_other(st, e, s, "a truncate is");
        if (e->rule) {
                if (apply_rule(st, e, s, &ruled) < 0)
                        return WALCAST_ERROR;
                s = &ruled;
        }
        return send_change(st, e, s, 't', NULL, NULL, NULL, false);
}

/* A logical message: to heartbeat_topic when its prefix is the
 * heartbeats', to messages_topic otherwise; outside a transaction, kept
 * for the commit the host sends right after it. */
static int32_t on_message(void *userdata, const struct walcast_signal *s)
{
        struct state *st = userdata;
        bool hb = st->heartbeat_prefix && s->prefix &&
                  strcmp(s->prefix, st->heartbeat_prefix) == 0;
        int which = hb ? OWN_HB : OWN_MSG;
        struct wc_buf *key = &st->outside.key, *value = &st->outside.value;
        const struct wc_dbz_table tb = {st->prefix, st->database, "", ""};
        struct txn_rec *t;
        const struct txn_text *x;
        struct table_entry *e;
        char lsn[WC_UINT_MAX_DIGITS];
        struct wc_str l;
        int64_t now = now_us();
        int r;

        if (!st->own_name[which])
                return WALCAST_OK;
        if (st->fatal && producer_restart(st) < 0)
                return WALCAST_ERROR;
        wc_buf_reset(key);
        wc_buf_reset(value);
        if (hb)
                r = wc_dbz_format_heartbeat(key, value, st->prefix, now / 1000,
                                            &st->dbz);
        else if ((r = wc_dbz_format_message_key(key, s, &st->dbz)) == 0)
                r = wc_dbz_format_message_value(value, &tb, s, now, &st->dbz);
        if (r < 0)
                return WALCAST_ERROR;
        if (!s->txn) {
                st->outside.set = true;
                st->outside.which = which;
                st->outside.lsn = s->lsn;
                return WALCAST_OK;
        }
        t = txn_get(st, s->txn);
        x = txn_text(st, s->txn);
        e = own_topic(st, which);
        l = (struct wc_str){lsn, (size_t)(wc_put_uint(lsn, s->lsn) - lsn)};
        if (!t || !x || !e || produce(st, e, t, x, &l, key, value) < 0)
                return WALCAST_ERROR;
        return WALCAST_OK;
}

/* The message kept by on_message, under the id of the commit that follows
 * it. */
static int outside_produce(struct state *st, const struct walcast_signal *s)
{
        struct txn_rec *t = txn_get(st, s->txn);
        const struct txn_text *x = txn_text(st, s->txn);
        struct table_entry *e = own_topic(st, st->outside.which);
        char lsn[WC_UINT_MAX_DIGITS];
        struct wc_str l = {lsn,
                           (size_t)(wc_put_uint(lsn, st->outside.lsn) - lsn)};

        st->outside.set = false;
        if (!t || !x || !e ||
            produce(st, e, t, x, &l, &st->outside.key, &st->outside.value) < 0)
                return -EIO;
        return 0;
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
        struct txn_rec *t;

        if (st->outside.set && s->txn && outside_produce(st, s) < 0)
                return WALCAST_ERROR;
        t = st->cur;
        if (t && s->txn && t->id == s->txn->id && !t->done &&
            st->own_name[OWN_TXN] && tm_end(st, s, t) < 0)
                return WALCAST_ERROR;

        if (!t || !s->txn || t->id != s->txn->id) {
                if (t)
                        txn_abandon(st, t);
                /* nothing of it went to Kafka: done, whatever came
                 * before (the host's checkpoint keeps the order) */
                return WALCAST_OK;
        }
        st->cur = NULL;
        if (st->eos.on)
                return eos_on_commit(st, t, s->txn->end_lsn);
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

/* What the next init starts with (wc_kafka_plugin); walcastd starts its
 * sinks on one thread, and init takes it at once. */
static const struct wc_kafka_start *starting;

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
rd_kafka_conf_t *wc_kafka_new_conf(const struct wc_kv *props, size_t n,
                                   char *errbuf, size_t errlen)
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
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        if (!conf) {
                wc_errorf(errbuf, errlen, "out of memory");
                return NULL;
        }
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
                if (conf_set(conf, defaults[i][0], defaults[i][1], errbuf,
                             errlen) < 0)
                        goto err_destroy;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(props[i].key, "transactional.id") == 0) {
                        wc_errorf(errbuf, errlen,
                                  "Kafka property \"transactional.id\": "
                                  "set exactly_once: true (and "
                                  "transactional_id to choose it) instead");
                        goto err_destroy;
                }
                if (conf_set(conf, props[i].key, props[i].value, errbuf,
                             errlen) < 0)
                        goto err_destroy;
        }
        /* ours, whatever the properties said: callbacks only ever run on
         * walcastd's thread */
        if (conf_set(conf, "log.queue", "true", errbuf, errlen) < 0)
                goto err_destroy;
        /* librdkafka would read it only on its own threads, and crash */
        if (wc_kafka_oauth_check_conf(conf, errbuf, errlen) < 0)
                goto err_destroy;
        return conf;

err_destroy:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

int wc_kafka_check_properties(const struct wc_kv *props, size_t n, char *errbuf,
                              size_t errlen)
{
        rd_kafka_conf_t *conf = wc_kafka_new_conf(props, n, errbuf, errlen);

        if (!conf)
                return -EINVAL;
        rd_kafka_conf_destroy(conf);
        return 0;
}

static void close_state(void *state)
{
        struct state *st = state;

        if (!st)
                return;
        /* exactly_once: the open Kafka transaction is left to be aborted
         * by the next start; nothing of it was acknowledged */
        wc_kafka_eos_stop(st->eos.thr);
        st->eos.thr = NULL;
        if (st->rk && !st->eos.on) {
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
        wc_tablemap_free(st->outbox_topics);
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
        free(st->topic_tmpl);
        free(st->prefix);
        free(st->database);
        wc_buf_free(&st->key);
        wc_buf_free(&st->key2);
        wc_buf_free(&st->value);
        wc_buf_free(&st->topic);
        wc_buf_free(&st->txt.json);
        wc_buf_free(&st->value2);
        wc_buf_free(&st->outside.key);
        wc_buf_free(&st->outside.value);
        tm_reset(&st->tm);
        free(st->tm.colls);
        for (int i = 0; i < OWN__COUNT; i++)
                free(st->own_name[i]);
        free(st->heartbeat_prefix);
        wc_kafka_enums_free(&st->enums);
        if (st->catalog_conn)
                st->catalog->close(st->catalog_conn);
        for (size_t i = 0; i < st->nrules; i++)
                wc_kafka_column_rule_free(&st->rules[i]);
        free(st->rules);
        free(st->mask_salt);
        for (int i = 0; i < 4; i++)
                wc_kafka_rule_out_free(&st->rout[i]);
        wc_pattern_list_free(&st->outbox.tables);
        wc_pattern_list_free(&st->outbox.headers);
        free(st->outbox.topic);
        free(st->outbox.id);
        free(st->outbox.aggregatetype);
        free(st->outbox.aggregateid);
        free(st->outbox.type);
        free(st->outbox.payload);
        wc_kv_free(st->tc.config, st->tc.nconfig);
        wc_tablemap_free(st->topics_made);
        free(st->eos.ids);
        free(st->eos.topic);
        wc_buf_free(&st->eos.key);
        free(st);
}

static void enums_log(void *ud, int level, const char *msg)
{
        struct state *st = ud;

        st->host->log(st->self, level, "%s", msg);
}

/* value_format: debezium: the enum types the catalog had at start (sorted
 * by oid, copied), and the lookups of those met since. */
static int enums_start(struct state *st, const struct wc_kafka_start *s)
{
        st->enums.log = enums_log;
        st->enums.log_ud = st;
        /* without schemas an enum is a string like any other */
        if (s->dsn && s->catalog && st->dbz.schemas) {
                st->catalog = s->catalog;
                st->catalog_conn = s->catalog->open(s->dsn);
                if (!st->catalog_conn)
                        return -ENOMEM;
                st->enums.lookup = s->catalog->enum_labels;
                st->enums.lookup_ud = st->catalog_conn;
        }
        if (wc_kafka_enums_seed(&st->enums, s->enums, s->nenums) < 0)
                return -ENOMEM;
        st->dbz.enums = st->enums.items;
        st->dbz.nenums = st->enums.n;
        st->dbz.enums_gen = st->enums.gen;
        return 0;
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
        const struct wc_kafka_start *s = starting;
        const struct wc_kafka_sink_config *conf;
        unsigned fields;
        struct state *st;
        int r;

        /* the settings are handed over once, for this call */
        starting = NULL;
        start_error = 0;
        if (!s) {
                wc_errorf(errbuf, errlen,
                          "the Kafka sink starts only with its settings "
                          "(wc_kafka_plugin)");
                return WALCAST_ERROR;
        }
        conf = s->conf;

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
        wc_buf_init(&st->value2);
        wc_buf_init(&st->outside.key);
        wc_buf_init(&st->outside.value);

        st->topic_tmpl = strdup(conf->topic);
        st->prefix = strdup(conf->prefix);
        st->database = strdup(s->database ? s->database : "");
        if (!st->topic_tmpl || !st->prefix || !st->database) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->tombstones = conf->tombstones;
        st->debezium = conf->value_format == WC_KAFKA_FORMAT_DEBEZIUM;
        st->dbz = (struct wc_dbz_options){
            .decimal = (enum wc_dbz_decimal)conf->decimal_handling,
            .time = (enum wc_dbz_time)conf->time_precision,
            .schemas = conf->schemas_enable,
        };
        if (st->debezium && enums_start(st, s) < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        {
                const char *own[OWN__COUNT] = {conf->transactions_topic,
                                               conf->messages_topic,
                                               conf->heartbeat_topic};

                for (int i = 0; i < OWN__COUNT; i++)
                        if (own[i] && !(st->own_name[i] = strdup(own[i]))) {
                                wc_errorf(errbuf, errlen, "out of memory");
                                goto err_close;
                        }
        }
        if (conf->ncolumn_rules &&
            wc_kafka_column_rules_copy(conf->column_rules, conf->ncolumn_rules,
                                       &st->rules) < 0) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->nrules = st->rules ? conf->ncolumn_rules : 0;
        if (conf->outbox.tables.count) {
                const struct wc_kafka_outbox *o = &conf->outbox;
                struct wc_kafka_column_rule tmp = {.tables = o->tables,
                                                   .exclude = o->headers},
                                            *copy = NULL;

                /* the two pattern lists copied as a rule's */
                if (wc_kafka_column_rules_copy(&tmp, 1, &copy) < 0)
                        goto oom;
                st->outbox.tables = copy->tables;
                st->outbox.headers = copy->exclude;
                wc_pattern_list_free(&copy->mask);
                wc_pattern_list_free(&copy->key_columns);
                free(copy);
                st->outbox.topic = strdup(o->topic);
                st->outbox.id = strdup(o->id);
                st->outbox.aggregatetype = strdup(o->aggregatetype);
                st->outbox.aggregateid = strdup(o->aggregateid);
                st->outbox.type = strdup(o->type);
                st->outbox.payload = strdup(o->payload);
                st->outbox_topics =
                    wc_tablemap_new(TABLES_MAX, table_entry_free);
                if (!st->outbox.topic || !st->outbox.id ||
                    !st->outbox.aggregatetype || !st->outbox.aggregateid ||
                    !st->outbox.type || !st->outbox.payload ||
                    !st->outbox_topics)
                        goto oom;
        }
        st->tc = conf->topic_creation;
        st->tc.config = NULL;
        st->tc.nconfig = 0;
        if (st->tc.enabled &&
            !(st->topics_made = wc_tablemap_new(TABLES_MAX, NULL)))
                goto oom;
        if (conf->topic_creation.nconfig) {
                st->tc.config = calloc(conf->topic_creation.nconfig,
                                       sizeof(*st->tc.config));
                if (!st->tc.config)
                        goto oom;
                for (size_t i = 0; i < conf->topic_creation.nconfig; i++) {
                        st->tc.config[i].key =
                            strdup(conf->topic_creation.config[i].key);
                        st->tc.config[i].value =
                            strdup(conf->topic_creation.config[i].value);
                        st->tc.nconfig = i + 1;
                        if (!st->tc.config[i].key || !st->tc.config[i].value)
                                goto oom;
                }
        }
        if (conf->mask_salt && !(st->mask_salt = strdup(conf->mask_salt))) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->heartbeat_prefix =
            strdup(conf->heartbeat_prefix ? conf->heartbeat_prefix
                                          : "walcast.heartbeat");
        if (!st->heartbeat_prefix) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
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
        st->tables = wc_tablemap_new(TABLES_MAX, table_entry_free);
        if (!st->tables) {
                wc_errorf(errbuf, errlen, "out of memory");
                goto err_close;
        }
        st->conf = wc_kafka_new_conf(conf->properties, conf->nproperties,
                                     errbuf, errlen);
        if (!st->conf)
                goto err_close;
        if (conf->exactly_once && eos_conf(st, s, errbuf, errlen) < 0)
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
        if (st->eos.on && (r = eos_start(st, s, errbuf, errlen)) < 0) {
                /* Kafka not answering, or another walcastd active: not
                 * a matter of the configuration */
                if (r == -EIO || r == -ESTALE)
                        start_error = r;
                goto err_close;
        }
        if (host->watch_fd(self, st->pipe[0], POLLIN, on_events, st) !=
            WALCAST_OK) {
                wc_errorf(errbuf, errlen,
                          "could not watch the producer's events");
                goto err_close;
        }
        for (uint32_t k = 0; k < WALCAST_SIG__COUNT; k++)
                if (handlers[k] && host->connect(self, k, NULL, NULL,
                                                 handlers[k], st) != WALCAST_OK)
                        goto err_connect;
        if ((st->own_name[OWN_MSG] || st->own_name[OWN_HB]) &&
            host->connect(self, WALCAST_SIG_MESSAGE, NULL, NULL, on_message,
                          st) != WALCAST_OK)
                goto err_connect;
        if (host->connect(self, WALCAST_SIG_BEGIN, NULL, NULL, on_begin, st) !=
                WALCAST_OK ||
            host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_commit,
                          st) != WALCAST_OK)
                goto err_connect;
        *ret_state = st;
        return WALCAST_OK;

oom:
        wc_errorf(errbuf, errlen, "out of memory");
        goto err_close;
err_connect:
        wc_errorf(errbuf, errlen,
                  "could not connect the Kafka sink's handlers");
err_close:
        close_state(st);
        return WALCAST_ERROR;
}

const struct walcast_plugin_descriptor *
wc_kafka_plugin(const struct wc_kafka_start *s)
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

        starting = s;
        return &d;
}
