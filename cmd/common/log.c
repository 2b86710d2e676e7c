/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

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

/* ---- secrets ---- */

/*
 * The secrets of the connection strings in use, and the pieces of them
 * that libpq quotes when it misreads one: "password=abc def" makes it say
 * `missing "=" after "def"`, "postgresql://u:pa/ss@db" makes "pa" a port
 * and "ss@db" a database.  A piece is what lies between the characters
 * that end a value in a conninfo string or a URI.
 */
#define MAX_SECRETS 256
/* shorter strings are too common to be replaced wherever they appear:
 * they are replaced only where a message quotes them as a whole piece */
#define SECRET_ANYWHERE_MIN 4
#define PIECE_DELIMS        " \t\n\r\f\v/@:?#&=,;'\""

/* every logged line is compared with each: lengths kept, first bytes
 * compared before the rest */
static char *secrets[MAX_SECRETS];
static size_t secret_len[MAX_SECRETS];
static size_t nsecrets;

void wc_log_forget_secrets(void)
{
        for (size_t i = 0; i < nsecrets; i++)
                free(secrets[i]);
        nsecrets = 0;
}

static void add_one(const char *s, size_t len)
{
        char *dup;

        if (len == 0 || nsecrets == MAX_SECRETS)
                return;
        for (size_t i = 0; i < nsecrets; i++)
                if (secret_len[i] == len && memcmp(secrets[i], s, len) == 0)
                        return;
        dup = strndup(s, len);
        if (dup) {
                secrets[nsecrets] = dup;
                secret_len[nsecrets++] = len;
        }
}

static void add_with_pieces(const char *s, size_t len)
{
        size_t i = 0;

        add_one(s, len);
        while (i < len) {
                size_t start;

                while (i < len && strchr(PIECE_DELIMS, s[i]))
                        i++;
                start = i;
                while (i < len && !strchr(PIECE_DELIMS, s[i]))
                        i++;
                if (i > start && i - start < len)
                        add_one(s + start, i - start);
        }
}

void wc_log_add_secret(const char *s, size_t len)
{
        char *dec;
        size_t n = 0;

        if (!s || len == 0)
                return;
        add_with_pieces(s, len);
        /* a URI's password is percent-encoded: libpq quotes either form */
        if (!memchr(s, '%', len) || !(dec = malloc(len)))
                return;
        for (size_t i = 0; i < len; i++) {
                int hi, lo;

                if (s[i] == '%' && i + 2 < len &&
                    (hi = wc_hex_digit(s[i + 1])) >= 0 &&
                    (lo = wc_hex_digit(s[i + 2])) >= 0) {
                        dec[n++] = (char)(hi << 4 | lo);
                        i += 2;
                } else {
                        dec[n++] = s[i];
                }
        }
        add_with_pieces(dec, n);
        free(dec);
}

void wc_log_add_secret_value(const char *s)
{
        size_t len, i = 0;

        if (!s)
                return;
        len = strlen(s);
        while (len && strchr(" \t\n\r\f\v", s[len - 1]))
                len--;
        add_one(s, len);
        /*
         * Every word, and everything from a word on: what a parser quotes
         * from where it could not read on ("principal=x bogus=SECRET").
         * Not the value of a key=value word alone: the principal is no
         * secret, and may be a word as common as "walcast".  A PEM key's
         * armour lines ("-----BEGIN PRIVATE KEY-----") are no secret.
         */
        while (i < len) {
                size_t eol = i + strcspn(s + i, "\n");

                if (eol > len)
                        eol = len;
                while (i < eol && strchr(" \t\r\f\v", s[i]))
                        i++;
                if (strncmp(s + i, "-----", 5) == 0)
                        i = eol;
                while (i < eol) {
                        size_t start = i;

                        while (i < eol && !strchr(" \t\r\f\v", s[i]))
                                i++;
                        add_one(s + start, i - start);
                        add_one(s + start, len - start);
                        while (i < eol && strchr(" \t\r\f\v", s[i]))
                                i++;
                }
                i = eol + 1;
        }
}

/* Whether word[0..len) is a libpq connection keyword ("host", "sslmode"):
 * after a password, anything else is taken as more of the password. */
static bool is_keyword(const char *word, size_t len)
{
        static PQconninfoOption *all;
        char *msg = NULL;

        if (!all) {
                all = PQconninfoParse("", &msg);
                PQfreemem(msg);
        }
        if (!all)
                return len > 0;
        for (const PQconninfoOption *o = all; o->keyword; o++)
                if (strlen(o->keyword) == len &&
                    memcmp(o->keyword, word, len) == 0)
                        return true;
        return false;
}

/* Length of the key of a "key=value" or "key = value" token at p, or 0
 * when p does not start one with a libpq keyword. */
static size_t keyword_at(const char *p)
{
        size_t k = strcspn(p, " \t\n\r\f\v=&");
        size_t e = k;

        while (p[e] == ' ' || p[e] == '\t')
                e++;
        return p[e] == '=' && k > 0 && is_keyword(p, k) ? k : 0;
}

static bool is_secret_key(const char *p, size_t len)
{
        return (len == 8 && strncasecmp(p, "password", 8) == 0) ||
               (len == 11 && strncasecmp(p, "sslpassword", 11) == 0);
}

/*
 * The value of a "password=" or "sslpassword=" at p (just after the '='),
 * as the user meant it: a quoted value, or everything up to the next
 * "keyword=" of libpq (an unquoted "abc def" is one password to its author
 * and a syntax error to libpq).  sep ends an unquoted value in a URI's
 * query ('&').
 */
static void add_value(const char *p, char sep)
{
        char buf[1024];
        size_t n = 0, i = 0;

        while (p[i] == ' ' || p[i] == '\t')
                i++;
        if (p[i] == '\'' && sep == ' ') {
                for (i++; p[i] && p[i] != '\'' && n < sizeof(buf); i++) {
                        if (p[i] == '\\' && p[i + 1])
                                i++;
                        buf[n++] = p[i];
                }
                wc_log_add_secret(buf, n);
                return;
        }
        for (;;) {
                size_t start = i, end;

                end = i + strcspn(p + i, sep == '&' ? "&" : " \t\n\r\f\v");
                wc_log_add_secret(p + start, end - start);
                /* the whole run, spaces included, is a secret too */
                if (n + (end - start) < sizeof(buf)) {
                        memcpy(buf + n, p + start, end - start);
                        n += end - start;
                }
                i = end;
                while (p[i] && strchr(sep == '&' ? "&" : " \t\n\r\f\v", p[i]))
                        i++;
                if (!p[i] || keyword_at(p + i))
                        break;
                if (n < sizeof(buf))
                        buf[n++] = sep;
        }
        wc_log_add_secret(buf, n);
}

void wc_log_add_dsn_secrets(const char *dsn)
{
        const char *p;

        if (!dsn)
                return;
        p = dsn + strspn(dsn, " \t\n\r\f\v");
        if (strncmp(p, "postgresql://", 13) == 0 ||
            strncmp(p, "postgres://", 11) == 0) {
                const char *rest = strstr(p, "://") + 3;
                const char *at = strchr(rest, '@'), *q, *last = NULL;
                const char *q0 = strchr(rest, '?');
                const char *slash = strchr(rest, '/');

                /* an '@' after "/path?" is the query's ("?user=a@b") */
                if (at && q0 && q0 < at && slash && slash < q0)
                        at = NULL;
                /* user:password@ ends at the last '@' before the query:
                 * an unencoded '@' or '/' in the password is the user's
                 * mistake, not a reason to let it through */
                if (at) {
                        q = strchr(at, '?');
                        for (const char *c = rest; *c && (!q || c < q); c++)
                                if (*c == '@')
                                        last = c;
                        const char *colon =
                            memchr(rest, ':', (size_t)(last - rest));
                        if (colon)
                                wc_log_add_secret(colon + 1,
                                                  (size_t)(last - colon - 1));
                }
                for (const char *c = rest; (c = strpbrk(c, "?&")); c++) {
                        size_t k = strcspn(c + 1, "=&");
                        if (c[1 + k] == '=' && is_secret_key(c + 1, k))
                                add_value(c + 2 + k, '&');
                }
                return;
        }
        for (size_t i = 0; p[i]; i++) {
                size_t k, e;

                if (i > 0 && !strchr(" \t\n\r\f\v", p[i - 1]))
                        continue;
                k = strcspn(p + i, " \t\n\r\f\v=");
                e = i + k;
                while (p[e] == ' ' || p[e] == '\t')
                        e++;
                if (p[e] == '=' && is_secret_key(p + i, k))
                        add_value(p + e + 1, ' ');
        }
}

/* The longest secret of at least SECRET_ANYWHERE_MIN bytes at p, or 0. */
static size_t secret_at(const char *p)
{
        size_t best = 0;

        for (size_t i = 0; i < nsecrets; i++) {
                size_t n = secret_len[i];

                if (n >= SECRET_ANYWHERE_MIN && n > best &&
                    p[0] == secrets[i][0] && strncmp(p, secrets[i], n) == 0)
                        best = n;
        }
        return best;
}

static bool is_secret(const char *p, size_t len)
{
        for (size_t i = 0; i < nsecrets; i++)
                if (secret_len[i] == len && memcmp(secrets[i], p, len) == 0)
                        return true;
        return false;
}

/* Appends s to out[*j], cut to fit. */
static void put(char *out, size_t outlen, size_t *j, const char *s, size_t n)
{
        if (*j + 1 >= outlen)
                return;
        if (n > outlen - 1 - *j)
                n = outlen - 1 - *j;
        memcpy(out + *j, s, n);
        *j += n;
}

/*
 * Every registered secret in in replaced by "***": the longer ones
 * wherever they appear, and any of them where a message quotes it ("...")
 * alone or as a piece of what it quotes ("ss@127.0.0.1:1/db").
 */
static void scrub_secrets(const char *in, char *out, size_t outlen)
{
        const char *close = NULL; /* the end of the quoted run we are in */
        size_t j = 0, i = 0;

        while (in[i] && j + 1 < outlen) {
                size_t n = secret_at(in + i);

                if (close && in + i == close) {
                        close = NULL;
                } else if (!close && in[i] == '"') {
                        close = strchr(in + i + 1, '"');
                        out[j++] = in[i++];
                        continue;
                }
                /* at the start of a piece of a quoted run ('"' is a
                 * delimiter) */
                if (close && strchr(PIECE_DELIMS, in[i - 1])) {
                        size_t w = strcspn(in + i, PIECE_DELIMS);

                        if (w > n && is_secret(in + i, w))
                                n = w;
                }
                if (n) {
                        put(out, outlen, &j, "***", 3);
                        i += n;
                        if (close && in + i > close)
                                close = NULL;
                } else {
                        out[j++] = in[i++];
                }
        }
        out[j] = '\0';
}

/* The value of a conninfo "password=" (quoted or not, spaces around '='
 * allowed) and the password of a URI's user info
 * ("postgresql://user:secret@host") replaced by "***". */
static void redact_keywords(const char *in, char *out, size_t outlen)
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

void wc_log_redact(const char *in, char *out, size_t outlen)
{
        char tmp[4096];

        if (outlen == 0)
                return;
        redact_keywords(in, tmp, sizeof(tmp));
        scrub_secrets(tmp, out, outlen);
}

/* ---- escaping ---- */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes) and its
 * code point, or 0 for a byte that does not start one. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *ret_cp)
{
        uint32_t cp, min;
        size_t len;

        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2, cp = s[0] & 0x1f, min = 0x80;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3, cp = s[0] & 0x0f, min = 0x800;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4, cp = s[0] & 0x07, min = 0x10000;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return len;
}

/* Code points that end or reorder a line on some reader: C1 controls (NEL
 * among them), the Unicode line and paragraph separators, and the
 * bidirectional overrides and isolates. */
static bool unsafe_cp(uint32_t cp)
{
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t wc_log_escape(const char *in, char *out, size_t outlen)
{
        static const char hex[] = "0123456789abcdef";
        size_t n = strlen(in), j = 0;

        if (outlen == 0)
                return 0;
        /* libpq's and the server's messages end in a newline the line
         * itself stands for */
        while (n > 0 && strchr("\n\r\t ", in[n - 1]))
                n--;
        for (size_t i = 0; i < n;) {
                const unsigned char *p = (const unsigned char *)in + i;
                char esc[12];
                size_t len, e = 0;
                uint32_t cp;

                len = utf8_seq(p, n - i, &cp);
                if (len == 0 || (len == 1 && (cp < 0x20 || cp == 0x7f))) {
                        esc[e++] = '\\';
                        if (p[0] == '\n') {
                                esc[e++] = 'n';
                        } else if (p[0] == '\r') {
                                esc[e++] = 'r';
                        } else if (p[0] == '\t') {
                                esc[e++] = 't';
                        } else {
                                esc[e++] = 'x';
                                esc[e++] = hex[p[0] >> 4];
                                esc[e++] = hex[p[0] & 0xf];
                        }
                        len = 1;
                } else if (unsafe_cp(cp)) {
                        e = (size_t)snprintf(esc, sizeof(esc), "\\u%04x",
                                             (unsigned)cp);
                } else {
                        memcpy(esc, p, len);
                        e = len;
                }
                /* an escape is never cut in half */
                if (j + e >= outlen)
                        break;
                memcpy(out + j, esc, e);
                j += e;
                i += len;
        }
        out[j] = '\0';
        return j;
}

const char *wc_log_scrub(const char *in, char *out, size_t outlen)
{
        char clean[4096];

        wc_log_redact(in, clean, sizeof(clean));
        wc_log_escape(clean, out, outlen);
        return out;
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
 * info, so text stays the default under systemd.  msg is escaped already
 * (valid UTF-8 without control characters), so the JSON carries the text
 * the text format would show. */
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

#define MSG_MAX 8192

static void emit(enum wc_log_level level, const char *msg)
{
        char line[MSG_MAX + 128];
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

static char last_msg[MSG_MAX];
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
        char raw[4096], clean[4096], msg[MSG_MAX];
        time_t now;
        va_list ap;

        if (!wc_log_enabled(level))
                return;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* Here, once, for every caller: no secret, and nothing from a
         * server, a plugin or a file (a table named "x\n<0>...") can end
         * the line and forge one of another priority. */
        wc_log_redact(raw, clean, sizeof(clean));
        wc_log_escape(clean, msg, sizeof(msg));

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
