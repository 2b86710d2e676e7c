/* SPDX-License-Identifier: MIT */
/*
 * The replication connection: libpq with replication=database, slot
 * lookup and creation, START_REPLICATION ... LOGICAL with the output
 * plugin and options a decoder names (decode/decoder.h), the
 * CopyBoth stream of 'w' (XLogData) and 'k' (keepalive) messages, and 'r'
 * standby status updates.
 *
 * Errors are negative errnos with a message in the caller's errbuf; the
 * errno says what an operator has to do:
 *   -EHOSTUNREACH  server unreachable
 *   -EACCES        authentication failed
 *   -EPERM         the role lacks REPLICATION
 *   -ENOTSUP       wal_level is not logical
 *   -ENOPKG        the output plugin is not installed, or not allowed by
 *                  output_plugin_libraries
 *   -EBUSY         the slot is active for another process
 *   -ENOENT        the slot does not exist (and may not be created)
 *   -ESTALE        the slot was invalidated (wal_status lost)
 *   -EEXIST        a slot of that name exists but does not fit (another
 *                  plugin, another database, physical)
 *   -EPIPE         the connection was lost
 *   -EIO           any other server error
 */
#ifndef WALCAST_STREAM_H
#define WALCAST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct wc_stream;

struct wc_stream_config {
        const char *dsn;    /* libpq conninfo or URI */
        const char *slot;   /* validated [a-z0-9_]{1,63} */
        const char *plugin; /* the output plugin the slot must have */
        bool create_slot;   /* create when missing */
        bool temporary;     /* create a TEMPORARY slot (walcast tail) */
        /* pgoutput: the publication, made sure of before the slot
         * (stream/publication.h); NULL for other plugins */
        const char *publication;
        bool create_publication;
        const char *const *publication_schemas; /* none: FOR ALL TABLES */
        size_t n_publication_schemas;
};

struct wc_slot_status {
        bool exists;
        char plugin[64];
        char slot_type[16];
        char database[64];
        int active_pid; /* 0 when inactive */
        bool temporary;
        wc_lsn confirmed_flush;
        wc_lsn restart_lsn;
        wc_lsn current_wal;  /* the server's pg_current_wal_lsn() */
        char wal_status[16]; /* "reserved", "extended", "unreserved", "lost" */
};

struct wc_stream_info {
        char system_id[32];
        uint32_t timeline;
        wc_lsn xlogpos;
        char dbname[64];
        char encoding[32];     /* the database's server_encoding */
        bool slot_created;     /* this open created the slot */
        wc_lsn slot_confirmed; /* the slot's confirmed_flush_lsn */
        /* bit i: the server did not know the optional option pair i of
         * wc_stream_start(), which went on without it */
        unsigned optional_refused;
        int server_version;       /* PQserverVersion(): 150004 */
        bool publication_created; /* this open created the publication */
};

enum wc_stream_msg_kind {
        WC_MSG_XLOGDATA = 'w',
        WC_MSG_KEEPALIVE = 'k',
};

/* Borrowed from the stream until the next wc_stream_read(). */
struct wc_stream_msg {
        enum wc_stream_msg_kind kind;
        wc_lsn data_start; /* 'w' */
        wc_lsn wal_end;
        int64_t send_time;    /* microseconds since 2000-01-01 */
        bool reply_requested; /* 'k' */
        char *data;           /* 'w': the payload, writable, NUL-terminated */
        size_t len;
};

/* Called for every notice or warning the server sends (an output plugin
 * may warn about tables whose updates and deletes it drops). */
typedef void (*wc_stream_notice_fn)(void *userdata, const char *severity,
                                    const char *message);

struct wc_stream *wc_stream_new(void);
/* Closes the connection without ending the copy gracefully. */
void wc_stream_free(struct wc_stream *s);

void wc_stream_set_notice_handler(struct wc_stream *s, wc_stream_notice_fn fn,
                                  void *userdata);

/*
 * libpq TCP keepalive settings (keepalives, keepalives_idle 30 s,
 * keepalives_interval 10 s, keepalives_count 3, tcp_user_timeout 60 s)
 * that the DSN, in key=value or URI form, does not set itself: up to max
 * keyword/value pairs (static strings) into keys and vals, to be passed
 * before the DSN.  None when the DSN or PGSERVICE names a service (its
 * file may set them), and only keywords this libpq knows.  The count, or
 * -EINVAL when the DSN does not parse.
 */
int wc_stream_keepalive_defaults(const char *dsn, const char **keys,
                                 const char **vals, size_t max);

/* The session settings the replication connection pins (libpq "options"
 * text: "-c datestyle=ISO ..."), for an ordinary connection that must
 * render values the same way (a snapshot's). */
const char *wc_stream_pinned_settings(void);

/* Connects and runs IDENTIFY_SYSTEM; checks wal_level.  The settings that
 * shape the output plugin's text are pinned on the connection (DateStyle,
 * IntervalStyle, TimeZone, extra_float_digits, bytea_output,
 * lc_monetary, search_path, quote_all_identifiers). */
int wc_stream_connect(struct wc_stream *s, const char *dsn, char *errbuf,
                      size_t errlen);

/* Looks the slot up (needs wc_stream_connect). */
int wc_stream_slot_status(struct wc_stream *s, const char *slot,
                          struct wc_slot_status *ret_status, char *errbuf,
                          size_t errlen);
int wc_stream_slot_create(struct wc_stream *s, const char *slot,
                          const char *plugin, bool temporary, char *errbuf,
                          size_t errlen);
int wc_stream_slot_drop(struct wc_stream *s, const char *slot, char *errbuf,
                        size_t errlen);

/* For pgoutput (cfg->publication set): makes sure the publication exists,
 * creating it when cfg allows (stream/publication.h).  Needs
 * wc_stream_connect; wc_stream_open does it before the slot. */
int wc_stream_publication(struct wc_stream *s,
                          const struct wc_stream_config *cfg, char *errbuf,
                          size_t errlen);

/* Connects, checks the slot (creating it when allowed) and fills in the
 * info: everything before START_REPLICATION. */
int wc_stream_open(struct wc_stream *s, const struct wc_stream_config *cfg,
                   char *errbuf, size_t errlen);
const struct wc_stream_info *wc_stream_get_info(const struct wc_stream *s);

/* The server's WAL page and segment sizes in bytes, for
 * wc_lsn_page_floor(); 0 for what it would not say (e.g. not a plain
 * PostgreSQL).  Before wc_stream_start(): it runs a query. */
void wc_stream_wal_sizes(struct wc_stream *s, uint32_t *ret_block,
                         uint64_t *ret_segment);

/*
 * START_REPLICATION SLOT ... LOGICAL start with `options`, then `optional`
 * (both NULL-terminated key, value pairs, opaque here; either may be
 * NULL).  When the server refuses the command with an error that names
 * the key of an optional pair, it is started again without that pair
 * (a temporary slot, which the failed command dropped, is made again);
 * info.optional_refused says which were left out.  start 0 resumes from
 * the slot's confirmed position.
 */
int wc_stream_start(struct wc_stream *s, wc_lsn start,
                    const char *const *options, const char *const *optional,
                    char *errbuf, size_t errlen);

/* The socket to poll. */
int wc_stream_fd(const struct wc_stream *s);

/* 1 with *ret_msg filled, 0 when nothing is available now (poll for
 * input), -ECONNRESET when the server ended the stream, <0 on error. */
int wc_stream_read(struct wc_stream *s, struct wc_stream_msg *ret_msg,
                   char *errbuf, size_t errlen);

/* Queues an 'r' standby status update: written = flushed = applied =
 * `flush`.  Then call wc_stream_flush(). */
int wc_stream_send_status(struct wc_stream *s, wc_lsn flush, char *errbuf,
                          size_t errlen);

/* The same, asking the server to answer at once (with a keepalive): a
 * server that is there is heard from within a round trip. */
int wc_stream_request_reply(struct wc_stream *s, wc_lsn flush, char *errbuf,
                            size_t errlen);

/* CLOCK_MONOTONIC milliseconds of the last message read from the server
 * (or of the start of the stream). */
int64_t wc_stream_heard_ms(const struct wc_stream *s);

/* The server's wal_sender_timeout in milliseconds (0: disabled), or -1
 * when it would not say.  Before wc_stream_start(): it runs a query.
 * The server sends a keepalive at the latest when half of it passed
 * without word from the client, and answers wc_stream_request_reply(). */
int64_t wc_stream_sender_timeout_ms(struct wc_stream *s);

/* Sends queued output: 0 done, 1 more to send (poll for POLLOUT), <0. */
int wc_stream_flush(struct wc_stream *s, char *errbuf, size_t errlen);

/* Ends the copy (CopyDone), discards what the server still sends, and
 * waits for its end of the stream, up to timeout_ms. */
int wc_stream_stop(struct wc_stream *s, int timeout_ms, char *errbuf,
                   size_t errlen);

/* "host:port" of the connection, for messages. */
const char *wc_stream_server(const struct wc_stream *s);

/* Microseconds since 2000-01-01 (PostgreSQL's epoch) of `unix_us`. */
int64_t wc_pg_time_from_unix(int64_t unix_us);

/* A libpq connection's error message on one line (newlines as spaces,
 * no trailing space), in a static buffer: for walcast's one thread.
 * conn NULL: "out of memory"; an empty message: "unknown error". */
struct pg_conn;
const char *wc_pq_error_line(const struct pg_conn *conn);

#endif
