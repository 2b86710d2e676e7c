/* SPDX-License-Identifier: MIT */
/*
 * Logging for the programs (lib/ never logs): one line per message on
 * stderr.  walcastd prefixes the sd-daemon "<N>" priority so journald keeps
 * the level; the walcast CLI prefixes its name instead.
 */
#ifndef WALCAST_CMD_LOG_H
#define WALCAST_CMD_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

enum wc_log_style {
        WC_LOG_STYLE_SD_DAEMON, /* "<3>message" */
        WC_LOG_STYLE_PROGRAM,   /* "walcast: error: message" */
};

void wc_log_setup(const char *program, enum wc_log_style style,
                  enum wc_log_level level);
void wc_log_set_level(enum wc_log_level level);
/* log.format: json writes one JSON object per line instead. */
void wc_log_set_json(bool on);
bool wc_log_enabled(enum wc_log_level level);
void wc_log(enum wc_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies in to out with passwords (conninfo "password=", URI user info)
 * and every registered secret replaced by "***".  Every logged line goes
 * through it. */
void wc_log_redact(const char *in, char *out, size_t outlen);

/*
 * Secrets the logger replaces by "***" wherever a message carries them,
 * whoever wrote it (libpq quotes pieces of a connection string it cannot
 * read).  wc_log_add_dsn_secrets() registers the password and sslpassword
 * of a conninfo string or URI, as its author meant them (an unquoted
 * "password=abc def" is "abc def"), percent-decoded too, and their pieces
 * split on whitespace and '/', '@', ':' and the like.  Pieces shorter than
 * 4 bytes are replaced only where a message quotes them.  Call it for
 * every DSN before anything can log an error about it: at start and at
 * reload.  Secrets are kept until wc_log_forget_secrets().
 */
void wc_log_add_dsn_secrets(const char *dsn);
void wc_log_add_secret(const char *s, size_t len);
/* A secret that is no connection string (a Kafka sink's sasl.password,
 * a private key): the whole value, each whitespace-separated word of it,
 * and the rest of the value from each word on (what a parser quotes from
 * the place it could not read on); not a PEM key's armour lines. */
void wc_log_add_secret_value(const char *s);
void wc_log_forget_secrets(void);

/*
 * Copies in to out so that it stays one line of text: \n, \r, \t, and
 * \xHH for other control characters, DEL and bytes that are not UTF-8;
 * \uXXXX for C1 controls, U+2028/U+2029 and bidirectional overrides.
 * Trailing newlines and blanks are dropped; an escape is never cut in
 * half.  Returns the length written.
 */
size_t wc_log_escape(const char *in, char *out, size_t outlen);

/* wc_log_redact() then wc_log_escape(): what a log line would show of in,
 * for text that goes elsewhere (sd_notify's STATUS=).  Returns out. */
const char *wc_log_scrub(const char *in, char *out, size_t outlen);

#define log_error(...)   wc_log(WC_LOG_ERR, __VA_ARGS__)
#define log_warning(...) wc_log(WC_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  wc_log(WC_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    wc_log(WC_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   wc_log(WC_LOG_DEBUG, __VA_ARGS__)

#endif
