/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "decode/json_scan.h"
#include "decode/wal2json.h"

/* ---- wal2json's unescaped type names ----
 *
 * wal2json (2.5 and later, format-version 2) writes a column's type name
 * as format_type() prints it, and leaves it unescaped when that text
 * starts with a double quote and does not end with ']': a type in a
 * schema that needs quoting arrives as "type":"other-tenant".st, which is
 * not JSON.  A message that does not decode is looked at again here (the
 * fast path is not slowed): every string value of a "type" key in an
 * entry of "columns", "identity" or "pk" that is not a JSON string
 * followed by what wal2json writes next is read with format_type()'s
 * grammar instead, and the message is decoded again from a copy in which
 * those values are JSON strings.
 *
 * format_type()'s text is identifiers separated by '.', each plain
 * ([A-Za-z0-9_$] and bytes >= 0x80) or quoted, where a quote inside is
 * doubled; then an optional type modifier "(...)" and "[]" suffixes.
 * Since every quote inside a quoted identifier is doubled, where the name
 * ends is never in doubt; it is accepted only when what follows is what
 * wal2json writes after a type with walcast's options: ,"typeoid":
 * ,"value": or the entry's end "}" followed by "," or "]".  The type name
 * delivered is format_type()'s text exactly, quotes included.
 */

/* Nesting the walk below follows: wal2json's top object, a column list,
 * an entry, and values nested in a value. */
#define REPAIR_DEPTH 64

/* The index after the JSON string whose quote is at m[i], 0 when it does
 * not end. */
static size_t string_end(const char *m, size_t n, size_t i)
{
        for (i++; i < n; i++) {
                if (m[i] == '\\')
                        i++;
                else if (m[i] == '"')
                        return i + 1;
        }
        return 0;
}

static bool lit_at(const char *m, size_t n, size_t i, const char *lit)
{
        size_t k = strlen(lit);

        return n - i >= k && memcmp(m + i, lit, k) == 0;
}

/* Is m[i..] what wal2json writes after a column's type? */
static bool type_continues(const char *m, size_t n, size_t i)
{
        if (i >= n)
                return false;
        if (m[i] == ',')
                return lit_at(m, n, i, ",\"typeoid\":") ||
                       lit_at(m, n, i, ",\"value\":");
        return lit_at(m, n, i, "},{") || lit_at(m, n, i, "}]");
}

static bool plain_ident_byte(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* The index after the format_type() text that starts at m[i], 0 when
 * there is none. */
static size_t format_type_end(const char *m, size_t n, size_t i)
{
        for (;;) {
                if (i < n && m[i] == '"') {
                        for (i++;; i++) {
                                if (i >= n)
                                        return 0;
                                if (m[i] != '"')
                                        continue;
                                if (i + 1 < n && m[i + 1] == '"') {
                                        i++;
                                        continue;
                                }
                                i++;
                                break;
                        }
                } else {
                        size_t start = i;

                        while (i < n && plain_ident_byte((unsigned char)m[i]))
                                i++;
                        if (i == start)
                                return 0;
                }
                if (i < n && m[i] == '.') {
                        i++;
                        continue;
                }
                break;
        }
        if (i < n && m[i] == '(') {
                int level = 0;

                do {
                        if (i >= n || m[i] == '"' || (unsigned char)m[i] < 0x20)
                                return 0;
                        if (m[i] == '(')
                                level++;
                        else if (m[i] == ')')
                                level--;
                        i++;
                } while (level > 0);
        }
        while (n - i >= 2 && m[i] == '[' && m[i + 1] == ']')
                i += 2;
        return i;
}

/* Appends m[from..to) to out as a JSON string. */
static int append_escaped(struct wc_buf *out, const char *m, size_t from,
                          size_t to)
{
        int r = wc_buf_append_char(out, '"');

        for (size_t i = from; i < to && !r; i++) {
                unsigned char c = (unsigned char)m[i];

                if (c == '"' || c == '\\') {
                        r = wc_buf_append_char(out, '\\');
                        if (!r)
                                r = wc_buf_append_char(out, (char)c);
                } else if (c < 0x20) {
                        r = wc_buf_printf(out, "\\u%04x", c);
                } else {
                        r = wc_buf_append_char(out, (char)c);
                }
        }
        if (!r)
                r = wc_buf_append_char(out, '"');
        return r;
}

/* Declared in wal2json.h.
 * Walks the message m[0..n) as JSON and writes to out a copy in which each
 * unescaped type name is a JSON string.  1 when it made one, 0 when there
 * was nothing to repair or the message is not wal2json's shape with that
 * defect (its error stands), -ENOMEM.
 */
int wc_wal2json_repair_types(const char *m, size_t n, struct wc_buf *out)
{
        char stack[REPAIR_DEPTH];
        size_t depth = 0, copied = 0, i = 0;
        /* at an object's key; the last top-level key names a column list;
         * the key just read is an entry's "type"; its value is next */
        bool want_key = false, list_key = false, type_key = false;
        bool type_value = false, in_list = false;
        int r, fixed = 0;

        wc_buf_reset(out);
        while (i < n) {
                char c = m[i];
                size_t e;

                switch (c) {
                case '{':
                case '[':
                        if (depth == REPAIR_DEPTH)
                                return 0;
                        if (depth == 1)
                                in_list = c == '[' && list_key;
                        stack[depth++] = c;
                        want_key = c == '{';
                        type_value = false;
                        i++;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return 0;
                        depth--;
                        want_key = type_value = false;
                        i++;
                        break;
                case ',':
                        want_key = depth && stack[depth - 1] == '{';
                        type_value = false;
                        i++;
                        break;
                case ':':
                        type_value = type_key;
                        type_key = want_key = false;
                        i++;
                        break;
                case '"':
                        e = string_end(m, n, i);
                        if (type_value) {
                                type_value = false;
                                if (e && type_continues(m, n, e)) {
                                        i = e;
                                        break;
                                }
                                e = format_type_end(m, n, i);
                                if (!e || !type_continues(m, n, e))
                                        return 0;
                                r = wc_buf_append(out, m + copied, i - copied);
                                if (!r)
                                        r = append_escaped(out, m, i, e);
                                if (r < 0)
                                        return -ENOMEM;
                                copied = i = e;
                                fixed = 1;
                                break;
                        }
                        if (!e)
                                return 0;
                        if (want_key && depth == 1)
                                list_key = lit_at(m, e, i, "\"columns\"") ||
                                           lit_at(m, e, i, "\"identity\"") ||
                                           lit_at(m, e, i, "\"pk\"");
                        type_key = want_key && depth == 3 && in_list &&
                                   stack[2] == '{' && e - i == 6 &&
                                   memcmp(m + i, "\"type\"", 6) == 0;
                        want_key = false;
                        i = e;
                        break;
                default:
                        if (!wc_jscan_is_ws(c))
                                type_value = false;
                        i++;
                        break;
                }
        }
        if (!fixed)
                return 0;
        if (wc_buf_append(out, m + copied, n - copied) < 0)
                return -ENOMEM;
        return 1;
}
