/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

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

void wc_log(enum wc_log_level level, const char *fmt, ...)
{
        char line[4096];
        va_list ap;
        int n;

        if (!wc_log_enabled(level))
                return;
        if (style == WC_LOG_STYLE_SD_DAEMON)
                n = snprintf(line, sizeof(line), "<%d>", (int)level);
        else
                n = snprintf(line, sizeof(line), "%s: %s", prog,
                             level_word(level));
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        va_end(ap);
        /* one write per line, so lines from one process never interleave */
        n = (int)strlen(line);
        line[n++] = '\n';
        fwrite(line, 1, (size_t)n, stderr);
        fflush(stderr);
}
