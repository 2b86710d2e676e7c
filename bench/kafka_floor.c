/* SPDX-License-Identifier: MIT */
/*
 * kafka_floor: what librdkafka alone costs to produce the messages the
 * Kafka sink produced, so that the sink's CPU per change can be set
 * against the part of it no code of walcast's can remove.
 *
 *     kafka_floor [-r RATE] [-b BURST] BOOTSTRAP DUMP [NAME=VALUE ...]
 *
 * DUMP has one message per line, in the order to produce them:
 *
 *     topic TAB key TAB value TAB lsn TAB commit_lsn TAB xid
 *
 * an empty key or value standing for null (a JSON text is never empty);
 * bench/kafka-floor writes it from what walcastd put into Kafka.  The
 * producer is the sink's: wc_kafka_new_conf() with walcast's defaults
 * and the NAME=VALUE properties over them, a copy of key and value per
 * message, the three walcast.* headers, delivery reports served from
 * this thread.  Every message must be delivered, or it exits 1.
 *
 * It produces BURST messages (default 256), serves the delivery reports
 * that have come, and, with -r, sleeps until RATE messages per second are
 * due: librdkafka's CPU per message depends on the pace and on how many
 * messages each wake-up of the producing thread brings (bench/kafka.md),
 * so the floor is measured at walcastd's pace.  Without -r, as fast as
 * the queue takes them.
 *
 * Prints one line: the CPU seconds of the whole process (librdkafka's
 * threads with it; CLOCK_PROCESS_CPUTIME_ID) from the producer's creation
 * to the last delivery report, the reading of DUMP left out; the number
 * of messages; the wall seconds; and that CPU time split into user and
 * system as getrusage() has it (Linux splits by clock ticks: the sum is
 * exact, the split an estimate).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "core/kv.h"
#include "sinks/kafka/kafka.h"

#define MAX_PROPS  64
#define MAX_TOPICS 256
#define FIELDS     6

struct msg {
        char *f[FIELDS];  /* topic, key, value, lsn, commit_lsn, xid */
        size_t n[FIELDS]; /* their lengths */
        size_t topic;     /* index in topics[] */
};

/* The sink keeps a topic handle per table: so does this. */
static const char *topics[MAX_TOPICS];
static size_t ntopics;

/* The dump, freed at exit whichever way the program ends. */
static struct msg *msgs;
static size_t count;

/* The sink's librdkafka properties as its block holds them: name, value
 * (the command line's, split in place). */
struct props {
        struct wc_kv kv[MAX_PROPS];
        size_t count;
};

static long delivered, failed;

static int set_prop(struct props *p, char *name, char *value)
{
        if (p->count == MAX_PROPS) {
                fprintf(stderr, "kafka_floor: too many properties\n");
                return -1;
        }
        p->kv[p->count++] = (struct wc_kv){name, value};
        return 0;
}

/* NAME=VALUE from the command line (split in place). */
static int add_prop(struct props *p, char *arg)
{
        char *eq = strchr(arg, '=');

        if (!eq || eq == arg) {
                fprintf(stderr, "kafka_floor: \"%s\": want NAME=VALUE\n", arg);
                return -1;
        }
        *eq = '\0';
        return set_prop(p, arg, eq + 1);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        (void)rk;
        (void)opaque;
        if (m->err) {
                if (!failed)
                        fprintf(stderr, "kafka_floor: delivery to %s: %s\n",
                                rd_kafka_topic_name(m->rkt),
                                rd_kafka_err2str(m->err));
                failed++;
        } else {
                delivered++;
        }
}

static size_t topic_index(const char *name)
{
        size_t i;

        for (i = 0; i < ntopics; i++)
                if (strcmp(topics[i], name) == 0)
                        return i;
        if (ntopics == MAX_TOPICS) {
                fprintf(stderr, "kafka_floor: more than %d topics\n",
                        MAX_TOPICS);
                exit(2);
        }
        topics[ntopics] = name;
        return ntopics++;
}

static void free_msgs(void)
{
        for (size_t i = 0; i < count; i++)
                free(msgs[i].f[0]); /* the line */
        free(msgs);
}

/* The lines of the file at path into msgs, count, split in place; exits
 * on bad input. */
static void load(const char *path)
{
        FILE *f = fopen(path, "r");
        size_t cap = 0, lineno = 0;
        char *line = NULL;
        size_t linecap = 0;
        ssize_t len;

        if (!f) {
                fprintf(stderr, "kafka_floor: %s: %s\n", path, strerror(errno));
                exit(2);
        }
        while ((len = getline(&line, &linecap, f)) > 0) {
                char *p = line;

                lineno++;
                if (line[len - 1] == '\n')
                        line[--len] = '\0';
                if (count == cap) {
                        struct msg *grown;

                        cap = cap ? 2 * cap : 4096;
                        grown = realloc(msgs, cap * sizeof(*msgs));
                        if (!grown) {
                                fprintf(stderr, "kafka_floor: out of memory\n");
                                exit(2);
                        }
                        msgs = grown;
                }
                for (int i = 0; i < FIELDS; i++) {
                        char *tab = strchr(p, '\t');

                        if ((i < FIELDS - 1) != (tab != NULL)) {
                                fprintf(stderr,
                                        "kafka_floor: %s:%zu: want %d "
                                        "tab-separated fields\n",
                                        path, lineno, FIELDS);
                                free(line);
                                exit(2);
                        }
                        if (tab)
                                *tab = '\0';
                        msgs[count].n[i] = strlen(p);
                        msgs[count].f[i] = p;
                        p = tab + 1;
                }
                msgs[count].topic = topic_index(msgs[count].f[0]);
                count++;
                line = NULL; /* the message keeps it */
                linecap = 0;
        }
        free(line);
        fclose(f);
}

static double seconds(struct timeval tv)
{
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double since(const struct timespec *a, const struct timespec *b)
{
        return (double)(b->tv_sec - a->tv_sec) +
               (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Sleeps until `done` messages are due at `rate` per second from t0. */
static void pace(const struct timespec *t0, double rate, size_t done)
{
        struct timespec now, d;
        double ahead;

        clock_gettime(CLOCK_MONOTONIC, &now);
        ahead = (double)done / rate - since(t0, &now);
        if (ahead <= 0)
                return;
        d.tv_sec = (time_t)ahead;
        d.tv_nsec = (long)((ahead - (double)d.tv_sec) * 1e9);
        nanosleep(&d, NULL);
}

static void usage(void)
{
        fprintf(stderr, "usage: kafka_floor [-r RATE] [-b BURST] BOOTSTRAP "
                        "DUMP [NAME=VALUE ...]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        struct props props = {.count = 0};
        struct rusage r0, r1;
        struct timespec t0, t1, c0, c1;
        double rate = 0;
        long burst = 256;
        int opt;
        char err[512];
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt[MAX_TOPICS];

        while ((opt = getopt(argc, argv, "r:b:")) != -1) {
                char *end = NULL;

                if (opt == 'r')
                        rate = strtod(optarg, &end);
                else if (opt == 'b')
                        burst = strtol(optarg, &end, 10);
                else
                        usage();
                if (!end || *end || rate < 0 || burst < 1)
                        usage();
        }
        if (argc - optind < 2)
                usage();
        atexit(free_msgs);
        load(argv[optind + 1]);
        if (set_prop(&props, (char *)"bootstrap.servers", argv[optind]) < 0)
                return 2;
        for (int i = optind + 2; i < argc; i++)
                if (add_prop(&props, argv[i]) < 0)
                        return 2;

        getrusage(RUSAGE_SELF, &r0);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        conf = wc_kafka_new_conf(props.kv, props.count, err, sizeof(err));
        if (!conf) {
                fprintf(stderr, "kafka_floor: %s\n", err);
                return 2;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!rk) {
                fprintf(stderr, "kafka_floor: %s\n", err);
                return 2;
        }
        for (size_t i = 0; i < ntopics; i++) {
                rkt[i] = rd_kafka_topic_new(rk, topics[i], NULL);
                if (!rkt[i]) {
                        fprintf(stderr, "kafka_floor: topic %s: %s\n",
                                topics[i],
                                rd_kafka_err2str(rd_kafka_last_error()));
                        return 2;
                }
        }
        for (size_t i = 0; i < count; i++) {
                const struct msg *m = &msgs[i];
                rd_kafka_headers_t *h = rd_kafka_headers_new(3);
                rd_kafka_error_t *e;

                rd_kafka_header_add(h, "walcast.lsn", 11, m->f[3],
                                    (ssize_t)m->n[3]);
                rd_kafka_header_add(h, "walcast.commit_lsn", 18, m->f[4],
                                    (ssize_t)m->n[4]);
                rd_kafka_header_add(h, "walcast.xid", 11, m->f[5],
                                    (ssize_t)m->n[5]);
                for (;;) {
                        /* the sink's call */
                        rd_kafka_vu_t vu[] = {
                            {.vtype = RD_KAFKA_VTYPE_RKT,
                             .u.rkt = rkt[m->topic]},
                            {.vtype = RD_KAFKA_VTYPE_MSGFLAGS,
                             .u.i = RD_KAFKA_MSG_F_COPY},
                            {.vtype = RD_KAFKA_VTYPE_KEY,
                             .u.mem = {m->n[1] ? m->f[1] : NULL, m->n[1]}},
                            {.vtype = RD_KAFKA_VTYPE_VALUE,
                             .u.mem = {m->n[2] ? m->f[2] : NULL, m->n[2]}},
                            {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = h},
                        };

                        e = rd_kafka_produceva(rk, vu,
                                               sizeof(vu) / sizeof(vu[0]));
                        if (!e)
                                break;
                        if (rd_kafka_error_code(e) !=
                            RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                fprintf(stderr, "kafka_floor: produce: %s\n",
                                        rd_kafka_error_string(e));
                                rd_kafka_error_destroy(e);
                                rd_kafka_headers_destroy(h);
                                return 1;
                        }
                        rd_kafka_error_destroy(e);
                        rd_kafka_poll(rk, 10);
                }
                /* the sink serves reports at each wake-up of its loop */
                if ((i + 1) % (size_t)burst == 0) {
                        rd_kafka_poll(rk, 0);
                        if (rate > 0)
                                pace(&t0, rate, i + 1);
                }
        }
        while (delivered + failed < (long)count)
                rd_kafka_poll(rk, 100);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        getrusage(RUSAGE_SELF, &r1);
        for (size_t i = 0; i < ntopics; i++)
                rd_kafka_topic_destroy(rkt[i]);
        rd_kafka_destroy(rk);
        if (failed) {
                fprintf(stderr, "kafka_floor: %ld of %zu messages failed\n",
                        failed, count);
                return 1;
        }
        printf("cpu %.3f messages %zu wall %.3f user %.3f sys %.3f\n",
               since(&c0, &c1), count, since(&t0, &t1),
               seconds(r1.ru_utime) - seconds(r0.ru_utime),
               seconds(r1.ru_stime) - seconds(r0.ru_stime));
        return 0;
}
