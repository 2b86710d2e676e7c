/* SPDX-License-Identifier: MIT */
/* The Kafka sink's exactly-once mode: what sinks/kafka/txn.h says. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "core/core.h"
#include "core/kv.h"
#include "sinks/kafka/txn.h"

/* ---- the pure part ---- */

int wc_kafka_txn_id(char *out, size_t len, uint64_t sysid, const char *database,
                    const char *slot)
{
        int n = snprintf(out, len, "walcast-%" PRIu64 "-%s-%s", sysid,
                         database ? database : "", slot ? slot : "");

        if (n < 0 || (size_t)n >= len)
                return -ENAMETOOLONG;
        return 0;
}

int wc_kafka_offsets_key(struct wc_buf *out, uint64_t sysid,
                         const char *database, const char *slot)
{
        database = database ? database : "";
        slot = slot ? slot : "";
        if (wc_buf_append_str(out, "{\"system_identifier\":\"") < 0 ||
            wc_buf_append_uint(out, sysid) < 0 ||
            wc_buf_append_str(out, "\",\"database\":") < 0 ||
            wc_json_append_string(out, database, strlen(database)) < 0 ||
            wc_buf_append_str(out, ",\"slot\":") < 0 ||
            wc_json_append_string(out, slot, strlen(slot)) < 0 ||
            wc_buf_append_char(out, '}') < 0)
                return -ENOMEM;
        return 0;
}

int wc_kafka_offsets_value(struct wc_buf *out, uint64_t end_lsn)
{
        char lsn[WC_LSN_STRLEN];

        if (wc_buf_append_str(out, "{\"end_lsn\":") < 0 ||
            wc_buf_append_uint(out, end_lsn) < 0 ||
            wc_buf_printf(out, ",\"end_lsn_text\":\"%s\"}",
                          wc_lsn_format(end_lsn, lsn)) < 0)
                return -ENOMEM;
        return 0;
}

int wc_kafka_offsets_parse(const void *value, size_t len, uint64_t *end_lsn,
                           char *errbuf, size_t errlen)
{
        static const char head[] = "{\"end_lsn\":";
        const char *p = value, *end;
        uint64_t v = 0;
        size_t digits = 0;

        /* a null value (a tombstone) is no position: end stays unset */
        if (!p || len < sizeof(head) - 1 ||
            memcmp(p, head, sizeof(head) - 1) != 0)
                goto bad;
        end = p + len;
        for (p += sizeof(head) - 1; p < end && *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
                        goto bad;
                v = v * 10 + (uint64_t)(*p - '0');
                digits++;
        }
        if (digits == 0 || p == end || (*p != ',' && *p != '}') ||
            end[-1] != '}')
                goto bad;
        *end_lsn = v;
        return 0;

bad:
        wc_errorf(errbuf, errlen,
                  "the offsets record's value is not {\"end_lsn\":N,...}");
        return -EINVAL;
}

/* ---- the system identifier ---- */

int wc_kafka_system_identifier(const char *dsn, uint64_t *ret, char *errbuf,
                               size_t errlen)
{
        const char *keys[] = {"dbname", "replication", "connect_timeout",
                              "application_name", NULL};
        const char *vals[] = {dsn, "database", "10", "walcast-kafka-eos", NULL};
        PGconn *c;
        PGresult *res = NULL;
        char *end;
        int r = -EIO;

        /* expand_dbname: dsn's own settings win over the ones after it,
         * except replication, which must be ours */
        c = PQconnectdbParams(keys, vals, 1);
        if (!c || PQstatus(c) != CONNECTION_OK) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not connect to learn the "
                          "server's system identifier: %s",
                          c ? PQerrorMessage(c) : "out of memory");
                goto out;
        }
        res = PQexec(c, "IDENTIFY_SYSTEM");
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
            PQnfields(res) < 1) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: IDENTIFY_SYSTEM failed: %s",
                          PQerrorMessage(c));
                goto out;
        }
        errno = 0;
        *ret = strtoull(PQgetvalue(res, 0, 0), &end, 10);
        if (errno || *end || end == PQgetvalue(res, 0, 0)) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: IDENTIFY_SYSTEM gave system "
                          "identifier \"%s\"",
                          PQgetvalue(res, 0, 0));
                goto out;
        }
        r = 0;
out:
        PQclear(res);
        PQfinish(c);
        return r;
}

/* ---- the position read back ---- */

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads [from, to) of partition 0, keeping the value of the last record
 * with key.  1 found, 0 not, <0 with errbuf set.
 */
static int scan(rd_kafka_t *rk, const char *topic, const struct wc_buf *key,
                int64_t from, int64_t to, int64_t deadline, uint64_t *ret,
                char *errbuf, size_t errlen)
{
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(1);
        int found = 0;
        rd_kafka_resp_err_t err;

        if (!parts) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = from;
        err = rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not read topic \"%s\": %s",
                          topic, rd_kafka_err2str(err));
                return -EIO;
        }
        for (;;) {
                int64_t left = deadline - mono_ms();
                rd_kafka_message_t *m;

                if (left <= 0) {
                        wc_errorf(errbuf, errlen,
                                  "exactly_once: timed out reading the "
                                  "committed position from topic \"%s\"; "
                                  "is Kafka reachable?",
                                  topic);
                        found = -ETIMEDOUT;
                        break;
                }
                m = rd_kafka_consumer_poll(rk, left > 200 ? 200 : (int)left);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        rd_kafka_message_destroy(m);
                        break;
                }
                if (m->err) {
                        wc_errorf(errbuf, errlen,
                                  "exactly_once: could not read topic "
                                  "\"%s\": %s",
                                  topic, rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        found = -EIO;
                        break;
                }
                if (m->offset < to && m->key && m->key_len == key->len &&
                    memcmp(m->key, key->data, key->len) == 0 && m->payload) {
                        if (wc_kafka_offsets_parse(m->payload, m->len, ret,
                                                   errbuf, errlen) < 0) {
                                rd_kafka_message_destroy(m);
                                found = -EINVAL;
                                break;
                        }
                        found = 1;
                }
                if (m->offset + 1 >= to) {
                        rd_kafka_message_destroy(m);
                        break;
                }
                rd_kafka_message_destroy(m);
        }
        (void)rd_kafka_assign(rk, NULL);
        return found;
}

int wc_kafka_offsets_read(const struct wc_kv *props, size_t n,
                          const char *topic, const struct wc_buf *key,
                          int timeout_ms, uint64_t *ret, char *errbuf,
                          size_t errlen)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk = NULL;
        int64_t deadline = mono_ms() + timeout_ms, lo = 0, hi = 0, from;
        int64_t window = 64;
        rd_kafka_resp_err_t err;
        char msg[512];
        int r = -EIO;

        *ret = 0;
        if (!conf) {
                wc_errorf(errbuf, errlen, "out of memory");
                return -ENOMEM;
        }
        /* the connection settings are the producer's; what only a
         * producer takes is refused here and does not matter */
        for (size_t i = 0; i < n; i++)
                if (strcmp(props[i].key, "transactional.id") != 0)
                        (void)rd_kafka_conf_set(conf, props[i].key,
                                                props[i].value, msg,
                                                sizeof(msg));
        if (rd_kafka_conf_set(conf, "isolation.level", "read_committed", msg,
                              sizeof(msg)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.partition.eof", "true", msg,
                              sizeof(msg)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "enable.auto.commit", "false", msg,
                              sizeof(msg)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "group.id", "walcast-offsets-reader", msg,
                              sizeof(msg)) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_set(conf, "log_level", "3", msg, sizeof(msg)) !=
                RD_KAFKA_CONF_OK) {
                wc_errorf(errbuf, errlen, "exactly_once: %s", msg);
                rd_kafka_conf_destroy(conf);
                return -EINVAL;
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not create a consumer: %s", msg);
                return -EINVAL;
        }
        for (;;) {
                int64_t left = deadline - mono_ms();

                err = rd_kafka_query_watermark_offsets(
                    rk, topic, 0, &lo, &hi,
                    left > 1000 ? 1000 : (left > 0 ? (int)left : 1));
                if (err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                    err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION) {
                        /* nothing was ever committed */
                        r = 0;
                        goto out;
                }
                if (!err)
                        break;
                if (mono_ms() >= deadline) {
                        wc_errorf(errbuf, errlen,
                                  "exactly_once: could not read the "
                                  "committed position from topic \"%s\": "
                                  "%s; is Kafka reachable?",
                                  topic, rd_kafka_err2str(err));
                        r = -ETIMEDOUT;
                        goto out;
                }
        }
        /* the record is near the end: one per batch of this slot, among
         * other slots' */
        r = 0;
        for (int64_t to = hi; to > lo; to = from) {
                from = to - window > lo ? to - window : lo;
                r = scan(rk, topic, key, from, to, deadline, ret, errbuf,
                         errlen);
                if (r != 0)
                        break;
                window *= 2;
        }
        r = r < 0 ? r : 0;
out:
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return r;
}

/* ---- transactions ---- */

int wc_kafka_eos_is_fenced(rd_kafka_resp_err_t err)
{
        return err == RD_KAFKA_RESP_ERR__FENCED ||
               err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
               err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

/* The code that made a fatal error fatal, when librdkafka knows it. */
static rd_kafka_resp_err_t fatal_code(rd_kafka_t *rk, rd_kafka_error_t *error)
{
        char why[256];
        rd_kafka_resp_err_t f = rd_kafka_fatal_error(rk, why, sizeof(why));

        return f ? f : rd_kafka_error_code(error);
}

int wc_kafka_eos_init(rd_kafka_t *rk, int timeout_ms, char *errbuf,
                      size_t errlen)
{
        rd_kafka_error_t *error = rd_kafka_init_transactions(rk, timeout_ms);
        int r = 0;

        if (!error)
                error = rd_kafka_begin_transaction(rk);
        if (error) {
                r = rd_kafka_error_is_fatal(error) &&
                            wc_kafka_eos_is_fenced(fatal_code(rk, error))
                        ? -ESTALE
                        : -EIO;
                wc_errorf(errbuf, errlen,
                          "exactly_once: could not start the transactional "
                          "producer: %s%s",
                          rd_kafka_error_string(error),
                          r == -ESTALE ? "" : "; is Kafka reachable?");
                rd_kafka_error_destroy(error);
        }
        return r;
}

struct wc_kafka_eos {
        rd_kafka_t *rk;
        int wake_fd;
        int tick_ms;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool commit; /* requested */
        bool abort;  /* requested */
        bool armed;  /* a batch is open: tick */
        bool quit;
        enum wc_kafka_eos_result result;
        char why[512];
};

static void wake(struct wc_kafka_eos *e)
{
        /* a full pipe is awake already */
        if (write(e->wake_fd, "t", 1) < 0 && errno != EAGAIN)
                return;
}

static void finish(struct wc_kafka_eos *e, enum wc_kafka_eos_result res,
                   rd_kafka_error_t *error)
{
        pthread_mutex_lock(&e->lock);
        e->result = res;
        snprintf(e->why, sizeof(e->why), "%s",
                 error ? rd_kafka_error_string(error) : "");
        pthread_mutex_unlock(&e->lock);
        wake(e);
}

static bool quitting(struct wc_kafka_eos *e)
{
        bool q;

        pthread_mutex_lock(&e->lock);
        q = e->quit;
        pthread_mutex_unlock(&e->lock);
        return q;
}

/* Aborts the open transaction and begins the next: true when done. */
static bool abort_and_begin(struct wc_kafka_eos *e, rd_kafka_error_t **ret)
{
        rd_kafka_error_t *error;

        for (;;) {
                error = rd_kafka_abort_transaction(e->rk, 1000);
                if (!error)
                        break;
                if (rd_kafka_error_is_retriable(error) && !quitting(e)) {
                        rd_kafka_error_destroy(error);
                        continue;
                }
                *ret = error;
                return false;
        }
        error = rd_kafka_begin_transaction(e->rk);
        if (error) {
                *ret = error;
                return false;
        }
        return true;
}

/* One commit request to its end. */
static void commit(struct wc_kafka_eos *e)
{
        rd_kafka_error_t *error, *err2 = NULL;

        for (;;) {
                /* a second at a time, so that a stop is heard; a commit
                 * that timed out is resumed by the next call */
                error = rd_kafka_commit_transaction(e->rk, 1000);
                if (!error)
                        break;
                if (rd_kafka_error_is_fatal(error)) {
                        finish(e,
                               wc_kafka_eos_is_fenced(fatal_code(e->rk, error))
                                   ? WC_KAFKA_EOS_FENCED
                                   : WC_KAFKA_EOS_FATAL,
                               error);
                        rd_kafka_error_destroy(error);
                        return;
                }
                if (rd_kafka_error_txn_requires_abort(error)) {
                        if (!abort_and_begin(e, &err2)) {
                                rd_kafka_error_destroy(error);
                                finish(e,
                                       err2 && rd_kafka_error_is_fatal(err2) &&
                                               wc_kafka_eos_is_fenced(
                                                   fatal_code(e->rk, err2))
                                           ? WC_KAFKA_EOS_FENCED
                                           : WC_KAFKA_EOS_FATAL,
                                       err2);
                                if (err2)
                                        rd_kafka_error_destroy(err2);
                                return;
                        }
                        finish(e, WC_KAFKA_EOS_ABORTED, error);
                        rd_kafka_error_destroy(error);
                        return;
                }
                /* retriable (a broker down, a timeout): again */
                rd_kafka_error_destroy(error);
                if (quitting(e))
                        return;
        }
        error = rd_kafka_begin_transaction(e->rk);
        if (error) {
                finish(e, WC_KAFKA_EOS_FATAL, error);
                rd_kafka_error_destroy(error);
                return;
        }
        finish(e, WC_KAFKA_EOS_COMMITTED, NULL);
}

/* One abort request to its end. */
static void abort_request(struct wc_kafka_eos *e)
{
        rd_kafka_error_t *error = NULL;

        if (abort_and_begin(e, &error)) {
                finish(e, WC_KAFKA_EOS_ABORTED, NULL);
                return;
        }
        finish(e,
               error && rd_kafka_error_is_fatal(error) &&
                       wc_kafka_eos_is_fenced(fatal_code(e->rk, error))
                   ? WC_KAFKA_EOS_FENCED
                   : WC_KAFKA_EOS_FATAL,
               error);
        if (error)
                rd_kafka_error_destroy(error);
}

static void *run(void *arg)
{
        struct wc_kafka_eos *e = arg;

        pthread_mutex_lock(&e->lock);
        while (!e->quit) {
                struct timespec ts;

                if (e->commit) {
                        e->commit = false;
                        pthread_mutex_unlock(&e->lock);
                        commit(e);
                        pthread_mutex_lock(&e->lock);
                        continue;
                }
                if (e->abort) {
                        e->abort = false;
                        pthread_mutex_unlock(&e->lock);
                        abort_request(e);
                        pthread_mutex_lock(&e->lock);
                        continue;
                }
                if (!e->armed) {
                        /* idle: nothing to time */
                        pthread_cond_wait(&e->cond, &e->lock);
                        continue;
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += (long)(e->tick_ms % 1000) * 1000000L;
                ts.tv_sec += e->tick_ms / 1000 + ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) ==
                    ETIMEDOUT) {
                        /* time to look at the batch's age */
                        pthread_mutex_unlock(&e->lock);
                        wake(e);
                        pthread_mutex_lock(&e->lock);
                }
        }
        pthread_mutex_unlock(&e->lock);
        return NULL;
}

struct wc_kafka_eos *wc_kafka_eos_start(rd_kafka_t *rk, int wake_fd,
                                        int tick_ms)
{
        struct wc_kafka_eos *e = calloc(1, sizeof(*e));
        pthread_condattr_t ca;

        if (!e)
                return NULL;
        e->rk = rk;
        e->wake_fd = wake_fd;
        e->tick_ms = tick_ms > 0 ? tick_ms : 100;
        pthread_mutex_init(&e->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&e->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&e->thread, NULL, run, e) != 0) {
                pthread_cond_destroy(&e->cond);
                pthread_mutex_destroy(&e->lock);
                free(e);
                return NULL;
        }
        return e;
}

void wc_kafka_eos_commit(struct wc_kafka_eos *e)
{
        pthread_mutex_lock(&e->lock);
        e->commit = true;
        e->result = WC_KAFKA_EOS_NONE;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
}

void wc_kafka_eos_arm(struct wc_kafka_eos *e, bool on)
{
        pthread_mutex_lock(&e->lock);
        if (e->armed != on) {
                e->armed = on;
                pthread_cond_signal(&e->cond);
        }
        pthread_mutex_unlock(&e->lock);
}

void wc_kafka_eos_abort(struct wc_kafka_eos *e)
{
        pthread_mutex_lock(&e->lock);
        e->abort = true;
        e->result = WC_KAFKA_EOS_NONE;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
}

enum wc_kafka_eos_result wc_kafka_eos_poll(struct wc_kafka_eos *e, char *why,
                                           size_t len)
{
        enum wc_kafka_eos_result r;

        pthread_mutex_lock(&e->lock);
        r = e->result;
        e->result = WC_KAFKA_EOS_NONE;
        if (why && len)
                snprintf(why, len, "%s", e->why);
        pthread_mutex_unlock(&e->lock);
        return r;
}

void wc_kafka_eos_stop(struct wc_kafka_eos *e)
{
        if (!e)
                return;
        pthread_mutex_lock(&e->lock);
        e->quit = true;
        pthread_cond_signal(&e->cond);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->thread, NULL);
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        free(e);
}
