/* SPDX-License-Identifier: MIT */
/*
 * The Kafka sink's exactly-once mode (docs/kafka.md, "Exactly once"): a
 * transactional producer, one Kafka transaction per batch of PostgreSQL
 * transactions, and the batch's end position written in the same Kafka
 * transaction to the compacted offsets topic, from which the next start
 * reads it back.
 *
 * librdkafka's transactional calls block (commit waits for every message
 * and for the coordinator): they run on a thread of the sink's own, which
 * reports each outcome and wakes walcastd's poll() loop through the
 * descriptor the sink already watches, and ticks while a batch is open.  The
 * start (init_transactions, the position read back) is bounded and happens
 * while walcastd starts the sink, before it streams.
 */
#ifndef WALCAST_SINKS_KAFKA_TXN_H
#define WALCAST_SINKS_KAFKA_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "core/core.h"
#include "core/kv.h"

/* How long the start may wait for Kafka (init_transactions, the position
 * read back) before the sink refuses to start. */
#define WC_KAFKA_EOS_START_MS 30000

/*
 * The default transactional.id of a slot:
 *   walcast-<system identifier>-<database>-<slot>
 * 0, or -ENAMETOOLONG when it does not fit in len bytes.
 */
int wc_kafka_txn_id(char *out, size_t len, uint64_t sysid, const char *database,
                    const char *slot);

/*
 * The offsets topic's record.  The key names the slot:
 *   {"system_identifier":"<decimal>","database":"..","slot":".."}
 * and the value holds the end position of the last PostgreSQL transaction
 * the Kafka transaction carried, as a number and as PostgreSQL writes it:
 *   {"end_lsn":<decimal>,"end_lsn_text":"X/Y"}
 * Appends; 0 or -ENOMEM.
 */
int wc_kafka_offsets_key(struct wc_buf *out, uint64_t sysid,
                         const char *database, const char *slot);
int wc_kafka_offsets_value(struct wc_buf *out, uint64_t end_lsn);

/* The end_lsn of a value of the form above: 0, or -EINVAL for anything
 * else (named in errbuf). */
int wc_kafka_offsets_parse(const void *value, size_t len, uint64_t *end_lsn,
                           char *errbuf, size_t errlen);

/*
 * The server's system identifier, from IDENTIFY_SYSTEM on a replication
 * connection of its own to dsn (the role walcastd streams with may run it;
 * no function privilege needed).  Blocks up to connect_timeout (10 s when
 * the dsn names none).  0, or <0 with errbuf set.
 */
int wc_kafka_system_identifier(const char *dsn, uint64_t *ret, char *errbuf,
                               size_t errlen);

/*
 * The last position committed for key in partition 0 of topic, read with
 * a read_committed consumer made from props (the sink's librdkafka
 * properties; producer-only ones are ignored).  *ret 0 when the topic or
 * the key is not there yet.  Blocks up to timeout_ms.  0, or <0 with
 * errbuf set.
 */
int wc_kafka_offsets_read(const struct wc_kv *props, size_t n,
                          const char *topic, const struct wc_buf *key,
                          int timeout_ms, uint64_t *ret, char *errbuf,
                          size_t errlen);

/* What the committing thread says of the last request. */
enum wc_kafka_eos_result {
        WC_KAFKA_EOS_NONE = 0,  /* nothing new */
        WC_KAFKA_EOS_COMMITTED, /* committed; a new transaction is open */
        WC_KAFKA_EOS_ABORTED,   /* it could not commit: aborted, a new one
                                   is open; everything in it comes again */
        WC_KAFKA_EOS_FENCED,    /* another producer has the transactional
                                   id: stop */
        WC_KAFKA_EOS_FATAL,     /* the producer cannot go on: stop */
};

struct wc_kafka_eos;

/*
 * The committing thread for rk, whose transactions were initialized and
 * the first one begun.  It writes one byte to wake_fd after each outcome,
 * and every tick_ms, so that the owner checks its batch's age.  NULL when
 * out of memory or threads.
 */
struct wc_kafka_eos *wc_kafka_eos_start(rd_kafka_t *rk, int wake_fd,
                                        int tick_ms);

/* Whether a batch is open: the thread ticks only then (an idle sink does
 * not wake walcastd). */
void wc_kafka_eos_arm(struct wc_kafka_eos *e, bool on);

/* Asks the thread to commit the open transaction (one request at a
 * time). */
void wc_kafka_eos_commit(struct wc_kafka_eos *e);

/* Asks the thread to abort the open transaction and begin the next
 * (ABORTED when done). */
void wc_kafka_eos_abort(struct wc_kafka_eos *e);

/* The outcome of the last request, once (NONE while it runs); why gets
 * librdkafka's message for anything but COMMITTED. */
enum wc_kafka_eos_result wc_kafka_eos_poll(struct wc_kafka_eos *e, char *why,
                                           size_t len);

/* Stops and joins the thread (a commit in progress gives up within a
 * second: what it held was never acknowledged).  Accepts NULL. */
void wc_kafka_eos_stop(struct wc_kafka_eos *e);

/*
 * Transactions initialized and the first one begun, within timeout_ms.
 * 0, -ESTALE when fenced, or <0 with errbuf set.
 */
int wc_kafka_eos_init(rd_kafka_t *rk, int timeout_ms, char *errbuf,
                      size_t errlen);

/* True when err (librdkafka's) means another producer took the id. */
int wc_kafka_eos_is_fenced(rd_kafka_resp_err_t err);

#endif
