/* SPDX-License-Identifier: MIT */
/*
 * kafka_mock: librdkafka's mock cluster as a standalone process, the Kafka
 * of the integration tests.  It listens on real TCP ports of 127.0.0.1, so
 * walcastd, kcat and any librdkafka client talk to it as to a broker.
 *
 *     kafka_mock [BROKERS]            (default 1, at most 32)
 *
 * Prints the bootstrap servers as its first line on stdout, then reads
 * one command per line on stdin and answers each with one line, "ok" or
 * "error: ...", so that a test can wait for a command to take effect:
 *
 *     down BROKER_ID                  the broker stops serving
 *     up BROKER_ID                    and comes back
 *     error API_KEY COUNT ERRCODE     the next COUNT requests of API_KEY
 *                                     fail with ERRCODE
 *     topic NAME PARTITIONS [REPLICATION]
 *     topic-error NAME ERRCODE        every request for the topic fails
 *                                     (ERRCODE 0 clears it)
 *     quit
 *
 * API_KEY is a number or Produce, Fetch, ListOffsets, Metadata,
 * FindCoordinator, InitProducerId; ERRCODE a number or a librdkafka error
 * name without the RD_KAFKA_RESP_ERR_ prefix (MSG_SIZE_TOO_LARGE).
 * EOF on stdin, SIGTERM and SIGINT stop it cleanly.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS  32
#define LINE_MAX_LEN 1024

struct mock {
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mc;
        int nbrokers;
        bool quit;
};

static const struct {
        const char *name;
        int16_t key;
} api_keys[] = {
    {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"InitProducerId", 22}, {"ApiVersions", 18},
};

static bool parse_long(const char *s, long min, long max, long *ret)
{
        char *end;
        long v;

        if (!s || !*s)
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static bool parse_api_key(const char *s, int16_t *ret)
{
        long v;

        for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
                if (strcasecmp(s, api_keys[i].name) == 0) {
                        *ret = api_keys[i].key;
                        return true;
                }
        }
        if (!parse_long(s, 0, INT16_MAX, &v))
                return false;
        *ret = (int16_t)v;
        return true;
}

static bool parse_errcode(const char *s, rd_kafka_resp_err_t *ret)
{
        const struct rd_kafka_err_desc *descs;
        size_t n;
        long v;

        if (parse_long(s, -200, 1000, &v)) {
                *ret = (rd_kafka_resp_err_t)v;
                return true;
        }
        if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
                s += 18;
        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++) {
                if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
                        *ret = descs[i].code;
                        return true;
                }
        }
        return false;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void reply(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static void reply_err(rd_kafka_resp_err_t err)
{
        if (err)
                reply("error: %s", rd_kafka_err2str(err));
        else
                reply("ok");
}

static void run_command(struct mock *m, char *line)
{
        char *argv[5];
        int argc = 0;
        char *save = NULL;
        rd_kafka_resp_err_t code;
        int16_t api;
        long id, cnt, parts, repl;

        for (char *tok = strtok_r(line, " \t\r", &save); tok && argc < 5;
             tok = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = tok;
        if (argc == 0)
                return;

        if (strcmp(argv[0], "quit") == 0 && argc == 1) {
                m->quit = true;
                reply("ok");
        } else if ((strcmp(argv[0], "down") == 0 ||
                    strcmp(argv[0], "up") == 0) &&
                   argc == 2) {
                if (!parse_long(argv[1], 1, m->nbrokers, &id)) {
                        reply("error: no broker %s (ids are 1 to %d)", argv[1],
                              m->nbrokers);
                        return;
                }
                reply_err(
                    argv[0][0] == 'd'
                        ? rd_kafka_mock_broker_set_down(m->mc, (int32_t)id)
                        : rd_kafka_mock_broker_set_up(m->mc, (int32_t)id));
        } else if (strcmp(argv[0], "error") == 0 && argc == 4) {
                rd_kafka_resp_err_t *codes;

                if (!parse_api_key(argv[1], &api) ||
                    !parse_long(argv[2], 1, 1000000, &cnt) ||
                    !parse_errcode(argv[3], &code)) {
                        reply("error: usage: error API_KEY COUNT ERRCODE");
                        return;
                }
                codes = malloc((size_t)cnt * sizeof(*codes));
                if (!codes) {
                        reply("error: out of memory");
                        return;
                }
                for (long i = 0; i < cnt; i++)
                        codes[i] = code;
                rd_kafka_mock_push_request_errors_array(m->mc, api, (size_t)cnt,
                                                        codes);
                free(codes);
                reply("ok");
        } else if (strcmp(argv[0], "topic") == 0 && (argc == 3 || argc == 4)) {
                repl = m->nbrokers < 3 ? m->nbrokers : 3;
                if (!parse_long(argv[2], 1, 100000, &parts) ||
                    (argc == 4 &&
                     !parse_long(argv[3], 1, m->nbrokers, &repl))) {
                        reply("error: usage: topic NAME PARTITIONS "
                              "[REPLICATION]");
                        return;
                }
                reply_err(rd_kafka_mock_topic_create(m->mc, argv[1], (int)parts,
                                                     (int)repl));
        } else if (strcmp(argv[0], "topic-error") == 0 && argc == 3) {
                if (!parse_errcode(argv[2], &code)) {
                        reply("error: unknown error code %s", argv[2]);
                        return;
                }
                rd_kafka_mock_topic_set_error(m->mc, argv[1], code);
                reply("ok");
        } else {
                reply("error: unknown command \"%s\" or wrong arguments",
                      argv[0]);
        }
}

/* Reads what stdin has and runs every complete line.  false at EOF. */
static bool read_commands(struct mock *m, char *buf, size_t *len)
{
        ssize_t n = read(STDIN_FILENO, buf + *len, LINE_MAX_LEN - 1 - *len);
        char *start = buf, *nl;

        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        *len += (size_t)n;
        buf[*len] = '\0';
        while (!m->quit &&
               (nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
                *nl = '\0';
                run_command(m, start);
                start = nl + 1;
        }
        *len -= (size_t)(start - buf);
        memmove(buf, start, *len);
        /* a line longer than the buffer is no command of ours */
        if (*len == LINE_MAX_LEN - 1) {
                reply("error: line too long");
                *len = 0;
        }
        return true;
}

int main(int argc, char **argv)
{
        struct mock m = {.nbrokers = 1};
        char errstr[512], buf[LINE_MAX_LEN];
        rd_kafka_conf_t *conf;
        sigset_t mask;
        size_t len = 0;
        long n;
        int sigfd, rc = 1;

        if (argc > 2 ||
            (argc == 2 && !parse_long(argv[1], 1, MAX_BROKERS, &n))) {
                fprintf(stderr, "usage: %s [BROKERS]   (1 to %d)\n", argv[0],
                        MAX_BROKERS);
                return 2;
        }
        if (argc == 2)
                m.nbrokers = (int)n;

        /* signals through a descriptor: the loop below is the only place
         * that decides to stop */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGPIPE);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                perror("sigprocmask");
                return 1;
        }
        sigdelset(&mask, SIGPIPE);
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sigfd < 0) {
                perror("signalfd");
                return 1;
        }

        /* the handle only hosts the cluster; it connects to nothing */
        conf = rd_kafka_conf_new();
        /* warnings and errors only: the handle's own notice that it has
         * no brokers to connect to is no news here */
        rd_kafka_conf_set(conf, "log_level", "4", NULL, 0);
        m.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!m.rk) {
                /* rd_kafka_new takes ownership of conf only on success */
                rd_kafka_conf_destroy(conf);
                fprintf(stderr, "kafka_mock: %s\n", errstr);
                goto out_close;
        }
        m.mc = rd_kafka_mock_cluster_new(m.rk, m.nbrokers);
        if (!m.mc) {
                fprintf(stderr, "kafka_mock: could not start the mock "
                                "cluster\n");
                goto out_destroy;
        }
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(m.mc));
        fflush(stdout);

        while (!m.quit) {
                struct pollfd pfd[2] = {
                    {.fd = STDIN_FILENO, .events = POLLIN},
                    {.fd = sigfd, .events = POLLIN},
                };

                if (poll(pfd, 2, 1000) < 0 && errno != EINTR) {
                        perror("poll");
                        goto out_mock;
                }
                if (pfd[1].revents & POLLIN)
                        break;
                if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR) &&
                    !read_commands(&m, buf, &len))
                        break;
                /* nothing is produced here, but events must not pile up */
                rd_kafka_poll(m.rk, 0);
        }
        rc = 0;

out_mock:
        rd_kafka_mock_cluster_destroy(m.mc);
out_destroy:
        rd_kafka_destroy(m.rk);
out_close:
        close(sigfd);
        return rc;
}
