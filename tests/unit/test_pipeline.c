/* SPDX-License-Identifier: MIT */
/*
 * The pipeline: recorded wal2json messages through decode, filter, the
 * signal bus and plugins written here, and the checkpoint — the position
 * moves only over transactions every sink acknowledged, whatever order
 * the acknowledgements come in; a failure asks for a replay; a table the
 * filter drops cannot stop the others; limits hold the reading back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <walcast/plugin.h>

#include "bus/bus.h"
#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "decode/decoder.h"
#include "pipeline/pipeline.h"
#include "host/host.h"
#include "core/filter.h"

#define START 0x1500000ull /* the slot's confirmed position */

/* ---- a sink that holds its acknowledgements: it answers when told ---- */

#define MAX_HELD 16

static struct slow {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        struct walcast_txn held[MAX_HELD]; /* commits, in order */
        size_t nheld;
        size_t inserts;
        bool fail_inserts;
} slow;

static int32_t slow_commit(void *ud, const struct walcast_signal *sig)
{
        (void)ud;
        assert_true(slow.nheld < MAX_HELD);
        slow.held[slow.nheld++] = *sig->txn;
        return WALCAST_PENDING;
}

static int32_t slow_insert(void *ud, const struct walcast_signal *sig)
{
        (void)ud;
        (void)sig;
        slow.inserts++;
        return slow.fail_inserts ? WALCAST_ERROR : WALCAST_OK;
}

static int32_t slow_init(const struct walcast_host *host,
                         struct walcast_plugin *self, void **ret_state,
                         char *errbuf, size_t errlen)
{
        (void)ret_state;
        (void)errbuf;
        (void)errlen;
        slow.host = host;
        slow.self = self;
        host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, slow_commit, NULL);
        host->connect(self, WALCAST_SIG_INSERT, NULL, NULL, slow_insert, NULL);
        return WALCAST_OK;
}

static const struct walcast_plugin_descriptor slow_plugin = {
    .abi_major = WALCAST_ABI_MAJOR,
    .size = sizeof(struct walcast_plugin_descriptor),
    .abi_minor = WALCAST_ABI_MINOR,
    .name = "slow",
    .version = "1",
    .init = slow_init,
};

/* ---- a sink without a commit handler: it acknowledges at each commit */

static size_t quick_signals;

static int32_t quick_any(void *ud, const struct walcast_signal *sig)
{
        (void)ud;
        (void)sig;
        quick_signals++;
        return WALCAST_OK;
}

static int32_t quick_init(const struct walcast_host *host,
                          struct walcast_plugin *self, void **ret_state,
                          char *errbuf, size_t errlen)
{
        (void)ret_state;
        (void)errbuf;
        (void)errlen;
        for (uint32_t k = WALCAST_SIG_INSERT; k <= WALCAST_SIG_MESSAGE; k++)
                if (k != WALCAST_SIG_BULK_DELETE)
                        host->connect(self, k, NULL, NULL, quick_any, NULL);
        return WALCAST_OK;
}

static const struct walcast_plugin_descriptor quick_plugin = {
    .abi_major = WALCAST_ABI_MAJOR,
    .size = sizeof(struct walcast_plugin_descriptor),
    .abi_minor = WALCAST_ABI_MINOR,
    .name = "quick",
    .version = "1",
    .init = quick_init,
};

/* ---- a sink that keeps a position (ABI 1.4): it reports what it holds
 * at init and after each acknowledgement, and records what it gets ---- */

#define MAX_GOT 16

static struct keeper {
        const struct walcast_host *host;
        struct walcast_plugin *self;
        uint64_t start;                  /* the position it reports at init */
        struct walcast_txn got[MAX_GOT]; /* its commits, in order */
        size_t ngot;
        size_t changes;
        bool pending; /* acknowledges later, through keeper_ack() */
} keeper;

static int32_t keeper_change(void *ud, const struct walcast_signal *sig)
{
        (void)ud;
        (void)sig;
        keeper.changes++;
        return WALCAST_OK;
}

static int32_t keeper_commit(void *ud, const struct walcast_signal *sig)
{
        (void)ud;
        assert_true(keeper.ngot < MAX_GOT);
        keeper.got[keeper.ngot++] = *sig->txn;
        if (keeper.pending)
                return WALCAST_PENDING;
        if (sig->txn->end_lsn)
                keeper.host->position(keeper.self, sig->txn->end_lsn);
        return WALCAST_OK;
}

/* the i-th commit it got is durable: acknowledged, and its position */
static void keeper_ack(size_t i)
{
        assert_true(i < keeper.ngot);
        assert_int_equal(
            keeper.host->ack(keeper.self, keeper.got[i].id, WALCAST_OK),
            WALCAST_OK);
        assert_int_equal(
            keeper.host->position(keeper.self, keeper.got[i].end_lsn),
            WALCAST_OK);
}

static int32_t keeper_init(const struct walcast_host *host,
                           struct walcast_plugin *self, void **ret_state,
                           char *errbuf, size_t errlen)
{
        (void)ret_state;
        (void)errbuf;
        (void)errlen;
        keeper.host = host;
        keeper.self = self;
        assert_true(WALCAST_HAS_FIELD(host, struct walcast_host, position));
        for (uint32_t k = WALCAST_SIG_INSERT; k <= WALCAST_SIG_MESSAGE; k++)
                if (k != WALCAST_SIG_BULK_DELETE)
                        host->connect(self, k, NULL, NULL, keeper_change, NULL);
        host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, keeper_commit,
                      NULL);
        return host->position(self, keeper.start);
}

static const struct walcast_plugin_descriptor keeper_plugin = {
    .abi_major = WALCAST_ABI_MAJOR,
    .size = sizeof(struct walcast_plugin_descriptor),
    .abi_minor = WALCAST_ABI_MINOR,
    .name = "keeper",
    .version = "1",
    .init = keeper_init,
};

/* ---- the fixture ---- */

struct fx {
        struct wc_filter_config filter;
        struct wc_decoder *dec;
        struct wc_filter *route;
        struct wc_bus *bus;
        struct wc_plugin_host *host;
        struct wc_plugin_host_ops host_ops;
        struct wc_checkpoint *cp;
        struct wc_pipeline *p;
        struct wc_pipeline_ops ops;
        struct wc_pipeline_config cfg;
        /* what the pipeline reported */
        unsigned failures;
        char failed_sink[64];
        bool failed_in_handler;
        struct wc_bus_error where;
        unsigned begins, changes, commits;
        struct walcast_txn last_commit;
        char debug[2048];
        /* the recorded messages */
        char *lines[64];
        size_t nlines;
};

static void on_failed(void *ud, const char *sink, const struct wc_bus_error *e)
{
        struct fx *f = ud;

        f->failures++;
        snprintf(f->failed_sink, sizeof(f->failed_sink), "%s", sink);
        f->failed_in_handler = e != NULL;
        if (e)
                f->where = *e;
}

static void on_begin(void *ud, const struct walcast_txn *txn)
{
        (void)txn;
        ((struct fx *)ud)->begins++;
}

static void on_change(void *ud, const struct wc_change *c)
{
        (void)c;
        ((struct fx *)ud)->changes++;
}

static void on_commit(void *ud, const struct walcast_txn *txn)
{
        struct fx *f = ud;

        f->commits++;
        f->last_commit = *txn;
}

static void on_debug(void *ud, const char *msg)
{
        struct fx *f = ud;

        snprintf(f->debug, sizeof(f->debug), "%s", msg);
}

/* the plugin host's acknowledgements go to the pipeline, as in walcastd */
static void host_ack(void *ud, const char *plugin, uint64_t id, int32_t st)
{
        struct fx *f = ud;

        wc_pipeline_ack(f->p, plugin, id, st);
}

static void host_log(void *ud, const char *plugin, enum wc_log_level level,
                     const char *msg)
{
        (void)ud;
        (void)plugin;
        (void)level;
        (void)msg;
}

static void load_lines(struct fx *f, const char *name)
{
        const char *dir = getenv("WC_TEST_DATA");
        char path[4096], buf[65536];
        FILE *in;

        snprintf(path, sizeof(path), "%s/wal2json/%s", dir ? dir : "tests/data",
                 name);
        in = fopen(path, "r");
        assert_non_null(in);
        while (fgets(buf, sizeof(buf), in) && f->nlines < 64) {
                buf[strcspn(buf, "\n")] = '\0';
                f->lines[f->nlines] = strdup(buf);
                assert_non_null(f->lines[f->nlines]);
                f->nlines++;
        }
        fclose(in);
}

static char *excluded[] = {"public.secret"};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        char err[1024];

        assert_non_null(f);
        memset(&slow, 0, sizeof(slow));
        memset(&keeper, 0, sizeof(keeper));
        quick_signals = 0;
        f->filter.ops = WC_OPS_DATA;
        f->filter.tables_exclude = (struct wc_pattern_list){excluded, 1};
        f->dec = wc_decoder_new(wc_decoder_default);
        f->route = wc_filter_new(&f->filter);
        f->bus = wc_bus_new(1000);
        f->host_ops = (struct wc_plugin_host_ops){
            .log = host_log, .ack = host_ack, .ud = f};
        f->host = wc_plugin_host_new(f->bus, &f->host_ops);
        f->cp = wc_checkpoint_new(START);
        assert_non_null(f->dec);
        assert_non_null(f->route);
        assert_non_null(f->host);
        assert_non_null(f->cp);
        assert_int_equal(wc_plugin_host_add(f->host, "slow", &slow_plugin, NULL,
                                            NULL, 0, err, sizeof(err)),
                         0);
        assert_int_equal(wc_plugin_host_add(f->host, "quick", &quick_plugin,
                                            NULL, NULL, 0, err, sizeof(err)),
                         0);
        f->ops = (struct wc_pipeline_ops){.begin = on_begin,
                                          .change = on_change,
                                          .commit = on_commit,
                                          .failed = on_failed,
                                          .debug = on_debug,
                                          .ud = f};
        f->cfg = (struct wc_pipeline_config){
            .decoder = f->dec,
            .route = f->route,
            .bus = f->bus,
            .host = f->host,
            .checkpoint = f->cp,
            .heartbeat_prefix = "walcast_heartbeat",
            .max_in_flight_changes = 1000,
            .max_in_flight_bytes = 1 << 20,
        };
        f->p = wc_pipeline_new(&f->cfg, &f->ops);
        assert_non_null(f->p);
        wc_pipeline_restart(f->p, START);
        load_lines(f, "basic.jsonl");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        wc_plugin_host_free(f->host);
        wc_bus_free(f->bus);
        wc_pipeline_free(f->p);
        wc_checkpoint_free(f->cp);
        wc_filter_free(f->route);
        wc_decoder_free(f->dec);
        for (size_t i = 0; i < f->nlines; i++)
                free(f->lines[i]);
        free(f);
        return 0;
}

/* One message through the pipeline, from a buffer of its own as the
 * stream's would be. */
static int feed_text(struct fx *f, const char *text, char *err, size_t errlen)
{
        char *buf = strdup(text);
        int r;

        assert_non_null(buf);
        r = wc_pipeline_message(f->p, buf, strlen(buf), 0x1000, err, errlen);
        free(buf);
        return r;
}

/* Lines [from, to) of basic.jsonl (1-based, as an editor shows them). */
static void feed(struct fx *f, size_t from, size_t to)
{
        char err[1024];

        for (size_t i = from; i < to; i++) {
                assert_true(i - 1 < f->nlines);
                err[0] = '\0';
                if (feed_text(f, f->lines[i - 1], err, sizeof(err)) != 0)
                        fail_msg("line %zu: %s", i, err);
        }
}

static void ack(size_t i, int32_t status)
{
        assert_true(i < slow.nheld);
        assert_int_equal(slow.host->ack(slow.self, slow.held[i].id, status),
                         WALCAST_OK);
}

/* ---- the cases ---- */

/* transactions 725, 726 and 727: lines 1-13 */
static void out_of_order_acks(void **state)
{
        struct fx *f = *state;

        feed(f, 1, 14);
        assert_int_equal(f->begins, 3);
        assert_int_equal(f->commits, 3);
        assert_int_equal(f->changes, 7);
        assert_false(wc_pipeline_in_txn(f->p));
        assert_true(wc_pipeline_read_to(f->p) == 0x1538FE8);
        assert_int_equal(slow.nheld, 3);
        assert_int_equal(slow.held[0].xid, 725);
        assert_true(slow.held[2].end_lsn == 0x1538FE8);
        /* quick acknowledged each at its commit; slow holds them all */
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 3);
        assert_true(wc_checkpoint_confirmed(f->cp) == START);

        /* the later ones first: nothing can be confirmed yet */
        ack(2, WALCAST_OK);
        ack(1, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == START);
        /* (held until the prefix before them is done) */
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 3);
        /* the first one: everything up to the newest */
        ack(0, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538FE8);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 0);
        assert_int_equal(f->failures, 0);
}

/* a transaction still open moves nothing, even when every one before it
 * is acknowledged */
static void open_transaction_holds(void **state)
{
        struct fx *f = *state;

        feed(f, 1, 6); /* 725 whole, 726's begin and first insert */
        assert_true(wc_pipeline_in_txn(f->p));
        assert_int_equal(wc_pipeline_txn(f->p, NULL)->xid, 726);
        ack(0, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 1);
        feed(f, 6, 10);
        assert_false(wc_pipeline_in_txn(f->p));
        ack(1, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538F28);
}

static void failed_ack_asks_for_replay(void **state)
{
        struct fx *f = *state;

        feed(f, 1, 14);
        ack(1, WALCAST_ERROR);
        assert_int_equal(f->failures, 1);
        assert_string_equal(f->failed_sink, "slow");
        assert_false(f->failed_in_handler);
        /* what came after the failure is not confirmed past it */
        ack(2, WALCAST_OK);
        ack(0, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);

        /* the caller replays: everything in flight is forgotten, a late
         * acknowledgement of it counts for nothing */
        wc_pipeline_reset(f->p);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 0);
        ack(1, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);

        /* read again from the confirmed position: 726 and 727 */
        wc_pipeline_restart(f->p, wc_checkpoint_confirmed(f->cp));
        slow.nheld = 0;
        feed(f, 4, 14);
        assert_int_equal(slow.nheld, 2);
        assert_int_equal(slow.held[0].xid, 726);
        ack(1, WALCAST_OK);
        ack(0, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538FE8);
        assert_int_equal(f->failures, 1);
}

static void failed_handler_asks_for_replay(void **state)
{
        struct fx *f = *state;
        char err[1024];

        slow.fail_inserts = true;
        feed(f, 1, 2);
        /* a handler's failure is reported, and is no error of the read */
        assert_int_equal(feed_text(f, f->lines[1], err, sizeof(err)), 0);
        assert_int_equal(f->failures, 1);
        assert_string_equal(f->failed_sink, "slow");
        assert_true(f->failed_in_handler);
        assert_int_equal(f->where.kind, WALCAST_SIG_INSERT);
        assert_string_equal(f->where.schema, "public");
        assert_string_equal(f->where.table, "tickets");
        assert_true(f->where.lsn == 0x1538C18);
        /* nothing is counted as delivered */
        assert_int_equal(f->changes, 0);
}

/* A message of a table the filter drops that does not decode is skipped;
 * one of any other table stops the reading before it. */
static void undecodable_message(void **state)
{
        struct fx *f = *state;
        static const char secret[] =
            "{\"action\":\"I\",\"xid\":731,\"lsn\":\"0/153A000\","
            "\"schema\":\"public\",\"table\":\"secret\",\"columns\":[{\"name\"";
        static const char tickets[] =
            "{\"action\":\"I\",\"xid\":731,\"lsn\":\"0/153A000\","
            "\"schema\":\"public\",\"table\":\"tickets\",\"columns\":[{"
            "\"name\"";
        static const char secret_whole[] =
            "{\"action\":\"I\",\"xid\":725,\"lsn\":\"0/1538C18\","
            "\"schema\":\"public\",\"table\":\"secret\",\"columns\":[{"
            "\"name\":\"id\",\"type\":\"bigint\",\"value\":1}]}";
        char err[1024];

        feed(f, 1, 2);
        f->debug[0] = '\0';
        assert_int_equal(feed_text(f, secret, err, sizeof(err)), 0);
        assert_non_null(strstr(f->debug, "skipped a change of a filtered "
                                         "table"));
        assert_int_equal(f->changes, 0);

        err[0] = '\0';
        assert_int_equal(feed_text(f, tickets, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "could not decode"));
        assert_int_equal(f->changes, 0);
        assert_int_equal(slow.inserts, 0);
        assert_int_equal(f->failures, 0);
        /* an excluded table's change that does decode is dropped too */
        assert_int_equal(feed_text(f, secret_whole, err, sizeof(err)), 0);
        assert_int_equal(f->changes, 0);
        feed(f, 2, 3);
        assert_int_equal(f->changes, 1);
}

static void limits_pause_reading(void **state)
{
        struct fx *f = *state;

        f->cfg.max_in_flight_changes = 4;
        wc_pipeline_configure(f->p, &f->cfg);
        assert_false(wc_pipeline_paused(f->p));
        /* 725 (1 change) and 726 (4): the open one does not count */
        feed(f, 1, 9);
        assert_true(wc_pipeline_in_txn(f->p));
        assert_false(wc_pipeline_paused(f->p));
        feed(f, 9, 10);
        assert_true(wc_pipeline_paused(f->p));
        assert_non_null(strstr(f->debug, "reading paused: 5 changes"));
        /* 725 acknowledged: 4 still wait, the limit */
        ack(0, WALCAST_OK);
        assert_true(wc_pipeline_paused(f->p));
        ack(1, WALCAST_OK);
        assert_false(wc_pipeline_paused(f->p));
        assert_non_null(strstr(f->debug, "reading resumed"));

        /* and by bytes */
        f->cfg.max_in_flight_bytes = 100;
        wc_pipeline_configure(f->p, &f->cfg);
        feed(f, 10, 14);
        assert_true(wc_pipeline_paused(f->p));
        ack(2, WALCAST_OK);
        assert_false(wc_pipeline_paused(f->p));

        /* a sink's throttle holds it back whatever the load */
        assert_int_equal(slow.host->throttle(slow.self, 1), WALCAST_OK);
        assert_true(wc_pipeline_paused(f->p));
        assert_int_equal(slow.host->throttle(slow.self, 0), WALCAST_OK);
        assert_false(wc_pipeline_paused(f->p));
}

/* line 20: a message outside a transaction gets a commit of its own,
 * which moves no position but is acknowledged like any */
static void message_outside_transaction(void **state)
{
        struct fx *f = *state;
        static const char heartbeat[] =
            "{\"action\":\"M\",\"xid\":null,\"timestamp\":null,"
            "\"lsn\":\"0/1539E10\",\"transactional\":false,"
            "\"prefix\":\"walcast_heartbeat\",\"content\":\"x\"}";
        char err[1024];

        feed(f, 20, 21);
        assert_false(wc_pipeline_in_txn(f->p));
        assert_int_equal(f->begins, 0);
        assert_int_equal(f->changes, 1);
        assert_int_equal(f->commits, 1);
        assert_int_equal(f->last_commit.xid, 0);
        assert_true(f->last_commit.end_lsn == 0);
        assert_int_equal(quick_signals, 1);
        assert_int_equal(slow.nheld, 1);
        assert_int_equal(slow.held[0].xid, 0);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 1);
        ack(0, WALCAST_OK);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 0);
        assert_true(wc_checkpoint_confirmed(f->cp) == START);

        /* the heartbeat's own messages are not passed on ... */
        assert_int_equal(feed_text(f, heartbeat, err, sizeof(err)), 0);
        assert_int_equal(f->changes, 1);
        assert_int_equal(slow.nheld, 1);
        /* ... unless heartbeat.deliver says so */
        f->cfg.deliver_heartbeats = true;
        wc_pipeline_configure(f->p, &f->cfg);
        assert_int_equal(feed_text(f, heartbeat, err, sizeof(err)), 0);
        assert_int_equal(f->changes, 2);
        assert_int_equal(slow.nheld, 2);
}

static void add_keeper(struct fx *f, uint64_t start, bool pending)
{
        char err[1024];

        keeper.start = start;
        keeper.pending = pending;
        assert_int_equal(wc_plugin_host_add(f->host, "keeper", &keeper_plugin,
                                            NULL, NULL, 0, err, sizeof(err)),
                         0);
}

/* A sink that holds 725 and 726 (its position at init) gets only 727;
 * the others get all three, and the position moves as they acknowledge:
 * the sink counts as having acknowledged what it was not given. */
static void position_skips_held(void **state)
{
        struct fx *f = *state;

        add_keeper(f, 0x1538F28, false);
        feed(f, 1, 14);
        assert_int_equal(slow.nheld, 3);
        assert_int_equal(keeper.ngot, 1);
        assert_int_equal(keeper.got[0].xid, 727);
        assert_int_equal(keeper.changes, 2); /* 727's two deletes */
        assert_int_equal(keeper.got[0].flags, 0);
        ack(0, WALCAST_OK);
        ack(1, WALCAST_OK);
        /* 725 and 726 need only slow and quick */
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538F28);
        ack(2, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538FE8);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 0);
        /* the sink reported 727 at its commit */
        assert_true(wc_plugin_host_position(f->host, 2, NULL) == 0x1538FE8);
}

/* Acknowledgements of a positioned sink in any order: the position moves
 * over the prefix every sink acknowledged, as without positions. */
static void position_out_of_order(void **state)
{
        struct fx *f = *state;

        add_keeper(f, 0x1538D38, true); /* holds 725 */
        feed(f, 1, 17);                 /* 725 ... 728 */
        assert_int_equal(keeper.ngot, 3);
        for (size_t i = 0; i < 4; i++)
                ack(i, WALCAST_OK);
        /* slow and quick are done; keeper holds 726, 727, 728 */
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);
        keeper_ack(2);
        keeper_ack(1);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);
        keeper_ack(0);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x15390A8);
        assert_int_equal(f->failures, 0);
}

/* A replay (another sink failed): the stream is read again from the
 * confirmed position; transactions this process read before are marked
 * as replays, and the positioned sink gets only what it does not hold.
 * Its messages outside a transaction go by their own position. */
static void position_replay(void **state)
{
        struct fx *f = *state;

        add_keeper(f, 0, false);
        feed(f, 1, 14);
        assert_int_equal(keeper.ngot, 3);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(keeper.got[i].flags, 0);
        ack(0, WALCAST_OK);
        ack(1, WALCAST_ERROR);
        assert_int_equal(f->failures, 1);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1538D38);

        wc_pipeline_reset(f->p);
        wc_pipeline_restart(f->p, wc_checkpoint_confirmed(f->cp));
        slow.nheld = 0;
        keeper.ngot = 0;
        keeper.changes = 0;
        quick_signals = 0;
        feed(f, 4, 21); /* 726 ... 729, and the message outside */
        /* slow and quick get everything again, marked where it is read
         * a second time */
        assert_int_equal(slow.nheld, 5);
        assert_int_equal(slow.held[0].xid, 726);
        assert_int_equal(slow.held[0].flags, WALCAST_TXN_REPLAY);
        assert_int_equal(slow.held[1].flags, WALCAST_TXN_REPLAY);
        assert_int_equal(slow.held[2].flags, 0); /* 728: new */
        /* keeper holds up to 727: it gets 728, 729 and the message */
        assert_int_equal(keeper.ngot, 3);
        assert_int_equal(keeper.got[0].xid, 728);
        assert_int_equal(keeper.got[2].xid, 0);
        assert_int_equal(keeper.changes, 3); /* insert, truncate, message */
        for (size_t i = 0; i < 5; i++)
                ack(i, WALCAST_OK);
        assert_true(wc_checkpoint_confirmed(f->cp) == 0x1539DA8);
        assert_int_equal(wc_checkpoint_in_flight(f->cp), 0);

        /* once more from 0x1538D38: keeper (at 729's end) gets nothing but
         * the message, which is at or past its position */
        wc_pipeline_reset(f->p);
        wc_pipeline_restart(f->p, 0x1538D38);
        keeper.ngot = 0;
        slow.nheld = 0;
        keeper.host->position(keeper.self, 0x1539E00 + 1);
        feed(f, 4, 21);
        assert_int_equal(keeper.ngot, 0);
        assert_int_equal(slow.nheld, 5);
        assert_int_equal(slow.held[4].xid, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(out_of_order_acks, setup, teardown),
            cmocka_unit_test_setup_teardown(open_transaction_holds, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(failed_ack_asks_for_replay, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(failed_handler_asks_for_replay,
                                            setup, teardown),
            cmocka_unit_test_setup_teardown(undecodable_message, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(limits_pause_reading, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(message_outside_transaction, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(position_skips_held, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(position_out_of_order, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(position_replay, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
