/* SPDX-License-Identifier: MIT */
/*
 * example: the plugin of docs/plugins.md.  It counts the rows each tenant
 * inserts (+), updates (~) and deletes (-), and the tables it truncates
 * (!), and logs one line per transaction:
 *
 *     txn 734: town6-govikon +3 ~1 -2, org-acme +1
 *
 * Optional config key `namespace`: count only the schemas of that
 * namespace ("town6" takes "town6-govikon", "town6-bern", ...).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only walcast header a plugin needs. */
#include <walcast/plugin.h>

/* One tenant's counts within the current transaction. */
struct tally {
        char label[128]; /* "ns-tenant"; identifiers are at most 63 bytes */
        uint32_t ins, upd, del, trunc;
};

/* Per-instance state: two sink entries may load this file twice, so
 * nothing lives in globals. */
struct example {
        const struct walcast_host *host;
        struct walcast_plugin *self; /* the host's handle, for host->log */
        struct tally *tallies;
        size_t n, cap;
};

/* The tally of the signal's tenant, added if new; NULL without memory.
 * A transaction touches few tenants, so a list is enough. */
static struct tally *tally_of(struct example *ex,
                              const struct walcast_signal *sig)
{
        char label[128];

        /* ns and tenant are not NUL-terminated: print them by length.  A
         * schema without a '-' ("public") has no tenant: shown as "-". */
        if (sig->tenant_len)
                snprintf(label, sizeof(label), "%.*s-%.*s", (int)sig->ns_len,
                         sig->ns, (int)sig->tenant_len, sig->tenant);
        else
                snprintf(label, sizeof(label), "%.*s--", (int)sig->ns_len,
                         sig->ns);

        for (size_t i = 0; i < ex->n; i++)
                if (strcmp(ex->tallies[i].label, label) == 0)
                        return &ex->tallies[i];
        if (ex->n == ex->cap) {
                size_t cap = ex->cap ? 2 * ex->cap : 8;
                struct tally *p = realloc(ex->tallies, cap * sizeof(*p));

                if (!p)
                        return NULL;
                ex->tallies = p;
                ex->cap = cap;
        }
        memset(&ex->tallies[ex->n], 0, sizeof(struct tally));
        memcpy(ex->tallies[ex->n].label, label, sizeof(label));
        return &ex->tallies[ex->n++];
}

/*
 * One handler for the four counted signals; sig->kind says which.  The
 * signal and everything it points to are borrowed: only the label is
 * kept, as a copy.
 */
static int32_t on_change(void *userdata, const struct walcast_signal *sig)
{
        struct example *ex = userdata;
        struct tally *t = tally_of(ex, sig);

        if (!t)
                return WALCAST_ERROR; /* walcastd replays: nothing lost */
        switch (sig->kind) {
        case WALCAST_SIG_INSERT:
                t->ins++;
                break;
        case WALCAST_SIG_UPDATE:
                t->upd++;
                break;
        case WALCAST_SIG_DELETE:
                t->del++;
                break;
        case WALCAST_SIG_TRUNCATE:
                t->trunc++;
                break;
        }
        return WALCAST_OK;
}

/* Appends " +3 ~1 -2" (only the non-zero counts) to line. */
static void append_count(char *line, size_t size, char sign, uint32_t count)
{
        size_t len = strlen(line);

        if (count)
                snprintf(line + len, size - len, " %c%" PRIu32, sign, count);
}

static int32_t on_commit(void *userdata, const struct walcast_signal *sig)
{
        struct example *ex = userdata;
        char line[1024];

        /* transactions that touched nothing we count stay quiet */
        if (ex->n == 0)
                return WALCAST_OK;
        /* a commit always carries its transaction */
        snprintf(line, sizeof(line), "txn %" PRIu32 ":", sig->txn->xid);
        for (size_t i = 0; i < ex->n; i++) {
                const struct tally *t = &ex->tallies[i];
                size_t len = strlen(line);

                snprintf(line + len, sizeof(line) - len, "%s %s", i ? "," : "",
                         t->label);
                append_count(line, sizeof(line), '+', t->ins);
                append_count(line, sizeof(line), '~', t->upd);
                append_count(line, sizeof(line), '-', t->del);
                append_count(line, sizeof(line), '!', t->trunc);
        }
        ex->host->log(ex->self, WALCAST_LOG_INFO, "%s", line);
        ex->n = 0;
        /* done with this transaction: WALCAST_PENDING is for sinks that
         * finish later and call host->ack() */
        return WALCAST_OK;
}

/* After an error walcastd replays from the last confirmed transaction, so
 * a transaction can begin again without having committed: start clean. */
static int32_t on_begin(void *userdata, const struct walcast_signal *sig)
{
        struct example *ex = userdata;

        (void)sig;
        ex->n = 0;
        return WALCAST_OK;
}

static void example_close(void *state)
{
        struct example *ex = state;

        if (!ex)
                return;
        free(ex->tallies);
        free(ex);
}

static int32_t example_init(const struct walcast_host *host,
                            struct walcast_plugin *self, void **ret_state,
                            char *errbuf, size_t errlen)
{
        /* the sender filter: NULL (any schema) unless the config names a
         * namespace */
        const char *ns = host->config_get(self, "namespace");
        static const uint32_t counted[] = {
            WALCAST_SIG_INSERT, WALCAST_SIG_UPDATE, WALCAST_SIG_DELETE,
            WALCAST_SIG_TRUNCATE};
        struct example *ex = calloc(1, sizeof(*ex));

        if (!ex) {
                snprintf(errbuf, errlen, "out of memory");
                return WALCAST_ERROR;
        }
        ex->host = host;
        ex->self = self;

        /* The per-row delete signal: every deleted row once.  (bulk_delete
         * brings the same rows in batches; connecting both would count
         * each row twice.)  table NULL: every table. */
        for (size_t i = 0; i < sizeof(counted) / sizeof(counted[0]); i++)
                if (host->connect(self, counted[i], ns, NULL, on_change, ex))
                        goto err_free;
        /* begin and commit carry no schema, so no sender filter applies to
         * them: connect them for any */
        if (host->connect(self, WALCAST_SIG_BEGIN, NULL, NULL, on_begin, ex))
                goto err_free;
        if (host->connect(self, WALCAST_SIG_COMMIT, NULL, NULL, on_commit, ex))
                goto err_free;

        *ret_state = ex;
        return WALCAST_OK;

err_free:
        snprintf(errbuf, errlen, "could not connect a handler");
        example_close(ex);
        return WALCAST_ERROR;
}

/* The one exported symbol. */
WALCAST_PLUGIN_DEFINE("example", "1.0", example_init, example_close, NULL);
