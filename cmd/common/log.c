/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "core/core.h"

static const char *prog = "walcast";
static enum wc_log_style style = WC_LOG_STYLE_PROGRAM;
static enum wc_log_level max_level = WC_LOG_INFO;

void wc_log_setup(const char *program, enum wc_log_style s,
                  enum wc_log_level level)
{
        prog = program;
        style = s;
        max_level = level;
}

void wc_log_set_level(enum wc_log_level level)
{
        max_level = level;
}

bool wc_log_enabled(enum wc_log_level level)
{
        return level <= max_level;
}

static const char *level_word(enum wc_log_level level)
{
        switch (level) {
        case WC_LOG_ERR:
                return "error: ";
        case WC_LOG_WARNING:
                return "warning: ";
        default:
                return "";
        }
}

/* Copies in to out with every secret replaced by "***": the value of a
 * conninfo "password=" (quoted or not, spaces around '=' allowed) and the
 * password of a URI's user info ("postgresql://user:secret@host"). */
void wc_log_redact(const char *in, char *out, size_t outlen)
{
        size_t j = 0;

        for (size_t i = 0; in[i] && j + 1 < outlen;) {
                const char *p = in + i;
                if (strncasecmp(p, "password", 8) == 0) {
                        size_t k = 8;
                        while (p[k] == ' ')
                                k++;
                        if (p[k] == '=') {
                                k++;
                                while (p[k] == ' ')
                                        k++;
                                if (p[k] == '\'') {
                                        for (k++; p[k] && p[k] != '\''; k++)
                                                if (p[k] == '\\' && p[k + 1])
                                                        k++;
                                        if (p[k])
                                                k++;
                                } else {
                                        while (p[k] && p[k] != ' ' &&
                                               p[k] != '&' && p[k] != '"')
                                                k++;
                                }
                                j += (size_t)snprintf(out + j, outlen - j,
                                                      "password=***");
                                if (j >= outlen)
                                        j = outlen - 1;
                                i += k;
                                continue;
                        }
                }
                if (strncmp(p, "://", 3) == 0) {
                        /* user:secret@ before the next '/', if any */
                        const char *end = strpbrk(p + 3, "/ ");
                        const char *at = strchr(p + 3, '@');
                        const char *colon = strchr(p + 3, ':');
                        if (at && (!end || at < end) && colon && colon < at) {
                                size_t keep = (size_t)(colon - p) + 1;
                                j += (size_t)snprintf(out + j, outlen - j,
                                                      "%.*s***", (int)keep, p);
                                if (j >= outlen)
                                        j = outlen - 1;
                                i += (size_t)(at - p);
                                continue;
                        }
                }
                out[j++] = in[i++];
        }
        out[j] = '\0';
}

static bool json;

void wc_log_set_json(bool on)
{
        json = on;
}

static const char *level_name(enum wc_log_level level)
{
        static const char *const names[] = {"emerg", "alert",   "crit",
                                            "err",   "warning", "notice",
                                            "info",  "debug"};
        return (unsigned)level < 8 ? names[level] : "debug";
}

/* {"priority":6,"level":"info","message":"..."}: for collectors that read
 * JSON lines; journald still gets the level from PRIORITY-less lines as
 * info, so text stays the default under systemd. */
static void emit_json(enum wc_log_level level, const char *msg)
{
        struct wc_buf b;

        wc_buf_init(&b);
        if (wc_buf_printf(&b, "{\"priority\":%d,\"level\":\"%s\",\"program\":",
                          (int)level, level_name(level)) == 0 &&
            wc_json_append_string(&b, prog, strlen(prog)) == 0 &&
            wc_buf_append_str(&b, ",\"message\":") == 0 &&
            wc_json_append_string(&b, msg, strlen(msg)) == 0 &&
            wc_buf_append_str(&b, "}\n") == 0)
                fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        wc_buf_free(&b);
}

static void emit(enum wc_log_level level, const char *msg)
{
        char line[4200];
        int n;

        if (json) {
                emit_json(level, msg);
                return;
        }
        if (style == WC_LOG_STYLE_SD_DAEMON)
                n = snprintf(line, sizeof(line) - 1, "<%d>%s", (int)level, msg);
        else
                n = snprintf(line, sizeof(line) - 1, "%s: %s%s", prog,
                             level_word(level), msg);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        /* one write per line, so lines from one process never interleave */
        line[n++] = '\n';
        fwrite(line, 1, (size_t)n, stderr);
        fflush(stderr);
}

/* An error that repeats (a server down for minutes, a plugin failing on
 * every replay) is logged once per window, then counted. */
#define REPEAT_WINDOW_S 10

static char last_msg[4096];
static enum wc_log_level last_level;
static time_t last_first;
static unsigned long repeated;

static void flush_repeats(void)
{
        char note[128];

        if (!repeated)
                return;
        snprintf(note, sizeof(note),
                 "(the previous message repeated %lu "
                 "more times)",
                 repeated);
        repeated = 0;
        emit(last_level, note);
}

void wc_log(enum wc_log_level level, const char *fmt, ...)
{
        char raw[4096], msg[4096];
        time_t now;
        va_list ap;

        if (!wc_log_enabled(level))
                return;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        wc_log_redact(raw, msg, sizeof(msg));

        now = time(NULL);
        if (level <= WC_LOG_WARNING && level == last_level &&
            strcmp(msg, last_msg) == 0 && now - last_first < REPEAT_WINDOW_S) {
                repeated++;
                return;
        }
        flush_repeats();
        if (level <= WC_LOG_WARNING) {
                snprintf(last_msg, sizeof(last_msg), "%s", msg);
                last_level = level;
                last_first = now;
        } else {
                last_msg[0] = '\0';
        }
        emit(level, msg);
}
