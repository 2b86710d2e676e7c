/* SPDX-License-Identifier: MIT */
/*
 * walcast plugin ABI, version 1.
 *
 * A plugin is a shared object that walcastd loads with dlopen() and that
 * receives every committed change of the schemas it subscribes to as
 * signals, the schema being the sender:
 *
 *     #include <walcast/plugin.h>
 *
 *     static int32_t on_insert(void *userdata, const struct walcast_signal *s)
 *     {
 *             ... s->schema, s->table, s->columns ...
 *             return WALCAST_OK;
 *     }
 *
 *     static int32_t init(const struct walcast_host *host,
 *                         struct walcast_plugin *self, void **ret_state,
 *                         char *errbuf, size_t errlen)
 *     {
 *             host->connect(self, WALCAST_SIG_INSERT, "town6", NULL,
 *                           on_insert, NULL);
 *             return WALCAST_OK;
 *     }
 *
 *     WALCAST_PLUGIN_DEFINE("example", "1.0", init, NULL, NULL);
 *
 * Build: cc -shared -fPIC $(pkg-config --cflags walcast) -o example.so
 * example.c.  docs/plugins.md is the tutorial.
 *
 * Rules:
 * - C99, fixed-width types; this header needs no other walcast header.
 * - Everything a handler receives is BORROWED for the duration of the
 *   call: copy what you keep.  Strings are UTF-8 and NUL-terminated
 *   (schema, table, prefix, a column's name and type, whose name_len and
 *   type_len are given too), except these, which are read by their
 *   length only: ns and tenant, a column's value, a message's content
 *   and the ABI 1.1 columns_json, identity_json and pk_json.
 * - Handlers run on walcastd's single thread, inside its poll() loop.
 *   Never block: hand long work to a file descriptor the host watches
 *   (host->watch_fd) and acknowledge later (host->ack).
 * - A handler returns WALCAST_OK, or WALCAST_ERROR: walcastd then stops
 *   confirming positions, logs, and after a backoff replays from the last
 *   confirmed position, so the handler sees the change again.  Handlers
 *   must therefore tolerate seeing a change more than once, unless the
 *   plugin keeps a position (host->position, ABI 1.4).
 * - A commit handler may return WALCAST_PENDING and call host->ack() for
 *   that transaction later (from a watched fd's callback).  Until then
 *   walcastd does not confirm that transaction to PostgreSQL.  A plugin
 *   without a commit handler acknowledges every transaction at its commit.
 * - A message emitted outside a transaction (pg_logical_emit_message with
 *   transactional = false) arrives with txn NULL and is followed by a
 *   commit signal of its own whose txn has xid 0 and end_lsn 0, so that
 *   sinks acknowledge it like any transaction.
 * - The ABI is append-only within a major version: structs only grow at
 *   their end, and each begins with or carries its own size, so check
 *   `size` before reading a field added in a later minor version.
 */
#ifndef WALCAST_PLUGIN_H
#define WALCAST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WALCAST_ABI_MAJOR 1
#define WALCAST_ABI_MINOR 5

/*
 * Whether p, a struct walcast_signal or walcast_host from the host (or
 * anything with a `size` member giving its length), holds field: check
 * before reading a member added after ABI 1.0.  A run-time check: it
 * compares the size the host put into the struct with where field ends,
 * so a plugin built against a newer 1.x header still runs on an older
 * 1.x host and finds the field absent there.  Since the 1.2 header.
 */
#define WALCAST_HAS_FIELD(p, type, field)                                      \
        ((size_t)(p)->size >=                                                  \
         offsetof(type, field) + sizeof(((type *)0)->field))

/* Handler and host call results. */
#define WALCAST_OK    0
#define WALCAST_ERROR (-1)
/* commit handlers only: acknowledged later through host->ack() */
#define WALCAST_PENDING 1

/* Log levels, as syslog(3). */
#define WALCAST_LOG_ERR     3
#define WALCAST_LOG_WARNING 4
#define WALCAST_LOG_NOTICE  5
#define WALCAST_LOG_INFO    6
#define WALCAST_LOG_DEBUG   7

enum walcast_signal_kind {
        WALCAST_SIG_BEGIN = 0,
        WALCAST_SIG_INSERT = 1,
        WALCAST_SIG_UPDATE = 2,
        WALCAST_SIG_DELETE = 3,
        /* a run of deletes of one table in one transaction, by key (see
         * struct walcast_signal) */
        WALCAST_SIG_BULK_DELETE = 4,
        WALCAST_SIG_TRUNCATE = 5,
        /* pg_logical_emit_message() */
        WALCAST_SIG_MESSAGE = 6,
        WALCAST_SIG_COMMIT = 7,
        /* ABI 1.5: a row a snapshot read, shaped as an insert (columns,
         * pk; txn is its chunk's own transaction; see `snapshot` in
         * struct walcast_signal); a handler connects as for insert.
         * snapshot_begin and snapshot_end: a table's snapshot starts
         * (before its first read) and ends (after its last): schema,
         * table, lsn, txn (the chunk's).  docs/snapshots.md */
        WALCAST_SIG_READ = 8,
        WALCAST_SIG_SNAPSHOT_BEGIN = 9,
        WALCAST_SIG_SNAPSHOT_END = 10,
        /* how many kinds this header knows (8 before ABI 1.5) */
        WALCAST_SIG__COUNT = 11
};

/* A column: name, type as PostgreSQL's format_type() prints it with an
 * empty search_path (types outside pg_catalog schema-qualified and
 * quoted as SQL needs: "town6-govikon".status; docs/file-format.md,
 * "Type names"), and the column's value as JSON text
 * (numbers bare, strings quoted and escaped, SQL NULL
 * as "null"); value_len is 0 in primary-key descriptions.  name and type
 * are NUL-terminated (name_len and type_len exclude the NUL); value is
 * not: read value_len bytes. */
struct walcast_column {
        const char *name;
        uint32_t name_len;
        uint32_t type_oid; /* 0 when unknown */
        const char *type;
        uint32_t type_len;
        uint32_t value_len;
        const char *value;
};

struct walcast_columns {
        const struct walcast_column *items;
        uint32_t count;
};

/* The transaction a signal belongs to.  id is what host->ack() takes. */
struct walcast_txn {
        uint64_t id;
        uint32_t xid;
        uint32_t reserved;
        uint64_t commit_lsn;    /* the commit record's position */
        uint64_t end_lsn;       /* what walcastd confirms once acknowledged */
        int64_t commit_time_us; /* microseconds since the Unix epoch */

        /*
         * ABI 1.4: read only when host->abi_minor >= 4 (this struct has no
         * size of its own).  WALCAST_TXN_REPLAY: this walcastd process
         * handed the transaction to the sinks before and reads it again
         * (after a reconnect or a sink's failure).  A transaction replayed
         * after walcastd itself restarted is not marked: what a process
         * that was killed had handed out is not known.
         */
        uint32_t flags;
        uint32_t reserved2;
};

#define WALCAST_TXN_REPLAY 1u

/*
 * One signal.  Which fields are set depends on kind:
 *   begin, commit      txn
 *   insert             schema, table, lsn, txn, columns (new row), pk
 *   update             ... columns (new row), identity (the old key,
 *                      sent with every update by wal2json 2.5, or the
 *                      whole old row under REPLICA IDENTITY FULL), pk;
 *                      missing names the unchanged TOASTed columns left
 *                      out that identity does not carry (pgoutput; empty
 *                      with wal2json, which does not say, see
 *                      docs/plugins.md); completed (ABI 1.3) names the
 *                      unchanged TOASTed columns filled in from identity
 *   delete             ... identity (the primary key, or the whole old row
 *                      under REPLICA IDENTITY FULL), pk
 *   bulk_delete        ... keys[nkeys]: the primary key of each deleted
 *                      row (its identity when the table has none, or
 *                      when a USING INDEX identity lacks a key column),
 *                      with values, in WAL order; lsn is the first row's.
 *                      One run is the deletes of one table that follow
 *                      each other in one transaction with no other change
 *                      between them, whether one DELETE statement or
 *                      several made them (the WAL does not mark where a
 *                      statement ends); a run longer than
 *                      signals.bulk_delete_batch comes as several
 *                      signals.  A handler connected to delete gets
 *                      each of these rows as a delete too.
 *   truncate           schema, table, lsn, txn
 *   message            lsn, prefix, content; txn only when transactional
 */
struct walcast_signal {
        uint32_t size; /* sizeof(struct walcast_signal) of the host */
        uint32_t kind; /* enum walcast_signal_kind */
        const char *schema;
        const char *table;
        /* the schema split at its first '-': "town6-govikon" is namespace
         * "town6", tenant "govikon"; not NUL-terminated */
        const char *ns;
        uint32_t ns_len;
        uint32_t tenant_len;
        const char *tenant;
        uint64_t lsn;
        const struct walcast_txn *txn; /* NULL outside a transaction */
        struct walcast_columns columns;
        struct walcast_columns identity;
        struct walcast_columns pk;
        struct walcast_columns missing;
        const struct walcast_columns *keys;
        uint32_t nkeys;
        uint32_t transactional; /* message */
        const char *prefix;     /* message */
        const char *content;    /* message: JSON string text, quoted */
        uint32_t content_len;
        uint32_t reserved;

        /*
         * ABI 1.1 (check size).  columns, identity and pk as the JSON
         * text wal2json sent, when that text is exactly the list in this
         * canonical form, so that a sink writing it can copy it:
         *   [{"name":"id","type":"bigint","typeoid":20,"value":1},...]
         * no whitespace; name and type as JSON strings without escapes;
         * "typeoid" present exactly when type_oid is nonzero; "value" as
         * in the column, absent in pk.  NULL (and length 0) when the text
         * is in any other form, and when walcastd changed the list (an
         * update's new row completed from the old row).  Not
         * NUL-terminated; borrowed like the rest of the signal.
         */
        const char *columns_json;
        const char *identity_json;
        const char *pk_json;
        uint32_t columns_json_len;
        uint32_t identity_json_len;
        uint32_t pk_json_len;
        uint32_t reserved2;

        /*
         * ABI 1.2 (check size).  message: WALCAST_CONTENT_BASE64 when the
         * content's bytes are not UTF-8 text (pg_logical_emit_message with
         * a bytea that is not): JSON cannot carry them, so content is then
         * a JSON string of their base64 (RFC 4648, padded).  0 otherwise.
         */
        uint32_t content_flags;
        uint32_t reserved3;

        /*
         * ABI 1.3 (check size).  update: the columns of `columns` that
         * walcastd filled in from `identity` because wal2json left them
         * out of the new row (an unchanged TOASTed value: its old value is
         * its new value), as the same name, type and value; count 0 when
         * none was.  Whatever the replica identity: a column the identity
         * carries is completed, one it does not stays absent from
         * `columns`, and wal2json does not say that it is absent (see
         * docs/plugins.md).  Empty for every other kind.
         */
        struct walcast_columns completed;

        /*
         * ABI 1.5 (check size).  read: WALCAST_SNAPSHOT_ROW, with
         * WALCAST_SNAPSHOT_LAST on the last row of its table's snapshot
         * (none when the table's last chunk had no row left); 0 for
         * every other kind.
         */
        uint32_t snapshot;
        uint32_t reserved4;
};

#define WALCAST_CONTENT_BASE64 1u
#define WALCAST_SNAPSHOT_ROW   1u
#define WALCAST_SNAPSHOT_LAST  2u

struct walcast_plugin; /* the host's handle for one loaded plugin */

typedef int32_t (*walcast_handler_fn)(void *userdata,
                                      const struct walcast_signal *sig);
/* revents as poll(2) */
typedef void (*walcast_fd_fn)(void *userdata, int fd, uint32_t revents);

/*
 * What the host offers.  Passed to init; valid until close returns.
 * Check `size` before using a member added after ABI 1.0.
 */
struct walcast_host {
        uint32_t abi_major;
        uint32_t abi_minor;
        uint32_t size; /* sizeof(struct walcast_host) of the host */
        uint32_t reserved;

        void (*log)(struct walcast_plugin *self, int32_t level, const char *fmt,
                    ...)
#if defined(__GNUC__)
            __attribute__((format(printf, 3, 4)))
#endif
            ;

        /*
         * Connects fn to one signal for a sender: NULL or "*" for any
         * schema, an exact schema name, a namespace (a plain name also
         * matches every "NAME-<tenant>" schema), or a glob ("org-*").
         * table is NULL for every table, or a name or glob.  Only
         * allowed during init.  WALCAST_OK or WALCAST_ERROR.
         */
        int32_t (*connect)(struct walcast_plugin *self, uint32_t kind,
                           const char *sender, const char *table,
                           walcast_handler_fn fn, void *userdata);

        /*
         * The plugin's `config:` block, flattened: "file" for a top-level
         * key, "a.b" for nested mappings, "list.0" for list items.  The
         * string stays valid until close.  NULL when absent.
         */
        const char *(*config_get)(struct walcast_plugin *self, const char *key);

        /*
         * Acknowledges a transaction whose commit handler returned
         * WALCAST_PENDING: WALCAST_OK when delivered, WALCAST_ERROR when it
         * cannot be (walcastd then replays from the last confirmed
         * position).  Only on walcastd's thread.
         */
        int32_t (*ack)(struct walcast_plugin *self, uint64_t txn_id,
                       int32_t status);

        /* Calls fn when fd is ready for events (POLLIN, POLLOUT) inside
         * walcastd's poll() loop.  One registration per fd; watching an fd
         * again replaces it.  unwatch_fd before closing the fd. */
        int32_t (*watch_fd)(struct walcast_plugin *self, int fd,
                            uint32_t events, walcast_fd_fn fn, void *userdata);
        int32_t (*unwatch_fd)(struct walcast_plugin *self, int fd);

        /*
         * Backpressure: while any plugin has it on, walcastd stops reading
         * the replication stream (it keeps answering the server), so a sink
         * that falls behind holds memory bounded instead of buffering.  A
         * sink turns it on when its queue is full and off once it drained.
         */
        int32_t (*throttle)(struct walcast_plugin *self, int32_t on);

        /*
         * ABI 1.4 (check size): the sink's position, the end_lsn of the
         * last transaction it holds durably.  Call it in init, with what
         * the sink found in its own storage, and again after each durable
         * write.  From then on walcastd hands the plugin only transactions
         * whose end_lsn is past it (and messages outside a transaction
         * whose lsn is at or past it), at the start and after every
         * reconnect or replay, and counts the ones it skips as
         * acknowledged by this plugin: the sink gets each transaction
         * once.  A lower position than the last one is taken too (the
         * sink lost what it held: it gets it again).  0 reports nothing.
         * A plugin that never calls it gets every transaction from the
         * confirmed position on (at least once).  WALCAST_OK.
         */
        int32_t (*position)(struct walcast_plugin *self, uint64_t end_lsn);
};

/*
 * init: read the config, connect handlers, and store per-instance state in
 * *ret_state (handed to close).  On failure return WALCAST_ERROR with a
 * message in errbuf; walcastd refuses to start and shows it.
 * close: release everything; may be NULL.  walcastd calls it at exit after
 * the last acknowledgement it waits for (or its shutdown timeout).
 */
typedef int32_t (*walcast_init_fn)(const struct walcast_host *host,
                                   struct walcast_plugin *self,
                                   void **ret_state, char *errbuf,
                                   size_t errlen);
typedef void (*walcast_close_fn)(void *state);
/* reopen: walcastd got SIGHUP (logrotate): reopen files; may be NULL. */
typedef void (*walcast_reopen_fn)(void *state);
/*
 * check (ABI 1.3, may be NULL): validates the plugin's `config:` block
 * alone, without starting anything: read it with host->config_get; no
 * connect, watch_fd, ack or throttle (they fail), no file, socket or
 * thread.  walcastd calls it for `walcastd --check`, `walcast check`, a
 * reload (before the configuration in force is let go) and at start
 * before init.  On a bad config return WALCAST_ERROR with a message in
 * errbuf naming the key: `missing required config key "file"`.
 */
typedef int32_t (*walcast_check_fn)(const struct walcast_host *host,
                                    struct walcast_plugin *self, char *errbuf,
                                    size_t errlen);

/* What the entry symbol returns.  The first two fields never move. */
struct walcast_plugin_descriptor {
        uint32_t abi_major; /* WALCAST_ABI_MAJOR the plugin was built for */
        uint32_t size;      /* sizeof(struct walcast_plugin_descriptor) */
        uint32_t abi_minor;
        uint32_t reserved;
        const char *name;
        const char *version;
        walcast_init_fn init;
        walcast_close_fn close;
        walcast_reopen_fn reopen;
        /* ABI 1.3: the host reads it only when size covers it */
        walcast_check_fn check;
};

/* The one symbol a plugin exports. */
#define WALCAST_PLUGIN_ENTRY_SYMBOL "walcast_plugin_entry"
typedef const struct walcast_plugin_descriptor *(*walcast_entry_fn)(void);

#if defined(__GNUC__)
#define WALCAST_EXPORT __attribute__((visibility("default")))
#else
#define WALCAST_EXPORT
#endif

/* Defines the entry symbol with a descriptor for this header's ABI; use
 * it once, at file scope, followed by a semicolon.  A plugin with a check
 * function uses WALCAST_PLUGIN_DEFINE_CHECKED instead (since the 1.3
 * header). */
#define WALCAST_PLUGIN_DEFINE(name_, version_, init_, close_, reopen_)         \
        WALCAST_PLUGIN_DEFINE_CHECKED(name_, version_, init_, close_, reopen_, \
                                      NULL)

#define WALCAST_PLUGIN_DEFINE_CHECKED(name_, version_, init_, close_, reopen_, \
                                      check_)                                  \
        WALCAST_EXPORT const struct walcast_plugin_descriptor *                \
        walcast_plugin_entry(void);                                            \
        const struct walcast_plugin_descriptor *walcast_plugin_entry(void)     \
        {                                                                      \
                static const struct walcast_plugin_descriptor d = {            \
                    WALCAST_ABI_MAJOR,                                         \
                    (uint32_t)sizeof(struct walcast_plugin_descriptor),        \
                    WALCAST_ABI_MINOR,                                         \
                    0,                                                         \
                    (name_),                                                   \
                    (version_),                                                \
                    (init_),                                                   \
                    (close_),                                                  \
                    (reopen_),                                                 \
                    (check_)};                                                 \
                return &d;                                                     \
        }                                                                      \
        /* takes the caller's ';', which C99 does not allow on its own */      \
        extern const struct walcast_plugin_descriptor *walcast_plugin_entry(   \
            void)

#ifdef __cplusplus
}
#endif

#endif
